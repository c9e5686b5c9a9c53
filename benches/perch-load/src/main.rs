//! `perch-load SCENARIO [options]` — see `perch-load help`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use perch_load::args::Args;
use perch_load::conn::{Conn, Target, TlsMode};
use perch_load::crash::{CRASH_HELP, CrashOptions};
use perch_load::hibernate::{HIBERNATE_HELP, HibernateOptions};
use perch_load::login_timing::{LOGIN_TIMING_HELP, TimingOptions};
use perch_load::mam::MAM_HELP;
use perch_load::options::{self, OPTIONS_HELP, Scenario};
use perch_load::pep::PEP_HELP;
use perch_load::pep::provision::PEP_ROSTERS_HELP;
use perch_load::push::{PUSH_HELP, PushOptions};
use perch_load::reconnect::{RECONNECT_HELP, ReconnectOptions};
use perch_load::soak::{SOAK_HELP, SoakOptions};
use perch_load::{procfs, report};

const USAGE: &str = "\
perch-load: XMPP load generator for servers on this machine

Usage:
  perch-load login|idle|chat|muc|churn|register|guess|offline|mam|pep|upload [options]
  perch-load sink [--host A] [--port N] [--domain D] [--password PW] [--max-seconds S]
  perch-load wait [--host A] [--port N] [--domain D] [--timeout S]
  perch-load floor [--occupants N,N] [--rounds N] [--threads N] [--label L] [--run R]
  perch-load stats --server-pid PID [--include-children] [--label L] [--run R] [--startup-s S]
  perch-load table [--order a,b,c] FILE...
  perch-load pep-rosters --format xep0227|prosody --out PATH [--accounts N --contacts N]
  perch-load crash [--perch PATH] [--kills N] [--seed N] [options below]
  perch-load soak [--perch PATH] [--connections N] [--seconds S] [options below]
  perch-load login-timing [--perch PATH] [--attempts N] [options below]
  perch-load hibernate [--perch PATH] [--clients N] [options below]
  perch-load reconnect [--perch PATH] [--clients N] [options below]
  perch-load push [--perch PATH] [--accounts N] [--messages N] [options below]

