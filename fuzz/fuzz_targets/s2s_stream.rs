//! The server-to-server stream machines, `S2sIn` (a peer connected to us)
//! and `S2sOut` (our link to a peer), driven the way `net::s2s_in` and
//! `net::s2s_out` drive them: the peer's bytes through the framer, each
//! read's events handed over until the stream closes, then the actions
//! carried out (a TLS handshake, a restart, a dialback verification asked
//! of the peer's authoritative server), with the edge's calls
//! (`tls_established`, `dialback_verified`, `request_verify`,
//! `authenticate_also`, `fail`, `close`) made between reads as the input
//! says.
//!
//! The world: we serve `example.org` and `chat.example.org`; the peer is
//! `example.net`; `evil.example` is always refused. Our dialback secret and
//! the peers' (used to answer verifications truthfully) are fixed, so
//! seeds can carry real keys.
//!
//! Input: a policy byte (bit 7 picks `S2sOut`; for `S2sIn` bit 0: the peer
//! must encrypt, 1: everyone must, 2: the peer must show a certificate, 3:
//! the TLS client certificate names the peer, 4: it also names
//! `other.example`, 5: direct TLS, 6: STARTTLS available; for `S2sOut` bit
//! 0: encryption required, 3: SASL EXTERNAL worth trying, 5: direct TLS),
//! a count `k` and `k` decision bytes (answers to TLS handshakes and what
//! the edge does between reads; 0 once they run out, the edge's usual
//! answer), then the peer's bytes, cut at each 0 byte into reads. A
//! decision of 3 modulo 4 fails a TLS handshake. Between reads, `S2sIn`'s
//! edge (by the decision modulo 8): 0 answers every verification asked
//! truthfully, 1 waits, 2 answers the oldest as unreachable, 3 as valid
//! whatever the key, 4 as invalid, 5 answers a pair never asked, 6 times
//! out, 7 answers the (decision >> 3)th truthfully; `S2sOut`'s: 0 and 1
//! wait, 2 asks a verification (stream id `in-` and decision >> 3), 3
//! adds `chat.example.org` to the link, 4 times out, 5 closes an idle
//! link, 6 asks one for `chat.example.org` from `Example.NET`, 7 adds
//! `Chat.Example.ORG`.
//!
//! Properties of both: nothing panics; every byte written parses as XML
//! stream content for the peer (who restarts its parser after `<proceed/>`
//! and SASL `<success/>`); a closed stream has said so with one `Close`,
//! the last action of its call, and does nothing more (bar the answers a
//! closed `S2sOut` owes to calls made on it).
//!
//! `S2sIn`: `Route` only for a stanza whose from-domain and to-domain an
//! `Authenticated` covered (dialback: the exact pair; SASL EXTERNAL: the
//! peer to any local host), converted to `jabber:client` throughout, with
//! `from` and `to` the normalized addresses; `Authenticated` only for a
//! local host and an unrefused peer, with TLS when the peer must encrypt,
//! with the certificate when it must show one; by dialback only after the
//! authoritative server vouched (or the certificate names the peer), by
//! SASL only over TLS with a certificate for the peer, once; a
//! `VerifyDialback` only for a local host, with this stream's id and a
//! key, never twice for one pair and at most `MAX_PENDING_DIALBACK` at a
//! time; `type='valid'` on a `db:result` only for a pair that is
//! authenticated, and on a `db:verify` only for our real key (and
//! `invalid` only for a wrong one); answers to pairs never asked change
//! nothing; the stream's pairs are the ones announced.
//!
//! `S2sOut`: `Ready` only after the peer's header on the current stream,
//! never twice, over TLS when encryption is required; no dialback key and
//! no verification written in the clear when encryption is required; each
//! key written is ours for its domain pair and the peer's current stream
//! id, and only for our domain or one added with `authenticate_also`;
//! `<db:verify/>` only for a request made; `VerifyResult` answers each
//! request exactly once (by the close at the latest), with a verdict only
//! from the peer's answer to it; `Failed` at most once, never once ready,
//! followed by `Close`; `StartTls` only on a plain stream that asked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::stream::dialback::{DialbackElement, DialbackSecret};
use perch::stream::s2s_in::{
    AuthMethod, InAction, InEnv, MAX_AUTHENTICATED_PAIRS, MAX_PENDING_DIALBACK, S2sIn,
};
use perch::stream::s2s_out::{OutAction, OutEnv, S2sOut};
use perch::stream::{NS_DIALBACK, NS_SASL, NS_TLS, StreamCondition, StreamError};
use perch::xml::{Element, FrameEvent, Framer, Limits, NS_CLIENT, NS_SERVER, StreamHeader};

