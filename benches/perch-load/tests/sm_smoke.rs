//! Stream management in the tool at tiny sizes: `chat --sm` against the
//! sink (which answers `<enable/>` and `<r/>`). `hibernate` needs the perch
//! binary: perch's own `tests/load_smoke.rs` runs it against the binary
//! Cargo builds for it.

use perch_load::options::{Options, Scenario};
use perch_load::serde_json::Value;

#[test]
fn chat_with_stream_management_against_the_sink() {
    let sink = perch_load::sink::spawn(
        "127.0.0.1:0".parse().expect("addr"),
        "localhost",
        "load-password",
    )
    .expect("sink starts");
    let addr = sink.addr();
    let records = perch_load::run(Options {
        scenario: Scenario::Chat,
        host: addr.ip(),
        port: addr.port(),
        print: false,
        sm: true,
        pairs: 2,
        window: 3,
        seconds: 0.3,
        latency_msgs: 12,
        drain_seconds: 3.0,
        step_timeout: 5.0,
        settle_seconds: 0.0,
        max_phase_seconds: 10.0,
        ..Options::default()
    })
    .expect("chat runs");
    let find =
        |name: &str| -> Vec<&Value> { records.iter().filter(|r| r["scenario"] == name).collect() };
    assert!(find("chat").is_empty() && find("chat_latency").is_empty());
    for name in ["chat_sm_latency", "chat_sm"] {
        let r = find(name);
        assert_eq!(r.len(), 1, "{name}: {records:#?}");
        let r = r[0];
        assert_eq!(r["sm"], true, "{r}");
        assert!(r["delivered"].as_u64().unwrap_or(0) >= 12, "{r}");
        assert_eq!(r["lost_or_pending"], 0, "{r}");
        assert_eq!(r["client_failures"], 0, "{r}");
        // An <r/> every 5 messages, each answered and checked.
        assert!(r["sm_acks_received"].as_u64().unwrap_or(0) >= 2, "{r}");
    }
}
