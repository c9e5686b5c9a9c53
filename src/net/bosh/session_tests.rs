use super::*;
use crate::net::bosh::body::{self, MAX_RID};

const FEATURES: &[u8] = b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>";
const MSG: &[u8] = b"<message xmlns='jabber:client'><body>hi</body></message>";

/// The first request's rid.
const R: u64 = 100;

fn parse(xml: &str) -> RequestBody {
    body::parse(xml.as_bytes(), 1 << 20).unwrap_or_else(|e| panic!("{xml}: {e}"))
}

/// A request of the session: `attrs` and `inner` as written.
fn req(rid: u64, attrs: &str, inner: &str) -> RequestBody {
    parse(&format!(
        "<body rid='{rid}' sid='S' {attrs} xmlns='http://jabber.org/protocol/httpbind' \
         xmlns:xmpp='urn:xmpp:xbosh'>{inner}</body>"
    ))
}

fn empty(rid: u64) -> RequestBody {
    req(rid, "", "")
}

fn creation(attrs: &str) -> RequestBody {
    parse(&format!(
        "<body rid='{R}' to='example.com' xml:lang='en' xmpp:version='1.0' {attrs} \
         xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>"
    ))
}

/// The test's clock: `Clock::at(s)` is `s` seconds after the start.
struct Clock(Instant);

impl Clock {
    fn at(&self, s: f64) -> Instant {
        self.0 + Duration::from_secs_f64(s)
    }
}

/// A session created at 0 with `attrs`, opened, its creation response
/// (with the features) sent.
fn session(settings: &Settings, attrs: &str) -> (BoshSession, Clock, Rc<[u8]>) {
    let clock = Clock(Instant::now());
    let mut s = BoshSession::create("S".to_owned(), &creation(attrs), settings, clock.at(0.0))
        .expect("created");
    assert_eq!(
        s.due(clock.at(0.0)),
        vec![],
        "answered before the stream opened"
    );
    s.opened("stream-1", "example.com", true);
    s.push_output(FEATURES);
    let mut due = s.due(clock.at(0.0));
    assert_eq!(due.len(), 1);
    let (rid, bytes) = due.remove(0);
    assert_eq!(rid, R);
    (s, clock, bytes)
}

/// Settings that let a client ask for two requests held.
fn hold_two() -> Settings {
    Settings {
        max_hold: 2,
        ..Settings::default()
    }
}

fn default_session() -> (BoshSession, Clock) {
    let (s, clock, _) = session(&Settings::default(), "wait='60' hold='1'");
    (s, clock)
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8")
}

/// An attribute of a response body (no namespace).
fn attr(bytes: &[u8], name: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(text(bytes)).expect("a response parses");
    doc.root_element().attribute(name).map(str::to_owned)
}

/// The names of a response's children.
fn children(bytes: &[u8]) -> Vec<String> {
    let doc = roxmltree::Document::parse(text(bytes)).expect("a response parses");
    doc.root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name().to_owned())
        .collect()
}

fn rids(due: &Responses) -> Vec<u64> {
    due.iter().map(|(rid, _)| *rid).collect()
}

fn inputs(s: &mut BoshSession) -> Vec<Input> {
    std::iter::from_fn(|| s.take_input()).collect()
}

const EMPTY: &str = "<body xmlns='http://jabber.org/protocol/httpbind'/>";

// ---------------------------------------------------------------------------
// Creation (XEP-0124 §7, XEP-0206 §4).

#[test]
fn the_creation_response_carries_the_session_attributes_and_features() {
    let (_, _, bytes) = session(&Settings::default(), "wait='60' hold='1' ver='1.6'");
    assert_eq!(
        text(&bytes),
        "<body xmlns='http://jabber.org/protocol/httpbind' sid='S' wait='60' requests='2' \
         hold='1' inactivity='60' polling='2' maxpause='120' ver='1.6' from='example.com' \
         secure='true' authid='stream-1' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0' \
         xmpp:restartlogic='true' xmlns:stream='http://etherx.jabber.org/streams'>\
         <stream:features xmlns:stream='http://etherx.jabber.org/streams'/></body>"
    );
}

