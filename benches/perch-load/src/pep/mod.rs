//! `pep`: what personal eventing (XEP-0163) costs a server. `--accounts`
//! (1 000) accounts, each with `--contacts` (100) contacts with
//! subscription both (a ring: the accounts at distance 1 to 50 on either
//! side), are all online with entity capabilities (XEP-0115, sha-1) that
//! ask for `http://jabber.org/protocol/tune+notify`, and publish tunes
//! to their own PEP service; every notification is counted.
//!
//! Phases, in order:
//! 1. Set-up (not timed, `pep_setup`): with `--roster subscribe` every
//!    account asks the contacts it is not yet mutually subscribed with and
//!    approves every request, and removes roster items of accounts that
//!    are not its contacts (see `roster`); with `--roster ready` (rosters
//!    provisioned beforehand: `perch-load pep-rosters`, then imported) only
//!    the check runs. Either
//!    way each account fetches its roster and the record counts the
//!    contacts with subscription both.
//! 2. Online (`pep_online`): every account logs in again (no presence at
//!    login) and sends presence with its caps; every disco#info query a
//!    server sends (PEP services ask from each account's bare JID for
//!    `node#ver`) is answered with the disco#info that hashes to the
//!    `ver`. Then, once the server is quiet, its RSS: the accounts online
//!    before any node exists.
//! 3. Nodes (`pep_nodes`): each account publishes one item to each of
//!    `--nodes` (10) nodes no client asks notifications of (`--setup-rate`,
//!    500, publications per second; a refused one is made again, up to 5
//!    times); once the
//!    server is quiet, its RSS again: RSS per account with 10 nodes of one
//!    item each, and the difference per account.
//! 4. Warm-up (`pep_warmup`): each account publishes one tune (at
//!    `--setup-rate`); the
//!    servers have learnt every client's caps when each account received
//!    its contacts' and its own (`--warmup-rounds`, 3, rounds allowed).
//!    This also creates the tune nodes, so the measured phases publish to
//!    nodes that exist.
//! 5. Measured (`pep`, one per `--rate`): publications paced to R per
//!    second in all, round the accounts (publication i from account
//!    i mod accounts), each account with at most `--publish-window` (4)
//!    unanswered. Each item carries its index and the publisher's clock:
//!    notifications/s delivered, latency from publishing to each
//!    notification, server CPU per 1 000 notifications delivered (from
//!    the first publication to the last notification, or the drain's end),
//!    and whether every expected notification came: expected = accepted
//!    publications × (contacts + 1), every contact and the publisher's own
//!    resource being online with `+notify`. A notification counts once
//!    per receiver and publication; further copies are counted apart as
//!    `duplicates` (and the CPU per 1 000 stanzas received beside it).
//! 6. The chat yardstick (`pep_chat`, `pep_chat_rate`): `--chat-pairs`
//!    (50) pairs of the same accounts chat for `--chat-seconds` (10) with
//!    10 messages in flight (the `chat` scenario's closed loop), then at
//!    each measured phase's notification rate (`chat --rate`); and
//!    `pep_summary` per rate: CPU per 1 000 notifications ÷ chat CPU per
//!    1 000 messages, against the goal of 1.5.
//!
//! Fails (exit status 1) when logins or the set-up fail or a stream
//! breaks; missing notifications are reported in the records.

pub mod caps;
pub mod client;
pub mod provision;
pub mod report;
pub mod roster;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::conn::Conn;
use crate::ctx::{Ctx, PeakSampler, latency_json, merge, meter_json, now_ns, round};
use crate::procfs::Meter;

use caps::{Info, NS_TUNE};
use client::{Job, Nodes, Shared};

pub use crate::pep_settings::{self as settings, PEP_HELP, PepSettings, RosterSetup};

/// Phase numbers stamped in the items (late notifications of one phase do
/// not count in the next).
const PHASE_NODES: u32 = 1;
const PHASE_WARMUP: u32 = 10;
const PHASE_MEASURED: u32 = 100;

/// Attempts of a refused publication in the phases that create nodes.
const SETUP_RETRIES: u32 = 5;

fn mech(ctx: &Ctx) -> crate::sasl::Mechanism {
    ctx.opts
        .mechanisms
        .first()
        .copied()
        .unwrap_or(crate::sasl::Mechanism::Plain)
}

