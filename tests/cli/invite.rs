//! `perch invite`, `perch invite list` and `perch invite revoke`, without
//! and with a running server: the printed URI, landing-page URL and QR
//! code, the checks of the arguments, and that an invite made on the
//! database file works for a registration once the server runs.

use std::path::Path;

use perch::testing::TempDir;

use crate::common::Client;
use crate::harness::*;

/// `perch invite ARGS --config CONFIG` in the config's directory.
fn invite(config: &Path, args: &[&str]) -> Output {
    let mut all = vec!["invite"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config.to_str().expect("UTF-8 temp path")]);
    cli(
        config.parent().expect("config file has a directory"),
        &all,
        None,
    )
}

/// The token of the invite a `perch invite` printed (its first word).
fn token_of(out: &Output) -> String {
    out.stdout
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no output: {}", out.describe()))
        .to_string()
}

/// A config with an HTTP listener (and an external URL) besides c2s.
fn config_with_http(dir: &TempDir) -> std::path::PathBuf {
    let mut text = server_config(&dir.path().join("data"), 0);
    text.push_str(
        "\n[[listener]]\nkind = \"http\"\naddress = \"127.0.0.1\"\nport = 0\n\n[http]\nexternal_url = \"https://chat.example.org\"\n",
    );
    write_file(&dir.path().join("perch.toml"), &text)
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn invite_create_list_revoke_offline() {
    let dir = TempDir::new("cli-invite");
    let config = config_with_http(&dir);
    let data = dir.path().join("data");
    invite(&config, &[])
        .expect_code(1)
        .expect_stderr("start the server first (perch run)");
    create_database(&data);
    user(
        &config,
        &["add", "romeo@localhost", "--password-stdin"],
        Some("password1\n"),
    )
    .expect_code(0);

    // Piped: the lines, no QR code.
    let out = invite(&config, &[]);
    out.expect_code(0)
        .expect_stdout(" account invite on localhost, 1 use left, expires ")
        .expect_stdout("uri: xmpp:localhost?register;preauth=")
        .expect_stdout("url: https://chat.example.org/invite/");
    assert!(!out.stdout.contains('█'), "{}", out.describe());
    let token = token_of(&out);
    assert_eq!(token.len(), 26, "{}", out.describe());

    // --qr draws the landing page's URL in half blocks.
    let drawn = invite(
        &config,
        &["--qr", "--for", "grandma@localhost", "--expires", "12h"],
    );
    drawn
        .expect_code(0)
        .expect_stdout("account invite on localhost for grandma@localhost")
        .expect_stdout("uri: xmpp:grandma@localhost?register;preauth=");
    let qr_lines: Vec<&str> = drawn
        .stdout
        .lines()
        .filter(|l| l.contains('█') || l.contains('▀') || l.contains('▄'))
        .collect();
    assert!(qr_lines.len() > 10, "{}", drawn.describe());
    // The same name cannot be reserved twice.
    invite(&config, &["--for", "grandma@localhost"])
        .expect_code(1)
        .expect_stderr("exists already");

    let contact = invite(
        &config,
        &[
            "--inviter",
            "romeo@localhost",
            "--group",
            "Family",
            "--uses",
            "3",
        ],
    );
    contact
        .expect_code(0)
        .expect_stdout("contact invite on localhost, contact of romeo@localhost (group \"Family\"), 3 uses left")
        .expect_stdout("uri: xmpp:romeo@localhost?roster;preauth=");

    // Bad arguments: exit 2 with what to do instead.
    invite(&config, &["--expires", "7w"])
        .expect_code(2)
        .expect_stderr("d (days), h (hours) or m (minutes)");
    invite(&config, &["--group", "Family"])
        .expect_code(2)
        .expect_stderr("--inviter");
    invite(&config, &["--uses", "0"])
        .expect_code(2)
        .expect_stderr("--uses");
    invite(&config, &["--for", "x@elsewhere.org"]).expect_code(2);
    invite(&config, &["--inviter", "nobody@localhost"])
        .expect_code(1)
        .expect_stderr("nobody@localhost (the inviter) does not exist");
    invite(&config, &["--admin", "--uses", "2"])
        .expect_code(2)
        .expect_stderr("--admin");

    // Administrators: none yet, then one granted by hand, then revoked.
    user(&config, &["admin"], None)
        .expect_code(0)
        .expect_stdout("no administrators");
    user(&config, &["admin", "romeo@localhost"], None)
        .expect_code(0)
        .expect_stdout("romeo@localhost is now a server administrator");
    user(&config, &["admin"], None)
        .expect_code(0)
        .expect_stdout("romeo@localhost (granted ");
    user(&config, &["admin", "nobody@localhost"], None).expect_code(1);
    user(&config, &["admin", "romeo@localhost", "--revoke"], None)
        .expect_code(0)
        .expect_stdout("romeo@localhost is no longer a server administrator");
    user(&config, &["admin", "--revoke"], None)
        .expect_code(1)
        .expect_stderr("--revoke needs the account");

    let list = invite(&config, &["list"]);
    list.expect_code(0);
    assert_eq!(list.stdout.lines().count(), 3, "{}", list.describe());
    assert!(list.stdout.contains(&token));
    invite(&config, &["revoke", &token])
        .expect_code(0)
        .expect_stdout(&format!("revoked invite {token}\n"));
    invite(&config, &["revoke", &token])
        .expect_code(1)
        .expect_stderr("does not exist");
    invite(&config, &["revoke", "not-a-token"]).expect_code(2);
    assert_eq!(invite(&config, &["list"]).stdout.lines().count(), 2);

    let help = cli(dir.path(), &["invite", "--help"], None);
    help.expect_code(0)
        .expect_stdout("--for")
        .expect_stdout("--inviter")
        .expect_stdout("--expires")
        .expect_stdout("admins = [...]");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn invite_through_the_running_server_registers() {
    let dir = TempDir::new("cli-invite-online");
    let config = standard_config(&dir);
    create_database(&dir.path().join("data"));
    let server = Server::start(&config);
    let out = invite(&config, &[]);
    out.expect_code(0)
        .expect_stdout("note: the landing page needs an http or https [[listener]]");
    assert!(
        server.wait_for_log("admin: invite created", IO_TIMEOUT),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains(&token_of(&out)),
        "the log holds no token"
    );
    let token = token_of(&out);
    let mut client = Client::connect(server.c2s());
    client.open();
    let ok = client.iq(&format!(
        "<iq type='set' id='p1'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></iq>"
    ));
    assert_eq!(ok.attr("type"), Some("result"), "{ok}");
    let created = client.iq(
        "<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>nurse</username><password>s3cret-pw</password></query></iq>",
    );
    assert_eq!(created.attr("type"), Some("result"), "{created}");
    login_at(server.c2s(), ("nurse", "s3cret-pw"), None);
    invite(&config, &["list"])
        .expect_code(0)
        .expect_stdout("no invites\n");
}
