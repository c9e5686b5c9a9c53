//! Resumption: the burst cut in the middle, a connection still open, and
//! what may not resume.

use super::*;

/// Reads elements until `count` message bodies with `prefix` arrived,
/// answering nothing; returns the bodies in order and the number of
/// stanzas read (what the client would put in `h`).
fn read_bodies(client: &mut Client, prefix: &str, count: usize) -> (Vec<String>, u32) {
    let mut bodies = Vec::new();
    let mut stanzas = 0u32;
    while bodies.len() < count {
        let el = client.element();
        if el.ns == NS_SM {
            continue;
        }
        stanzas += 1;
        if let Some(b) = body(&el).filter(|b| b.starts_with(prefix)) {
            bodies.push(b);
        }
    }
    (bodies, stanzas)
}

#[test]
fn a_burst_cut_in_the_middle_arrives_exactly_once_in_order() {
    // The whole burst may wait for her (the default is 500 stanzas).
    let server = server_with("resume_queue_max = 2000\n");
    let (mut alice, id) = sm_login(&server, ALICE, "phone", true);
    let id = id.expect("resumable");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "m", 1000);
    // Alice reads part of it, then her connection dies without a word.
    let (mut got, h) = read_bodies(&mut alice, "m", 300);
    alice.cut();
    let (mut alice, answer) = resume_as(&server, ALICE, &id, h);
    assert!(answer.is("resumed", NS_SM), "{answer}");
    assert_eq!(answer.attr("previd"), Some(id.as_str()));
    let (rest, _) = read_bodies(&mut alice, "m", 700);
    got.extend(rest);
    let want: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    // Nothing more: a ping is answered next.
    let pong = alice.ping("after");
    assert_eq!(pong.attr("type"), Some("result"));
}

#[test]
fn an_unknown_id_fails_and_the_client_may_bind_instead() {
    let server = server_with("");
    let (mut client, answer) = resume_as(&server, ALICE, "no-such-session", 0);
    // Nothing is known of it, so no h either.
    assert_eq!(assert_failed(&answer, "item-not-found"), None);
    let jid = client.bind(Some("laptop"));
    assert_eq!(jid, "alice@localhost/laptop");
    let pong = client.ping("bound");
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
    assert_eq!(pong.attr("to"), Some("alice@localhost/laptop"), "{pong}");
}

#[test]
fn another_accounts_id_is_not_found_and_its_owner_still_resumes() {
    let server = server_with("");
    let mut alice = Sm::login(&server, ALICE, "phone");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "m", 2);
    for i in 0..2 {
        assert_eq!(body(&alice.stanza()), Some(format!("m{i}")));
    }
    let lost = alice.cut();
    // Bob learns nothing, not even the count of an existing session.
    let (mut thief, answer) = resume_as(&server, BOB, &lost.id, 0);
    assert_eq!(assert_failed(&answer, "item-not-found"), None);
    assert_eq!(thief.bind(Some("thief")), "bob@localhost/thief");
    let (mut alice, _) = lost.resume(&server, ALICE);
    // Nothing was resent to Bob's stream, and Alice's continues.
    assert!(until_pong(&mut thief, "t").is_empty());
    send_messages(&mut bob, "alice@localhost/phone", "n", 1);
    assert_eq!(body(&alice.stanza()), Some("n0".to_string()));
}

#[test]
fn resume_before_authentication_fails_and_the_login_goes_on() {
    let server = server_with("");
    let (alice, id) = sm_login(&server, ALICE, "phone", true);
    let id = id.expect("resumable");
    alice.cut();
    let mut client = opened(&server);
    client.send(&format!("<resume xmlns='{NS_SM}' previd='{id}' h='0'/>"));
    assert_eq!(assert_failed(&client.element(), "unexpected-request"), None);
    assert!(
        matches!(client.auth_plain(ALICE.0, ALICE.1), Sasl::Success(_)),
        "login after the refused <resume/>"
    );
    client.restart();
    client.send(&format!("<resume xmlns='{NS_SM}' previd='{id}' h='0'/>"));
    let answer = client.element();
    assert!(answer.is("resumed", NS_SM), "{answer}");
}

#[test]
fn resume_after_binding_fails_and_the_session_stays_resumable() {
    let server = server_with("");
    let alice = Sm::login(&server, ALICE, "phone");
    let lost = alice.cut();
    let mut laptop = login(&server, ALICE, Some("laptop"));
    laptop.send(&format!(
        "<resume xmlns='{NS_SM}' previd='{}' h='0'/>",
        lost.id
    ));
    assert_eq!(assert_failed(&laptop.element(), "unexpected-request"), None);
    let pong = laptop.ping("still");
    assert_eq!(pong.attr("to"), Some("alice@localhost/laptop"), "{pong}");
    let (mut phone, _) = lost.resume(&server, ALICE);
    let pong = phone.client.ping("resumed");
    assert_eq!(pong.attr("to"), Some("alice@localhost/phone"), "{pong}");
}

