//! One chat room (XEP-0045) driven by stanzas the input chooses: joins
//! (with and without password and history), leaving, nick changes,
//! groupchat, subjects, private messages, role and affiliation changes,
//! configuration (destruction included), list requests, invitations,
//! voice requests, registration, client errors; from four users with two
//! clients each, a server admin and a stranger. As the service does, an
//! empty room leaves memory and a persistent one comes back from what it
//! stored.
//!
//! Checked after every stanza: it never panics; a room that is not
//! destroyed has an owner; no occupant has the role none, an outcast
//! affiliation, or (in a members-only room) less than membership; admins
//! and owners present are moderators (XEP-0045 §5.1.2, §5.2); a join
//! never takes the room past its occupant limit (admins and owners get
//! the small allowance of §7.2.10); every client is in at most one
//! occupant; a real JID in a presence or notice reaches only those who
//! may see it (moderators, or everyone in a non-anonymous room: §7.2.3,
//! §7.2.4); and a persistent room brought back from its writes is the
//! room that left memory.
#![no_main]

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use perch::archive::ids::{ArchiveIds, time_of};
use perch::archive::page::parse_stored;
use perch::config::MucConfig;
use perch::jid::Jid;
use perch::muc::config::{ConfigBounds, RoomConfig};
use perch::muc::history::History;
use perch::muc::record::{AffiliationRecord, RoomRecord, decode_history};
use perch::muc::roles::{Affiliation, Role};
use perch::muc::room::{Env, MAX_HISTORY_BYTES, Room, Sink};
use perch::muc::{
    NS_MUC, NS_MUC_ADMIN, NS_MUC_OWNER, NS_MUC_REGISTER, NS_MUC_REQUEST, NS_MUC_USER, NS_REGISTER,
};
use perch::store::MucWrite;
use perch::store::archive::ArchiveRecord;
use perch::xml::{Element, NS_CLIENT};

const ROOM: &str = "room@muc.example";
const NS_DATA: &str = "jabber:x:data";
const NS_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";

/// Every client that sends anything; `root` is a server admin.
const CLIENTS: [&str; 10] = [
    "owner@example/desk",
    "owner@example/phone",
    "alice@example/desk",
    "alice@example/phone",
    "bob@example/desk",
    "bob@example/phone",
    "carol@example/desk",
    "carol@example/phone",
    "root@example/console",
    "mallory@evil.example/x",
];
/// Every user an affiliation can name: the owners of the clients.
const USERS: [&str; 6] = [
    "owner@example",
    "alice@example",
    "bob@example",
    "carol@example",
    "root@example",
    "mallory@evil.example",
];
/// What an item's `jid` may say: users, a full JID, nonsense.
const JID_ATTRS: [&str; 8] = [
    "owner@example",
    "alice@example",
    "bob@example",
    "carol@example",
    "root@example",
    "mallory@evil.example",
    "alice@example/desk",
    "@@",
];
const NICKS: [&str; 9] = [
    "owner", "alice", "bob", "carol", "root", "m", "Alice", " ", "\u{2168}",
];
const ROLES: [&str; 5] = ["none", "visitor", "participant", "moderator", "bogus"];
const AFFILIATIONS: [&str; 6] = ["outcast", "none", "member", "admin", "owner", "x"];
const PASSWORD: &str = "secret";

struct Tape<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Tape<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.byte()) % from.len()]
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 != 0
    }

    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("a JID of the fuzz target")
}

/// What a room asked to store, applied like the database would.
#[derive(Default)]
struct Stored {
    record: Option<Vec<u8>>,
    affiliations: BTreeMap<String, Vec<u8>>,
    history: Option<Vec<u8>>,
    /// The room's archive, by stamp.
    archive: BTreeMap<u64, ArchiveRecord>,
}

impl Stored {
    fn apply(&mut self, op: MucWrite) {
        match op {
            MucWrite::PutRoom { value, .. } => self.record = Some(value),
            MucWrite::DeleteRoom { .. } => *self = Stored::default(),
            MucWrite::ResetRoom { .. } => {
                self.record = None;
                self.affiliations.clear();
                self.history = None;
            }
            MucWrite::Archive { record, .. } => {
                self.archive.insert(record.stamp, record);
            }
            MucWrite::ArchiveReplace {
                stamp, flags, xml, ..
            } => {
                if let Some(r) = self.archive.get_mut(&stamp) {
                    r.flags = flags;
                    r.xml = xml;
                }
            }
            MucWrite::ArchiveTrim { before, .. } => {
                self.archive.retain(|&stamp, _| stamp >= before);
            }
            MucWrite::PutAffiliation { user, value, .. } => {
                self.affiliations.insert(user, value);
            }
            MucWrite::DeleteAffiliation { user, .. } => {
                self.affiliations.remove(&user);
            }
            MucWrite::PutHistory { value, .. } => self.history = Some(value),
        }
    }

