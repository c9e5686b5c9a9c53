//! Interop check of HTTP File Upload (XEP-0363) with a real client
//! plugin: runs `tests/interop/slixmpp_upload.py` against an in-process
//! server. slixmpp's `xep_0363` plugin discovers the service, uploads a
//! file with aiohttp and gets the GET URL back; urllib downloads it; the
//! URL goes to a second account in a message with `jabber:x:oob`, as
//! Conversations sends it, and that account downloads it too; a file over
//! the limit is refused by the plugin and by the server. The script's
//! header describes each check; it prints one `ok NAME` / `FAIL NAME:
//! reason` line per check (`PERCH_INTEROP_DEBUG=1` traces every element).
//!
//! Needs `pip install slixmpp aiohttp` (the plugin uploads with aiohttp).
//! Without them the test says so and passes, except when `CI` is set
//! (non-empty), where it fails.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::interop::{can_run, debug, python_missing};
use common::process::{Captured, capture_within};
use perch::testing::{TestOptions, TestServer};

const ACCOUNTS: [(&str, &str); 2] = [("alice@localhost", "pw-alice"), ("bob@localhost", "pw-bob")];

/// `[upload] max_file_bytes` for the run: the script uploads 300 000
/// bytes and checks that one byte over this is refused.
const MAX_FILE_BYTES: u64 = 1_048_576;

const CHECKS: [&str; 6] = [
    "login",
    "discover",
    "upload",
    "download",
    "oob_message",
    "file_too_large",
];

/// The script bounds itself to about a minute (times
/// `PERCH_TEST_TIME_SCALE`, as this is); this is the backstop.
fn child_timeout() -> Duration {
    perch::testing::scaled(Duration::from_secs(90))
}

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/slixmpp_upload.py")
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's python3 client against the server"
)]
fn interop_slixmpp_upload() {
    if !can_run(
        "interop_slixmpp_upload",
        python_missing("slixmpp, aiohttp"),
        "python3 -m pip install slixmpp aiohttp",
    ) {
        return;
    }

    let server = TestServer::start(TestOptions {
        accounts: ACCOUNTS
            .iter()
            .map(|(jid, pw)| (jid.to_string(), pw.to_string()))
            .collect(),
        extra_config: format!("[upload]\nmax_file_bytes = {MAX_FILE_BYTES}\n"),
        ..TestOptions::default()
    })
    .expect("the test server should start");
    let c2s = server.c2s_addr();
    let http = server
        .http_addr()
        .expect("the test server should have an http listener");

    let mut cmd = Command::new("python3");
    cmd.arg(script_path())
        .arg(c2s.ip().to_string())
        .arg(c2s.port().to_string())
        .args(ACCOUNTS.iter().flat_map(|(jid, pw)| [*jid, *pw]))
        .arg(MAX_FILE_BYTES.to_string());
    if debug() {
        cmd.arg("--debug");
    }
    let limit = child_timeout();
    let started = Instant::now();
    let Captured {
        status,
        stdout: out,
        stderr: err,
    } = capture_within(&mut cmd, None, limit);
    let took = started.elapsed();
    server.stop();

    println!(
        "--- slixmpp_upload.py (c2s {c2s}, http {http}, {:.1} s) ---",
        took.as_secs_f64()
    );
    print!("{out}");
    if !err.is_empty() {
        println!("--- stderr ---");
        print!("{err}");
    }

    let Some(status) = status else {
        panic!(
            "slixmpp_upload.py did not finish within {} s and was killed",
            limit.as_secs()
        )
    };
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL ")).collect();
    let silent: Vec<&str> = CHECKS
        .iter()
        .copied()
        .filter(|check| {
            !out.lines().any(|l| {
                l == format!("ok {check}")
                    || l.starts_with(&format!("ok {check} ("))
                    || l.starts_with(&format!("FAIL {check}:"))
            })
        })
        .collect();
    assert!(
        failed.is_empty() && silent.is_empty() && status.success(),
        "slixmpp_upload.py failed ({status}); failed checks:\n{}\nchecks without an ok or FAIL line: {silent:?}",
        failed.join("\n")
    );
}