#[test]
fn a_resumption_takes_the_session_from_a_connection_still_open() {
    let server = server_with("");
    let mut bob = login(&server, BOB, Some("pc"));
    let mut first = Sm::login(&server, ALICE, "phone");
    send_messages(&mut bob, "alice@localhost/phone", "m", 1);
    assert_eq!(body(&first.stanza()), Some("m0".to_string()));
    first.until_pong("first");
    // The first connection is alive when the second resumes.
    let (mut second, handled) = first.lost().resume(&server, ALICE);
    assert_eq!(handled, 1);
    skip_to_stream_error(&mut first.client, "conflict");
    send_messages(&mut bob, "alice@localhost/phone", "n", 1);
    assert_eq!(body(&second.stanza()), Some("n0".to_string()));
    // Again, from the resumed connection to a third; the count goes on.
    second.until_pong("second");
    let (mut third, handled) = second.lost().resume(&server, ALICE);
    assert_eq!(handled, 2);
    skip_to_stream_error(&mut second.client, "conflict");
    send_messages(&mut bob, "alice@localhost/phone", "o", 1);
    assert_eq!(body(&third.stanza()), Some("o0".to_string()));
    let pong = third.client.ping("third");
    assert_eq!(pong.attr("to"), Some("alice@localhost/phone"), "{pong}");
}

#[test]
fn resuming_with_an_h_above_what_was_sent_is_a_stream_error() {
    let server = server_with("");
    let mut alice = Sm::login(&server, ALICE, "phone");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "m", 2);
    for i in 0..2 {
        assert_eq!(body(&alice.stanza()), Some(format!("m{i}")));
    }
    let lost = alice.cut();
    let (mut liar, answer) = resume_as(&server, ALICE, &lost.id, 5);
    let error = check_stream_error_element(&mut liar, answer, "undefined-condition");
    assert_eq!(too_high(&error), (Some("5"), Some("2")), "{error}");
    // The session was left as it was: a truthful client resumes it.
    let (mut alice, _) = lost.resume(&server, ALICE);
    send_messages(&mut bob, "alice@localhost/phone", "n", 1);
    assert_eq!(body(&alice.stanza()), Some("n0".to_string()));
}

/// `el` (already read) must be a stream error with `condition`, followed
/// by the end of the stream.
fn check_stream_error_element(client: &mut Client, el: Element, condition: &str) -> Element {
    client.pending.push_front(el);
    expect_stream_error_el(client, condition)
}

#[test]
fn a_burst_taken_over_from_a_connection_still_open_arrives_exactly_once_in_order() {
    let server = server_with("resume_queue_max = 2000\n");
    let (mut first, id) = sm_login(&server, ALICE, "phone", true);
    let id = id.expect("resumable");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "m", 1000);
    let (mut got, h) = read_bodies(&mut first, "m", 300);
    // The first connection stays open, with whatever is in flight to it.
    let (mut second, answer) = resume_as(&server, ALICE, &id, h);
    assert!(answer.is("resumed", NS_SM), "{answer}");
    let (rest, _) = read_bodies(&mut second, "m", 700);
    got.extend(rest);
    let want: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    skip_to_stream_error(&mut first, "conflict");
    // Stream management is on already on the resumed stream.
    second.send(&enable(true));
    let failed = second.element_matching("<failed/>", |el| el.name != "r");
    assert_eq!(assert_failed(&failed, "unexpected-request"), None);
    let pong = second.ping("after");
    assert_eq!(pong.attr("type"), Some("result"));
}

const RESTART_CONFIG: &str = "resume_timeout_secs = 60\n";

#[test]
fn after_a_restart_only_what_was_not_acknowledged_is_resent() {
    let server = server_with(RESTART_CONFIG);
    let mut bob = login(&server, BOB, Some("pc"));
    let mut alice = Sm::login(&server, ALICE, "phone");
    send_messages(&mut bob, "alice@localhost/phone", "m", 5);
    for i in 0..2 {
        assert_eq!(body(&alice.stanza()), Some(format!("m{i}")));
    }
    // She has handled two when the server stops; three more are in her
    // socket, unread.
    let lost = alice.lost();
    let server = server
        .restart(TestOptions {
            extra_config: RESTART_CONFIG.into(),
            ..TestOptions::default()
        })
        .expect("restart");
    let (mut alice, handled) = lost.resume(&server, ALICE);
    assert_eq!(handled, 0);
    for i in 2..5 {
        assert_eq!(body(&alice.stanza()), Some(format!("m{i}")));
    }
    let pong = alice.client.ping("jid");
    assert_eq!(pong.attr("to"), Some("alice@localhost/phone"), "{pong}");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "n", 1);
    assert_eq!(body(&alice.stanza()), Some("n0".to_string()));
}
