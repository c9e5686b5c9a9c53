//! `mam`'s records for people: the table after a run, and its rows in the
//! side-by-side comparison (`perch-load table`).

use serde_json::{Value, json};

use crate::report_cells::{Row, fmt_cell, render, row};

fn f(r: &Value, path: &str) -> String {
    let mut v = r;
    for key in path.split('.') {
        v = &v[key];
    }
    v.as_f64().map(fmt_cell).unwrap_or_else(|| "-".into())
}

fn t(r: &Value, key: &str) -> String {
    match &r[key] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// The tables printed after a `mam` run.
pub fn table(records: &[&Value]) -> String {
    let of = |name: &'static str| records.iter().filter(move |r| r["scenario"] == name);
    let mut out = String::new();
    let mut rows = vec![
        [
            "phase",
            "archive",
            "size",
            "senders",
            "archived",
            "msg/s",
            "CPU s/1000",
            "fsyncs/1000",
        ]
        .map(String::from),
    ];
    for r in of("mam_fill").chain(of("mam_write")) {
        rows.push([
            t(r, "phase"),
            t(r, "archive"),
            t(r, "size"),
            t(r, "senders"),
            t(r, "confirmed"),
            f(r, "msgs_per_s"),
            f(r, "server_cpu_s_per_1000"),
            f(r, "fsyncs_per_1000"),
        ]);
    }
    if rows.len() > 1 {
        out.push_str(&render(&rows));
    }
    let mut rows = vec![
        [
            "size",
            "user msgs",
            "room msgs",
            "data bytes",
            "bytes/msg",
            "stanza bytes",
            "ratio",
        ]
        .map(String::from),
    ];
    for r in of("mam_size") {
        rows.push([
            t(r, "size"),
            t(r, "user_archived"),
            t(r, "room_archived"),
            t(r, "db_bytes"),
            f(r, "db_bytes_per_msg"),
            f(r, "stanza_bytes"),
            f(r, "db_over_stanza"),
        ]);
    }
    if rows.len() > 1 {
        out.push_str(&render(&rows));
    }
    let mut rows = vec![
        [
            "size", "archive", "query", "n", "CPU ms", "sched ms", "p50 ms", "p99 ms", "results",
        ]
        .map(String::from),
    ];
    for r in of("mam_query") {
        rows.push([
            t(r, "size"),
            t(r, "archive"),
            t(r, "kind"),
            t(r, "queries"),
            f(r, "server_cpu_ms"),
            f(r, "server_cpu_ms_sched"),
            f(r, "latency.p50_ms"),
            f(r, "latency.p99_ms"),
            f(r, "results_per_query"),
        ]);
    }
    if rows.len() > 1 {
        out.push_str(&render(&rows));
    }
    out
}

/// The comparison's rows for `mam` records, one group per size found.
pub(crate) fn rows(records: &[Value]) -> Vec<Row> {
    let mut sizes: Vec<u64> = records
        .iter()
        .filter(|r| r["scenario"] == "mam_query" || r["scenario"] == "mam_size")
        .filter_map(|r| r["size"].as_u64())
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut v = Vec::new();
    for &size in &sizes {
        let at = || vec![("size", json!(size))];
        v.push(row(
            format!("archive at {size}: data bytes per archived message / stanza bytes"),
            "mam_size",
            at(),
            &["db_bytes_per_msg", "stanza_bytes"],
        ));
        for archive in ["user", "room"] {
            for kind in ["newest", "with", "after_id", "since", "count"] {
                let filter = || {
                    vec![
                        ("size", json!(size)),
                        ("archive", json!(archive)),
                        ("kind", json!(kind)),
                    ]
                };
                v.push(row(
                    format!("  {archive} {kind}: server CPU ms per query (sched)"),
                    "mam_query",
                    filter(),
                    &["server_cpu_ms_sched"],
                ));
                v.push(row(
                    "    latency p50 / p99 (ms)",
                    "mam_query",
                    filter(),
                    &["latency.p50_ms", "latency.p99_ms"],
                ));
            }
        }
    }
    for archive in ["user", "room"] {
        v.push(row(
            format!("archive fill ({archive}): archived msg/s"),
            "mam_fill",
            vec![("archive", json!(archive))],
            &["msgs_per_s"],
        ));
        v.push(row(
            "  server CPU s per 1000 archived",
            "mam_fill",
            vec![("archive", json!(archive))],
            &["server_cpu_s_per_1000"],
        ));
    }
    let mut writes: Vec<(String, u64)> = records
        .iter()
        .filter(|r| r["scenario"] == "mam_write")
        .filter_map(|r| Some((r["archive"].as_str()?.to_string(), r["senders"].as_u64()?)))
        .collect();
    writes.sort();
    writes.dedup();
    for (archive, senders) in writes {
        let filter = || vec![("archive", json!(archive)), ("senders", json!(senders))];
        v.push(row(
            format!("archive writes ({archive}, {senders} senders): fsyncs per 1000 / msg/s"),
            "mam_write",
            filter(),
            &["fsyncs_per_1000", "msgs_per_s"],
        ));
        v.push(row(
            "  server CPU s per 1000 archived",
            "mam_write",
            filter(),
            &["server_cpu_s_per_1000"],
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_every_record_kind() {
        let recs = [
            json!({"scenario": "mam_fill", "phase": "fill", "archive": "user", "size": 10,
                   "senders": 2, "confirmed": 10, "msgs_per_s": 1000.0,
                   "server_cpu_s_per_1000": 0.05, "fsyncs_per_1000": 3.0}),
            json!({"scenario": "mam_size", "size": 10, "user_archived": 10, "room_archived": 10,
                   "db_bytes": 100000, "db_bytes_per_msg": 400.0, "stanza_bytes": 300.0,
                   "db_over_stanza": 1.33}),
            json!({"scenario": "mam_query", "size": 10, "archive": "room", "kind": "with",
                   "queries": 9, "server_cpu_ms": 0.5, "server_cpu_ms_sched": 0.41,
                   "latency": {"p50_ms": 0.7, "p99_ms": 2.0}, "results_per_query": 10.0}),
            json!({"scenario": "mam_write", "phase": "write", "archive": "user", "size": null,
                   "senders": 50, "confirmed": 100, "fsyncs_per_1000": 4.0}),
        ];
        let refs: Vec<&Value> = recs.iter().collect();
        let text = table(&refs);
        for needle in ["fill", "write", "1.33", "0.41", "with", "400"] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        let titles: Vec<String> = rows(&recs).into_iter().map(|r| r.title).collect();
        assert!(
            titles.iter().any(|t| t.contains("archive at 10")),
            "{titles:?}"
        );
        assert!(
            titles.iter().any(|t| t.contains("user, 50 senders")),
            "{titles:?}"
        );
    }
}
