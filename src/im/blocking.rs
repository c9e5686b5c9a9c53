//! The Blocking Command (XEP-0191): a per-account list of blocked JIDs,
//! the iqs that read and change it, and the two filters the router applies
//! (stanzas the user sends to, and receives from, a blocked JID).

use crate::config::BlockedStanzas;
use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::{self, Condition, ErrorType, Kind, StanzaError};
use crate::store;
use crate::xml::{Element, NS_CLIENT};

pub use super::blocklist::Blocklist;
use super::broadcast;

pub const NS_BLOCKING: &str = "urn:xmpp:blocking";
pub const NS_BLOCKING_ERRORS: &str = "urn:xmpp:blocking:errors";

/// What a blocking iq asks for, parsed and checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Get,
    Block(Vec<Jid>),
    Unblock(Vec<Jid>),
    UnblockAll,
}

pub fn parse(iq: &Element) -> Result<Command, StanzaError> {
    let Some(payload) = iq.first_child().filter(|p| p.ns == NS_BLOCKING) else {
        return Err(StanzaError::new(Condition::BadRequest));
    };
    let items = || -> Result<Vec<Jid>, StanzaError> {
        let mut jids = Vec::new();
        for item in payload.children().filter(|c| c.is("item", NS_BLOCKING)) {
            let raw = item.attr("jid").ok_or_else(|| {
                StanzaError::new(Condition::BadRequest).with_text("an item has no jid")
            })?;
            let jid = Jid::parse(raw)
                .map_err(|e| StanzaError::new(Condition::JidMalformed).with_text(e.to_string()))?;
            if !jids.contains(&jid) {
                jids.push(jid);
            }
        }
        Ok(jids)
    };
    match (iq.attr("type"), payload.name.as_ref()) {
        (Some("get"), "blocklist") => Ok(Command::Get),
        (Some("set"), "block") => {
            let jids = items()?;
            if jids.is_empty() {
                return Err(StanzaError::new(Condition::BadRequest)
                    .with_text("a block command names at least one JID"));
            }
            Ok(Command::Block(jids))
        }
        (Some("set"), "unblock") => {
            let jids = items()?;
            if jids.is_empty() {
                Ok(Command::UnblockAll)
            } else {
                Ok(Command::Unblock(jids))
            }
        }
        _ => Err(StanzaError::new(Condition::BadRequest)),
    }
}

