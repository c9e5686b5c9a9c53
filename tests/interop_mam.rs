//! Interop check of the message archive with a real client library: runs
//! `tests/interop/slixmpp_mam.py` (slixmpp's `xep_0313`, `xep_0059` and
//! `xep_0359` plugins) against an in-process server.
//!
//! Two accounts exchange 30 messages (a third writes a few more); every
//! live message must carry one XEP-0359 stanza id by its recipient's bare
//! JID. Then the archive is read back with the plugin, 7 results a page:
//! whole, filtered by correspondent (bare and full JID), backwards, and
//! its metadata; every body once, in order, with the result ids equal to
//! the stanza ids seen live. The script prints one `ok NAME` /
//! `FAIL NAME: reason` line per check (its header lists them);
//! `PERCH_INTEROP_DEBUG=1` makes it trace every element.
//!
//! Needs `pip install slixmpp`. Without it the test says so and passes,
//! except when `CI` is set (non-empty), where it fails.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{Captured, capture_within};
use perch::testing::{TestOptions, TestServer};

/// The script bounds itself to about a minute (times
/// `PERCH_TEST_TIME_SCALE`, as this is); this is the backstop.
fn child_timeout() -> Duration {
    perch::testing::scaled(Duration::from_secs(90))
}

const ACCOUNTS: [(&str, &str); 3] = [
    ("alice@localhost", "pw-alice"),
    ("bob@localhost", "pw-bob"),
    ("carol@localhost", "pw-carol"),
];

/// Every check the script runs: each must print its `ok` line.
const CHECKS: [&str; 7] = [
    "login",
    "live_stanza_ids",
    "paged_archive",
    "result_ids_are_stanza_ids",
    "with_filter",
    "reversed",
    "metadata",
];

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/slixmpp_mam.py")
}

/// `None` when slixmpp can be imported, else why not.
fn slixmpp_missing() -> Option<String> {
    match Command::new("python3")
        .args(["-c", "import slixmpp"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => None,
        Ok(_) => Some("python3 cannot import slixmpp".to_string()),
        Err(e) => Some(format!("python3 could not be run: {e}")),
    }
}

/// `PERCH_INTEROP_DEBUG` set (non-empty): the script traces every element
/// to stderr, which the test prints.
fn debug() -> bool {
    std::env::var("PERCH_INTEROP_DEBUG").is_ok_and(|v| !v.is_empty())
}

#[test]
fn interop_slixmpp_mam() {
    if let Some(why) = slixmpp_missing() {
        let ci = std::env::var("CI").map(|v| !v.is_empty()).unwrap_or(false);
        if ci {
            panic!(
                "interop_slixmpp_mam: slixmpp is missing under CI ({why}); \
                 install it with `pip install slixmpp`"
            );
        }
        println!("interop_slixmpp_mam: skipped, slixmpp not installed (pip install slixmpp)");
        return;
    }

    let server = TestServer::start(TestOptions {
        accounts: ACCOUNTS
            .iter()
            .map(|(jid, pw)| (jid.to_string(), pw.to_string()))
            .collect(),
        ..TestOptions::default()
    })
    .expect("the test server should start");
    let c2s = server.c2s_addr();

    let script = script_path();
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(c2s.ip().to_string())
        .arg(c2s.port().to_string())
        .args(ACCOUNTS.iter().flat_map(|(jid, pw)| [*jid, *pw]))
        .args(debug().then_some("--debug"));
    let limit = child_timeout();
    let Captured {
        status,
        stdout: out,
        stderr: err,
    } = capture_within(&mut cmd, None, limit);
    server.stop();

    println!("--- slixmpp_mam.py (c2s {c2s}) ---");
    print!("{out}");
    if !err.is_empty() {
        println!("--- stderr ---");
        print!("{err}");
    }

    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL ")).collect();
    let missing: Vec<&str> = CHECKS
        .iter()
        .copied()
        .filter(|check| {
            !out.lines()
                .any(|l| l == format!("ok {check}") || l.starts_with(&format!("ok {check} (")))
        })
        .collect();
    match status {
        None => panic!(
            "slixmpp_mam.py did not finish within {} s and was killed",
            limit.as_secs()
        ),
        Some(status) => assert!(
            status.success() && failed.is_empty() && missing.is_empty(),
            "slixmpp_mam.py failed ({status}); failed checks:\n{}\nchecks without an ok line: \
             {missing:?}",
            failed.join("\n")
        ),
    }
}
