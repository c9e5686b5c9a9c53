//! Stream management's counters and queue (XEP-0198) and client state
//! indication's filter (XEP-0352), driven by a tape of operations the way
//! the connection drives them: batches of stanzas go through the CSI filter
//! and what it writes is counted as sent; the client acknowledges, right,
//! wrong, stale or across the 2^32 wrap.
//!
//! Input: a setup (max_held, the sent count to start from just below 2^32,
//! and the unacknowledged stanzas a restored session starts with), then
//! operations, each an opcode byte and its arguments (see the match at the
//! bottom; `seeds.py` spells them out). The first byte's top bit ends the
//! run with `take_held` before `set_active` (a session ending while
//! inactive) rather than after.
//!
//! Properties, for `Unacked`/`StreamManagement`: the queue is always the
//! last `len()` stanzas sent, in order, byte for byte (`stanzas`,
//! `write_all`, `byte_len`, `take_all` agree with a model); `sent_count`
//! counts every stanza modulo 2^32; an ack of an `h` from the last ack up to
//! the sent count drops exactly the stanzas it covers, leaving `sent - h`;
//! an `h` a little behind the last ack drops nothing and is no error; an
//! `h` a little beyond the sent count is an error naming both, and an error
//! changes nothing; an ack ends an outstanding request, and a request is
//! due exactly when the model says. The SM elements the server writes
//! parse, and parse back to what was written.
//!
//! For `CsiState`: what it writes (filtered batches, then everything at
//! the end with `set_active` and `take_held`) is the input minus only
//! availability presences followed later by another from the same `from`,
//! in order, nothing duplicated; `filter` reports exactly how many it
//! dropped; it never holds more than `max_held`; an active state holds
//! nothing, and with nothing held leaves a batch as it is.
#![no_main]

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use perch::outbox::Batch;
use perch::stream::csi::{CsiEnv, CsiState};
use perch::stream::sm::{self, Command, NS_SM, StreamManagement, TooHigh, Unacked};
use perch::xml::Element;

/// A session joined to one room as Juliet.
struct Joined;

impl CsiEnv for Joined {
    fn nick_in(&self, room: &str) -> Option<String> {
        (room == "room@muc.example").then(|| "Juliet".to_owned())
    }
}

