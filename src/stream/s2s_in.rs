//! An incoming server-to-server stream (RFC 6120 §4–§6, §13.7.1; XEP-0178
//! SASL EXTERNAL; XEP-0220 Server Dialback) as a sans-I/O state machine:
//! framer events in, bytes and [`InAction`]s out.
//!
//! We are the receiving server: a peer connected to us to send stanzas
//! from its domains to ours. It may authenticate with a certificate (SASL
//! EXTERNAL, one peer domain for every local one) or with dialback (one
//! domain pair at a time, several pairs multiplexed on one stream). Being
//! also the authoritative server for our own domains, we answer
//! `<db:verify/>` questions here, authenticated or not.
//!
//! Sockets, TLS, timers and the outgoing link that asks the authoritative
//! server live in the connection task; it answers `VerifyDialback` through
//! [`S2sIn::dialback_verified`].

use crate::jid::Jid;
use crate::sasl::{self, SaslFailure};
use crate::stanza::{Condition, StanzaError};
use crate::xml::{Element, FrameEvent, NS_CLIENT, NS_SERVER, NS_STREAM, StreamHeader};

use super::dialback::{
    DialbackBody, DialbackElement, DialbackKind, keys_match, normalize_domain, write_dialback,
    write_stream_header,
};
use super::error::{StreamCondition, StreamError};
use super::{NS_DIALBACK, NS_DIALBACK_FEATURE, NS_SASL, NS_TLS};

/// Dialback requests on one stream waiting for the authoritative server at
/// a time; each one costs a verification on an outgoing link. More are
/// answered with a `resource-constraint` dialback error (XEP-0220 §2.4.2).
pub const MAX_PENDING_DIALBACK: usize = 16;

/// Domain pairs one stream may authenticate (multiplexing, XEP-0220 §3);
/// a virtual host with many domains needs a few, an attacker many.
pub const MAX_AUTHENTICATED_PAIRS: usize = 64;

/// Failed SASL attempts tolerated before the stream is closed.
const MAX_SASL_FAILURES: u32 = 3;

/// Questions the state machine asks about the rest of the server.
pub trait InEnv {
    fn is_local_host(&self, domain: &str) -> bool;
    fn new_stream_id(&self) -> String;
    /// Our dialback key for the triple (XEP-0185), as the authoritative
    /// server for `originating`.
    fn dialback_key(&self, receiving: &str, originating: &str, stream_id: &str) -> String;
    /// Whether this peer (`None`: it did not say who it is) must encrypt
    /// before anything else.
    fn requires_encryption(&self, peer: Option<&str>) -> bool;
    /// Whether this peer must authenticate with a valid certificate
    /// (no dialback).
    fn requires_valid_certificate(&self, peer: &str) -> bool;
    /// The peer is blocked, or not on the allow list.
    fn is_refused(&self, peer: &str) -> bool;
    /// The TLS client certificate, if any, chains to a trusted root and
    /// names `peer` (RFC 6120 §13.7.1.2, RFC 6125).
    fn certificate_valid_for(&self, peer: &str) -> bool;
}

/// How a domain pair was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    SaslExternal,
    Dialback,
}

#[derive(Debug)]
pub enum InAction {
    /// `<proceed/>` is in `out`: flush it, run the TLS handshake, then call
    /// [`S2sIn::tls_established`].
    StartTls,
    /// The stream restarts (after SASL success): reset the framer.
    Restart,
    /// Ask the authoritative server of `originating` about `key` with
    /// `<db:verify/>` over an outgoing link, then answer with
    /// [`S2sIn::dialback_verified`].
    VerifyDialback {
        originating: String,
        receiving: String,
        stream_id: String,
        key: String,
    },
    /// `peer` may now send stanzas to `local` (with SASL EXTERNAL: to any
    /// local host).
    Authenticated {
        peer: String,
        local: String,
        method: AuthMethod,
    },
    /// A checked stanza, converted to the internal `jabber:client`
    /// namespace, its addresses normalized.
    Route { stanza: Element, from: Jid, to: Jid },
    /// The closing bytes are in `out`: flush, then close the connection.
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitHeader,
    /// Our header is sent; negotiation elements, dialback and stanzas.
    Open,
    /// `<proceed/>` sent; bytes until the handshake are not XMPP.
    AwaitTls,
    Closed,
}

