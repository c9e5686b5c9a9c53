//! The archive across a crash of the real binary (SIGKILL, then a restart
//! on the same data directory): nothing a client was shown may be lost.
//!
//! - A stored, archived room with 3 occupants who send 1000 messages
//!   between them as fast as they can (each keeps 10 in flight). After a
//!   random number (100-900) of reflections the server is killed. Every
//!   message an occupant saw reflected (its XEP-0359 stanza id) must be
//!   in the room's archive after the restart, under the same id, in the
//!   order the occupants saw; and a new occupant's join history must be
//!   the newest N messages of that archive (N = the room's history
//!   length), so none reflected is missing from it.
//! - One-to-one: a client with stream management sends 500 chat messages
//!   to another local account, asking for acks; the server is killed
//!   after the recipient got a random number (50-450) of them. Every
//!   message the server acknowledged (`<a h/>`) or the recipient received
//!   must be in the sender's archive after the restart (which must be
//!   what the sender sent, in order, up to some message, with no gap),
//!   and every message received in the recipient's archive, under the
//!   stanza id it arrived with.
//!
//! The kill point comes from a seed taken from the clock and printed;
//! `PERCH_ARCHIVE_CRASH_SEED=N` replays one.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::process::Server;
use common::*;
use perch::testing::TempDir;
use perch::xml::Element;
use rustix::process::Signal;

const ROOM: &str = "crash@conference.localhost";
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_SID: &str = "urn:xmpp:sid:0";
const NS_SM: &str = "urn:xmpp:sm:3";

/// The occupants (the first owns the room) and the one who joins after
/// the restart.
const OCCUPANTS: [(&str, &str); 3] = [
    ("ann", "ann-password"),
    ("ben", "ben-password"),
    ("cat", "cat-password"),
];
const NEWCOMER: (&str, &str) = ("dan", "dan-password");
/// The one-to-one sender and recipient.
const SENDER: (&str, &str) = ("sam", "sam-password");
const RECIPIENT: (&str, &str) = ("rita", "rita-password");

const ROOM_MESSAGES: usize = 1000;
/// The room's history length (`muc#maxhistoryfetch`).
const HISTORY: usize = 200;
const CHAT_MESSAGES: usize = 500;
/// Messages a sender has in flight before it waits for their reflection
/// (or, one-to-one, for the server's ack).
const BATCH: usize = 10;
/// Results asked for per archive page (the server caps it at 250).
const PAGE: usize = 250;
/// How long the senders may take to reach the kill point.
const RUN_LIMIT: Duration = Duration::from_secs(40);

