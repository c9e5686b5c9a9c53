//! Floods: a client sending as fast as it can, and one filling every
//! store a client may fill for others (subscription requests, roster
//! items, offline messages, rooms) past the limits of `[im]` and `[muc]`,
//! set low here. Each over-limit answer must be the error the code
//! documents, with a text naming the limit; nothing below the limit may be
//! lost; others must still be served.

use std::io::Write;
use std::thread;

use super::*;

/// Stanzas of each kind the flooder sends.
const EACH: usize = 2_000;

/// The bodies of the chat messages among `elements`.
fn bodies(elements: &[Element]) -> Vec<String> {
    elements
        .iter()
        .filter(|el| el.is("message", NS_CLIENT))
        .filter_map(|el| el.get_child("body", NS_CLIENT).map(|b| b.text()))
        .collect()
}

/// The error answers among `elements`, by id.
fn errors_by_id(elements: &[Element]) -> Vec<(String, &Element)> {
    elements
        .iter()
        .filter(|el| el.attr("type") == Some("error"))
        .map(|el| (el.attr("id").unwrap_or_default().to_string(), el))
        .collect()
}

#[test]
fn a_client_flooding_stanzas_does_not_stop_others() {
    let server = server_with("", &[]);
    let mut flooder = login(&server, MALLORY, Some("flood"));
    let mut target = login(&server, BOB, Some("target"));
    let own = flooder.jid.clone();
    let Transport::Plain(tcp) = &flooder.io else {
        panic!("a plaintext client")
    };
    let mut out = tcp.try_clone().expect("a second handle on the socket");
    // Messages to itself and to Bob and pings, as fast as the socket takes
    // them, written in big chunks from their own thread.
    let writer = thread::spawn(move || {
        let mut chunk = String::new();
        for i in 0..EACH {
            chunk.push_str(&format!(
                "<message to='{own}' type='chat'><body>self {i}</body></message>\
                 <message to='bob@localhost/target' type='chat'><body>bob {i}</body></message>\
                 <iq type='get' id='p{i}' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
            ));
            if chunk.len() > 32 * 1024 || i + 1 == EACH {
                out.write_all(chunk.as_bytes())
                    .expect("the flood is written");
                chunk.clear();
            }
        }
    });
    // The flooder and its target read everything, counting.
    let flood_reader = thread::spawn(move || {
        let (mut echoes, mut pongs) = (0, 0);
        while pongs < EACH || echoes < EACH {
            let el = flooder.element();
            if el.is("iq", NS_CLIENT) {
                assert_result(&el, &format!("p{pongs}"));
                pongs += 1;
            } else if el.is("message", NS_CLIENT) {
                let body = el.get_child("body", NS_CLIENT).map(|b| b.text());
                assert_eq!(body, Some(format!("self {echoes}")), "{el}");
                echoes += 1;
            }
        }
        flooder
    });
    let target_reader = thread::spawn(move || {
        for i in 0..EACH {
            let el = target.non_presence();
            let body = el.get_child("body", NS_CLIENT).map(|b| b.text());
            assert_eq!(body, Some(format!("bob {i}")), "{el}");
        }
        target
    });
    // Meanwhile others log in and talk, each step within the tests'
    // generous timeout.
    assert_healthy(&server, "the start of a stanza flood");
    writer.join().expect("the writer");
    let mut flooder = flood_reader.join().expect("every echo and pong, in order");
    let mut target = target_reader
        .join()
        .expect("every message to Bob, in order");
    // Both streams go on.
    assert_result(&flooder.ping("after"), "after");
    assert_result(&target.ping("after"), "after");
    assert_healthy(&server, "a stanza flood");
}

#[test]
fn subscription_requests_past_the_roster_limit_are_refused() {
    let server = server_with("[im]\nroster_max_items = 5\n", &[]);
    let mut mallory = login(&server, MALLORY, Some("subs"));
    for i in 0..8 {
        mallory.send(&format!(
            "<presence type='subscribe' id='s{i}' to='contact{i}@localhost'/>"
        ));
    }
    let got = collect_until_ping(&mut mallory, "subs-done");
    let errors = errors_by_id(&got);
    let ids: Vec<&str> = errors.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["s5", "s6", "s7"], "{got:?}");
    for (id, error) in &errors {
        assert_stanza_error_text(
            error,
            "presence",
            Some(id),
            "not-allowed",
            "cancel",
            "(5 items)",
        );
    }
    // The five that fit are on the roster.
    let roster = mallory.iq(&format!(
        "<iq type='get' id='r'><query xmlns='{NS_ROSTER}'/></iq>"
    ));
    // (The contacts do not exist, so each request was answered with
    // "unsubscribed" on their behalf: the items stay, without "ask".)
    let items: Vec<&str> = roster
        .get_child("query", NS_ROSTER)
        .expect("a roster")
        .children()
        .filter_map(|item| item.attr("jid"))
        .collect();
    let expected: Vec<String> = (0..5).map(|i| format!("contact{i}@localhost")).collect();
    assert_eq!(items, expected, "{roster}");
    assert_healthy(&server, "a subscription flood");
}

