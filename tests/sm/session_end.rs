//! A stream-managed session that is not resumed ends (XEP-0198 §5): after
//! its timeout, when its queue overflows, or when its client closes the
//! stream. Then a late `<resume/>` learns how much was handled, contacts
//! see it go, what it was sent and never acknowledged goes to offline
//! storage (once), and requests waiting for it are answered with errors.

use std::time::Instant;

use super::*;

/// The messages with bodies among `els`, checking each carries a delay
/// stamp (XEP-0203).
fn stamped_bodies(els: &[Element]) -> Vec<String> {
    els.iter()
        .filter_map(|el| {
            let text = body(el)?;
            let delay = el.get_child("delay", NS_DELAY);
            assert!(
                delay.is_some_and(|d| d.attr("stamp").is_some()),
                "no delay stamp: {el}"
            );
            Some(text)
        })
        .collect()
}

/// Logs Alice in without stream management and returns the bodies of the
/// messages she finds waiting (offline storage comes with her presence).
fn next_login_finds(server: &TestServer) -> Vec<String> {
    let mut alice = login(server, ALICE, Some("laptop"));
    alice.send("<presence/>");
    let mut got = stamped_bodies(&until_pong(&mut alice, "offline"));
    // Nothing more comes later either.
    got.extend(stamped_bodies(&until_pong(&mut alice, "again")));
    got
}

/// Bob's and Alice's sessions, subscribed to each other and online; Alice
/// with stream management.
fn friends_online(server: &TestServer) -> (Sm, Client) {
    befriend(server);
    let mut bob = login(server, BOB, Some("pc"));
    go_online(&mut bob, "<presence/>");
    let mut alice = Sm::login(server, ALICE, "phone");
    alice.client.send("<presence/>");
    alice.stanza_matching("her own presence", |el| {
        is_presence(el, "alice@localhost/phone", None)
    });
    bob.element_matching("Alice's presence", |el| {
        is_presence(el, "alice@localhost/phone", None)
    });
    alice.until_pong("online");
    (alice, bob)
}

fn is_alice_gone(el: &Element) -> bool {
    is_presence(el, "alice@localhost/phone", Some("unavailable"))
}

#[test]
fn a_session_not_resumed_in_time_ends_and_its_unacked_messages_go_offline() {
    let server = server_with("resume_timeout_secs = 2\n");
    let (mut alice, mut bob) = friends_online(&server);
    send_messages(&mut bob, "alice@localhost/phone", "m", 2);
    alice.stanza_matching("m0", |el| body(el).as_deref() == Some("m0"));
    alice.ack();
    alice.stanza_matching("m1", |el| body(el).as_deref() == Some("m1"));
    let lost = alice.cut();
    let cut_at = Instant::now();
    // Queued for her while she is away.
    bob.send("<message type='chat' to='alice@localhost/phone' id='m2'><body>m2</body></message>");
    // Bob sees her go when the wait is over, not before.
    let seen = until_pong(&mut bob, "queued");
    assert!(!seen.iter().any(is_alice_gone), "{seen:?}");
    bob.element_matching("Alice's unavailable presence", is_alice_gone);
    let waited = cut_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "the session ended {waited:?} after the cut, before resume_timeout_secs"
    );
    // Too late: the server says how many of her stanzas it handled (her
    // presence and the ping).
    let (_late, answer) = resume_as(&server, ALICE, &lost.id, lost.h);
    assert_eq!(assert_failed(&answer, "item-not-found"), Some(2));
    // m0 was acknowledged; m1 was not, and m2 never went out.
    assert_eq!(next_login_finds(&server), ["m1", "m2"]);
}

#[test]
fn an_iq_for_a_session_that_is_never_resumed_gets_an_error() {
    let server = server_with("resume_timeout_secs = 2\n");
    let alice = Sm::login(&server, ALICE, "phone");
    let lost = alice.cut();
    let cut_at = Instant::now();
    let mut bob = login(&server, BOB, Some("pc"));
    bob.send(&format!(
        "<iq type='get' id='v1' to='alice@localhost/phone'><query xmlns='{NS_VERSION}'/></iq>"
    ));
    let reply = bob.element_matching("the answer to the iq", |el| el.attr("id") == Some("v1"));
    let waited = cut_at.elapsed();
    assert_stanza_error(&reply, "iq", Some("v1"), "service-unavailable", "cancel");
    assert_eq!(reply.attr("from"), Some("alice@localhost/phone"), "{reply}");
    assert!(
        waited >= Duration::from_millis(1500),
        "answered {waited:?} after the cut, before the session ended"
    );
    let (_late, answer) = resume_as(&server, ALICE, &lost.id, 0);
    assert_eq!(assert_failed(&answer, "item-not-found"), Some(0));
}

#[test]
fn a_full_queue_ends_the_session_and_every_message_goes_offline_once() {
    let server = server_with("resume_queue_max = 20\nresume_timeout_secs = 60\n");
    let (mut alice, mut bob) = friends_online(&server);
    alice.ack();
    let lost = alice.cut();
    std::thread::sleep(settle());
    send_messages(&mut bob, "alice@localhost/phone", "q", 50);
    // All 50 are handled by the time Bob's ping is answered.
    let seen = until_pong(&mut bob, "sent");
    if !seen.iter().any(is_alice_gone) {
        bob.element_matching("Alice's unavailable presence", is_alice_gone);
    }
    let (_late, answer) = resume_as(&server, ALICE, &lost.id, lost.h);
    assert_eq!(assert_failed(&answer, "item-not-found"), Some(2));
    let want: Vec<String> = (0..50).map(|i| format!("q{i}")).collect();
    assert_eq!(next_login_finds(&server), want);
}

#[test]
fn closing_the_stream_ends_a_resumable_session() {
    let server = server_with("");
    let (mut alice, mut bob) = friends_online(&server);
    send_messages(&mut bob, "alice@localhost/phone", "m", 1);
    alice.stanza_matching("m0", |el| body(el).as_deref() == Some("m0"));
    let lost = alice.lost();
    alice.client.disconnect();
    bob.element_matching("Alice's unavailable presence", is_alice_gone);
    let (_late, answer) = resume_as(&server, ALICE, &lost.id, lost.h);
    assert_eq!(assert_failed(&answer, "item-not-found"), Some(2));
    // She never acknowledged m0: it waits for her next login.
    assert_eq!(next_login_finds(&server), ["m0"]);
}