#[test]
fn wait_and_hold_are_what_the_client_asked_at_most() {
    let settings = Settings::default();
    let (_, _, b) = session(&settings, "wait='600' hold='5' ver='2.0'");
    assert_eq!(attr(&b, "wait").as_deref(), Some("60"));
    assert_eq!(attr(&b, "hold").as_deref(), Some("1"));
    assert_eq!(attr(&b, "requests").as_deref(), Some("2"));
    assert_eq!(attr(&b, "ver").as_deref(), Some("1.11"));
    let (_, _, b) = session(&settings, "wait='10' hold='0'");
    assert_eq!(attr(&b, "wait").as_deref(), Some("10"));
    assert_eq!(attr(&b, "hold").as_deref(), Some("0"));
    assert_eq!(attr(&b, "requests").as_deref(), Some("1"));
    // Absent: the server's wait, one held.
    let (_, _, b) = session(&settings, "");
    assert_eq!(attr(&b, "wait").as_deref(), Some("60"));
    assert_eq!(attr(&b, "hold").as_deref(), Some("1"));
    assert_eq!(attr(&b, "ver").as_deref(), Some("1.11"));
    assert_eq!(attr(&b, "ack"), None);
}

#[test]
fn bad_creation_requests_are_refused() {
    let s = Settings::default();
    let now = Instant::now();
    let create = |b: &RequestBody| BoshSession::create("S".into(), b, &s, now).err();
    assert_eq!(
        create(&req(R, "to='example.com'", "")),
        Some(Condition::BadRequest)
    );
    let no_to = parse("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>");
    assert_eq!(create(&no_to), Some(Condition::ImproperAddressing));
    assert_eq!(
        create(&creation("type='terminate'")),
        Some(Condition::BadRequest)
    );
    assert_eq!(create(&creation("pause='5'")), Some(Condition::BadRequest));
}

#[test]
fn the_creation_request_waits_for_the_stream_but_not_past_its_wait() {
    let clock = Clock(Instant::now());
    let mut s = BoshSession::create(
        "S".into(),
        &creation("wait='5'"),
        &Settings::default(),
        clock.at(0.0),
    )
    .unwrap();
    s.push_output(FEATURES);
    assert_eq!(s.due(clock.at(4.9)), vec![]);
    assert_eq!(s.next_deadline(), Some(clock.at(5.0)));
    let due = s.due(clock.at(5.0));
    assert_eq!(rids(&due), [R]);
    assert_eq!(attr(&due[0].1, "sid").as_deref(), Some("S"));
    assert_eq!(attr(&due[0].1, "authid"), None);
    // opened() afterwards changes nothing.
    s.opened("x", "example.com", true);
    s.receive(empty(R + 1), clock.at(6.0));
    s.push_output(MSG);
    let due = s.due(clock.at(6.0));
    assert_eq!(attr(&due[0].1, "authid"), None);
}

#[test]
fn a_payload_in_the_creation_request_is_input() {
    let b = parse(
        "<body rid='7' to='example.com' xmlns='http://jabber.org/protocol/httpbind'><presence/></body>",
    );
    let mut s = BoshSession::create("S".into(), &b, &Settings::default(), Instant::now()).unwrap();
    assert_eq!(
        inputs(&mut s),
        [Input::Payload(
            b"<presence xmlns='jabber:client'/>".to_vec()
        )]
    );
}

