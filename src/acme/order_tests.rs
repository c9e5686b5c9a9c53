//! The issuance machine against a scripted CA that checks every JWS it
//! gets (URL, nonce, jwk or kid) the way RFC 8555 §6.2 requires.

use std::collections::HashSet;

use super::*;
use crate::acme::wire::Response;

const DIR: &str = "https://ca.test/dir";

fn decode(text: &str) -> Vec<u8> {
    let mut standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    crate::sasl::base64::decode(standard).expect("base64url")
}

/// What the fake CA can be told to do wrong.
#[derive(Default)]
struct Faults {
    /// Answer this many POSTs with badNonce first.
    bad_nonces: u32,
    /// Never send Replay-Nonce except from newNonce.
    stingy_nonces: bool,
    rate_limit_orders: bool,
    /// The HTTP-01 validation fails.
    unreachable: bool,
    /// The order stays `processing` forever.
    stuck: bool,
    retry_after: Option<Duration>,
}

struct FakeCa {
    key_thumbprint: String,
    faults: Faults,
    next_nonce: u32,
    live_nonces: HashSet<String>,
    account: Option<String>,
    names: Vec<String>,
    authz_valid: Vec<bool>,
    challenge_started: Vec<bool>,
    finalized: bool,
    published: Vec<(String, String)>,
    /// (method, url) of every request, in order.
    log: Vec<(Method, String)>,
}

impl FakeCa {
    fn new(key: &AccountKey, faults: Faults) -> FakeCa {
        FakeCa {
            key_thumbprint: key.thumbprint(),
            faults,
            next_nonce: 0,
            live_nonces: HashSet::new(),
            account: None,
            names: Vec::new(),
            authz_valid: Vec::new(),
            challenge_started: Vec::new(),
            finalized: false,
            published: Vec::new(),
            log: Vec::new(),
        }
    }

    fn nonce(&mut self) -> String {
        self.next_nonce += 1;
        let nonce = format!("nonce{}", self.next_nonce);
        self.live_nonces.insert(nonce.clone());
        nonce
    }

    fn json(&mut self, status: u16, body: Value) -> Response {
        Response {
            status,
            location: None,
            replay_nonce: (!self.faults.stingy_nonces).then(|| self.nonce()),
            retry_after: self.faults.retry_after,
            body: body.to_string().into_bytes(),
        }
    }

    fn problem(&mut self, status: u16, kind: &str) -> Response {
        let mut r = self.json(
            status,
            json!({ "type": format!("urn:ietf:params:acme:error:{kind}"), "detail": "scripted" }),
        );
        if kind == "badNonce" {
            // RFC 8555 §6.5: an error response carries a fresh nonce.
            r.replay_nonce = Some(self.nonce());
        }
        r
    }

    fn order(&self) -> Value {
        let status = if self.finalized {
            if self.faults.stuck {
                "processing"
            } else {
                "valid"
            }
        } else if self.authz_valid.iter().all(|v| *v) {
            "ready"
        } else {
            "pending"
        };
        let authorizations: Vec<String> = (0..self.names.len())
            .map(|i| format!("https://ca.test/authz/{i}"))
            .collect();
        let mut order = json!({
            "status": status,
            "authorizations": authorizations,
            "finalize": "https://ca.test/finalize/1",
        });
        if status == "valid" {
            order["certificate"] = json!("https://ca.test/cert/1");
        }
        order
    }

    fn authz(&self, i: usize) -> Value {
        let failed = self.challenge_started[i] && self.faults.unreachable;
        let status = if failed {
            "invalid"
        } else if self.authz_valid[i] {
            "valid"
        } else {
            "pending"
        };
        let mut challenge = json!({
            "type": "http-01",
            "url": format!("https://ca.test/chall/{i}"),
            "token": format!("token-{i}"),
            "status": if failed { "invalid" } else if self.challenge_started[i] { "processing" } else { "pending" },
        });
        if failed {
            challenge["error"] =
                json!({ "type": "urn:ietf:params:acme:error:connection", "detail": "refused" });
        }
        json!({
            "status": status,
            "identifier": { "type": "dns", "value": self.names[i] },
            "challenges": [
                { "type": "dns-01", "url": "https://ca.test/dns", "token": "other", "status": "pending" },
                challenge,
            ],
        })
    }

