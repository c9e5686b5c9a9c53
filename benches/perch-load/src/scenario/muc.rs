//! `muc`: K occupants in one room (XEP-0045), S of them sending
//! groupchat messages with W fan-outs in flight each. Reports deliveries per
//! second (every copy the room sends, the sender's reflection included),
//! the latency from send to the *last* occupant's copy, and the time all K
//! took to join. A first phase with one sender and one fan-out in flight
//! gives the unloaded fan-out latency.
//!
//! The room is created by the first occupant; if the service locks new
//! rooms (status 201) it accepts the default configuration ("instant room",
//! XEP-0045 §10.1.2). Rooms are temporary: they vanish with the last
//! occupant when the clients disconnect.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future;
use serde_json::json;

use crate::conn::{ClientError, Conn, timeout};
use crate::ctx::{Ctx, PeakSampler, latency_json, merge, meter_json, now_ns, round};
use crate::histogram::Histogram;
use crate::procfs::Meter;
use crate::xml::{self, Frame};

use super::{body, is_error_message, mark};

const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// Sender ids of consecutive phases are this far apart, so a straggler
/// from one phase is never counted in the next.
const PHASE_STRIDE: u32 = 100_000;

pub async fn run(ctx: &Ctx) {
    let mech = ctx
        .opts
        .mechanisms
        .first()
        .copied()
        .unwrap_or(crate::sasl::Mechanism::Plain);
    for (round_no, &k) in ctx.opts.occupants.iter().enumerate() {
        ctx.settle().await;
        ctx.log(&format!("muc K={k}: logging in {k} clients"));
        let batch = ctx.login_many(0..k, mech, "muc").await;
        if batch.error_count() > 0 || batch.conns.len() < k {
            ctx.emit(
                "muc_error",
                json!({"occupants": k, "stage": "login", "login_errors": batch.error_count(),
                       "error_samples": batch.errors.iter().take(3).collect::<Vec<_>>()}),
            );
            ctx.close_all(batch.conns).await;
            continue;
        }
        let room = format!(
            "load{}r{round_no}k{k}@{}",
            std::process::id(),
            ctx.opts.muc_domain()
        );
        let mut conns = batch.conns;
        let join = join_all(ctx, &mut conns, &room).await;
        let join_fields = json!({
            "room": room, "joined": join.joined, "join_s": round(join.seconds, 3),
            "join_server_cpu_s": round(join.server_cpu_s, 3),
            "join_errors": join.errors.len(),
            "join_error_samples": join.errors.iter().take(3).collect::<Vec<_>>(),
        });
        if join.joined < k {
            ctx.emit(
                "muc_error",
                merge(&[json!({"occupants": k, "stage": "join"}), join_fields]),
            );
            ctx.close_all(conns).await;
            continue;
        }
        ctx.settle().await;
        let o = &ctx.opts;
        let base = PHASE_STRIDE * (2 * round_no as u32);
        phase(
            ctx,
            &mut conns,
            &room,
            base,
            1,
            1,
            o.muc_latency_msgs,
            None,
            "muc_latency",
            &join_fields,
        )
        .await;
        ctx.settle().await;
        phase(
            ctx,
            &mut conns,
            &room,
            base + PHASE_STRIDE,
            o.senders.min(k),
            o.muc_window,
            o.max_msgs,
            Some(o.seconds),
            "muc",
            &join_fields,
        )
        .await;
        ctx.close_all(conns).await;
    }
}

struct JoinOutcome {
    joined: usize,
    seconds: f64,
    server_cpu_s: f64,
    errors: Vec<String>,
}

fn join_presence(room: &str, nick: &str) -> String {
    format!(
        "<presence to='{}/{}'><x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>",
        xml::escape(room),
        xml::escape(nick)
    )
}

fn nick(conn: &Conn) -> String {
    format!("n{}", conn.index)
}

/// Is `el` our own occupant presence (status 110), an error, or neither?
fn self_presence(el: &[u8], room: &str, nick: &str) -> Option<Result<(), String>> {
    if xml::local_name(el) != b"presence" {
        return None;
    }
    let from = xml::start_tag_attr(el, "from")?;
    let from = std::str::from_utf8(from).ok()?;
    let (bare, resource) = from.split_once('/').unwrap_or((from, ""));
    if !bare.eq_ignore_ascii_case(room) {
        return None;
    }
    if xml::start_tag_attr(el, "type") == Some(b"error") {
        return Some(Err(String::from_utf8_lossy(el).chars().take(300).collect()));
    }
    // Status 110 marks the presence as the recipient's own (XEP-0045 §7.2.2).
    let has_110 = xml::find_seq(b"code='110'", el, 0).is_some()
        || xml::find_seq(b"code=\"110\"", el, 0).is_some();
    (has_110 && resource == nick).then_some(Ok(()))
}

