//! The c2s stream's side of SASL2 (XEP-0388) with Bind 2 and FAST: the
//! feature it offers, `<authenticate/>` checked against that offer, the
//! exchange in the SASL2 namespace, and the state once the connection
//! has carried out what was asked inline. The elements themselves are
//! `sasl2.rs`'s; SASL1 stays in `c2s.rs`, which hands every element of
//! the SASL2 namespace (and every element during a SASL2 exchange) here.

use crate::jid::Jid;
use crate::sasl::fast::{self, HtMechanism};
use crate::sasl::{SaslFailure, SaslSession, Step};
use crate::xml::Element;

use super::super::StreamOut;
use super::super::error::{StreamCondition, StreamError};
use super::super::sasl2::{
    self, Authenticate, Completion, FastJob, FastVerified, Inline, NS_SASL2, Sasl2Action,
};
use super::{Action, C2sStream, Env, Mechanism, Phase};

/// The namespace of a `<failure/>`: SASL2's during a SASL2 exchange (its
/// condition stays in SASL's, XEP-0388 §2.6.2).
pub(super) fn failure_ns(sasl2: bool) -> &'static str {
    if sasl2 {
        NS_SASL2
    } else {
        super::super::NS_SASL
    }
}

/// The SASL2 part of a stream's state.
#[derive(Debug, Default)]
pub(super) struct Sasl2State {
    /// FAST tokens are issued and accepted (`[c2s] fast_token_days`).
    fast: bool,
    /// The `<authenticate/>` being worked on; its inline requests wait for
    /// the outcome. While it is set, failures are written as SASL2's.
    pub(super) pending: Option<Box<Pending>>,
}

#[derive(Debug, Default)]
pub(super) struct Pending {
    user_agent: Option<String>,
    inline: Inline,
    request_token: Option<HtMechanism>,
}

impl C2sStream {
    /// Lets this stream offer FAST (XEP-0484) tokens.
    pub fn with_fast(mut self, enabled: bool) -> Self {
        self.sasl2.fast = enabled;
        self
    }

    /// The FAST mechanisms this stream offers: on an encrypted stream (or
    /// where the test policy allows plaintext logins), `-EXPR` with
    /// channel binding data.
    fn fast_offered(&self) -> Vec<HtMechanism> {
        if !self.sasl2.fast || !(self.secure || self.policy.allow_plaintext_auth) {
            return Vec::new();
        }
        HtMechanism::offered(self.channel_binding.is_some()).collect()
    }

    /// The `<authentication/>` feature, next to SASL1's `<mechanisms/>`.
    pub(super) fn write_sasl2_feature(&self, out: &mut Vec<u8>) {
        if !self.offered.is_empty() {
            sasl2::write_feature(out, &self.offered, &self.fast_offered());
        }
    }

    /// An element of the SASL2 namespace, or any element while a SASL2
    /// exchange runs (XEP-0388 §2.4: nothing else may be sent then).
    pub(super) fn sasl2_element(
        &mut self,
        el: Element,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        let phase = std::mem::replace(&mut self.phase, Phase::PreAuth);
        match phase {
            Phase::PreAuth if el.is("authenticate", NS_SASL2) => {
                self.authenticate(&el, env, out, actions)
            }
            Phase::SaslChallenge(session) if el.is("response", NS_SASL2) => {
                match sasl2::decode_payload(&el) {
                    Ok(input) => self.start_job(session, input, actions),
                    Err(refused) => self.sasl2_refuse(refused, env, out, actions),
                }
            }
            Phase::SaslChallenge(_) if el.is("abort", NS_SASL2) => {
                self.sasl_failure(SaslFailure::Aborted, env, out, actions)
            }
            other => {
                self.phase = other;
                let text = if self.sasl2.pending.is_some() {
                    "only <response/> or <abort/> may be sent during SASL2 authentication"
                        .to_string()
                } else {
                    format!("unexpected <{}/> of SASL2 (XEP-0388)", el.name)
                };
                self.fail(
                    StreamError::with_text(StreamCondition::PolicyViolation, text),
                    env,
                    out,
                    actions,
                );
            }
        }
    }

    fn sasl2_refuse(
        &mut self,
        refused: sasl2::Refused,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        self.phase = Phase::PreAuth;
        self.sasl2.pending.get_or_insert_with(Box::default);
        self.sasl_failure_with_text(refused.failure, Some(&refused.text), env, out, actions);
    }

