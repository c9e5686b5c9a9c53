//! Federation with servers of other makes: Debian's Prosody 0.12 and
//! ejabberd 23.01, each an instance of the test's own (its configuration,
//! data and logs in a temp dir, loopback ports only; never the system
//! service or configuration). Checked, one test each:
//!
//! 1. [`prosody_messages_and_subscriptions`]: a Perch user and a Prosody
//!    user exchange messages both ways and subscribe to each other; each
//!    gets the other's `subscribed` presence and both rosters end `both`.
//! 2. [`ejabberd_user_talks_in_a_perch_room`]: an ejabberd user joins a
//!    room of Perch's MUC (conference.perch.test) and talks; the Perch
//!    occupant gets the groupchat message, and the other way round.
//! 3. [`perch_user_talks_in_a_prosody_room`]: a Perch user joins a room of
//!    Prosody's MUC (conference.prosody.test) and talks with a Prosody
//!    user there.
//!
//! Names: the servers find each other through DNS (no `[[s2s.route]]`).
//! Each test runs a dnsmasq of its own on a loopback address of
//! its own (127.0.0.77 upward; port 53, as resolv.conf cannot name
//! another) that answers the `.test` zone only: `_xmpp-server._tcp` SRV
//! records of each domain and its conference subdomain, pointing at the
//! servers' s2s ports, and A records 127.0.0.1. It has no upstream, so no
//! look-up of a test name reaches the machine's resolver. Perch asks it
//! through `[s2s] dns_server`; the peers read /etc/resolv.conf, so each
//! runs in a mount namespace of its own (`unshare -m`) in which a
//! resolv.conf naming only that dnsmasq is bind-mounted over the real one.
//!
//! Security: every stream between the servers is encrypted. Perch keeps
//! `[s2s] require_encryption` at its default (true) and both peers require
//! STARTTLS too, so a stanza that crosses proves TLS was negotiated; each
//! test also checks in the peer's log that its streams with Perch, both
//! ways, were encrypted. The certificates are self-signed, so the servers
//! prove their domains with dialback (XEP-0220).
//!
//! Every client is the shared test client, logging in with SASL PLAIN over
//! plaintext c2s (the peers are configured to allow it). The peers'
//! configurations are templates in `tests/interop/s2s/`. A failure
//! message ends with the peer's and dnsmasq's log tails; each step's
//! duration is printed; with `PERCH_INTEROP_DEBUG` set (non-empty) the
//! temp dir, with the configurations and whole logs, is kept.
//!
//! Needs root (mount namespaces, port 53) and `apt-get install prosody
//! ejabberd dnsmasq-base`; without them a test says so and passes, except
//! when `CI` is set (non-empty), where it fails.

mod common;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::interop::{can_run, debug};
use common::process::{Captured, capture_within};
use common::*;
use perch::testing::{TempDir, TestOptions, TestServer, scaled};
use perch::xml::Element;
use rustix::process::{Pid, Signal, kill_process_group};

const PERCH: &str = "perch.test";
const PROSODY: &str = "prosody.test";
const EJABBERD: &str = "ejabberd.test";
/// alice@perch.test, bob@prosody.test, carol@ejabberd.test.
const ALICE: (&str, &str) = ("alice", "pw-alice");
const BOB: (&str, &str) = ("bob", "pw-bob");
const CAROL: (&str, &str) = ("carol", "pw-carol");
const NS_MUC: &str = "http://jabber.org/protocol/muc";

const PROSODY_CONFIG: &str = include_str!("interop/s2s/prosody.cfg.lua");
const EJABBERD_CONFIG: &str = include_str!("interop/s2s/ejabberd.yml");
const EJABBERDCTL_CONFIG: &str = include_str!("interop/s2s/ejabberdctl.cfg");
const EJABBERD_INETRC: &str = include_str!("interop/s2s/inetrc");

/// Loopback addresses tried in turn for a test's dnsmasq: tests run in
/// parallel (and so may other test processes), each needs port 53 of an
/// address of its own, and dnsmasq refuses one that is taken.
const DNS_ADDRESSES: std::ops::RangeInclusive<u8> = 77..=126;

