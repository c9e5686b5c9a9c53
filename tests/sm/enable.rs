//! Enabling stream management (XEP-0198 §3), acks in both directions
//! (§4) and the errors around them: what is refused with `<failed/>`, what
//! ends the stream, and the stream features that announce it all.

use std::time::Instant;

use super::*;

/// The `h` of an `<a/>`.
fn ack_h(el: &Element) -> u32 {
    assert!(el.is("a", NS_SM), "expected <a/>, got {el}");
    el.attr("h")
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("<a/> without a valid h: {el}"))
}

#[test]
fn sm_and_csi_are_offered_after_authentication_only() {
    let server = server_with("");
    let mut client = Client::connect(server.c2s_addr());
    let features = client.open();
    assert!(features.get_child("sm", NS_SM).is_none(), "{features}");
    assert!(features.get_child("csi", NS_CSI).is_none(), "{features}");
    assert!(
        matches!(client.auth_plain(ALICE.0, ALICE.1), Sasl::Success(_)),
        "login"
    );
    let features = client.restart();
    assert!(features.get_child("sm", NS_SM).is_some(), "{features}");
    assert!(features.get_child("csi", NS_CSI).is_some(), "{features}");
}

#[test]
fn enable_before_binding_fails_and_the_stream_goes_on() {
    let server = server_with("");
    // Before authentication: refused, and the login still works.
    let mut client = opened(&server);
    client.send(&enable(true));
    assert_eq!(assert_failed(&client.element(), "unexpected-request"), None);
    assert!(
        matches!(client.auth_plain(ALICE.0, ALICE.1), Sasl::Success(_)),
        "login after the refused <enable/>"
    );
    client.restart();
    // Authenticated, not bound: refused, and binding still works.
    client.send(&enable(true));
    assert_eq!(assert_failed(&client.element(), "unexpected-request"), None);
    client.bind(Some("phone"));
    client.send(&enable(true));
    let enabled = client.element();
    assert!(enabled.is("enabled", NS_SM), "{enabled}");
    assert!(enabled.attr("id").is_some(), "{enabled}");
}

#[test]
fn enabling_twice_fails_and_the_first_stays_in_force() {
    let server = server_with("");
    let (mut alice, id) = sm_login(&server, ALICE, "phone", true);
    alice.send(&enable(true));
    assert_eq!(assert_failed(&alice.element(), "unexpected-request"), None);
    alice.send(&enable(false));
    assert_eq!(assert_failed(&alice.element(), "unexpected-request"), None);
    // The stream goes on, counting from the first <enable/>.
    until_pong(&mut alice, "p1");
    alice.send(&format!("<r xmlns='{NS_SM}'/>"));
    assert_eq!(ack_h(&alice.element()), 1);
    // And the first id still resumes the session.
    alice.cut();
    let (_alice, answer) = resume_as(&server, ALICE, &id.expect("resumable"), 1);
    assert!(answer.is("resumed", NS_SM), "{answer}");
}

