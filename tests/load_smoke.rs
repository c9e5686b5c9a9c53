//! Keeps the load tool (perch-load) from rotting: every scenario at tiny
//! sizes against its own sink and against an in-process Perch. This checks
//! that the tool works, not how fast anything is — figures come from
//! `benches/compare.sh`. `crash` needs a Perch process it can kill: it
//! starts the `perch` binary Cargo builds for these tests. `login-timing`
//! runs against Perch only: the sink accepts every password, so it has no
//! wrong-password answers to time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use perch::testing::{TestOptions, TestServer};
use perch_load::conn::{TlsMode, Transport};
use perch_load::crash::CrashOptions;
use perch_load::login_timing::{Class, TimingOptions};
use perch_load::options::{Options, Scenario};
use perch_load::sasl::Mechanism;
use perch_load::serde_json::Value;
use perch_load::soak::SoakOptions;

const ACCOUNTS: usize = 8;

fn tiny(scenario: Scenario, addr: SocketAddr) -> Options {
    Options {
        scenario,
        host: addr.ip(),
        port: addr.port(),
        print: false,
        threads: 2,
        clients: 4,
        concurrency: 2,
        steps: vec![2, 4],
        pairs: 2,
        window: 2,
        seconds: 0.3,
        latency_msgs: 5,
        occupants: vec![3],
        senders: 2,
        muc_window: 2,
        muc_latency_msgs: 3,
        join_timeout: 5.0,
        drain_seconds: 3.0,
        step_timeout: 5.0,
        settle_seconds: 0.0,
        idle_pause: 0.0,
        max_phase_seconds: 10.0,
        ..Options::default()
    }
}

fn run(opts: Options) -> Vec<Value> {
    let scenario = opts.scenario.name();
    let records = perch_load::run(opts).unwrap_or_else(|e| panic!("{scenario}: {e}"));
    assert!(!records.is_empty(), "{scenario}: no records");
    records
}

fn find<'a>(records: &'a [Value], scenario: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["scenario"] == scenario)
        .collect()
}

fn assert_logins(records: &[Value], expected_passes: usize) {
    let logins = find(records, "login");
    assert_eq!(logins.len(), expected_passes, "{records:#?}");
    for r in logins {
        assert_eq!(r["errors"], 0, "{r}");
        assert_eq!(r["ok"], 4, "{r}");
        assert!(r["setup_ms"]["p50_ms"].as_f64().is_some(), "{r}");
    }
}

fn assert_chat(r: &Value) {
    assert!(r["delivered"].as_u64().unwrap_or(0) > 0, "{r}");
    assert_eq!(r["lost_or_pending"], 0, "{r}");
    assert_eq!(r["bounced"], 0, "{r}");
    assert!(r["latency"]["p99_ms"].as_f64().is_some(), "{r}");
}

fn assert_idle(records: &[Value]) {
    let steps = find(records, "idle");
    assert_eq!(steps.len(), 2, "{records:#?}");
    for r in steps {
        assert_eq!(r["login_errors"], 0, "{r}");
        assert_eq!(r["connected"], r["clients"], "{r}");
    }
}

fn assert_muc(r: &Value) {
    assert_eq!(r["joined"], 3, "{r}");
    assert_eq!(r["deliveries"], r["deliveries_expected"], "{r}");
    assert!(r["fanout_latency"]["p50_ms"].as_f64().is_some(), "{r}");
}

#[test]
fn every_scenario_against_the_sink() {
    let sink =
        perch_load::sink::spawn("127.0.0.1:0".parse().unwrap(), "localhost", "load-password")
            .expect("sink starts");
    let addr = sink.addr();

    let mut login = tiny(Scenario::Login, addr);
    login.mechanisms = vec![
        Mechanism::Plain,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
    ];
    assert_logins(&run(login), 3);

    assert_idle(&run(tiny(Scenario::Idle, addr)));

    let chat = run(tiny(Scenario::Chat, addr));
    find(&chat, "chat_latency")
        .iter()
        .for_each(|r| assert_chat(r));
    find(&chat, "chat").iter().for_each(|r| assert_chat(r));

    let muc = run(tiny(Scenario::Muc, addr));
    assert_eq!(find(&muc, "muc").len(), 1, "{muc:#?}");
    find(&muc, "muc_latency").iter().for_each(|r| assert_muc(r));
    find(&muc, "muc").iter().for_each(|r| assert_muc(r));

    let mut churn = tiny(Scenario::Churn, addr);
    churn.clients = 6;
    let churn = run(churn);
    assert_eq!(find(&churn, "churn")[0]["ok"], 6, "{churn:#?}");
    assert_chat(find(&churn, "chat_after_churn")[0]);

    let register = run(tiny(Scenario::Register, addr));
    assert_eq!(register[0]["created"], 4, "{register:#?}");

    // No TLS in the sink; the probe reads this process, the sink's.
    let mut soak = tiny_soak(addr, None);
    soak.tls_share = 0.0;
    soak.password = "load-password".into();
    assert_soak(&soak, &perch_load::soak::run(&soak).expect("soak runs"));
}