#[test]
fn the_content_type_is_the_clients_if_it_is_fit_for_a_header() {
    let mk = |attrs: &str| {
        BoshSession::create(
            "S".into(),
            &creation(attrs),
            &Settings::default(),
            Instant::now(),
        )
        .unwrap()
    };
    assert_eq!(mk("").content_type(), "text/xml; charset=utf-8");
    assert_eq!(mk("content='text/html'").content_type(), "text/html");
    assert_eq!(
        mk("content='text/html&#13;&#10;X: y'").content_type(),
        "text/xml; charset=utf-8"
    );
    assert_eq!(mk("content=''").content_type(), "text/xml; charset=utf-8");
    assert_eq!(mk("").sid(), "S");
}

// ---------------------------------------------------------------------------
// Holding and answering (§8).

#[test]
fn a_held_request_is_answered_when_output_arrives() {
    let (mut s, c) = default_session();
    assert_eq!(s.receive(empty(R + 1), c.at(1.0)), Received::Held);
    assert_eq!(s.due(c.at(1.0)), vec![]);
    s.push_output(MSG);
    s.push_output(b"<iq xmlns='jabber:client' type='result' id='1'/>");
    assert_eq!(s.pending_bytes(), MSG.len() + 48);
    let due = s.due(c.at(2.0));
    assert_eq!(rids(&due), [R + 1]);
    assert_eq!(children(&due[0].1), ["message", "iq"]);
    assert_eq!(s.pending_bytes(), 0);
    // Output waits for the next request.
    s.push_output(MSG);
    assert_eq!(s.due(c.at(3.0)), vec![]);
    s.receive(empty(R + 2), c.at(4.0));
    let due = s.due(c.at(4.0));
    assert_eq!(rids(&due), [R + 2]);
    assert_eq!(children(&due[0].1), ["message"]);
}

#[test]
fn output_is_split_at_the_response_budget_lowest_rid_first() {
    let settings = Settings {
        max_hold: 2,
        max_response_bytes: 2 * MSG.len(),
        ..Settings::default()
    };
    let (mut s, c, _) = session(&settings, "hold='2'");
    s.receive(empty(R + 1), c.at(1.0));
    s.receive(empty(R + 2), c.at(1.0));
    for _ in 0..5 {
        s.push_output(MSG);
    }
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 1, R + 2]);
    assert_eq!(children(&due[0].1).len(), 2);
    assert_eq!(children(&due[1].1).len(), 2);
    assert_eq!(s.pending_bytes(), MSG.len());
    // One element larger than the budget still goes, alone.
    let big = format!(
        "<message xmlns='jabber:client'><body>{}</body></message>",
        "x".repeat(500)
    );
    s.push_output(big.as_bytes());
    s.receive(empty(R + 3), c.at(2.0));
    s.receive(empty(R + 4), c.at(2.0));
    let due = s.due(c.at(2.0));
    assert_eq!(rids(&due), [R + 3, R + 4]);
    assert_eq!(children(&due[0].1).len(), 1);
    assert!(text(&due[1].1).contains(&"x".repeat(500)));
}

#[test]
fn more_than_hold_requests_answers_the_oldest() {
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(5.0));
    assert_eq!(s.due(c.at(5.0)), vec![]);
    assert_eq!(
        s.receive(req(R + 2, "", "<presence/>"), c.at(6.0)),
        Received::Held
    );
    let due = s.due(c.at(6.0));
    assert_eq!(rids(&due), [R + 1]);
    assert_eq!(text(&due[0].1), EMPTY);
    assert_eq!(
        inputs(&mut s),
        [Input::Payload(
            b"<presence xmlns='jabber:client'/>".to_vec()
        )]
    );
}

#[test]
fn a_request_is_answered_empty_when_its_wait_runs_out() {
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(10.0));
    assert_eq!(s.next_deadline(), Some(c.at(70.0)));
    assert_eq!(s.due(c.at(69.9)), vec![]);
    let due = s.due(c.at(70.0));
    assert_eq!(rids(&due), [R + 1]);
    assert_eq!(text(&due[0].1), EMPTY);
    // None held: the deadline is the end of inactivity.
    assert_eq!(s.next_deadline(), Some(c.at(130.0)));
}

