//! Integration tests of the `perch` command-line binary: argument parsing,
//! `perch check`, `perch user …` with and without a running server (the
//! admin socket), `perch run` start-up failures, signals and shutdown.
//!
//! Every test runs the real binary (`CARGO_BIN_EXE_perch`) in its own
//! temporary directory with an explicit `--config` whose `data_dir` lies
//! inside it, with `PERCH_CONFIG`, `CONFIGURATION_DIRECTORY` and
//! `STATE_DIRECTORY` cleared, and with listeners on port 0 unless a test
//! needs a fixed port (the port-conflict test picks a free one; the
//! no-configuration test uses the defaults 5222/5223 and accepts either
//! outcome). Every wait is bounded; a child still running at the end of a
//! test is killed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use perch::testing::TempDir;
use rustix::process::{Pid, Signal, kill_process};

/// Backstop for one CLI command (PBKDF2 in a debug build takes a moment).
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `perch run` may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `perch run` may take to exit after SIGTERM/SIGINT (the promise
/// under test: it drains for at most 2 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Read timeout of the test's XMPP client sockets.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Running the binary.

/// `perch` in `cwd`, with the configuration lookup variables cleared so the
/// host environment cannot leak into a test.
fn perch(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perch"));
    cmd.current_dir(cwd)
        .env_remove("PERCH_CONFIG")
        .env_remove("CONFIGURATION_DIRECTORY")
        .env_remove("STATE_DIRECTORY")
        // Under systemd the logger would switch to `<N>` priority prefixes.
        .env_remove("JOURNAL_STREAM");
    cmd
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Everything the command printed, for assertion messages.
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    #[track_caller]
    fn expect_code(&self, code: i32) -> &Output {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit code {code}; {}",
            self.describe()
        );
        self
    }

    #[track_caller]
    fn expect_stderr(&self, needle: &str) -> &Output {
        assert!(
            self.stderr.contains(needle),
            "stderr should contain {needle:?}; {}",
            self.describe()
        );
        self
    }

    #[track_caller]
    fn expect_stdout(&self, needle: &str) -> &Output {
        assert!(
            self.stdout.contains(needle),
            "stdout should contain {needle:?}; {}",
            self.describe()
        );
        self
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for `child` at most `limit`; `None` when it is still running.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait().expect("waiting for a perch child") {
            Some(status) => return Some(status),
            None if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            None => return None,
        }
    }
}

