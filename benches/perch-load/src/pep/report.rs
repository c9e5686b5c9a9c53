//! `pep`'s records for people: the table after a run, its rows in the
//! side-by-side comparison (`perch-load table`), and a table of the pep
//! figures with each server's ratio to the first one's.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::report_cells::{Row, fmt_cell, render, row};

fn f(r: &Value, path: &str) -> String {
    let mut v = r;
    for key in path.split('.') {
        v = &v[key];
    }
    match v {
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        // Counts are whole numbers; fmt_cell would write 10 as "10.0".
        _ if v.is_u64() || v.is_i64() => v.to_string(),
        _ => v.as_f64().map(fmt_cell).unwrap_or_else(|| "-".into()),
    }
}

/// Is this one of `pep`'s records?
pub fn is_pep(r: &Value) -> bool {
    r["scenario"]
        .as_str()
        .is_some_and(|s| s == "pep" || s.starts_with("pep_"))
}

/// The tables printed after a `pep` run.
pub fn table(records: &[&Value]) -> String {
    let of = |name: &'static str| records.iter().filter(move |r| r["scenario"] == name);
    let mut out = String::new();
    for r in of("pep_setup") {
        let _ = writeln!(
            out,
            "set-up ({}): {} accounts × {} contacts: {} of {} with subscription both, {} s",
            r["roster"].as_str().unwrap_or("-"),
            f(r, "accounts"),
            f(r, "contacts"),
            f(r, "both"),
            f(r, "both_expected"),
            f(r, "setup_s"),
        );
    }
    for r in of("pep_online") {
        let _ = writeln!(
            out,
            "online with caps: RSS {} KiB, {} KiB per account; {} disco#info queries answered",
            f(r, "rss_kib"),
            f(r, "kib_per_account"),
            f(r, "disco_answered"),
        );
    }
    for r in of("pep_nodes") {
        let _ = writeln!(
            out,
            "{} nodes of 1 item per account ({} publications accepted, {} refused): RSS {} KiB, \
             {} KiB per account (before: {}), {} KiB per account for the nodes",
            f(r, "nodes"),
            f(r, "published"),
            f(r, "publish_errors"),
            f(r, "rss_kib"),
            f(r, "kib_per_account"),
            f(r, "kib_per_account_before"),
            f(r, "kib_per_account_for_nodes"),
        );
    }
    for r in of("pep_warmup") {
        let _ = writeln!(
            out,
            "warm-up: {} of {} notifications after {} round(s); {} disco#info queries answered",
            f(r, "notifications"),
            f(r, "expected"),
            f(r, "rounds"),
            f(r, "disco_answered"),
        );
    }
    let mut rows = vec![
        [
            "rate",
            "published",
            "refused",
            "notifications",
            "expected",
            "duplicates",
            "notif/s",
            "publ/s",
            "p50 ms",
            "p99 ms",
            "CPU s/1000 notif",
            "chat CPU s/1000",
            "ratio",
            "chat at rate",
            "ratio",
        ]
        .map(String::from),
    ];
    for r in of("pep") {
        let summary = of("pep_summary").find(|s| s["rate"] == r["rate"]);
        let sf = |k: &str| summary.map(|s| f(s, k)).unwrap_or_else(|| "-".into());
        rows.push([
            f(r, "rate"),
            f(r, "published"),
            f(r, "publish_errors"),
            f(r, "notifications"),
            f(r, "expected"),
            f(r, "duplicates"),
            f(r, "notifications_per_s"),
            f(r, "publishes_per_s"),
            f(r, "latency.p50_ms"),
            f(r, "latency.p99_ms"),
            f(r, "server_cpu_s_per_1000"),
            sf("chat_cpu_s_per_1000"),
            sf("over_chat"),
            sf("chat_at_rate_cpu_s_per_1000"),
            sf("over_chat_at_rate"),
        ]);
    }
    if rows.len() > 1 {
        out.push_str(&render(&rows));
    }
    out
}

