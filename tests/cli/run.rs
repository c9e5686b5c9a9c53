//! `perch run`: signals, shutdown, a locked database, ports in use.

use std::net::{Ipv4Addr, SocketAddr};

use perch::testing::TempDir;
use rustix::process::Signal;

use crate::harness::*;

/// Once `perch run` has logged that it serves, SIGTERM must stop it
/// cleanly (exit 0, admin socket removed) rather than kill it with the
/// default signal action. A service manager may well stop a server right
/// after it started.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn sigterm_right_after_start_is_a_clean_shutdown() {
    let dir = TempDir::new("cli-early-term");
    let config = standard_config(&dir);
    let socket = dir.path().join("data/admin.sock");
    // The window is short: try several times.
    for attempt in 1..=25 {
        let mut server = Server::start(&config);
        server.signal(Signal::TERM);
        let status = server.wait_exit(STOP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "attempt {attempt}: no exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                server.log()
            )
        });
        assert!(
            status.success(),
            "attempt {attempt}: SIGTERM right after the 'serving' line ended perch with {status} \
             instead of a clean shutdown (admin.sock left behind: {}):\n{}",
            socket.exists(),
            server.log()
        );
        assert!(
            !socket.exists(),
            "attempt {attempt}: admin.sock left behind"
        );
    }
}

// ---------------------------------------------------------------------------
// 5. Two servers on one data directory.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn second_server_on_same_data_dir_exits_3() {
    let dir = TempDir::new("cli-locked");
    let config = standard_config(&dir);
    let mut first = Server::start(&config);
    let db = dir.path().join("data/perch.redb");

    // Different listener ports (both 0), so only the database can collide.
    match Server::try_start(dir.path(), &["--config", "perch.toml"]) {
        Started::Serving(second) => panic!(
            "a second server started on the same data directory:\n{}",
            second.log()
        ),
        Started::Exited(status, log) => {
            assert_eq!(status.code(), Some(3), "exit code; log:\n{log}");
            assert!(
                log.contains(&format!("database {} is in use", db.display())),
                "log:\n{log}"
            );
            assert!(
                log.contains("perch run"),
                "the message names the culprit:\n{log}"
            );
        }
    }

    // The first one is unaffected: its admin socket survived the attempt.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("password\n"),
    )
    .expect_code(0);
    authenticate(first.c2s(), ("alice", "password")).expect("alice logs in on the first server");
    first.signal(Signal::TERM);
    let status = first.wait_exit(STOP_TIMEOUT).expect("first server stops");
    assert!(status.success());
}

// ---------------------------------------------------------------------------
// 6. perch run without configuration; a port in use.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn run_without_config_in_empty_directory() {
    // Built-in defaults listen on 127.0.0.1:5222 and :5223, which this test
    // cannot reserve: when something else holds them, perch must say so.
    let dir = TempDir::new("cli-run-defaults");
    match Server::try_start(dir.path(), &[]) {
        Started::Serving(mut server) => {
            let log = server.log();
            assert!(
                log.contains("no configuration file: using built-in defaults"),
                "{log}"
            );
            assert_eq!(server.c2s(), SocketAddr::from((Ipv4Addr::LOCALHOST, 5222)));
            assert!(log.contains("serving localhost"), "{log}");
            server.wait_ready();
            // The default data directory, by absolute path in the log,
            // owner-only like everything in it.
            let data = default_data_of(dir.path());
            assert!(
                log.contains(&format!("data: {}", data.join("perch.redb").display())),
                "{log}"
            );
            assert!(data.join("perch.redb").is_file());
            assert_eq!(mode_of(&data), 0o700);
            assert_eq!(mode_of(&data.join("perch.redb")), 0o600);
            for entry in std::fs::read_dir(data.join("tls")).expect("tls/") {
                let path = entry.expect("entry").path();
                assert_eq!(mode_of(&path), 0o600, "{}", path.display());
            }
            assert!(!dir.path().join("perch-data").exists());
            assert!(data.join("admin.sock").exists());
            assert!(
                std::fs::read_dir(data.join("tls"))
                    .map(|d| d.count() > 0)
                    .unwrap_or(false),
                "a self-signed certificate was created in tls/"
            );
            server.signal(Signal::TERM);
            let status = server.wait_exit(STOP_TIMEOUT).expect("stops on SIGTERM");
            assert!(status.success(), "{status}\n{}", server.log());
            assert!(!data.join("admin.sock").exists());
        }
        Started::Exited(status, log) => {
            assert!(
                log.contains("no configuration file: using built-in defaults"),
                "{log}"
            );
            assert_eq!(status.code(), Some(1), "log:\n{log}");
            assert!(
                log.contains("cannot listen on 127.0.0.1:522")
                    && log.contains("(is another XMPP server running?)"),
                "the only expected start-up failure here is a default port in use:\n{log}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn port_in_use_exits_1() {
    let dir = TempDir::new("cli-port");
    let port = free_port();
    // Different data directories, so the database lock does not hit first.
    let first_config = write_file(
        &dir.path().join("first.toml"),
        &server_config(&dir.path().join("first-data"), port),
    );
    write_file(
        &dir.path().join("second.toml"),
        &server_config(&dir.path().join("second-data"), port),
    );
    let mut first = Server::start(&first_config);
    assert_eq!(first.c2s().port(), port);
    first.wait_ready();

    match Server::try_start(dir.path(), &["--config", "second.toml"]) {
        Started::Serving(second) => {
            panic!("two servers listen on port {port}:\n{}", second.log())
        }
        Started::Exited(status, log) => {
            assert_eq!(status.code(), Some(1), "log:\n{log}");
            assert!(
                log.contains(&format!("cannot listen on 127.0.0.1:{port}: "))
                    && log.contains("(is another XMPP server running?)"),
                "log:\n{log}"
            );
        }
    }
    // The failed start left no admin socket behind in its data directory.
    assert!(!dir.path().join("second-data/admin.sock").exists());
    // And did not disturb the first server.
    assert!(dir.path().join("first-data/admin.sock").exists());

    first.signal(Signal::INT);
    let status = first.wait_exit(STOP_TIMEOUT).expect("first server stops");
    assert!(status.success(), "{status}\n{}", first.log());
    assert!(first.log().contains("stopped"));
}
