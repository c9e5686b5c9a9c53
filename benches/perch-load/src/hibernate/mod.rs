//! `hibernate`: what a stream-managed session (XEP-0198) costs the server
//! while its client is away, and how fast clients come back.
//!
//! 1. Starts the Perch binary `--perch` on a generated configuration
//!    (`max_connections` above the client count, no per-address limit,
//!    `login_attempts_per_minute = 10000`, `[c2s] resume_timeout_secs =
//!    3600`, `resume_queue_max = 2000`), with the accounts the clients need
//!    (`--per-account` resources each; client i is account i mod accounts,
//!    so those logging in together are different accounts'), and reads its
//!    RSS and descriptors before any client.
//! 2. Logs in `--clients` clients (10 000), `--concurrency` at a time: SASL,
//!    bind, `<enable resume='true'/>`, initial presence, a ping. While
//!    connected each answers the server's `<r/>`. RSS with all idle.
//! 3. Each client acknowledges everything it received (`<a h/>`, so the
//!    sessions hold nothing unacknowledged) and its TCP connection is shut
//!    down both ways without `</stream:stream>`: a phone losing its
//!    network. Once the server's descriptors are back where they were
//!    (it sees the end of the stream at once) and its CPU is quiet: RSS
//!    with every session hibernated.
//! 4. Every session is resumed on a new connection (SASL, then `<resume
//!    previd h/>` instead of binding), in `--batches` batches (5) of
//!    `--concurrency` at a time: resumes per second per batch (median) and
//!    the time to `<resumed/>`, whose `h` must be what the client sent.
//!    RSS with all resumed; then each resumed stream sends a ping and an
//!    `<r/>`: the result and an `<a h/>` that counts the ping (the count
//!    continued across the resumption) verify the session.
//!
//! Per session: (RSS − RSS before) ÷ sessions, connected and hibernated,
//! and the difference. glibc's malloc keeps most of what the closed
//! connections freed, so after a mass cut the RSS hardly falls; with
//! `--one-by-one` each client is cut as soon as it has logged in (no more
//! than `--concurrency` connections at once, their memory reused), the
//! hibernated reading comes first and the connected one after the
//! resumptions. `--server-pid` with `--port` measures a server
//! already running instead (its accounts `<prefix>1…` must exist, and its
//! resumption timeout must outlast the run). Exit status 1 unless every
//! client logged in, was resumed and verified.

pub mod report;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::conn::{ClientError, Conn, Login, Target, TlsMode};
use crate::ctx::{now_ns, settle};
use crate::histogram::Histogram;
use crate::procfs::{Meter, Probe};
use crate::rng::Rng;
use crate::sasl::Mechanism;
use crate::sm::{self, Inbound};
use crate::spawned::{PerchProcess, Settings, Source};
use crate::xml::{self, Frame};

pub use report::{HibernateReport, ResumeBatch};

#[derive(Debug, Clone)]
pub struct HibernateOptions {
    /// Start this binary (unless `server_pid` names a running server).
    pub perch: PathBuf,
    pub config: Option<PathBuf>,
    pub server_pid: Option<u32>,
    pub addr: SocketAddr,
    pub domain: String,
    pub user_prefix: String,
    pub password: String,
    pub clients: usize,
    pub per_account: usize,
    pub concurrency: usize,
    pub batches: usize,
    pub mechanism: Mechanism,
    pub tls: TlsMode,
    pub threads: usize,
    /// Cut each client as soon as it has logged in, so that no more than
    /// `concurrency` connections exist at once; the "connected" reading is
    /// then taken once all were resumed.
    pub one_by_one: bool,
    /// Longest wait for the server's CPU to go quiet before a reading.
    pub settle_seconds: f64,
    /// Extra pause before each memory reading.
    pub pause: f64,
    pub step_timeout: Duration,
    pub keep: bool,
    pub print: bool,
}

