//! Built-in ACME against Debian's `pebble` (the ACME test CA), all on
//! loopback: Perch obtains a certificate for example.test and its service
//! domains with the HTTP-01 challenge on its http listener, serves it on
//! the direct-TLS port, and renews it without dropping a connection.
//!
//! Pebble listens with a throwaway certificate made here (a CA of ours and
//! a leaf for 127.0.0.1), which Perch trusts through `[acme] ca_file`. It
//! resolves example.test through the test's own DNS server
//! (`-dnsserver`), which answers 127.0.0.1; Perch talks to pebble at
//! 127.0.0.1 directly, so no name reaches the machine's resolver. Its
//! certificates live 45 seconds, so renewal (two thirds into that
//! lifetime) happens within the test. Pebble's issuing root, regenerated
//! at each start, comes from its management port (`/roots/0`).

mod common;
#[path = "common/dns_server.rs"]
mod dns_server;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::interop::can_run;
use common::{Client, Transport, free_port, tcp_connect};
use dns_server::{DnsServer, Zone};
use perch::testing::{TempDir, TestOptions, TestServer, scaled};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const DOMAIN: &str = "example.test";
const NAMES: [&str; 4] = [
    "example.test",
    "conference.example.test",
    "pubsub.example.test",
    "upload.example.test",
];
/// Pebble's certificate lifetime in this test, in seconds.
const LIFETIME_SECS: u64 = 45;

/// Pebble, stopped when dropped; its log is kept for failure messages.
struct Pebble {
    child: Child,
    log: std::path::PathBuf,
}

impl Pebble {
    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pebble_missing() -> Option<String> {
    match Command::new("pebble")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => None,
        Err(e) => Some(format!("pebble could not be run: {e}")),
    }
}

/// A CA of the test's own and a leaf for 127.0.0.1 signed by it, as PEM:
/// (CA certificate, leaf certificate, leaf key).
fn throwaway_tls() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "perch acme test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

fn roots_from_pem(pem: &[u8]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.expect("PEM")).expect("a usable root");
    }
    roots
}

fn tls_client(roots: RootCertStore) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS connection to `addr` as `name` that verifies the server's chain
/// against `config`'s roots; `Err` while the server presents another one.
fn try_tls(
    addr: SocketAddr,
    name: &str,
    config: &Arc<ClientConfig>,
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let tcp = tcp_connect(addr);
    tcp.set_read_timeout(Some(common::timeout()))
        .expect("timeout");
    let server_name = ServerName::try_from(name.to_owned()).expect("name");
    let conn = ClientConnection::new(config.clone(), server_name).expect("client");
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(tls)
}

/// `GET https://127.0.0.1:PORT/path` from pebble's management port.
fn pebble_get(port: u16, path: &str, config: &Arc<ClientConfig>) -> Vec<u8> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut tls = try_tls(addr, "127.0.0.1", config).expect("pebble's management port");
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{path}: {text}");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    body.as_bytes().to_vec()
}

fn wait_for_port(port: u16, pebble: &Pebble) {
    let deadline = Instant::now() + scaled(Duration::from_secs(20));
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "pebble did not listen on {port}:\n{}",
            pebble.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_pebble(dir: &Path, dns: SocketAddr, http_port: u16) -> (Pebble, u16, u16) {
    let (ca, leaf, key) = throwaway_tls();
    std::fs::write(dir.join("pebble-ca.pem"), ca).expect("write");
    std::fs::write(dir.join("pebble-cert.pem"), leaf).expect("write");
    std::fs::write(dir.join("pebble-key.pem"), key).expect("write");
    let (acme_port, management_port) = (free_port(), free_port());
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.join("pebble-cert.pem"),
            "privateKey": dir.join("pebble-key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": LIFETIME_SECS,
        }
    });
    std::fs::write(dir.join("pebble.json"), config.to_string()).expect("write");
    let log = dir.join("pebble.log");
    let out = std::fs::File::create(&log).expect("log");
    let child = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .arg("-dnsserver")
        .arg(dns.to_string())
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("pebble starts");
    let pebble = Pebble { child, log };
    wait_for_port(acme_port, &pebble);
    wait_for_port(management_port, &pebble);
    (pebble, acme_port, management_port)
}

