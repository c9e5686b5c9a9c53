//! Message Carbons (XEP-0280): every carbons-enabled resource of an account
//! gets a copy of the IM messages its siblings send and receive, wrapped in
//! `<sent/>` or `<received/>` with an XEP-0297 `<forwarded/>`.

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::{Condition, StanzaError};
use crate::xml::{Element, NS_CLIENT};

use crate::stanza::NS_MUC_USER;
pub use crate::stanza::{NS_CARBONS, NS_FORWARD};
const NS_HINTS: &str = "urn:xmpp:hints";
/// Payloads of instant messaging that make a message eligible (§6.1):
/// receipts (XEP-0184), chat states (XEP-0085), markers (XEP-0333) and
/// direct MUC invitations (XEP-0249).
const IM_PAYLOADS: &[&str] = &[
    "urn:xmpp:receipts",
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:chat-markers:0",
    "jabber:x:conference",
];

/// Which way the message went, seen from the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// XEP-0280 §6.1: is this message copied to the other resources?
pub fn eligible(message: &Element, direction: Direction) -> bool {
    if message.get_child("private", NS_CARBONS).is_some()
        || message.get_child("no-copy", NS_HINTS).is_some()
    {
        return false;
    }
    // A carbon is never copied again (it would loop between resources).
    if message.get_child("sent", NS_CARBONS).is_some()
        || message.get_child("received", NS_CARBONS).is_some()
    {
        return false;
    }
    let ty = message.attr("type").unwrap_or("normal");
    if ty == "groupchat" {
        return false;
    }
    if let Some(x) = message.get_child("x", NS_MUC_USER) {
        let invitation = x.get_child("invite", NS_MUC_USER).is_some();
        // A private message from a room occupant reaches every joined
        // client through the room already.
        if !invitation && direction == Direction::Received {
            return false;
        }
        if invitation {
            return true;
        }
    }
    let has_body = message.get_child("body", NS_CLIENT).is_some();
    let im_payload = message
        .children()
        .any(|c| IM_PAYLOADS.contains(&c.ns.as_ref()));
    match ty {
        "chat" => true,
        "normal" | "error" => has_body || im_payload,
        _ => im_payload,
    }
}

/// `<enable/>` or `<disable/>` from one of the account's resources.
pub fn handle_iq(env: &Env, iq: &Element, account: &Jid) -> Result<(), StanzaError> {
    let Some(payload) = iq.first_child() else {
        return Err(StanzaError::new(Condition::BadRequest));
    };
    let enable = match (iq.attr("type"), payload.name.as_ref()) {
        (Some("set"), "enable") => true,
        (Some("set"), "disable") => false,
        _ => return Err(StanzaError::new(Condition::BadRequest)),
    };
    let session = iq
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .filter(|f| f.to_bare() == *account)
        .and_then(|f| env.session(&f))
        .ok_or_else(|| {
            StanzaError::new(Condition::NotAllowed)
                .with_text("carbons are enabled by the account's own resources")
        })?;
    session.im.carbons.set(enable);
    Ok(())
}

fn wrap(message: &Element, account: &Jid, to: &Jid, direction: Direction) -> Element {
    let mut copy = Element::new("message", NS_CLIENT)
        .with_attr("from", account.as_str())
        .with_attr("to", to.as_str());
    if let Some(ty) = message.attr("type") {
        copy.set_attr("type", ty);
    }
    let name = match direction {
        Direction::Sent => "sent",
        Direction::Received => "received",
    };
    copy.with_child(
        Element::new(name, NS_CARBONS)
            .with_child(Element::new("forwarded", NS_FORWARD).with_child(message.clone())),
    )
}

/// Copies a message `origin` sent to its carbons-enabled siblings.
pub fn copy_sent(env: &Env, origin: &Session, message: &Element, to: &Jid) {
    let account = origin.jid.to_bare();
    // Most accounts have no other resource asking for copies: find that out
    // before looking at the message.
    if !env.any_session_of(&account, |s| s.id != origin.id && s.im.carbons.get()) {
        return;
    }
    // To the account itself: its resources receive the message as such.
    if to.to_bare() == account || !eligible(message, Direction::Sent) {
        return;
    }
    for session in env.sessions_of(&account) {
        if session.id != origin.id && session.im.carbons.get() {
            session.send(&wrap(message, &account, &session.jid, Direction::Sent));
        }
    }
}

