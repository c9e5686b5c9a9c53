//! Stream management (XEP-0198, `urn:xmpp:sm:3`) without sockets: the
//! protocol's elements, the two counters, and the stanzas sent but not yet
//! acknowledged.
//!
//! The state lives with the session ([`crate::session::Session`]), not the
//! connection, because a resumed session continues on another connection
//! (and, after a restart, in another process): `handled` (stanzas received
//! from the client, its `h`) and the [`Unacked`] queue (stanzas sent to it,
//! counted from `<enabled/>`) are what resumption needs. Counters are
//! 32-bit and wrap from 2^32-1 to 0 (§4).

use std::collections::VecDeque;
use std::time::Duration;

use crate::xml::{Element, escape_attr_into};

use super::error::{StreamCondition, StreamError};

pub const NS_SM: &str = "urn:xmpp:sm:3";

/// What a client asked for with an element of the SM namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `<enable/>`: with `resume`, the session may be resumed; `max` is the
    /// client's preferred resumption time in seconds.
    Enable { resume: bool, max: Option<u32> },
    /// `<resume previd h/>`: continue the session `previd`; the client has
    /// handled `h` of the stanzas it was sent.
    Resume { previd: String, h: u32 },
    /// `<r/>`: the client asks how many of its stanzas were handled.
    Request,
    /// `<a h/>`: the client has handled `h` stanzas.
    Ack(u32),
}

/// Why an SM element could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadCommand {
    /// Not one of XEP-0198's client elements.
    Unknown(String),
    /// A required attribute is missing or not a 32-bit unsigned number.
    BadAttribute(&'static str),
}

impl BadCommand {
    /// The stream error for an element that cannot be acted on: without a
    /// usable `h` neither side can tell what was handled.
    pub fn stream_error(&self) -> StreamError {
        match self {
            BadCommand::Unknown(name) => StreamError::with_text(
                StreamCondition::UnsupportedStanzaType,
                format!("<{name}/> is not a stream management element"),
            ),
            BadCommand::BadAttribute(attr) => StreamError::with_text(
                StreamCondition::InvalidXml,
                format!("stream management: '{attr}' must be a number from 0 to 4294967295"),
            ),
        }
    }
}

/// Reads a client's SM element (the caller checked its namespace).
pub fn parse(el: &Element) -> Result<Command, BadCommand> {
    match &*el.name {
        "enable" => Ok(Command::Enable {
            resume: matches!(el.attr("resume"), Some("true") | Some("1")),
            // A garbled preference is no reason to refuse: the server's
            // own maximum applies.
            max: el.attr("max").and_then(|m| m.trim().parse().ok()),
        }),
        "resume" => {
            let h = counter(el, "h")?;
            let previd = el
                .attr("previd")
                .filter(|p| !p.is_empty())
                .ok_or(BadCommand::BadAttribute("previd"))?;
            Ok(Command::Resume {
                previd: previd.to_string(),
                h,
            })
        }
        "r" => Ok(Command::Request),
        "a" => Ok(Command::Ack(counter(el, "h")?)),
        other => Err(BadCommand::Unknown(other.to_string())),
    }
}

fn counter(el: &Element, name: &'static str) -> Result<u32, BadCommand> {
    el.attr(name)
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or(BadCommand::BadAttribute(name))
}

/// An `h` acknowledging more stanzas than were sent (§5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooHigh {
    pub h: u32,
    pub sent: u32,
}

impl TooHigh {
    /// `undefined-condition` with `<handled-count-too-high/>` (§5).
    pub fn stream_error(&self) -> StreamError {
        let mut app = Vec::new();
        app.extend_from_slice(b"<handled-count-too-high xmlns='");
        app.extend_from_slice(NS_SM.as_bytes());
        app.extend_from_slice(format!("' h='{}' send-count='{}'/>", self.h, self.sent).as_bytes());
        StreamError::with_text(
            StreamCondition::UndefinedCondition,
            format!(
                "you acknowledged {} stanzas but were sent {}",
                self.h, self.sent
            ),
        )
        .with_app(String::from_utf8_lossy(&app).into_owned())
    }
}

/// Stanzas sent to the client and not yet acknowledged, oldest first, as
/// the serialized bytes that were written (so a resumed stream resends the
/// very same stanzas), with the count of everything sent since `<enabled/>`.
#[derive(Default, Debug)]
pub struct Unacked {
    bytes: VecDeque<u8>,
    lens: VecDeque<u32>,
    /// Stanzas sent since `<enabled/>`, modulo 2^32.
    sent: u32,
}

