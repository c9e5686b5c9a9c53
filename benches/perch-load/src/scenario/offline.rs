//! `offline`: one client sends `--messages` chat messages, as fast as it
//! can, to a contact that is not online, then a ping: the server answers
//! the ping only after the messages before it, so the time to its result is
//! the time the server took to accept (store) them all. Then the contact
//! logs in, sends initial presence and counts the stored messages it gets.
//!
//! What it shows is the cost of durable storage per message: a server that
//! commits each stored message on its own pays one fsync per message here.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::conn::{ClientError, Conn, Login, random_bytes};
use crate::ctx::{Ctx, merge, meter_json, now_ns, round};
use crate::procfs::Meter;
use crate::sasl::Mechanism;
use crate::xml::{self, Frame};

use super::{body, is_error_message, mark};

/// Messages per write: large writes, yet the replies (bounces past the
/// server's quota) are read between them, so neither side can stall on a
/// full socket buffer while the other waits for it.
const CHUNK: u64 = 100;

const PING_ID: &str = "offline-ping";

/// What the sending phase saw.
struct Sent {
    accepted_ns: u64,
    bounced: u64,
}

/// What the recipient's login saw.
struct Delivered {
    /// Distinct messages of this run.
    count: u64,
    duplicates: u64,
    /// Marked messages of an earlier run still stored for the account.
    stale: u64,
    /// From initial presence to the last message of this run.
    last_ns: Option<u64>,
}

/// Runs the scenario; `Err` when the recipient did not get every message
/// (the record is emitted first, with the counts).
pub async fn run(ctx: &Ctx) -> Result<(), String> {
    let n = ctx.opts.messages;
    let (sender, recipient) = (ctx.opts.user(0), ctx.opts.user(1));
    let to = format!("{recipient}@{}", ctx.opts.domain);
    // The run's tag goes where a message's sender index goes, so messages
    // an earlier run left stored for the recipient are told apart.
    let tag = u32::from_le_bytes(random_bytes::<4>());
    let login = |user, presence| Login {
        user,
        password: &ctx.opts.password,
        mechanism: ctx
            .opts
            .mechanisms
            .first()
            .copied()
            .unwrap_or(Mechanism::Plain),
        resource: "offline",
        presence,
        sm: false,
    };

    ctx.log(&format!("offline: {sender} sends {n} messages to {to}"));
    let mut conn = Conn::login(&ctx.target, &login(&sender, true))
        .await
        .map_err(|e| format!("offline: {sender} could not log in: {e}"))?;
    ctx.settle().await;
    let meter = Meter::start(&ctx.probe);
    let t0 = now_ns();
    let sent = bounded(ctx, "sending", send_all(ctx, &mut conn, &to, tag, t0)).await;
    let send_meter = meter.stop();
    conn.close().await;
    let sent = sent.map_err(|e| format!("offline: sending: {e}"))?;
    // A mark between the phases for whoever watches the server from
    // outside (e.g. stops counting its syscalls): the settle that follows
    // gives them time to before the recipient logs in.
    ctx.log(&format!(
        "offline: accepted in {:.3} s; {recipient} logs in",
        sent.accepted_ns as f64 / 1e9
    ));

    ctx.settle().await;
    let meter = Meter::start(&ctx.probe);
    let delivered = bounded(ctx, "delivery", receive(ctx, login(&recipient, false), tag)).await;
    let delivery_meter = meter.stop();
    let delivered = delivered.map_err(|e| format!("offline: {recipient}: {e}"))?;

    let secs = |ns: u64| round(ns as f64 / 1e9, 3);
    let accepted_s = secs(sent.accepted_ns);
    ctx.emit(
        "offline",
        merge(&[
            json!({
                "messages": n,
                "accepted_s": accepted_s,
                "accepted_msgs_per_s": (sent.accepted_ns > 0)
                    .then(|| round(n as f64 * 1e9 / sent.accepted_ns as f64, 1)),
                "bounced": sent.bounced,
                "delivered": delivered.count,
                "duplicates": delivered.duplicates,
                "stale": delivered.stale,
                "delivered_s": delivered.last_ns.map(secs),
                "delivery_server_cpu_s": round(delivery_meter.server_cpu_s, 3),
                "server_cpu_ms_per_msg": round(1000.0 * send_meter.server_cpu_s / n.max(1) as f64, 3),
                "rss_kib_after": ctx.probe.snapshot().map(|s| s.rss_kib),
            }),
            // The sending phase: first message to the ping's result.
            meter_json(&send_meter),
        ]),
    );
    if delivered.count < n {
        return Err(format!(
            "offline: {n} messages sent, {} delivered to {recipient} ({} bounced by the server, \
             {} stale from an earlier run); raise the server's offline quota or look at its log",
            delivered.count, sent.bounced, delivered.stale
        ));
    }
    Ok(())
}

