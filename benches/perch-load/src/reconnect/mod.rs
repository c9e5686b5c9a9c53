//! `reconnect`: what a login costs the classic way, with SASL2 + Bind 2,
//! and with a FAST token (XEP-0484), on the same accounts and server.
//!
//! 1. Starts the Perch binary `--perch` on a generated configuration
//!    (plaintext logins allowed on loopback, so `--tls none` works too;
//!    FAST on, as by default) with `--clients` accounts.
//! 2. An untimed pass of classic SCRAM logins fills this tool's cache of
//!    salted passwords, so the timed passes do not include its PBKDF2.
//! 3. `classic` (one pass per `--mech`): stream, STARTTLS (`--tls`), SASL,
//!    stream restart, resource bind. `sasl2`: stream, STARTTLS, SASL2
//!    SCRAM-SHA-256 with Bind 2 inline and a FAST token requested for
//!    the client's `<user-agent id/>`. `fast_first` and `fast`
//!    (`--reconnects` passes): SASL2 with that token (HT-SHA-256-NONE)
//!    and Bind 2 inline; the first use of a token moves it into its slot
//!    (a store write), later ones only check it.
//!
//! Each pass logs every client in, `--concurrency` at a time, and keeps
//! the sessions until all are in: session set-up time (TCP connect to the
//! bound session), the round trips the client counted after TLS, and the
//! server's CPU per login; the sessions are closed and the server left to
//! go quiet between passes. Exit status 1 unless every login succeeded.

pub mod report;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smol::Executor;

use crate::conn::{ClientError, Conn, Login, Target, TlsMode};
use crate::ctx::{now_ns, settle};
use crate::histogram::Histogram;
use crate::procfs::{Meter, Probe};
use crate::rng::Rng;
use crate::sasl::Mechanism;
use crate::sasl2::{self, Credentials};
use crate::spawned::{PerchProcess, Settings, Source};

pub use report::{Pass, ReconnectReport};

#[derive(Debug, Clone)]
pub struct ReconnectOptions {
    pub perch: PathBuf,
    pub domain: String,
    pub user_prefix: String,
    pub password: String,
    pub clients: usize,
    pub concurrency: usize,
    /// FAST passes (the first one moves each token into its slot).
    pub reconnects: usize,
    /// The classic passes' mechanisms.
    pub mechanisms: Vec<Mechanism>,
    pub tls: TlsMode,
    pub threads: usize,
    pub settle_seconds: f64,
    pub step_timeout: Duration,
    pub keep: bool,
    pub print: bool,
}

impl Default for ReconnectOptions {
    fn default() -> Self {
        ReconnectOptions {
            perch: PathBuf::from("target/release/perch"),
            domain: "localhost".into(),
            user_prefix: "fast".into(),
            password: "fast-password".into(),
            clients: 500,
            concurrency: 10,
            reconnects: 4,
            mechanisms: vec![Mechanism::ScramSha256, Mechanism::Plain],
            tls: TlsMode::StartTls,
            threads: 2,
            settle_seconds: 5.0,
            step_timeout: Duration::from_secs(30),
            keep: false,
            print: true,
        }
    }
}

pub const RECONNECT_HELP: &str = "\
reconnect options (defaults in brackets):
  --perch PATH           the Perch binary to start [target/release/perch]
  --clients N            accounts, one client each [500]
  --concurrency N        logins in flight [10]
  --reconnects N         FAST passes; the first moves each token into its
                         slot (a store write), the others only check it [4]
  --mech M,M             classic passes' SASL mechanisms [SCRAM-SHA-256,PLAIN]
  --tls none|starttls|direct                            [starttls]
  --threads N            OS threads driving the clients [2]
  --settle-seconds S     max wait for the server to go quiet between passes [5]
  --user-prefix P        accounts P1, P2, … [fast]   --password PW [fast-password]
  --step-timeout S       bound on each protocol step [30]
  --keep                 keep the work directory
  --quiet                no progress lines";