    /// The room as the service loads it from the database.
    fn load(&self, settings: &MucConfig) -> Option<Room> {
        let record = RoomRecord::decode(self.record.as_ref()?).expect("a stored room decodes");
        let affiliations = self
            .affiliations
            .iter()
            .map(|(user, bytes)| {
                let a = AffiliationRecord::decode(bytes).expect("a stored affiliation decodes");
                (jid(user), a)
            })
            .collect();
        let max_len = record.config.history_length.min(settings.max_history) as usize;
        let mut archived = History::default();
        for r in self.archive.values().rev().take(max_len).rev() {
            let stanza = parse_stored(&r.xml).expect("an archived message parses");
            archived.push_sized(
                stanza,
                r.xml.len(),
                time_of(r.stamp),
                r.stamp,
                max_len,
                MAX_HISTORY_BYTES,
            );
        }
        let history = match &self.history {
            _ if !archived.is_empty() => archived,
            Some(bytes) if !bytes.is_empty() => History::from_stored(
                decode_history(bytes).expect("a stored history decodes"),
                max_len,
                MAX_HISTORY_BYTES,
            ),
            _ => History::default(),
        };
        Some(Room::restore(jid(ROOM), record, affiliations, history))
    }
}

/// Everything a room sent in one step: each stanza with its recipients.
#[derive(Default)]
struct Recorder {
    sent: Vec<(Element, Vec<Jid>)>,
    writes: Vec<MucWrite>,
}

impl Recorder {
    fn one(&mut self, stanza: Element) {
        let to = stanza
            .attr("to")
            .and_then(|t| Jid::parse(t).ok())
            .into_iter()
            .collect();
        self.sent.push((stanza, to));
    }
}

impl Sink for Recorder {
    fn emit(&mut self, stanza: Element) {
        self.one(stanza);
    }
    fn broadcast(&mut self, stanza: &Element, to: &[&Jid]) {
        self.sent
            .push((stanza.clone(), to.iter().map(|j| (*j).clone()).collect()));
    }
    fn reply(&mut self, reply: Element) {
        self.one(reply);
    }
    fn store(&mut self, op: MucWrite) {
        self.writes.push(op);
    }
}

/// Who could see real JIDs at one moment.
struct View {
    non_anonymous: bool,
    moderators: HashSet<Jid>,
}

impl View {
    fn of(room: Option<&Room>) -> View {
        let Some(room) = room else {
            return View {
                non_anonymous: false,
                moderators: HashSet::new(),
            };
        };
        View {
            non_anonymous: room.config.non_anonymous(),
            moderators: room
                .occupants()
                .filter(|o| o.role == Role::Moderator)
                .flat_map(|o| o.session_jids().cloned())
                .collect(),
        }
    }

    fn may_see(&self, viewer: &Jid) -> bool {
        self.non_anonymous || self.moderators.contains(viewer)
    }
}

struct World {
    room: Option<Room>,
    stored: Stored,
    settings: MucConfig,
    key: ring::hmac::Key,
    archive: ArchiveIds,
    now: SystemTime,
    clock: Instant,
}

fn is_server_admin(j: &Jid) -> bool {
    j.bare_str() == "root@example"
}

fn new_id() -> String {
    "id1".to_string()
}

fn room_env<'a>(
    settings: &'a MucConfig,
    key: &'a ring::hmac::Key,
    archive: &'a ArchiveIds,
    now: SystemTime,
    clock: Instant,
) -> Env<'a> {
    Env {
        now,
        clock,
        settings,
        is_server_admin: &is_server_admin,
        occupant_key: key,
        new_id: &new_id,
        archive,
    }
}

