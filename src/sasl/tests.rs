use std::collections::HashMap;

use super::client::ScramClient;
use super::*;

const DOMAIN: &str = "example.com";

#[derive(Default)]
struct Db {
    keys: HashMap<(String, ScramHash), ScramKeys>,
    accounts: HashMap<String, Credentials>,
    iterations: Option<u32>,
}

impl Db {
    fn with_account(mut self, user: &str, password: &str) -> Db {
        let c = Credentials::derive(password, DEFAULT_ITERATIONS).unwrap();
        self.keys.insert(
            (user.to_owned(), ScramHash::Sha1),
            c.keys(ScramHash::Sha1).unwrap().clone(),
        );
        self.keys.insert(
            (user.to_owned(), ScramHash::Sha256),
            c.keys(ScramHash::Sha256).unwrap().clone(),
        );
        self.accounts.insert(user.to_owned(), c);
        self
    }

    fn with_keys(mut self, user: &str, keys: ScramKeys) -> Db {
        self.keys.insert((user.to_owned(), keys.hash), keys);
        self
    }
}

impl CredentialLookup for Db {
    fn scram_keys(&self, username: &str, hash: ScramHash) -> Option<ScramKeys> {
        self.keys.get(&(username.to_owned(), hash)).cloned()
    }

    fn check_plain(&self, username: &str, password: &str) -> bool {
        self.accounts
            .get(username)
            .is_some_and(|c| c.verify_password(password))
    }

    fn default_iterations(&self) -> u32 {
        self.iterations.unwrap_or(DEFAULT_ITERATIONS)
    }

    fn domain(&self) -> Option<&str> {
        Some(DOMAIN)
    }
}