impl Default for HibernateOptions {
    fn default() -> Self {
        HibernateOptions {
            perch: PathBuf::from("target/release/perch"),
            config: None,
            server_pid: None,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5222),
            domain: "localhost".into(),
            user_prefix: "hib".into(),
            password: "hib-password".into(),
            clients: 10_000,
            per_account: 16,
            concurrency: 50,
            batches: 5,
            mechanism: Mechanism::Plain,
            tls: TlsMode::None,
            threads: 2,
            one_by_one: false,
            settle_seconds: 15.0,
            pause: 2.0,
            step_timeout: Duration::from_secs(30),
            keep: false,
            print: true,
        }
    }
}

pub const HIBERNATE_HELP: &str = "\
hibernate options (defaults in brackets):
  --perch PATH           the Perch binary to start [target/release/perch]
  --config FILE          start it with this configuration (then --port says
                         where it listens; resumption must be on, long enough)
  --server-pid PID       measure this running server at --port instead; its
                         accounts <prefix>1… must exist
  --clients N            sessions [10000]
  --per-account N        resources per account, at most 32 [16]
  --concurrency N        logins and resumptions in flight [50]
  --batches N            resumption batches (resumes/s is their median) [5]
  --mech M               PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 [PLAIN]
  --tls none|starttls|direct                            [none]
  --threads N            OS threads driving the clients [2]
  --one-by-one           cut each client as soon as it has logged in (at most
                         --concurrency connections at once), and read the RSS
                         with all connected after resuming them: the
                         hibernated reading then holds no memory the
                         allocator kept from closed connections (with
                         --per-account 1: otherwise the presence of an
                         account's later resources waits in the earlier
                         ones' queues)
  --settle-seconds S     max wait for the server to go quiet [15]
  --pause S              pause before each memory reading [2]
  --user-prefix P        accounts P1, P2, … [hib]   --password PW [hib-password]
  --step-timeout S       bound on each protocol step [30]
  --keep                 keep the work directory
  --quiet                no progress lines";

impl HibernateOptions {
    pub fn from_args(args: &[String]) -> Result<HibernateOptions, String> {
        let a = crate::args::Args::parse(
            args,
            &[
                "perch",
                "config",
                "server-pid",
                "host",
                "port",
                "domain",
                "user-prefix",
                "password",
                "clients",
                "per-account",
                "concurrency",
                "batches",
                "mech",
                "tls",
                "threads",
                "settle-seconds",
                "pause",
                "step-timeout",
            ],
            &["keep", "quiet", "one-by-one"],
        )?;
        let d = HibernateOptions::default();
        let mechanism = match a.value("mech") {
            None => d.mechanism,
            Some(m) => Mechanism::parse(m).ok_or_else(|| format!("--mech: unknown '{m}'"))?,
        };
        let tls = match a.value("tls") {
            None => d.tls,
            Some(t) => TlsMode::parse(t)
                .ok_or_else(|| format!("--tls: '{t}' (none, starttls or direct)"))?,
        };
        Ok(HibernateOptions {
            perch: a.value("perch").map_or(d.perch, PathBuf::from),
            config: a.value("config").map(PathBuf::from),
            server_pid: match a.value("server-pid") {
                Some(_) => Some(a.number("server-pid", 0)?),
                None => None,
            },
            addr: a.loopback(5222)?,
            domain: a.value("domain").unwrap_or("localhost").to_string(),
            user_prefix: a.value("user-prefix").unwrap_or("hib").to_string(),
            password: a.value("password").unwrap_or("hib-password").to_string(),
            clients: a.bounded("clients", d.clients, 1..=1_000_000)?,
            per_account: a.bounded("per-account", d.per_account, 1..=32)?,
            concurrency: a.bounded("concurrency", d.concurrency, 1..=10_000)?,
            batches: a.bounded("batches", d.batches, 1..=1000)?,
            mechanism,
            tls,
            threads: a.bounded("threads", d.threads, 1..=16)?,
            one_by_one: a.flag("one-by-one"),
            settle_seconds: a.seconds("settle-seconds", d.settle_seconds)?,
            pause: a.seconds("pause", d.pause)?,
            step_timeout: Duration::from_secs_f64(a.seconds("step-timeout", 30.0)?.max(0.1)),
            keep: a.flag("keep"),
            print: !a.flag("quiet"),
        })
    }

    fn say(&self, msg: &str) {
        if self.print {
            eprintln!("[perch-load] hibernate: {msg}");
        }
    }
}

/// Who logs in where.
struct Plan {
    target: Target,
    prefix: String,
    password: String,
    accounts: usize,
    mechanism: Mechanism,
}

impl Plan {
    /// Client i is account i mod accounts: the clients logging in at once
    /// are different accounts' (as when a server restarts), not one
    /// account's many devices.
    fn account(&self, i: usize) -> String {
        format!("{}{}", self.prefix, i % self.accounts.max(1) + 1)
    }

    fn resource(i: usize) -> String {
        format!("h{i}")
    }
}

/// A session whose connection was cut, as its client remembers it.
struct Away {
    index: usize,
    jid: String,
    counter: sm::Counter,
}

/// Runs the measurement. `Err` when it cannot start (descriptors, the
/// server, accounts); failures of clients are in the report.
pub fn run(opts: &HibernateOptions) -> Result<HibernateReport, String> {
    let limits = crate::rlimit::raise_nofile();
    let needed = opts.clients as u64 + 256;
    if !limits.allows(needed) {
        return Err(format!(
            "{} clients need about {needed} descriptors; RLIMIT_NOFILE is {} \
             (raise the hard limit: ulimit -Hn)",
            opts.clients,
            limits.describe()
        ));
    }
    if let Some(ports) = crate::soak::ephemeral_ports()
        && ports < 2 * opts.clients as u64 + 1000
    {
        opts.say(&format!(
            "warning: the ephemeral port range has {ports} ports; the cut connections \
             wait in TIME_WAIT while {} new ones resume (net.ipv4.ip_local_port_range)",
            opts.clients
        ));
    }
    let descriptor_limit = limits.describe();
    crate::executor::run_on(opts.threads, |ex| async move {
        measure(opts, &ex, descriptor_limit).await
    })
}

async fn measure(
    opts: &HibernateOptions,
    ex: &Arc<smol::Executor<'static>>,
    descriptor_limit: String,
) -> Result<HibernateReport, String> {
    let accounts = opts.clients.div_ceil(opts.per_account.max(1));
    let mut server = None;
    let (addr, pid) = match opts.server_pid {
        Some(pid) => (opts.addr, pid),
        None => {
            let source = Source::given_or(
                opts.config.as_ref(),
                opts.addr,
                None,
                Settings {
                    domain: opts.domain.clone(),
                    tls_listener: opts.tls == TlsMode::Direct,
                    max_connections: u32::try_from(opts.clients + 1000).unwrap_or(u32::MAX),
                    // Logins on one account at the same time count as
                    // failures until they succeed.
                    free_login_failures: Some(10_000),
                    resume_timeout_secs: Some(3600),
                    resume_queue_max: Some(2000),
                    log_level: "warn",
                    ..Settings::default()
                },
            );
            let mut rng = Rng::new(crate::rng::seed_from_clock());
            let mut perch =
                PerchProcess::prepare(&opts.perch, source, "hibernate", opts.keep, &mut rng)?;
            perch.start().await?;
            let names: Vec<String> = (1..=accounts)
                .map(|i| format!("{}{i}", opts.user_prefix))
                .collect();
            let t = Instant::now();
            perch.add_accounts(&names, &opts.password, 8).await?;
            opts.say(&format!(
                "perch pid {} on {}, {accounts} accounts created in {:.1} s",
                perch.pid().unwrap_or(0),
                perch.c2s,
                t.elapsed().as_secs_f64()
            ));
            let addr = match (opts.tls, perch.c2s_tls) {
                (TlsMode::Direct, Some(tls)) => tls,
                _ => perch.c2s,
            };
            let found = (addr, perch.pid().unwrap_or(0));
            server = Some(perch);
            found
        }
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
        accounts,
        mechanism: opts.mechanism,
    });
    let probe = Probe::new(Some(pid), false);
    let mut report = HibernateReport {
        one_by_one: opts.one_by_one,
        clients: opts.clients,
        accounts,
        tls: opts.tls.name().to_string(),
        mechanism: opts.mechanism.name().to_string(),
        descriptor_limit,
        ..HibernateReport::default()
    };
    let reading = || {
        let s = probe.snapshot().unwrap_or_default();
        (s.rss_kib, s.fds)
    };
    let quiet = || async {
        settle(&probe, opts.settle_seconds).await;
        smol::Timer::after(Duration::from_secs_f64(opts.pause)).await;
    };
    quiet().await;
    (report.rss_before_kib, report.fds_before) = reading();

    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let meter = Meter::start(&probe);
    let t0 = Instant::now();
    let logged = if opts.one_by_one {
        // Each client is cut as soon as it has logged in.
        opts.say(&format!(
            "logging in {} clients, {} at a time, each cut at once",
            opts.clients, opts.concurrency
        ));
        log_in_all(opts, ex, &plan, None).await
    } else {
        // Each client answers the server's <r/> while it idles.
        opts.say(&format!(
            "logging in {} clients, {} at a time",
            opts.clients, opts.concurrency
        ));
        log_in_all(opts, ex, &plan, Some(stop_rx)).await
    };
    report.login_s = t0.elapsed().as_secs_f64();
    let m = meter.stop();
    (report.login_server_cpu_s, report.login_other_cores) = (m.server_cpu_s, m.other_busy_cores);
    report.login_latency = logged.latency;
    report.logged_in = logged.idle.len() + logged.away.len();
    note(&mut report, logged.errors);
    let mut away = logged.away;
    let cut_at = if opts.one_by_one {
        Instant::now()
    } else {
        quiet().await;
        let (rss, fds) = reading();
        (report.rss_connected_kib, report.fds_connected) = (rss, fds);
        opts.say(&format!(
            "{} connected: RSS {rss} KiB, {fds} descriptors",
            report.logged_in
        ));
        // Cut every connection.
        drop(stop_tx);
        let mut idle_errors = Vec::new();
        let mut conns = Vec::with_capacity(report.logged_in);
        for (index, task) in logged.idle {
            match task.await {
                Ok(conn) => conns.push((index, conn)),
                Err(e) => idle_errors.push(format!("{} (idle): {e}", Plan::resource(index))),
            }
        }
        report.lost_idle = idle_errors.len();
        note(&mut report, idle_errors);
        let cut_at = Instant::now();
        for (index, conn) in conns {
            away.extend(leave(index, conn).await);
        }
        cut_at
    };
    report.cut = away.len();
    let notice_s = noticed(&probe, report.fds_before, cut_at, opts.step_timeout).await;
    if !opts.one_by_one {
        report.notice_s = notice_s;
    }
    quiet().await;
    let (rss, fds) = reading();
    (report.rss_hibernated_kib, report.fds_hibernated) = (rss, fds);
    opts.say(&format!(
        "{} hibernated: RSS {rss} KiB, {fds} descriptors",
        report.cut
    ));

    // Resume them, batch by batch.
    let per_batch = away.len().div_ceil(opts.batches.max(1)).max(1);
    let meter = Meter::start(&probe);
    let mut resumed = Vec::with_capacity(away.len());
    let mut away = away.into_iter();
    loop {
        let batch: Vec<Away> = away.by_ref().take(per_batch).collect();
        if batch.is_empty() {
            break;
        }
        let sessions = batch.len();
        let t = Instant::now();
        let done = resume_all(opts, ex, &plan, batch).await;
        let wall_s = t.elapsed().as_secs_f64();
        report.batches.push(ResumeBatch {
            sessions,
            resumed: done.conns.len(),
            wall_s,
        });
        report.resume_latency.merge(&done.latency);
        note(&mut report, done.errors);
        resumed.extend(done.conns);
    }
    let m = meter.stop();
    (report.resume_server_cpu_s, report.resume_other_cores) = (m.server_cpu_s, m.other_busy_cores);
    quiet().await;
    let (rss, fds) = reading();
    report.rss_resumed_kib = rss;
    if opts.one_by_one {
        (report.rss_connected_kib, report.fds_connected) = (rss, fds);
    }
    opts.say(&format!(
        "{} resumed at {:.0}/s: RSS {} KiB",
        report.resumed(),
        report.resumes_per_s_median().unwrap_or(0.0),
        report.rss_resumed_kib
    ));

    // Each resumed session answers a ping and counts it.
    let checks: Vec<_> = resumed
        .into_iter()
        .map(|conn| ex.spawn(verify(conn, opts.step_timeout)))
        .collect();
    let mut errors = Vec::new();
    let mut closing = Vec::new();
    for check in checks {
        match check.await {
            Ok((conn, after)) => {
                report.verified += 1;
                report.stanzas_after_resume += after;
                closing.push(ex.spawn(conn.close()));
            }
            Err(e) => errors.push(format!("verifying: {e}")),
        }
    }
    note(&mut report, errors);
    for c in closing {
        c.await;
    }
    if let Some(mut perch) = server.take() {
        perch.stop();
    }
    Ok(report)
}