/// Waits until a new connection to `addr` as `name` verifies against
/// `config` and its leaf is not `old`; returns that leaf.
fn wait_for_new_leaf(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    old: Option<&[u8]>,
    limit: Duration,
    pebble: &Pebble,
) -> Vec<u8> {
    let deadline = Instant::now() + scaled(limit);
    loop {
        let last_error = match try_tls(addr, DOMAIN, config) {
            Ok(tls) => {
                let chain = tls.conn.peer_certificates().expect("a chain");
                let leaf = chain[0].to_vec();
                if Some(leaf.as_slice()) != old {
                    assert!(chain.len() >= 2, "the leaf comes with its intermediate");
                    return leaf;
                }
                "the same certificate as before".to_owned()
            }
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "no new ACME certificate on {addr} ({last_error}); pebble's log:\n{}",
            pebble.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore)]
fn certificates_are_issued_served_and_renewed() {
    if !can_run("acme", pebble_missing(), "apt-get install pebble") {
        return;
    }
    let dir = TempDir::new("acme-pebble");
    let zone = NAMES
        .iter()
        .fold(Zone::new(), |zone, name| zone.a(name, Ipv4Addr::LOCALHOST));
    let dns = DnsServer::start(zone);
    let http_port = free_port();
    let (pebble, acme_port, management_port) = start_pebble(dir.path(), dns.addr(), http_port);

    let extra = format!(
        "[[host]]\ndomain = \"{DOMAIN}\"\n\n\
         [[listener]]\nkind = \"http\"\naddress = \"127.0.0.1\"\nport = {http_port}\n\n\
         [acme]\nemail = \"admin@{DOMAIN}\"\ndirectory = \"https://127.0.0.1:{acme_port}/dir\"\n\
         ca_file = {:?}\nrenew_days = 30\n",
        dir.path().join("pebble-ca.pem")
    );
    let server = TestServer::start(TestOptions {
        accounts: vec![(format!("alice@{DOMAIN}"), "secret".into())],
        extra_config: extra.clone(),
        ..TestOptions::default()
    })
    .expect("server starts");
    let tls_addr = server.c2s_tls_addr().expect("c2s-tls");

    let ours = tls_client(roots_from_pem(
        &std::fs::read(dir.path().join("pebble-ca.pem")).expect("read"),
    ));
    let pebble_root = pebble_get(management_port, "/roots/0", &ours);
    let trusting_pebble = tls_client(roots_from_pem(&pebble_root));

    // Issued: a chain that verifies up to pebble's root, for the host and
    // every service name.
    let first = wait_for_new_leaf(
        tls_addr,
        &trusting_pebble,
        None,
        Duration::from_secs(60),
        &pebble,
    );
    for name in NAMES {
        let tls = try_tls(tls_addr, name, &trusting_pebble)
            .unwrap_or_else(|e| panic!("{name} is not covered: {e}"));
        drop(tls);
    }
    let data = server.data_dir().expect("data dir").to_path_buf();
    for file in ["acme/account.key", "acme/example.test.key"] {
        let mode = std::fs::metadata(data.join(file))
            .expect(file)
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let config = perch::config::Config::from_toml_str(
        &format!(
            "data_dir = {:?}\n{}\n{extra}",
            data,
            perch::testing::TEST_CONFIG
        ),
        "test",
    )
    .expect("config");
    let report = perch::check::check(&config);
    assert!(
        report.lines.iter().any(|l| l.starts_with(&format!(
            "  certificate: ACME from https://127.0.0.1:{acme_port}/dir for {}",
            NAMES.join(", ")
        )) && l.contains("certificates in chain, valid until")),
        "{report:?}"
    );

    // A client that stays connected across the renewal.
    let tls = try_tls(tls_addr, DOMAIN, &trusting_pebble).expect("connect");
    let mut alice = Client::over(Transport::Tls(Box::new(tls)));
    alice
        .try_login(DOMAIN, ("alice", "secret"), Some("stays"))
        .expect("login");

    // Renewed two thirds into the lifetime: new connections get the new
    // certificate; the open one goes on.
    let second = wait_for_new_leaf(
        tls_addr,
        &trusting_pebble,
        Some(&first),
        Duration::from_secs(LIFETIME_SECS + 30),
        &pebble,
    );
    assert_ne!(first, second);
    let pong = alice.ping("after-renewal");
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
    drop(pebble);
}
