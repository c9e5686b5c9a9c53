//! What every scenario shares: the executor the clients run on, the target,
//! the server probe, the record sink, and the common moves (log many
//! clients in, close them, wait for the server to go quiet).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use smol::Executor;

use crate::conn::{Conn, Login, Target};
use crate::histogram::Histogram;
use crate::options::Options;
use crate::procfs::{Meter, MeterReading, Probe};
use crate::sasl::Mechanism;

/// Nanoseconds since the first call in this process: the clock stamped
/// into message bodies (sender and receiver are the same process).
pub fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

pub struct Ctx {
    pub opts: Arc<Options>,
    pub ex: Arc<Executor<'static>>,
    pub probe: Probe,
    pub target: Target,
    /// Federation runs: the server the second client of each pair uses.
    pub peer_target: Option<Target>,
    records: RefCell<Vec<Value>>,
}

/// Clients that logged in, with what it took.
pub struct Batch {
    pub conns: Vec<Conn>,
    pub setup: Histogram,
    pub errors: Vec<String>,
    pub meter: MeterReading,
    pub peak_rss_kib: Option<u64>,
}

impl Batch {
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }
}

impl Ctx {
    pub fn new(opts: Options, ex: Arc<Executor<'static>>) -> Result<Ctx, String> {
        let tls_config = match opts.tls {
            crate::conn::TlsMode::None => None,
            _ => Some(crate::tls::client_config().map_err(|e| format!("TLS set-up: {e}"))?),
        };
        let ws = opts.ws_endpoint();
        let port = if ws.is_some() {
            opts.http_port
        } else {
            opts.port
        };
        let target = Target {
            addr: SocketAddr::new(opts.host, port),
            domain: opts.domain.clone(),
            tls: opts.tls,
            tls_config,
            step_timeout: opts.step_timeout(),
            ws: ws.map(Arc::new),
        };
        let peer_target = opts
            .peer_port
            .zip(opts.peer_domain.clone())
            .map(|(port, domain)| Target {
                addr: SocketAddr::new(opts.host, port),
                domain,
                ..target.clone()
            });
        Ok(Ctx {
            peer_target,
            probe: Probe::new(opts.server_pid, opts.include_children),
            opts: Arc::new(opts),
            ex,
            target,
            records: RefCell::new(Vec::new()),
        })
    }

    /// Records one result: stamped with label, run and time, printed as a
    /// JSON line when printing is on.
    pub fn emit(&self, scenario: &str, fields: Value) {
        let mut rec = Map::new();
        rec.insert("scenario".into(), json!(scenario));
        rec.insert("label".into(), json!(self.opts.label));
        if !self.opts.run.is_empty() {
            rec.insert("run".into(), json!(self.opts.run));
        }
        rec.insert("transport".into(), json!(self.opts.transport.name()));
        if let Value::Object(f) = fields {
            rec.extend(f);
        }
        rec.insert(
            "ts".into(),
            json!(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            ),
        );
        let rec = Value::Object(rec);
        if self.opts.print {
            println!("{rec}");
        }
        self.records.borrow_mut().push(rec);
    }

    pub fn log(&self, msg: &str) {
        if self.opts.print {
            eprintln!("[perch-load] {msg}");
        }
    }

    pub fn take_records(&self) -> Vec<Value> {
        std::mem::take(&mut self.records.borrow_mut())
    }

    /// The server's current memory and CPU as JSON fields.
    pub fn server_snapshot(&self) -> Value {
        match self.probe.snapshot() {
            Some(s) => json!({
                "rss_kib": s.rss_kib, "hwm_kib": s.hwm_kib, "cpu_s": round(s.cpu_s, 2),
                "threads": s.threads, "fds": s.fds, "processes": s.processes,
            }),
            None => json!({}),
        }
    }

    /// Waits until the server used under 2 % of a core for two ticks in a
    /// row (or the settle bound passes), so memory readings and the next
    /// phase do not include the tail of the previous one.
    pub async fn settle(&self) {
        settle(&self.probe, self.opts.settle_seconds).await;
    }

    /// Logs in accounts `indices` with at most `concurrency` logins in
    /// flight. Stops starting new logins once the phase bound passes or
    /// failures dominate (a server at its descriptor limit).
    pub async fn login_many(
        &self,
        indices: std::ops::Range<usize>,
        mech: Mechanism,
        resource: &str,
    ) -> Batch {
        self.login_many_with(indices, mech, resource, true).await
    }