/// A few reads of negotiation and some stanzas; more only slows runs.
const MAX_INPUT: usize = 16 * 1024;

const LOCAL: &str = "example.org";
const OTHER_LOCAL: &str = "chat.example.org";
const PEER: &str = "example.net";
const REFUSED: &str = "evil.example";
/// A domain the TLS client certificate may also name.
const OTHER_CERTIFIED: &str = "other.example";
/// Our dialback secret, and the one behind every peer's keys.
const OUR_SECRET: [u8; 32] = [1; 32];
const PEER_SECRET: [u8; 32] = [2; 32];

fn limits() -> Limits {
    Limits {
        max_stanza_bytes: 16 * 1024,
        max_depth: 16,
    }
}

/// The header a peer's parser assumes after a restart when what follows
/// is no new header: after `<proceed/>`, plaintext the peer sent in the
/// same read still gets a stream error (and it should).
const SYNTHETIC_HEADER: &[u8] = b"<stream:stream xmlns='jabber:server' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>";

/// The peer's parser of what we write, with generous limits: anything it
/// cannot parse breaks the property.
struct PeerView {
    framer: Framer,
    /// Restarted: the next bytes may be a new header, or not.
    restarted: bool,
}

impl PeerView {
    fn new() -> Self {
        PeerView {
            framer: Framer::new(Limits {
                max_stanza_bytes: 1 << 20,
                max_depth: 128,
            }),
            restarted: false,
        }
    }

    fn reset(&mut self) {
        *self = PeerView::new();
        self.restarted = true;
    }

    fn read(&mut self, out: &[u8]) -> Vec<FrameEvent> {
        if self.restarted && !out.is_empty() {
            self.restarted = false;
            if !out.starts_with(b"<?xml") && !out.starts_with(b"<stream:stream") {
                self.framer.push(SYNTHETIC_HEADER);
            }
        }
        self.framer.push(out);
        let mut events = Vec::new();
        loop {
            match self.framer.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => return events,
                Err(e) => panic!(
                    "the peer cannot parse what we wrote ({e:?}): {:?}",
                    String::from_utf8_lossy(out)
                ),
            }
        }
    }
}

/// The answers to the edge's choices, in order.
struct Decisions<'a> {
    bytes: &'a [u8],
}

impl Decisions<'_> {
    fn take(&mut self) -> u8 {
        let (&d, rest) = self.bytes.split_first().unwrap_or((&0, &[]));
        self.bytes = rest;
        d
    }
}

fn is_stanza_name(name: &str) -> bool {
    matches!(name, "message" | "presence" | "iq")
}

/// Whether `el` or a descendant is in `ns`.
fn any_in(el: &Element, ns: &str) -> bool {
    el.ns == ns || el.children().any(|c| any_in(c, ns))
}

