//! What becomes of the stanzas a stream-managed session never got to its
//! client (XEP-0198 §4): when the session ends without being resumed, the
//! stanzas it sent but never saw acknowledged, and those still queued, are
//! treated as if they were addressed to a resource that is gone (RFC 6121
//! §8.5.3.2): messages go to the account's other resources or to offline
//! storage, stamped with the time delivery failed (XEP-0203); requests are
//! answered with an error; the rest is dropped.
//!
//! A message is never handed out twice: one the account's other resources
//! already got (as a carbon, or because it went to several resources at
//! once) is dropped, since it is not lost.

use std::rc::Rc;
use std::time::SystemTime;

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::{Condition, Kind, StanzaError};
use crate::xml::{Element, NS_CLIENT, NS_STREAM, Node};

use super::carbons::{self, Direction, NS_CARBONS};
use super::delay::{self, NS_DELAY};
use super::offline;

/// The reason `offline` writes in the stamp of every stored message (this
/// module too): such a message was handed to one session alone when it
/// came out of storage.
const OFFLINE_REASON: &str = "Offline Storage";

/// XEP-0313 results arrive in `urn:xmpp:mam:0`, `:1`, `:2` or `:tmp`
/// depending on the client's version of the protocol.
const NS_MAM_PREFIX: &str = "urn:xmpp:mam:";

/// What became of one stanza.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Stored,
    /// An error went back to the sender.
    Error,
    Dropped,
}

#[derive(Default)]
struct Tally {
    delivered: usize,
    stored: usize,
    errors: usize,
    dropped: usize,
}

impl Tally {
    fn count(&mut self, outcome: Outcome) {
        let slot = match outcome {
            Outcome::Delivered => &mut self.delivered,
            Outcome::Stored => &mut self.stored,
            Outcome::Error => &mut self.errors,
            Outcome::Dropped => &mut self.dropped,
        };
        *slot += 1;
    }
}

/// `session` ends without being resumed, still bound: `stanzas` are those
/// sent to it and never acknowledged, then those still queued, in order.
/// Delivery failed at `failed_at` (when its connection was lost). With
/// `stored_kept`, the offline messages it was given are still in storage
/// (it had stream management: they are deleted when acknowledged), so
/// those among `stanzas` are dropped rather than stored twice.
pub fn session_ending(
    env: &Env,
    session: &Session,
    stanzas: Vec<Element>,
    failed_at: SystemTime,
    stored_kept: bool,
) {
    if stanzas.is_empty() {
        return;
    }
    let account = session.jid.to_bare();
    let mut tally = Tally::default();
    for stanza in stanzas {
        let outcome = match Kind::of(&stanza) {
            Some(Kind::Message) if stored_kept && came_from_storage(&stanza, &account) => {
                Outcome::Dropped
            }
            Some(Kind::Message) => message(env, session, &account, stanza, failed_at),
            Some(Kind::Iq) => iq(env, session, &account, &stanza),
            // Presence is state, not content: the sender's current presence
            // reaches the account's other resources on its own.
            Some(Kind::Presence) | None => Outcome::Dropped,
        };
        tally.count(outcome);
    }
    log::debug!(
        "{}: session ended with undelivered stanzas: {} delivered to other resources, \
         {} stored offline, {} errors, {} dropped",
        session.jid,
        tally.delivered,
        tally.stored,
        tally.errors,
        tally.dropped
    );
}

/// RFC 6121 §8.5.3.2.1: a chat or normal message for a gone resource goes
/// to the bare JID; groupchat is in the room's history, a headline is
/// dropped, an error is never answered.
fn message(
    env: &Env,
    session: &Session,
    account: &Jid,
    mut message: Element,
    failed_at: SystemTime,
) -> Outcome {
    if !matches!(message.attr("type").unwrap_or("normal"), "chat" | "normal") {
        return Outcome::Dropped;
    }
    let has_body = message.get_child("body", NS_CLIENT).is_some();
    if !has_body && !offline::worth_storing(&message) {
        return Outcome::Dropped;
    }
    // The original of a copy or an archived message is kept elsewhere.
    if is_copy(&message) {
        return Outcome::Dropped;
    }
    // A message that came out of offline storage was given to this session
    // alone, whatever it was addressed to and whoever has carbons now.
    if !came_from_storage(&message, account)
        && (copied_by_carbons(env, session, account, &message)
            || shared_with_siblings(env, session, account, &message))
    {
        return Outcome::Dropped;
    }
    let recipients = recipients(env, session, account);
    // One stamp is enough: an earlier one (a room's, offline storage's)
    // already dates the message. A message headed for storage says so, as
    // every stored message does: that is how it is known to have been one
    // session's alone when it comes out.
    if message.get_child("delay", NS_DELAY).is_none() {
        let reason = recipients.is_empty().then_some(OFFLINE_REASON);
        message.push_child(delay::element(account.domain(), failed_at, reason));
    }
    if recipients.is_empty() {
        return store(env, message, account);
    }
    for recipient in &recipients {
        recipient.send(&message);
    }
    Outcome::Delivered
}