// ---------------------------------------------------------------------------
// The tests.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's prosody and dnsmasq against the server"
)]
fn prosody_messages_and_subscriptions() {
    let Some(mut world) = World::start("prosody_messages_and_subscriptions", Peer::Prosody) else {
        return;
    };
    world.check(|world| {
        let mut alice = world.perch_user(ALICE, "phone");
        let mut bob = world.peer_user(BOB, "desk");
        let (alice_jid, bob_jid) = (bare(ALICE.0, PERCH), bare(BOB.0, PROSODY));

        // A message each way: the first one brings up the link (DNS, TLS,
        // dialback) from Perch to Prosody, the answer the one back.
        world.steps.begin("message perch → prosody");
        alice.send(&format!(
            "<message to='{bob_jid}' type='chat' id='m1'><body>hello from perch</body></message>"
        ));
        let got = wait_for(&mut bob, "alice's message", |el| {
            el.name == "message" && body(el) == "hello from perch"
        });
        assert_eq!(got.attr("from"), Some("alice@perch.test/phone"), "{got}");
        world.steps.begin("message prosody → perch");
        bob.send(&format!(
            "<message to='{alice_jid}/phone' type='chat' id='m2'><body>hello from prosody</body></message>"
        ));
        let got = wait_for(&mut alice, "bob's message", |el| {
            el.name == "message" && body(el) == "hello from prosody"
        });
        assert_eq!(got.attr("from"), Some("bob@prosody.test/desk"), "{got}");

        // Mutual subscription (RFC 6121 §3): alice asks, bob approves and
        // asks back, alice approves.
        world.steps.begin("subscriptions");
        alice.send(&format!("<presence to='{bob_jid}' type='subscribe'/>"));
        wait_for(&mut bob, "alice's subscription request", |el| {
            is_presence(el, "subscribe", &alice_jid)
        });
        bob.send(&format!("<presence to='{alice_jid}' type='subscribed'/>"));
        bob.send(&format!("<presence to='{alice_jid}' type='subscribe'/>"));
        wait_all(
            &mut alice,
            &[
                ("bob's subscribed", &|el| {
                    is_presence(el, "subscribed", &bob_jid)
                }),
                ("bob's subscription request", &|el| {
                    is_presence(el, "subscribe", &bob_jid)
                }),
            ],
        );
        alice.send(&format!("<presence to='{bob_jid}' type='subscribed'/>"));
        wait_for(&mut bob, "alice's subscribed", |el| {
            is_presence(el, "subscribed", &alice_jid)
        });
        world.steps.begin("rosters both");
        roster_reaches(&mut alice, &bob_jid, "both");
        roster_reaches(&mut bob, &alice_jid, "both");
    });
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's ejabberd and dnsmasq against the server"
)]
fn ejabberd_user_talks_in_a_perch_room() {
    let Some(mut world) = World::start("ejabberd_user_talks_in_a_perch_room", Peer::Ejabberd)
    else {
        return;
    };
    world.check(|world| {
        let room = "club@conference.perch.test";
        let mut alice = world.perch_user(ALICE, "phone");
        world.steps.begin("room created on perch");
        create_room(&mut alice, room, "alice");
        let mut carol = world.peer_user(CAROL, "laptop");

        world.steps.begin("ejabberd user joins");
        join_room(&mut carol, room, "carol");
        wait_for(&mut alice, "carol joining", |el| {
            el.name == "presence"
                && el.attr("from") == Some(format!("{room}/carol").as_str())
                && el.attr("type").is_none()
        });

        world.steps.begin("groupchat ejabberd → perch");
        carol.send(&format!(
            "<message to='{room}' type='groupchat' id='g1'><body>hello from ejabberd</body></message>"
        ));
        let got = wait_for(&mut alice, "carol's groupchat message", |el| {
            el.name == "message" && body(el) == "hello from ejabberd"
        });
        assert_eq!(got.attr("from"), Some(&*format!("{room}/carol")), "{got}");
        assert_eq!(got.attr("type"), Some("groupchat"), "{got}");
        // The room reflects it to its sender too (XEP-0045 §7.4).
        wait_for(&mut carol, "the reflection of carol's message", |el| {
            el.name == "message" && body(el) == "hello from ejabberd"
        });

        world.steps.begin("groupchat perch → ejabberd");
        alice.send(&format!(
            "<message to='{room}' type='groupchat' id='g2'><body>hello from perch</body></message>"
        ));
        let got = wait_for(&mut carol, "alice's groupchat message", |el| {
            el.name == "message" && body(el) == "hello from perch"
        });
        assert_eq!(got.attr("from"), Some(&*format!("{room}/alice")), "{got}");
    });
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's prosody and dnsmasq against the server"
)]
fn perch_user_talks_in_a_prosody_room() {
    let Some(mut world) = World::start("perch_user_talks_in_a_prosody_room", Peer::Prosody) else {
        return;
    };
    world.check(|world| {
        let room = "lounge@conference.prosody.test";
        let mut bob = world.peer_user(BOB, "desk");
        world.steps.begin("room created on prosody");
        create_room(&mut bob, room, "bob");
        let mut alice = world.perch_user(ALICE, "phone");

        world.steps.begin("perch user joins");
        join_room(&mut alice, room, "alice");
        wait_for(&mut bob, "alice joining", |el| {
            el.name == "presence"
                && el.attr("from") == Some(format!("{room}/alice").as_str())
                && el.attr("type").is_none()
        });

        world.steps.begin("groupchat perch → prosody");
        alice.send(&format!(
            "<message to='{room}' type='groupchat' id='g1'><body>hello from perch</body></message>"
        ));
        let got = wait_for(&mut bob, "alice's groupchat message", |el| {
            el.name == "message" && body(el) == "hello from perch"
        });
        assert_eq!(got.attr("from"), Some(&*format!("{room}/alice")), "{got}");
        assert_eq!(got.attr("type"), Some("groupchat"), "{got}");
        wait_for(&mut alice, "the reflection of alice's message", |el| {
            el.name == "message" && body(el) == "hello from perch"
        });

        world.steps.begin("groupchat prosody → perch");
        bob.send(&format!(
            "<message to='{room}' type='groupchat' id='g2'><body>hello from prosody</body></message>"
        ));
        let got = wait_for(&mut alice, "bob's groupchat message", |el| {
            el.name == "message" && body(el) == "hello from prosody"
        });
        assert_eq!(got.attr("from"), Some(&*format!("{room}/bob")), "{got}");
    });
}

