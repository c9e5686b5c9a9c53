//! An outgoing server-to-server stream (RFC 6120 §4–§6; XEP-0178 SASL
//! EXTERNAL; XEP-0220 Server Dialback) as a sans-I/O state machine: framer
//! events in, bytes and [`OutAction`]s out.
//!
//! We are the originating server for `local`, connecting to `remote`:
//! STARTTLS when offered (required when configured), then SASL EXTERNAL if
//! the peer offers it and our certificate would pass, else dialback. Once
//! `Ready`, the connection task sends the queued stanzas (framed for
//! `jabber:server`). The same link carries our `<db:verify/>` questions to
//! `remote` as an authoritative server, before or after it is
//! authenticated, as Prosody does. Stanzas the peer sends here are ignored:
//! links are one-way (no XEP-0288).

use crate::sasl;
use crate::stanza::Condition;
use crate::xml::{Element, FrameEvent, NS_SERVER, NS_STREAM, StreamHeader};

use super::dialback::{
    DialbackAnswer, DialbackBody, DialbackElement, DialbackKind, normalize_domain, write_dialback,
    write_stream_header,
};
use super::error::{NS_STREAM_ERRORS, StreamCondition, StreamError};
use super::s2s_in::AuthMethod;
use super::{NS_DIALBACK, NS_DIALBACK_FEATURE, NS_SASL, NS_TLS};

/// Verification requests one link carries at a time; more are answered as
/// failed at once (each one is a stream on one of our incoming links
/// waiting).
pub const MAX_PENDING_VERIFIES: usize = 128;

/// Questions the state machine asks about the rest of the server.
pub trait OutEnv {
    /// Our dialback key for the triple (XEP-0185).
    fn dialback_key(&self, receiving: &str, originating: &str, stream_id: &str) -> String;
    /// Our certificate would pass the peer's check (it chains to a public
    /// root and names `local`), so SASL EXTERNAL is worth trying.
    fn may_use_sasl_external(&self) -> bool;
}

/// Why a link could not be negotiated; the connection task bounces the
/// stanzas queued for it with [`OutFailure::bounce_condition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFailure {
    /// Encryption is required and the peer does not offer it, or refused
    /// STARTTLS.
    Encryption,
    /// The peer offers no authentication method we can use.
    NoAuthentication,
    /// The peer refused to authenticate us (dialback `invalid`, SASL
    /// failure with no dialback to fall back on).
    NotAuthorized,
    /// The peer could not verify us now (a dialback `error`).
    DialbackError,
    /// SASL EXTERNAL authenticated this link for one local domain only:
    /// another one needs its own link.
    SingleDomainLink,
    /// The peer sent a stream error or closed the stream first.
    Closed,
    /// We gave up: a protocol violation by the peer, a timeout, a limit.
    Aborted,
}

impl OutFailure {
    /// The stanza error for stanzas that cannot go out over this link.
    /// XEP-0220 §2.1.1: `internal-server-error` when the peer found our
    /// key invalid; otherwise RFC 6120 §8.3.3.17 `remote-server-timeout`
    /// ("a stream can be established but stream negotiation fails"). The
    /// connection task uses `remote-server-not-found` (§8.3.3.16) itself
    /// when no connection could be made at all.
    pub fn bounce_condition(self) -> Condition {
        match self {
            OutFailure::NotAuthorized => Condition::InternalServerError,
            _ => Condition::RemoteServerTimeout,
        }
    }
}

#[derive(Debug)]
pub enum OutAction {
    /// `<proceed/>` arrived: run the TLS handshake (reset the framer), then
    /// call [`S2sOut::tls_established`].
    StartTls,
    /// SASL succeeded and our new header is in `out`: reset the framer.
    Restart,
    /// Authenticated for (local, remote): start sending stanzas.
    Ready,
    /// An extra local domain (see [`S2sOut::authenticate_also`]) may now
    /// send over this link too.
    Authenticated { local: String },
    /// An extra local domain could not be authenticated on this link; the
    /// link goes on for the others.
    NotAuthenticated {
        local: String,
        condition: OutFailure,
        text: String,
    },
    /// The answer to a [`S2sOut::request_verify`]; `None`: no answer (a
    /// dialback error, or the link ended first).
    VerifyResult {
        receiving: String,
        originating: String,
        stream_id: String,
        valid: Option<bool>,
    },
    /// The link cannot be used: bounce what is queued for it. A `Close`
    /// follows.
    Failed { condition: OutFailure, text: String },
    /// The closing bytes are in `out`: flush, then close the connection.
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before [`S2sOut::start`].
    Idle,
    AwaitHeader,
    AwaitFeatures,
    /// `<starttls/>` sent.
    AwaitProceed,
    /// `<proceed/>` received; the handshake runs.
    AwaitTls,
    /// `<auth/>` sent.
    AwaitSasl,
    /// Our `db:result` sent.
    AwaitDialback,
    Ready,
    Closed,
}

