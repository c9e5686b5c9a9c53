//! Interop check of push notifications (XEP-0357) with slixmpp on both
//! ends: a slixmpp client enables push, a slixmpp ComponentXMPP is the app
//! server (the script `tests/interop/slixmpp_push.py` says what it checks).
//!
//! Needs `pip install slixmpp`. Without it the test says so and passes,
//! except when `CI` is set (non-empty), where it fails.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::interop::{can_run, debug, judge, python_missing};
use common::process::{Captured, capture_within};
use perch::config::ListenerKind;
use perch::testing::{TestOptions, TestServer};

const ALICE: (&str, &str) = ("alice@localhost", "pw-alice");
const BOB: (&str, &str) = ("bob@localhost", "pw-bob");
const DOMAIN: &str = "push.localhost";
const SECRET: &str = "interop-push-secret";

const CHECKS: [&str; 5] = ["connect", "feature", "enable", "notified", "disable"];

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's python3 client against the server"
)]
fn interop_slixmpp_push() {
    if !can_run(
        "interop_slixmpp_push",
        python_missing("slixmpp"),
        "python3 -m pip install slixmpp",
    ) {
        return;
    }
    let server = TestServer::start(TestOptions {
        accounts: vec![
            (ALICE.0.into(), ALICE.1.into()),
            (BOB.0.into(), BOB.1.into()),
        ],
        extra_config: format!(
            "[[listener]]\nkind = \"component\"\naddress = \"127.0.0.1\"\nport = 0\n\
             [[component]]\ndomain = \"{DOMAIN}\"\nsecret = \"{SECRET}\"\n"
        ),
        ..TestOptions::default()
    })
    .expect("the test server should start");
    let c2s = server.c2s_addr();
    let component = server
        .listener_addr(ListenerKind::Component)
        .expect("a component listener");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/slixmpp_push.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg(c2s.ip().to_string())
        .arg(c2s.port().to_string())
        .arg(component.port().to_string())
        .args([DOMAIN, SECRET, ALICE.0, ALICE.1, BOB.0, BOB.1]);
    if debug() {
        cmd.arg("--debug");
    }
    let limit = perch::testing::scaled(Duration::from_secs(90));
    let started = Instant::now();
    let Captured {
        status,
        stdout: out,
        stderr: err,
    } = capture_within(&mut cmd, None, limit);
    server.stop();
    println!(
        "--- slixmpp_push.py ({:.1} s) ---\n{out}",
        started.elapsed().as_secs_f64()
    );
    if !err.is_empty() {
        println!("--- stderr ---\n{err}");
    }
    let status = status.unwrap_or_else(|| panic!("the script was killed after {limit:?}"));
    let verdict = judge(&out, &CHECKS, &[]);
    assert!(
        verdict.failed.is_empty() && verdict.silent.is_empty() && status.success(),
        "slixmpp_push.py failed ({status}): {verdict:?}"
    );
}