pub struct S2sIn {
    phase: Phase,
    secure: bool,
    starttls_available: bool,
    header_sent: bool,
    /// The id of our current header: dialback keys sent on this stream are
    /// bound to it. Each header gets a fresh one.
    stream_id: Option<String>,
    /// The local domain the peer's header addressed.
    local: Option<String>,
    /// The domain the peer's header claims (absent from some old servers).
    peer: Option<String>,
    /// The peer speaks XMPP 1.0 (until its header says otherwise), so it
    /// gets version='1.0' and stream features.
    features: bool,
    sasl_offered: bool,
    sasl_failures: u32,
    /// The domain SASL EXTERNAL authenticated: it may send to every local
    /// host.
    sasl_peer: Option<String>,
    /// Authenticated (originating, receiving) pairs, the SASL one included.
    pairs: Vec<(String, String)>,
    /// Dialback requests waiting for the authoritative server.
    pending: Vec<(String, String)>,
}

impl S2sIn {
    /// `secure`: the connection came in on a direct-TLS listener (XEP-0368);
    /// `starttls_available`: a certificate is configured for STARTTLS.
    pub fn new(secure: bool, starttls_available: bool) -> Self {
        S2sIn {
            phase: Phase::AwaitHeader,
            secure,
            starttls_available,
            header_sent: false,
            stream_id: None,
            local: None,
            peer: None,
            features: true,
            sasl_offered: false,
            sasl_failures: 0,
            sasl_peer: None,
            pairs: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// The peer's domain: the one SASL authenticated, else the one its
    /// header claims.
    pub fn peer(&self) -> Option<&str> {
        self.sasl_peer.as_deref().or(self.peer.as_deref())
    }

    /// The local domain the peer's header addressed.
    pub fn local(&self) -> Option<&str> {
        self.local.as_deref()
    }

    /// The (originating, receiving) pairs authenticated on this stream.
    pub fn authenticated_pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub fn on_event(
        &mut self,
        env: &dyn InEnv,
        event: FrameEvent,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        match event {
            FrameEvent::StreamOpen(header) => self.on_header(env, &header, out, actions),
            FrameEvent::Element(el) => self.on_element(env, el, out, actions),
            FrameEvent::StreamClose => {
                if self.phase == Phase::Closed {
                    return;
                }
                if self.header_sent {
                    out.extend_from_slice(b"</stream:stream>");
                }
                self.phase = Phase::Closed;
                actions.push(InAction::Close);
            }
        }
    }

    /// The TLS handshake finished; a new stream header is due.
    pub fn tls_established(&mut self) {
        // A stream that failed meanwhile (plaintext after `<starttls/>` in
        // the same read) stays closed.
        if self.phase == Phase::Closed {
            return;
        }
        self.secure = true;
        self.header_sent = false;
        self.phase = Phase::AwaitHeader;
    }

    /// The authoritative server's answer to a `VerifyDialback`: `None` if
    /// it could not be asked. Answers for requests this stream no longer
    /// waits for are dropped (XEP-0220 §2.1.2).
    pub fn dialback_verified(
        &mut self,
        env: &dyn InEnv,
        originating: &str,
        receiving: &str,
        valid: Option<bool>,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        if self.phase == Phase::Closed {
            return;
        }
        let Some(index) = self
            .pending
            .iter()
            .position(|(o, r)| o == originating && r == receiving)
        else {
            log::debug!("dropping a dialback answer for {originating} → {receiving}: not asked");
            return;
        };
        let (originating, receiving) = self.pending.swap_remove(index);
        match valid {
            Some(true) => {
                write_dialback(
                    out,
                    DialbackKind::Result,
                    &receiving,
                    &originating,
                    None,
                    Some("valid"),
                    DialbackBody::Empty,
                );
                self.authenticate(originating, receiving, AuthMethod::Dialback, actions);
            }
            Some(false) if self.pairs.is_empty() => {
                // §2.2.1: a first attempt that fails gets `invalid`, and the
                // stream MUST be closed.
                log::info!("dialback for {originating} → {receiving} failed: invalid key");
                write_dialback(
                    out,
                    DialbackKind::Result,
                    &receiving,
                    &originating,
                    None,
                    Some("invalid"),
                    DialbackBody::Empty,
                );
                self.fail(
                    env,
                    StreamError::with_text(
                        StreamCondition::NotAuthorized,
                        format!("the dialback key for '{originating}' is not valid"),
                    ),
                    out,
                    actions,
                );
            }
            Some(false) => {
                // §2.2.1: other pairs are authenticated on this stream, so
                // refuse just this one instead of closing.
                log::info!("dialback for {originating} → {receiving} failed: invalid key");
                let error = StanzaError::new(Condition::Forbidden)
                    .with_text("the authoritative server says the key is not valid");
                write_dialback_error(out, &receiving, &originating, &error);
            }
            None => {
                // §2.4.2: a failure to ask is `remote-server-not-found`.
                let error = StanzaError::new(Condition::RemoteServerNotFound).with_text(format!(
                    "could not reach the authoritative server of '{originating}'"
                ));
                write_dialback_error(out, &receiving, &originating, &error);
            }
        }
    }

    /// Ends the stream with `error` (sending a header first if none was
    /// sent): for timeouts and limits the connection task enforces.
    pub fn fail(
        &mut self,
        env: &dyn InEnv,
        error: StreamError,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        if self.phase == Phase::Closed {
            return;
        }
        if !self.header_sent {
            self.write_header(env, out);
        }
        log::debug!("closing incoming s2s stream: {error}");
        error.write_to(out);
        out.extend_from_slice(b"</stream:stream>");
        self.phase = Phase::Closed;
        actions.push(InAction::Close);
    }

    fn on_header(
        &mut self,
        env: &dyn InEnv,
        header: &StreamHeader,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        if self.phase != Phase::AwaitHeader {
            return self.fail_with(
                env,
                StreamCondition::InvalidXml,
                "unexpected stream header",
                out,
                actions,
            );
        }
        // RFC 6120 §4.7.5: any 1.x (or later) version speaks 1.0 with us; a
        // missing or 0.x version is a pre-RFC server: no stream features,
        // so no STARTTLS and no SASL, dialback only. Read first, so that even
        // an error header answers with the right version.
        let major = header
            .version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.trim().parse::<u32>().ok());
        self.features = major.is_some_and(|m| m >= 1);
        if header.default_ns != NS_SERVER {
            return self.fail_with(
                env,
                StreamCondition::InvalidNamespace,
                "the default namespace of a server stream is jabber:server",
                out,
                actions,
            );
        }
        let local = header.to.as_deref().and_then(normalize_domain);
        let local = match (local, &self.sasl_peer) {
            (Some(local), None) if env.is_local_host(&local) => local,
            // After SASL the restarted stream must address the same host.
            (Some(local), Some(_)) if self.local.as_deref() == Some(local.as_str()) => local,
            _ => {
                let text = match header.to.as_deref() {
                    None => "the stream header names no host ('to' is missing)".to_string(),
                    Some(to) => format!("this server does not serve '{to}'"),
                };
                return self.fail_with(env, StreamCondition::HostUnknown, text, out, actions);
            }
        };
        self.local = Some(local);
        let peer = match header.from.as_deref() {
            None => None,
            Some(raw) => match normalize_domain(raw) {
                Some(peer) => Some(peer),
                None => {
                    let text = format!("'{raw}' is not a domain");
                    return self.fail_with(env, StreamCondition::InvalidFrom, text, out, actions);
                }
            },
        };
        if let (Some(peer), Some(authenticated)) = (&peer, &self.sasl_peer)
            && peer != authenticated
        {
            let text = format!("this stream is authenticated as '{authenticated}'");
            return self.fail_with(env, StreamCondition::InvalidFrom, text, out, actions);
        }
        if let Some(peer) = &peer
            && env.is_refused(peer)
        {
            let text = format!("this server does not federate with '{peer}'");
            return self.fail_with(env, StreamCondition::PolicyViolation, text, out, actions);
        }
        self.peer = peer;
        let encryption_required = !self.secure && env.requires_encryption(self.peer.as_deref());
        if encryption_required && !(self.features && self.starttls_available) {
            let text = if self.features {
                "encryption is required, and STARTTLS is not available here"
            } else {
                "encryption is required: STARTTLS needs a version='1.0' stream"
            };
            return self.fail_with(env, StreamCondition::PolicyViolation, text, out, actions);
        }
        self.write_header(env, out);
        if self.features {
            self.write_features(env, out);
        }
        self.phase = Phase::Open;
    }

    fn write_header(&mut self, env: &dyn InEnv, out: &mut Vec<u8>) {
        let id = env.new_stream_id();
        write_stream_header(
            out,
            Some(&id),
            self.local.as_deref(),
            self.peer.as_deref(),
            self.features,
        );
        self.stream_id = Some(id);
        self.header_sent = true;
    }

    fn write_features(&mut self, env: &dyn InEnv, out: &mut Vec<u8>) {
        let mut features = Element::new("features", NS_STREAM);
        self.sasl_offered = false;
        // After SASL the restarted stream has nothing left to negotiate.
        if self.sasl_peer.is_none() {
            let peer = self.peer.as_deref();
            let encryption_required = env.requires_encryption(peer);
            if !self.secure && self.starttls_available {
                let mut starttls = Element::new("starttls", NS_TLS);
                if encryption_required {
                    starttls.push_child(Element::new("required", NS_TLS));
                }
                features.push_child(starttls);
            }
            if self.secure || !encryption_required {
                // XEP-0178 §3 step 9: EXTERNAL only if the certificate
                // names the domain the header claims.
                self.sasl_offered =
                    self.secure && peer.is_some_and(|p| env.certificate_valid_for(p));
                if self.sasl_offered {
                    features.push_child(
                        Element::new("mechanisms", NS_SASL)
                            .with_child(Element::new("mechanism", NS_SASL).with_text("EXTERNAL")),
                    );
                }
                if !peer.is_some_and(|p| env.requires_valid_certificate(p)) {
                    features.push_child(
                        Element::new("dialback", NS_DIALBACK_FEATURE)
                            .with_child(Element::new("errors", NS_DIALBACK_FEATURE)),
                    );
                }
            }
        }
        features.write_to(out, NS_SERVER);
    }

    fn on_element(
        &mut self,
        env: &dyn InEnv,
        el: Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        match self.phase {
            Phase::Closed => return,
            Phase::AwaitHeader | Phase::AwaitTls => {
                return self.fail_with(
                    env,
                    StreamCondition::NotAuthorized,
                    "unexpected element",
                    out,
                    actions,
                );
            }
            Phase::Open => {}
        }
        if el.ns == NS_SERVER && matches!(el.name.as_ref(), "message" | "presence" | "iq") {
            self.on_stanza(env, el, out, actions);
        } else if el.ns == NS_DIALBACK {
            self.on_dialback(env, &el, out, actions);
        } else if el.is("starttls", NS_TLS) {
            self.on_starttls(env, out, actions);
        } else if el.ns == NS_SASL {
            self.on_sasl(env, &el, out, actions);
        } else if matches!(el.name.as_ref(), "message" | "presence" | "iq") {
            let text = format!(
                "stanzas between servers are in jabber:server, not '{}'",
                el.ns
            );
            self.fail_with(env, StreamCondition::InvalidNamespace, text, out, actions);
        } else {
            let text = format!("unexpected <{}/>", el.name);
            self.fail_with(
                env,
                StreamCondition::UnsupportedStanzaType,
                text,
                out,
                actions,
            );
        }
    }

    /// RFC 6120 §5.4.2: TLS once, before authentication.
    fn on_starttls(&mut self, env: &dyn InEnv, out: &mut Vec<u8>, actions: &mut Vec<InAction>) {
        if !self.pairs.is_empty() {
            return self.fail_with(
                env,
                StreamCondition::PolicyViolation,
                "STARTTLS after authentication",
                out,
                actions,
            );
        }
        if self.secure || !self.starttls_available || !self.features {
            // §5.4.2.2: `<failure/>`, then the stream closes.
            Element::new("failure", NS_TLS).write_to(out, NS_SERVER);
            out.extend_from_slice(b"</stream:stream>");
            self.phase = Phase::Closed;
            actions.push(InAction::Close);
            return;
        }
        Element::new("proceed", NS_TLS).write_to(out, NS_SERVER);
        self.phase = Phase::AwaitTls;
        actions.push(InAction::StartTls);
    }

    /// SASL EXTERNAL (XEP-0178 §3), the only mechanism between servers.
    fn on_sasl(
        &mut self,
        env: &dyn InEnv,
        el: &Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        if el.name == "abort" {
            return self.sasl_failure(env, SaslFailure::Aborted, out, actions);
        }
        if el.name != "auth" {
            return self.sasl_failure(env, SaslFailure::MalformedRequest, out, actions);
        }
        if self.sasl_peer.is_some() {
            let text = "already authenticated with SASL";
            return self.fail_with(env, StreamCondition::PolicyViolation, text, out, actions);
        }
        if !self.secure {
            return self.sasl_failure(env, SaslFailure::EncryptionRequired, out, actions);
        }
        if el.attr("mechanism") != Some("EXTERNAL") || !self.sasl_offered {
            return self.sasl_failure(env, SaslFailure::InvalidMechanism, out, actions);
        }
        // The authorization identity: `=` (or nothing) stands for the
        // header's `from`; a named one must be that domain (§3 step 10).
        let text = el.text();
        let authzid = match text.trim() {
            "" | "=" => self.peer.clone(),
            encoded => {
                let Ok(decoded) = sasl::base64::decode(encoded) else {
                    return self.sasl_failure(env, SaslFailure::IncorrectEncoding, out, actions);
                };
                let named = String::from_utf8(decoded)
                    .ok()
                    .and_then(|d| normalize_domain(&d));
                match named {
                    Some(named) if self.peer.as_ref().is_none_or(|p| *p == named) => Some(named),
                    _ => return self.sasl_failure(env, SaslFailure::InvalidAuthzid, out, actions),
                }
            }
        };
        let Some(peer) = authzid.filter(|p| env.certificate_valid_for(p) && !env.is_refused(p))
        else {
            return self.sasl_failure(env, SaslFailure::NotAuthorized, out, actions);
        };
        let Some(local) = self.local.clone() else {
            return self.sasl_failure(env, SaslFailure::NotAuthorized, out, actions);
        };
        Element::new("success", NS_SASL).write_to(out, NS_SERVER);
        log::debug!("{peer} authenticated with SASL EXTERNAL");
        self.sasl_peer = Some(peer.clone());
        self.peer = Some(peer.clone());
        self.header_sent = false;
        self.phase = Phase::AwaitHeader;
        actions.push(InAction::Restart);
        self.authenticate(peer, local, AuthMethod::SaslExternal, actions);
    }

    fn sasl_failure(
        &mut self,
        env: &dyn InEnv,
        failure: SaslFailure,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        Element::new("failure", NS_SASL)
            .with_child(Element::new(failure.condition(), NS_SASL))
            .write_to(out, NS_SERVER);
        if failure != SaslFailure::Aborted {
            self.sasl_failures += 1;
        }
        if self.sasl_failures >= MAX_SASL_FAILURES {
            let text = "too many failed authentication attempts";
            self.fail_with(env, StreamCondition::PolicyViolation, text, out, actions);
        }
    }

    fn on_dialback(
        &mut self,
        env: &dyn InEnv,
        el: &Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        let db = match DialbackElement::parse(el) {
            Ok(db) => db,
            Err(why) => return self.fail_with(env, StreamCondition::BadFormat, why, out, actions),
        };
        if db.answer.is_some() {
            // Answers belong on our outgoing streams (without XEP-0288);
            // acting on one here is the "unsolicited dialback" attack of
            // XEP-0220 §4.1.
            log::debug!(
                "ignoring a dialback answer on an incoming stream from {}",
                db.from
            );
            return;
        }
        match db.kind {
            DialbackKind::Result => self.on_dialback_result(env, db, out, actions),
            DialbackKind::Verify => on_dialback_verify(env, &db, out),
        }
    }

    /// XEP-0220 §2.2.1: a key from the originating server for a pair.
    fn on_dialback_result(
        &mut self,
        env: &dyn InEnv,
        db: DialbackElement,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        let refusal =
            |condition: Condition, text: &str| StanzaError::new(condition).with_text(text);
        // A certificate that names the domain is proof enough, as for SASL
        // EXTERNAL ("dialback without dialing back", XEP-0220 §1.2).
        let certified = self.secure && env.certificate_valid_for(&db.from);
        let error = if !env.is_local_host(&db.to) {
            Some(StanzaError::new(Condition::ItemNotFound))
        } else if env.is_refused(&db.from) {
            // A dialback error, not a stream error: the stream may carry
            // other pairs (§2.2.1 "MUST NOT result in closing").
            Some(refusal(
                Condition::Forbidden,
                "this server does not federate with that domain",
            ))
        } else if !self.secure && env.requires_encryption(Some(&db.from)) {
            if env.requires_encryption(self.peer.as_deref()) {
                // The stream itself had to be encrypted first (RFC 6120
                // §5.3.1): the peer skipped a required STARTTLS.
                let text = "negotiate TLS before authenticating";
                return self.fail_with(env, StreamCondition::PolicyViolation, text, out, actions);
            }
            Some(refusal(
                Condition::PolicyViolation,
                "this domain must use TLS",
            ))
        } else if !certified && env.requires_valid_certificate(&db.from) {
            Some(refusal(
                Condition::NotAuthorized,
                "this domain must authenticate with a certificate",
            ))
        } else {
            None
        };
        if let Some(error) = error {
            return write_dialback_error(out, &db.to, &db.from, &error);
        }
        if db.key.is_empty() {
            let text = "<db:result/> without a key";
            return self.fail_with(env, StreamCondition::BadFormat, text, out, actions);
        }
        if self.is_authorized(env, &db.from, &db.to) {
            // Already authenticated (by an earlier dialback or SASL): say
            // so again rather than verify twice.
            return write_dialback(
                out,
                DialbackKind::Result,
                &db.to,
                &db.from,
                None,
                Some("valid"),
                DialbackBody::Empty,
            );
        }
        if self
            .pending
            .iter()
            .any(|(o, r)| *o == db.from && *r == db.to)
        {
            // XEP-0220 defines nothing for a repeated request: the answer
            // to the first one will answer both, and answering this one
            // with an error would cancel the first at the peer.
            log::debug!("repeated dialback request for {} → {}", db.from, db.to);
            return;
        }
        let pairs_held = self.pairs.len() + self.pending.len();
        if self.pending.len() >= MAX_PENDING_DIALBACK || pairs_held >= MAX_AUTHENTICATED_PAIRS {
            let error = refusal(
                Condition::ResourceConstraint,
                "too many domain pairs on this stream",
            );
            return write_dialback_error(out, &db.to, &db.from, &error);
        }
        if certified {
            write_dialback(
                out,
                DialbackKind::Result,
                &db.to,
                &db.from,
                None,
                Some("valid"),
                DialbackBody::Empty,
            );
            return self.authenticate(db.from, db.to, AuthMethod::Dialback, actions);
        }
        let Some(stream_id) = self.stream_id.clone() else {
            return;
        };
        self.pending.push((db.from.clone(), db.to.clone()));
        actions.push(InAction::VerifyDialback {
            originating: db.from,
            receiving: db.to,
            stream_id,
            key: db.key,
        });
    }

    /// Stanzas: addressed (RFC 6120 §8.1.1.2), from an authenticated
    /// domain to a local one (§4.9.3), then rewritten into `jabber:client`.
    fn on_stanza(
        &mut self,
        env: &dyn InEnv,
        mut el: Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        if self.pairs.is_empty() {
            let text = "authenticate before sending stanzas";
            return self.fail_with(env, StreamCondition::NotAuthorized, text, out, actions);
        }
        let mut addresses = [None, None];
        for (slot, attr) in addresses.iter_mut().zip(["from", "to"]) {
            let parsed = match el.attr(attr) {
                None | Some("") => Err(format!("a stanza between servers needs '{attr}'")),
                Some(raw) => Jid::parse(raw).map_err(|e| format!("'{raw}': {e}")),
            };
            match parsed {
                Ok(jid) => {
                    if el.attr(attr) != Some(jid.as_str()) {
                        el.set_attr(attr, jid.as_str());
                    }
                    *slot = Some(jid);
                }
                Err(text) => {
                    // §4.9.3.11: missing or malformed addresses.
                    return self.fail_with(
                        env,
                        StreamCondition::ImproperAddressing,
                        text,
                        out,
                        actions,
                    );
                }
            }
        }
        let [Some(from), Some(to)] = addresses else {
            return;
        };
        if !self.is_authorized(env, from.domain(), to.domain()) {
            let from_known = self.pairs.iter().any(|(o, _)| o == from.domain());
            let (condition, text) = if from_known && !env.is_local_host(to.domain()) {
                // §4.9.3.6: not a domain this server serves.
                (
                    StreamCondition::HostUnknown,
                    format!("this server does not serve '{}'", to.domain()),
                )
            } else {
                // §4.9.3.9: a 'from' not validated for this stream (or not
                // for this target domain, with dialback's pairs).
                let text = format!(
                    "'{}' is not authenticated for '{}' on this stream",
                    from.domain(),
                    to.domain()
                );
                (StreamCondition::InvalidFrom, text)
            };
            return self.fail_with(env, condition, text, out, actions);
        }
        into_client_namespace(&mut el);
        actions.push(InAction::Route {
            stanza: el,
            from,
            to,
        });
    }

    /// Whether `from` may send to `to` on this stream: SASL authenticates
    /// the peer for every local host (as Prosody does: a certificate proves
    /// the sender, and the target is ours whichever one it is); dialback
    /// only for the exact pair.
    fn is_authorized(&self, env: &dyn InEnv, from: &str, to: &str) -> bool {
        (self.sasl_peer.as_deref() == Some(from) && env.is_local_host(to))
            || self.pairs.iter().any(|(o, r)| o == from && r == to)
    }

    fn authenticate(
        &mut self,
        peer: String,
        local: String,
        method: AuthMethod,
        actions: &mut Vec<InAction>,
    ) {
        if !self.pairs.iter().any(|(o, r)| *o == peer && *r == local) {
            self.pairs.push((peer.clone(), local.clone()));
        }
        actions.push(InAction::Authenticated {
            peer,
            local,
            method,
        });
    }

    fn fail_with(
        &mut self,
        env: &dyn InEnv,
        condition: StreamCondition,
        text: impl Into<String>,
        out: &mut Vec<u8>,
        actions: &mut Vec<InAction>,
    ) {
        self.fail(env, StreamError::with_text(condition, text), out, actions);
    }
}

/// XEP-0220 §2.2.2: we are the authoritative server for `to`; anyone may
/// ask, and the answer reveals only whether the key is right.
fn on_dialback_verify(env: &dyn InEnv, db: &DialbackElement, out: &mut Vec<u8>) {
    let id = db.id.as_deref().unwrap_or_default();
    if !env.is_local_host(&db.to) {
        let error = StanzaError::new(Condition::ItemNotFound);
        return write_dialback(
            out,
            DialbackKind::Verify,
            &db.to,
            &db.from,
            Some(id),
            Some("error"),
            DialbackBody::Error(&error),
        );
    }
    let expected = env.dialback_key(&db.from, &db.to, id);
    let valid = !db.key.is_empty() && keys_match(&expected, &db.key);
    write_dialback(
        out,
        DialbackKind::Verify,
        &db.to,
        &db.from,
        Some(id),
        Some(if valid { "valid" } else { "invalid" }),
        DialbackBody::Empty,
    );
}

fn write_dialback_error(out: &mut Vec<u8>, from: &str, to: &str, error: &StanzaError) {
    write_dialback(
        out,
        DialbackKind::Result,
        from,
        to,
        None,
        Some("error"),
        DialbackBody::Error(error),
    );
}

/// The router speaks `jabber:client`: the stanza and every descendant in
/// `jabber:server` move there (payloads in their own namespaces stay).
fn into_client_namespace(el: &mut Element) {
    if el.ns == NS_SERVER {
        el.ns = NS_CLIENT.into();
    }
    for child in el.children_mut() {
        into_client_namespace(child);
    }
}

#[cfg(test)]
#[path = "s2s_in_tests.rs"]
pub(super) mod tests;
