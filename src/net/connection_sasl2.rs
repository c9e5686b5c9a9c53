//! The connection's side of SASL2 (XEP-0388): FAST token logins (XEP-0484)
//! through the login throttle, and a successful authentication's inline
//! requests carried out before `<success/>` is written: the FAST token
//! bookkeeping, a stream management resumption, Bind 2 (XEP-0386) with
//! carbons, client state and stream management.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use smol::Timer;

use crate::jid::Jid;
use crate::log_limit::Repeated;
use crate::login_throttle::Gate;
use crate::sasl::SaslFailure;
use crate::sasl::fast::{self, FastAttempt, TokenRecord};
use crate::store::fast_tokens;
use crate::stream::Action;
use crate::stream::bind2::{self, BindRequest};
use crate::stream::sasl2::{self, Completion, FastJob, FastVerified, Sasl2Action, Success};
use crate::stream::sm;

use super::sm::ResumeReply;
use super::{Connection, REFUSAL_PAUSE, StreamEnv};

const DAY_SECS: u64 = 86_400;

/// Why a FAST login did not pass.
enum FastRefused {
    /// The login throttle refused it before the token was looked at.
    Throttled(Duration),
    Failed(SaslFailure),
}

impl Connection {
    pub(super) async fn sasl2(&mut self, action: Sasl2Action, actions: &mut Vec<Action>) {
        match action {
            Sasl2Action::Fast(job) => {
                // Held by the throttle, the connection waits for the server.
                self.ticket.set_busy(true, Instant::now());
                let result = self.check_fast_token(&job).await;
                self.ticket.set_busy(false, Instant::now());
                let server = self.server.clone();
                let env = StreamEnv { server: &server };
                let (stream, mut out) = self.out();
                match result {
                    Err(FastRefused::Throttled(retry_after)) => {
                        stream.sasl_refused(retry_after.as_secs() + 1, &env, &mut out, actions)
                    }
                    Err(FastRefused::Failed(f)) => {
                        stream.sasl2_fast_result(Err(f), &env, &mut out, actions)
                    }
                    Ok(verified) => stream.sasl2_fast_result(Ok(verified), &env, &mut out, actions),
                }
            }
            Sasl2Action::Complete(done) => self.complete_sasl2(*done, actions).await,
        }
    }

    /// A FAST login: the throttle first (as for a password), then the
    /// client's token record.
    async fn check_fast_token(&self, job: &FastJob) -> Result<FastVerified, FastRefused> {
        let account = Jid::new(Some(&job.response.authcid), &job.domain, None)
            .map_err(|_| FastRefused::Failed(SaslFailure::NotAuthorized))?;
        let gate = self.server.login_throttle().borrow_mut().admit(
            Instant::now(),
            self.peer.ip(),
            account.as_str(),
        );
        let ticket = match gate {
            Gate::Refused { retry_after } => {
                if self.should_log(Repeated::ThrottledLogin) {
                    log::info!(
                        "{}: FAST login refused for {} s (too many failed logins)",
                        self.peer,
                        retry_after.as_secs()
                    );
                }
                Timer::after(REFUSAL_PAUSE).await;
                return Err(FastRefused::Throttled(
                    retry_after.saturating_sub(REFUSAL_PAUSE),
                ));
            }
            Gate::Proceed { wait, ticket } => {
                if !wait.is_zero() {
                    Timer::after(wait).await;
                }
                ticket
            }
        };
        let store = self.server.store();
        let record = match fast_tokens::get(store, account.as_str(), &job.user_agent) {
            Ok(record) => record.unwrap_or_default(),
            Err(e) => {
                // Nobody's fault but the server's: not counted as a failure.
                log::warn!("{}: FAST tokens of {account} unreadable: {e}", self.peer);
                return Err(FastRefused::Failed(SaslFailure::TemporaryAuthFailure));
            }
        };
        let attempt = FastAttempt {
            mechanism: job.mechanism,
            proof: job.response.proof.clone(),
            cb_data: job.cb_data.clone(),
            count: job.count,
        };
        let mut record = record;
        let throttle = self.server.login_throttle();
        match record.verify(&attempt, unix_now()) {
            Ok(verified) => {
                throttle.borrow_mut().succeeded(Instant::now(), ticket);
                if matches!(
                    store.server_notices().is_disabled(account.as_str()),
                    Ok(true)
                ) {
                    log::info!("{}: {account} is disabled; login refused", self.peer);
                    return Err(FastRefused::Failed(SaslFailure::AccountDisabled));
                }
                Ok(FastVerified {
                    username: account.local().unwrap_or_default().to_string(),
                    responder: verified.responder,
                    record,
                    changed: verified.slot == fast::Slot::New || job.count.is_some(),
                })
            }
            Err(refusal) => {
                throttle.borrow_mut().failed(Instant::now(), ticket);
                if self.should_log(Repeated::FailedLogin) {
                    log::info!(
                        "{}: FAST authentication failed ({})",
                        self.peer,
                        refusal.reason()
                    );
                }
                Err(FastRefused::Failed(refusal.failure()))
            }
        }
    }

