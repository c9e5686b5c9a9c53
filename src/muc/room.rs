//! A chat room as a sans-I/O state machine: a stanza addressed to the room
//! (or to one of its occupants) goes in, the stanzas to deliver and the
//! store operations come out through a [`Sink`]. Nothing here touches a
//! socket, a clock or the database; every rule is unit-testable.
//!
//! The rules are split by concern: entering, leaving and presence in
//! `presence.rs`, messages in `message.rs`, `muc#admin` in `admin.rs`,
//! `muc#owner` in `owner.rs`, registration in `register.rs`, discovery in
//! `disco.rs`. This file holds the state and what they share.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Instant, SystemTime};

use crate::config::MucConfig;
use crate::fasthash::FastMap;
use crate::jid::Jid;
use crate::stanza::{self, Condition, Kind, StanzaError};
use crate::store::MucWrite;
use crate::xml::{Element, NS_CLIENT, Prepared};

use super::config::{ConfigBounds, RoomConfig};
use super::history::History;
use super::occupant::Occupant;
use super::record::{AffiliationRecord, RoomRecord, Subject};
use super::roles::{Affiliation, Role};
use super::{NS_MUC_USER, NS_OCCUPANT_ID};

/// A room's history is also bounded in bytes, whatever its configured
/// length, so large messages cannot pin much memory.
pub const MAX_HISTORY_BYTES: usize = 256 * 1024;
/// Longest reason (kick, ban, destroy, invitation) kept or relayed.
pub const MAX_REASON_CHARS: usize = 1024;
/// Longest subject.
pub const MAX_SUBJECT_CHARS: usize = 1024;
/// Private iqs relayed between occupants that may await their answer at
/// once; the oldest route is forgotten beyond this.
const MAX_IQ_ROUTES: usize = 64;

/// What the room needs from outside: the time, the service settings, and
/// who the server administrators are (they act as room owners).
pub struct Env<'a> {
    pub now: SystemTime,
    pub clock: Instant,
    pub settings: &'a MucConfig,
    pub is_server_admin: &'a dyn Fn(&Jid) -> bool,
    /// XEP-0421: the service secret occupant ids are derived from.
    pub occupant_key: &'a ring::hmac::Key,
    /// A fresh unique id (stanza ids, command sessions).
    pub new_id: &'a dyn Fn() -> String,
    /// Stamps and stanza ids of archived messages (XEP-0313, XEP-0359).
    pub archive: &'a crate::archive::ids::ArchiveIds,
}

impl Env<'_> {
    pub fn bounds(&self) -> ConfigBounds {
        ConfigBounds {
            default_history: self.settings.default_history,
            max_history: self.settings.max_history,
            max_occupants: self.settings.max_occupants,
        }
    }

    pub fn rate_per_second(&self) -> f64 {
        f64::from(self.settings.messages_per_minute) / 60.0
    }
}

/// Where a room's output goes. The service delivers it; tests record it.
pub trait Sink {
    /// One stanza for one recipient (its `to` is set).
    fn emit(&mut self, stanza: Element);
    /// One stanza for many recipients; only `to` differs, so it can be
    /// serialized once.
    fn broadcast(&mut self, stanza: &Element, to: &[&Jid]);
    /// [`Sink::broadcast`] for a stanza the room already serialized (to
    /// measure it for its history), so that it is not serialized twice.
    fn broadcast_prepared(&mut self, stanza: &Element, prepared: &Prepared, to: &[&Jid]) {
        let _ = prepared;
        self.broadcast(stanza, to);
    }
    /// The answer to the request being handled (an iq result): what the
    /// requester is told once the store operations before it are durable.
    fn reply(&mut self, reply: Element);
    /// A change to persist. Emitted before the stanzas that announce it:
    /// everything after a store operation waits until it is on disk.
    fn store(&mut self, op: MucWrite);
}

