//! Log lines a remote party can cause: a flood of refused connections
//! and of failed logins is logged once per cause and address, then summed
//! up.

use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

use perch::testing::TempDir;
use rustix::process::Signal;

use crate::common;
use crate::harness::*;

/// The `N` of "refused N more connections from ADDR" / "N more failed
/// logins from ADDR" lines.
fn summed_up(log: &str, needle: &str) -> Option<u64> {
    log.lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().find_map(|w| w.parse().ok()))
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn floods_of_refused_connections_and_failed_logins_are_logged_once_then_summed_up() {
    let dir = TempDir::new("cli-flood");
    let config = write_file(
        &dir.path().join("perch.toml"),
        &format!(
            "{}\n[limits]\nmax_connections_per_ip = 2\n",
            server_config(&dir.path().join("data"), 0)
        ),
    );
    let mut server = Server::start(&config);
    server.wait_ready();
    let flooder = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 40));
    // Two connections that say nothing hold the address's slots; every
    // further one is refused (none is silent long enough to give way).
    let _holders: Vec<TcpStream> = (0..2)
        .map(|_| common::tcp_connect_from(server.c2s(), flooder))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..300 {
        drop(common::tcp_connect_from(server.c2s(), flooder));
    }
    // Twenty wrong passwords from another address (after the free ones,
    // the throttle refuses them: a second kind of line).
    for _ in 0..20 {
        assert!(authenticate(server.c2s(), ("alice", "guess")).is_err());
    }
    std::thread::sleep(Duration::from_millis(500));
    server.signal(Signal::TERM);
    server.wait_exit(STOP_TIMEOUT).expect("perch run stops");
    let log = server.log();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count("refusing connection from 127.0.0.40"),
        1,
        "one line for the first refusal:\n{log}"
    );
    let more = summed_up(&log, "more connections from 127.0.0.40").unwrap_or(0);
    assert!(
        (250..=299).contains(&more),
        "the rest summed up in one line:\n{log}"
    );
    assert_eq!(count("authentication failed"), 1, "{log}");
    assert!(
        summed_up(&log, "more failed logins from 127.0.0.1").is_some(),
        "{log}"
    );
    assert!(
        log.lines().count() < 30,
        "{} lines for 320 refusals:\n{log}",
        log.lines().count()
    );
}
