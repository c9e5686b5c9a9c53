//! Stanza errors, routing, bind conflicts and what the server answers
//! itself.

use super::*;

// ---------------------------------------------------------------------------
// 5. Stanza errors (RFC 6120 §8.3, RFC 6121 §8.5).

#[test]
fn iq_without_id_is_bad_request() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client.iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_stanza_error(&reply, "iq", None, "bad-request", "modify");
}

#[test]
fn iq_with_two_payloads_is_bad_request() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client.iq(
        "<iq type='get' id='two' to='localhost'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert_stanza_error(&reply, "iq", Some("two"), "bad-request", "modify");
}

#[test]
fn iq_without_payload_is_bad_request() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client.iq("<iq type='get' id='none' to='localhost'/>");
    assert_stanza_error(&reply, "iq", Some("none"), "bad-request", "modify");
}

#[test]
fn iq_with_unknown_type_is_bad_request() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply =
        client.iq("<iq type='fetch' id='typ' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_stanza_error(&reply, "iq", Some("typ"), "bad-request", "modify");
}

#[test]
fn iq_to_server_with_unknown_namespace_is_service_unavailable() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client
        .iq("<iq type='get' id='unk' to='localhost'><query xmlns='urn:example:unknown'/></iq>");
    assert_stanza_error(&reply, "iq", Some("unk"), "service-unavailable", "cancel");
    assert_eq!(reply.attr("from"), Some("localhost"), "{reply}");
    assert_eq!(reply.attr("to"), Some(client.jid.as_str()), "{reply}");
}

#[test]
fn message_to_unknown_user_is_service_unavailable() {
    let server = server();
    let mut client = login(&server, ALICE, Some("msg"));
    let reply = client
        .iq("<message to='nobody@localhost' id='m1' type='chat'><body>hello?</body></message>");
    assert_stanza_error(
        &reply,
        "message",
        Some("m1"),
        "service-unavailable",
        "cancel",
    );
    assert_eq!(reply.attr("from"), Some("nobody@localhost"), "{reply}");
    assert_eq!(reply.attr("to"), Some(client.jid.as_str()), "{reply}");
}

#[test]
fn iq_to_unknown_user_is_service_unavailable() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client
        .iq("<iq type='get' id='u1' to='nobody@localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_stanza_error(&reply, "iq", Some("u1"), "service-unavailable", "cancel");
    assert_eq!(reply.attr("from"), Some("nobody@localhost"), "{reply}");
}

#[test]
fn message_to_remote_domain_is_remote_server_not_found() {
    let server = server();
    let mut client = login(&server, ALICE, Some("msg"));
    let reply =
        client.iq("<message to='juliet@example.net' id='r1' type='chat'><body>hi</body></message>");
    assert_stanza_error(
        &reply,
        "message",
        Some("r1"),
        "remote-server-not-found",
        "cancel",
    );
    assert_eq!(reply.attr("from"), Some("juliet@example.net"), "{reply}");
}