    /// `<authenticate/>`: its inline requests checked against the offer,
    /// then a SASL step or a FAST token check.
    fn authenticate(
        &mut self,
        el: &Element,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        self.sasl2.pending = Some(Box::default());
        if !self.sasl_offered() {
            return self.sasl_failure(SaslFailure::EncryptionRequired, env, out, actions);
        }
        let request = match sasl2::parse_authenticate(el) {
            Ok(r) => r,
            Err(refused) => return self.sasl2_refuse(refused, env, out, actions),
        };
        match self.start_sasl2(request) {
            Ok(action) => {
                self.phase = Phase::SaslRunning;
                actions.push(action);
            }
            Err(refused) => self.sasl2_refuse(refused, env, out, actions),
        }
    }

    fn start_sasl2(&mut self, request: Authenticate) -> Result<Action, sasl2::Refused> {
        let malformed = |text: &str| sasl2::Refused {
            failure: SaslFailure::MalformedRequest,
            text: text.to_string(),
        };
        let fast_offered = self.fast_offered();
        let user_agent = request.user_agent.and_then(|ua| ua.id);
        let request_token = match &request.inline.request_token {
            None => None,
            Some(name) => {
                let mechanism = HtMechanism::from_name(name)
                    .filter(|m| fast_offered.contains(m))
                    .ok_or_else(|| {
                        malformed("FAST tokens for that mechanism are not offered here")
                    })?;
                // A token is bound to the client's installation
                // (<user-agent id='…'/>). A client that names none still
                // logs in, without a token: xmpp.js asks for one whether
                // or not it was given an id, and refusing the login would
                // lock such clients out.
                user_agent.as_ref().map(|_| mechanism)
            }
        };
        let ht = HtMechanism::from_name(&request.mechanism).filter(|m| fast_offered.contains(m));
        let fast_use = request.inline.fast;
        self.sasl2.pending = Some(Box::new(Pending {
            user_agent: user_agent.clone(),
            inline: request.inline,
            request_token,
        }));
        let domain = self.domain.clone().unwrap_or_default();
        if let Some(mechanism) = ht {
            let Some(user_agent) = user_agent else {
                return Err(malformed(
                    "a FAST login names its client with <user-agent id='…'/>; it is missing",
                ));
            };
            let response = request
                .initial_response
                .as_deref()
                .and_then(fast::parse_response)
                .ok_or_else(|| malformed("an HT initial response is authcid NUL HMAC"))?;
            let cb_data = match (mechanism.binds_channel(), &self.channel_binding) {
                (false, _) => Vec::new(),
                (true, Some(cb)) => cb.data.clone(),
                (true, None) => return Err(malformed("no channel binding data on this stream")),
            };
            return Ok(Action::Sasl2(Box::new(Sasl2Action::Fast(FastJob {
                mechanism,
                response,
                cb_data,
                count: fast_use.and_then(|f| f.count),
                domain,
                user_agent,
            }))));
        }
        if fast_use.is_some() {
            return Err(malformed("<fast/> goes with a FAST mechanism (HT-*)"));
        }
        let Some(mechanism) =
            Mechanism::from_name(&request.mechanism).filter(|m| self.offered.contains(m))
        else {
            return Err(sasl2::Refused {
                failure: SaslFailure::InvalidMechanism,
                text: format!("{} is not offered here", request.mechanism),
            });
        };
        Ok(Action::Sasl(super::SaslJob {
            session: self.sasl_session(mechanism),
            mechanism,
            input: request.initial_response.unwrap_or_default(),
            domain,
        }))
    }

    /// A SASL exchange with `mechanism` as this stream offers it, for both
    /// profiles: channel binding data for `-PLUS` (a client's "y" flag is a
    /// downgrade when `-PLUS` was offered), and XEP-0474's downgrade
    /// protection over the advertised mechanisms and channel binding type
    /// (SASL1's `<mechanisms/>` and SASL2's list are the same).
    pub(super) fn sasl_session(&self, mechanism: Mechanism) -> SaslSession {
        let plus_offered = self.offered.iter().any(|m| m.is_plus());
        let cb = mechanism
            .is_plus()
            .then(|| self.channel_binding.clone())
            .flatten();
        let cb_types: &[&str] = match &self.channel_binding {
            Some(cb) => &[cb.kind],
            None => &[],
        };
        SaslSession::start(mechanism, cb, plus_offered)
            .with_downgrade_protection(&self.offered, cb_types)
    }