// ---------------------------------------------------------------------------
// Request IDs (§14).

#[test]
fn payloads_are_released_in_rid_order() {
    let settings = hold_two();
    let (mut s, c, _) = session(&settings, "hold='2'");
    assert_eq!(
        s.receive(req(R + 2, "", "<iq id='2'/>"), c.at(1.0)),
        Received::Held
    );
    assert_eq!(s.take_input(), None);
    assert_eq!(
        s.receive(req(R + 1, "", "<iq id='1'/>"), c.at(1.0)),
        Received::Held
    );
    assert_eq!(
        inputs(&mut s),
        [
            Input::Payload(b"<iq xmlns='jabber:client' id='1'/>".to_vec()),
            Input::Payload(b"<iq xmlns='jabber:client' id='2'/>".to_vec()),
        ]
    );
}

#[test]
fn a_request_above_a_gap_gets_no_output_and_only_an_empty_body_at_its_wait() {
    let settings = hold_two();
    let (mut s, c, _) = session(&settings, "hold='2'");
    s.receive(empty(R + 2), c.at(1.0));
    s.push_output(MSG);
    assert_eq!(s.due(c.at(1.0)), vec![]);
    let due = s.due(c.at(61.0));
    assert_eq!(rids(&due), [R + 2]);
    assert_eq!(text(&due[0].1), EMPTY);
    // The gap fills: the output goes to it.
    s.receive(empty(R + 1), c.at(62.0));
    let due = s.due(c.at(62.0));
    assert_eq!(rids(&due), [R + 1]);
    assert_eq!(children(&due[0].1), ["message"]);
}

#[test]
fn a_rid_beyond_the_window_ends_the_session() {
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(1.0));
    // requests = 2: R+2 and R+3 are in the window, R+4 is not.
    assert_eq!(
        s.receive(empty(R + 4), c.at(1.0)),
        Received::Terminate(Condition::ItemNotFound)
    );
    assert!(s.is_terminated());
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 1]);
    assert_eq!(attr(&due[0].1, "type").as_deref(), Some("terminate"));
    assert_eq!(
        attr(&due[0].1, "condition").as_deref(),
        Some("other-request")
    );
    assert_eq!(s.due(c.at(2.0)), vec![]);
    assert_eq!(s.next_deadline(), None);
    assert_eq!(
        s.receive(empty(R + 2), c.at(2.0)),
        Received::Terminate(Condition::ItemNotFound)
    );
}

#[test]
fn a_repeat_of_an_answered_rid_gets_the_same_bytes() {
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(1.0));
    s.push_output(MSG);
    let due = s.due(c.at(1.0));
    let first = due[0].1.clone();
    match s.receive(empty(R + 1), c.at(2.0)) {
        Received::Repeat(bytes) => assert_eq!(bytes, first),
        other => panic!("{other:?}"),
    }
    // The creation response too (still kept: requests = 2).
    assert!(matches!(
        s.receive(empty(R), c.at(2.0)),
        Received::Repeat(_)
    ));
    // §14.3: a limit on repeats of one rid.
    for _ in 1..MAX_REPEATS {
        assert!(matches!(
            s.receive(empty(R + 1), c.at(3.0)),
            Received::Repeat(_)
        ));
    }
    assert_eq!(
        s.receive(empty(R + 1), c.at(3.0)),
        Received::Terminate(Condition::PolicyViolation)
    );
}

#[test]
fn a_repeat_whose_response_is_gone_ends_the_session() {
    let (mut s, c) = default_session();
    for rid in R + 1..=R + 3 {
        s.receive(empty(rid), c.at(rid as f64));
        s.push_output(MSG);
        assert_eq!(rids(&s.due(c.at(rid as f64))), [rid]);
    }
    // Kept: the last two (requests = 2).
    assert!(matches!(
        s.receive(empty(R + 2), c.at(9.0)),
        Received::Repeat(_)
    ));
    assert_eq!(
        s.receive(empty(R + 1), c.at(9.0)),
        Received::Terminate(Condition::ItemNotFound)
    );
}

