//! Sessions that outlive a restart (XEP-0198 resumption across a restart):
//! which rooms a session is in, saved at shutdown, and putting it back in
//! them at the next start without anyone noticing.
//!
//! A restored occupant is admitted by the rules a join would apply now,
//! but nothing is sent: for the other occupants (whose clients resume
//! too) it never left, and its own client already holds the room's state.
//! Rooms are loaded from disk on first use and leave memory when empty, so
//! after a restart no room is in memory until someone joins or is
//! restored: a restore loads the room as a join does, and a refused
//! restore lets a room it loaded go again.

use crate::env::Env as Host;
use crate::jid::Jid;
use crate::xml::{Element, NS_CLIENT};

use super::occupant::{Occupant, Session};
use super::presence::{MAX_PRESENCE_BYTES, check_nick, reflected_payload};
use super::roles::{self, Affiliation};
use super::room::{Env, Room};
use super::{Loaded, Service};

/// One room a session is an occupant of, as saved across a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occupancy {
    /// The room's bare JID.
    pub room: Jid,
    pub nick: String,
    /// The session's last presence to the room as the room keeps it
    /// (`show`, `status`, `priority`, extensions; no MUC payloads), in a
    /// `<presence/>` without addresses.
    pub presence: Element,
    /// Only persistent rooms survive a restart.
    pub persistent: bool,
}

impl Service {
    /// Every room (of every MUC domain) where the session `full` is an
    /// occupant, ordered by room.
    pub fn occupancies_of(&self, full: &Jid) -> Vec<Occupancy> {
        let rooms = self.rooms.borrow();
        let mut found: Vec<Occupancy> = rooms
            .values()
            .filter(|r| !r.destroyed)
            .filter_map(|r| r.occupancy_of(full))
            .collect();
        found.sort_by(|a, b| a.room.cmp(&b.room));
        found
    }

    /// Puts the session `full` back into a persistent room after a
    /// restart, silently (see the module comment). Returns whether the
    /// session is an occupant now: `false` when the room is gone, not
    /// persistent, or would not let it in any more (banned, not a member
    /// of a members-only room, nick taken or reserved by someone else,
    /// full); nothing changes then.
    pub fn restore_occupant(&self, env: &Host, full: &Jid, occupancy: &Occupancy) -> bool {
        let jid = &occupancy.room;
        // The saved state comes from disk and the configuration may have
        // changed since: only a room address of a MUC domain served now.
        if jid.local().is_none() || jid.resource().is_some() || !env.is_muc_host(jid.domain()) {
            return false;
        }
        match self.ensure_loaded(env, jid) {
            Loaded::InMemory => {}
            Loaded::Missing | Loaded::Unavailable => return false,
        }
        let new_id = || env.new_id();
        let is_admin = |j: &Jid| self.is_server_admin(j);
        let room_env = self.env(env, env.now(), env.clock(), &is_admin, &new_id);
        let restored = self.rooms.borrow_mut().get_mut(jid).is_some_and(|room| {
            room.restore_occupant(&room_env, full, &occupancy.nick, &occupancy.presence)
        });
        if !restored {
            // It may have been loaded for this alone.
            self.maybe_unload(env, jid);
        }
        restored
    }

    /// The nick of the session `full` in the room `room` (a bare room
    /// JID), if it is an occupant; rooms not in memory have no occupants.
    pub fn nick_in(&self, room: &Jid, full: &Jid) -> Option<String> {
        self.rooms.borrow().get(room)?.by_real.get(full).cloned()
    }
}

impl Room {
    fn occupancy_of(&self, full: &Jid) -> Option<Occupancy> {
        let nick = self.by_real.get(full)?;
        let session = self.occupants.get(nick)?.session(full)?;
        let mut presence = Element::new("presence", NS_CLIENT);
        for child in &session.presence {
            presence.push_child(child.clone());
        }
        Some(Occupancy {
            room: self.jid.clone(),
            nick: nick.clone(),
            presence,
            persistent: self.config.persistent,
        })
    }

    /// Adds `full` as an occupant under `nick` if a join would be let in
    /// now (a password aside: it was in), emitting nothing. The role is
    /// the one a join gets now.
    pub(super) fn restore_occupant(
        &mut self,
        env: &Env,
        full: &Jid,
        nick: &str,
        presence: &Element,
    ) -> bool {
        if self.by_real.contains_key(full) {
            return true;
        }
        if self.destroyed || !self.config.persistent || check_nick(nick).is_err() {
            return false;
        }
        let bare = full.to_bare();
        let affiliation = self.affiliation(env, &bare);
        if self.locked && affiliation != Affiliation::Owner {
            return false;
        }
        if roles::may_enter(affiliation, self.config.members_only).is_err() {
            return false;
        }
        let same_user = self.occupants.get(nick).map(|o| o.bare == bare);
        if same_user == Some(false) || self.reserved_by(nick).is_some_and(|owner| *owner != bare) {
            return false;
        }
        if same_user.is_none() && !self.has_room_for(env, affiliation) {
            return false;
        }
        let Some(role) =
            roles::initial_role(affiliation, self.config.moderated, self.config.members_only)
        else {
            return false;
        };
        let payload = reflected_payload(presence);
        // The saved presence is read back from disk: held to the bound a
        // join's presence is held to, as the room relays it to newcomers.
        let size: usize = payload.iter().map(|c| c.to_bytes(NS_CLIENT).len()).sum();
        if size > MAX_PRESENCE_BYTES {
            return false;
        }
        let session = Session {
            jid: full.clone(),
            presence: payload,
        };
        self.by_real.insert(full.clone(), nick.to_string());
        match self.occupants.get_mut(nick) {
            // Another client of the same user under its nick: put first,
            // not last, so the presence the room shows for the occupant
            // stays the one the others were last told of.
            Some(occ) => occ.sessions.insert(0, session),
            None => {
                let id = self.occupant_id(env, &bare);
                let occ = Occupant::new(
                    nick.to_string(),
                    session,
                    role,
                    id,
                    env.clock,
                    env.settings.message_burst,
                );
                self.occupants.insert(nick.to_string(), occ);
            }
        }
        true
    }
}
