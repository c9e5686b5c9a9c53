//! Presence the server distributes for its users (RFC 6121 §4): initial
//! presence with probes, later updates, unavailable presence, and the
//! copies of a user's current presence that subscription and blocking
//! changes call for.

use std::rc::Rc;
use std::time::SystemTime;

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::xml::{Element, NS_CLIENT};

use super::{delay, offline};

/// Bare JIDs that receive the user's presence: contacts with a
/// subscription 'from' or 'both' whom the user has not blocked.
pub fn subscribers(env: &Env, user: &Jid) -> Vec<Jid> {
    contacts_where(env, user, |item| item.subscription.has_from())
}

/// Contacts whose presence the user receives ('to' or 'both'), unblocked.
pub fn publishers(env: &Env, user: &Jid) -> Vec<Jid> {
    contacts_where(env, user, |item| item.subscription.has_to())
}

fn contacts_where(
    env: &Env,
    user: &Jid,
    keep: impl Fn(&super::roster::RosterItem) -> bool,
) -> Vec<Jid> {
    let state = match env.account(user) {
        Ok(state) => state,
        Err(e) => {
            log::error!("roster of {user}: {e}");
            return Vec::new();
        }
    };
    let roster = state.roster.borrow();
    let blocklist = state.blocklist.borrow();
    roster
        .items()
        .filter(|item| keep(item) && !blocklist.blocks(&item.jid))
        .map(|item| item.jid.clone())
        .collect()
}

/// Whether `user` has blocked `contact` (XEP-0191: no presence either way).
/// Whether the local account `user` has blocked `contact` (XEP-0191).
pub fn blocks(env: &Env, user: &Jid, contact: &Jid) -> bool {
    env.account(user)
        .is_ok_and(|state| state.blocklist.borrow().blocks(contact))
}

fn parse_priority(stanza: &Element) -> i8 {
    stanza
        .get_child("priority", NS_CLIENT)
        .and_then(|p| p.text().trim().parse::<i8>().ok())
        .unwrap_or(0)
}

/// Available presence from a client, without `to` (§4.2 initial presence,
/// §4.4 updates).
pub fn available(env: &Env, origin: &Rc<Session>, mut stanza: Element) {
    let user = origin.jid.to_bare();
    let initial = !origin.is_available();
    origin.priority.set(parse_priority(&stanza));
    *origin.presence.borrow_mut() = Some(stanza.clone());
    origin.im.presence_since.set(Some(env.now()));

    // The account's own resources first (the sender's echo confirms the
    // change before anything contacts' servers do in response arrives).
    to_own_resources(env, origin, &mut stanza);
    for contact in subscribers(env, &user) {
        stanza.set_attr("to", contact.as_str());
        env.deliver(stanza.clone(), &contact);
    }
    if initial {
        for contact in publishers(env, &user) {
            probe(env, &user, &contact);
        }
        // The new resource learns about its siblings (§4.2.2).
        for other in env.sessions_of(&user) {
            if other.id != origin.id
                && let Some(copy) = current_presence(&other, &origin.jid)
            {
                origin.send(&copy);
            }
        }
        redeliver_requests(env, origin, &user);
    }
    if origin.priority.get() >= 0 {
        offline::deliver_stored(env, origin);
    }
    if initial {
        crate::adhoc::motd::after_initial_presence(env, origin);
    }
}

/// Unavailable presence from a client, without `to` (§4.5).
pub fn unavailable(env: &Env, origin: &Rc<Session>, mut stanza: Element) {
    let was_available = origin.presence.borrow_mut().take().is_some();
    origin.im.presence_since.set(None);
    let mut reached = Vec::new();
    if was_available {
        for contact in subscribers(env, &origin.jid.to_bare()) {
            stanza.set_attr("to", contact.as_str());
            env.deliver(stanza.clone(), &contact);
            reached.push(contact);
        }
    }
    unavailable_to_directed(env, origin, &stanza, &reached);
    to_own_resources(env, origin, &mut stanza);
}

