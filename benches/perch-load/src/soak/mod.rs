//! `soak`: `--connections` clients (10 000) against one server for
//! `--seconds` (30 minutes), a mix of plaintext, STARTTLS and direct TLS,
//! each logging in, chatting (or, one in five, sending groupchat in one of
//! `--rooms` rooms), and after a lifetime around `--lifetime` logging out
//! and in again. Every `--sample-seconds` (10) one line: the server's
//! resident memory, open descriptors and CPU per message sent. At the
//! end a verdict ([`verdict`]): flat, or not (exit status 1).
//!
//! By default it starts the Perch binary `--perch` itself, on a generated
//! configuration (plaintext and direct-TLS listeners on free loopback
//! ports, `max_connections` above the client count, no room rate limits)
//! with the accounts the clients need (`--per-account` resources each);
//! `--server-pid` with `--port` (and `--tls-port`) measures a server
//! already running, whose accounts `<prefix>1…` must exist.
//!
//! 10 000 connections need 10 000 descriptors on each side: the tool
//! raises its soft RLIMIT_NOFILE to the hard limit (a server it starts
//! inherits it) and stops if that is still too few.

pub mod client;
pub mod verdict;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::conn::{Conn, Login, Target, TlsMode};
use crate::crash::protocol as p;
use crate::ctx::round;
use crate::procfs::Probe;
use crate::rng::Rng;
use crate::sasl::Mechanism;
use crate::spawned::{PerchProcess, Settings, Source};

use client::{Counters, Plan};
use verdict::{Sample, Verdict};

#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Start this binary (unless `server_pid` names a running server).
    pub perch: PathBuf,
    pub config: Option<PathBuf>,
    pub server_pid: Option<u32>,
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub domain: String,
    pub user_prefix: String,
    pub password: String,
    pub connections: usize,
    pub per_account: usize,
    pub seconds: f64,
    pub warmup: f64,
    /// How much CPU per message may grow over the first window and still
    /// count as flat (RSS and descriptors: always 10 %).
    pub cpu_tolerance: f64,
    pub sample_seconds: f64,
    pub lifetime: f64,
    pub msg_interval: f64,
    /// Share of the clients on TLS (half STARTTLS, half direct).
    pub tls_share: f64,
    /// Share of the clients in rooms.
    pub room_share: f64,
    pub rooms: usize,
    pub login_concurrency: usize,
    pub threads: usize,
    pub seed: u64,
    pub step_timeout: Duration,
    pub keep: bool,
    pub print: bool,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            perch: PathBuf::from("target/release/perch"),
            config: None,
            server_pid: None,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5222),
            tls_addr: None,
            domain: "localhost".into(),
            user_prefix: "soak".into(),
            password: "soak-password".into(),
            connections: 10_000,
            per_account: 16,
            seconds: 1800.0,
            warmup: 60.0,
            cpu_tolerance: 0.10,
            sample_seconds: 10.0,
            lifetime: 60.0,
            msg_interval: 20.0,
            tls_share: 0.5,
            room_share: 0.2,
            rooms: 50,
            login_concurrency: 64,
            threads: 2,
            seed: 0,
            step_timeout: Duration::from_secs(30),
            keep: false,
            print: true,
        }
    }
}

pub struct SoakReport {
    pub samples: Vec<Sample>,
    pub verdict: Verdict,
    pub join_errors: u64,
    pub error_samples: Vec<String>,
    pub setup_s: f64,
    pub runtime_s: f64,
    pub descriptor_limit: String,
}

impl SoakReport {
    pub fn ok(&self) -> bool {
        self.verdict.flat()
    }

    pub fn record(&self) -> Value {
        json!({
            "scenario": "soak_verdict", "flat": self.ok(),
            "warmup_s": self.verdict.warmup_s, "warmup_stretched": self.verdict.stretched,
            "ramp_done_s": self.verdict.ramp_done_s,
            "checks": self.verdict.checks.iter().map(|c| json!({
                "what": c.what, "warm": round(c.warm, 2), "worst_later": round(c.worst_later, 2),
                "growth": round(c.growth(), 4), "flat": c.flat, "not_judged": c.not_judged,
            })).collect::<Vec<_>>(),
            "notes": self.verdict.notes, "join_errors": self.join_errors,
            "error_samples": self.error_samples, "setup_s": round(self.setup_s, 1),
            "runtime_s": round(self.runtime_s, 1), "descriptor_limit": self.descriptor_limit,
        })
    }