impl World {
    fn env(&self) -> Env<'_> {
        room_env(
            &self.settings,
            &self.key,
            &self.archive,
            self.now,
            self.clock,
        )
    }

    fn bounds(&self) -> ConfigBounds {
        ConfigBounds {
            default_history: self.settings.default_history,
            max_history: self.settings.max_history,
            max_occupants: self.settings.max_occupants,
        }
    }

    /// One stanza to the room (or to an occupant), as the service hands it
    /// over: the room loaded or created first, let go of when empty.
    fn deliver(&mut self, stanza: Element) {
        let from = jid(stanza.attr("from").expect("from"));
        // The router delivers nothing to an address that does not parse.
        let Some(to) = stanza.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return;
        };
        if self.room.is_none() {
            self.room = self.stored.load(&self.settings);
        }
        if self.room.is_none() {
            let join = stanza.name == "presence"
                && stanza.attr("type").is_none()
                && to.resource().is_some()
                && stanza.get_child("x", NS_MUC).is_some();
            if !join {
                return;
            }
            let config = RoomConfig::new(&self.bounds());
            self.room = Some(Room::create(jid(ROOM), &from, config, self.now));
        }
        let before = View::of(self.room.as_ref());
        let count_before = self.room.as_ref().map_or(0, Room::occupant_count);
        let mut rec = Recorder::default();
        let env = room_env(
            &self.settings,
            &self.key,
            &self.archive,
            self.now,
            self.clock,
        );
        let Some(room) = self.room.as_mut() else {
            return;
        };
        room.handle(&env, stanza, &from, &to, &mut rec);
        let joiner_affiliation = room.affiliation(&env, &from.to_bare());
        if room.is_empty()
            && !room.destroyed
            && let Some(write) = room.take_history_write()
        {
            rec.writes.push(write);
        }
        for op in rec.writes.drain(..) {
            self.stored.apply(op);
        }
        let after = View::of(self.room.as_ref());
        check_privacy(&before, &after, &rec.sent);
        self.check(count_before, joiner_affiliation);
        self.maybe_unload();
    }

    fn check(&self, count_before: usize, joiner_affiliation: Affiliation) {
        let Some(room) = &self.room else {
            return;
        };
        if room.destroyed {
            assert!(room.is_empty(), "a destroyed room keeps occupants");
            return;
        }
        let env = self.env();
        assert!(
            USERS
                .iter()
                .any(|u| room.stored_affiliation(&jid(u)) == Affiliation::Owner),
            "the room has no owner"
        );
        if room.config.persistent {
            let mut reserved = HashSet::new();
            for (user, bytes) in &self.stored.affiliations {
                let record =
                    AffiliationRecord::decode(bytes).expect("a stored affiliation decodes");
                assert_eq!(
                    Some(record.affiliation),
                    Some(room.stored_affiliation(&jid(user))).filter(|a| *a != Affiliation::None),
                    "{user}'s stored affiliation is not the room's"
                );
                if let Some(nick) = record.nick {
                    assert!(reserved.insert(nick.clone()), "{nick} is reserved twice");
                }
            }
        }
        let mut clients = HashSet::new();
        for occ in room.occupants() {
            let nick = &occ.nick;
            assert_ne!(occ.role, Role::None, "{nick} stays with the role none");
            assert!(!occ.sessions.is_empty(), "{nick} has no client");
            for s in &occ.sessions {
                assert_eq!(
                    s.jid.to_bare(),
                    occ.bare,
                    "{nick}: a client of another user"
                );
                assert!(
                    clients.insert(s.jid.clone()),
                    "{} is in two occupants",
                    s.jid
                );
            }
            let affiliation = room.affiliation(&env, &occ.bare);
            assert_ne!(
                affiliation,
                Affiliation::Outcast,
                "outcast {nick} is in the room"
            );
            if room.config.members_only {
                assert!(
                    affiliation >= Affiliation::Member,
                    "{nick} ({affiliation:?}) is in a members-only room"
                );
            }
            if affiliation >= Affiliation::Admin {
                assert_eq!(
                    occ.role,
                    Role::Moderator,
                    "{nick} is {affiliation:?} but not a moderator"
                );
            }
        }
        let count = room.occupant_count();
        if count > count_before {
            let limit = room.config.occupant_limit(&self.bounds());
            let allowed = if joiner_affiliation >= Affiliation::Admin {
                limit + limit / 10 + 1
            } else {
                limit
            };
            assert!(count <= allowed, "{count} occupants, the limit is {limit}");
        }
    }

    /// As the service does: an empty or destroyed room leaves memory; a
    /// persistent one must come back from its writes as it left.
    fn maybe_unload(&mut self) {
        let Some(room) = &self.room else {
            return;
        };
        if room.destroyed {
            assert!(
                self.stored.record.is_none(),
                "a destroyed room is still stored"
            );
            self.room = None;
            return;
        }
        if !room.is_empty() {
            return;
        }
        if !room.config.persistent {
            assert!(
                self.stored.record.is_none() && self.stored.affiliations.is_empty(),
                "a temporary room left stored data"
            );
        } else {
            let back = self
                .stored
                .load(&self.settings)
                .expect("a persistent room is stored");
            assert_eq!(back.record(), room.record(), "the stored room differs");
            for u in USERS {
                let u = jid(u);
                assert_eq!(
                    back.stored_affiliation(&u),
                    room.stored_affiliation(&u),
                    "{u}'s stored affiliation differs"
                );
            }
        }
        self.room = None;
    }

    /// The nickname `client` is in the room under, if it is.
    fn nick_of(&self, client: &str) -> Option<String> {
        let client = jid(client);
        self.room.as_ref()?.occupants().find_map(|o| {
            o.session_jids()
                .any(|j| *j == client)
                .then(|| o.nick.clone())
        })
    }
}

