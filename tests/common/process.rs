//! Running the `perch` binary: commands with bounded waits and captured
//! output, and a `perch run` child whose log is read as it is written
//! (start-up, the c2s port, waiting for a line, signals, exit).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use super::client::Client;

/// Backstop for one CLI command (PBKDF2 in a debug build takes a moment).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `perch run` may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `perch run` may take to exit after SIGTERM/SIGINT (the promise
/// under test: it drains for at most 2 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// `perch` in `cwd`, with the configuration lookup variables cleared so the
/// host environment cannot leak into a test.
pub fn perch(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perch"));
    cmd.current_dir(cwd)
        .env_remove("PERCH_CONFIG")
        .env_remove("CONFIGURATION_DIRECTORY")
        .env_remove("STATE_DIRECTORY")
        // The default data directory (no data_dir in a configuration) is
        // under $HOME: one inside the test's directory, never the user's.
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home_of(cwd))
        // Under systemd the logger would switch to `<N>` priority prefixes.
        .env_remove("JOURNAL_STREAM");
    cmd
}

/// The `$HOME` commands run in `cwd` get.
pub fn home_of(cwd: &Path) -> PathBuf {
    cwd.join("home")
}

/// Where commands run in `cwd` without a configured data_dir keep data.
pub fn default_data_of(cwd: &Path) -> PathBuf {
    home_of(cwd).join(".local/share/perch")
}

/// Creates the database `perch run` would, so that `perch user …` can
/// work on it without a server (commands other than `run` never create
/// one).
pub fn create_database(data_dir: &Path) {
    drop(
        perch::store::Store::open(&data_dir.join(perch::config::DB_FILE), 1 << 20)
            .expect("creating the database"),
    );
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Everything the command printed, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Output {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit code {code}; {}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn expect_stderr(&self, needle: &str) -> &Output {
        assert!(
            self.stderr.contains(needle),
            "stderr should contain {needle:?}; {}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn expect_stdout(&self, needle: &str) -> &Output {
        assert!(
            self.stdout.contains(needle),
            "stdout should contain {needle:?}; {}",
            self.describe()
        );
        self
    }
}

pub fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for `child` at most `limit`; `None` when it is still running.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait().expect("waiting for a child process") {
            Some(status) => return Some(status),
            None if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            None => return None,
        }
    }
}

/// What a child run with [`capture_within`] left: its exit status (`None`
/// if it was killed at the limit) and everything it wrote.
pub struct Captured {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with `stdin` as its standard input (none: an empty stdin),
/// killing it after `limit`, and captures what it writes.
pub fn capture_within(cmd: &mut Command, stdin: Option<&str>, limit: Duration) -> Captured {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {:?}: {e}", cmd.get_program()));
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
    Captured {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Runs `cmd` to completion with `stdin` as its standard input (none:
/// an empty stdin), killing it after `limit`.
pub fn run_within(mut cmd: Command, stdin: Option<&str>, limit: Duration) -> Output {
    let Captured {
        status,
        stdout,
        stderr,
    } = capture_within(&mut cmd, stdin, limit);
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
pub fn cli(cwd: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = perch(cwd);
    cmd.args(args);
    run_within(cmd, stdin, CLI_TIMEOUT)
}

/// `perch user ARGS --config CONFIG` in the config's directory.
pub fn user(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
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

pub struct Server {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
    /// Where the c2s listener ended up, once it said so.
    c2s: Option<SocketAddr>,
}

/// How a `perch run` start attempt ended.
pub enum Started {
    Serving(Server),
    /// It exited before serving: its status and log.
    Exited(ExitStatus, String),
}

impl Server {
    /// Spawns `perch run ARGS` in `cwd` and waits until it logs that it
    /// serves (it has then bound its listeners and the admin socket) or
    /// exits.
    pub fn try_start(cwd: &Path, args: &[&str]) -> Started {
        let mut cmd = perch(cwd);
        cmd.arg("run").args(args);
        Server::spawn(cmd)
    }

    /// Like [`Server::try_start`] with a command the caller prepared
    /// (`perch run …` with its own environment, as systemd would give).
    pub fn spawn(mut cmd: Command) -> Started {
        cmd.stdin(Stdio::null())
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
    pub fn start(config: &Path) -> Server {
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
    pub fn wait_ready(&self) {
        Client::connect(self.c2s()).open();
    }

    pub fn c2s(&self) -> SocketAddr {
        self.c2s
            .unwrap_or_else(|| panic!("no 'listening for c2s' line in:\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn signal(&self, signal: Signal) {
        kill_process(Pid::from_child(&self.child), signal).expect("signalling perch run");
    }

    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_bounded(&mut self.child, limit)
    }

    /// Waits until a log line contains `needle`; false after `limit`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
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
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening for c2s ") {
        return None;
    }
    line.rsplit(" on ").next()?.trim().parse().ok()
}