    pub fn summary(&self) -> String {
        let v = &self.verdict;
        let mut out = format!(
            "soak: {:.0} s of load after {:.0} s of set-up; warm-up {:.0} s{}{}\n",
            self.runtime_s - self.setup_s,
            self.setup_s,
            v.warmup_s,
            if v.stretched {
                " (stretched to the first sample after the ramp)"
            } else {
                ""
            },
            v.ramp_done_s
                .map(|r| format!(", all clients in by {r:.0} s"))
                .unwrap_or_default()
        );
        for c in &v.checks {
            out.push_str(&format!(
                "  {:<28} warm-up {:>12.1}  worst later {:>12.1}  ({:+.1} %)  {}\n",
                c.what,
                c.warm,
                c.worst_later,
                100.0 * c.growth(),
                match (c.flat, &c.not_judged) {
                    (true, _) => "flat",
                    (false, None) => "GROWS",
                    (false, Some(_)) => "grows (not judged)",
                }
            ));
            if let Some(why) = &c.not_judged {
                out.push_str(&format!("    {why}\n"));
            }
        }
        for n in &v.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        if self.join_errors > 0 {
            out.push_str(&format!("  room joins that failed: {}\n", self.join_errors));
        }
        for e in &self.error_samples {
            out.push_str(&format!("  client error: {e}\n"));
        }
        out.push_str(if self.ok() {
            "verdict: flat\n"
        } else {
            "verdict: NOT FLAT\n"
        });
        out
    }
}

pub fn sample_header() -> &'static str {
    "     t  conns  logins logouts  errors    sent  deliv   RSS KiB      fds   CPU s  CPU/msg µs  tool cores  other cores"
}

pub fn sample_line(s: &Sample) -> String {
    format!(
        "{:>6.0} {:>6} {:>7} {:>7} {:>7} {:>7} {:>6} {:>9} {:>8} {:>7.2} {:>11} {:>11.2} {:>12.2}",
        s.t_s,
        s.connected,
        s.logins,
        s.logouts,
        s.login_errors + s.lost,
        s.sent,
        s.delivered,
        s.rss_kib,
        s.fds,
        s.cpu_s,
        s.cpu_us_per_msg()
            .map_or("-".to_string(), |c| format!("{c:.1}")),
        s.tool_cores,
        s.other_cores
    )
}

pub fn sample_record(s: &Sample) -> Value {
    json!({
        "scenario": "soak_sample", "t_s": round(s.t_s, 1), "connected": s.connected,
        "logins": s.logins, "logouts": s.logouts, "login_errors": s.login_errors,
        "lost": s.lost, "sent": s.sent, "delivered": s.delivered, "bounced": s.bounced,
        "rss_kib": s.rss_kib, "hwm_kib": s.hwm_kib, "fds": s.fds,
        "server_cpu_s": round(s.cpu_s, 2),
        "server_cpu_us_per_msg": s.cpu_us_per_msg().map(|c| round(c, 1)),
        "tool_cores": round(s.tool_cores, 2),
        "other_busy_cores": round(s.other_cores, 2),
    })
}