/// A real JID (an item's or an actor's) reaches only the user itself and
/// those who may see real JIDs: before or after the step, or for a while
/// during it (a request may make someone a moderator and then take the
/// role away again; the room announces each change).
fn check_privacy(before: &View, after: &View, sent: &[(Element, Vec<Jid>)]) {
    let items = |stanza: &Element| -> Vec<Element> {
        stanza
            .get_child("x", NS_MUC_USER)
            .map(|x| {
                x.children()
                    .filter(|c| c.is("item", NS_MUC_USER))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let announced_moderators: HashSet<Jid> = sent
        .iter()
        .filter(|(stanza, _)| stanza.name == "presence")
        .flat_map(|(stanza, _)| items(stanza))
        .filter(|item| item.attr("role") == Some(Role::Moderator.as_str()))
        .filter_map(|item| item.attr("jid").and_then(|j| Jid::parse(j).ok()))
        .collect();
    for (stanza, to) in sent {
        for item in items(stanza) {
            let shown = item.attr("jid").into_iter().chain(
                item.get_child("actor", NS_MUC_USER)
                    .and_then(|a| a.attr("jid")),
            );
            for real in shown {
                let Ok(real) = Jid::parse(real) else {
                    continue;
                };
                for viewer in to {
                    assert!(
                        viewer.bare_str() == real.bare_str()
                            || before.may_see(viewer)
                            || after.may_see(viewer)
                            || announced_moderators.contains(viewer),
                        "{real} shown to {viewer}: {stanza}"
                    );
                }
            }
        }
    }
}

fn presence(from: &str, to: String) -> Element {
    Element::new("presence", NS_CLIENT)
        .with_attr("from", from)
        .with_attr("to", to)
}

fn message(from: &str, to: String, ty: &str) -> Element {
    Element::new("message", NS_CLIENT)
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("type", ty)
}

fn iq(from: &str, to: String, ty: &str, payload: Element) -> Element {
    Element::new("iq", NS_CLIENT)
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("type", ty)
        .with_attr("id", "q1")
        .with_child(payload)
}

fn field(var: &str, values: &[&str]) -> Element {
    let mut f = Element::new("field", NS_DATA).with_attr("var", var);
    for v in values {
        f.push_child(Element::new("value", NS_DATA).with_text(*v));
    }
    f
}

fn form(kind: &str, form_type: Option<&str>, fields: Vec<Element>) -> Element {
    let mut x = Element::new("x", NS_DATA).with_attr("type", kind);
    if let Some(t) = form_type {
        x.push_child(field("FORM_TYPE", &[t]).with_attr("type", "hidden"));
    }
    for f in fields {
        x.push_child(f);
    }
    x
}

fn occupant(nick: &str) -> String {
    format!("{ROOM}/{nick}")
}

/// A subset of `from`, chosen by the bits of one byte.
fn subset<'a>(tape: &mut Tape, from: &[&'a str]) -> Vec<&'a str> {
    let bits = tape.byte();
    from.iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect()
}