impl Unacked {
    /// A queue continuing a count: `sent` stanzas were sent, of which the
    /// last `stanzas.len()` are unacknowledged (a restored session).
    pub fn restore(sent: u32, stanzas: impl IntoIterator<Item = Vec<u8>>) -> Unacked {
        let mut unacked = Unacked {
            sent,
            ..Unacked::default()
        };
        for s in stanzas {
            unacked.push(&s);
        }
        unacked
    }

    fn push(&mut self, stanza: &[u8]) {
        self.bytes.extend(stanza);
        self.lens
            .push_back(u32::try_from(stanza.len()).unwrap_or(u32::MAX));
    }

    /// Notes one stanza as sent.
    pub fn sent(&mut self, stanza: &[u8]) {
        self.push(stanza);
        self.sent = self.sent.wrapping_add(1);
    }

    /// The count of stanzas sent, modulo 2^32 (the client's `h` once it
    /// handled all of them).
    pub fn sent_count(&self) -> u32 {
        self.sent
    }

    /// The client handled `h` stanzas: drops the acknowledged ones and
    /// returns how many that was. An `h` behind an earlier ack is a
    /// reordered or repeated ack and drops nothing.
    pub fn ack(&mut self, h: u32) -> Result<usize, TooHigh> {
        let outstanding = self.lens.len();
        let acked_before = self.sent.wrapping_sub(outstanding as u32);
        let newly = h.wrapping_sub(acked_before) as usize;
        if newly > outstanding {
            // Either more than was ever sent, or an old `h` from before
            // the last ack (wrapped below it): tell them apart by distance.
            let behind = acked_before.wrapping_sub(h) as usize;
            if behind <= u32::MAX as usize / 2 {
                return Ok(0);
            }
            return Err(TooHigh { h, sent: self.sent });
        }
        let bytes: usize = self.lens.drain(..newly).map(|l| l as usize).sum();
        self.bytes.drain(..bytes.min(self.bytes.len()));
        if self.lens.is_empty() {
            // Hand back a burst's memory once everything is acknowledged.
            self.bytes = VecDeque::new();
            self.lens = VecDeque::new();
        }
        Ok(newly)
    }

    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Bytes held.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The unacknowledged stanzas, oldest first, appended to `out` back to
    /// back (what a resumed stream sends again).
    pub fn write_all(&self, out: &mut Vec<u8>) {
        let (a, b) = self.bytes.as_slices();
        out.extend_from_slice(a);
        out.extend_from_slice(b);
    }

    /// The unacknowledged stanzas one by one, oldest first.
    pub fn stanzas(&self) -> Vec<Vec<u8>> {
        let mut all = Vec::with_capacity(self.bytes.len());
        self.write_all(&mut all);
        let mut out = Vec::with_capacity(self.lens.len());
        let mut rest = all.as_slice();
        for &len in &self.lens {
            let (one, tail) = rest.split_at((len as usize).min(rest.len()));
            out.push(one.to_vec());
            rest = tail;
        }
        out
    }

    /// Empties the queue, returning its stanzas oldest first.
    pub fn take_all(&mut self) -> Vec<Vec<u8>> {
        let out = self.stanzas();
        self.bytes = VecDeque::new();
        self.lens = VecDeque::new();
        out
    }
}

/// Offline messages handed to a stream-managed session and not yet
/// acknowledged: they stay in storage until the client's `h` reaches
/// `threshold`, so a crash or a session that ends unacknowledged loses
/// none of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflinePending {
    /// The sent count at which the last of them has been sent (at most:
    /// stanzas client state indication drops only lower the real one).
    pub threshold: u32,
    /// Their sequence numbers: after `after`, up to `through`.
    pub after: u64,
    pub through: u64,
    pub count: usize,
    pub bytes: usize,
}

/// A session's stream management state.
#[derive(Debug)]
pub struct StreamManagement {
    /// The resumption id, if the session may be resumed.
    pub id: Option<Box<str>>,
    /// How long the session waits for resumption after its connection is
    /// lost.
    pub resume_timeout: Duration,
    /// Stanzas received from the client and handled, modulo 2^32 (what
    /// `<a h/>` and `<resumed h/>` tell it). Kept by the stream while a
    /// connection carries the session; copied here when it is lost.
    pub handled: u32,
    pub unacked: Unacked,
    /// Stanzas sent since the server last asked for an ack.
    pub since_request: u32,
    /// An `<r/>` is unanswered.
    pub request_outstanding: bool,
    /// While the session waits for resumption: until when.
    pub waiting_until: Option<std::time::Instant>,
    /// Offline messages kept in storage until acknowledged.
    pub offline_pending: Vec<OfflinePending>,
    /// The sent count when the server last asked for an ack.
    asked_at: Option<u32>,
    /// The session was restored from the database at start-up: its saved
    /// record is deleted once it is resumed or ends.
    pub saved: bool,
}