/// Who did something to an occupant, as `<actor/>` shows it.
#[derive(Clone, Debug)]
pub struct Actor {
    pub nick: Option<String>,
    pub jid: Jid,
}

/// How an occupant's presence is announced (see [`Room::announce`]).
#[derive(Default)]
pub struct Change<'a> {
    pub unavailable: bool,
    /// The role shown; the occupant's current one when `None`.
    pub role: Option<Role>,
    /// Status codes for everyone.
    pub codes: &'a [u16],
    /// Status codes for the occupant itself, besides 110.
    pub self_codes: &'a [u16],
    pub actor: Option<&'a Actor>,
    pub reason: Option<&'a str>,
    /// Status 303: the nick the occupant changes to.
    pub new_nick: Option<&'a str>,
    pub destroy: Option<&'a Element>,
    /// Presence children to show instead of the occupant's own.
    pub payload: Option<&'a [Element]>,
    /// Whether occupants other than the subject learn of it, when the
    /// roles to broadcast alone do not decide (a role change makes an
    /// occupant appear or disappear).
    pub visible: Option<bool>,
    /// Only the occupant itself is told (room destruction).
    pub only_self: bool,
    /// A client of the occupant that gets no self-presence from this
    /// announcement (the one joining, which gets its own).
    pub skip_session: Option<&'a Jid>,
}

/// A private iq relayed from one occupant to another, awaiting its answer.
struct IqRoute {
    id: String,
    origin: Jid,
    origin_id: String,
    /// Who must answer.
    target: Jid,
    /// The nick the answer appears to come from.
    target_nick: String,
}

pub struct Room {
    pub jid: Jid,
    pub config: RoomConfig,
    /// Created and not configured yet (§10.1.1): only owners may enter.
    pub locked: bool,
    /// Just created by the join being handled: its self-presence gets 201.
    pub(super) just_created: bool,
    pub created: SystemTime,
    pub subject: Option<Subject>,
    /// Bare JID -> affiliation, reserved nick and reason. Never holds
    /// `Affiliation::None`: having none is not being listed.
    pub(super) affiliations: FastMap<Jid, AffiliationRecord>,
    /// By nickname, in a stable order.
    pub(super) occupants: BTreeMap<String, Occupant>,
    /// Real full JID -> nickname.
    pub(super) by_real: FastMap<Jid, String>,
    pub(super) history: History,
    /// A history saved whole by an older Perch is stored (the archive
    /// holds it now): deleted at the room's next write.
    pub(super) legacy_history: bool,
    iq_routes: VecDeque<IqRoute>,
    pub destroyed: bool,
}

impl Room {
    /// A room created by `owner`'s join: locked until configured.
    pub fn create(jid: Jid, owner: &Jid, config: RoomConfig, now: SystemTime) -> Room {
        let mut room = Room::empty(jid, config, now);
        room.locked = true;
        room.just_created = true;
        room.affiliations.insert(
            owner.to_bare(),
            AffiliationRecord {
                affiliation: Affiliation::Owner,
                nick: None,
                reason: None,
            },
        );
        room
    }

    /// A stored room brought back into memory.
    pub fn restore(
        jid: Jid,
        record: RoomRecord,
        affiliations: Vec<(Jid, AffiliationRecord)>,
        history: History,
    ) -> Room {
        let mut room = Room::empty(jid, record.config, record.created);
        room.subject = record.subject;
        room.history = history;
        room.affiliations = affiliations
            .into_iter()
            .filter(|(_, r)| r.affiliation != Affiliation::None)
            .collect();
        room
    }

