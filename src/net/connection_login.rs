//! The connection's login step: a SASL exchange passed through the login
//! throttle, with PLAIN's key derivation off the event loop, and the
//! resource binding that ends it.

use std::time::Instant;

use smol::Timer;

use crate::log_limit::Repeated;
use crate::login_throttle::Gate;
use crate::sasl::Mechanism;

use super::{Connection, REFUSAL_PAUSE, SaslOutcome};

impl Connection {
    /// One SASL step: PLAIN through `password_work` (it runs PBKDF2), SCRAM
    /// here (stored keys, no key derivation). A step that checks a password
    /// passes the login throttle first (`login_throttle`): it may wait, or
    /// be refused without a check; its answer then goes out at once.
    pub(super) async fn sasl_step(&self, job: crate::stream::c2s::SaslJob) -> SaslOutcome {
        let reader = self.server.store().accounts().reader(&job.domain);
        let mut session = job.session;
        let input = job.input;
        // The throttle decides before the password is looked at, so the
        // time to the answer does not depend on whether it was right.
        let at_stake = session
            .account_at_stake(&input)
            .map(|user| format!("{user}@{}", job.domain));
        let mut ticket = None;
        if let Some(account) = &at_stake {
            let gate = self.server.login_throttle().borrow_mut().admit(
                Instant::now(),
                self.peer.ip(),
                account,
            );
            match gate {
                Gate::Refused { retry_after } => {
                    if self.should_log(Repeated::ThrottledLogin) {
                        log::info!(
                            "{}: login refused for {} s (too many failed logins)",
                            self.peer,
                            retry_after.as_secs()
                        );
                    }
                    Timer::after(REFUSAL_PAUSE).await;
                    return SaslOutcome::Refused {
                        retry_after: retry_after.saturating_sub(REFUSAL_PAUSE),
                    };
                }
                Gate::Proceed { wait, ticket: t } => {
                    if !wait.is_zero() {
                        Timer::after(wait).await;
                    }
                    ticket = Some(t);
                }
            }
        }
        let (session, step) = if job.mechanism == Mechanism::Plain {
            // PLAIN costs a PBKDF2 run: keep it off the loop.
            crate::password_work::run(move || {
                let step = session.step(&input, &reader);
                (session, step)
            })
            .await
        } else {
            let step = session.step(&input, &reader);
            (session, step)
        };
        let step = self.refuse_if_disabled(step, &job.domain);
        match &step {
            crate::sasl::Step::Failure(f) => {
                if let Some(ticket) = ticket {
                    self.server
                        .login_throttle()
                        .borrow_mut()
                        .failed(Instant::now(), ticket);
                }
                if self.should_log(Repeated::FailedLogin) {
                    log::info!("{}: authentication failed ({})", self.peer, f.condition());
                }
            }
            crate::sasl::Step::Success { .. } => {
                if let Some(ticket) = ticket {
                    self.server
                        .login_throttle()
                        .borrow_mut()
                        .succeeded(Instant::now(), ticket);
                }
            }
            crate::sasl::Step::Challenge(_) => {}
        }
        SaslOutcome::Checked(session, step)
    }

    /// A disabled account (XEP-0133 `disable-user`, `perch user disable`)
    /// authenticates but may not log in: RFC 6120 §6.5.1 `account-disabled`.
    fn refuse_if_disabled(&self, step: crate::sasl::Step, domain: &str) -> crate::sasl::Step {
        let crate::sasl::Step::Success { username, .. } = &step else {
            return step;
        };
        let Ok(account) = crate::jid::Jid::new(Some(username), domain, None) else {
            return step;
        };
        match self
            .server
            .store()
            .server_notices()
            .is_disabled(account.as_str())
        {
            Ok(false) => step,
            Ok(true) => {
                log::info!("{}: {account} is disabled; login refused", self.peer);
                crate::sasl::Step::Failure(crate::sasl::SaslFailure::AccountDisabled)
            }
            Err(e) => {
                log::error!("reading whether {account} is disabled: {e}");
                crate::sasl::Step::Failure(crate::sasl::SaslFailure::TemporaryAuthFailure)
            }
        }
    }

    /// Binds a resource of `account` to this connection (RFC 6120 §7, or
    /// Bind 2): the session it starts is carried by this connection.
    pub(super) fn bind_session(
        &mut self,
        account: &crate::jid::Jid,
        resource: Option<&str>,
    ) -> Result<crate::jid::Jid, crate::stanza::StanzaError> {
        let session = self.server.bind(account, resource, self.outbox.clone())?;
        let jid = session.jid.clone();
        // Per-login lines stay out of `info`: at thousands of logins a
        // second they would be most of the server's work and of its log.
        log::debug!("{}: bound {jid}", self.peer);
        let carrier = crate::session::Carrier::new();
        session.carry(carrier.clone());
        *session.csi.borrow_mut() =
            crate::stream::csi::CsiState::new(self.server.config().c2s.csi_max_held as usize);
        self.carrier = Some(carrier);
        self.session = Some(session);
        self.auth_deadline = None;
        self.server.connection_authenticated(&self.ticket);
        Ok(jid)
    }

    /// Whether to log this occurrence of a line the client can repeat at
    /// will (`log_limit`).
    pub(super) fn should_log(&self, event: Repeated) -> bool {
        self.server
            .log_limit()
            .borrow_mut()
            .should_log(Instant::now(), event, self.peer.ip())
    }
}
