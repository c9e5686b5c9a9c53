//! The c2s stream state machine: stream headers, STARTTLS, SASL, resource
//! binding and the legacy session iq, then validated stanzas for the router.
//!
//! It never touches a socket. The connection feeds it framer events and
//! carries out the returned actions (start TLS, run a SASL step, bind, route)
//! and writes the bytes it appends to `out`.

use crate::im::register::{NS_REGISTER, NS_REGISTER_FEATURE};
use crate::jid::Jid;
use crate::sasl::{self, ChannelBinding, Mechanism, SaslSession, Step};
use crate::stanza::{self, Condition, Invalid, Kind, StanzaError};
use crate::xml::{Element, NS_CLIENT, StreamHeader};

use super::StreamOut;
use super::error::{StreamCondition, StreamError};
use super::sm::{self, NS_SM};
use super::{
    NS_BIND, NS_CSI, NS_PRE_APPROVAL, NS_ROSTERVER, NS_SASL, NS_SASL_CB, NS_SESSION, NS_TLS,
};

/// What the listener and configuration allow on this stream.
#[derive(Clone, Debug)]
pub struct Policy {
    /// STARTTLS can be offered (a certificate exists and the stream is not
    /// already encrypted).
    pub starttls_available: bool,
    /// Refuse SASL until the stream is encrypted.
    pub require_encryption: bool,
    /// Offer SASL PLAIN on an unencrypted stream (tests only).
    pub allow_plaintext_auth: bool,
    /// Failed SASL attempts tolerated on one stream before it is closed.
    pub max_auth_failures: u32,
    /// In-band registration of new accounts (XEP-0077) is allowed; it is
    /// offered where SASL PLAIN would be, since the password travels as is.
    pub registration: bool,
}

/// Questions the state machine asks about the rest of the server.
pub trait Env {
    fn is_local_host(&self, domain: &str) -> bool;
    fn new_stream_id(&self) -> String;
}

/// A SASL step to run against the credential store. PLAIN needs a PBKDF2
/// run, so the connection may move it off the event loop; the session moves
/// with it and comes back through `C2sStream::sasl_result`.
pub struct SaslJob {
    pub session: SaslSession,
    pub mechanism: Mechanism,
    pub input: Vec<u8>,
    pub domain: String,
}

pub enum Action {
    /// `<proceed/>` is in `out`: flush it, then run the TLS handshake and
    /// call `tls_established`.
    StartTls,
    /// The stream restarts (after SASL success): reset the framer.
    Restart,
    /// Run this SASL step and hand the result to `sasl_result`.
    Sasl(SaslJob),
    /// An in-band registration iq (XEP-0077) from a client that has not
    /// logged in; answer with `register_result`.
    Register { iq: Element, domain: String },
    /// Bind a resource for the authenticated account; answer with
    /// `bind_result`.
    Bind {
        account: Jid,
        resource: Option<String>,
        iq_id: String,
    },
    /// A validated stanza from the bound client, `from` stamped.
    Route { stanza: Element, to: Option<Jid> },
    /// Stream management was enabled (XEP-0198): answer `<enabled/>`
    /// (with a resumption id if `resume` and the server allows it).
    SmEnable { resume: bool, max: Option<u32> },
    /// Resume the session `previd` on this authenticated stream; answer
    /// with `resume_result`.
    SmResume { previd: String, h: u32 },
    /// The client acknowledged `h` stanzas.
    SmAck(u32),
    /// The client asks for an ack: answer `<a h/>` with `handled()` once
    /// the stanzas before are handled.
    SmRequest,
    /// Client State Indication (XEP-0352): the client is active or not.
    Csi { active: bool },
    /// SASL2 (XEP-0388): a FAST token to check, or a success to complete.
    Sasl2(Box<super::sasl2::Sasl2Action>),
    /// The closing bytes are in `out`: flush, then close the connection.
    Close,
}

enum Phase {
    AwaitHeader,
    /// Features sent, not authenticated.
    PreAuth,
    /// `<proceed/>` sent; bytes until the handshake are not XMPP.
    AwaitTls,
    /// A SASL step is running; no input is read meanwhile.
    SaslRunning,
    /// A challenge was sent; waiting for `<response/>` or `<abort/>`.
    SaslChallenge(SaslSession),
    /// Authenticated, bind feature offered.
    PreBind,
    BindRunning,
    /// A `<resume/>` is being looked up.
    ResumeRunning,
    Bound(Jid),
    Closed,
}