#[test]
fn inbound_subscription_requests_past_the_limit_are_refused() {
    let senders = [
        ("s0", "s0-secret"),
        ("s1", "s1-secret"),
        ("s2", "s2-secret"),
        ("s3", "s3-secret"),
    ];
    let server = server_with("[im]\nroster_max_items = 3\n", &senders);
    for (i, sender) in senders.iter().enumerate() {
        let mut client = login(&server, *sender, Some("asks"));
        // Available, as a client asking for subscriptions is: an error for
        // the account reaches its available resources (RFC 6121 §8.5.2.1).
        client.send("<presence/>");
        client.send(&format!(
            "<presence type='subscribe' id='ask{i}' to='bob@localhost'/>"
        ));
        let got = collect_until_ping(&mut client, "asked");
        let errors = errors_by_id(&got);
        if i < 3 {
            assert!(errors.is_empty(), "request {i} was refused: {got:?}");
        } else {
            assert_eq!(errors.len(), 1, "{got:?}");
            assert_stanza_error_text(
                errors[0].1,
                "presence",
                Some("ask3"),
                "resource-constraint",
                "wait",
                "3 unanswered subscription requests",
            );
            assert_eq!(errors[0].1.attr("from"), Some("bob@localhost"));
        }
        client.disconnect();
    }
    // Bob gets the three kept requests when he comes online, not the
    // fourth.
    let mut bob = login(&server, BOB, Some("inbox"));
    bob.send("<presence/>");
    let mut from: Vec<String> = (0..3)
        .map(|_| {
            let el = bob.element_matching("a kept subscription request", |el| {
                el.is("presence", NS_CLIENT) && el.attr("type") == Some("subscribe")
            });
            el.attr("from").unwrap_or_default().to_string()
        })
        .collect();
    from.sort();
    assert_eq!(from, ["s0@localhost", "s1@localhost", "s2@localhost"]);
    let more = collect_until_ping(&mut bob, "no-more");
    assert!(
        !more.iter().any(|el| el.attr("type") == Some("subscribe")),
        "a fourth request was kept: {more:?}"
    );
    assert_healthy(&server, "an inbound subscription flood");
}

#[test]
fn roster_items_past_the_limit_are_refused() {
    let server = server_with("[im]\nroster_max_items = 5\n", &[]);
    let mut mallory = login(&server, MALLORY, Some("roster"));
    let set = |i: usize, name: &str| {
        format!(
            "<iq type='set' id='set{i}'><query xmlns='{NS_ROSTER}'>\
             <item jid='friend{i}@localhost' name='{name}'/></query></iq>"
        )
    };
    for i in 0..8 {
        mallory.send(&set(i, "new"));
    }
    let got = collect_until_ping(&mut mallory, "set-done");
    let answers: Vec<&Element> = got
        .iter()
        .filter(|el| el.is("iq", NS_CLIENT) && el.attr("type") != Some("set"))
        .collect();
    assert_eq!(answers.len(), 8, "{got:?}");
    for (i, answer) in answers.iter().enumerate() {
        let id = format!("set{i}");
        if i < 5 {
            assert_result(answer, &id);
        } else {
            assert_stanza_error_text(
                answer,
                "iq",
                Some(&id),
                "not-allowed",
                "cancel",
                "(5 items)",
            );
        }
    }
    // A full roster still takes changes to its items.
    mallory.send(&set(0, "renamed"));
    let answer = mallory.element_matching("the answer to set0", |el| {
        el.is("iq", NS_CLIENT) && el.attr("type") != Some("set")
    });
    assert_result(&answer, "set0");
    assert_healthy(&server, "a roster flood");
}

