//! Hostile input (issue #16): what a remote party may send or do to the
//! server, each case with the answer it must get, and after every case a
//! check that the server still serves everyone else: another client logs
//! in and exchanges messages with a third ([`assert_healthy`]).
//!
//! - [`xml`]: a table of bytes against RFC 6120's stream errors
//!   (§4.9.3) and restricted XML (§11.1), from before the stream header to
//!   after resource binding;
//! - [`floods`]: many stanzas, subscription requests, roster items,
//!   offline messages and rooms, against the limits of `[im]` and `[muc]`;
//! - [`connections`]: silent connections, connections over the limits,
//!   a client that never reads and one that writes too slowly.
//!
//! Every server is in-process on loopback ports, with the limits under
//! test set low in its configuration.

#[path = "../common/mod.rs"]
mod common;
mod connections;
mod floods;
mod xml;

use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use perch::testing::{TestOptions, TestServer, scaled};
use perch::xml::Element;

const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");
/// The two that check the server's health after each case.
const CAROL: (&str, &str) = ("carol", "carol-secret");
const DAVE: (&str, &str) = ("dave", "dave-secret");
const MALLORY: (&str, &str) = ("mallory", "mallory-secret");

const NS_MUC: &str = "http://jabber.org/protocol/muc";

/// A server with the five accounts above plus `more`, and `extra_config`
/// appended to the test configuration (which ends in its `[c2s]` table).
fn server_with(extra_config: &str, more: &[(&str, &str)]) -> TestServer {
    let accounts = [ALICE, BOB, CAROL, DAVE, MALLORY]
        .iter()
        .chain(more)
        .map(|(user, password)| (format!("{user}@localhost"), password.to_string()))
        .collect();
    TestServer::start(TestOptions {
        accounts,
        extra_config: extra_config.to_string(),
        ..TestOptions::default()
    })
    .expect("the test server starts")
}

/// The server still works for others: Carol and Dave log in (new
/// connections, so the listener, the admission table, SASL and binding
/// all still work) and exchange a message each way. `after` names the case
/// for the failure message.
fn assert_healthy(server: &TestServer, after: &str) {
    static ROUND: AtomicU32 = AtomicU32::new(0);
    let n = ROUND.fetch_add(1, Ordering::Relaxed);
    let login = |account: (&str, &str), resource: &str| {
        let mut client = Client::connect(server.c2s_addr());
        match client.try_login("localhost", account, Some(resource)) {
            Ok(_) => client,
            Err(e) => panic!("after {after}: {} cannot log in: {e}", account.0),
        }
    };
    let mut carol = login(CAROL, &format!("health{n}"));
    let mut dave = login(DAVE, &format!("health{n}"));
    exchange(&mut carol, &mut dave, &format!("ping {n}"), after);
    exchange(&mut dave, &mut carol, &format!("pong {n}"), after);
    carol.disconnect();
    dave.disconnect();
}

/// `from` sends `to` a chat message with `body`, which must arrive.
fn exchange(from: &mut Client, to: &mut Client, body: &str, after: &str) {
    from.send(&format!(
        "<message to='{}' type='chat'><body>{body}</body></message>",
        to.jid
    ));
    let got = to.element_matching(&format!("the message {body:?} after {after}"), |el| {
        el.is("message", NS_CLIENT)
            && el
                .get_child("body", NS_CLIENT)
                .is_some_and(|b| b.text() == body)
    });
    assert_eq!(
        got.attr("from"),
        Some(from.jid.as_str()),
        "after {after}: {got}"
    );
}

/// The stream error the server ends the stream with, after skipping its
/// stream header and features (sent first when the error comes before or
/// right after the client's header, RFC 6120 §4.9.1.2); then the close
/// and the end of the connection are expected (after the client's own
/// close).
fn stream_error(client: &mut Client, case: &str) -> Element {
    let error = loop {
        match client.next_event() {
            Event::Open(_) => {}
            Event::Element(el) if el.is("features", NS_STREAM) => {}
            Event::Element(el) => break el,
            other => panic!(
                "{case}: expected a stream error, got {other:?}; received: {}",
                client.transcript()
            ),
        }
    };
    assert!(
        error.is("error", NS_STREAM),
        "{case}: expected a stream error, got {error}"
    );
    match client.next_event() {
        Event::Close => {}
        other => panic!(
            "{case}: expected </stream:stream> after the error, got {other:?}; received: {}",
            client.transcript()
        ),
    }
    // Close our side as a client does (the stream, then the socket), so
    // the server need not wait for it.
    let _ = client.try_send("</stream:stream>");
    if let Transport::Plain(tcp) = &client.io {
        let _ = tcp.shutdown(std::net::Shutdown::Write);
    }
    client.expect_eof();
    error
}

/// The defined condition of a stream error.
fn stream_condition(error: &Element) -> String {
    let found: Vec<&str> = error
        .children()
        .filter(|c| c.ns == NS_STREAM_ERRORS && c.name != "text")
        .map(|c| c.name.as_ref())
        .collect();
    found.join(" ")
}

/// The `<text/>` of a stream or stanza error (`""` if none).
fn error_text(error: &Element) -> String {
    let error = if error.name == "error" && error.ns != NS_STREAM {
        error
    } else {
        error
            .children()
            .find(|c| c.name == "error")
            .unwrap_or(error)
    };
    error
        .children()
        .find(|c| c.name == "text")
        .map(|t| t.text())
        .unwrap_or_default()
}

/// Checks a stanza error with [`assert_stanza_error`] and that its text
/// contains `text` (a limit's value, say).
fn assert_stanza_error_text(
    reply: &Element,
    name: &str,
    id: Option<&str>,
    condition: &str,
    error_type: &str,
    text: &str,
) {
    assert_stanza_error(reply, name, id, condition, error_type);
    let got = error_text(reply.get_child("error", NS_CLIENT).expect("an error"));
    assert!(
        got.contains(text),
        "the error's text {got:?} does not contain {text:?}: {reply}"
    );
}

/// Sends a ping and returns everything that arrives before its answer:
/// what a burst of stanzas caused, once the server has handled them all.
fn collect_until_ping(client: &mut Client, id: &str) -> Vec<Element> {
    client.send(&format!(
        "<iq type='get' id='{id}' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
    ));
    let mut got = Vec::new();
    loop {
        let el = client.element();
        if el.is("iq", NS_CLIENT) && el.attr("id") == Some(id) {
            assert_result(&el, id);
            return got;
        }
        got.push(el);
    }
}

/// The seconds a configuration value needs so that a step that takes a
/// moment in a debug build (a login's PBKDF2) still fits when the suite
/// runs emulated (`PERCH_TEST_TIME_SCALE`).
fn scaled_secs(base: u64) -> u64 {
    scaled(std::time::Duration::from_secs(base)).as_secs()
}
