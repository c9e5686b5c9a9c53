//! What the interop tests (real client libraries run as child processes)
//! share: whether a client is installed (skip outside CI, fail under it),
//! the debug switch, and the verdict on a script's `ok NAME` / `FAIL NAME:
//! reason` lines.

use std::process::{Command, Stdio};

/// `PERCH_INTEROP_DEBUG` set (non-empty): the scripts trace every element
/// to stderr, which the test prints.
pub fn debug() -> bool {
    std::env::var("PERCH_INTEROP_DEBUG").is_ok_and(|v| !v.is_empty())
}

/// `None` when python3 can import `modules` (`"slixmpp, aiohttp"`), else
/// why not.
pub fn python_missing(modules: &str) -> Option<String> {
    match Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => None,
        Ok(_) => Some(format!("python3 cannot import {modules}")),
        Err(e) => Some(format!("python3 could not be run: {e}")),
    }
}

/// Whether the test may run: false (after saying so) when a client is
/// `missing` outside CI; a panic when it is missing under CI. `install`
/// says how to get it.
pub fn can_run(test: &str, missing: Option<String>, install: &str) -> bool {
    let Some(why) = missing else {
        return true;
    };
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty());
    assert!(
        !ci,
        "{test}: a client is missing under CI ({why}); install it: {install}"
    );
    println!("{test}: skipped, {why} ({install})");
    false
}

/// What the checks of one run came to.
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    /// Checks that printed `FAIL` and are not known bugs.
    pub failed: Vec<String>,
    /// Expected checks that printed neither `ok` nor `FAIL`.
    pub silent: Vec<String>,
    /// Known-bug checks that passed (to take off the list).
    pub fixed: Vec<String>,
}

/// The verdict on `out` for `checks`, `known` being the checks allowed to
/// fail (known server bugs, each with why).
pub fn judge(out: &str, checks: &[&str], known: &[(&str, &str)]) -> Verdict {
    let passed = |check: &str| {
        out.lines()
            .any(|l| l == format!("ok {check}") || l.starts_with(&format!("ok {check} (")))
    };
    let failed = |check: &str| {
        out.lines()
            .any(|l| l.starts_with(&format!("FAIL {check}:")))
    };
    let is_known = |check: &str| known.iter().any(|(k, _)| *k == check);
    let mut verdict = Verdict::default();
    for line in out.lines().filter(|l| l.starts_with("FAIL ")) {
        let name = line["FAIL ".len()..].split(':').next().unwrap_or_default();
        if !is_known(name) {
            verdict.failed.push(line.to_string());
        }
    }
    for check in checks {
        if !passed(check) && !failed(check) {
            verdict.silent.push(check.to_string());
        }
        if is_known(check) && passed(check) {
            verdict.fixed.push(check.to_string());
        }
    }
    verdict
}
