//! Stanzas for the address of a deleted account. The account is gone for
//! good (its address can never be registered again), so senders are told
//! so with `gone`, and contacts asking for its presence also get an
//! `unsubscribed`, which lets their clients clean up the roster.

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{Condition, Kind, StanzaError};
use crate::xml::{Element, NS_CLIENT};

use super::subscription::{self, InboundAction, Request};

/// Answers a stanza addressed to `bare` (which has no account) if the
/// address belonged to a deleted one; returns false when it never did,
/// so the usual no-such-user rules apply.
pub fn to_deleted_account(env: &Env, stanza: &Element, bare: &Jid) -> bool {
    match env.store.tombstones().contains(bare.as_str()) {
        Ok(true) => {}
        Ok(false) => return false,
        Err(e) => {
            log::warn!("reading the tombstone of {bare}: {e}");
            return false;
        }
    }
    for reply in replies(stanza, bare) {
        match reply.attr("to").and_then(|t| Jid::parse(t).ok()) {
            Some(to) if reply.attr("type") == Some("unsubscribed") => {
                send_unsubscribed(env, reply, &to, bare)
            }
            Some(to) => env.deliver(reply, &to),
            None => log::debug!("no valid sender to tell that {bare} is gone"),
        }
    }
    true
}

/// Delivers the `unsubscribed` that tells `asker` the account `gone` is
/// gone. If the asker's roster has a subscription or request to cancel,
/// routing applies it (RFC 6121 §3.2.3: roster push and delivery);
/// otherwise the asker's server would drop it as meaningless, so a local
/// asker's session gets it directly: its client should still learn.
fn send_unsubscribed(env: &Env, reply: Element, asker: &Jid, gone: &Jid) {
    let owner = asker.to_bare();
    let cancels_something = env.is_local_host(asker.domain())
        && env.account_exists(&owner)
        && env.account(&owner).is_ok_and(|state| {
            let before = state.roster.borrow().state(gone);
            subscription::inbound(before, Request::Unsubscribed).action != InboundAction::Ignore
        });
    if cancels_something || !env.send_to_session(asker, &reply) {
        env.deliver(reply, asker);
    }
}

/// What to send back for `stanza` to the deleted account `bare`.
pub fn replies(stanza: &Element, bare: &Jid) -> Vec<Element> {
    let gone = || StanzaError::new(Condition::Gone).with_text("this account has been deleted");
    let mut out = Vec::new();
    match (Kind::of(stanza), stanza.attr("type")) {
        (Some(Kind::Presence), Some("probe" | "subscribe")) => {
            out.extend(crate::stanza::error_reply(stanza, &gone()));
            // Straight back to whoever asked (a local client's full JID):
            // their roster holds no state that would let an `unsubscribed`
            // to the bare JID through, yet their client should learn it.
            if let Some(sender) = stanza.attr("from").and_then(|f| Jid::parse(f).ok()) {
                out.push(
                    Element::new("presence", NS_CLIENT)
                        .with_attr("from", bare.as_str())
                        .with_attr("to", sender.as_str())
                        .with_attr("type", "unsubscribed"),
                );
            }
        }
        // Other presence (updates, unsubscriptions) needs no answer.
        (Some(Kind::Presence), _) => {}
        (Some(Kind::Iq), Some("get" | "set")) => {
            out.extend(crate::stanza::error_reply(stanza, &gone()));
        }
        (Some(Kind::Iq), _) => {}
        (Some(Kind::Message), Some("error")) => {}
        (Some(Kind::Message), _) => out.extend(crate::stanza::error_reply(stanza, &gone())),
        (None, _) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        Element::parse(s).expect("parse")
    }

    #[test]
    fn probe_gets_error_then_unsubscribed() {
        let juliet = Jid::parse("juliet@localhost").expect("jid");
        let probe = el(
            "<presence xmlns='jabber:client' type='probe' from='romeo@localhost/a' to='juliet@localhost'/>",
        );
        let out = replies(&probe, &juliet);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].attr("type"), Some("error"));
        assert_eq!(out[0].attr("from"), Some("juliet@localhost"));
        assert_eq!(out[0].attr("to"), Some("romeo@localhost/a"));
        assert!(out[0].to_string().contains("<gone "));
        assert_eq!(
            out[1].to_string(),
            "<presence xmlns='jabber:client' from='juliet@localhost' to='romeo@localhost/a' type='unsubscribed'/>"
        );
    }

    #[test]
    fn messages_and_iqs_bounce_others_are_dropped() {
        let juliet = Jid::parse("juliet@localhost").expect("jid");
        let msg = el(
            "<message xmlns='jabber:client' from='romeo@localhost/a' to='juliet@localhost'><body>hi</body></message>",
        );
        assert_eq!(replies(&msg, &juliet).len(), 1);
        let iq = el(
            "<iq xmlns='jabber:client' type='get' id='1' from='romeo@localhost/a' to='juliet@localhost'><q xmlns='x'/></iq>",
        );
        assert_eq!(replies(&iq, &juliet).len(), 1);
        for quiet in [
            "<presence xmlns='jabber:client' from='romeo@localhost/a' to='juliet@localhost'/>",
            "<presence xmlns='jabber:client' type='unsubscribe' from='romeo@localhost/a' to='juliet@localhost'/>",
            "<message xmlns='jabber:client' type='error' from='romeo@localhost/a' to='juliet@localhost'/>",
            "<iq xmlns='jabber:client' type='result' id='1' from='romeo@localhost/a' to='juliet@localhost'/>",
        ] {
            assert!(replies(&el(quiet), &juliet).is_empty(), "{quiet}");
        }
    }
}