fn elements(events: Vec<FrameEvent>) -> Vec<Element> {
    events
        .into_iter()
        .filter_map(|e| match e {
            FrameEvent::Element(el) => Some(el),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- S2sIn

struct World {
    bits: u8,
    secret: DialbackSecret,
    ids: std::cell::Cell<u32>,
}

impl InEnv for World {
    fn is_local_host(&self, domain: &str) -> bool {
        domain == LOCAL || domain == OTHER_LOCAL
    }
    fn new_stream_id(&self) -> String {
        self.ids.set(self.ids.get() + 1);
        format!("in-{}", self.ids.get())
    }
    fn dialback_key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        self.secret.key(receiving, originating, stream_id)
    }
    fn requires_encryption(&self, peer: Option<&str>) -> bool {
        self.bits & 2 != 0 || (self.bits & 1 != 0 && peer == Some(PEER))
    }
    fn requires_valid_certificate(&self, peer: &str) -> bool {
        self.bits & 4 != 0 && peer == PEER
    }
    fn is_refused(&self, peer: &str) -> bool {
        peer == REFUSED
    }
    fn certificate_valid_for(&self, peer: &str) -> bool {
        (self.bits & 8 != 0 && peer == PEER) || (self.bits & 16 != 0 && peer == OTHER_CERTIFIED)
    }
}

/// What the call being checked was, for the properties that depend on it.
#[derive(Default)]
struct InCall {
    /// A `<db:verify/>` request: its parse, and whether its key is ours.
    verify: Option<(DialbackElement, bool)>,
    /// The authoritative server vouched for this pair in this call.
    vouched: Option<(String, String)>,
}

struct InRun<'a> {
    stream: S2sIn,
    world: World,
    framer: Framer,
    view: PeerView,
    decisions: Decisions<'a>,
    /// The stream is TLS (direct, or after a handshake).
    secure: bool,
    closed: bool,
    /// The connection is gone (a failed handshake).
    gone: bool,
    /// Pairs announced by `Authenticated`.
    pairs: Vec<(String, String)>,
    sasl_peer: Option<String>,
    /// `VerifyDialback`s not answered yet: originating, receiving, id, key.
    asked: Vec<(String, String, String, String)>,
}

impl InRun<'_> {
    fn authorized(&self, from: &str, to: &str) -> bool {
        self.pairs.iter().any(|(o, r)| o == from && r == to)
            || (self.sasl_peer.as_deref() == Some(from) && self.world.is_local_host(to))
    }

    /// Checks one call's output and actions; returns the actions.
    fn seen(&mut self, out: Vec<u8>, actions: Vec<InAction>, call: InCall) -> Vec<InAction> {
        if self.closed {
            assert!(
                out.is_empty() && actions.is_empty(),
                "a closed stream wrote {:?} or asked for {actions:?}",
                String::from_utf8_lossy(&out)
            );
            return actions;
        }
        let written = elements(self.view.read(&out));
        if actions
            .iter()
            .any(|a| matches!(a, InAction::StartTls | InAction::Restart))
        {
            // The peer starts a new parser after <proceed/> or <success/>.
            self.view.reset();
        }
        for (i, action) in actions.iter().enumerate() {
            self.check_action(action, &call);
            if matches!(action, InAction::Close) {
                assert_eq!(i + 1, actions.len(), "actions after Close");
            }
        }
        let mut said_valid = Vec::new();
        for el in &written {
            if el.ns != NS_DIALBACK {
                continue;
            }
            let kind = el.attr("type");
            match (el.name.as_ref(), kind) {
                ("result", Some("valid")) => {
                    let (from, to) = (el.attr("from"), el.attr("to"));
                    said_valid.push((to.unwrap_or("?"), from.unwrap_or("?")));
                }
                ("verify", Some(answer @ ("valid" | "invalid"))) => {
                    let Some((request, ours)) = &call.verify else {
                        panic!("a db:verify answer without a request: {el:?}");
                    };
                    assert_eq!(
                        (el.attr("from"), el.attr("to"), el.attr("id")),
                        (
                            Some(request.to.as_str()),
                            Some(request.from.as_str()),
                            request.id.as_deref()
                        ),
                        "a db:verify answer that does not mirror its request"
                    );
                    assert_eq!(
                        answer == "valid",
                        *ours,
                        "db:verify answered {answer} for {request:?}"
                    );
                }
                _ => {}
            }
        }
        for (originating, receiving) in said_valid {
            assert!(
                self.authorized(originating, receiving),
                "said valid for {originating} → {receiving}, which is not authenticated"
            );
        }
        self.check_state();
        actions
    }

    fn check_action(&mut self, action: &InAction, call: &InCall) {
        let world = &self.world;
        match action {
            InAction::StartTls => assert!(!self.secure, "STARTTLS on a TLS stream"),
            InAction::Restart => {}
            InAction::Authenticated {
                peer,
                local,
                method,
            } => {
                assert!(world.is_local_host(local), "authenticated for {local}");
                assert!(!world.is_refused(peer), "authenticated {peer}, refused");
                let certified = self.secure && world.certificate_valid_for(peer);
                if world.requires_encryption(Some(peer)) {
                    assert!(self.secure, "{peer} authenticated without TLS");
                }
                if world.requires_valid_certificate(peer) {
                    assert!(certified, "{peer} authenticated without a certificate");
                }
                match method {
                    AuthMethod::Dialback => {
                        let vouched = call.vouched.as_ref() == Some(&(peer.clone(), local.clone()));
                        assert!(
                            vouched || certified,
                            "{peer} → {local} authenticated by dialback unverified"
                        );
                    }
                    AuthMethod::SaslExternal => {
                        assert!(certified, "SASL EXTERNAL without a certificate for {peer}");
                        assert!(self.sasl_peer.is_none(), "SASL EXTERNAL twice");
                        assert_eq!(self.stream.local(), Some(local.as_str()));
                        self.sasl_peer = Some(peer.clone());
                    }
                }
                if !self.pairs.iter().any(|(o, r)| o == peer && r == local) {
                    self.pairs.push((peer.clone(), local.clone()));
                }
            }
            InAction::VerifyDialback {
                originating,
                receiving,
                stream_id,
                key,
            } => {
                assert!(world.is_local_host(receiving), "verify for {receiving}");
                assert!(!world.is_refused(originating), "verify for {originating}");
                assert!(
                    !world.requires_valid_certificate(originating),
                    "dialback for {originating}, which must show a certificate"
                );
                assert!(
                    self.secure || !world.requires_encryption(Some(originating)),
                    "dialback for {originating} without TLS"
                );
                assert_eq!(Some(stream_id.as_str()), self.stream.stream_id());
                assert!(!key.is_empty(), "a verification without a key");
                assert!(
                    !self.authorized(originating, receiving),
                    "verifying {originating} → {receiving} again"
                );
                assert!(
                    !self
                        .asked
                        .iter()
                        .any(|(o, r, ..)| o == originating && r == receiving),
                    "{originating} → {receiving} asked twice"
                );
                self.asked.push((
                    originating.clone(),
                    receiving.clone(),
                    stream_id.clone(),
                    key.clone(),
                ));
                assert!(self.asked.len() <= MAX_PENDING_DIALBACK);
            }
            InAction::Route { stanza, from, to } => {
                assert!(
                    self.authorized(from.domain(), to.domain()),
                    "routed {} → {}, not authenticated: {stanza:?}",
                    from,
                    to
                );
                assert!(is_stanza_name(&stanza.name), "routed <{}/>", stanza.name);
                assert_eq!(stanza.ns, NS_CLIENT, "routed outside jabber:client");
                assert!(!any_in(stanza, NS_SERVER), "jabber:server left: {stanza:?}");
                assert_eq!(stanza.attr("from"), Some(from.as_str()));
                assert_eq!(stanza.attr("to"), Some(to.as_str()));
            }
            InAction::Close => {
                assert!(!self.closed, "Close twice");
                self.closed = true;
            }
        }
    }

    fn check_state(&self) {
        assert_eq!(self.stream.is_closed(), self.closed, "closed without Close");
        let pairs = self.stream.authenticated_pairs();
        assert_eq!(pairs.len(), self.pairs.len(), "pairs not announced");
        assert!(pairs.iter().all(|p| self.pairs.contains(p)));
        // SASL EXTERNAL's pair may come on top of dialback's limit.
        assert!(pairs.len() <= MAX_AUTHENTICATED_PAIRS + 1);
    }

    /// One read, as `net::s2s_in` handles it: events until the stream
    /// closes, then the actions.
    fn feed(&mut self, read: &[u8]) {
        self.framer.push(read);
        let mut batch = Vec::new();
        while !self.closed {
            let (mut out, mut actions) = (Vec::new(), Vec::new());
            match self.framer.next_event() {
                Ok(Some(event)) => {
                    let call = InCall {
                        verify: self.verify_request(&event),
                        vouched: None,
                    };
                    self.stream
                        .on_event(&self.world, event, &mut out, &mut actions);
                    batch.extend(self.seen(out, actions, call));
                }
                Ok(None) => break,
                Err(e) => {
                    let error = StreamError::from(&e);
                    self.stream.fail(&self.world, error, &mut out, &mut actions);
                    batch.extend(self.seen(out, actions, InCall::default()));
                    break;
                }
            }
        }
        let close_too = batch.iter().any(|a| matches!(a, InAction::Close));
        for action in batch {
            match action {
                InAction::StartTls => {
                    if self.decisions.take() % 4 == 3 {
                        // The handshake failed: the edge drops the link.
                        self.gone = true;
                        return;
                    }
                    // With a Close in the same batch the edge still calls
                    // tls_established, then closes the connection: the
                    // stream hears nothing more, so skip it here.
                    if !close_too {
                        self.framer.reset();
                        self.secure = true;
                        self.stream.tls_established();
                        assert!(self.stream.is_secure());
                    }
                }
                InAction::Restart => self.framer.reset(),
                _ => {}
            }
        }
    }

    /// A `<db:verify/>` request event: how the stream reads it, and
    /// whether its key is the one we made.
    fn verify_request(&self, event: &FrameEvent) -> Option<(DialbackElement, bool)> {
        let FrameEvent::Element(el) = event else {
            return None;
        };
        if !el.is("verify", NS_DIALBACK) || el.attr("type").is_some() {
            return None;
        }
        let db = DialbackElement::parse(el).ok()?;
        let id = db.id.as_deref().unwrap_or_default();
        let ours = self.world.is_local_host(&db.to)
            && !db.key.is_empty()
            && self.world.secret.verify(&db.from, &db.to, id, &db.key);
        Some((db, ours))
    }

    /// What the edge does between reads: the authoritative server's
    /// answers, a timeout.
    fn between_reads(&mut self) {
        let d = self.decisions.take();
        match d % 8 {
            0 => {
                while !self.asked.is_empty() && !self.closed {
                    self.answer(0, None);
                }
            }
            1 => {}
            2 => self.answer(0, Some(None)),
            3 => self.answer(0, Some(Some(true))),
            4 => self.answer(0, Some(Some(false))),
            5 => {
                // An answer for a pair never asked: dropped.
                let (o, r) = ("unasked.example", LOCAL);
                if !self.asked.iter().any(|(ao, ar, ..)| ao == o && ar == r) {
                    let (mut out, mut actions) = (Vec::new(), Vec::new());
                    let before = self.pairs.len();
                    self.stream.dialback_verified(
                        &self.world,
                        o,
                        r,
                        Some(true),
                        &mut out,
                        &mut actions,
                    );
                    assert!(
                        out.is_empty() && actions.is_empty(),
                        "an unasked answer acted on"
                    );
                    assert_eq!(self.stream.authenticated_pairs().len(), before);
                }
            }
            6 => {
                let (mut out, mut actions) = (Vec::new(), Vec::new());
                let error =
                    StreamError::with_text(StreamCondition::ConnectionTimeout, "not in time");
                self.stream.fail(&self.world, error, &mut out, &mut actions);
                self.seen(out, actions, InCall::default());
            }
            _ => self.answer(usize::from(d >> 3), None),
        }
    }

    /// Answers the `index`th (modulo) verification asked: truthfully with
    /// `None`, else as given.
    fn answer(&mut self, index: usize, given: Option<Option<bool>>) {
        if self.asked.is_empty() {
            return;
        }
        let (originating, receiving, id, key) = self.asked.remove(index % self.asked.len());
        let peers = DialbackSecret::new(PEER_SECRET);
        let valid =
            given.unwrap_or_else(|| Some(peers.verify(&receiving, &originating, &id, &key)));
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        self.stream.dialback_verified(
            &self.world,
            &originating,
            &receiving,
            valid,
            &mut out,
            &mut actions,
        );
        let call = InCall {
            verify: None,
            vouched: (valid == Some(true)).then_some((originating, receiving)),
        };
        self.seen(out, actions, call);
    }

    /// Everything the edge could still call on a closed stream changes
    /// nothing and writes nothing.
    fn poke_closed(&mut self) {
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        let header = in_header();
        self.stream.on_event(
            &self.world,
            FrameEvent::StreamOpen(header),
            &mut out,
            &mut actions,
        );
        for xml in [
            "<db:result xmlns:db='jabber:server:dialback' from='example.net' to='example.org'>k</db:result>",
            "<message xmlns='jabber:server' from='a@example.net' to='b@example.org'/>",
        ] {
            let el = Element::parse(xml).expect("probe element");
            self.stream
                .on_event(&self.world, FrameEvent::Element(el), &mut out, &mut actions);
        }
        self.stream
            .on_event(&self.world, FrameEvent::StreamClose, &mut out, &mut actions);
        for (o, r, ..) in self.asked.clone() {
            self.stream
                .dialback_verified(&self.world, &o, &r, Some(true), &mut out, &mut actions);
        }
        let error = StreamError::new(StreamCondition::SystemShutdown);
        self.stream.fail(&self.world, error, &mut out, &mut actions);
        self.seen(out, actions, InCall::default());
    }
}

