//! Offline messages (XEP-0160, RFC 6121 §8.5.2.2.1): a chat or normal
//! message for an account with no available resource is stored with an
//! XEP-0203 delay stamp, within a per-account quota, and delivered in order
//! to the next resource that becomes available with a non-negative priority.

use std::rc::Rc;

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::{Condition, StanzaError};
use crate::store;
use crate::xml::Element;

use super::delay;

pub const FEATURE: &str = "msgoffline";
const NS_HINTS: &str = "urn:xmpp:hints";
const NS_CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

/// Whether a message deserves a place in offline storage. XEP-0160 stores
/// normal and chat messages except those with nothing but chat states;
/// XEP-0334 hints override: `<no-store/>`/`<no-permanent-store/>` keep a
/// message out, `<store/>` keeps it in.
pub fn worth_storing(message: &Element) -> bool {
    let hinted = |name| message.get_child(name, NS_HINTS).is_some();
    if hinted("no-store") || hinted("no-permanent-store") {
        return false;
    }
    if hinted("store") {
        return true;
    }
    message.children().any(|c| {
        c.ns != NS_CHATSTATES && c.ns != NS_HINTS && !c.is("thread", crate::xml::NS_CLIENT)
    })
}

/// A message for `account`, none of whose resources is available with a
/// non-negative priority.
pub fn no_resource_available(env: &Env, stanza: Element, account: &Jid) {
    match stanza.attr("type").unwrap_or("normal") {
        "normal" | "chat" => {}
        // headline: dropped (§8.5.2.2.1); error and groupchat are handled
        // before this point.
        _ => return,
    }
    if !worth_storing(&stanza) {
        return;
    }
    if let Err(error) = store_message(env, &stanza, account) {
        env.bounce(&stanza, error);
    }
}

fn store_message(env: &Env, stanza: &Element, account: &Jid) -> Result<(), StanzaError> {
    let limits = &env.config.im;
    if limits.offline_max_messages == 0 {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    }
    let state = env.account(account).map_err(|e| {
        log::error!("offline messages of {account}: {e}");
        StanzaError::new(Condition::InternalServerError)
    })?;
    let mut stored = stanza.clone();
    // One stamp of ours (XEP-0203 §4): a message this server stamped
    // already (a session that ended unacknowledged, XEP-0198) keeps the
    // time it first failed to arrive.
    let stamped_here = stored
        .children()
        .any(|c| c.is("delay", delay::NS_DELAY) && c.attr("from") == Some(account.domain()));
    if !stamped_here {
        stored.push_child(delay::element(
            account.domain(),
            env.now(),
            Some("Offline Storage"),
        ));
    }
    let xml = stored.to_bytes("");
    let seq = {
        let mut queue = state.offline.borrow_mut();
        if let Some(error) = storage_full(limits, queue.count, queue.bytes, xml.len()) {
            // RFC 6121 §8.5.2.2.1: not stored, so the sender must know.
            return Err(error);
        }
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.count += 1;
        queue.bytes += xml.len();
        seq
    };
    env.persist_for(
        &state,
        store::offline::append_op(account.as_str(), seq, xml),
    );
    Ok(())
}

/// The error for a message of `len` bytes that does not fit an offline
/// queue holding `count` messages of `bytes` bytes, naming the limit it
/// would break; `None` if it fits.
fn storage_full(
    limits: &crate::config::ImConfig,
    count: usize,
    bytes: usize,
    len: usize,
) -> Option<StanzaError> {
    let limit = if count >= limits.offline_max_messages {
        format!("{} messages", limits.offline_max_messages)
    } else if bytes.saturating_add(len) > limits.offline_max_bytes {
        format!("{} bytes", limits.offline_max_bytes)
    } else {
        return None;
    };
    Some(
        StanzaError::new(Condition::ServiceUnavailable)
            .with_text(format!("the recipient's offline storage is full ({limit})")),
    )
}

/// Whether `message` is in `account`'s archive (it carries the stanza id
/// the archive gave it, XEP-0359).
fn archived(message: &Element, account: &Jid) -> bool {
    message
        .children()
        .any(|c| c.is("stanza-id", crate::stanza::NS_SID) && c.attr("by") == Some(account.as_str()))
}

/// `session` became available with a non-negative priority: it gets the
/// stored messages, once every message stored so far is on disk.
pub fn deliver_stored(env: &Env, session: &Rc<Session>) {
    let account = session.jid.to_bare();
    let has_messages = env
        .account(&account)
        .is_ok_and(|state| state.offline.borrow().count > 0);
    if !has_messages {
        return;
    }
    let session = session.clone();
    env.after_durable(Box::new(move |env| deliver_now(env, &session, &account)));
}

