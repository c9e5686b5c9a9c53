//! `perch user …` with and without a running server.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Instant;

use perch::testing::TempDir;
use rustix::process::Signal;

use crate::harness::*;

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_commands_without_server() {
    let dir = TempDir::new("cli-user-offline");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    create_database(&data);

    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("s3cret-pw\n"),
    )
    .expect_code(0)
    .expect_stdout("created alice@localhost");
    assert!(
        !data.join("admin.sock").exists(),
        "no server: no admin socket"
    );

    // Again: refused, and the password is left alone.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("other\n"),
    )
    .expect_code(1)
    .expect_stderr("account alice@localhost exists already");

    // JIDs are normalized; a password without a trailing newline is fine.
    user(
        &config,
        &["add", "Bob@LOCALHOST", "--password-stdin"],
        Some("pw-bob-42"),
    )
    .expect_code(0)
    .expect_stdout("created bob@localhost");

    let out = user(&config, &["list"], None);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "alice@localhost\nbob@localhost\n",
        "{}",
        out.describe()
    );
    let out = user(&config, &["list", "localhost"], None);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "alice@localhost\nbob@localhost\n",
        "{}",
        out.describe()
    );
    let out = user(&config, &["list", "example.org"], None);
    out.expect_code(0);
    assert_eq!(out.stdout, "", "no accounts on another domain");

    user(
        &config,
        &["passwd", "alice@localhost", "--password-stdin"],
        Some("n3w-pass\n"),
    )
    .expect_code(0)
    .expect_stdout("changed the password of alice@localhost");
    user(
        &config,
        &["passwd", "carol@localhost", "--password-stdin"],
        Some("x\n"),
    )
    .expect_code(1)
    .expect_stderr("account carol@localhost does not exist");

    user(&config, &["del", "alice@localhost"], None)
        .expect_code(0)
        .expect_stdout("deleted alice@localhost");
    user(&config, &["del", "alice@localhost"], None)
        .expect_code(1)
        .expect_stderr("account alice@localhost does not exist");
    let out = user(&config, &["list"], None);
    out.expect_code(0);
    assert_eq!(out.stdout, "bob@localhost\n", "{}", out.describe());

    // A deleted account's address is never handed out again (tombstone).
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("again\n"),
    )
    .expect_code(1)
    .expect_stderr("alice@localhost belonged to a deleted account and cannot be registered again");

    // The accounts really are there for a server started afterwards.
    user(
        &config,
        &["add", "carol@localhost", "--password-stdin"],
        Some("again-pw\n"),
    )
    .expect_code(0);
    let server = Server::start(&config);
    authenticate(server.c2s(), ("bob", "pw-bob-42")).expect("bob logs in");
    authenticate(server.c2s(), ("carol", "again-pw")).expect("carol logs in");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_argument_errors_without_server() {
    let dir = TempDir::new("cli-user-args");
    let config = standard_config(&dir);
    create_database(&dir.path().join("data"));

    // A host the configuration does not serve: exit 2, and the message says
    // how to fix it.
    user(
        &config,
        &["add", "alice@example.org", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(2)
    .expect_stderr("'example.org' is not a host of this server")
    .expect_stderr("[[host]]");

    // An empty password, given as an empty line or as no input at all.
    for stdin in ["\n", ""] {
        user(
            &config,
            &["add", "alice@localhost", "--password-stdin"],
            Some(stdin),
        )
        .expect_code(2)
        .expect_stderr("unusable password: it is empty");
    }

    // A full JID, a bare domain, a malformed address.
    user(
        &config,
        &["add", "alice@localhost/phone", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(2)
    .expect_stderr("'alice@localhost/phone' is not a valid account address")
    .expect_stderr("without a /resource");
    user(
        &config,
        &["add", "localhost", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(2)
    .expect_stderr("'localhost' is not a valid account address");
    user(&config, &["del", "a@@localhost"], None)
        .expect_code(2)
        .expect_stderr("is not a valid account address");

    // Without --password-stdin and without a terminal: a hint, not a hang.
    user(&config, &["add", "alice@localhost"], None)
        .expect_code(1)
        .expect_stderr("--password-stdin");

    // None of this created an account.
    user(
        &config,
        &["add", "z@localhost", "--password-stdin"],
        Some("password\n"),
    )
    .expect_code(0);
    let out = user(&config, &["list"], None);
    assert_eq!(out.stdout, "z@localhost\n", "{}", out.describe());
}

/// On a fresh install (no database yet, no server) every `perch user …`
/// stops with where it looked and what to do, and creates nothing.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_commands_before_any_database() {
    let dir = TempDir::new("cli-user-nodb");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    for (args, input) in [
        (&["list"][..], None),
        (
            &["add", "alice@localhost", "--password-stdin"][..],
            Some("password\n"),
        ),
        (&["del", "alice@localhost"][..], None),
        (
            &["passwd", "alice@localhost", "--password-stdin"][..],
            Some("password\n"),
        ),
    ] {
        let out = user(&config, args, input);
        out.expect_code(1)
            .expect_stderr(&format!(
                "no database at {}",
                data.join("perch.redb").display()
            ))
            .expect_stderr(&format!("configuration {}", config.display()))
            .expect_stderr("start the server first (perch run)")
            .expect_stderr("--config FILE or $PERCH_CONFIG");
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "one line; {}",
            out.describe()
        );
    }
    assert!(!data.exists(), "nothing was created");
}

// ---------------------------------------------------------------------------
// 4. perch user … while the server runs; signals and shutdown.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_commands_through_admin_socket() {
    let dir = TempDir::new("cli-admin");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    let mut server = Server::start(&config);
    let addr = server.c2s();

    let socket = data.join("admin.sock");
    let meta = std::fs::metadata(&socket).expect("admin.sock exists while serving");
    assert!(meta.file_type().is_socket(), "admin.sock is a socket");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "admin.sock is owner-only"
    );

    // The server holds the database: the CLI must go through the socket.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("wonderland\n"),
    )
    .expect_code(0)
    .expect_stdout("created alice@localhost");
    assert!(
        server.wait_for_log("admin: created alice@localhost", IO_TIMEOUT),
        "the server did not handle the request:\n{}",
        server.log()
    );
    user(
        &config,
        &["add", "bob@localhost", "--password-stdin"],
        Some("builder-42\n"),
    )
    .expect_code(0);

    // The new account can log in at once, with that password only.
    let failure = authenticate(addr, ("alice", "wrong")).err();
    assert!(
        failure
            .as_deref()
            .is_some_and(|f| f.contains("not-authorized")),
        "a wrong password must fail with not-authorized: {failure:?}"
    );
    authenticate(addr, ("alice", "wonderland")).expect("alice logs in after user add");

    // Duplicates are refused with the same message as offline.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("x\n"),
    )
    .expect_stderr("account alice@localhost exists already");

    let out = user(&config, &["list"], None);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "alice@localhost\nbob@localhost\n",
        "{}",
        out.describe()
    );
    let out = user(&config, &["list", "localhost"], None);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "alice@localhost\nbob@localhost\n",
        "{}",
        out.describe()
    );

    // passwd takes effect for the next login.
    user(
        &config,
        &["passwd", "alice@localhost", "--password-stdin"],
        Some("landmark\n"),
    )
    .expect_code(0)
    .expect_stdout("changed the password of alice@localhost");
    assert!(
        authenticate(addr, ("alice", "wonderland")).is_err(),
        "old password"
    );
    authenticate(addr, ("alice", "landmark")).expect("alice logs in with the new password");

    // del while alice is online: her session gets a stream error, then EOF.
    let mut alice = login_at(addr, ("alice", "landmark"), Some("phone"));
    let mut bob = login_at(addr, ("bob", "builder-42"), Some("desk"));
    user(&config, &["del", "alice@localhost"], None)
        .expect_code(0)
        .expect_stdout("deleted alice@localhost");
    let (text, eof) = alice.read_to_eof();
    assert!(
        text.contains("<stream:error>") && text.contains("not-authorized"),
        "alice should get a not-authorized stream error: {text:?}"
    );
    assert!(text.contains("</stream:stream>"), "stream closed: {text:?}");
    assert!(eof, "the server should close alice's socket: {text:?}");
    assert!(
        authenticate(addr, ("alice", "landmark")).is_err(),
        "deleted account"
    );
    user(&config, &["del", "alice@localhost"], None)
        .expect_code(1)
        .expect_stderr("account alice@localhost does not exist");
    user(
        &config,
        &["passwd", "alice@localhost", "--password-stdin"],
        Some("x\n"),
    )
    .expect_code(1)
    .expect_stderr("account alice@localhost does not exist");
    // Same tombstone rule as offline.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("x\n"),
    )
    .expect_code(1)
    .expect_stderr("alice@localhost belonged to a deleted account and cannot be registered again");

    // bob stayed online; SIGTERM closes his stream with system-shutdown and
    // the server exits 0 promptly, removing the admin socket.
    let started = Instant::now();
    server.signal(Signal::TERM);
    let status = server.wait_exit(STOP_TIMEOUT);
    let elapsed = started.elapsed();
    let (text, eof) = bob.read_to_eof();
    let status = status.unwrap_or_else(|| {
        panic!(
            "perch run did not exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
            server.log()
        )
    });
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        server.log()
    );
    assert!(elapsed <= STOP_TIMEOUT, "took {elapsed:?}");
    assert!(
        text.contains("system-shutdown"),
        "bob should be told about the shutdown: {text:?}"
    );
    assert!(eof, "bob's socket should be closed");
    let log = server.log();
    assert!(log.contains("shutting down"), "log:\n{log}");
    assert!(log.contains("INFO  stopped"), "log:\n{log}");
    assert!(!socket.exists(), "admin.sock must be removed on shutdown");

    // Everything done through the socket was written to the database.
    let out = user(&config, &["list"], None);
    out.expect_code(0);
    assert_eq!(out.stdout, "bob@localhost\n", "{}", out.describe());
}

