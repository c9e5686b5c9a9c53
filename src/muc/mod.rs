//! The multi-user chat service (XEP-0045), one per host that has a MUC
//! domain (`conference.<domain>` by default), all served by one
//! [`Service`] on the [`Server`].
//!
//! A stanza to a MUC domain arrives in [`handle`]: stanzas to the domain
//! itself are the service's (discovery, ad-hoc commands, `host.rs`);
//! stanzas to a room or an occupant go to that room's state machine
//! (`room.rs` and the files beside it), which is created on a first join or
//! loaded from the database on first use. What a room emits is delivered by
//! `dispatch.rs`, which holds back a room's output until its store
//! operations are on disk. A room with nobody in it leaves memory
//! (persistent rooms are saved first).

pub mod admin;
mod archive;
pub mod config;
pub mod disco;
mod dispatch;
pub mod history;
mod host;
pub mod message;
pub mod moderation;
pub mod occupant;
pub mod owner;
pub mod presence;
pub mod rate;
pub mod record;
pub mod register;
pub mod restore;
pub mod roles;
pub mod room;

#[cfg(test)]
mod restore_tests;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use crate::config::RoomCreation;
use crate::env::Env as Host;
use crate::fasthash::FastMap;
use crate::jid::Jid;
use crate::server_admins::ServerAdmins;
use crate::stanza::{Condition, ErrorType, Kind, StanzaError};
use crate::store::{MucWrite, StoreError};
use crate::xml::Element;

use dispatch::Dispatch;
pub use dispatch::HISTORY_SAVE_INTERVAL;
use record::{AffiliationRecord, RoomRecord};
pub use restore::Occupancy;
use room::{Env, Room};

pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub use crate::stanza::{NS_CONFERENCE, NS_MUC_USER};
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_MUC_REGISTER: &str = "http://jabber.org/protocol/muc#register";
pub const NS_MUC_REQUEST: &str = "http://jabber.org/protocol/muc#request";
pub const NS_MUC_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";
pub const NS_STABLE_ID: &str = "http://jabber.org/protocol/muc#stable_id";
pub const NS_SELF_PING: &str = "http://jabber.org/protocol/muc#self-ping-optimization";
pub const NS_OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
pub const NS_REGISTER: &str = "jabber:iq:register";
pub const NS_VCARD: &str = "vcard-temp";
pub const NS_DISCO_INFO: &str = crate::im::NS_DISCO_INFO;
pub const NS_DISCO_ITEMS: &str = crate::im::NS_DISCO_ITEMS;
pub const NS_PING: &str = crate::im::NS_PING;

/// The chat rooms of every MUC domain, in memory while occupied.
pub struct Service {
    rooms: RefCell<FastMap<Jid, Room>>,
    /// The last write of each room that may not be on disk yet: the room's
    /// later output waits for it, and the room is not reloaded from disk
    /// (nor dropped from memory while empty) before it lands.
    written: RefCell<FastMap<Jid, u64>>,
    /// The same writes in commit order, to forget them once committed.
    write_order: RefCell<VecDeque<(Jid, u64)>>,
    /// Rooms whose write may have failed: memory is ahead of the disk.
    /// Each is written again whole (see [`Service::writes_failed`]).
    unsaved: RefCell<FastMap<Jid, Unsaved>>,
    /// The seqs of such rewrites not known to be on disk.
    rewrites: RefCell<std::collections::HashSet<u64>>,
    /// How many stored rooms a user owns, counted by a scan of every
    /// affiliation when the user creates a room; forgotten at any room
    /// write, so a loop of joins to new rooms scans once.
    owned_stored: RefCell<FastMap<Jid, usize>>,
    occupant_key: ring::hmac::Key,
    /// Server admins (shared with the server): they act as owners of
    /// every room.
    admins: Rc<ServerAdmins>,
}