/// Stored messages handed to a session that ended without acknowledging
/// them: they count as stored again, and the next login gets them.
pub fn not_delivered(env: &Env, account: &Jid, kept: &[crate::stream::sm::OfflinePending]) {
    let Ok(state) = env.account(account) else {
        return;
    };
    let mut queue = state.offline.borrow_mut();
    for p in kept {
        queue.delivered_through = queue.delivered_through.min(p.after);
        queue.count += p.count;
        queue.bytes += p.bytes;
    }
}

/// Notes messages `after..=through`, just queued for `session`, as kept
/// in storage until its client acknowledges them; false without stream
/// management (they are deleted now).
fn keep_until_acknowledged(
    session: &Session,
    after: u64,
    through: u64,
    count: usize,
    bytes: usize,
) -> bool {
    let mut sm = session.sm.borrow_mut();
    let Some(sm) = sm.as_mut() else {
        return false;
    };
    // Everything queued before them (and held back by client state
    // indication) is sent first; they are the last of what is queued.
    let ahead = session.outbox.stanza_count() + session.csi.borrow().held_len();
    let threshold = sm
        .unacked
        .sent_count()
        .wrapping_add(u32::try_from(ahead).unwrap_or(u32::MAX));
    sm.offline_pending.push(crate::stream::sm::OfflinePending {
        threshold,
        after,
        through,
        count,
        bytes,
    });
    true
}

fn deliver_now(env: &Env, session: &Session, account: &Jid) {
    let still_here = env
        .session(&session.jid)
        .is_some_and(|s| s.id == session.id);
    if !still_here || !session.is_available() || session.priority.get() < 0 {
        return;
    }
    let state = match env.account(account) {
        Ok(state) => state,
        Err(e) => return log::error!("offline messages of {account}: {e}"),
    };
    let after = state.offline.borrow().delivered_through;
    let messages = match store::offline::read_after(env.store, account.as_str(), after) {
        Ok(m) => m,
        Err(e) => return log::error!("offline messages of {account}: {e}"),
    };
    let mut last = None;
    let mut bytes = 0;
    for (seq, xml) in &messages {
        match std::str::from_utf8(xml)
            .ok()
            .and_then(|x| Element::parse(x).ok())
        {
            // A client that caught up from the archive before becoming
            // available has the archived ones (as with Prosody): each
            // message reaches one device's view once.
            Some(message) if session.im.archive_queried.get() && archived(&message, account) => {}
            Some(message) => session.send(&message),
            None => log::error!("offline message {seq} of {account} is unreadable; dropped"),
        }
        last = Some(*seq);
        bytes += xml.len();
    }
    let mut queue = state.offline.borrow_mut();
    match last {
        Some(last) => {
            let after = queue.delivered_through;
            queue.delivered_through = last;
            queue.count = queue.count.saturating_sub(messages.len());
            queue.bytes = queue.bytes.saturating_sub(bytes);
            drop(queue);
            // A stream-managed client acknowledges what it got: the
            // messages stay stored until it does (see `sm::OfflinePending`).
            // Only this delivery's range: another stream-managed session
            // may still hold earlier ones unacknowledged.
            if !keep_until_acknowledged(session, after, last, messages.len(), bytes) {
                env.persist_for(
                    &state,
                    store::offline::delete_between_op(account.as_str(), after, last),
                );
            }
        }
        // Everything stored is on disk by now: nothing there means the
        // counters were off (e.g. after a failed write).
        None => {
            queue.count = 0;
            queue.bytes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(inner: &str) -> Element {
        Element::parse(&format!(
            "<message xmlns='jabber:client' type='chat'>{inner}</message>"
        ))
        .expect("parse")
    }

    #[test]
    fn a_full_queue_names_its_limit() {
        let limits = crate::config::ImConfig {
            offline_max_messages: 5,
            offline_max_bytes: 3000,
            ..Default::default()
        };
        assert_eq!(storage_full(&limits, 4, 1000, 2000), None);
        let text = |e: Option<StanzaError>| e.and_then(|e| e.text);
        assert_eq!(
            text(storage_full(&limits, 5, 0, 10)),
            Some("the recipient's offline storage is full (5 messages)".into())
        );
        assert_eq!(
            text(storage_full(&limits, 4, 1000, 2001)),
            Some("the recipient's offline storage is full (3000 bytes)".into())
        );
    }

    #[test]
    fn what_is_stored() {
        assert!(worth_storing(&message("<body>hi</body>")));
        assert!(worth_storing(&message(
            "<received xmlns='urn:xmpp:receipts' id='1'/>"
        )));
        assert!(!worth_storing(&message("")));
        assert!(!worth_storing(&message(
            "<composing xmlns='http://jabber.org/protocol/chatstates'/>"
        )));
        assert!(!worth_storing(&message(
            "<active xmlns='http://jabber.org/protocol/chatstates'/><thread>t</thread>"
        )));
        assert!(!worth_storing(&message(
            "<body>x</body><no-store xmlns='urn:xmpp:hints'/>"
        )));
        assert!(!worth_storing(&message(
            "<body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/>"
        )));
        assert!(worth_storing(&message(
            "<gone xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/>"
        )));
    }
}
