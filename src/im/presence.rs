//! Presence stanzas at the router's edges (RFC 6121 §3, §4): what a client
//! sends, what arrives for a local user, and the end of a session. The
//! work is done in `broadcast` (distribution), `subscription_flow`
//! (subscription stanzas) and `probe`. Here the server also stamps the
//! avatar hash on every available presence a user sends (XEP-0153, see
//! `vcard`) and records when the user goes offline (XEP-0012, see `last`).

use std::rc::Rc;

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::{Condition, ErrorType, StanzaError};
use crate::xml::{Element, NS_CLIENT};

use super::subscription::Request;
use super::{broadcast, last, probe, subscription_flow, vcard};

/// A presence without `to`: the client announces its own availability.
pub fn broadcast_own(env: &Env, origin: &Rc<Session>, mut stanza: Element) {
    match stanza.attr("type") {
        None => {
            vcard::stamp_avatar(env, origin, &mut stanza);
            broadcast::available(env, origin, stanza)
        }
        Some("unavailable") => {
            last::went_offline(env, origin, &stanza);
            broadcast::unavailable(env, origin, stanza)
        }
        // A subscription stanza or probe needs an addressee; errors from a
        // client without one mean nothing.
        Some(_) => {}
    }
}

/// A presence with `to` from a client: subscription management (§3) or
/// directed presence (§4.6).
pub fn directed_from_client(env: &Env, origin: &Rc<Session>, mut stanza: Element, to: Jid) {
    if let Some(request) = Request::from_type(stanza.attr("type")) {
        return subscription_flow::outbound(env, origin, stanza, &to, request);
    }
    let room = env.is_muc_host(to.domain());
    if !track_directed(origin, &stanza, &to, room) {
        return env.bounce(
            &stanza,
            StanzaError::new(Condition::ResourceConstraint)
                .with_type(ErrorType::Wait)
                .with_text(format!(
                    "this session has sent presence to {MAX_DIRECTED_PRESENCES} addresses (rooms included), the limit; send unavailable presence to some first"
                )),
        );
    }
    vcard::stamp_avatar(env, origin, &mut stanza);
    env.deliver(stanza, &to);
}

/// Addresses one session may have sent available directed presence to
/// (rooms it is in among them): each is remembered until the session ends,
/// so the number is bounded like every other thing a client makes the
/// server hold.
pub const MAX_DIRECTED_PRESENCES: usize = 1000;

/// Records (or forgets) a directed presence so that going offline later
/// reaches its target too (RFC 6121 §4.6.3). `false` (nothing recorded)
/// if the session is at [`MAX_DIRECTED_PRESENCES`]. For a `room` (an
/// occupant JID of a chat room here), the session has one nickname per
/// room: a nickname change replaces the old entry and leaving forgets the
/// room, so the list does not fill up with names no longer used.
pub fn track_directed(origin: &Session, stanza: &Element, to: &Jid, room: bool) -> bool {
    let mut directed = origin.directed.borrow_mut();
    let same_target = |j: &Jid| {
        if room {
            j.bare_str() == to.bare_str()
        } else {
            j == to
        }
    };
    match stanza.attr("type") {
        None => {
            if room {
                directed.retain(|j| !same_target(j) || j == to);
            }
            if !directed.contains(to) {
                if directed.len() >= MAX_DIRECTED_PRESENCES {
                    return false;
                }
                directed.push(to.clone());
            }
        }
        Some("unavailable") => directed.retain(|j| !same_target(j)),
        _ => {}
    }
    true
}

/// The session went away without saying goodbye: tell the contacts, the
/// account's other resources and everyone it sent directed presence to that
/// it is unavailable.
pub fn session_ended(env: &Env, session: &Session) {
    let unavailable = Element::new("presence", NS_CLIENT)
        .with_attr("from", session.jid.as_str())
        .with_attr("type", "unavailable");
    last::went_offline(env, session, &unavailable);
    broadcast::session_gone(env, session);
}

/// Whether a presence for a local user is the server's to handle whatever
/// resource it names: subscription stanzas and probes (RFC 6121 §8.5.3.1).
pub fn is_for_account(stanza: &Element) -> bool {
    matches!(
        stanza.attr("type"),
        Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" | "probe")
    )
}