pub struct C2sStream {
    policy: Policy,
    phase: Phase,
    secure: bool,
    channel_binding: Option<ChannelBinding>,
    header_sent: bool,
    domain: Option<String>,
    lang: String,
    account: Option<Jid>,
    auth_failures: u32,
    offered: Vec<Mechanism>,
    /// An account was registered in-band on this stream: one is enough
    /// (XEP-0077 §3.1.1 allows refusing a second).
    registered: bool,
    /// An invitation token presented on this stream (XEP-0445).
    preauth: crate::invite::stream::StreamPreauth,
    /// Stanzas received from the client since stream management was
    /// enabled (or the session's count when it was resumed), modulo 2^32;
    /// `None` while stream management is off.
    handled: Option<u32>,
    sasl2: sasl2_flow::Sasl2State,
}

impl C2sStream {
    /// `secure` is true on a direct-TLS listener; `channel_binding` is the
    /// TLS 1.3 exporter value of that connection, if any.
    pub fn new(policy: Policy, secure: bool, channel_binding: Option<ChannelBinding>) -> Self {
        C2sStream {
            policy,
            phase: Phase::AwaitHeader,
            secure,
            channel_binding,
            header_sent: false,
            domain: None,
            lang: "en".to_string(),
            account: None,
            auth_failures: 0,
            offered: Vec::new(),
            registered: false,
            preauth: Default::default(),
            handled: None,
            sasl2: Default::default(),
        }
    }

    /// The stanzas received and handled (XEP-0198's `h`), if stream
    /// management is on.
    pub fn handled(&self) -> Option<u32> {
        self.handled
    }

    /// The account that authenticated on this stream.
    pub fn account(&self) -> Option<&Jid> {
        self.account.as_ref()
    }