impl ReconnectOptions {
    pub fn from_args(args: &[String]) -> Result<ReconnectOptions, String> {
        let a = crate::args::Args::parse(
            args,
            &[
                "perch",
                "domain",
                "user-prefix",
                "password",
                "clients",
                "concurrency",
                "reconnects",
                "mech",
                "tls",
                "threads",
                "settle-seconds",
                "step-timeout",
            ],
            &["keep", "quiet"],
        )?;
        let d = ReconnectOptions::default();
        let mechanisms = match a.value("mech") {
            None => d.mechanisms,
            Some(list) => list
                .split(',')
                .map(|m| Mechanism::parse(m.trim()).ok_or_else(|| format!("--mech: unknown '{m}'")))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let tls = match a.value("tls") {
            None => d.tls,
            Some(t) => TlsMode::parse(t)
                .ok_or_else(|| format!("--tls: '{t}' (none, starttls or direct)"))?,
        };
        Ok(ReconnectOptions {
            perch: a.value("perch").map_or(d.perch, PathBuf::from),
            domain: a.value("domain").unwrap_or("localhost").to_string(),
            user_prefix: a.value("user-prefix").unwrap_or("fast").to_string(),
            password: a.value("password").unwrap_or("fast-password").to_string(),
            clients: a.bounded("clients", d.clients, 1..=100_000)?,
            concurrency: a.bounded("concurrency", d.concurrency, 1..=10_000)?,
            reconnects: a.bounded("reconnects", d.reconnects, 1..=1000)?,
            mechanisms,
            tls,
            threads: a.bounded("threads", d.threads, 1..=16)?,
            settle_seconds: a.seconds("settle-seconds", d.settle_seconds)?,
            step_timeout: Duration::from_secs_f64(a.seconds("step-timeout", 30.0)?.max(0.1)),
            keep: a.flag("keep"),
            print: !a.flag("quiet"),
        })
    }

    fn say(&self, msg: &str) {
        if self.print {
            eprintln!("[perch-load] reconnect: {msg}");
        }
    }
}

/// How one pass logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// RFC 6120: SASL with this mechanism, restart, bind.
    Classic(Mechanism),
    /// SASL2 SCRAM-SHA-256, Bind 2 inline, a FAST token requested.
    Sasl2,
    /// SASL2 with the FAST token, Bind 2 inline.
    Fast,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Classic(_) => "classic",
            Mode::Sasl2 => "sasl2",
            Mode::Fast => "fast",
        }
    }

    pub fn mechanism(self) -> &'static str {
        match self {
            Mode::Classic(m) => m.name(),
            Mode::Sasl2 => "SCRAM-SHA-256",
            Mode::Fast => sasl2::HT_MECHANISM,
        }
    }
}

/// Who logs in where, and what each client remembers between passes.
struct Plan {
    target: Target,
    prefix: String,
    password: String,
    /// Client i's installation id (`<user-agent id/>`).
    agents: Vec<String>,
    /// Client i's FAST token, once the `sasl2` pass got one.
    tokens: Mutex<Vec<Option<String>>>,
}

impl Plan {
    fn user(&self, i: usize) -> String {
        format!("{}{}", self.prefix, i + 1)
    }

    fn token(&self, i: usize) -> Option<String> {
        self.tokens.lock().ok()?.get(i).cloned().flatten()
    }

