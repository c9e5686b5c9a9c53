//! Presence the server distributes (RFC 6121 §4). Without rosters yet, a
//! user's presence reaches the user's own resources and directed targets.

use std::rc::Rc;

use crate::jid::Jid;
use crate::server::Server;
use crate::session::Session;
use crate::xml::{Element, NS_CLIENT};

/// A presence without `to`: the client announces its own availability.
pub fn broadcast_own(server: &Server, origin: &Rc<Session>, mut stanza: Element) {
    match stanza.attr("type") {
        None => {
            let priority = stanza
                .get_child("priority", NS_CLIENT)
                .and_then(|p| p.text().trim().parse::<i8>().ok())
                .unwrap_or(0);
            origin.priority.set(priority);
            *origin.presence.borrow_mut() = Some(stanza.clone());
        }
        Some("unavailable") => {
            *origin.presence.borrow_mut() = None;
            send_unavailable_to_directed(server, origin, &stanza);
        }
        // Subscription management needs rosters; probes are the server's.
        Some(_) => return,
    }
    // RFC 6121 §4.2.2 / §4.5.2: every available resource of the account,
    // the sender included, learns the new state.
    for session in server.sessions_of(&origin.jid.to_bare()) {
        if session.id == origin.id || session.is_available() {
            stanza.set_attr("to", session.jid.as_str());
            session.send(&stanza);
        }
    }
}

pub const NS_VCARD_UPDATE: &str = "vcard-temp:x:update";

/// XEP-0153: available presence tells contacts (and chat rooms) which
/// vCard avatar the user has. Accounts here have no vCard avatar, so a
/// presence whose client said nothing gets the "no avatar" hint (an empty
/// `<photo/>`), as servers commonly add; a client's own hint is kept.
pub fn add_avatar_hint(stanza: &mut Element) {
    if stanza.attr("type").is_some() || stanza.get_child("x", NS_VCARD_UPDATE).is_some() {
        return;
    }
    stanza.push_child(
        Element::new("x", NS_VCARD_UPDATE).with_child(Element::new("photo", NS_VCARD_UPDATE)),
    );
}

/// Records (or forgets) a directed presence so that going offline later
/// reaches its target too (RFC 6121 §4.6.3).
pub fn track_directed(origin: &Session, stanza: &Element, to: &Jid) {
    let mut directed = origin.directed.borrow_mut();
    match stanza.attr("type") {
        None if !directed.contains(to) => directed.push(to.clone()),
        Some("unavailable") => directed.retain(|j| j != to),
        _ => {}
    }
}

/// Every entity that got directed presence learns that the session is now
/// unavailable; the list is cleared.
fn send_unavailable_to_directed(server: &Server, session: &Session, template: &Element) {
    let targets = std::mem::take(&mut *session.directed.borrow_mut());
    for target in targets {
        let mut unavailable = Element::new("presence", NS_CLIENT)
            .with_attr("from", session.jid.as_str())
            .with_attr("to", target.as_str())
            .with_attr("type", "unavailable");
        if let Some(status) = template.get_child("status", NS_CLIENT) {
            unavailable.push_child(status.clone());
        }
        crate::router::deliver(server, unavailable, &target);
    }
}

/// The session went away without saying goodbye: tell the account's other
/// resources, and everyone it sent directed presence to, that it is
/// unavailable.
pub fn session_ended(server: &Server, session: &Session) {
    let unavailable = Element::new("presence", NS_CLIENT)
        .with_attr("from", session.jid.as_str())
        .with_attr("type", "unavailable");
    send_unavailable_to_directed(server, session, &unavailable);
    if session.presence.borrow_mut().take().is_none() {
        return;
    }
    let mut unavailable = unavailable;
    for other in server.sessions_of(&session.jid.to_bare()) {
        if other.id != session.id && other.is_available() {
            unavailable.set_attr("to", other.jid.as_str());
            other.send(&unavailable);
        }
    }
}

/// RFC 6121 §8.5.2.1.2: presence to a bare JID reaches every available
/// resource.
pub fn to_bare(server: &Server, stanza: Element, bare: &Jid) {
    match stanza.attr("type") {
        None | Some("unavailable") => {
            for s in server.sessions_of(bare) {
                if s.is_available() {
                    s.send(&stanza);
                }
            }
        }
        // subscribe/subscribed/unsubscribe/unsubscribed/probe need rosters;
        // they are dropped until subscriptions exist, as RFC 6121 §3 allows
        // for a user without a roster entry.
        _ => {}
    }
}

/// RFC 6121 §8.5.3.2.2: presence to a full JID that is not connected.
pub fn to_unavailable_resource(server: &Server, stanza: Element, to: &Jid) {
    match stanza.attr("type") {
        Some("subscribe") | Some("subscribed") | Some("unsubscribe") | Some("unsubscribed") => {
            to_bare(server, stanza, &to.to_bare())
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatar_hint_only_on_available_presence_without_one() {
        let mut p = Element::new("presence", NS_CLIENT);
        add_avatar_hint(&mut p);
        let x = p.get_child("x", NS_VCARD_UPDATE).expect("hint added");
        assert!(
            x.get_child("photo", NS_VCARD_UPDATE)
                .is_some_and(|ph| ph.text().is_empty())
        );
        let before = p.clone();
        add_avatar_hint(&mut p);
        assert_eq!(p, before, "added once");
        let mut gone = Element::new("presence", NS_CLIENT).with_attr("type", "unavailable");
        add_avatar_hint(&mut gone);
        assert!(gone.children.is_empty());
        let own = Element::new("x", NS_VCARD_UPDATE)
            .with_child(Element::new("photo", NS_VCARD_UPDATE).with_text("abc"));
        let mut with_own = Element::new("presence", NS_CLIENT).with_child(own.clone());
        add_avatar_hint(&mut with_own);
        assert_eq!(with_own.children().collect::<Vec<_>>(), vec![&own]);
    }
}
