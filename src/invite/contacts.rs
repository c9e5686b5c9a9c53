//! Making the inviter and the invited contacts (XEP-0379, XEP-0401 §5):
//! after a registration with a token that names an inviter, both rosters
//! get an item for the other with subscription "both", in one write, and
//! both accounts' online resources get the roster pushes; and a user with
//! an account elsewhere who presents a contact token in a subscription
//! request (`<presence type='subscribe'><preauth token='…'/></presence>`)
//! is approved at once and asked back.

use crate::env::Env;
use crate::im::broadcast;
use crate::im::roster::{Change, Subscription};
use crate::im::roster_iq::{push, save, send_request};
use crate::im::subscription::{self, Request, SubState};
use crate::jid::Jid;
use crate::store::StoreError;
use crate::store::invites::{InviteKind, take_use_op};
use crate::xml::Element;

use super::{NS_PARS, token, unix_secs};

/// Subscribed both ways, nothing pending.
const BOTH: SubState = SubState {
    subscription: Subscription::Both,
    pending_out: false,
    pending_in: false,
    approved: false,
};

/// Subscribes `inviter` and `newcomer` (both local accounts) to each
/// other, the newcomer in the inviter's `group`; waits until it is stored,
/// then pushes the roster items. Outside a section (the registration is
/// answered after the account exists; this follows it).
pub async fn befriend(
    env: &Env<'_>,
    inviter: &Jid,
    newcomer: &Jid,
    group: Option<&str>,
) -> Result<(), StoreError> {
    if inviter == newcomer {
        return Ok(());
    }
    let inviter_state = env.account(inviter)?;
    let newcomer_state = env.account(newcomer)?;
    let max = env.config.im.roster_max_items;
    let (inviter_changes, newcomer_changes, op) = {
        let mut a = inviter_state.roster.borrow_mut();
        let mut b = newcomer_state.roster.borrow_mut();
        if a.item(newcomer).is_none() && a.len() >= max {
            log::warn!("invite: the roster of {inviter} is full; {newcomer} was not added");
            return Ok(());
        }
        let mut a_changes = Vec::new();
        if let Some(group) = group.filter(|_| a.item(newcomer).is_none()) {
            a_changes.extend(a.set_item(newcomer, None, vec![group.to_string()]));
        }
        a_changes.extend(a.apply_state(newcomer, BOTH, None));
        let b_changes = b.apply_state(inviter, BOTH, None);
        let a_op = crate::store::roster::write_op(inviter, &a, &a_changes);
        let b_op = crate::store::roster::write_op(newcomer, &b, &b_changes);
        // One transaction: never one side subscribed without the other.
        let op: crate::store::WriteOp = Box::new(move |txn| {
            a_op(txn)?;
            b_op(txn)
        });
        (a_changes, b_changes, op)
    };
    let ticket = env.store.submit(op);
    inviter_state.wrote(ticket.seq());
    newcomer_state.wrote(ticket.seq());
    ticket.wait().await?;
    push(env, inviter, &last_items(inviter_changes));
    push(env, newcomer, &last_items(newcomer_changes));
    // The inviter's resources learn the newcomer's presence when it logs
    // in (its initial presence goes to its subscribers); the newcomer's
    // first login probes the inviter.
    log::info!("invite: {inviter} and {newcomer} are now subscribed to each other");
    Ok(())
}

/// XEP-0379 §3.4 on the inviter's server: a subscription request to the
/// local account `user` carrying the token of one of `user`'s contact
/// invites is approved at once (one use of the token taken), and `user`
/// asks for the sender's presence in turn. Returns false, changing
/// nothing, for any other stanza or token (§4.1: an unknown token is
/// ignored and the request goes the usual way).
pub fn preauth_subscribe(env: &Env, stanza: &Element, user: &Jid) -> bool {
    if stanza.attr("type") != Some("subscribe") {
        return false;
    }
    let Some(token) = stanza
        .get_child("preauth", NS_PARS)
        .and_then(|p| p.attr("token"))
        .filter(|t| token::is_well_formed(t))
    else {
        return false;
    };
    let Some(contact) = stanza
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .map(|f| f.to_bare())
        .filter(|c| c != user)
    else {
        return false;
    };
    let now = unix_secs(env.now());
    let invite = match env.store.invites().lookup(token, now) {
        Ok(Some(invite)) => invite,
        Ok(None) => return false,
        Err(e) => {
            log::error!("invite: reading a token: {e}");
            return false;
        }
    };
    if invite.kind != InviteKind::Contact || invite.creator.as_deref() != Some(user.as_str()) {
        return false;
    }
    let state = match env.account(user) {
        Ok(state) => state,
        Err(e) => {
            log::error!("roster of {user}: {e}");
            return false;
        }
    };
    let (changes, next) = {
        let mut roster = state.roster.borrow_mut();
        let before = roster.state(&contact);
        if roster.item(&contact).is_none() && roster.len() >= env.config.im.roster_max_items {
            return false;
        }
        // The request, then the user's approval and request back, as the
        // user's own client would have sent them (§3.4, §3.5).
        let asked = subscription::inbound(before, Request::Subscribe).next;
        let approved = subscription::outbound(asked, Request::Subscribed).next;
        let next = subscription::outbound(approved, Request::Subscribe).next;
        let mut changes = Vec::new();
        if let Some(group) = invite
            .group
            .as_ref()
            .filter(|_| roster.item(&contact).is_none())
        {
            changes.extend(roster.set_item(&contact, None, vec![group.clone()]));
        }
        changes.extend(roster.apply_state(&contact, next, None));
        save(env, &state, user, &roster, &changes);
        (changes, next)
    };
    env.persist(take_use_op(token));
    push(env, user, &last_items(changes));
    send_request(env, user, &contact, Request::Subscribed);
    if !next.subscription.has_to() {
        send_request(env, user, &contact, Request::Subscribe);
    }
    broadcast::presence_to(env, user, &contact);
    log::info!("invite: {contact} subscribed to {user} with a contact invite");
    true
}

/// `changes` with only the last change of each roster item: a group set
/// and a subscription made in one go are one roster push, not two (the
/// first would show the item half made).
fn last_items(changes: Vec<Change>) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::with_capacity(changes.len());
    for change in changes {
        if let Change::Item(item) = &change {
            out.retain(|c| !matches!(c, Change::Item(earlier) if earlier.jid == item.jid));
        }
        out.push(change);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_request_ends_approved_and_asked_back() {
        // What `preauth_subscribe` makes of a stranger's request.
        let asked = subscription::inbound(SubState::default(), Request::Subscribe).next;
        let approved = subscription::outbound(asked, Request::Subscribed).next;
        let next = subscription::outbound(approved, Request::Subscribe).next;
        assert_eq!(next.subscription, Subscription::From);
        assert!(next.pending_out && !next.pending_in);
        assert!(BOTH.subscription.has_to() && BOTH.subscription.has_from());
    }
}