// ---------------------------------------------------------------------------
// XMPP steps, with the shared client.

fn bare(user: &str, domain: &str) -> String {
    format!("{user}@{domain}")
}

fn body(el: &Element) -> String {
    el.get_child("body", NS_CLIENT)
        .map(|b| b.text())
        .unwrap_or_default()
}

/// A presence of `kind` from the bare JID `from`.
fn is_presence(el: &Element, kind: &str, from: &str) -> bool {
    el.name == "presence"
        && el.attr("type") == Some(kind)
        && el
            .attr("from")
            .is_some_and(|f| f.split('/').next() == Some(from))
}

/// Logs in at `addr` as `user@domain/resource`, fetches the roster (roster
/// pushes go to resources that did) and becomes available (messages to
/// the bare JID need an available resource, RFC 6121 §8.5.2).
fn login_user(
    addr: SocketAddr,
    domain: &str,
    account: (&str, &str),
    resource: &str,
) -> Result<Client, String> {
    let mut client = Client::try_connect(addr)?;
    client.try_login(domain, account, Some(resource))?;
    client.try_send("<iq type='get' id='roster-1'><query xmlns='jabber:iq:roster'/></iq>")?;
    client.try_iq_result("roster-1")?;
    client.try_send("<presence/>")?;
    Ok(client)
}

/// The first element satisfying `wanted`, skipping others.
fn wait_for(client: &mut Client, what: &str, wanted: impl Fn(&Element) -> bool) -> Element {
    client.element_matching(what, wanted)
}

type Wanted<'a> = (&'a str, &'a dyn Fn(&Element) -> bool);

/// Reads until each of `wanted` has matched an element, in any order.
fn wait_all(client: &mut Client, wanted: &[Wanted<'_>]) {
    let mut missing: Vec<&Wanted<'_>> = wanted.iter().collect();
    let deadline = Instant::now() + timeout();
    while !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|(what, _)| *what).collect();
        assert!(
            Instant::now() < deadline,
            "{}: still waiting for {names:?} after {:?}; received: {}",
            client.jid,
            timeout(),
            client.transcript()
        );
        match client.try_next_event() {
            Ok(Event::Element(el)) => missing.retain(|(_, matches)| !matches(&el)),
            Ok(other) => panic!(
                "{}: the stream ended ({other:?}) while waiting for {names:?}; received: {}",
                client.jid,
                client.transcript()
            ),
            Err(e) => panic!("{}: no {names:?}: {e}", client.jid),
        }
    }
}

/// Sends the iq `xml` (whose id is `id`) and returns its answer, skipping
/// anything else.
fn iq(client: &mut Client, id: &str, xml: &str) -> Element {
    client.send(xml);
    wait_for(client, &format!("the answer to iq {id}"), |el| {
        el.name == "iq" && el.attr("id") == Some(id)
    })
}

