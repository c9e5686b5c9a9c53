//! BOSH (XEP-0124, XEP-0206) against an in-process server, over real
//! sockets: the session creation response, a login (SASL, the restart,
//! binding), a message from a TCP client delivered into a held request,
//! the request ID window, unknown sessions, repeated requests,
//! termination, and what becomes of a session whose client stops sending
//! requests: without stream management it ends and messages go to
//! offline storage (XEP-0160); with it, it hibernates (XEP-0198) and is
//! resumed from a TCP connection.
//!
//! `[http] bosh_inactivity_secs` is 10 here (its minimum), so the
//! inactivity tests take about that long; the rest are quick.

mod common;

use std::time::{Duration, Instant};

use common::bosh::*;
use common::*;
use perch::testing::{TestOptions, TestServer, scaled};
use perch::xml::Element;

const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");
const NS_SM: &str = "urn:xmpp:sm:3";
/// `[http] bosh_inactivity_secs` of these servers.
const INACTIVITY: Duration = Duration::from_secs(10);

fn server() -> TestServer {
    TestServer::start(TestOptions {
        accounts: [ALICE, BOB]
            .iter()
            .map(|(user, password)| (format!("{user}@localhost"), password.to_string()))
            .collect(),
        // TEST_CONFIG ends in its [c2s] table.
        extra_config: format!(
            "[http]\nrequest_timeout_secs = 5\nbosh_inactivity_secs = {}\n",
            INACTIVITY.as_secs()
        ),
        ..TestOptions::default()
    })
    .expect("the test server starts")
}

fn http(server: &TestServer) -> std::net::SocketAddr {
    server
        .http_addr()
        .expect("the test server has an HTTP listener")
}

/// The body of a message, or None for anything else.
fn body(el: &Element) -> Option<String> {
    (el.name == "message")
        .then(|| el.get_child("body", NS_CLIENT).map(|b| b.text()))
        .flatten()
}

fn chat(to: &str, id: &str, text: &str) -> String {
    format!("<message type='chat' to='{to}' id='{id}'><body>{text}</body></message>")
}

fn is_presence(el: &Element, from: &str, kind: Option<&str>) -> bool {
    el.is("presence", NS_CLIENT) && el.attr("from") == Some(from) && el.attr("type") == kind
}

/// Pings the server from `client` and returns what arrived before the
/// answer.
fn until_pong(client: &mut Client, id: &str) -> Vec<Element> {
    client.send(&format!(
        "<iq type='get' id='{id}' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
    ));
    let mut before = Vec::new();
    loop {
        let el = client.element();
        if el.is("iq", NS_CLIENT) && el.attr("id") == Some(id) {
            assert_eq!(el.attr("type"), Some("result"), "{el}");
            return before;
        }
        before.push(el);
    }
}

/// Alice and Bob subscribe to each other (over TCP; the rosters keep it),
/// so that Bob sees when Alice's sessions come and go.
fn befriend(server: &TestServer) {
    let mut alice = login(server, ALICE, Some("setup"));
    let mut bob = login(server, BOB, Some("setup"));
    for client in [&mut alice, &mut bob] {
        client.send(&format!(
            "<iq type='get' id='roster'><query xmlns='{NS_ROSTER}'/></iq>"
        ));
        client.try_iq_result("roster").expect("roster");
        client.send("<presence/>");
        let own = client.jid.clone();
        client.element_matching("the own presence", |el| is_presence(el, &own, None));
    }
    subscribe(&mut alice, &mut bob, "bob@localhost", "alice@localhost");
    subscribe(&mut bob, &mut alice, "alice@localhost", "bob@localhost");
    alice.disconnect();
    bob.disconnect();
}

/// `from` asks `to` for a subscription and `to` approves it.
fn subscribe(from: &mut Client, to: &mut Client, to_bare: &str, from_bare: &str) {
    from.send(&format!("<presence to='{to_bare}' type='subscribe'/>"));
    to.element_matching("the subscription request", |el| {
        el.name == "presence" && el.attr("type") == Some("subscribe")
    });
    to.send(&format!("<presence to='{from_bare}' type='subscribed'/>"));
    from.element_matching("the approval", |el| {
        el.name == "presence" && el.attr("type") == Some("subscribed")
    });
}

/// Bob, online over TCP.
fn bob_online(server: &TestServer) -> Client {
    let mut bob = login(server, BOB, Some("desk"));
    bob.send("<presence/>");
    bob.element_matching("his own presence", |el| {
        is_presence(el, "bob@localhost/desk", None)
    });
    bob
}