fn in_header() -> StreamHeader {
    StreamHeader {
        to: Some(LOCAL.to_string()),
        from: Some(PEER.to_string()),
        id: None,
        version: Some("1.0".to_string()),
        lang: None,
        default_ns: NS_SERVER.to_string(),
        stream_prefix: "stream".to_string(),
    }
}

fn run_in(bits: u8, decisions: &[u8], peer: &[u8]) {
    let secure = bits & 32 != 0;
    let mut run = InRun {
        stream: S2sIn::new(secure, bits & 64 != 0),
        world: World {
            bits,
            secret: DialbackSecret::new(OUR_SECRET),
            ids: std::cell::Cell::new(0),
        },
        framer: Framer::new(limits()),
        view: PeerView::new(),
        decisions: Decisions { bytes: decisions },
        secure,
        closed: false,
        gone: false,
        pairs: Vec::new(),
        sasl_peer: None,
        asked: Vec::new(),
    };
    for read in peer.split(|&b| b == 0) {
        run.feed(read);
        if run.closed || run.gone {
            break;
        }
        run.between_reads();
        if run.closed {
            break;
        }
    }
    if run.closed && !run.gone {
        run.poke_closed();
    }
}

// --------------------------------------------------------------- S2sOut

struct OutWorld {
    sasl: bool,
    secret: DialbackSecret,
}