/// The next stanza the input describes.
fn next_stanza(world: &World, tape: &mut Tape) -> Element {
    let op = tape.byte() % 16;
    let from = tape.pick(&CLIENTS);
    let own_nick = world.nick_of(from);
    // Mostly the client's own nick when it has one.
    let nick = |tape: &mut Tape| -> String {
        let b = tape.byte();
        match &own_nick {
            Some(n) if b & 0x80 == 0 => n.clone(),
            _ => NICKS[usize::from(b) % NICKS.len()].to_string(),
        }
    };
    match op {
        0 => {
            let nick = nick(tape);
            let mut x = Element::new("x", NS_MUC);
            match tape.byte() % 3 {
                0 => {}
                1 => x.push_child(Element::new("password", NS_MUC).with_text(PASSWORD)),
                _ => x.push_child(Element::new("password", NS_MUC).with_text("nope")),
            }
            let history = tape.byte();
            if history & 1 != 0 {
                x.push_child(
                    Element::new("history", NS_MUC)
                        .with_attr("maxstanzas", (history >> 1).to_string()),
                );
            }
            let mut p = presence(from, occupant(&nick)).with_attr("id", "j1");
            if !tape.byte().is_multiple_of(8) {
                p.push_child(x);
            }
            p.with_child(Element::new("show", NS_CLIENT).with_text("chat"))
        }
        1 => {
            let nick = nick(tape);
            let mut p = presence(from, occupant(&nick)).with_attr("type", "unavailable");
            if tape.flag() {
                p.push_child(Element::new("status", NS_CLIENT).with_text("bye"));
            }
            p
        }
        2 => {
            let nick = nick(tape);
            let mut p = presence(from, occupant(&nick))
                .with_child(Element::new("show", NS_CLIENT).with_text("away"));
            if tape.flag() {
                p.push_child(Element::new("x", NS_MUC));
            }
            p
        }
        3 => {
            let mut m = message(from, ROOM.to_string(), "groupchat")
                .with_child(Element::new("body", NS_CLIENT).with_text("hello"));
            let extra = tape.byte();
            if extra & 1 != 0 {
                m.set_attr("id", "m1");
            }
            if extra & 2 != 0 {
                m.push_child(
                    Element::new("delay", "urn:xmpp:delay")
                        .with_attr("from", ROOM)
                        .with_attr("stamp", "2020-01-01T00:00:00Z"),
                );
            }
            if extra & 4 != 0 {
                m.push_child(Element::new("subject", NS_CLIENT).with_text("both"));
            }
            if extra & 8 != 0 {
                m.push_child(
                    Element::new("occupant-id", "urn:xmpp:occupant-id:0").with_attr("id", "fake"),
                );
            }
            m
        }
        4 => {
            let text = if tape.flag() { "Plans" } else { "" };
            message(from, ROOM.to_string(), "groupchat")
                .with_child(Element::new("subject", NS_CLIENT).with_text(text))
        }
        5 => {
            let nick = nick(tape);
            let ty = if tape.flag() { "chat" } else { "groupchat" };
            message(from, occupant(&nick), ty)
                .with_child(Element::new("body", NS_CLIENT).with_text("psst"))
        }
        6 => {
            let mut query = Element::new("query", NS_MUC_ADMIN);
            for _ in 0..=(tape.byte() % 2) {
                let mut item =
                    Element::new("item", NS_MUC_ADMIN).with_attr("role", tape.pick(&ROLES));
                if tape.flag() {
                    item.set_attr("jid", tape.pick(&CLIENTS));
                } else {
                    item.set_attr("nick", tape.pick(&NICKS));
                }
                if tape.flag() {
                    item.push_child(Element::new("reason", NS_MUC_ADMIN).with_text("because"));
                }
                query.push_child(item);
            }
            iq(from, ROOM.to_string(), "set", query)
        }
        7 => {
            let mut query = Element::new("query", NS_MUC_ADMIN);
            for _ in 0..=(tape.byte() % 3) {
                let mut item = Element::new("item", NS_MUC_ADMIN)
                    .with_attr("affiliation", tape.pick(&AFFILIATIONS));
                let how = tape.byte();
                if how & 1 == 0 {
                    item.set_attr("jid", tape.pick(&JID_ATTRS));
                } else {
                    item.set_attr("nick", tape.pick(&NICKS));
                }
                if how & 2 != 0 {
                    let reserved = if how & 4 != 0 { "" } else { tape.pick(&NICKS) };
                    item.set_attr("nick", reserved);
                }
                if how & 8 != 0 {
                    item.push_child(Element::new("reason", NS_MUC_ADMIN).with_text("because"));
                }
                query.push_child(item);
            }
            iq(from, ROOM.to_string(), "set", query)
        }
        8 => {
            let fields = config_fields(tape);
            let x = form("submit", Some(NS_ROOMCONFIG), fields);
            iq(
                from,
                ROOM.to_string(),
                "set",
                Element::new("query", NS_MUC_OWNER).with_child(x),
            )
        }
        9 => {
            let query = match tape.byte() % 4 {
                0 => {
                    let mut d = Element::new("destroy", NS_MUC_OWNER);
                    if tape.flag() {
                        d.set_attr("jid", "elsewhere@muc.example");
                    }
                    if tape.flag() {
                        d.push_child(Element::new("reason", NS_MUC_OWNER).with_text("moving"));
                    }
                    Element::new("query", NS_MUC_OWNER).with_child(d)
                }
                1 => {
                    Element::new("query", NS_MUC_OWNER).with_child(form("cancel", None, Vec::new()))
                }
                2 => {
                    return iq(
                        from,
                        ROOM.to_string(),
                        "get",
                        Element::new("query", NS_MUC_OWNER),
                    );
                }
                _ => Element::new("query", NS_MUC_OWNER).with_child(form(
                    "submit",
                    Some("urn:example:other"),
                    Vec::new(),
                )),
            };
            iq(from, ROOM.to_string(), "set", query)
        }
        10 => {
            let item = if tape.flag() {
                Element::new("item", NS_MUC_ADMIN)
                    .with_attr("affiliation", tape.pick(&AFFILIATIONS))
            } else {
                Element::new("item", NS_MUC_ADMIN).with_attr("role", tape.pick(&ROLES))
            };
            iq(
                from,
                ROOM.to_string(),
                "get",
                Element::new("query", NS_MUC_ADMIN).with_child(item),
            )
        }
        11 => {
            let child = if tape.flag() {
                Element::new("invite", NS_MUC_USER)
                    .with_attr("to", tape.pick(&JID_ATTRS))
                    .with_child(Element::new("reason", NS_MUC_USER).with_text("come"))
            } else {
                Element::new("decline", NS_MUC_USER).with_attr("to", tape.pick(&CLIENTS))
            };
            message(from, ROOM.to_string(), "normal")
                .with_child(Element::new("x", NS_MUC_USER).with_child(child))
        }
        12 => {
            let fields = if tape.flag() {
                vec![field("muc#role", &["participant"])]
            } else {
                let allow = if tape.flag() { "true" } else { "false" };
                vec![
                    field("muc#role", &["participant"]),
                    field("muc#roomnick", &[tape.pick(&NICKS)]),
                    field("muc#request_allow", &[allow]),
                ]
            };
            message(from, ROOM.to_string(), "normal").with_child(form(
                "submit",
                Some(NS_MUC_REQUEST),
                fields,
            ))
        }
        13 => {
            let query = match tape.byte() % 3 {
                0 => {
                    return iq(
                        from,
                        ROOM.to_string(),
                        "get",
                        Element::new("query", NS_REGISTER),
                    );
                }
                1 => Element::new("query", NS_REGISTER).with_child(form(
                    "submit",
                    Some(NS_MUC_REGISTER),
                    vec![field("muc#register_roomnick", &[tape.pick(&NICKS)])],
                )),
                _ => Element::new("query", NS_REGISTER)
                    .with_child(Element::new("remove", NS_REGISTER)),
            };
            iq(from, ROOM.to_string(), "set", query)
        }
        14 => {
            let nick = nick(tape);
            let error = Element::new("error", NS_CLIENT)
                .with_attr("type", "cancel")
                .with_child(Element::new("gone", "urn:ietf:params:xml:ns:xmpp-stanzas"));
            let mut stanza = match tape.byte() % 3 {
                0 => presence(from, occupant(&nick)),
                1 => message(from, occupant(&nick), "error"),
                _ => Element::new("iq", NS_CLIENT)
                    .with_attr("from", from)
                    .with_attr("to", occupant(&nick))
                    .with_attr("id", "id1"),
            };
            stanza.set_attr("type", "error");
            stanza.with_child(error)
        }
        _ => {
            let nick = nick(tape);
            match tape.byte() % 4 {
                0 => presence(from, occupant(&nick)).with_attr("type", "probe"),
                1 => iq(
                    from,
                    occupant(&nick),
                    "get",
                    Element::new("ping", "urn:xmpp:ping"),
                ),
                2 => Element::new("iq", NS_CLIENT)
                    .with_attr("from", from)
                    .with_attr("to", occupant(&nick))
                    .with_attr("type", "result")
                    .with_attr("id", "id1"),
                _ => iq(
                    from,
                    ROOM.to_string(),
                    "get",
                    Element::new("query", "http://jabber.org/protocol/disco#info"),
                ),
            }
        }
    }
}