    fn handle(&mut self, request: &Request) -> Response {
        self.log.push((request.method, request.url.clone()));
        if let Some(published) = &request.publish {
            self.published.push(published.clone());
        }
        match (request.method, request.url.as_str()) {
            (Method::Get, DIR) => {
                return self.json(
                    200,
                    json!({
                        "newNonce": "https://ca.test/nonce",
                        "newAccount": "https://ca.test/acct",
                        "newOrder": "https://ca.test/order",
                    }),
                );
            }
            (Method::Head, "https://ca.test/nonce") => {
                let nonce = self.nonce();
                return Response {
                    status: 200,
                    replay_nonce: Some(nonce),
                    ..Response::default()
                };
            }
            (Method::Post, _) => {}
            other => panic!("unexpected request {other:?}"),
        }
        // Every POST: a JWS whose header names this URL and a live nonce.
        let jws: Value =
            serde_json::from_slice(request.body.as_deref().expect("body")).expect("JWS");
        let header: Value =
            serde_json::from_slice(&decode(jws["protected"].as_str().expect("protected")))
                .expect("header");
        assert_eq!(
            header["url"],
            request.url.as_str(),
            "the url member must be the request URL"
        );
        assert_eq!(header["alg"], "ES256");
        let nonce = header["nonce"].as_str().expect("nonce").to_owned();
        assert!(
            self.live_nonces.remove(&nonce),
            "nonce {nonce} reused or invented"
        );
        if self.faults.bad_nonces > 0 {
            self.faults.bad_nonces -= 1;
            return self.problem(400, "badNonce");
        }
        let payload_text = jws["payload"].as_str().expect("payload");
        let payload: Value = if payload_text.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&decode(payload_text)).expect("payload JSON")
        };
        if request.url == "https://ca.test/acct" {
            assert!(header.get("jwk").is_some() && header.get("kid").is_none());
            assert_eq!(payload["termsOfServiceAgreed"], true);
            self.account = Some("https://ca.test/acct/7".to_owned());
            let mut r = self.json(201, json!({ "status": "valid" }));
            r.location = self.account.clone();
            return r;
        }
        assert_eq!(
            header["kid"].as_str(),
            self.account.as_deref(),
            "later requests use the kid"
        );
        let path = request.url.trim_start_matches("https://ca.test");
        if path == "/order" {
            if self.faults.rate_limit_orders {
                let mut r = self.problem(429, "rateLimited");
                r.retry_after = Some(Duration::from_secs(7200));
                return r;
            }
            self.names = payload["identifiers"]
                .as_array()
                .expect("identifiers")
                .iter()
                .map(|id| id["value"].as_str().expect("value").to_owned())
                .collect();
            self.authz_valid = vec![false; self.names.len()];
            self.challenge_started = vec![false; self.names.len()];
            let body = self.order();
            let mut r = self.json(201, body);
            r.location = Some("https://ca.test/order/1".to_owned());
            return r;
        }
        if let Some(i) = path.strip_prefix("/authz/") {
            let i: usize = i.parse().expect("index");
            assert_eq!(payload, Value::Null, "POST-as-GET");
            let body = self.authz(i);
            return self.json(200, body);
        }
        if let Some(i) = path.strip_prefix("/chall/") {
            let i: usize = i.parse().expect("index");
            assert_eq!(payload, json!({}));
            let (token, key_authorization) = self
                .published
                .last()
                .cloned()
                .expect("published before the POST");
            assert_eq!(token, format!("token-{i}"));
            assert_eq!(
                key_authorization,
                format!("token-{i}.{}", self.key_thumbprint)
            );
            self.challenge_started[i] = true;
            if !self.faults.unreachable {
                self.authz_valid[i] = true;
            }
            let body = self.authz(i)["challenges"][1].clone();
            return self.json(200, body);
        }
        if path == "/finalize/1" {
            assert!(
                self.authz_valid.iter().all(|v| *v),
                "finalized before validation"
            );
            assert!(payload["csr"].as_str().is_some_and(|csr| !csr.is_empty()));
            self.finalized = true;
            let mut body = self.order();
            body["status"] = json!("processing");
            return self.json(200, body);
        }
        if path == "/order/1" {
            let body = self.order();
            return self.json(200, body);
        }
        if path == "/cert/1" {
            assert_eq!(request.accept, "application/pem-certificate-chain");
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
            let cert = rcgen::CertificateParams::new(self.names.clone())
                .expect("params")
                .self_signed(&key)
                .expect("cert");
            let mut r = self.json(200, Value::Null);
            r.body = format!("{}{}", cert.pem(), cert.pem()).into_bytes();
            return r;
        }
        panic!("unexpected POST to {}", request.url)
    }
}