/// A room as listed by `perch room list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSummary {
    pub jid: String,
    pub name: String,
    pub persistent: bool,
    pub public: bool,
    pub occupants: usize,
}

#[derive(Debug)]
pub enum DestroyError {
    BadJid(String),
    NotFound(String),
    Store(StoreError),
}

impl fmt::Display for DestroyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestroyError::BadJid(j) => write!(f, "'{j}' is not a room address (room@muc.domain)"),
            DestroyError::NotFound(j) => write!(f, "room {j} does not exist"),
            DestroyError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DestroyError {}

/// Users whose count of stored rooms is remembered at once (the cache is
/// emptied when full: it only saves scans).
const OWNED_STORED_CACHE_USERS: usize = 1024;

/// What a room whose write failed must look like on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unsaved {
    /// As it is in memory.
    AsInMemory,
    /// Gone: it was destroyed (and has left memory).
    Destroyed,
}

enum Loaded {
    InMemory,
    Missing,
    /// Stored but unreadable, or its last change is still being written.
    Unavailable,
}

impl Service {
    /// `secret` keys the XEP-0421 occupant ids (stable across restarts).
    pub fn new(secret: &[u8], admins: Rc<ServerAdmins>) -> Service {
        Service {
            rooms: RefCell::new(FastMap::default()),
            written: RefCell::new(FastMap::default()),
            write_order: RefCell::new(VecDeque::new()),
            unsaved: RefCell::new(FastMap::default()),
            rewrites: RefCell::new(std::collections::HashSet::new()),
            owned_stored: RefCell::new(FastMap::default()),
            occupant_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            admins,
        }
    }

    pub fn is_server_admin(&self, jid: &Jid) -> bool {
        self.admins.contains(jid)
    }

    pub fn loaded_rooms(&self) -> usize {
        self.rooms.borrow().len()
    }

    /// Every room: stored ones and those only in memory.
    pub fn summaries(&self, env: &Host) -> Result<Vec<RoomSummary>, StoreError> {
        let mut all: BTreeMap<String, RoomSummary> = BTreeMap::new();
        for (jid, bytes) in env.store.muc_rooms().list()? {
            match RoomRecord::decode(&bytes) {
                Ok(r) => {
                    all.insert(jid.clone(), summary(&jid, &r.config, 0));
                }
                Err(e) => log::error!("room {jid}: {e}"),
            }
        }
        for (jid, room) in self.rooms.borrow().iter() {
            if room.locked || room.destroyed {
                continue;
            }
            all.insert(
                jid.to_string(),
                summary(jid.as_str(), &room.config, room.occupant_count()),
            );
        }
        Ok(all.into_values().collect())
    }

    /// Destroys a room on an administrator's request (`perch room
    /// destroy`, the ad-hoc command): its occupants are told, it is
    /// removed from memory and disk.
    pub fn destroy(
        &self,
        env: &Host,
        room: &str,
        reason: Option<&str>,
    ) -> Result<(), DestroyError> {
        let jid = Jid::parse(room)
            .ok()
            .filter(|j| {
                j.local().is_some() && j.resource().is_none() && env.is_muc_host(j.domain())
            })
            .ok_or_else(|| DestroyError::BadJid(room.to_string()))?;
        match self.ensure_loaded(env, &jid) {
            Loaded::InMemory => {}
            Loaded::Missing | Loaded::Unavailable => {
                return Err(DestroyError::NotFound(jid.to_string()));
            }
        }
        let now = env.now();
        let clock = env.clock();
        let mut dispatch = self.dispatch(env, &jid);
        {
            let mut rooms = self.rooms.borrow_mut();
            let Some(room) = rooms.get_mut(&jid) else {
                return Err(DestroyError::NotFound(jid.to_string()));
            };
            let new_id = || env.new_id();
            let is_admin = |j: &Jid| self.is_server_admin(j);
            let env = self.env(env, now, clock, &is_admin, &new_id);
            room.destroy(&env, reason, None, None, &mut dispatch);
        }
        self.finish(env, &jid, dispatch);
        Ok(())
    }

