//! Delivery to local accounts (RFC 6121 §8.5): to a full JID, a bare JID,
//! an account that does not exist (or was deleted), a resource that is
//! gone, and the offline and priority rules of messages.

use std::rc::Rc;

use crate::archive;
use crate::env::Env;
use crate::im;
use crate::jid::Jid;
use crate::pubsub;
use crate::push;
use crate::session::Session;
use crate::stanza::{Condition, Kind, StanzaError};
use crate::xml::Element;

/// A stanza to an address with a localpart on one of the user hosts.
pub(super) fn to_user(env: &Env, stanza: Element, to: &Jid) {
    let kind = Kind::of(&stanza);
    let bare = to.to_bare();
    // Online accounts (the common case) are known without a store read.
    if !env.has_open_session(&bare) && !env.account_exists(&bare) {
        if im::tombstones::to_deleted_account(env, &stanza, &bare) {
            return;
        }
        // RFC 6121 §8.5.1: no such user.
        match kind {
            Some(Kind::Presence) => im::presence::to_missing_account(env, &stanza, &bare),
            _ => env.bounce(&stanza, StanzaError::new(Condition::ServiceUnavailable)),
        }
        return;
    }
    if im::blocking::stop_inbound(env, &stanza, &bare) {
        return;
    }
    if kind == Some(Kind::Presence) && im::presence::is_for_account(&stanza) {
        // Subscription stanzas and probes concern the account, whatever
        // resource they name (RFC 6121 §3, §4.3).
        return im::presence::to_bare(env, stanza, &bare);
    }
    let mut stanza = stanza;
    if kind == Some(Kind::Message) {
        archive::chat::received(env, &mut stanza, &bare);
    }
    if to.resource().is_some() {
        if let Some(session) = env.session(to) {
            session.send(&stanza);
            if kind == Some(Kind::Message) {
                im::carbons::copy_received(env, &stanza, &bare, &[session.id]);
                push::message_queued(env, &stanza, &session);
            }
            return;
        }
        // RFC 6121 §8.5.3.2: no such resource.
        match kind {
            Some(Kind::Message) => match stanza.attr("type") {
                Some("error") => {}
                Some("groupchat") => {
                    env.bounce(&stanza, StanzaError::new(Condition::ServiceUnavailable))
                }
                // RFC 6121 §8.5.3.2.1: a headline for a gone resource is
                // silently dropped.
                Some("headline") => {}
                _ => to_bare_account(env, stanza, &bare),
            },
            Some(Kind::Presence) => im::presence::to_unavailable_resource(env, stanza, to),
            Some(Kind::Iq) => {
                if matches!(stanza.attr("type"), Some("get") | Some("set")) {
                    env.bounce(&stanza, StanzaError::new(Condition::ServiceUnavailable));
                }
            }
            None => {}
        }
        return;
    }
    to_bare_account(env, stanza, &bare);
}

/// RFC 6121 §8.5.2: a stanza addressed to an existing account's bare JID.
fn to_bare_account(env: &Env, stanza: Element, bare: &Jid) {
    match Kind::of(&stanza) {
        Some(Kind::Message) => message_to_bare(env, stanza, bare),
        Some(Kind::Presence) => {
            pubsub::pep::presence_received(env, &stanza, bare);
            im::presence::to_bare(env, stanza, bare)
        }
        Some(Kind::Iq) => iq_to_bare(env, stanza, bare),
        None => {}
    }
}

/// An iq to an account's bare JID: the server answers for the account
/// (RFC 6121 §8.5.2.1.3), with the archive and PEP services at that
/// address.
fn iq_to_bare(env: &Env, iq: Element, bare: &Jid) {
    if push::answer(env, &iq, bare) {
        return;
    }
    let Some(payload) = iq.first_child() else {
        return im::account::handle(env, iq, bare);
    };
    if archive::page::is_mam(payload) {
        return archive::account::handle(env, iq, bare);
    }
    if payload.name == "pubsub"
        && (payload.ns == pubsub::NS_PUBSUB || payload.ns == pubsub::NS_PUBSUB_OWNER)
    {
        return pubsub::pep::handle_iq(env, iq, bare);
    }
    if pubsub::pep::caps_answer(env, &iq, bare) {
        return;
    }
    if payload.is("query", pubsub::NS_DISCO_ITEMS) && iq.attr("type") == Some("get") {
        let answer = match im::reply::requester(&iq) {
            Some(requester) => {
                pubsub::pep::disco_items(env, bare, &requester, payload.attr("node"))
            }
            None => return,
        };
        return im::reply::answer(env, &iq, answer.map(Some));
    }
    if pubsub::sync::legacy_get(env, &iq, bare) {
        return;
    }
    if let Some(follow) = pubsub::sync::Follow::of_account_iq(env, &iq, bare) {
        im::account::handle(env, iq, bare);
        return follow.run(env, bare);
    }
    im::account::handle(env, iq, bare)
}

fn message_to_bare(env: &Env, stanza: Element, bare: &Jid) {
    let ty = stanza.attr("type").unwrap_or("normal");
    if ty == "error" {
        return;
    }
    if ty == "groupchat" {
        return env.bounce(&stanza, StanzaError::new(Condition::ServiceUnavailable));
    }
    let available: Vec<Rc<Session>> = env
        .sessions_of(bare)
        .into_iter()
        .filter(|s| s.is_available() && s.priority.get() >= 0)
        .collect();
    if available.is_empty() {
        im::carbons::copy_received(env, &stanza, bare, &[]);
        push::message_stored(env, &stanza, bare);
        return im::offline::no_resource_available(env, stanza, bare);
    }
    let mut delivered = Vec::with_capacity(available.len());
    if ty == "headline" {
        for s in &available {
            s.send(&stanza);
            delivered.push(s.id);
        }
    } else {
        // chat and normal go to the highest-priority resources only.
        let top = available
            .iter()
            .map(|s| s.priority.get())
            .max()
            .unwrap_or(0);
        for s in available.iter().filter(|s| s.priority.get() == top) {
            s.send(&stanza);
            delivered.push(s.id);
        }
    }
    im::carbons::copy_received(env, &stanza, bare, &delivered);
    if let Some(first) = available.first() {
        push::message_queued(env, &stanza, first);
    }
}