fn tiny_soak(addr: SocketAddr, tls_addr: Option<SocketAddr>) -> SoakOptions {
    SoakOptions {
        server_pid: Some(std::process::id()),
        addr,
        tls_addr,
        connections: 12,
        per_account: 4,
        seconds: 2.4,
        warmup: 0.6,
        sample_seconds: 0.3,
        lifetime: 0.6,
        msg_interval: 0.1,
        rooms: 2,
        step_timeout: Duration::from_secs(5),
        print: false,
        ..SoakOptions::default()
    }
}

/// The tool's own workings, not the verdict: at this size a test
/// harness's memory and a busy machine's CPU decide that.
fn assert_soak(opts: &SoakOptions, report: &perch_load::soak::SoakReport) {
    let samples = &report.samples;
    assert!(samples.len() >= 6, "{} samples", samples.len());
    let most = samples.iter().map(|s| s.connected).max().unwrap_or(0);
    // Some are between two logins at any moment.
    assert!(most + 3 >= opts.connections as u64, "{samples:#?}");
    let sum = |f: fn(&perch_load::soak::verdict::Sample) -> u64| samples.iter().map(f).sum::<u64>();
    assert!(sum(|s| s.logouts) > 0, "clients log out and in again");
    assert!(sum(|s| s.sent) > 0 && sum(|s| s.delivered) > 0);
    assert_eq!(
        sum(|s| s.login_errors) + sum(|s| s.lost),
        0,
        "{:?}",
        report.error_samples
    );
    assert_eq!(report.join_errors, 0);
    assert!(samples.iter().all(|s| s.rss_kib > 0 && s.fds > 0));
    assert!(
        report.verdict.ramp_done_s.is_some(),
        "{:#?}",
        report.verdict
    );
    assert_eq!(report.verdict.checks.len(), 3, "{:#?}", report.verdict);
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the perch binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn hibernate_against_the_perch_binary() {
    let report = perch_load::hibernate::run(&perch_load::hibernate::HibernateOptions {
        perch: PathBuf::from(env!("CARGO_BIN_EXE_perch")),
        clients: 50,
        per_account: 4,
        concurrency: 10,
        batches: 2,
        settle_seconds: 0.5,
        pause: 0.0,
        step_timeout: Duration::from_secs(10),
        print: false,
        ..Default::default()
    })
    .expect("hibernate runs");
    assert!(report.ok(), "{}", report.table());
    assert_eq!(
        (report.cut, report.resumed(), report.verified),
        (50, 50, 50)
    );
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the perch binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn reconnect_and_push_against_the_perch_binary() {
    let perch = PathBuf::from(env!("CARGO_BIN_EXE_perch"));
    let report = perch_load::reconnect::run(&perch_load::reconnect::ReconnectOptions {
        perch: perch.clone(),
        clients: 6,
        concurrency: 2,
        reconnects: 2,
        mechanisms: vec![Mechanism::ScramSha256],
        settle_seconds: 0.0,
        step_timeout: Duration::from_secs(10),
        print: false,
        ..Default::default()
    })
    .expect("reconnect runs");
    assert!(report.ok(), "{}", report.table());
    let passes: Vec<(&str, usize)> = report
        .passes
        .iter()
        .map(|p| (p.name.as_str(), p.ok))
        .collect();
    assert_eq!(
        passes,
        [("classic", 6), ("sasl2", 6), ("fast_first", 6), ("fast", 6)]
    );
    // After TLS: restart, SASL (2), restart, bind; SASL2 (2); FAST (1);
    // each with the stream header's round trip first.
    let trips: Vec<Option<u32>> = report.passes.iter().map(|p| p.round_trips_p50()).collect();
    assert_eq!(trips, [Some(5), Some(3), Some(2), Some(2)]);

    let report = perch_load::push::run(&perch_load::push::PushOptions {
        perch,
        accounts: 4,
        senders: 2,
        messages: 20,
        latency_msgs: 4,
        settle_seconds: 0.0,
        step_timeout: Duration::from_secs(10),
        print: false,
        ..Default::default()
    })
    .expect("push runs");
    assert!(report.ok(), "{}", report.table());
    let counts: Vec<(u64, u64, u64)> = report
        .phases
        .iter()
        .map(|p| (p.sent, p.notifications, p.counted_messages))
        .collect();
    assert_eq!(counts, [(4, 4, 4), (20, 20, 20)]);
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the perch binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn crash_loop_against_the_perch_binary() {
    let report = perch_load::crash::run(&CrashOptions {
        perch: PathBuf::from(env!("CARGO_BIN_EXE_perch")),
        kills: 2,
        seed: 16,
        writers: 2,
        min_load: Duration::from_millis(100),
        max_load: Duration::from_millis(300),
        print: false,
        ..CrashOptions::default()
    })
    .expect("the crash loop starts");
    assert!(report.ok(), "{}", report.table());
    assert_eq!(report.kills, 2);
    assert!(report.total.acked > 0, "{}", report.table());
    assert_eq!(
        report.total.acked,
        report.total.verified + report.total.superseded,
        "{}",
        report.table()
    );
    assert_eq!(report.restart_s.len(), 2);
}

#[test]
fn soak_and_login_timing_against_perch() {
    let accounts = (1..=3)
        .map(|i| (format!("soak{i}@localhost"), "soak-password".to_string()))
        .chain((1..=2).map(|i| {
            (
                format!("timing{i}@localhost"),
                "timing-password".to_string(),
            )
        }))
        .collect();
    let server = TestServer::start(TestOptions {
        accounts,
        // Failed logins by the hundred without a throttle's waits, and
        // rooms without rate limits.
        extra_config:
            "[limits]\nmax_connections_per_ip = 1000\nlogin_attempts_per_minute = 10000\n\
                       [muc]\nmessage_burst = 10000\nmessages_per_minute = 600000\n"
                .into(),
        ..TestOptions::default()
    })
    .expect("server starts");
    let soak = tiny_soak(server.c2s_addr(), server.c2s_tls_addr());
    assert_soak(&soak, &perch_load::soak::run(&soak).expect("soak runs"));

    let report = perch_load::login_timing::run(&TimingOptions {
        addr: server.c2s_addr(),
        accounts: 2,
        attempts: 30,
        warmup: 2,
        seed: 16,
        print: false,
        ..TimingOptions::default()
    })
    .expect("login-timing runs");
    for r in &report.results {
        assert_eq!(r.micros.len(), 30, "{r:?}");
    }
    assert_eq!(report.comparisons.len(), 3);
    // An unknown user used to be answered without any key derivation,
    // over ten times sooner than a wrong password; now both cost one. The
    // bound is loose: the other tests share the machine's cores.
    let median = |class| {
        let r = report
            .results
            .iter()
            .find(|r| r.class == class)
            .expect("measured");
        perch_load::stats::summary(&r.micros).expect("samples").p50
    };
    let (unknown, wrong) = (
        median(Class::PlainUnknownUser),
        median(Class::PlainWrongPassword),
    );
    assert!(
        unknown > 0.25 * wrong,
        "unknown {unknown} µs, wrong password {wrong} µs"
    );
}

#[test]
fn every_scenario_against_perch() {
    let accounts = (1..=ACCOUNTS)
        .map(|i| (format!("load{i}@localhost"), "load-password".to_string()))
        .collect();
    let server = TestServer::start(TestOptions {
        accounts,
        // Rooms without rate limits: the scenario sends as fast as it can.
        extra_config: "[limits]\nmax_connections_per_ip = 1000\n\
                       [muc]\nmessage_burst = 10000\nmessages_per_minute = 600000\n"
            .into(),
        ..TestOptions::default()
    })
    .expect("server starts");
    let addr = server.c2s_addr();

    let mut login = tiny(Scenario::Login, addr);
    login.mechanisms = vec![
        Mechanism::Plain,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
    ];
    let records = run(login);
    assert_logins(&records, 3);
    assert_eq!(find(&records, "login_cold").len(), 2);
    // Every pass also reports what ending its sessions cost the server.
    let logouts = find(&records, "login_logout");
    assert_eq!(logouts.len(), 3, "{records:#?}");
    for r in logouts {
        assert_eq!(r["clients"], 4, "{r}");
    }
    assert_eq!(find(&records, "login_cold_logout").len(), 2);

    assert_idle(&run(tiny(Scenario::Idle, addr)));
    let tls_addr = server.c2s_tls_addr().expect("direct TLS listener");
    let mut direct = tiny(Scenario::Idle, tls_addr);
    direct.tls = TlsMode::Direct;
    assert_idle(&run(direct));
    let mut starttls = tiny(Scenario::Idle, addr);
    starttls.tls = TlsMode::StartTls;
    assert_idle(&run(starttls));

    let chat = run(tiny(Scenario::Chat, addr));
    assert_chat(find(&chat, "chat")[0]);
    let mut chat_sm = tiny(Scenario::Chat, addr);
    chat_sm.sm = true;
    let records = run(chat_sm);
    let r = find(&records, "chat_sm")[0];
    assert_chat(r);
    assert!(r["sm_acks_received"].as_u64().unwrap_or(0) > 0, "{r}");

    // The sink stores nothing for offline accounts, so only Perch runs it.
    let mut offline = tiny(Scenario::Offline, addr);
    offline.messages = 20;
    let records = run(offline);
    let r = find(&records, "offline")[0];
    assert_eq!(r["delivered"], 20, "{r}");
    assert_eq!(r["bounced"], 0, "{r}");
    assert!(r["accepted_s"].as_f64().is_some(), "{r}");
    assert!(r["delivered_s"].as_f64().is_some(), "{r}");

    let mut churn = tiny(Scenario::Churn, addr);
    churn.clients = 6;
    let churn = run(churn);
    assert_eq!(find(&churn, "churn")[0]["ok"], 6, "{churn:#?}");
    assert_chat(find(&churn, "chat_before_churn")[0]);
    assert_chat(find(&churn, "chat_after_churn")[0]);

    let muc = run(tiny(Scenario::Muc, addr));
    assert!(find(&muc, "muc_error").is_empty(), "{muc:#?}");
    assert_eq!(find(&muc, "muc").len(), 1, "{muc:#?}");
    find(&muc, "muc_latency").iter().for_each(|r| assert_muc(r));
    find(&muc, "muc").iter().for_each(|r| assert_muc(r));

    // Last: its wrong guesses come from 127.0.N.x and name victims of
    // their own, so nothing above is throttled by them. Short enough that
    // no source address gets past the free failures of either throttle.
    let mut guess = tiny(Scenario::Guess, addr);
    guess.seconds = 0.6;
    guess.parallel = 2;
    guess.sources = 3;
    guess.step_timeout = 3.0;
    let records = run(guess);
    let guesses = find(&records, "guess");
    let modes: Vec<&str> = guesses.iter().filter_map(|r| r["mode"].as_str()).collect();
    assert_eq!(
        modes,
        ["interleaved", "parallel", "addresses"],
        "{records:#?}"
    );
    for r in &guesses {
        assert!(r["checked"].as_u64().unwrap_or(0) > 0, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert_eq!(r["accepted"], 0, "{r}");
        assert!(r["checked_answer_ms"]["p50_ms"].as_f64().is_some(), "{r}");
    }
    assert!(
        guesses[0]["logins_ok"].as_u64().unwrap_or(0) > 0,
        "{guesses:#?}"
    );
    assert_eq!(guesses[2]["clients"], 3, "{guesses:#?}");
}

#[test]
fn mam_against_perch() {
    // The owner load1, 4 contacts (2 of them in the room), two tiny sizes,
    // then the writing phases; no fsync counter (it needs perf or strace).
    let accounts = (1..=5)
        .map(|i| (format!("load{i}@localhost"), "load-password".to_string()))
        .collect();
    let server = TestServer::start(TestOptions {
        accounts,
        extra_config: "[limits]\nmax_connections_per_ip = 1000\n\
                       [muc]\nmessage_burst = 10000\nmessages_per_minute = 600000\n"
            .into(),
        ..TestOptions::default()
    })
    .expect("server starts");
    let mut opts = tiny(Scenario::Mam, server.c2s_addr());
    opts.max_phase_seconds = 30.0;
    opts.mam.contacts = 4;
    opts.mam.room_senders = 2;
    opts.mam.sizes = vec![30, 120];
    opts.mam.reps = 6;
    opts.mam.page = 10;
    opts.mam.write_msgs = 40;
    opts.mam.write_senders = 4;
    opts.mam.data_path = server.data_dir().map(|d| d.join("perch.redb"));
    let records = run(opts);
    let sizes = find(&records, "mam_size");
    assert_eq!(sizes.len(), 2, "{records:#?}");
    assert_eq!(sizes[1]["user_archived"], 120, "{records:#?}");
    assert_eq!(sizes[1]["room_archived"], 120, "{records:#?}");
    assert!(
        sizes[1]["stanza_bytes"].as_f64().unwrap_or(0.0) > 100.0,
        "{records:#?}"
    );
    let queries = find(&records, "mam_query");
    // Five kinds, two archives, two sizes.
    assert_eq!(queries.len(), 20, "{records:#?}");
    for q in &queries {
        assert_eq!(q["errors"], 0, "{q}");
        assert!(q["latency"]["p50_ms"].as_f64().is_some(), "{q}");
        match q["kind"].as_str() {
            Some("count") => assert_eq!(q["count"], q["archived"], "{q}"),
            Some("with") => {
                // At 30 messages from 4 contacts, 7 or 8 each.
                assert!(q["results_per_query"].as_f64().unwrap_or(0.0) >= 7.0, "{q}");
                assert_eq!(q["matched_share"], 1.0, "{q}");
            }
            Some("newest") => assert_eq!(q["results_per_query"], 10.0, "{q}"),
            _ => {}
        }
    }
    let writes = find(&records, "mam_write");
    let senders: Vec<u64> = writes
        .iter()
        .filter_map(|w| w["senders"].as_u64())
        .collect();
    assert_eq!(senders, [4, 1, 2], "{records:#?}");
    for w in writes {
        assert_eq!(w["confirmed"], 40, "{w}");
        assert_eq!(w["bounced"], 0, "{w}");
    }
}

#[test]
fn pep_against_perch() {
    // 6 accounts in a ring of 4 contacts each, the subscriptions made over
    // XMPP; 2 nodes each for the memory reading, then 24 tunes at 40/s and
    // a short chat yardstick. The probe reads this process (the server runs
    // on a thread of it), so the CPU figures are numbers, not the server's.
    let accounts = (1..=6)
        .map(|i| (format!("load{i}@localhost"), "load-password".to_string()))
        .collect();
    let server = TestServer::start(TestOptions {
        accounts,
        extra_config: "[limits]\nmax_connections_per_ip = 1000\n".into(),
        ..TestOptions::default()
    })
    .expect("server starts");
    let mut opts = tiny(Scenario::Pep, server.c2s_addr());
    opts.server_pid = Some(std::process::id());
    opts.max_phase_seconds = 30.0;
    opts.pep.accounts = 6;
    opts.pep.contacts = 4;
    opts.pep.rates = vec![40];
    opts.pep.publishes = 24;
    opts.pep.nodes = 2;
    opts.pep.chat_pairs = 2;
    opts.pep.chat_seconds = 0.3;
    let records = run(opts);
    let setup = find(&records, "pep_setup");
    assert_eq!(setup[0]["both"], 24, "{records:#?}");
    assert_eq!(setup[0]["other_subscribers"], 0, "{records:#?}");
    let nodes = find(&records, "pep_nodes");
    assert_eq!(nodes[0]["published"], 12, "{records:#?}");
    assert!(
        nodes[0]["kib_per_account"].as_f64().is_some(),
        "{records:#?}"
    );
    let warmup = find(&records, "pep_warmup");
    assert_eq!(warmup[0]["complete"], true, "{records:#?}");
    let pep = find(&records, "pep");
    assert_eq!(pep.len(), 1, "{records:#?}");
    let r = pep[0];
    // Each tune reaches the 4 contacts and the publisher's own resource.
    assert_eq!(r["published"], 24, "{r}");
    assert_eq!(r["expected"], 120, "{r}");
    assert_eq!(r["notifications"], 120, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    assert_eq!(r["all_delivered"], true, "{r}");
    assert!(r["latency"]["p50_ms"].as_f64().is_some(), "{r}");
    assert!(
        r["notifications_per_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{r}"
    );
    assert!(r["server_cpu_s_per_1000"].as_f64().is_some(), "{r}");
    let summary = find(&records, "pep_summary");
    assert_eq!(summary.len(), 1, "{records:#?}");
    assert!(
        summary[0]["chat_cpu_s_per_1000"].as_f64().is_some(),
        "{records:#?}"
    );
    assert!(
        find(&records, "pep_chat")[0]["delivered"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    let table = perch_load::report::run_table(&records);
    for needle in ["24 of 24 with subscription both", "notifications", "120"] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
}

/// A Perch with its HTTP listener (XMPP over WebSocket, file upload) and
/// ACCOUNTS accounts.
fn perch_with_http() -> (TestServer, SocketAddr) {
    let accounts = (1..=ACCOUNTS)
        .map(|i| (format!("load{i}@localhost"), "load-password".to_string()))
        .collect();
    let server = TestServer::start(TestOptions {
        accounts,
        extra_config: "[limits]\nmax_connections_per_ip = 1000\n".into(),
        ..TestOptions::default()
    })
    .expect("server starts");
    let http = server.http_addr().expect("an HTTP listener");
    (server, http)
}

#[test]
fn websocket_against_perch() {
    let (server, http) = perch_with_http();
    let over_ws = |scenario| {
        let mut opts = tiny(scenario, server.c2s_addr());
        opts.transport = Transport::Ws;
        opts.transports = vec![Transport::Ws];
        opts.http_port = http.port();
        opts
    };
    let records = run(over_ws(Scenario::Chat));
    for name in ["chat_latency", "chat"] {
        let r = find(&records, name)[0];
        assert_chat(r);
        assert_eq!(r["transport"], "ws", "{r}");
    }
    assert_idle(&run(over_ws(Scenario::Idle)));

    // Both transports in one run: the figures side by side. The probe
    // reads this process (the server is a thread of it), so the ratios
    // are numbers, not the server's.
    let mut both = over_ws(Scenario::Chat);
    both.transport = Transport::Tcp;
    both.transports = vec![Transport::Tcp, Transport::Ws];
    both.server_pid = Some(std::process::id());
    let records = run(both);
    let chats = find(&records, "chat");
    let transports: Vec<&str> = chats
        .iter()
        .filter_map(|r| r["transport"].as_str())
        .collect();
    assert_eq!(transports, ["tcp", "ws"], "{records:#?}");
    chats.iter().for_each(|r| assert_chat(r));
    let ratio = find(&records, "transport_ratio");
    assert_eq!(ratio.len(), 1, "{records:#?}");
    // A ratio is a number when the TCP figure is; under qemu-user the
    // CPU probe can read zero, and then the ratio must be null, not a
    // made-up number.
    let cpu = &ratio[0]["ratios"]["chat_cpu_per_1000"];
    let tcp = cpu["tcp"].as_f64().expect("the TCP figure");
    assert!(cpu["ws"].as_f64().is_some(), "{records:#?}");
    if tcp > 0.0 {
        assert!(cpu["ws_over_tcp"].as_f64().is_some(), "{records:#?}");
    } else {
        assert!(cpu["ws_over_tcp"].is_null(), "{records:#?}");
    }
}

#[test]
fn upload_against_perch() {
    let (server, http) = perch_with_http();
    let mut opts = tiny(Scenario::Upload, server.c2s_addr());
    opts.upload_mib = 2;
    // The slot's URLs name the configured public port; the test server's
    // listener is on an ephemeral one.
    opts.upload_port = Some(http.port());
    opts.server_pid = Some(std::process::id());
    let records = run(opts);
    let r = find(&records, "upload")[0];
    assert_eq!(r["service"], "upload.localhost", "{r}");
    assert_eq!(r["get_bytes"], 2 * 1024 * 1024, "{r}");
    assert_eq!(r["length_ok"], true, "{r}");
    assert_eq!(r["checksum_ok"], true, "{r}");
    assert!(r["put_mib_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    assert!(r["get_mib_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    assert!(r["put_peak_rss_growth_kib"].as_u64().is_some(), "{r}");
}