    fn env<'a>(
        &'a self,
        env: &'a Host<'_>,
        now: SystemTime,
        clock: Instant,
        is_admin: &'a dyn Fn(&Jid) -> bool,
        new_id: &'a dyn Fn() -> String,
    ) -> Env<'a> {
        Env {
            now,
            clock,
            settings: &env.config.muc,
            is_server_admin: is_admin,
            occupant_key: &self.occupant_key,
            new_id,
            archive: &env.archive.ids,
        }
    }

    /// Runs `f` on the room `jid` (in memory) with its environment.
    fn with_room<T>(
        &self,
        env: &Host,
        jid: &Jid,
        f: impl FnOnce(&Room, &Env) -> T,
    ) -> Result<T, StanzaError> {
        let rooms = self.rooms.borrow();
        let room = rooms
            .get(jid)
            .ok_or_else(|| StanzaError::new(Condition::ItemNotFound))?;
        let new_id = || env.new_id();
        let is_admin = |j: &Jid| self.is_server_admin(j);
        let room_env = self.env(env, env.now(), env.clock(), &is_admin, &new_id);
        Ok(f(room, &room_env))
    }

    /// Runs `f` on the room `jid` (in memory) as one of its events: what it
    /// emits is delivered once what it stores is on disk.
    fn with_room_dispatch<T>(
        &self,
        env: &Host,
        jid: &Jid,
        f: impl FnOnce(&mut Room, &Env, &mut dyn room::Sink) -> T,
    ) -> Result<T, StanzaError> {
        let mut dispatch = self.dispatch(env, jid);
        let out = {
            let mut rooms = self.rooms.borrow_mut();
            let room = rooms
                .get_mut(jid)
                .ok_or_else(|| StanzaError::new(Condition::ItemNotFound))?;
            let new_id = || env.new_id();
            let is_admin = |j: &Jid| self.is_server_admin(j);
            let room_env = self.env(env, env.now(), env.clock(), &is_admin, &new_id);
            f(room, &room_env, &mut dispatch)
        };
        self.finish(env, jid, dispatch);
        Ok(out)
    }

    /// Whether a write of `room` may not be on disk yet.
    fn has_pending(&self, env: &Host, room: &Jid) -> bool {
        self.written
            .borrow()
            .get(room)
            .is_some_and(|&seq| seq > env.store.committed_seq())
    }

    /// Where the room's output goes while it handles one event: behind the
    /// room's writes that may not be on disk yet, and behind the whole
    /// room written again if a write of it failed.
    fn dispatch<'a>(&self, env: &'a Host<'a>, room: &Jid) -> Dispatch<'a> {
        if let Some(&seq) = self.written.borrow().get(room) {
            env.depend_on(seq);
        }
        let mut dispatch = Dispatch::new(env);
        if self.unsaved.borrow().get(room) == Some(&Unsaved::AsInMemory)
            && let Some(room_in_memory) = self.rooms.borrow_mut().get_mut(room)
        {
            self.unsaved.borrow_mut().remove(room);
            room_in_memory.save_again(&mut dispatch);
        }
        dispatch
    }

    /// After a batch in which writes failed (seqs `failed`; refusals
    /// aside): a room whose write failed is ahead of the disk in memory (or
    /// gone from memory but not from the disk, if destroyed). It is written
    /// again whole, in one transaction, right away; if that fails too, at
    /// its next event or the next periodic save, and it stays in memory
    /// until then. Its events between the failure and the rewrite may have
    /// written parts of it (an affiliation): the rewrite starts by deleting
    /// what is stored, so nothing of those outlives it.
    pub fn writes_failed(&self, env: &Host, failed: &[u64]) {
        let mut retry_now = false;
        {
            let rooms = self.rooms.borrow();
            let mut unsaved = self.unsaved.borrow_mut();
            let mut rewrites = self.rewrites.borrow_mut();
            for (room, seq) in self.write_order.borrow().iter() {
                if !failed.contains(seq) {
                    continue;
                }
                let state = match rooms.get(room) {
                    Some(r) if !r.destroyed => Unsaved::AsInMemory,
                    _ => Unsaved::Destroyed,
                };
                log::warn!("room {room}: a write failed; the room will be written again");
                unsaved.insert(room.clone(), state);
                // A rewrite that failed waits for the next event or save:
                // a write that always fails must not loop.
                retry_now |= !rewrites.remove(seq);
            }
        }
        if retry_now {
            self.save_unsaved(env);
        }
    }

    /// Writes every room that [`Service::writes_failed`] marked, now.
    fn save_unsaved(&self, env: &Host) {
        let marked: Vec<(Jid, Unsaved)> = self.unsaved.borrow_mut().drain().collect();
        for (jid, state) in marked {
            let mut dispatch = Dispatch::new(env);
            match (state, self.rooms.borrow_mut().get_mut(&jid)) {
                (Unsaved::AsInMemory, Some(room)) => room.save_again(&mut dispatch),
                (Unsaved::AsInMemory, None) => continue,
                (Unsaved::Destroyed, _) => dispatch.store_outside(MucWrite::DeleteRoom {
                    room: jid.to_string(),
                }),
            }
            if let Some(seq) = dispatch.finish() {
                self.wrote(&jid, seq);
                self.rewrites.borrow_mut().insert(seq);
            }
        }
    }

    /// Notes that `seq` writes `room`.
    fn wrote(&self, room: &Jid, seq: u64) {
        self.owned_stored.borrow_mut().clear();
        self.written.borrow_mut().insert(room.clone(), seq);
        self.write_order.borrow_mut().push_back((room.clone(), seq));
    }

    /// Forgets the room writes that are on disk, and lets rooms that
    /// emptied meanwhile leave memory.
    fn forget_committed(&self, env: &Host) {
        let committed = env.store.committed_seq();
        loop {
            let landed = {
                let mut order = self.write_order.borrow_mut();
                match order.front() {
                    Some((_, seq)) if *seq <= committed => order.pop_front(),
                    _ => None,
                }
            };
            let Some((room, seq)) = landed else {
                return;
            };
            self.rewrites.borrow_mut().remove(&seq);
            let mut written = self.written.borrow_mut();
            if written.get(&room) == Some(&seq) {
                written.remove(&room);
                drop(written);
                self.maybe_unload(env, &room);
            }
        }
    }

    /// Makes sure a stored room is in memory. A room whose last change is
    /// still on its way to disk is not reloaded (it was destroyed or is
    /// being unloaded): the disk does not know its latest state yet.
    fn ensure_loaded(&self, env: &Host, jid: &Jid) -> Loaded {
        if self.rooms.borrow().contains_key(jid) {
            return Loaded::InMemory;
        }
        if self.has_pending(env, jid) {
            return Loaded::Unavailable;
        }
        if self.unsaved.borrow().get(jid) == Some(&Unsaved::Destroyed) {
            // Its removal failed: what the disk holds is gone.
            return Loaded::Missing;
        }
        let stored = match env.store.muc_rooms().load(jid.as_str()) {
            Ok(Some(stored)) => stored,
            Ok(None) => return Loaded::Missing,
            Err(e) => {
                log::error!("loading room {jid}: {e}");
                return Loaded::Unavailable;
            }
        };
        let record = match RoomRecord::decode(&stored.record) {
            Ok(r) => r,
            Err(e) => {
                log::error!("room {jid} is unreadable: {e}");
                return Loaded::Unavailable;
            }
        };
        let mut affiliations = Vec::with_capacity(stored.affiliations.len());
        for (user, bytes) in stored.affiliations {
            match (Jid::parse(&user), AffiliationRecord::decode(&bytes)) {
                (Ok(u), Ok(a)) => affiliations.push((u, a)),
                _ => log::error!("room {jid}: skipping an unreadable affiliation of {user}"),
            }
        }
        let settings = &env.config.muc;
        let max_len = record.config.history_length.min(settings.max_history) as usize;
        let (history, legacy) = archive::join_history(env, jid, stored.history, max_len);
        let mut room = Room::restore(jid.clone(), record, affiliations, history);
        room.legacy_history = legacy;
        log::debug!("loaded room {jid}");
        self.rooms.borrow_mut().insert(jid.clone(), room);
        Loaded::InMemory
    }

    /// How many stored rooms `user` owns (unreadable records count as
    /// not owned; a failed read as none: creation is then not refused).
    fn stored_rooms_owned_by(&self, env: &Host, user: &Jid) -> usize {
        if let Some(&count) = self.owned_stored.borrow().get(user) {
            return count;
        }
        let count = match env.store.muc_rooms().affiliations_of(user.as_str()) {
            Ok(records) => records
                .iter()
                .filter_map(|bytes| AffiliationRecord::decode(bytes).ok())
                .filter(|r| r.affiliation == roles::Affiliation::Owner)
                .count(),
            Err(e) => {
                log::error!("counting the rooms {user} owns: {e}");
                return 0;
            }
        };
        let mut cache = self.owned_stored.borrow_mut();
        if cache.len() >= OWNED_STORED_CACHE_USERS {
            cache.clear();
        }
        cache.insert(user.clone(), count);
        count
    }

    /// Creates a room for a first join, if the user may create one.
    fn create(
        &self,
        env: &Host,
        jid: &Jid,
        creator: &Jid,
        now: SystemTime,
    ) -> Result<(), StanzaError> {
        let settings = &env.config.muc;
        let allowed = match settings.room_creation {
            RoomCreation::Anyone => true,
            RoomCreation::Local => env.is_local_host(creator.domain()),
            RoomCreation::Admins => self.is_server_admin(creator),
        };
        if !allowed {
            return Err(StanzaError::new(Condition::NotAllowed)
                .with_text("creating rooms is restricted on this service"));
        }
        let stored = env.store.muc_rooms().count().unwrap_or(0) as usize;
        let temporary = self
            .rooms
            .borrow()
            .values()
            .filter(|r| !r.config.persistent)
            .count();
        if stored + temporary >= settings.max_rooms {
            return Err(StanzaError::new(Condition::ResourceConstraint)
                .with_type(ErrorType::Wait)
                .with_text(format!(
                    "this service has reached its limit of {} rooms",
                    settings.max_rooms
                )));
        }
        if !self.is_server_admin(creator) {
            let bare = creator.to_bare();
            let owned_temporary = self
                .rooms
                .borrow()
                .values()
                .filter(|r| {
                    !r.config.persistent && r.stored_affiliation(&bare) == roles::Affiliation::Owner
                })
                .count();
            // Stored rooms count too: one user must not fill the service
            // (and the disk) with rooms made persistent one by one.
            let owned_stored = if owned_temporary < settings.max_rooms_per_user {
                self.stored_rooms_owned_by(env, &bare)
            } else {
                0
            };
            if owned_temporary + owned_stored >= settings.max_rooms_per_user {
                return Err(StanzaError::new(Condition::ResourceConstraint)
                    .with_type(ErrorType::Wait)
                    .with_text(format!(
                        "you may own at most {} rooms",
                        settings.max_rooms_per_user
                    )));
            }
        }
        let bounds = config::ConfigBounds {
            default_history: settings.default_history,
            max_history: settings.max_history,
            max_occupants: settings.max_occupants,
        };
        let mut room_config = config::RoomConfig::new(&bounds);
        // Archived once it is made persistent, unless its owner says no.
        room_config.logging = env.config.archive.rooms_by_default;
        let room = Room::create(jid.clone(), creator, room_config, now);
        if let Some(mark) = self.unsaved.borrow_mut().get_mut(jid) {
            // A room of that name whose removal failed: the new room's
            // first write is a whole rewrite, which removes the old one.
            *mark = Unsaved::AsInMemory;
        }
        log::info!("{creator} created room {jid}");
        self.rooms.borrow_mut().insert(jid.clone(), room);
        Ok(())
    }

    /// Submits what a room wrote and routes what it emitted, and lets an
    /// empty room go.
    fn finish(&self, env: &Host, jid: &Jid, mut dispatch: Dispatch<'_>) {
        {
            let mut rooms = self.rooms.borrow_mut();
            if let Some(room) = rooms.get_mut(jid)
                && room.is_empty()
                && !room.destroyed
                && let Some(write) = room.take_history_write()
            {
                dispatch.store_outside(write);
            }
        }
        if let Some(seq) = dispatch.finish() {
            self.wrote(jid, seq);
        }
        self.forget_committed(env);
        self.maybe_unload(env, jid);
    }

    /// Drops an empty (or destroyed) room from memory once nothing about
    /// it is waiting to be written.
    fn maybe_unload(&self, env: &Host, jid: &Jid) {
        if self.has_pending(env, jid) {
            // A destroyed room must not be found again while its removal
            // is being written; it is simply gone from memory.
            let mut rooms = self.rooms.borrow_mut();
            if rooms.get(jid).is_some_and(|r| r.destroyed) {
                rooms.remove(jid);
            }
            return;
        }
        if self.unsaved.borrow().get(jid) == Some(&Unsaved::AsInMemory) {
            // Memory holds the only copy of what failed to be written.
            return;
        }
        let mut rooms = self.rooms.borrow_mut();
        if rooms.get(jid).is_some_and(|r| r.destroyed || r.is_empty()) {
            rooms.remove(jid);
            log::debug!("room {jid} left memory");
        }
    }

    /// Delivers `stanza` after every room write submitted so far.
    fn deliver_after_writes(&self, env: &Host, stanza: Element) {
        if let Some((_, seq)) = self.write_order.borrow().back() {
            env.depend_on(*seq);
        }
        dispatch::deliver(env, stanza);
    }

    /// Queues a write of the history of every room in memory whose history
    /// changed since it was last saved (persistent rooms only), so a crash
    /// loses little. The room's later output waits behind it like behind
    /// any room write, which keeps events in order. Returns how many rooms
    /// were queued.
    pub fn save_changed_history(&self, env: &Host) -> usize {
        self.forget_committed(env);
        self.save_unsaved(env);
        let writes: Vec<(Jid, MucWrite)> = self
            .rooms
            .borrow_mut()
            .iter_mut()
            .filter(|(_, r)| !r.destroyed)
            .filter_map(|(jid, room)| room.take_history_write().map(|w| (jid.clone(), w)))
            .collect();
        let count = writes.len();
        for (jid, write) in writes {
            let seq = env.persist(crate::store::muc_write_op(vec![write]));
            self.wrote(&jid, seq);
        }
        count
    }

    /// Waits until every room write submitted so far is on disk and its
    /// stanzas are released (shutdown, admin commands).
    pub async fn flush(&self, env: &Host<'_>) {
        env.store.flush().await;
        if !self.rewrites.borrow().is_empty() {
            // A failure in that flush queued rewrites behind it.
            env.store.flush().await;
        }
        self.forget_committed(env);
    }
}

