//! A Perch server the tool starts itself (`crash`, `soak`, `login-timing`):
//! a work directory of its own under the system temp dir (the data, the
//! generated configuration, the server's log), loopback ports that are
//! free, accounts added with `perch user add` through the running server,
//! and start, SIGKILL and SIGTERM. With `--config` the user's file is used
//! instead, and only the log goes into the work directory.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::conn::{Conn, Target, TlsMode};
use crate::rng::Rng;

/// What a generated configuration sets beyond loopback-only plaintext
/// c2s with PLAIN allowed (the tool logs in without TLS unless told).
#[derive(Debug, Clone)]
pub struct Settings {
    pub domain: String,
    /// Also listen for direct TLS (XEP-0368) on a port of its own.
    pub tls_listener: bool,
    pub max_connections: u32,
    /// `[limits] login_attempts_per_minute`: failures before the login
    /// throttle makes attempts wait (`None`: Perch's default).
    pub free_login_failures: Option<u32>,
    /// `[im] offline_max_messages`.
    pub offline_max_messages: u32,
    /// `[c2s] resume_timeout_secs` (stream management; `None`: Perch's default).
    pub resume_timeout_secs: Option<u32>,
    /// `[c2s] resume_queue_max` (`None`: Perch's default).
    pub resume_queue_max: Option<u32>,
    pub log_level: &'static str,
    /// Tables appended as they are (e.g. `[push]` for `push`).
    pub extra: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            domain: "localhost".into(),
            tls_listener: false,
            max_connections: 1000,
            free_login_failures: None,
            offline_max_messages: 100_000,
            resume_timeout_secs: None,
            resume_queue_max: None,
            log_level: "info",
            extra: String::new(),
        }
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Generated(Settings),
    /// The user's file; the tool cannot read TOML, so it is told where the
    /// server listens and for which domain.
    Given {
        config: PathBuf,
        c2s: SocketAddr,
        c2s_tls: Option<SocketAddr>,
        domain: String,
    },
}

impl Source {
    /// The user's `config` if given (listening at `c2s`, `c2s_tls` for
    /// `domain`), else one generated from `settings`.
    pub fn given_or(
        config: Option<&PathBuf>,
        c2s: SocketAddr,
        c2s_tls: Option<SocketAddr>,
        settings: Settings,
    ) -> Source {
        match config {
            Some(config) => Source::Given {
                config: config.clone(),
                c2s,
                c2s_tls,
                domain: settings.domain,
            },
            None => Source::Generated(settings),
        }
    }
}

pub struct PerchProcess {
    binary: PathBuf,
    config: PathBuf,
    work_dir: PathBuf,
    keep: bool,
    log: PathBuf,
    child: Option<Child>,
    pub c2s: SocketAddr,
    pub c2s_tls: Option<SocketAddr>,
    pub domain: String,
}

/// Longest wait for a started server's stream features.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Ports are drawn below Linux's ephemeral range (32768 and up): the
/// tool's own client connections take ports from that range, and one of
/// them holding the server's port would make a restart fail to bind.
const PORT_RANGE: (u16, u16) = (20_000, 32_000);

fn free_port(rng: &mut Rng, avoid: &[u16]) -> Result<u16, String> {
    for _ in 0..500 {
        let span = u64::from(PORT_RANGE.1 - PORT_RANGE.0);
        let port = PORT_RANGE.0 + rng.below(span) as u16;
        if !avoid.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!(
        "no free loopback port between {} and {}",
        PORT_RANGE.0, PORT_RANGE.1
    ))
}

