//! Tables for people: a one-line-per-record table after a run, and the
//! side-by-side comparison (`perch-load table FILES…`): metrics as rows,
//! servers as columns, each cell the median over runs with its spread.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::report_cells::{Row, fmt_num, render, row};

fn get<'a>(rec: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(rec, |v, key| v.get(key))
}

fn num(rec: &Value, path: &str) -> Option<f64> {
    get(rec, path).and_then(Value::as_f64)
}

fn s(rec: &Value, key: &str) -> String {
    match rec.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// "p50 / max" of a latency summary, in ms.
fn p50_max(rec: &Value, lat: &str) -> String {
    match (
        num(rec, &format!("{lat}.p50_ms")),
        num(rec, &format!("{lat}.max_ms")),
    ) {
        (Some(p50), Some(max)) => format!("{} / {}", fmt_num(p50), fmt_num(max)),
        _ => "-".into(),
    }
}

/// The `guess` records: their counts do not fit the columns of the others.
fn guess_table(records: &[&Value]) -> String {
    let mut rows = vec![
        [
            "guess mode",
            "clients",
            "checked",
            "refused",
            "errors",
            "unanswered",
            "checked/min",
            "answer ms checked p50 / max",
            "refused p50 / max",
        ]
        .map(String::from),
    ];
    for r in records {
        // Counts are whole numbers; fmt_num would write 1 as "1.00".
        let n = |k: &str| {
            num(r, k)
                .map(|v| {
                    if v.fract() == 0.0 {
                        format!("{v:.0}")
                    } else {
                        fmt_num(v)
                    }
                })
                .unwrap_or_default()
        };
        rows.push([
            s(r, "mode"),
            n("clients"),
            n("checked"),
            n("refused"),
            n("errors"),
            n("unanswered"),
            n("checked_per_minute"),
            p50_max(r, "checked_answer_ms"),
            p50_max(r, "refused_answer_ms"),
        ]);
    }
    render(&rows)
}

/// The `offline` records: two phases, timed in seconds, not a rate.
fn offline_table(records: &[&Value]) -> String {
    let mut rows = vec![
        [
            "offline msgs",
            "accepted s",
            "server CPU s",
            "bounced",
            "delivered",
            "delivered s",
        ]
        .map(String::from),
    ];
    for r in records {
        let n = |k: &str| num(r, k).map(|v| format!("{v:.0}")).unwrap_or_default();
        let f = |k: &str| num(r, k).map(fmt_num).unwrap_or_else(|| "-".into());
        rows.push([
            n("messages"),
            f("accepted_s"),
            f("server_cpu_s"),
            n("bounced"),
            n("delivered"),
            f("delivered_s"),
        ]);
    }
    render(&rows)
}

/// One line per record, for the end of a run.
pub fn run_table(records: &[Value]) -> String {
    let (guesses, records): (Vec<&Value>, Vec<&Value>) =
        records.iter().partition(|r| r["scenario"] == "guess");
    let (offline, records): (Vec<&Value>, Vec<&Value>) = records
        .into_iter()
        .partition(|r| r["scenario"] == "offline");
    let (mam, records): (Vec<&Value>, Vec<&Value>) = records.into_iter().partition(|r| {
        r["scenario"]
            .as_str()
            .is_some_and(|s| s.starts_with("mam_"))
    });
    let (pep, records): (Vec<&Value>, Vec<&Value>) = records
        .into_iter()
        .partition(|r| crate::pep::report::is_pep(r));
    let mut out = String::new();
    if !records.is_empty() {
        out.push_str(&main_table(&records));
    }
    if !guesses.is_empty() {
        out.push_str(&guess_table(&guesses));
    }
    if !offline.is_empty() {
        out.push_str(&offline_table(&offline));
    }
    if !mam.is_empty() {
        out.push_str(&crate::mam::report::table(&mam));
    }
    if !pep.is_empty() {
        out.push_str(&crate::pep::report::table(&pep));
    }
    out
}

fn main_table(records: &[&Value]) -> String {
    let mut rows = vec![
        [
            "scenario",
            "params",
            "rate",
            "p50 ms",
            "p99 ms",
            "server CPU",
            "peak RSS KiB",
            "tool CPU",
        ]
        .map(String::from),
    ];
    for r in records {
        let scenario = s(r, "scenario");
        let transport = match r.get("transport").and_then(Value::as_str) {
            Some(t) if t != "tcp" => Some(format!("transport={t}")),
            _ => None,
        };
        let params = [
            "mech",
            "tls",
            "size_mib",
            "clients",
            "pairs",
            "window",
            "occupants",
            "senders",
        ]
        .iter()
        .filter_map(|k| {
            r.get(*k)
                .filter(|v| !v.is_null())
                .map(|v| format!("{k}={}", v.to_string().trim_matches('"')))
        })
        .chain(transport)
        .collect::<Vec<_>>()
        .join(" ");
        let rate = if let (Some(put), Some(get)) =
            (num(r, "put_mib_per_s"), num(r, "get_mib_per_s"))
        {
            format!("PUT {} / GET {} MiB/s", fmt_num(put), fmt_num(get))
        } else if let Some(v) = num(r, "logins_per_s").filter(|_| scenario.starts_with("login")) {
            format!("{} logins/s", fmt_num(v))
        } else if let Some(v) = num(r, "msgs_per_s") {
            format!("{} msg/s", fmt_num(v))
        } else if let Some(v) = num(r, "deliveries_per_s") {
            format!("{} deliveries/s", fmt_num(v))
        } else if let Some(v) = num(r, "kib_per_conn") {
            format!("{} KiB/conn", fmt_num(v))
        } else if let Some(v) = num(r, "per_s") {
            format!("{} /s", fmt_num(v))
        } else if let Some(v) = num(r, "cpu_per_msg_after_over_before") {
            format!("CPU/msg ×{}", fmt_num(v))
        } else {
            String::new()
        };
        let lat = ["fanout_latency", "latency", "setup_ms"]
            .iter()
            .find(|k| r.get(**k).is_some())
            .copied()
            .unwrap_or("latency");
        let pct = |q: &str| {
            num(r, &format!("{lat}.{q}"))
                .map(fmt_num)
                .unwrap_or_default()
        };
        let kernel = [
            "server_kernel_ms_per_login",
            "server_kernel_ms_per_logout",
            "server_kernel_s_per_1000",
        ]
        .iter()
        .find_map(|k| num(r, k))
        .map(|v| format!(" ({} kernel)", fmt_num(v)))
        .unwrap_or_default();
        let cpu = if let (Some(put), Some(get)) =
            (num(r, "put_server_cpu_s"), num(r, "get_server_cpu_s"))
        {
            format!("PUT {} / GET {} s", fmt_num(put), fmt_num(get))
        } else if let Some(v) = num(r, "server_cpu_ms_per_login") {
            format!("{} ms/login{kernel}", fmt_num(v))
        } else if let Some(v) = num(r, "server_cpu_ms_per_logout") {
            format!("{} ms/logout{kernel}", fmt_num(v))
        } else if let Some(v) = num(r, "server_cpu_s_per_1000") {
            format!("{} s/1000{kernel}", fmt_num(v))
        } else {
            num(r, "server_cpu_s")
                .map(|v| format!("{} s", fmt_num(v)))
                .unwrap_or_default()
        };
        let rss = ["peak_rss_kib", "rss_kib", "put_peak_rss_kib"]
            .iter()
            .find_map(|k| num(r, k))
            .map(fmt_num)
            .unwrap_or_default();
        let tool = num(r, "tool_cpu_util")
            .map(|v| format!("{} cores", fmt_num(v)))
            .unwrap_or_default();
        rows.push([
            scenario,
            params,
            rate,
            pct("p50_ms"),
            pct("p99_ms"),
            cpu,
            rss,
            tool,
        ]);
    }
    render(&rows)
}

fn rows(records: &[Value]) -> Vec<Row> {
    use serde_json::json;
    let mut v = vec![
        row(
            "start-up to first stream features (s)",
            "startup",
            vec![],
            &["startup_s"],
        ),
        row("RSS after start (KiB)", "startup", vec![], &["rss_kib"]),
    ];
    for (tls, ws) in [
        ("none", false),
        ("direct", false),
        ("starttls", false),
        ("none", true),
    ] {
        let t = match (tls, ws) {
            (_, true) => "websocket",
            ("none", _) => "plaintext",
            _ => tls,
        };
        let f = |more: Option<u64>| {
            let mut f = vec![("tls", json!(tls))];
            if ws {
                f.push(("transport", json!("ws")));
            }
            if let Some(n) = more {
                f.push(("clients", json!(n)));
            }
            f
        };
        v.push(row(
            format!("idle {t}: RSS before clients (KiB)"),
            "idle_baseline",
            f(None),
            &["rss_kib"],
        ));
        let mut steps: Vec<u64> = records
            .iter()
            .filter(|r| r["scenario"] == "idle" && r["tls"] == tls && is_ws(r) == ws)
            .filter_map(|r| r["clients"].as_u64())
            .collect();
        steps.sort_unstable();
        steps.dedup();
        for n in steps {
            v.push(row(
                format!("idle {t}: RSS with {n} clients (KiB)"),
                "idle",
                f(Some(n)),
                &["rss_kib"],
            ));
            v.push(row(
                format!("  KiB per connection at {n}"),
                "idle",
                f(Some(n)),
                &["kib_per_conn"],
            ));
        }
        v.push(row(
            format!("idle {t}: RSS after all left (KiB)"),
            "idle_after_disconnect",
            f(None),
            &["rss_kib"],
        ));
    }
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let f = || vec![("mech", json!(mech)), ("tls", json!("none"))];
        v.push(row(
            format!("login {mech}: logins/s"),
            "login",
            f(),
            &["logins_per_s"],
        ));
        v.push(row(
            "  set-up latency p50 / p99 (ms)",
            "login",
            f(),
            &["setup_ms.p50_ms", "setup_ms.p99_ms"],
        ));
        v.push(row(
            "  server CPU per login (ms)",
            "login",
            f(),
            &["server_cpu_ms_per_login"],
        ));
        v.push(row(
            "    of it in the kernel (ms)",
            "login",
            f(),
            &["server_kernel_ms_per_login"],
        ));
        v.push(row(
            "  server CPU per logout (ms), of it in the kernel",
            "login_logout",
            f(),
            &["server_cpu_ms_per_logout", "server_kernel_ms_per_logout"],
        ));
    }
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let f = || vec![("mech", json!(mech)), ("transport", json!("ws"))];
        v.push(row(
            format!("login {mech} over WebSocket: logins/s"),
            "login",
            f(),
            &["logins_per_s"],
        ));
        v.push(row(
            "  server CPU per login (ms)",
            "login",
            f(),
            &["server_cpu_ms_per_login"],
        ));
    }
    v.push(row(
        "chat unloaded latency p50 / p99 (ms), 1 pair",
        "chat_latency",
        vec![],
        &["latency.p50_ms", "latency.p99_ms"],
    ));
    v.push(row(
        "chat: delivered msg/s",
        "chat",
        vec![],
        &["msgs_per_s"],
    ));
    v.push(row(
        "  latency under load p50 / p99 (ms)",
        "chat",
        vec![],
        &["latency.p50_ms", "latency.p99_ms"],
    ));
    v.push(row(
        "  server CPU s per 1000 msgs",
        "chat",
        vec![],
        &["server_cpu_s_per_1000"],
    ));
    v.push(row(
        "    of it in the kernel (s)",
        "chat",
        vec![],
        &["server_kernel_s_per_1000"],
    ));
    v.push(row(
        "  server peak RSS (KiB)",
        "chat",
        vec![],
        &["peak_rss_kib"],
    ));
    v.push(row(
        "  tool CPU (cores busy)",
        "chat",
        vec![],
        &["tool_cpu_util"],
    ));
    v.push(row(
        "chat with stream management (XEP-0198): delivered msg/s",
        "chat_sm",
        vec![],
        &["msgs_per_s"],
    ));
    v.push(row(
        "  latency under load p50 / p99 (ms)",
        "chat_sm",
        vec![],
        &["latency.p50_ms", "latency.p99_ms"],
    ));
    v.push(row(
        "  server CPU s per 1000 msgs",
        "chat_sm",
        vec![],
        &["server_cpu_s_per_1000"],
    ));
    v.push(row(
        "    of it in the kernel (s)",
        "chat_sm",
        vec![],
        &["server_kernel_s_per_1000"],
    ));
    let ws = || vec![("transport", json!("ws"))];
    v.push(row(
        "chat over WebSocket: unloaded latency p50 / p99 (ms), 1 pair",
        "chat_latency",
        ws(),
        &["latency.p50_ms", "latency.p99_ms"],
    ));
    v.push(row(
        "chat over WebSocket: delivered msg/s",
        "chat",
        ws(),
        &["msgs_per_s"],
    ));
    v.push(row(
        "  latency under load p50 / p99 (ms)",
        "chat",
        ws(),
        &["latency.p50_ms", "latency.p99_ms"],
    ));
    v.push(row(
        "  server CPU s per 1000 msgs",
        "chat",
        ws(),
        &["server_cpu_s_per_1000"],
    ));
    v.push(row(
        "    of it in the kernel (s)",
        "chat",
        ws(),
        &["server_kernel_s_per_1000"],
    ));
    v.push(row(
        "  server peak RSS (KiB)",
        "chat",
        ws(),
        &["peak_rss_kib"],
    ));
    v.push(row(
        "  tool CPU (cores busy)",
        "chat",
        ws(),
        &["tool_cpu_util"],
    ));
    let mut sizes: Vec<u64> = records
        .iter()
        .filter(|r| r["scenario"] == "upload")
        .filter_map(|r| r["size_mib"].as_u64())
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    for n in sizes {
        let f = || vec![("size_mib", json!(n))];
        v.push(row(
            format!("upload {n} MiB (XEP-0363): PUT / GET MiB/s"),
            "upload",
            f(),
            &["put_mib_per_s", "get_mib_per_s"],
        ));
        v.push(row(
            "  server CPU s, PUT / GET",
            "upload",
            f(),
            &["put_server_cpu_s", "get_server_cpu_s"],
        ));
        v.push(row(
            "  server peak RSS growth (KiB), PUT / GET",
            "upload",
            f(),
            &["put_peak_rss_growth_kib", "get_peak_rss_growth_kib"],
        ));
        v.push(row(
            "  slot request (ms) / GET first byte (ms)",
            "upload",
            f(),
            &["slot_ms", "get_first_byte_ms"],
        ));
    }
    let mut hibernated: Vec<(u64, bool)> = records
        .iter()
        .filter(|r| r["scenario"] == "hibernate")
        .filter_map(|r| Some((r["clients"].as_u64()?, r["one_by_one"] == true)))
        .collect();
    hibernated.sort_unstable();
    hibernated.dedup();
    for (n, one_by_one) in hibernated {
        let f = || vec![("clients", json!(n)), ("one_by_one", json!(one_by_one))];
        let how = if one_by_one {
            ", each cut once logged in"
        } else {
            ""
        };
        v.push(row(
            format!("hibernate {n} sessions{how}: KiB per session connected / hibernated"),
            "hibernate",
            f(),
            &["kib_per_connected", "kib_per_hibernated"],
        ));
        v.push(row(
            "  resumes/s (median of batches) / logins/s",
            "hibernate",
            f(),
            &["resumes_per_s", "logins_per_s"],
        ));
    }
    let mut ks: Vec<u64> = records
        .iter()
        .filter(|r| {
            ["muc", "muc_latency", "floor"]
                .iter()
                .any(|s| r["scenario"] == *s)
        })
        .filter_map(|r| r["occupants"].as_u64())
        .collect();
    ks.sort_unstable();
    ks.dedup();
    for k in ks {
        let f = || vec![("occupants", json!(k))];
        v.push(row(
            format!("MUC K={k}: all joined (s)"),
            "muc_latency",
            f(),
            &["join_s"],
        ));
        v.push(row(
            "  unloaded fan-out latency p50 / p99 (ms)",
            "muc_latency",
            f(),
            &["fanout_latency.p50_ms", "fanout_latency.p99_ms"],
        ));
        v.push(row(
            "  unloaded: server CPU s per 1000 deliveries / in the kernel",
            "muc_latency",
            f(),
            &["server_cpu_s_per_1000", "server_kernel_s_per_1000"],
        ));
        v.push(row(
            "  no server (`floor`): K loopback writes p50 / p99 (ms)",
            "floor",
            f(),
            &["writes.p50_ms", "writes.p99_ms"],
        ));
        v.push(row(
            "  no server (`floor`): write to last read p50 / p99 (ms)",
            "floor",
            f(),
            &["fanout_latency.p50_ms", "fanout_latency.p99_ms"],
        ));
        v.push(row("  deliveries/s", "muc", f(), &["deliveries_per_s"]));
        v.push(row(
            "  send-to-last-delivery p50 / p99 (ms)",
            "muc",
            f(),
            &["fanout_latency.p50_ms", "fanout_latency.p99_ms"],
        ));
        v.push(row(
            "  server CPU s per 1000 deliveries",
            "muc",
            f(),
            &["server_cpu_s_per_1000"],
        ));
        v.push(row(
            "    of it in the kernel (s)",
            "muc",
            f(),
            &["server_kernel_s_per_1000"],
        ));
        v.push(row(
            "  server peak RSS (KiB)",
            "muc",
            f(),
            &["peak_rss_kib"],
        ));
    }
    v.push(row(
        "churn: chat msg/s before",
        "chat_before_churn",
        vec![],
        &["msgs_per_s"],
    ));
    v.push(row(
        "  server CPU s per 1000 msgs before",
        "chat_before_churn",
        vec![],
        &["server_cpu_s_per_1000"],
    ));
    v.push(row(
        "  logins/s of the churn wave",
        "churn",
        vec![],
        &["logins_per_s"],
    ));
    v.push(row(
        "  peak RSS during the wave (KiB)",
        "churn",
        vec![],
        &["peak_rss_kib"],
    ));
    v.push(row(
        "  RSS after the wave left (KiB)",
        "churn",
        vec![],
        &["rss_kib_after_leaving"],
    ));
    v.push(row(
        "  chat msg/s after",
        "chat_after_churn",
        vec![],
        &["msgs_per_s"],
    ));
    v.push(row(
        "  server CPU s per 1000 msgs after",
        "chat_after_churn",
        vec![],
        &["server_cpu_s_per_1000"],
    ));
    v.push(row(
        "  CPU per msg, after ÷ before",
        "churn_summary",
        vec![],
        &["cpu_per_msg_after_over_before"],
    ));
    for mode in ["interleaved", "parallel", "addresses"] {
        let f = || vec![("mode", json!(mode))];
        v.push(row(
            format!("guess {mode}: checked guesses per minute"),
            "guess",
            f(),
            &["checked_per_minute"],
        ));
        v.push(row(
            "  refused guesses / connection errors",
            "guess",
            f(),
            &["refused", "errors"],
        ));
        v.push(row(
            "  answer time p50 / max, checked (ms)",
            "guess",
            f(),
            &["checked_answer_ms.p50_ms", "checked_answer_ms.max_ms"],
        ));
        v.push(row(
            "  answer time p50 / max, refused (ms)",
            "guess",
            f(),
            &["refused_answer_ms.p50_ms", "refused_answer_ms.max_ms"],
        ));
    }
    let mut ns: Vec<u64> = records
        .iter()
        .filter(|r| r["scenario"] == "offline")
        .filter_map(|r| r["messages"].as_u64())
        .collect();
    ns.sort_unstable();
    ns.dedup();
    for n in ns {
        let f = || vec![("messages", json!(n))];
        v.push(row(
            format!("offline: {n} msgs to an offline contact, accepted (s)"),
            "offline",
            f(),
            &["accepted_s"],
        ));
        v.push(row(
            "  server CPU while accepting (s)",
            "offline",
            f(),
            &["server_cpu_s"],
        ));
        v.push(row(
            "  stored msgs delivered at login / in (s)",
            "offline",
            f(),
            &["delivered", "delivered_s"],
        ));
    }
    v.extend(crate::mam::report::rows(records));
    v.extend(crate::pep::report::rows(records));
    v
}

