//! The invitation landing page in headless Chromium, as a relative meets
//! it: an invite made the way `perch invite --inviter` makes it while the
//! server runs (the admin socket), the page loaded on a phone-sized
//! screen (`tests/interop/web/invite.mjs`), its QR code and app links
//! checked, the form filled and sent; then the new account logs in with
//! the test client and finds its inviter subscribed both ways. A
//! screenshot of the page is saved as `invite-screenshot.png` in the
//! target directory (for the README).
//!
//! Needs node 20.10 or later, `npm ci --prefix tests/interop/web` and
//! Chromium (/usr/bin/chromium or PERCH_CHROMIUM); without them the test
//! says so and passes, unless CI is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::interop::{can_run, debug, judge};
use common::login;
use common::process::{Captured, capture_within};
use perch::admin::Command as AdminCommand;
use perch::invite::admin::{CreateRequest, InviteCommand};
use perch::testing::{TestOptions, TestServer};

const CHECKS: [&str; 6] = ["page", "qr", "links", "screenshot", "register", "blocked"];
const NS_ROSTER: &str = "jabber:iq:roster";

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/web")
}

fn screenshot_path() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("invite-screenshot.png")
}

fn chromium() -> String {
    std::env::var("PERCH_CHROMIUM")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/bin/chromium".to_string())
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why the browser check cannot run here, if it cannot.
fn missing() -> Option<String> {
    if !runs("node", &["--version"]) {
        return Some("node could not be run".to_string());
    }
    let module = web_dir().join("node_modules/playwright-core/package.json");
    if !module.exists() {
        return Some(format!("{} is missing", module.display()));
    }
    let chromium = chromium();
    if !runs(&chromium, &["--version"]) {
        return Some(format!("`{chromium} --version` failed"));
    }
    None
}

fn roster_subscription(client: &mut common::Client, id: &str, contact: &str) -> Option<String> {
    client.send(&format!(
        "<iq type='get' id='{id}'><query xmlns='{NS_ROSTER}'/></iq>"
    ));
    let answer = client.element_matching("the roster", |e| e.attr("id") == Some(id));
    answer
        .get_child("query", NS_ROSTER)?
        .children()
        .find(|i| i.attr("jid") == Some(contact))
        .and_then(|i| i.attr("subscription").map(str::to_string))
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's node and Chromium against the server"
)]
fn landing_page_in_chromium() {
    if !can_run(
        "landing_page_in_chromium",
        missing(),
        "install node 20.10 or later and Chromium (`apt-get install chromium`, or name it \
         in PERCH_CHROMIUM), and run `npm ci --prefix tests/interop/web`",
    ) {
        return;
    }
    let server = TestServer::start(TestOptions {
        accounts: vec![("romeo@localhost".into(), "password".into())],
        ..TestOptions::default()
    })
    .expect("the test server should start");
    let http = server.http_addr().expect("an http listener");
    let request = CreateRequest {
        inviter: Some("romeo@localhost".into()),
        group: Some("Family".into()),
        ..CreateRequest::default()
    };
    let lines = perch::net::admin::request(
        server.data_dir().expect("data directory"),
        &AdminCommand::Invite(InviteCommand::Create(request)),
    )
    .expect("the admin socket answers")
    .expect("the server runs");
    let token = lines[0].split(' ').next().expect("a token").to_string();

    let screenshot = screenshot_path();
    let screenshot = screenshot.to_str().expect("a UTF-8 target directory");
    let mut cmd = Command::new("node");
    cmd.arg(web_dir().join("invite.mjs"))
        .arg(http.ip().to_string())
        .arg(http.port().to_string())
        .arg(format!("/invite/{token}"))
        .arg(screenshot)
        .arg("Nurse")
        .arg("a long s3cret")
        .args(debug().then_some("--debug"))
        .current_dir(web_dir());
    let limit = perch::testing::scaled(Duration::from_secs(120));
    let Captured {
        status,
        stdout,
        stderr,
    } = capture_within(&mut cmd, None, limit);
    println!("--- invite.mjs ---\n{stdout}");
    if !stderr.is_empty() {
        println!("--- stderr ---\n{stderr}");
    }
    let status = status.unwrap_or_else(|| panic!("invite.mjs did not finish within {limit:?}"));
    let verdict = judge(&stdout, &CHECKS, &[]);
    assert!(
        verdict.failed.is_empty() && verdict.silent.is_empty() && status.success(),
        "invite.mjs failed ({status}): {:?}, silent: {:?}",
        verdict.failed,
        verdict.silent
    );
    let png = std::fs::read(screenshot).expect("the screenshot was saved");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    println!("screenshot: {screenshot}");

    // The account the page made works, and the inviter is its contact.
    let mut nurse = login(&server, ("nurse", "a long s3cret"), Some("phone"));
    assert_eq!(
        roster_subscription(&mut nurse, "r1", "romeo@localhost").as_deref(),
        Some("both")
    );
    let mut romeo = login(&server, ("romeo", "password"), Some("laptop"));
    assert_eq!(
        roster_subscription(&mut romeo, "r2", "nurse@localhost").as_deref(),
        Some("both")
    );
}