    /// A SASL step's result during a SASL2 exchange.
    pub(super) fn sasl2_result(
        &mut self,
        session: SaslSession,
        step: Step,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        match step {
            Step::Challenge(data) => {
                sasl2::write_challenge(out.transport(), &data);
                self.phase = Phase::SaslChallenge(session);
            }
            Step::Success {
                username,
                additional_data,
            } => self.sasl2_authenticated(&username, additional_data, None, env, out, actions),
            Step::Failure(f) => {
                self.phase = Phase::PreAuth;
                self.sasl_failure(f, env, out, actions);
            }
        }
    }

    /// The answer to `Sasl2Action::Fast`: the verified login, or why not.
    pub fn sasl2_fast_result(
        &mut self,
        result: Result<FastVerified, SaslFailure>,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        if !matches!(self.phase, Phase::SaslRunning) || self.sasl2.pending.is_none() {
            return;
        }
        match result {
            Ok(verified) => {
                let username = verified.username.clone();
                let responder = verified.responder.clone();
                self.sasl2_authenticated(&username, responder, Some(verified), env, out, actions)
            }
            Err(failure) => {
                self.phase = Phase::PreAuth;
                self.sasl_failure(failure, env, out, actions);
            }
        }
    }

    fn sasl2_authenticated(
        &mut self,
        username: &str,
        additional_data: Vec<u8>,
        fast: Option<FastVerified>,
        env: &dyn Env,
        out: &mut dyn StreamOut,
        actions: &mut Vec<Action>,
    ) {
        let domain = self.domain.clone().unwrap_or_default();
        let Ok(account) = Jid::new(Some(username), &domain, None) else {
            self.phase = Phase::PreAuth;
            return self.sasl_failure(SaslFailure::NotAuthorized, env, out, actions);
        };
        let pending = self.sasl2.pending.take().unwrap_or_default();
        log::debug!("{account} authenticated (SASL2)");
        self.account = Some(account.clone());
        // Binding (Bind 2) or resuming: no input is read until it is done.
        self.phase = Phase::BindRunning;
        actions.push(Action::Sasl2(Box::new(Sasl2Action::Complete(Box::new(
            Completion {
                account,
                additional_data,
                user_agent: pending.user_agent,
                inline: pending.inline,
                request_token: pending.request_token,
                fast,
            },
        )))));
    }

    /// The connection wrote `<success/>`: the stream goes on without a
    /// restart, bound (Bind 2 or a resumption: the connection wrote the
    /// features of a bound stream after `<success/>`, see
    /// `sasl2::write_bound_features`; `handled` is stream management's
    /// count) or ready for a legacy bind, whose features follow here
    /// (XEP-0388 §2.6.1).
    pub fn sasl2_completed(
        &mut self,
        bound: Option<Jid>,
        handled: Option<u32>,
        out: &mut dyn StreamOut,
    ) {
        if !matches!(self.phase, Phase::BindRunning) {
            return;
        }
        self.handled = handled;
        match bound {
            None => {
                self.phase = Phase::PreBind;
                self.write_features(out.transport());
            }
            Some(full) => self.phase = Phase::Bound(full),
        }
    }

    /// The `<authentication/>` feature built as elements, for the test
    /// that pins `write_features` to the serializer.
    #[cfg(test)]
    pub(super) fn reference_sasl2_feature(&self) -> Element {
        use super::super::bind2::{NS_BIND2, NS_CARBONS};
        use super::super::sasl2::NS_FAST;
        use super::super::{NS_CSI, sm::NS_SM};
        let mechanism = |name: &str| Element::new("mechanism", NS_SASL2).with_text(name);
        let mut feature = Element::new("authentication", NS_SASL2);
        for m in &self.offered {
            feature.push_child(mechanism(m.name()));
        }
        let mut bind_inline = Element::new("inline", NS_BIND2);
        for var in [NS_CARBONS, NS_CSI, NS_SM] {
            bind_inline.push_child(Element::new("feature", NS_BIND2).with_attr("var", var));
        }
        let mut inline = Element::new("inline", NS_SASL2)
            .with_child(Element::new("bind", NS_BIND2).with_child(bind_inline))
            .with_child(Element::new("sm", NS_SM));
        let fast = self.fast_offered();
        if !fast.is_empty() {
            let mut el = Element::new("fast", NS_FAST);
            for m in fast {
                el.push_child(Element::new("mechanism", NS_FAST).with_text(m.name()));
            }
            inline.push_child(el);
        }
        feature.with_child(inline)
    }
}

#[cfg(test)]
#[path = "c2s_sasl2_tests.rs"]
mod tests;