fn generated_config(
    s: &Settings,
    data_dir: &Path,
    c2s: SocketAddr,
    tls: Option<SocketAddr>,
) -> String {
    let mut out = format!(
        "# Written by perch-load for one run; removed with its directory.\n\
         log_level = \"{}\"\n\
         data_dir = \"{}\"\n\n\
         [[host]]\ndomain = \"{}\"\n\n\
         [[listener]]\nkind = \"c2s\"\naddress = \"{}\"\nport = {}\n\n",
        s.log_level,
        toml_escape(&data_dir.display().to_string()),
        toml_escape(&s.domain),
        c2s.ip(),
        c2s.port()
    );
    if let Some(t) = tls {
        out.push_str(&format!(
            "[[listener]]\nkind = \"c2s-tls\"\naddress = \"{}\"\nport = {}\n\n",
            t.ip(),
            t.port()
        ));
    }
    // Plaintext with PLAIN, as in benches/servers/perch.toml.in: loopback only.
    out.push_str("[c2s]\nrequire_encryption = false\nallow_plaintext_auth = true\n");
    if let Some(secs) = s.resume_timeout_secs {
        out.push_str(&format!("resume_timeout_secs = {secs}\n"));
    }
    if let Some(n) = s.resume_queue_max {
        out.push_str(&format!("resume_queue_max = {n}\n"));
    }
    out.push('\n');
    out.push_str(&format!(
        "[limits]\nmax_connections_per_ip = 1000000\nmax_connections = {}\n",
        s.max_connections
    ));
    if let Some(n) = s.free_login_failures {
        out.push_str(&format!("login_attempts_per_minute = {n}\n"));
    }
    out.push_str(&format!(
        "\n[im]\noffline_max_messages = {}\n\n",
        s.offline_max_messages
    ));
    // No room rate limits: the tool's clients send as fast as they want.
    out.push_str("[muc]\nmessage_burst = 10000\nmessages_per_minute = 600000\n");
    if !s.extra.is_empty() {
        out.push('\n');
        out.push_str(&s.extra);
    }
    out
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A fresh directory under the system temp dir, for this run only.
fn make_work_dir(tag: &str) -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("perch-load-{tag}-{}-{nanos}", std::process::id()));
    fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

