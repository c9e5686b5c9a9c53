//! Stream management (XEP-0198) and client state indication (XEP-0352)
//! against an in-process server: enabling, acks both ways, resumption on
//! a new connection (with the old one cut or still open), what is resent,
//! the errors of the XEP, what becomes of a session that is never resumed,
//! what an inactive client is spared, and the server's pings.

#[path = "../common/mod.rs"]
mod common;
mod crash;
mod csi;
mod enable;
mod limits;
mod pings;
mod restart;
mod resume;
mod resume_kept;
mod session_end;

use std::time::Duration;

use common::*;
use perch::testing::{TestOptions, TestServer, scaled};
use perch::xml::Element;

pub const NS_SM: &str = "urn:xmpp:sm:3";
pub const NS_CSI: &str = "urn:xmpp:csi:0";
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

pub const ALICE: (&str, &str) = ("alice", "alice-secret");
pub const BOB: (&str, &str) = ("bob", "bob-secret");

/// A server with Alice and Bob; `extra` continues the test configuration's
/// `[c2s]` table (its last), so it may set c2s keys without a header.
pub fn server_with(extra: &str) -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![
            ("alice@localhost".into(), ALICE.1.into()),
            ("bob@localhost".into(), BOB.1.into()),
        ],
        extra_config: extra.into(),
        ..TestOptions::default()
    })
    .expect("server")
}

/// `<enable/>`, resumable if `resume`.
pub fn enable(resume: bool) -> String {
    let attr = if resume { " resume='true'" } else { "" };
    format!("<enable xmlns='{NS_SM}'{attr}/>")
}

/// Logs in, binds `resource` and enables stream management (resumable if
/// `resume`); returns the client and the resumption id, if any.
pub fn sm_login(
    server: &TestServer,
    account: (&str, &str),
    resource: &str,
    resume: bool,
) -> (Client, Option<String>) {
    let mut client = login(server, account, Some(resource));
    client.send(&enable(resume));
    let enabled = client.element();
    assert!(enabled.is("enabled", NS_SM), "{enabled}");
    let id = enabled.attr("id").map(str::to_string);
    assert_eq!(id.is_some(), resume, "{enabled}");
    (client, id)
}

/// Authenticates a new connection as `account` and sends `<resume/>`;
/// returns the client and the server's answer (`<resumed/>` or `<failed/>`).
pub fn resume_as(
    server: &TestServer,
    account: (&str, &str),
    previd: &str,
    h: u32,
) -> (Client, Element) {
    let mut client = authenticate(server.c2s_addr(), account).expect("login");
    let features = client.restart();
    assert!(features.get_child("sm", NS_SM).is_some(), "{features}");
    client.send(&format!(
        "<resume xmlns='{NS_SM}' previd='{previd}' h='{h}'/>"
    ));
    let answer = client.element();
    (client, answer)
}

/// Chat messages with bodies `prefix0..prefixN` from `from` to `to`.
pub fn send_messages(from: &mut Client, to: &str, prefix: &str, count: usize) {
    let mut xml = String::new();
    for i in 0..count {
        xml.push_str(&format!(
            "<message type='chat' to='{to}' id='{prefix}{i}'><body>{prefix}{i}</body></message>"
        ));
        if xml.len() > 16_000 {
            from.send(&xml);
            xml.clear();
        }
    }
    if !xml.is_empty() {
        from.send(&xml);
    }
}

/// The body of a message, or None for anything else.
pub fn body(el: &Element) -> Option<String> {
    (el.name == "message")
        .then(|| el.get_child("body", NS_CLIENT).map(|b| b.text()))
        .flatten()
}

/// Whether `el` is a presence from `from` of `kind` (`None`: available).
pub fn is_presence(el: &Element, from: &str, kind: Option<&str>) -> bool {
    el.is("presence", NS_CLIENT) && el.attr("from") == Some(from) && el.attr("type") == kind
}