#[test]
fn a_repeat_of_a_held_rid_supersedes_the_earlier_connection() {
    let (mut s, c) = default_session();
    s.receive(req(R + 1, "", "<presence/>"), c.at(1.0));
    assert_eq!(
        s.receive(req(R + 1, "", "<presence/>"), c.at(2.0)),
        Received::Superseded
    );
    // The payload went once; the rid is still held, answered once.
    assert_eq!(inputs(&mut s).len(), 1);
    s.push_output(MSG);
    assert_eq!(rids(&s.due(c.at(3.0))), [R + 1]);
    let mut out = Vec::new();
    body::write_recoverable_error(&mut out);
    assert_eq!(attr(&out, "type").as_deref(), Some("error"));
}

// ---------------------------------------------------------------------------
// Overactivity and polling (§11, §12).

#[test]
fn too_many_simultaneous_requests_is_a_policy_violation() {
    // hold 1, requests 2: R+2 and R+1 arrive together (no answer between),
    // then a third before any answer.
    let two_unanswered = || {
        let (mut s, c, _) = session(&Settings::default(), "hold='1'");
        s.receive(req(R + 2, "", "<presence/>"), c.at(1.0));
        s.receive(req(R + 1, "", "<presence/>"), c.at(1.0));
        (s, c)
    };
    // §11: one more is allowed to pause or terminate.
    for extra in ["pause='10'", "type='terminate'"] {
        let (mut s, c) = two_unanswered();
        assert_eq!(s.receive(req(R + 3, extra, ""), c.at(1.0)), Received::Held);
    }
    let (mut s, c) = two_unanswered();
    assert_eq!(
        s.receive(req(R + 3, "", "<presence/>"), c.at(1.0)),
        Received::Terminate(Condition::PolicyViolation)
    );
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 1, R + 2]);
    assert_eq!(
        attr(&due[0].1, "condition").as_deref(),
        Some("other-request")
    );
    assert_eq!(inputs(&mut s), [], "nothing is forwarded after the end");
}

#[test]
fn an_empty_request_beside_a_held_one_within_polling_is_too_frequent() {
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(10.0));
    assert_eq!(
        s.receive(empty(R + 2), c.at(11.0)),
        Received::Terminate(Condition::PolicyViolation)
    );
    // After `polling` seconds, or with a payload, it is fine.
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(10.0));
    assert_eq!(s.receive(empty(R + 2), c.at(12.0)), Received::Held);
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(10.0));
    assert_eq!(
        s.receive(req(R + 2, "", "<presence/>"), c.at(10.5)),
        Received::Held
    );
}

#[test]
fn a_polling_session_answers_at_once_and_limits_empty_polls() {
    let (mut s, c, creation) = session(&Settings::default(), "wait='60' hold='0'");
    assert_eq!(attr(&creation, "requests").as_deref(), Some("1"));
    s.receive(empty(R + 1), c.at(10.0));
    assert_eq!(rids(&s.due(c.at(10.0))), [R + 1]);
    // Polling too soon after an empty answer.
    s.receive(empty(R + 2), c.at(13.0));
    assert_eq!(rids(&s.due(c.at(13.0))), [R + 2]);
    assert_eq!(
        s.receive(empty(R + 3), c.at(14.0)),
        Received::Terminate(Condition::PolicyViolation)
    );
    // Soon after an answer with payload is fine.
    let (mut s, c, _) = session(&Settings::default(), "hold='0'");
    s.receive(empty(R + 1), c.at(10.0));
    s.push_output(MSG);
    assert_eq!(rids(&s.due(c.at(10.0))), [R + 1]);
    assert_eq!(s.receive(empty(R + 2), c.at(10.5)), Received::Held);
    assert_eq!(rids(&s.due(c.at(10.5))), [R + 2]);
    // And so is a request with a payload.
    assert_eq!(
        s.receive(req(R + 3, "", "<presence/>"), c.at(10.6)),
        Received::Held
    );
}