fn settings() -> Settings {
    Settings {
        directory: DIR.to_owned(),
        email: Some("admin@example.org".to_owned()),
        poll_interval: Duration::from_secs(2),
        max_polls: 10,
    }
}

/// Runs an issuance against `ca` to its end; the waits it asked for.
fn drive(
    ca: &mut FakeCa,
    names: &[&str],
    settings: Settings,
) -> (Result<Issued, AcmeError>, Vec<Duration>) {
    let key = Rc::new(AccountKey::from_pkcs8(&test_key_pkcs8()).expect("key"));
    let mut issuance = Issuance::new(key, names.iter().map(|n| n.to_string()).collect(), settings);
    let mut waits = Vec::new();
    let mut step = issuance.start();
    for _ in 0..200 {
        match step {
            Step::Send(request) => {
                waits.push(request.wait);
                let response = ca.handle(&request);
                step = issuance.on_response(response);
            }
            Step::Issued(issued) => return (Ok(issued), waits),
            Step::Failed(err) => return (Err(err), waits),
        }
    }
    panic!("the issuance did not end");
}

fn test_key_pkcs8() -> Vec<u8> {
    thread_local! {
        static KEY: Vec<u8> = AccountKey::generate().expect("key").pkcs8().to_vec();
    }
    KEY.with(Clone::clone)
}

fn ca(faults: Faults) -> FakeCa {
    FakeCa::new(
        &AccountKey::from_pkcs8(&test_key_pkcs8()).expect("key"),
        faults,
    )
}

#[test]
fn a_certificate_for_a_host_and_its_services() {
    let mut ca = ca(Faults::default());
    let names = [
        "example.org",
        "conference.example.org",
        "upload.example.org",
    ];
    let (issued, _) = drive(&mut ca, &names, settings());
    let issued = issued.expect("issued");
    assert!(issued.chain_pem.matches("BEGIN CERTIFICATE").count() == 2);
    assert!(issued.key_pem.contains("PRIVATE KEY"));
    assert_eq!(ca.names, names);
    assert_eq!(ca.published.len(), 3, "one challenge per name");
    // The flow: directory (its answer carries the first nonce), account,
    // order, then per name its authorization, challenge and a poll;
    // finalize, poll, download.
    let posts: Vec<&str> = ca
        .log
        .iter()
        .map(|(_, url)| url.trim_start_matches("https://ca.test"))
        .collect();
    assert_eq!(
        posts,
        [
            "/dir",
            "/acct",
            "/order",
            "/authz/0",
            "/chall/0",
            "/authz/0",
            "/authz/1",
            "/chall/1",
            "/authz/1",
            "/authz/2",
            "/chall/2",
            "/authz/2",
            "/finalize/1",
            "/order/1",
            "/cert/1",
        ]
    );
}

#[test]
fn bad_nonces_are_retried_with_a_fresh_one() {
    let mut ca = ca(Faults {
        bad_nonces: 3,
        ..Faults::default()
    });
    let (issued, _) = drive(&mut ca, &["example.org"], settings());
    assert!(issued.is_ok(), "{issued:?}");
    let account_posts = ca
        .log
        .iter()
        .filter(|(_, url)| url.ends_with("/acct"))
        .count();
    assert_eq!(account_posts, 4, "three refusals, then success");

    let mut ca = self::ca(Faults {
        bad_nonces: 100,
        ..Faults::default()
    });
    let (issued, _) = drive(&mut ca, &["example.org"], settings());
    match issued {
        Err(AcmeError::Refused {
            status: 400,
            problem,
            ..
        }) => assert!(problem.is("badNonce")),
        other => panic!("expected to give up on badNonce, got {other:?}"),
    }
}

