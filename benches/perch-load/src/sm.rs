//! The client's side of stream management (XEP-0198, `urn:xmpp:sm:3`), as
//! a mobile client such as Conversations does it: enable with resumption
//! after binding, count the stanzas received (the `h` it tells the server),
//! answer every `<r/>` with `<a h/>`, ask for an ack itself every few
//! stanzas it sends and check the answer, and resume a lost session on a
//! new connection.
//!
//! Counters are 32-bit and wrap (XEP-0198 §4); every comparison below is
//! modulo 2^32.

use std::collections::VecDeque;
use std::fmt;

use crate::xml;

pub const NS_SM: &str = "urn:xmpp:sm:3";

/// The client asks for an ack after this many stanzas (Conversations).
pub const REQUEST_EVERY: u32 = 5;

/// What a top-level element from the server means to stream management.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// A message, presence or iq: counts as handled.
    Stanza,
    /// `<r/>`: answered.
    Request,
    /// `<a h/>`: checked.
    Ack(u32),
    /// Anything else (a stream error, `<enabled/>`, …).
    Other,
}

/// Classifies a top-level element without parsing it (hot path).
pub fn classify(el: &[u8]) -> Inbound {
    match xml::local_name(el) {
        b"message" | b"presence" | b"iq" => Inbound::Stanza,
        b"r" if in_sm(el) => Inbound::Request,
        b"a" if in_sm(el) => match xml::start_tag_attr(el, "h").and_then(number) {
            Some(h) => Inbound::Ack(h),
            None => Inbound::Other,
        },
        _ => Inbound::Other,
    }
}

fn in_sm(el: &[u8]) -> bool {
    xml::start_tag_attr(el, "xmlns") == Some(NS_SM.as_bytes())
}

fn number(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// `<enabled/>`: the answer to `<enable/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enabled {
    /// The resumption id, if the session may be resumed.
    pub id: Option<String>,
    pub resume: bool,
    /// The longest the server waits for a resumption (seconds).
    pub max: Option<u32>,
}

/// `<resumed/>`: the answer to `<resume/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    pub previd: String,
    /// The stanzas the server had handled from this client.
    pub h: u32,
}

/// `<failed/>`: the condition and, if the server knows it, its `h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub condition: String,
    pub h: Option<u32>,
}

/// Runs `f` on the element if it is `name` in the SM namespace.
fn sm_element<T>(el: &[u8], name: &str, f: impl FnOnce(roxmltree::Node<'_, '_>) -> T) -> Option<T> {
    xml::with_parsed(el, |n| {
        (n.tag_name().name() == name && n.tag_name().namespace() == Some(NS_SM)).then(|| f(n))
    })
    .ok()
    .flatten()
}

pub fn parse_enabled(el: &[u8]) -> Option<Enabled> {
    sm_element(el, "enabled", |n| Enabled {
        id: n
            .attribute("id")
            .filter(|i| !i.is_empty())
            .map(str::to_string),
        resume: matches!(n.attribute("resume"), Some("true") | Some("1")),
        max: n.attribute("max").and_then(|m| m.trim().parse().ok()),
    })
}

pub fn parse_resumed(el: &[u8]) -> Option<Resumed> {
    sm_element(el, "resumed", |n| {
        Some(Resumed {
            previd: n.attribute("previd")?.to_string(),
            h: n.attribute("h")?.trim().parse().ok()?,
        })
    })
    .flatten()
}

pub fn parse_failed(el: &[u8]) -> Option<Failed> {
    sm_element(el, "failed", |n| Failed {
        condition: n
            .children()
            .find(|c| c.is_element())
            .map_or_else(|| "(none)".to_string(), |c| c.tag_name().name().to_string()),
        h: n.attribute("h").and_then(|h| h.trim().parse().ok()),
    })
}

pub fn enable() -> String {
    format!("<enable xmlns='{NS_SM}' resume='true'/>")
}

pub fn resume(previd: &str, h: u32) -> String {
    format!(
        "<resume xmlns='{NS_SM}' previd='{}' h='{h}'/>",
        xml::escape(previd)
    )
}

/// An `<a h/>` (or `<resumed h/>`) the client cannot accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAck {
    pub h: u32,
    /// The lowest `h` possible: the last ack, or what was sent before the
    /// `<r/>` this answers.
    pub low: u32,
    /// Stanzas sent so far: no `h` may exceed it.
    pub sent: u32,
}

impl fmt::Display for BadAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server acknowledged h={} but at least {} and at most {} were possible",
            self.h, self.low, self.sent
        )
    }
}

/// Is `h` within `low..=high`, modulo 2^32?
fn within(h: u32, low: u32, high: u32) -> bool {
    h.wrapping_sub(low) <= high.wrapping_sub(low)
}

