//! BOSH (XEP-0124, XEP-0206): `body::parse` on arbitrary bytes, then one
//! session driven by a tape of operations the way the HTTP glue drives it.
//!
//! Input: the whole input is first a request body; then it is read again
//! as a tape, each operation an opcode byte and its arguments (see the
//! match at the bottom): a request (its rid near the next one expected, so
//! repeats, gaps and rids beyond the window all occur; flags for a
//! payload, restart, pause, terminate and ack), stream output, time
//! passing with `due`, an abandoned connection, the stream opening or
//! closing.
//!
//! Properties of `parse`: it never panics; a body it accepts has a rid of
//! at most 2^53 - 1, and its payload, inside an element declaring
//! `jabber:client` as the default namespace, parses to the same elements
//! as the body's children: same names, attributes and text, each in the
//! same namespace except that the httpbind namespace (or none) becomes
//! `jabber:client`.
//!
//! Properties of the session: every response parses and is a `<body/>` in
//! the httpbind namespace; `due` answers only rids held and not yet
//! answered, each once, in increasing rid order within one call; `Repeat`
//! only for an answered rid and `Superseded` only for a held one; payloads
//! reach the input in rid order; output waiting never exceeds the bound;
//! once terminated and `due` called, nothing stays held and a request is
//! refused with `item-not-found`.
#![no_main]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use perch::net::bosh::body::{self, Condition, MAX_RID, NS_HTTPBIND, RequestBody};
use perch::net::bosh::session::{BoshSession, Input, Received, Settings};
use perch::xml::{Element, NS_CLIENT, Node};

const MAX_BYTES: usize = 1 << 16;

/// Whether `new` is `old` after the payload's namespace rule.
fn same_element(old: &Element, new: &Element) -> bool {
    let ns_ok =
        old.ns == new.ns || ((old.ns.is_empty() || old.ns == NS_HTTPBIND) && new.ns == NS_CLIENT);
    ns_ok
        && old.name == new.name
        && old.attrs == new.attrs
        && old.children.len() == new.children.len()
        && old
            .children
            .iter()
            .zip(&new.children)
            .all(|pair| match pair {
                (Node::Element(a), Node::Element(b)) => same_element(a, b),
                (Node::Text(a), Node::Text(b)) => a == b,
                _ => false,
            })
}

fn check_parse(data: &[u8]) {
    let Ok(body) = body::parse(data, MAX_BYTES) else {
        return;
    };
    assert!(body.rid <= MAX_RID, "rid {} accepted", body.rid);
    // The same bytes through the element parser (stricter on depth).
    let Ok(text) = std::str::from_utf8(data) else {
        panic!("parse accepted bytes that are not UTF-8");
    };
    let Ok(original) = Element::parse(text) else {
        return;
    };
    let payload = std::str::from_utf8(&body.payload).expect("the payload is UTF-8");
    let wrapped = format!("<r xmlns='jabber:client'>{payload}</r>");
    let parsed = match Element::parse(&wrapped) {
        Ok(el) => el,
        Err(e) => panic!("payload does not parse ({e:?}): {wrapped:?}"),
    };
    let old: Vec<&Element> = original
        .children
        .iter()
        .filter_map(|n| match n {
            Node::Element(el) => Some(el),
            Node::Text(_) => None,
        })
        .collect();
    let new: Vec<&Element> = parsed.children().collect();
    assert_eq!(old.len(), new.len(), "children lost or added: {wrapped:?}");
    for (a, b) in old.iter().zip(&new) {
        assert!(same_element(a, b), "{a:?} became {b:?}");
    }
}

/// Reads the input as operations.
struct Tape<'a> {
    bytes: &'a [u8],
}

impl Tape<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.bytes.split_first().unwrap_or((&0, &[]));
        self.bytes = rest;
        b
    }
}

/// The session and what the glue knows of it.
struct Driver {
    s: BoshSession,
    start: Instant,
    now: Instant,
    /// The next rid the client would use.
    next: u64,
    /// Rids held (answered neither by `due` nor by `abandon`).
    held: BTreeSet<u64>,
    /// Rids answered.
    answered: BTreeSet<u64>,
    /// The last payload id released to the input.
    last_input: Option<u64>,
    max_pending: usize,
}

const CREATION_RID: u64 = 1000;

impl Driver {
    fn request(&mut self, tape: &mut Tape) {
        let offset = tape.byte();
        let flags = tape.byte();
        let rid = (self.next + u64::from(offset % 6)).saturating_sub(2);
        let mut attrs = String::new();
        if flags & 2 != 0 {
            attrs.push_str(" xmpp:restart='true'");
        }
        if flags & 4 != 0 {
            attrs.push_str(&format!(" pause='{}'", tape.byte()));
        }
        if flags & 8 != 0 {
            attrs.push_str(" type='terminate'");
        }
        if flags & 16 != 0 {
            attrs.push_str(&format!(
                " ack='{}'",
                rid.saturating_sub(u64::from(flags >> 5))
            ));
        }
        let inner = if flags & 1 != 0 {
            format!("<iq id='{rid}'/>")
        } else {
            String::new()
        };
        let xml = format!(
            "<body rid='{rid}' sid='S'{attrs} xmlns='http://jabber.org/protocol/httpbind' \
             xmlns:xmpp='urn:xmpp:xbosh'>{inner}</body>"
        );
        let body = body::parse(xml.as_bytes(), MAX_BYTES).expect("a request the test wrote");
        self.receive(body, rid);
    }

