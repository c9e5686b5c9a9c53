//! What a resumed session still is (XEP-0198 §5): the same full JID, the
//! same presence (contacts never see it go), the same room occupancy, the
//! same carbons state, and the count of what the server handled.

use super::*;

#[test]
fn resumed_tells_how_many_of_the_clients_stanzas_were_handled() {
    let server = server_with("");
    let mut bob = login(&server, BOB, Some("pc"));
    let mut alice = Sm::login(&server, ALICE, "phone");
    send_messages(&mut alice.client, "bob@localhost/pc", "m", 3);
    alice
        .client
        .send("<presence to='bob@localhost/pc'><status>directed</status></presence>");
    for i in 0..3 {
        let el = bob.element_matching("a message", |el| el.name == "message");
        assert_eq!(body(&el), Some(format!("m{i}")));
    }
    // The ping's answer shows everything before it was handled.
    alice.until_pong("last");
    let lost = alice.cut();
    let (_alice, handled) = lost.resume(&server, ALICE);
    assert_eq!(handled, 5);
}

#[test]
fn contacts_never_see_a_resumed_session_go() {
    let server = server_with("");
    befriend(&server);
    let mut bob = login(&server, BOB, Some("pc"));
    go_online(&mut bob, "<presence/>");
    let mut alice = Sm::login(&server, ALICE, "phone");
    alice
        .client
        .send("<presence><status>on the move</status></presence>");
    alice.stanza_matching("Bob's presence", |el| {
        is_presence(el, "bob@localhost/pc", None)
    });
    bob.element_matching("Alice's presence", |el| {
        is_presence(el, "alice@localhost/phone", None)
    });
    alice.until_pong("online");
    let lost = alice.cut();
    std::thread::sleep(settle());
    // Bob changes his presence meanwhile; he hears nothing of Alice.
    bob.send("<presence><show>away</show></presence>");
    let seen = until_pong(&mut bob, "outage");
    assert!(
        !seen
            .iter()
            .any(|el| el.attr("from") == Some("alice@localhost/phone")),
        "Bob heard of Alice during the outage: {seen:?}"
    );
    let (mut alice, _) = lost.resume(&server, ALICE);
    // She gets what she missed, under her own full JID.
    let missed = alice.until_pong("back");
    assert!(
        missed
            .iter()
            .any(|el| is_presence(el, "bob@localhost/pc", None)
                && el
                    .get_child("show", NS_CLIENT)
                    .is_some_and(|s| s.text() == "away")),
        "Bob's new presence did not reach Alice: {missed:?}"
    );
    let pong = alice.client.ping("jid");
    assert_eq!(pong.attr("to"), Some("alice@localhost/phone"), "{pong}");
    // Bob saw neither a leave nor a new arrival, and she is still
    // available: a message to her bare JID reaches her.
    let seen = until_pong(&mut bob, "after");
    assert!(
        !seen
            .iter()
            .any(|el| el.attr("from") == Some("alice@localhost/phone")),
        "Bob heard of Alice's resumption: {seen:?}"
    );
    bob.send(
        "<message to='alice@localhost' type='chat' id='b'><body>still there?</body></message>",
    );
    let el = alice.stanza_matching("Bob's message", |el| el.name == "message");
    assert_eq!(body(&el), Some("still there?".to_string()), "{el}");
}

#[test]
fn a_resumed_session_stays_in_its_rooms() {
    const ROOM: &str = "den@conference.localhost";
    let server = server_with("");
    let mut bob = bobs_room(&server, ROOM);
    let mut alice = Sm::login(&server, ALICE, "phone");
    alice.client.send(&format!(
        "<presence to='{ROOM}/Alice'><x xmlns='{NS_MUC}'/></presence>"
    ));
    alice.stanza_matching("her own occupant presence", |el| {
        is_presence(el, &format!("{ROOM}/Alice"), None)
    });
    alice.until_pong("joined");
    bob.element_matching("Alice's arrival", |el| {
        is_presence(el, &format!("{ROOM}/Alice"), None)
    });
    let lost = alice.cut();
    std::thread::sleep(settle());
    bob.send(&format!(
        "<message to='{ROOM}' type='groupchat' id='g1'><body>while you were away</body></message>"
    ));
    let seen = until_pong(&mut bob, "outage");
    assert!(
        seen.iter()
            .any(|el| body(el).as_deref() == Some("while you were away")),
        "Bob's message was not echoed: {seen:?}"
    );
    assert!(
        !seen.iter().any(|el| el.name == "presence"),
        "the room announced a change during the outage: {seen:?}"
    );
    let (mut alice, _) = lost.resume(&server, ALICE);
    let el = alice.stanza_matching("the groupchat message", |el| el.name == "message");
    assert_eq!(body(&el).as_deref(), Some("while you were away"), "{el}");
    assert_eq!(
        el.attr("from"),
        Some(format!("{ROOM}/Bob").as_str()),
        "{el}"
    );
    // Still an occupant: she may speak, and nobody saw her leave or join.
    alice.client.send(&format!(
        "<message to='{ROOM}' type='groupchat' id='g2'><body>back</body></message>"
    ));
    let el = bob.element_matching("Alice's message", |el| el.name == "message");
    assert_eq!(body(&el).as_deref(), Some("back"), "{el}");
    assert_eq!(
        el.attr("from"),
        Some(format!("{ROOM}/Alice").as_str()),
        "{el}"
    );
    let seen = until_pong(&mut bob, "after");
    assert!(
        !seen.iter().any(|el| el.name == "presence"),
        "the room announced a change after the resumption: {seen:?}"
    );
}

/// Whether `el` is a carbon copy of a received message with `text`.
fn received_carbon(el: &Element, text: &str) -> bool {
    el.get_child("received", NS_CARBONS)
        .and_then(|r| r.get_child("forwarded", NS_FORWARD))
        .and_then(|f| f.get_child("message", NS_CLIENT))
        .and_then(body)
        .is_some_and(|b| b == text)
}

#[test]
fn a_resumed_session_keeps_carbons_on() {
    let server = server_with("");
    let mut phone = Sm::login(&server, ALICE, "phone");
    phone.client.send(&format!(
        "<iq type='set' id='carbons'><enable xmlns='{NS_CARBONS}'/></iq>"
    ));
    phone.stanza_matching("the carbons result", |el| {
        el.attr("id") == Some("carbons") && el.attr("type") == Some("result")
    });
    phone.client.send("<presence/>");
    phone.stanza_matching("her own presence", |el| {
        is_presence(el, "alice@localhost/phone", None)
    });
    let mut laptop = login(&server, ALICE, Some("laptop"));
    go_online(&mut laptop, "<presence/>");
    let mut bob = login(&server, BOB, Some("pc"));
    phone.until_pong("ready");
    let lost = phone.cut();
    std::thread::sleep(settle());
    bob.send(
        "<message to='alice@localhost/laptop' type='chat' id='b1'><body>during</body></message>",
    );
    laptop.element_matching("Bob's first message", |el| {
        body(el).as_deref() == Some("during")
    });
    let (mut phone, _) = lost.resume(&server, ALICE);
    phone.stanza_matching("the carbon of the message sent during the outage", |el| {
        received_carbon(el, "during")
    });
    bob.send(
        "<message to='alice@localhost/laptop' type='chat' id='b2'><body>after</body></message>",
    );
    laptop.element_matching("Bob's second message", |el| {
        body(el).as_deref() == Some("after")
    });
    phone.stanza_matching("the carbon of the message sent after", |el| {
        received_carbon(el, "after")
    });
}
