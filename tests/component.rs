//! External components (XEP-0114) over a real socket: the handshake, a
//! wrong secret, an unknown domain, a second connection for the same
//! domain, and stanzas both ways between a component and a client.

mod common;

use common::*;
use perch::config::ListenerKind;
use perch::stream::component::expected_handshake;
use perch::testing::{TestOptions, TestServer};

const SECRET: &str = "component-secret-1";

fn server() -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![("alice@localhost".into(), "password".into())],
        extra_config: format!(
            // TEST_CONFIG ends in its [c2s] table: arrays of tables follow.
            "[[listener]]\nkind = \"component\"\naddress = \"127.0.0.1\"\nport = 0\n\
             [[component]]\ndomain = \"gw.localhost\"\nsecret = \"{SECRET}\"\nname = \"Gateway\"\n"
        ),
        ..TestOptions::default()
    })
    .expect("server starts")
}

/// Opens a component stream for `domain`; returns the client and the
/// stream id the server gave.
fn open_component(server: &TestServer, domain: &str) -> (Client, String) {
    let addr = server
        .listener_addr(ListenerKind::Component)
        .expect("a component listener");
    let mut c = Client::connect(addr);
    c.send(&format!(
        "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
    ));
    let header = c.header();
    (c, header.id.unwrap_or_default())
}

fn connect_component(server: &TestServer) -> Client {
    let (mut c, id) = open_component(server, "gw.localhost");
    c.send(&format!(
        "<handshake>{}</handshake>",
        expected_handshake(&id, SECRET)
    ));
    let answer = c.element();
    assert_eq!(answer.name, "handshake", "{}", c.transcript());
    c
}

fn stream_error(c: &mut Client) -> String {
    let el = c.element();
    assert_eq!(el.name, "error", "{}", c.transcript());
    el.first_child()
        .map(|e| e.name.to_string())
        .unwrap_or_default()
}

#[test]
fn a_component_and_a_client_exchange_stanzas() {
    let server = server();
    let mut gw = connect_component(&server);
    let mut alice = login(&server, ("alice", "password"), Some("phone"));

    // Client → component: routed by the component's domain.
    alice.send("<message to='bot@gw.localhost' id='m1'><body>hello gateway</body></message>");
    let got = gw.element();
    assert_eq!(got.name, "message", "{}", gw.transcript());
    assert_eq!(got.attr("from"), Some("alice@localhost/phone"));
    assert_eq!(got.attr("to"), Some("bot@gw.localhost"));
    assert_eq!(
        got.get_child("body", "jabber:component:accept")
            .map(|b| b.text())
            .as_deref(),
        Some("hello gateway")
    );

    // Component → client.
    gw.send("<message from='bot@gw.localhost' to='alice@localhost/phone' id='m2'><body>hi alice</body></message>");
    let reply = alice.element_matching("the gateway's message", |el| el.name == "message");
    assert_eq!(reply.attr("from"), Some("bot@gw.localhost"));
    assert_eq!(
        reply
            .get_child("body", NS_CLIENT)
            .map(|b| b.text())
            .as_deref(),
        Some("hi alice")
    );

    // An iq from the component to the server is answered to the component.
    gw.send("<iq type='get' from='gw.localhost' to='localhost' id='v1'><query xmlns='jabber:iq:version'/></iq>");
    let answer = gw.element();
    assert_eq!(answer.attr("type"), Some("result"), "{}", gw.transcript());
    assert_eq!(answer.attr("id"), Some("v1"));
    assert_eq!(answer.attr("to"), Some("gw.localhost"));

    // The host lists the component among its services.
    let items = alice.iq("<iq type='get' to='localhost' id='d1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
    let listed = items
        .first_child()
        .map(|q| {
            q.children()
                .any(|i| i.attr("jid") == Some("gw.localhost") && i.attr("name") == Some("Gateway"))
        })
        .unwrap_or(false);
    assert!(listed, "{}", alice.transcript());
}

#[test]
fn a_disconnected_component_is_unavailable() {
    let server = server();
    let mut alice = login(&server, ("alice", "password"), Some("phone"));
    alice.send("<iq type='get' to='gw.localhost' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    let error = alice.element_matching("the error", |el| el.attr("id") == Some("p1"));
    assert_eq!(error.attr("type"), Some("error"));
    assert!(
        alice.transcript().contains("service-unavailable"),
        "{}",
        alice.transcript()
    );
}

#[test]
fn a_wrong_secret_is_not_authorized() {
    let server = server();
    let (mut c, id) = open_component(&server, "gw.localhost");
    c.send(&format!(
        "<handshake>{}</handshake>",
        expected_handshake(&id, "wrong-secret-123")
    ));
    assert_eq!(stream_error(&mut c), "not-authorized");
    // The domain is still free for the right secret.
    connect_component(&server);
}

#[test]
fn an_unknown_domain_is_host_unknown() {
    let server = server();
    let (mut c, _) = open_component(&server, "other.localhost");
    assert_eq!(stream_error(&mut c), "host-unknown");
}

#[test]
fn a_second_connection_for_a_domain_is_a_conflict() {
    let server = server();
    let mut first = connect_component(&server);
    let (mut second, id) = open_component(&server, "gw.localhost");
    second.send(&format!(
        "<handshake>{}</handshake>",
        expected_handshake(&id, SECRET)
    ));
    assert_eq!(stream_error(&mut second), "conflict");
    // The first still works.
    first.send("<iq type='get' from='gw.localhost' to='localhost' id='v2'><query xmlns='jabber:iq:version'/></iq>");
    assert_eq!(first.element().attr("type"), Some("result"));
}

#[test]
fn spoofed_from_closes_the_stream() {
    let server = server();
    let mut gw = connect_component(&server);
    gw.send("<message from='alice@localhost' to='alice@localhost'><body>spoof</body></message>");
    assert_eq!(stream_error(&mut gw), "invalid-from");
}