/// Runs `cmd` to completion with `stdin` as its standard input (none:
/// an empty stdin), killing it after `limit`.
fn run_within(mut cmd: Command, stdin: Option<&str>, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning perch");
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    {
        let mut pipe = child.stdin.take().expect("stdin piped");
        if let Some(text) = stdin {
            // The child may exit without reading (e.g. a usage error).
            let _ = pipe.write_all(text.as_bytes());
        }
        // Dropping the pipe gives the child EOF.
    }
    let status = wait_bounded(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    // The pipes close when the child exits (or is killed), so these end.
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let Some(status) = status else {
        panic!(
            "perch {:?} did not finish within {limit:?}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}",
            cmd.get_args().collect::<Vec<_>>()
        )
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

/// `perch ARGS` in `cwd`.
fn cli(cwd: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = perch(cwd);
    cmd.args(args);
    run_within(cmd, stdin, CLI_TIMEOUT)
}

/// `perch user ARGS --config CONFIG` in the config's directory.
fn user(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    let config_str = config.to_str().expect("UTF-8 temp path");
    all.extend_from_slice(&["--config", config_str]);
    cli(
        config.parent().expect("config file has a directory"),
        &all,
        stdin,
    )
}

// ---------------------------------------------------------------------------
// Configuration files.

/// A TOML basic string holding `path`.
fn toml_path(path: &Path) -> String {
    let s = path.to_str().expect("UTF-8 temp path");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One host "localhost", one plaintext c2s listener on 127.0.0.1:`port`
/// allowing PLAIN (so the test can log in with std sockets), data in
/// `data_dir`.
fn server_config(data_dir: &Path, port: u16) -> String {
    format!(
        r#"data_dir = {}
log_level = "info"

[[host]]
domain = "localhost"

[[listener]]
kind = "c2s"
address = "127.0.0.1"
port = {port}

[c2s]
require_encryption = false
allow_plaintext_auth = true
"#,
        toml_path(data_dir)
    )
}

fn write_file(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path.to_path_buf()
}

/// Writes `server_config(<dir>/data, 0)` to `<dir>/perch.toml`.
fn standard_config(dir: &TempDir) -> PathBuf {
    write_file(
        &dir.path().join("perch.toml"),
        &server_config(&dir.path().join("data"), 0),
    )
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a probe socket");
    probe.local_addr().expect("probe address").port()
}

// ---------------------------------------------------------------------------
// A `perch run` child.

struct Server {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
    /// Where the c2s listener ended up, once it said so.
    c2s: Option<SocketAddr>,
}

/// How a `perch run` start attempt ended.
enum Started {
    Serving(Server),
    /// It exited before serving: its status and log.
    Exited(ExitStatus, String),
}

impl Server {
    /// Spawns `perch run ARGS` in `cwd` and waits until it logs that it
    /// serves (it has then bound its listeners and the admin socket) or
    /// exits.
    fn try_start(cwd: &Path, args: &[&str]) -> Started {
        let mut cmd = perch(cwd);
        cmd.arg("run")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning perch run");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut log) = log.lock() {
                        log.push_str(&line);
                        log.push('\n');
                    }
                    let _ = tx.send(line);
                }
            });
        }
        let mut server = Server {
            child,
            lines,
            log,
            c2s: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = parse_listening(&line) {
                        server.c2s = Some(addr);
                    }
                    if line.contains(" serving ") {
                        return Started::Serving(server);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // stderr closed: the process is exiting.
                    let status = server
                        .wait_exit(CLI_TIMEOUT)
                        .expect("perch run closed stderr but did not exit");
                    return Started::Exited(status, server.log());
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "perch run did not start within {START_TIMEOUT:?}; log so far:\n{}",
                        server.log()
                    )
                }
            }
        }
    }

    /// Like [`Server::try_start`], but it must serve.
    fn start(config: &Path) -> Server {
        let cwd = config.parent().expect("config file has a directory");
        let config_str = config.to_str().expect("UTF-8 temp path");
        match Server::try_start(cwd, &["--config", config_str]) {
            Started::Serving(server) => server,
            Started::Exited(status, log) => {
                panic!("perch run exited ({status}) instead of serving:\n{log}")
            }
        }
    }

    /// Proves the event loop is past start-up: a c2s connection is
    /// answered with stream features. (The "serving" log line comes a
    /// moment before the signal handlers are installed; see
    /// `sigterm_right_after_start_is_a_clean_shutdown`.)
    fn wait_ready(&self) {
        let mut probe = Xmpp::connect(self.c2s());
        let features = probe.open_stream();
        assert!(features.contains("<stream:features>"), "{features}");
    }

    fn c2s(&self) -> SocketAddr {
        self.c2s
            .unwrap_or_else(|| panic!("no 'listening for c2s' line in:\n{}", self.log()))
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn signal(&self, signal: Signal) {
        kill_process(Pid::from_child(&self.child), signal).expect("signalling perch run");
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_bounded(&mut self.child, limit)
    }

    /// Waits until a log line contains `needle`; false after `limit`.
    fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.lines.recv_timeout(left) {
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.log().contains(needle),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `… listening for c2s (clients, STARTTLS) on 127.0.0.1:PORT`.
fn parse_listening(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening for c2s ") {
        return None;
    }
    line.rsplit(" on ").next()?.trim().parse().ok()
}

// ---------------------------------------------------------------------------
// A minimal XMPP client over std sockets (plaintext, SASL PLAIN).

struct Xmpp {
    sock: TcpStream,
    /// Received and not yet consumed.
    buf: String,
}

impl Xmpp {
    fn connect(addr: SocketAddr) -> Xmpp {
        let sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connecting to perch");
        sock.set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        sock.set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        Xmpp {
            sock,
            buf: String::new(),
        }
    }

    fn send(&mut self, text: &str) {
        self.sock
            .write_all(text.as_bytes())
            .expect("writing to perch");
    }

    /// Reads until one of `needles` has arrived; returns everything up to
    /// and including it and keeps the rest. Panics on EOF or timeout.
    fn read_until(&mut self, needles: &[&str]) -> String {
        loop {
            let hit = needles
                .iter()
                .filter_map(|n| self.buf.find(n).map(|at| at + n.len()))
                .min();
            if let Some(end) = hit {
                let rest = self.buf.split_off(end);
                return std::mem::replace(&mut self.buf, rest);
            }
            let mut chunk = [0u8; 4096];
            match self.sock.read(&mut chunk) {
                Ok(0) => panic!(
                    "perch closed the stream waiting for {needles:?}; got {:?}",
                    self.buf
                ),
                Ok(n) => self
                    .buf
                    .push_str(&String::from_utf8_lossy(chunk.get(..n).unwrap_or_default())),
                Err(e) => panic!("waiting for {needles:?}: {e}; got {:?}", self.buf),
            }
        }
    }

    /// Reads until EOF (true) or the read timeout (false); returns the text.
    fn read_to_eof(&mut self) -> (String, bool) {
        let mut chunk = [0u8; 4096];
        let eof = loop {
            match self.sock.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => self
                    .buf
                    .push_str(&String::from_utf8_lossy(chunk.get(..n).unwrap_or_default())),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A reset after the server's last bytes also ends the stream.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        (std::mem::take(&mut self.buf), eof)
    }

    /// Sends a stream header; returns the stream features.
    fn open_stream(&mut self) -> String {
        self.send(
            "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' \
             xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        );
        self.read_until(&["</stream:features>"])
    }

    /// Connects and authenticates with PLAIN; `Err` with the server's
    /// answer when authentication fails.
    fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Xmpp, String> {
        let mut client = Xmpp::connect(addr);
        let features = client.open_stream();
        assert!(
            features.contains("<mechanism>PLAIN</mechanism>"),
            "PLAIN is not offered: {features}"
        );
        client.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
            perch::sasl::base64::encode(format!("\0{user}\0{password}").as_bytes())
        ));
        let answer = client.read_until(&["<success", "<failure"]);
        if answer.ends_with("<failure") {
            let rest = client.read_until(&["</failure>"]);
            return Err(format!("{answer}{rest}"));
        }
        Ok(client)
    }

    /// After a successful login: restarts the stream and binds `resource`;
    /// returns the bind result.
    fn bind(&mut self, resource: &str) -> String {
        let features = self.open_stream();
        assert!(
            features.contains("urn:ietf:params:xml:ns:xmpp-bind"),
            "resource binding not offered: {features}"
        );
        self.send(&format!(
            "<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{resource}</resource></bind></iq>"
        ));
        let result = self.read_until(&["</iq>"]);
        assert!(
            result.contains("type='result'") || result.contains("type=\"result\""),
            "binding failed: {result}"
        );
        result
    }
}

/// Logs in and binds a resource: an online session.
fn online(addr: SocketAddr, user: &str, password: &str, resource: &str) -> Xmpp {
    let mut client = Xmpp::login(addr, user, password)
        .unwrap_or_else(|e| panic!("{user} cannot log in with {password:?}: {e}"));
    client.bind(resource);
    client
}

// ---------------------------------------------------------------------------
// 1. Version, help, usage errors.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn version_prints_name_and_version() {
    let dir = TempDir::new("cli-version");
    let expected = format!("perch {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V", "version"] {
        let out = cli(dir.path(), &[flag], None);
        out.expect_code(0);
        assert_eq!(out.stdout, expected, "perch {flag}; {}", out.describe());
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn help_lists_commands() {
    let dir = TempDir::new("cli-help");
    for args in [&["--help"][..], &["help"][..]] {
        let out = cli(dir.path(), args, None);
        out.expect_code(0);
        for command in ["run", "check", "user"] {
            assert!(
                out.stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with(command)),
                "perch {args:?} should list the {command} command; {}",
                out.describe()
            );
        }
        out.expect_stdout("--config FILE");
        // The documented exit codes are part of the help.
        out.expect_stdout("3 the database is in use");
    }

    let out = cli(dir.path(), &["user", "--help"], None);
    out.expect_code(0);
    for action in ["add", "del", "passwd", "list"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(action)),
            "perch user --help should list {action}; {}",
            out.describe()
        );
    }

    let out = cli(dir.path(), &["user", "add", "--help"], None);
    out.expect_code(0)
        .expect_stdout("Usage: perch user add")
        .expect_stdout("--password-stdin")
        .expect_stdout("--config")
        .expect_stdout("<jid>");

    for cmd in ["run", "check"] {
        let out = cli(dir.path(), &[cmd, "--help"], None);
        out.expect_code(0)
            .expect_stdout(&format!("Usage: perch {cmd}"))
            .expect_stdout("--config");
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn unknown_subcommand_fails_with_message() {
    let dir = TempDir::new("cli-unknown");
    let out = cli(dir.path(), &["frobnicate"], None);
    assert!(
        !out.status.success(),
        "an unknown command must fail; {}",
        out.describe()
    );
    out.expect_stderr("frobnicate").expect_stderr("--help");
    // Nothing was created in the working directory.
    assert!(!dir.path().join("perch-data").exists());
}

/// README and `perch --help` document exit code 2 for "the configuration or
/// an argument is invalid"; command-line usage errors should use it too.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn usage_errors_exit_with_documented_code_2() {
    let dir = TempDir::new("cli-usage");
    let mut failures = Vec::new();
    for args in [
        &["frobnicate"][..],
        &[][..],
        &["user"][..],
        &["user", "add"][..],
        &["check", "--no-such-option"][..],
        &["run", "--config"][..],
    ] {
        let out = cli(dir.path(), args, None);
        assert!(
            !out.status.success() && !out.stderr.trim().is_empty(),
            "perch {args:?} must fail with a message; {}",
            out.describe()
        );
        if out.code() != Some(2) {
            failures.push(format!("perch {args:?}: {}", out.describe()));
        }
    }
    assert!(
        failures.is_empty(),
        "invalid arguments should exit 2 as documented:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 2. perch check.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_good_config_prints_what_would_run() {
    let dir = TempDir::new("cli-check-good");
    let data = dir.path().join("data");
    // `admins` is a top-level key, so it goes before the first table.
    let text = server_config(&data, 0).replacen(
        "log_level = \"info\"\n",
        "log_level = \"info\"\nadmins = [\"boss@localhost\"]\n",
        1,
    ) + "\n[[host]]\ndomain = \"example.org\"\nmuc = \"\"\n\n\
         [[listener]]\nkind = \"c2s-tls\"\naddress = \"::1\"\nport = 0\n";
    let config = write_file(&dir.path().join("good.toml"), &text);
    let out = cli(
        dir.path(),
        &["check", "--config", config.to_str().expect("UTF-8")],
        None,
    );
    out.expect_code(0)
        .expect_stdout(&format!("configuration {}: valid", config.display()))
        .expect_stdout("host localhost (chat rooms: conference.localhost)")
        .expect_stdout("host example.org (chat rooms: disabled)")
        .expect_stdout(&format!(
            "certificate: self-signed, kept in {}",
            data.join("tls").display()
        ))
        .expect_stdout("listen c2s (clients, STARTTLS) on 127.0.0.1:0")
        .expect_stdout("listen c2s-tls (clients, direct TLS) on [::1]:0")
        .expect_stdout(&format!("data: {}", data.join("perch.redb").display()))
        .expect_stdout("admins: boss@localhost");
    assert!(
        out.stderr.is_empty(),
        "a good config has no problems; {}",
        out.describe()
    );
    // check only reads: it creates neither the data directory nor a database.
    assert!(!data.exists(), "perch check created {}", data.display());
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_unknown_key_names_file_line_and_key() {
    let dir = TempDir::new("cli-check-key");
    let config = write_file(
        &dir.path().join("typo.toml"),
        "log_level = \"info\"\n\n[[listener]]\nkind = \"c2s\"\nprot = 5222\n",
    );
    let out = cli(dir.path(), &["check", "--config", "typo.toml"], None);
    out.expect_code(2)
        .expect_stderr("typo.toml:5: unknown key 'prot' in [[listener]]")
        .expect_stderr("expected one of: kind, address, port");
    assert!(config.exists());

    // Top level, reported with the same shape.
    write_file(&dir.path().join("top.toml"), "loglevel = \"info\"\n");
    cli(dir.path(), &["check", "--config", "top.toml"], None)
        .expect_code(2)
        .expect_stderr("top.toml:1: unknown key 'loglevel' at top level");

    // `perch run` refuses the same file with the same message, before
    // creating anything.
    let out = cli(dir.path(), &["run", "--config", "typo.toml"], None);
    out.expect_code(2)
        .expect_stderr("typo.toml:5: unknown key 'prot' in [[listener]]");
    assert!(!dir.path().join("perch-data").exists());
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_bad_values_exit_2() {
    let dir = TempDir::new("cli-check-value");
    write_file(&dir.path().join("loud.toml"), "log_level = \"loud\"\n");
    cli(dir.path(), &["check", "--config", "loud.toml"], None)
        .expect_code(2)
        .expect_stderr("loud.toml:1: log_level")
        .expect_stderr("loud");

    // Several bad values: each is reported with its line.
    write_file(
        &dir.path().join("many.toml"),
        "[[listener]]\nkind = \"c2s\"\nport = 70000\n\n[limits]\nmax_stanza_bytes = 5\n",
    );
    let out = cli(dir.path(), &["check", "--config", "many.toml"], None);
    out.expect_code(2)
        .expect_stderr("many.toml:3: listener.port")
        .expect_stderr("70000")
        .expect_stderr("many.toml:6: limits.max_stanza_bytes");

    // Not TOML at all.
    write_file(&dir.path().join("syntax.toml"), "log_level = \n");
    cli(dir.path(), &["check", "--config", "syntax.toml"], None)
        .expect_code(2)
        .expect_stderr("syntax.toml:1:");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn missing_config_file_exits_2() {
    let dir = TempDir::new("cli-check-missing");
    let missing = dir.path().join("nope.toml");
    let missing_str = missing.to_str().expect("UTF-8");
    for cmd in [
        &["check", "--config", missing_str][..],
        &["run", "--config", missing_str][..],
        &["user", "list", "--config", missing_str][..],
    ] {
        let out = cli(dir.path(), cmd, None);
        out.expect_code(2)
            .expect_stderr(&format!("cannot read {}", missing.display()))
            .expect_stderr("No such file or directory");
    }
    // No built-in defaults were used instead.
    assert!(!dir.path().join("perch-data").exists());
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_verifies_certificate_files() {
    let dir = TempDir::new("cli-check-cert");
    let data = dir.path().join("data");
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generating a certificate");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generating a second certificate");
    let cert = write_file(&dir.path().join("cert.pem"), &pair.cert.pem());
    let key = write_file(
        &dir.path().join("key.pem"),
        &pair.signing_key.serialize_pem(),
    );
    let other_key = write_file(
        &dir.path().join("other-key.pem"),
        &other.signing_key.serialize_pem(),
    );
    let with_files = |name: &str, cert: &Path, key: &Path| -> Output {
        let text = server_config(&data, 0).replacen(
            "domain = \"localhost\"\n",
            &format!(
                "domain = \"localhost\"\ncertificate = {}\nkey = {}\n",
                toml_path(cert),
                toml_path(key)
            ),
            1,
        );
        write_file(&dir.path().join(name), &text);
        cli(dir.path(), &["check", "--config", name], None)
    };

    // A matching pair.
    with_files("ok.toml", &cert, &key)
        .expect_code(0)
        .expect_stdout(&format!(
            "certificate {}: key matches, 1 certificate in chain, valid until ",
            cert.display()
        ));

    // A certificate that does not exist.
    let no_cert = dir.path().join("no-such-cert.pem");
    let out = with_files("no-cert.toml", &no_cert, &key);
    out.expect_code(2)
        .expect_stderr(&no_cert.display().to_string())
        .expect_stderr("does not exist");

    // A key that does not exist.
    let no_key = dir.path().join("no-such-key.pem");
    let out = with_files("no-key.toml", &cert, &no_key);
    out.expect_code(2)
        .expect_stderr(&no_key.display().to_string());

    // A key that belongs to another certificate.
    let out = with_files("mismatch.toml", &cert, &other_key);
    out.expect_code(2);
    assert!(
        !out.stderr.trim().is_empty(),
        "a mismatched key needs an explanation; {}",
        out.describe()
    );

    // `perch run` refuses a missing certificate too, with the documented
    // configuration exit code, and does not start listening.
    let out = cli(dir.path(), &["run", "--config", "no-cert.toml"], None);
    out.expect_code(2)
        .expect_stderr(&no_cert.display().to_string());
    assert!(!data.join("admin.sock").exists());
}

/// `perch check` reports a certificate problem on stderr; stdout should not
/// claim the configuration is valid in the same breath.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_with_certificate_problem_does_not_say_valid() {
    let dir = TempDir::new("cli-check-valid");
    let text = server_config(&dir.path().join("data"), 0).replacen(
        "domain = \"localhost\"\n",
        "domain = \"localhost\"\ncertificate = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
        1,
    );
    write_file(&dir.path().join("c.toml"), &text);
    let out = cli(dir.path(), &["check", "--config", "c.toml"], None);
    out.expect_code(2).expect_stderr("/nonexistent/cert.pem");
    assert!(
        !out.stdout.contains(": valid"),
        "check exits 2 but prints that the configuration is valid; {}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// Configuration lookup without --config.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn config_lookup_order() {
    let dir = TempDir::new("cli-lookup");
    let env_data = dir.path().join("env-data");
    let env_config = write_file(&dir.path().join("env.toml"), &server_config(&env_data, 0));
    let sysd = dir.path().join("etc");
    std::fs::create_dir_all(&sysd).expect("mkdir");
    let sysd_data = dir.path().join("systemd-data");
    write_file(&sysd.join("perch.toml"), &server_config(&sysd_data, 0));
    let explicit_data = dir.path().join("explicit-data");
    write_file(
        &dir.path().join("explicit.toml"),
        &server_config(&explicit_data, 0),
    );
    let state = dir.path().join("state");

    let check = |envs: &[(&str, &Path)], args: &[&str]| -> Output {
        let mut cmd = perch(dir.path());
        cmd.arg("check").args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run_within(cmd, None, CLI_TIMEOUT)
    };
    let db = |d: &Path| format!("data: {}", d.join("perch.redb").display());

    // Nothing: built-in defaults, data in ./perch-data.
    check(&[], &[])
        .expect_code(0)
        .expect_stdout("no configuration file: built-in defaults")
        .expect_stdout("data: ./perch-data/perch.redb")
        .expect_stdout("listen c2s (clients, STARTTLS) on 127.0.0.1:5222")
        .expect_stdout("listen c2s-tls (clients, direct TLS) on 127.0.0.1:5223");
    // $STATE_DIRECTORY moves the default data directory.
    check(&[("STATE_DIRECTORY", &state)], &[])
        .expect_code(0)
        .expect_stdout(&db(&state));
    // $CONFIGURATION_DIRECTORY/perch.toml is read when it exists.
    check(&[("CONFIGURATION_DIRECTORY", &sysd)], &[])
        .expect_code(0)
        .expect_stdout(&db(&sysd_data));
    // $PERCH_CONFIG wins over $CONFIGURATION_DIRECTORY.
    check(
        &[
            ("CONFIGURATION_DIRECTORY", &sysd),
            ("PERCH_CONFIG", &env_config),
        ],
        &[],
    )
    .expect_code(0)
    .expect_stdout(&format!("configuration {}: valid", env_config.display()))
    .expect_stdout(&db(&env_data));
    // --config wins over both.
    check(
        &[
            ("CONFIGURATION_DIRECTORY", &sysd),
            ("PERCH_CONFIG", &env_config),
        ],
        &["--config", "explicit.toml"],
    )
    .expect_code(0)
    .expect_stdout(&db(&explicit_data));
    // A $PERCH_CONFIG naming a missing file is an error, not the defaults.
    check(&[("PERCH_CONFIG", &dir.path().join("gone.toml"))], &[])
        .expect_code(2)
        .expect_stderr("gone.toml");
}

// ---------------------------------------------------------------------------
// 3. perch user … without a running server.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_commands_without_server() {
    let dir = TempDir::new("cli-user-offline");
    let config = standard_config(&dir);
    let data = dir.path().join("data");

    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("s3cret\n"),
    )
    .expect_code(0)
    .expect_stdout("created alice@localhost");
    assert!(
        data.join("perch.redb").is_file(),
        "the database was created"
    );
    assert!(
        !data.join("admin.sock").exists(),
        "no server: no admin socket"
    );

    // Again: refused, and the password is left alone.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("other\n"),
    )
    .expect_code(1)
    .expect_stderr("account alice@localhost exists already");

    // JIDs are normalized; a password without a trailing newline is fine.
    user(
        &config,
        &["add", "Bob@LOCALHOST", "--password-stdin"],
        Some("pw-bob"),
    )
    .expect_code(0)
    .expect_stdout("created bob@localhost");

    let out = user(&config, &["list"], None);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "alice@localhost\nbob@localhost\n",
        "{}",
        out.describe()
    );
    let out = user(&config, &["list", "localhost"], None);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "alice@localhost\nbob@localhost\n",
        "{}",
        out.describe()
    );
    let out = user(&config, &["list", "example.org"], None);
    out.expect_code(0);
    assert_eq!(out.stdout, "", "no accounts on another domain");

    user(
        &config,
        &["passwd", "alice@localhost", "--password-stdin"],
        Some("n3w\n"),
    )
    .expect_code(0)
    .expect_stdout("changed the password of alice@localhost");
    user(
        &config,
        &["passwd", "carol@localhost", "--password-stdin"],
        Some("x\n"),
    )
    .expect_code(1)
    .expect_stderr("account carol@localhost does not exist");

    user(&config, &["del", "alice@localhost"], None)
        .expect_code(0)
        .expect_stdout("deleted alice@localhost");
    user(&config, &["del", "alice@localhost"], None)
        .expect_code(1)
        .expect_stderr("account alice@localhost does not exist");
    let out = user(&config, &["list"], None);
    out.expect_code(0);
    assert_eq!(out.stdout, "bob@localhost\n", "{}", out.describe());

    // A deleted account's address is never handed out again (tombstone).
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("again\n"),
    )
    .expect_code(1)
    .expect_stderr("alice@localhost belonged to a deleted account and cannot be registered again");

    // The accounts really are there for a server started afterwards.
    user(
        &config,
        &["add", "carol@localhost", "--password-stdin"],
        Some("again\n"),
    )
    .expect_code(0);
    let server = Server::start(&config);
    Xmpp::login(server.c2s(), "bob", "pw-bob").expect("bob logs in");
    Xmpp::login(server.c2s(), "carol", "again").expect("carol logs in");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_argument_errors_without_server() {
    let dir = TempDir::new("cli-user-args");
    let config = standard_config(&dir);

    // A host the configuration does not serve: exit 2, and the message says
    // how to fix it.
    user(
        &config,
        &["add", "alice@example.org", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(2)
    .expect_stderr("'example.org' is not a host of this server")
    .expect_stderr("[[host]]");

    // An empty password, given as an empty line or as no input at all.
    for stdin in ["\n", ""] {
        user(
            &config,
            &["add", "alice@localhost", "--password-stdin"],
            Some(stdin),
        )
        .expect_code(2)
        .expect_stderr("unusable password: it is empty");
    }

    // A full JID, a bare domain, a malformed address.
    user(
        &config,
        &["add", "alice@localhost/phone", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(2)
    .expect_stderr("'alice@localhost/phone' is not a valid account address")
    .expect_stderr("without a /resource");
    user(
        &config,
        &["add", "localhost", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(2)
    .expect_stderr("'localhost' is not a valid account address");
    user(&config, &["del", "a@@localhost"], None)
        .expect_code(2)
        .expect_stderr("is not a valid account address");

    // Without --password-stdin and without a terminal: a hint, not a hang.
    user(&config, &["add", "alice@localhost"], None)
        .expect_code(1)
        .expect_stderr("--password-stdin");

    // None of this created an account.
    user(
        &config,
        &["add", "z@localhost", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(0);
    let out = user(&config, &["list"], None);
    assert_eq!(out.stdout, "z@localhost\n", "{}", out.describe());
}

/// On a fresh install (no database yet) `perch user list` answers with an
/// explanation, and `perch user del` says the database is missing rather
/// than creating one.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_commands_before_any_database() {
    let dir = TempDir::new("cli-user-nodb");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    // Nothing stored yet: listing shows no accounts, deleting names the
    // missing database. Neither creates it.
    let out = user(&config, &["list"], None);
    out.expect_code(0);
    assert!(
        out.stdout.trim().is_empty(),
        "unexpected output: {}",
        out.stdout
    );
    for args in [
        &["del", "alice@localhost"][..],
        &["passwd", "alice@localhost", "--password-stdin"][..],
    ] {
        let input = if args[0] == "passwd" {
            Some("pw\n")
        } else {
            None
        };
        let out = user(&config, args, input);
        out.expect_code(1)
            .expect_stderr(&format!("database {}", data.join("perch.redb").display()))
            .expect_stderr("does not exist");
    }
    assert!(!data.join("perch.redb").exists());
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn defaults_in_an_empty_directory() {
    // No configuration anywhere: `user add` uses ./perch-data.
    let dir = TempDir::new("cli-defaults");
    cli(
        dir.path(),
        &["user", "add", "alice@localhost", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(0)
    .expect_stdout("created alice@localhost");
    assert!(dir.path().join("perch-data/perch.redb").is_file());
    let out = cli(dir.path(), &["user", "list"], None);
    out.expect_code(0);
    assert_eq!(out.stdout, "alice@localhost\n", "{}", out.describe());
}

// ---------------------------------------------------------------------------
// 4. perch user … while the server runs; signals and shutdown.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_commands_through_admin_socket() {
    let dir = TempDir::new("cli-admin");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    let mut server = Server::start(&config);
    let addr = server.c2s();

    let socket = data.join("admin.sock");
    let meta = std::fs::metadata(&socket).expect("admin.sock exists while serving");
    assert!(meta.file_type().is_socket(), "admin.sock is a socket");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "admin.sock is owner-only"
    );

    // The server holds the database: the CLI must go through the socket.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("wonder\n"),
    )
    .expect_code(0)
    .expect_stdout("created alice@localhost");
    assert!(
        server.wait_for_log("admin: created alice@localhost", IO_TIMEOUT),
        "the server did not handle the request:\n{}",
        server.log()
    );
    user(
        &config,
        &["add", "bob@localhost", "--password-stdin"],
        Some("builder\n"),
    )
    .expect_code(0);

    // The new account can log in at once, with that password only.
    let failure = Xmpp::login(addr, "alice", "wrong").err();
    assert!(
        failure
            .as_deref()
            .is_some_and(|f| f.contains("not-authorized")),
        "a wrong password must fail with not-authorized: {failure:?}"
    );
    Xmpp::login(addr, "alice", "wonder").expect("alice logs in after user add");

    // Duplicates are refused with the same message as offline.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("x\n"),
    )
    .expect_stderr("account alice@localhost exists already");

    let out = user(&config, &["list"], None);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "alice@localhost\nbob@localhost\n",
        "{}",
        out.describe()
    );
    let out = user(&config, &["list", "localhost"], None);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "alice@localhost\nbob@localhost\n",
        "{}",
        out.describe()
    );

    // passwd takes effect for the next login.
    user(
        &config,
        &["passwd", "alice@localhost", "--password-stdin"],
        Some("land\n"),
    )
    .expect_code(0)
    .expect_stdout("changed the password of alice@localhost");
    assert!(
        Xmpp::login(addr, "alice", "wonder").is_err(),
        "old password"
    );
    Xmpp::login(addr, "alice", "land").expect("alice logs in with the new password");

    // del while alice is online: her session gets a stream error, then EOF.
    let mut alice = online(addr, "alice", "land", "phone");
    let mut bob = online(addr, "bob", "builder", "desk");
    user(&config, &["del", "alice@localhost"], None)
        .expect_code(0)
        .expect_stdout("deleted alice@localhost");
    let (text, eof) = alice.read_to_eof();
    assert!(
        text.contains("<stream:error>") && text.contains("not-authorized"),
        "alice should get a not-authorized stream error: {text:?}"
    );
    assert!(text.contains("</stream:stream>"), "stream closed: {text:?}");
    assert!(eof, "the server should close alice's socket: {text:?}");
    assert!(
        Xmpp::login(addr, "alice", "land").is_err(),
        "deleted account"
    );
    user(&config, &["del", "alice@localhost"], None)
        .expect_code(1)
        .expect_stderr("account alice@localhost does not exist");
    user(
        &config,
        &["passwd", "alice@localhost", "--password-stdin"],
        Some("x\n"),
    )
    .expect_code(1)
    .expect_stderr("account alice@localhost does not exist");
    // Same tombstone rule as offline.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("x\n"),
    )
    .expect_code(1)
    .expect_stderr("alice@localhost belonged to a deleted account and cannot be registered again");

    // bob stayed online; SIGTERM closes his stream with system-shutdown and
    // the server exits 0 promptly, removing the admin socket.
    let started = Instant::now();
    server.signal(Signal::TERM);
    let status = server.wait_exit(STOP_TIMEOUT);
    let elapsed = started.elapsed();
    let (text, eof) = bob.read_to_eof();
    let status = status.unwrap_or_else(|| {
        panic!(
            "perch run did not exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
            server.log()
        )
    });
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        server.log()
    );
    assert!(elapsed <= STOP_TIMEOUT, "took {elapsed:?}");
    assert!(
        text.contains("system-shutdown"),
        "bob should be told about the shutdown: {text:?}"
    );
    assert!(eof, "bob's socket should be closed");
    let log = server.log();
    assert!(log.contains("shutting down"), "log:\n{log}");
    assert!(log.contains("INFO  stopped"), "log:\n{log}");
    assert!(!socket.exists(), "admin.sock must be removed on shutdown");

    // Everything done through the socket was written to the database.
    let out = user(&config, &["list"], None);
    out.expect_code(0);
    assert_eq!(out.stdout, "bob@localhost\n", "{}", out.describe());
}

/// `perch user …` should fail the same way whether or not the server runs
/// (src/admin.rs: "so that `perch user …` behaves the same whether or not
/// the server is running"): same message, same exit code.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn user_argument_errors_through_admin_socket_match_offline() {
    let dir = TempDir::new("cli-admin-args");
    let config = standard_config(&dir);
    let server = Server::start(&config);
    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (
            &["add", "alice@example.org", "--password-stdin"],
            Some("pw\n"),
            "'example.org' is not a host of this server",
        ),
        (
            &["add", "alice@localhost", "--password-stdin"],
            Some("\n"),
            "unusable password: it is empty",
        ),
        (
            &["add", "alice@localhost/phone", "--password-stdin"],
            Some("pw\n"),
            "without a /resource",
        ),
        (
            &["passwd", "alice@localhost", "--password-stdin"],
            Some(""),
            "unusable password: it is empty",
        ),
    ];
    let mut failures = Vec::new();
    for (args, stdin, message) in cases {
        let out = user(&config, args, stdin);
        if out.code() != Some(2) || !out.stderr.contains(message) {
            failures.push(format!(
                "perch user {args:?} (stdin {stdin:?}): want exit 2 and {message:?}; {}",
                out.describe()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "with the server running:\n{}\nserver log:\n{}",
        failures.join("\n"),
        server.log()
    );
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn stale_admin_socket_after_a_crash() {
    let dir = TempDir::new("cli-crash");
    let config = standard_config(&dir);
    let socket = dir.path().join("data/admin.sock");
    let mut server = Server::start(&config);
    server.signal(Signal::KILL);
    server
        .wait_exit(STOP_TIMEOUT)
        .expect("perch run dies on SIGKILL");
    assert!(socket.exists(), "SIGKILL leaves the socket file behind");

    // Nobody listens on it: the CLI falls back to the database.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(0)
    .expect_stdout("created alice@localhost");

    // A new server replaces the leftover and serves requests on it.
    let mut server = Server::start(&config);
    user(
        &config,
        &["add", "bob@localhost", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(0);
    assert!(
        server.wait_for_log("admin: created bob@localhost", IO_TIMEOUT),
        "{}",
        server.log()
    );
    Xmpp::login(server.c2s(), "alice", "pw").expect("alice logs in");
    server.signal(Signal::INT);
    let status = server
        .wait_exit(STOP_TIMEOUT)
        .expect("perch run stops on SIGINT");
    assert!(status.success(), "exit after SIGINT: {status}");
    assert!(!socket.exists());
}

/// Once `perch run` has logged that it serves, SIGTERM must stop it
/// cleanly (exit 0, admin socket removed) rather than kill it with the
/// default signal action. A service manager may well stop a server right
/// after it started.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn sigterm_right_after_start_is_a_clean_shutdown() {
    let dir = TempDir::new("cli-early-term");
    let config = standard_config(&dir);
    let socket = dir.path().join("data/admin.sock");
    // The window is short: try several times.
    for attempt in 1..=25 {
        let mut server = Server::start(&config);
        server.signal(Signal::TERM);
        let status = server.wait_exit(STOP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "attempt {attempt}: no exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                server.log()
            )
        });
        assert!(
            status.success(),
            "attempt {attempt}: SIGTERM right after the 'serving' line ended perch with {status} \
             instead of a clean shutdown (admin.sock left behind: {}):\n{}",
            socket.exists(),
            server.log()
        );
        assert!(
            !socket.exists(),
            "attempt {attempt}: admin.sock left behind"
        );
    }
}

// ---------------------------------------------------------------------------
// 5. Two servers on one data directory.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn second_server_on_same_data_dir_exits_3() {
    let dir = TempDir::new("cli-locked");
    let config = standard_config(&dir);
    let mut first = Server::start(&config);
    let db = dir.path().join("data/perch.redb");

    // Different listener ports (both 0), so only the database can collide.
    match Server::try_start(dir.path(), &["--config", "perch.toml"]) {
        Started::Serving(second) => panic!(
            "a second server started on the same data directory:\n{}",
            second.log()
        ),
        Started::Exited(status, log) => {
            assert_eq!(status.code(), Some(3), "exit code; log:\n{log}");
            assert!(
                log.contains(&format!("database {} is in use", db.display())),
                "log:\n{log}"
            );
            assert!(
                log.contains("perch run"),
                "the message names the culprit:\n{log}"
            );
        }
    }

    // The first one is unaffected: its admin socket survived the attempt.
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("pw\n"),
    )
    .expect_code(0);
    Xmpp::login(first.c2s(), "alice", "pw").expect("alice logs in on the first server");
    first.signal(Signal::TERM);
    let status = first.wait_exit(STOP_TIMEOUT).expect("first server stops");
    assert!(status.success());
}

// ---------------------------------------------------------------------------
// 6. perch run without configuration; a port in use.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn run_without_config_in_empty_directory() {
    // Built-in defaults listen on 127.0.0.1:5222 and :5223, which this test
    // cannot reserve: when something else holds them, perch must say so.
    let dir = TempDir::new("cli-run-defaults");
    match Server::try_start(dir.path(), &[]) {
        Started::Serving(mut server) => {
            let log = server.log();
            assert!(
                log.contains("no configuration file: using built-in defaults"),
                "{log}"
            );
            assert_eq!(server.c2s(), SocketAddr::from((Ipv4Addr::LOCALHOST, 5222)));
            assert!(log.contains("serving localhost"), "{log}");
            server.wait_ready();
            let data = dir.path().join("perch-data");
            assert!(data.join("perch.redb").is_file());
            assert!(data.join("admin.sock").exists());
            assert!(
                std::fs::read_dir(data.join("tls"))
                    .map(|d| d.count() > 0)
                    .unwrap_or(false),
                "a self-signed certificate was created in perch-data/tls"
            );
            server.signal(Signal::TERM);
            let status = server.wait_exit(STOP_TIMEOUT).expect("stops on SIGTERM");
            assert!(status.success(), "{status}\n{}", server.log());
            assert!(!data.join("admin.sock").exists());
        }
        Started::Exited(status, log) => {
            assert!(
                log.contains("no configuration file: using built-in defaults"),
                "{log}"
            );
            assert_eq!(status.code(), Some(1), "log:\n{log}");
            assert!(
                log.contains("cannot listen on 127.0.0.1:522")
                    && log.contains("(is another XMPP server running?)"),
                "the only expected start-up failure here is a default port in use:\n{log}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn port_in_use_exits_1() {
    let dir = TempDir::new("cli-port");
    let port = free_port();
    // Different data directories, so the database lock does not hit first.
    let first_config = write_file(
        &dir.path().join("first.toml"),
        &server_config(&dir.path().join("first-data"), port),
    );
    write_file(
        &dir.path().join("second.toml"),
        &server_config(&dir.path().join("second-data"), port),
    );
    let mut first = Server::start(&first_config);
    assert_eq!(first.c2s().port(), port);
    first.wait_ready();

    match Server::try_start(dir.path(), &["--config", "second.toml"]) {
        Started::Serving(second) => {
            panic!("two servers listen on port {port}:\n{}", second.log())
        }
        Started::Exited(status, log) => {
            assert_eq!(status.code(), Some(1), "log:\n{log}");
            assert!(
                log.contains(&format!("cannot listen on 127.0.0.1:{port}: "))
                    && log.contains("(is another XMPP server running?)"),
                "log:\n{log}"
            );
        }
    }
    // The failed start left no admin socket behind in its data directory.
    assert!(!dir.path().join("second-data/admin.sock").exists());
    // And did not disturb the first server.
    assert!(dir.path().join("first-data/admin.sock").exists());

    first.signal(Signal::INT);
    let status = first.wait_exit(STOP_TIMEOUT).expect("first server stops");
    assert!(status.success(), "{status}\n{}", first.log());
    assert!(first.log().contains("stopped"));
}

// ---------------------------------------------------------------------------
// Log lines a remote party can cause.

/// The `N` of "refused N more connections from ADDR" / "N more failed
/// logins from ADDR" lines.
fn summed_up(log: &str, needle: &str) -> Option<u64> {
    log.lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().find_map(|w| w.parse().ok()))
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn floods_of_refused_connections_and_failed_logins_are_logged_once_then_summed_up() {
    let dir = TempDir::new("cli-flood");
    let config = write_file(
        &dir.path().join("perch.toml"),
        &format!(
            "{}\n[limits]\nmax_connections_per_ip = 2\n",
            server_config(&dir.path().join("data"), 0)
        ),
    );
    let mut server = Server::start(&config);
    server.wait_ready();
    let flooder = std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 40));
    // Two connections that say nothing hold the address's slots; every
    // further one is refused (none is silent long enough to give way).
    let _holders: Vec<TcpStream> = (0..2)
        .map(|_| common::tcp_connect_from(server.c2s(), flooder))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..300 {
        drop(common::tcp_connect_from(server.c2s(), flooder));
    }
    // Twenty wrong passwords from another address (after the free ones,
    // the throttle refuses them: a second kind of line).
    for _ in 0..20 {
        assert!(Xmpp::login(server.c2s(), "alice", "guess").is_err());
    }
    std::thread::sleep(Duration::from_millis(500));
    server.signal(Signal::TERM);
    server.wait_exit(STOP_TIMEOUT).expect("perch run stops");
    let log = server.log();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count("refusing connection from 127.0.0.40"),
        1,
        "one line for the first refusal:\n{log}"
    );
    let more = summed_up(&log, "more connections from 127.0.0.40").unwrap_or(0);
    assert!(
        (250..=299).contains(&more),
        "the rest summed up in one line:\n{log}"
    );
    assert_eq!(count("authentication failed"), 1, "{log}");
    assert!(
        summed_up(&log, "more failed logins from 127.0.0.1").is_some(),
        "{log}"
    );
    assert!(
        log.lines().count() < 30,
        "{} lines for 320 refusals:\n{log}",
        log.lines().count()
    );
}