fn bare(ctx: &Ctx, k: usize) -> String {
    format!("{}@{}", ctx.opts.user(k), ctx.opts.domain)
}

/// Runs the scenario; `Err` when it cannot set up or a stream breaks.
pub async fn run(ctx: &Ctx) -> Result<(), String> {
    let s = &ctx.opts.pep;
    s.check()?;
    setup(ctx).await?;
    ctx.settle().await;
    let n = s.accounts;
    ctx.log(&format!("pep: logging in {n} accounts with caps"));
    let t0 = Instant::now();
    let batch = ctx.login_many_with(0..n, mech(ctx), "pep", false).await;
    if batch.error_count() > 0 || batch.conns.len() < n {
        let samples: Vec<_> = batch.errors.iter().take(3).cloned().collect();
        ctx.close_all(batch.conns).await;
        return Err(format!("pep: logins failed: {samples:?}"));
    }
    let mut conns = batch.conns;
    let result = session(ctx, &mut conns, t0).await;
    ctx.close_all(conns).await;
    result
}

/// Phase 1: the rosters.
async fn setup(ctx: &Ctx) -> Result<(), String> {
    let s = &ctx.opts.pep;
    let n = s.accounts;
    let t0 = Instant::now();
    ctx.log(&format!(
        "pep: set-up ({}): {n} accounts, {} contacts each",
        s.roster.name(),
        s.contacts
    ));
    let batch = ctx.login_many(0..n, mech(ctx), "pep-setup").await;
    if batch.error_count() > 0 || batch.conns.len() < n {
        let samples: Vec<_> = batch.errors.iter().take(3).cloned().collect();
        ctx.close_all(batch.conns).await;
        return Err(format!("pep: set-up logins failed: {samples:?}"));
    }
    let mut conns = batch.conns;
    let contacts =
        |k: usize| -> Vec<String> { s.contacts_of(k).into_iter().map(|j| bare(ctx, j)).collect() };
    let tally = Arc::new(roster::Tally::default());
    let mut failures: Vec<String> = Vec::new();
    let step = ctx.opts.step_timeout();
    if s.roster == RosterSetup::Subscribe {
        let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
        let tasks: Vec<_> = conns
            .drain(..)
            .map(|c| {
                let mine = contacts(c.index);
                ctx.ex.spawn(roster::subscribe(
                    c,
                    mine,
                    tally.clone(),
                    step,
                    done_rx.clone(),
                ))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs_f64(ctx.opts.max_phase_seconds);
        let mut last_report = Instant::now();
        loop {
            let started = tally.started.load(Ordering::Relaxed);
            let asked = tally.asked.load(Ordering::Relaxed);
            let confirmed = tally.confirmed.load(Ordering::Relaxed);
            if (started as usize >= n && confirmed >= asked) || Instant::now() > deadline {
                break;
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                ctx.log(&format!(
                    "pep: set-up: {confirmed} of {asked} subscriptions confirmed"
                ));
                last_report = Instant::now();
            }
            smol::Timer::after(Duration::from_millis(50)).await;
        }
        // Approvals still in flight: a moment for the server to finish.
        ctx.settle().await;
        drop(done_tx);
        for t in tasks {
            let (c, r) = t.await;
            if let Err(e) = r {
                failures.push(e.to_string());
            }
            conns.extend(c);
        }
        conns.sort_by_key(|c| c.index);
    }
    let (mut both, mut short, mut others) = (0usize, 0usize, 0usize);
    for c in conns.iter_mut() {
        let mine = contacts(c.index);
        match roster::count_both(c, &mine, step).await {
            Ok((b, o)) => {
                both += b;
                others += o;
                if b < mine.len() {
                    short += 1;
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    let broken = n - conns.len();
    ctx.close_all(conns).await;
    let expected = n * s.contacts;
    ctx.emit(
        "pep_setup",
        json!({
            "roster": s.roster.name(), "accounts": n, "contacts": s.contacts,
            "asked": tally.asked.load(Ordering::Relaxed),
            "confirmed": tally.confirmed.load(Ordering::Relaxed),
            "approved": tally.approved.load(Ordering::Relaxed),
            "removed": tally.removed.load(Ordering::Relaxed),
            "both": both, "both_expected": expected, "accounts_short": short,
            "other_subscribers": others,
            "client_failures": failures.len() + broken,
            "failure_samples": failures.iter().take(3).collect::<Vec<_>>(),
            "setup_s": round(t0.elapsed().as_secs_f64(), 2),
        }),
    );
    ctx.log(&format!(
        "pep: set-up took {:.1} s; {both} of {expected} contacts with subscription both",
        t0.elapsed().as_secs_f64()
    ));
    if others > 0 {
        ctx.log(&format!(
            "pep: {others} roster items beyond the ring are subscribed to presence:              their notifications show as beyond_expected"
        ));
    }
    if both < expected || !failures.is_empty() {
        return Err(format!(
            "pep: set-up: {both} of {expected} contacts with subscription both; failures: {:?}",
            failures.iter().take(3).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// A phase's outcome.
struct Ran {
    shared: Arc<Shared>,
    meter: crate::procfs::MeterReading,
    peak_rss_kib: Option<u64>,
    t0: u64,
    failures: Vec<String>,
    /// Notifications expected for what the server accepted.
    expected: u64,
}

/// Runs `job` on every connection until its publications are all
/// answered and (with `notify`, the receivers per publication) their
/// notifications all arrived, or `limit` and then the drain pass.
async fn run_job(
    ctx: &Ctx,
    conns: &mut Vec<Conn>,
    job: Job,
    info: &Arc<Info>,
    notify: u64,
    limit: Duration,
    drain: Duration,
) -> Ran {
    let job = Arc::new(job);
    let shared = Arc::new(Shared::new(&job));
    let total: u64 = (0..job.accounts).map(|k| job.count_for(k)).sum();
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let sampler = PeakSampler::start(ctx);
    let meter = Meter::start(&ctx.probe);
    let t0 = now_ns();
    let tasks: Vec<_> = conns
        .drain(..)
        .map(|c| {
            let k = c.index;
            ctx.ex.spawn(client::client(
                c,
                k,
                job.clone(),
                info.clone(),
                shared.clone(),
                done_rx.clone(),
            ))
        })
        .collect();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let answered = |s: &Shared| load(&s.published) + load(&s.errors) >= total;
    let delivered = |s: &Shared| load(&s.notifications) >= notify * load(&s.published);
    let stop_at = Instant::now() + limit;
    while Instant::now() < stop_at && !(answered(&shared) && delivered(&shared)) {
        smol::Timer::after(Duration::from_millis(10)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let drain_until = Instant::now() + drain;
    while Instant::now() < drain_until
        && !(load(&shared.published) + load(&shared.errors) >= load(&shared.sent)
            && delivered(&shared))
    {
        smol::Timer::after(Duration::from_millis(10)).await;
    }
    let meter = meter.stop();
    drop(done_tx);
    let mut failures = Vec::new();
    for t in tasks {
        let (c, r) = t.await;
        if let Err(e) = r {
            failures.push(e.to_string());
        }
        conns.extend(c);
    }
    conns.sort_by_key(|c| c.index);
    let peak_rss_kib = sampler.stop().await;
    let expected = notify * load(&shared.published);
    Ran {
        shared,
        meter,
        peak_rss_kib,
        t0,
        failures,
        expected,
    }
}

/// The fields every phase's record has.
fn ran_fields(r: &Ran) -> Value {
    let s = &r.shared;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let notifications = load(&s.notifications);
    let samples = s
        .error_samples
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    merge(&[
        json!({
            "sent": load(&s.sent), "published": load(&s.published),
            "publish_errors": load(&s.errors), "error_samples": samples,
            "retried": load(&s.retried),
            "notifications": notifications, "expected": r.expected,
            "duplicates": load(&s.duplicates),
            "missing": r.expected.saturating_sub(notifications),
            "beyond_expected": notifications.saturating_sub(r.expected),
            "stray": load(&s.stray),
            "disco_answered": load(&s.disco_answered),
            "iqs_answered": load(&s.iqs_answered),
            "client_failures": r.failures.len(),
            "failure_samples": r.failures.iter().take(3).collect::<Vec<_>>(),
            "peak_rss_kib": r.peak_rss_kib,
        }),
        meter_json(&r.meter),
    ])
}

async fn session(ctx: &Ctx, conns: &mut Vec<Conn>, t_login: Instant) -> Result<(), String> {
    let s = &ctx.opts.pep;
    let n = s.accounts;
    let info = Arc::new(Info::wanting(NS_TUNE));
    let receivers = s.contacts as u64 + 1;
    let step = ctx.opts.step_timeout();
    let drain = Duration::from_secs_f64(ctx.opts.drain_seconds);
    // 2. Presence with caps; the queries it brings are answered while the
    // server settles.
    let online = Job {
        phase: 0,
        nodes: Nodes::Quiet(0),
        accounts: n,
        total: 0,
        pace: None,
        window: 1,
        first: Some(info.presence()),
        retries: 0,
    };
    let settle = async {
        smol::Timer::after(Duration::from_millis(500)).await;
        ctx.settle().await;
    };
    let r = run_quiet(ctx, conns, online, &info, settle).await;
    let rss_online = ctx.probe.snapshot().map(|x| x.rss_kib);
    let per_account = |rss: Option<u64>| rss.map(|r| round(r as f64 / n as f64, 2));
    ctx.emit(
        "pep_online",
        merge(&[
            ran_fields(&r),
            json!({
                "accounts": n, "contacts": s.contacts, "ver": info.ver,
                "online_s": round(t_login.elapsed().as_secs_f64(), 2),
                "rss_kib": rss_online, "kib_per_account": per_account(rss_online),
            }),
        ]),
    );
    check_streams(&r, conns, n, "going online")?;
    // 3. Nodes for the memory reading.
    if s.nodes > 0 {
        ctx.log(&format!(
            "pep: every account publishes to {} nodes nobody is notified of",
            s.nodes
        ));
        let job = Job {
            phase: PHASE_NODES,
            nodes: Nodes::Quiet(s.nodes),
            accounts: n,
            total: 0,
            pace: Some((now_ns() + 20_000_000, 1_000_000_000 / s.setup_rate)),
            window: s.window.max(s.nodes),
            first: None,
            retries: SETUP_RETRIES,
        };
        let limit = Duration::from_secs_f64(ctx.opts.max_phase_seconds);
        let r = run_job(ctx, conns, job, &info, 0, limit, drain).await;
        ctx.settle().await;
        let rss_nodes = ctx.probe.snapshot().map(|x| x.rss_kib);
        let diff = match (rss_nodes, rss_online) {
            (Some(a), Some(b)) => Some(round((a as f64 - b as f64) / n as f64, 2)),
            _ => None,
        };
        ctx.emit(
            "pep_nodes",
            merge(&[
                ran_fields(&r),
                json!({
                    "accounts": n, "nodes": s.nodes, "items_per_node": 1,
                    "rss_kib_before": rss_online, "rss_kib": rss_nodes,
                    "kib_per_account_before": per_account(rss_online),
                    "kib_per_account": per_account(rss_nodes),
                    "kib_per_account_for_nodes": diff,
                    "kib_per_node": diff.map(|d| round(d / s.nodes as f64, 3)),
                }),
            ]),
        );
        check_streams(&r, conns, n, "publishing to the nodes")?;
    }
    // 4. Warm-up: every account publishes once, until all arrive.
    let mut rounds = 0;
    let t_warm = Instant::now();
    loop {
        rounds += 1;
        ctx.settle().await;
        let job = Job {
            phase: PHASE_WARMUP + rounds as u32,
            nodes: Nodes::One(NS_TUNE.into()),
            accounts: n,
            total: n as u64,
            pace: Some((now_ns() + 20_000_000, 1_000_000_000 / s.setup_rate)),
            window: 1,
            first: None,
            retries: SETUP_RETRIES,
        };
        let planned = Duration::from_secs_f64(n as f64 / s.setup_rate as f64);
        let limit = (planned + step.max(Duration::from_secs(5)))
            .min(Duration::from_secs_f64(ctx.opts.max_phase_seconds));
        let r = run_job(ctx, conns, job, &info, receivers, limit, drain.min(step)).await;
        let got = r.shared.notifications.load(Ordering::Relaxed);
        check_streams(&r, conns, n, "warming up")?;
        let complete = got >= r.expected && r.expected == n as u64 * receivers;
        if complete || rounds >= s.warmup_rounds {
            ctx.emit(
                "pep_warmup",
                merge(&[
                    ran_fields(&r),
                    json!({"rounds": rounds, "complete": complete,
                           "warmup_s": round(t_warm.elapsed().as_secs_f64(), 2)}),
                ]),
            );
            ctx.log(&format!(
                "pep: warm-up round {rounds}: {got} of {} notifications",
                r.expected
            ));
            break;
        }
        ctx.log(&format!(
            "pep: warm-up round {rounds}: {got} of {} notifications; again",
            r.expected
        ));
    }
    // 5. Measured phases.
    let mut measured = Vec::new();
    for (i, &rate) in s.rates.iter().enumerate() {
        ctx.settle().await;
        let total = s.publishes_at(rate, ctx.opts.seconds);
        ctx.log(&format!(
            "pep: {total} publications at {rate}/s, {receivers} notifications each"
        ));
        let gap = 1_000_000_000 / rate.max(1);
        let job = Job {
            phase: PHASE_MEASURED + i as u32,
            nodes: Nodes::One(NS_TUNE.into()),
            accounts: n,
            total,
            // The first publication 20 ms from now, when every client runs.
            pace: Some((now_ns() + 20_000_000, gap)),
            window: s.window,
            first: None,
            retries: 0,
        };
        let planned = Duration::from_nanos(total.saturating_mul(gap));
        let limit = (planned + step).min(Duration::from_secs_f64(ctx.opts.max_phase_seconds));
        let r = run_job(ctx, conns, job, &info, receivers, limit, drain).await;
        let rec = measured_record(ctx, &r, rate, total, receivers);
        ctx.emit("pep", rec.clone());
        measured.push(rec);
        check_streams(&r, conns, n, "publishing")?;
    }
    // 6. The chat yardstick, on the same accounts.
    if s.chat_seconds > 0.0 {
        chat_yardstick(ctx, conns, &measured).await;
    }
    Ok(())
}

/// Phase 2: the first stanza (presence), the queries answered, until
/// `until` completes.
async fn run_quiet(
    ctx: &Ctx,
    conns: &mut Vec<Conn>,
    job: Job,
    info: &Arc<Info>,
    until: impl std::future::Future<Output = ()>,
) -> Ran {
    let job = Arc::new(job);
    let shared = Arc::new(Shared::new(&job));
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let meter = Meter::start(&ctx.probe);
    let t0 = now_ns();
    let tasks: Vec<_> = conns
        .drain(..)
        .map(|c| {
            let k = c.index;
            ctx.ex.spawn(client::client(
                c,
                k,
                job.clone(),
                info.clone(),
                shared.clone(),
                done_rx.clone(),
            ))
        })
        .collect();
    until.await;
    let meter = meter.stop();
    drop(done_tx);
    let mut failures = Vec::new();
    for t in tasks {
        let (c, r) = t.await;
        if let Err(e) = r {
            failures.push(e.to_string());
        }
        conns.extend(c);
    }
    conns.sort_by_key(|c| c.index);
    Ran {
        shared,
        meter,
        peak_rss_kib: None,
        t0,
        failures,
        expected: 0,
    }
}

fn check_streams(r: &Ran, conns: &[Conn], n: usize, what: &str) -> Result<(), String> {
    if conns.len() < n {
        return Err(format!(
            "pep: {} streams broke {what}: {:?}",
            n - conns.len(),
            r.failures.iter().take(3).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// The `pep` record of a measured phase.
fn measured_record(ctx: &Ctx, r: &Ran, rate: u64, planned: u64, receivers: u64) -> Value {
    let s = &r.shared;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let notifications = load(&s.notifications);
    let published = load(&s.published);
    let last = load(&s.last_notification_ns).max(load(&s.last_result_ns));
    let duration = (last > r.t0).then(|| (last - r.t0) as f64 / 1e9);
    let latency = s.latency.lock().map(|h| h.clone()).unwrap_or_default();
    let per_1000 = |cpu: f64| round(1000.0 * cpu / notifications.max(1) as f64, 4);
    // Publications whose notifications did not all come.
    let short = s
        .per_publication
        .iter()
        .filter(|c| u64::from(c.load(Ordering::Relaxed)) < receivers)
        .count();
    let short_receivers = {
        // What each account should have got: its own and its contacts'
        // accepted publications.
        let pep = &ctx.opts.pep;
        (0..pep.accounts)
            .filter(|&k| {
                let own = load(&s.accepted[k]);
                let theirs: u64 = pep
                    .contacts_of(k)
                    .into_iter()
                    .map(|j| load(&s.accepted[j]))
                    .sum();
                load(&s.received[k]) < own + theirs
            })
            .count()
    };
    merge(&[
        ran_fields(r),
        json!({
            "rate": rate, "planned": planned, "accounts": ctx.opts.pep.accounts,
            "contacts": ctx.opts.pep.contacts, "receivers_per_publication": receivers,
            "window": ctx.opts.pep.window,
            "all_delivered": notifications >= r.expected && load(&s.errors) == 0
                && published == planned,
            "publications_short": short, "accounts_short": short_receivers,
            "duration_s": duration.map(|d| round(d, 3)),
            "publishes_per_s": duration.map(|d| round(published as f64 / d, 1)),
            "notifications_per_s": duration.map(|d| round(notifications as f64 / d, 1)),
            "latency": latency_json(&latency),
            "server_cpu_s_per_1000": per_1000(r.meter.server_cpu_s),
            "server_kernel_s_per_1000": per_1000(r.meter.server_kernel_cpu_s),
            // Per 1 000 stanzas received, duplicates included.
            "server_cpu_s_per_1000_stanzas": round(
                1000.0 * r.meter.server_cpu_s
                    / (notifications + load(&s.duplicates)).max(1) as f64,
                4,
            ),
            "server_cpu_ms_per_publish":
                round(1000.0 * r.meter.server_cpu_s / published.max(1) as f64, 4),
            "tool_cpu_us_per_notification":
                round(1e6 * r.meter.tool_cpu_s / notifications.max(1) as f64, 2),
            "rss_kib_after": ctx.probe.snapshot().map(|x| x.rss_kib),
        }),
    ])
}

/// Chat between the first pairs of the accounts: the closed loop of the
/// `chat` scenario, then at each measured phase's notification rate; and
/// the ratios.
async fn chat_yardstick(ctx: &Ctx, conns: &mut Vec<Conn>, measured: &[Value]) {
    let s = &ctx.opts.pep;
    let pairs = s.chat_pairs;
    let window = 10;
    ctx.settle().await;
    ctx.log(&format!(
        "pep: chat yardstick, {pairs} pairs, {window} in flight each"
    ));
    let closed = crate::scenario::chat::phase(
        ctx,
        conns,
        pairs,
        window,
        ctx.opts.max_msgs,
        Some(s.chat_seconds),
        None,
        "pep_chat",
    )
    .await;
    let chat_cpu = closed["server_cpu_s_per_1000"]
        .as_f64()
        .filter(|_| closed["delivered"].as_u64().unwrap_or(0) > 0);
    for m in measured {
        let rate = m["notifications_per_s"].as_f64().unwrap_or(0.0).round() as u64;
        let mut at_rate = None;
        if rate > 0 {
            ctx.settle().await;
            ctx.log(&format!("pep: chat at {rate} msg/s"));
            let r = crate::scenario::chat::phase(
                ctx,
                conns,
                pairs,
                window,
                ctx.opts.max_msgs,
                Some(s.chat_seconds),
                Some(rate),
                "pep_chat_rate",
            )
            .await;
            at_rate = r["server_cpu_s_per_1000"]
                .as_f64()
                .filter(|_| r["delivered"].as_u64().unwrap_or(0) > 0)
                .map(|c| (c, r["msgs_per_s"].as_f64()));
        }
        let pep_cpu = m["server_cpu_s_per_1000"].as_f64();
        let ratio = |chat: Option<f64>| match (pep_cpu, chat) {
            (Some(p), Some(c)) if c > 0.0 => Some(round(p / c, 3)),
            _ => None,
        };
        let over = ratio(chat_cpu);
        let over_at_rate = ratio(at_rate.map(|a| a.0));
        ctx.emit(
            "pep_summary",
            json!({
                "rate": m["rate"], "notifications_per_s": m["notifications_per_s"],
                "all_delivered": m["all_delivered"],
                "server_cpu_s_per_1000": pep_cpu,
                "chat_cpu_s_per_1000": chat_cpu,
                "chat_msgs_per_s": closed["msgs_per_s"],
                "over_chat": over,
                "chat_rate": rate,
                "chat_at_rate_cpu_s_per_1000": at_rate.map(|a| a.0),
                "chat_at_rate_msgs_per_s": at_rate.and_then(|a| a.1),
                "over_chat_at_rate": over_at_rate,
                "goal": 1.5,
                "goal_met": over.map(|o| o <= 1.5),
                "goal_met_at_rate": over_at_rate.map(|o| o <= 1.5),
            }),
        );
    }
}