#[test]
fn enabled_carries_an_id_and_the_granted_max_only_when_resumable() {
    let server = server_with("resume_timeout_secs = 60\nmax_resume_timeout_secs = 120\n");
    let mut ids = Vec::new();
    for (i, (attrs, want_max)) in [
        ("", None),
        (" resume='true'", Some("60")),
        (" resume='1'", Some("60")),
        (" resume='true' max='30'", Some("30")),
        (" resume='true' max='500'", Some("120")),
        (" resume='true' max='soon'", Some("60")),
        (" max='30'", None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut client = login(&server, ALICE, Some(&format!("r{i}")));
        client.send(&format!("<enable xmlns='{NS_SM}'{attrs}/>"));
        let enabled = client.element();
        assert!(enabled.is("enabled", NS_SM), "{attrs}: {enabled}");
        assert_eq!(enabled.attr("max"), want_max, "{attrs}: {enabled}");
        match want_max {
            Some(_) => {
                assert_eq!(enabled.attr("resume"), Some("true"), "{attrs}: {enabled}");
                let id = enabled.attr("id").unwrap_or_default().to_string();
                assert!(!id.is_empty(), "{attrs}: {enabled}");
                ids.push(id);
            }
            None => {
                assert_eq!(enabled.attr("id"), None, "{attrs}: {enabled}");
                assert_eq!(enabled.attr("resume"), None, "{attrs}: {enabled}");
            }
        }
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids repeat: {ids:?}");
}

#[test]
fn the_clients_max_is_how_long_its_session_waits() {
    let server = server_with("resume_timeout_secs = 60\n");
    let mut quick = login(&server, ALICE, Some("quick"));
    quick.send(&format!("<enable xmlns='{NS_SM}' resume='true' max='1'/>"));
    let enabled = quick.element();
    assert_eq!(enabled.attr("max"), Some("1"), "{enabled}");
    let quick_id = enabled.attr("id").expect("resumable").to_string();
    let (patient, patient_id) = sm_login(&server, ALICE, "patient", true);
    quick.cut();
    patient.cut();
    std::thread::sleep(Duration::from_secs(1) + scaled(Duration::from_millis(1500)));
    // One second was all the first asked for...
    let (_quick, answer) = resume_as(&server, ALICE, &quick_id, 0);
    assert_eq!(assert_failed(&answer, "item-not-found"), Some(0));
    // ... the other waits the server's 60.
    let (_patient, answer) = resume_as(&server, ALICE, &patient_id.expect("resumable"), 0);
    assert!(answer.is("resumed", NS_SM), "{answer}");
}

#[test]
fn an_ack_counts_every_stanza_the_client_sent_since_enabling() {
    let server = server_with("");
    let mut alice = login(&server, ALICE, Some("phone"));
    // Before <enable/>: not counted.
    go_online(&mut alice, "<presence/>");
    until_pong(&mut alice, "before");
    alice.send(&enable(false));
    assert!(alice.element().is("enabled", NS_SM));
    // Delivered, stored, bounced or answered: each one is handled.
    alice.send(
        "<message to='bob@localhost' type='chat' id='s1'><body>stored</body></message>\
         <message to='nobody@localhost' type='chat' id='s2'><body>bounced</body></message>\
         <presence id='s3'><show>away</show></presence>\
         <iq type='get' id='s4'><query xmlns='jabber:iq:roster'/></iq>\
         <iq type='get' id='s5' to='nowhere.invalid'><query xmlns='jabber:iq:version'/></iq>\
         <iq type='get' id='s6' to='localhost'/>",
    );
    alice.send(&format!("<r xmlns='{NS_SM}'/>"));
    let mut seen = Vec::new();
    let a = loop {
        let el = alice.element();
        if el.ns == NS_SM {
            break el;
        }
        seen.push(el);
    };
    assert_eq!(ack_h(&a), 6, "after {seen:?}");
    seen.extend(until_pong(&mut alice, "sync"));
    for id in ["s2", "s5", "s6"] {
        let reply = seen
            .iter()
            .find(|el| el.attr("id") == Some(id))
            .unwrap_or_else(|| panic!("no answer to {id} in {seen:?}"));
        assert_eq!(reply.attr("type"), Some("error"), "{reply}");
    }
    // The ping counted too; SM elements never do.
    alice.send(&format!("<r xmlns='{NS_SM}'/><r xmlns='{NS_SM}'/>"));
    assert_eq!(ack_h(&alice.element()), 7);
    assert_eq!(ack_h(&alice.element()), 7);
}

#[test]
fn the_server_asks_for_an_ack_every_ack_request_stanzas() {
    let server = server_with("ack_request_stanzas = 3\nack_request_secs = 3600\n");
    let (mut alice, _) = sm_login(&server, ALICE, "phone", false);
    let mut bob = login(&server, BOB, Some("pc"));
    for (round, prefix) in ["m", "n"].into_iter().enumerate() {
        send_messages(&mut bob, "alice@localhost/phone", prefix, 3);
        for i in 0..3 {
            let el = alice.element();
            assert_eq!(body(&el), Some(format!("{prefix}{i}")), "{el}");
        }
        let r = alice.element();
        assert!(r.is("r", NS_SM), "expected <r/> after 3 stanzas, got {r}");
        alice.send(&format!("<a xmlns='{NS_SM}' h='{}'/>", 3 * (round + 1)));
    }
    // Two more are not enough for a request.
    send_messages(&mut bob, "alice@localhost/phone", "o", 2);
    for i in 0..2 {
        assert_eq!(body(&alice.element()), Some(format!("o{i}")));
    }
    assert_quiet(&mut alice, settle());
}

#[test]
fn the_server_asks_for_an_ack_ack_request_secs_after_a_stanza() {
    let server = server_with("ack_request_stanzas = 0\nack_request_secs = 1\n");
    let (mut alice, _) = sm_login(&server, ALICE, "phone", false);
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "m", 1);
    assert_eq!(body(&alice.element()), Some("m0".to_string()));
    let received = Instant::now();
    let r = alice.element();
    assert!(r.is("r", NS_SM), "expected <r/>, got {r}");
    let waited = received.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "<r/> came {waited:?} after the stanza, before ack_request_secs"
    );
    // Everything acknowledged: nothing more to ask.
    alice.send(&format!("<a xmlns='{NS_SM}' h='1'/>"));
    assert_quiet(&mut alice, Duration::from_millis(1500));
}

#[test]
fn an_ack_above_what_was_sent_is_a_stream_error() {
    let server = server_with("");
    let (mut alice, _) = sm_login(&server, ALICE, "phone", false);
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "m", 2);
    for i in 0..2 {
        assert_eq!(body(&alice.element()), Some(format!("m{i}")));
    }
    alice.send(&format!("<a xmlns='{NS_SM}' h='5'/>"));
    let error = expect_stream_error_el(&mut alice, "undefined-condition");
    assert_eq!(too_high(&error), (Some("5"), Some("2")), "{error}");
    assert_eq!(bob.ping("after").attr("type"), Some("result"));
}

