//! SASL2 (XEP-0388), Bind 2 (XEP-0386) and FAST (XEP-0484) with a real
//! client library: `tests/interop/xmppjs_fast/check.mjs` drives xmpp.js
//! (`@xmpp/client`) through a password login that gets a FAST token, a
//! login with that token, and a refused token it falls back from (the
//! script's header lists the checks). It prints one `ok NAME` / `FAIL
//! NAME: reason` line per check; `PERCH_INTEROP_DEBUG=1` makes it trace
//! every element.
//!
//! Needs node 20.10 or later and `npm ci --prefix
//! tests/interop/xmppjs_fast`; without them the test says so and passes,
//! except under CI (`CI` non-empty), where it fails.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::interop::{can_run, debug, judge};
use common::process::{Captured, capture_within};
use perch::testing::{TestOptions, TestServer};

const ACCOUNT: (&str, &str) = ("alice@localhost", "pw-alice");
const CHECKS: [&str; 3] = ["password_login", "fast_login", "stale_token"];

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore)]
fn xmppjs_logs_in_with_sasl2_and_a_fast_token() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/xmppjs_fast");
    let node_runs = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = if !node_runs {
        Some("node does not run".to_string())
    } else if !dir.join("node_modules/@xmpp/client/package.json").is_file() {
        Some(format!(
            "{} has no node_modules/@xmpp/client",
            dir.display()
        ))
    } else {
        None
    };
    if !can_run(
        "xmppjs_logs_in_with_sasl2_and_a_fast_token",
        missing,
        "run `npm ci --prefix tests/interop/xmppjs_fast` (node 20.10 or later)",
    ) {
        return;
    }
    let server = TestServer::start(TestOptions {
        accounts: vec![(ACCOUNT.0.to_string(), ACCOUNT.1.to_string())],
        ..TestOptions::default()
    })
    .expect("the test server starts");
    let c2s = server.c2s_addr();
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("check.mjs"))
        .arg(c2s.ip().to_string())
        .arg(c2s.port().to_string())
        .args([ACCOUNT.0, ACCOUNT.1])
        .args(debug().then_some("--debug"))
        .current_dir(&dir);
    // The script bounds itself (45 s times the scale); this is the backstop.
    let limit = perch::testing::scaled(Duration::from_secs(90));
    let Captured {
        status,
        stdout,
        stderr,
    } = capture_within(&mut cmd, None, limit);
    server.stop();
    println!("--- check.mjs (c2s {c2s}) ---\n{stdout}");
    if !stderr.is_empty() {
        println!("--- stderr ---\n{stderr}");
    }
    let status =
        status.unwrap_or_else(|| panic!("check.mjs did not finish within {} s", limit.as_secs()));
    let verdict = judge(&stdout, &CHECKS, &[]);
    assert!(
        status.success() && verdict.failed.is_empty() && verdict.silent.is_empty(),
        "check.mjs failed ({status}): {verdict:?}"
    );
}