    /// One login of client `i`: the connection with its session bound,
    /// and the round trips it took after TLS.
    async fn login(&self, i: usize, mode: Mode) -> Result<(Conn, u32), ClientError> {
        let user = self.user(i);
        let agent = &self.agents[i];
        match mode {
            Mode::Classic(mechanism) => {
                let login = Login {
                    user: &user,
                    password: &self.password,
                    mechanism,
                    resource: "classic",
                    presence: false,
                    sm: false,
                };
                let (mut conn, features) = Conn::authenticate(&self.target, &login).await?;
                conn.bind_resource(&self.target, login.resource, &features)
                    .await?;
                let trips = conn.round_trips_after_tls();
                Ok((conn, trips))
            }
            Mode::Sasl2 | Mode::Fast => {
                let token = match mode {
                    Mode::Fast => Some(self.token(i).ok_or_else(|| {
                        ClientError::Refused("fast", "no token from the sasl2 pass".into())
                    })?),
                    _ => None,
                };
                let credentials = match &token {
                    Some(token) => Credentials::Fast { token },
                    None => Credentials::Scram {
                        password: &self.password,
                    },
                };
                let (mut conn, features) = Conn::open(&self.target).await?;
                let success = sasl2::login(
                    &mut conn,
                    &self.target,
                    &features,
                    &user,
                    agent,
                    "perch-load",
                    credentials,
                )
                .await?;
                let trips = conn.round_trips_after_tls();
                if mode == Mode::Sasl2 {
                    let token = success.token.ok_or_else(|| {
                        ClientError::Refused("sasl2", "no FAST token in <success/>".into())
                    })?;
                    if let Ok(mut tokens) = self.tokens.lock() {
                        tokens[i] = Some(token);
                    }
                }
                conn.jid = success.jid;
                Ok((conn, trips))
            }
        }
    }
}

/// Runs the measurement; `Err` when it cannot start (server, accounts).
pub fn run(opts: &ReconnectOptions) -> Result<ReconnectReport, String> {
    crate::executor::run_on(opts.threads, |ex| measure(opts, ex))
}

async fn measure(
    opts: &ReconnectOptions,
    ex: Arc<Executor<'static>>,
) -> Result<ReconnectReport, String> {
    let settings = Settings {
        domain: opts.domain.clone(),
        tls_listener: opts.tls == TlsMode::Direct,
        max_connections: u32::try_from(opts.clients + 1000).unwrap_or(u32::MAX),
        free_login_failures: Some(10_000),
        log_level: "warn",
        ..Settings::default()
    };
    let mut rng = Rng::new(crate::rng::seed_from_clock());
    let mut perch = PerchProcess::prepare(
        &opts.perch,
        Source::Generated(settings),
        "reconnect",
        opts.keep,
        &mut rng,
    )?;
    perch.start().await?;
    let names: Vec<String> = (1..=opts.clients)
        .map(|i| format!("{}{i}", opts.user_prefix))
        .collect();
    let t = Instant::now();
    perch.add_accounts(&names, &opts.password, 8).await?;
    opts.say(&format!(
        "perch pid {} on {}, {} accounts created in {:.1} s",
        perch.pid().unwrap_or(0),
        perch.c2s,
        opts.clients,
        t.elapsed().as_secs_f64()
    ));
    let addr = match (opts.tls, perch.c2s_tls) {
        (TlsMode::Direct, Some(tls)) => tls,
        _ => perch.c2s,
    };
    let tls_config = match opts.tls {
        TlsMode::None => None,
        _ => Some(crate::tls::client_config().map_err(|e| format!("TLS set-up: {e}"))?),
    };
    let plan = Arc::new(Plan {
        target: Target {
            addr,
            domain: opts.domain.clone(),
            tls: opts.tls,
            tls_config,
            step_timeout: opts.step_timeout,
            ws: None,
        },
        prefix: opts.user_prefix.clone(),
        password: opts.password.clone(),
        agents: (0..opts.clients).map(|_| sasl2::user_agent_id()).collect(),
        tokens: Mutex::new(vec![None; opts.clients]),
    });
    let probe = Probe::new(perch.pid(), false);
    let mut report = ReconnectReport {
        clients: opts.clients,
        concurrency: opts.concurrency,
        tls: opts.tls.name().to_string(),
        ..ReconnectReport::default()
    };

    opts.say("warm-up: classic SCRAM-SHA-256 logins (fills this tool's key cache)");
    let warm = pass(
        opts,
        &ex,
        &plan,
        &probe,
        Mode::Classic(Mechanism::ScramSha256),
        "warm-up",
    )
    .await;
    if warm.ok == 0 {
        return Err(format!(
            "no client could log in: {}",
            warm.errors.first().map_or("", String::as_str)
        ));
    }
    let mut modes: Vec<(Mode, String)> = opts
        .mechanisms
        .iter()
        .map(|&m| (Mode::Classic(m), "classic".to_string()))
        .collect();
    modes.push((Mode::Sasl2, "sasl2".into()));
    for r in 0..opts.reconnects {
        let name = if r == 0 { "fast_first" } else { "fast" };
        modes.push((Mode::Fast, name.into()));
    }
    for (mode, name) in modes {
        opts.say(&format!(
            "{name} ({}): {} clients, {} at a time",
            mode.mechanism(),
            opts.clients,
            opts.concurrency
        ));
        let p = pass(opts, &ex, &plan, &probe, mode, &name).await;
        report.add(p);
    }
    drop(perch);
    Ok(report)
}

