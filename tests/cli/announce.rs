//! `perch announce`, `perch motd …` and `perch user disable|enable`, with
//! and without a running server.

use perch::testing::TempDir;

use crate::common::{Client, Sasl};
use crate::harness::*;

fn perch_in(config: &std::path::Path, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let config_str = config.to_str().expect("UTF-8 temp path");
    all.extend_from_slice(&["--config", config_str]);
    cli(
        config.parent().expect("config file has a directory"),
        &all,
        None,
    )
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn announce_and_motd_without_server() {
    let dir = TempDir::new("cli-announce-offline");
    let config = standard_config(&dir);
    create_database(&dir.path().join("data"));

    // Nobody is online without a server: "unavailable".
    perch_in(&config, &["announce", "Hello", "everyone"])
        .expect_code(69)
        .expect_stderr("the server is not running");
    // A bad host is a bad argument, server or not.
    perch_in(&config, &["announce", "--domain", "example.org", "Hi"])
        .expect_code(2)
        .expect_stderr("'example.org' is not a host of this server");

    // The message of the day is kept in the database.
    perch_in(&config, &["motd", "set", "Welcome", "home"])
        .expect_code(0)
        .expect_stdout("localhost: message of the day set");
    perch_in(&config, &["motd", "show"])
        .expect_code(0)
        .expect_stdout("  Welcome home");
    perch_in(&config, &["motd", "clear"])
        .expect_code(0)
        .expect_stdout("localhost: message of the day cleared");
    perch_in(&config, &["motd", "show"])
        .expect_code(0)
        .expect_stdout("localhost: no message of the day");
    perch_in(&config, &["motd", "set"])
        .expect_code(2)
        .expect_stderr("the text is empty");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn announce_motd_and_disable_with_server() {
    let dir = TempDir::new("cli-announce-online");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    create_database(&data);
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("alice-pw-42\n"),
    )
    .expect_code(0);
    perch_in(&config, &["motd", "set", "Set while stopped"]).expect_code(0);

    let server = Server::start(&config);
    server.wait_ready();
    let addr = server.c2s();
    let mut alice = login_at(addr, ("alice", "alice-pw-42"), Some("phone"));
    alice.send("<presence/>");
    let motd = alice.element_matching("the message of the day", |el| el.name == "message");
    assert!(motd.to_string().contains("Set while stopped"), "{motd}");

    perch_in(&config, &["announce", "Dinner", "is", "ready"])
        .expect_code(0)
        .expect_stdout("localhost: announced to 1 online resource");
    let message = alice.element_matching("the announcement", |el| el.name == "message");
    assert_eq!(message.attr("from"), Some("localhost"), "{message}");
    assert!(message.to_string().contains("Dinner is ready"), "{message}");

    // Through the running server: the new text is what the next login gets.
    perch_in(&config, &["motd", "set", "Changed live"]).expect_code(0);
    perch_in(&config, &["motd", "show"])
        .expect_code(0)
        .expect_stdout("  Changed live");

    // Disabling ends her session and refuses her login; enabling undoes it.
    user(&config, &["disable", "alice@localhost"], None)
        .expect_code(0)
        .expect_stdout("disabled alice@localhost");
    alice.expect_stream_error("not-authorized");
    let mut client = Client::connect(addr);
    client.open();
    match client.auth_plain("alice", "alice-pw-42") {
        Sasl::Failure { condition, .. } => assert_eq!(condition, "account-disabled"),
        other => panic!("a disabled account logged in: {other:?}"),
    }
    user(&config, &["enable", "alice@localhost"], None)
        .expect_code(0)
        .expect_stdout("re-enabled alice@localhost");
    authenticate(addr, ("alice", "alice-pw-42")).expect("alice logs in again");
    user(&config, &["disable", "nobody@localhost"], None)
        .expect_code(1)
        .expect_stderr("account nobody@localhost does not exist");
}