/// The comparison's rows for `pep` records, one group per rate.
pub(crate) fn rows(records: &[Value]) -> Vec<Row> {
    let mut v = Vec::new();
    if !records.iter().any(is_pep) {
        return v;
    }
    v.push(row(
        "pep set-up: contacts with subscription both / expected",
        "pep_setup",
        vec![],
        &["both", "both_expected"],
    ));
    v.push(row(
        "pep: KiB per account online with caps, no nodes",
        "pep_online",
        vec![],
        &["kib_per_account"],
    ));
    v.push(row(
        "pep: KiB per account with 10 nodes of 1 item / of it for the nodes",
        "pep_nodes",
        vec![],
        &["kib_per_account", "kib_per_account_for_nodes"],
    ));
    v.push(row(
        "  node publications accepted / refused",
        "pep_nodes",
        vec![],
        &["published", "publish_errors"],
    ));
    let mut rates: Vec<u64> = records
        .iter()
        .filter(|r| r["scenario"] == "pep")
        .filter_map(|r| r["rate"].as_u64())
        .collect();
    rates.sort_unstable();
    rates.dedup();
    for rate in rates {
        let at = || vec![("rate", json!(rate))];
        v.push(row(
            format!("pep at {rate} publications/s: notifications / expected / duplicates"),
            "pep",
            at(),
            &["notifications", "expected", "duplicates"],
        ));
        v.push(row(
            "  publications accepted / refused",
            "pep",
            at(),
            &["published", "publish_errors"],
        ));
        v.push(row(
            "  notifications/s / publications/s",
            "pep",
            at(),
            &["notifications_per_s", "publishes_per_s"],
        ));
        v.push(row(
            "  latency publish to notification p50 / p99 (ms)",
            "pep",
            at(),
            &["latency.p50_ms", "latency.p99_ms"],
        ));
        v.push(row(
            "  server CPU s per 1000 notifications",
            "pep",
            at(),
            &["server_cpu_s_per_1000"],
        ));
        v.push(row(
            "  chat CPU s per 1000 msgs (closed loop) / pep ÷ chat",
            "pep_summary",
            at(),
            &["chat_cpu_s_per_1000", "over_chat"],
        ));
        v.push(row(
            "  chat CPU s per 1000 msgs at the notification rate / pep ÷ chat",
            "pep_summary",
            at(),
            &["chat_at_rate_cpu_s_per_1000", "over_chat_at_rate"],
        ));
    }
    v
}

