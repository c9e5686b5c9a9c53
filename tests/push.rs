//! Push notifications (XEP-0357) end to end, with an app server of our
//! own: an external component (XEP-0114) at `push.localhost` that reads
//! the publishes it is sent and answers them with a result or an error.
//! Alice's phone enables push, loses its connection (stream management
//! keeps the session asleep), and Bob writes to her.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use perch::config::ListenerKind;
use perch::stream::component::expected_handshake;
use perch::testing::{TestOptions, TestServer, scaled};
use perch::xml::Element;

const SECRET: &str = "push-component-secret";
const APP: &str = "push.localhost";
const NS_PUSH: &str = "urn:xmpp:push:0";
const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const NS_DATA: &str = "jabber:x:data";
const NS_SM: &str = "urn:xmpp:sm:3";
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_COMPONENT: &str = "jabber:component:accept";
const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");

fn options(push: &str) -> TestOptions {
    TestOptions {
        accounts: vec![
            ("alice@localhost".into(), ALICE.1.into()),
            ("bob@localhost".into(), BOB.1.into()),
        ],
        // TEST_CONFIG ends in its [c2s] table: tables follow.
        extra_config: format!(
            "[push]\n{push}\n\
             [[listener]]\nkind = \"component\"\naddress = \"127.0.0.1\"\nport = 0\n\
             [[component]]\ndomain = \"{APP}\"\nsecret = \"{SECRET}\"\n"
        ),
        ..TestOptions::default()
    }
}

/// The same server again after a restart (the accounts exist already).
fn restarted(server: TestServer) -> TestServer {
    server
        .restart(TestOptions {
            accounts: Vec::new(),
            ..options("")
        })
        .expect("restart")
}

fn server(push: &str) -> TestServer {
    TestServer::start(options(push)).expect("server starts")
}

/// The app server: a component that records what it is sent.
struct AppServer {
    c: Client,
    domain: String,
}

impl AppServer {
    fn connect(server: &TestServer) -> AppServer {
        AppServer::connect_as(server, APP)
    }

    fn connect_as(server: &TestServer, domain: &str) -> AppServer {
        let addr = server
            .listener_addr(ListenerKind::Component)
            .expect("a component listener");
        let mut c = Client::connect(addr);
        c.send(&format!(
            "<stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
        ));
        let id = c.header().id.unwrap_or_default();
        c.send(&format!(
            "<handshake>{}</handshake>",
            expected_handshake(&id, SECRET)
        ));
        let answer = c.element();
        assert_eq!(answer.name, "handshake", "{}", c.transcript());
        AppServer {
            c,
            domain: domain.to_string(),
        }
    }

    /// The next publish, if one arrives within `wait`.
    fn publish_within(&mut self, wait: Duration) -> Option<Element> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Some(el) = self.c.pending.pop_front() {
                return Some(el);
            }
            let tcp = match &self.c.io {
                Transport::Plain(tcp) => tcp.try_clone().expect("clone the socket"),
                _ => panic!("plaintext expected"),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            tcp.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("timeout");
            let next = self.c.try_next_event();
            tcp.set_read_timeout(Some(timeout())).expect("timeout");
            match next {
                Ok(Event::Element(el)) if el.name == "iq" => return Some(el),
                Ok(Event::Element(_)) => {}
                Ok(other) => panic!("the app server's stream ended: {other:?}"),
                Err(_) => return None,
            }
        }
        None
    }

    fn publish(&mut self) -> Element {
        self.publish_within(timeout())
            .unwrap_or_else(|| panic!("no publish; received: {}", self.c.transcript()))
    }

    fn assert_quiet(&mut self) {
        if let Some(el) = self.publish_within(scaled(Duration::from_millis(400))) {
            panic!("expected no publish, got {el}");
        }
    }

    /// Sends `to` a message and waits until `to` has it: everything the
    /// app server sent before (an answer) has been handled by then.
    fn sync(&mut self, to: &mut Client, to_jid: &str) {
        let from = self.domain.clone();
        self.c.send(&format!(
            "<message from='{from}' to='{to_jid}'><body>sync</body></message>"
        ));
        to.element_matching("the app server's message", |el| {
            el.name == "message" && el.attr("from") == Some(from.as_str())
        });
    }

    /// Answers a publish with a result, or an error if `condition`.
    fn answer(&mut self, iq: &Element, condition: Option<&str>) {
        let (from, to, id) = (
            iq.attr("to").unwrap_or_default(),
            iq.attr("from").unwrap_or_default(),
            iq.attr("id").unwrap_or_default(),
        );
        let reply = match condition {
            None => format!("<iq type='result' from='{from}' to='{to}' id='{id}'/>"),
            Some(c) => format!(
                "<iq type='error' from='{from}' to='{to}' id='{id}'><error type='cancel'>\
                 <{c} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            ),
        };
        self.c.send(&reply);
    }
}

