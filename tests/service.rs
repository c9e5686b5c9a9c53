//! Perch as a system service: the systemd unit (rated by
//! `systemd-analyze`), readiness and watchdog notifications, reloading the
//! configuration and certificates without dropping connections, and a clean
//! shutdown (every stream closed with `system-shutdown`, pending writes
//! committed, exit 0 within the promised time).
//!
//! The in-process tests run on every target (also under qemu for ARM). The
//! ones that start the `perch` binary and signal it need to execute it
//! directly, which an emulated test binary cannot, so they run on x86-64
//! only. `systemd-analyze` is needed for the unit checks: without it they
//! say so and pass, except under CI (`CI=true`), where they fail.

mod common;

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::process::{self, Server, Started};
use common::{
    Client, NS_SASL, Transport, login_at, peer_leaf, tcp_connect, tls_handshake_trusting,
};
use perch::config::{Config, ListenerKind};
use perch::sd_notify::Notifier;
use perch::store::Store;
use perch::testing::TempDir;

fn io_timeout() -> Duration {
    perch::testing::scaled(Duration::from_secs(10))
}
/// The exposure `systemd-analyze security` may report at most ("OK").
const MAX_EXPOSURE: f64 = 2.0;

fn unit_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("systemd/perch.service")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// `systemd-analyze` with `args`, or `None` (after saying why) when it is
/// not installed outside CI.
fn systemd_analyze(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("systemd-analyze")
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !in_ci() => {
            eprintln!("systemd-analyze is not installed (Debian: apt install systemd); skipped");
            None
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

#[test]
fn unit_is_rated_ok_by_systemd_analyze() {
    let unit = unit_file();
    let Some(out) = systemd_analyze(&[
        "security",
        "--offline=true",
        "--no-pager",
        unit.to_str().expect("utf-8 path"),
    ]) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in the output:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    // "→ Overall exposure level for perch.service: 1.1 OK 🙂"
    let exposure: f64 = line
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure from {line:?}"));
    eprintln!("{}", line.trim());
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} is above {MAX_EXPOSURE}:\n{text}"
    );
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "systemd-analyze verify needs an executable ExecStart for the host"
)]
fn unit_has_no_unknown_settings() {
    let dir = TempDir::new("unit-verify");
    let text = std::fs::read_to_string(unit_file()).expect("unit");
    let local = text.replace("/usr/bin/perch", env!("CARGO_BIN_EXE_perch"));
    let unit = dir.path().join("perch.service");
    std::fs::write(&unit, local).expect("write");
    let Some(out) = systemd_analyze(&["verify", unit.to_str().expect("utf-8 path")]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify complained:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// The notification socket, as systemd would provide it.

struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        NotifySocket { socket, path }
    }

    /// Messages until one contains `needle` (that one included).
    fn wait_for(&self, needle: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message =
                    String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
                let done = message.contains(needle);
                seen.push(message);
                if done {
                    return seen;
                }
            }
        }
        panic!("no notification containing {needle:?} within {limit:?}; got {seen:?}");
    }
}

// ---------------------------------------------------------------------------
// In process: prepare + serve on a thread, controlled through channels.

fn config_text(data_dir: &Path, extra: &str) -> String {
    format!(
        "data_dir = {data_dir:?}\nlog_level = \"warn\"\n\
         [[host]]\ndomain = \"localhost\"\n\
         [[listener]]\nkind = \"c2s\"\naddress = \"127.0.0.1\"\nport = 0\n\
         [c2s]\nrequire_encryption = false\nallow_plaintext_auth = true\n{extra}"
    )
}

enum Control {
    Reload(Box<Config>),
    /// Spawn a task that panics, as a bug hit by one connection would.
    SpawnPanickingTask,
    /// Submit an account creation without waiting for it, then stop: the
    /// write is pending when shutdown begins.
    StopWithPendingWrite(String),
}