/// Runs the soak. `Err` when it cannot start (descriptors, server,
/// accounts, rooms); the verdict is in the report.
pub fn run(opts: &SoakOptions) -> Result<SoakReport, String> {
    let t0 = Instant::now();
    let limits = crate::rlimit::raise_nofile();
    let needed = opts.connections as u64 + 256;
    if !limits.allows(needed) {
        return Err(format!(
            "{} connections need about {needed} descriptors; RLIMIT_NOFILE is {} \
             (raise the hard limit: ulimit -Hn, or LimitNOFILE= under systemd)",
            opts.connections,
            limits.describe()
        ));
    }
    let say = |msg: String| {
        if opts.print {
            eprintln!("[perch-load] {msg}");
        }
    };
    if let Some(ports) = ephemeral_ports()
        && ports < opts.connections as u64 + 1000
    {
        say(format!(
            "soak: warning: the ephemeral port range has {ports} ports; {} connections \
             to one address, and the churn, need more (net.ipv4.ip_local_port_range)",
            opts.connections
        ));
    }
    say(format!(
        "soak: seed {}, {} clients for {} s, descriptors {}",
        opts.seed,
        opts.connections,
        opts.seconds,
        limits.describe()
    ));
    let ex = Arc::new(smol::Executor::new());
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let mut helpers = Vec::new();
    for i in 1..opts.threads.max(1) {
        let (ex, stop) = (ex.clone(), stop_rx.clone());
        helpers.push(
            std::thread::Builder::new()
                .name(format!("perch-load-{i}"))
                .spawn(move || smol::block_on(ex.run(stop.recv())))
                .map_err(|e| format!("starting a client thread: {e}"))?,
        );
    }
    let result = smol::block_on(ex.run(soak(opts, &ex, t0, &limits)));
    drop(stop_tx);
    for h in helpers {
        let _ = h.join();
    }
    result
}

async fn soak(
    opts: &SoakOptions,
    ex: &Arc<smol::Executor<'static>>,
    t0: Instant,
    limits: &crate::rlimit::Limits,
) -> Result<SoakReport, String> {
    let mut rng = Rng::new(opts.seed);
    let accounts = opts.connections.div_ceil(opts.per_account.max(1));
    let mut server = None;
    let (addr, tls_addr, pid) = match opts.server_pid {
        Some(pid) => (opts.addr, opts.tls_addr, pid),
        None => {
            let source = Source::given_or(
                opts.config.as_ref(),
                opts.addr,
                opts.tls_addr,
                Settings {
                    domain: opts.domain.clone(),
                    tls_listener: true,
                    max_connections: u32::try_from(opts.connections + 1000).unwrap_or(u32::MAX),
                    log_level: "warn",
                    ..Settings::default()
                },
            );
            let mut perch =
                PerchProcess::prepare(&opts.perch, source, "soak", opts.keep, &mut rng)?;
            perch.start().await?;
            let names: Vec<String> = (1..=accounts)
                .map(|i| format!("{}{i}", opts.user_prefix))
                .collect();
            let t = Instant::now();
            perch.add_accounts(&names, &opts.password, 8).await?;
            say_if(
                opts,
                format!(
                    "soak: perch pid {} on {} (TLS {}), {accounts} accounts created in {:.1} s",
                    perch.pid().unwrap_or(0),
                    perch.c2s,
                    perch.c2s_tls.map_or("-".into(), |a| a.to_string()),
                    t.elapsed().as_secs_f64()
                ),
            );
            let found = (perch.c2s, perch.c2s_tls, perch.pid().unwrap_or(0));
            server = Some(perch);
            found
        }
    };
    let tls_config = if opts.tls_share > 0.0 {
        Some(crate::tls::client_config().map_err(|e| format!("TLS set-up: {e}"))?)
    } else {
        None
    };
    let target = |addr, tls| Target {
        addr,
        domain: opts.domain.clone(),
        tls,
        tls_config: tls_config.clone(),
        step_timeout: opts.step_timeout,
        ws: None,
    };
    let targets = mix(opts, addr, tls_addr, &target);
    let muc_domain = format!("conference.{}", opts.domain);
    let room_every = if opts.room_share > 0.0 {
        (1.0 / opts.room_share).round().max(1.0) as usize
    } else {
        0
    };
    let setup_s = t0.elapsed().as_secs_f64();
    let start = Instant::now();
    let plan = Arc::new(Plan {
        targets,
        domain: opts.domain.clone(),
        muc_domain,
        prefix: opts.user_prefix.clone(),
        password: opts.password.clone(),
        slots: opts.connections,
        per_account: opts.per_account,
        lifetime_s: opts.lifetime,
        msg_interval_s: opts.msg_interval,
        room_every,
        rooms: opts.rooms,
        logins: smol::lock::Semaphore::new(opts.login_concurrency.max(1)),
        // Just after the last sample: the clients' logouts at the end
        // are not in it.
        end: start + Duration::from_secs_f64(opts.seconds + 0.5),
        step: opts.step_timeout,
    });
    if room_every > 0 {
        create_rooms(&plan, &target(addr, TlsMode::None)).await?;
    }
    let counters = Arc::new(Counters::default());
    let probe = Probe::new(Some(pid), false);
    let sampler = ex.spawn(sample_until_end(
        opts.clone(),
        probe,
        counters.clone(),
        start,
        start + Duration::from_secs_f64(opts.seconds),
    ));
    let tasks: Vec<_> = (0..opts.connections)
        .map(|i| ex.spawn(client::slot(plan.clone(), counters.clone(), i, rng.fork())))
        .collect();
    let samples = sampler.await;
    for t in tasks {
        t.await;
    }
    let verdict = verdict::judge(
        &samples,
        opts.warmup,
        opts.connections as u64,
        opts.cpu_tolerance,
    );
    if let Some(mut perch) = server.take() {
        perch.stop();
    }
    Ok(SoakReport {
        samples,
        verdict,
        join_errors: counters.join_errors.load(Ordering::Relaxed),
        error_samples: counters
            .error_samples
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default(),
        setup_s,
        runtime_s: t0.elapsed().as_secs_f64(),
        descriptor_limit: limits.describe(),
    })
}