fn median(mut xs: Vec<f64>) -> Option<(f64, f64, usize)> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let m = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    let spread = if m != 0.0 {
        (xs[n - 1] - xs[0]) / 2.0 / m.abs() * 100.0
    } else {
        0.0
    };
    Some((m, spread, n))
}

/// The markdown comparison: medians over runs, "±x %" = half the range
/// over the median, when there was more than one run.
pub fn comparison(records: &[Value], order: &[String]) -> String {
    let mut labels: Vec<String> = order.to_vec();
    for r in records {
        let l = s(r, "label");
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "| metric | {} |", labels.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(labels.len()));
    for row in rows(records) {
        let mut cells = Vec::new();
        for label in &labels {
            let matching: Vec<&Value> = records
                .iter()
                .filter(|r| s(r, "label") == *label && r["scenario"] == row.scenario)
                .filter(|r| row.filter.iter().all(|(k, v)| r.get(*k) == Some(v)))
                // A row names WebSocket when it is about it; the others are TCP's.
                .filter(|r| {
                    is_ws(r)
                        == row
                            .filter
                            .iter()
                            .any(|(k, v)| *k == "transport" && v == "ws")
                })
                // A pass where nothing logged in (mechanism not offered) has no figures.
                .filter(|r| r.get("ok").and_then(Value::as_u64) != Some(0))
                .collect();
            // One value per run: the last record of each run tag.
            let mut by_run: BTreeMap<String, &Value> = BTreeMap::new();
            for r in matching {
                by_run.insert(s(r, "run"), r);
            }
            let parts: Vec<String> = row
                .paths
                .iter()
                .filter_map(|p| {
                    let xs: Vec<f64> = by_run.values().filter_map(|r| num(r, p)).collect();
                    median(xs).map(|(m, spread, n)| {
                        if n > 1 && spread >= 0.5 {
                            format!("{} (±{:.0}%)", fmt_num(m), spread)
                        } else {
                            fmt_num(m)
                        }
                    })
                })
                .collect();
            cells.push(parts.join(" / "));
        }
        if cells.iter().any(|c| !c.is_empty()) {
            let _ = writeln!(out, "| {} | {} |", row.title, cells.join(" | "));
        }
    }
    out.push_str(&ws_ratio_rows(records, &labels));
    out.push_str(&crate::pep::report::ratios(records, &labels));
    out
}

