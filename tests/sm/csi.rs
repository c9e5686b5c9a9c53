//! Client state indication (XEP-0352): what the server holds back while
//! the client says it is inactive, what it collapses, and what sends it
//! all at once.

use super::*;

fn inactive(client: &mut Client) {
    client.send(&format!("<inactive xmlns='{NS_CSI}'/>"));
    // Handled before the ping: from here on the server holds.
    assert!(until_pong(client, "inactive").is_empty());
}

fn chat_state(to: &str, state: &str, id: &str) -> String {
    format!("<message type='chat' to='{to}' id='{id}'><{state} xmlns='{NS_CHATSTATES}'/></message>")
}

/// A stanza in a few words, for comparing sequences.
fn describe(el: &Element) -> String {
    let from = el.attr("from").unwrap_or("-");
    match el.name.as_ref() {
        "presence" => {
            let show = el.get_child("show", NS_CLIENT).map(|s| s.text());
            let state = show.or_else(|| el.attr("type").map(str::to_string));
            format!(
                "presence {from} {}",
                state.as_deref().unwrap_or("available")
            )
        }
        "message" => match body(el) {
            Some(text) => format!("message {from} body {text}"),
            None => {
                let state = el
                    .children()
                    .find(|c| c.ns == NS_CHATSTATES)
                    .map_or("?", |c| c.name.as_ref());
                format!("message {from} {state}")
            }
        },
        "iq" => format!(
            "iq {from} {} {}",
            el.attr("type").unwrap_or("-"),
            el.attr("id").unwrap_or("-")
        ),
        _ => el.to_string(),
    }
}

/// The next `n` elements, described.
fn next(client: &mut Client, n: usize) -> Vec<String> {
    (0..n).map(|_| describe(&client.element())).collect()
}

/// Alice and Bob subscribed to each other, online, with nothing unread.
fn online_pair(server: &TestServer) -> (Client, Client) {
    befriend(server);
    let mut bob = login(server, BOB, Some("pc"));
    go_online(&mut bob, "<presence/>");
    let mut alice = login(server, ALICE, Some("phone"));
    go_online(&mut alice, "<presence/>");
    bob.element_matching("Alice's presence", |el| {
        is_presence(el, "alice@localhost/phone", None)
    });
    until_pong(&mut alice, "a");
    until_pong(&mut bob, "b");
    (alice, bob)
}

#[test]
fn presences_collapse_and_chat_states_wait_for_a_message() {
    let server = server_with("");
    let (mut alice, mut bob) = online_pair(&server);
    let mut tablet = login(&server, BOB, Some("tablet"));
    go_online(&mut tablet, "<presence/>");
    alice.element_matching("the tablet's presence", |el| {
        is_presence(el, "bob@localhost/tablet", None)
    });
    inactive(&mut alice);
    let to = "alice@localhost/phone";
    bob.send("<presence><show>away</show></presence>");
    until_pong(&mut bob, "1");
    tablet.send("<presence><show>dnd</show></presence>");
    until_pong(&mut tablet, "2");
    bob.send(&chat_state(to, "composing", "c1"));
    bob.send("<presence><show>xa</show></presence>");
    bob.send(&chat_state(to, "paused", "c2"));
    until_pong(&mut bob, "3");
    assert_quiet(&mut alice, settle());
    // A message with a body takes everything held along, in order; of
    // the pc's two presences only the latest is left, where it came.
    bob.send(&format!(
        "<message type='chat' to='{to}' id='m1'><body>wake up</body></message>"
    ));
    assert_eq!(
        next(&mut alice, 5),
        [
            "presence bob@localhost/tablet dnd",
            "message bob@localhost/pc composing",
            "presence bob@localhost/pc xa",
            "message bob@localhost/pc paused",
            "message bob@localhost/pc body wake up",
        ]
    );
    assert_quiet(&mut alice, settle());
}

#[test]
fn active_sends_what_was_held_and_stops_holding() {
    let server = server_with("");
    let (mut alice, mut bob) = online_pair(&server);
    inactive(&mut alice);
    bob.send("<presence><show>away</show></presence>");
    bob.send(&chat_state("alice@localhost/phone", "composing", "c1"));
    until_pong(&mut bob, "1");
    assert_quiet(&mut alice, settle());
    alice.send(&format!("<active xmlns='{NS_CSI}'/>"));
    assert_eq!(
        next(&mut alice, 2),
        [
            "presence bob@localhost/pc away",
            "message bob@localhost/pc composing",
        ]
    );
    bob.send(&chat_state("alice@localhost/phone", "paused", "c2"));
    assert_eq!(next(&mut alice, 1), ["message bob@localhost/pc paused"]);
}

#[test]
fn an_iq_is_delivered_at_once() {
    let server = server_with("");
    let (mut alice, mut bob) = online_pair(&server);
    inactive(&mut alice);
    bob.send("<presence><show>away</show></presence>");
    until_pong(&mut bob, "1");
    assert_quiet(&mut alice, settle());
    bob.send(&format!(
        "<iq type='get' id='v1' to='alice@localhost/phone'><query xmlns='{NS_VERSION}'/></iq>"
    ));
    assert_eq!(
        next(&mut alice, 2),
        [
            "presence bob@localhost/pc away",
            "iq bob@localhost/pc get v1",
        ]
    );
    alice.send(&format!(
        "<iq type='result' id='v1' to='bob@localhost/pc'><query xmlns='{NS_VERSION}'>\
         <name>test</name><version>1</version></query></iq>"
    ));
    bob.try_iq_result("v1").expect("the answer reaches Bob");
}