fn challenge(step: Step) -> Vec<u8> {
    match step {
        Step::Challenge(c) => c,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn text(step: &Step) -> String {
    match step {
        Step::Challenge(c) => String::from_utf8_lossy(c).into_owned(),
        Step::Success {
            additional_data, ..
        } => String::from_utf8_lossy(additional_data).into_owned(),
        Step::Failure(f) => f.to_string(),
    }
}

fn failure(step: Step) -> SaslFailure {
    match step {
        Step::Failure(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn start(mech: Mechanism) -> SaslSession {
    SaslSession::start(mech, None, false)
}

/// A full SCRAM exchange through our own client.
fn scram_login(
    mech: Mechanism,
    cb_server: Option<ChannelBinding>,
    client: &mut ScramClient,
    db: &Db,
) -> Step {
    let plus_offered = cb_server.is_some();
    let mut s = SaslSession::start(mech, cb_server, plus_offered);
    let server_first = match s.step(&client.first(), db) {
        Step::Challenge(c) => c,
        other => return other,
    };
    let client_final = client.final_(&server_first).unwrap();
    s.step(&client_final, db)
}

#[test]
fn rfc5802_scram_sha1_example() {
    let salt = base64::decode("QSXCR+Q6sek8bf92").unwrap();
    let keys = ScramKeys::derive(ScramHash::Sha1, "pencil", &salt, 4096).unwrap();
    let db = Db::default().with_keys("user", keys);
    let client_first = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
    let server_first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
    let client_final =
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    let server_final = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

    let mut s = start(Mechanism::ScramSha1).with_server_nonce("3rfcNHYJY1ZVvWVs7j");
    assert_eq!(
        challenge(s.step(client_first.as_bytes(), &db)),
        server_first.as_bytes()
    );
    assert_eq!(
        s.step(client_final.as_bytes(), &db),
        Step::Success {
            username: "user".into(),
            additional_data: server_final.into()
        }
    );
    assert!(s.is_finished());

    let mut c = ScramClient::new(ScramHash::Sha1, "user", "pencil", None)
        .unwrap()
        .with_nonce("fyko+d2lbbFgONRv9qkxdawL");
    assert_eq!(c.mechanism(), Mechanism::ScramSha1);
    assert_eq!(c.first(), client_first.as_bytes());
    assert_eq!(
        c.final_(server_first.as_bytes()).unwrap(),
        client_final.as_bytes()
    );
    assert!(c.verify(server_final.as_bytes()));
    assert!(!c.verify(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ"));
    assert!(!c.verify(b"v=AAAApqV8S7suAoZWja4dJRkFsKQ="));
    assert!(!c.verify(b"e=other-error"));
}

#[test]
fn rfc7677_scram_sha256_example() {
    let salt = base64::decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let keys = ScramKeys::derive(ScramHash::Sha256, "pencil", &salt, 4096).unwrap();
    let db = Db::default().with_keys("user", keys);
    let client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    let server_first =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    let server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    let mut s = start(Mechanism::ScramSha256).with_server_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    assert_eq!(
        challenge(s.step(client_first.as_bytes(), &db)),
        server_first.as_bytes()
    );
    assert_eq!(
        s.step(client_final.as_bytes(), &db),
        Step::Success {
            username: "user".into(),
            additional_data: server_final.into()
        }
    );

    let mut c = ScramClient::new(ScramHash::Sha256, "user", "pencil", None)
        .unwrap()
        .with_nonce("rOprNGfwEbeRWgbNEkqO");
    assert_eq!(c.first(), client_first.as_bytes());
    assert_eq!(
        c.final_(server_first.as_bytes()).unwrap(),
        client_final.as_bytes()
    );
    assert!(c.verify(server_final.as_bytes()));
}

#[test]
fn scram_round_trips() {
    let db = Db::default().with_account("juliet", "s3cr3t pässword");
    let cb = ChannelBinding::tls_exporter(vec![7; 32]);
    for hash in [ScramHash::Sha1, ScramHash::Sha256] {
        for with_cb in [false, true] {
            let cb = with_cb.then(|| cb.clone());
            let mut c = ScramClient::new(hash, "Juliet", "s3cr3t pässword", cb.clone()).unwrap();
            let mech = c.mechanism();
            assert_eq!(mech.is_plus(), with_cb);
            assert_eq!(mech.scram_hash(), Some(hash));
            let step = scram_login(mech, cb, &mut c, &db);
            let Step::Success {
                username,
                additional_data,
            } = step
            else {
                panic!("{mech}: {step:?}");
            };
            assert_eq!(username, "juliet");
            assert!(c.verify(&additional_data), "{mech}");

            let mut wrong = ScramClient::new(hash, "juliet", "wrong", None).unwrap();
            let mut s = start(hash_mech(hash));
            let first = challenge(s.step(&wrong.first(), &db));
            let fin = wrong.final_(&first).unwrap();
            assert_eq!(failure(s.step(&fin, &db)), SaslFailure::NotAuthorized);
            assert_eq!(s.failure_detail(), Some("wrong password"));
        }
    }
}

fn hash_mech(hash: ScramHash) -> Mechanism {
    match hash {
        ScramHash::Sha1 => Mechanism::ScramSha1,
        ScramHash::Sha256 => Mechanism::ScramSha256,
    }
}

#[test]
fn scram_without_initial_response() {
    let db = Db::default().with_account("juliet", "pw");
    let mut c = ScramClient::new(ScramHash::Sha256, "juliet", "pw", None).unwrap();
    let mut s = start(Mechanism::ScramSha256);
    assert_eq!(s.step(b"", &db), Step::Challenge(Vec::new()));
    let first = challenge(s.step(&c.first(), &db));
    let fin = c.final_(&first).unwrap();
    assert!(matches!(s.step(&fin, &db), Step::Success { .. }));
    // Only one empty message is tolerated.
    let mut s = start(Mechanism::ScramSha256);
    assert_eq!(s.step(b"", &db), Step::Challenge(Vec::new()));
    assert_eq!(failure(s.step(b"", &db)), SaslFailure::MalformedRequest);
}

#[test]
fn scram_escaped_usernames() {
    let db = Db::default().with_account("a,b=c", "pw");
    let mut c = ScramClient::new(ScramHash::Sha1, "a,b=c", "pw", None).unwrap();
    assert!(
        String::from_utf8(c.first())
            .unwrap()
            .contains("n=a=2Cb=3Dc,")
    );
    let step = scram_login(Mechanism::ScramSha1, None, &mut c, &db);
    assert!(
        matches!(&step, Step::Success { username, .. } if username == "a,b=c"),
        "{step:?}"
    );
    let mut s = start(Mechanism::ScramSha1);
    for bad in [
        "n,,n=a=2cb,r=abc",
        "n,,n=a=b,r=abc",
        "n,,n=a=,r=abc",
        "n,,n=,r=abc",
    ] {
        let mut s2 = start(Mechanism::ScramSha1);
        assert_eq!(
            failure(s2.step(bad.as_bytes(), &db)),
            SaslFailure::MalformedRequest,
            "{bad}"
        );
    }
    assert!(matches!(s.step(b"n,,n==3D,r=abc", &db), Step::Challenge(_)));
}

#[test]
fn scram_authzid() {
    let db = Db::default().with_account("juliet", "pw");
    for (authzid, ok) in [
        ("juliet@example.com", true),
        ("Juliet@EXAMPLE.com.", true),
        ("romeo@example.com", false),
        ("juliet@example.net", false),
        ("juliet@example.com/balcony", false),
        ("example.com", false),
        ("not a jid@", false),
    ] {
        let mut c = ScramClient::new(ScramHash::Sha256, "juliet", "pw", None)
            .unwrap()
            .with_authzid(authzid);
        let step = scram_login(Mechanism::ScramSha256, None, &mut c, &db);
        if ok {
            assert!(matches!(step, Step::Success { .. }), "{authzid}: {step:?}");
        } else {
            assert_eq!(
                step,
                Step::Failure(SaslFailure::InvalidAuthzid),
                "{authzid}"
            );
        }
    }
}

#[test]
fn scram_channel_binding_rules() {
    let db = Db::default().with_account("juliet", "pw");
    let cb = ChannelBinding::tls_exporter(vec![1; 32]);
    let other = ChannelBinding::tls_exporter(vec![2; 32]);

    // Client binds to a different TLS session (MITM).
    let mut c = ScramClient::new(ScramHash::Sha256, "juliet", "pw", Some(other)).unwrap();
    let step = scram_login(Mechanism::ScramSha256Plus, Some(cb.clone()), &mut c, &db);
    assert_eq!(step, Step::Failure(SaslFailure::NotAuthorized));

    // Unsupported binding type.
    let unique = ChannelBinding {
        kind: "tls-unique",
        data: vec![1; 12],
    };
    let mut c = ScramClient::new(ScramHash::Sha256, "juliet", "pw", Some(unique)).unwrap();
    let step = scram_login(Mechanism::ScramSha256Plus, Some(cb.clone()), &mut c, &db);
    assert_eq!(step, Step::Failure(SaslFailure::MalformedRequest));

    // -PLUS without data on our side cannot work at all.
    let mut s = SaslSession::start(Mechanism::ScramSha1Plus, None, false);
    assert_eq!(
        failure(s.step(b"p=tls-exporter,,n=juliet,r=abc", &db)),
        SaslFailure::InvalidMechanism
    );

    let first_fails = |mech, cb: Option<ChannelBinding>, plus_offered, msg: &str| {
        let mut s = SaslSession::start(mech, cb, plus_offered);
        failure(s.step(msg.as_bytes(), &db))
    };
    // "n" or "y" on a -PLUS mechanism.
    for flag in ["n", "y"] {
        assert_eq!(
            first_fails(
                Mechanism::ScramSha256Plus,
                Some(cb.clone()),
                true,
                &format!("{flag},,n=juliet,r=abc")
            ),
            SaslFailure::MalformedRequest
        );
    }
    // "p=" on a non-PLUS mechanism.
    assert_eq!(
        first_fails(
            Mechanism::ScramSha256,
            Some(cb.clone()),
            true,
            "p=tls-exporter,,n=juliet,r=abc"
        ),
        SaslFailure::MalformedRequest
    );
    // "y" although we offered -PLUS: downgrade.
    assert_eq!(
        first_fails(
            Mechanism::ScramSha256,
            Some(cb.clone()),
            true,
            "y,,n=juliet,r=abc"
        ),
        SaslFailure::NotAuthorized
    );
    // Malformed cb-name.
    assert_eq!(
        first_fails(
            Mechanism::ScramSha256Plus,
            Some(cb.clone()),
            true,
            "p=,,n=juliet,r=abc"
        ),
        SaslFailure::MalformedRequest
    );

    // "y" is fine when -PLUS was not offered, and then c= must be "y,,".
    let creds = db.accounts["juliet"].keys(ScramHash::Sha256).unwrap();
    let run_y = |c_attr: &str| {
        let mut s = start(Mechanism::ScramSha256);
        let first = challenge(s.step(b"y,,n=juliet,r=abc", &db));
        let first = String::from_utf8(first).unwrap();
        let nonce = first.split(',').next().unwrap().strip_prefix("r=").unwrap();
        let msg = manual_final(creds, "n=juliet,r=abc", &first, c_attr, nonce, "pw");
        s.step(msg.as_bytes(), &db)
    };
    assert!(matches!(run_y("eSws"), Step::Success { .. }));
    assert_eq!(run_y("biws"), Step::Failure(SaslFailure::NotAuthorized));

    // With -PLUS: c= must carry the gs2 header and the exporter data.
    let run_plus = |c_attr: &str| {
        let mut s = SaslSession::start(Mechanism::ScramSha256Plus, Some(cb.clone()), true);
        let first = challenge(s.step(b"p=tls-exporter,,n=juliet,r=abc", &db));
        let first = String::from_utf8(first).unwrap();
        let nonce = first.split(',').next().unwrap().strip_prefix("r=").unwrap();
        let msg = manual_final(creds, "n=juliet,r=abc", &first, c_attr, nonce, "pw");
        s.step(msg.as_bytes(), &db)
    };
    let mut good = b"p=tls-exporter,,".to_vec();
    good.extend_from_slice(&cb.data);
    assert!(matches!(
        run_plus(&base64::encode(&good)),
        Step::Success { .. }
    ));
    assert_eq!(
        run_plus(&base64::encode(b"p=tls-exporter,,")),
        Step::Failure(SaslFailure::NotAuthorized)
    );
    assert_eq!(run_plus("biws"), Step::Failure(SaslFailure::NotAuthorized));
}

/// Builds a client-final message by hand, for cases our client cannot
/// produce.
fn manual_final(
    keys: &ScramKeys,
    first_bare: &str,
    server_first: &str,
    c_attr: &str,
    nonce: &str,
    password: &str,
) -> String {
    use super::credentials::{client_key, h, hmac, iterations, salted_password, xor};
    let hash = keys.hash;
    let without_proof = format!("c={c_attr},r={nonce}");
    let auth = format!("{first_bare},{server_first},{without_proof}");
    let salted = salted_password(
        hash,
        password,
        &keys.salt,
        iterations(keys.iterations).unwrap(),
    );
    let ck = client_key(hash, &salted);
    let proof = xor(&ck, &hmac(hash, &h(hash, &ck), auth.as_bytes()));
    format!("{without_proof},p={}", base64::encode(&proof))
}

#[test]
fn scram_unknown_user_gets_consistent_fake_challenge() {
    let db = Db {
        iterations: Some(10_000),
        ..Db::default()
    }
    .with_account("juliet", "pw");
    let server_first = |user: &str| {
        let mut s = start(Mechanism::ScramSha256);
        let msg = format!("n,,n={user},r=abc");
        let first = String::from_utf8(challenge(s.step(msg.as_bytes(), &db))).unwrap();
        let mut parts = first.split(',').skip(1);
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let (salt_a, iter_a) = server_first("nobody");
    let (salt_b, iter_b) = server_first("nobody");
    let (salt_c, _) = server_first("somebody");
    assert_eq!(salt_a, salt_b);
    assert_ne!(salt_a, salt_c);
    assert_eq!(iter_a, "i=10000");
    assert_eq!(iter_b, iter_a);
    assert_eq!(
        base64::decode(salt_a.strip_prefix("s=").unwrap())
            .unwrap()
            .len(),
        SALT_LEN
    );
    // Same salt regardless of case, as the username is prepared first.
    assert_eq!(server_first("NoBody").0, salt_a);

    let mut c = ScramClient::new(ScramHash::Sha256, "nobody", "pw", None).unwrap();
    let step = scram_login(Mechanism::ScramSha256, None, &mut c, &db);
    assert_eq!(step, Step::Failure(SaslFailure::NotAuthorized));
    let mut s = start(Mechanism::ScramSha256);
    let first = challenge(s.step(&c_first("nobody"), &db));
    let mut c = ScramClient::new(ScramHash::Sha256, "nobody", "pw", None)
        .unwrap()
        .with_nonce("abc");
    let fin = c.final_(&first).unwrap();
    assert_eq!(failure(s.step(&fin, &db)), SaslFailure::NotAuthorized);
    assert_eq!(s.failure_detail(), Some("unknown user"));

    // Unusable stored keys behave like an unknown user.
    let broken = ScramKeys {
        hash: ScramHash::Sha1,
        salt: vec![1],
        iterations: 4096,
        stored_key: vec![0; 3],
        server_key: vec![0; 20],
    };
    let db = Db::default().with_keys("broken", broken);
    let mut c = ScramClient::new(ScramHash::Sha1, "broken", "pw", None).unwrap();
    assert_eq!(
        scram_login(Mechanism::ScramSha1, None, &mut c, &db),
        Step::Failure(SaslFailure::NotAuthorized)
    );
}

fn c_first(user: &str) -> Vec<u8> {
    format!("n,,n={user},r=abc").into_bytes()
}

#[test]
fn scram_malformed_first_messages() {
    let db = Db::default().with_account("juliet", "pw");
    for bad in [
        "",
        "n",
        "n,",
        "n,,",
        "x,,n=juliet,r=abc",
        "n,a,n=juliet,r=abc",
        "n,b=juliet,n=juliet,r=abc",
        "n,,r=abc,n=juliet",
        "n,,n=juliet",
        "n,,n=juliet,r=",
        "n,,n=juliet,r=a b",
        "n,,n=juliet,r=abc,",
        "n,,n=juliet,r=abc,1=x",
        "n,,n=juliet,r=abc,x",
        "n,,m=ext,n=juliet,r=abc",
        "n,,n=jul\0iet,r=abc",
        "n,,n=juliet,r=ab\u{e9}",
        " n,,n=juliet,r=abc",
    ] {
        let mut s = start(Mechanism::ScramSha1);
        // An empty first message only asks for the real one.
        if bad.is_empty() {
            s.step(b"", &db);
        }
        assert_eq!(
            failure(s.step(bad.as_bytes(), &db)),
            SaslFailure::MalformedRequest,
            "{bad:?}"
        );
        assert!(s.is_finished());
    }
    let mut s = start(Mechanism::ScramSha1);
    assert_eq!(
        failure(s.step(b"n,,n=\xff,r=abc", &db)),
        SaslFailure::MalformedRequest
    );
    // Extensions are ignored.
    let mut s = start(Mechanism::ScramSha1);
    assert!(matches!(
        s.step(b"n,,n=juliet,r=abc,x=1,y=", &db),
        Step::Challenge(_)
    ));
    // Size limit.
    let mut s = start(Mechanism::ScramSha1);
    let long = format!("n,,n=juliet,r={}", "a".repeat(MAX_INPUT_LEN));
    assert_eq!(
        failure(s.step(long.as_bytes(), &db)),
        SaslFailure::MalformedRequest
    );
}

#[test]
fn scram_malformed_final_messages() {
    let db = Db::default().with_account("juliet", "pw");
    let mut c = ScramClient::new(ScramHash::Sha1, "juliet", "pw", None)
        .unwrap()
        .with_nonce("abc");
    let mut probe = start(Mechanism::ScramSha1).with_server_nonce("xyz");
    let first = challenge(probe.step(&c.first(), &db));
    let good = String::from_utf8(c.final_(&first).unwrap()).unwrap();
    assert!(good.starts_with("c=biws,r=abcxyz,p="));
    let proof = good.rsplit_once(",p=").unwrap().1.to_owned();
    let cases: Vec<(String, SaslFailure)> = vec![
        (String::new(), SaslFailure::MalformedRequest),
        ("c=biws,r=abcxyz".into(), SaslFailure::MalformedRequest),
        (
            format!("r=abcxyz,c=biws,p={proof}"),
            SaslFailure::MalformedRequest,
        ),
        (format!("c=biws,p={proof}"), SaslFailure::MalformedRequest),
        (
            format!("c=biws,r=abcxyz,p={proof},x=1"),
            SaslFailure::MalformedRequest,
        ),
        (
            format!("c=biws,r=abcxyz,p={proof}="),
            SaslFailure::MalformedRequest,
        ),
        (
            "c=biws,r=abcxyz,p=AAAA".into(),
            SaslFailure::MalformedRequest,
        ),
        (
            format!("c=biw,r=abcxyz,p={proof}"),
            SaslFailure::MalformedRequest,
        ),
        (
            format!("c=biws,r=abcxyz,1,p={proof}"),
            SaslFailure::MalformedRequest,
        ),
        (
            format!("c=biws,r=abcxyZ,p={proof}"),
            SaslFailure::NotAuthorized,
        ),
        (
            format!("c=biws,r=abc,p={proof}"),
            SaslFailure::NotAuthorized,
        ),
        (
            format!("c=eSws,r=abcxyz,p={proof}"),
            SaslFailure::NotAuthorized,
        ),
        (
            format!("c=biws,r=abcxyz,x=1,p={proof}"),
            SaslFailure::NotAuthorized,
        ),
    ];
    for (msg, expected) in cases {
        let mut s = start(Mechanism::ScramSha1).with_server_nonce("xyz");
        challenge(s.step(&c.first(), &db));
        assert_eq!(failure(s.step(msg.as_bytes(), &db)), expected, "{msg:?}");
        // Nothing is accepted afterwards.
        assert_eq!(
            failure(s.step(good.as_bytes(), &db)),
            SaslFailure::MalformedRequest
        );
    }
    let mut s = start(Mechanism::ScramSha1).with_server_nonce("xyz");
    challenge(s.step(&c.first(), &db));
    assert!(matches!(s.step(good.as_bytes(), &db), Step::Success { .. }));
    assert_eq!(
        failure(s.step(good.as_bytes(), &db)),
        SaslFailure::MalformedRequest
    );
}

#[test]
fn plain() {
    let db = Db::default().with_account("juliet", "r0m30 ♥");
    let run = |msg: &[u8]| start(Mechanism::Plain).step(msg, &db);
    let success = Step::Success {
        username: "juliet".into(),
        additional_data: Vec::new(),
    };
    assert_eq!(run(b"\0juliet\0r0m30 \xe2\x99\xa5"), success);
    assert_eq!(run("\0JULIET\0r0m30\u{A0}♥".as_bytes()), success);
    assert_eq!(
        run(b"\0juliet\0wrong"),
        Step::Failure(SaslFailure::NotAuthorized)
    );
    assert_eq!(
        run(b"\0romeo\0r0m30"),
        Step::Failure(SaslFailure::NotAuthorized)
    );
    assert_eq!(
        run(b"\0ju liet\0x"),
        Step::Failure(SaslFailure::NotAuthorized)
    );
    let pw = "r0m30 ♥";
    for (authzid, expected) in [
        ("juliet@example.com", Ok(())),
        ("JULIET@example.com", Ok(())),
        ("romeo@example.com", Err(SaslFailure::InvalidAuthzid)),
        ("juliet@example.org", Err(SaslFailure::InvalidAuthzid)),
        ("juliet@example.com/x", Err(SaslFailure::InvalidAuthzid)),
        ("juliet", Err(SaslFailure::InvalidAuthzid)),
    ] {
        let step = run(format!("{authzid}\0juliet\0{pw}").as_bytes());
        match expected {
            Ok(()) => assert_eq!(step, success, "{authzid}"),
            Err(f) => assert_eq!(step, Step::Failure(f), "{authzid}"),
        }
    }
    for bad in [
        &b"juliet\0r0m30"[..],
        b"\0juliet",
        b"\0\0pw",
        b"\0juliet\0",
        b"\0juliet\0pw\0",
        b"\0jul\xffiet\0pw",
        b"\xff\0juliet\0pw",
        b"\0juliet\0\xff",
    ] {
        assert_eq!(
            run(bad),
            Step::Failure(SaslFailure::MalformedRequest),
            "{bad:?}"
        );
    }
    let mut s = start(Mechanism::Plain);
    assert_eq!(s.step(b"", &db), Step::Challenge(Vec::new()));
    assert_eq!(s.step(format!("\0juliet\0{pw}").as_bytes(), &db), success);
    assert!(s.is_finished());
    let mut s = start(Mechanism::Plain);
    let long = vec![b'a'; MAX_INPUT_LEN + 1];
    assert_eq!(failure(s.step(&long, &db)), SaslFailure::MalformedRequest);
    assert_eq!(s.failure_detail(), Some("message too long"));
}

#[test]
fn abort_and_debug() {
    let db = Db::default();
    let mut s = start(Mechanism::ScramSha256);
    challenge(s.step(b"n,,n=x,r=abc", &db));
    assert_eq!(s.abort(), Step::Failure(SaslFailure::Aborted));
    assert!(s.is_finished());
    assert_eq!(
        failure(s.step(b"c=biws", &db)),
        SaslFailure::MalformedRequest
    );
    assert!(format!("{s:?}").contains("ScramSha256"));
}

#[test]
fn mechanism_names_and_conditions() {
    for m in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(m.name()), Some(m));
    }
    assert_eq!(Mechanism::from_name("scram-sha-1"), None);
    assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
    let names = |cb, plain| -> Vec<&str> {
        Mechanism::advertised(cb, plain)
            .map(Mechanism::name)
            .collect()
    };
    assert_eq!(
        names(true, true),
        [
            "SCRAM-SHA-256-PLUS",
            "SCRAM-SHA-1-PLUS",
            "SCRAM-SHA-256",
            "SCRAM-SHA-1",
            "PLAIN"
        ]
    );
    assert_eq!(names(false, false), ["SCRAM-SHA-256", "SCRAM-SHA-1"]);
    assert_eq!(SaslFailure::NotAuthorized.condition(), "not-authorized");
    assert_eq!(
        SaslFailure::TemporaryAuthFailure.condition(),
        "temporary-auth-failure"
    );
    assert_eq!(
        SaslFailure::MechanismTooWeak.to_string(),
        "mechanism-too-weak"
    );
    assert_eq!(SaslFailure::InvalidAuthzid.condition(), "invalid-authzid");
}

#[test]
fn client_errors() {
    let mut c = ScramClient::new(ScramHash::Sha1, "user", "pencil", None)
        .unwrap()
        .with_nonce("abc");
    assert_eq!(
        c.final_(b"r=abd,s=QQ==,i=4096"),
        Err(SaslError::NonceMismatch)
    );
    assert_eq!(
        c.final_(b"r=abc,s=QQ==,i=4096"),
        Err(SaslError::NonceMismatch)
    );
    assert_eq!(
        c.final_(b"e=unknown-user"),
        Err(SaslError::ServerError("unknown-user".into()))
    );
    assert!(matches!(
        c.final_(b"r=abcd,s=,i=4096"),
        Err(SaslError::MalformedServerMessage(_))
    ));
    assert!(matches!(
        c.final_(b"m=x,r=abcd,s=QQ==,i=4096"),
        Err(SaslError::MalformedServerMessage(_))
    ));
    assert_eq!(
        c.final_(b"r=abcd,s=QQ==,i=0"),
        Err(SaslError::IterationsOutOfRange(0))
    );
    assert_eq!(
        c.final_(b"r=abcd,s=QQ==,i=4294967295"),
        Err(SaslError::IterationsOutOfRange(u32::MAX))
    );
    assert!(!c.verify(b"v=AAAA"));
    assert!(c.final_(b"r=abcd,s=QQ==,i=1").is_ok());
    assert_eq!(c.final_(b"r=abcd,s=QQ==,i=1"), Err(SaslError::InvalidState));
    assert_eq!(
        ScramClient::new(ScramHash::Sha1, "", "pw", None).err(),
        Some(SaslError::InvalidUsername)
    );
    assert_eq!(
        ScramClient::new(ScramHash::Sha1, "u", "", None).err(),
        Some(SaslError::EmptyPassword)
    );
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() % (max as u64 + 1)) as usize;
        // Biased towards the bytes that matter to the parsers.
        const INTERESTING: &[u8] = b",=\0nyp=acrsivm2C3D/+biws";
        (0..len)
            .map(|_| {
                let r = self.next();
                if r.is_multiple_of(3) {
                    INTERESTING[(r >> 8) as usize % INTERESTING.len()]
                } else {
                    (r >> 16) as u8
                }
            })
            .collect()
    }

    fn mutate(&mut self, msg: &[u8]) -> Vec<u8> {
        let mut m = msg.to_vec();
        for _ in 0..=self.next() % 3 {
            let r = self.next() as usize;
            match r % 4 {
                0 if !m.is_empty() => {
                    let i = (r >> 4) % m.len();
                    m.remove(i);
                }
                1 => {
                    let i = (r >> 4) % (m.len() + 1);
                    m.insert(i, (r >> 16) as u8);
                }
                2 if !m.is_empty() => {
                    let i = (r >> 4) % m.len();
                    m[i] = b",=\0"[(r >> 16) % 3];
                }
                _ => m.truncate((r >> 4) % (m.len() + 1)),
            }
        }
        m
    }
}

#[test]
fn fuzz_does_not_panic() {
    // One iteration keeps thousands of PBKDF2 runs fast in debug builds.
    let mut db = Db {
        iterations: Some(1),
        ..Db::default()
    };
    for hash in [ScramHash::Sha1, ScramHash::Sha256] {
        db = db.with_keys("juliet", ScramKeys::derive(hash, "pw", b"salt", 1).unwrap());
    }
    let cb = ChannelBinding::tls_exporter(vec![9; 32]);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let mech = Mechanism::ALL[round % Mechanism::ALL.len()];
        let cb_opt = (round % 7 != 0).then(|| cb.clone());
        let mut s = SaslSession::start(mech, cb_opt.clone(), round % 2 == 0);
        for _ in 0..3 {
            let input = rng.bytes(64);
            let _ = s.step(&input, &db);
        }
        // Mutations of a valid exchange reach deeper states.
        if let Some(hash) = mech.scram_hash() {
            let cb_client = mech.is_plus().then(|| cb.clone());
            let mut c = ScramClient::new(hash, "juliet", "pw", cb_client).unwrap();
            let mut s = SaslSession::start(mech, cb_opt, round % 2 == 0);
            let first = if round % 3 == 0 {
                rng.mutate(&c.first())
            } else {
                c.first()
            };
            if let Step::Challenge(server_first) = s.step(&first, &db) {
                if let Ok(fin) = c.final_(&server_first) {
                    let fin = rng.mutate(&fin);
                    let step = s.step(&fin, &db);
                    assert!(!text(&step).is_empty() || matches!(step, Step::Challenge(_)));
                }
                let _ = c.final_(&rng.mutate(&server_first));
                let _ = c.verify(&rng.bytes(40));
            }
        } else {
            let msg = rng.mutate(b"juliet@example.com\0juliet\0pw");
            let _ = start(Mechanism::Plain).step(&msg, &db);
        }
        let mut c = ScramClient::new(ScramHash::Sha1, "juliet", "pw", None).unwrap();
        let _ = c.final_(&rng.bytes(80));
    }
}

/// A lookup that does not know its host.
struct NoDomain(Db);

impl CredentialLookup for NoDomain {
    fn scram_keys(&self, username: &str, hash: ScramHash) -> Option<ScramKeys> {
        self.0.scram_keys(username, hash)
    }

    fn check_plain(&self, username: &str, password: &str) -> bool {
        self.0.check_plain(username, password)
    }
}

#[test]
fn authzid_without_known_domain_checks_localpart() {
    let db = NoDomain(Db::default().with_account("juliet", "pw"));
    let run = |msg: &[u8]| start(Mechanism::Plain).step(msg, &db);
    assert!(matches!(
        run(b"juliet@example.org\0juliet\0pw"),
        Step::Success { .. }
    ));
    assert_eq!(
        run(b"romeo@example.org\0juliet\0pw"),
        Step::Failure(SaslFailure::InvalidAuthzid)
    );
    assert_eq!(
        run(b"juliet@example.org/r\0juliet\0pw"),
        Step::Failure(SaslFailure::InvalidAuthzid)
    );
}

#[test]
fn session_can_move_to_a_blocking_thread() {
    fn is_send<T: Send + 'static>() {}
    is_send::<SaslSession>();
    is_send::<ScramClient>();
}