/// Asks for the roster until the item for `jid` has `subscription`, or
/// fails after the usual timeout (the last state of a subscription is the
/// server's to record, shortly after the presence that reports it).
fn roster_reaches(client: &mut Client, jid: &str, subscription: &str) {
    let deadline = Instant::now() + timeout();
    for attempt in 1.. {
        let id = format!("roster-check-{attempt}");
        let answer = iq(
            client,
            &id,
            &format!("<iq type='get' id='{id}'><query xmlns='{NS_ROSTER}'/></iq>"),
        );
        assert_eq!(answer.attr("type"), Some("result"), "{answer}");
        let item = answer
            .get_child("query", NS_ROSTER)
            .and_then(|q| q.children().find(|i| i.attr("jid") == Some(jid)))
            .cloned();
        let state = item.as_ref().and_then(|i| i.attr("subscription"));
        if state == Some(subscription) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: the roster item for {jid} is {item:?}, not subscription='{subscription}', after {:?}; last roster: {answer}",
            client.jid,
            timeout(),
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Joins `room` as `nick` and waits for the self-presence (XEP-0045 §7.2).
fn join_room(client: &mut Client, room: &str, nick: &str) {
    client.send(&format!(
        "<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'/></presence>"
    ));
    let own = format!("{room}/{nick}");
    let presence = wait_for(client, &format!("the self-presence from {own}"), |el| {
        el.name == "presence" && el.attr("from") == Some(own.as_str())
    });
    assert_eq!(
        presence.attr("type"),
        None,
        "joining {room} as {nick} failed: {presence}"
    );
}

/// Creates `room` by joining it and accepts the default configuration
/// (an instant room, XEP-0045 §10.1.2), which unlocks it for others.
fn create_room(client: &mut Client, room: &str, nick: &str) {
    join_room(client, room, nick);
    let answer = iq(
        client,
        "create-1",
        &format!(
            "<iq type='set' to='{room}' id='create-1'><query xmlns='{NS_MUC}#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query></iq>"
        ),
    );
    assert_eq!(
        answer.attr("type"),
        Some("result"),
        "configuring {room}: {answer}"
    );
}

// ---------------------------------------------------------------------------
// The servers.

#[derive(Clone, Copy)]
enum Peer {
    Prosody,
    Ejabberd,
}

impl Peer {
    fn domain(self) -> &'static str {
        match self {
            Peer::Prosody => PROSODY,
            Peer::Ejabberd => EJABBERD,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Peer::Prosody => "prosody",
            Peer::Ejabberd => "ejabberd",
        }
    }

    /// The programs it needs and how to install them.
    fn requirements(self) -> (&'static [&'static str], &'static str) {
        match self {
            Peer::Prosody => (
                &["prosody", "prosodyctl", "dnsmasq", "unshare", "mount"],
                "run as root, with apt-get install prosody dnsmasq-base",
            ),
            Peer::Ejabberd => (
                &["ejabberdctl", "erl", "dnsmasq", "unshare", "mount"],
                "run as root, with apt-get install ejabberd dnsmasq-base",
            ),
        }
    }

    /// Checks, in the peer's main log, that every federation stream with
    /// Perch it completed was encrypted, and that there were some both
    /// ways; a summary of them, or what is wrong. (Perch requires
    /// encryption, so a stanza crossing already proves it; this shows it.)
    fn encrypted_links(self, log: &str) -> Result<String, String> {
        let mut links = Vec::new();
        match self {
            // `s2sin… info Incoming s2s connection perch.test->prosody.test
            // complete`, and for the same session `Stream encrypted (TLSv1.3
            // with …)`.
            Peer::Prosody => {
                for line in log.lines().filter(|l| {
                    l.contains(" s2s connection ") && l.ends_with(" complete") && l.contains(PERCH)
                }) {
                    let session = prosody_session(line).unwrap_or_default();
                    let encrypted = log
                        .lines()
                        .find(|l| {
                            prosody_session(l) == Some(session) && l.contains("Stream encrypted")
                        })
                        .ok_or_else(|| format!("no TLS on this stream: {line}"))?;
                    let tls = encrypted
                        .split("Stream encrypted")
                        .nth(1)
                        .unwrap_or_default();
                    let what = line.split('\t').next_back().unwrap_or(line);
                    links.push(format!("{what}{tls}"));
                }
            }
            // `(tls|<0.490.0>) Accepted inbound s2s dialback authentication
            // conference.perch.test -> ejabberd.test (127.0.0.1)`.
            Peer::Ejabberd => {
                for line in log
                    .lines()
                    .filter(|l| l.contains("Accepted ") && l.contains(" s2s ") && l.contains(PERCH))
                {
                    if !line.contains("(tls|") {
                        return Err(format!("no TLS on this stream: {line}"));
                    }
                    links.push(line[line.find("Accepted ").unwrap_or(0)..].to_string());
                }
            }
        }
        let found = |kind: &str| links.iter().any(|l| l.to_lowercase().contains(kind));
        let both_ways =
            (found("incoming") || found("inbound")) && (found("outgoing") || found("outbound"));
        if !both_ways {
            return Err(format!(
                "the {} log does not show streams with Perch both ways: {links:?}",
                self.name()
            ));
        }
        Ok(format!("encrypted links: {}", links.join("; ")))
    }
}