/// Copies a message delivered to `delivered` (session ids) of `account` to
/// its other carbons-enabled resources.
pub fn copy_received(env: &Env, message: &Element, account: &Jid, delivered: &[u64]) {
    if !env.any_session_of(account, |s| {
        !delivered.contains(&s.id) && s.im.carbons.get()
    }) {
        return;
    }
    let from_own = message
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .is_some_and(|f| f.to_bare() == *account);
    if from_own || !eligible(message, Direction::Received) {
        return;
    }
    for session in env.sessions_of(account) {
        if !delivered.contains(&session.id) && session.im.carbons.get() {
            session.send(&wrap(message, account, &session.jid, Direction::Received));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(xml: &str) -> Element {
        Element::parse(xml).expect("parse")
    }

    #[test]
    fn eligibility_rules() {
        use Direction::*;
        let chat = m("<message xmlns='jabber:client' type='chat'/>");
        assert!(eligible(&chat, Sent));
        let normal_body = m("<message xmlns='jabber:client'><body>x</body></message>");
        assert!(eligible(&normal_body, Received));
        let normal_empty = m("<message xmlns='jabber:client'><x xmlns='urn:x'/></message>");
        assert!(!eligible(&normal_empty, Received));
        let receipt = m(
            "<message xmlns='jabber:client'><received xmlns='urn:xmpp:receipts' id='1'/></message>",
        );
        assert!(eligible(&receipt, Sent));
        let headline = m("<message xmlns='jabber:client' type='headline'><body>x</body></message>");
        assert!(!eligible(&headline, Received));
        let groupchat =
            m("<message xmlns='jabber:client' type='groupchat'><body>x</body></message>");
        assert!(!eligible(&groupchat, Received));
        let private = m(
            "<message xmlns='jabber:client' type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>",
        );
        assert!(!eligible(&private, Sent));
        let no_copy = m(
            "<message xmlns='jabber:client' type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>",
        );
        assert!(!eligible(&no_copy, Sent));
        let carbon = m(
            "<message xmlns='jabber:client' type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>",
        );
        assert!(!eligible(&carbon, Received));
        let muc_pm = m(
            "<message xmlns='jabber:client' type='chat'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>",
        );
        assert!(!eligible(&muc_pm, Received));
        assert!(eligible(&muc_pm, Sent));
        let invite = m(
            "<message xmlns='jabber:client'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x></message>",
        );
        assert!(eligible(&invite, Received));
        let error = m("<message xmlns='jabber:client' type='error'><body>x</body></message>");
        assert!(eligible(&error, Received));
    }

    #[test]
    fn copies_are_wrapped() {
        let account = Jid::parse("romeo@example.net").expect("jid");
        let to = Jid::parse("romeo@example.net/home").expect("jid");
        let original = m(
            "<message xmlns='jabber:client' type='chat' from='romeo@example.net/garden' to='juliet@example.com'><body>x</body></message>",
        );
        let copy = wrap(&original, &account, &to, Direction::Sent);
        assert_eq!(copy.attr("from"), Some("romeo@example.net"));
        assert_eq!(copy.attr("to"), Some("romeo@example.net/home"));
        assert_eq!(copy.attr("type"), Some("chat"));
        let inner = copy
            .get_child("sent", NS_CARBONS)
            .and_then(|s| s.get_child("forwarded", NS_FORWARD))
            .and_then(|f| f.get_child("message", NS_CLIENT));
        assert_eq!(inner, Some(&original));
        let bytes = String::from_utf8(copy.to_bytes(NS_CLIENT)).expect("utf8");
        assert!(
            bytes.contains(
                "<message xmlns='jabber:client' type='chat' from='romeo@example.net/garden'"
            ),
            "{bytes}"
        );
    }
}