/// A room configuration submission: each field present or not by one bit.
fn config_fields(tape: &mut Tape) -> Vec<Element> {
    let bool_value = |b: bool| if b { "1" } else { "0" };
    let present = u16::from_le_bytes([tape.byte(), tape.byte()]);
    let values = u16::from_le_bytes([tape.byte(), tape.byte()]);
    let on = |i: u32| present & (1 << i) != 0;
    let value = |i: u32| values & (1 << i) != 0;
    let mut fields = Vec::new();
    for (i, var) in [
        "muc#roomconfig_membersonly",
        "muc#roomconfig_moderatedroom",
        "muc#roomconfig_persistentroom",
        "muc#roomconfig_changesubject",
        "muc#roomconfig_allowinvites",
        "muc#roomconfig_passwordprotectedroom",
    ]
    .into_iter()
    .enumerate()
    {
        let i = i as u32;
        if on(i) {
            fields.push(field(var, &[bool_value(value(i))]));
        }
    }
    if on(6) {
        fields.push(field("muc#roomconfig_roomsecret", &[PASSWORD]));
    }
    if on(7) {
        let whois = if value(7) { "anyone" } else { "moderators" };
        fields.push(field("muc#roomconfig_whois", &[whois]));
    }
    if on(8) {
        let max = tape.pick(&["none", "1", "2", "3", "x"]);
        fields.push(field("muc#roomconfig_maxusers", &[max]));
    }
    if on(9) {
        let pm = tape.pick(&["anyone", "participants", "moderators", "none"]);
        fields.push(field("muc#roomconfig_allowpm", &[pm]));
    }
    if on(10) {
        fields.push(field(
            "muc#roomconfig_roomowners",
            &subset(tape, &JID_ATTRS),
        ));
    }
    if on(11) {
        fields.push(field(
            "muc#roomconfig_roomadmins",
            &subset(tape, &JID_ATTRS),
        ));
    }
    if on(12) {
        let roles = subset(tape, &["moderator", "participant", "visitor", "none"]);
        fields.push(field("muc#roomconfig_presencebroadcast", &roles));
    }
    if on(13) {
        let length = tape.pick(&["0", "1", "5"]);
        fields.push(field("muc#roomconfig_historylength", &[length]));
    }
    if on(14) {
        fields.push(field("muc#roomconfig_roomname", &["Garden"]));
    }
    fields
}

