//! Filling an archive over XMPP, fast: many senders, each writing its
//! messages in chunks (pipelined, no wait per message) with at most
//! `window` of them unconfirmed. A 1:1 message is confirmed when the
//! archive's owner, online, receives it; a groupchat message when the room
//! reflects it to its sender (Perch reflects only once the message is
//! committed to the room's archive).
//!
//! The contacts set their own archiving preference to `never` first (see
//! `super::prefs`), so each 1:1 message is archived once, by the owner, and
//! not a second time in the sender's archive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future;

use crate::conn::{ClientError, Conn};
use crate::ctx::{Ctx, now_ns};
use crate::procfs::{Meter, MeterReading};
use crate::scenario::{is_error_message, mark};
use crate::xml::{self, Frame};

use super::fsync::{FsyncCounter, FsyncTool};

/// Messages per write.
const CHUNK: u64 = 100;
/// Sender ids of consecutive fills are this far apart, so a straggler from
/// one fill is never counted in the next.
pub const STRIDE: u32 = 100_000;

/// Where the messages go.
#[derive(Clone, Debug)]
pub enum Dest {
    /// 1:1 chat to the owner's bare JID; the owner's connection confirms.
    Owner(String),
    /// Groupchat to the room's bare JID; each sender's reflection confirms.
    Room(String),
}

/// What one fill did.
#[derive(Debug, Default)]
pub struct Filled {
    pub sent: u64,
    pub confirmed: u64,
    pub bounced: u64,
    /// Bytes of the confirmed stanzas as the server delivered them.
    pub stanza_bytes: u64,
    /// Bytes of the stanzas as sent.
    pub sent_bytes: u64,
    pub meter: MeterReading,
    /// From the first write to the last confirmation.
    pub seconds: f64,
    pub fsyncs: Option<u64>,
    pub fsync_error: Option<String>,
    pub failures: Vec<String>,
}

struct Shared {
    base: u32,
    stop: AtomicBool,
    sent: AtomicU64,
    confirmed: AtomicU64,
    bounced: AtomicU64,
    stanza_bytes: AtomicU64,
    sent_bytes: AtomicU64,
    last_ns: AtomicU64,
    /// Confirmed messages of each sender.
    confirmed_of: Vec<AtomicU64>,
    /// Wakes a 1:1 sender when the owner saw some of its messages.
    wake: Vec<smol::channel::Sender<()>>,
}

/// Texts of different lengths, as people write them (the mark goes first).
const TEXTS: [&str; 6] = [
    "ok",
    "see you at eight then",
    "did you get the photos from saturday? the last ones are the best",
    "thanks!",
    "I'm on the train, I'll call you back when I get home, probably around seven",
    "sounds good to me, let's do that",
];

fn message(to: &str, ty: &str, sender: u32, seq: u64) -> String {
    let text = TEXTS[(seq as usize + sender as usize) % TEXTS.len()];
    format!(
        "<message to='{to}' type='{ty}' id='m{sender}-{seq}'><body>B {sender} {seq} {} {text}</body></message>",
        now_ns()
    )
}

