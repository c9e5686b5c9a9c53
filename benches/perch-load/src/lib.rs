//! perch-load: an XMPP load generator. It talks XMPP over loopback sockets
//! to any server (Perch, Prosody, ejabberd, or its own sink) and knows
//! nothing of their internals. Scenarios: `login`, `idle`, `chat`, `muc`,
//! `churn` (and `register` to create accounts by XEP-0077), `guess`
//! (how fast a password guesser gets answers through a failed-login
//! throttle), `offline` (messages stored for an offline contact) and
//! `mam` (a message archive filled to a million and queried) and `pep`
//! (personal eventing: 1 000 accounts with 100 contacts each publishing,
//! CPU per 1 000 notifications beside chat's per 1 000 messages). Each
//! phase is bounded in count and time and emits one JSON
//! record. Four commands start a Perch binary themselves: `crash` (kills
//! it mid-write, again and again, and checks that every acknowledged write
//! survived), `soak` (thousands of clients for half an hour: does memory,
//! descriptors or CPU per message creep?), `login-timing` (can answer
//! times tell an unknown user from a known one?) and `hibernate` (what a
//! stream-managed session whose connection was lost costs, and how fast
//! clients resume). `chat --sm` chats with stream management (XEP-0198).
//! `upload` puts a file through HTTP File Upload (XEP-0363) and gets it
//! back. `reconnect` starts a Perch binary and times logins the classic
//! way, with SASL2 + Bind 2, and with a FAST token; `push` starts one and
//! measures push notifications (XEP-0357) for offline accounts through an
//! app server of its own. `--transport ws` runs the scenarios over XMPP over WebSocket
//! (RFC 7395) instead of c2s over TCP; `--transport tcp,ws` runs them over
//! both, one after the other, and sets the figures side by side.
//!
//! Clients run as tasks on one `smol::Executor` driven by `--threads` OS
//! threads (2 by default), many connections per thread, so 10 000 clients
//! need 10 000 descriptors and no more threads.

pub mod args;
pub mod base64;
pub mod conn;
pub mod crash;
pub mod ctx;
pub mod executor;
pub mod floor;
pub mod hibernate;
pub mod histogram;
pub mod http;
pub mod login_timing;
pub mod mam;
pub mod mam_settings;
pub mod options;
pub mod pep;
pub mod pep_settings;
pub mod procfs;
pub mod push;
pub mod reconnect;
pub mod report;
pub mod report_cells;
pub mod rlimit;
pub mod rng;
pub mod sasl;
pub mod sasl2;
pub mod scenario;
pub mod sink;
pub mod sm;
pub mod soak;
pub mod source;
pub mod spawned;
pub mod stats;
pub mod tls;
pub mod ws;
pub mod xml;

use std::sync::Arc;

/// Records are `serde_json` values; re-exported so users need not depend on it.
pub use serde_json;

use serde_json::Value;

use crate::ctx::Ctx;
use crate::options::{Options, Scenario};

/// Runs one scenario to completion and returns its records; with more
/// than one `--transport`, once per transport, then a `transport_ratio`
/// record (WebSocket ÷ TCP).
pub fn run(opts: Options) -> Result<Vec<Value>, String> {
    if opts.transports.len() <= 1 {
        return run_one(opts);
    }
    let mut records = Vec::new();
    for &t in &opts.transports {
        let mut one = opts.clone();
        one.transport = t;
        one.transports = vec![t];
        if one.print {
            eprintln!(
                "[perch-load] {}: transport {}",
                one.scenario.name(),
                t.name()
            );
        }
        records.extend(run_one(one)?);
    }
    if let Some(ratio) = report::transport_ratio(&records, &opts.label, &opts.run) {
        if opts.print {
            println!("{ratio}");
            eprint!("{}", report::transport_ratio_table(&ratio));
        }
        records.push(ratio);
    }
    Ok(records)
}

fn run_one(opts: Options) -> Result<Vec<Value>, String> {
    let threads = opts.threads.max(1);
    let ex = Arc::new(smol::Executor::new());
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let mut helpers = Vec::new();
    for i in 1..threads {
        let (ex, stop) = (ex.clone(), stop_rx.clone());
        let t = std::thread::Builder::new()
            .name(format!("perch-load-{i}"))
            .spawn(move || smol::block_on(ex.run(stop.recv())))
            .map_err(|e| format!("starting a client thread: {e}"))?;
        helpers.push(t);
    }
    let ctx = Ctx::new(opts, ex.clone())?;
    let (failure, records) = smol::block_on(ex.run(async {
        // Only `guess` (a server that offers no PLAIN), `offline` (fewer
        // messages delivered than sent), `mam` (no archive to set up or
        // fill), `pep` (rosters not set up, a stream broken) and `upload`
        // (no service, no slot, a transfer refused or corrupted) can fail
        // as a whole; the others report their failures in their records.
        let mut failure = None;
        match ctx.opts.scenario {
            Scenario::Login => scenario::login::run(&ctx).await,
            Scenario::Idle => scenario::idle::run(&ctx).await,
            Scenario::Chat => scenario::chat::run(&ctx).await,
            Scenario::Muc => scenario::muc::run(&ctx).await,
            Scenario::Churn => scenario::churn::run(&ctx).await,
            Scenario::Register => scenario::register::run(&ctx).await,
            Scenario::Guess => failure = scenario::guess::run(&ctx).await.err(),
            Scenario::Offline => failure = scenario::offline::run(&ctx).await.err(),
            Scenario::Mam => failure = mam::run(&ctx).await.err(),
            Scenario::Pep => failure = pep::run(&ctx).await.err(),
            Scenario::Upload => failure = scenario::upload::run(&ctx).await.err(),
        }
        (failure, ctx.take_records())
    }));
    drop(stop_tx);
    for t in helpers {
        let _ = t.join();
    }
    if ctx.opts.print {
        eprint!("{}", report::run_table(&records));
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(records),
    }
}
