//! `login`: N clients connect, authenticate, bind and send initial
//! presence, C at a time; logins per second, set-up latency, server CPU per
//! login. SCRAM passes run twice: the first (reported as `login_cold`) pays
//! the client's PBKDF2 for every account, the second finds the salted
//! passwords cached, so it times the server rather than this tool.

use serde_json::json;

use crate::ctx::{Ctx, latency_json, merge, meter_json, round};
use crate::procfs::Meter;
use crate::sasl::Mechanism;

pub async fn run(ctx: &Ctx) {
    let n = ctx.opts.clients_or_default();
    for &mech in &ctx.opts.mechanisms {
        let passes: &[&str] = match mech {
            Mechanism::Plain => &["login"],
            _ => &["login_cold", "login"],
        };
        for &name in passes {
            ctx.settle().await;
            ctx.log(&format!(
                "{name} {mech}: {n} clients, {} at a time",
                ctx.opts.concurrency
            ));
            let batch = ctx.login_many(0..n, mech, "login").await;
            let ok = batch.conns.len();
            let m = batch.meter;
            let per_s = if m.wall_s > 0.0 {
                ok as f64 / m.wall_s
            } else {
                0.0
            };
            // Milliseconds per client that logged in (and later left).
            let per_client = |cpu: f64| (ok > 0).then(|| round(1000.0 * cpu / ok as f64, 3));
            ctx.emit(
                name,
                merge(&[
                    json!({
                        "mech": mech.name(), "tls": ctx.opts.tls.name(), "clients": n,
                        "concurrency": ctx.opts.concurrency, "ok": ok,
                        "errors": batch.error_count(),
                        "error_samples": batch.errors.iter().take(3).collect::<Vec<_>>(),
                        "logins_per_s": round(per_s, 1),
                        "setup_ms": latency_json(&batch.setup),
                        "server_cpu_ms_per_login": per_client(m.server_cpu_s),
                        "server_kernel_ms_per_login": per_client(m.server_kernel_cpu_s),
                        "tool_cpu_ms_per_login": per_client(m.tool_cpu_s),
                        "peak_rss_kib": batch.peak_rss_kib,
                    }),
                    meter_json(&m),
                ]),
            );
            // What the server spends ending those sessions: until it goes
            // quiet again (which adds up to half a second of idle CPU).
            let logout = Meter::start(&ctx.probe);
            ctx.close_all(batch.conns).await;
            ctx.settle().await;
            let m = logout.stop();
            ctx.emit(
                &format!("{name}_logout"),
                merge(&[
                    json!({
                        "mech": mech.name(), "tls": ctx.opts.tls.name(), "clients": ok,
                        "server_cpu_ms_per_logout": per_client(m.server_cpu_s),
                        "server_kernel_ms_per_logout": per_client(m.server_kernel_cpu_s),
                    }),
                    meter_json(&m),
                ]),
            );
        }
    }
}
