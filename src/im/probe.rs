//! Answering presence probes for a local user (RFC 6121 §4.3.2).

use crate::env::Env;
use crate::jid::Jid;
use crate::xml::{Element, NS_CLIENT};

use super::broadcast;

/// A probe for `user` from someone: subscribers get the current presence of
/// each available resource, stamped with when it was set; so does an entity
/// the user sent directed presence to (from that resource). Anyone else is
/// told "unsubscribed", so that a contact whose roster wrongly shows a
/// subscription gets it corrected. With no resource available nothing is
/// sent (allowed by §4.3.2).
pub fn answer(env: &Env, probe: &Element, user: &Jid) {
    let Some(prober) = probe.attr("from").and_then(|f| Jid::parse(f).ok()) else {
        return;
    };
    let prober_bare = prober.to_bare();
    if prober_bare == *user {
        return;
    }
    let subscribed = match env.account(user) {
        Ok(state) => state
            .roster
            .borrow()
            .item(&prober_bare)
            .is_some_and(|item| item.subscription.has_from()),
        Err(e) => return log::error!("roster of {user}: {e}"),
    };
    let sessions = env.sessions_of(user);
    if subscribed {
        for session in &sessions {
            if let Some(copy) = broadcast::current_presence(session, &prober) {
                env.deliver(copy, &prober);
            }
        }
        return;
    }
    let mut answered = false;
    for session in &sessions {
        let directed = session
            .directed
            .borrow()
            .iter()
            .any(|target| *target == prober || *target == prober_bare);
        if directed && let Some(copy) = broadcast::current_presence(session, &prober) {
            env.deliver(copy, &prober);
            answered = true;
        }
    }
    if !answered {
        let unsubscribed = Element::new("presence", NS_CLIENT)
            .with_attr("from", user.as_str())
            .with_attr("to", prober_bare.as_str())
            .with_attr("type", "unsubscribed");
        env.deliver(unsubscribed, &prober_bare);
    }
}
