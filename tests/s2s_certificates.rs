//! Federation with certificates from a local test CA (`[s2s] ca_file`):
//! two Perch servers with CA-signed certificates authenticate each other
//! with SASL EXTERNAL (XEP-0178) instead of dialback; with `secure_auth`,
//! a peer with only its self-signed certificate is refused, and its
//! stanzas are returned with an error.

mod common;

use std::path::Path;

use common::*;
use perch::testing::{TempDir, TestOptions, TestServer};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A test CA that signs a certificate per domain into `dir`.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "Perch test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a key");
        let cert = params.self_signed(&key).expect("the CA");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes `DOMAIN.crt` and `DOMAIN.key` (the domain and its MUC
    /// service as DNS-IDs); returns the TOML lines naming them.
    fn issue(&self, dir: &Path, domain: &str) -> String {
        self.issue_naming(dir, domain, domain)
    }

    /// A certificate for `named`, in the files of `domain`.
    fn issue_naming(&self, dir: &Path, domain: &str, named: &str) -> String {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, named);
        params.subject_alt_names = vec![
            SanType::DnsName(named.try_into().expect("a DNS name")),
            SanType::DnsName(
                format!("conference.{named}")
                    .try_into()
                    .expect("a DNS name"),
            ),
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("a leaf");
        let (crt, key_file) = (
            dir.join(format!("{domain}.crt")),
            dir.join(format!("{domain}.key")),
        );
        std::fs::write(&crt, format!("{}{}", cert.pem(), self.pem)).expect("write the chain");
        std::fs::write(&key_file, key.serialize_pem()).expect("write the key");
        format!(
            "certificate = \"{}\"\nkey = \"{}\"\n",
            crt.display(),
            key_file.display()
        )
    }
}

fn server(
    domain: &str,
    tls: &str,
    s2s_port: u16,
    peer: &str,
    peer_port: u16,
    s2s: &str,
) -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![(format!("alice@{domain}"), "pw".into())],
        extra_config: format!(
            "[[host]]\ndomain = \"{domain}\"\n{tls}\
             [[listener]]\nkind = \"s2s\"\naddress = \"127.0.0.1\"\nport = {s2s_port}\n\
             [s2s]\nallow_private_addresses = true\nconnect_timeout_secs = 5\n{s2s}\
             [[s2s.route]]\ndomain = \"{peer}\"\naddress = \"127.0.0.1:{peer_port}\"\n"
        ),
        ..TestOptions::default()
    })
    .expect("server starts")
}

fn login_available(server: &TestServer, domain: &str) -> Client {
    available_at(server.c2s_addr(), domain, ("alice", "pw"), "r")
}

fn listed(server: &TestServer) -> String {
    perch::net::admin::request(
        server.data_dir().expect("a data dir"),
        &perch::admin::Command::S2sList,
    )
    .expect("the admin socket answers")
    .unwrap_or_default()
    .join("\n")
}

#[test]
fn ca_signed_certificates_authenticate_with_sasl_external() {
    let dir = TempDir::new("s2s-ca");
    let ca = TestCa::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write the CA");
    let trust = format!("ca_file = \"{}\"\n", ca_file.display());
    let (pa, pb) = (free_port(), free_port());
    let a = server(
        "a.test",
        &ca.issue(dir.path(), "a.test"),
        pa,
        "b.test",
        pb,
        &trust,
    );
    let b = server(
        "b.test",
        &ca.issue(dir.path(), "b.test"),
        pb,
        "a.test",
        pa,
        &trust,
    );
    let mut on_a = login_available(&a, "a.test");
    let mut on_b = login_available(&b, "b.test");
    on_a.send("<message to='alice@b.test' type='chat'><body>signed</body></message>");
    let got = on_b.element_matching("the message", |el| el.name == "message");
    assert_eq!(got.attr("from"), Some("alice@a.test/r"));
    let text = listed(&a);
    assert!(text.contains("out a.test → b.test certificate"), "{text}");
    let text = listed(&b);
    assert!(text.contains("in  a.test → b.test certificate"), "{text}");
    drop(on_a);
}

#[test]
fn secure_auth_refuses_a_self_signed_peer() {
    let dir = TempDir::new("s2s-ca");
    let ca = TestCa::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write the CA");
    let (pa, pb) = (free_port(), free_port());
    // a.test has only its self-signed certificate; b.test insists.
    let a = server("a.test", "", pa, "b.test", pb, "");
    let b = server(
        "b.test",
        &ca.issue(dir.path(), "b.test"),
        pb,
        "a.test",
        pa,
        &format!("secure_auth = true\nca_file = \"{}\"\n", ca_file.display()),
    );
    let mut on_a = login_available(&a, "a.test");
    on_a.send(
        "<message to='alice@b.test' id='refused' type='chat'><body>let me in</body></message>",
    );
    let error = on_a.element_matching("the bounce", |el| el.attr("id") == Some("refused"));
    assert_eq!(error.attr("type"), Some("error"), "{error}");
    let text = listed(&b);
    assert!(!text.contains("a.test → b.test certificate"), "{text}");
    assert!(!text.contains("a.test → b.test dialback"), "{text}");
}

#[test]
fn secure_auth_refuses_a_certificate_for_another_name() {
    let dir = TempDir::new("s2s-ca");
    let ca = TestCa::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write the CA");
    let trust = format!("ca_file = \"{}\"\n", ca_file.display());
    let (pa, pb) = (free_port(), free_port());
    // a.test presents a CA-signed certificate, but for other.test.
    let wrong = format!(
        "{}allow_mismatched_certificate = true\n",
        ca.issue_naming(dir.path(), "a.test", "other.test")
    );
    let a = server("a.test", &wrong, pa, "b.test", pb, &trust);
    let b = server(
        "b.test",
        &ca.issue(dir.path(), "b.test"),
        pb,
        "a.test",
        pa,
        &format!("secure_auth = true\n{trust}"),
    );
    let mut on_a = login_available(&a, "a.test");
    on_a.send("<message to='alice@b.test' id='named' type='chat'><body>it is me</body></message>");
    let error = on_a.element_matching("the bounce", |el| el.attr("id") == Some("named"));
    assert_eq!(error.attr("type"), Some("error"), "{error}");
    let text = listed(&b);
    assert!(!text.contains("a.test → b.test"), "{text}");
}