/// A blocking iq to the account `owner`; only its own resources may use it.
pub fn handle_iq(env: &Env, iq: &Element, owner: &Jid) -> Result<(), StanzaError> {
    let from = iq.attr("from").and_then(|f| Jid::parse(f).ok());
    if from.as_ref().map(Jid::to_bare).as_ref() != Some(owner) {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    let command = parse(iq)?;
    let state = env.account(owner).map_err(|e| {
        log::error!("blocklist of {owner}: {e}");
        StanzaError::new(Condition::InternalServerError)
    })?;
    if command == Command::Get {
        if let Some(session) = from.as_ref().and_then(|f| env.session(f)) {
            session.im.blocklist_interested.set(true);
        }
        let mut list = Element::new("blocklist", NS_BLOCKING);
        for jid in state.blocklist.borrow().iter() {
            list.push_child(Element::new("item", NS_BLOCKING).with_attr("jid", jid));
        }
        env.reply_to_sender(stanza::iq_result(iq).with_child(list));
        return Ok(());
    }
    // Apply, store, answer, push; then the presence consequences.
    let (push, blocked, unblocked): (Element, Vec<Jid>, Vec<Jid>) = {
        let mut list = state.blocklist.borrow_mut();
        match &command {
            Command::Block(jids) => {
                let fresh: Vec<Jid> = jids.iter().filter(|j| !list.contains(j)).cloned().collect();
                if list.len() + fresh.len() > env.config.im.blocklist_max_items {
                    return Err(StanzaError::new(Condition::NotAllowed).with_text(format!(
                        "the blocklist is full ({} JIDs)",
                        env.config.im.blocklist_max_items
                    )));
                }
                for jid in &fresh {
                    list.insert(jid);
                }
                let names = fresh.iter().map(Jid::to_string).collect();
                env.persist_for(
                    &state,
                    store::blocking::update_op(owner.as_str(), names, vec![], false),
                );
                (items_element("block", jids), fresh, vec![])
            }
            Command::Unblock(jids) => {
                let gone: Vec<Jid> = jids.iter().filter(|j| list.remove(j)).cloned().collect();
                let names = gone.iter().map(Jid::to_string).collect();
                env.persist_for(
                    &state,
                    store::blocking::update_op(owner.as_str(), vec![], names, false),
                );
                (items_element("unblock", jids), vec![], gone)
            }
            Command::UnblockAll => {
                let gone: Vec<Jid> = list
                    .clear()
                    .iter()
                    .filter_map(|j| Jid::parse(j).ok())
                    .collect();
                env.persist_for(
                    &state,
                    store::blocking::update_op(owner.as_str(), vec![], vec![], true),
                );
                (Element::new("unblock", NS_BLOCKING), vec![], gone)
            }
            Command::Get => return Ok(()),
        }
    };
    env.reply_to_sender(stanza::iq_result(iq));
    for session in env.sessions_of(owner) {
        if session.im.blocklist_interested.get() {
            let iq = Element::new("iq", NS_CLIENT)
                .with_attr("type", "set")
                .with_attr("id", env.new_id())
                .with_attr("to", session.jid.as_str())
                .with_child(push.clone());
            session.send(&iq);
        }
    }
    presence_after_block(env, owner, &blocked);
    presence_after_unblock(env, owner, &unblocked);
    Ok(())
}

fn items_element(name: &'static str, jids: &[Jid]) -> Element {
    let mut el = Element::new(name, NS_BLOCKING);
    for jid in jids {
        el.push_child(Element::new("item", NS_BLOCKING).with_attr("jid", jid.as_str()));
    }
    el
}

/// §3.3: a newly blocked JID that could see the user's presence (a
/// subscriber, or a target of directed presence) is told the user is
/// unavailable, and directed presence to it is forgotten.
fn presence_after_block(env: &Env, owner: &Jid, blocked: &[Jid]) {
    if blocked.is_empty() {
        return;
    }
    let subscribers = subscribers_with_from(env, owner);
    for contact in subscribers {
        if blocked.iter().any(|b| Blocklist::entry_covers(b, &contact)) {
            broadcast::unavailable_to(env, owner, &contact);
        }
    }
    for session in env.sessions_of(owner) {
        let targets: Vec<Jid> = {
            let mut directed = session.directed.borrow_mut();
            let (hit, keep): (Vec<Jid>, Vec<Jid>) = directed
                .drain(..)
                .partition(|t| blocked.iter().any(|b| Blocklist::entry_covers(b, t)));
            *directed = keep;
            hit
        };
        for target in targets {
            let unavailable = Element::new("presence", NS_CLIENT)
                .with_attr("from", session.jid.as_str())
                .with_attr("to", target.as_str())
                .with_attr("type", "unavailable");
            env.deliver(unavailable, &target);
        }
    }
}

/// §3.5: subscribers no longer blocked get the user's current presence.
fn presence_after_unblock(env: &Env, owner: &Jid, unblocked: &[Jid]) {
    if unblocked.is_empty() {
        return;
    }
    for contact in broadcast::subscribers(env, owner) {
        if unblocked
            .iter()
            .any(|u| Blocklist::entry_covers(u, &contact))
        {
            broadcast::presence_to(env, owner, &contact);
        }
    }
}

/// Subscribers including blocked ones (`broadcast::subscribers` leaves
/// those out).
fn subscribers_with_from(env: &Env, owner: &Jid) -> Vec<Jid> {
    env.account(owner)
        .map(|state| {
            state
                .roster
                .borrow()
                .items()
                .filter(|i| i.subscription.has_from())
                .map(|i| i.jid.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Stanzas between an account and its own server or its own resources are
/// never blocked (§5: a user cannot block itself).
fn exempt(user: &Jid, other: &Jid) -> bool {
    other.bare_str() == user.bare_str()
        || (other.local().is_none()
            && other.resource().is_none()
            && other.domain() == user.domain())
}

/// Outbound check (§3.4): a stanza `origin` sends to a JID it blocked is
/// not routed; the sender gets `not-acceptable` with `<blocked/>`. Returns
/// true when the stanza was stopped.
pub fn stop_outbound(env: &Env, origin: &Session, stanza: &Element, to: &Jid) -> bool {
    let user = origin.jid.to_bare();
    if exempt(&user, to) {
        return false;
    }
    let blocked = env
        .account(&user)
        .is_ok_and(|state| state.blocklist.borrow().blocks(to));
    if !blocked {
        return false;
    }
    let is_iq_answer = Kind::of(stanza) == Some(Kind::Iq)
        && matches!(stanza.attr("type"), Some("result") | Some("error"));
    if !is_iq_answer {
        // Type 'cancel' as in XEP-0191's example: retrying will not help.
        let error = StanzaError::new(Condition::NotAcceptable)
            .with_type(ErrorType::Cancel)
            .with_text("You have blocked this JID");
        if let Some(mut reply) = stanza::error_reply(stanza, &error) {
            if let Some(el) = reply.get_child_mut("error", NS_CLIENT) {
                el.push_child(Element::new("blocked", NS_BLOCKING_ERRORS));
            }
            origin.send(&reply);
        }
    }
    true
}

/// Inbound check (§3.4): a stanza for the local account `user` from a JID
/// it blocked is not delivered. Presence is dropped silently; messages and
/// iq requests get `service-unavailable` (or nothing, as configured), so
/// the user looks offline. Returns true when the stanza was stopped.
pub fn stop_inbound(env: &Env, stanza: &Element, user: &Jid) -> bool {
    let Some(from) = stanza.attr("from") else {
        return false;
    };
    let Ok(state) = env.account(user) else {
        return false;
    };
    let blocklist = state.blocklist.borrow();
    // Most blocklists are empty: then the sender's address need not be parsed.
    if blocklist.is_empty() {
        return false;
    }
    let Ok(from) = Jid::parse(from) else {
        return false;
    };
    if exempt(user, &from) || !blocklist.blocks(&from) {
        return false;
    }
    drop(blocklist);
    let answer = match Kind::of(stanza) {
        Some(Kind::Message) => true,
        Some(Kind::Iq) => matches!(stanza.attr("type"), Some("get") | Some("set")),
        Some(Kind::Presence) | None => false,
    };
    if answer && env.config.im.blocked_stanzas == BlockedStanzas::Bounce {
        let mut error_source = stanza.clone();
        // The error comes from the account, not from a resource of it.
        error_source.set_attr("to", user.as_str());
        env.bounce(
            &error_source,
            StanzaError::new(Condition::ServiceUnavailable),
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    #[test]
    fn matching_order_of_xep_0016() {
        let list = Blocklist::from_stored(vec![
            "romeo@example.net/orchard".into(),
            "tybalt@example.com".into(),
            "example.org/bot".into(),
            "evil.example".into(),
        ]);
        assert!(list.blocks(&jid("romeo@example.net/orchard")));
        assert!(!list.blocks(&jid("romeo@example.net/balcony")));
        assert!(!list.blocks(&jid("romeo@example.net")));
        assert!(list.blocks(&jid("tybalt@example.com")));
        assert!(list.blocks(&jid("tybalt@example.com/sword")));
        assert!(list.blocks(&jid("example.org/bot")));
        assert!(!list.blocks(&jid("someone@example.org/bot")));
        assert!(list.blocks(&jid("evil.example")));
        assert!(list.blocks(&jid("anyone@evil.example/x")));
        assert!(!list.blocks(&jid("juliet@example.com")));
        assert!(Blocklist::default().is_empty());
    }

    fn iq(xml: &str) -> Element {
        Element::parse(xml).expect("parse")
    }

    #[test]
    fn commands() {
        assert_eq!(
            parse(&iq(
                "<iq xmlns='jabber:client' type='get'><blocklist xmlns='urn:xmpp:blocking'/></iq>"
            )),
            Ok(Command::Get)
        );
        assert_eq!(
            parse(&iq(
                "<iq xmlns='jabber:client' type='set'><block xmlns='urn:xmpp:blocking'><item jid='A@b'/><item jid='a@b'/></block></iq>"
            )),
            Ok(Command::Block(vec![jid("a@b")]))
        );
        assert_eq!(
            parse(&iq(
                "<iq xmlns='jabber:client' type='set'><unblock xmlns='urn:xmpp:blocking'/></iq>"
            )),
            Ok(Command::UnblockAll)
        );
        let err = |xml: &str| parse(&iq(xml)).map_err(|e| e.condition);
        assert_eq!(
            err("<iq xmlns='jabber:client' type='set'><block xmlns='urn:xmpp:blocking'/></iq>"),
            Err(Condition::BadRequest)
        );
        assert_eq!(
            err(
                "<iq xmlns='jabber:client' type='set'><block xmlns='urn:xmpp:blocking'><item jid='a@@b'/></block></iq>"
            ),
            Err(Condition::JidMalformed)
        );
        assert_eq!(
            err(
                "<iq xmlns='jabber:client' type='get'><block xmlns='urn:xmpp:blocking'><item jid='a@b'/></block></iq>"
            ),
            Err(Condition::BadRequest)
        );
    }

    #[test]
    fn own_account_and_server_are_exempt() {
        let user = jid("romeo@example.net");
        assert!(exempt(&user, &jid("romeo@example.net/phone")));
        assert!(exempt(&user, &jid("example.net")));
        assert!(!exempt(&user, &jid("juliet@example.net")));
        assert!(!exempt(&user, &jid("example.com")));
    }
}