/// Stanzas as the outbox holds them (`jabber:client` implied), `{id}`
/// replaced by a number unique in the run so each can be told apart; with
/// the `from` of an availability presence (no type, or `unavailable`),
/// the only stanzas a later one (with the same `from`) may supersede.
const STANZAS: &[(&str, Option<&str>)] = &[
    (
        "<presence id='{id}' from='romeo@example.net/a'><show>away</show></presence>",
        Some("romeo@example.net/a"),
    ),
    (
        "<presence id='{id}' from='romeo@example.net/a'><show>xa</show><status>zzz</status></presence>",
        Some("romeo@example.net/a"),
    ),
    (
        "<presence id='{id}' from='romeo@example.net/a' type='unavailable'/>",
        Some("romeo@example.net/a"),
    ),
    (
        "<presence id='{id}' from='nurse@example.com/b'/>",
        Some("nurse@example.com/b"),
    ),
    (
        "<presence id='{id}' from='Nurse@example.com/b'/>",
        Some("Nurse@example.com/b"),
    ),
    ("<presence id='{id}'><show>dnd</show></presence>", None),
    (
        "<presence id='{id}' from='romeo@example.net' type='subscribe'/>",
        None,
    ),
    (
        "<presence id='{id}' from='romeo@example.net/a' type='error'><error type='cancel'>\
         <remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
        None,
    ),
    (
        "<presence id='{id}' from='room@muc.example/Juliet'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <item affiliation='member' role='participant'/><status code='110'/></x></presence>",
        Some("room@muc.example/Juliet"),
    ),
    (
        "<presence id='{id}' from='room@muc.example/Juliet'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <item affiliation='member' role='participant'/></x></presence>",
        Some("room@muc.example/Juliet"),
    ),
    (
        "<presence id='{id}' from='room@muc.example/Romeo' type='unavailable'>\
         <x xmlns='http://jabber.org/protocol/muc#user'><item role='none'/></x></presence>",
        Some("room@muc.example/Romeo"),
    ),
    (
        "<presence id='{id}' from='room@muc.example/Romeo'>\
         <x xmlns='http://jabber.org/protocol/muc#user'><item role='participant'/></x></presence>",
        Some("room@muc.example/Romeo"),
    ),
    (
        "<presence id='{id}' from='romeo@example.net/a' type='probe'/>",
        None,
    ),
    (
        "<message id='{id}' from='romeo@example.net/a' type='chat'><body>hi</body></message>",
        None,
    ),
    (
        "<message id='{id}' from='romeo@example.net/a' type='chat'>\
         <composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        None,
    ),
    (
        "<message id='{id}' from='romeo@example.net/a'><received xmlns='urn:xmpp:receipts' id='x'/></message>",
        None,
    ),
    (
        "<message id='{id}' from='room@muc.example/Romeo' type='groupchat'><body>hi juliet!</body></message>",
        None,
    ),
    (
        "<message id='{id}' from='room@muc.example/Romeo' type='groupchat'><body>hi julietta</body></message>",
        None,
    ),
    (
        "<message id='{id}' from='room@muc.example' type='groupchat'><subject>Balcony</subject></message>",
        None,
    ),
    (
        "<message id='{id}' from='room@muc.example/Romeo' type='groupchat'>\
         <composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        None,
    ),
    (
        "<message id='{id}' from='hall@muc.example/Romeo' type='groupchat'><body>Juliet</body></message>",
        None,
    ),
    (
        "<message id='{id}' to='juliet@example.com/phone'><received xmlns='urn:xmpp:carbons:2'>\
         <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='romeo@example.net/a' \
         type='chat'><body>hi</body></message></forwarded></received></message>",
        None,
    ),
    (
        "<message id='{id}' to='juliet@example.com/phone'><sent xmlns='urn:xmpp:carbons:2'>\
         <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' to='romeo@example.net/a' \
         type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>",
        None,
    ),
    (
        "<message id='{id}' from='news.example' type='headline'><body>news</body></message>",
        None,
    ),
    (
        "<message id='{id}' from='romeo@example.net' type='error'><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        None,
    ),
    (
        "<message id='{id}' from='romeo@example.net/a' type='chat'>\
         <encrypted xmlns='eu.siacs.conversations.axolotl'><payload>AA==</payload></encrypted></message>",
        None,
    ),
    (
        "<message id='{id}' from='room@muc.example'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <invite from='romeo@example.net'/></x></message>",
        None,
    ),
    ("<iq id='{id}' type='result' from='example.com'/>", None),
    (
        "<iq id='{id}' type='get' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>",
        None,
    ),
    ("<<garbage {id}", None),
    ("text {id}", None),
    ("<message id='{id}'/><message/>", None),
    ("<iq xmlns='urn:other' id='{id}'/>", None),
    ("<presence id='{id}' from='nurse@example.com/b'", None),
    ("</csi><csi>{id}", None),
    // Not UTF-8: see `stanza`.
    ("\u{FFFD}{id}", None),
];

/// The stanza `STANZAS[i]` numbered `id`.
fn stanza(i: usize, id: usize) -> (Vec<u8>, Option<&'static str>) {
    let (template, from) = STANZAS[i % STANZAS.len()];
    let mut bytes = template.replace("{id}", &id.to_string()).into_bytes();
    if template.starts_with('\u{FFFD}') {
        bytes[0] = 0xff;
    }
    (bytes, from)
}

/// The input, read a byte at a time (0 once it runs out).
struct Tape<'a> {
    bytes: &'a [u8],
}

impl Tape<'_> {
    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.bytes.len());
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        taken.to_vec()
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Stream management and its model.
struct Sm {
    sm: StreamManagement,
    /// The stanzas sent and not acknowledged, oldest first.
    unacked: VecDeque<Vec<u8>>,
    /// Stanzas sent, modulo 2^32.
    sent: u32,
    since_request: u32,
    request_outstanding: bool,
}

impl Sm {
    fn acked(&self) -> u32 {
        self.sent.wrapping_sub(self.unacked.len() as u32)
    }

    fn sent(&mut self, stanza: &[u8]) {
        self.sm.sent(stanza);
        self.unacked.push_back(stanza.to_vec());
        self.sent = self.sent.wrapping_add(1);
        self.since_request = self.since_request.saturating_add(1);
        assert_eq!(self.sm.unacked.sent_count(), self.sent, "sent_count");
        assert_eq!(self.sm.unacked.len(), self.unacked.len(), "len");
    }