impl OutEnv for OutWorld {
    fn dialback_key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        self.secret.key(receiving, originating, stream_id)
    }
    fn may_use_sasl_external(&self) -> bool {
        self.sasl
    }
}

/// What the call being checked was.
#[derive(Default)]
struct OutCall {
    /// An element the peer sent, for answers that need one.
    received: Option<Element>,
    /// A `request_verify` on a closed link: answered at once, as None.
    request: Option<(String, String, String)>,
    /// An `authenticate_also` for this domain.
    also: Option<String>,
}

struct OutRun<'a> {
    stream: S2sOut,
    world: OutWorld,
    require_encryption: bool,
    framer: Framer,
    view: PeerView,
    decisions: Decisions<'a>,
    secure: bool,
    closed: bool,
    gone: bool,
    /// The peer's header on the current stream (its id, if any).
    peer_header: Option<Option<String>>,
    ready: bool,
    failed: bool,
    starttls_sent: bool,
    /// `request_verify` calls not answered yet: receiving, originating, id.
    requests: Vec<(String, String, String)>,
    /// Domains given to `authenticate_also`, normalized.
    extras: Vec<String>,
}

impl OutRun<'_> {
    fn seen(&mut self, out: Vec<u8>, actions: Vec<OutAction>, call: OutCall) -> Vec<OutAction> {
        if self.closed {
            assert!(
                out.is_empty(),
                "a closed link wrote {:?}",
                String::from_utf8_lossy(&out)
            );
            // Only the answers owed to the call itself.
            for action in &actions {
                match (action, &call) {
                    (
                        OutAction::VerifyResult {
                            receiving,
                            originating,
                            stream_id,
                            valid: None,
                        },
                        OutCall {
                            request: Some(r), ..
                        },
                    ) if (receiving, originating, stream_id) == (&r.0, &r.1, &r.2) => {
                        self.requests.retain(|q| q != r);
                    }
                    (OutAction::NotAuthenticated { local, .. }, OutCall { also: Some(l), .. })
                        if local == l => {}
                    _ => panic!("a closed link asked for {action:?}"),
                }
            }
            return actions;
        }
        if actions.iter().any(|a| matches!(a, OutAction::Restart)) {
            // Our new header follows the peer's <success/>.
            self.view.reset();
        }
        for event in self.view.read(&out) {
            match event {
                FrameEvent::StreamOpen(h) => {
                    assert_eq!(h.from.as_deref(), Some(LOCAL));
                    assert_eq!(h.to.as_deref(), Some(PEER));
                }
                FrameEvent::Element(el) => self.check_written(&el),
                FrameEvent::StreamClose => {}
            }
        }
        for (i, action) in actions.iter().enumerate() {
            self.check_action(action, &call);
            if matches!(action, OutAction::Close) {
                assert_eq!(i + 1, actions.len(), "actions after Close");
            }
        }
        if actions
            .iter()
            .any(|a| matches!(a, OutAction::Failed { .. }))
        {
            assert!(self.closed, "Failed without Close");
        }
        assert_eq!(self.stream.is_closed(), self.closed, "closed without Close");
        assert_eq!(self.stream.is_ready(), self.ready && !self.closed);
        if self.closed {
            assert!(self.requests.is_empty(), "verifications left unanswered");
        }
        actions
    }

    fn check_written(&mut self, el: &Element) {
        let in_clear = !self.secure && self.require_encryption;
        if el.ns == NS_DIALBACK {
            assert!(
                !in_clear,
                "dialback in the clear on a link that must encrypt"
            );
            let (from, to) = (el.attr("from").unwrap_or(""), el.attr("to").unwrap_or(""));
            match (el.name.as_ref(), el.attr("id")) {
                ("result", None) => {
                    assert!(
                        from == LOCAL || self.extras.iter().any(|e| e == from),
                        "a key for {from}"
                    );
                    assert_eq!(to, PEER);
                    let Some(Some(id)) = &self.peer_header else {
                        panic!("a key without the peer's stream id");
                    };
                    assert_eq!(
                        el.text(),
                        self.world.secret.key(PEER, from, id),
                        "a key not bound to the peer's stream"
                    );
                }
                ("verify", Some(id)) => assert!(
                    self.requests
                        .iter()
                        .any(|(r, o, i)| (r.as_str(), o.as_str(), i.as_str()) == (from, to, id)),
                    "a db:verify nobody asked for: {el:?}"
                ),
                _ => panic!("we wrote {el:?}"),
            }
        } else if el.is("starttls", NS_TLS) {
            assert!(!self.secure, "STARTTLS on a TLS link");
            self.starttls_sent = true;
        } else if el.is("auth", NS_SASL) {
            assert!(
                self.secure && self.world.sasl,
                "SASL EXTERNAL tried without cause"
            );
            assert_eq!(el.attr("mechanism"), Some("EXTERNAL"));
        }
    }

    fn check_action(&mut self, action: &OutAction, call: &OutCall) {
        match action {
            OutAction::StartTls => {
                assert!(!self.secure && self.starttls_sent, "StartTls unasked");
            }
            OutAction::Restart => {
                let success = call
                    .received
                    .as_ref()
                    .is_some_and(|e| e.is("success", NS_SASL));
                assert!(success && self.secure, "a restart without SASL success");
                self.peer_header = None;
            }
            OutAction::Ready => {
                assert!(self.peer_header.is_some(), "ready before the peer's header");
                assert!(!self.ready, "Ready twice");
                assert!(
                    self.secure || !self.require_encryption,
                    "ready without the TLS required"
                );
                let method = self.stream.method();
                assert!(method.is_some(), "ready without a method");
                if method == Some(AuthMethod::SaslExternal) {
                    assert!(self.secure && self.world.sasl);
                }
                self.ready = true;
            }
            OutAction::Authenticated { local } => {
                assert!(self.ready, "{local} authenticated on a link not ready");
                assert!(local == LOCAL || self.extras.contains(local), "{local}?");
            }
            OutAction::NotAuthenticated { local, .. } => {
                assert!(self.extras.contains(local), "NotAuthenticated for {local}");
            }
            OutAction::VerifyResult {
                receiving,
                originating,
                stream_id,
                valid,
            } => {
                let index = self
                    .requests
                    .iter()
                    .position(|(r, o, i)| (r, o, i) == (receiving, originating, stream_id));
                let Some(index) = index else {
                    panic!("an answer to no request: {action:?}");
                };
                self.requests.remove(index);
                if let Some(valid) = valid {
                    let answer = call.received.as_ref().filter(|e| {
                        e.is("verify", NS_DIALBACK)
                            && e.attr("id") == Some(stream_id.as_str())
                            && e.attr("type") == Some(if *valid { "valid" } else { "invalid" })
                    });
                    assert!(
                        answer.is_some(),
                        "a verdict the peer did not give: {action:?}"
                    );
                }
            }
            OutAction::Failed { .. } => {
                assert!(!self.failed, "Failed twice");
                assert!(!self.ready, "a ready link Failed");
                self.failed = true;
            }
            OutAction::Close => {
                assert!(!self.closed, "Close twice");
                self.closed = true;
            }
        }
    }

    fn feed(&mut self, read: &[u8]) {
        self.framer.push(read);
        let mut batch = Vec::new();
        while !self.closed {
            let (mut out, mut actions) = (Vec::new(), Vec::new());
            match self.framer.next_event() {
                Ok(Some(event)) => {
                    let mut call = OutCall::default();
                    match &event {
                        FrameEvent::StreamOpen(h) => {
                            if self.peer_header.is_none() && !self.stream.is_closed() {
                                self.peer_header = Some(h.id.clone().filter(|id| !id.is_empty()));
                            }
                        }
                        FrameEvent::Element(el) => call.received = Some(el.clone()),
                        FrameEvent::StreamClose => {}
                    }
                    self.stream
                        .on_event(&self.world, event, &mut out, &mut actions);
                    batch.extend(self.seen(out, actions, call));
                }
                Ok(None) => break,
                Err(e) => {
                    self.stream
                        .fail(StreamError::from(&e), &mut out, &mut actions);
                    batch.extend(self.seen(out, actions, OutCall::default()));
                    break;
                }
            }
        }
        for action in batch {
            match action {
                OutAction::StartTls => {
                    if self.decisions.take() % 4 == 3 {
                        self.gone = true;
                        return;
                    }
                    self.framer.reset();
                    self.view.reset();
                    self.secure = true;
                    self.peer_header = None;
                    let mut out = Vec::new();
                    self.stream.tls_established(&mut out);
                    self.seen(out, Vec::new(), OutCall::default());
                }
                OutAction::Restart => self.framer.reset(),
                _ => {}
            }
        }
    }

    /// What the edge does between reads: verification requests from our
    /// incoming links, more local domains, a timeout, an idle close.
    fn between_reads(&mut self) {
        let d = self.decisions.take();
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        let mut call = OutCall::default();
        match d % 8 {
            0 | 1 => return,
            2 | 6 => {
                let (receiving, originating) = if d % 8 == 2 {
                    (LOCAL, PEER)
                } else {
                    (OTHER_LOCAL, "Example.NET")
                };
                let id = format!("in-{}", d >> 3);
                let key = DialbackSecret::new(PEER_SECRET).key(receiving, originating, &id);
                let request = (receiving.to_string(), originating.to_string(), id);
                if self.requests.contains(&request) {
                    return;
                }
                self.requests.push(request.clone());
                self.stream.request_verify(
                    receiving,
                    originating,
                    &request.2,
                    &key,
                    &mut out,
                    &mut actions,
                );
                call.request = Some(request);
            }
            3 | 7 => {
                let local = if d % 8 == 3 {
                    OTHER_LOCAL
                } else {
                    "Chat.Example.ORG"
                };
                let normalized = local.to_ascii_lowercase();
                if !self.extras.contains(&normalized) {
                    self.extras.push(normalized.clone());
                }
                self.stream
                    .authenticate_also(&self.world, local, &mut out, &mut actions);
                call.also = Some(normalized);
            }
            4 => {
                let error = StreamError::new(StreamCondition::ConnectionTimeout);
                self.stream.fail(error, &mut out, &mut actions);
            }
            _ => self.stream.close(&mut out, &mut actions),
        }
        self.seen(out, actions, call);
    }

    fn poke_closed(&mut self) {
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        self.stream.on_event(
            &self.world,
            FrameEvent::StreamOpen(in_header()),
            &mut out,
            &mut actions,
        );
        self.stream.tls_established(&mut out);
        self.stream.close(&mut out, &mut actions);
        self.stream.fail(
            StreamError::new(StreamCondition::SystemShutdown),
            &mut out,
            &mut actions,
        );
        self.seen(out, actions, OutCall::default());
        // A request on a closed link is answered at once, as unanswered.
        let request = (LOCAL.to_string(), PEER.to_string(), "late".to_string());
        self.requests.push(request.clone());
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        self.stream
            .request_verify(LOCAL, PEER, "late", "k", &mut out, &mut actions);
        self.seen(
            out,
            actions,
            OutCall {
                request: Some(request),
                ..OutCall::default()
            },
        );
        assert!(
            self.requests.is_empty(),
            "a request on a closed link unanswered"
        );
    }
}

