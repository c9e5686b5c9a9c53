//! The connection's login step: a SASL exchange passed through the login
//! throttle, with PLAIN's key derivation off the event loop.

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

    /// Whether to log this occurrence of a line the client can repeat at
    /// will (`log_limit`).
    pub(super) fn should_log(&self, event: Repeated) -> bool {
        self.server
            .log_limit()
            .borrow_mut()
            .should_log(Instant::now(), event, self.peer.ip())
    }
}