/// RFC 6121 §8.5.2.1.2: presence to a local account's bare JID.
pub fn to_bare(env: &Env, stanza: Element, bare: &Jid) {
    if let Some(request) = Request::from_type(stanza.attr("type")) {
        // XEP-0379: a request with a valid contact-invite token is approved.
        if crate::invite::contacts::preauth_subscribe(env, &stanza, bare) {
            return;
        }
        return subscription_flow::inbound(env, stanza, bare, request);
    }
    match stanza.attr("type") {
        Some("probe") => probe::answer(env, &stanza, bare),
        // Availability and errors go to every available resource.
        _ => {
            for s in env.sessions_of(bare) {
                if s.is_available() {
                    s.send(&stanza);
                }
            }
        }
    }
}

/// RFC 6121 §8.5.1: presence for a local account that does not exist. A
/// subscription request is answered "unsubscribed" on its behalf (so the
/// requester's roster does not wait forever); everything else is ignored.
pub fn to_missing_account(env: &Env, stanza: &Element, missing: &Jid) {
    if stanza.attr("type") != Some("subscribe") {
        return;
    }
    let Some(requester) = stanza.attr("from").and_then(|f| Jid::parse(f).ok()) else {
        return;
    };
    let requester = requester.to_bare();
    let unsubscribed = Element::new("presence", NS_CLIENT)
        .with_attr("from", missing.as_str())
        .with_attr("to", requester.as_str())
        .with_attr("type", "unsubscribed");
    env.deliver(unsubscribed, &requester);
}

/// RFC 6121 §8.5.3.2.2: presence to a full JID that is not connected.
pub fn to_unavailable_resource(env: &Env, stanza: Element, to: &Jid) {
    if is_for_account(&stanza) {
        to_bare(env, stanza, &to.to_bare());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::section::OutputHold;
    use crate::session::Outbox;

    #[test]
    fn directed_presences_a_session_is_remembered_for_are_bounded() {
        let jid = Jid::parse("romeo@localhost/a").unwrap();
        let session = Session::new(1, jid, Outbox::new(), OutputHold::new());
        let available = Element::new("presence", NS_CLIENT);
        for n in 0..MAX_DIRECTED_PRESENCES {
            let to = Jid::parse(&format!("room{n}@conference.localhost/Romeo")).unwrap();
            assert!(track_directed(&session, &available, &to, false));
        }
        let one_more = Jid::parse("more@conference.localhost/Romeo").unwrap();
        assert!(!track_directed(&session, &available, &one_more, false));
        assert_eq!(session.directed.borrow().len(), MAX_DIRECTED_PRESENCES);
        // Presence again to a remembered address, and unavailable presence,
        // are always accepted; the latter makes room.
        let known = Jid::parse("room7@conference.localhost/Romeo").unwrap();
        assert!(track_directed(&session, &available, &known, false));
        let unavailable = Element::new("presence", NS_CLIENT).with_attr("type", "unavailable");
        assert!(track_directed(&session, &unavailable, &known, false));
        assert!(track_directed(&session, &available, &one_more, false));
    }

    #[test]
    fn a_room_is_remembered_once_whatever_the_nickname_changes() {
        let jid = Jid::parse("romeo@localhost/a").unwrap();
        let session = Session::new(1, jid, Outbox::new(), OutputHold::new());
        let available = Element::new("presence", NS_CLIENT);
        let unavailable = Element::new("presence", NS_CLIENT).with_attr("type", "unavailable");
        for nick in ["Romeo", "Romeo2", "Romeo3"] {
            let to = Jid::parse(&format!("room@conference.localhost/{nick}")).unwrap();
            assert!(track_directed(&session, &available, &to, true));
        }
        assert_eq!(
            session
                .directed
                .borrow()
                .iter()
                .map(Jid::as_str)
                .collect::<Vec<_>>(),
            ["room@conference.localhost/Romeo3"]
        );
        let left = Jid::parse("room@conference.localhost/Romeo3").unwrap();
        assert!(track_directed(&session, &unavailable, &left, true));
        assert!(session.directed.borrow().is_empty());
    }
}