#[test]
fn invalid_to_is_jid_malformed() {
    let server = server();
    let mut client = login(&server, ALICE, Some("msg"));
    let reply = client.iq("<message to='a@b@c' id='j1' type='chat'><body>hi</body></message>");
    assert_stanza_error(&reply, "message", Some("j1"), "jid-malformed", "modify");
    let reply =
        client.iq("<iq to='@localhost' id='j2' type='get'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_stanza_error(&reply, "iq", Some("j2"), "jid-malformed", "modify");
}

// ---------------------------------------------------------------------------
// 6. Routing.

#[test]
fn from_is_stamped_with_the_senders_full_jid() {
    let server = server();
    let mut alice = login(&server, ALICE, Some("desk"));
    let mut bob = login(&server, BOB, Some("phone"));
    alice.send(
        "<message from='someone-else@localhost/x' to='bob@localhost/phone' type='chat' id='s1'>\
         <body>trust me</body></message>",
    );
    let message = bob.non_presence();
    assert!(message.is("message", NS_CLIENT), "{message}");
    assert_eq!(
        message.attr("from"),
        Some("alice@localhost/desk"),
        "{message}"
    );
    assert_eq!(message.attr("to"), Some("bob@localhost/phone"), "{message}");
    assert_eq!(message.attr("id"), Some("s1"), "{message}");
    let body = message.get_child("body", NS_CLIENT).map(Element::text);
    assert_eq!(body.as_deref(), Some("trust me"), "{message}");
}

/// Sends initial presence with a priority and waits for the echo
/// (RFC 6121 §4.2.2: the server sends it back to the sender too).
fn available(client: &mut Client, priority: i8) {
    client.send(&format!(
        "<presence><priority>{priority}</priority></presence>"
    ));
    expect_presence_from(client, &client.jid.clone());
}

fn expect_presence_from(client: &mut Client, from: &str) {
    let presence = client.element();
    assert!(presence.is("presence", NS_CLIENT), "{presence}");
    assert_eq!(presence.attr("from"), Some(from), "{presence}");
}

#[test]
fn message_to_bare_jid_reaches_the_highest_priority_resource() {
    let server = server();
    let mut alice = login(&server, ALICE, Some("desk"));
    let mut low = login(&server, BOB, Some("low"));
    available(&mut low, 1);
    let mut high = login(&server, BOB, Some("high"));
    available(&mut high, 5);
    // RFC 6121 §4.2.2: the new resource also learns of its sibling.
    expect_presence_from(&mut high, "bob@localhost/low");
    expect_presence_from(&mut low, "bob@localhost/high");

    alice.send(
        "<message to='bob@localhost' type='chat' id='p1'><body>who is there?</body></message>",
    );
    let message = high.element();
    assert!(message.is("message", NS_CLIENT), "{message}");
    assert_eq!(message.attr("id"), Some("p1"), "{message}");
    assert_eq!(
        message.attr("from"),
        Some("alice@localhost/desk"),
        "{message}"
    );

    // The message was routed before `high` got it; had `low` been sent a
    // copy, it would be queued ahead of this ping's answer.
    let reply =
        low.iq("<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_result(&reply, "after");
}

// ---------------------------------------------------------------------------
// 7. Bind conflict.

#[test]
fn binding_the_same_full_jid_replaces_the_older_session_with_conflict() {
    let server = server();
    let mut first = login(&server, ALICE, Some("home"));
    let mut second = login(&server, ALICE, Some("home"));
    assert_eq!(second.jid, "alice@localhost/home");
    first.expect_stream_error("conflict");
    let reply =
        second.iq("<iq type='get' id='still' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_result(&reply, "still");
}

// ---------------------------------------------------------------------------
// 8. What the server answers itself.

#[test]
fn server_answers_ping() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply =
        client.iq("<iq type='get' id='ping1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_result(&reply, "ping1");
    assert_eq!(reply.attr("from"), Some("localhost"), "{reply}");
    assert_eq!(
        reply.children().count(),
        0,
        "a ping result is empty: {reply}"
    );
}

#[test]
fn server_disco_info_has_the_server_im_identity() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client.iq(&format!(
        "<iq type='get' id='di' to='localhost'><query xmlns='{NS_DISCO_INFO}'/></iq>"
    ));
    assert_result(&reply, "di");
    let query = reply
        .get_child("query", NS_DISCO_INFO)
        .unwrap_or_else(|| panic!("no disco#info query: {reply}"));
    assert!(
        query.children().any(|c| c.is("identity", NS_DISCO_INFO)
            && c.attr("category") == Some("server")
            && c.attr("type") == Some("im")),
        "no server/im identity: {reply}"
    );
    let features: Vec<&str> = query
        .children()
        .filter(|c| c.is("feature", NS_DISCO_INFO))
        .filter_map(|c| c.attr("var"))
        .collect();
    for ns in [NS_DISCO_INFO, NS_PING, NS_VERSION, NS_TIME] {
        assert!(features.contains(&ns), "feature {ns} missing: {reply}");
    }
}

#[test]
fn server_disco_items_answers() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client.iq(&format!(
        "<iq type='get' id='dit' to='localhost'><query xmlns='{NS_DISCO_ITEMS}'/></iq>"
    ));
    assert_result(&reply, "dit");
    let query = reply
        .get_child("query", NS_DISCO_ITEMS)
        .unwrap_or_else(|| panic!("no disco#items query: {reply}"));
    for item in query.children() {
        assert!(item.is("item", NS_DISCO_ITEMS), "{reply}");
        assert!(item.attr("jid").is_some(), "an item needs a jid: {reply}");
    }
}

#[test]
fn server_version_is_perch_without_os() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client.iq(&format!(
        "<iq type='get' id='ver' to='localhost'><query xmlns='{NS_VERSION}'/></iq>"
    ));
    assert_result(&reply, "ver");
    let query = reply
        .get_child("query", NS_VERSION)
        .unwrap_or_else(|| panic!("no version query: {reply}"));
    let name = query.get_child("name", NS_VERSION).map(Element::text);
    assert_eq!(name.as_deref(), Some("Perch"), "{reply}");
    let version = query.get_child("version", NS_VERSION).map(Element::text);
    assert!(version.is_some_and(|v| !v.trim().is_empty()), "{reply}");
    assert!(query.get_child("os", NS_VERSION).is_none(), "{reply}");
}

/// XEP-0082 `CCYY-MM-DDThh:mm:ss[.sss]Z`.
fn is_xep0082_utc(s: &str) -> bool {
    let number = |range: std::ops::Range<usize>, max: u32| {
        s.get(range)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u32>().ok())
            .is_some_and(|n| n <= max)
    };
    let punctuation = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')]
        .iter()
        .all(|&(i, c)| s.as_bytes().get(i) == Some(&c));
    let seconds_end = match s.get(19..) {
        Some("Z") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .and_then(|r| r.strip_suffix('Z'))
            .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    };
    punctuation
        && seconds_end
        && number(0..4, 9999)
        && number(5..7, 12)
        && number(8..10, 31)
        && number(11..13, 23)
        && number(14..16, 59)
        && number(17..19, 60)
}

#[test]
fn server_time_is_xep_0082_utc() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client.iq(&format!(
        "<iq type='get' id='time' to='localhost'><time xmlns='{NS_TIME}'/></iq>"
    ));
    assert_result(&reply, "time");
    let time = reply
        .get_child("time", NS_TIME)
        .unwrap_or_else(|| panic!("no <time/>: {reply}"));
    let utc = time.get_child("utc", NS_TIME).map(Element::text);
    assert!(
        utc.as_deref().is_some_and(is_xep0082_utc),
        "utc is not an XEP-0082 UTC date-time: {reply}"
    );
    let tzo = time.get_child("tzo", NS_TIME).map(Element::text);
    let tzo_ok = tzo.as_deref().is_some_and(|t| {
        t == "Z"
            || (t.len() == 6
                && (t.starts_with('+') || t.starts_with('-'))
                && t.as_bytes().get(3) == Some(&b':'))
    });
    assert!(tzo_ok, "tzo is not a time zone offset: {reply}");
}

#[test]
fn legacy_session_iq_is_answered() {
    let server = server();
    let mut client = login(&server, ALICE, Some("iq"));
    let reply = client.iq(&format!(
        "<iq type='set' id='sess'><session xmlns='{NS_SESSION}'/></iq>"
    ));
    assert_result(&reply, "sess");
}