fn is_ws(r: &Value) -> bool {
    r.get("transport").and_then(Value::as_str) == Some("ws")
}

/// A figure measured over both transports, set as WebSocket ÷ TCP.
struct Ratio {
    key: String,
    title: String,
    scenario: &'static str,
    filter: Vec<(&'static str, Value)>,
    path: &'static str,
    /// The goal for the ratio, if it has one.
    goal: Option<f64>,
}

/// The ratios the records allow: KiB per idle plaintext connection at
/// each step, chat's server CPU per 1 000 messages (and its kernel share,
/// rate and latency), chat with stream management, and logins.
fn ratios_of(records: &[Value]) -> Vec<Ratio> {
    use serde_json::json;
    let has = |scenario: &str| {
        records
            .iter()
            .any(|r| r["scenario"] == scenario && is_ws(r))
    };
    let mut out = Vec::new();
    let mut steps: Vec<u64> = records
        .iter()
        .filter(|r| r["scenario"] == "idle" && r["tls"] == "none" && is_ws(r))
        .filter_map(|r| r["clients"].as_u64())
        .collect();
    steps.sort_unstable();
    steps.dedup();
    for n in steps {
        out.push(Ratio {
            key: format!("idle_kib_per_conn_{n}"),
            title: format!("KiB per idle connection at {n}"),
            scenario: "idle",
            filter: vec![("tls", json!("none")), ("clients", json!(n))],
            path: "kib_per_conn",
            goal: Some(1.25),
        });
    }
    for (scenario, name, goal) in [
        ("chat", "chat", Some(1.3)),
        ("chat_sm", "chat with stream management", None),
    ] {
        if !has(scenario) {
            continue;
        }
        out.push(Ratio {
            key: format!("{scenario}_cpu_per_1000"),
            title: format!("{name}: server CPU per 1000 msgs"),
            scenario,
            filter: vec![],
            path: "server_cpu_s_per_1000",
            goal,
        });
        out.push(Ratio {
            key: format!("{scenario}_kernel_per_1000"),
            title: format!("{name}: server CPU in the kernel per 1000 msgs"),
            scenario,
            filter: vec![],
            path: "server_kernel_s_per_1000",
            goal: None,
        });
        out.push(Ratio {
            key: format!("{scenario}_msgs_per_s"),
            title: format!("{name}: delivered msg/s"),
            scenario,
            filter: vec![],
            path: "msgs_per_s",
            goal: None,
        });
    }
    if has("chat_latency") {
        out.push(Ratio {
            key: "chat_unloaded_p50".into(),
            title: "chat: unloaded latency p50".into(),
            scenario: "chat_latency",
            filter: vec![],
            path: "latency.p50_ms",
            goal: None,
        });
    }
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        if records
            .iter()
            .any(|r| r["scenario"] == "login" && r["mech"] == mech && is_ws(r))
        {
            out.push(Ratio {
                key: format!("login_{mech}_cpu"),
                title: format!("login {mech}: server CPU per login"),
                scenario: "login",
                filter: vec![("mech", json!(mech)), ("tls", json!("none"))],
                path: "server_cpu_ms_per_login",
                goal: None,
            });
        }
    }
    out
}

