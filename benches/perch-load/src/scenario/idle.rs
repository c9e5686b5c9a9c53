//! `idle`: the server's resident memory at start and with 100 / 1 000 /
//! 10 000 idle authenticated clients (plaintext or TLS, `--tls`), and KiB
//! per connection: (RSS with N clients − RSS before any) ÷ N connected.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_lite::future;
use serde_json::json;

use crate::conn::Conn;
use crate::ctx::{Ctx, latency_json, merge, meter_json, round};

pub async fn run(ctx: &Ctx) {
    let mech = ctx
        .opts
        .mechanisms
        .first()
        .copied()
        .unwrap_or(crate::sasl::Mechanism::Plain);
    ctx.settle().await;
    let base = ctx.probe.snapshot();
    ctx.emit(
        "idle_baseline",
        merge(&[
            json!({"clients": 0, "tls": ctx.opts.tls.name()}),
            ctx.server_snapshot(),
        ]),
    );
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let alive = Arc::new(AtomicUsize::new(0));
    let mut holders = Vec::new();
    let mut prev = 0;
    for &n in &ctx.opts.steps {
        if n <= prev {
            continue;
        }
        ctx.log(&format!("idle: logging in clients {}..{n}", prev + 1));
        let batch = ctx.login_many(prev..n, mech, "idle").await;
        prev = n;
        let errors = batch.error_count();
        for conn in batch.conns {
            alive.fetch_add(1, Ordering::Relaxed);
            holders.push(ctx.ex.spawn(hold(conn, stop_rx.clone(), alive.clone())));
        }
        ctx.settle().await;
        smol::Timer::after(Duration::from_secs_f64(ctx.opts.idle_pause)).await;
        let live = alive.load(Ordering::Relaxed);
        let snap = ctx.probe.snapshot();
        let per_conn = match (base, snap) {
            (Some(b), Some(s)) if live > 0 => Some(round(
                (s.rss_kib as f64 - b.rss_kib as f64) / live as f64,
                2,
            )),
            _ => None,
        };
        let m = batch.meter;
        ctx.emit(
            "idle",
            merge(&[
                json!({
                    "clients": n, "connected": live, "tls": ctx.opts.tls.name(), "mech": mech.name(),
                    "login_errors": errors,
                    "error_samples": batch.errors.iter().take(3).collect::<Vec<_>>(),
                    "kib_per_conn": per_conn,
                    "logins_per_s": if m.wall_s > 0.0 { round(batch.setup.count() as f64 / m.wall_s, 1) } else { 0.0 },
                    "setup_ms": latency_json(&batch.setup),
                    "peak_rss_kib": batch.peak_rss_kib,
                }),
                ctx.server_snapshot(),
                meter_json(&m),
            ]),
        );
        if errors > n / 10 {
            ctx.log(&format!(
                "idle: {errors} login errors at {n}; no larger steps"
            ));
            break;
        }
    }
    drop(stop_tx);
    for h in holders {
        h.await;
    }
    ctx.settle().await;
    ctx.emit(
        "idle_after_disconnect",
        merge(&[
            json!({"clients": 0, "tls": ctx.opts.tls.name()}),
            ctx.server_snapshot(),
        ]),
    );
}

/// Keeps an authenticated client connected, reading whatever the server
/// sends (keepalives), until told to stop or the server closes it.
pub async fn hold(mut conn: Conn, stop: smol::channel::Receiver<()>, alive: Arc<AtomicUsize>) {
    let server_closed = future::or(
        async {
            while conn.discard().await.is_ok() {}
            true
        },
        async {
            let _ = stop.recv().await;
            false
        },
    )
    .await;
    alive.fetch_sub(1, Ordering::Relaxed);
    if !server_closed {
        conn.close().await;
    }
}
