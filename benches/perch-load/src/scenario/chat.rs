//! `chat`: pairs of clients exchanging one-to-one messages. Each client
//! starts with `window` messages to its partner and answers every message
//! it receives with a new one, so each pair keeps about 2 × window messages
//! in flight; delivered messages per second and send-to-receive latency.
//! A first phase with one pair and one message in flight gives the
//! unloaded latency.
//!
//! With `--rate N` the throughput phase is an open loop instead: each of
//! the 2 × pairs clients sends on a fixed schedule of one message every
//! 2 × pairs / N seconds (N messages per second in all, the clients' first
//! sends staggered evenly over one interval) and does not answer what it
//! receives. A late wake-up sends every message then due at once, but
//! never more than `window` of a client's messages are in flight (sent and
//! neither delivered nor bounced); the schedule is kept, so a client held
//! back catches up when its messages arrive. The record carries `"rate"`
//! (null in the closed loop) beside the achieved `msgs_per_s`.
//!
//! With `--sm` every client enables stream management (XEP-0198) with
//! resumption after binding, answers each `<r/>` of the server with
//! `<a h/>` and asks for an ack itself every 5 stanzas it sends, checking
//! the answer (as Conversations does); the records are `chat_sm_latency`
//! and `chat_sm`, so the server's CPU per 1 000 messages can be set
//! beside a run without.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::conn::{ClientError, Conn};
use crate::ctx::{Ctx, PeakSampler, latency_json, merge, meter_json, now_ns, round};
use crate::histogram::Histogram;
use crate::procfs::Meter;
use crate::sm::{self, Inbound};
use crate::xml::{self, Frame};

use super::{body, is_error_message, mark};

pub async fn run(ctx: &Ctx) {
    let Some(mut conns) = login_pairs(ctx, "chat").await else {
        return;
    };
    ctx.settle().await;
    let (latency_name, name) = if ctx.opts.sm {
        ("chat_sm_latency", "chat_sm")
    } else {
        ("chat_latency", "chat")
    };
    phase(
        ctx,
        &mut conns,
        1,
        1,
        ctx.opts.latency_msgs,
        None,
        None,
        latency_name,
    )
    .await;
    ctx.settle().await;
    let pairs = ctx.opts.pairs;
    phase(
        ctx,
        &mut conns,
        pairs,
        ctx.opts.window,
        ctx.opts.max_msgs,
        Some(ctx.opts.seconds),
        ctx.opts.rate,
        name,
    )
    .await;
    ctx.close_all(conns).await;
}

/// Logs in 2 × pairs clients; `None` (with an error record) if any failed.
pub async fn login_pairs(ctx: &Ctx, scenario: &str) -> Option<Vec<Conn>> {
    let mech = ctx
        .opts
        .mechanisms
        .first()
        .copied()
        .unwrap_or(crate::sasl::Mechanism::Plain);
    let n = 2 * ctx.opts.pairs;
    ctx.log(&format!("{scenario}: logging in {n} clients"));
    let batch = ctx.login_many(0..n, mech, scenario).await;
    if batch.error_count() > 0 || batch.conns.len() < n {
        ctx.emit(
            &format!("{scenario}_error"),
            json!({"login_errors": batch.error_count(),
                   "error_samples": batch.errors.iter().take(3).collect::<Vec<_>>()}),
        );
        ctx.close_all(batch.conns).await;
        return None;
    }
    Some(batch.conns)
}

struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    received: AtomicU64,
    bounced: AtomicU64,
    last_ns: AtomicU64,
    latency: Mutex<Histogram>,
    /// Stream management: the server's `<a/>` checked, its `<r/>` answered.
    sm_acks: AtomicU64,
    sm_answered: AtomicU64,
}