/// XEP-0124 §7.2 and XEP-0206 §4: what the creation response says.
#[test]
fn session_creation_response_has_the_session_attributes_and_features() {
    let server = server();
    let request = format!(
        "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='{NS_XBOSH}' rid='{FIRST_RID}' to='localhost' \
         xml:lang='en' wait='7' hold='1' ver='1.6' xmpp:version='1.0'/>"
    );
    let response = post_bosh(http(&server), &request);
    assert_eq!(
        response.header("content-type"),
        Some("text/xml; charset=utf-8"),
        "{response}"
    );
    // Web clients on other origins use BOSH (XEP-0124 §3 by CORS).
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("*"),
        "{response}"
    );
    let body = parse_body(&response);
    assert_eq!(body.attr("type"), None, "{body}");
    let sid = body.attr("sid").unwrap_or_default();
    // The sid is the session's only credential: long and random.
    assert!(
        sid.len() >= 16 && sid.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{body}"
    );
    // No longer than asked; requests one more than hold.
    assert_eq!(body.attr("wait"), Some("7"), "{body}");
    assert_eq!(body.attr("hold"), Some("1"), "{body}");
    assert_eq!(body.attr("requests"), Some("2"), "{body}");
    assert_eq!(body.attr("inactivity"), Some("10"), "{body}");
    // The lower of the client's version and the server's.
    assert_eq!(body.attr("ver"), Some("1.6"), "{body}");
    assert_eq!(body.attr("from"), Some("localhost"), "{body}");
    assert!(
        body.attr("authid").is_some_and(|id| !id.is_empty()),
        "XEP-0206 §4: the stream id as authid: {body}"
    );
    assert!(body.attr("polling").is_some(), "{body}");
    assert_eq!(
        body.attr(&format!("{{{NS_XBOSH}}}version")),
        Some("1.0"),
        "xmpp:version: {body}"
    );
    // XEP-0206 §6: the features come with the creation response.
    let features = body
        .get_child("features", NS_STREAM)
        .unwrap_or_else(|| panic!("no <stream:features/> inside: {body}"));
    assert!(
        mechanisms(features).iter().any(|m| m == "PLAIN"),
        "{features}"
    );
}

/// A whole login over BOSH, then chat with a TCP client: Bob's message
/// arrives in the response to a request the server was holding.
#[test]
fn login_and_a_message_from_tcp_arrives_in_a_held_request() {
    let server = server();
    let (mut alice, _) = BoshClient::create(http(&server), 20);
    alice.login(ALICE, "web");
    assert_eq!(alice.jid, "alice@localhost/web");
    let mut bob = login(&server, BOB, Some("desk"));

    // An empty request: the server holds it, there being nothing to send.
    let held = alice.start("", "");
    std::thread::sleep(scaled(Duration::from_millis(300)));
    let sent = Instant::now();
    bob.send(&chat("alice@localhost/web", "b1", "into the held request"));
    let response = alice.finish(held);
    // Answered because of the message, long before its wait of 20 s.
    assert!(
        sent.elapsed() < Duration::from_secs(15),
        "the held request was answered only after {:?}",
        sent.elapsed()
    );
    let got = alice.element_matching("Bob's message", |el| el.name == "message");
    assert_eq!(got.ns, NS_CLIENT, "{response}");
    assert_eq!(got.attr("from"), Some("bob@localhost/desk"), "{got}");
    assert_eq!(body(&got).as_deref(), Some("into the held request"));

    // And the other way. (Nothing comes back for Alice, so the server
    // holds this request for its wait; it is left to that.)
    let _held = alice.start("", &chat("bob@localhost/desk", "a1", "over BOSH"));
    let got = bob.non_presence();
    assert_eq!(got.attr("from"), Some("alice@localhost/web"), "{got}");
    assert_eq!(body(&got).as_deref(), Some("over BOSH"));
}

/// XEP-0124 §14.2: a rid beyond the window (`requests` above the last
/// one) ends the session with `item-not-found`; so does every request
/// of the session after that.
#[test]
fn a_rid_beyond_the_window_ends_the_session_with_item_not_found() {
    let server = server();
    let (alice, _) = BoshClient::create(http(&server), 5);
    // requests='2': FIRST_RID + 1 and + 2 are in the window, + 3 is not.
    let beyond = alice.body_xml(FIRST_RID + 3, "", "");
    let answer = parse_body(&post_bosh(http(&server), &beyond));
    assert_terminate(&answer, "item-not-found");
    let next = alice.body_xml(FIRST_RID + 1, "", "");
    let answer = parse_body(&post_bosh(http(&server), &next));
    assert_terminate(&answer, "item-not-found");
}

