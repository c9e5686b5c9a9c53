//! XMPP over WebSocket (RFC 7395) against an in-process server, over real
//! sockets: the upgrade, a login (`<open/>`, SASL PLAIN, a new `<open/>`
//! as the restart, binding), chat with a client on the TCP port, the
//! framing of everything the server sends (one standalone element per
//! text frame), stream management resumed over a new WebSocket, the
//! close handshake and pings.
//!
//! What a WebSocket client must not do is in `tests/http_bad_input.rs`.

mod common;

use common::websocket::{NS_FRAMING, WsClient};
use common::*;
use perch::testing::{TestOptions, TestServer};
use perch::xml::Element;
use soketto::base::OpCode;

const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");
const NS_SM: &str = "urn:xmpp:sm:3";

fn server() -> TestServer {
    TestServer::start(TestOptions {
        accounts: [ALICE, BOB]
            .iter()
            .map(|(user, password)| (format!("{user}@localhost"), password.to_string()))
            .collect(),
        // TEST_CONFIG ends in its [c2s] table.
        extra_config: "[http]\nrequest_timeout_secs = 5\n".into(),
        ..TestOptions::default()
    })
    .expect("the test server starts")
}

fn http(server: &TestServer) -> std::net::SocketAddr {
    server
        .http_addr()
        .expect("the test server has an HTTP listener")
}

/// The body of a message, or None for anything else.
fn body(el: &Element) -> Option<String> {
    (el.name == "message")
        .then(|| el.get_child("body", NS_CLIENT).map(|b| b.text()))
        .flatten()
}

fn chat(to: &str, id: &str, text: &str) -> String {
    format!("<message type='chat' to='{to}' id='{id}'><body>{text}</body></message>")
}

#[test]
fn login_over_websocket_and_chat_with_a_tcp_client() {
    let server = server();
    let mut alice = WsClient::connect(http(&server));
    let features = alice.login(ALICE, "web");
    assert_eq!(alice.jid, "alice@localhost/web");
    // After authentication, no SASL again; stream management is offered
    // over WebSocket too (it is the same stream).
    assert!(
        features.get_child("mechanisms", NS_SASL).is_none(),
        "{features}"
    );
    assert!(features.get_child("sm", NS_SM).is_some(), "{features}");

    let mut bob = login(&server, BOB, Some("desk"));
    bob.send(&chat("alice@localhost/web", "b1", "hello over TCP"));
    let got = alice.non_presence();
    assert!(got.is("message", NS_CLIENT), "{got}");
    assert_eq!(got.attr("from"), Some("bob@localhost/desk"), "{got}");
    assert_eq!(body(&got).as_deref(), Some("hello over TCP"));

    alice.send(&chat("bob@localhost/desk", "a1", "hello over WebSocket"));
    let got = bob.non_presence();
    assert!(got.is("message", NS_CLIENT), "{got}");
    assert_eq!(got.attr("from"), Some("alice@localhost/web"), "{got}");
    assert_eq!(body(&got).as_deref(), Some("hello over WebSocket"));
}