/// Stanzas per input: enough for long stories, bounded per run.
const MAX_STEPS: usize = 200;

fuzz_target!(|data: &[u8]| {
    let mut tape = Tape {
        bytes: data,
        pos: 0,
    };
    let setup = tape.byte();
    let settings = MucConfig {
        max_occupants: 2 + u32::from(setup & 3),
        max_affiliations: if setup & 4 != 0 { 4 } else { 100 },
        unaffiliated_registration: setup & 8 != 0,
        message_burst: 3,
        ..MucConfig::default()
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut world = World {
        room: None,
        stored: Stored::default(),
        settings,
        key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"fuzz"),
        archive: ArchiveIds::new(b"fuzz", 0),
        now,
        clock: Instant::now(),
    };
    // The owner creates the room; unless the input says otherwise it is
    // configured as an instant room at once.
    let join = presence(CLIENTS[0], occupant("owner")).with_child(Element::new("x", NS_MUC));
    world.deliver(join);
    if setup & 16 == 0 {
        let instant =
            Element::new("query", NS_MUC_OWNER).with_child(form("submit", None, Vec::new()));
        world.deliver(iq(CLIENTS[0], ROOM.to_string(), "set", instant));
    }
    for _ in 0..MAX_STEPS {
        if tape.done() {
            break;
        }
        let stanza = next_stanza(&world, &mut tape);
        world.deliver(stanza);
        // Time passes: rate limits refill, history ages.
        let pause = Duration::from_millis(u64::from(tape.byte()) * 20);
        world.now += pause;
        world.clock += pause;
    }
});