#[test]
fn acks_and_requests_before_enabling_are_stream_errors() {
    let server = server_with("");
    for (i, xml) in [
        format!("<r xmlns='{NS_SM}'/>"),
        format!("<a xmlns='{NS_SM}' h='0'/>"),
    ]
    .iter()
    .enumerate()
    {
        // Bound, stream management off.
        let mut client = login(&server, ALICE, Some(&format!("bound{i}")));
        client.send(xml);
        expect_stream_error_el(&mut client, "unsupported-stanza-type");
        // Not bound yet.
        let mut client = authenticate(server.c2s_addr(), ALICE).expect("login");
        client.restart();
        client.send(xml);
        expect_stream_error_el(&mut client, "unsupported-stanza-type");
    }
}

#[test]
fn an_unreadable_h_is_a_stream_error_and_the_server_carries_on() {
    let server = server_with("");
    let mut bob = login(&server, BOB, Some("pc"));
    let cases = [
        "h='abc'",
        "h='99999999999'",
        "h='4294967296'",
        "h='-1'",
        "h='1.5'",
        "h=''",
        "",
    ];
    for (i, h) in cases.iter().enumerate() {
        let (mut alice, _) = sm_login(&server, ALICE, &format!("a{i}"), false);
        alice.send(&format!("<a xmlns='{NS_SM}' {h}/>"));
        expect_stream_error_el(&mut alice, "invalid-xml");
        assert_eq!(
            bob.ping(&format!("a{i}")).attr("type"),
            Some("result"),
            "{h}"
        );
    }
    for (i, h) in cases.iter().enumerate() {
        let mut alice = authenticate(server.c2s_addr(), ALICE).expect("login");
        alice.restart();
        alice.send(&format!("<resume xmlns='{NS_SM}' previd='x' {h}/>"));
        expect_stream_error_el(&mut alice, "invalid-xml");
        assert_eq!(
            bob.ping(&format!("r{i}")).attr("type"),
            Some("result"),
            "{h}"
        );
    }
}

#[test]
fn ten_thousand_requests_get_ten_thousand_acks() {
    const REQUESTS: usize = 10_000;
    let server = server_with("");
    let (mut alice, _) = sm_login(&server, ALICE, "phone", false);
    until_pong(&mut alice, "one");
    // Written from another thread: the acks come back while the requests
    // are still going out.
    let mut tcp = match &alice.io {
        Transport::Plain(tcp) => tcp.try_clone().expect("clone the socket"),
        _ => panic!("plaintext expected"),
    };
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let chunk = format!("<r xmlns='{NS_SM}'/>").repeat(500);
        for _ in 0..REQUESTS / 500 {
            tcp.write_all(chunk.as_bytes()).expect("write requests");
        }
    });
    for i in 0..REQUESTS {
        let el = alice.element();
        assert_eq!(ack_h(&el), 1, "ack {i}");
    }
    writer.join().expect("writer");
    assert!(until_pong(&mut alice, "after").is_empty());
    alice.send(&format!("<r xmlns='{NS_SM}'/>"));
    assert_eq!(ack_h(&alice.element()), 2);
}

#[test]
fn with_resumption_off_enabled_has_no_id_and_a_cut_ends_the_session() {
    let server = server_with("resume_timeout_secs = 0\n");
    let mut alice = login(&server, ALICE, Some("phone"));
    alice.send(&enable(true));
    let enabled = alice.element();
    assert!(enabled.is("enabled", NS_SM), "{enabled}");
    assert_eq!(enabled.attr("id"), None, "{enabled}");
    assert_eq!(enabled.attr("resume"), None, "{enabled}");
    alice.cut();
    // Gone at once: an iq to her is answered by the server.
    let mut bob = login(&server, BOB, Some("pc"));
    std::thread::sleep(settle());
    bob.send(&format!(
        "<iq type='get' id='v1' to='alice@localhost/phone'><query xmlns='{NS_VERSION}'/></iq>"
    ));
    let reply = bob.element();
    assert_stanza_error(&reply, "iq", Some("v1"), "service-unavailable", "cancel");
}

/// A client answers `<r/>` with what it had handled then; what the server
/// sent after the request is still unacknowledged, and ack_request_secs
/// later the server asks again.
#[test]
fn what_a_partial_ack_leaves_unacknowledged_is_asked_for_in_time() {
    let server = server_with("ack_request_stanzas = 0\nack_request_secs = 1\n");
    let (mut alice, _) = sm_login(&server, ALICE, "phone", false);
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "m", 1);
    assert_eq!(body(&alice.element()), Some("m0".to_string()));
    let r = alice.element();
    assert!(r.is("r", NS_SM), "expected <r/>, got {r}");
    // m1 goes out while the request is outstanding.
    send_messages(&mut bob, "alice@localhost/phone", "n", 1);
    assert_eq!(body(&alice.element()), Some("n0".to_string()));
    alice.send(&format!("<a xmlns='{NS_SM}' h='1'/>"));
    let wait = Duration::from_secs(1) + scaled(Duration::from_secs(2));
    match element_within(&mut alice, wait) {
        Some(r) => assert!(r.is("r", NS_SM), "expected another <r/>, got {r}"),
        None => panic!("n0 was left unacknowledged and not asked for within {wait:?}"),
    }
}
