//! `perch-load floor`: what fanning one small stanza out to K loopback
//! connections costs on this machine with no server at all.
//!
//! One OS thread plays an ideal single-threaded server: it holds the
//! accepting side of K TCP connections and, once per round, writes the
//! same groupchat-sized stanza to each of them (one `write` per
//! connection, `TCP_NODELAY`, as a server without batching must when the
//! room is quiet). The K client sides are read by tasks on the tool's
//! usual executor and threads, exactly as the `muc` scenario reads its
//! occupants. Each round reports how long the K writes took (the kernel's
//! share of any server's fan-out) and the time from the first write to the
//! moment the tool had read the last copy (the lowest "unloaded fan-out
//! latency" the `muc` scenario can show for K occupants here).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use smol::Async;
use smol::io::AsyncReadExt;

use crate::ctx::{latency_json, now_ns};
use crate::histogram::Histogram;

/// About the size of a groupchat message as Perch sends it to an occupant.
const STANZA: &[u8] =
    b"<message from='load@conference.localhost/load0' to='load1@localhost/perch-load' \
type='groupchat' id='m1' xmlns='jabber:client'><body>s=0 n=1 t=1234567890123</body></message>";

/// Quiet time before each round, so every round starts unloaded.
const GAP: Duration = Duration::from_millis(5);

/// Gives up on a round whose copies have not all arrived by then.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);

pub struct FloorOptions {
    pub occupants: usize,
    pub rounds: usize,
    pub threads: usize,
    /// The column the record lands in with `perch-load table`.
    pub label: String,
    pub run: Option<String>,
}

/// Runs the measurement; returns one JSON record per K.
pub fn run(opts: &FloorOptions) -> Result<serde_json::Value, String> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(opts.occupants);
    let mut servers = Vec::with_capacity(opts.occupants);
    for _ in 0..opts.occupants {
        let client = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        let (server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        server
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        clients.push(client);
        servers.push(server);
    }

    let ex = Arc::new(smol::Executor::new());
    let (stop_tx, stop_rx) = smol::channel::unbounded::<()>();
    let mut threads = Vec::new();
    for _ in 1..opts.threads.max(1) {
        let ex = ex.clone();
        let stop = stop_rx.clone();
        threads.push(std::thread::spawn(move || {
            smol::block_on(ex.run(stop.recv()))
        }));
    }

    // Copies read in the current round, and when the last one was read.
    let arrived = Arc::new(AtomicU64::new(0));
    let last_ns = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let arrived = arrived.clone();
            let last_ns = last_ns.clone();
            ex.spawn(async move {
                let Ok(mut client) = Async::new(client) else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut pending = 0usize;
                while let Ok(n) = client.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let now = now_ns();
                    pending += n;
                    let copies = pending / STANZA.len();
                    pending %= STANZA.len();
                    if copies > 0 {
                        last_ns.fetch_max(now, Ordering::Relaxed);
                        arrived.fetch_add(copies as u64, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    // The "server": its own OS thread, as a separate server process would be.
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let rounds = opts.rounds as u64;
    let k = opts.occupants as u64;
    let sender = {
        let arrived = arrived.clone();
        let last_ns = last_ns.clone();
        std::thread::spawn(move || {
            let mut writes = Histogram::new();
            let mut fanout = Histogram::new();
            let mut incomplete = 0u64;
            for round in 0..rounds {
                std::thread::sleep(GAP);
                let t0 = now_ns();
                for server in &mut servers {
                    if let Err(e) = server.write_all(STANZA) {
                        drop(done_tx);
                        return Err(format!("write: {e}"));
                    }
                }
                writes.record(now_ns().saturating_sub(t0));
                let expected = (round + 1) * k;
                let deadline = Instant::now() + ROUND_TIMEOUT;
                while arrived.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_micros(50));
                }
                if arrived.load(Ordering::Relaxed) < expected {
                    incomplete += 1;
                    break;
                }
                fanout.record(last_ns.load(Ordering::Relaxed).saturating_sub(t0));
            }
            drop(done_tx);
            Ok((writes, fanout, incomplete))
        })
    };
    smol::block_on(ex.run(done_rx.recv())).ok();
    drop(stop_tx);
    for t in threads {
        let _ = t.join();
    }
    drop(readers);
    let (writes, fanout, incomplete) = sender
        .join()
        .map_err(|_| "the sending thread panicked".to_string())??;
    let per_write_us = writes
        .quantile(0.5)
        .map(|ns| (ns as f64 / opts.occupants.max(1) as f64 / 10.0).round() / 100.0);
    let mut record = json!({
        "scenario": "floor", "label": opts.label, "occupants": opts.occupants,
        "rounds": writes.count(), "incomplete_rounds": incomplete,
        "stanza_bytes": STANZA.len(),
        "writes": latency_json(&writes),
        "write_us_p50": per_write_us,
        "fanout_latency": latency_json(&fanout),
    });
    if let Some(run) = &opts.run {
        record["run"] = run.as_str().into();
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_reaches_every_connection() {
        let rec = run(&FloorOptions {
            occupants: 5,
            rounds: 3,
            threads: 1,
            label: "floor".into(),
            run: None,
        })
        .unwrap();
        assert_eq!(rec["rounds"], 3);
        assert_eq!(rec["incomplete_rounds"], 0);
        assert_eq!(rec["fanout_latency"]["n"], 3);
        assert!(rec["writes"]["p50_ms"].as_f64().unwrap() > 0.0);
        assert!(rec["write_us_p50"].as_f64().unwrap() > 0.0);
    }
}