/// How many local ports Linux hands out to outgoing connections.
pub(crate) fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    let (low, high) = (it.next()??, it.next()??);
    Some(high.saturating_sub(low) + 1)
}

fn say_if(opts: &SoakOptions, msg: String) {
    if opts.print {
        eprintln!("[perch-load] {msg}");
    }
}

/// The targets slots cycle through: `tls_share` of them TLS, half
/// STARTTLS and half direct (when there is a direct-TLS port), in a cycle
/// of 20 so that any run of 20 slots has the mix.
fn mix(
    opts: &SoakOptions,
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    target: &dyn Fn(SocketAddr, TlsMode) -> Target,
) -> Vec<Target> {
    let tls = (20.0 * opts.tls_share.clamp(0.0, 1.0)).round() as usize;
    let direct = match tls_addr {
        Some(_) => tls / 2,
        None => 0,
    };
    let mut out = Vec::with_capacity(20);
    for i in 0..20 {
        out.push(if i < direct {
            target(tls_addr.unwrap_or(addr), TlsMode::Direct)
        } else if i < tls {
            target(addr, TlsMode::StartTls)
        } else {
            target(addr, TlsMode::None)
        });
    }
    out
}

/// Makes the rooms persistent and unlocked before the clients come, so a
/// join never finds a room locked (XEP-0045 §10.1.2) while its first
/// occupant configures it.
async fn create_rooms(plan: &Plan, target: &Target) -> Result<(), String> {
    let user = plan.account(0);
    let login = Login {
        user: &user,
        password: &plan.password,
        mechanism: Mechanism::ScramSha256,
        resource: "rooms",
        presence: true,
        sm: false,
    };
    let mut conn = Conn::login(target, &login)
        .await
        .map_err(|e| format!("{user} (creating rooms): {e}"))?;
    for i in 0..plan.rooms {
        let room = plan.room(i);
        let made: Result<(), crate::conn::ClientError> = async {
            conn.send(p::join(&room, "host").as_bytes()).await?;
            if !p::await_self_presence(&mut conn, &room, "host", plan.step).await? {
                return Err(crate::conn::ClientError::Refused(
                    "room",
                    "join refused".into(),
                ));
            }
            let id = format!("room{i}");
            conn.send(p::room_config_set(&id, &room, &format!("soak {i}"), true).as_bytes())
                .await?;
            let answer = p::answer(&mut conn, &id, plan.step).await?;
            if !p::is_result(&answer) {
                return Err(crate::conn::ClientError::Refused(
                    "room configuration",
                    p::error_condition(&answer),
                ));
            }
            conn.send(format!("<presence type='unavailable' to='{room}/host'/>").as_bytes())
                .await
        }
        .await;
        made.map_err(|e| format!("creating {room}: {e}"))?;
    }
    conn.close().await;
    Ok(())
}

