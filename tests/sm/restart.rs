//! Sessions that survive a restart: stopped with SIGTERM (in-process: the
//! same shutdown path), a resumable session is saved and resumed on the
//! new server with nothing lost.

use super::*;

/// Reads until `count` bodies starting with `prefix` came; returns them.
fn bodies(client: &mut Client, prefix: &str, count: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < count {
        let el = client.element();
        if let Some(b) = body(&el).filter(|b| b.starts_with(prefix)) {
            got.push(b);
        }
    }
    got
}

#[test]
fn a_session_resumed_after_a_clean_restart_gets_every_message_once() {
    let server = server_with("");
    let (mut alice, id) = sm_login(&server, ALICE, "phone", true);
    let id = id.expect("resumable");
    alice.send("<presence/>");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "r", 100);
    // Bob's messages are routed (the ping answer comes after them).
    bob.ping("routed");
    // Alice acknowledged none of them when the server stops.
    let server = server
        .restart(TestOptions {
            extra_config: String::new(),
            ..TestOptions::default()
        })
        .expect("restart");
    alice.cut();
    let (mut alice, answer) = resume_as(&server, ALICE, &id, 0);
    assert!(answer.is("resumed", NS_SM), "{answer}");
    // Her presence was handled before the restart: h counts it.
    assert_eq!(answer.attr("h"), Some("1"), "{answer}");
    let got = bodies(&mut alice, "r", 100);
    let want: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
    assert_eq!(got, want);
    // Still bound as before: a message to her full JID arrives, once.
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "after", 1);
    assert_eq!(bodies(&mut alice, "", 1), ["after0"]);
    let pong = alice.ping("nothing-else");
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
}

#[test]
fn a_resumed_client_is_told_it_left_a_room_that_did_not_survive() {
    let server = server_with("");
    let room = "temp@conference.localhost";
    // A temporary room: it is gone after the restart.
    let bob = bobs_room(&server, room);
    let (mut alice, id) = sm_login(&server, ALICE, "phone", true);
    let id = id.expect("resumable");
    alice.send("<presence/>");
    alice.send(&format!(
        "<presence to='{room}/Alice'><x xmlns='{NS_MUC}'/></presence>"
    ));
    let mut h = 0u32;
    loop {
        let el = alice.element();
        if el.ns == NS_SM {
            continue;
        }
        h += 1;
        if el.name == "message" && el.get_child("subject", NS_CLIENT).is_some() {
            break;
        }
    }
    drop(bob);
    let server = server.restart(TestOptions::default()).expect("restart");
    alice.cut();
    let (mut alice, answer) = resume_as(&server, ALICE, &id, h);
    assert!(answer.is("resumed", NS_SM), "{answer}");
    let seen = until_pong(&mut alice, "after");
    let gone = seen
        .iter()
        .find(|el| {
            el.name == "presence"
                && el.attr("from") == Some(&*format!("{room}/Alice"))
                && el.attr("type") == Some("unavailable")
        })
        .unwrap_or_else(|| panic!("no unavailable self-presence from the room: {seen:?}"));
    let codes: Vec<_> = gone
        .get_child("x", NS_MUC_USER)
        .map(|x| {
            x.children()
                .filter_map(|c| c.attr("code"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(codes, ["110", "332"], "{gone}");
}

#[test]
fn a_resumed_session_keeps_its_pep_interests_across_the_restart() {
    let server = server_with("");
    let (mut alice, id) = sm_login(&server, ALICE, "phone", true);
    let id = id.expect("resumable");
    // Capabilities asking for tunes (the hash is that of the answer below).
    let node = "https://perch.example/notify";
    let ver = "gp5XnGgrfe+M+Gdhd73yGmTUAc8=";
    alice.send(&format!(
        "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='{node}' ver='{ver}'/></presence>"
    ));
    loop {
        let el = alice.element();
        if el.name == "iq" && el.attr("id") == Some("disco") {
            break;
        }
    }
    alice.send(&format!(
        "<iq type='result' id='disco' to='alice@localhost'>\
           <query xmlns='http://jabber.org/protocol/disco#info' node='{node}#{ver}'>\
             <identity category='client' type='pc' name='Perch test'/>\
             <feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='http://jabber.org/protocol/tune+notify'/>\
             <feature var='urn:xmpp:avatar:metadata+notify'/>\
           </query></iq>"
    ));
    alice.ping("learned");
    let server = server.restart(TestOptions::default()).expect("restart");
    alice.cut();
    let (mut alice, answer) = resume_as(&server, ALICE, &id, 0);
    assert!(answer.is("resumed", NS_SM), "{answer}");
    // What was not acknowledged comes again first (the old query among it).
    until_pong(&mut alice, "replayed");
    // The server is new and did not ask again: the interest came back
    // with the session, so her own tune reaches her.
    alice.send(
        "<iq type='set' id='tune'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
           <publish node='http://jabber.org/protocol/tune'><item id='current'>\
             <tune xmlns='http://jabber.org/protocol/tune'><title>After</title></tune>\
           </item></publish></pubsub></iq>",
    );
    loop {
        let el = alice.element();
        if el.name == "iq" && el.attr("id") == Some("disco") && el.attr("type") == Some("get") {
            panic!("asked for capabilities again: {el}");
        }
        if el.name == "message"
            && el
                .get_child("event", "http://jabber.org/protocol/pubsub#event")
                .is_some_and(|e| e.to_string().contains("After"))
        {
            break;
        }
    }
}