    fn ack(&mut self, h: u32) {
        let before = self.sm.unacked.stanzas();
        let result = self.sm.ack(h);
        self.request_outstanding = false;
        let ahead = h.wrapping_sub(self.acked());
        let beyond = h.wrapping_sub(self.sent);
        let behind = self.acked().wrapping_sub(h);
        match result {
            Ok(n) => {
                if ahead as usize <= self.unacked.len() {
                    assert_eq!(n, ahead as usize, "ack {h} dropped the wrong count");
                    self.unacked.drain(..n);
                    assert_eq!(
                        self.sm.unacked.len(),
                        self.sent.wrapping_sub(h) as usize,
                        "ack {h} of {} sent does not leave sent - h",
                        self.sent
                    );
                } else {
                    assert!(
                        !(1..1 << 30).contains(&beyond),
                        "ack {h} beyond the {} sent was accepted",
                        self.sent
                    );
                    assert_eq!(n, 0, "a stale ack {h} dropped stanzas");
                    assert_eq!(self.sm.unacked.stanzas(), before, "a stale ack changed the queue");
                }
            }
            Err(TooHigh { h: said_h, sent }) => {
                assert_eq!(said_h, h, "the error names another h");
                assert_eq!(sent, self.sent, "the error names another sent count");
                assert!(
                    ahead as usize > self.unacked.len(),
                    "ack {h} within the {} outstanding refused",
                    self.unacked.len()
                );
                assert!(
                    !(1..1 << 30).contains(&behind),
                    "a stale ack {h} (last ack {}) refused",
                    self.acked()
                );
                assert_eq!(self.sm.unacked.stanzas(), before, "a refused ack changed the queue");
                let mut out = Vec::new();
                TooHigh { h, sent }.stream_error().write_to(&mut out);
                well_formed(&wrap_stream(&out));
            }
        }
        self.check();
    }

    fn take_all(&mut self) {
        let all = self.sm.unacked.take_all();
        assert_eq!(all, Vec::from(std::mem::take(&mut self.unacked)), "take_all");
        self.check();
    }

    fn request(&mut self, every: u32, force: bool) {
        let due = every > 0 && !self.request_outstanding && self.since_request >= every;
        assert_eq!(self.sm.should_request(every), due, "should_request({every})");
        if due || force {
            let mut out = Vec::new();
            self.sm.request(&mut out);
            assert_eq!(out, b"<r xmlns='urn:xmpp:sm:3'/>");
            self.request_outstanding = true;
            self.since_request = 0;
        }
        self.check();
    }

    fn check(&self) {
        let q = &self.sm.unacked;
        assert_eq!(q.sent_count(), self.sent, "sent_count");
        assert_eq!(q.len(), self.unacked.len(), "len");
        assert_eq!(q.is_empty(), self.unacked.is_empty(), "is_empty");
        let mut all = Vec::new();
        for s in &self.unacked {
            all.extend_from_slice(s);
        }
        assert_eq!(q.byte_len(), all.len(), "byte_len");
        let mut written = Vec::new();
        q.write_all(&mut written);
        assert_eq!(written, all, "write_all");
        assert!(
            q.stanzas().iter().eq(self.unacked.iter()),
            "stanzas() are not the last ones sent"
        );
        assert_eq!(self.sm.since_request, self.since_request, "since_request");
        assert_eq!(
            self.sm.request_outstanding, self.request_outstanding,
            "request_outstanding"
        );
    }
}

/// Client state indication and its model.
struct Csi {
    csi: CsiState,
    max_held: usize,
    /// Every stanza that entered, in order, with its availability `from`.
    input: Vec<(Vec<u8>, Option<&'static str>)>,
    /// Everything written, in order.
    written: Vec<Vec<u8>>,
    /// What `filter` said it dropped.
    dropped: usize,
}

impl Csi {
    fn batch(&mut self, tape: &mut Tape) -> Batch {
        let mut batch = Batch::default();
        for _ in 0..tape.byte() % 6 {
            let (bytes, from) = stanza(usize::from(tape.byte()), self.input.len());
            batch.push(&bytes);
            self.input.push((bytes, from));
        }
        batch
    }

    fn filter(&mut self, mut batch: Batch, sm: &mut Sm) {
        let untouched = !self.csi.is_inactive() && self.csi.held_len() == 0;
        let before = batch.bytes().to_vec();
        let dropped = self.csi.filter(&mut batch, &Joined);
        if untouched {
            assert_eq!(dropped, 0, "an active state dropped stanzas");
            assert_eq!(batch.bytes(), &before[..], "an active state changed a batch");
        }
        self.dropped += dropped;
        self.write(&batch, sm);
    }

