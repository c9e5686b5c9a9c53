//! Restarts and crashes: a saved session whose time ran out while the
//! server was down; offline messages given to a stream-managed session
//! stay stored until acknowledged (so neither a session that ends
//! unacknowledged nor a crash loses them); killed with SIGKILL (the real
//! binary), nothing was saved, resumption fails, and what was stored is
//! delivered at the next login, once.

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

/// Reads until `count` bodies came, then pings and reads every body until
/// the answer: all of them, so a duplicate would show.
fn bodies_until_pong(client: &mut Client, count: usize) -> Vec<String> {
    let mut got = bodies(client, "", count);
    client.send("<iq type='get' id='end'><ping xmlns='urn:xmpp:ping'/></iq>");
    loop {
        let el = client.element();
        if el.name == "iq" && el.attr("id") == Some("end") {
            return got;
        }
        got.extend(body(&el));
    }
}

#[test]
fn offline_messages_a_session_never_acknowledged_come_again_once() {
    let server = server_with("resume_timeout_secs = 1\n");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost", "early", 2);
    bob.ping("stored");
    let (mut alice, _id) = sm_login(&server, ALICE, "phone", true);
    alice.send("<presence/>");
    assert_eq!(bodies(&mut alice, "early", 2), ["early0", "early1"]);
    alice.cut();
    // The session ends unresumed; the messages it never acknowledged are
    // still in storage, and not stored a second time.
    std::thread::sleep(Duration::from_millis(2000));
    let mut alice = login(&server, ALICE, Some("laptop"));
    alice.send("<presence/>");
    assert_eq!(bodies_until_pong(&mut alice, 2), ["early0", "early1"]);
}

#[test]
fn acknowledged_offline_messages_are_deleted() {
    let server = server_with("");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost", "early", 2);
    bob.ping("stored");
    let (mut alice, _id) = sm_login(&server, ALICE, "phone", true);
    alice.send("<presence/>");
    alice.send("<iq type='get' id='mark'><ping xmlns='urn:xmpp:ping'/></iq>");
    // Every stanza up to the ping's answer counts in her `h`.
    let mut handled = 0u32;
    let mut got = Vec::new();
    loop {
        let el = alice.element();
        if el.ns == NS_SM {
            continue;
        }
        handled += 1;
        got.extend(body(&el));
        if el.name == "iq" && el.attr("id") == Some("mark") {
            break;
        }
    }
    assert_eq!(got, ["early0", "early1"]);
    alice.send(&format!("<a xmlns='{NS_SM}' h='{handled}'/>"));
    alice.disconnect();
    // Acknowledged: gone from storage, so a new login gets nothing.
    let mut alice = login(&server, ALICE, Some("laptop"));
    alice.send("<presence/>");
    assert!(bodies_until_pong(&mut alice, 0).is_empty());
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
    let mut bob = login_at(addr, BOB, Some("pc"));
    // Stored before she comes: given to her session, never acknowledged.
    send_messages(&mut bob, "alice@localhost", "early", 2);
    bob.ping("stored");
    let mut alice = login_at(addr, ALICE, Some("phone"));
    alice.send(&format!("<enable xmlns='{NS_SM}' resume='true'/>"));
    let enabled = alice.element();
    let id = enabled.attr("id").expect("resumable").to_string();
    alice.send("<presence/>");
    assert_eq!(bodies(&mut alice, "early", 2), ["early0", "early1"]);
    // In flight to her connection, and queued while her session waits:
    // never stored, so the crash loses them (and never delivers twice).
    send_messages(&mut bob, "alice@localhost/phone", "live", 3);
    bob.ping("live");
    alice.cut();
    std::thread::sleep(Duration::from_millis(300));
    send_messages(&mut bob, "alice@localhost", "queued", 2);
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
    again.send("<presence/>");
    let got = bodies_until_pong(&mut again, 2);
    assert_eq!(got, ["early0", "early1"], "log:\n{}", server.log());
}