#[test]
fn offline_messages_past_the_count_limit_are_refused_and_the_rest_kept() {
    let server = server_with("[im]\noffline_max_messages = 5\n", &[]);
    let mut alice = login(&server, ALICE, Some("sender"));
    for i in 0..8 {
        alice.send(&format!(
            "<message to='dave@localhost' id='o{i}' type='chat'><body>offline {i}</body></message>"
        ));
    }
    let got = collect_until_ping(&mut alice, "sent");
    let errors = errors_by_id(&got);
    let ids: Vec<&str> = errors.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["o5", "o6", "o7"], "{got:?}");
    for (id, error) in &errors {
        assert_stanza_error_text(
            error,
            "message",
            Some(id),
            "service-unavailable",
            "cancel",
            "(5 messages)",
        );
    }
    let mut dave = login(&server, DAVE, Some("back"));
    dave.send("<presence/>");
    let stored: Vec<Element> = (0..5)
        .map(|_| dave.element_matching("an offline message", |el| el.is("message", NS_CLIENT)))
        .collect();
    let expected: Vec<String> = (0..5).map(|i| format!("offline {i}")).collect();
    assert_eq!(bodies(&stored), expected);
    let more = collect_until_ping(&mut dave, "no-more");
    assert_eq!(bodies(&more), Vec::<String>::new(), "{more:?}");
    assert_healthy(&server, "an offline flood");
}

#[test]
fn offline_messages_past_the_byte_limit_are_refused() {
    let server = server_with("[im]\noffline_max_bytes = 3000\n", &[]);
    let mut alice = login(&server, ALICE, Some("sender"));
    // About 1,100 bytes each once stored (with their delay stamp): two fit.
    let filler = "x".repeat(900);
    for i in 0..4 {
        alice.send(&format!(
            "<message to='dave@localhost' id='b{i}' type='chat'><body>{i} {filler}</body></message>"
        ));
    }
    let got = collect_until_ping(&mut alice, "sent");
    let errors = errors_by_id(&got);
    let ids: Vec<&str> = errors.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["b2", "b3"], "{got:?}");
    for (id, error) in &errors {
        assert_stanza_error_text(
            error,
            "message",
            Some(id),
            "service-unavailable",
            "cancel",
            "(3000 bytes)",
        );
    }
    let mut dave = login(&server, DAVE, Some("back"));
    dave.send("<presence/>");
    let stored: Vec<Element> = (0..2)
        .map(|_| dave.element_matching("an offline message", |el| el.is("message", NS_CLIENT)))
        .collect();
    assert_eq!(
        bodies(&stored),
        [format!("0 {filler}"), format!("1 {filler}")]
    );
    assert_healthy(&server, "an offline flood by size");
}

/// Joins (and so creates) `room` as `nick`; returns the room's answer to
/// the join: the self-presence, or an error.
fn join(client: &mut Client, room: &str, nick: &str) -> Element {
    let occupant = format!("{room}@conference.localhost/{nick}");
    client.send(&format!(
        "<presence to='{occupant}'><x xmlns='{NS_MUC}'/></presence>"
    ));
    client.element_matching(&format!("the answer to joining {room}"), |el| {
        el.is("presence", NS_CLIENT)
            && el.attr("from") == Some(occupant.as_str())
            && (el.attr("type") == Some("error")
                || el
                    .get_child("x", "http://jabber.org/protocol/muc#user")
                    .is_some_and(|x| {
                        x.children()
                            .any(|s| s.name == "status" && s.attr("code") == Some("110"))
                    }))
    })
}

fn assert_joined(answer: &Element) {
    assert_ne!(answer.attr("type"), Some("error"), "{answer}");
}

#[test]
fn room_creation_past_the_limits_is_refused() {
    let server = server_with("[muc]\nmax_rooms_per_user = 3\nmax_rooms = 5\n", &[]);
    let mut mallory = login(&server, MALLORY, Some("rooms"));
    for i in 0..3 {
        assert_joined(&join(&mut mallory, &format!("room{i}"), "m"));
    }
    // A fourth room of her own is one too many.
    let refused = join(&mut mallory, "room3", "m");
    assert_stanza_error_text(
        &refused,
        "presence",
        None,
        "resource-constraint",
        "wait",
        "you may own at most 3 rooms",
    );
    // Others fill the service up to its limit of five rooms.
    let mut carol = login(&server, CAROL, Some("rooms"));
    assert_joined(&join(&mut carol, "room3", "c"));
    assert_joined(&join(&mut carol, "room4", "c"));
    let refused = join(&mut carol, "room5", "c");
    assert_stanza_error_text(
        &refused,
        "presence",
        None,
        "resource-constraint",
        "wait",
        "limit of 5 rooms",
    );
    // A room that empties is gone, and its place can be taken again.
    mallory.send("<presence type='unavailable' to='room0@conference.localhost/m'/>");
    mallory.element_matching("the exit from room0", |el| {
        el.attr("type") == Some("unavailable")
            && el.attr("from") == Some("room0@conference.localhost/m")
    });
    assert_joined(&join(&mut carol, "room5", "c"));
    carol.disconnect();
    mallory.disconnect();
    assert_healthy(&server, "a room creation flood");
}