/// A `<db:verify/>` we were asked to send.
struct VerifyRequest {
    receiving: String,
    originating: String,
    stream_id: String,
    key: String,
}

/// An extra local domain piggybacked on the link (XEP-0220 §3.1).
#[derive(PartialEq, Eq)]
enum ExtraState {
    /// Waiting for the link to be ready.
    Queued,
    /// Our `db:result` is sent.
    Sent,
    Authenticated,
}

pub struct S2sOut {
    local: String,
    remote: String,
    secure: bool,
    require_encryption: bool,
    phase: Phase,
    /// The id of the peer's current header: our dialback key is bound to it.
    stream_id: Option<String>,
    /// The peer advertised dialback (the feature, or a pre-1.0 stream).
    dialback_offered: bool,
    sasl_tried: bool,
    method: Option<AuthMethod>,
    extra: Vec<(String, ExtraState)>,
    /// Verification requests waiting for the stream to get past TLS.
    queued_verifies: Vec<VerifyRequest>,
    /// Verification requests sent, waiting for their answers.
    sent_verifies: Vec<VerifyRequest>,
}

impl S2sOut {
    /// `direct_tls`: the connection is TLS from the first byte (XEP-0368);
    /// `require_encryption`: never continue without TLS.
    pub fn new(local: &str, remote: &str, direct_tls: bool, require_encryption: bool) -> Self {
        S2sOut {
            local: normalize_domain(local).unwrap_or_else(|| local.to_string()),
            remote: normalize_domain(remote).unwrap_or_else(|| remote.to_string()),
            secure: direct_tls,
            require_encryption,
            phase: Phase::Idle,
            stream_id: None,
            dialback_offered: false,
            sasl_tried: false,
            method: None,
            extra: Vec::new(),
            queued_verifies: Vec::new(),
            sent_verifies: Vec::new(),
        }
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn remote(&self) -> &str {
        &self.remote
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// How the link was authenticated, once it is ready.
    pub fn method(&self) -> Option<AuthMethod> {
        self.method
    }

    /// The id of the peer's stream header.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    /// Extra local domains authenticated on this link.
    pub fn authenticated_locals(&self) -> impl Iterator<Item = &str> {
        self.extra
            .iter()
            .filter(|(_, s)| *s == ExtraState::Authenticated)
            .map(|(l, _)| l.as_str())
    }

    /// Writes our stream header.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        if self.phase != Phase::Idle {
            return;
        }
        self.write_header(out);
        self.phase = Phase::AwaitHeader;
    }

    /// The TLS handshake finished: a new stream begins.
    pub fn tls_established(&mut self, out: &mut Vec<u8>) {
        if self.phase != Phase::AwaitTls {
            return;
        }
        self.secure = true;
        self.write_header(out);
        self.phase = Phase::AwaitHeader;
    }

    /// Asks `originating` (the peer, as authoritative server) whether `key`
    /// is its key for the triple: sent as soon as the stream is past TLS
    /// negotiation, answered with `OutAction::VerifyResult`.
    pub fn request_verify(
        &mut self,
        receiving: &str,
        originating: &str,
        stream_id: &str,
        key: &str,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        let request = VerifyRequest {
            receiving: receiving.to_string(),
            originating: originating.to_string(),
            stream_id: stream_id.to_string(),
            key: key.to_string(),
        };
        let waiting = self.queued_verifies.len() + self.sent_verifies.len();
        if self.phase == Phase::Closed || waiting >= MAX_PENDING_VERIFIES {
            return actions.push(unanswered(request));
        }
        self.queued_verifies.push(request);
        if self.can_send_dialback() {
            self.flush_verifies(out);
        }
    }