/// Keeps the first few errors and counts all.
fn note(report: &mut HibernateReport, errors: Vec<String>) {
    report.error_count += errors.len();
    for e in errors {
        if report.errors.len() < 5 {
            report.errors.push(e);
        }
    }
}

/// Waits until the server holds no more descriptors than before the
/// clients came (a few of slack); the time that took.
async fn noticed(probe: &Probe, fds_before: u64, since: Instant, limit: Duration) -> Option<f64> {
    let end = Instant::now() + limit.max(Duration::from_secs(10));
    while Instant::now() < end {
        let fds = probe.snapshot().map_or(0, |s| s.fds);
        if fds <= fds_before + 2 {
            return Some(since.elapsed().as_secs_f64());
        }
        smol::Timer::after(Duration::from_millis(10)).await;
    }
    None
}

/// The client acknowledges everything it received, then loses its
/// connection.
async fn leave(index: usize, mut conn: Conn) -> Option<Away> {
    let mut counter = conn.sm.take()?;
    let mut ack = Vec::new();
    counter.answer(&mut ack);
    let _ = conn.send(&ack).await;
    let jid = std::mem::take(&mut conn.jid);
    conn.cut();
    Some(Away {
        index,
        jid,
        counter,
    })
}

#[derive(Default)]
struct LoggedIn {
    /// Each client's idle task, which gives its connection back at the
    /// stop signal.
    idle: Vec<(usize, smol::Task<Result<Conn, ClientError>>)>,
    /// Clients cut as soon as they had logged in.
    away: Vec<Away>,
    latency: Histogram,
    errors: Vec<String>,
}