    /// `login_many`, with or without the initial `<presence/>` (a client
    /// that announces capabilities sends its own).
    pub async fn login_many_with(
        &self,
        indices: std::ops::Range<usize>,
        mech: Mechanism,
        resource: &str,
        presence: bool,
    ) -> Batch {
        let concurrency = self.opts.concurrency.min(indices.len().max(1));
        let next = Arc::new(AtomicUsize::new(indices.start));
        let end = indices.end;
        let conns = Arc::new(Mutex::new(Vec::with_capacity(indices.len())));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let setup = Arc::new(Mutex::new(Histogram::new()));
        let started = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let give_up = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + Duration::from_secs_f64(self.opts.max_phase_seconds);
        let sampler = PeakSampler::start(self);
        let meter = Meter::start(&self.probe);
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (next, conns, errors, setup) =
                (next.clone(), conns.clone(), errors.clone(), setup.clone());
            let (started, failed, give_up) = (started.clone(), failed.clone(), give_up.clone());
            let target = self.target.clone();
            let peer_target = self.peer_target.clone();
            let opts = self.opts.clone();
            let resource = resource.to_string();
            workers.push(self.ex.spawn(async move {
                let mut local = Histogram::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        break;
                    }
                    let n_started = started.fetch_add(1, Ordering::Relaxed) + 1;
                    let n_failed = failed.load(Ordering::Relaxed);
                    if give_up.load(Ordering::Relaxed)
                        || Instant::now() > deadline
                        || (n_failed >= 20 && n_failed * 10 > n_started)
                    {
                        give_up.store(true, Ordering::Relaxed);
                        break;
                    }
                    let user = opts.user(i);
                    let t0 = now_ns();
                    let login = Login {
                        user: &user,
                        password: &opts.password,
                        mechanism: mech,
                        resource: &resource,
                        presence,
                        sm: opts.sm,
                    };
                    // Pairs are (2k, 2k + 1): the second of each on the peer.
                    let target = match &peer_target {
                        Some(peer) if i % 2 == 1 => peer,
                        _ => &target,
                    };
                    match Conn::login(target, &login).await {
                        Ok(mut c) => {
                            local.record(now_ns() - t0);
                            c.index = i;
                            c.shrink();
                            if let Ok(mut v) = conns.lock() {
                                v.push(c);
                            }
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut v) = errors.lock() {
                                v.push(format!("{user}: {e}"));
                            }
                        }
                    }
                }
                if let Ok(mut h) = setup.lock() {
                    h.merge(&local);
                }
            }));
        }
        for w in workers {
            w.await;
        }
        let meter = meter.stop();
        let peak_rss_kib = sampler.stop().await;
        let skipped = end.saturating_sub(started.load(Ordering::Relaxed).min(end));
        let mut errors = take(&errors);
        if give_up.load(Ordering::Relaxed) && skipped > 0 {
            errors.push(format!(
                "{skipped} logins not attempted (phase time bound or too many failures)"
            ));
        }
        let mut conns = take(&conns);
        conns.sort_by_key(|c| c.index);
        Batch {
            conns,
            setup: setup.lock().map(|h| h.clone()).unwrap_or_default(),
            errors,
            meter,
            peak_rss_kib,
        }
    }

    /// Closes connections, many at a time, and waits until all are closed.
    pub async fn close_all(&self, conns: Vec<Conn>) {
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|c| self.ex.spawn(c.close()))
            .collect();
        for t in tasks {
            t.await;
        }
    }
}

/// Waits until the process `probe` reads used under 2 % of a core for two
/// 250-ms ticks in a row, or `seconds` pass (`Ctx::settle`).
pub async fn settle(probe: &Probe, seconds: f64) {
    if !probe.is_set() || seconds <= 0.0 {
        return;
    }
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let pids = probe.pids();
    let tick = Duration::from_millis(250);
    let mut last = probe.cpu_s(&pids);
    let mut quiet = 0;
    while Instant::now() < end && quiet < 2 {
        smol::Timer::after(tick).await;
        let now = probe.cpu_s(&pids);
        if now - last <= 0.005 + 0.02 * tick.as_secs_f64() {
            quiet += 1;
        } else {
            quiet = 0;
        }
        last = now;
    }
}

fn take<T>(m: &Arc<Mutex<Vec<T>>>) -> Vec<T> {
    m.lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

pub fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// Latency summary in milliseconds.
pub fn latency_json(h: &Histogram) -> Value {
    let ms = |ns: u64| round(ns as f64 / 1e6, 3);
    match (h.quantile(0.5), h.quantile(0.99), h.mean()) {
        (Some(p50), Some(p99), Some(mean)) => json!({
            "n": h.count(), "p50_ms": ms(p50), "p90_ms": ms(h.quantile(0.9).unwrap_or(0)),
            "p99_ms": ms(p99), "max_ms": ms(h.max()), "mean_ms": round(mean / 1e6, 3),
        }),
        _ => json!({ "n": 0 }),
    }
}

/// CPU fields shared by every phase record.
pub fn meter_json(m: &MeterReading) -> Value {
    json!({
        "wall_s": round(m.wall_s, 3),
        "server_cpu_s": round(m.server_cpu_s, 3),
        "server_kernel_cpu_s": round(m.server_kernel_cpu_s, 3),
        "tool_cpu_s": round(m.tool_cpu_s, 3),
        "server_cpu_util": if m.wall_s > 0.0 { round(m.server_cpu_s / m.wall_s, 3) } else { 0.0 },
        "tool_cpu_util": if m.wall_s > 0.0 { round(m.tool_cpu_s / m.wall_s, 3) } else { 0.0 },
        "other_busy_cores": round(m.other_busy_cores, 2),
    })
}

/// Merges JSON objects (later keys win).
pub fn merge(parts: &[Value]) -> Value {
    let mut out = Map::new();
    for p in parts {
        if let Value::Object(m) = p {
            out.extend(m.clone());
        }
    }
    Value::Object(out)
}

/// Samples the server's resident memory every 100 ms during a phase and
/// keeps the largest value: the phase's peak, which VmHWM (a process-wide
/// high-water mark) cannot give once an earlier phase went higher.
pub struct PeakSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: Option<smol::Task<()>>,
}

impl PeakSampler {
    pub fn start(ctx: &Ctx) -> PeakSampler {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = ctx.probe.is_set().then(|| {
            let (peak, stop, probe) = (peak.clone(), stop.clone(), ctx.probe.clone());
            let pids = probe.pids();
            ctx.ex.spawn(async move {
                // Bounded by the phase: the owner stops it; a day at most.
                for _ in 0..864_000 {
                    peak.fetch_max(probe.rss_kib(&pids), Ordering::Relaxed);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    smol::Timer::after(Duration::from_millis(100)).await;
                }
            })
        });
        PeakSampler { peak, stop, task }
    }

    pub async fn stop(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let task = self.task.take()?;
        task.await;
        Some(self.peak.load(Ordering::Relaxed))
    }
}
