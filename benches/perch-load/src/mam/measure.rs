//! Timing queries at one archive size: what the archive holds (count,
//! oldest and newest stamps, ids spread over it), then every kind of query
//! again and again, one in flight, kinds interleaved over rounds; per kind
//! the server's CPU per query (its /proc CPU over the queries ÷ their
//! number, and the same from the scheduler's nanosecond counts) and the
//! client's latency.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::conn::{ClientError, Conn};
use crate::ctx::{Ctx, latency_json, round};
use crate::histogram::Histogram;
use crate::procfs::Meter;
use crate::rng::Rng;

use super::query::{Answer, Params, ask};

/// The kinds of query measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The newest page: a client catching up.
    Newest,
    /// The newest page with one contact (a room: one occupant's nick).
    With,
    /// The page after an id somewhere in the archive.
    AfterId,
    /// The first page of messages since a date somewhere in the archive.
    Since,
    /// `<max>0</max>`: the number of messages in the archive.
    Count,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Newest,
        Kind::With,
        Kind::AfterId,
        Kind::Since,
        Kind::Count,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Newest => "newest",
            Kind::With => "with",
            Kind::AfterId => "after_id",
            Kind::Since => "since",
            Kind::Count => "count",
        }
    }
}

/// One archive as the queries see it.
pub struct Archive {
    /// "user" or "room".
    pub name: &'static str,
    /// The room's JID; `None` for the owner's own archive.
    pub to: Option<String>,
    /// What `with` may name: the contacts' bare JIDs, or the room JIDs of
    /// its senders.
    pub withs: Vec<String>,
}

/// What the archive holds, found before timing anything.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub count: Option<u64>,
    /// Whether `count` is the server's.
    pub server_count: bool,
    pub oldest: Option<u64>,
    pub newest: Option<u64>,
    /// Result ids spread evenly over the archive's time span.
    pub ids: Vec<String>,
}

/// Ids sampled over the archive for `after_id`.
const SAMPLE_IDS: usize = 20;

/// A query sequence number, unique within the run.
pub struct Seq(pub u64);

