//! Interop check with a real client library: runs
//! `tests/interop/slixmpp_check.py` (slixmpp) against an in-process server.
//!
//! The script logs in over STARTTLS and direct TLS with SCRAM-SHA-256 and
//! over plaintext with PLAIN, has two clients exchange messages by full JID,
//! checks that a wrong password is refused, and pings and discos the server.
//! It prints one `ok NAME` / `FAIL NAME: reason` line per check.
//!
//! Needs `pip install slixmpp`. Without it the test says so and passes,
//! except when `CI` is set (non-empty), where it fails.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{Captured, capture_within};
use perch::testing::{TestOptions, TestServer};

/// The script bounds itself to about a minute; this is the backstop.
const CHILD_TIMEOUT: Duration = Duration::from_secs(90);

const ACCOUNTS: [(&str, &str); 2] = [("alice@localhost", "pw-alice"), ("bob@localhost", "pw-bob")];

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/slixmpp_check.py")
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

#[test]
fn interop_slixmpp() {
    if let Some(why) = slixmpp_missing() {
        let ci = std::env::var("CI").map(|v| !v.is_empty()).unwrap_or(false);
        if ci {
            panic!(
                "interop_slixmpp: slixmpp is missing under CI ({why}); \
                 install it with `pip install slixmpp`"
            );
        }
        println!("interop_slixmpp: skipped, slixmpp not installed (pip install slixmpp)");
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
    let tls = server
        .c2s_tls_addr()
        .expect("the test server should have a direct-TLS listener");

    let script = script_path();
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(c2s.ip().to_string())
        .arg(c2s.port().to_string())
        .arg(tls.port().to_string())
        .args([ACCOUNTS[0].0, ACCOUNTS[0].1, ACCOUNTS[1].0, ACCOUNTS[1].1]);
    let Captured {
        status,
        stdout: out,
        stderr: err,
    } = capture_within(&mut cmd, None, CHILD_TIMEOUT);
    server.stop();

    println!("--- slixmpp_check.py (c2s {c2s}, direct TLS {tls}) ---");
    print!("{out}");
    if !err.is_empty() {
        println!("--- stderr ---");
        print!("{err}");
    }

    match status {
        None => panic!(
            "slixmpp_check.py did not finish within {} s and was killed",
            CHILD_TIMEOUT.as_secs()
        ),
        Some(status) => assert!(
            status.success(),
            "slixmpp_check.py failed ({status}); failed checks:\n{}",
            out.lines()
                .filter(|l| l.starts_with("FAIL "))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}