/// The publish's node and the fields of its summary form.
fn read_publish(iq: &Element) -> (String, HashMap<String, String>) {
    read_publish_between(iq, "alice@localhost", APP)
}

/// As [`read_publish`], for a publish from `from` to `to`.
fn read_publish_between(iq: &Element, from: &str, to: &str) -> (String, HashMap<String, String>) {
    assert_eq!(iq.attr("type"), Some("set"), "{iq}");
    assert_eq!(iq.attr("from"), Some(from), "{iq}");
    assert_eq!(iq.attr("to"), Some(to), "{iq}");
    let publish = iq
        .get_child("pubsub", NS_PUBSUB)
        .and_then(|p| p.get_child("publish", NS_PUBSUB))
        .unwrap_or_else(|| panic!("no publish in {iq}"));
    let form = publish
        .get_child("item", NS_PUBSUB)
        .and_then(|i| i.get_child("notification", NS_PUSH))
        .and_then(|n| n.get_child("x", NS_DATA))
        .unwrap_or_else(|| panic!("no summary in {iq}"));
    let fields = form
        .children()
        .filter(|f| f.name == "field")
        .map(|f| {
            let value = f
                .get_child("value", NS_DATA)
                .map(|v| v.text())
                .unwrap_or_default();
            (f.attr("var").unwrap_or_default().to_string(), value)
        })
        .collect();
    (publish.attr("node").unwrap_or_default().to_string(), fields)
}

/// The value of `var` in the publish options of `iq`.
fn publish_option(iq: &Element, var: &str) -> Option<String> {
    iq.get_child("pubsub", NS_PUBSUB)?
        .get_child("publish-options", NS_PUBSUB)?
        .get_child("x", NS_DATA)?
        .children()
        .find(|f| f.attr("var") == Some(var))?
        .get_child("value", NS_DATA)
        .map(|v| v.text())
}

/// Alice's phone: logged in, stream management with resumption, available.
fn phone(server: &TestServer) -> Client {
    let mut alice = login(server, ALICE, Some("phone"));
    alice.send(&format!("<enable xmlns='{NS_SM}' resume='true'/>"));
    let enabled = alice.element();
    assert!(enabled.is("enabled", NS_SM), "{enabled}");
    alice.send("<presence/>");
    alice
}

fn enable(client: &mut Client, node: &str) {
    client.send(&format!(
        "<iq type='set' id='en-{node}'><enable xmlns='{NS_PUSH}' jid='{APP}' node='{node}'>\
           <x xmlns='{NS_DATA}' type='submit'>\
             <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
             <field var='secret'><value>s3cr3t-{node}</value></field>\
           </x></enable></iq>"
    ));
    client
        .try_iq_result(&format!("en-{node}"))
        .expect("push enabled");
}

fn chat(from: &mut Client, body: &str) {
    chat_to(from, "alice@localhost", body);
}

fn chat_to(from: &mut Client, to: &str, body: &str) {
    from.send(&format!(
        "<message type='chat' to='{to}'><body>{body}</body></message>"
    ));
}

/// Cuts the phone's connection and has Bob write until the session is
/// asleep and a notification arrives (the server notices the lost
/// connection a moment after it is cut); returns that publish.
fn hibernate(alice: Client, bob: &mut Client, app: &mut AppServer) -> Element {
    hibernate_at(alice, "alice@localhost", bob, app)
}

/// As [`hibernate`], for the account `account`.
fn hibernate_at(alice: Client, account: &str, bob: &mut Client, app: &mut AppServer) -> Element {
    alice.cut();
    for i in 0..50 {
        chat_to(bob, account, &format!("wake{i}"));
        if let Some(iq) = app.publish_within(scaled(Duration::from_millis(200))) {
            return iq;
        }
    }
    panic!("no notification after the phone's connection was cut");
}

