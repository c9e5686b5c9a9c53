//! Black-box tests of client-to-server streams (RFC 6120, RFC 6121) against
//! an in-process server: stream set-up, STARTTLS and direct TLS, SASL (PLAIN,
//! SCRAM with and without `tls-exporter` channel binding), resource binding,
//! stanza errors, routing, the server's own iqs, the close handshake, the
//! authentication timeout and robustness against garbage. Stream errors
//! (RFC 6120 §4.9.3) are a table in `tests/hostile_input/xml.rs`.
//!
//! The client is the shared one in `tests/common`; how fast passwords may
//! be guessed is tested in `tests/login_security.rs`. The submodules are
//! the topics; this file holds the accounts, the servers and the imports
//! they share.

#[path = "../common/mod.rs"]
mod common;
mod connections;
mod login;
mod stanzas;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use perch::sasl::client::ScramClient;
use perch::sasl::{ScramHash, base64};
use perch::testing::{TEST_CONFIG, TestOptions, TestServer};
use perch::xml::Element;
use rustls::ProtocolVersion;

/// `max_auth_failures` in `net::connection`.
const MAX_AUTH_FAILURES: usize = 5;

const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");

// ---------------------------------------------------------------------------
// Servers.

fn server() -> TestServer {
    server_with("")
}

fn server_with(extra_config: &str) -> TestServer {
    let accounts = [ALICE, BOB]
        .iter()
        .map(|(user, password)| (format!("{user}@localhost"), password.to_string()))
        .collect();
    TestServer::start(TestOptions {
        accounts,
        extra_config: extra_config.to_string(),
        ..TestOptions::default()
    })
    .expect("the test server starts")
}

/// Logs in with `scram` on an encrypted stream whose features are given,
/// checks the server signature and binds.
fn scram_login(client: &mut Client, features: &Element, mut scram: ScramClient) {
    let mechanism = scram.mechanism().name();
    assert!(
        mechanisms(features).iter().any(|m| m == mechanism),
        "{mechanism} is not offered: {features}"
    );
    match client.auth_scram(&mut scram) {
        (Some(_), Sasl::Success(server_final)) => assert!(
            scram.verify(&server_final),
            "the server signature does not verify: {:?}",
            String::from_utf8_lossy(&server_final)
        ),
        other => panic!("{mechanism} login failed: {other:?}"),
    }
    let features = client.restart();
    assert!(features.get_child("bind", NS_BIND).is_some(), "{features}");
    let jid = client.bind(Some("scram"));
    assert_eq!(jid, "alice@localhost/scram");
}