impl Seq {
    pub fn bump(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

pub async fn count(
    ctx: &Ctx,
    conn: &mut Conn,
    archive: &Archive,
    seq: &mut Seq,
) -> Result<Answer, ClientError> {
    let p = Params {
        max: 0,
        ..Params::default()
    };
    ask(
        conn,
        seq.bump(),
        archive.to.as_deref(),
        &p,
        ctx.opts.step_timeout(),
    )
    .await
}

/// Reads the archive's count (`known`, the tool's tally, if the server
/// gives none), oldest and newest stamps and sample ids.
pub async fn view(
    ctx: &Ctx,
    conn: &mut Conn,
    archive: &Archive,
    known: u64,
    seq: &mut Seq,
) -> Result<View, ClientError> {
    let step = ctx.opts.step_timeout();
    let to = archive.to.as_deref();
    let told = count(ctx, conn, archive, seq).await?.count;
    let mut v = View {
        count: told.or(Some(known)),
        server_count: told.is_some(),
        ..View::default()
    };
    let one = |last_page| Params {
        max: 1,
        last_page,
        ..Params::default()
    };
    v.oldest = ask(conn, seq.bump(), to, &one(false), step)
        .await?
        .first_stamp;
    v.newest = ask(conn, seq.bump(), to, &one(true), step)
        .await?
        .last_stamp;
    if let (Some(lo), Some(hi)) = (v.oldest, v.newest) {
        for i in 0..SAMPLE_IDS as u64 {
            let at = lo + (hi - lo) * (2 * i + 1) / (2 * SAMPLE_IDS as u64);
            let p = Params {
                start: Some(at),
                max: 1,
                ..Params::default()
            };
            if let Some(id) = ask(conn, seq.bump(), to, &p, step).await?.first_id {
                v.ids.push(id);
            }
        }
    }
    Ok(v)
}

/// The parameters of one query of `kind`.
fn params(kind: Kind, archive: &Archive, view: &View, page: usize, rng: &mut Rng) -> Params {
    let mut p = Params {
        max: page,
        ..Params::default()
    };
    match kind {
        Kind::Newest => p.last_page = true,
        Kind::With => {
            p.with = Some(archive.withs[rng.index(archive.withs.len())].clone());
            p.last_page = true;
        }
        Kind::AfterId => {
            if !view.ids.is_empty() {
                p.after = Some(view.ids[rng.index(view.ids.len())].clone());
            }
        }
        Kind::Since => {
            let (lo, hi) = (view.oldest.unwrap_or(0), view.newest.unwrap_or(0));
            p.start = Some(lo + (rng.uniform(0.0, 1.0) * hi.saturating_sub(lo) as f64) as u64);
        }
        Kind::Count => p.max = 0,
    }
    p
}

/// The tally of one kind.
#[derive(Default)]
struct Tally {
    n: u64,
    cpu_s: f64,
    kernel_s: f64,
    sched_ns: u64,
    rounds_ms: Vec<f64>,
    latency: Histogram,
    results: u64,
    matched: u64,
    bytes: u64,
    counts: Vec<u64>,
    error_count: u64,
    errors: Vec<String>,
}

/// Times every kind of query at this size; one record per kind.
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    ctx: &Ctx,
    conn: &mut Conn,
    archive: &Archive,
    view: &View,
    size: u64,
    settings: &super::MamSettings,
    rng: &mut Rng,
    seq: &mut Seq,
) -> Result<Vec<Value>, ClientError> {
    let rounds = settings.rounds.max(1);
    let per_round = settings.reps.div_ceil(rounds);
    let time_per_round = Duration::from_secs_f64(settings.query_seconds / rounds as f64);
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| *k != Kind::With || !archive.withs.is_empty())
        .filter(|k| *k != Kind::AfterId || !view.ids.is_empty())
        .filter(|k| settings.kinds.is_empty() || settings.kinds.iter().any(|n| n == k.name()))
        .collect();
    let mut tallies: Vec<Tally> = kinds.iter().map(|_| Tally::default()).collect();
    let pids = ctx.probe.pids();
    let step = ctx.opts.step_timeout();
    for _ in 0..rounds {
        for (kind, t) in kinds.iter().zip(tallies.iter_mut()) {
            let meter = Meter::start(&ctx.probe);
            let sched0 = ctx.probe.sched_ns(&pids);
            let until = Instant::now() + time_per_round;
            let mut n = 0u64;
            // At least one query per round, whatever the time cap.
            while n < per_round as u64 && (n == 0 || Instant::now() < until) {
                let p = params(*kind, archive, view, settings.page, rng);
                let a = ask(conn, seq.bump(), archive.to.as_deref(), &p, step).await?;
                n += 1;
                t.latency.record(a.latency_ns);
                t.results += a.results;
                t.matched += a.matched;
                t.bytes += a.bytes;
                if let Some(c) = a.count
                    && *kind == Kind::Count
                {
                    t.counts.push(c);
                }
                if let Some(e) = a.error {
                    t.error_count += 1;
                    if t.errors.len() < 3 {
                        t.errors.push(e);
                    }
                }
            }
            let m = meter.stop();
            t.sched_ns += ctx.probe.sched_ns(&pids).saturating_sub(sched0);
            t.n += n;
            t.cpu_s += m.server_cpu_s;
            t.kernel_s += m.server_kernel_cpu_s;
            t.rounds_ms
                .push(round(1000.0 * m.server_cpu_s / n as f64, 3));
        }
    }
    let mut out = Vec::new();
    for (kind, t) in kinds.iter().zip(tallies) {
        let n = t.n.max(1) as f64;
        out.push(json!({
            "archive": archive.name,
            "kind": kind.name(),
            "size": size,
            "archived": view.count,
            "server_counts": view.server_count,
            "queries": t.n,
            "page": settings.page,
            "server_cpu_ms": round(1000.0 * t.cpu_s / n, 3),
            "server_kernel_ms": round(1000.0 * t.kernel_s / n, 3),
            "server_cpu_ms_rounds": t.rounds_ms,
            "server_cpu_ms_sched": if pids.is_empty() { Value::Null } else {
                json!(round(t.sched_ns as f64 / 1e6 / n, 3))
            },
            "latency": latency_json(&t.latency),
            "results_per_query": round(t.results as f64 / n, 2),
            "matched_share": if *kind == Kind::With && t.results > 0 {
                json!(round(t.matched as f64 / t.results as f64, 3))
            } else { Value::Null },
            "bytes_per_query": round(t.bytes as f64 / n, 0),
            "count": t.counts.last(),
            "errors": t.error_count,
            "error_samples": t.errors,
        }));
    }
    Ok(out)
}