// ---------------------------------------------------------------------------
// Acknowledgements (§9).

#[test]
fn acknowledgements_name_the_highest_rid_received_in_order() {
    let settings = hold_two();
    let (mut s, c, first) = session(&settings, "hold='2' ack='1'");
    assert_eq!(attr(&first, "ack"), Some(R.to_string()));
    s.receive(empty(R + 1), c.at(1.0));
    s.receive(empty(R + 2), c.at(1.0));
    s.push_output(MSG);
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 1]);
    assert_eq!(attr(&due[0].1, "ack"), Some((R + 2).to_string()));
    s.push_output(MSG);
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 2]);
    assert_eq!(attr(&due[0].1, "ack"), None, "not the rid answered");
}

#[test]
fn the_clients_ack_drops_kept_responses() {
    let (mut s, c, _) = session(&Settings::default(), "ack='1'");
    s.receive(empty(R + 1), c.at(1.0));
    s.push_output(MSG);
    s.due(c.at(1.0));
    // Acknowledges R only: R+1 stays.
    s.receive(req(R + 2, &format!("ack='{R}'"), "<presence/>"), c.at(2.0));
    assert!(matches!(
        s.receive(empty(R + 1), c.at(2.0)),
        Received::Repeat(_)
    ));
    assert_eq!(
        s.receive(empty(R), c.at(2.0)),
        Received::Terminate(Condition::ItemNotFound)
    );
    // No ack: every earlier response arrived.
    let (mut s, c, _) = session(&Settings::default(), "ack='1'");
    s.receive(empty(R + 1), c.at(1.0));
    s.push_output(MSG);
    s.due(c.at(1.0));
    s.receive(req(R + 2, "", "<presence/>"), c.at(2.0));
    assert_eq!(
        s.receive(empty(R + 1), c.at(2.0)),
        Received::Terminate(Condition::ItemNotFound)
    );
}

// ---------------------------------------------------------------------------
// Pause, inactivity (§10).

#[test]
fn a_pause_answers_everything_and_stretches_inactivity() {
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(1.0));
    assert_eq!(
        s.receive(req(R + 2, "pause='100'", ""), c.at(2.0)),
        Received::Held
    );
    s.push_output(MSG);
    s.push_output(MSG);
    let due = s.due(c.at(2.0));
    assert_eq!(rids(&due), [R + 1, R + 2]);
    assert_eq!(children(&due[0].1).len(), 2);
    assert_eq!(text(&due[1].1), EMPTY, "no payload in a pause response");
    assert_eq!(s.next_deadline(), Some(c.at(102.0)));
    assert!(!s.expired(c.at(101.9)));
    assert!(s.expired(c.at(102.0)));
    // The next request ends the pause.
    s.receive(empty(R + 3), c.at(50.0));
    assert_eq!(rids(&s.due(c.at(110.0))), [R + 3]);
    assert!(!s.expired(c.at(169.9)));
    assert!(s.expired(c.at(170.0)));
}

#[test]
fn a_pause_longer_than_maxpause_is_refused() {
    let (mut s, c) = default_session();
    assert_eq!(
        s.receive(req(R + 1, "pause='121'", ""), c.at(1.0)),
        Received::Terminate(Condition::PolicyViolation)
    );
}

#[test]
fn a_session_expires_after_inactivity_with_nothing_held() {
    let (mut s, c) = default_session();
    assert!(!s.expired(c.at(59.9)));
    assert!(s.expired(c.at(60.0)));
    s.receive(empty(R + 1), c.at(30.0));
    assert!(!s.expired(c.at(1000.0)), "a request is held");
    assert_eq!(rids(&s.due(c.at(90.0))), [R + 1]);
    assert!(!s.expired(c.at(149.9)));
    assert!(s.expired(c.at(150.0)));
    assert!(!s.is_terminated());
}