/// One measured exchange over the first 2 × `pairs` of `conns` (which are
/// given back afterwards). `seconds: None` runs until every client sent
/// `max_msgs`. `rate: Some(n)` paces the clients to n messages per second
/// in all (see the module's documentation). Returns the record it emitted.
#[allow(clippy::too_many_arguments)]
pub async fn phase(
    ctx: &Ctx,
    conns: &mut Vec<Conn>,
    pairs: usize,
    window: usize,
    max_msgs: u64,
    seconds: Option<f64>,
    rate: Option<u64>,
    name: &str,
) -> Value {
    let pairs = pairs.min(conns.len() / 2);
    let active: Vec<Conn> = conns.drain(..2 * pairs).collect();
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        bounced: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
        latency: Mutex::new(Histogram::new()),
        sm_acks: AtomicU64::new(0),
        sm_answered: AtomicU64::new(0),
    });
    let sm_on = active.iter().any(|c| c.sm.is_some());
    let jids: Vec<String> = active.iter().map(|c| c.jid.clone()).collect();
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let clients = 2 * pairs as u64;
    let delivered: Arc<Vec<AtomicU64>> =
        Arc::new((0..clients).map(|_| AtomicU64::new(0)).collect());
    let interval = rate.map(|r| interval_ns(clients, r));
    let sampler = PeakSampler::start(ctx);
    let meter = Meter::start(&ctx.probe);
    let t0 = now_ns();
    let tasks: Vec<_> = active
        .into_iter()
        .enumerate()
        .map(|(k, conn)| {
            let partner = jids[k ^ 1].clone();
            let (shared, done) = (shared.clone(), done_rx.clone());
            let pace = interval.map(|i| Pace::new(t0 + k as u64 * i / clients, i));
            let seat = Seat {
                k,
                delivered: delivered.clone(),
                pace,
            };
            ctx.ex
                .spawn(client(conn, partner, window, max_msgs, seat, shared, done))
        })
        .collect();
    let limit = seconds
        .unwrap_or(ctx.opts.max_phase_seconds)
        .min(ctx.opts.max_phase_seconds);
    let stop_at = Instant::now() + Duration::from_secs_f64(limit);
    let all = 2 * pairs as u64 * max_msgs;
    let finished = |s: &Shared| {
        let sent = s.sent.load(Ordering::Relaxed);
        sent >= all
            && s.received.load(Ordering::Relaxed) + s.bounced.load(Ordering::Relaxed) >= sent
    };
    while Instant::now() < stop_at && !finished(&shared) {
        smol::Timer::after(Duration::from_millis(10)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let drain_until = Instant::now() + Duration::from_secs_f64(ctx.opts.drain_seconds);
    while Instant::now() < drain_until
        && shared.received.load(Ordering::Relaxed) + shared.bounced.load(Ordering::Relaxed)
            < shared.sent.load(Ordering::Relaxed)
    {
        smol::Timer::after(Duration::from_millis(10)).await;
    }
    let m = meter.stop();
    drop(done_tx);
    let mut failures = Vec::new();
    let mut back = Vec::new();
    for t in tasks {
        let (conn, result) = t.await;
        if let Err(e) = result {
            failures.push(e.to_string());
        }
        back.extend(conn);
    }
    let peak = sampler.stop().await;
    // Give the clients back in their original order, ahead of the rest.
    back.append(conns);
    *conns = back;
    let sent = shared.sent.load(Ordering::Relaxed);
    let received = shared.received.load(Ordering::Relaxed);
    let last = shared.last_ns.load(Ordering::Relaxed);
    let duration = (last > t0).then(|| (last - t0) as f64 / 1e9);
    let latency = shared.latency.lock().map(|h| h.clone()).unwrap_or_default();
    let per_1000 = |cpu: f64| round(1000.0 * cpu / received.max(1) as f64, 4);
    let sm_fields = if sm_on {
        json!({
            "sm": true,
            "sm_acks_received": shared.sm_acks.load(Ordering::Relaxed),
            "sm_requests_answered": shared.sm_answered.load(Ordering::Relaxed),
        })
    } else {
        json!({})
    };
    let fields = merge(&[
        json!({
            "pairs": pairs, "window": window, "rate": rate, "sent": sent, "delivered": received,
            "bounced": shared.bounced.load(Ordering::Relaxed),
            "lost_or_pending": sent.saturating_sub(received),
            "client_failures": failures.len(),
            "failure_samples": failures.iter().take(3).collect::<Vec<_>>(),
            "duration_s": duration.map(|d| round(d, 3)),
            "msgs_per_s": duration.map(|d| round(received as f64 / d, 1)),
            "latency": latency_json(&latency),
            "server_cpu_s_per_1000": per_1000(m.server_cpu_s),
            "server_kernel_s_per_1000": per_1000(m.server_kernel_cpu_s),
            "tool_cpu_us_per_msg": round(1e6 * m.tool_cpu_s / received.max(1) as f64, 2),
            "peak_rss_kib": peak,
            "rss_kib_after": ctx.probe.snapshot().map(|s| s.rss_kib),
        }),
        meter_json(&m),
        sm_fields,
    ]);
    ctx.emit(name, fields.clone());
    fields
}

/// Sending schedule of a paced client: one message every `interval`
/// nanoseconds from `next` (both on the `now_ns` clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pace {
    next: u64,
    interval: u64,
}