impl StreamManagement {
    pub fn new(id: Option<Box<str>>, resume_timeout: Duration) -> StreamManagement {
        StreamManagement {
            id,
            resume_timeout,
            handled: 0,
            unacked: Unacked::default(),
            since_request: 0,
            request_outstanding: false,
            waiting_until: None,
            offline_pending: Vec::new(),
            asked_at: None,
            saved: false,
        }
    }

    /// Stanzas the client was asked to acknowledge and has not: those sent
    /// before the server's last `<r/>`. (A burst still on its way is not
    /// overdue: a room's presences may outrun any ack.)
    pub fn overdue(&self) -> usize {
        let Some(at) = self.asked_at else {
            return 0;
        };
        let acked = self
            .unacked
            .sent_count()
            .wrapping_sub(self.unacked.len() as u32);
        let behind = at.wrapping_sub(acked);
        if behind < 1 << 31 { behind as usize } else { 0 }
    }

    /// The offline messages the client's `h` now covers: to delete.
    pub fn take_acknowledged_offline(&mut self, h: u32) -> Vec<OfflinePending> {
        if self.offline_pending.is_empty() {
            return Vec::new();
        }
        // `h` has reached `threshold` when it is at most 2^31 ahead of it.
        let (done, kept) = self
            .offline_pending
            .drain(..)
            .partition(|p| h.wrapping_sub(p.threshold) < 1 << 31);
        self.offline_pending = kept;
        done
    }

    pub fn resumable(&self) -> bool {
        self.id.is_some()
    }

    /// Notes one stanza written to the client.
    pub fn sent(&mut self, stanza: &[u8]) {
        self.unacked.sent(stanza);
        self.since_request = self.since_request.saturating_add(1);
    }

    /// The client acknowledged `h`.
    pub fn ack(&mut self, h: u32) -> Result<usize, TooHigh> {
        self.request_outstanding = false;
        self.unacked.ack(h)
    }

    /// Whether to ask for an ack now: `every` stanzas went out since the
    /// last request (0: never by count) and none is outstanding.
    pub fn should_request(&self, every: u32) -> bool {
        every > 0 && !self.request_outstanding && self.since_request >= every
    }

    /// Writes `<r/>` and notes it.
    pub fn request(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<r xmlns='urn:xmpp:sm:3'/>");
        self.asked_at = Some(self.unacked.sent_count());
        self.request_outstanding = true;
        self.since_request = 0;
    }
}

/// `<enabled/>`: with an id when the session may be resumed.
pub fn write_enabled(out: &mut Vec<u8>, id: Option<&str>, max_secs: u64) {
    out.extend_from_slice(b"<enabled xmlns='urn:xmpp:sm:3'");
    if let Some(id) = id {
        out.extend_from_slice(b" id='");
        escape_attr_into(id, out);
        out.extend_from_slice(format!("' resume='true' max='{max_secs}'").as_bytes());
    }
    out.extend_from_slice(b"/>");
}

/// `<a h/>`.
pub fn write_ack(out: &mut Vec<u8>, h: u32) {
    out.extend_from_slice(format!("<a xmlns='urn:xmpp:sm:3' h='{h}'/>").as_bytes());
}

/// `<resumed previd h/>`.
pub fn write_resumed(out: &mut Vec<u8>, previd: &str, h: u32) {
    out.extend_from_slice(b"<resumed xmlns='urn:xmpp:sm:3' previd='");
    escape_attr_into(previd, out);
    out.extend_from_slice(format!("' h='{h}'/>").as_bytes());
}

/// `<failed/>` with a stanza error condition and, if known, the `h` of the
/// session it refers to (§4: what the former session handled).
pub fn write_failed(out: &mut Vec<u8>, condition: &str, h: Option<u32>) {
    out.extend_from_slice(b"<failed xmlns='urn:xmpp:sm:3'");
    if let Some(h) = h {
        out.extend_from_slice(format!(" h='{h}'").as_bytes());
    }
    out.extend_from_slice(b"><");
    out.extend_from_slice(condition.as_bytes());
    out.extend_from_slice(b" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
}

#[cfg(test)]
#[path = "sm_tests.rs"]
mod tests;
