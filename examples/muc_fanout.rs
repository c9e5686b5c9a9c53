//! Prints how fast one room fans a groupchat message out to its occupants
//! and how much memory an occupant costs. A benchmark, not a test:
//!
//! ```sh
//! cargo run --release --example muc_fanout [occupants] [messages]
//! ```
//!
//! Every occupant is a bound local session, so each delivery is one copy
//! of the once-serialized message written into an outbox (the sockets are
//! left out: their cost is the kernel's). Memory is the process's resident
//! set (Linux `/proc/self/statm`) before and after the occupants join.

use std::rc::Rc;
use std::time::Instant;

use perch::config::Config;
use perch::jid::Jid;
use perch::server::Server;
use perch::session::{Batch, Outbox, Session};
use perch::store::Store;
use perch::testing::TempDir;
use perch::xml::Element;

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn send(server: &Server, from: &Session, xml: &str) {
    let Ok(mut stanza) = Element::parse(xml) else {
        eprintln!("bad stanza: {xml}");
        return;
    };
    stanza.set_attr("from", from.jid.as_str());
    if let Some(to) = stanza.attr("to").and_then(|t| Jid::parse(t).ok()) {
        // One section, as a client's stanza is handled.
        let rooms = server.muc().clone();
        let work = move |env: &perch::env::Env| perch::muc::handle(&rooms, env, stanza, &to);
        let _ = smol::block_on(perch::durable::run(server, Box::new(work)));
    }
}

fn drain(sessions: &[Rc<Session>], scratch: &mut Batch) -> usize {
    let mut bytes = 0;
    for s in sessions {
        s.outbox.drain(scratch);
        bytes += scratch.bytes().len();
        scratch.clear();
    }
    bytes
}

fn main() {
    let mut args = std::env::args().skip(1);
    let occupants: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let messages: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);

    let dir = TempDir::new("muc-bench");
    let config = Config::from_toml_str(
        &format!(
            "data_dir = \"{}\"\nlog_level = \"error\"\n[muc]\nmax_occupants = {}\nmessages_per_minute = 600000\nmessage_burst = 10000\n",
            dir.path().display(),
            occupants.max(1) + 10
        ),
        "bench",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let store =
        Store::open(&dir.path().join("perch.redb"), 4 << 20).unwrap_or_else(|e| panic!("{e}"));
    let server = Server::new(config, store);
    let room = "bench@conference.localhost";

    let bind = |name: &str| -> Rc<Session> {
        let jid = Jid::parse(&format!("{name}@localhost")).unwrap_or_else(|e| panic!("{e}"));
        server
            .bind(&jid, Some("bench"), Outbox::new())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let owner = bind("owner");
    send(
        &server,
        &owner,
        &format!(
            "<presence xmlns='jabber:client' to='{room}/owner'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ),
    );
    send(
        &server,
        &owner,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='c' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"
        ),
    );

    let before_sessions = rss_bytes();
    let sessions: Vec<Rc<Session>> = (0..occupants).map(|i| bind(&format!("user{i}"))).collect();
    let before_join = rss_bytes();
    let mut scratch = Batch::default();
    let mut join_time = std::time::Duration::ZERO;
    for (i, s) in sessions.iter().enumerate() {
        let t = Instant::now();
        send(
            &server,
            s,
            &format!(
                "<presence xmlns='jabber:client' to='{room}/user{i}'><x xmlns='http://jabber.org/protocol/muc'><history maxchars='0'/></x></presence>"
            ),
        );
        join_time += t.elapsed();
        // Joining costs every occupant a presence: empty the outboxes as
        // the connections would, so they do not count as room memory.
        drain(&sessions[..=i], &mut scratch);
    }
    drain(&sessions, &mut scratch);
    drain(std::slice::from_ref(&owner), &mut scratch);
    let after_join = rss_bytes();

    let sender = sessions.first().cloned().unwrap_or_else(|| owner.clone());
    let started = Instant::now();
    let mut delivered_bytes = 0usize;
    for n in 0..messages {
        send(
            &server,
            &sender,
            &format!(
                "<message xmlns='jabber:client' type='groupchat' id='m{n}' to='{room}'><body>Message number {n} to everyone in the room</body></message>"
            ),
        );
        delivered_bytes += drain(&sessions, &mut scratch);
        delivered_bytes += drain(std::slice::from_ref(&owner), &mut scratch);
    }
    let elapsed = started.elapsed();
    let deliveries = messages * (occupants + 1);

    println!("occupants: {occupants} (+ owner), messages: {messages}");
    println!(
        "joins: {:.1} ms for {occupants} ({:.1} µs each, every join announced to all)",
        join_time.as_secs_f64() * 1e3,
        join_time.as_secs_f64() * 1e6 / occupants.max(1) as f64
    );
    println!(
        "fan-out: {deliveries} deliveries in {:.1} ms: {:.0} deliveries/s, {:.1} µs per message, {:.1} MB written",
        elapsed.as_secs_f64() * 1e3,
        deliveries as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / messages.max(1) as f64,
        delivered_bytes as f64 / 1e6
    );
    if let (Some(a), Some(b), Some(c)) = (before_sessions, before_join, after_join) {
        let per = |x: u64, y: u64| (y.saturating_sub(x)) as f64 / occupants.max(1) as f64;
        println!(
            "memory: {:.0} bytes per bound session, {:.0} bytes per occupant in the room (RSS {:.1} MB)",
            per(a, b),
            per(b, c),
            c as f64 / 1e6
        );
    }
}