    /// Carries out what an authenticated `<authenticate/>` asked for, in
    /// the XEP's order (the token, a resumption, else Bind 2), and writes
    /// `<success/>` with the results, then the stream's features.
    async fn complete_sasl2(&mut self, done: Completion, actions: &mut Vec<Action>) {
        let token = self.fast_bookkeeping(&done).await;
        let token = token.as_ref().map(|(t, e)| (t.as_str(), e.as_str()));
        let mut results = Vec::new();
        if let Some((previd, h)) = &done.inline.resume {
            let mut resumed = false;
            let additional_data = &done.additional_data;
            let resume_failed = &mut results;
            self.sm_resume_with(previd, *h, actions, &mut |out, reply| match reply {
                ResumeReply::Failed(handled) => {
                    // XEP-0386: the failure is reported, and Bind 2 goes on.
                    sm::write_failed(resume_failed, "item-not-found", handled)
                }
                ResumeReply::Resumed { handled, jid } => {
                    resumed = true;
                    let mut inner = Vec::new();
                    sm::write_resumed(&mut inner, previd, handled);
                    let success = Success {
                        additional_data,
                        authorization_identifier: jid.as_str(),
                        token,
                        results: &inner,
                    };
                    sasl2::write_success(out, &success);
                    // The features, before the stanzas sent again.
                    sasl2::write_bound_features(out, true);
                }
            });
            if self.stream.is_closed() {
                return;
            }
            if resumed {
                let session = self.session.as_ref();
                let jid = session.map(|s| s.jid.clone());
                let handled = session.and_then(|s| s.sm.borrow().as_ref().map(|sm| sm.handled));
                let (stream, mut out) = self.out();
                return stream.sasl2_completed(jid, handled, &mut out);
            }
        }
        let (bound, handled) = match &done.inline.bind {
            Some(bind) => self.bind2(&done, bind, &mut results),
            None => (None, None),
        };
        let success = Success {
            additional_data: &done.additional_data,
            authorization_identifier: bound.as_ref().unwrap_or(&done.account).as_str(),
            token,
            results: &results,
        };
        sasl2::write_success(&mut self.stream_out, &success);
        if bound.is_some() {
            sasl2::write_bound_features(&mut self.stream_out, handled.is_some());
        }
        let (stream, mut out) = self.out();
        stream.sasl2_completed(bound, handled, &mut out);
    }

    /// Bind 2: a session with the request's resource, its features
    /// switched on, `<bound/>` (with stream management's `<enabled/>`) in
    /// `results`. Returns the full JID and stream management's count, or
    /// nothing if no resource could be bound (the client is authenticated
    /// all the same, and may bind one itself).
    fn bind2(
        &mut self,
        done: &Completion,
        bind: &BindRequest,
        results: &mut Vec<u8>,
    ) -> (Option<Jid>, Option<u32>) {
        let resource = bind2::resource(
            bind.tag.as_deref(),
            done.account.as_str(),
            done.user_agent.as_deref(),
            || self.server.new_id(),
        );
        let full = match self.bind_session(&done.account, Some(&resource)) {
            Ok(full) => full,
            Err(error) => {
                log::debug!("{}: Bind 2 failed: {error:?}", self.peer);
                return (None, None);
            }
        };
        if let Some(session) = &self.session
            && bind.carbons
        {
            session.im.carbons.set(true);
        }
        if let Some(active) = bind.active {
            self.csi(active);
        }
        let mut bound = Vec::new();
        let mut handled = None;
        if let Some((resume, max)) = bind.sm_enable {
            // `sm_enable` writes `<enabled/>` to the stream: here it goes
            // into `<bound/>`.
            let stream_out = std::mem::take(&mut self.stream_out);
            self.sm_enable(resume, max);
            bound = std::mem::replace(&mut self.stream_out, stream_out);
            handled = Some(0);
        }
        bind2::write_bound(results, &bound);
        (Some(full), handled)
    }

    /// FAST after a successful login: the used token's record updated, a
    /// new token issued when asked for or due (on disk before the client
    /// is told), every token of the client dropped on `invalidate`.
    /// Returns the new token and its expiry (XEP-0082).
    async fn fast_bookkeeping(&self, done: &Completion) -> Option<(String, String)> {
        let user_agent = done.user_agent.as_deref()?;
        let lifetime = u64::from(self.server.config().c2s.fast_token_days) * DAY_SECS;
        let now = unix_now();
        let bare = done.account.as_str();
        let store = self.server.store();
        let invalidate = done.inline.fast.is_some_and(|f| f.invalidate);
        let mut record = match &done.fast {
            Some(verified) => verified.record.clone(),
            None if done.request_token.is_some() => {
                match fast_tokens::get(store, bare, user_agent) {
                    Ok(r) => r.unwrap_or_default(),
                    Err(e) => {
                        log::warn!("{}: FAST tokens of {bare} unreadable: {e}", self.peer);
                        return None;
                    }
                }
            }
            None => return None,
        };
        if invalidate {
            record = TokenRecord::default();
        }
        let rotate = !invalidate && done.fast.is_some() && record.rotation_due(now, lifetime);
        let mechanism = done.request_token.or_else(|| {
            rotate
                .then(|| record.current.as_ref().map(|t| t.mechanism))
                .flatten()
        });
        let issued = match mechanism {
            Some(mechanism) if lifetime > 0 => {
                let token = fast::new_token()?;
                record.prune(now);
                record.issue(fast::token_key(&token), mechanism, now + lifetime);
                Some(token)
            }
            _ => None,
        };
        let changed = invalidate || done.fast.as_ref().is_some_and(|f| f.changed);
        if issued.is_none() && !changed {
            return None;
        }
        // On disk before the client is told: a new token it will use, and
        // the older token's end once the newer one was used (a replay of
        // it on the next connection must already fail).
        if let Err(e) = store
            .write(fast_tokens::put_op(bare, user_agent, &record))
            .await
        {
            log::warn!("{}: FAST tokens of {bare} not stored: {e}", self.peer);
            return None;
        }
        let token = issued?;
        let expiry = SystemTime::UNIX_EPOCH + Duration::from_secs(now + lifetime);
        Some((token, crate::datetime::format_utc(expiry, false)))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
