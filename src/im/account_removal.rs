//! Deleting an account, whoever asks: the user with XEP-0077 `<remove/>`,
//! the operator with `perch user del` (through a running server's admin
//! socket or, with none running, on the database directly). One place, so
//! that everything that must happen when an account goes happens:
//!
//! - the account and everything stored for it go in one write transaction
//!   that also leaves its tombstone (`store::delete_account_op`);
//! - every contact learns that its subscriptions ended, exactly as if the
//!   account had removed it from its roster (RFC 6121 §2.5.2, XEP-0077
//!   §3.2): local contacts' rosters change and their clients get the
//!   pushes, the `unsubscribe`/`unsubscribed` and the unavailable presence;
//! - once the deletion is on disk, the account's in-memory IM state is
//!   dropped and its sessions end with a `not-authorized` stream error,
//!   after whatever was already queued for them (such as the result of
//!   the `<remove/>`).

use std::collections::HashSet;

use crate::env::Env;
use crate::jid::Jid;
use crate::store::{self, StoreError};
use crate::stream::{StreamCondition, StreamError};

use super::roster_iq;
use super::subscription::SubState;

/// Deletes `account` as described above; `why` is the text of the stream
/// error its sessions get. Call it inside a hold (the handling of a
/// client's stanza, or [`remove_now`]): what it sends waits for the
/// deletion to be on disk. `NotFound` if there is no such account.
pub fn remove(env: &Env, account: &Jid, why: &'static str) -> Result<(), StoreError> {
    if !env.account_exists(account) {
        return Err(StoreError::NotFound(format!("account {account}")));
    }
    let contacts = contacts(env, account)?;
    env.persist(store::delete_account_op(account.as_str()));
    // A later account of the same name is not an administrator.
    env.admins.set_granted(account, false);
    for (contact, before) in &contacts {
        roster_iq::end_subscriptions(env, account, contact, *before);
    }
    let account = account.clone();
    env.after_durable(Box::new(move |env| {
        env.im.forget(&account);
        env.push.forget(&account);
        disconnect_all(env, &account, why);
    }));
    Ok(())
}

/// Everyone the account has a relationship with, and what it is: its
/// roster items and those whose subscription requests it has not answered.
fn contacts(env: &Env, account: &Jid) -> Result<Vec<(Jid, SubState)>, StoreError> {
    let state = env.account(account)?;
    let roster = state.roster.borrow();
    let mut seen = HashSet::new();
    let jids = roster
        .items()
        .map(|item| &item.jid)
        .chain(roster.pending_in().map(|(jid, _)| jid))
        .filter(|jid| seen.insert(*jid))
        .cloned()
        .collect::<Vec<Jid>>();
    Ok(jids
        .into_iter()
        .map(|jid| {
            let before = roster.state(&jid);
            (jid, before)
        })
        .collect())
}

/// Ends every session of `account` with a `not-authorized` stream error,
/// after whatever is already queued for them (XEP-0077 §3.2).
pub fn disconnect_all(env: &Env, account: &Jid, why: &str) {
    for session in env.sessions_of(account) {
        session
            .outbox
            .close_with(StreamError::with_text(StreamCondition::NotAuthorized, why));
    }
}