/// Reads the server and the counters every `--sample-seconds` until the
/// load's end (the clients' logouts after it are not sampled); prints
/// each sample.
async fn sample_until_end(
    opts: SoakOptions,
    probe: Probe,
    counters: Arc<Counters>,
    start: Instant,
    end: Instant,
) -> Vec<Sample> {
    let pids = probe.pids();
    let interval = Duration::from_secs_f64(opts.sample_seconds.max(0.1));
    let mut samples = Vec::new();
    let mut last_cpu = probe.cpu_s(&pids);
    let mut last_tool = crate::procfs::own_cpu_seconds();
    let mut last_machine = crate::procfs::machine_cpu().0;
    // An in-process server's CPU is the tool's own: count it once.
    let in_process = pids.contains(&std::process::id());
    let mut last_t = start;
    if opts.print {
        eprintln!("{}", sample_header());
    }
    let take = |a: &AtomicU64| a.swap(0, Ordering::Relaxed);
    let mut next = start + interval;
    // A last sample shorter than the interval would weigh as much as the
    // others in the windows: only whole intervals count.
    while next <= end + Duration::from_millis(50) {
        smol::Timer::at(next).await;
        next += interval;
        let now = Instant::now();
        let snap = probe.snapshot().unwrap_or_default();
        let cpu = probe.cpu_s(&pids);
        let tool = crate::procfs::own_cpu_seconds();
        let machine = crate::procfs::machine_cpu().0;
        let wall = (now - last_t).as_secs_f64();
        let server_outside = if in_process { 0.0 } else { cpu - last_cpu };
        let other = machine - last_machine - server_outside - (tool - last_tool);
        let s = Sample {
            t_s: (now - start).as_secs_f64(),
            interval_s: (now - last_t).as_secs_f64(),
            connected: counters.connected.load(Ordering::Relaxed),
            came_in: counters.came_in.load(Ordering::Relaxed),
            logins: take(&counters.logins),
            logouts: take(&counters.logouts),
            login_errors: take(&counters.login_errors),
            lost: take(&counters.lost),
            sent: take(&counters.sent),
            delivered: take(&counters.delivered),
            bounced: take(&counters.bounced),
            rss_kib: snap.rss_kib,
            hwm_kib: snap.hwm_kib,
            fds: snap.fds,
            cpu_s: (cpu - last_cpu).max(0.0),
            other_cores: if wall > 0.0 {
                (other / wall).max(0.0)
            } else {
                0.0
            },
            tool_cores: if wall > 0.0 {
                (tool - last_tool) / wall
            } else {
                0.0
            },
        };
        last_cpu = cpu;
        last_tool = tool;
        last_machine = machine;
        last_t = now;
        if opts.print {
            eprintln!("{}", sample_line(&s));
            println!("{}", sample_record(&s));
        }
        samples.push(s);
    }
    samples
}

pub const SOAK_HELP: &str = "\
soak options (defaults in brackets):
  --perch PATH           the Perch binary to start [target/release/perch]
  --config FILE          start it with this configuration (then --port and
                         --tls-port say where it listens)
  --server-pid PID       measure this running server at --port/--tls-port
                         instead; its accounts <prefix>1… must exist
  --connections N        clients connected at once [10000]
  --per-account N        resources per account, at most 32 [16]
  --seconds S            length of the load [1800]
  --warmup S             the first stretch, whose marks later samples must
                         stay within (+10 %) [60]
  --cpu-tolerance F      growth of CPU per message still counted as flat
                         [0.10]; a short run on a noisy machine needs more
  --sample-seconds S     one sample every S [10]
  --lifetime S           a client's mean time between login and logout [60]
  --msg-interval S       a client's mean time between messages [20]
  --tls-share F          share of TLS clients, half STARTTLS, half direct [0.5]
  --room-share F         share of clients in rooms [0.2]
  --rooms N              rooms [50]
  --login-concurrency N  logins in flight at most [64]
  --threads N            OS threads driving the clients [2]
  --user-prefix P        accounts P1, P2, … [soak]   --password PW [soak-password]
  --seed N               [from the clock]
  --step-timeout S       bound on each login step and room join [30]
  --keep                 keep the work directory
  --quiet                no sample lines";