/// `perch user …` should fail the same way whether or not the server runs
/// (src/admin.rs: "so that `perch user …` behaves the same whether or not
/// the server is running"): same message, same exit code.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_argument_errors_through_admin_socket_match_offline() {
    let dir = TempDir::new("cli-admin-args");
    let config = standard_config(&dir);
    let server = Server::start(&config);
    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (
            &["add", "alice@example.org", "--password-stdin"],
            Some("pw\n"),
            "'example.org' is not a host of this server",
        ),
        (
            &["add", "alice@localhost", "--password-stdin"],
            Some("\n"),
            "unusable password: it is empty",
        ),
        (
            &["add", "alice@localhost/phone", "--password-stdin"],
            Some("pw\n"),
            "without a /resource",
        ),
        (
            &["add", "alice@localhost", "--password-stdin"],
            Some("short\n"),
            "unusable password: shorter than 8 characters (add --weak to set it anyway)",
        ),
    ];
    let mut failures = Vec::new();
    for (args, stdin, message) in cases {
        let out = user(&config, args, stdin);
        if out.code() != Some(2) || !out.stderr.contains(message) {
            failures.push(format!(
                "perch user {args:?} (stdin {stdin:?}): want exit 2 and {message:?}; {}",
                out.describe()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "with the server running:\n{}\nserver log:\n{}",
        failures.join("\n"),
        server.log()
    );
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn stale_admin_socket_after_a_crash() {
    let dir = TempDir::new("cli-crash");
    let config = standard_config(&dir);
    let socket = dir.path().join("data/admin.sock");
    let mut server = Server::start(&config);
    server.signal(Signal::KILL);
    server
        .wait_exit(STOP_TIMEOUT)
        .expect("perch run dies on SIGKILL");
    assert!(socket.exists(), "SIGKILL leaves the socket file behind");

    // Nobody listens on it: the CLI falls back to the database.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("password\n"),
    )
    .expect_code(0)
    .expect_stdout("created alice@localhost");

    // A new server replaces the leftover and serves requests on it.
    let mut server = Server::start(&config);
    user(
        &config,
        &["add", "bob@localhost", "--password-stdin"],
        Some("password\n"),
    )
    .expect_code(0);
    assert!(
        server.wait_for_log("admin: created bob@localhost", IO_TIMEOUT),
        "{}",
        server.log()
    );
    authenticate(server.c2s(), ("alice", "password")).expect("alice logs in");
    server.signal(Signal::INT);
    let status = server
        .wait_exit(STOP_TIMEOUT)
        .expect("perch run stops on SIGINT");
    assert!(status.success(), "exit after SIGINT: {status}");
    assert!(!socket.exists());
}