/// Sends `n` messages from `senders` (shares as even as can be) to `dest`
/// and waits until all are confirmed or the phase bound passes. With
/// `Dest::Owner`, `owner` must be the owner's connection; it is read
/// throughout and given back, as are the senders (those whose stream
/// failed are dropped, with the error in `failures`). `phase` numbers the
/// fill (sender ids are `phase * STRIDE + i`).
#[allow(clippy::too_many_arguments)]
pub async fn fill(
    ctx: &Ctx,
    dest: &Dest,
    senders: &mut Vec<Conn>,
    owner: &mut Option<Conn>,
    n: u64,
    window: usize,
    phase: u32,
    fsyncs: FsyncTool,
) -> Filled {
    let k = senders.len();
    let mut out = Filled::default();
    if k == 0 || n == 0 {
        return out;
    }
    let (wake, waits): (Vec<_>, Vec<_>) = (0..k).map(|_| smol::channel::bounded(1)).unzip();
    let shared = Arc::new(Shared {
        base: phase * STRIDE,
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        confirmed: AtomicU64::new(0),
        bounced: AtomicU64::new(0),
        stanza_bytes: AtomicU64::new(0),
        sent_bytes: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
        confirmed_of: (0..k).map(|_| AtomicU64::new(0)).collect(),
        wake,
    });
    let counter = match FsyncCounter::start(fsyncs, &ctx.probe.pids()).await {
        Ok(c) => c,
        Err(e) => {
            out.fsync_error = Some(e);
            None
        }
    };
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let reader = match (dest, owner.take()) {
        (Dest::Owner(_), Some(conn)) => Some(ctx.ex.spawn(read_owner(
            conn,
            shared.clone(),
            done_rx.clone(),
        ))),
        (_, conn) => {
            *owner = conn;
            None
        }
    };
    let deadline = Instant::now() + Duration::from_secs_f64(ctx.opts.max_phase_seconds);
    let meter = Meter::start(&ctx.probe);
    let t0 = now_ns();
    let tasks: Vec<_> = std::mem::take(senders)
        .into_iter()
        .zip(waits)
        .enumerate()
        .map(|(i, (conn, wait))| {
            let share = n / k as u64 + u64::from((i as u64) < n % k as u64);
            ctx.ex.spawn(send(
                conn,
                dest.clone(),
                i,
                share,
                window as u64,
                shared.clone(),
                wait,
                deadline,
            ))
        })
        .collect();
    for t in tasks {
        let (conn, result) = t.await;
        if let Err(e) = result {
            out.failures.push(e.to_string());
        }
        senders.extend(conn);
    }
    out.meter = meter.stop();
    shared.stop.store(true, Ordering::Relaxed);
    drop(done_tx);
    if let Some(reader) = reader {
        let (conn, result) = reader.await;
        if let Err(e) = result {
            out.failures.push(format!("owner: {e}"));
        }
        *owner = conn;
    }
    if let Some(counter) = counter {
        match counter.stop().await {
            Ok(count) => out.fsyncs = Some(count),
            Err(e) => out.fsync_error = Some(e),
        }
    }
    out.sent = shared.sent.load(Ordering::Relaxed);
    out.confirmed = shared.confirmed.load(Ordering::Relaxed);
    out.bounced = shared.bounced.load(Ordering::Relaxed);
    out.stanza_bytes = shared.stanza_bytes.load(Ordering::Relaxed);
    out.sent_bytes = shared.sent_bytes.load(Ordering::Relaxed);
    let last = shared.last_ns.load(Ordering::Relaxed);
    out.seconds = last.saturating_sub(t0) as f64 / 1e9;
    out
}

