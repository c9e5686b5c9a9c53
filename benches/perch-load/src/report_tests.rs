//! Tests of `report.rs` (beside it, to keep that file short).

use super::*;
use serde_json::json;

#[test]
fn comparison_takes_medians_per_server() {
    let recs = vec![
        json!({"scenario": "chat", "label": "a", "run": "1", "msgs_per_s": 100.0}),
        json!({"scenario": "chat", "label": "a", "run": "2", "msgs_per_s": 300.0}),
        json!({"scenario": "chat", "label": "a", "run": "3", "msgs_per_s": 200.0}),
        json!({"scenario": "chat", "label": "b", "run": "1", "msgs_per_s": 50.0,
               "latency": {"p50_ms": 1.5, "p99_ms": 9.0}}),
    ];
    let t = comparison(&recs, &["b".to_string()]);
    assert!(t.starts_with("| metric | b | a |"), "{t}");
    assert!(
        t.contains("| chat: delivered msg/s | 50.0 | 200 (±50%) |"),
        "{t}"
    );
    assert!(t.contains("| 1.50 / 9.00 |  |"), "{t}");
    assert!(!t.contains("MUC"), "{t}");
    let one = run_table(&recs);
    assert!(one.contains("200 msg/s"), "{one}");
}

#[test]
fn idle_rows_are_kept_apart_by_transport() {
    let recs = vec![
        json!({"scenario": "idle_baseline", "label": "a", "tls": "direct", "rss_kib": 3000}),
        json!({"scenario": "idle", "label": "a", "tls": "direct", "clients": 10, "rss_kib": 3200,
               "kib_per_conn": 20.0}),
        json!({"scenario": "idle_after_disconnect", "label": "a", "tls": "direct", "rss_kib": 5000}),
        json!({"scenario": "idle_after_disconnect", "label": "a", "tls": "none", "rss_kib": 4000}),
    ];
    let t = comparison(&recs, &[]);
    assert!(
        t.contains("| idle direct: RSS after all left (KiB) | 5000 |"),
        "{t}"
    );
    assert!(
        t.contains("| idle plaintext: RSS after all left (KiB) | 4000 |"),
        "{t}"
    );
    assert!(t.contains("|   KiB per connection at 10 | 20.0 |"), "{t}");
}

#[test]
fn websocket_rows_ratios_and_upload() {
    let rec = |transport: &str, scenario: &str, extra: Value| {
        let mut r = json!({"scenario": scenario, "label": "p", "transport": transport});
        if let (Some(r), Value::Object(e)) = (r.as_object_mut(), extra) {
            r.extend(e);
        }
        r
    };
    let recs = vec![
        rec(
            "tcp",
            "idle",
            json!({"tls": "none", "clients": 100, "kib_per_conn": 8.0,
                                  "rss_kib": 3800}),
        ),
        rec(
            "ws",
            "idle",
            json!({"tls": "none", "clients": 100, "kib_per_conn": 9.0,
                                 "rss_kib": 3900}),
        ),
        rec(
            "tcp",
            "chat",
            json!({"server_cpu_s_per_1000": 0.01, "msgs_per_s": 1000.0}),
        ),
        rec(
            "ws",
            "chat",
            json!({"server_cpu_s_per_1000": 0.014, "msgs_per_s": 800.0}),
        ),
        // A record from before transports were recorded counts as TCP.
        json!({"scenario": "chat", "label": "q", "server_cpu_s_per_1000": 0.02}),
        json!({"scenario": "upload", "label": "p", "size_mib": 100, "put_mib_per_s": 500.0,
               "get_mib_per_s": 900.0, "put_peak_rss_growth_kib": 300,
               "get_peak_rss_growth_kib": 40}),
    ];
    let t = comparison(&recs, &[]);
    assert!(
        t.contains(
            "| idle plaintext: RSS with 100 clients (KiB) | 3800 |  |\n|   KiB per connection at 100 | 8.00 |  |"
        ),
        "{t}"
    );
    assert!(
        t.contains(
            "| idle websocket: RSS with 100 clients (KiB) | 3900 |  |\n|   KiB per connection at 100 | 9.00 |  |"
        ),
        "{t}"
    );
    assert!(t.contains("| chat: delivered msg/s | 1000 |  |"), "{t}");
    assert!(
        t.contains("| chat over WebSocket: delivered msg/s | 800 |  |"),
        "{t}"
    );
    assert!(
        t.contains("|   server CPU s per 1000 msgs | 0.0100 | 0.0200 |"),
        "{t}"
    );
    assert!(
        t.contains("| WebSocket ÷ TCP: KiB per idle connection at 100 (goal ≤ 1.25) | 1.12 |  |"),
        "{t}"
    );
    assert!(
        t.contains("| WebSocket ÷ TCP: chat: server CPU per 1000 msgs (goal ≤ 1.3) | 1.40 |  |"),
        "{t}"
    );
    assert!(
        t.contains("| upload 100 MiB (XEP-0363): PUT / GET MiB/s | 500 / 900 |"),
        "{t}"
    );
    let ratio = transport_ratio(&recs, "p", "1").expect("a ratio");
    assert_eq!(
        ratio["ratios"]["idle_kib_per_conn_100"]["ws_over_tcp"],
        1.125
    );
    assert_eq!(ratio["ratios"]["idle_kib_per_conn_100"]["met"], true);
    assert_eq!(ratio["ratios"]["chat_cpu_per_1000"]["met"], false);
    let table = transport_ratio_table(&ratio);
    assert!(table.contains("≤ 1.3: missed"), "{table}");
    let one = run_table(&recs);
    assert!(one.contains("transport=ws"), "{one}");
    assert!(one.contains("PUT 500 / GET 900 MiB/s"), "{one}");
    assert_eq!(transport_ratio(&recs[..1], "p", ""), None);
}