fn summary(jid: &str, config: &config::RoomConfig, occupants: usize) -> RoomSummary {
    RoomSummary {
        jid: jid.to_string(),
        name: config.name.clone(),
        persistent: config.persistent,
        public: config.public,
        occupants,
    }
}

/// The MUC service as the route table sees it: one entry per MUC domain,
/// all served by the same rooms.
impl crate::env::Service for Service {
    fn name(&self) -> &str {
        "Chatrooms"
    }

    fn handle(&self, env: &Host, stanza: Element, to: &Jid) {
        handle(self, env, stanza, to);
    }
}

/// Entry point from the router: a stanza to a MUC domain.
pub fn handle(service: &Service, env: &Host, stanza: Element, to: &Jid) {
    let Some(from) = stanza.attr("from").and_then(|f| Jid::parse(f).ok()) else {
        return;
    };
    if to.local().is_none() {
        return host::handle(service, env, stanza, &from, to);
    }
    let jid = to.to_bare();
    let now = env.now();
    match service.ensure_loaded(env, &jid) {
        Loaded::InMemory => {}
        Loaded::Unavailable => {
            return bounce(
                env,
                &stanza,
                StanzaError::new(Condition::ServiceUnavailable).with_type(ErrorType::Wait),
            );
        }
        Loaded::Missing => {
            let kind = Kind::of(&stanza);
            let ty = stanza.attr("type");
            let join = kind == Some(Kind::Presence) && ty.is_none() && to.resource().is_some();
            if join && stanza.get_child("x", NS_MUC).is_none() {
                // §7.2.19: a client that lost track of a room that is gone
                // is told it is not in it; no room is created for it.
                return dispatch::deliver(env, presence::not_in_room(to.as_str(), &from));
            }
            if !join {
                return missing_room(env, &stanza, kind, ty);
            }
            if let Err(e) = service.create(env, &jid, &from, now) {
                return bounce(env, &stanza, e.with_by(jid.as_str()));
            }
        }
    }
    // Archive queries and moderation read the archive, which the room
    // (sans-I/O) does not.
    if to.resource().is_none()
        && Kind::of(&stanza) == Some(Kind::Iq)
        && let Some(ns) = stanza.first_child().map(|p| p.ns.to_string())
    {
        match ns.as_str() {
            crate::stanza::NS_MAM => return archive::query(service, env, &stanza, &jid),
            moderation::NS_MODERATE => return moderation::handle(service, env, &stanza, &jid),
            _ => {}
        }
    }
    let mut dispatch = service.dispatch(env, &jid);
    {
        let mut rooms = service.rooms.borrow_mut();
        let Some(room) = rooms.get_mut(&jid) else {
            return;
        };
        let new_id = || env.new_id();
        let is_admin = |j: &Jid| service.is_server_admin(j);
        let env = service.env(env, now, env.clock(), &is_admin, &new_id);
        room.handle(&env, stanza, &from, to, &mut dispatch);
    }
    service.finish(env, &jid, dispatch);
}

/// A stanza for a room that does not exist (XEP-0045 §17.1.3, §7.2.11,
/// §7.10, §18.2): errors name it as not found; presence that is not a
/// join is dropped, probes refused as for any non-occupant.
fn missing_room(env: &Host, stanza: &Element, kind: Option<Kind>, ty: Option<&str>) {
    let condition = match (kind, ty) {
        (_, Some("error")) => return,
        (Some(Kind::Presence), Some("probe")) => Condition::NotAcceptable,
        (Some(Kind::Presence), None) => Condition::JidMalformed,
        (Some(Kind::Presence), _) => return,
        (Some(Kind::Iq), Some("result")) => return,
        _ => Condition::ItemNotFound,
    };
    let by = stanza
        .attr("to")
        .and_then(|t| Jid::parse(t).ok())
        .map(|j| j.to_bare().to_string())
        .unwrap_or_default();
    bounce(env, stanza, room::muc_error(condition).with_by(by));
}

/// The error reply for `stanza`, written straight into a local client's
/// outbox like every other stanza from the service.
fn bounce(env: &Host, stanza: &Element, error: StanzaError) {
    if let Some(reply) = crate::stanza::error_reply(stanza, &error) {
        dispatch::deliver(env, reply);
    }
}
