//! Real web clients against an in-process server's `http` listener:
//!
//! - `tests/interop/web/xmppjs_ws.mjs`: xmpp.js (`@xmpp/client`) finds the
//!   WebSocket URL through XEP-0156 discovery, logs in over it (RFC 7395)
//!   with SCRAM, and exchanges messages, stream management, roster
//!   subscriptions and a MUC room before closing the stream cleanly;
//! - `tests/interop/web/converse.mjs`: Converse.js in headless Chromium
//!   (driven by playwright-core): two users over WebSocket and one over
//!   BOSH (XEP-0206) log in, chat, meet in a room, and a screenshot of the
//!   first one's page is saved as `converse-screenshot.png` in the target
//!   directory.
//!
//! Each script prints one `ok NAME` / `FAIL NAME: reason` line per check
//! (their headers describe them); `PERCH_INTEROP_DEBUG=1` makes them
//! trace every element (and print the browser consoles). A check named in
//! [`KNOWN_SERVER_BUGS`] may fail (and must: a fixed bug is taken off the
//! list).
//!
//! Needs node 20.10 or later, `npm ci --prefix tests/interop/web` and, for
//! Converse.js, Chromium (`/usr/bin/chromium`, or the one `PERCH_CHROMIUM`
//! names). Without them a test says so and passes, except when `CI` is set
//! (non-empty), where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::interop::{Verdict, can_run, debug, judge};
use common::process::{Captured, capture_within};
use perch::testing::{TestOptions, TestServer};

/// Checks that fail because of a known server bug, each with why. They
/// may print `FAIL`; once one passes, the test fails until it is removed
/// from here.
const KNOWN_SERVER_BUGS: &[(&str, &str)] = &[];

const ACCOUNTS: [(&str, &str); 3] = [
    ("alice@localhost", "pw-alice"),
    ("bob@localhost", "pw-bob"),
    ("carol@localhost", "pw-carol"),
];

const XMPPJS_CHECKS: [&str; 7] = [
    "discovery",
    "login",
    "message",
    "sm_enabled",
    "roster",
    "muc",
    "close",
];

const CONVERSE_CHECKS: [&str; 5] = ["ws_login", "bosh_login", "chat", "muc", "screenshot"];

/// The scripts bound themselves (xmpp.js to a minute, the browser run to
/// two), times `PERCH_TEST_TIME_SCALE` as this is; this is the backstop.
fn child_timeout(script_budget: Duration) -> Duration {
    perch::testing::scaled(script_budget + Duration::from_secs(30))
}

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/web")
}

/// Where the screenshot goes: the target directory (the parent of the
/// temporary directory Cargo gives integration tests).
fn screenshot_path() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("converse-screenshot.png")
}

fn chromium() -> String {
    std::env::var("PERCH_CHROMIUM")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/bin/chromium".to_string())
}

/// Whether `program args` runs and exits 0.
fn succeeds(program: &str, args: &[&str]) -> Result<bool, String> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .map_err(|e| format!("{program} could not be run: {e}"))
}

/// `None` when node 20.10 or later runs and `web_dir()` has `modules`
/// (paths under node_modules), else why not.
fn missing_node(modules: &[&str]) -> Option<String> {
    let version_ok = "const [a, b] = process.versions.node.split('.').map(Number); \
                      process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)";
    match succeeds("node", &["-e", version_ok]) {
        Err(why) => return Some(why),
        Ok(false) => return Some("node is older than 20.10".to_string()),
        Ok(true) => {}
    }
    let dir = web_dir();
    modules
        .iter()
        .find(|m| !dir.join("node_modules").join(m).exists())
        .map(|m| format!("{} has no node_modules/{m}", dir.display()))
}

fn missing_chromium() -> Option<String> {
    let chromium = chromium();
    match succeeds(&chromium, &["--version"]) {
        Ok(true) => None,
        Ok(false) => Some(format!("`{chromium} --version` failed")),
        Err(why) => Some(why),
    }
}

/// node 20 has a global WebSocket only behind a flag (node 22 and later
/// have it by default): the flag when this node needs it.
fn websocket_flag() -> Option<&'static str> {
    let has_websocket = "process.exit(typeof WebSocket === 'function' ? 0 : 1)";
    match succeeds("node", &["-e", has_websocket]) {
        Ok(true) => None,
        _ => Some("--experimental-websocket"),
    }
}

/// Starts a server with [`ACCOUNTS`], runs `node NODE_ARGS SCRIPT HOST
/// HTTP_PORT EXTRA ACCOUNTS… [--debug]` in the web directory against its
/// `http` listener and asserts that every one of `checks` passed (or is a
/// known server bug that failed).
fn run_script(
    node_args: &[&str],
    script: &str,
    extra: &[&str],
    accounts: &[(&str, &str)],
    checks: &[&str],
    budget: Duration,
) {
    let server = TestServer::start(TestOptions {
        accounts: ACCOUNTS
            .iter()
            .map(|(jid, pw)| (jid.to_string(), pw.to_string()))
            .collect(),
        ..TestOptions::default()
    })
    .expect("the test server should start");
    let http = server
        .http_addr()
        .expect("the test server should have an http listener");

    let dir = web_dir();
    let mut cmd = Command::new("node");
    cmd.args(node_args)
        .arg(dir.join(script))
        .arg(http.ip().to_string())
        .arg(http.port().to_string())
        .args(extra)
        .args(accounts.iter().flat_map(|(jid, pw)| [*jid, *pw]))
        .args(debug().then_some("--debug"))
        .current_dir(&dir);
    let limit = child_timeout(budget);
    let started = Instant::now();
    let Captured {
        status,
        stdout: out,
        stderr: err,
    } = capture_within(&mut cmd, None, limit);
    let took = started.elapsed();
    server.stop();

    println!(
        "--- {script} (http {http}, {:.1} s) ---",
        took.as_secs_f64()
    );
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
    ignore = "runs the host's node client against the server"
)]
fn xmppjs_over_websocket() {
    if !can_run(
        "xmppjs_over_websocket",
        missing_node(&["@xmpp/client/package.json"]),
        "install node 20.10 or later and run `npm ci --prefix tests/interop/web`",
    ) {
        return;
    }
    let flag = websocket_flag();
    run_script(
        flag.as_slice(),
        "xmppjs_ws.mjs",
        &[],
        &ACCOUNTS[..2],
        &XMPPJS_CHECKS,
        Duration::from_secs(60),
    );
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's node and Chromium against the server"
)]
fn converse_in_chromium() {
    let missing = missing_node(&[
        "playwright-core/package.json",
        "converse.js/dist/converse.min.js",
    ])
    .or_else(missing_chromium);
    if !can_run(
        "converse_in_chromium",
        missing,
        "install node 20.10 or later and Chromium (`apt-get install chromium`, \
         or name it in PERCH_CHROMIUM), and run `npm ci --prefix tests/interop/web`",
    ) {
        return;
    }
    let screenshot = screenshot_path();
    let screenshot = screenshot.to_str().expect("a UTF-8 target directory");
    run_script(
        &[],
        "converse.mjs",
        &[screenshot],
        &ACCOUNTS,
        &CONVERSE_CHECKS,
        Duration::from_secs(120),
    );
    println!("screenshot: {screenshot}");
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
