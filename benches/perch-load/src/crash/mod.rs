//! `crash`: the crash loop (issue #16). Starts a Perch binary on a data
//! directory of its own, creates a few accounts, then `--kills` times:
//! starts Perch, waits until it answers, checks that every write
//! acknowledged before the last kill is there, lets `--writers` clients
//! write at once (offline messages, roster adds and removes, rooms created
//! and configured, member affiliations granted and taken, vCards and
//! private XML), and SIGKILLs Perch at a random moment of that load
//! (seeded: the seed is printed, and `--seed` repeats the choices). After
//! the last kill Perch is started once more for the final check, backed
//! up (`perch backup` reads every table: the database's integrity check)
//! and stopped with SIGTERM.
//!
//! The run fails (exit status 1) if an acknowledged write is missing, if
//! Perch does not come back after a kill, if a check cannot be made, or
//! if the backup or `perch check` fails.

pub mod check;
pub mod ledger;
pub mod protocol;
pub mod writer;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::conn::{Conn, Login, Target, TlsMode, random_bytes};
use crate::ctx::round;
use crate::rng::Rng;
use crate::sasl::Mechanism;
use crate::spawned::{PerchProcess, Settings, Source};

use ledger::{Counts, Kind, Ledger};
use writer::{Caps, Names, Shared, Writer};

#[derive(Debug, Clone)]
pub struct CrashOptions {
    pub perch: PathBuf,
    /// The user's configuration instead of a generated one (then `addr`
    /// and `domain` say where it listens).
    pub config: Option<PathBuf>,
    pub addr: SocketAddr,
    pub domain: String,
    pub muc_domain: String,
    pub user_prefix: String,
    pub password: String,
    pub kills: u32,
    pub seed: u64,
    pub writers: usize,
    /// The kill comes this long after the load started: uniform between
    /// the two.
    pub min_load: Duration,
    pub max_load: Duration,
    pub step_timeout: Duration,
    /// Bound on the whole run.
    pub max_seconds: f64,
    pub caps: Caps,
    pub keep: bool,
    pub print: bool,
}

impl Default for CrashOptions {
    fn default() -> Self {
        CrashOptions {
            perch: PathBuf::from("target/release/perch"),
            config: None,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5222),
            domain: "localhost".into(),
            muc_domain: String::new(),
            user_prefix: "crash".into(),
            password: "crash-password".into(),
            kills: 50,
            seed: 0,
            writers: 4,
            min_load: Duration::from_millis(50),
            max_load: Duration::from_millis(800),
            step_timeout: Duration::from_secs(10),
            max_seconds: 600.0,
            caps: Caps {
                rooms_per_cycle: 2,
                members: 40,
                roster_items: 40,
                private_slots: 4,
            },
            keep: false,
            print: true,
        }
    }
}

pub struct CrashReport {
    pub seed: u64,
    pub kills_asked: u32,
    pub kills: u32,
    pub counts: Vec<(Kind, Counts)>,
    pub total: Counts,
    pub redelivered: u64,
    pub losses: Vec<String>,
    /// Why the run failed, besides losses.
    pub failures: Vec<String>,
    /// Seconds from each restart to the first stream features.
    pub restart_s: Vec<f64>,
    pub integrity: Vec<String>,
    pub runtime_s: f64,
}