/// A carbon (XEP-0280) or an archive result (XEP-0313).
fn is_copy(message: &Element) -> bool {
    message.children().any(|c| {
        (c.ns == NS_CARBONS && (c.name == "sent" || c.name == "received"))
            || (c.name == "result" && c.ns.starts_with(NS_MAM_PREFIX))
    })
}

fn came_from_storage(message: &Element, account: &Jid) -> bool {
    message.children().any(|c| {
        c.is("delay", NS_DELAY)
            && c.attr("from") == Some(account.domain())
            && c.text() == OFFLINE_REASON
    })
}

/// Whether the account's other carbons-enabled resources got a copy when
/// the message was delivered, by the rules of `carbons::copy_received`
/// (judged by who has carbons enabled now: who had them then is not kept).
fn copied_by_carbons(env: &Env, session: &Session, account: &Jid, message: &Element) -> bool {
    let from_own = message
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .is_some_and(|f| f.to_bare() == *account);
    !from_own
        && carbons::eligible(message, Direction::Received)
        && env.any_session_of(account, |s| s.id != session.id && s.im.carbons.get())
}

/// Whether the message reached this session by the bare-JID rules (it was
/// not addressed to this resource) and so also reached the other resources
/// that shared the highest priority with it (RFC 6121 §8.5.2.1.1). Their
/// priority then is not kept: the current one stands in for it.
fn shared_with_siblings(env: &Env, session: &Session, account: &Jid, message: &Element) -> bool {
    let to_this_resource = message
        .attr("to")
        .and_then(|t| Jid::parse(t).ok())
        .is_none_or(|to| to == session.jid);
    let priority = session.priority.get();
    !to_this_resource
        && priority >= 0
        && env.any_session_of(account, |s| {
            s.id != session.id && s.is_available() && s.priority.get() == priority
        })
}

/// Where a message to the account's bare JID goes without the ending
/// session: its other available resources of the highest non-negative
/// priority (RFC 6121 §8.5.2.1.1).
fn recipients(env: &Env, session: &Session, account: &Jid) -> Vec<Rc<Session>> {
    let available: Vec<Rc<Session>> = env
        .sessions_of(account)
        .into_iter()
        .filter(|s| s.id != session.id && s.is_available() && s.priority.get() >= 0)
        .collect();
    let Some(top) = available.iter().map(|s| s.priority.get()).max() else {
        return available;
    };
    available
        .into_iter()
        .filter(|s| s.priority.get() == top)
        .collect()
}

/// Offline storage, which bounces what does not fit (the sender must learn
/// the message is lost).
fn store(env: &Env, message: Element, account: &Jid) -> Outcome {
    // XEP-0334 hints keep a message out of storage even when it has a body.
    if !offline::worth_storing(&message) {
        return Outcome::Dropped;
    }
    // `offline` does not say whether it stored or bounced: its queue's
    // count tells.
    let queued = || {
        env.account(account)
            .ok()
            .map(|state| state.offline.borrow().count)
    };
    let before = queued();
    offline::no_resource_available(env, message, account);
    match (before, queued()) {
        (Some(before), Some(after)) if after > before => Outcome::Stored,
        _ => Outcome::Error,
    }
}

/// RFC 6121 §8.5.3.2.3 (§8.5.3.2.1 for iq): a request to a gone resource
/// is answered with service-unavailable; answers are dropped.
fn iq(env: &Env, session: &Session, account: &Jid, iq: &Element) -> Outcome {
    if !matches!(iq.attr("type"), Some("get" | "set")) {
        return Outcome::Dropped;
    }
    let Some(sender) = iq.attr("from").and_then(|f| Jid::parse(f).ok()) else {
        // No sender is the server itself (a roster push).
        return Outcome::Dropped;
    };
    // The session cannot hear its own answer; the server's own requests
    // (a ping from the domain, a push from the account's bare JID, which
    // only the server uses) wait for nobody.
    let from_server = sender == *account
        || (sender.local().is_none()
            && sender.resource().is_none()
            && env.is_local_host(sender.domain()));
    if sender == session.jid || from_server {
        return Outcome::Dropped;
    }
    env.bounce(iq, StanzaError::new(Condition::ServiceUnavailable));
    Outcome::Error
}

/// One stanza as a session's outbound queue holds it (serialized with
/// `jabber:client` as the default namespace, see [`crate::outbox`]), or
/// `None` if the bytes are not exactly one element.
pub fn parse_serialized(bytes: &[u8]) -> Option<Element> {
    let text = std::str::from_utf8(bytes).ok()?;
    // The entry is written for a client stream: parse it inside one, so
    // the default namespace and the `stream` prefix are what it relies on.
    let wrapped = format!(
        "<stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'>{text}</stream:stream>"
    );
    let stream = Element::parse(&wrapped).ok()?;
    let mut stanza = None;
    for node in stream.children {
        match node {
            Node::Element(el) if stanza.is_none() => stanza = Some(el),
            Node::Text(t) if t.trim().is_empty() => {}
            _ => return None,
        }
    }
    stanza
}

#[cfg(test)]
#[path = "undelivered_tests.rs"]
mod tests;