    /// Authenticates another local domain over this link (dialback sender
    /// multiplexing, XEP-0220 §3.1), once the link is ready; answered with
    /// `Authenticated` or `NotAuthenticated`. A link authenticated with SASL
    /// EXTERNAL cannot (`SingleDomainLink`): the connection task opens
    /// another one for that domain.
    pub fn authenticate_also(
        &mut self,
        env: &dyn OutEnv,
        local: &str,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        let local = normalize_domain(local).unwrap_or_else(|| local.to_string());
        if local == self.local {
            if self.phase == Phase::Ready {
                actions.push(OutAction::Authenticated { local });
            }
            return;
        }
        if let Some((_, state)) = self.extra.iter().find(|(l, _)| *l == local) {
            if *state == ExtraState::Authenticated {
                actions.push(OutAction::Authenticated { local });
            }
            return;
        }
        if self.phase == Phase::Closed {
            let text = "the link is closed".to_string();
            return actions.push(OutAction::NotAuthenticated {
                local,
                condition: OutFailure::Closed,
                text,
            });
        }
        self.extra.push((local, ExtraState::Queued));
        if self.phase == Phase::Ready {
            self.send_extra(env, out, actions);
        }
    }

    /// Ends the stream with `error`: for timeouts and limits the connection
    /// task enforces.
    pub fn fail(&mut self, error: StreamError, out: &mut Vec<u8>, actions: &mut Vec<OutAction>) {
        if self.phase == Phase::Closed {
            return;
        }
        let text = error.to_string();
        if self.phase != Phase::Idle {
            error.write_to(out);
        }
        self.finish(OutFailure::Aborted, text, out, actions);
    }

    /// Closes an idle link politely.
    pub fn close(&mut self, out: &mut Vec<u8>, actions: &mut Vec<OutAction>) {
        if self.phase == Phase::Closed {
            return;
        }
        self.finish(
            OutFailure::Aborted,
            "closed by this server".to_string(),
            out,
            actions,
        );
    }

    pub fn on_event(
        &mut self,
        env: &dyn OutEnv,
        event: FrameEvent,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        if matches!(self.phase, Phase::Closed | Phase::Idle) {
            return;
        }
        match event {
            FrameEvent::StreamOpen(header) => self.on_header(env, &header, out, actions),
            FrameEvent::Element(el) => self.on_element(env, &el, out, actions),
            FrameEvent::StreamClose => {
                let text = "the peer closed the stream".to_string();
                self.finish(OutFailure::Closed, text, out, actions);
            }
        }
    }