    fn empty(jid: Jid, config: RoomConfig, now: SystemTime) -> Room {
        Room {
            jid,
            config,
            locked: false,
            just_created: false,
            created: now,
            subject: None,
            affiliations: FastMap::default(),
            occupants: BTreeMap::new(),
            by_real: FastMap::default(),
            history: History::default(),
            legacy_history: false,
            iq_routes: VecDeque::new(),
            destroyed: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }

    pub fn occupant_count(&self) -> usize {
        self.occupants.len()
    }

    pub fn occupants(&self) -> impl Iterator<Item = &Occupant> {
        self.occupants.values()
    }

    /// Handles one stanza addressed to the room (`to` is the room's bare
    /// JID or an occupant JID) from `from`, a real JID.
    pub fn handle(
        &mut self,
        env: &Env,
        stanza: Element,
        from: &Jid,
        to: &Jid,
        sink: &mut dyn Sink,
    ) {
        match Kind::of(&stanza) {
            Some(Kind::Presence) => self.on_presence(env, stanza, from, to, sink),
            Some(Kind::Message) => self.on_message(env, stanza, from, to, sink),
            Some(Kind::Iq) => self.on_iq(env, stanza, from, to, sink),
            None => {}
        }
    }

    fn on_iq(&mut self, env: &Env, iq: Element, from: &Jid, to: &Jid, sink: &mut dyn Sink) {
        if let Some(nick) = to.resource() {
            let nick = nick.to_string();
            return self.iq_to_occupant(env, iq, from, &nick, sink);
        }
        let ty = iq.attr("type").unwrap_or_default();
        if ty != "get" && ty != "set" {
            // The room sends no requests of its own to its bare JID.
            return;
        }
        if self.hidden_from(env, from) {
            return self.error(&iq, Condition::ItemNotFound, sink);
        }
        let Some(payload) = iq.first_child() else {
            return self.error(&iq, Condition::BadRequest, sink);
        };
        let get = ty == "get";
        match (payload.ns.as_ref(), payload.name.as_ref()) {
            (super::NS_DISCO_INFO, "query") if get => self.disco_info(&iq, from, sink),
            (super::NS_DISCO_ITEMS, "query") if get => self.disco_items(&iq, from, sink),
            (super::NS_MUC_ADMIN, "query") => self.admin_iq(env, &iq, from, sink),
            (super::NS_MUC_OWNER, "query") => self.owner_iq(env, &iq, from, sink),
            (super::NS_REGISTER, "query") => self.register_iq(env, &iq, from, sink),
            (super::NS_PING, "ping") if get => sink.emit(stanza::iq_result(&iq)),
            (super::NS_DISCO_INFO | super::NS_DISCO_ITEMS | super::NS_PING, _) => {
                self.error(&iq, Condition::BadRequest, sink)
            }
            _ => self.error(&iq, Condition::ServiceUnavailable, sink),
        }
    }

    /// A locked room does not exist yet for anyone but its owners
    /// (§7.2.11: item-not-found).
    pub(super) fn hidden_from(&self, env: &Env, from: &Jid) -> bool {
        self.locked && self.affiliation(env, &from.to_bare()) != Affiliation::Owner
    }

    // ---- lookups ----

    /// The affiliation in force: server admins act as owners.
    pub fn affiliation(&self, env: &Env, bare: &Jid) -> Affiliation {
        if (env.is_server_admin)(bare) {
            return Affiliation::Owner;
        }
        self.stored_affiliation(bare)
    }

    pub fn stored_affiliation(&self, bare: &Jid) -> Affiliation {
        self.affiliations
            .get(bare)
            .map_or(Affiliation::None, |r| r.affiliation)
    }

    pub(super) fn occupant_of(&self, real: &Jid) -> Option<&Occupant> {
        self.by_real
            .get(real)
            .and_then(|nick| self.occupants.get(nick))
    }

    /// The user who reserved `nick`, if anyone did.
    pub(super) fn reserved_by(&self, nick: &str) -> Option<&Jid> {
        self.affiliations
            .iter()
            .find(|(_, r)| r.nick.as_deref() == Some(nick))
            .map(|(jid, _)| jid)
    }

    pub(super) fn owners(&self) -> Vec<&Jid> {
        self.with_affiliation(Affiliation::Owner)
    }

    pub(super) fn with_affiliation(&self, affiliation: Affiliation) -> Vec<&Jid> {
        let mut list: Vec<&Jid> = self
            .affiliations
            .iter()
            .filter(|(_, r)| r.affiliation == affiliation)
            .map(|(j, _)| j)
            .collect();
        list.sort();
        list
    }

    /// `room@service/nick` as a string, for `from` attributes.
    pub(super) fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{nick}", self.jid)
    }

