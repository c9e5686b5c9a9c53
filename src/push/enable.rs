//! The owner's `<enable/>` and `<disable/>` (XEP-0357 §5, §6): the
//! registrations change in memory and on disk, and the result leaves once
//! the change is durable (the client was told it is stored).

use std::time::UNIX_EPOCH;

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{self, Condition, StanzaError};
use crate::store;
use crate::xml::Element;

use super::command::{self, Command};
use super::state::{Registration, upsert};

/// Answers a push request `iq` (its payload is in the push namespace)
/// addressed to `account`.
pub fn handle(env: &Env, iq: &Element, payload: &Element, account: &Jid) {
    let outcome = if !from_owner(iq, account) {
        Err(StanzaError::new(Condition::Forbidden)
            .with_text("only the account's own clients may enable or disable its push services"))
    } else {
        match command::parse(iq.attr("type").unwrap_or_default(), payload) {
            Ok(command) => apply(env, account, command),
            Err(bad) => Err(bad.to_stanza_error()),
        }
    };
    let reply = match outcome {
        Ok(()) => Some(stanza::iq_result(iq)),
        Err(error) => stanza::error_reply(iq, &error),
    };
    if let Some(reply) = reply {
        env.reply_to_sender(reply);
    }
}

fn from_owner(iq: &Element, account: &Jid) -> bool {
    iq.attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .is_some_and(|f| f.to_bare() == *account)
}

fn apply(env: &Env, account: &Jid, command: Command) -> Result<(), StanzaError> {
    let internal = |e: store::StoreError| {
        log::error!("push registrations of {account}: {e}");
        StanzaError::new(Condition::InternalServerError)
    };
    let max = env.config.push.max_registrations_per_account;
    let enabled_at = env
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let changes = env
        .push
        .with(env.store, account, |list| match command {
            Command::Enable { app, node, options } => {
                let new = Registration::new(app, node, options, enabled_at);
                let put = new.to_stored();
                let gone = upsert(list, new, max);
                Change {
                    put: Some(put),
                    gone,
                }
            }
            Command::Disable { app, node } => {
                let mut gone = Vec::new();
                let mut kept = Vec::with_capacity(list.len());
                for r in list.drain(..) {
                    let matches = r.app == app && node.as_deref().is_none_or(|n| r.node == n);
                    if matches { gone.push(r) } else { kept.push(r) }
                }
                *list = kept;
                Change { put: None, gone }
            }
        })
        .map_err(internal)?;
    for r in &changes.gone {
        env.push.forget_awaited(r.delivery.in_flight_ids());
        if changes.put.is_some() {
            log::debug!(
                "push: {account} has more than {max} registrations; the oldest ({} node {}) is replaced",
                r.app,
                r.node
            );
        }
        let op =
            store::push::delete_op(account.as_str(), r.app.as_str(), &r.node).map_err(internal)?;
        env.push.wrote(account, env.persist(op));
    }
    if let Some(put) = &changes.put {
        let op = store::push::put_op(account.as_str(), put).map_err(internal)?;
        env.push.wrote(account, env.persist(op));
    }
    Ok(())
}

/// What a request changed: the registration to store, and those removed.
struct Change {
    put: Option<store::push::StoredRegistration>,
    gone: Vec<Registration>,
}