/// The figures of the pep records per server, with each server's ratio
/// to the first (medians over runs): printed by `perch-load table` after
/// the comparison when there are pep records.
pub fn ratios(records: &[Value], labels: &[String]) -> String {
    let pep: Vec<&Value> = records.iter().filter(|r| is_pep(r)).collect();
    if pep.is_empty() {
        return String::new();
    }
    let labels: Vec<&String> = labels
        .iter()
        .filter(|l| pep.iter().any(|r| r["label"].as_str() == Some(l.as_str())))
        .collect();
    let Some(first) = labels.first() else {
        return String::new();
    };
    let mut metrics: Vec<(String, &str, Option<u64>, &str)> = vec![
        (
            "KiB per account, 10 nodes of 1 item".into(),
            "pep_nodes",
            None,
            "kib_per_account",
        ),
        (
            "  of it for the nodes".into(),
            "pep_nodes",
            None,
            "kib_per_account_for_nodes",
        ),
    ];
    let mut rates: Vec<u64> = pep
        .iter()
        .filter(|r| r["scenario"] == "pep")
        .filter_map(|r| r["rate"].as_u64())
        .collect();
    rates.sort_unstable();
    rates.dedup();
    for rate in rates {
        metrics.push((
            format!("{rate} publ/s: server CPU s per 1000 notifications"),
            "pep",
            Some(rate),
            "server_cpu_s_per_1000",
        ));
        metrics.push((
            "  notifications/s".into(),
            "pep",
            Some(rate),
            "notifications_per_s",
        ));
        metrics.push((
            "  latency p99 (ms)".into(),
            "pep",
            Some(rate),
            "latency.p99_ms",
        ));
        metrics.push((
            "  pep ÷ chat (closed loop)".into(),
            "pep_summary",
            Some(rate),
            "over_chat",
        ));
        metrics.push((
            "  pep ÷ chat at the notification rate".into(),
            "pep_summary",
            Some(rate),
            "over_chat_at_rate",
        ));
    }
    let value = |label: &str, scenario: &str, rate: Option<u64>, path: &str| -> Option<f64> {
        let mut by_run: BTreeMap<String, f64> = BTreeMap::new();
        for r in &pep {
            if r["label"].as_str() != Some(label) || r["scenario"] != scenario {
                continue;
            }
            if let Some(rate) = rate
                && r["rate"].as_u64() != Some(rate)
            {
                continue;
            }
            let mut v = *r;
            for key in path.split('.') {
                v = &v[key];
            }
            if let Some(x) = v.as_f64() {
                by_run.insert(r["run"].as_str().unwrap_or("").to_string(), x);
            }
        }
        let mut xs: Vec<f64> = by_run.into_values().collect();
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(xs[n / 2]),
            _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
        }
    };
    let mut out = String::new();
    let heads: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                format!("{l} | {l} ÷ {first}")
            }
        })
        .collect();
    let _ = writeln!(out, "\n| pep (medians) | {} |", heads.join(" | "));
    let _ = writeln!(
        out,
        "|---|{}",
        "---|".repeat(2 * labels.len().saturating_sub(1) + 1)
    );
    for (title, scenario, rate, path) in &metrics {
        let base = value(first, scenario, *rate, path);
        let mut cells = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            let v = value(l, scenario, *rate, path);
            cells.push(v.map(fmt_cell).unwrap_or_default());
            if i > 0 {
                cells.push(match (v, base) {
                    // A ratio to nothing (or to a reading that fell) says nothing.
                    (Some(v), Some(b)) if b > 0.0 && v >= 0.0 => {
                        format!("{}×", fmt_cell(v / b))
                    }
                    _ => String::new(),
                });
            }
        }
        if cells.iter().any(|c| !c.is_empty()) {
            let _ = writeln!(out, "| {title} | {} |", cells.join(" | "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs() -> Vec<Value> {
        vec![
            json!({"scenario": "pep_setup", "label": "a", "roster": "subscribe", "accounts": 10,
                   "contacts": 4, "both": 40, "both_expected": 40, "setup_s": 1.5}),
            json!({"scenario": "pep_nodes", "label": "a", "nodes": 10, "rss_kib": 9000,
                   "kib_per_account": 900.0, "kib_per_account_before": 800.0,
                   "kib_per_account_for_nodes": 100.0}),
            json!({"scenario": "pep", "label": "a", "rate": 50, "published": 100,
                   "notifications": 500, "expected": 500, "notifications_per_s": 250.0,
                   "server_cpu_s_per_1000": 0.02, "latency": {"p50_ms": 1.0, "p99_ms": 3.0}}),
            json!({"scenario": "pep_summary", "label": "a", "rate": 50,
                   "chat_cpu_s_per_1000": 0.01, "over_chat": 2.0, "over_chat_at_rate": 1.25}),
            json!({"scenario": "pep", "label": "b", "rate": 50, "published": 100,
                   "notifications": 500, "expected": 500, "notifications_per_s": 200.0,
                   "server_cpu_s_per_1000": 0.1}),
            json!({"scenario": "pep_nodes", "label": "b", "kib_per_account": 450.0}),
        ]
    }

    #[test]
    fn tables_and_ratios() {
        let recs = recs();
        let refs: Vec<&Value> = recs.iter().filter(|r| r["label"] == "a").collect();
        let t = table(&refs);
        for needle in ["40 of 40", "100", "2.00", "1.25", "0.0200"] {
            assert!(t.contains(needle), "{needle}: {t}");
        }
        let titles: Vec<String> = rows(&recs).into_iter().map(|r| r.title).collect();
        assert!(titles.iter().any(|t| t.contains("pep at 50")), "{titles:?}");
        let r = ratios(&recs, &["a".to_string(), "b".to_string()]);
        assert!(r.contains("| pep (medians) | a | b | b ÷ a |"), "{r}");
        assert!(
            r.contains(
                "| 50 publ/s: server CPU s per 1000 notifications | 0.0200 | 0.10 | 5.00× |"
            ),
            "{r}"
        );
        assert!(
            r.contains("| KiB per account, 10 nodes of 1 item | 900 | 450 | 0.50× |"),
            "{r}"
        );
        assert!(ratios(&recs[..1], &["x".to_string()]).is_empty());
    }
}