    pub fn bound_jid(&self) -> Option<&Jid> {
        match &self.phase {
            Phase::Bound(j) => Some(j),
            _ => None,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.account.is_some()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    pub fn on_header(
        &mut self,
        header: &StreamHeader,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        if !matches!(self.phase, Phase::AwaitHeader) {
            return self.fail(
                StreamError::with_text(StreamCondition::InvalidXml, "unexpected stream header"),
                env,
                out,
                actions,
            );
        }
        if let Some(lang) = header.lang.as_deref().filter(|l| valid_lang(l)) {
            self.lang = lang.to_string();
        }
        let requested = header.to.as_deref().map(normalize_domain);
        match (&requested, &self.domain) {
            (Some(Some(d)), None) if env.is_local_host(d) => self.domain = Some(d.clone()),
            (Some(Some(d)), Some(prev)) if d == prev => {}
            _ => {
                let text = match header.to.as_deref() {
                    None => "the stream header names no host ('to' is missing)".to_string(),
                    Some(to) => format!("this server does not serve '{to}'"),
                };
                return self.fail(
                    StreamError::with_text(StreamCondition::HostUnknown, text),
                    env,
                    out,
                    actions,
                );
            }
        }
        if header.default_ns != NS_CLIENT {
            return self.fail(
                StreamError::with_text(
                    StreamCondition::InvalidNamespace,
                    "the default namespace of a client stream is jabber:client",
                ),
                env,
                out,
                actions,
            );
        }
        let major = header
            .version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.trim().parse::<u32>().ok());
        if major != Some(1) {
            return self.fail(
                StreamError::with_text(
                    StreamCondition::UnsupportedVersion,
                    "XMPP 1.0 streams only (version='1.0')",
                ),
                env,
                out,
                actions,
            );
        }
        self.write_header(env, out.transport());
        self.write_features(out.transport());
        self.phase = if self.account.is_some() {
            Phase::PreBind
        } else {
            Phase::PreAuth
        };
    }

    pub fn on_element(
        &mut self,
        el: Element,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        if el.ns == super::sasl2::NS_SASL2 || self.sasl2.pending.is_some() {
            return self.sasl2_element(el, env, out, actions);
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
        match phase {
            Phase::Closed => {}
            Phase::AwaitHeader
            | Phase::AwaitTls
            | Phase::SaslRunning
            | Phase::BindRunning
            | Phase::ResumeRunning => {
                self.phase = phase;
                self.fail(
                    StreamError::with_text(StreamCondition::NotAuthorized, "unexpected element"),
                    env,
                    out,
                    actions,
                );
            }
            Phase::PreAuth => self.pre_auth(el, env, out, actions),
            Phase::SaslChallenge(session) => {
                if el.is("response", NS_SASL) {
                    match sasl_payload(&el) {
                        Ok(input) => self.start_job(session, input, actions),
                        Err(f) => {
                            self.phase = Phase::PreAuth;
                            self.sasl_failure(f, env, out, actions);
                        }
                    }
                } else if el.is("abort", NS_SASL) {
                    self.phase = Phase::PreAuth;
                    self.sasl_failure(sasl::SaslFailure::Aborted, env, out, actions);
                } else {
                    self.phase = Phase::PreAuth;
                    self.fail(
                        StreamError::with_text(
                            StreamCondition::NotAuthorized,
                            "SASL negotiation in progress",
                        ),
                        env,
                        out,
                        actions,
                    );
                }
            }
            Phase::PreBind => self.pre_bind(el, env, out, actions),
            Phase::Bound(jid) => self.bound(jid, el, env, out, actions),
        }
    }

    /// The peer sent `</stream:stream>`: answer in kind and close.
    pub fn on_stream_close(&mut self, out: &mut dyn StreamOut, actions: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if self.header_sent {
            out.transport().extend_from_slice(b"</stream:stream>");
        }
        self.phase = Phase::Closed;
        actions.push(Action::Close);
    }

    /// Ends the stream with `error` (sending a header first if none was sent).
    pub fn fail(
        &mut self,
        error: StreamError,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if !self.header_sent {
            self.write_header(env, out.transport());
        }
        log::debug!("closing stream: {error}");
        error.write_to(out.transport());
        out.transport().extend_from_slice(b"</stream:stream>");
        self.phase = Phase::Closed;
        actions.push(Action::Close);
    }

    /// The TLS handshake finished; a new stream header is due.
    pub fn tls_established(&mut self, channel_binding: Option<ChannelBinding>) {
        self.secure = true;
        self.channel_binding = channel_binding;
        self.header_sent = false;
        self.phase = Phase::AwaitHeader;
    }

    pub fn sasl_result(
        &mut self,
        session: SaslSession,
        step: Step,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        if !matches!(self.phase, Phase::SaslRunning) {
            return;
        }
        if self.sasl2.pending.is_some() {
            return self.sasl2_result(session, step, env, out, actions);
        }
        match step {
            Step::Challenge(data) => {
                write_sasl_element(out.transport(), "challenge", &data);
                self.phase = Phase::SaslChallenge(session);
            }
            Step::Success {
                username,
                additional_data,
            } => {
                let domain = self.domain.clone().unwrap_or_default();
                match Jid::new(Some(&username), &domain, None) {
                    Ok(account) => {
                        write_sasl_element(out.transport(), "success", &additional_data);
                        // Per-login lines stay out of `info` (see the bind in
                        // `net::connection`); failures are logged there.
                        log::debug!("{account} authenticated");
                        self.account = Some(account);
                        self.header_sent = false;
                        self.phase = Phase::AwaitHeader;
                        actions.push(Action::Restart);
                    }
                    Err(_) => {
                        self.phase = Phase::PreAuth;
                        self.sasl_failure(sasl::SaslFailure::NotAuthorized, env, out, actions);
                    }
                }
            }
            Step::Failure(f) => {
                self.phase = Phase::PreAuth;
                self.sasl_failure(f, env, out, actions);
            }
        }
    }

    /// The login throttle refused the attempt before its password was
    /// checked: `temporary-auth-failure` with when to try again (RFC 6120
    /// §6.5.11: "the client can try again later").
    pub fn sasl_refused(
        &mut self,
        retry_after_secs: u64,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        if !matches!(self.phase, Phase::SaslRunning) {
            return;
        }
        self.phase = Phase::PreAuth;
        let text = format!("Too many failed logins; try again in {retry_after_secs} s.");
        self.sasl_failure_with_text(
            sasl::SaslFailure::TemporaryAuthFailure,
            Some(&text),
            env,
            out,
            actions,
        );
    }

    pub fn bind_result(
        &mut self,
        result: Result<Jid, StanzaError>,
        iq_id: &str,
        out: &mut dyn StreamOut,
    ) {
        if !matches!(self.phase, Phase::BindRunning) {
            return;
        }
        match result {
            Ok(full) => {
                out.stanza_with(&mut |buf| write_bind_result(buf, iq_id, &full));
                self.phase = Phase::Bound(full);
            }
            Err(error) => {
                let reply = Element::new("iq", NS_CLIENT)
                    .with_attr("type", "error")
                    .with_attr("id", iq_id)
                    .with_child(error.to_element());
                out.stanza(&reply);
                self.phase = Phase::PreBind;
            }
        }
    }

    /// The answer to an `Action::SmResume`: the session's full JID and the
    /// count of stanzas it had handled, or the `<failed/>` the connection
    /// wrote (the client may bind a resource instead).
    pub fn resume_result(&mut self, resumed: Option<(Jid, u32)>) {
        if !matches!(self.phase, Phase::ResumeRunning) {
            return;
        }
        match resumed {
            Some((full, handled)) => {
                self.handled = Some(handled);
                self.phase = Phase::Bound(full);
            }
            None => self.phase = Phase::PreBind,
        }
    }

    /// A stream management element: what it asks for, or why it cannot be
    /// done now (before binding, twice, or with stream management off).
    fn sm_element(
        &mut self,
        el: &Element,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        let command = match sm::parse(el) {
            Ok(c) => c,
            Err(bad) => return self.fail(bad.stream_error(), env, out, actions),
        };
        let bound = matches!(self.phase, Phase::Bound(_));
        let authenticated = self.account.is_some();
        match command {
            // §3: not before binding, and once per stream.
            sm::Command::Enable { .. } if !bound || self.handled.is_some() => {
                sm::write_failed(out.transport(), "unexpected-request", None)
            }
            sm::Command::Enable { resume, max } => {
                self.handled = Some(0);
                actions.push(Action::SmEnable { resume, max });
            }
            // §4: after authentication, instead of binding.
            sm::Command::Resume { .. } if bound || !authenticated => {
                sm::write_failed(out.transport(), "unexpected-request", None)
            }
            sm::Command::Resume { previd, h } => {
                self.phase = Phase::ResumeRunning;
                actions.push(Action::SmResume { previd, h });
            }
            sm::Command::Request | sm::Command::Ack(_) if self.handled.is_none() => self.fail(
                StreamError::with_text(
                    StreamCondition::UnsupportedStanzaType,
                    "stream management is not enabled on this stream",
                ),
                env,
                out,
                actions,
            ),
            sm::Command::Request => actions.push(Action::SmRequest),
            sm::Command::Ack(h) => actions.push(Action::SmAck(h)),
        }
    }

    fn pre_auth(
        &mut self,
        el: Element,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        self.phase = Phase::PreAuth;
        if el.is("starttls", NS_TLS) {
            if self.secure || !self.policy.starttls_available {
                Element::new("failure", NS_TLS).write_to(out.transport(), NS_CLIENT);
                out.transport().extend_from_slice(b"</stream:stream>");
                self.phase = Phase::Closed;
                actions.push(Action::Close);
                return;
            }
            Element::new("proceed", NS_TLS).write_to(out.transport(), NS_CLIENT);
            self.phase = Phase::AwaitTls;
            actions.push(Action::StartTls);
        } else if el.is("auth", NS_SASL) {
            if !self.sasl_offered() {
                return self.sasl_failure(sasl::SaslFailure::EncryptionRequired, env, out, actions);
            }
            let mechanism = el
                .attr("mechanism")
                .and_then(Mechanism::from_name)
                .filter(|m| self.offered.contains(m));
            let Some(mechanism) = mechanism else {
                return self.sasl_failure(sasl::SaslFailure::InvalidMechanism, env, out, actions);
            };
            let input = match sasl_payload(&el) {
                Ok(i) => i,
                Err(f) => return self.sasl_failure(f, env, out, actions),
            };
            let session = self.sasl_session(mechanism);
            self.start_job(session, input, actions);
        } else if el.is("abort", NS_SASL) {
            self.sasl_failure(sasl::SaslFailure::Aborted, env, out, actions);
        } else if el.ns == NS_SM {
            self.sm_element(&el, env, out, actions);
        } else if el.is("iq", NS_CLIENT)
            && (el.get_child("query", NS_REGISTER).is_some()
                || crate::invite::stream::is_preauth(&el))
        {
            self.pre_auth_register(el, out, actions);
        } else {
            self.fail(
                StreamError::with_text(
                    StreamCondition::NotAuthorized,
                    "authenticate before sending stanzas",
                ),
                env,
                out,
                actions,
            );
        }
    }

    /// XEP-0077 before authentication: malformed requests and requests
    /// the stream does not allow are answered here, the rest goes to the
    /// connection as `Action::Register`.
    fn pre_auth_register(
        &mut self,
        mut el: Element,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        let ty = el.attr("type");
        let refusal =
            if el.attr("id").is_none_or(str::is_empty) {
                Some(StanzaError::new(Condition::BadRequest).with_text("iq without id"))
            } else if !matches!(ty, Some("get") | Some("set")) || el.children().count() != 1 {
                Some(StanzaError::new(Condition::BadRequest))
            } else if !(self.registration_offered()
                || (self.token_registration_offered() && self.preauth.allows(&el)))
            {
                // §3.1: a host without in-band registration says so.
                Some(
                    StanzaError::new(Condition::ServiceUnavailable)
                        .with_text("this server does not offer in-band registration here"),
                )
            } else if ty == Some("set") && self.registered {
                Some(StanzaError::new(Condition::NotAcceptable).with_text(
                    "an account was registered on this connection already; log in with it",
                ))
            } else {
                None
            };
        match refusal {
            Some(error) => {
                if let Some(mut reply) = stanza::error_reply(&el, &error) {
                    reply.remove_attr("to");
                    out.stanza(&reply);
                }
            }
            None => {
                // An accepted invitation token travels with the iq.
                self.preauth.outgoing(&mut el);
                let domain = self.domain.clone().unwrap_or_default();
                actions.push(Action::Register { iq: el, domain });
            }
        }
    }

    /// The answer to an `Action::Register`; `created` says an account was.
    pub fn register_result(
        &mut self,
        reply: Option<&Element>,
        created: bool,
        out: &mut dyn StreamOut,
    ) {
        if !matches!(self.phase, Phase::PreAuth) {
            return;
        }
        self.registered |= created;
        self.preauth.answered(reply);
        if let Some(reply) = reply {
            out.stanza(reply);
        }
    }

    fn registration_offered(&self) -> bool {
        self.policy.registration && self.token_registration_offered()
    }

    /// Registration with an invitation token (XEP-0445): wherever SASL
    /// PLAIN would be offered, open registration or not.
    fn token_registration_offered(&self) -> bool {
        self.account.is_none() && (self.secure || self.policy.allow_plaintext_auth)
    }

    fn pre_bind(
        &mut self,
        el: Element,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        self.phase = Phase::PreBind;
        if el.ns == NS_SM {
            return self.sm_element(&el, env, out, actions);
        }
        let is_set_iq = el.is("iq", NS_CLIENT) && el.attr("type") == Some("set");
        if let (true, Some(bind)) = (is_set_iq, el.get_child("bind", NS_BIND)) {
            let iq_id = el.attr("id").unwrap_or_default().to_string();
            let resource = bind
                .get_child("resource", NS_BIND)
                .map(|r| r.text().trim().to_string())
                .filter(|r| !r.is_empty());
            let Some(account) = self.account.clone() else {
                return;
            };
            self.phase = Phase::BindRunning;
            actions.push(Action::Bind {
                account,
                resource,
                iq_id,
            });
        } else {
            self.fail(
                StreamError::with_text(
                    StreamCondition::NotAuthorized,
                    "bind a resource before sending stanzas",
                ),
                env,
                out,
                actions,
            );
        }
    }

    fn bound(
        &mut self,
        jid: Jid,
        mut el: Element,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        self.phase = Phase::Bound(jid);
        if el.ns == NS_SM {
            return self.sm_element(&el, env, out, actions);
        }
        if el.ns == NS_CSI && (el.name == "active" || el.name == "inactive") {
            actions.push(Action::Csi {
                active: el.name == "active",
            });
            return;
        }
        let Some(kind) = Kind::of(&el) else {
            let condition = if el.name == "message" || el.name == "presence" || el.name == "iq" {
                StreamCondition::InvalidNamespace
            } else {
                StreamCondition::UnsupportedStanzaType
            };
            return self.fail(
                StreamError::with_text(condition, format!("unexpected <{}/>", el.name)),
                env,
                out,
                actions,
            );
        };
        if el.ns != NS_CLIENT {
            return self.fail(
                StreamError::new(StreamCondition::InvalidNamespace),
                env,
                out,
                actions,
            );
        }
        // Every stanza counts as handled (XEP-0198 §4), whether it is
        // routed, answered here or bounced: the client need not resend it.
        if let Some(h) = &mut self.handled {
            *h = h.wrapping_add(1);
        }
        if kind == Kind::Iq && el.attr("type") == Some("set") {
            if el.get_child("session", NS_SESSION).is_some() {
                // RFC 3921 session establishment: a no-op kept for old clients.
                let mut reply = stanza::iq_result(&el);
                reply.remove_attr("to");
                out.stanza(&reply);
                return;
            }
            if el.get_child("bind", NS_BIND).is_some() {
                let reply = Element::new("iq", NS_CLIENT)
                    .with_attr("type", "error")
                    .with_attr("id", el.attr("id").unwrap_or_default())
                    .with_child(
                        StanzaError::new(Condition::NotAllowed)
                            .with_text("a resource is bound already")
                            .to_element(),
                    );
                out.stanza(&reply);
                return;
            }
        }
        let Phase::Bound(jid) = &self.phase else {
            return;
        };
        match stanza::check_client_stanza(&mut el, kind, jid) {
            Ok(to) => {
                // RFC 6120 §4.7.4: a message keeps the language of the
                // stream it was written in, wherever it is delivered or
                // archived.
                if kind == Kind::Message && el.attr("xml:lang").is_none() {
                    el.set_attr("xml:lang", self.lang.as_str());
                }
                actions.push(Action::Route { stanza: el, to })
            }
            Err(Invalid::Drop) => {}
            Err(Invalid::Reply(error)) => {
                if let Some(mut reply) = stanza::error_reply(&el, &error) {
                    // Bounce straight back: the client's own `to` may be
                    // unparseable, so the reply must not route through it.
                    reply.remove_attr("from");
                    out.stanza(&reply);
                }
            }
        }
    }

    fn start_job(&mut self, session: SaslSession, input: Vec<u8>, actions: &mut Vec<Action>) {
        let mechanism = session.mechanism();
        self.phase = Phase::SaslRunning;
        actions.push(Action::Sasl(SaslJob {
            session,
            mechanism,
            input,
            domain: self.domain.clone().unwrap_or_default(),
        }));
    }

    fn sasl_failure(
        &mut self,
        failure: sasl::SaslFailure,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        self.sasl_failure_with_text(failure, None, env, out, actions);
    }

    fn sasl_failure_with_text(
        &mut self,
        failure: sasl::SaslFailure,
        text: Option<&str>,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        let ns = sasl2_flow::failure_ns(self.sasl2.pending.take().is_some());
        let mut element =
            Element::new("failure", ns).with_child(Element::new(failure.condition(), NS_SASL));
        if let Some(text) = text {
            element.push_child(Element::new("text", ns).with_text(text));
        }
        element.write_to(out.transport(), NS_CLIENT);
        if failure != sasl::SaslFailure::Aborted {
            self.auth_failures += 1;
        }
        if self.auth_failures >= self.policy.max_auth_failures {
            self.fail(
                StreamError::with_text(
                    StreamCondition::PolicyViolation,
                    "too many failed authentication attempts",
                ),
                env,
                out,
                actions,
            );
        }
    }

    /// Sets `offered` to the SASL mechanisms this stream offers now, in
    /// order of preference (none once SASL is no longer offered).
    fn choose_mechanisms(&mut self) {
        self.offered.clear();
        if !self.sasl_offered() {
            return;
        }
        if self.channel_binding.is_some() {
            self.offered.push(Mechanism::ScramSha256Plus);
            self.offered.push(Mechanism::ScramSha1Plus);
        }
        self.offered.push(Mechanism::ScramSha256);
        self.offered.push(Mechanism::ScramSha1);
        if self.secure || self.policy.allow_plaintext_auth {
            self.offered.push(Mechanism::Plain);
        }
    }

    fn sasl_offered(&self) -> bool {
        self.secure || !self.policy.require_encryption
    }

    fn write_header(&mut self, env: &dyn Env, out: &mut Vec<u8>) {
        let id = env.new_stream_id();
        out.extend_from_slice(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"'");
        if let Some(domain) = &self.domain {
            out.extend_from_slice(b" from='");
            crate::xml::escape_attr_into(domain, out);
            out.extend_from_slice(b"'");
        }
        out.extend_from_slice(b" version='1.0' xml:lang='");
        crate::xml::escape_attr_into(&self.lang, out);
        out.extend_from_slice(b"'>");
        self.header_sent = true;
    }

    /// The feature list, written as bytes: every login sends two, and
    /// building them as element trees cost more than sending them. The
    /// test `features_are_the_serialized_elements` pins the bytes to what
    /// the serializer makes of the same elements.
    fn write_features(&mut self, out: &mut Vec<u8>) {
        // Under the stream's own prefix: a client parses
        // `<stream:features>` more reliably than a re-declared default ns.
        out.extend_from_slice(b"<stream:features>");
        if self.account.is_some() {
            for (name, ns) in [
                ("bind", NS_BIND),
                ("session", NS_SESSION),
                ("ver", NS_ROSTERVER),
                ("sub", NS_PRE_APPROVAL),
                ("sm", NS_SM),
                ("csi", NS_CSI),
            ] {
                open_tag(out, name, ns);
                if name == "session" {
                    out.extend_from_slice(b"><optional/></session>");
                } else {
                    out.extend_from_slice(b"/>");
                }
            }
        } else {
            if !self.secure && self.policy.starttls_available {
                open_tag(out, "starttls", NS_TLS);
                if self.policy.require_encryption {
                    out.extend_from_slice(b"><required/></starttls>");
                } else {
                    out.extend_from_slice(b"/>");
                }
            }
            if self.registration_offered() {
                open_tag(out, "register", NS_REGISTER_FEATURE);
                out.extend_from_slice(b"/>");
            }
            if self.token_registration_offered() {
                for ns in crate::invite::TOKEN_FEATURES {
                    open_tag(out, "register", ns);
                    out.extend_from_slice(b"/>");
                }
            }
            self.choose_mechanisms();
            if self.sasl_offered() {
                open_tag(out, "mechanisms", NS_SASL);
                out.push(b'>');
                for m in &self.offered {
                    // Mechanism names are fixed ASCII: nothing to escape.
                    out.extend_from_slice(b"<mechanism>");
                    out.extend_from_slice(m.name().as_bytes());
                    out.extend_from_slice(b"</mechanism>");
                }
                out.extend_from_slice(b"</mechanisms>");
                self.write_sasl2_feature(out);
                if self.channel_binding.is_some() {
                    open_tag(out, "sasl-channel-binding", NS_SASL_CB);
                    out.extend_from_slice(
                        b"><channel-binding type='tls-exporter'/></sasl-channel-binding>",
                    );
                }
            }
        }
        out.extend_from_slice(b"</stream:features>");
    }
}

/// Decodes the base64 content of `<auth/>` or `<response/>`; `=` stands for
/// an empty response (RFC 6120 §6.4.2).
fn sasl_payload(el: &Element) -> Result<Vec<u8>, sasl::SaslFailure> {
    let text = el.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    sasl::base64::decode(text).map_err(|_| sasl::SaslFailure::IncorrectEncoding)
}

fn normalize_domain(raw: &str) -> Option<String> {
    match Jid::parse(raw) {
        Ok(j) if j.local().is_none() && j.resource().is_none() => Some(j.domain().to_string()),
        _ => None,
    }
}

fn valid_lang(lang: &str) -> bool {
    !lang.is_empty()
        && lang.len() <= 35
        && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[path = "c2s_sasl2.rs"]
mod sasl2_flow;
#[path = "c2s_write.rs"]
mod write;
use write::{open_tag, write_bind_result, write_sasl_element};

#[cfg(test)]
mod tests;