impl PerchProcess {
    /// Prepares (does not start) a server: work directory, ports, config.
    pub fn prepare(
        binary: &Path,
        source: Source,
        tag: &str,
        keep: bool,
        rng: &mut Rng,
    ) -> Result<PerchProcess, String> {
        if !binary.is_file() {
            return Err(format!(
                "{}: no such file (build it: cargo build --release -p perch)",
                binary.display()
            ));
        }
        let work_dir = make_work_dir(tag)?;
        let log = work_dir.join("perch.log");
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (config, c2s, c2s_tls, domain) = match source {
            Source::Given {
                config,
                c2s,
                c2s_tls,
                domain,
            } => (config, c2s, c2s_tls, domain),
            Source::Generated(settings) => {
                let port = free_port(rng, &[])?;
                let c2s = SocketAddr::new(localhost, port);
                let tls = if settings.tls_listener {
                    Some(SocketAddr::new(localhost, free_port(rng, &[port])?))
                } else {
                    None
                };
                let path = work_dir.join("perch.toml");
                let text = generated_config(&settings, &work_dir.join("data"), c2s, tls);
                fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
                (path, c2s, tls, settings.domain)
            }
        };
        Ok(PerchProcess {
            binary: binary.to_path_buf(),
            config,
            work_dir,
            keep,
            log,
            child: None,
            c2s,
            c2s_tls,
            domain,
        })
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts `perch run` (its output appended to the log) and waits until
    /// it answers with stream features; returns how long that took.
    pub async fn start(&mut self) -> Result<Duration, String> {
        if self.child.is_some() {
            return Err("perch is already running".into());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err_log = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let t0 = Instant::now();
        let child = Command::new(&self.binary)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let target = Target {
            addr: self.c2s,
            domain: self.domain.clone(),
            tls: TlsMode::None,
            tls_config: None,
            step_timeout: Duration::from_secs(2),
            ws: None,
        };
        while t0.elapsed() < START_TIMEOUT {
            if let Ok((c, _)) = Conn::open(&target).await {
                c.close().await;
                return Ok(t0.elapsed());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!(
                    "perch exited ({status}) before answering; its log ends:\n{}",
                    self.log_tail(20)
                ));
            }
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        self.kill();
        Err(format!(
            "perch did not answer on {} within {START_TIMEOUT:?}; its log ends:\n{}",
            self.c2s,
            self.log_tail(20)
        ))
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and SIGKILL if it has not exited within 10 s. Returns
    /// whether it exited on its own with success.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Runs `perch ARGS --config FILE` to completion.
    pub fn command(&self, args: &[&str]) -> Result<Output, String> {
        Command::new(&self.binary)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("perch {}: {e}", args.join(" ")))
    }

    /// Creates the accounts `localparts` (on the server's domain), all with
    /// `password`, through the running server, `parallel` at a time.
    /// Accounts that exist already are fine.
    pub async fn add_accounts(
        &self,
        localparts: &[String],
        password: &str,
        parallel: usize,
    ) -> Result<(), String> {
        let jobs: Vec<(PathBuf, PathBuf, String, String)> = localparts
            .iter()
            .map(|l| {
                (
                    self.binary.clone(),
                    self.config.clone(),
                    format!("{l}@{}", self.domain),
                    password.to_string(),
                )
            })
            .collect();
        let parallel = parallel.clamp(1, 16);
        smol::unblock(move || {
            for chunk in jobs.chunks(parallel) {
                let running: Vec<_> = chunk
                    .iter()
                    .map(|(bin, cfg, jid, pw)| add_account(bin, cfg, jid, pw).map(|c| (jid, c)))
                    .collect::<Result<_, _>>()?;
                for (jid, child) in running {
                    let out = child
                        .wait_with_output()
                        .map_err(|e| format!("perch user add {jid}: {e}"))?;
                    let err = String::from_utf8_lossy(&out.stderr);
                    if !out.status.success() && !err.contains("exists already") {
                        return Err(format!("perch user add {jid}: {}", err.trim()));
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// The last `n` lines of the server's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Lines of the server's log that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

fn add_account(binary: &Path, config: &Path, jid: &str, password: &str) -> Result<Child, String> {
    let mut child = Command::new(binary)
        .args(["user", "add", "--password-stdin", "--weak", "--config"])
        .arg(config)
        .arg("--")
        .arg(jid)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("perch user add {jid}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{password}");
    }
    Ok(child)
}

impl Drop for PerchProcess {
    fn drop(&mut self) {
        self.kill();
        if self.keep {
            eprintln!("[perch-load] kept {}", self.work_dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }
}

/// Appends a line to a file (best effort: a report, not a result).
pub fn append_line(path: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_configuration_has_what_the_tools_rely_on() {
        let s = Settings {
            tls_listener: true,
            free_login_failures: Some(10_000),
            resume_timeout_secs: Some(3600),
            resume_queue_max: Some(2000),
            extra: "[push]\ncoalesce_secs = 0\n".into(),
            ..Settings::default()
        };
        let c2s: SocketAddr = "127.0.0.1:20001".parse().expect("addr");
        let tls: SocketAddr = "127.0.0.1:20002".parse().expect("addr");
        let text = generated_config(&s, Path::new("work/x\"y"), c2s, Some(tls));
        for needle in [
            "data_dir = \"work/x\\\"y\"",
            "kind = \"c2s\"",
            "port = 20001",
            "kind = \"c2s-tls\"",
            "port = 20002",
            "allow_plaintext_auth = true",
            "login_attempts_per_minute = 10000",
            "offline_max_messages = 100000",
            "messages_per_minute = 600000",
            "resume_timeout_secs = 3600\nresume_queue_max = 2000\n",
            "\n[push]\ncoalesce_secs = 0\n",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
        let plain = generated_config(&Settings::default(), Path::new("/d"), c2s, None);
        assert!(!plain.contains("c2s-tls") && !plain.contains("login_attempts"));
        assert!(!plain.contains("resume_"));
    }

    #[test]
    fn free_ports_are_below_the_ephemeral_range() {
        let mut rng = Rng::new(1);
        let p = free_port(&mut rng, &[]).expect("a free port");
        assert!((PORT_RANGE.0..PORT_RANGE.1).contains(&p));
    }
}