/// Logs every client in; each then idles until `stop`, or, without one,
/// is cut at once.
async fn log_in_all(
    opts: &HibernateOptions,
    ex: &Arc<smol::Executor<'static>>,
    plan: &Arc<Plan>,
    stop: Option<smol::channel::Receiver<()>>,
) -> LoggedIn {
    let next = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Mutex::new(LoggedIn::default()));
    let workers: Vec<_> = (0..opts.concurrency.min(opts.clients))
        .map(|_| {
            let (next, shared, plan, stop, ex2) = (
                next.clone(),
                shared.clone(),
                plan.clone(),
                stop.clone(),
                ex.clone(),
            );
            let clients = opts.clients;
            ex.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= clients {
                        break;
                    }
                    let (user, resource) = (plan.account(i), Plan::resource(i));
                    let login = Login {
                        user: &user,
                        password: &plan.password,
                        mechanism: plan.mechanism,
                        resource: &resource,
                        presence: true,
                        sm: true,
                    };
                    let t0 = now_ns();
                    let result = Conn::login(&plan.target, &login).await;
                    let took = now_ns() - t0;
                    let resumable = |c: &Conn| c.sm.as_ref().is_some_and(|c| c.id.is_some());
                    let mut gone = None;
                    let result = match (result, &stop) {
                        (Ok(conn), None) if resumable(&conn) => {
                            gone = leave(i, conn).await;
                            Err(ClientError::Closed("cut"))
                        }
                        (r, _) => r,
                    };
                    let Ok(mut all) = shared.lock() else { break };
                    match result {
                        Err(_) if gone.is_some() => {
                            all.latency.record(took);
                            all.away.extend(gone);
                        }
                        Ok(mut conn) if resumable(&conn) => {
                            conn.shrink();
                            all.latency.record(took);
                            if let Some(stop) = &stop {
                                all.idle.push((i, ex2.spawn(idle(conn, stop.clone()))));
                            }
                        }
                        Ok(_) => all
                            .errors
                            .push(format!("{user}/{resource}: no resumption id in <enabled/>")),
                        Err(e) => all.errors.push(format!("{user}/{resource}: {e}")),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await;
    }
    let mut out = shared
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_else(|_| LoggedIn {
            errors: vec!["a login worker panicked".into()],
            ..LoggedIn::default()
        });
    out.idle.sort_by_key(|(i, _)| *i);
    out
}

/// A connected client doing nothing but answer `<r/>`, until `stop`.
async fn idle(mut conn: Conn, stop: smol::channel::Receiver<()>) -> Result<Conn, ClientError> {
    let mut out = Vec::new();
    loop {
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Element(a, b) => {
                    conn.sm_inbound(a, b, &mut out)?;
                }
                Frame::End => return Err(ClientError::Closed("idle")),
                Frame::Header(..) => {}
            }
        }
        if !out.is_empty() {
            conn.send(&out).await?;
            out.clear();
        }
        conn.shrink();
        if !conn.fill_or_stop(&stop).await? {
            return Ok(conn);
        }
    }
}