struct Running {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    control: smol::channel::Sender<Control>,
    reloaded: std::sync::mpsc::Receiver<perch::reload::Outcome>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn start_in_process(config: Config, notify: &Path, accounts: &[(&str, &str)]) -> Running {
    let db = config.data_dir.join(perch::config::DB_FILE);
    {
        let store = Store::open(&db, 1 << 20).expect("open store");
        for (jid, password) in accounts {
            let c = perch::sasl::Credentials::derive(password, perch::sasl::DEFAULT_ITERATIONS)
                .expect("derive");
            smol::block_on(store.accounts().create(jid, &c)).expect("account");
        }
    }
    let notify = notify.to_str().expect("utf-8").to_string();
    let (control_tx, control_rx) = smol::channel::unbounded::<Control>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (reloaded_tx, reloaded_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let ex = Rc::new(smol::LocalExecutor::new());
        smol::block_on(ex.run(async {
            let prepared = perch::run::prepare(config, &ex).await.expect("prepare");
            let notifier =
                Notifier::connect(&notify, Some(Duration::from_millis(400))).expect("notifier");
            let prepared = prepared.with_notifier(notifier);
            let reloader = prepared.reloader();
            let server = prepared.server().clone();
            let executor = ex.clone();
            let addrs = prepared.local_addrs();
            let find = |kind| addrs.iter().find(|(k, _)| *k == kind).map(|(_, a)| *a);
            let c2s = find(ListenerKind::C2s).expect("c2s");
            ready_tx
                .send((c2s, find(ListenerKind::C2sTls)))
                .expect("ready");
            let control = async move {
                while let Ok(message) = control_rx.recv().await {
                    match message {
                        Control::Reload(config) => {
                            let _ = reloaded_tx.send(reloader.apply(&config));
                        }
                        Control::SpawnPanickingTask => {
                            executor
                                .spawn(async {
                                    panic!("deliberate panic: it must end this task only");
                                })
                                .detach();
                        }
                        Control::StopWithPendingWrite(jid) => {
                            let c = perch::sasl::Credentials::derive(
                                "pending",
                                perch::sasl::DEFAULT_ITERATIONS,
                            )
                            .expect("derive");
                            let accounts = server.store().accounts();
                            let mut write = Box::pin(accounts.create(&jid, &c));
                            // One poll hands the write to the group committer.
                            assert!(futures_lite::future::poll_once(&mut write).await.is_none());
                            return;
                        }
                    }
                }
            };
            perch::run::serve(prepared, ex.clone(), control).await;
        }));
    });
    let (addr, tls_addr) = ready_rx
        .recv_timeout(io_timeout())
        .expect("server did not start");
    Running {
        addr,
        tls_addr,
        control: control_tx,
        reloaded: reloaded_rx,
        thread: Some(thread),
    }
}

impl Running {
    fn reload(&self, config: Config) -> perch::reload::Outcome {
        self.control
            .try_send(Control::Reload(Box::new(config)))
            .expect("control");
        self.reloaded
            .recv_timeout(io_timeout())
            .expect("reload outcome")
    }