#[test]
fn without_replay_nonces_every_post_fetches_one() {
    let mut ca = ca(Faults {
        stingy_nonces: true,
        ..Faults::default()
    });
    let (issued, _) = drive(&mut ca, &["example.org"], settings());
    assert!(issued.is_ok(), "{issued:?}");
    let posts = ca.log.iter().filter(|(m, _)| *m == Method::Post).count();
    let heads = ca.log.iter().filter(|(m, _)| *m == Method::Head).count();
    assert_eq!(posts, heads);
}

#[test]
fn rate_limits_fail_with_the_cas_retry_after() {
    let mut ca = ca(Faults {
        rate_limit_orders: true,
        ..Faults::default()
    });
    let (issued, _) = drive(&mut ca, &["example.org"], settings());
    let err = issued.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7200)));
    assert!(err.to_string().contains("rate limit"), "{err}");
}

#[test]
fn a_failed_validation_names_the_domain_and_the_cause() {
    let mut ca = ca(Faults {
        unreachable: true,
        ..Faults::default()
    });
    let (issued, _) = drive(&mut ca, &["example.org"], settings());
    let err = issued.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AcmeError::Validation { .. }), "{err:?}");
    assert!(
        text.contains("example.org") && text.contains("connection: refused"),
        "{text}"
    );
    assert!(text.contains("port 80"), "{text}");
}

#[test]
fn polls_wait_as_asked_and_give_up() {
    let mut ca = ca(Faults {
        retry_after: Some(Duration::from_secs(5)),
        ..Faults::default()
    });
    let (issued, waits) = drive(&mut ca, &["example.org"], settings());
    assert!(issued.is_ok());
    assert!(
        waits.contains(&Duration::from_secs(5)),
        "Retry-After is honoured: {waits:?}"
    );

    let mut ca = self::ca(Faults {
        stuck: true,
        ..Faults::default()
    });
    let (issued, waits) = drive(&mut ca, &["example.org"], settings());
    assert!(
        matches!(issued, Err(AcmeError::TooManyPolls { .. })),
        "{issued:?}"
    );
    assert!(
        waits
            .iter()
            .filter(|w| **w == Duration::from_secs(2))
            .count()
            >= 10
    );
}

#[test]
fn hostile_answers_end_the_issuance() {
    let key = Rc::new(AccountKey::generate().expect("key"));
    let mut issuance = Issuance::new(key.clone(), vec!["example.org".into()], settings());
    assert!(matches!(issuance.start(), Step::Send(_)));
    let garbage = Response {
        status: 200,
        body: b"<html>".to_vec(),
        ..Response::default()
    };
    assert!(matches!(
        issuance.on_response(garbage.clone()),
        Step::Failed(AcmeError::Malformed { .. })
    ));
    // After the end, nothing more is sent.
    assert!(matches!(issuance.on_response(garbage), Step::Failed(_)));

    // An account answer without a Location cannot go on.
    let mut issuance = Issuance::new(key, vec!["example.org".into()], settings());
    issuance.start();
    let directory = Response {
        status: 200,
        replay_nonce: Some("n1".into()),
        body: br#"{"newNonce":"https://ca.test/n","newAccount":"https://ca.test/a","newOrder":"https://ca.test/o"}"#
            .to_vec(),
        ..Response::default()
    };
    assert!(matches!(issuance.on_response(directory), Step::Send(_)));
    let no_location = Response {
        status: 201,
        body: b"{}".to_vec(),
        ..Response::default()
    };
    match issuance.on_response(no_location) {
        Step::Failed(AcmeError::Protocol(detail)) => {
            assert!(detail.contains("Location"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}