/// The session a line of Prosody's log is about (`s2sin…`, `s2sout…`):
/// the field after the time.
fn prosody_session(line: &str) -> Option<&str> {
    line.split_whitespace().nth(3)
}

/// A test's servers: its dnsmasq, Perch (perch.test) and one peer. Fields
/// drop in order: the processes go before the directory they use.
struct World {
    steps: Steps,
    peer: Peer,
    running: Running,
    dns: Dns,
    perch: TestServer,
    dir: Option<TempDir>,
}

impl Drop for World {
    fn drop(&mut self) {
        // PERCH_INTEROP_DEBUG keeps the configurations and full logs.
        if debug()
            && let Some(dir) = self.dir.take()
        {
            println!("{}: kept {}", self.steps.test, dir.path().display());
            std::mem::forget(dir);
        }
    }
}

impl World {
    /// Starts everything, or `None` (after saying why) when a program is
    /// missing outside CI.
    fn start(test: &'static str, peer: Peer) -> Option<World> {
        let (programs, install) = peer.requirements();
        if !can_run(test, missing(programs), install) {
            return None;
        }
        let mut steps = Steps::new(test);
        let dir = TempDir::new(&format!("s2s-{}", peer.name()));
        let (perch_s2s, peer_c2s, peer_s2s) = (free_port(), free_port(), free_port());

        steps.begin("dnsmasq");
        let dns = Dns::start(dir.path(), &[(PERCH, perch_s2s), (peer.domain(), peer_s2s)]);
        println!("{test}: dnsmasq on {}:53", dns.ip);

        steps.begin("perch");
        let perch = TestServer::start(TestOptions {
            accounts: vec![(bare(ALICE.0, PERCH), ALICE.1.into())],
            extra_config: format!(
                "[[host]]\ndomain = \"{PERCH}\"\n\
                 [[listener]]\nkind = \"s2s\"\naddress = \"127.0.0.1\"\nport = {perch_s2s}\n\
                 [s2s]\ndns_server = \"{}:53\"\nallow_private_addresses = true\n",
                dns.ip
            ),
            ..TestOptions::default()
        })
        .expect("perch starts");

        steps.begin(peer.name());
        let ports = PeerPorts {
            c2s: peer_c2s,
            s2s: peer_s2s,
        };
        let running = match peer {
            Peer::Prosody => start_prosody(dir.path(), &dns, ports),
            Peer::Ejabberd => start_ejabberd(dir.path(), &dns, ports),
        };
        steps.end();
        Some(World {
            steps,
            peer,
            running,
            dns,
            perch,
            dir: Some(dir),
        })
    }

    /// Runs `scenario`; a failure gets the peer's and dnsmasq's log tails.
    fn check(&mut self, scenario: impl FnOnce(&mut World)) {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            scenario(self);
            self.steps.begin("links encrypted, per the peer's log");
            // ejabberd writes its log a moment later: read it until the
            // lines are there.
            let deadline = Instant::now() + scaled(Duration::from_secs(5));
            loop {
                let log = self
                    .running
                    .logs
                    .last()
                    .and_then(|main| fs::read_to_string(main).ok())
                    .unwrap_or_default();
                match self.peer.encrypted_links(&log) {
                    Ok(links) => break println!("{}: {links}", self.steps.test),
                    Err(why) if Instant::now() > deadline => panic!("{why}"),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }));
        let step = self.steps.current.clone();
        self.steps.end();
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            let Some(message) = message else {
                resume_unwind(panic)
            };
            panic!(
                "{message} (step: {step}){}{}",
                self.running.logs(),
                self.dns.logs()
            );
        }
        println!("{}: all steps passed", self.steps.test);
    }

    fn perch_user(&mut self, account: (&str, &str), resource: &str) -> Client {
        self.steps.begin("perch login");
        login_user(self.perch.c2s_addr(), PERCH, account, resource)
            .unwrap_or_else(|e| panic!("login as {}@{PERCH}: {e}", account.0))
    }

    fn peer_user(&mut self, account: (&str, &str), resource: &str) -> Client {
        self.steps.begin(&format!("{} login", self.peer.name()));
        let domain = self.peer.domain();
        login_user(self.running.c2s, domain, account, resource)
            .unwrap_or_else(|e| panic!("login as {}@{domain}: {e}", account.0))
    }
}

/// Prints how long each step took (the whole file must stay well inside
/// the CI budget, and a slow peer should be visible).
struct Steps {
    test: &'static str,
    current: String,
    since: Instant,
    started: Instant,
}