#[test]
fn a_sleeping_phone_gets_a_notification_with_the_count_only() {
    let server = server("");
    let mut app = AppServer::connect(&server);
    let mut alice = phone(&server);
    enable(&mut alice, "n1");
    // The owner finds push on her account (XEP-0357 §4).
    alice.send(
        "<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    let info = alice.try_iq_result("d1").expect("disco#info");
    let advertised = info
        .first_child()
        .is_some_and(|q| q.children().any(|f| f.attr("var") == Some(NS_PUSH)));
    assert!(advertised, "{info}");
    let mut bob = login(&server, BOB, Some("pc"));
    let iq = hibernate(alice, &mut bob, &mut app);
    let (node, fields) = read_publish(&iq);
    assert_eq!(node, "n1");
    assert_eq!(
        fields.get("FORM_TYPE").map(String::as_str),
        Some("urn:xmpp:push:summary")
    );
    assert_eq!(fields.get("message-count").map(String::as_str), Some("1"));
    assert!(!fields.contains_key("last-message-body"), "{iq}");
    assert!(!fields.contains_key("last-message-sender"), "{iq}");
    assert_eq!(publish_option(&iq, "secret").as_deref(), Some("s3cr3t-n1"));
    app.answer(&iq, None);
    // One notification a message by default.
    chat(&mut bob, "again");
    let (_, fields) = read_publish(&app.publish());
    assert_eq!(fields.get("message-count").map(String::as_str), Some("1"));
}

#[test]
fn the_body_and_sender_only_when_configured_and_never_of_encrypted_messages() {
    let server = server("include_body = true\ninclude_sender = true");
    let mut app = AppServer::connect(&server);
    let mut alice = phone(&server);
    enable(&mut alice, "n1");
    let mut bob = login(&server, BOB, Some("pc"));
    let iq = hibernate(alice, &mut bob, &mut app);
    let (_, fields) = read_publish(&iq);
    let body = fields.get("last-message-body").cloned().unwrap_or_default();
    assert!(body.starts_with("wake"), "{iq}");
    assert_eq!(
        fields.get("last-message-sender").map(String::as_str),
        Some("bob@localhost/pc")
    );
    app.answer(&iq, None);
    // OMEMO: a notification, without the fallback text.
    bob.send(
        "<message type='chat' to='alice@localhost'>\
           <encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='7'><iv>AAAA</iv></header>\
           <payload>BBBB</payload></encrypted>\
           <body>I sent you an OMEMO encrypted message but your client doesn't seem to support that.</body>\
         </message>",
    );
    let iq = app.publish();
    let (_, fields) = read_publish(&iq);
    assert_eq!(fields.get("message-count").map(String::as_str), Some("1"));
    assert!(!fields.contains_key("last-message-body"), "{iq}");
    app.answer(&iq, None);
    // A chat state alone wakes nobody.
    bob.send(
        "<message type='chat' to='alice@localhost'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    );
    app.assert_quiet();
}

#[test]
fn messages_held_in_the_window_are_told_when_it_ends() {
    let window = scaled(Duration::from_secs(1)).as_secs().max(1);
    let server = server(&format!("coalesce_secs = {window}"));
    let mut app = AppServer::connect(&server);
    let mut alice = phone(&server);
    enable(&mut alice, "n1");
    let mut bob = login(&server, BOB, Some("pc"));
    let first = hibernate(alice, &mut bob, &mut app);
    app.answer(&first, None);
    // A message of those that woke her may have been held behind the
    // first notification: its own notification comes when the window ends.
    while let Some(late) = app.publish_within(scaled(Duration::from_secs(window + 1))) {
        app.answer(&late, None);
    }
    // Two at once: the first is told at once, the second is held.
    chat(&mut bob, "two");
    chat(&mut bob, "three");
    let told = app.publish();
    let told_at = Instant::now();
    let (_, fields) = read_publish(&told);
    assert_eq!(fields.get("message-count").map(String::as_str), Some("1"));
    app.answer(&told, None);
    // No third message: the held one is told when the window ends.
    let flushed = app
        .publish_within(scaled(Duration::from_secs(window + 3)))
        .expect("the held message is told after the window");
    assert!(
        told_at.elapsed() >= Duration::from_millis(window * 500),
        "not before the window ends ({:?})",
        told_at.elapsed()
    );
    let (node, fields) = read_publish(&flushed);
    assert_eq!(node, "n1");
    assert_eq!(fields.get("message-count").map(String::as_str), Some("1"));
    assert!(!fields.contains_key("last-message-body"), "{flushed}");
    assert_eq!(
        publish_option(&flushed, "secret").as_deref(),
        Some("s3cr3t-n1")
    );
    app.answer(&flushed, None);
    app.assert_quiet();
}

#[test]
fn an_app_server_that_never_answers_is_disabled_in_time() {
    let server = server("answer_timeout_secs = 1");
    let mut app = AppServer::connect(&server);
    let mut alice = phone(&server);
    enable(&mut alice, "n1");
    let mut bob = login(&server, BOB, Some("pc"));
    // The app server reads the notification and never answers.
    let _unanswered = hibernate(alice, &mut bob, &mut app);
    std::thread::sleep(scaled(Duration::from_millis(2500)));
    // Nothing else happened, yet the registration is gone from the disk.
    drop(app);
    let server = server
        .restart_after(
            TestOptions {
                accounts: Vec::new(),
                ..options("answer_timeout_secs = 1")
            },
            |dir| {
                let store = perch::store::Store::open(&dir.join("perch.redb"), 1 << 20)
                    .expect("open the stopped server's store");
                let left = store
                    .push_registrations("alice@localhost")
                    .expect("read the registrations");
                assert!(left.is_empty(), "still registered: {left:?}");
            },
        )
        .expect("restart");
    // And she is not notified any more.
    let mut app = AppServer::connect(&server);
    let mut bob = login(&server, BOB, Some("pc"));
    chat(&mut bob, "anyone there?");
    app.assert_quiet();
}

#[test]
fn an_error_from_the_app_server_disables_the_registration() {
    let server = server("");
    let mut app = AppServer::connect(&server);
    let mut alice = phone(&server);
    enable(&mut alice, "n1");
    let mut bob = login(&server, BOB, Some("pc"));
    let iq = hibernate(alice, &mut bob, &mut app);
    app.answer(&iq, Some("item-not-found"));
    app.sync(&mut bob, "bob@localhost/pc");
    chat(&mut bob, "after the error");
    app.assert_quiet();
    // Also on disk: a restart does not bring it back.
    drop(app);
    let server = restarted(server);
    let mut app = AppServer::connect(&server);
    let mut bob = login(&server, BOB, Some("pc"));
    chat(&mut bob, "after the restart");
    app.assert_quiet();
}

/// An app server on a domain that does not exist: the notification
/// bounces (`remote-server-not-found`, the test's DNS answers nothing), and
/// the bounce disables that registration; the one beside it stays.
#[test]
fn an_app_server_that_does_not_exist_is_disabled() {
    let server = server("");
    let mut app = AppServer::connect(&server);
    let mut alice = phone(&server);
    enable(&mut alice, "n1");
    alice.send(&format!(
        "<iq type='set' id='en-ghost'><enable xmlns='{NS_PUSH}' jid='push.nowhere.test' node='ghost'/></iq>"
    ));
    alice.try_iq_result("en-ghost").expect("push enabled");
    let mut bob = login(&server, BOB, Some("pc"));
    let iq = hibernate(alice, &mut bob, &mut app);
    app.answer(&iq, None);
    let mut left = Vec::new();
    // The bounce comes once the lookup of push.nowhere.test has failed.
    let deadline = Instant::now() + timeout();
    let mut server = server;
    while Instant::now() < deadline {
        std::thread::sleep(scaled(Duration::from_millis(500)));
        server = server
            .restart_after(
                TestOptions {
                    accounts: Vec::new(),
                    ..options("")
                },
                |dir| {
                    let store = perch::store::Store::open(&dir.join("perch.redb"), 1 << 20)
                        .expect("open the stopped server's store");
                    left = store
                        .push_registrations("alice@localhost")
                        .expect("read the registrations")
                        .into_iter()
                        .map(|r| r.app)
                        .collect();
                },
            )
            .expect("restart");
        if left.len() == 1 {
            break;
        }
        // Restarted before the bounce: wake the notification again.
        let mut bob = login(&server, BOB, Some("pc"));
        chat(&mut bob, "again");
    }
    assert_eq!(left, vec![APP.to_string()]);
}

#[test]
fn disable_stops_notifications_for_that_node() {
    let server = server("");
    let mut app = AppServer::connect(&server);
    let mut alice = phone(&server);
    enable(&mut alice, "kept");
    enable(&mut alice, "dropped");
    alice.send(&format!(
        "<iq type='set' id='dis'><disable xmlns='{NS_PUSH}' jid='{APP}' node='dropped'/></iq>"
    ));
    alice.try_iq_result("dis").expect("disabled");
    let mut bob = login(&server, BOB, Some("pc"));
    let iq = hibernate(alice, &mut bob, &mut app);
    assert_eq!(read_publish(&iq).0, "kept");
    app.answer(&iq, None);
    app.assert_quiet();
}

#[test]
fn a_malformed_enable_is_a_bad_request() {
    let server = server("");
    let mut alice = login(&server, ALICE, Some("phone"));
    for (id, payload) in [
        ("no-jid", format!("<enable xmlns='{NS_PUSH}' node='n'/>")),
        (
            "no-node",
            format!("<enable xmlns='{NS_PUSH}' jid='{APP}'/>"),
        ),
        (
            "bad-form",
            format!(
                "<enable xmlns='{NS_PUSH}' jid='{APP}' node='n'><x xmlns='{NS_DATA}' type='submit'>\
                 <field var='FORM_TYPE'><value>urn:nonsense</value></field></x></enable>"
            ),
        ),
    ] {
        alice.send(&format!("<iq type='set' id='{id}'>{payload}</iq>"));
        let answer = alice.try_iq_result(id).expect_err("refused");
        assert!(answer.contains("bad-request"), "{answer}");
    }
    // Bob cannot enable push for Alice.
    let mut bob = login(&server, BOB, Some("pc"));
    bob.send(&format!(
        "<iq type='set' id='theirs' to='alice@localhost'><enable xmlns='{NS_PUSH}' jid='{APP}' node='n'/></iq>"
    ));
    let answer = bob.try_iq_result("theirs").expect_err("refused");
    assert!(answer.contains("forbidden"), "{answer}");
}

#[test]
fn the_registration_survives_a_restart() {
    let server = server("");
    let mut alice = phone(&server);
    enable(&mut alice, "n1");
    alice.disconnect();
    let server = restarted(server);
    let mut app = AppServer::connect(&server);
    // Alice has no session now: the message is stored, and she is told.
    let mut bob = login(&server, BOB, Some("pc"));
    chat(&mut bob, "while you were away");
    let iq = app.publish();
    let (node, fields) = read_publish(&iq);
    assert_eq!(node, "n1");
    assert_eq!(fields.get("message-count").map(String::as_str), Some("1"));
    assert_eq!(publish_option(&iq, "secret").as_deref(), Some("s3cr3t-n1"));
}

#[test]
fn a_mention_in_a_room_reaches_a_sleeping_occupant() {
    let server = server("");
    let mut app = AppServer::connect(&server);
    let room = "lobby@conference.localhost";
    let mut bob = login(&server, BOB, Some("pc"));
    bob.send(&format!(
        "<presence to='{room}/Bob'><x xmlns='{NS_MUC}'/></presence>"
    ));
    bob.element_matching("the room's creation", |el| {
        el.name == "presence" && el.attr("from") == Some(&*format!("{room}/Bob"))
    });
    bob.send(&format!(
        "<iq type='set' id='create' to='{room}'><query xmlns='{NS_MUC_OWNER}'>\
         <x xmlns='{NS_DATA}' type='submit'/></query></iq>"
    ));
    bob.try_iq_result("create").expect("room configured");
    let mut alice = phone(&server);
    alice.send(&format!(
        "<presence to='{room}/Alice'><x xmlns='{NS_MUC}'/></presence>"
    ));
    alice.element_matching("her own presence in the room", |el| {
        el.name == "presence" && el.attr("from") == Some(&*format!("{room}/Alice"))
    });
    enable(&mut alice, "n1");
    // A second "app server": the room itself. Its notification is routed
    // into the room whose message caused it, which must have let go by
    // then; the room answers with an error.
    alice.send(&format!(
        "<iq type='set' id='muc-app'><enable xmlns='urn:xmpp:push:0' jid='{room}' node='x'/></iq>"
    ));
    alice.try_iq_result("muc-app").expect("push enabled");
    let say = |bob: &mut Client, body: &str| {
        bob.send(&format!(
            "<message type='groupchat' to='{room}'><body>{body}</body></message>"
        ));
    };
    // Mentions until the phone's session is asleep and one is notified:
    // the count only, no body.
    alice.cut();
    let iq = (0..50)
        .find_map(|i| {
            say(&mut bob, &format!("Alice: wake up ({i})"));
            app.publish_within(scaled(Duration::from_millis(200)))
        })
        .expect("a notification for a mention");
    let (_, fields) = read_publish(&iq);
    assert_eq!(fields.get("message-count").map(String::as_str), Some("1"));
    assert!(!fields.contains_key("last-message-body"));
    app.answer(&iq, None);
    say(&mut bob, "good morning everyone");
    app.assert_quiet();
    say(&mut bob, "are you coming, alice?");
    let (_, fields) = read_publish(&app.publish());
    assert_eq!(fields.get("message-count").map(String::as_str), Some("1"));
    let pong = bob.ping("still-here");
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
}

/// `a.test` with Alice and Bob, federated with `b.test`, whose component
/// `push.b.test` is the app server; `gone.test` routes to a closed port.
fn federated_pair() -> (TestServer, TestServer) {
    let (pa, pb, closed) = (free_port(), free_port(), free_port());
    let s2s = |domain: &str, port: u16, routes: &[(&str, u16)]| {
        let mut text = format!(
            "[[host]]\ndomain = \"{domain}\"\n\
             [[listener]]\nkind = \"s2s\"\naddress = \"127.0.0.1\"\nport = {port}\n\
             [[listener]]\nkind = \"component\"\naddress = \"127.0.0.1\"\nport = 0\n\
             [s2s]\nallow_private_addresses = true\nconnect_timeout_secs = 10\n"
        );
        for (peer, peer_port) in routes {
            text.push_str(&format!(
                "[[s2s.route]]\ndomain = \"{peer}\"\naddress = \"127.0.0.1:{peer_port}\"\n"
            ));
        }
        text
    };
    let a = TestServer::start(TestOptions {
        accounts: vec![
            ("alice@a.test".into(), "pw".into()),
            ("bob@a.test".into(), "pw".into()),
        ],
        extra_config: s2s(
            "a.test",
            pa,
            &[("b.test", pb), ("push.b.test", pb), ("gone.test", closed)],
        ),
        ..TestOptions::default()
    })
    .expect("a.test starts");
    let b = TestServer::start(TestOptions {
        extra_config: format!(
            "{}[[component]]\ndomain = \"push.b.test\"\nsecret = \"{SECRET}\"\nhost = \"b.test\"\n",
            s2s("b.test", pb, &[("a.test", pa)])
        ),
        ..TestOptions::default()
    })
    .expect("b.test starts");
    (a, b)
}

#[test]
fn a_remote_app_server_is_reached_over_federation() {
    let (a, b) = federated_pair();
    let mut app = AppServer::connect_as(&b, "push.b.test");
    let mut alice = available_at(a.c2s_addr(), "a.test", ("alice", "pw"), "phone");
    alice.send(&format!("<enable xmlns='{NS_SM}' resume='true'/>"));
    alice.element_matching("<enabled/>", |el| el.is("enabled", NS_SM));
    for (id, app_jid) in [("remote", "push.b.test"), ("nowhere", "gone.test")] {
        alice.send(&format!(
            "<iq type='set' id='{id}'><enable xmlns='{NS_PUSH}' jid='{app_jid}' node='n-{id}'/></iq>"
        ));
        // Accepted: whether the app server exists is learned later.
        alice.try_iq_result(id).expect("push enabled");
    }
    let mut bob = available_at(a.c2s_addr(), "a.test", ("bob", "pw"), "pc");
    let iq = hibernate_at(alice, "alice@a.test", &mut bob, &mut app);
    let (node, fields) = read_publish_between(&iq, "alice@a.test", "push.b.test");
    assert_eq!(node, "n-remote");
    assert_eq!(fields.get("message-count").map(String::as_str), Some("1"));
    // The result crosses back; the next message is notified too.
    app.answer(&iq, None);
    chat_to(&mut bob, "alice@a.test", "second");
    let iq = app.publish();
    assert_eq!(
        read_publish_between(&iq, "alice@a.test", "push.b.test").0,
        "n-remote"
    );
    // An error crossing back disables the remote registration.
    app.answer(&iq, Some("not-authorized"));
    // The app server's next message crosses the same link after the
    // error: once Bob has it, a.test has handled the error.
    app.sync(&mut bob, "bob@a.test/pc");
    // gone.test bounced its notification (remote-server-not-found): that
    // disabled it the same way. Nothing is sent anywhere any more, and
    // nothing is left on disk.
    chat_to(&mut bob, "alice@a.test", "third");
    app.assert_quiet();
    drop(bob);
    let _a = a
        .restart_after(TestOptions::default(), |dir| {
            let store = perch::store::Store::open(&dir.join("perch.redb"), 1 << 20)
                .expect("open the stopped server's store");
            let left = store
                .push_registrations("alice@a.test")
                .expect("read the registrations");
            assert!(left.is_empty(), "still registered: {left:?}");
        })
        .expect("restart");
}