/// The seed of this run: `PERCH_ARCHIVE_CRASH_SEED`, else the clock.
fn seed() -> u64 {
    let seed = std::env::var("PERCH_ARCHIVE_CRASH_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    println!("seed {seed} (replay with PERCH_ARCHIVE_CRASH_SEED={seed})");
    seed
}

/// splitmix64: a number in `lo..=hi` from `seed`.
fn pick(seed: u64, lo: usize, hi: usize) -> usize {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    lo + (z % (hi - lo + 1) as u64) as usize
}

/// A data directory, a configuration for `perch run` on a free port (no
/// room rate limit: the senders flood on purpose), and the accounts.
fn setup(dir: &TempDir, accounts: &[(&str, &str)]) -> PathBuf {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let text = format!(
        "data_dir = \"{}\"\nlog_level = \"info\"\n\n[[host]]\ndomain = \"localhost\"\n\n\
         [[listener]]\nkind = \"c2s\"\naddress = \"127.0.0.1\"\nport = {port}\n\n\
         [c2s]\nrequire_encryption = false\nallow_plaintext_auth = true\n\n\
         [muc]\nmessage_burst = 10000\nmessages_per_minute = 600000\nmax_history = 500\n",
        dir.path().join("data").display()
    );
    let config = dir.path().join("perch.toml");
    std::fs::write(&config, text).expect("config");
    common::process::create_database(&dir.path().join("data"));
    for (user, password) in accounts {
        common::process::user(
            &config,
            &["add", &format!("{user}@localhost"), "--password-stdin"],
            Some(&format!("{password}\n")),
        )
        .expect_code(0);
    }
    config
}

/// Kills the server with SIGKILL and waits for it to be gone.
fn kill(server: &mut Server) {
    server.signal(Signal::KILL);
    assert!(
        server.wait_exit(Duration::from_secs(10)).is_some(),
        "perch run did not die of SIGKILL"
    );
}

/// Waits until `count` reaches `target`, or every thread of `clients` is
/// done (their connections ended), or the run's limit; says which.
fn wait_for_count(count: &AtomicUsize, target: usize, clients: &[JoinHandle<Log>]) -> String {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        let now = count.load(Ordering::SeqCst);
        if now >= target {
            return format!("{now} counted");
        }
        if clients.iter().all(JoinHandle::is_finished) {
            return format!("the clients stopped at {now} of {target}");
        }
        if Instant::now() >= deadline {
            return format!("only {now} of {target} within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// What one client thread saw until the server went away.
#[derive(Default)]
struct Log {
    /// Messages received: (stanza id, body), in order.
    received: Vec<(String, String)>,
    /// One-to-one sender: the highest `h` the server acknowledged.
    acked: usize,
    /// Messages written to the socket.
    sent: usize,
    /// Anything wrong that is not the crash (a missing stanza id, an error
    /// answer).
    problems: Vec<String>,
    /// How the connection ended.
    ended: String,
}

/// The stanza id `by` put on `el`; a problem if there is not exactly one.
fn stanza_id(el: &Element, by: &str) -> Result<String, String> {
    let ids: Vec<&Element> = el
        .children()
        .filter(|c| c.is("stanza-id", NS_SID) && c.attr("by") == Some(by))
        .collect();
    match ids.as_slice() {
        [one] => one
            .attr("id")
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("a stanza id without an id: {el}")),
        _ => Err(format!("{} stanza ids by {by} on {el}", ids.len())),
    }
}

fn body_of(el: &Element) -> Option<String> {
    el.get_child("body", NS_CLIENT).map(Element::text)
}

/// One archived message as a MAM result shows it.
#[derive(Clone, Debug)]
struct Archived {
    /// The result's id.
    id: String,
    body: String,
    /// The stanza id by `by` inside the archived message, if any.
    inner_id: Option<String>,
}

/// Every message of an archive (`to`: a room; `None`: the account's own),
/// oldest first, paging with RSM `<after/>` until `<fin complete='true'/>`.
fn archive(client: &mut Client, to: Option<&str>, with: Option<&str>, by: &str) -> Vec<Archived> {
    let to_attr = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
    let form = with
        .map(|w| {
            format!(
                "<x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE' type='hidden'><value>{NS_MAM}</value></field>\
                 <field var='with'><value>{w}</value></field></x>"
            )
        })
        .unwrap_or_default();
    let mut all: Vec<Archived> = Vec::new();
    for page in 0.. {
        assert!(page < 100, "{} pages and not complete", page);
        let qid = format!("q{page}");
        let after = all
            .last()
            .map(|a| format!("<after>{}</after>", a.id))
            .unwrap_or_default();
        client.send(&format!(
            "<iq type='set' id='{qid}'{to_attr}><query xmlns='{NS_MAM}' queryid='{qid}'>{form}\
             <set xmlns='{NS_RSM}'><max>{PAGE}</max>{after}</set></query></iq>"
        ));
        let mut got = 0;
        let fin = loop {
            let el = client.element();
            if el.is("iq", NS_CLIENT) && el.attr("id") == Some(qid.as_str()) {
                assert_eq!(el.attr("type"), Some("result"), "archive query: {el}");
                break el
                    .get_child("fin", NS_MAM)
                    .unwrap_or_else(|| panic!("no <fin/>: {el}"))
                    .clone();
            }
            let Some(result) = el.get_child("result", NS_MAM) else {
                continue;
            };
            assert_eq!(result.attr("queryid"), Some(qid.as_str()), "{el}");
            let message = result
                .get_child("forwarded", NS_FORWARD)
                .and_then(|f| f.get_child("message", NS_CLIENT))
                .unwrap_or_else(|| panic!("a result without a forwarded message: {el}"));
            all.push(Archived {
                id: result.attr("id").unwrap_or_default().to_string(),
                body: body_of(message).unwrap_or_default(),
                inner_id: stanza_id(message, by).ok(),
            });
            got += 1;
        };
        if fin.attr("complete") == Some("true") {
            break;
        }
        assert!(got > 0, "an empty page that is not the last: {fin}");
    }
    all
}

/// Joins the room as `nick` and reads up to its own presence; `history`
/// is the `<history/>` element to send, if any.
fn join(client: &mut Client, nick: &str, history: &str) -> Element {
    client.send(&format!(
        "<presence to='{ROOM}/{nick}'><x xmlns='{NS_MUC}'>{history}</x></presence>"
    ));
    let me = format!("{ROOM}/{nick}");
    client.element_matching(&format!("{nick}'s own presence in the room"), |el| {
        el.is("presence", NS_CLIENT) && el.attr("from") == Some(me.as_str())
    })
}

/// An occupant sending `count` messages, `BATCH` at a time, each batch
/// once the last one came back; it reads every reflection until the
/// connection ends. `reflected` counts its own reflections.
fn occupant(
    mut client: Client,
    nick: &'static str,
    count: usize,
    reflected: Arc<AtomicUsize>,
) -> Log {
    let mut log = Log::default();
    let me = format!("{ROOM}/{nick}");
    let mut waiting_for: Option<String> = None;
    loop {
        if waiting_for.is_none() && log.sent < count {
            let batch = BATCH.min(count - log.sent);
            let mut text = String::new();
            let mut last = String::new();
            for _ in 0..batch {
                last = format!("{nick}-{:04}", log.sent + 1);
                text.push_str(&format!(
                    "<message to='{ROOM}' type='groupchat' id='{last}'><body>{last}</body></message>"
                ));
                log.sent += 1;
            }
            if let Err(e) = client.try_send(&text) {
                log.ended = e;
                return log;
            }
            waiting_for = Some(last);
        }
        let el = match client.try_next_event() {
            Ok(Event::Element(el)) => el,
            Ok(other) => {
                log.ended = format!("{other:?}");
                return log;
            }
            Err(e) => {
                log.ended = e;
                return log;
            }
        };
        if !el.is("message", NS_CLIENT) {
            continue;
        }
        if el.attr("type") == Some("error") {
            log.problems.push(format!("{nick} got an error: {el}"));
            continue;
        }
        let Some(body) = body_of(&el) else {
            continue;
        };
        match stanza_id(&el, ROOM) {
            Ok(id) => log.received.push((id, body.clone())),
            Err(e) => log
                .problems
                .push(format!("{nick}: reflection of {body}: {e}")),
        }
        if el.attr("from") == Some(me.as_str()) {
            reflected.fetch_add(1, Ordering::SeqCst);
            if waiting_for.as_deref() == Some(body.as_str()) {
                waiting_for = None;
            }
        }
    }
}

/// The log of a client thread (its panic fails the test).
fn joined(handle: JoinHandle<Log>, who: &str) -> Log {
    handle
        .join()
        .unwrap_or_else(|_| panic!("{who}'s thread panicked"))
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn room_archive_and_join_history_keep_every_reflected_message_after_sigkill() {
    let seed = seed();
    let kill_at = pick(seed, 100, 900);
    println!("killing after {kill_at} reflections");
    let dir = TempDir::new("archive-crash-room");
    let mut accounts = OCCUPANTS.to_vec();
    accounts.push(NEWCOMER);
    let config = setup(&dir, &accounts);
    let mut server = Server::start(&config);
    let addr = server.c2s();

    // The owner creates the room and makes it stored and archived, with
    // a join history of HISTORY messages.
    let mut clients: Vec<Client> = OCCUPANTS
        .iter()
        .map(|account| login_at(addr, *account, Some("crash")))
        .collect();
    let created = join(&mut clients[0], OCCUPANTS[0].0, "");
    let new_room = created.get_child("x", NS_MUC_USER).is_some_and(|x| {
        x.children()
            .any(|s| s.name == "status" && s.attr("code") == Some("201"))
    });
    assert!(new_room, "the room should be new: {created}");
    clients[0].send(&format!(
        "<iq type='set' id='config' to='{ROOM}'><query xmlns='{NS_MUC_OWNER}'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
         <field var='muc#roomconfig_persistentroom'><value>1</value></field>\
         <field var='muc#roomconfig_enablearchiving'><value>1</value></field>\
         <field var='muc#roomconfig_enablelogging'><value>1</value></field>\
         <field var='muc#maxhistoryfetch'><value>{HISTORY}</value></field>\
         </x></query></iq>"
    ));
    if let Err(e) = clients[0].try_iq_result("config") {
        panic!("configuring the room: {e}");
    }
    for (client, (nick, _)) in clients.iter_mut().zip(OCCUPANTS).skip(1) {
        join(client, nick, "<history maxstanzas='0'/>");
    }

    // Everyone floods the room; the server dies at the chosen point.
    let reflected = Arc::new(AtomicUsize::new(0));
    let share = ROOM_MESSAGES / OCCUPANTS.len();
    let threads: Vec<JoinHandle<Log>> = clients
        .into_iter()
        .zip(OCCUPANTS)
        .enumerate()
        .map(|(i, (client, (nick, _)))| {
            let count = if i == 0 {
                ROOM_MESSAGES - share * (OCCUPANTS.len() - 1)
            } else {
                share
            };
            let reflected = reflected.clone();
            std::thread::spawn(move || occupant(client, nick, count, reflected))
        })
        .collect();
    let reached = wait_for_count(&reflected, kill_at, &threads);
    kill(&mut server);
    let logs: Vec<(&str, Log)> = threads
        .into_iter()
        .zip(OCCUPANTS)
        .map(|(t, (nick, _))| (nick, joined(t, nick)))
        .collect();
    assert!(
        reflected.load(Ordering::SeqCst) >= kill_at,
        "the occupants did not reach {kill_at} reflections before the kill ({reached}); \
         how each connection ended: {:?}",
        logs.iter().map(|(n, l)| (n, &l.ended)).collect::<Vec<_>>()
    );
    let problems: Vec<&String> = logs.iter().flat_map(|(_, l)| &l.problems).collect();
    assert!(problems.is_empty(), "before the kill: {problems:#?}");

    // What the occupants saw: one id per message, whoever saw it.
    let mut seen: HashMap<String, String> = HashMap::new();
    for (nick, log) in &logs {
        for (id, body) in &log.received {
            if let Some(other) = seen.insert(id.clone(), body.clone())
                && other != *body
            {
                panic!("{nick}: stanza id {id} on both {other:?} and {body:?}");
            }
        }
    }
    let sent: HashSet<String> = logs
        .iter()
        .flat_map(|(nick, log)| (1..=log.sent).map(move |n| format!("{nick}-{n:04}")))
        .collect();
    println!(
        "killed at {reached}: {} messages sent, {} distinct reflected; each saw {:?}",
        sent.len(),
        seen.len(),
        logs.iter()
            .map(|(n, l)| (n, l.received.len()))
            .collect::<Vec<_>>()
    );

    let server = Server::start(&config);
    let addr = server.c2s();
    let mut newcomer = login_at(addr, NEWCOMER, Some("after"));

    // The join history: the messages before the subject.
    join(&mut newcomer, NEWCOMER.0, "");
    let mut history: Vec<(String, String)> = Vec::new();
    loop {
        let el = newcomer.element();
        if !el.is("message", NS_CLIENT) {
            continue;
        }
        if el.get_child("subject", NS_CLIENT).is_some() {
            break;
        }
        let body = body_of(&el).unwrap_or_else(|| panic!("history without a body: {el}"));
        let id = stanza_id(&el, ROOM).unwrap_or_else(|e| panic!("join history: {e}"));
        history.push((id, body));
    }

    let archived = archive(&mut newcomer, Some(ROOM), None, ROOM);
    println!(
        "after the restart: {} archived, {} in the join history",
        archived.len(),
        history.len()
    );
    drop(server);

    // The archive: each message once, one the occupants sent, its result
    // id the stanza id it carries.
    let mut position: HashMap<&str, usize> = HashMap::new();
    for (i, a) in archived.iter().enumerate() {
        assert!(
            sent.contains(&a.body),
            "the archive holds {:?}, which nobody sent",
            a.body
        );
        assert_eq!(
            a.inner_id.as_deref(),
            Some(a.id.as_str()),
            "archived {:?}: the result id and the stanza id inside differ",
            a.body
        );
        if let Some(before) = position.insert(a.id.as_str(), i) {
            panic!("id {} is archived twice (at {before} and {i})", a.id);
        }
    }
    let bodies: HashSet<&str> = archived.iter().map(|a| a.body.as_str()).collect();
    assert_eq!(bodies.len(), archived.len(), "a body is archived twice");

    // Every reflected message is there, under its id, in the order each
    // occupant saw.
    let mut missing: Vec<(&String, &String)> = seen
        .iter()
        .filter(|(id, _)| !position.contains_key(id.as_str()))
        .collect();
    missing.sort_by(|a, b| a.1.cmp(b.1));
    assert!(
        missing.is_empty(),
        "{} of {} reflected messages are not in the room's archive after the restart \
         ({} archived), e.g. {:?}",
        missing.len(),
        seen.len(),
        archived.len(),
        &missing[..missing.len().min(10)]
    );
    for (id, body) in &seen {
        let a = &archived[position[id.as_str()]];
        assert_eq!(&a.body, body, "id {id} was reflected on {body:?}");
    }
    for (nick, log) in &logs {
        let order: Vec<usize> = log
            .received
            .iter()
            .map(|(id, _)| position[id.as_str()])
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "{nick} saw the reflections in another order than the archive's"
        );
    }

    // The join history is the archive's newest HISTORY messages: nothing
    // reflected that belongs there is missing.
    let newest: Vec<(String, String)> = archived[archived.len().saturating_sub(HISTORY)..]
        .iter()
        .map(|a| (a.id.clone(), a.body.clone()))
        .collect();
    let in_history: HashSet<&str> = history.iter().map(|(id, _)| id.as_str()).collect();
    let oldest_kept = archived.len().saturating_sub(HISTORY);
    let left_out: Vec<&String> = seen
        .iter()
        .filter(|(id, _)| position[id.as_str()] >= oldest_kept && !in_history.contains(id.as_str()))
        .map(|(_, body)| body)
        .collect();
    assert!(
        left_out.is_empty(),
        "reflected messages among the newest {HISTORY} are missing from the join history: \
         {left_out:?}"
    );
    assert_eq!(
        history.len(),
        newest.len(),
        "the join history should hold the newest {} archived messages",
        newest.len()
    );
    assert_eq!(
        history, newest,
        "the join history is not the archive's newest messages"
    );
}

/// The one-to-one sender: `CHAT_MESSAGES` chat messages to the recipient,
/// `BATCH` at a time, each batch followed by `<r/>` and sent once the
/// server acknowledged the one before.
fn sender(mut client: Client) -> Log {
    let mut log = Log::default();
    let mut waiting = false;
    loop {
        if !waiting && log.sent < CHAT_MESSAGES {
            let mut text = String::new();
            for _ in 0..BATCH.min(CHAT_MESSAGES - log.sent) {
                log.sent += 1;
                let body = format!("chat-{:04}", log.sent);
                text.push_str(&format!(
                    "<message to='{}@localhost' type='chat' id='{body}'><body>{body}</body></message>",
                    RECIPIENT.0
                ));
            }
            text.push_str(&format!("<r xmlns='{NS_SM}'/>"));
            if let Err(e) = client.try_send(&text) {
                log.ended = e;
                return log;
            }
            waiting = true;
        }
        let el = match client.try_next_event() {
            Ok(Event::Element(el)) => el,
            Ok(other) => {
                log.ended = format!("{other:?}");
                return log;
            }
            Err(e) => {
                log.ended = e;
                return log;
            }
        };
        if el.is("a", NS_SM) {
            match el.attr("h").and_then(|h| h.parse::<usize>().ok()) {
                Some(h) if h <= log.sent => {
                    log.acked = log.acked.max(h);
                    if h == log.sent {
                        waiting = false;
                    } else if let Err(e) = client.try_send(&format!("<r xmlns='{NS_SM}'/>")) {
                        // Not all handled yet: ask again.
                        log.ended = e;
                        return log;
                    }
                }
                _ => log
                    .problems
                    .push(format!("a bad ack for {} sent: {el}", log.sent)),
            }
        } else if el.is("r", NS_SM) {
            // Nothing but acks has come this way.
            let _ = client.try_send(&format!("<a xmlns='{NS_SM}' h='0'/>"));
        } else if el.attr("type") == Some("error") {
            log.problems.push(format!("the sender got an error: {el}"));
        }
    }
}

/// The one-to-one recipient: reads messages until the connection ends.
fn recipient(mut client: Client, received: Arc<AtomicUsize>) -> Log {
    let mut log = Log::default();
    let by = format!("{}@localhost", RECIPIENT.0);
    loop {
        let el = match client.try_next_event() {
            Ok(Event::Element(el)) => el,
            Ok(other) => {
                log.ended = format!("{other:?}");
                return log;
            }
            Err(e) => {
                log.ended = e;
                return log;
            }
        };
        if !el.is("message", NS_CLIENT) {
            continue;
        }
        let Some(body) = body_of(&el) else {
            continue;
        };
        match stanza_id(&el, &by) {
            Ok(id) => log.received.push((id, body)),
            Err(e) => log.problems.push(format!("the recipient got {body}: {e}")),
        }
        received.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn chat_archive_keeps_every_acknowledged_or_delivered_message_after_sigkill() {
    let seed = seed();
    let kill_at = pick(seed, 50, 450);
    println!("killing after {kill_at} messages received");
    let dir = TempDir::new("archive-crash-chat");
    let config = setup(&dir, &[SENDER, RECIPIENT]);
    let mut server = Server::start(&config);
    let addr = server.c2s();

    let mut rita = login_at(addr, RECIPIENT, Some("phone"));
    rita.send("<presence/>");
    let pong = rita.ping("available");
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
    let mut sam = login_at(addr, SENDER, Some("laptop"));
    sam.send(&format!("<enable xmlns='{NS_SM}'/>"));
    let enabled = sam.element();
    assert!(enabled.is("enabled", NS_SM), "{enabled}");

    let received = Arc::new(AtomicUsize::new(0));
    let counted = received.clone();
    let threads = vec![
        std::thread::spawn(move || recipient(rita, counted)),
        std::thread::spawn(move || sender(sam)),
    ];
    let reached = wait_for_count(&received, kill_at, &threads[..1]);
    kill(&mut server);
    let mut threads = threads.into_iter();
    let rita_log = joined(threads.next().expect("recipient"), "the recipient");
    let sam_log = joined(threads.next().expect("sender"), "the sender");
    assert!(
        received.load(Ordering::SeqCst) >= kill_at,
        "the recipient did not get {kill_at} messages before the kill ({reached}); \
         the sender's connection ended with {:?}, the recipient's with {:?}",
        sam_log.ended,
        rita_log.ended
    );
    let problems: Vec<&String> = sam_log.problems.iter().chain(&rita_log.problems).collect();
    assert!(problems.is_empty(), "before the kill: {problems:#?}");
    let sent: Vec<String> = (1..=sam_log.sent).map(|n| format!("chat-{n:04}")).collect();
    let got: Vec<&str> = rita_log.received.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        got,
        sent[..got.len()]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "the recipient got the messages out of order or twice"
    );
    println!(
        "killed at {reached}: {} sent, {} acknowledged, {} received",
        sam_log.sent,
        sam_log.acked,
        got.len()
    );

    let server = Server::start(&config);
    let addr = server.c2s();
    let mut sam = login_at(addr, SENDER, Some("after"));
    let rita_bare = format!("{}@localhost", RECIPIENT.0);
    let sam_bare = format!("{}@localhost", SENDER.0);
    let in_sent = archive(&mut sam, None, Some(&rita_bare), &sam_bare);
    let mut rita = login_at(addr, RECIPIENT, Some("after"));
    let in_received = archive(&mut rita, None, Some(&sam_bare), &rita_bare);
    drop(server);
    println!(
        "after the restart: {} in the sender's archive, {} in the recipient's",
        in_sent.len(),
        in_received.len()
    );

    // The sender's archive is what it sent, from the first message up to
    // some message, each once; it reaches past everything acknowledged
    // and everything delivered.
    let bodies: Vec<&str> = in_sent.iter().map(|a| a.body.as_str()).collect();
    let must = sam_log.acked.max(got.len());
    assert!(
        bodies.len() >= must,
        "the sender's archive holds {} messages, but {} were acknowledged and {} delivered; \
         missing: {:?}",
        bodies.len(),
        sam_log.acked,
        got.len(),
        sent[..must]
            .iter()
            .filter(|b| !bodies.contains(&b.as_str()))
            .collect::<Vec<_>>()
    );
    assert!(
        bodies.len() <= sent.len(),
        "the sender's archive holds {} messages of {} sent",
        bodies.len(),
        sent.len()
    );
    assert_eq!(
        bodies,
        sent[..bodies.len()]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "the sender's archive is not the messages sent, in order, without a gap"
    );

    // The recipient's archive holds every message it received, under the
    // stanza id it came with.
    let ids: HashMap<&str, &str> = in_received
        .iter()
        .map(|a| (a.body.as_str(), a.id.as_str()))
        .collect();
    for (id, body) in &rita_log.received {
        match ids.get(body.as_str()) {
            Some(archived) => assert_eq!(
                archived, id,
                "{body} arrived with stanza id {id}, but is archived under {archived}"
            ),
            None => panic!(
                "{body} was delivered with stanza id {id} but is not in the recipient's archive \
                 ({} archived)",
                in_received.len()
            ),
        }
    }
    let received_bodies: Vec<&str> = in_received.iter().map(|a| a.body.as_str()).collect();
    assert_eq!(
        received_bodies,
        sent[..received_bodies.len()]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "the recipient's archive is not the messages sent, in order, without a gap"
    );
}