impl Steps {
    fn new(test: &'static str) -> Steps {
        let now = Instant::now();
        Steps {
            test,
            current: String::new(),
            since: now,
            started: now,
        }
    }

    fn begin(&mut self, step: &str) {
        self.end();
        self.current = step.to_string();
        self.since = Instant::now();
    }

    /// Reports the current step (once).
    fn end(&mut self) {
        if !self.current.is_empty() {
            println!(
                "{}: {} took {:.2} s ({:.2} s in all)",
                self.test,
                self.current,
                self.since.elapsed().as_secs_f64(),
                self.started.elapsed().as_secs_f64()
            );
            self.current.clear();
        }
    }
}

/// Why the test cannot run here, if it cannot.
fn missing(programs: &[&str]) -> Option<String> {
    if !rustix::process::getuid().is_root() {
        return Some("the test needs root (mount namespaces, DNS on port 53)".into());
    }
    let absent: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| program(p).is_none())
        .collect();
    (!absent.is_empty()).then(|| format!("{} not found", absent.join(", ")))
}

/// Where `name` is installed: on PATH, or in the sbin directories (not on
/// every PATH; ejabberdctl lives there).
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The path of `name`, which [`missing`] found.
fn installed(name: &str) -> PathBuf {
    program(name).unwrap_or_else(|| panic!("{name} is not installed"))
}

/// The last `lines` lines of the file at `path`, for failure messages.
fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({} unreadable: {e})", path.display()),
    }
}

/// A process group started by the test (a peer and whatever it forks,
/// such as ejabberdctl's shell and the Erlang VM), killed with all its
/// members when dropped, however the test ends.
struct Group {
    child: Child,
}

impl Group {
    fn spawn(cmd: &mut Command, output: &Path) -> Group {
        let out = fs::File::create(output).expect("create the output file");
        let err = out.try_clone().expect("clone the output file");
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {:?}: {e}", cmd.get_program()));
        Group { child }
    }

    /// The exit status, if the group's leader has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The group is named by the leader's pid, which cannot be reused
        // before the leader is reaped below. SIGKILL: nothing of these
        // throwaway instances needs a clean shutdown.
        let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        let _ = self.child.wait();
    }
}