/// RFC 7395 §3.3.3: every text frame is one element that stands alone,
/// so the stream's namespaces are declared on each: `jabber:client` on
/// stanzas, the `stream` prefix on `<stream:features/>`. Every frame of a
/// login and a few exchanges is checked.
#[test]
fn every_server_frame_is_one_element_with_its_namespaces() {
    let server = server();
    let mut alice = WsClient::connect(http(&server));
    alice.login(ALICE, "frames");
    alice.send("<presence/>");
    alice.element_matching("her own presence", |el| {
        el.is("presence", NS_CLIENT) && el.attr("from") == Some("alice@localhost/frames")
    });
    alice.send(&format!(
        "<iq type='get' id='r1'><query xmlns='{NS_ROSTER}'/></iq>"
    ));
    alice.element_matching("the roster", |el| el.attr("id") == Some("r1"));
    alice.send(&format!(
        "<iq type='get' id='p1' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
    ));
    alice.element_matching("the pong", |el| el.attr("id") == Some("p1"));
    let mut bob = login(&server, BOB, Some("desk"));
    bob.send(&chat("alice@localhost/frames", "b1", "x"));
    alice.element_matching("Bob's message", |el| el.attr("id") == Some("b1"));
    // An error goes out the same way (to a JID that does not exist).
    alice.send(&chat("nobody@localhost", "e1", "x"));
    alice.element_matching("the error", |el| el.attr("id") == Some("e1"));

    let frames = alice.transcript.clone();
    assert!(frames.len() >= 10, "{frames:?}");
    for text in &frames {
        // `element()` parsed each one already; here is what it says.
        let el = Element::parse(text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
        match el.name.as_ref() {
            "open" | "close" => assert_eq!(el.ns, NS_FRAMING, "{text}"),
            "features" | "error" if el.ns == NS_STREAM => assert!(
                text.contains(&format!("xmlns:stream='{NS_STREAM}'"))
                    || text.contains(&format!("xmlns:stream=\"{NS_STREAM}\"")),
                "a stream element without its prefix declared: {text}"
            ),
            "message" | "presence" | "iq" => {
                assert_eq!(el.ns, NS_CLIENT, "a stanza outside jabber:client: {text}");
                assert!(
                    text.contains("xmlns='jabber:client'")
                        || text.contains("xmlns=\"jabber:client\""),
                    "a stanza without xmlns='jabber:client': {text}"
                );
            }
            "success" => assert_eq!(el.ns, NS_SASL, "{text}"),
            _ => panic!("an unexpected frame: {text}"),
        }
        // One element, nothing around it (no XML declaration either).
        let trimmed = text.trim();
        assert!(
            trimmed.starts_with('<') && trimmed.ends_with('>') && !trimmed.starts_with("<?"),
            "{text:?}"
        );
    }
}

/// XEP-0198 over WebSocket: the session of a WebSocket that is cut
/// hibernates, and a new WebSocket resumes it; what it was sent meanwhile
/// arrives then, exactly once.
#[test]
fn stream_management_resumes_over_a_new_websocket() {
    let server = server();
    let mut alice = WsClient::connect(http(&server));
    alice.login(ALICE, "phone");
    alice.send(&format!("<enable xmlns='{NS_SM}' resume='true'/>"));
    let enabled = alice.element();
    assert!(enabled.is("enabled", NS_SM), "{enabled}");
    let id = enabled
        .attr("id")
        .unwrap_or_else(|| panic!("resumable, so an id: {enabled}"))
        .to_string();

    let mut bob = login(&server, BOB, Some("desk"));
    bob.send(&chat("alice@localhost/phone", "m1", "before the cut"));
    // Every stanza she reads counts for h.
    let mut h = 0u32;
    loop {
        let el = alice.element();
        if el.ns == NS_SM {
            continue;
        }
        h += 1;
        if body(&el).as_deref() == Some("before the cut") {
            break;
        }
    }
    alice.cut();
    // Queued for her in the hibernating session.
    bob.send(&chat("alice@localhost/phone", "m2", "while away"));
    let pong = bob.ping("queued");
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");

    let mut alice = WsClient::connect(http(&server));
    alice.open();
    assert!(alice.auth_plain(ALICE));
    let features = alice.open();
    assert!(features.get_child("sm", NS_SM).is_some(), "{features}");
    alice.send(&format!("<resume xmlns='{NS_SM}' previd='{id}' h='{h}'/>"));
    let resumed = alice.element();
    assert!(resumed.is("resumed", NS_SM), "{resumed}");
    assert_eq!(resumed.attr("previd"), Some(id.as_str()), "{resumed}");
    let got = alice.element_matching("the message sent while away", |el| body(el).is_some());
    assert_eq!(body(&got).as_deref(), Some("while away"), "{got}");
    assert_eq!(got.attr("to"), Some("alice@localhost/phone"), "{got}");
    // The session goes on: Bob's next message arrives, nothing repeated.
    bob.send(&chat("alice@localhost/phone", "m3", "after"));
    let got = alice.element_matching("the next message", |el| body(el).is_some());
    assert_eq!(body(&got).as_deref(), Some("after"), "{got}");
}

/// RFC 7395 §3.6: a client's `<close/>` is answered with `<close/>`, then
/// the server closes the WebSocket (a close frame) and the connection.
#[test]
fn close_is_answered_with_close() {
    let server = server();
    let mut alice = WsClient::connect(http(&server));
    alice.login(ALICE, "bye");
    alice.send_close();
    alice.expect_close();
}

/// RFC 6455 §5.5.2: a ping is answered with a pong carrying its payload;
/// the stream is not disturbed. A close frame is answered with one.
#[test]
fn ping_is_answered_with_pong_and_close_with_close() {
    let server = server();
    let mut alice = WsClient::connect(http(&server));
    alice.login(ALICE, "ping");
    alice.send_frame(OpCode::Ping, b"are you there");
    let pong = alice.frame();
    assert_eq!(pong.opcode, OpCode::Pong, "{pong:?}");
    assert_eq!(pong.payload, b"are you there", "{pong:?}");
    // Still an XMPP stream.
    alice.send(&format!(
        "<iq type='get' id='p1' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
    ));
    let answer = alice.element_matching("the pong", |el| el.attr("id") == Some("p1"));
    assert_eq!(answer.attr("type"), Some("result"), "{answer}");
    // A WebSocket close (1000, normal) gets its echo, and the end.
    alice.send_frame(OpCode::Close, &1000u16.to_be_bytes());
    let deadline = std::time::Instant::now() + timeout();
    loop {
        assert!(std::time::Instant::now() < deadline, "no close frame");
        let frame = alice.frame();
        match frame.opcode {
            // The stream may still say goodbye before the close frame.
            OpCode::Text => continue,
            OpCode::Close => {
                assert_eq!(frame.payload, 1000u16.to_be_bytes(), "{frame:?}");
                break;
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    assert!(
        alice.closed_within(timeout()),
        "the connection stays open after the close handshake"
    );
}