#[test]
fn kernel_share_of_server_cpu_is_shown_beside_the_total() {
    let recs = vec![
        json!({"scenario": "login", "label": "a", "mech": "SCRAM-SHA-1",
        "tls": "none", "logins_per_s": 3000.0, "server_cpu_ms_per_login": 0.3,
        "server_kernel_ms_per_login": 0.16}),
        json!({"scenario": "login_logout", "label": "a", "mech": "SCRAM-SHA-1",
        "tls": "none", "server_cpu_ms_per_logout": 0.09,
        "server_kernel_ms_per_logout": 0.05}),
    ];
    let t = comparison(&recs, &[]);
    assert!(t.contains("|   server CPU per login (ms) | 0.30 |"), "{t}");
    assert!(t.contains("|     of it in the kernel (ms) | 0.16 |"), "{t}");
    let one = run_table(&recs);
    assert!(one.contains("0.30 ms/login (0.16 kernel)"), "{one}");
    assert!(
        t.contains("|   server CPU per logout (ms), of it in the kernel | 0.0900 / 0.0500 |"),
        "{t}"
    );
    assert!(one.contains("0.0900 ms/logout (0.0500 kernel)"), "{one}");
}

#[test]
fn chat_with_stream_management_and_hibernate_have_rows_of_their_own() {
    let recs = vec![
        json!({"scenario": "chat", "label": "p", "server_cpu_s_per_1000": 0.01}),
        json!({"scenario": "chat_sm", "label": "p", "server_cpu_s_per_1000": 0.011,
               "msgs_per_s": 900.0}),
        json!({"scenario": "hibernate", "label": "p", "clients": 2000, "one_by_one": false,
               "kib_per_connected": 9.5, "kib_per_hibernated": 8.75,
               "resumes_per_s": 350.0, "logins_per_s": 340.0}),
        json!({"scenario": "hibernate", "label": "p", "clients": 2000, "one_by_one": true,
               "kib_per_connected": 7.0, "kib_per_hibernated": 5.5}),
    ];
    let t = comparison(&recs, &[]);
    assert!(
        t.contains("|   server CPU s per 1000 msgs | 0.0100 |"),
        "{t}"
    );
    assert!(
        t.contains("|   server CPU s per 1000 msgs | 0.0110 |"),
        "{t}"
    );
    assert!(
        t.contains(
            "| hibernate 2000 sessions: KiB per session connected / hibernated | 9.50 / 8.75 |"
        ),
        "{t}"
    );
    assert!(
        t.contains("|   resumes/s (median of batches) / logins/s | 350 / 340 |"),
        "{t}"
    );
    assert!(
        t.contains(
            "each cut once logged in: KiB per session connected / hibernated | 7.00 / 5.50 |"
        ),
        "{t}"
    );
}

#[test]
fn guess_records_get_a_table_of_their_own() {
    let recs = vec![
        json!({"scenario": "login", "label": "a", "logins_per_s": 100.0}),
        json!({"scenario": "guess", "label": "a", "mode": "parallel", "clients": 32,
               "checked": 20, "refused": 5000, "errors": 0, "unanswered": 0,
               "checked_per_minute": 20.5,
               "checked_answer_ms": {"n": 20, "p50_ms": 1.5, "max_ms": 2001.0},
               "refused_answer_ms": {"n": 5000, "p50_ms": 0.25, "max_ms": 3.0}}),
    ];
    let one = run_table(&recs);
    assert!(one.contains("100 logins/s"), "{one}");
    let line = one
        .lines()
        .find(|l| l.starts_with("parallel"))
        .unwrap_or_default();
    for cell in ["32", "20", "5000", "20.5", "1.50 / 2001", "0.25 / 3.00"] {
        assert!(line.contains(cell), "{cell} in {one}");
    }
    let t = comparison(&recs, &[]);
    assert!(
        t.contains("| guess parallel: checked guesses per minute | 20.5 |"),
        "{t}"
    );
    assert!(
        t.contains("|   answer time p50 / max, checked (ms) | 1.50 / 2001 |"),
        "{t}"
    );
    assert!(!t.contains("guess interleaved"), "{t}");
}

#[test]
fn offline_records_show_both_phases() {
    let recs = vec![
        json!({"scenario": "offline", "label": "a", "messages": 1000,
        "accepted_s": 4.25, "server_cpu_s": 0.8, "bounced": 0, "delivered": 1000,
        "delivered_s": 0.12}),
    ];
    let one = run_table(&recs);
    let line = one
        .lines()
        .find(|l| l.starts_with("1000"))
        .unwrap_or_default();
    for cell in ["4.25", "0.80", "0.12"] {
        assert!(line.contains(cell), "{cell} in {one}");
    }
    let t = comparison(&recs, &[]);
    assert!(
        t.contains("| offline: 1000 msgs to an offline contact, accepted (s) | 4.25 |"),
        "{t}"
    );
    assert!(
        t.contains("|   stored msgs delivered at login / in (s) | 1000 / 0.12 |"),
        "{t}"
    );
}