/// Pings the server and returns what arrived before the answer, stream
/// management elements included: the server handles a client's stanzas in
/// order, so everything the earlier ones caused has been queued by then.
pub fn until_pong(client: &mut Client, id: &str) -> Vec<Element> {
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

/// Reads elements up to and including the first satisfying `wanted`;
/// returns them all.
pub fn read_until(client: &mut Client, wanted: impl Fn(&Element) -> bool) -> Vec<Element> {
    let mut all = Vec::new();
    loop {
        let el = client.element();
        let done = wanted(&el);
        all.push(el);
        if done {
            return all;
        }
    }
}

/// Checks that nothing but whitespace arrives within `wait` and that the
/// connection stays open.
pub fn assert_quiet(client: &mut Client, wait: Duration) {
    assert!(
        client.pending.is_empty(),
        "expected nothing, but {:?} were read already",
        client.pending
    );
    let closed = client.closed_within(wait);
    let rest = client.unparsed();
    assert!(
        !closed && rest.trim().is_empty(),
        "expected nothing for {wait:?}; received {rest:?} (connection closed: {closed})"
    );
}

/// The next element if one arrives within `wait` (`None` otherwise; a
/// stream error or the end of the stream fails the test).
pub fn element_within(client: &mut Client, wait: Duration) -> Option<Element> {
    if let Some(el) = client.pending.pop_front() {
        return Some(el);
    }
    let tcp = match &client.io {
        Transport::Plain(tcp) => tcp.try_clone().expect("clone the socket"),
        _ => panic!("plaintext expected"),
    };
    tcp.set_read_timeout(Some(wait)).expect("read timeout");
    let next = client.try_next_event();
    tcp.set_read_timeout(Some(common::timeout()))
        .expect("read timeout");
    match next {
        Ok(Event::Element(el)) if !el.is("error", NS_STREAM) => Some(el),
        Ok(other) => panic!("expected an element, got {other:?}"),
        Err(_) => None,
    }
}

/// A short wait in which the server, if it were to send something, would
/// (it is idle otherwise).
pub fn settle() -> Duration {
    scaled(Duration::from_millis(300))
}

/// Checks a `<failed/>`: its stanza error condition; returns its `h`.
pub fn assert_failed(el: &Element, condition: &str) -> Option<u32> {
    assert!(el.is("failed", NS_SM), "expected <failed/>, got {el}");
    let conditions: Vec<&str> = el
        .children()
        .filter(|c| c.ns == NS_STANZAS)
        .map(|c| c.name.as_ref())
        .collect();
    assert_eq!(conditions, [condition], "{el}");
    el.attr("h")
        .map(|h| h.parse().unwrap_or_else(|_| panic!("bad h: {el}")))
}

/// Reads the next element, which must be a stream error with `condition`,
/// then the end of the stream and of the connection; returns the error.
pub fn expect_stream_error_el(client: &mut Client, condition: &str) -> Element {
    let el = client.element();
    check_stream_error(client, el, condition)
}

/// Like [`expect_stream_error_el`], skipping stanzas before the error.
pub fn skip_to_stream_error(client: &mut Client, condition: &str) -> Element {
    let el = client.element_matching("a stream error", |el| el.is("error", NS_STREAM));
    check_stream_error(client, el, condition)
}

fn check_stream_error(client: &mut Client, el: Element, condition: &str) -> Element {
    assert!(
        el.is("error", NS_STREAM),
        "expected <stream:error><{condition}/>, got {el}; received: {}",
        client.transcript()
    );
    let found: Vec<&str> = el
        .children()
        .filter(|c| c.ns == NS_STREAM_ERRORS && c.name != "text")
        .map(|c| c.name.as_ref())
        .collect();
    assert_eq!(found, [condition], "{el}");
    match client.next_event() {
        Event::Close => {}
        other => panic!(
            "expected </stream:stream> after the error, got {other:?}; received: {}",
            client.transcript()
        ),
    }
    // Closing our side too spares the server its wait for it.
    let _ = client.try_send("</stream:stream>");
    if let Transport::Plain(tcp) = &client.io {
        let _ = tcp.shutdown(std::net::Shutdown::Write);
    }
    client.expect_eof();
    el
}

/// `<handled-count-too-high/>` in a stream error: its `h` and `send-count`.
pub fn too_high(error: &Element) -> (Option<&str>, Option<&str>) {
    let app = error
        .get_child("handled-count-too-high", NS_SM)
        .unwrap_or_else(|| panic!("no <handled-count-too-high/>: {error}"));
    (app.attr("h"), app.attr("send-count"))
}

/// Sends initial presence and reads until its echo from the server.
pub fn go_online(client: &mut Client, xml: &str) {
    client.send(xml);
    let own = client.jid.clone();
    client.element_matching("the own presence", |el| is_presence(el, &own, None));
}

/// Makes Alice and Bob subscribe to each other (both ways), with two
/// short-lived sessions; the rosters keep it.
pub fn befriend(server: &TestServer) {
    let mut alice = login(server, ALICE, Some("setup"));
    let mut bob = login(server, BOB, Some("setup"));
    for client in [&mut alice, &mut bob] {
        client.send(&format!(
            "<iq type='get' id='roster'><query xmlns='{NS_ROSTER}'/></iq>"
        ));
        client.try_iq_result("roster").expect("roster");
        go_online(client, "<presence/>");
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

/// Bob creates and opens `room`; returns his client.
pub fn bobs_room(server: &TestServer, room: &str) -> Client {
    let mut bob = login(server, BOB, Some("pc"));
    bob.send(&format!(
        "<presence to='{room}/Bob'><x xmlns='{NS_MUC}'/></presence>"
    ));
    bob.element_matching("the room's creation", |el| {
        is_presence(el, &format!("{room}/Bob"), None)
    });
    bob.send(&format!(
        "<iq type='set' id='create' to='{room}'><query xmlns='{NS_MUC_OWNER}'>\
         <x xmlns='jabber:x:data' type='submit'/></query></iq>"
    ));
    bob.try_iq_result("create").expect("room configured");
    bob
}

/// A stream-managed client that counts the stanzas it reads: the `h` it
/// acknowledges and resumes with.
pub struct Sm {
    pub client: Client,
    pub id: Option<String>,
    pub h: u32,
}

impl Sm {
    pub fn login(server: &TestServer, account: (&str, &str), resource: &str) -> Sm {
        let (client, id) = sm_login(server, account, resource, true);
        Sm { client, id, h: 0 }
    }

    pub fn id(&self) -> &str {
        self.id.as_deref().expect("resumable")
    }

    /// The next stanza, counted; the server's `<r/>`s are passed over.
    pub fn stanza(&mut self) -> Element {
        loop {
            let el = self.client.element();
            if el.ns == NS_SM {
                assert_eq!(el.name.as_ref(), "r", "unexpected {el}");
                continue;
            }
            self.h = self.h.wrapping_add(1);
            return el;
        }
    }

    /// The first stanza satisfying `wanted`; all read are counted.
    pub fn stanza_matching(&mut self, what: &str, wanted: impl Fn(&Element) -> bool) -> Element {
        for _ in 0..1000 {
            let el = self.stanza();
            if wanted(&el) {
                return el;
            }
        }
        panic!("no {what} in 1000 stanzas");
    }

    /// [`until_pong`], counting stanzas and leaving out `<r/>`s.
    pub fn until_pong(&mut self, id: &str) -> Vec<Element> {
        let all = until_pong(&mut self.client, id);
        let stanzas: Vec<Element> = all.into_iter().filter(|el| el.ns != NS_SM).collect();
        self.h = self.h.wrapping_add(stanzas.len() as u32 + 1);
        stanzas
    }

    /// Acknowledges everything read so far.
    pub fn ack(&mut self) {
        self.client
            .send(&format!("<a xmlns='{NS_SM}' h='{}'/>", self.h));
    }

    /// What a resumption needs, the connection left as it is.
    pub fn lost(&self) -> Lost {
        Lost {
            id: self.id().to_string(),
            h: self.h,
            jid: self.client.jid.clone(),
        }
    }

    /// Cuts the connection without closing the stream.
    pub fn cut(self) -> Lost {
        let lost = self.lost();
        self.client.cut();
        lost
    }
}

/// A stream-managed session whose connection is gone (or about to be
/// taken over).
pub struct Lost {
    pub id: String,
    pub h: u32,
    pub jid: String,
}

impl Lost {
    /// Resumes on a new connection, acknowledging what was read; the
    /// server must accept. Returns the client and the `h` of `<resumed/>`.
    pub fn resume(&self, server: &TestServer, account: (&str, &str)) -> (Sm, u32) {
        let (mut client, answer) = resume_as(server, account, &self.id, self.h);
        assert!(answer.is("resumed", NS_SM), "{answer}");
        assert_eq!(answer.attr("previd"), Some(self.id.as_str()), "{answer}");
        let handled = answer
            .attr("h")
            .and_then(|h| h.parse().ok())
            .unwrap_or_else(|| panic!("<resumed/> without a valid h: {answer}"));
        client.jid = self.jid.clone();
        let resumed = Sm {
            client,
            id: Some(self.id.clone()),
            h: self.h,
        };
        (resumed, handled)
    }
}