/// `program` run in a mount namespace of its own in which `resolv` is
/// /etc/resolv.conf, so that the peer asks only the test's dnsmasq (unshare
/// makes the namespace's mounts private: the machine's file is untouched).
/// The program's arguments are to be added to the command returned.
fn in_namespace(resolv: &Path, program: &str) -> Command {
    let mut cmd = Command::new(installed("unshare"));
    cmd.args(["-m", "sh", "-c"])
        .arg(r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#)
        .arg(resolv)
        .arg(installed(program));
    cmd
}

/// Waits until `addr` accepts connections, the group's leader exits or
/// `limit` passes.
fn wait_listening(group: &mut Group, addr: SocketAddr, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = group.exited() {
            return Err(format!("it exited ({status}) before listening on {addr}"));
        }
        if Instant::now() > deadline {
            return Err(format!("nothing listens on {addr} after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// dnsmasq.

struct Dns {
    ip: Ipv4Addr,
    log: PathBuf,
    _group: Group,
}

impl Dns {
    /// dnsmasq for the `.test` zone: for each (domain, s2s port), SRV
    /// records for the domain and its conference subdomain and an A
    /// record for the domain and everything under it.
    fn start(dir: &Path, domains: &[(&str, u16)]) -> Dns {
        let log = dir.join("dnsmasq.log");
        let output = dir.join("dnsmasq.out");
        let mut tried = Vec::new();
        for last in DNS_ADDRESSES {
            let ip = Ipv4Addr::new(127, 0, 0, last);
            let mut cmd = Command::new(installed("dnsmasq"));
            cmd.args([
                "--keep-in-foreground",
                // No configuration file, no upstream, no /etc/hosts: only
                // the records below, on this address only.
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--port=53",
                &format!("--listen-address={ip}"),
                "--bind-interfaces",
                // Authoritative for .test: a name or type not listed is
                // NXDOMAIN or NODATA (not REFUSED, as for other names).
                "--local=/test/",
                "--user=root",
                "--pid-file=",
                "--log-queries",
                &format!("--log-facility={}", log.display()),
            ]);
            for (domain, port) in domains {
                for name in [domain.to_string(), format!("conference.{domain}")] {
                    cmd.arg(format!(
                        "--srv-host=_xmpp-server._tcp.{name},{domain},{port}"
                    ));
                }
                cmd.arg(format!("--address=/{domain}/127.0.0.1"));
            }
            let mut group = Group::spawn(&mut cmd, &output);
            match wait_dns(&mut group, ip, domains[0]) {
                Ok(()) => {
                    return Dns {
                        ip,
                        log,
                        _group: group,
                    };
                }
                // Taken by another test: the next address.
                Err(why) => tried.push(format!("{ip}: {why}; {}", tail(&output, 5))),
            }
        }
        panic!("dnsmasq could not start:\n{}", tried.join("\n"));
    }

    fn logs(&self) -> String {
        format!(
            "\n--- dnsmasq log (last 40 lines) ---\n{}",
            tail(&self.log, 40)
        )
    }
}

/// Waits until dnsmasq on `ip` answers the SRV query of `domain` with its
/// port (asked with Perch's own resolver), or has exited.
fn wait_dns(group: &mut Group, ip: Ipv4Addr, (domain, port): (&str, u16)) -> Result<(), String> {
    let resolver = perch::dns::Resolver::with_servers(vec![SocketAddr::from((ip, 53))])
        .with_timeouts(Duration::from_millis(200), 1);
    let name = format!("_xmpp-server._tcp.{domain}");
    let deadline = Instant::now() + scaled(Duration::from_secs(5));
    loop {
        if let Some(status) = group.exited() {
            return Err(format!("exited ({status})"));
        }
        let answer = smol::block_on(resolver.srv(&name));
        match answer {
            Ok(records) if records.iter().any(|r| r.port == port) => return Ok(()),
            Ok(records) => {
                // Someone else's server on this address.
                if group.exited().is_none() && !records.is_empty() {
                    return Err(format!("another server answers: {records:?}"));
                }
            }
            Err(_) if Instant::now() < deadline => {}
            Err(e) => return Err(format!("no answer: {e}")),
        }
        if Instant::now() > deadline {
            return Err(format!("no SRV record for {name} after 5 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// The peers.

#[derive(Clone, Copy)]
struct PeerPorts {
    c2s: u16,
    s2s: u16,
}

/// A peer that serves: its process group, c2s address and log files.
struct Running {
    name: &'static str,
    c2s: SocketAddr,
    /// Its output and log files, the main log last.
    logs: Vec<PathBuf>,
    _group: Group,
}

impl Running {
    /// The tails of its output and logs, the main log's longest.
    fn logs(&self) -> String {
        let main = self.logs.len().saturating_sub(1);
        self.logs
            .iter()
            .enumerate()
            .map(|(i, log)| {
                let lines = if i == main { 80 } else { 20 };
                format!(
                    "\n--- {} {} (last {lines} lines) ---\n{}",
                    self.name,
                    log.display(),
                    tail(log, lines)
                )
            })
            .collect()
    }
}

/// `running` if it is `ready`, else a panic with its and dnsmasq's logs.
fn serving(running: Running, ready: Result<(), String>, dns: &Dns) -> Running {
    match ready {
        Ok(()) => running,
        Err(why) => panic!(
            "{} did not start: {why}{}{}",
            running.name,
            running.logs(),
            dns.logs()
        ),
    }
}

/// A self-signed certificate for `names`: (certificate PEM, key PEM).
/// Valid from last year to two years on: rcgen's default end, the year
/// 4096, is too far for ejabberd, whose expiry timer then cannot be set
/// and which then runs without the certificate (no TLS at all).
fn self_signed(names: &[&str]) -> (String, String) {
    let now = perch::datetime::format_utc(std::time::SystemTime::now(), false);
    let year: i32 = now[..4].parse().expect("a year");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("certificate parameters");
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    (cert.pem(), key.serialize_pem())
}

fn filled(template: &str, values: &[(&str, String)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (name, value)| {
            text.replace(&format!("@{name}@"), value)
        })
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The resolv.conf the peers see: the test's dnsmasq only.
fn resolv_conf(dir: &Path, dns: &Dns) -> PathBuf {
    let path = dir.join("resolv.conf");
    write(&path, &format!("nameserver {}\n", dns.ip));
    path
}

/// Runs an administration command (account creation), bounded.
fn admin(cmd: &mut Command, what: &str) -> Result<(), String> {
    let limit = scaled(Duration::from_secs(30));
    let Captured {
        status,
        stdout,
        stderr,
    } = capture_within(cmd, None, limit);
    match status {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(format!("{what} failed ({status}):\n{stdout}{stderr}")),
        None => Err(format!(
            "{what} was killed after {limit:?}:\n{stdout}{stderr}"
        )),
    }
}

/// Prosody with the test's configuration: bob's account is created
/// offline with prosodyctl, then Prosody runs in the foreground.
fn start_prosody(dir: &Path, dns: &Dns, ports: PeerPorts) -> Running {
    let home = dir.join("prosody");
    let certs = home.join("certs");
    fs::create_dir_all(&certs).expect("create the prosody directories");
    let (cert, key) = self_signed(&[PROSODY, "conference.prosody.test"]);
    write(&certs.join("prosody.test.crt"), &cert);
    write(&certs.join("prosody.test.key"), &key);
    let config = home.join("prosody.cfg.lua");
    write(
        &config,
        &filled(
            PROSODY_CONFIG,
            &[
                ("DIR", home.display().to_string()),
                ("C2S_PORT", ports.c2s.to_string()),
                ("S2S_PORT", ports.s2s.to_string()),
            ],
        ),
    );
    let config = config.to_str().expect("a UTF-8 temp path");
    // The configuration is always given: without it, Prosody's tools use
    // the system's (and may act on the system's server).
    admin(
        Command::new(installed("prosodyctl"))
            .args(["--config", config, "register", BOB.0, PROSODY, BOB.1])
            .env("PROSODY_CONFIG", config),
        "prosodyctl register",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut group = Group::spawn(
        in_namespace(&resolv_conf(&home, dns), "prosody")
            .args(["--config", config, "-F"])
            .env("PROSODY_CONFIG", config),
        &home.join("prosody.out"),
    );
    let c2s = SocketAddr::from(([127, 0, 0, 1], ports.c2s));
    let s2s = SocketAddr::from(([127, 0, 0, 1], ports.s2s));
    let limit = scaled(Duration::from_secs(20));
    let ready = wait_listening(&mut group, c2s, limit)
        .and_then(|()| wait_listening(&mut group, s2s, limit));
    let running = Running {
        name: "prosody",
        c2s,
        logs: vec![home.join("prosody.out"), home.join("prosody.log")],
        _group: group,
    };
    serving(running, ready, dns)
}

/// ejabberd with the test's configuration, through ejabberdctl (which
/// knows the Debian package's paths) in the foreground; carol's account is
/// created with `ejabberdctl register` once it serves.
fn start_ejabberd(dir: &Path, dns: &Dns, ports: PeerPorts) -> Running {
    let home = dir.join("ejabberd");
    let (spool, logs) = (home.join("spool"), home.join("logs"));
    fs::create_dir_all(&spool)
        .and_then(|()| fs::create_dir_all(&logs))
        .expect("create the ejabberd directories");
    let (cert, key) = self_signed(&[EJABBERD]);
    write(&home.join("ejabberd.pem"), &format!("{cert}{key}"));
    let values = [
        ("DIR", home.display().to_string()),
        ("C2S_PORT", ports.c2s.to_string()),
        ("S2S_PORT", ports.s2s.to_string()),
        ("DIST_PORT", free_port().to_string()),
    ];
    write(
        &home.join("ejabberd.yml"),
        &filled(EJABBERD_CONFIG, &values),
    );
    write(
        &home.join("ejabberdctl.cfg"),
        &filled(EJABBERDCTL_CONFIG, &values),
    );
    write(&home.join("inetrc"), EJABBERD_INETRC);
    // What every ejabberdctl command needs to find this instance.
    let ctl_config = home.join("ejabberdctl.cfg");
    let instance = |cmd: &mut Command| {
        cmd.arg("--config-dir")
            .arg(&home)
            .arg("--ctl-config")
            .arg(&ctl_config)
            .arg("--spool")
            .arg(&spool)
            .arg("--logs")
            .arg(&logs)
            // The Erlang cookie is created in $HOME: the test's, not root's.
            .env("HOME", &home);
    };
    let mut foreground = in_namespace(&resolv_conf(&home, dns), "ejabberdctl");
    instance(&mut foreground);
    let mut group = Group::spawn(foreground.arg("foreground"), &home.join("ejabberd.out"));
    let c2s = SocketAddr::from(([127, 0, 0, 1], ports.c2s));
    let s2s = SocketAddr::from(([127, 0, 0, 1], ports.s2s));
    let limit = scaled(Duration::from_secs(40));
    let ready = wait_listening(&mut group, c2s, limit)
        .and_then(|()| wait_listening(&mut group, s2s, limit));
    let running = Running {
        name: "ejabberd",
        c2s,
        logs: vec![
            home.join("ejabberd.out"),
            logs.join("error.log"),
            logs.join("ejabberd.log"),
        ],
        _group: group,
    };
    let running = serving(running, ready, dns);
    let mut register = Command::new(installed("ejabberdctl"));
    instance(&mut register);
    register.args(["register", CAROL.0, EJABBERD, CAROL.1]);
    let registered = admin(&mut register, "ejabberdctl register");
    serving(running, registered, dns)
}