    /// Whether `viewer` sees real JIDs: everyone in a non-anonymous room,
    /// moderators in a semi-anonymous one (§7.2.3, §7.2.4).
    pub(super) fn sees_jids(&self, viewer: &Occupant) -> bool {
        self.config.non_anonymous() || viewer.role == Role::Moderator
    }

    pub(super) fn all_sessions(&self) -> Vec<&Jid> {
        self.occupants
            .values()
            .flat_map(|o| o.session_jids())
            .collect()
    }

    /// XEP-0421: an HMAC of room and user under the service secret, so it
    /// is stable for a user in a room and reveals nothing about them.
    pub(super) fn occupant_id(&self, env: &Env, bare: &Jid) -> String {
        let mut ctx = ring::hmac::Context::with_key(env.occupant_key);
        ctx.update(self.jid.as_str().as_bytes());
        ctx.update(&[0]);
        ctx.update(bare.as_str().as_bytes());
        let tag = ctx.sign();
        let bytes = tag.as_ref();
        crate::ids::hex(bytes.get(..16).unwrap_or(bytes))
    }

    // ---- errors ----

    pub(super) fn error(&self, stanza: &Element, condition: Condition, sink: &mut dyn Sink) {
        self.error_with(stanza, muc_error(condition), sink);
    }

    pub(super) fn error_with(&self, stanza: &Element, error: StanzaError, sink: &mut dyn Sink) {
        let error = error.with_by(self.jid.as_str());
        if let Some(reply) = stanza::error_reply(stanza, &error) {
            sink.emit(reply);
        }
    }

    // ---- presence ----

    /// The presence of `occ` as one recipient sees it. `self_view`: the
    /// recipient is the occupant (status 110, its own JID); `sees_jids`:
    /// the recipient may learn real JIDs. `session` picks whose presence
    /// and JID are shown (the primary session when `None`).
    pub(super) fn presence_of(
        &self,
        env: &Env,
        occ: &Occupant,
        change: &Change,
        self_view: bool,
        sees_jids: bool,
        session: Option<&Jid>,
    ) -> Element {
        let shown = session
            .and_then(|j| occ.session(j))
            .or_else(|| occ.primary());
        let mut p =
            Element::new("presence", NS_CLIENT).with_attr("from", self.occupant_jid(&occ.nick));
        if change.unavailable {
            p.set_attr("type", "unavailable");
        }
        let payload = change
            .payload
            .or_else(|| shown.map(|s| s.presence.as_slice()))
            .unwrap_or_default();
        for child in payload {
            p.push_child(child.clone());
        }
        // One item per client for those who may see real JIDs (the shown
        // client first), as Prosody and ejabberd do; one without a JID for
        // the others.
        let affiliation = self.affiliation(env, &occ.bare);
        let role = change.role.unwrap_or(occ.role);
        let item_for = |jid: Option<&Jid>| {
            let mut item = Element::new("item", NS_MUC_USER)
                .with_attr("affiliation", affiliation.as_str())
                .with_attr("role", role.as_str());
            if let Some(jid) = jid {
                item.set_attr("jid", jid.as_str());
            }
            if let Some(nick) = change.new_nick {
                item.set_attr("nick", nick);
            }
            // The actor's JID only for those who may see real JIDs;
            // someone acting from outside the room has no nick to show
            // instead.
            if let Some(actor) = change.actor
                && (sees_jids || actor.nick.is_some())
            {
                let mut a = Element::new("actor", NS_MUC_USER);
                if let Some(nick) = &actor.nick {
                    a.set_attr("nick", nick.as_str());
                }
                if sees_jids {
                    a.set_attr("jid", actor.jid.as_str());
                }
                item.push_child(a);
            }
            if let Some(reason) = change.reason {
                item.push_child(Element::new("reason", NS_MUC_USER).with_text(reason));
            }
            item
        };
        let mut x = Element::new("x", NS_MUC_USER);
        match shown {
            Some(first) if self_view || sees_jids => {
                x.push_child(item_for(Some(&first.jid)));
                for other in occ.sessions.iter().filter(|s| s.jid != first.jid) {
                    x.push_child(item_for(Some(&other.jid)));
                }
            }
            _ => x.push_child(item_for(None)),
        }
        if let Some(destroy) = change.destroy {
            x.push_child(destroy.clone());
        }
        for code in change.codes {
            x.push_child(status(*code));
        }
        if self_view {
            for code in change.self_codes {
                x.push_child(status(*code));
            }
            x.push_child(status(110));
        }
        p.push_child(x);
        p.push_child(
            Element::new("occupant-id", NS_OCCUPANT_ID).with_attr("id", occ.occupant_id.as_str()),
        );
        p
    }