/// XEP-0124 §17.2: a sid the server does not know gets `item-not-found`,
/// and the sessions it does know are not disturbed.
#[test]
fn an_unknown_sid_gets_item_not_found() {
    let server = server();
    let (mut alice, _) = BoshClient::create(http(&server), 5);
    alice.login(ALICE, "web");
    let forged = format!(
        "<body xmlns='{NS_HTTPBIND}' rid='{}' sid='0123456789abcdef0123456789abcdef'/>",
        alice.rid
    );
    let answer = parse_body(&post_bosh(http(&server), &forged));
    assert_terminate(&answer, "item-not-found");
    alice.exchange(&format!(
        "<iq type='get' id='p1' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
    ));
    let pong = alice.element_matching("the pong", |el| el.attr("id") == Some("p1"));
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
}

/// XEP-0124 §14.3: a request sent again (its response lost) gets the same
/// response, and its payload is not processed twice.
#[test]
fn a_repeated_rid_gets_the_same_response() {
    let server = server();
    let (mut alice, _) = BoshClient::create(http(&server), 2);
    alice.login(ALICE, "web");
    let rid = alice.rid;
    let ping = format!("<iq type='get' id='once' to='localhost'><ping xmlns='{NS_PING}'/></iq>");
    let request = alice.body_xml(rid, "", &ping);
    alice.rid += 1;
    let first = post_bosh(http(&server), &request);
    let first_body = parse_body(&first);
    assert!(
        first_body
            .children()
            .any(|el| el.attr("id") == Some("once")),
        "the pong comes in the response: {first}"
    );
    let again = post_bosh(http(&server), &request);
    assert_eq!(again.status, 200, "{again}");
    assert_eq!(again.text(), first.text(), "a repeat gets the same bytes");
    // The next request gets no second pong: the iq was handled once.
    alice.exchange(&format!(
        "<iq type='get' id='next' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
    ));
    let got = alice.element_matching("the next pong", |el| el.attr("id") == Some("next"));
    assert_eq!(got.attr("type"), Some("result"), "{got}");
    let repeated: Vec<&Element> = alice
        .pending
        .iter()
        .filter(|el| el.attr("id") == Some("once"))
        .collect();
    assert!(
        repeated.is_empty(),
        "the ping was answered twice: {repeated:?}"
    );
}

/// XEP-0124 §13: `type='terminate'` ends the session: its payload is
/// processed (an unavailable presence, which Bob sees), the response
/// says `type='terminate'`, and the sid is unknown from then on.
#[test]
fn terminate_ends_the_session() {
    let server = server();
    befriend(&server);
    let mut bob = bob_online(&server);
    let (mut alice, _) = BoshClient::create(http(&server), 5);
    alice.login(ALICE, "web");
    alice.exchange("<presence/>");
    bob.element_matching("Alice's presence", |el| {
        is_presence(el, "alice@localhost/web", None)
    });
    let terminate = alice.start(" type='terminate'", "<presence type='unavailable'/>");
    let answer = parse_body(&terminate.response());
    assert_eq!(answer.attr("type"), Some("terminate"), "{answer}");
    assert_eq!(answer.attr("condition"), None, "a clean end: {answer}");
    bob.element_matching("Alice's unavailable presence", |el| {
        is_presence(el, "alice@localhost/web", Some("unavailable"))
    });
    let after = alice.body_xml(alice.rid, "", "");
    let answer = parse_body(&post_bosh(http(&server), &after));
    assert_terminate(&answer, "item-not-found");
}