Scenarios print one JSON line per phase on stdout and a table on stderr.
`guess` measures how fast a password guesser has passwords checked, in
three modes of --seconds (60) each: `interleaved` (one address, a wrong
guess at <prefix>victim-interleaved, then a good login to the account
<prefix><first-user> with --password, which must exist), `parallel`
(--parallel connections from one address) and `addresses` (--sources
addresses, one client each); PLAIN over plaintext c2s. Restart the server
between runs: its failure counts remember the victims and addresses.
`offline`: <prefix><first-user> sends --messages (1000) chat messages
to <prefix><first-user+1>, which must not be online, all written at once,
then a ping: `accepted_s` is first message to the ping's result, with the
server's CPU over that time. Then the recipient logs in, sends initial
presence and counts the stored messages: `delivered_s` is presence to the
last one. Fails if fewer than --messages arrive (raise the server's
offline quota: Perch's [im] offline_max_messages).
`mam`: fills one account's archive (XEP-0313) with 1:1 messages from
--contacts accounts and one persistent room's with groupchat, to each of
--sizes, and at each size times queries (newest page, newest with a
contact, page after an id, since a date, count): server CPU per query and
latency; the bytes of --data-path per archived message; then writes with
--write-senders senders and with one, counting fsyncs (--fsyncs perf).
`pep`: --accounts (1000) accounts with --contacts (100) contacts each
(subscription both: a ring; set up over XMPP, untimed, unless --roster
ready), all online with caps asking for tune+notify, publish tunes to
their own PEP nodes at --rate publications/s: server CPU per 1 000
notifications delivered, notifications/s, latency, whether all expected
arrived; RSS per account before and with --nodes (10) nodes of one item;
then chat on the same server as the yardstick, and the ratio (goal 1.5).
`pep-rosters` writes pep's rosters for a server to load before it starts
(a XEP-0227 file for perch import or ejabberdctl import_piefxis; Prosody's
internal storage), for `pep --roster ready`.
`sink` is a trivial XMPP server to measure the tool itself against.
`floor` fans a stanza out to N loopback connections with no server at all:
the kernel's cost of the writes, and the lowest fan-out latency the `muc`
scenario can show on this machine.
`wait` prints the seconds until a server answers with stream features.
`stats` prints the server's memory and CPU as a `startup` record.
`table` turns JSON-lines files into a markdown comparison (medians over runs).
`crash` starts the Perch binary --perch on a data directory of its own,
SIGKILLs it --kills times, each at a random moment (seeded) of writes from
a few clients (offline messages, roster, rooms and affiliations, vCards,
private XML), restarts it and checks that every write it acknowledged is
there; exit status 1 if one is missing or Perch does not come back.
`soak` starts the Perch binary --perch with --connections clients (10000;
plaintext, STARTTLS and direct TLS) that log in and out, chat and send to
rooms for --seconds (1800), samples the server's RSS, descriptors and CPU per
message every 10 s and says whether they stayed flat: no later sample above
the first --warmup seconds' (60) high-water mark + 10 % (CPU per message:
warm-up-long windows, not judged while other work keeps the machine busy);
exit status 1 if not.
`login-timing` times SASL answers (PLAIN: unknown user, wrong and right
password; SCRAM-SHA-256 first message: unknown and known user), 1000 of
each, interleaved, and tests whether the distributions differ (Mann-Whitney
U, Kolmogorov-Smirnov); exit status 1 if an unknown user can be told apart.
`hibernate` starts the Perch binary --perch, logs in --clients clients
(10000) with stream management (XEP-0198) and resumption, reads the
server's RSS with all idle, cuts every connection without closing its
stream (the sessions wait to be resumed), reads the RSS again, then resumes
every session on a new connection (SASL + <resume/>) in batches: RSS per
session connected and hibernated, resumes/s; exit status 1 unless every
session was resumed and answered a ping.
`reconnect` starts the Perch binary --perch with --clients accounts
(500) and logs each in, --concurrency at a time, the classic way (SASL
with each --mech, restart, bind), then with SASL2 + Bind 2 asking for a
FAST token (XEP-0388, 0386, 0484), then --reconnects times (4) with that
token (HT-SHA-256-NONE) + Bind 2: per pass the set-up time (TCP connect
to bound session; median, p95), the round trips after TLS, the server's
CPU per login, and each pass against FAST as ratios; exit status 1 if a
login failed.
`push` starts the Perch binary --perch with [push] coalesce_secs = 0,
--accounts offline accounts (200) registered for push (XEP-0357) to an
app server that is one of its clients and answers every notification;
--senders senders (20), one message in flight each, send --messages
(5000) messages to them: notifications/s at the app server, message to
notification latency, server CPU per notification; first a latency phase
with one sender (--latency-msgs, 200). Exit status 1 unless every
message was notified exactly once.
`chat --sm` runs chat with stream management on every client.
`--transport ws` runs a scenario's clients over XMPP over WebSocket (RFC
7395) at ws://HOST:--http-port/xmpp-websocket instead of c2s over TCP;
`--transport tcp,ws` runs it over both, one after the other, and ends with
the WebSocket / TCP ratios (KiB per idle connection, server CPU per 1 000
chat messages) against the goals 1.25 and 1.3.
`upload`: <prefix><first-user> logs in, finds the HTTP File Upload service
(XEP-0363; --upload-service, or disco#items on the domain), asks for a
slot of --upload-mib (100) MiB, PUTs a generated body (streamed, never held
whole) and GETs it back over HTTP/1.1, checking length and checksum:
MiB/s each way, the server's CPU and its peak RSS growth over each transfer.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match cmd.as_str() {
        "help" | "--help" | "-h" => {
            print!(
                "{USAGE}\n{OPTIONS_HELP}\n\n{MAM_HELP}\n\n{PEP_HELP}\n\n{PEP_ROSTERS_HELP}\n\n{CRASH_HELP}\n\n{SOAK_HELP}\n\n{LOGIN_TIMING_HELP}\n\n{HIBERNATE_HELP}\n\n{RECONNECT_HELP}\n\n{PUSH_HELP}\n"
            );
            return ExitCode::SUCCESS;
        }
        "crash" => match CrashOptions::from_args(rest) {
            Ok(opts) => return crash(&opts),
            Err(e) => return usage_error(&e),
        },
        "soak" => match SoakOptions::from_args(rest) {
            Ok(opts) => return soak(&opts),
            Err(e) => return usage_error(&e),
        },
        "login-timing" => match TimingOptions::from_args(rest) {
            Ok(opts) => return login_timing(&opts),
            Err(e) => return usage_error(&e),
        },
        "hibernate" => match HibernateOptions::from_args(rest) {
            Ok(opts) => return hibernate(&opts),
            Err(e) => return usage_error(&e),
        },
        "reconnect" => match ReconnectOptions::from_args(rest) {
            Ok(opts) => return reconnect(&opts),
            Err(e) => return usage_error(&e),
        },
        "push" => match PushOptions::from_args(rest) {
            Ok(opts) => return push(&opts),
            Err(e) => return usage_error(&e),
        },
        "sink" => sink(rest),
        "wait" => wait(rest),
        "floor" => floor(rest),
        "stats" => stats(rest),
        "table" => table(rest),
        "pep-rosters" => perch_load::pep::provision::command(rest),
        name => match Scenario::ALL.iter().find(|s| s.name() == name) {
            Some(&scenario) => match options::parse(scenario, rest) {
                Ok(opts) => perch_load::run(opts).map(|_| ()),
                Err(e) => return usage_error(&e.to_string()),
            },
            None => return usage_error(&format!("unknown command '{name}'")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perch-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn crash(opts: &CrashOptions) -> ExitCode {
    finish(
        "crash",
        perch_load::crash::run(opts).map(|r| (r.record().to_string(), r.table(), r.ok())),
    )
}

fn soak(opts: &SoakOptions) -> ExitCode {
    finish(
        "soak",
        perch_load::soak::run(opts).map(|r| (r.record().to_string(), r.summary(), r.ok())),
    )
}

fn login_timing(opts: &TimingOptions) -> ExitCode {
    if opts.print {
        eprintln!(
            "[perch-load] login-timing: seed {}, {} attempts of each class",
            opts.seed, opts.attempts
        );
    }
    match perch_load::login_timing::run(opts) {
        Ok(report) => {
            for rec in perch_load::login_timing::records(&report, "perch") {
                println!("{rec}");
            }
            eprint!("{}", perch_load::login_timing::table(&report));
            if report.leaks().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("perch-load login-timing: {e}");
            ExitCode::FAILURE
        }
    }
}

fn hibernate(opts: &HibernateOptions) -> ExitCode {
    finish(
        "hibernate",
        perch_load::hibernate::run(opts).map(|r| (r.record().to_string(), r.table(), r.ok())),
    )
}

fn reconnect(opts: &ReconnectOptions) -> ExitCode {
    finish_records(
        "reconnect",
        perch_load::reconnect::run(opts).map(|r| (r.records("perch"), r.table(), r.ok())),
    )
}

fn push(opts: &PushOptions) -> ExitCode {
    finish_records(
        "push",
        perch_load::push::run(opts).map(|r| (r.records("perch"), r.table(), r.ok())),
    )
}

/// `finish` for a command with several JSON records.
fn finish_records(
    command: &str,
    outcome: Result<(Vec<perch_load::serde_json::Value>, String, bool), String>,
) -> ExitCode {
    finish(
        command,
        outcome.map(|(records, table, ok)| {
            let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
            (lines.join("\n"), table, ok)
        }),
    )
}

/// Prints what a command that checks something reports (its JSON record
/// on stdout, its table on stderr); it fails unless the check passed.
fn finish(command: &str, outcome: Result<(String, String, bool), String>) -> ExitCode {
    match outcome {
        Ok((record, table, ok)) => {
            println!("{record}");
            eprint!("{table}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("perch-load {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("perch-load: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

fn sink(args: &[String]) -> Result<(), String> {
    let p = Args::parse(
        args,
        &["host", "port", "domain", "password", "max-seconds"],
        &[],
    )?;
    let addr = p.loopback(5222)?;
    let limit: f64 = p.number("max-seconds", 3600.0)?;
    perch_load::sink::run_for(
        addr,
        p.value("domain").unwrap_or("localhost"),
        p.value("password").unwrap_or("load-password"),
        Duration::from_secs_f64(limit.clamp(0.0, 86_400.0)),
    )
    .map_err(|e| format!("sink on {addr}: {e}"))
}

fn wait(args: &[String]) -> Result<(), String> {
    let p = Args::parse(args, &["host", "port", "domain", "timeout"], &[])?;
    let target = Target {
        addr: p.loopback(5222)?,
        domain: p.value("domain").unwrap_or("localhost").to_string(),
        tls: TlsMode::None,
        tls_config: None,
        step_timeout: Duration::from_secs(2),
        ws: None,
    };
    let limit = Duration::from_secs_f64(p.number::<f64>("timeout", 60.0)?.clamp(0.0, 3600.0));
    let t0 = Instant::now();
    smol::block_on(async {
        while t0.elapsed() < limit {
            if let Ok((c, _)) = Conn::open(&target).await {
                println!("{:.3}", t0.elapsed().as_secs_f64());
                c.close().await;
                return Ok(());
            }
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        Err(format!(
            "no stream features from {} within {limit:?}",
            target.addr
        ))
    })
}

fn floor(args: &[String]) -> Result<(), String> {
    let p = Args::parse(
        args,
        &["occupants", "rounds", "threads", "label", "run"],
        &[],
    )?;
    let sizes = p
        .value("occupants")
        .unwrap_or("10,100,500,1000")
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| (1..=10_000).contains(&n))
                .ok_or_else(|| format!("--occupants: '{n}' is not a number from 1 to 10000"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rounds: usize = p.number("rounds", 200)?;
    let threads: usize = p.number("threads", 2)?;
    if !(1..=100_000).contains(&rounds) || !(1..=64).contains(&threads) {
        return Err("--rounds must be 1 to 100000 and --threads 1 to 64".into());
    }
    eprintln!(
        "occupants  K writes p50 / p99 (ms)  per write (us)  write to last read p50 / p99 (ms)"
    );
    for occupants in sizes {
        let rec = perch_load::floor::run(&perch_load::floor::FloorOptions {
            occupants,
            rounds,
            threads,
            label: p.value("label").unwrap_or("floor").to_string(),
            run: p.value("run").map(str::to_string),
        })?;
        println!("{rec}");
        let ms = |v: &serde_json::Value, q: &str| v[q].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "{occupants:>9}  {:>8.3} / {:<8.3}       {:>6.2}          {:>8.3} / {:.3}",
            ms(&rec["writes"], "p50_ms"),
            ms(&rec["writes"], "p99_ms"),
            rec["write_us_p50"].as_f64().unwrap_or(f64::NAN),
            ms(&rec["fanout_latency"], "p50_ms"),
            ms(&rec["fanout_latency"], "p99_ms"),
        );
    }
    Ok(())
}

fn stats(args: &[String]) -> Result<(), String> {
    let p = Args::parse(
        args,
        &["server-pid", "label", "run", "startup-s"],
        &["include-children"],
    )?;
    let pid: u32 = p.number("server-pid", 0)?;
    let probe = procfs::Probe::new(Some(pid), p.flag("include-children"));
    let snap = probe
        .snapshot()
        .ok_or_else(|| format!("no process {pid}"))?;
    let mut rec = serde_json::json!({
        "scenario": "startup", "label": p.value("label").unwrap_or("server"),
        "rss_kib": snap.rss_kib, "hwm_kib": snap.hwm_kib, "cpu_s": snap.cpu_s,
        "threads": snap.threads, "fds": snap.fds, "processes": snap.processes,
    });
    if let Some(run) = p.value("run") {
        rec["run"] = run.into();
    }
    if let Some(s) = p.value("startup-s").and_then(|v| v.parse::<f64>().ok()) {
        rec["startup_s"] = s.into();
    }
    println!("{rec}");
    Ok(())
}

fn table(args: &[String]) -> Result<(), String> {
    let mut order = Vec::new();
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--order" {
            let v = it.next().ok_or("--order needs a value")?;
            order = v.split(',').map(str::to_string).collect();
        } else {
            files.push(a.clone());
        }
    }
    let mut records = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        for line in text.lines().filter(|l| l.starts_with('{')) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                records.push(v);
            }
        }
    }
    print!("{}", report::comparison(&records, &order));
    Ok(())
}