    fn set_active(&mut self, mut batch: Batch, sm: &mut Sm) {
        let untouched = self.csi.held_len() == 0;
        let before = batch.bytes().to_vec();
        self.csi.set_active(&mut batch);
        if untouched {
            assert_eq!(batch.bytes(), &before[..], "set_active changed a batch with nothing held");
        }
        self.write(&batch, sm);
    }

    /// The connection writes `batch`: stream management counts it.
    fn write(&mut self, batch: &Batch, sm: &mut Sm) {
        assert_eq!(
            batch.stanzas().map(<[u8]>::len).sum::<usize>(),
            batch.bytes().len(),
            "a batch holds bytes that are not its stanzas"
        );
        for s in batch.stanzas() {
            self.written.push(s.to_vec());
            sm.sent(s);
        }
        sm.check();
        self.check();
    }

    fn check(&self) {
        assert!(
            self.csi.held_len() <= self.max_held,
            "{} held, more than {}",
            self.csi.held_len(),
            self.max_held
        );
        if !self.csi.is_inactive() {
            assert_eq!(self.csi.held_len(), 0, "an active state holds stanzas");
        }
    }

    /// At the end: nothing lost but superseded presences, nothing
    /// duplicated, nothing reordered.
    fn check_written(&self) {
        let index: HashMap<&[u8], usize> = self
            .input
            .iter()
            .enumerate()
            .map(|(i, (bytes, _))| (&bytes[..], i))
            .collect();
        let mut out = vec![false; self.input.len()];
        let mut last = None;
        for w in &self.written {
            let Some(&i) = index.get(&w[..]) else {
                panic!("wrote what never came: {:?}", String::from_utf8_lossy(w));
            };
            assert!(
                last.is_none_or(|l| l < i),
                "{:?} written out of order or twice",
                String::from_utf8_lossy(w)
            );
            last = Some(i);
            out[i] = true;
        }
        let mut lost = 0;
        for (i, (bytes, from)) in self.input.iter().enumerate() {
            if out[i] {
                continue;
            }
            lost += 1;
            let superseded = from.is_some_and(|from| {
                self.input[i + 1..]
                    .iter()
                    .any(|(_, later)| *later == Some(from))
            });
            assert!(
                superseded,
                "lost {:?}, which no later presence supersedes",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(lost, self.dropped, "filter reported another count of drops");
    }
}

/// A stream error or other stream-level bytes inside a stream.
fn wrap_stream(inner: &[u8]) -> Vec<u8> {
    let mut doc = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        .to_vec();
    doc.extend_from_slice(inner);
    doc.extend_from_slice(b"</stream:stream>");
    doc
}

fn well_formed(bytes: &[u8]) -> Element {
    let text = std::str::from_utf8(bytes).expect("the server wrote UTF-8");
    match Element::parse(text) {
        Ok(el) => el,
        Err(e) => panic!("the server wrote what does not parse ({e:?}): {text:?}"),
    }
}

/// The SM elements the server writes parse back to what was meant; one a
/// client sends, with attributes from the input, reads as XEP-0198 says.
fn elements(tape: &mut Tape) {
    let h = tape.u32();
    // What an attribute of a parsed element can hold: XML 1.0 characters.
    let len = usize::from(tape.byte() % 16);
    let text: String = String::from_utf8_lossy(&tape.bytes(len))
        .chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
        .collect();
    let mut out = Vec::new();
    sm::write_ack(&mut out, h);
    let a = well_formed(&out);
    assert!(a.is("a", NS_SM));
    assert_eq!(sm::parse(&a), Ok(Command::Ack(h)), "<a/> does not read back");
    out.clear();
    sm::write_resumed(&mut out, &text, h);
    let resumed = well_formed(&out);
    assert_eq!(resumed.attr("previd"), Some(text.as_str()), "previd");
    assert_eq!(resumed.attr("h"), Some(h.to_string().as_str()), "h");
    out.clear();
    sm::write_enabled(&mut out, (h & 1 == 0).then_some(text.as_str()), u64::from(h));
    let enabled = well_formed(&out);
    assert_eq!(
        enabled.attr("id"),
        (h & 1 == 0).then_some(text.as_str()),
        "enabled id"
    );
    out.clear();
    sm::write_failed(&mut out, "item-not-found", (h & 2 == 0).then_some(h));
    well_formed(&out);

    // A client's element: the attribute from the input.
    let name = ["a", "resume", "enable", "r", "x"][usize::from(tape.byte() % 5)];
    let mut el = Element::new(name, NS_SM);
    if tape.byte() & 1 == 0 {
        el = el.with_attr("h", text.clone());
    }
    if tape.byte() & 1 == 0 {
        el = el.with_attr("previd", text.clone());
    }
    if tape.byte() & 1 == 0 {
        el = el.with_attr("max", text.clone());
    }
    let number = text.trim().parse::<u32>().ok();
    let has = |attr: &str| el.attr(attr).is_some();
    let parsed = sm::parse(&el);
    match name {
        "a" => match (has("h"), number) {
            (true, Some(n)) => assert_eq!(parsed, Ok(Command::Ack(n))),
            _ => assert!(parsed.is_err(), "<a/> without a number read as {parsed:?}"),
        },
        "resume" => match (has("h"), number, has("previd") && !text.is_empty()) {
            (true, Some(n), true) => assert_eq!(
                parsed,
                Ok(Command::Resume {
                    previd: text.clone(),
                    h: n
                })
            ),
            _ => assert!(parsed.is_err(), "a bad <resume/> read as {parsed:?}"),
        },
        "enable" => assert_eq!(
            parsed,
            Ok(Command::Enable {
                resume: false,
                max: if has("max") { number } else { None },
            })
        ),
        "r" => assert_eq!(parsed, Ok(Command::Request)),
        _ => assert!(parsed.is_err(), "<x/> read as {parsed:?}"),
    }
    if let Err(bad) = parsed {
        let mut out = Vec::new();
        bad.stream_error().write_to(&mut out);
        well_formed(&wrap_stream(&out));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut tape = Tape { bytes: data };
    let max_held = [0, 1, 2, 3, 5, 100][usize::from(tape.byte() % 6)];
    // Just below the wrap, with a few stanzas outstanding.
    let start = u32::MAX.wrapping_sub(u32::from(tape.byte()));
    let restored: Vec<Vec<u8>> = (0..tape.byte() % 8)
        .map(|_| {
            let n = usize::from(tape.byte() % 32);
            tape.bytes(n)
        })
        .collect();
    let mut sm_state = StreamManagement::new(None, Duration::from_secs(300));
    sm_state.unacked = Unacked::restore(start, restored.clone());
    let mut sm = Sm {
        sm: sm_state,
        unacked: restored.into(),
        sent: start,
        since_request: 0,
        request_outstanding: false,
    };
    sm.check();
    let mut csi = Csi {
        csi: CsiState::new(max_held),
        max_held,
        input: Vec::new(),
        written: Vec::new(),
        dropped: 0,
    };
    while !tape.is_empty() {
        match tape.byte() % 12 {
            0 | 1 => {
                let batch = csi.batch(&mut tape);
                csi.filter(batch, &mut sm);
            }
            2 => {
                csi.csi.set_inactive();
                csi.check();
            }
            3 => {
                let batch = csi.batch(&mut tape);
                csi.set_active(batch, &mut sm);
            }
            4 => csi.filter(Batch::default(), &mut sm),
            5 => {
                let n = usize::from(tape.byte() % 48);
                let bytes = tape.bytes(n);
                sm.sent(&bytes);
                sm.check();
            }
            6 | 7 => {
                // Near the true count: within what is outstanding, just
                // beyond what was sent, or just behind the last ack.
                let p = tape.byte();
                let k = u32::from(p >> 2);
                let h = match p % 4 {
                    0 => sm.acked().wrapping_add(k % (sm.unacked.len() as u32 + 1)),
                    1 => sm.sent.wrapping_add(1 + k),
                    2 => sm.acked().wrapping_sub(1 + k),
                    _ => sm.sent,
                };
                sm.ack(h);
            }
            8 => {
                let h = tape.u32();
                sm.ack(h);
            }
            9 => {
                let p = tape.byte();
                sm.request(u32::from(p % 8), p & 0x80 != 0);
            }
            10 => sm.take_all(),
            _ => elements(&mut tape),
        }
    }
    // The client becomes active (or the session ends): everything held
    // is written.
    let mut last = Batch::default();
    if data.first().is_some_and(|b| b & 0x80 != 0) {
        let held = csi.csi.take_held();
        csi.write(&held, &mut sm);
        csi.csi.set_active(&mut last);
    } else {
        csi.csi.set_active(&mut last);
        let held = csi.csi.take_held();
        assert!(held.is_empty(), "held stanzas after set_active");
    }
    csi.write(&last, &mut sm);
    assert_eq!(csi.csi.held_len(), 0, "held stanzas at the end");
    csi.check_written();
});