    /// Tells every occupant about `occ` (which may already be out of the
    /// map, as when it leaves): the others through at most two broadcasts
    /// (with and without real JIDs), each of its own clients with a
    /// self-presence.
    pub(super) fn announce(&self, env: &Env, occ: &Occupant, change: &Change, sink: &mut dyn Sink) {
        let visible = change
            .visible
            .unwrap_or_else(|| self.config.broadcast.includes(occ.role));
        if visible && !change.only_self {
            let mut with_jid: Vec<&Jid> = Vec::new();
            let mut without: Vec<&Jid> = Vec::new();
            for other in self.occupants.values().filter(|o| o.nick != occ.nick) {
                let list = if self.sees_jids(other) {
                    &mut with_jid
                } else {
                    &mut without
                };
                list.extend(other.session_jids());
            }
            if !with_jid.is_empty() {
                sink.broadcast(
                    &self.presence_of(env, occ, change, false, true, None),
                    &with_jid,
                );
            }
            if !without.is_empty() {
                sink.broadcast(
                    &self.presence_of(env, occ, change, false, false, None),
                    &without,
                );
            }
        }
        let sees = self.sees_jids(occ);
        for session in occ
            .sessions
            .iter()
            .filter(|s| Some(&s.jid) != change.skip_session)
        {
            let mut p = self.presence_of(env, occ, change, true, sees, Some(&session.jid));
            p.set_attr("to", session.jid.as_str());
            sink.emit(p);
        }
    }

    /// Removes an occupant (all its clients) and announces it as
    /// unavailable with the given details.
    pub(super) fn remove_occupant(
        &mut self,
        env: &Env,
        nick: &str,
        change: Change,
        sink: &mut dyn Sink,
    ) -> Option<Occupant> {
        let occ = self.occupants.remove(nick)?;
        for jid in occ.session_jids() {
            self.by_real.remove(jid);
        }
        let change = Change {
            unavailable: true,
            role: Some(Role::None),
            ..change
        };
        self.announce(env, &occ, &change, sink);
        Some(occ)
    }

    /// A message from the room itself (`<x>` with status codes, an
    /// affiliation notice) to every occupant who may read it.
    pub(super) fn room_message(
        &self,
        payload: Element,
        only_jid_viewers: bool,
        sink: &mut dyn Sink,
    ) {
        let to: Vec<&Jid> = self
            .occupants
            .values()
            .filter(|o| !only_jid_viewers || self.sees_jids(o))
            .flat_map(|o| o.session_jids())
            .collect();
        if to.is_empty() {
            return;
        }
        let msg = Element::new("message", NS_CLIENT)
            .with_attr("from", self.jid.as_str())
            .with_attr("type", "groupchat")
            .with_child(payload);
        sink.broadcast(&msg, &to);
    }

