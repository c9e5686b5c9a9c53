//! Interop checks of external components (XEP-0114) with real programs:
//! slixmpp's `ComponentXMPP` (the script `tests/interop/slixmpp_component.py`
//! says what it checks) and Debian's `biboumi`, the IRC gateway, which
//! connects as a component and answers a client's disco#info without any
//! IRC network.
//!
//! Needs `pip install slixmpp` and `apt install biboumi`. Without them a
//! test says so and passes, except when `CI` is set (non-empty), where it
//! fails.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::interop::{can_run, debug, judge, python_missing};
use common::process::{Captured, capture_within};
use common::*;
use perch::config::ListenerKind;
use perch::testing::{TempDir, TestOptions, TestServer};

const ACCOUNT: (&str, &str) = ("alice@localhost", "pw-alice");
const SECRET: &str = "interop-component-secret";

const CHECKS: [&str; 6] = [
    "connect",
    "ping",
    "disco",
    "messages",
    "component_ping",
    "wrong_secret",
];

fn server(domain: &str) -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![(ACCOUNT.0.into(), ACCOUNT.1.into())],
        extra_config: format!(
            "[[listener]]\nkind = \"component\"\naddress = \"127.0.0.1\"\nport = 0\n\
             [[component]]\ndomain = \"{domain}\"\nsecret = \"{SECRET}\"\n"
        ),
        ..TestOptions::default()
    })
    .expect("the test server should start")
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's python3 client against the server"
)]
fn interop_slixmpp_component() {
    if !can_run(
        "interop_slixmpp_component",
        python_missing("slixmpp"),
        "python3 -m pip install slixmpp",
    ) {
        return;
    }
    let domain = "gateway.localhost";
    let server = server(domain);
    let c2s = server.c2s_addr();
    let component = server
        .listener_addr(ListenerKind::Component)
        .expect("a component listener");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/slixmpp_component.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg(c2s.ip().to_string())
        .arg(c2s.port().to_string())
        .arg(component.port().to_string())
        .args([domain, SECRET, ACCOUNT.0, ACCOUNT.1]);
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
        "--- slixmpp_component.py ({:.1} s) ---\n{out}",
        started.elapsed().as_secs_f64()
    );
    if !err.is_empty() {
        println!("--- stderr ---\n{err}");
    }
    let status = status.unwrap_or_else(|| panic!("the script was killed after {limit:?}"));
    let verdict = judge(&out, &CHECKS, &[]);
    assert!(
        verdict.failed.is_empty() && verdict.silent.is_empty() && status.success(),
        "slixmpp_component.py failed ({status}): {verdict:?}"
    );
}

/// Kills the gateway when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's biboumi against the server"
)]
fn interop_biboumi() {
    let missing = Command::new("biboumi")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .err()
        .map(|e| format!("biboumi could not be run: {e}"));
    if !can_run("interop_biboumi", missing, "apt-get install biboumi") {
        return;
    }
    let domain = "irc.localhost";
    let server = server(domain);
    let component = server
        .listener_addr(ListenerKind::Component)
        .expect("a component listener");
    let dir = TempDir::new("biboumi");
    let config = dir.path().join("biboumi.cfg");
    // biboumi's own keys (see biboumi(1)); its database in the temp dir.
    std::fs::write(
        &config,
        format!(
            "hostname={domain}\npassword={SECRET}\nxmpp_server_ip=127.0.0.1\nport={}\n\
             admin={}\ndb_name={}\nlog_level=1\npolicy_directory={}\n",
            component.port(),
            ACCOUNT.0,
            dir.path().join("biboumi.sqlite").display(),
            dir.path().display(),
        ),
    )
    .expect("write the biboumi config");
    let child = Command::new("biboumi")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start biboumi");
    let mut gateway = Reaped(child);

    let mut alice = login(&server, ("alice", ACCOUNT.1), Some("desk"));
    // biboumi connects on its own schedule: ask until it answers.
    let deadline = Instant::now() + perch::testing::scaled(Duration::from_secs(20));
    let mut attempt = 0;
    let info = loop {
        attempt += 1;
        let answer = alice.iq(&format!(
            "<iq type='get' to='{domain}' id='d{attempt}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ));
        if answer.attr("type") == Some("result") {
            break answer;
        }
        if Instant::now() > deadline {
            let _ = gateway.0.kill();
            let output = gateway.0.wait_with_output_lossy();
            panic!("biboumi never answered disco#info; last answer {answer:?}\n{output}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let query = info.first_child().expect("a query");
    let identity = query
        .children()
        .find(|c| c.name == "identity")
        .expect("an identity");
    assert_eq!(identity.attr("category"), Some("conference"), "{info:?}");
    assert!(
        query
            .children()
            .any(|c| c.name == "feature" && c.attr("var") == Some("http://jabber.org/protocol/muc")),
        "biboumi lists MUC: {info:?}"
    );
    drop(gateway);
    server.stop();
}

/// The child's output, for a failure message.
trait OutputLossy {
    fn wait_with_output_lossy(&mut self) -> String;
}

impl OutputLossy for Child {
    fn wait_with_output_lossy(&mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Some(mut out) = self.stdout.take() {
            let _ = out.read_to_string(&mut text);
        }
        if let Some(mut err) = self.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }
}