    fn stop_with_pending_write(mut self, jid: &str) -> Duration {
        let started = Instant::now();
        self.control
            .try_send(Control::StopWithPendingWrite(jid.to_string()))
            .expect("control");
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
        started.elapsed()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.control.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn reload_changes_limits_live_and_shutdown_is_clean() {
    let dir = TempDir::new("service-inproc");
    let data = dir.path().join("data");
    let config = Config::from_toml_str(&config_text(&data, ""), "test").expect("config");
    let notify = NotifySocket::bind(dir.path());
    let server = start_in_process(config, &notify.path, &[("alice@localhost", "pw")]);

    let ready = notify.wait_for("READY=1", io_timeout());
    assert!(
        ready
            .last()
            .is_some_and(|m| m.contains("STATUS=serving localhost")),
        "{ready:?}"
    );
    // The watchdog is pinged at half the interval (here 0.4 s).
    notify.wait_for("WATCHDOG=1", perch::testing::scaled(Duration::from_secs(2)));
    notify.wait_for("WATCHDOG=1", perch::testing::scaled(Duration::from_secs(2)));

    let mut alice = login_at(server.addr, ("alice", "pw"), Some("test"));
    notify.wait_for(
        "1 client online",
        perch::testing::scaled(Duration::from_secs(3)),
    );

    // Reload with one connection per address: the existing one stays, a
    // new one is refused.
    let stricter = Config::from_toml_str(
        &config_text(&data, "[limits]\nmax_connections_per_ip = 1\n"),
        "test",
    )
    .expect("config");
    let outcome = server.reload(stricter);
    assert!(outcome.applied.contains(&"limits"), "{outcome:?}");
    assert!(outcome.need_restart.is_empty(), "{outcome:?}");
    assert_eq!(outcome.certificate_error, None);
    alice.ping("after-reload");
    let mut second = Client::connect(server.addr);
    assert!(
        second.closed_within(perch::testing::scaled(Duration::from_secs(3))),
        "a second connection from the same address was admitted"
    );

    // The admins list applies live: alice may run the admin commands
    // after the reload, not before.
    let invite = |client: &mut Client, id: &str| {
        client.iq(&format!(
            "<iq type='set' id='{id}' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='urn:xmpp:invite#create-account' action='execute'/></iq>"
        ))
    };
    let before = invite(&mut alice, "cmd1");
    assert_eq!(before.attr("type"), Some("error"), "{before}");
    let with_admin = Config::from_toml_str(
        &format!(
            "admins = [\"alice@localhost\"]\n{}",
            config_text(&data, "[limits]\nmax_connections_per_ip = 1\n")
        ),
        "test",
    )
    .expect("config");
    let outcome = server.reload(with_admin);
    assert!(outcome.applied.contains(&"admins"), "{outcome:?}");
    assert!(outcome.need_restart.is_empty(), "{outcome:?}");
    let after = invite(&mut alice, "cmd2");
    assert_eq!(after.attr("type"), Some("result"), "{after}");

    // A structural change is reported, not applied.
    let moved = Config::from_toml_str(
        &config_text(&data, "[c2s]\nkeepalive_secs = 60\n").replace(
            "[c2s]\nrequire_encryption = false\nallow_plaintext_auth = true\n[c2s]\n",
            "[c2s]\nrequire_encryption = false\nallow_plaintext_auth = true\n",
        ),
        "test",
    )
    .expect("config");
    let outcome = server.reload(moved);
    assert_eq!(outcome.need_restart, vec!["c2s"]);
    alice.ping("after-second-reload");

    // A panicking task (a bug one client triggers) ends that task, not the
    // server when the build unwinds, as test builds do. (Release builds
    // abort to stay small, and systemd restarts them: see Cargo.toml.)
    server
        .control
        .try_send(Control::SpawnPanickingTask)
        .expect("control");
    std::thread::sleep(Duration::from_millis(100));
    alice.ping("after-a-panic");

    // Shutdown: the client's stream ends with system-shutdown, the write
    // still pending when it began is on disk, and it takes well under the
    // 2 s drain limit when every client leaves at once.
    let took = server.stop_with_pending_write("late@localhost");
    assert!(
        took < perch::testing::scaled(Duration::from_secs(3)),
        "shutdown took {took:?}"
    );
    assert!(alice.closed_within(perch::testing::scaled(Duration::from_secs(3))));
    let last_words = alice.unparsed();
    assert!(
        last_words.contains("system-shutdown") && last_words.contains("</stream:stream>"),
        "{last_words:?}"
    );
    notify.wait_for("STOPPING=1", perch::testing::scaled(Duration::from_secs(1)));
    let store = Store::open(&data.join(perch::config::DB_FILE), 1 << 20).expect("reopen");
    assert!(
        store.accounts().exists("late@localhost").expect("read"),
        "a write pending at shutdown was lost"
    );
}

/// A certificate for localhost from rcgen, written as PEM files.
fn write_certificate(dir: &Path, stem: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, generated.cert.pem()).expect("write");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write");
    (cert, key, generated.cert.der().to_vec())
}

/// A direct-TLS connection that trusts `trusted` only; returns the
/// client and the leaf certificate the server presented.
fn tls_connect(addr: SocketAddr, trusted: &[&[u8]]) -> (Client, Vec<u8>) {
    let tls = tls_handshake_trusting(tcp_connect(addr), trusted);
    let leaf = peer_leaf(&tls);
    (Client::over(Transport::Tls(Box::new(tls))), leaf)
}

/// Whether a new stream on `client` offers SASL mechanisms.
fn offers_mechanisms(client: &mut Client) -> bool {
    client.open().get_child("mechanisms", NS_SASL).is_some()
}

#[test]
fn reload_picks_up_a_renewed_certificate_without_dropping_connections() {
    let dir = TempDir::new("service-renewal");
    let data = dir.path().join("data");
    let (cert, key, old_der) = write_certificate(dir.path(), "live");
    let text = config_text(&data, "")
        .replace(
            "domain = \"localhost\"\n",
            &format!("domain = \"localhost\"\ncertificate = {cert:?}\nkey = {key:?}\n"),
        )
        .replace(
            "[c2s]",
            "[[listener]]\nkind = \"c2s-tls\"\naddress = \"127.0.0.1\"\nport = 0\n[c2s]",
        );
    let config = Config::from_toml_str(&text, "test").expect("config");
    let notify = NotifySocket::bind(dir.path());
    let server = start_in_process(config.clone(), &notify.path, &[]);
    let tls_addr = server.tls_addr.expect("c2s-tls listener");

    let (mut before, served) = tls_connect(tls_addr, &[&old_der]);
    assert_eq!(served, old_der);

    // The renewal: new files at the same paths (what certbot's deploy hook
    // leaves behind), then a reload.
    let (renewed_cert, renewed_key, new_der) = write_certificate(dir.path(), "renewed");
    std::fs::rename(&renewed_cert, &cert).expect("rename");
    std::fs::rename(&renewed_key, &key).expect("rename");
    let outcome = server.reload(config);
    assert!(outcome.applied.contains(&"certificates"), "{outcome:?}");
    assert_eq!(outcome.certificate_error, None);

    let (mut after, served) = tls_connect(tls_addr, &[&old_der, &new_der]);
    assert_eq!(
        served, new_der,
        "new connections get the renewed certificate"
    );
    assert!(offers_mechanisms(&mut after));
    // The connection made before the reload still works.
    assert!(offers_mechanisms(&mut before));
}

// ---------------------------------------------------------------------------
// The binary, as systemd runs it.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "starts the perch binary, which an emulated test cannot execute"
)]
fn binary_notifies_reloads_on_sighup_and_stops_on_sigterm() {
    use rustix::process::Signal;

    let dir = TempDir::new("service-binary");
    let data = dir.path().join("data");
    let config = dir.path().join("perch.toml");
    // Info level: the test reads the listening port from the log.
    let text = config_text(&data, "").replace("\"warn\"", "\"info\"");
    std::fs::write(&config, &text).expect("config");
    let notify = NotifySocket::bind(dir.path());
    // `perch user` never creates a database: make the one `perch run` would.
    process::create_database(&data);
    process::user(
        &config,
        &["add", "alice@localhost", "--password-stdin", "--weak"],
        Some("pw\n"),
    )
    .expect_code(0);

    let mut cmd = process::perch(dir.path());
    cmd.args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID");
    let mut server = match Server::spawn(cmd) {
        Started::Serving(server) => server,
        Started::Exited(status, log) => panic!("perch run exited ({status}):\n{log}"),
    };
    // The log is read from a pipe on another thread: a line the server
    // wrote before a notification may still be on its way.
    let logged = |server: &Server, needle: &str| server.wait_for_log(needle, io_timeout());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        notify.wait_for("READY=1", io_timeout());
        notify.wait_for("WATCHDOG=1", perch::testing::scaled(Duration::from_secs(2)));
        let mut alice = login_at(server.c2s(), ("alice", "pw"), Some("test"));

        // SIGHUP with a new log level: RELOADING=1, then READY=1 again,
        // and the connection lives on.
        std::fs::write(&config, text.replace("\"info\"", "\"debug\"")).expect("config");
        server.signal(Signal::HUP);
        notify.wait_for("RELOADING=1", io_timeout());
        notify.wait_for("READY=1", io_timeout());
        alice.ping("after-sighup");
        assert!(logged(&server, "reloaded: log_level"), "{}", server.log());

        // A broken file on SIGHUP changes nothing and is reported.
        std::fs::write(&config, "this is not toml").expect("config");
        server.signal(Signal::HUP);
        notify.wait_for("READY=1", io_timeout());
        alice.ping("after-bad-sighup");
        assert!(logged(&server, "configuration not reloaded"));

        // SIGTERM: STOPPING=1, system-shutdown to the client, exit 0 fast.
        let started = Instant::now();
        let limit = perch::testing::scaled(Duration::from_secs(3));
        server.signal(Signal::TERM);
        notify.wait_for("STOPPING=1", io_timeout());
        assert!(alice.closed_within(perch::testing::scaled(Duration::from_secs(3))));
        assert!(
            alice.unparsed().contains("system-shutdown"),
            "{:?}",
            alice.unparsed()
        );
        let status = server
            .wait_exit(limit.saturating_sub(started.elapsed()))
            .expect("perch still running 3 s after SIGTERM");
        assert!(status.success(), "exit status {status:?}");
        assert!(logged(&server, "stopped"));
    }));
    if let Err(panic) = result {
        eprintln!("perch's log:\n{}", server.log());
        std::panic::resume_unwind(panic);
    }
}