// ---------------------------------------------------------------------------
// Terminate (§13), restart (XEP-0206 §5), the stream's end.

#[test]
fn a_terminate_request_delivers_its_payload_then_ends() {
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(1.0));
    s.push_output(b"<x/>");
    s.push_output(MSG);
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 1]);
    s.receive(empty(R + 2), c.at(3.0));
    let r = s.receive(
        req(R + 3, "type='terminate'", "<presence type='unavailable'/>"),
        c.at(3.0),
    );
    assert_eq!(r, Received::Held);
    assert_eq!(
        inputs(&mut s),
        [
            Input::Payload(b"<presence xmlns='jabber:client' type='unavailable'/>".to_vec()),
            Input::Terminate
        ]
    );
    assert!(s.is_terminated());
    let due = s.due(c.at(3.0));
    assert_eq!(rids(&due), [R + 2, R + 3]);
    assert_eq!(text(&due[0].1), EMPTY);
    assert_eq!(
        text(&due[1].1),
        "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate'/>"
    );
    assert_eq!(s.due(c.at(4.0)), vec![]);
    assert_eq!(
        s.receive(empty(R + 4), c.at(4.0)),
        Received::Terminate(Condition::ItemNotFound)
    );
}

#[test]
fn a_terminate_above_a_gap_waits_for_it() {
    let (mut s, c) = default_session();
    s.receive(req(R + 2, "type='terminate'", ""), c.at(1.0));
    assert!(!s.is_terminated());
    assert_eq!(inputs(&mut s), []);
    s.receive(req(R + 1, "", "<presence/>"), c.at(1.0));
    assert_eq!(inputs(&mut s).last(), Some(&Input::Terminate));
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 1, R + 2]);
    assert_eq!(attr(&due[1].1, "type").as_deref(), Some("terminate"));
}

#[test]
fn a_restart_is_input_in_order_and_its_response_has_the_new_features() {
    let (mut s, c) = default_session();
    let r = req(R + 1, "xmpp:restart='true' to='example.com'", "<presence/>");
    assert_eq!(s.receive(r, c.at(1.0)), Received::Held);
    assert_eq!(
        inputs(&mut s),
        [Input::Restart],
        "a payload in it is ignored"
    );
    s.opened("stream-2", "example.com", true);
    s.push_output(FEATURES);
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 1]);
    assert_eq!(children(&due[0].1), ["features"]);
    assert_eq!(attr(&due[0].1, "authid"), None);
}

#[test]
fn the_streams_end_terminates_the_next_response_with_the_output() {
    let (mut s, c) = default_session();
    s.push_output(MSG);
    s.push_output(b"<stream:error xmlns:stream='http://etherx.jabber.org/streams'/>");
    s.close(Some(Condition::RemoteStreamError));
    assert_eq!(s.due(c.at(1.0)), vec![]);
    assert!(!s.is_terminated(), "waits for a request");
    s.receive(empty(R + 1), c.at(2.0));
    let due = s.due(c.at(2.0));
    assert_eq!(rids(&due), [R + 1]);
    assert_eq!(attr(&due[0].1, "type").as_deref(), Some("terminate"));
    assert_eq!(
        attr(&due[0].1, "condition").as_deref(),
        Some("remote-stream-error")
    );
    assert_eq!(children(&due[0].1), ["message", "error"]);
    assert!(s.is_terminated());
}