impl SoakOptions {
    pub fn from_args(args: &[String]) -> Result<SoakOptions, String> {
        let a = crate::args::Args::parse(
            args,
            &[
                "perch",
                "config",
                "server-pid",
                "host",
                "port",
                "tls-port",
                "domain",
                "user-prefix",
                "password",
                "connections",
                "per-account",
                "seconds",
                "warmup",
                "cpu-tolerance",
                "sample-seconds",
                "lifetime",
                "msg-interval",
                "tls-share",
                "room-share",
                "rooms",
                "login-concurrency",
                "threads",
                "seed",
                "step-timeout",
            ],
            &["keep", "quiet"],
        )?;
        let addr = a.loopback(5222)?;
        let share = |name: &str, default: f64| -> Result<f64, String> {
            let v: f64 = a.number(name, default)?;
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(format!("--{name}: {v} is not between 0 and 1"))
            }
        };
        let d = SoakOptions::default();
        Ok(SoakOptions {
            perch: a.value("perch").map_or(d.perch, PathBuf::from),
            config: a.value("config").map(PathBuf::from),
            server_pid: match a.value("server-pid") {
                Some(_) => Some(a.number("server-pid", 0)?),
                None => None,
            },
            addr,
            tls_addr: match a.value("tls-port") {
                Some(_) => Some(SocketAddr::new(addr.ip(), a.number("tls-port", 5223)?)),
                None => None,
            },
            domain: a.value("domain").unwrap_or("localhost").to_string(),
            user_prefix: a.value("user-prefix").unwrap_or("soak").to_string(),
            password: a.value("password").unwrap_or("soak-password").to_string(),
            connections: a.bounded("connections", 10_000, 2..=1_000_000)?,
            per_account: a.bounded("per-account", 16, 1..=32)?,
            seconds: a.seconds("seconds", 1800.0)?,
            warmup: a.seconds("warmup", 60.0)?,
            cpu_tolerance: {
                let v: f64 = a.number("cpu-tolerance", 0.10)?;
                if !(0.0..=10.0).contains(&v) {
                    return Err(format!("--cpu-tolerance: {v} is not between 0 and 10"));
                }
                v
            },
            sample_seconds: a.seconds("sample-seconds", 10.0)?.max(0.1),
            lifetime: a.seconds("lifetime", 60.0)?.max(0.1),
            msg_interval: a.seconds("msg-interval", 20.0)?.max(0.01),
            tls_share: share("tls-share", 0.5)?,
            room_share: share("room-share", 0.2)?,
            rooms: a.bounded("rooms", 50, 0..=10_000)?,
            login_concurrency: a.bounded("login-concurrency", 64, 1..=10_000)?,
            threads: a.bounded("threads", 2, 1..=16)?,
            seed: match a.value("seed") {
                Some(_) => a.number("seed", 0)?,
                None => crate::rng::seed_from_clock(),
            },
            step_timeout: Duration::from_secs_f64(a.seconds("step-timeout", 30.0)?.max(0.1)),
            keep: a.flag("keep"),
            print: !a.flag("quiet"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_the_asked_share_of_tls() {
        let opts = SoakOptions::default();
        let plain: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let tls: SocketAddr = "127.0.0.1:2".parse().expect("addr");
        let make = |addr, tls| Target {
            addr,
            domain: "localhost".into(),
            tls,
            tls_config: None,
            step_timeout: Duration::from_secs(1),
            ws: None,
        };
        let m = mix(&opts, plain, Some(tls), &make);
        let count = |mode| m.iter().filter(|t| t.tls == mode).count();
        assert_eq!(
            (
                count(TlsMode::None),
                count(TlsMode::StartTls),
                count(TlsMode::Direct)
            ),
            (10, 5, 5)
        );
        assert!(
            m.iter()
                .filter(|t| t.tls == TlsMode::Direct)
                .all(|t| t.addr == tls)
        );
        let no_direct = mix(&opts, plain, None, &make);
        assert_eq!(
            no_direct
                .iter()
                .filter(|t| t.tls == TlsMode::StartTls)
                .count(),
            10
        );
        let parsed = SoakOptions::from_args(&[
            "--seconds".into(),
            "120".into(),
            "--warmup".into(),
            "30".into(),
        ])
        .expect("valid");
        assert_eq!(
            (parsed.seconds, parsed.warmup, parsed.connections),
            (120.0, 30.0, 10_000)
        );
        assert!(SoakOptions::from_args(&["--tls-share".into(), "2".into()]).is_err());
    }
}
