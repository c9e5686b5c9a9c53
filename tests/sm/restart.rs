//! Sessions that survive a restart: stopped with SIGTERM (in-process: the
//! same shutdown path), a resumable session is saved and resumed on the
//! new server with nothing lost; killed with SIGKILL (the real binary),
//! nothing was saved, resumption fails, and what was stored is delivered
//! at the next login, once.

use std::time::Duration;

use perch::testing::TempDir;
use rustix::process::Signal;

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
fn a_saved_session_whose_time_ran_out_stores_its_messages_offline() {
    let server = server_with("resume_timeout_secs = 1\n");
    let (mut alice, _id) = sm_login(&server, ALICE, "phone", true);
    alice.send("<presence/>");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "late", 5);
    bob.ping("routed");
    let dir_server = server
        .restart(TestOptions {
            extra_config: "resume_timeout_secs = 1\n".into(),
            ..TestOptions::default()
        })
        .expect("restart");
    alice.cut();
    // Its second ran out while the server was down, or runs out now.
    std::thread::sleep(Duration::from_millis(1500));
    let mut alice = login(&dir_server, ALICE, Some("laptop"));
    alice.send("<presence/>");
    let got = bodies(&mut alice, "late", 5);
    let want: Vec<String> = (0..5).map(|i| format!("late{i}")).collect();
    assert_eq!(got, want);
    let pong = alice.ping("no-duplicates");
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
}

fn binary_config(dir: &TempDir, port: u16) -> std::path::PathBuf {
    let text = format!(
        "data_dir = \"{}\"\nlog_level = \"info\"\n\n[[host]]\ndomain = \"localhost\"\n\n\
         [[listener]]\nkind = \"c2s\"\naddress = \"127.0.0.1\"\nport = {port}\n\n\
         [c2s]\nrequire_encryption = false\nallow_plaintext_auth = true\n",
        dir.path().join("data").display()
    );
    let path = dir.path().join("perch.toml");
    std::fs::write(&path, text).expect("config");
    path
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn after_sigkill_resumption_fails_and_stored_messages_arrive_once() {
    let dir = TempDir::new("sm-kill");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let config = binary_config(&dir, port);
    common::process::create_database(&dir.path().join("data"));
    for (user, password) in [("alice@localhost", ALICE.1), ("bob@localhost", BOB.1)] {
        common::process::user(
            &config,
            &["add", user, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
        .expect_code(0);
    }
    let mut server = common::process::Server::start(&config);
    let addr = server.c2s();
    let mut alice = login_at(addr, ALICE, Some("phone"));
    alice.send(&format!("<enable xmlns='{NS_SM}' resume='true'/>"));
    let enabled = alice.element();
    let id = enabled.attr("id").expect("resumable").to_string();
    let mut bob = login_at(addr, BOB, Some("pc"));
    // To her full JID while she is online: in flight, not stored.
    send_messages(&mut bob, "alice@localhost/phone", "live", 10);
    bob.ping("routed");
    alice.cut();
    std::thread::sleep(Duration::from_millis(300));
    // She never sent presence, so she is not available: messages to her
    // bare JID are stored offline (durably) while her session waits.
    send_messages(&mut bob, "alice@localhost", "queued", 3);
    bob.ping("queued");
    server.signal(Signal::KILL);
    server.wait_exit(Duration::from_secs(10)).expect("killed");
    let server = common::process::Server::start(&config);
    let addr = server.c2s();
    // The new process knows nothing of the old session.
    let mut again = authenticate(addr, ALICE).expect("login");
    again.restart();
    again.send(&format!("<resume xmlns='{NS_SM}' previd='{id}' h='10'/>"));
    let failed = again.element();
    assert!(failed.is("failed", NS_SM), "{failed}");
    assert!(
        failed
            .get_child("item-not-found", perch::stanza::NS_STANZAS)
            .is_some(),
        "{failed}"
    );
    // The stream goes on: she binds and gets what was stored, once.
    again.bind(Some("phone"));
    let mut bob = login_at(addr, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost", "stored", 2);
    bob.ping("stored");
    again.send("<presence/>");
    let mut got = Vec::new();
    loop {
        let el = again.element();
        if el.name == "iq" && el.attr("id") == Some("end") {
            break;
        }
        if let Some(b) = body(&el) {
            got.push(b);
        }
        if got.len() == 5 {
            again.send("<iq type='get' id='end'><ping xmlns='urn:xmpp:ping'/></iq>");
        }
    }
    // What was stored arrives, once; what was in flight to her connection
    // ("live") was never stored and is not delivered twice.
    assert_eq!(
        got,
        ["queued0", "queued1", "queued2", "stored0", "stored1"],
        "log:\n{}",
        server.log()
    );
}