/// The first occupant creates the room (and unlocks it if needed), then
/// all others join at once.
async fn join_all(ctx: &Ctx, conns: &mut Vec<Conn>, room: &str) -> JoinOutcome {
    let meter = Meter::start(&ctx.probe);
    let t0 = Instant::now();
    let mut errors = Vec::new();
    let Some(owner) = conns.first_mut() else {
        return JoinOutcome {
            joined: 0,
            seconds: 0.0,
            server_cpu_s: 0.0,
            errors,
        };
    };
    if let Err(e) = timeout(
        ctx.opts.step_timeout(),
        "room creation",
        create_room(owner, room),
    )
    .await
    {
        errors.push(format!("creating {room}: {e}"));
        return JoinOutcome {
            joined: 0,
            seconds: 0.0,
            server_cpu_s: 0.0,
            errors,
        };
    }
    let joined = Arc::new(AtomicUsize::new(1));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let tasks: Vec<_> = std::mem::take(conns)
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let (joined, failures, done) = (joined.clone(), failures.clone(), done_rx.clone());
            let room = room.to_string();
            ctx.ex
                .spawn(join_one(conn, room, i == 0, joined, failures, done))
        })
        .collect();
    let k = tasks.len();
    let limit = ctx.opts.join_timeout.min(ctx.opts.max_phase_seconds);
    let end = t0 + Duration::from_secs_f64(limit);
    while joined.load(Ordering::Relaxed) < k
        && Instant::now() < end
        && failures.lock().map(|f| f.is_empty()).unwrap_or(false)
    {
        smol::Timer::after(Duration::from_millis(5)).await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let m = meter.stop();
    // Occupants keep reading (the presence storm) until the server is quiet.
    ctx.settle().await;
    drop(done_tx);
    for t in tasks {
        if let Some(c) = t.await {
            conns.push(c);
        }
    }
    conns.sort_by_key(|c| c.index);
    errors.extend(failures.lock().map(|f| f.clone()).unwrap_or_default());
    if joined.load(Ordering::Relaxed) < k && errors.is_empty() {
        errors.push(format!(
            "only {} of {k} joined within {limit} s",
            joined.load(Ordering::Relaxed)
        ));
    }
    JoinOutcome {
        joined: joined.load(Ordering::Relaxed),
        seconds,
        server_cpu_s: m.server_cpu_s,
        errors,
    }
}

async fn create_room(owner: &mut Conn, room: &str) -> Result<(), ClientError> {
    let nick = nick(owner);
    owner.send(join_presence(room, &nick).as_bytes()).await?;
    let presence = loop {
        let el = owner.next_element().await?;
        match self_presence(&el, room, &nick) {
            Some(Ok(())) => break el,
            Some(Err(e)) => return Err(ClientError::Refused("join", e)),
            None => {}
        }
    };
    let locked = xml::find_seq(b"code='201'", &presence, 0).is_some()
        || xml::find_seq(b"code=\"201\"", &presence, 0).is_some();
    if locked {
        owner
            .send(
                format!(
                    "<iq type='set' id='create1' to='{}'><query xmlns='{NS_MUC_OWNER}'>\
                     <x xmlns='jabber:x:data' type='submit'/></query></iq>",
                    xml::escape(room)
                )
                .as_bytes(),
            )
            .await?;
        let answer = owner.await_iq("create1").await?;
        if xml::start_tag_attr(&answer, "type") != Some(b"result") {
            return Err(ClientError::Refused(
                "instant room",
                String::from_utf8_lossy(&answer).chars().take(300).collect(),
            ));
        }
    }
    Ok(())
}

/// Joins (unless `already`), then keeps reading until `done` closes.
async fn join_one(
    mut conn: Conn,
    room: String,
    already: bool,
    joined: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    done: smol::channel::Receiver<()>,
) -> Option<Conn> {
    let nick = nick(&conn);
    let result: Result<(), ClientError> = async {
        let mut in_room = already;
        if !in_room {
            conn.send(join_presence(&room, &nick).as_bytes()).await?;
        }
        loop {
            while let Some(frame) = conn.next_frame()? {
                if let Frame::Element(a, b) = frame {
                    if in_room {
                        continue;
                    }
                    match self_presence(conn.bytes(a, b), &room, &nick) {
                        Some(Ok(())) => {
                            in_room = true;
                            joined.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Err(e)) => return Err(ClientError::Refused("join", e)),
                        None => {}
                    }
                } else if frame == Frame::End {
                    return Err(ClientError::Closed("join"));
                }
            }
            if !conn.fill_or_stop(&done).await? {
                return Ok(());
            }
        }
    }
    .await;
    match result {
        Ok(()) => Some(conn),
        Err(e) => {
            if let Ok(mut f) = failures.lock() {
                f.push(format!("{nick}: {e}"));
            }
            None
        }
    }
}