/// The median over runs of `ratio`'s figure for `label` over one transport.
fn median_of(records: &[Value], label: &str, ratio: &Ratio, ws: bool) -> Option<f64> {
    let mut by_run: BTreeMap<String, &Value> = BTreeMap::new();
    for r in records.iter().filter(|r| {
        s(r, "label") == label
            && r["scenario"] == ratio.scenario
            && is_ws(r) == ws
            && ratio.filter.iter().all(|(k, v)| r.get(*k) == Some(v))
            && r.get("ok").and_then(Value::as_u64) != Some(0)
    }) {
        by_run.insert(s(r, "run"), r);
    }
    median(by_run.values().filter_map(|r| num(r, ratio.path)).collect()).map(|(m, _, _)| m)
}

/// Rows "WebSocket ÷ TCP" of the comparison (medians divided), for the
/// labels measured over both.
fn ws_ratio_rows(records: &[Value], labels: &[String]) -> String {
    let mut out = String::new();
    for ratio in ratios_of(records) {
        let cells: Vec<String> = labels
            .iter()
            .map(|l| {
                match (
                    median_of(records, l, &ratio, true),
                    median_of(records, l, &ratio, false),
                ) {
                    (Some(w), Some(t)) if t > 0.0 => fmt_num(w / t),
                    _ => String::new(),
                }
            })
            .collect();
        if cells.iter().any(|c| !c.is_empty()) {
            let goal = ratio
                .goal
                .map(|g| format!(" (goal ≤ {g})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| WebSocket ÷ TCP: {}{goal} | {} |",
                ratio.title.trim_start(),
                cells.join(" | ")
            );
        }
    }
    out
}

/// The `transport_ratio` record of a run over both transports: each
/// figure over TCP and over WebSocket, their ratio, and the goal if any.
pub fn transport_ratio(records: &[Value], label: &str, run: &str) -> Option<Value> {
    use serde_json::json;
    let mut ratios = serde_json::Map::new();
    for ratio in ratios_of(records) {
        let (Some(ws), Some(tcp)) = (
            median_of(records, label, &ratio, true),
            median_of(records, label, &ratio, false),
        ) else {
            continue;
        };
        let over = (tcp > 0.0).then(|| crate::ctx::round(ws / tcp, 3));
        ratios.insert(
            ratio.key.clone(),
            json!({
                "title": ratio.title.trim_start(), "tcp": tcp, "ws": ws, "ws_over_tcp": over,
                "goal": ratio.goal,
                "met": ratio.goal.zip(over).map(|(g, o)| o <= g),
            }),
        );
    }
    if ratios.is_empty() {
        return None;
    }
    let mut rec = json!({"scenario": "transport_ratio", "label": label, "ratios": ratios});
    if !run.is_empty() {
        rec["run"] = json!(run);
    }
    Some(rec)
}

/// The `transport_ratio` record as a table.
pub fn transport_ratio_table(rec: &Value) -> String {
    let mut rows = vec![["figure", "TCP", "WebSocket", "WS ÷ TCP", "goal"].map(String::from)];
    if let Some(ratios) = rec["ratios"].as_object() {
        for r in ratios.values() {
            let f = |k: &str| r[k].as_f64().map(fmt_num).unwrap_or_default();
            let goal = match (r["goal"].as_f64(), r["met"].as_bool()) {
                (Some(g), Some(true)) => format!("≤ {g}: met"),
                (Some(g), _) => format!("≤ {g}: missed"),
                _ => String::new(),
            };
            rows.push([s(r, "title"), f("tcp"), f("ws"), f("ws_over_tcp"), goal]);
        }
    }
    render(&rows)
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