    fn receive(&mut self, body: RequestBody, rid: u64) {
        let terminated = self.s.is_terminated();
        let was_held = self.held.contains(&rid);
        let was_answered = self.answered.contains(&rid);
        match self.s.receive(body, self.now) {
            Received::Held => {
                assert!(!terminated, "held after the end");
                assert!(!was_held && !was_answered, "rid {rid} held twice");
                self.held.insert(rid);
                self.next = self.next.max(rid + 1);
            }
            Received::Repeat(bytes) => {
                assert!(
                    was_answered && !was_held,
                    "repeat of rid {rid} never answered"
                );
                well_formed(&bytes);
            }
            Received::Superseded => assert!(was_held, "superseded rid {rid} not held"),
            Received::Terminate(c) => {
                if terminated {
                    assert_eq!(c, Condition::ItemNotFound);
                }
                assert!(self.s.is_terminated(), "Terminate but not terminated");
            }
        }
        self.take_input();
    }

    fn take_input(&mut self) {
        while let Some(input) = self.s.take_input() {
            if let Input::Payload(p) = input {
                let text = std::str::from_utf8(&p).expect("UTF-8 input");
                let id: u64 = text
                    .split('\'')
                    .nth(3)
                    .and_then(|id| id.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected input {text:?}"));
                assert!(
                    self.last_input.is_none_or(|last| last < id),
                    "input {id} after {:?}",
                    self.last_input
                );
                self.last_input = Some(id);
            }
        }
    }

    fn due(&mut self) {
        let mut last = None;
        for (rid, bytes) in self.s.due(self.now) {
            assert!(self.held.remove(&rid), "answered rid {rid}, not held");
            assert!(self.answered.insert(rid), "rid {rid} answered twice");
            if rid != CREATION_RID {
                assert!(last.is_none_or(|l| l < rid), "answers out of order");
            }
            last = Some(rid);
            well_formed(&bytes);
        }
        if self.s.is_terminated() {
            assert!(self.held.is_empty(), "held after the end: {:?}", self.held);
            assert!(self.s.due(self.now).is_empty());
        }
        assert!(
            self.s.pending_bytes() <= self.max_pending,
            "output over its bound"
        );
        let _ = self.s.expired(self.now);
        if let Some(deadline) = self.s.next_deadline() {
            assert!(deadline >= self.start, "a deadline before the session");
        }
    }
}

fn well_formed(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("responses are UTF-8");
    match Element::parse(text) {
        Ok(el) => assert!(el.is("body", NS_HTTPBIND), "not a body: {text}"),
        Err(e) => panic!("a response does not parse ({e:?}): {text}"),
    }
}

fn run_session(data: &[u8]) {
    let mut tape = Tape { bytes: data };
    let setup = tape.byte();
    let settings = Settings {
        max_hold: u32::from(setup % 3),
        polling: u32::from(setup >> 6),
        max_response_bytes: 64 * usize::from(tape.byte()),
        max_pending_bytes: 8 * usize::from(tape.byte()),
        ..Settings::default()
    };
    let creation = format!(
        "<body rid='{CREATION_RID}' to='example.com' hold='{}' wait='{}'{} \
         xmlns='http://jabber.org/protocol/httpbind'/>",
        setup % 4,
        (setup >> 2) % 8,
        if setup & 32 != 0 { " ack='1'" } else { "" },
    );
    let creation = body::parse(creation.as_bytes(), MAX_BYTES).expect("creation parses");
    let start = Instant::now();
    let s = BoshSession::create("S".into(), &creation, &settings, start).expect("created");
    let mut d = Driver {
        s,
        start,
        now: start,
        next: CREATION_RID + 1,
        held: BTreeSet::from([CREATION_RID]),
        answered: BTreeSet::new(),
        last_input: None,
        max_pending: settings.max_pending_bytes,
    };
    while !tape.bytes.is_empty() {
        match tape.byte() % 8 {
            0 | 1 => d.request(&mut tape),
            2 => {
                let n = usize::from(tape.byte());
                d.s.push_output(
                    format!("<m xmlns='jabber:client'>{}</m>", "x".repeat(n)).as_bytes(),
                );
            }
            3 | 4 => d.now += Duration::from_millis(250 * u64::from(tape.byte())),
            5 => {
                let rid = d.next.saturating_sub(u64::from(tape.byte() % 4) + 1);
                d.s.abandon(rid, d.now);
                if d.held.remove(&rid) {
                    // Answered empty (kept for a resend while open).
                    d.answered.insert(rid);
                }
            }
            6 => d.s.opened("id", "example.com", true),
            _ => {
                let c = Condition::ALL.get(usize::from(tape.byte() % 16)).copied();
                d.s.close(c);
            }
        }
        d.due();
    }
}

fuzz_target!(|data: &[u8]| {
    check_parse(data);
    run_session(data);
});