/// Logs every client in with `mode`, `concurrency` at a time, keeps the
/// sessions until all are in (the server's CPU is read over that), then
/// closes them and waits for the server to go quiet.
async fn pass(
    opts: &ReconnectOptions,
    ex: &Arc<Executor<'static>>,
    plan: &Arc<Plan>,
    probe: &Probe,
    mode: Mode,
    name: &str,
) -> Pass {
    settle(probe, opts.settle_seconds).await;
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let pids = probe.pids();
    let sched0 = probe.sched_ns(&pids);
    let meter = Meter::start(probe);
    let workers: Vec<_> = (0..opts.concurrency.min(opts.clients))
        .map(|_| {
            let (next, results, plan) = (next.clone(), results.clone(), plan.clone());
            let clients = opts.clients;
            ex.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= clients {
                        break;
                    }
                    let t0 = now_ns();
                    let outcome = plan.login(i, mode).await;
                    let took = now_ns() - t0;
                    let outcome = outcome
                        .map(|(conn, trips)| (conn, trips, took))
                        .map_err(|e| format!("{}: {e}", plan.user(i)));
                    if let Ok(mut r) = results.lock() {
                        r.push(outcome);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await;
    }
    let m = precise(meter.stop(), probe, &pids, sched0);
    let outcomes = results
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default();
    let mut p = Pass {
        name: name.to_string(),
        mode: mode.name().to_string(),
        mechanism: mode.mechanism().to_string(),
        setup: Histogram::new(),
        round_trips: Vec::new(),
        ok: 0,
        errors: Vec::new(),
        meter: m,
    };
    let mut conns = Vec::new();
    for o in outcomes {
        match o {
            Ok((conn, trips, took)) => {
                p.ok += 1;
                p.setup.record(took);
                p.round_trips.push(trips);
                conns.push(conn);
            }
            Err(e) => p.errors.push(e),
        }
    }
    let closing: Vec<_> = conns.into_iter().map(|c| ex.spawn(c.close())).collect();
    for c in closing {
        c.await;
    }
    if !p.errors.is_empty() {
        opts.say(&format!(
            "{name}: {} failed, e.g. {}",
            p.errors.len(),
            p.errors[0]
        ));
    }
    p
}

/// `m` with the server's CPU as the scheduler counted it (nanoseconds,
/// not 10-ms ticks: a pass of a few hundred logins is short).
pub(crate) fn precise(
    mut m: crate::procfs::MeterReading,
    probe: &Probe,
    pids: &[u32],
    sched0: u64,
) -> crate::procfs::MeterReading {
    if probe.is_set() {
        m.server_cpu_s = probe.sched_ns(pids).saturating_sub(sched0) as f64 / 1e9;
    }
    m
}