#[test]
fn a_graceful_close_answers_every_held_request() {
    let settings = hold_two();
    let (mut s, c, _) = session(&settings, "hold='2'");
    s.receive(empty(R + 1), c.at(1.0));
    s.receive(req(R + 2, "", "<presence/>"), c.at(1.0));
    s.close(None);
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 1, R + 2]);
    for (_, b) in &due {
        assert_eq!(
            text(b),
            "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate'/>"
        );
    }
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn closing_before_the_stream_opened_answers_the_creation_request() {
    let now = Instant::now();
    let mut s = BoshSession::create("S".into(), &creation(""), &Settings::default(), now).unwrap();
    s.close(Some(Condition::HostUnknown));
    let due = s.due(now);
    assert_eq!(rids(&due), [R]);
    assert_eq!(
        attr(&due[0].1, "condition").as_deref(),
        Some("host-unknown")
    );
}

// ---------------------------------------------------------------------------
// Broken connections and limits.

#[test]
fn an_abandoned_request_leaves_output_for_the_next_and_answers_a_resend() {
    let (mut s, c) = default_session();
    s.receive(empty(R + 1), c.at(1.0));
    s.abandon(R + 1, c.at(2.0));
    s.abandon(R + 7, c.at(2.0));
    s.push_output(MSG);
    assert_eq!(s.due(c.at(3.0)), vec![]);
    match s.receive(empty(R + 1), c.at(4.0)) {
        Received::Repeat(b) => assert_eq!(text(&b), EMPTY),
        other => panic!("{other:?}"),
    }
    s.receive(empty(R + 2), c.at(4.0));
    let due = s.due(c.at(4.0));
    assert_eq!(rids(&due), [R + 2]);
    assert_eq!(children(&due[0].1), ["message"]);
}

#[test]
fn output_past_max_pending_bytes_ends_the_session() {
    let settings = Settings {
        max_pending_bytes: 3 * MSG.len(),
        ..Settings::default()
    };
    let (mut s, c, _) = session(&settings, "");
    for _ in 0..3 {
        s.push_output(MSG);
    }
    assert!(!s.is_terminated());
    s.push_output(MSG);
    assert!(s.is_terminated());
    assert_eq!(s.pending_bytes(), 0);
    assert_eq!(s.due(c.at(1.0)), vec![]);
    s.push_output(MSG);
    assert_eq!(s.pending_bytes(), 0, "nothing is taken after the end");
    assert!(!s.expired(c.at(1000.0)));
}

#[test]
fn held_requests_get_policy_violation_when_output_overflows() {
    // The features fit, two messages do not.
    let settings = Settings {
        max_pending_bytes: FEATURES.len(),
        ..Settings::default()
    };
    assert!(FEATURES.len() < 2 * MSG.len());
    let (mut s, c, _) = session(&settings, "");
    // Held above a gap, so output cannot go.
    s.receive(empty(R + 2), c.at(1.0));
    s.push_output(MSG);
    s.push_output(MSG);
    let due = s.due(c.at(1.0));
    assert_eq!(rids(&due), [R + 2]);
    assert_eq!(
        attr(&due[0].1, "condition").as_deref(),
        Some("policy-violation")
    );
}

#[test]
fn extreme_values_do_not_panic() {
    let settings = Settings {
        max_wait: u32::MAX,
        max_hold: u32::MAX,
        inactivity: u32::MAX,
        polling: u32::MAX,
        max_pause: u32::MAX,
        max_response_bytes: 0,
        max_pending_bytes: usize::MAX,
    };
    let b = parse(&format!(
        "<body rid='{}' to='x' wait='4294967295' hold='4294967295' \
         xmlns='http://jabber.org/protocol/httpbind'/>",
        MAX_RID - 1
    ));
    let now = Instant::now();
    let mut s = BoshSession::create("S".into(), &b, &settings, now).unwrap();
    s.opened("i", "x", false);
    let _ = s.next_deadline();
    assert_eq!(s.receive(empty(MAX_RID), now), Received::Held);
    let _ = s.receive(req(MAX_RID, "pause='4294967295'", ""), now);
    s.push_output(MSG);
    s.push_output(MSG);
    let due = s.due(now);
    assert_eq!(rids(&due), [MAX_RID - 1, MAX_RID]);
    let _ = s.next_deadline();
    assert!(!s.expired(now));
}