fn run_out(bits: u8, decisions: &[u8], peer: &[u8]) {
    let secure = bits & 32 != 0;
    let require_encryption = bits & 1 != 0;
    let mut run = OutRun {
        stream: S2sOut::new(LOCAL, PEER, secure, require_encryption),
        world: OutWorld {
            sasl: bits & 8 != 0,
            secret: DialbackSecret::new(OUR_SECRET),
        },
        require_encryption,
        framer: Framer::new(limits()),
        view: PeerView::new(),
        decisions: Decisions { bytes: decisions },
        secure,
        closed: false,
        gone: false,
        peer_header: None,
        ready: false,
        failed: false,
        starttls_sent: false,
        requests: Vec::new(),
        extras: Vec::new(),
    };
    let mut out = Vec::new();
    run.stream.start(&mut out);
    run.seen(out, Vec::new(), OutCall::default());
    for read in peer.split(|&b| b == 0) {
        run.feed(read);
        if run.closed || run.gone {
            break;
        }
        run.between_reads();
        if run.closed {
            break;
        }
    }
    if run.closed && !run.gone {
        run.poke_closed();
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let [bits, count, rest @ ..] = data else {
        return;
    };
    let k = usize::from(count % 32).min(rest.len());
    let (decisions, peer) = rest.split_at(k);
    if bits & 0x80 == 0 {
        run_in(*bits, decisions, peer);
    } else {
        run_out(*bits, decisions, peer);
    }
});
