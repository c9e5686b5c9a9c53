//! A room's archive (XEP-0313 §6.1.2 and XEP-0045 history): queries to the
//! room's JID, and the join history read back from the archive when a
//! stored room comes into memory.
//!
//! A stored room writes each message into its archive as it reflects it
//! (`message.rs`); the archive is the room's history on disk. One that
//! logs (`muc#roomconfig_enablelogging`, also offered as
//! `muc#roomconfig_enablearchiving`) keeps everything for the configured
//! retention and answers queries; one that does not keeps only its join
//! history there.

use crate::env::Env as Host;
use crate::jid::Jid;
use crate::stanza::{self, Condition, StanzaError};
use crate::store::archive::{self, Kind};
use crate::xml::Element;

use super::history::History;
use super::roles::{Affiliation, Role};
use super::room::{self, Room};

impl Room {
    /// Whether `from` may read the room's archive, and with real JIDs
    /// (XEP-0313 §6.1.2: whoever may enter it; never an outcast).
    pub(super) fn archive_access(&self, env: &room::Env, from: &Jid) -> Result<bool, StanzaError> {
        if !self.config.archived() {
            return Err(StanzaError::new(Condition::FeatureNotImplemented)
                .with_text("this room does not archive its messages"));
        }
        let bare = from.to_bare();
        let affiliation = self.affiliation(env, &bare);
        let occupant = self
            .by_real
            .get(from)
            .and_then(|nick| self.occupants.get(nick));
        let member = affiliation >= Affiliation::Member;
        let refused = affiliation == Affiliation::Outcast
            || (self.config.members_only && !member)
            || (self.config.password.is_some() && !member && occupant.is_none());
        if refused {
            return Err(StanzaError::new(Condition::Forbidden)
                .with_text("only those who may enter the room may read its archive"));
        }
        let moderator = occupant.is_some_and(|o| o.role == Role::Moderator)
            || affiliation >= Affiliation::Admin;
        Ok(self.config.non_anonymous() || moderator)
    }
}

/// A query (or a request for the form or the metadata) to the room `jid`,
/// which is in memory.
pub(super) fn query(service: &super::Service, env: &Host, iq: &Element, jid: &Jid) {
    if let Err(error) = answer(service, env, iq, jid)
        && let Some(reply) = stanza::error_reply(iq, &error)
    {
        super::dispatch::deliver(env, reply);
    }
}

fn answer(
    service: &super::Service,
    env: &Host,
    iq: &Element,
    jid: &Jid,
) -> Result<(), StanzaError> {
    let from = iq
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .ok_or_else(|| StanzaError::new(Condition::BadRequest))?;
    let show_real_jids = service.with_room(env, jid, |room, room_env| {
        room.archive_access(room_env, &from)
    })??;
    let payload = iq
        .first_child()
        .ok_or_else(|| StanzaError::new(Condition::BadRequest))?;
    let reply = |payload: Element| {
        super::dispatch::deliver(env, stanza::iq_result(iq).with_child(payload));
        Ok(())
    };
    match (payload.name.as_ref(), iq.attr("type").unwrap_or_default()) {
        ("query", "get") => reply(crate::archive::query::form()),
        ("query", "set") => {
            let limits = &env.config.archive;
            let parsed =
                crate::archive::query::parse(payload, limits.page_default, limits.page_max)?;
            let target = crate::archive::page::Target {
                kind: Kind::Room,
                owner: jid,
                show_real_jids,
            };
            crate::archive::page::answer(env, iq, &parsed, &target).map(drop)
        }
        ("metadata", "get") => reply(crate::archive::account::metadata_of(env, Kind::Room, jid)?),
        _ => Err(StanzaError::new(Condition::FeatureNotImplemented)),
    }
}

/// The join history of a stored room coming into memory: its newest
/// archived messages, or (for a room saved by an older Perch and not
/// written since) the history saved whole. Says whether such an old
/// history is stored.
pub(super) fn join_history(
    env: &Host,
    jid: &Jid,
    legacy: Option<Vec<u8>>,
    max_len: usize,
) -> (History, bool) {
    let mut history = History::default();
    let newest =
        archive::newest(env.store, Kind::Room, jid.as_str(), max_len).unwrap_or_else(|e| {
            log::warn!("room {jid}: history unreadable, starting empty: {e}");
            Vec::new()
        });
    let had_legacy = legacy.is_some();
    if newest.is_empty()
        && let Some(bytes) = legacy
    {
        return match super::record::decode_history(&bytes) {
            Ok(messages) => (
                History::from_stored(messages, max_len, room::MAX_HISTORY_BYTES),
                true,
            ),
            Err(e) => {
                log::warn!("room {jid}: history unreadable, starting empty: {e}");
                (history, true)
            }
        };
    }
    for record in newest {
        // Subject changes are archived but not history: a joining occupant
        // gets the subject on its own (§7.2.15).
        if let Some(mut stanza) = crate::archive::page::parse_stored(&record.xml).filter(|s| {
            s.get_child("body", crate::xml::NS_CLIENT).is_some()
                || s.get_child("subject", crate::xml::NS_CLIENT).is_none()
        }) {
            // Stored without its stanza id: the key gives it back.
            let id = env.archive.ids.id(jid.as_str(), record.stamp);
            crate::archive::policy::stamp_id(&mut stanza, jid.as_str(), &id);
            let chars = stanza.to_bytes(crate::xml::NS_CLIENT).len();
            history.push_sized(
                stanza,
                chars,
                crate::archive::ids::time_of(record.stamp),
                record.stamp,
                max_len,
                room::MAX_HISTORY_BYTES,
            );
        }
    }
    (history, had_legacy)
}