#[test]
fn more_than_csi_max_held_sends_everything() {
    let server = server_with("csi_max_held = 5\n");
    let (mut alice, mut bob) = online_pair(&server);
    inactive(&mut alice);
    let to = "alice@localhost/phone";
    let states = [
        "composing",
        "paused",
        "composing",
        "paused",
        "composing",
        "paused",
    ];
    for (i, state) in states.iter().enumerate().take(5) {
        bob.send(&chat_state(to, state, &format!("c{i}")));
    }
    until_pong(&mut bob, "five");
    assert_quiet(&mut alice, settle());
    bob.send(&chat_state(to, states[5], "c5"));
    let got: Vec<String> = (0..6)
        .map(|_| {
            let el = alice.element();
            format!("{} {}", describe(&el), el.attr("id").unwrap_or("-"))
        })
        .collect();
    let want: Vec<String> = states
        .iter()
        .enumerate()
        .map(|(i, s)| format!("message bob@localhost/pc {s} c{i}"))
        .collect();
    assert_eq!(got, want);
    assert_quiet(&mut alice, settle());
}

/// XEP-0352 §5.2: the state is not restored with a resumed stream, which
/// starts active like any other.
#[test]
fn a_resumed_stream_starts_active() {
    let server = server_with("");
    let mut bob = login(&server, BOB, Some("pc"));
    let mut alice = Sm::login(&server, ALICE, "phone");
    alice.client.send(&format!("<inactive xmlns='{NS_CSI}'/>"));
    alice.until_pong("inactive");
    bob.send(&chat_state("alice@localhost/phone", "composing", "c1"));
    until_pong(&mut bob, "1");
    assert_quiet(&mut alice.client, settle());
    let lost = alice.cut();
    let (mut alice, _) = lost.resume(&server, ALICE);
    // What was held comes now, and what follows is not held.
    assert_eq!(
        describe(&alice.stanza()),
        "message bob@localhost/pc composing"
    );
    bob.send(&chat_state("alice@localhost/phone", "paused", "c2"));
    assert_eq!(describe(&alice.stanza()), "message bob@localhost/pc paused");
}

const RESTART_CONFIG: &str = "resume_timeout_secs = 60\n";

/// What an inactive client was spared is saved with the session; the
/// resumed stream starts active (XEP-0352 §5.2) and gets it.
#[test]
fn what_was_held_for_an_inactive_client_survives_a_restart() {
    let server = server_with(RESTART_CONFIG);
    let mut bob = login(&server, BOB, Some("pc"));
    let mut alice = Sm::login(&server, ALICE, "phone");
    alice.client.send(&format!("<inactive xmlns='{NS_CSI}'/>"));
    alice.until_pong("inactive");
    bob.send(&format!(
        "<message type='chat' to='alice@localhost/phone' id='c1'>\
         <composing xmlns='{NS_CHATSTATES}'/></message>"
    ));
    until_pong(&mut bob, "held");
    assert_quiet(&mut alice.client, settle());
    let lost = alice.lost();
    let server = server
        .restart(TestOptions {
            extra_config: RESTART_CONFIG.into(),
            ..TestOptions::default()
        })
        .expect("restart");
    let (mut alice, _) = lost.resume(&server, ALICE);
    let el = alice.stanza();
    assert_eq!(el.attr("id"), Some("c1"), "{el}");
    assert!(el.get_child("composing", NS_CHATSTATES).is_some(), "{el}");
    let mut bob = login(&server, BOB, Some("pc"));
    bob.send(&format!(
        "<message type='chat' to='alice@localhost/phone' id='c2'>\
         <paused xmlns='{NS_CHATSTATES}'/></message>"
    ));
    let el = alice.stanza();
    assert_eq!(el.attr("id"), Some("c2"), "{el}");
}

/// Room chatter waits; a message that mentions the user's nick in that
/// room is urgent and takes it along.
#[test]
fn room_chatter_waits_for_a_mention() {
    const ROOM: &str = "lounge@conference.localhost";
    let server = server_with("");
    let mut bob = bobs_room(&server, ROOM);
    let mut alice = login(&server, ALICE, Some("phone"));
    alice.send(&format!(
        "<presence to='{ROOM}/Ally'><x xmlns='{NS_MUC}'/></presence>"
    ));
    alice.element_matching("her occupant presence", |el| {
        is_presence(el, &format!("{ROOM}/Ally"), None)
    });
    until_pong(&mut alice, "joined");
    inactive(&mut alice);
    for (id, text) in [("g1", "hello all"), ("g2", "Allyson is not her")] {
        bob.send(&format!(
            "<message to='{ROOM}' type='groupchat' id='{id}'><body>{text}</body></message>"
        ));
    }
    until_pong(&mut bob, "chatter");
    assert_quiet(&mut alice, settle());
    bob.send(&format!(
        "<message to='{ROOM}' type='groupchat' id='g3'><body>what do you think, ally?</body></message>"
    ));
    let from = format!("{ROOM}/Bob");
    assert_eq!(
        next(&mut alice, 3),
        [
            format!("message {from} body hello all"),
            format!("message {from} body Allyson is not her"),
            format!("message {from} body what do you think, ally?"),
        ]
    );
    assert_quiet(&mut alice, settle());
}
