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
    // Another account learns nothing of it.
    let (_other, answer) = resume_as(&server, BOB, &lost.id, 0);
    assert_eq!(assert_failed(&answer, "item-not-found"), None);
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

/// The client logs in again with the same resource instead of resuming
/// (RFC 6120 §7.7.2.2: the new session replaces the old), sending its
/// presence in the same write as the bind: the waiting session ends, its
/// unacknowledged message reaches the new one, once, and contacts are
/// left seeing the new session available.
#[test]
fn a_new_login_with_the_same_resource_ends_the_waiting_session() {
    let server = server_with("resume_timeout_secs = 60\n");
    let (mut alice, mut bob) = friends_online(&server);
    send_messages(&mut bob, "alice@localhost/phone", "m", 1);
    alice.stanza_matching("m0", |el| body(el).as_deref() == Some("m0"));
    let lost = alice.cut();
    std::thread::sleep(settle());
    let mut again = authenticate(server.c2s_addr(), ALICE).expect("login");
    again.restart();
    again.send(&format!(
        "<iq type='set' id='bind-1'><bind xmlns='{NS_BIND}'><resource>phone</resource></bind></iq>\
         <presence><status>new</status></presence>"
    ));
    let bound = again.element();
    assert_eq!(bound.attr("type"), Some("result"), "{bound}");
    again.jid = "alice@localhost/phone".into();
    let mut got = stamped_bodies(&until_pong(&mut again, "1"));
    std::thread::sleep(settle());
    got.extend(stamped_bodies(&until_pong(&mut again, "2")));
    assert_eq!(got, ["m0"]);
    // Bob's last word on alice/phone is the new session's presence.
    let mut seen = until_pong(&mut bob, "b1");
    std::thread::sleep(settle());
    seen.extend(until_pong(&mut bob, "b2"));
    let last = seen
        .iter()
        .rfind(|el| el.name == "presence" && el.attr("from") == Some("alice@localhost/phone"))
        .unwrap_or_else(|| panic!("Bob saw nothing of the new session: {seen:?}"));
    assert_eq!(last.attr("type"), None, "Bob was left with {last}");
    // The new session is the one bound.
    bob.send("<message type='chat' to='alice@localhost/phone' id='n0'><body>n0</body></message>");
    let el = again.element_matching("n0", |el| el.name == "message");
    assert_eq!(body(&el).as_deref(), Some("n0"), "{el}");
    let (_late, answer) = resume_as(&server, ALICE, &lost.id, lost.h);
    assert_eq!(assert_failed(&answer, "item-not-found"), Some(2));
}

/// Alice's phone (stream-managed, available) and laptop (available, with
/// carbons if `carbons`), and Bob; nothing unread.
fn phone_and_laptop(server: &TestServer, carbons: bool) -> (Sm, Client, Client) {
    let mut laptop = login(server, ALICE, Some("laptop"));
    if carbons {
        laptop.send(&format!(
            "<iq type='set' id='carbons'><enable xmlns='{NS_CARBONS}'/></iq>"
        ));
        laptop.try_iq_result("carbons").expect("carbons on");
    }
    go_online(&mut laptop, "<presence/>");
    let mut phone = Sm::login(server, ALICE, "phone");
    phone.client.send("<presence/>");
    phone.stanza_matching("her own presence", |el| {
        is_presence(el, "alice@localhost/phone", None)
    });
    phone.until_pong("online");
    laptop.element_matching("the phone's presence", |el| {
        is_presence(el, "alice@localhost/phone", None)
    });
    let bob = login(server, BOB, Some("pc"));
    (phone, laptop, bob)
}

#[test]
fn an_unacked_message_goes_to_another_available_resource_once() {
    let server = server_with("resume_timeout_secs = 2\n");
    let (mut phone, mut laptop, mut bob) = phone_and_laptop(&server, false);
    send_messages(&mut bob, "alice@localhost/phone", "m", 1);
    phone.stanza_matching("m0", |el| body(el).as_deref() == Some("m0"));
    let lost = phone.cut();
    let mut seen = read_until(&mut laptop, is_alice_gone);
    std::thread::sleep(settle());
    seen.extend(until_pong(&mut laptop, "after"));
    assert_eq!(stamped_bodies(&seen), ["m0"]);
    // Not stored as well.
    assert!(next_login_finds(&server).is_empty());
    let (_late, answer) = resume_as(&server, ALICE, &lost.id, lost.h);
    assert_eq!(assert_failed(&answer, "item-not-found"), Some(2));
}

#[test]
fn an_unacked_message_a_carbon_already_copied_is_not_delivered_again() {
    let server = server_with("resume_timeout_secs = 2\n");
    let (mut phone, mut laptop, mut bob) = phone_and_laptop(&server, true);
    send_messages(&mut bob, "alice@localhost/phone", "m", 1);
    phone.stanza_matching("m0", |el| body(el).as_deref() == Some("m0"));
    laptop.element_matching("the carbon of m0", |el| {
        el.get_child("received", NS_CARBONS).is_some()
    });
    phone.cut();
    let mut seen = read_until(&mut laptop, is_alice_gone);
    std::thread::sleep(settle());
    seen.extend(until_pong(&mut laptop, "after"));
    assert!(
        stamped_bodies(&seen).is_empty(),
        "delivered again: {seen:?}"
    );
    assert!(next_login_finds(&server).is_empty());
}

#[test]
fn a_session_that_ends_leaves_its_rooms() {
    const ROOM: &str = "hall@conference.localhost";
    let server = server_with("resume_timeout_secs = 2\n");
    let mut bob = bobs_room(&server, ROOM);
    let mut alice = Sm::login(&server, ALICE, "phone");
    alice.client.send(&format!(
        "<presence to='{ROOM}/Alice'><x xmlns='{NS_MUC}'/></presence>"
    ));
    alice.stanza_matching("her own occupant presence", |el| {
        is_presence(el, &format!("{ROOM}/Alice"), None)
    });
    bob.element_matching("Alice's arrival", |el| {
        is_presence(el, &format!("{ROOM}/Alice"), None)
    });
    alice.cut();
    let cut_at = Instant::now();
    let gone = bob.element_matching("Alice leaving the room", |el| {
        el.name == "presence" && el.attr("from") == Some("hall@conference.localhost/Alice")
    });
    assert_eq!(gone.attr("type"), Some("unavailable"), "{gone}");
    assert!(
        cut_at.elapsed() >= Duration::from_millis(1500),
        "she left {:?} after the cut, before the session ended",
        cut_at.elapsed()
    );
    // The room no longer counts her: her nick is free for someone else.
    let mut other = login(&server, BOB, Some("tablet"));
    other.send(&format!(
        "<presence to='{ROOM}/Alice'><x xmlns='{NS_MUC}'/></presence>"
    ));
    let joined = other.element_matching("the occupant presence", |el| {
        el.name == "presence" && el.attr("from") == Some("hall@conference.localhost/Alice")
    });
    assert_eq!(joined.attr("type"), None, "{joined}");
}