/// The session ended without unavailable presence (stream closed or
/// connection lost): everyone who could see it learns it is gone.
pub fn session_gone(env: &Env, session: &Session) {
    // A newer session that took over this full JID (RFC 6120 §7.7.2.2)
    // and is available speaks for the resource now: an unavailable
    // presence from the old one would contradict it.
    let replaced_by_available = env
        .session(&session.jid)
        .is_some_and(|s| s.id != session.id && s.is_available());
    if replaced_by_available {
        session.presence.borrow_mut().take();
        session.directed.borrow_mut().clear();
        return;
    }
    let unavailable = Element::new("presence", NS_CLIENT)
        .with_attr("from", session.jid.as_str())
        .with_attr("type", "unavailable");
    let mut reached = Vec::new();
    if session.presence.borrow_mut().take().is_some() {
        session.im.presence_since.set(None);
        for contact in subscribers(env, &session.jid.to_bare()) {
            env.deliver(
                unavailable.clone().with_attr("to", contact.as_str()),
                &contact,
            );
            reached.push(contact);
        }
        for other in env.sessions_of(&session.jid.to_bare()) {
            if other.id != session.id && other.is_available() {
                other.send(&unavailable.clone().with_attr("to", other.jid.as_str()));
            }
        }
    }
    unavailable_to_directed(env, session, &unavailable, &reached);
}

/// The account's own resources see every presence change: the sender
/// itself (as confirmation) and the other available ones (§4.2.2, §4.4.2).
fn to_own_resources(env: &Env, origin: &Session, stanza: &mut Element) {
    for session in env.sessions_of(&origin.jid.to_bare()) {
        if session.id == origin.id || session.is_available() {
            stanza.set_attr("to", session.jid.as_str());
            session.send(stanza);
        }
    }
}

/// Everyone who got directed available presence from the session and has
/// not been told otherwise learns it is unavailable (§4.6.3). `reached`
/// holds those who got the broadcast already.
fn unavailable_to_directed(env: &Env, session: &Session, template: &Element, reached: &[Jid]) {
    let targets = std::mem::take(&mut *session.directed.borrow_mut());
    for target in targets {
        if reached.contains(&target) {
            continue;
        }
        let mut unavailable = Element::new("presence", NS_CLIENT)
            .with_attr("from", session.jid.as_str())
            .with_attr("to", target.as_str())
            .with_attr("type", "unavailable");
        if let Some(status) = template.get_child("status", NS_CLIENT) {
            unavailable.push_child(status.clone());
        }
        env.deliver(unavailable, &target);
    }
}

/// A copy of `session`'s current presence for `to`, stamped with when it
/// was set (XEP-0203), or `None` if the session is not available.
pub fn current_presence(session: &Session, to: &Jid) -> Option<Element> {
    let mut copy = session.presence.borrow().clone()?;
    copy.set_attr("from", session.jid.as_str());
    copy.set_attr("to", to.as_str());
    copy.remove_child("delay", delay::NS_DELAY);
    let since = session
        .im
        .presence_since
        .get()
        .unwrap_or_else(SystemTime::now);
    copy.push_child(delay::element(session.jid.domain(), since, None));
    Some(copy)
}

/// Sends `contact` the current presence of each of the user's available
/// resources (a new subscriber, an unblocked contact).
pub fn presence_to(env: &Env, user: &Jid, contact: &Jid) {
    if blocks(env, user, contact) {
        return;
    }
    for session in env.sessions_of(user) {
        if let Some(copy) = current_presence(&session, contact) {
            env.deliver(copy, contact);
        }
    }
}

/// Tells `contact` that each of the user's available resources is gone
/// (a revoked subscription, a removed or blocked contact).
pub fn unavailable_to(env: &Env, user: &Jid, contact: &Jid) {
    for session in env.sessions_of(user) {
        if session.is_available() {
            let unavailable = Element::new("presence", NS_CLIENT)
                .with_attr("from", session.jid.as_str())
                .with_attr("to", contact.as_str())
                .with_attr("type", "unavailable");
            env.deliver(unavailable, contact);
        }
    }
}

/// Asks `contact`'s server for its current presence on the user's behalf
/// (§4.3.1: from the user's bare JID).
pub fn probe(env: &Env, user: &Jid, contact: &Jid) {
    if blocks(env, user, contact) {
        return;
    }
    let probe = Element::new("presence", NS_CLIENT)
        .with_attr("from", user.as_str())
        .with_attr("to", contact.as_str())
        .with_attr("type", "probe");
    env.deliver(probe, contact);
}

/// Subscription requests that arrived while the user was offline, or that
/// it has not answered yet, go to each newly available resource
/// (§3.1.3) until answered.
fn redeliver_requests(env: &Env, origin: &Session, user: &Jid) {
    let requests: Vec<Element> = match env.account(user) {
        Ok(state) => state
            .roster
            .borrow()
            .pending_in()
            .map(|(_, r)| r.clone())
            .collect(),
        Err(e) => {
            log::error!("roster of {user}: {e}");
            return;
        }
    };
    for request in requests {
        origin.send(&request);
    }
}