struct Shared {
    k: u32,
    base: u32,
    senders: u32,
    window: u64,
    stop: AtomicBool,
    sent: AtomicU64,
    delivered: AtomicU64,
    bounced: AtomicU64,
    complete: AtomicU64,
    last_ns: AtomicU64,
    /// Copies seen of each message in flight: slot sender × window + seq % window.
    copies: Vec<AtomicU32>,
    notify: Vec<smol::channel::Sender<()>>,
    fanout: Mutex<Histogram>,
    delivery: Mutex<Histogram>,
}

#[allow(clippy::too_many_arguments)]
async fn phase(
    ctx: &Ctx,
    conns: &mut Vec<Conn>,
    room: &str,
    base: u32,
    senders: usize,
    window: usize,
    max_msgs: u64,
    seconds: Option<f64>,
    name: &str,
    join_fields: &serde_json::Value,
) {
    let k = conns.len();
    let (notify, waits): (Vec<_>, Vec<_>) = (0..senders)
        .map(|_| smol::channel::unbounded::<()>())
        .unzip();
    let shared = Arc::new(Shared {
        k: k as u32,
        base,
        senders: senders as u32,
        window: window as u64,
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        bounced: AtomicU64::new(0),
        complete: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
        copies: (0..senders * window).map(|_| AtomicU32::new(0)).collect(),
        notify,
        fanout: Mutex::new(Histogram::new()),
        delivery: Mutex::new(Histogram::new()),
    });
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let sampler = PeakSampler::start(ctx);
    let meter = Meter::start(&ctx.probe);
    let t0 = now_ns();
    let mut waits = waits.into_iter();
    let tasks: Vec<_> = std::mem::take(conns)
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let role = (i < senders).then(|| (i as u32, waits.next()));
            let sender = role.and_then(|(s, w)| w.map(|w| (s, w)));
            ctx.ex.spawn(occupant(
                conn,
                room.to_string(),
                sender,
                max_msgs,
                shared.clone(),
                done_rx.clone(),
            ))
        })
        .collect();
    let limit = seconds
        .unwrap_or(ctx.opts.max_phase_seconds)
        .min(ctx.opts.max_phase_seconds);
    let stop_at = Instant::now() + Duration::from_secs_f64(limit);
    let all = senders as u64 * max_msgs;
    let finished = |s: &Shared| {
        let sent = s.sent.load(Ordering::Relaxed);
        sent >= all && s.complete.load(Ordering::Relaxed) >= sent
    };
    while Instant::now() < stop_at && !finished(&shared) {
        smol::Timer::after(Duration::from_millis(10)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let drain_until = Instant::now() + Duration::from_secs_f64(ctx.opts.drain_seconds);
    while Instant::now() < drain_until
        && shared.delivered.load(Ordering::Relaxed) + shared.bounced.load(Ordering::Relaxed)
            < shared.sent.load(Ordering::Relaxed) * k as u64
    {
        smol::Timer::after(Duration::from_millis(10)).await;
    }
    let m = meter.stop();
    drop(done_tx);
    let mut failures = Vec::new();
    for t in tasks {
        let (conn, result) = t.await;
        if let Err(e) = result {
            failures.push(e.to_string());
        }
        conns.extend(conn);
    }
    conns.sort_by_key(|c| c.index);
    let peak = sampler.stop().await;
    let sent = shared.sent.load(Ordering::Relaxed);
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let last = shared.last_ns.load(Ordering::Relaxed);
    let duration = (last > t0).then(|| (last - t0) as f64 / 1e9);
    let fanout = shared.fanout.lock().map(|h| h.clone()).unwrap_or_default();
    let delivery = shared
        .delivery
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    ctx.emit(
        name,
        merge(&[
            json!({
                "occupants": k, "senders": senders, "window": window, "sent": sent,
                "fanouts_complete": shared.complete.load(Ordering::Relaxed),
                "deliveries": delivered, "deliveries_expected": sent * k as u64,
                "bounced": shared.bounced.load(Ordering::Relaxed),
                "client_failures": failures.len(),
                "failure_samples": failures.iter().take(3).collect::<Vec<_>>(),
                "duration_s": duration.map(|d| round(d, 3)),
                "deliveries_per_s": duration.map(|d| round(delivered as f64 / d, 1)),
                "fanout_latency": latency_json(&fanout),
                "delivery_latency": latency_json(&delivery),
                "server_cpu_s_per_1000": round(1000.0 * m.server_cpu_s / delivered.max(1) as f64, 4),
                "server_kernel_s_per_1000": round(1000.0 * m.server_kernel_cpu_s / delivered.max(1) as f64, 4),
                "tool_cpu_us_per_delivery": round(1e6 * m.tool_cpu_s / delivered.max(1) as f64, 2),
                "peak_rss_kib": peak,
            }),
            join_fields.clone(),
            meter_json(&m),
        ]),
    );
}

async fn occupant(
    mut conn: Conn,
    room: String,
    sender: Option<(u32, smol::channel::Receiver<()>)>,
    max_msgs: u64,
    shared: Arc<Shared>,
    done: smol::channel::Receiver<()>,
) -> (Option<Conn>, Result<(), ClientError>) {
    let head = format!("<message to='{}' type='groupchat'>", xml::escape(&room));
    let mut seq = 0u64;
    let mut out = Vec::with_capacity(1024);
    let mut fanout = Histogram::new();
    let mut delivery = Histogram::new();
    let me = sender.as_ref().map(|(s, _)| *s);
    let push = |out: &mut Vec<u8>, seq: &mut u64| {
        let Some(s) = me else { return };
        if *seq >= max_msgs || shared.stop.load(Ordering::Relaxed) {
            return;
        }
        *seq += 1;
        shared.sent.fetch_add(1, Ordering::Relaxed);
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body(shared.base + s, *seq, now_ns()).as_bytes());
        out.extend_from_slice(b"</message>");
    };
    for _ in 0..shared.window {
        push(&mut out, &mut seq);
    }
    let result: Result<(), ClientError> = async {
        loop {
            let now = now_ns();
            let mut got = 0;
            while let Some(frame) = conn.next_frame()? {
                match frame {
                    Frame::Element(a, b) => {
                        let el = conn.bytes(a, b);
                        if let Some(m) = mark(el) {
                            let Some(s) = m
                                .sender
                                .checked_sub(shared.base)
                                .filter(|&s| s < shared.senders)
                            else {
                                continue;
                            };
                            got += 1;
                            delivery.record(now.saturating_sub(m.sent_ns));
                            let slot = (s as u64 * shared.window + m.seq % shared.window) as usize;
                            let Some(copies) = shared.copies.get(slot) else {
                                continue;
                            };
                            if copies.fetch_add(1, Ordering::AcqRel) + 1 == shared.k {
                                copies.fetch_sub(shared.k, Ordering::AcqRel);
                                fanout.record(now.saturating_sub(m.sent_ns));
                                shared.complete.fetch_add(1, Ordering::Relaxed);
                                if let Some(n) = shared.notify.get(s as usize) {
                                    let _ = n.try_send(());
                                }
                            }
                        } else if is_error_message(el) {
                            shared.bounced.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Frame::End => return Err(ClientError::Closed("muc")),
                    Frame::Header(..) => {}
                }
            }
            if got > 0 {
                shared.delivered.fetch_add(got, Ordering::Relaxed);
                shared.last_ns.fetch_max(now, Ordering::Relaxed);
            }
            if let Some((_, wait)) = &sender {
                while wait.try_recv().is_ok() {
                    push(&mut out, &mut seq);
                }
            }
            if !out.is_empty() {
                conn.send(&out).await?;
                out.clear();
            }
            enum Wake {
                Input(Result<usize, ClientError>),
                Completed,
                Done,
            }
            let wake = future::or(
                async { Wake::Input(conn.fill().await) },
                future::or(
                    async {
                        match &sender {
                            Some((_, wait)) if wait.recv().await.is_ok() => Wake::Completed,
                            _ => future::pending().await,
                        }
                    },
                    async {
                        let _ = done.recv().await;
                        Wake::Done
                    },
                ),
            )
            .await;
            match wake {
                Wake::Input(r) => {
                    r?;
                }
                Wake::Completed => push(&mut out, &mut seq),
                Wake::Done => return Ok(()),
            }
        }
    }
    .await;
    if let Ok(mut h) = shared.fanout.lock() {
        h.merge(&fanout);
    }
    if let Ok(mut h) = shared.delivery.lock() {
        h.merge(&delivery);
    }
    match result {
        Ok(()) => (Some(conn), Ok(())),
        Err(e) => (None, Err(e)),
    }
}