/// One stream-managed session's counts.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    /// The resumption id (`<enabled id/>`).
    pub id: Option<String>,
    /// Stanzas received since `<enabled/>`: the client's `h`.
    pub handled: u32,
    /// Stanzas sent since `<enabled/>`.
    pub sent: u32,
    /// The server's last `h`.
    pub acked: u32,
    /// `sent` at each `<r/>` not yet answered, oldest first.
    requests: VecDeque<u32>,
    since_request: u32,
    /// `<a/>` received and checked.
    pub acks_received: u64,
    /// `<r/>` received and answered.
    pub requests_answered: u64,
}

impl Counter {
    pub fn new(id: Option<String>) -> Counter {
        Counter {
            id,
            ..Counter::default()
        }
    }

    /// Notes one stanza sent; true when an `<r/>` is due after it (every
    /// `every` stanzas; 0: never).
    pub fn sent_one(&mut self, every: u32) -> bool {
        self.sent = self.sent.wrapping_add(1);
        self.since_request += 1;
        every > 0 && self.since_request >= every
    }

    /// Appends `<r/>` and notes what it must be answered with.
    pub fn request(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<r xmlns='urn:xmpp:sm:3'/>");
        self.requests.push_back(self.sent);
        self.since_request = 0;
    }

    /// Appends `<a h/>` with everything received so far.
    pub fn answer(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            format!("<a xmlns='urn:xmpp:sm:3' h='{}'/>", self.handled).as_bytes(),
        );
    }

    /// Unanswered `<r/>`s.
    pub fn outstanding(&self) -> usize {
        self.requests.len()
    }

    /// Checks the server's `<a h/>`: no more than was sent, not behind an
    /// earlier ack, and (answering an `<r/>`) no less than was sent before
    /// that `<r/>` (the server answers once it handled what came before).
    pub fn ack(&mut self, h: u32) -> Result<(), BadAck> {
        let low = match self.requests.pop_front() {
            Some(at_request) if within(at_request, self.acked, self.sent) => at_request,
            _ => self.acked,
        };
        if !within(h, low, self.sent) {
            return Err(BadAck {
                h,
                low,
                sent: self.sent,
            });
        }
        self.acked = h;
        self.acks_received += 1;
        Ok(())
    }

    /// The `h` of `<resumed/>`: the server handled what it says, and the
    /// rest must be sent again. Outstanding requests are void.
    pub fn resumed(&mut self, h: u32) -> Result<(), BadAck> {
        self.requests.clear();
        self.since_request = 0;
        if !within(h, self.acked, self.sent) {
            return Err(BadAck {
                h,
                low: self.acked,
                sent: self.sent,
            });
        }
        self.acked = h;
        Ok(())
    }

    /// Takes one element from the server into account: counts a stanza,
    /// answers `<r/>` (into `out`), checks `<a/>`.
    pub fn inbound(&mut self, el: &[u8], out: &mut Vec<u8>) -> Result<Inbound, BadAck> {
        let kind = classify(el);
        match kind {
            Inbound::Stanza => self.handled = self.handled.wrapping_add(1),
            Inbound::Request => {
                self.answer(out);
                self.requests_answered += 1;
            }
            Inbound::Ack(h) => self.ack(h)?,
            Inbound::Other => {}
        }
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_classified_without_a_parser() {
        assert_eq!(
            classify(b"<message to='a@b'><body>x</body></message>"),
            Inbound::Stanza
        );
        assert_eq!(classify(b"<presence/>"), Inbound::Stanza);
        assert_eq!(classify(b"<iq type='result' id='x'/>"), Inbound::Stanza);
        assert_eq!(classify(b"<r xmlns='urn:xmpp:sm:3'/>"), Inbound::Request);
        assert_eq!(
            classify(b"<a xmlns='urn:xmpp:sm:3' h='4294967295'/>"),
            Inbound::Ack(u32::MAX)
        );
        assert_eq!(
            classify(b"<a xmlns=\"urn:xmpp:sm:3\" h=\"7\"/>"),
            Inbound::Ack(7)
        );
        // Not SM: another namespace, no or a bad h.
        assert_eq!(classify(b"<r xmlns='urn:other'/>"), Inbound::Other);
        assert_eq!(classify(b"<a xmlns='urn:xmpp:sm:3'/>"), Inbound::Other);
        assert_eq!(
            classify(b"<a xmlns='urn:xmpp:sm:3' h='-1'/>"),
            Inbound::Other
        );
        assert_eq!(
            classify(b"<enabled xmlns='urn:xmpp:sm:3' id='x'/>"),
            Inbound::Other
        );
        assert_eq!(
            classify(b"<stream:error><conflict/></stream:error>"),
            Inbound::Other
        );
    }

    #[test]
    fn enabled_resumed_and_failed_are_parsed() {
        assert_eq!(
            parse_enabled(b"<enabled xmlns='urn:xmpp:sm:3' id='a+b/c=' resume='true' max='300'/>"),
            Some(Enabled {
                id: Some("a+b/c=".into()),
                resume: true,
                max: Some(300)
            })
        );
        assert_eq!(
            parse_enabled(b"<enabled xmlns='urn:xmpp:sm:3'/>"),
            Some(Enabled {
                id: None,
                resume: false,
                max: None
            })
        );
        assert_eq!(parse_enabled(b"<enabled xmlns='urn:other' id='x'/>"), None);
        assert_eq!(
            parse_enabled(b"<resumed xmlns='urn:xmpp:sm:3' previd='x' h='1'/>"),
            None
        );
        assert_eq!(
            parse_resumed(b"<resumed xmlns='urn:xmpp:sm:3' previd='id&apos;1' h='12'/>"),
            Some(Resumed {
                previd: "id'1".into(),
                h: 12
            })
        );
        assert_eq!(
            parse_resumed(b"<resumed xmlns='urn:xmpp:sm:3' previd='x'/>"),
            None
        );
        assert_eq!(
            parse_resumed(b"<resumed xmlns='urn:xmpp:sm:3' previd='x' h='4294967296'/>"),
            None
        );
        assert_eq!(
            parse_failed(
                b"<failed xmlns='urn:xmpp:sm:3' h='3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
            ),
            Some(Failed {
                condition: "item-not-found".into(),
                h: Some(3)
            })
        );
        assert_eq!(
            parse_failed(b"<failed xmlns='urn:xmpp:sm:3'/>"),
            Some(Failed {
                condition: "(none)".into(),
                h: None
            })
        );
        assert_eq!(
            resume("a'b", 5),
            "<resume xmlns='urn:xmpp:sm:3' previd='a&apos;b' h='5'/>"
        );
        assert_eq!(enable(), "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    }

    #[test]
    fn stanzas_received_are_counted_and_requests_answered() {
        let mut c = Counter::new(Some("id".into()));
        let mut out = Vec::new();
        for el in [
            &b"<message><body>x</body></message>"[..],
            b"<presence/>",
            b"<iq type='result' id='p'/>",
            b"<enabled xmlns='urn:xmpp:sm:3'/>",
        ] {
            c.inbound(el, &mut out).expect("no ack");
        }
        assert_eq!(c.handled, 3);
        assert_eq!(
            c.inbound(b"<r xmlns='urn:xmpp:sm:3'/>", &mut out),
            Ok(Inbound::Request)
        );
        assert_eq!(out, b"<a xmlns='urn:xmpp:sm:3' h='3'/>");
        assert_eq!(c.requests_answered, 1);
        // h wraps from 2^32-1 to 0.
        c.handled = u32::MAX;
        c.inbound(b"<presence/>", &mut out).expect("stanza");
        assert_eq!(c.handled, 0);
    }

    #[test]
    fn requests_go_every_five_stanzas_and_acks_are_checked() {
        let mut c = Counter::new(None);
        let mut out = Vec::new();
        let due: Vec<bool> = (0..10).map(|_| c.sent_one(REQUEST_EVERY)).collect();
        assert_eq!(due.iter().filter(|d| **d).count(), 6, "due from the 5th on");
        assert!(due[4] && !due[3]);
        c.request(&mut out);
        assert_eq!(out, b"<r xmlns='urn:xmpp:sm:3'/>");
        assert_eq!(c.outstanding(), 1);
        // The answer to an <r/> sent after 10 stanzas must say 10 (or more,
        // if more went since, but never more than were sent).
        assert_eq!(
            c.ack(9),
            Err(BadAck {
                h: 9,
                low: 10,
                sent: 10
            })
        );
        c.request(&mut out);
        assert!(c.ack(11).is_err(), "more than was sent");
        c.request(&mut out);
        assert_eq!(c.ack(10), Ok(()));
        assert_eq!((c.acked, c.acks_received, c.outstanding()), (10, 1, 0));
        // An unrequested ack: anything from the last ack to what was sent.
        assert!(!c.sent_one(0) && c.sent == 11);
        assert_eq!(c.ack(10), Ok(()));
        assert_eq!(c.ack(11), Ok(()));
        assert!(c.ack(10).is_err(), "behind an earlier ack");
    }

    #[test]
    fn acks_are_checked_across_the_wrap() {
        let mut c = Counter::new(None);
        c.sent = u32::MAX - 1;
        c.acked = u32::MAX - 1;
        c.sent_one(0);
        c.sent_one(0);
        c.sent_one(0);
        assert_eq!(c.sent, 1);
        let mut out = Vec::new();
        c.request(&mut out);
        assert!(c.ack(0).is_err(), "below the count at the request");
        c.request(&mut out);
        assert_eq!(c.ack(1), Ok(()));
        assert!(c.ack(2).is_err());
    }

    #[test]
    fn resumption_takes_the_servers_count() {
        let mut c = Counter::new(Some("x".into()));
        let mut out = Vec::new();
        for _ in 0..4 {
            c.sent_one(REQUEST_EVERY);
        }
        c.request(&mut out);
        assert!(c.resumed(5).is_err(), "only 4 were sent");
        assert_eq!(c.resumed(3), Ok(()));
        assert_eq!((c.acked, c.outstanding()), (3, 0));
        assert!(c.resumed(2).is_err(), "behind the last ack");
    }
}
