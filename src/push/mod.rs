//! Push notifications (XEP-0357): a phone app whose connection sleeps
//! registers its app server with `<enable/>`; when a message arrives that
//! nobody would see until the phone wakes (every session of the account
//! is asleep in stream management, or there is none), the server
//! publishes a notification to that app server, which wakes the phone
//! through its vendor's push service.
//!
//! - `command`: the `<enable/>`/`<disable/>` requests, parsed;
//! - `trigger`: which messages deserve a notification, and what it may tell;
//! - `notification`: the pubsub publish that carries it;
//! - `state`: registrations in memory, coalescing, answers awaited;
//! - `enable` and `notify`: the glue to the environment (store, router);
//! - `sweep`: what the clock makes due (a coalescing window that ends
//!   with messages held, an answer that does not come), run every
//!   [`SWEEP_INTERVAL`] by the server.
//!
//! Registrations are stored per account (`store::push`) and survive
//! restarts; an app server that answers an error, or does not answer in
//! `[push] answer_timeout_secs`, is disabled.

pub mod command;
mod enable;
pub mod notification;
mod notify;
#[cfg(test)]
mod notify_tests;
pub mod state;
mod sweep;
pub mod trigger;

pub use notify::{answer, is_hibernated, message_queued, message_stored};
pub use state::PushState;
pub use sweep::{SWEEP_INTERVAL, sweep};

use crate::env::Env;
use crate::jid::Jid;
use crate::xml::Element;

pub const NS_PUSH: &str = "urn:xmpp:push:0";

/// Handles `iq` to `account`'s bare JID if it is a push request; false
/// otherwise.
pub fn handle_iq(env: &Env, iq: &Element, account: &Jid) -> bool {
    match iq.first_child() {
        Some(payload) if command::is_push(payload) => {
            enable::handle(env, iq, payload, account);
            true
        }
        _ => false,
    }
}