/// XEP-0124 §7.1 `inactivity`: a client that sends no request for that
/// long is gone. Without stream management its session ends then (Bob
/// sees Alice go, not before), and a chat message sent to her afterwards
/// is kept as an offline message (XEP-0160) for her next login.
#[test]
fn an_idle_session_ends_after_inactivity_and_messages_go_offline() {
    let server = server();
    befriend(&server);
    let mut bob = bob_online(&server);
    let (mut alice, _) = BoshClient::create(http(&server), 2);
    alice.login(ALICE, "idle");
    let last_request = Instant::now();
    alice.exchange("<presence/>");
    bob.element_matching("Alice's presence", |el| {
        is_presence(el, "alice@localhost/idle", None)
    });
    let gone = |el: &Element| is_presence(el, "alice@localhost/idle", Some("unavailable"));
    // The server cannot have given up on her before the inactivity
    // period (counted from its last response, after `last_request`).
    let early = INACTIVITY - Duration::from_secs(1);
    std::thread::sleep(early.saturating_sub(last_request.elapsed()));
    let seen = until_pong(&mut bob, "early");
    assert!(
        !seen.iter().any(gone),
        "Alice's session ended before {INACTIVITY:?} of inactivity: {seen:?}"
    );
    bob.element_matching("Alice's unavailable presence", gone);
    let after = last_request.elapsed();
    assert!(
        after < INACTIVITY + timeout(),
        "the idle session ended only after {after:?}"
    );
    // Her resource is gone: a chat message to it is stored for her.
    bob.send(&chat("alice@localhost/idle", "off1", "while you were out"));
    assert!(until_pong(&mut bob, "stored").is_empty());
    let stale = alice.body_xml(alice.rid, "", "");
    assert_terminate(
        &parse_body(&post_bosh(http(&server), &stale)),
        "item-not-found",
    );
    let mut alice = login(&server, ALICE, Some("laptop"));
    alice.send("<presence/>");
    let got = alice.element_matching("the offline message", |el| body(el).is_some());
    assert_eq!(body(&got).as_deref(), Some("while you were out"), "{got}");
    assert!(
        got.get_child("delay", NS_DELAY).is_some(),
        "an offline message carries its delay (XEP-0203): {got}"
    );
}

/// With stream management enabled (resumable), an idle BOSH session
/// does not end when its client stops sending requests: it hibernates
/// like a TCP one whose connection died (XEP-0198 §5). Bob does not see
/// Alice go, his message waits in her session, and she resumes it from
/// a TCP connection and gets it.
#[test]
fn an_idle_session_with_stream_management_hibernates_and_resumes() {
    let server = server();
    befriend(&server);
    let mut bob = bob_online(&server);
    let (mut alice, _) = BoshClient::create(http(&server), 2);
    alice.login(ALICE, "sm");
    alice.exchange(&format!("<enable xmlns='{NS_SM}' resume='true'/>"));
    let enabled = alice.element_matching("<enabled/>", |el| el.ns == NS_SM);
    assert!(enabled.is("enabled", NS_SM), "{enabled}");
    let id = enabled
        .attr("id")
        .unwrap_or_else(|| panic!("resumable, so an id: {enabled}"))
        .to_string();
    let last_request = Instant::now();
    alice.exchange("<presence/>");
    bob.element_matching("Alice's presence", |el| {
        is_presence(el, "alice@localhost/sm", None)
    });
    // Past the inactivity period, with a margin for a slow machine.
    let past = INACTIVITY + scaled(Duration::from_secs(3));
    std::thread::sleep(past.saturating_sub(last_request.elapsed()));
    // The BOSH session is over...
    let stale = alice.body_xml(alice.rid, "", "");
    assert_terminate(
        &parse_body(&post_bosh(http(&server), &stale)),
        "item-not-found",
    );
    // ...but the XMPP session waits: she still counts as available.
    let seen = until_pong(&mut bob, "waiting");
    assert!(
        !seen
            .iter()
            .any(|el| is_presence(el, "alice@localhost/sm", Some("unavailable"))),
        "a resumable session ended instead of hibernating: {seen:?}"
    );
    bob.send(&chat("alice@localhost/sm", "q1", "queued for you"));
    let seen = until_pong(&mut bob, "queued");
    assert!(
        !seen.iter().any(|el| el.attr("type") == Some("error")),
        "{seen:?}"
    );

    // She resumes from a TCP connection; h='0' asks for everything.
    let mut alice = authenticate(server.c2s_addr(), ALICE).expect("login");
    let features = alice.restart();
    assert!(features.get_child("sm", NS_SM).is_some(), "{features}");
    alice.send(&format!("<resume xmlns='{NS_SM}' previd='{id}' h='0'/>"));
    let resumed = alice.element();
    assert!(resumed.is("resumed", NS_SM), "{resumed}");
    let got = alice.element_matching("the queued message", |el| {
        body(el).as_deref() == Some("queued for you")
    });
    assert_eq!(got.attr("to"), Some("alice@localhost/sm"), "{got}");
}