/// Bounds a phase by `--max-phase-seconds`.
async fn bounded<T>(
    ctx: &Ctx,
    step: &'static str,
    fut: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    let limit = Duration::from_secs_f64(ctx.opts.max_phase_seconds);
    crate::conn::timeout(limit, step, fut).await
}

/// Writes every message (in chunks, without waiting for anything per
/// message), then a ping, and reads until the ping's result.
async fn send_all(
    ctx: &Ctx,
    conn: &mut Conn,
    to: &str,
    tag: u32,
    t0: u64,
) -> Result<Sent, ClientError> {
    let n = ctx.opts.messages;
    let head = format!("<message type='chat' to='{}'>", xml::escape(to));
    let mut bounced = 0;
    let mut out = Vec::with_capacity(CHUNK as usize * 128);
    let mut seq = 0;
    while seq < n {
        out.clear();
        for _ in 0..CHUNK.min(n - seq) {
            seq += 1;
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(body(tag, seq, now_ns()).as_bytes());
            out.extend_from_slice(b"</message>");
        }
        if seq == n {
            out.extend_from_slice(
                format!(
                    "<iq type='get' id='{PING_ID}' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
                    xml::escape(&ctx.opts.domain)
                )
                .as_bytes(),
            );
        }
        conn.send(&out).await?;
        // Whatever already came back, without waiting for more.
        while let Some(r) = futures_lite::future::poll_once(conn.fill()).await {
            r?;
            if scan(conn, &mut bounced)? {
                return Ok(Sent {
                    accepted_ns: now_ns() - t0,
                    bounced,
                });
            }
        }
    }
    let step = ctx.opts.step_timeout();
    loop {
        if scan(conn, &mut bounced)? {
            return Ok(Sent {
                accepted_ns: now_ns() - t0,
                bounced,
            });
        }
        // The server answers in order, but a server that stores messages
        // one commit at a time may take long; only silence is an error.
        crate::conn::timeout(step, "ping result", conn.fill()).await?;
    }
}

/// Counts bounces among the buffered elements; true once the ping's
/// result (or error) is among them.
fn scan(conn: &mut Conn, bounced: &mut u64) -> Result<bool, ClientError> {
    while let Some(frame) = conn.next_frame()? {
        match frame {
            Frame::Element(a, b) => {
                let el = conn.bytes(a, b);
                if is_error_message(el) {
                    *bounced += 1;
                } else if xml::local_name(el) == b"iq"
                    && xml::start_tag_attr(el, "id") == Some(PING_ID.as_bytes())
                {
                    return Ok(true);
                }
            }
            Frame::End => return Err(ClientError::Closed("sending")),
            Frame::Header(..) => {}
        }
    }
    Ok(false)
}

/// Logs the recipient in without presence (a login's own ping result
/// would otherwise be awaited past the stored messages, dropping them),
/// then sends initial presence and counts this run's messages until all
/// arrived or none came for `--step-timeout`.
async fn receive(ctx: &Ctx, login: Login<'_>, tag: u32) -> Result<Delivered, ClientError> {
    let n = ctx.opts.messages;
    let mut conn = Conn::login(&ctx.target, &login).await?;
    let mut seen = vec![false; n as usize];
    let mut got = Delivered {
        count: 0,
        duplicates: 0,
        stale: 0,
        last_ns: None,
    };
    conn.send(b"<presence/>").await?;
    let t0 = now_ns();
    let step = ctx.opts.step_timeout();
    let mut quiet_since = Instant::now();
    while got.count < n {
        let mut progress = false;
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Element(a, b) => {
                    let Some(m) = mark(conn.bytes(a, b)) else {
                        continue;
                    };
                    let slot = (m.seq as usize)
                        .checked_sub(1)
                        .and_then(|i| seen.get_mut(i));
                    match slot {
                        Some(s) if m.sender == tag && !*s => {
                            *s = true;
                            got.count += 1;
                            got.last_ns = Some(now_ns() - t0);
                            progress = true;
                        }
                        _ if m.sender == tag => got.duplicates += 1,
                        _ => got.stale += 1,
                    }
                }
                Frame::End => return Err(ClientError::Closed("delivery")),
                Frame::Header(..) => {}
            }
        }
        if progress {
            quiet_since = Instant::now();
        }
        if got.count >= n {
            break;
        }
        let left = step.saturating_sub(quiet_since.elapsed());
        if left.is_zero() {
            break;
        }
        match crate::conn::timeout(left, "delivery", conn.fill()).await {
            Ok(_) => {}
            Err(ClientError::Timeout(_)) => break,
            Err(e) => return Err(e),
        }
    }
    conn.close().await;
    Ok(got)
}
