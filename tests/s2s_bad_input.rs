//! What a misbehaving or missing peer gets from Perch's federation, over
//! real sockets: raw streams to the s2s listener (wrong namespace, an
//! unknown host, stanzas before authentication, an oversized stanza), a
//! remote server that accepts TCP and never answers, a remote domain that
//! DNS points at loopback; and the SRV path itself, with a DNS server of
//! the test's own. Each case leaves the server serving its users.

mod common;
#[path = "common/dns_server.rs"]
mod dns_server;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use dns_server::{DnsServer, Zone};
use perch::config::ListenerKind;
use perch::testing::{TestOptions, TestServer};

fn server(extra: &str) -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![("alice@a.test".into(), "pw".into())],
        extra_config: format!(
            "[[host]]\ndomain = \"a.test\"\n\
             [[listener]]\nkind = \"s2s\"\naddress = \"127.0.0.1\"\nport = 0\n\
             [s2s]\nconnect_timeout_secs = 3\n{extra}"
        ),
        ..TestOptions::default()
    })
    .expect("server starts")
}

fn alice(server: &TestServer) -> Client {
    let mut client = Client::connect(server.c2s_addr());
    client
        .try_login("a.test", ("alice", "pw"), Some("phone"))
        .unwrap_or_else(|e| panic!("login: {e}"));
    client
}

/// Sends `input` on a raw connection to the s2s listener and returns all
/// the server wrote until it closed (bounded).
fn raw_exchange(server: &TestServer, input: &[u8]) -> String {
    let addr = server
        .listener_addr(ListenerKind::S2s)
        .expect("an s2s listener");
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = tcp.write_all(input);
    let mut got = Vec::new();
    let deadline = Instant::now() + timeout();
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

const HEADER_NS: &str = "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'";

#[test]
fn raw_streams_get_the_rfc_stream_errors() {
    let server = server("");
    let wrong_ns = raw_exchange(
        &server,
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='a.test' from='evil.test' version='1.0'>",
    );
    assert!(wrong_ns.contains("<invalid-namespace "), "{wrong_ns}");
    let unknown = raw_exchange(
        &server,
        format!("<stream:stream {HEADER_NS} to='nobody.test' from='evil.test' version='1.0'>")
            .as_bytes(),
    );
    assert!(unknown.contains("<host-unknown "), "{unknown}");
    // Encryption is required: a stanza on the plaintext stream is refused.
    let early = raw_exchange(
        &server,
        format!(
            "<stream:stream {HEADER_NS} to='a.test' from='evil.test' version='1.0'>\
             <message from='mallory@evil.test' to='alice@a.test'><body>spoof</body></message>"
        )
        .as_bytes(),
    );
    assert!(
        early.contains("<not-authorized ") || early.contains("<policy-violation "),
        "{early}"
    );
    assert!(
        early.contains("<starttls "),
        "STARTTLS was offered: {early}"
    );
    // A stanza far over the limit is cut off while it arrives.
    let mut huge = format!(
        "<stream:stream {HEADER_NS} to='a.test' from='evil.test' version='1.0'><message><body>"
    )
    .into_bytes();
    huge.extend(std::iter::repeat_n(b'x', 400_000));
    let oversized = raw_exchange(&server, &huge);
    assert!(oversized.contains("<stream:error>"), "{oversized}");
    // The users never noticed.
    let mut alice = alice(&server);
    alice.ping("still-here");
}

#[test]
fn a_peer_that_never_answers_times_out() {
    // Accepts TCP, says nothing.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().unwrap().port();
    let server = server(&format!(
        "allow_private_addresses = true\n[[s2s.route]]\ndomain = \"mute.test\"\naddress = \"127.0.0.1:{port}\"\n"
    ));
    let mut alice = alice(&server);
    alice.send("<message to='x@mute.test' id='m1'><body>hello?</body></message>");
    let error = alice.element_matching("the bounce", |el| el.attr("id") == Some("m1"));
    assert_eq!(error.attr("type"), Some("error"));
    assert!(
        alice.transcript().contains("remote-server-timeout"),
        "{}",
        alice.transcript()
    );
    drop(silent);
}

#[test]
fn a_remote_domain_pointing_at_loopback_is_refused() {
    let dns = DnsServer::start(
        Zone::new()
            .srv(
                "_xmpp-server._tcp.inside.test",
                0,
                5,
                free_port(),
                "inside.test",
            )
            .a("inside.test", Ipv4Addr::LOCALHOST),
    );
    let server = server(&format!("dns_server = \"{}\"\n", dns.addr()));
    let mut alice = alice(&server);
    alice.send("<message to='x@inside.test' id='m2'><body>hi</body></message>");
    let error = alice.element_matching("the bounce", |el| el.attr("id") == Some("m2"));
    assert_eq!(error.attr("type"), Some("error"));
    let transcript = alice.transcript();
    assert!(
        transcript.contains("remote-server-not-found"),
        "{transcript}"
    );
    assert!(transcript.contains("private addresses"), "{transcript}");
}

#[test]
fn two_servers_find_each_other_through_srv_records() {
    let (pa, pb) = (free_port(), free_port());
    let dns = DnsServer::start(
        Zone::new()
            .srv("_xmpp-server._tcp.a.test", 0, 5, pa, "a.test")
            .srv("_xmpp-server._tcp.b.test", 0, 5, pb, "xmpp.b.test")
            .a("a.test", Ipv4Addr::LOCALHOST)
            .a("xmpp.b.test", Ipv4Addr::LOCALHOST),
    );
    let start = |domain: &str, port: u16| {
        TestServer::start(TestOptions {
            accounts: vec![(format!("alice@{domain}"), "pw".into())],
            extra_config: format!(
                "[[host]]\ndomain = \"{domain}\"\n\
                 [[listener]]\nkind = \"s2s\"\naddress = \"127.0.0.1\"\nport = {port}\n\
                 [s2s]\nallow_private_addresses = true\ndns_server = \"{}\"\n",
                dns.addr()
            ),
            ..TestOptions::default()
        })
        .expect("server starts")
    };
    let a = start("a.test", pa);
    let b = start("b.test", pb);
    let mut on_a = Client::connect(a.c2s_addr());
    on_a.try_login("a.test", ("alice", "pw"), Some("r"))
        .unwrap();
    let mut on_b = Client::connect(b.c2s_addr());
    on_b.try_login("b.test", ("alice", "pw"), Some("r"))
        .unwrap();
    on_b.send("<presence/>");
    on_b.element_matching("the presence echo", |el| el.name == "presence");
    on_a.send("<message to='alice@b.test' type='chat'><body>found you</body></message>");
    let got = on_b.element_matching("the message", |el| el.name == "message");
    assert_eq!(got.attr("from"), Some("alice@a.test/r"));
    assert!(dns.udp_queries() > 0, "the SRV path was used");
}
