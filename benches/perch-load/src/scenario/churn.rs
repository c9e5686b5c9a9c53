//! `churn`: a chat phase, then N clients (5 000 by default) log in, stay
//! connected together, and leave; then the same chat phase again. A server
//! that keeps per-session garbage gets slower or bigger afterwards (Prosody
//! spends about 4× the CPU per message after such a wave); the summary
//! gives the after/before ratios.

use serde_json::json;

use crate::ctx::{Ctx, latency_json, merge, meter_json, round};

use super::chat;

pub async fn run(ctx: &Ctx) {
    let Some(mut conns) = chat::login_pairs(ctx, "churn").await else {
        return;
    };
    let pairs = ctx.opts.pairs;
    let o = &ctx.opts;
    ctx.settle().await;
    let rss_before = ctx.probe.snapshot().map(|s| s.rss_kib);
    let before = chat::phase(
        ctx,
        &mut conns,
        pairs,
        o.window,
        o.max_msgs,
        Some(o.seconds),
        None,
        "chat_before_churn",
    )
    .await;
    ctx.settle().await;
    let n = o.clients_or_default();
    let mech = o
        .mechanisms
        .first()
        .copied()
        .unwrap_or(crate::sasl::Mechanism::Plain);
    ctx.log(&format!("churn: {n} clients log in, then leave"));
    // A resource of their own: the chat clients (same accounts) must not be replaced.
    let batch = ctx.login_many(0..n, mech, "wave").await;
    let ok = batch.conns.len();
    let rss_full = ctx.probe.snapshot().map(|s| s.rss_kib);
    let m = batch.meter;
    ctx.close_all(batch.conns).await;
    ctx.settle().await;
    let rss_after = ctx.probe.snapshot().map(|s| s.rss_kib);
    ctx.emit(
        "churn",
        merge(&[
            json!({
                "clients": n, "ok": ok, "errors": batch.errors.len(),
                "error_samples": batch.errors.iter().take(3).collect::<Vec<_>>(),
                "logins_per_s": if m.wall_s > 0.0 { round(ok as f64 / m.wall_s, 1) } else { 0.0 },
                "setup_ms": latency_json(&batch.setup),
                "peak_rss_kib": batch.peak_rss_kib,
                "rss_kib_before": rss_before, "rss_kib_all_connected": rss_full,
                "rss_kib_after_leaving": rss_after,
            }),
            meter_json(&m),
        ]),
    );
    let after = chat::phase(
        ctx,
        &mut conns,
        pairs,
        o.window,
        o.max_msgs,
        Some(o.seconds),
        None,
        "chat_after_churn",
    )
    .await;
    let ratio = |key: &str| match (before[key].as_f64(), after[key].as_f64()) {
        (Some(b), Some(a)) if b > 0.0 => Some(round(a / b, 2)),
        _ => None,
    };
    ctx.emit(
        "churn_summary",
        json!({
            "clients": n,
            "cpu_per_msg_after_over_before": ratio("server_cpu_s_per_1000"),
            "msgs_per_s_after_over_before": ratio("msgs_per_s"),
            "rss_kib_before": rss_before, "rss_kib_after_leaving": rss_after,
        }),
    );
    ctx.close_all(conns).await;
}
