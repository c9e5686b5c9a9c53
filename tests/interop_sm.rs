//! Stream management (XEP-0198) resumption and client state indication
//! (XEP-0352) with real client libraries, against an in-process server:
//!
//! - `tests/interop/slixmpp_sm.py`: slixmpp's `xep_0198` plugin resumes
//!   after its socket is cut in the middle of 50 messages (some read, some
//!   written to the socket but never read, some sent while it is away:
//!   each must arrive exactly once, in order), and its `xep_0352` plugin
//!   goes inactive and active again (before a cut, too);
//! - `tests/interop/xmppjs_sm/check.mjs`: xmpp.js (`@xmpp/client`)
//!   reconnects by itself after its socket is reset and resumes, with the
//!   same guarantees.
//!
//! Each script prints one `ok NAME` / `FAIL NAME: reason` line per check
//! (the script's header lists them); `PERCH_INTEROP_DEBUG=1` makes them
//! trace every element they send and receive.
//! Needs `pip install slixmpp`, and `npm ci --prefix
//! tests/interop/xmppjs_sm` (node 20.10 or later). Without them the tests
//! say so and pass, except when `CI` is set (non-empty), where they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{Captured, capture_within};
use perch::testing::{TestOptions, TestServer};

/// The scripts bound themselves to about a minute (times
/// `PERCH_TEST_TIME_SCALE`, as this is); this is the backstop.
fn child_timeout() -> Duration {
    perch::testing::scaled(Duration::from_secs(90))
}

const ACCOUNTS: [(&str, &str); 2] = [("alice@localhost", "pw-alice"), ("bob@localhost", "pw-bob")];

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// `PERCH_INTEROP_DEBUG` set (non-empty): the scripts trace every
/// element to stderr, which the test prints.
fn debug() -> bool {
    std::env::var("PERCH_INTEROP_DEBUG").is_ok_and(|v| !v.is_empty())
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty())
}

/// Skips (returns false) or, under CI, fails when a client is missing.
fn available(test: &str, missing: Option<String>, install: &str) -> bool {
    let Some(why) = missing else {
        return true;
    };
    if ci() {
        panic!("{test}: {why} under CI; {install}");
    }
    println!("{test}: skipped, {why} ({install})");
    false
}

/// `None` when `program args` runs and succeeds, else why not.
fn fails(program: &str, args: &[&str], what: &str) -> Option<String> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => None,
        Ok(_) => Some(what.to_string()),
        Err(e) => Some(format!("{program} could not be run: {e}")),
    }
}

fn start_server() -> TestServer {
    TestServer::start(TestOptions {
        accounts: ACCOUNTS
            .iter()
            .map(|(jid, pw)| (jid.to_string(), pw.to_string()))
            .collect(),
        ..TestOptions::default()
    })
    .expect("the test server should start")
}

/// Runs `program script HOST PORT JID_A PW_A JID_B PW_B` in `cwd` against
/// a fresh server, bounded, and fails the test with the script's output on
/// a FAIL line, a non-zero exit or no `ok` line for one of `checks`.
fn run_script(program: &str, script: &Path, cwd: &Path, checks: &[&str]) {
    let server = start_server();
    let c2s = server.c2s_addr();
    let name = script
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut cmd = Command::new(program);
    cmd.arg(script)
        .arg(c2s.ip().to_string())
        .arg(c2s.port().to_string())
        .args([ACCOUNTS[0].0, ACCOUNTS[0].1, ACCOUNTS[1].0, ACCOUNTS[1].1])
        .args(debug().then_some("--debug"))
        .current_dir(cwd);
    let limit = child_timeout();
    let Captured {
        status,
        stdout: out,
        stderr: err,
    } = capture_within(&mut cmd, None, limit);
    server.stop();

    println!("--- {name} (c2s {c2s}) ---");
    print!("{out}");
    if !err.is_empty() {
        println!("--- stderr ---");
        print!("{err}");
    }

    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL ")).collect();
    let missing: Vec<&str> = checks
        .iter()
        .copied()
        .filter(|check| {
            !out.lines()
                .any(|l| l == format!("ok {check}") || l.starts_with(&format!("ok {check} (")))
        })
        .collect();
    match status {
        None => panic!(
            "{name} did not finish within {} s and was killed",
            limit.as_secs()
        ),
        Some(status) => assert!(
            status.success() && failed.is_empty() && missing.is_empty(),
            "{name} failed ({status}); failed checks:\n{}\nchecks without an ok line: {missing:?}",
            failed.join("\n")
        ),
    }
}

#[test]
fn slixmpp_resumes_after_a_cut() {
    let missing = fails(
        "python3",
        &["-c", "import slixmpp"],
        "python3 cannot import slixmpp",
    );
    if !available(
        "slixmpp_resumes_after_a_cut",
        missing,
        "install it with `pip install slixmpp`",
    ) {
        return;
    }
    let dir = interop_dir();
    run_script(
        "python3",
        &dir.join("slixmpp_sm.py"),
        &dir,
        &[
            "sm_enabled",
            "resume_after_cut",
            "after_resume",
            "csi_inactive",
            "resume_while_inactive",
        ],
    );
}

#[test]
fn xmppjs_resumes_after_a_cut() {
    let dir = interop_dir().join("xmppjs_sm");
    let missing = fails("node", &["--version"], "node does not run").or_else(|| {
        (!dir.join("node_modules/@xmpp/client/package.json").is_file())
            .then(|| format!("{} has no node_modules/@xmpp/client", dir.display()))
    });
    if !available(
        "xmppjs_resumes_after_a_cut",
        missing,
        "run `npm ci --prefix tests/interop/xmppjs_sm`",
    ) {
        return;
    }
    run_script(
        "node",
        &dir.join("check.mjs"),
        &dir,
        &["sm_enabled", "resume_after_cut", "after_resume"],
    );
}