/// One sender: writes its share in chunks, keeping at most `window`
/// unconfirmed, until all are confirmed (or bounced) or the deadline.
#[allow(clippy::too_many_arguments)]
async fn send(
    mut conn: Conn,
    dest: Dest,
    slot: usize,
    share: u64,
    window: u64,
    shared: Arc<Shared>,
    wait: smol::channel::Receiver<()>,
    deadline: Instant,
) -> (Option<Conn>, Result<(), ClientError>) {
    let me = shared.base + slot as u32;
    let (to, ty, room) = match &dest {
        Dest::Owner(jid) => (xml::escape(jid), "chat", false),
        Dest::Room(jid) => (xml::escape(jid), "groupchat", true),
    };
    let mut seq = 0u64;
    let mut bounced = 0u64;
    let mut out = Vec::with_capacity(CHUNK as usize * 200);
    let result: Result<(), ClientError> = async {
        loop {
            let confirmed = shared.confirmed_of[slot].load(Ordering::Relaxed);
            let mut room_left = window.saturating_sub(seq.saturating_sub(confirmed + bounced));
            out.clear();
            while seq < share && room_left > 0 && out.len() < CHUNK as usize * 200 {
                seq += 1;
                room_left -= 1;
                out.extend_from_slice(message(&to, ty, me, seq).as_bytes());
            }
            if !out.is_empty() {
                let added = out.len() as u64;
                conn.send(&out).await?;
                shared.sent_bytes.fetch_add(added, Ordering::Relaxed);
            }
            // What came back: bounces, and a room's reflections.
            while let Some(frame) = conn.next_frame()? {
                match frame {
                    Frame::Element(a, b) => {
                        let el = conn.bytes(a, b);
                        if is_error_message(el) {
                            // Only this sender's messages come back to it.
                            bounced += 1;
                            shared.bounced.fetch_add(1, Ordering::Relaxed);
                        } else if room
                            && let Some(m) = mark(el)
                            && m.sender == me
                        {
                            shared.confirmed_of[slot].fetch_add(1, Ordering::Relaxed);
                            shared.confirmed.fetch_add(1, Ordering::Relaxed);
                            shared
                                .stanza_bytes
                                .fetch_add((b - a) as u64, Ordering::Relaxed);
                            shared.last_ns.fetch_max(now_ns(), Ordering::Relaxed);
                        }
                    }
                    Frame::End => return Err(ClientError::Closed("filling")),
                    Frame::Header(..) => {}
                }
            }
            let done = shared.confirmed_of[slot].load(Ordering::Relaxed) + bounced;
            if seq >= share && done >= share {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout("filling (--max-phase-seconds)"));
            }
            // Sleep until input, a confirmation from the owner, or 50 ms.
            let unconfirmed =
                seq.saturating_sub(shared.confirmed_of[slot].load(Ordering::Relaxed) + bounced);
            let full = seq >= share || unconfirmed >= window;
            if full {
                future::or(
                    async { conn.fill().await.map(|_| ()) },
                    future::or(
                        async {
                            let _ = wait.recv().await;
                            Ok(())
                        },
                        async {
                            smol::Timer::after(Duration::from_millis(50)).await;
                            Ok(())
                        },
                    ),
                )
                .await?;
            } else if let Some(r) = future::poll_once(conn.fill()).await {
                r?;
            }
        }
    }
    .await;
    shared.sent.fetch_add(seq, Ordering::Relaxed);
    match result {
        Ok(()) => (Some(conn), Ok(())),
        Err(e @ ClientError::Timeout(_)) => (Some(conn), Err(e)),
        Err(e) => (None, Err(e)),
    }
}

/// The owner's connection during a 1:1 fill: counts each sender's
/// messages as they arrive and wakes the senders, until `done` closes.
async fn read_owner(
    mut conn: Conn,
    shared: Arc<Shared>,
    done: smol::channel::Receiver<()>,
) -> (Option<Conn>, Result<(), ClientError>) {
    let k = shared.confirmed_of.len();
    let mut touched = vec![false; k];
    let result: Result<(), ClientError> = async {
        loop {
            let mut any = false;
            while let Some(frame) = conn.next_frame()? {
                match frame {
                    Frame::Element(a, b) => {
                        let Some(m) = mark(conn.bytes(a, b)) else {
                            continue;
                        };
                        let Some(slot) = m
                            .sender
                            .checked_sub(shared.base)
                            .map(|s| s as usize)
                            .filter(|&s| s < k)
                        else {
                            continue;
                        };
                        shared.confirmed_of[slot].fetch_add(1, Ordering::Relaxed);
                        shared.confirmed.fetch_add(1, Ordering::Relaxed);
                        shared
                            .stanza_bytes
                            .fetch_add((b - a) as u64, Ordering::Relaxed);
                        touched[slot] = true;
                        any = true;
                    }
                    Frame::End => return Err(ClientError::Closed("owner")),
                    Frame::Header(..) => {}
                }
            }
            if any {
                shared.last_ns.fetch_max(now_ns(), Ordering::Relaxed);
                for (slot, t) in touched.iter_mut().enumerate() {
                    if std::mem::take(t) {
                        let _ = shared.wake[slot].try_send(());
                    }
                }
            }
            if !conn.fill_or_stop(&done).await? {
                return Ok(());
            }
        }
    }
    .await;
    match result {
        Ok(()) => (Some(conn), Ok(())),
        Err(e) => (None, Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_a_mark_the_owner_reads() {
        let m = message("a@b", "chat", 7, 42);
        let got = mark(m.as_bytes()).expect("marked");
        assert_eq!((got.sender, got.seq), (7, 42));
        let bounce = m.replace("type='chat'", "type='error'");
        assert!(is_error_message(bounce.as_bytes()));
        assert!(mark(bounce.as_bytes()).is_none());
    }
}