impl CrashReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.total.missing == 0 && self.kills == self.kills_asked
    }

    pub fn record(&self) -> Value {
        let mut kinds = serde_json::Map::new();
        for (kind, c) in &self.counts {
            kinds.insert(kind.name().into(), counts_json(c));
        }
        let mut restarts = self.restart_s.clone();
        restarts.sort_by(f64::total_cmp);
        json!({
            "scenario": "crash", "seed": self.seed, "kills": self.kills,
            "kills_asked": self.kills_asked, "ok": self.ok(),
            "acked": self.total.acked, "verified": self.total.verified,
            "superseded": self.total.superseded, "missing": self.total.missing,
            "stored_unacked": self.total.stored_unacked, "redelivered": self.redelivered,
            "writes": kinds, "losses": self.losses, "failures": self.failures,
            "restart_s_p50": restarts.get(restarts.len() / 2).map(|s| round(*s, 3)),
            "restart_s_max": restarts.last().map(|s| round(*s, 3)),
            "integrity": self.integrity, "runtime_s": round(self.runtime_s, 1),
        })
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "crash: seed {}, {} of {} kills, {:.1} s\n\
             {:<20} {:>7} {:>7} {:>7} {:>8} {:>10} {:>7} {:>14}\n",
            self.seed,
            self.kills,
            self.kills_asked,
            self.runtime_s,
            "write",
            "sent",
            "acked",
            "refused",
            "verified",
            "superseded",
            "missing",
            "stored-unacked"
        );
        let line = |name: &str, c: &Counts| {
            format!(
                "{name:<20} {:>7} {:>7} {:>7} {:>8} {:>10} {:>7} {:>14}\n",
                c.sent, c.acked, c.refused, c.verified, c.superseded, c.missing, c.stored_unacked
            )
        };
        for (kind, c) in &self.counts {
            out.push_str(&line(kind.name(), c));
        }
        out.push_str(&line("total", &self.total));
        out.push_str(&format!(
            "offline messages delivered again after an earlier check (not a loss): {}\n",
            self.redelivered
        ));
        if let (Some(min), Some(max)) = (
            self.restart_s.iter().copied().reduce(f64::min),
            self.restart_s.iter().copied().reduce(f64::max),
        ) {
            out.push_str(&format!(
                "restart to first stream features: {min:.3} to {max:.3} s\n"
            ));
        }
        for line in &self.integrity {
            out.push_str(&format!("integrity: {line}\n"));
        }
        for loss in &self.losses {
            out.push_str(&format!("LOST: {loss}\n"));
        }
        for f in &self.failures {
            out.push_str(&format!("FAILED: {f}\n"));
        }
        out.push_str(if self.ok() {
            "verdict: every acknowledged write survived\n"
        } else {
            "verdict: FAILED\n"
        });
        out
    }
}

fn counts_json(c: &Counts) -> Value {
    json!({
        "sent": c.sent, "acked": c.acked, "refused": c.refused, "verified": c.verified,
        "superseded": c.superseded, "missing": c.missing, "stored_unacked": c.stored_unacked,
    })
}

/// Runs the loop. `Err` only when it could not start (no binary, no
/// accounts); everything after that is in the report.
pub fn run(opts: &CrashOptions) -> Result<CrashReport, String> {
    let t0 = Instant::now();
    let ex = smol::Executor::new();
    smol::block_on(ex.run(crash_loop(opts, &ex, t0)))
}

