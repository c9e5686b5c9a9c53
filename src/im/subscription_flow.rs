//! Presence subscriptions end to end (RFC 6121 §3): the state machine of
//! `subscription` applied to the user's roster for what the user sends
//! (outbound) and to a local user's roster for what a contact sends
//! (inbound), with the roster pushes, stored requests, routing and presence
//! that each transition calls for.

use std::rc::Rc;

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::{Condition, StanzaError};
use crate::xml::{Element, NS_CLIENT};

use super::broadcast;
use super::roster_iq::{self, push, save};
use super::subscription::{self, InboundAction, Request};

/// A kept request beyond this size loses its payload (status, nickname…):
/// requests from many strangers must not fill the memory and the disk.
pub const MAX_KEPT_REQUEST_BYTES: usize = 16 * 1024;

/// The request as it will be stored and re-delivered (RFC 6121 §3.1.3
/// asks for the whole stanza; an oversized one keeps its envelope only).
pub fn kept_request(stanza: &Element) -> Element {
    if stanza.to_bytes("").len() <= MAX_KEPT_REQUEST_BYTES {
        return stanza.clone();
    }
    let mut envelope = stanza.clone();
    envelope.children.clear();
    envelope
}

/// A subscription stanza from a local user's client to `to`.
pub fn outbound(env: &Env, origin: &Rc<Session>, mut stanza: Element, to: &Jid, request: Request) {
    let user = origin.jid.to_bare();
    let contact = to.to_bare();
    if contact == user {
        return env.bounce(
            &stanza,
            StanzaError::new(Condition::NotAllowed)
                .with_text("an account is always subscribed to itself"),
        );
    }
    let state = match env.account(&user) {
        Ok(state) => state,
        Err(e) => {
            log::error!("roster of {user}: {e}");
            return env.bounce(&stanza, StanzaError::new(Condition::InternalServerError));
        }
    };
    let (before, outcome, changes) = {
        let mut roster = state.roster.borrow_mut();
        let before = roster.state(&contact);
        let outcome = subscription::outbound(before, request);
        let new_item = roster.item(&contact).is_none()
            && (outcome.next.pending_out
                || outcome.next.approved
                || outcome.next.subscription.has_from());
        if new_item && roster.len() >= env.config.im.roster_max_items {
            drop(roster);
            return env.bounce(&stanza, roster_iq::roster_full(env));
        }
        let changes = roster.apply_state(&contact, outcome.next, None);
        save(env, &state, &user, &roster, &changes);
        (before, outcome, changes)
    };
    push(env, &user, &changes);
    let next = outcome.next;
    if outcome.route {
        // §3.1.2: subscription stanzas travel between bare JIDs.
        stanza.set_attr("from", user.as_str());
        stanza.set_attr("to", contact.as_str());
        env.deliver(stanza, &contact);
    }
    match request {
        Request::Subscribed if !before.subscription.has_from() && next.subscription.has_from() => {
            // §3.1.5: the new subscriber gets the user's presence.
            broadcast::presence_to(env, &user, &contact);
            // Now subscribed both ways, perhaps: refresh the contact's
            // presence for the user's clients too.
            if next.subscription.has_to() {
                broadcast::probe(env, &user, &contact);
            }
        }
        Request::Unsubscribed
            if before.subscription.has_from() && !next.subscription.has_from() =>
        {
            // §3.2.2: the contact stops seeing the user.
            broadcast::unavailable_to(env, &user, &contact);
        }
        _ => {}
    }
}

/// A subscription stanza from a contact to the local account `user`.
pub fn inbound(env: &Env, stanza: Element, user: &Jid, request: Request) {
    let Some(contact) = stanza
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .map(|f| f.to_bare())
    else {
        return;
    };
    if contact == *user {
        return;
    }
    let state = match env.account(user) {
        Ok(state) => state,
        Err(e) => return log::error!("roster of {user}: {e}"),
    };
    let (before, result, changes) = {
        let mut roster = state.roster.borrow_mut();
        let before = roster.state(&contact);
        let result = subscription::inbound(before, request);
        if result.action == InboundAction::Ignore {
            return;
        }
        let new_request = result.next.pending_in && !before.pending_in;
        if new_request && roster.pending_in_count() >= env.config.im.roster_max_items {
            // Not kept: the requester must know, and why (at most one
            // answer per request, so a flood of them is no log flood).
            drop(roster);
            return env.bounce(&stanza, too_many_requests(env, user));
        }
        let request_copy = new_request.then(|| kept_request(&stanza));
        let changes = roster.apply_state(&contact, result.next, request_copy);
        save(env, &state, user, &roster, &changes);
        (before, result, changes)
    };
    let next = result.next;
    match result.action {
        InboundAction::Deliver => {
            // The stanza first, then the roster push it caused (the order
            // Prosody keeps, which clients' tests expect).
            for session in env.sessions_of(user) {
                if session.is_available() {
                    session.send(&stanza);
                }
            }
            push(env, user, &changes);
            match request {
                // Until the user answers, the contact sees the user as
                // offline: say so now rather than leave it guessing (this
                // is what Prosody does; RFC 6121 neither asks nor forbids).
                Request::Subscribe => {
                    let unavailable = Element::new("presence", NS_CLIENT)
                        .with_attr("from", user.as_str())
                        .with_attr("to", contact.as_str())
                        .with_attr("type", "unavailable");
                    env.deliver(unavailable, &contact);
                }
                // §3.3.3: the contact no longer receives the user's presence.
                Request::Unsubscribe if before.subscription.has_from() => {
                    broadcast::unavailable_to(env, user, &contact);
                }
                _ => {}
            }
        }
        InboundAction::AutoApprove => {
            push(env, user, &changes);
            // §3.1.3: subscribed already, or pre-approved (§3.4).
            roster_iq::send_request(env, user, &contact, Request::Subscribed);
            if next.subscription.has_from() {
                broadcast::presence_to(env, user, &contact);
            }
        }
        InboundAction::Ignore => push(env, user, &changes),
    }
}

/// The answer to a subscription request `user` has no room for: it keeps
/// at most `[im] roster_max_items` unanswered ones; "wait", as answering
/// some makes room.
fn too_many_requests(env: &Env, user: &Jid) -> StanzaError {
    StanzaError::new(Condition::ResourceConstraint).with_text(format!(
        "{user} already has {} unanswered subscription requests, the most it keeps",
        env.config.im.roster_max_items
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_requests_keep_their_envelope() {
        let small = Element::parse(
            "<presence xmlns='jabber:client' type='subscribe' from='a@b' id='x'><status>hi</status></presence>",
        )
        .expect("parse");
        assert_eq!(kept_request(&small), small);
        let big = small
            .clone()
            .with_child(Element::new("x", "urn:x").with_text("y".repeat(MAX_KEPT_REQUEST_BYTES)));
        let kept = kept_request(&big);
        assert_eq!(kept.attr("id"), Some("x"));
        assert_eq!(kept.attr("from"), Some("a@b"));
        assert!(kept.children.is_empty());
    }
}
