//! Interop checks of PEP (XEP-0163) with real client plugins, against an
//! in-process server:
//!
//! - `tests/interop/slixmpp_pep.py`: slixmpp's PEP plugins (xep_0163 with
//!   xep_0115 caps `+notify`, xep_0172 nickname, xep_0084 avatar, xep_0054
//!   and xep_0153 vCard avatars, xep_0048/xep_0049/xep_0223 legacy
//!   bookmarks, xep_0402 bookmark stanzas over xep_0060): notifications
//!   by interest, avatar and bookmark conversion both ways, publish-options
//!   preconditions, publishing to another account refused;
//! - `tests/interop/slixmpp_omemo.py`: the slixmpp-omemo plugin
//!   (XEP-0384, python-omemo with oldmemo and twomemo) publishes its
//!   device lists and bundles with publish-options `access_model=open`; a
//!   contact and a stranger read them back and the library parses them.
//!
//! Each script prints one `ok NAME` / `FAIL NAME: reason` line per check
//! (their headers describe them); `PERCH_INTEROP_DEBUG=1` makes them trace
//! every element. A check named in [`KNOWN_SERVER_BUGS`] may fail (and
//! must: a fixed bug is taken off the list).
//!
//! Needs `pip install slixmpp slixmpp-omemo`. Without them a test says so
//! and passes, except when `CI` is set (non-empty), where it fails.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::interop::{Verdict, can_run, debug, judge, python_missing};
use common::process::{Captured, capture_within};
use perch::testing::{TestOptions, TestServer};

/// Checks that fail because of a known server bug, each with why. They
/// may print `FAIL`; once one passes, the test fails until it is removed
/// from here.
const KNOWN_SERVER_BUGS: &[(&str, &str)] = &[];

const PEP_ACCOUNTS: [(&str, &str); 2] =
    [("alice@localhost", "pw-alice"), ("bob@localhost", "pw-bob")];

const PEP_CHECKS: [&str; 11] = [
    "login",
    "caps_verified",
    "pep_disco",
    "pep_publish_notify",
    "pep_no_interest",
    "avatar_pep_to_vcard",
    "avatar_vcard_to_pep",
    "bookmarks_new_to_old",
    "bookmarks_old_to_new",
    "precondition_mismatch",
    "foreign_publish_forbidden",
];

const OMEMO_ACCOUNTS: [(&str, &str); 3] = [
    ("alice@localhost", "pw-alice"),
    ("bob@localhost", "pw-bob"),
    ("carol@localhost", "pw-carol"),
];

const OMEMO_CHECKS: [&str; 4] = [
    "login",
    "omemo_devicelist_published",
    "omemo_bundle_fetched_by_contact",
    "omemo_open_to_stranger",
];

/// The scripts bound themselves to about a minute (times
/// `PERCH_TEST_TIME_SCALE`, as this is); this is the backstop.
fn child_timeout() -> Duration {
    perch::testing::scaled(Duration::from_secs(90))
}

fn script_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// Starts a server with `accounts`, runs `script` against it and asserts
/// that every one of `checks` passed (or is a known server bug that failed).
fn run_script(script: &str, accounts: &[(&str, &str)], checks: &[&str]) {
    let server = TestServer::start(TestOptions {
        accounts: accounts
            .iter()
            .map(|(jid, pw)| (jid.to_string(), pw.to_string()))
            .collect(),
        ..TestOptions::default()
    })
    .expect("the test server should start");
    let c2s = server.c2s_addr();

    let mut cmd = Command::new("python3");
    cmd.arg(script_path(script))
        .arg(c2s.ip().to_string())
        .arg(c2s.port().to_string())
        .args(accounts.iter().flat_map(|(jid, pw)| [*jid, *pw]))
        .args(debug().then_some("--debug"));
    let limit = child_timeout();
    let started = Instant::now();
    let Captured {
        status,
        stdout: out,
        stderr: err,
    } = capture_within(&mut cmd, None, limit);
    let took = started.elapsed();
    server.stop();

    println!("--- {script} (c2s {c2s}, {:.1} s) ---", took.as_secs_f64());
    print!("{out}");
    if !err.is_empty() {
        println!("--- stderr ---");
        print!("{err}");
    }

    let Some(status) = status else {
        panic!(
            "{script} did not finish within {} s and was killed",
            limit.as_secs()
        )
    };
    let verdict = judge(&out, checks, KNOWN_SERVER_BUGS);
    for check in checks {
        if let Some((_, why)) = KNOWN_SERVER_BUGS.iter().find(|(k, _)| k == check) {
            println!("known server bug, allowed to fail: {check}: {why}");
        }
    }
    assert!(
        verdict.failed.is_empty() && verdict.silent.is_empty(),
        "{script} failed ({status}); failed checks:\n{}\nchecks without an ok or FAIL line: {:?}",
        verdict.failed.join("\n"),
        verdict.silent
    );
    assert!(
        verdict.fixed.is_empty(),
        "{script}: {:?} passed: take them off KNOWN_SERVER_BUGS",
        verdict.fixed
    );
    // A non-zero exit with only known bugs failing is expected; otherwise
    // the script must have exited cleanly.
    let known_failed = checks
        .iter()
        .any(|c| KNOWN_SERVER_BUGS.iter().any(|(k, _)| k == c));
    assert!(
        status.success() || known_failed,
        "{script} exited with {status} although every check passed"
    );
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's python3 client against the server"
)]
fn interop_slixmpp_pep() {
    if !can_run(
        "interop_slixmpp_pep",
        python_missing("slixmpp"),
        "python3 -m pip install slixmpp",
    ) {
        return;
    }
    run_script("slixmpp_pep.py", &PEP_ACCOUNTS, &PEP_CHECKS);
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's python3 client against the server"
)]
fn interop_slixmpp_omemo() {
    if !can_run(
        "interop_slixmpp_omemo",
        python_missing("slixmpp, slixmpp_omemo"),
        "python3 -m pip install slixmpp-omemo",
    ) {
        return;
    }
    run_script("slixmpp_omemo.py", &OMEMO_ACCOUNTS, &OMEMO_CHECKS);
}

#[test]
fn judging_the_output() {
    let out = "ok a (x)\nFAIL b: broke\nok c\nFAIL d: not run, b failed\n";
    let v = judge(out, &["a", "b", "c", "d", "e"], &[("b", "bug")]);
    assert_eq!(
        v,
        Verdict {
            failed: vec!["FAIL d: not run, b failed".into()],
            silent: vec!["e".into()],
            fixed: vec![],
        }
    );
    let v = judge("ok b (fine)\n", &["b"], &[("b", "bug")]);
    assert_eq!(v.fixed, vec!["b".to_string()]);
}