async fn crash_loop(
    opts: &CrashOptions,
    ex: &smol::Executor<'_>,
    t0: Instant,
) -> Result<CrashReport, String> {
    let mut rng = Rng::new(opts.seed);
    let source = Source::given_or(
        opts.config.as_ref(),
        opts.addr,
        None,
        Settings {
            domain: opts.domain.clone(),
            ..Settings::default()
        },
    );
    let mut perch = PerchProcess::prepare(&opts.perch, source, "crash", opts.keep, &mut rng)?;
    let muc_domain = if opts.muc_domain.is_empty() {
        format!("conference.{}", opts.domain)
    } else {
        opts.muc_domain.clone()
    };
    let names = Arc::new(Names {
        prefix: opts.user_prefix.clone(),
        domain: opts.domain.clone(),
        muc_domain,
        run_tag: u32::from_le_bytes(random_bytes::<4>()),
    });
    let say = |msg: String| {
        if opts.print {
            eprintln!("[perch-load] {msg}");
        }
    };
    say(format!(
        "crash: seed {} (repeat with --seed {}), {} kills, {} writers, perch {} in {}",
        opts.seed,
        opts.seed,
        opts.kills,
        opts.writers,
        opts.perch.display(),
        perch.work_dir().display()
    ));
    perch.start().await?;
    let accounts: Vec<String> = (0..opts.writers)
        .flat_map(|i| [names.writer(i), names.recipient(i)])
        .collect();
    perch.add_accounts(&accounts, &opts.password, 4).await?;
    let target = Target {
        addr: perch.c2s,
        domain: opts.domain.clone(),
        tls: TlsMode::None,
        tls_config: None,
        step_timeout: opts.step_timeout,
        ws: None,
    };
    let ledger = Arc::new(Mutex::new(Ledger::new()));
    let mut report = CrashReport {
        seed: opts.seed,
        kills_asked: opts.kills,
        kills: 0,
        counts: Vec::new(),
        total: Counts::default(),
        redelivered: 0,
        losses: Vec::new(),
        failures: Vec::new(),
        restart_s: Vec::new(),
        integrity: Vec::new(),
        runtime_s: 0.0,
    };
    let deadline = t0 + Duration::from_secs_f64(opts.max_seconds);
    for cycle in 1..=opts.kills + 1 {
        if Instant::now() > deadline {
            report.failures.push(format!(
                "stopped after {} kills: the run's bound of {} s passed",
                report.kills, opts.max_seconds
            ));
            break;
        }
        if cycle > 1 {
            match perch.start().await {
                Ok(up) => report.restart_s.push(up.as_secs_f64()),
                Err(e) => {
                    report.failures.push(format!(
                        "perch did not come back after kill {}: {e}",
                        cycle - 1
                    ));
                    break;
                }
            }
        }
        let checked = match check_all(opts, ex, &target, &names, &ledger).await {
            Ok(v) => v,
            Err(e) => {
                report
                    .failures
                    .push(format!("check after kill {}: {e}", cycle - 1));
                break;
            }
        };
        let missing = lock(&ledger).total().missing;
        if cycle > opts.kills {
            say(format!(
                "crash: final check: {} keys and {} messages read back, {missing} missing in all",
                checked.keys, checked.messages
            ));
            close_all(checked.writers).await;
            break;
        }
        let load = Duration::from_secs_f64(
            rng.uniform(opts.min_load.as_secs_f64(), opts.max_load.as_secs_f64()),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            names: names.clone(),
            ledger: ledger.clone(),
            step: opts.step_timeout,
            caps: opts.caps,
            stop: stop.clone(),
        };
        let acked_before = lock(&ledger).total().acked;
        let tasks: Vec<_> = checked
            .writers
            .into_iter()
            .enumerate()
            .map(|(i, conn)| ex.spawn(Writer::new(i, cycle, &shared, rng.fork()).run(conn)))
            .collect();
        smol::Timer::after(load).await;
        perch.kill();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut requests = 0;
        for t in tasks {
            requests += t.await;
        }
        report.kills += 1;
        let acked = lock(&ledger).total().acked - acked_before;
        say(format!(
            "crash: kill {cycle}/{}: checked {} keys, {} messages ({missing} missing so far); \
             SIGKILL after {:.3} s of load: {requests} requests, {acked} writes acknowledged",
            opts.kills,
            checked.keys,
            checked.messages,
            load.as_secs_f64()
        ));
    }
    if perch.pid().is_some() {
        integrity(&mut perch, &mut report);
    }
    let ledger = lock(&ledger);
    report.counts = Kind::ALL.iter().map(|&k| (k, ledger.counts(k))).collect();
    report.total = ledger.total();
    report.redelivered = ledger.redelivered;
    report.losses = ledger.losses.clone();
    report.runtime_s = t0.elapsed().as_secs_f64();
    Ok(report)
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

struct Checked {
    writers: Vec<Conn>,
    keys: usize,
    messages: usize,
}

/// Logs every writer in, has every recipient collect its messages and
/// every writer read back its keys.
async fn check_all(
    opts: &CrashOptions,
    ex: &smol::Executor<'_>,
    target: &Target,
    names: &Arc<Names>,
    ledger: &Arc<Mutex<Ledger>>,
) -> Result<Checked, String> {
    let logins: Vec<_> = (0..opts.writers)
        .map(|i| {
            let (target, user, password) = (target.clone(), names.writer(i), opts.password.clone());
            ex.spawn(async move {
                let login = Login {
                    user: &user,
                    password: &password,
                    mechanism: Mechanism::ScramSha256,
                    resource: "writer",
                    presence: true,
                    sm: false,
                };
                Conn::login(&target, &login)
                    .await
                    .map_err(|e| format!("{user} could not log in: {e}"))
            })
        })
        .collect();
    let mut writers = Vec::new();
    for l in logins {
        writers.push(l.await?);
    }
    let mut messages = 0;
    for i in 0..opts.writers {
        messages += check::recipient(target, names, i, &opts.password, ledger)
            .await
            .map_err(|e| format!("{}: {e}", names.recipient(i)))?;
    }
    let mut keys = 0;
    for (i, conn) in writers.iter_mut().enumerate() {
        keys += check::writer(conn, i, ledger, opts.step_timeout)
            .await
            .map_err(|e| format!("{}: {e}", names.writer(i)))?;
    }
    Ok(Checked {
        writers,
        keys,
        messages,
    })
}

async fn close_all(conns: Vec<Conn>) {
    for c in conns {
        c.close().await;
    }
}

/// After the final check: a backup (every table read), SIGTERM, `perch
/// check`, and the log's errors.
fn integrity(perch: &mut PerchProcess, report: &mut CrashReport) {
    let copy = perch.work_dir().join("integrity.redb");
    let copy_arg = copy.display().to_string();
    match perch.command(&["backup", &copy_arg]) {
        Ok(out) if out.status.success() => report.integrity.push(format!(
            "perch backup: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        )),
        Ok(out) => report.failures.push(format!(
            "perch backup failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => report.failures.push(e),
    }
    let _ = std::fs::remove_file(&copy);
    if perch.stop() {
        report
            .integrity
            .push("perch stopped cleanly on SIGTERM".into());
    } else {
        report
            .failures
            .push("perch did not stop cleanly on SIGTERM".into());
    }
    match perch.command(&["check"]) {
        Ok(out) if out.status.success() => {
            report.integrity.push("perch check: valid".into());
        }
        Ok(out) => report.failures.push(format!(
            "perch check failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => report.failures.push(e),
    }
    let panics = perch.log_lines_with("panicked");
    let errors = perch.log_lines_with(" ERROR ");
    report.integrity.push(format!(
        "server log: {} error lines, {} panics",
        errors.len(),
        panics.len()
    ));
    for line in panics.iter().chain(errors.iter()).take(5) {
        report.failures.push(format!("server log: {line}"));
    }
}

pub const CRASH_HELP: &str = "\
crash options (defaults in brackets):
  --perch PATH           the Perch binary to start [target/release/perch]
  --config FILE          run it with this configuration (then --port, --domain
                         say where it listens) instead of a generated one
  --kills N              SIGKILLs, each mid-load [50]
  --seed N               seed of the kill times and write choices [from the clock]
  --writers N            clients writing at once [4]
  --min-load-ms MS       shortest load before a kill [50]
  --max-load-ms MS       longest load before a kill [800]
  --user-prefix P        accounts P w1…, P r1… [crash]
  --password PW          their password [crash-password]
  --step-timeout S       bound on each answer [10]
  --max-seconds S        bound on the whole run [600]
  --keep                 keep the work directory (data, config, server log)
  --quiet                no progress lines";

impl CrashOptions {
    pub fn from_args(args: &[String]) -> Result<CrashOptions, String> {
        let a = crate::args::Args::parse(
            args,
            &[
                "perch",
                "config",
                "host",
                "port",
                "domain",
                "muc-domain",
                "kills",
                "seed",
                "writers",
                "min-load-ms",
                "max-load-ms",
                "user-prefix",
                "password",
                "step-timeout",
                "max-seconds",
            ],
            &["keep", "quiet"],
        )?;
        let d = CrashOptions::default();
        let min_ms: u64 = a.bounded("min-load-ms", 50, 1..=600_000)?;
        let max_ms: u64 = a.bounded("max-load-ms", 800, min_ms..=600_000)?;
        Ok(CrashOptions {
            perch: a.value("perch").map_or(d.perch, PathBuf::from),
            config: a.value("config").map(PathBuf::from),
            addr: a.loopback(5222)?,
            domain: a.value("domain").unwrap_or("localhost").to_string(),
            muc_domain: a.value("muc-domain").unwrap_or("").to_string(),
            user_prefix: a.value("user-prefix").unwrap_or("crash").to_string(),
            password: a.value("password").unwrap_or("crash-password").to_string(),
            kills: a.bounded("kills", 50, 1..=100_000)?,
            seed: match a.value("seed") {
                Some(_) => a.number("seed", 0)?,
                None => crate::rng::seed_from_clock(),
            },
            writers: a.bounded("writers", 4, 1..=64)?,
            min_load: Duration::from_millis(min_ms),
            max_load: Duration::from_millis(max_ms),
            step_timeout: Duration::from_secs_f64(a.seconds("step-timeout", 10.0)?.max(0.1)),
            max_seconds: a.seconds("max-seconds", 600.0)?,
            keep: a.flag("keep"),
            print: !a.flag("quiet"),
            ..d
        })
    }
}