    // ---- persistence ----

    pub fn record(&self) -> RoomRecord {
        RoomRecord {
            config: self.config.clone(),
            subject: self.subject.clone(),
            created: self.created,
        }
    }

    pub(super) fn save_room(&self, sink: &mut dyn Sink) {
        if self.config.persistent {
            sink.store(MucWrite::PutRoom {
                room: self.jid.to_string(),
                value: self.record().encode(),
            });
        }
    }

    pub(super) fn save_affiliation(&self, bare: &Jid, sink: &mut dyn Sink) {
        if !self.config.persistent {
            return;
        }
        let room = self.jid.to_string();
        let user = bare.to_string();
        sink.store(match self.affiliations.get(bare) {
            Some(r) => MucWrite::PutAffiliation {
                room,
                user,
                value: r.encode(),
            },
            None => MucWrite::DeleteAffiliation { room, user },
        });
    }

    /// Everything, for a room that just became persistent.
    pub(super) fn save_everything(&self, sink: &mut dyn Sink) {
        self.save_room(sink);
        let mut users: Vec<&Jid> = self.affiliations.keys().collect();
        users.sort();
        for user in users {
            self.save_affiliation(user, sink);
        }
    }

    /// The whole room, replacing what is stored, in one write: after a
    /// write of it failed, when the disk may be behind memory. A room that
    /// is not persistent (any more) is removed from the disk.
    pub(super) fn save_again(&mut self, sink: &mut dyn Sink) {
        if self.config.persistent {
            // Its archive stays: each message's write stands on its own.
            sink.store(MucWrite::ResetRoom {
                room: self.jid.to_string(),
            });
            self.save_everything(sink);
        } else {
            sink.store(MucWrite::DeleteRoom {
                room: self.jid.to_string(),
            });
        }
    }

    /// The removal of a history an older Perch saved whole (the archive
    /// has the messages now), once; `None` when there is none.
    pub fn take_history_write(&mut self) -> Option<MucWrite> {
        if !std::mem::take(&mut self.legacy_history) {
            return None;
        }
        Some(MucWrite::PutHistory {
            room: self.jid.to_string(),
            value: Vec::new(),
        })
    }

    // ---- private iqs between occupants (§18.3) ----

    pub(super) fn remember_iq_route(
        &mut self,
        id: String,
        origin: Jid,
        origin_id: String,
        target: Jid,
        target_nick: String,
    ) {
        if self.iq_routes.len() >= MAX_IQ_ROUTES {
            self.iq_routes.pop_front();
        }
        self.iq_routes.push_back(IqRoute {
            id,
            origin,
            origin_id,
            target,
            target_nick,
        });
    }

    /// The route an answer (by id, from the expected replier) belongs to.
    pub(super) fn take_iq_route(&mut self, id: &str, from: &Jid) -> Option<(Jid, String, String)> {
        let pos = self
            .iq_routes
            .iter()
            .position(|r| r.id == id && (r.target == *from || r.target == from.to_bare()))?;
        let r = self.iq_routes.remove(pos)?;
        Some((r.origin, r.origin_id, r.target_nick))
    }
}

/// A stanza error as XEP-0045 types it: `not-acceptable` is a `cancel`
/// there (§7.2.1 lockdown, XEP-0410 non-occupants), where RFC 6120's usual
/// type would be `modify`.
pub fn muc_error(condition: Condition) -> StanzaError {
    let error = StanzaError::new(condition);
    if condition == Condition::NotAcceptable {
        error.with_type(crate::stanza::ErrorType::Cancel)
    } else {
        error
    }
}

pub(super) fn status(code: u16) -> Element {
    Element::new("status", NS_MUC_USER).with_attr("code", code.to_string())
}

/// A reason as given, cut to [`MAX_REASON_CHARS`].
pub(super) fn bounded_reason(text: String) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(text.chars().take(MAX_REASON_CHARS).collect())
}
