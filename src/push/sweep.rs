//! What the clock makes due, without waiting for the next message: an app
//! server that let a notification go unanswered for `[push]
//! answer_timeout_secs` is disabled, as after an error; messages held
//! (coalescing, or too many notifications awaiting answers) are told in
//! one notification once they may be. The server runs [`sweep`] every
//! [`SWEEP_INTERVAL`] while [`crate::push::PushState::has_work`]; the
//! decisions are the state's ([`crate::push::state::PushState::due`]).

use std::time::{Duration, Instant};

use crate::env::Env;

use super::notify::{self, disable, nobody_awake, publish, send};
use super::state::{Target, Timing};

/// How often the server looks for due work: the resolution of the
/// coalescing window and of the answer timeout, both whole seconds.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Acts on what is due now.
pub fn sweep(env: &Env) {
    sweep_at(env, env.clock());
}

/// [`sweep`] with the clock read as `now` (tests move it).
pub(super) fn sweep_at(env: &Env, now: Instant) {
    let timing = Timing::of(&env.config.push);
    let due = env.push.due(now, timing);
    for target in &due.timed_out {
        give_up(env, target, now, timing);
    }
    for target in &due.flushes {
        flush(env, target, now, timing);
    }
}

/// Disables `target`, whose app server has not answered in time: the
/// same path as an error answer.
fn give_up(env: &Env, target: &Target, now: Instant, timing: Timing) {
    let Target { account, app, node } = target;
    let removed = env.push.with(env.store, account, |list| {
        let at = list
            .iter()
            .position(|r| r.is(app, node) && r.delivery.overdue(now, timing.answer_timeout))?;
        Some(list.remove(at))
    });
    match removed {
        Ok(Some(gone)) => disable(env, account, gone, &notify::timed_out(timing)),
        Ok(None) => {}
        Err(e) => log::error!("push registrations of {account}: {e}"),
    }
}

/// Sends the notification for `target`'s held messages, unless a client
/// of the account woke meanwhile: it sees them itself, and they are
/// forgotten.
fn flush(env: &Env, target: &Target, now: Instant, timing: Timing) {
    let Target { account, app, node } = target;
    let tell = nobody_awake(env, account);
    let built = env.push.with(env.store, account, |list| {
        let r = list.iter_mut().find(|r| r.is(app, node))?;
        r.delivery.due(now, timing.coalesce)?;
        let (message_count, summary) = r.delivery.take_held();
        tell.then(|| publish(env, account, r, message_count, &summary, now))
    });
    match built {
        Ok(Some(outgoing)) => send(env, account, vec![outgoing]),
        Ok(None) => {}
        Err(e) => log::error!("push registrations of {account}: {e}"),
    }
}