    fn on_header(
        &mut self,
        env: &dyn OutEnv,
        header: &StreamHeader,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        if self.phase != Phase::AwaitHeader {
            return self.abort(
                StreamCondition::InvalidXml,
                "unexpected stream header",
                out,
                actions,
            );
        }
        if header.default_ns != NS_SERVER {
            let text = "the default namespace of a server stream is jabber:server";
            return self.abort(StreamCondition::InvalidNamespace, text, out, actions);
        }
        self.stream_id = header.id.clone().filter(|id| !id.is_empty());
        let major = header
            .version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.trim().parse::<u32>().ok());
        if major.is_some_and(|m| m >= 1) {
            self.phase = Phase::AwaitFeatures;
            return;
        }
        // A pre-1.0 server: no features, so no TLS; dialback is all it has
        // (the framer does not report its `xmlns:db`, and no such server
        // lacks dialback).
        if !self.secure && self.require_encryption {
            return self.encryption_unavailable(
                "the peer's stream has no version='1.0' for STARTTLS",
                out,
                actions,
            );
        }
        self.dialback_offered = true;
        self.send_dialback(env, out, actions);
    }

    fn on_element(
        &mut self,
        env: &dyn OutEnv,
        el: &Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        if el.is("error", NS_STREAM) {
            return self.on_stream_error(el, out, actions);
        }
        if el.ns == NS_DIALBACK {
            return self.on_dialback(env, el, out, actions);
        }
        match (self.phase, el.ns.as_ref()) {
            (Phase::AwaitFeatures, _) if el.is("features", NS_STREAM) => {
                self.on_features(env, el, out, actions)
            }
            (Phase::AwaitProceed, NS_TLS) if el.name == "proceed" => {
                self.phase = Phase::AwaitTls;
                actions.push(OutAction::StartTls);
            }
            (Phase::AwaitProceed, NS_TLS) => {
                // RFC 6120 §5.4.2.2: the peer closes the stream after this.
                let text = "the peer refused STARTTLS".to_string();
                self.finish(OutFailure::Encryption, text, out, actions);
            }
            (Phase::AwaitSasl, NS_SASL) if el.name == "success" => {
                self.method = Some(AuthMethod::SaslExternal);
                self.write_header(out);
                self.phase = Phase::AwaitHeader;
                actions.push(OutAction::Restart);
            }
            (Phase::AwaitSasl, NS_SASL) if el.name == "failure" => {
                let condition = el
                    .first_child()
                    .map(|c| c.name.to_string())
                    .unwrap_or_default();
                log::info!(
                    "{} refused SASL EXTERNAL for {}: {condition}",
                    self.remote,
                    self.local
                );
                if self.dialback_offered {
                    self.send_dialback(env, out, actions);
                } else {
                    let text =
                        format!("SASL EXTERNAL failed ({condition}) and dialback is not offered");
                    self.finish(OutFailure::NotAuthorized, text, out, actions);
                }
            }
            (_, NS_SERVER) if matches!(el.name.as_ref(), "message" | "presence" | "iq") => {
                log::debug!("ignoring a stanza from {} on an outgoing link", self.remote);
            }
            _ if el.is("features", NS_STREAM) && self.phase == Phase::Ready => {}
            _ => {
                let text = format!("unexpected <{}/>", el.name);
                self.abort(StreamCondition::UnsupportedStanzaType, text, out, actions);
            }
        }
    }

    fn on_features(
        &mut self,
        env: &dyn OutEnv,
        features: &Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        if self.method == Some(AuthMethod::SaslExternal) {
            // The stream restarted after SASL: nothing left to negotiate.
            return self.become_ready(env, out, actions);
        }
        if !self.secure {
            if features.get_child("starttls", NS_TLS).is_some() {
                Element::new("starttls", NS_TLS).write_to(out, NS_SERVER);
                self.phase = Phase::AwaitProceed;
                return;
            }
            if self.require_encryption {
                return self.encryption_unavailable(
                    "the peer does not offer STARTTLS",
                    out,
                    actions,
                );
            }
        }
        self.dialback_offered = features
            .get_child("dialback", NS_DIALBACK_FEATURE)
            .is_some();
        let external = features.get_child("mechanisms", NS_SASL).is_some_and(|m| {
            m.children()
                .any(|c| c.is("mechanism", NS_SASL) && c.text().trim() == "EXTERNAL")
        });
        if self.secure && external && !self.sasl_tried && env.may_use_sasl_external() {
            // XEP-0178 §3 step 10: the authorization identity SHOULD be
            // included for older servers, so ours rather than `=`.
            self.sasl_tried = true;
            let auth = sasl::base64::encode(self.local.as_bytes());
            Element::new("auth", NS_SASL)
                .with_attr("mechanism", "EXTERNAL")
                .with_text(auth)
                .write_to(out, NS_SERVER);
            self.phase = Phase::AwaitSasl;
        } else if self.dialback_offered {
            self.send_dialback(env, out, actions);
        } else {
            let text =
                "the peer offers neither SASL EXTERNAL (that we can use) nor dialback".to_string();
            self.finish(OutFailure::NoAuthentication, text, out, actions);
        }
    }

    /// XEP-0220 §2.1.1 step 1: our key for (local, remote) on this stream.
    fn send_dialback(&mut self, env: &dyn OutEnv, out: &mut Vec<u8>, actions: &mut Vec<OutAction>) {
        let Some(stream_id) = self.stream_id.clone() else {
            let text = "the peer's stream header has no id, which dialback needs".to_string();
            return self.finish(OutFailure::NoAuthentication, text, out, actions);
        };
        let key = env.dialback_key(&self.remote, &self.local, &stream_id);
        write_dialback(
            out,
            DialbackKind::Result,
            &self.local,
            &self.remote,
            None,
            None,
            DialbackBody::Key(&key),
        );
        self.phase = Phase::AwaitDialback;
        self.flush_verifies(out);
    }

    fn on_dialback(
        &mut self,
        env: &dyn OutEnv,
        el: &Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        let mut db = match DialbackElement::parse(el) {
            Ok(db) => db,
            Err(why) => return self.abort(StreamCondition::BadFormat, why, out, actions),
        };
        let Some(answer) = db.answer.take() else {
            // A request on our outgoing stream: only with XEP-0288.
            log::debug!(
                "ignoring a dialback request from {} on an outgoing link",
                self.remote
            );
            return;
        };
        match db.kind {
            DialbackKind::Verify => self.on_verify_answer(db, answer, actions),
            DialbackKind::Result => self.on_result_answer(env, db, answer, out, actions),
        }
    }

    /// XEP-0220 §2.1.2: the answer must match a request sent on this
    /// stream (from, to and id); others are dropped (§4.1).
    fn on_verify_answer(
        &mut self,
        db: DialbackElement,
        answer: DialbackAnswer,
        actions: &mut Vec<OutAction>,
    ) {
        let id = db.id.unwrap_or_default();
        let Some(index) = self
            .sent_verifies
            .iter()
            .position(|r| r.originating == db.from && r.receiving == db.to && r.stream_id == id)
        else {
            log::debug!("dropping an unsolicited db:verify answer from {}", db.from);
            return;
        };
        let request = self.sent_verifies.remove(index);
        let valid = match answer {
            DialbackAnswer::Valid => Some(true),
            DialbackAnswer::Invalid => Some(false),
            DialbackAnswer::Error { .. } => None,
        };
        actions.push(OutAction::VerifyResult {
            receiving: request.receiving,
            originating: request.originating,
            stream_id: request.stream_id,
            valid,
        });
    }

    /// XEP-0220 §2.1.1 step 4, for our main domain or a piggybacked one.
    fn on_result_answer(
        &mut self,
        env: &dyn OutEnv,
        db: DialbackElement,
        answer: DialbackAnswer,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        let main = db.to == self.local && self.phase == Phase::AwaitDialback;
        let extra = self
            .extra
            .iter()
            .position(|(l, s)| *l == db.to && *s == ExtraState::Sent);
        if db.from != self.remote || (!main && extra.is_none()) {
            log::debug!("dropping an unsolicited db:result answer from {}", db.from);
            return;
        }
        let error_text = |condition: &str, text: Option<String>| match text {
            Some(text) => format!("dialback error {condition}: {text}"),
            None => format!("dialback error {condition}"),
        };
        match (answer, extra) {
            (DialbackAnswer::Valid, _) if main => {
                self.method = Some(AuthMethod::Dialback);
                self.become_ready(env, out, actions);
            }
            (DialbackAnswer::Valid, Some(index)) => {
                if let Some(entry) = self.extra.get_mut(index) {
                    entry.1 = ExtraState::Authenticated;
                }
                actions.push(OutAction::Authenticated { local: db.to });
            }
            // §2.1.1: after `invalid` the peer will most likely close the
            // stream, so no pair on it is worth keeping.
            (DialbackAnswer::Invalid, _) => {
                let text = format!(
                    "{} found the dialback key for {} invalid",
                    self.remote, db.to
                );
                self.finish(OutFailure::NotAuthorized, text, out, actions);
            }
            (DialbackAnswer::Error { condition, text }, _) if main => {
                let text = error_text(&condition, text);
                self.finish(OutFailure::DialbackError, text, out, actions);
            }
            (DialbackAnswer::Error { condition, text }, Some(index)) => {
                // §2.4.2: non-fatal for the stream.
                self.extra.remove(index);
                actions.push(OutAction::NotAuthenticated {
                    local: db.to,
                    condition: OutFailure::DialbackError,
                    text: error_text(&condition, text),
                });
            }
            (_, None) => {}
        }
    }

    fn on_stream_error(&mut self, el: &Element, out: &mut Vec<u8>, actions: &mut Vec<OutAction>) {
        let condition = el
            .children()
            .find(|c| c.ns == NS_STREAM_ERRORS && c.name != "text")
            .map(|c| c.name.to_string())
            .unwrap_or_else(|| "undefined-condition".to_string());
        let text = match el.get_child("text", NS_STREAM_ERRORS) {
            Some(t) => format!("stream error {condition}: {}", t.text()),
            None => format!("stream error {condition}"),
        };
        log::info!(
            "{} closed the link from {}: {text}",
            self.remote,
            self.local
        );
        self.finish(OutFailure::Closed, text, out, actions);
    }

    fn become_ready(&mut self, env: &dyn OutEnv, out: &mut Vec<u8>, actions: &mut Vec<OutAction>) {
        self.phase = Phase::Ready;
        actions.push(OutAction::Ready);
        self.flush_verifies(out);
        self.send_extra(env, out, actions);
    }

    /// Sends the queued extra domains' keys (dialback), or reports that
    /// they need a link of their own (SASL).
    fn send_extra(&mut self, env: &dyn OutEnv, out: &mut Vec<u8>, actions: &mut Vec<OutAction>) {
        let Some(stream_id) = self.stream_id.clone() else {
            return;
        };
        let dialback = self.method == Some(AuthMethod::Dialback);
        let remote = &self.remote;
        self.extra.retain_mut(|(local, state)| {
            if *state != ExtraState::Queued {
                return true;
            }
            if !dialback {
                actions.push(OutAction::NotAuthenticated {
                    local: local.clone(),
                    condition: OutFailure::SingleDomainLink,
                    text: "SASL EXTERNAL authenticates one domain per link".to_string(),
                });
                return false;
            }
            let key = env.dialback_key(remote, local, &stream_id);
            write_dialback(
                out,
                DialbackKind::Result,
                local,
                remote,
                None,
                None,
                DialbackBody::Key(&key),
            );
            *state = ExtraState::Sent;
            true
        });
    }

    /// Verification requests may go out once TLS is settled and the peer
    /// is not in the middle of SASL: while our own dialback waits or after.
    fn can_send_dialback(&self) -> bool {
        matches!(self.phase, Phase::AwaitDialback | Phase::Ready)
    }

    fn flush_verifies(&mut self, out: &mut Vec<u8>) {
        for request in self.queued_verifies.drain(..) {
            write_dialback(
                out,
                DialbackKind::Verify,
                &request.receiving,
                &request.originating,
                Some(&request.stream_id),
                None,
                DialbackBody::Key(&request.key),
            );
            self.sent_verifies.push(request);
        }
    }

    fn encryption_unavailable(
        &mut self,
        why: &str,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        StreamError::with_text(StreamCondition::PolicyViolation, "encryption is required")
            .write_to(out);
        let text = format!("encryption is required and {why}");
        self.finish(OutFailure::Encryption, text, out, actions);
    }

    /// A protocol violation by the peer: a stream error, then the end.
    fn abort(
        &mut self,
        condition: StreamCondition,
        text: impl Into<String>,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        self.fail(StreamError::with_text(condition, text), out, actions);
    }

    /// Closes the stream (any stream error is already in `out`): `Failed`
    /// unless the link was ready, every unanswered verification as `None`
    /// (XEP-0220 §2.1.2), then `Close`.
    fn finish(
        &mut self,
        condition: OutFailure,
        text: String,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutAction>,
    ) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.phase != Phase::Idle {
            out.extend_from_slice(b"</stream:stream>");
        }
        if self.phase != Phase::Ready {
            log::info!("link {} → {} failed: {text}", self.local, self.remote);
            actions.push(OutAction::Failed { condition, text });
        }
        for (local, state) in self.extra.drain(..) {
            if state != ExtraState::Authenticated {
                actions.push(OutAction::NotAuthenticated {
                    local,
                    condition: OutFailure::Closed,
                    text: "the link closed".to_string(),
                });
            }
        }
        for request in self
            .sent_verifies
            .drain(..)
            .chain(self.queued_verifies.drain(..))
        {
            actions.push(unanswered(request));
        }
        self.phase = Phase::Closed;
        actions.push(OutAction::Close);
    }

    fn write_header(&self, out: &mut Vec<u8>) {
        write_stream_header(out, None, Some(&self.local), Some(&self.remote), true);
    }
}

fn unanswered(request: VerifyRequest) -> OutAction {
    OutAction::VerifyResult {
        receiving: request.receiving,
        originating: request.originating,
        stream_id: request.stream_id,
        valid: None,
    }
}

#[cfg(test)]
#[path = "s2s_out_tests.rs"]
mod tests;