impl Pace {
    fn new(start_ns: u64, interval_ns: u64) -> Pace {
        Pace {
            next: start_ns,
            interval: interval_ns.max(1),
        }
    }

    /// Messages due at `now`, at most `room`; the schedule advances by as
    /// many, so those held back stay due (sent when room frees up).
    fn due(&mut self, now: u64, room: u64) -> u64 {
        if now < self.next {
            return 0;
        }
        let n = ((now - self.next) / self.interval + 1).min(room);
        self.next += n * self.interval;
        n
    }
}

/// Each client's interval for `rate` messages per second from `clients`.
fn interval_ns(clients: u64, rate: u64) -> u64 {
    (clients.saturating_mul(1_000_000_000) / rate.max(1)).max(1)
}

/// A client's place in the phase: index `k` (its partner is `k ^ 1`), the
/// messages each client has received, and its schedule if paced.
struct Seat {
    k: usize,
    delivered: Arc<Vec<AtomicU64>>,
    pace: Option<Pace>,
}

/// How long a paced client whose window is full waits before looking again
/// (a message arriving wakes it sooner).
const FULL_WINDOW_POLL_NS: u64 = 500_000;

async fn client(
    mut conn: Conn,
    partner: String,
    window: usize,
    max_msgs: u64,
    mut seat: Seat,
    shared: Arc<Shared>,
    done: smol::channel::Receiver<()>,
) -> (Option<Conn>, Result<(), ClientError>) {
    let me = conn.index as u32;
    let head = format!("<message to='{}' type='chat'>", xml::escape(&partner));
    let mut seq = 0u64;
    let mut out = Vec::with_capacity(4096);
    let mut local = Histogram::new();
    let sm_before = sm_totals(&conn);
    let push = |out: &mut Vec<u8>, seq: &mut u64, sm: &mut Option<sm::Counter>| {
        if *seq >= max_msgs || shared.stop.load(Ordering::Relaxed) {
            return;
        }
        *seq += 1;
        shared.sent.fetch_add(1, Ordering::Relaxed);
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body(me, *seq, now_ns()).as_bytes());
        out.extend_from_slice(b"</message>");
        if let Some(counter) = sm
            && counter.sent_one(sm::REQUEST_EVERY)
        {
            counter.request(out);
        }
    };
    let paced = seat.pace.is_some();
    if !paced {
        for _ in 0..window {
            push(&mut out, &mut seq, &mut conn.sm);
        }
    }
    let mut bounced = 0u64;
    let result: Result<(), ClientError> = async {
        loop {
            let now = now_ns();
            let mut got = 0;
            while let Some(frame) = conn.next_frame()? {
                match frame {
                    Frame::Element(a, b) => {
                        if let Inbound::Request | Inbound::Ack(_) =
                            conn.sm_inbound(a, b, &mut out)?
                        {
                            continue;
                        }
                        let el = conn.bytes(a, b);
                        if let Some(m) = mark(el) {
                            local.record(now.saturating_sub(m.sent_ns));
                            got += 1;
                            if !paced {
                                push(&mut out, &mut seq, &mut conn.sm);
                            }
                        } else if is_error_message(el) {
                            bounced += 1;
                            shared.bounced.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Frame::End => return Err(ClientError::Closed("chat")),
                    Frame::Header(..) => {}
                }
            }
            if got > 0 {
                shared.received.fetch_add(got, Ordering::Relaxed);
                shared.last_ns.fetch_max(now, Ordering::Relaxed);
                if let Some(d) = seat.delivered.get(seat.k) {
                    d.fetch_add(got, Ordering::Relaxed);
                }
            }
            let mut wake = None;
            if let Some(pace) = seat.pace.as_mut()
                && !shared.stop.load(Ordering::Relaxed)
                && seq < max_msgs
            {
                let now = now_ns();
                let arrived = seat
                    .delivered
                    .get(seat.k ^ 1)
                    .map_or(0, |d| d.load(Ordering::Relaxed));
                let in_flight = seq.saturating_sub(arrived + bounced);
                let room = (window as u64).saturating_sub(in_flight);
                for _ in 0..pace.due(now, room.min(max_msgs - seq)) {
                    push(&mut out, &mut seq, &mut conn.sm);
                }
                wake = Some(if pace.next > now {
                    pace.next
                } else {
                    now + FULL_WINDOW_POLL_NS
                });
            }
            if !out.is_empty() {
                conn.send(&out).await?;
                out.clear();
            }
            let go_on = match wake {
                None => conn.fill_or_stop(&done).await?,
                Some(at) => {
                    let timer = async {
                        smol::Timer::after(Duration::from_nanos(at.saturating_sub(now_ns()))).await;
                        Ok(true)
                    };
                    futures_lite::future::or(conn.fill_or_stop(&done), timer).await?
                }
            };
            if !go_on {
                return Ok(());
            }
        }
    }
    .await;
    if let Ok(mut h) = shared.latency.lock() {
        h.merge(&local);
    }
    let sm_after = sm_totals(&conn);
    shared
        .sm_acks
        .fetch_add(sm_after.0 - sm_before.0, Ordering::Relaxed);
    shared
        .sm_answered
        .fetch_add(sm_after.1 - sm_before.1, Ordering::Relaxed);
    match result {
        Ok(()) => (Some(conn), Ok(())),
        Err(e) => (None, Err(e)),
    }
}

/// Acks received and requests answered so far on this connection.
fn sm_totals(conn: &Conn) -> (u64, u64) {
    conn.sm
        .as_ref()
        .map_or((0, 0), |c| (c.acks_received, c.requests_answered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_spreads_the_rate_over_every_client() {
        // 50 pairs, 100 senders, 50 000/s in all: 500/s each, every 2 ms.
        assert_eq!(interval_ns(100, 50_000), 2_000_000);
        assert_eq!(interval_ns(2, 1), 2_000_000_000);
        assert_eq!(interval_ns(1, 10_000_000_000), 1);
    }

    #[test]
    fn pace_keeps_its_schedule_and_the_window() {
        let mut p = Pace::new(1_000, 100);
        assert_eq!(p.due(999, 10), 0);
        assert_eq!(p.due(1_000, 10), 1);
        assert_eq!(p.next, 1_100);
        assert_eq!(p.due(1_099, 10), 0);
        // A late wake-up sends all that is due, on the old schedule.
        assert_eq!(p.due(1_350, 10), 3);
        assert_eq!(p.next, 1_400);
        // A full window holds messages back; they stay due.
        assert_eq!(p.due(2_000, 0), 0);
        assert_eq!(p.due(2_000, 2), 2);
        assert_eq!(p.next, 1_600);
        assert_eq!(p.due(2_000, 10), 5);
        assert_eq!(p.next, 2_100);
        // Over a long run the count is exactly the rate.
        let mut p = Pace::new(0, 2_000_000);
        let mut sent = 0;
        let mut now = 0;
        while now < 8_000_000_000 {
            sent += p.due(now, 10);
            now += 1_700_000 + (now % 7) * 100_000;
        }
        assert_eq!(sent, 4_000);
    }
}
