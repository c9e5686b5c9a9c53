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