struct Resumed {
    conns: Vec<Conn>,
    latency: Histogram,
    errors: Vec<String>,
}

/// Resumes `batch`, `--concurrency` at a time.
async fn resume_all(
    opts: &HibernateOptions,
    ex: &Arc<smol::Executor<'static>>,
    plan: &Arc<Plan>,
    batch: Vec<Away>,
) -> Resumed {
    let workers_n = opts.concurrency.min(batch.len()).max(1);
    let queue = Arc::new(Mutex::new(batch.into_iter()));
    let shared = Arc::new(Mutex::new(Resumed {
        conns: Vec::new(),
        latency: Histogram::new(),
        errors: Vec::new(),
    }));
    let workers: Vec<_> = (0..workers_n)
        .map(|_| {
            let (queue, shared, plan) = (queue.clone(), shared.clone(), plan.clone());
            ex.spawn(async move {
                while let Some(away) = queue.lock().ok().and_then(|mut q| q.next()) {
                    let (user, resource) = (plan.account(away.index), Plan::resource(away.index));
                    let login = Login {
                        user: &user,
                        password: &plan.password,
                        mechanism: plan.mechanism,
                        resource: &resource,
                        presence: true,
                        sm: true,
                    };
                    let sent = away.counter.sent;
                    let t0 = now_ns();
                    let result = Conn::resume(&plan.target, &login, away.counter).await;
                    let took = now_ns() - t0;
                    let Ok(mut all) = shared.lock() else { break };
                    match result {
                        Ok((mut conn, resumed)) if resumed.h == sent => {
                            all.latency.record(took);
                            conn.jid = away.jid;
                            conn.index = away.index;
                            conn.shrink();
                            all.conns.push(conn);
                        }
                        Ok((_, resumed)) => all.errors.push(format!(
                            "{user}/{resource}: <resumed h='{}'/> but {sent} were sent",
                            resumed.h
                        )),
                        Err(e) => all.errors.push(format!("{user}/{resource} resuming: {e}")),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await;
    }
    shared
        .lock()
        .map(|mut s| Resumed {
            conns: std::mem::take(&mut s.conns),
            latency: s.latency.clone(),
            errors: std::mem::take(&mut s.errors),
        })
        .unwrap_or(Resumed {
            conns: Vec::new(),
            latency: Histogram::new(),
            errors: vec!["a resumption worker panicked".into()],
        })
}

/// A resumed session answers a ping, and acknowledges it with an `h`
/// that counts it. Returns the stanzas that came besides the ping's
/// result (sent again after the resumption, or new).
async fn verify(mut conn: Conn, step: Duration) -> Result<(Conn, u64), ClientError> {
    let id = format!("v{}", conn.index);
    let mut out =
        format!("<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>").into_bytes();
    let before = {
        let Some(counter) = conn.sm.as_mut() else {
            return Err(ClientError::Refused(
                "verify",
                "no stream management".into(),
            ));
        };
        counter.sent_one(0);
        counter.request(&mut out);
        counter.handled
    };
    conn.send(&out).await?;
    out.clear();
    let mut answered = false;
    let result = crate::conn::timeout(step, "ping after resumption", async {
        loop {
            while let Some(frame) = conn.next_frame()? {
                match frame {
                    Frame::Element(a, b) => {
                        if conn.sm_inbound(a, b, &mut out)? == Inbound::Stanza {
                            let el = conn.bytes(a, b);
                            if xml::local_name(el) == b"iq"
                                && xml::start_tag_attr(el, "id") == Some(id.as_bytes())
                            {
                                answered = true;
                            }
                        }
                    }
                    Frame::End => return Err(ClientError::Closed("verify")),
                    Frame::Header(..) => {}
                }
            }
            if !out.is_empty() {
                conn.send(&out).await?;
                out.clear();
            }
            if answered && conn.sm.as_ref().is_some_and(|c| c.outstanding() == 0) {
                return Ok(());
            }
            conn.fill().await?;
        }
    })
    .await;
    result?;
    let handled = conn.sm.as_ref().map_or(before, |c| c.handled);
    let after = u64::from(handled.wrapping_sub(before)).saturating_sub(1);
    conn.shrink();
    Ok((conn, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_parse_with_defaults_and_bounds() {
        let o = HibernateOptions::from_args(&[]).expect("valid");
        assert_eq!(
            (o.clients, o.per_account, o.concurrency, o.batches),
            (10_000, 16, 50, 5)
        );
        assert_eq!((o.mechanism, o.tls), (Mechanism::Plain, TlsMode::None));
        let o = HibernateOptions::from_args(&args(
            "--clients 50 --per-account 4 --batches 2 --mech SCRAM-SHA-256 --tls starttls --quiet",
        ))
        .expect("valid");
        assert_eq!((o.clients, o.per_account, o.batches), (50, 4, 2));
        assert_eq!(o.mechanism, Mechanism::ScramSha256);
        assert_eq!(o.tls, TlsMode::StartTls);
        assert!(!o.print);
        for bad in [
            "--clients 0",
            "--per-account 33",
            "--mech DIGEST-MD5",
            "--tls ssl",
            "--host 10.0.0.1",
            "--frobnicate 1",
        ] {
            assert!(HibernateOptions::from_args(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn clients_share_accounts_by_resource() {
        let plan = Plan {
            target: Target {
                addr: "127.0.0.1:1".parse().expect("addr"),
                domain: "localhost".into(),
                tls: TlsMode::None,
                tls_config: None,
                step_timeout: Duration::from_secs(1),
                ws: None,
            },
            prefix: "hib".into(),
            password: "pw".into(),
            accounts: 4,
            mechanism: Mechanism::Plain,
        };
        let accounts: Vec<String> = (0..6).map(|i| plan.account(i)).collect();
        assert_eq!(accounts, ["hib1", "hib2", "hib3", "hib4", "hib1", "hib2"]);
        assert_eq!(Plan::resource(16), "h16");
    }
}
