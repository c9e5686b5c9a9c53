//! One-to-one messages archived as they pass through the server: a message
//! a local client sends goes into its account's archive, a message that
//! arrives for a local account into that account's archive. Both sides of a
//! conversation between two local accounts are archived, each in its
//! owner's archive under an id of its own.
//!
//! The write is part of the section that routes the message (see
//! [`crate::durable`]): the message, its carbons and the sender's stream
//! management ack leave once it is on disk, so no client holds a stanza id
//! that a crash could take back.

use crate::config::DefaultPolicy;
use crate::env::Env;
use crate::jid::Jid;
use crate::store::archive::{self, ArchiveRecord, Kind, OUTGOING};
use crate::xml::{Element, NS_CLIENT};

use super::policy;

/// A message a local client sent to `to`: strips the stanza ids that claim
/// to be its account's, archives it if the account's preferences say so,
/// and returns the id it got (for the carbon copies of the sender's other
/// clients, XEP-0313 §5.1.1).
pub fn sent(env: &Env, stanza: &mut Element, sender: &Jid, to: &Jid) -> Option<String> {
    let owner = sender.to_bare();
    policy::strip_ids_by(stanza, &owner);
    let peer = to.to_bare();
    // A note to self is archived here, once (XEP-0313 §6.1.1), under the
    // account's own JID.
    if env.is_muc_host(peer.domain())
        || !policy::is_archivable_chat(stanza)
        || !archives(env, &owner, &peer)
    {
        return None;
    }
    Some(store(env, stanza, &owner, &peer, OUTGOING))
}

/// A message arriving for the local account `owner`: strips the stanza ids
/// that claim to be the account's (whether or not it is archived), and
/// archives it with the account's id on it, if its preferences say so.
pub fn received(env: &Env, stanza: &mut Element, owner: &Jid) {
    policy::strip_ids_by(stanza, owner);
    if !policy::is_archivable_chat(stanza) {
        return;
    }
    let Some(peer) = stanza
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .map(|f| f.to_bare())
    else {
        return;
    };
    // A note to self is archived once, as sent. Private messages of the
    // rooms here are the rooms' business (they reach clients straight
    // from the room, unarchived, both ways).
    if peer == *owner || env.is_muc_host(peer.domain()) || !archives(env, owner, &peer) {
        return;
    }
    let id = store(env, stanza, owner, &peer, 0);
    policy::stamp_id(stanza, owner.as_str(), &id);
}

/// Whether `owner` archives its conversation with `peer` (XEP-0313 §7).
fn archives(env: &Env, owner: &Jid, peer: &Jid) -> bool {
    let in_roster = |env: &Env| {
        env.account(owner)
            .is_ok_and(|state| state.roster.borrow().item(peer).is_some())
    };
    match env.archive.prefs_of(env.store, owner) {
        Some(prefs) => prefs.archives(peer.as_str(), in_roster(env)),
        None => match env.config.archive.default_policy {
            DefaultPolicy::Always => true,
            DefaultPolicy::Never => false,
            DefaultPolicy::Roster => in_roster(env),
        },
    }
}

/// Writes `stanza` into `owner`'s archive and returns its id.
fn store(env: &Env, stanza: &Element, owner: &Jid, peer: &Jid, flags: u8) -> String {
    let stamp = env.archive.ids.next_stamp(env.now());
    let record = ArchiveRecord {
        stamp,
        flags,
        index: peer.as_str().to_string(),
        extra: String::new(),
        xml: stanza.to_bytes(NS_CLIENT),
    };
    let op = archive::append_op(Kind::User, owner.as_str(), record);
    match env.account(owner) {
        Ok(state) => env.persist_for(&state, op),
        Err(_) => {
            env.persist(op);
        }
    }
    env.archive.ids.id(owner.as_str(), stamp)
}
