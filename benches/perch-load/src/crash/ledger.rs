//! What the crash loop's writers were told, and what a check found.
//!
//! Every write is entered before it is sent (pending), then marked
//! acknowledged (the server's result reached the client) or refused (an
//! error). A kill leaves some pending: they may or may not have been
//! stored, and the check after the restart decides which.
//!
//! Writes that set a value (a roster item present or absent, a vCard's
//! nickname, a private XML slot, a room's name, a member's affiliation)
//! are kept per key. A check reads each key's value and accepts the value
//! of the last acknowledged write, or of a pending write made after it
//! (Perch may store a write whose result the kill cut off). Only the last
//! acknowledged write of a key can be checked: earlier ones are
//! superseded. Offline messages are kept one by one: each acknowledged one
//! must be delivered to its recipient after the restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// Kinds of writes, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    OfflineMessage,
    RosterAdd,
    RosterRemove,
    Vcard,
    PrivateXml,
    RoomCreate,
    RoomConfig,
    MemberAdd,
    MemberRemove,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::OfflineMessage,
        Kind::RosterAdd,
        Kind::RosterRemove,
        Kind::Vcard,
        Kind::PrivateXml,
        Kind::RoomCreate,
        Kind::RoomConfig,
        Kind::MemberAdd,
        Kind::MemberRemove,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::OfflineMessage => "offline_message",
            Kind::RosterAdd => "roster_add",
            Kind::RosterRemove => "roster_remove",
            Kind::Vcard => "vcard_set",
            Kind::PrivateXml => "private_xml_set",
            Kind::RoomCreate => "room_create",
            Kind::RoomConfig => "room_config",
            Kind::MemberAdd => "affiliation_member",
            Kind::MemberRemove => "affiliation_none",
        }
    }
}

/// What a value-setting write is about. `owner` is a writer's index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    RosterItem {
        owner: usize,
        contact: String,
    },
    Vcard {
        owner: usize,
    },
    Private {
        owner: usize,
        slot: u32,
    },
    /// A room's name (its configuration); `None` when there is no room.
    Room {
        owner: usize,
        room: String,
    },
    Member {
        owner: usize,
        room: String,
        member: String,
    },
}

impl Key {
    pub fn owner(&self) -> usize {
        match self {
            Key::RosterItem { owner, .. }
            | Key::Vcard { owner }
            | Key::Private { owner, .. }
            | Key::Room { owner, .. }
            | Key::Member { owner, .. } => *owner,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::RosterItem { owner, contact } => {
                write!(f, "writer {owner}'s roster item {contact}")
            }
            Key::Vcard { owner } => write!(f, "writer {owner}'s vCard"),
            Key::Private { owner, slot } => write!(f, "writer {owner}'s private XML slot {slot}"),
            Key::Room { room, .. } => write!(f, "room {room}"),
            Key::Member { room, member, .. } => write!(f, "{member}'s affiliation in {room}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Acked,
    Refused,
}

#[derive(Debug, Clone)]
struct Write {
    id: u64,
    kind: Kind,
    value: Option<String>,
    state: State,
}

/// A key's value as of the last check, and the writes made since.
#[derive(Debug, Clone, Default)]
struct Track {
    checked: Option<String>,
    /// The kind of write whose value the last check found, if it found
    /// one: should the value vanish later with no write, that is a loss.
    checked_kind: Option<Kind>,
    writes: Vec<Write>,
}

impl Track {
    /// The value the writers should assume: the last acknowledged write's,
    /// or the checked one.
    fn believed(&self) -> Option<&str> {
        self.writes
            .iter()
            .rev()
            .find(|w| w.state == State::Acked)
            .map_or(self.checked.as_deref(), |w| w.value.as_deref())
    }
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    state: State,
}

/// Per kind: acknowledged writes and what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub acked: u64,
    pub refused: u64,
    /// The last acknowledged write of its key, found.
    pub verified: u64,
    /// Acknowledged, then overwritten by a later acknowledged write
    /// before any check: nothing left to check.
    pub superseded: u64,
    /// Acknowledged and not there.
    pub missing: u64,
    /// Not acknowledged (the kill came first) and stored anyway.
    pub stored_unacked: u64,
}

#[derive(Debug, Default)]
pub struct Ledger {
    next_id: u64,
    tracks: BTreeMap<Key, Track>,
    /// Where each write is: its key (value writes) or recipient (messages).
    write_key: HashMap<u64, Key>,
    /// Offline messages per recipient (writer index) since the last check.
    messages: BTreeMap<usize, Vec<Message>>,
    message_slot: HashMap<u64, (usize, usize)>,
    /// Every message id ever sent, to tell a redelivery from a stranger.
    all_message_ids: BTreeSet<String>,
    counts: BTreeMap<Kind, Counts>,
    /// Messages delivered a second time (after an earlier check had them).
    pub redelivered: u64,
    /// Descriptions of the first losses found.
    pub losses: Vec<String>,
}

const MAX_LOSS_SAMPLES: usize = 20;

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    fn count(&mut self, kind: Kind) -> &mut Counts {
        self.counts.entry(kind).or_default()
    }

    pub fn counts(&self, kind: Kind) -> Counts {
        self.counts.get(&kind).copied().unwrap_or_default()
    }

    /// Enters a value write before it is sent; returns its id.
    pub fn begin(&mut self, kind: Kind, key: Key, value: Option<String>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.count(kind).sent += 1;
        self.tracks
            .entry(key.clone())
            .or_default()
            .writes
            .push(Write {
                id,
                kind,
                value,
                state: State::Pending,
            });
        self.write_key.insert(id, key);
        id
    }

    /// Enters an offline message before it is sent; returns its id.
    pub fn begin_message(&mut self, recipient: usize, message_id: &str) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.count(Kind::OfflineMessage).sent += 1;
        let list = self.messages.entry(recipient).or_default();
        list.push(Message {
            id: message_id.to_string(),
            state: State::Pending,
        });
        self.message_slot.insert(id, (recipient, list.len() - 1));
        self.all_message_ids.insert(message_id.to_string());
        id
    }

    /// The server acknowledged write `id` (`true`) or refused it.
    pub fn settle(&mut self, id: u64, acked: bool) {
        let state = if acked { State::Acked } else { State::Refused };
        if let Some(key) = self.write_key.remove(&id) {
            let kind = self.tracks.get_mut(&key).and_then(|t| {
                let w = t.writes.iter_mut().find(|w| w.id == id)?;
                w.state = state;
                Some(w.kind)
            });
            if let Some(kind) = kind {
                self.tally(kind, acked);
            }
        } else if let Some((recipient, i)) = self.message_slot.remove(&id) {
            if let Some(m) = self.messages.get_mut(&recipient).and_then(|l| l.get_mut(i)) {
                m.state = state;
            }
            self.tally(Kind::OfflineMessage, acked);
        }
    }

    fn tally(&mut self, kind: Kind, acked: bool) {
        let c = self.count(kind);
        if acked {
            c.acked += 1;
        } else {
            c.refused += 1;
        }
    }

    /// The value writers should assume for `key`.
    pub fn believed(&self, key: &Key) -> Option<String> {
        self.tracks
            .get(key)
            .and_then(|t| t.believed().map(str::to_string))
    }

    /// Keys of writer `owner` matching `pred`, with the value believed.
    pub fn keys_of(&self, owner: usize, pred: impl Fn(&Key) -> bool) -> Vec<(Key, Option<String>)> {
        self.tracks
            .iter()
            .filter(|(k, _)| k.owner() == owner && pred(k))
            .map(|(k, t)| (k.clone(), t.believed().map(str::to_string)))
            .collect()
    }

    /// Every tracked key, for the checks.
    pub fn keys(&self) -> Vec<Key> {
        self.tracks.keys().cloned().collect()
    }

    /// A check read `observed` for `key`: counts the writes since the last
    /// check and makes `observed` the new starting point.
    pub fn check(&mut self, key: &Key, observed: Option<String>) {
        let Some(track) = self.tracks.get_mut(key) else {
            return;
        };
        let writes = std::mem::take(&mut track.writes);
        let before = track.checked.take();
        let before_kind = track.checked_kind.take();
        let last_acked = writes.iter().rposition(|w| w.state == State::Acked);
        let start = last_acked.unwrap_or(0);
        // (value, the kind of write it comes from)
        let mut acceptable: Vec<(Option<&str>, Option<Kind>)> = Vec::new();
        match last_acked {
            Some(i) => acceptable.push((writes[i].value.as_deref(), Some(writes[i].kind))),
            None => acceptable.push((before.as_deref(), before_kind)),
        }
        acceptable.extend(
            writes[start..]
                .iter()
                .filter(|w| w.state == State::Pending)
                .map(|w| (w.value.as_deref(), Some(w.kind))),
        );
        let matched = acceptable
            .iter()
            .find(|(v, _)| *v == observed.as_deref())
            .copied();
        let found = matched.is_some();
        track.checked_kind = matched.and_then(|(_, k)| k);
        track.checked = observed.clone();
        // Found at an earlier check, written to by nobody since, and gone.
        if last_acked.is_none()
            && !found
            && let Some(kind) = before_kind
        {
            self.counts.entry(kind).or_default().missing += 1;
            if self.losses.len() < MAX_LOSS_SAMPLES {
                self.losses.push(format!(
                    "{key}: {:?} ({}) was there at an earlier check; found {observed:?}",
                    before,
                    kind.name()
                ));
            }
        }
        for (i, w) in writes.iter().enumerate() {
            if w.state == State::Acked {
                let c = self.counts.entry(w.kind).or_default();
                if Some(i) != last_acked {
                    c.superseded += 1;
                } else if found {
                    c.verified += 1;
                } else {
                    c.missing += 1;
                    if self.losses.len() < MAX_LOSS_SAMPLES {
                        self.losses.push(format!(
                            "{key}: acknowledged {} of {:?}, found {:?}",
                            w.kind.name(),
                            w.value,
                            observed
                        ));
                    }
                }
            } else if w.state == State::Pending
                && i >= start
                && w.value.is_some()
                && w.value == observed
                && Some(i) != last_acked
            {
                self.counts.entry(w.kind).or_default().stored_unacked += 1;
            }
        }
    }

    /// Message ids sent to `recipient` since its last check.
    pub fn has_messages(&self, recipient: usize) -> bool {
        self.messages.get(&recipient).is_some_and(|l| !l.is_empty())
    }

    /// Ids of the acknowledged messages to `recipient` not checked yet.
    pub fn acked_messages(&self, recipient: usize) -> BTreeSet<String> {
        self.messages
            .get(&recipient)
            .map(|l| {
                l.iter()
                    .filter(|m| m.state == State::Acked)
                    .map(|m| m.id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A check delivered `delivered` (message ids) to `recipient`.
    pub fn check_messages(&mut self, recipient: usize, delivered: &BTreeSet<String>) {
        let list = self.messages.remove(&recipient).unwrap_or_default();
        self.message_slot.retain(|_, (r, _)| *r != recipient);
        let mut ours = BTreeSet::new();
        for m in &list {
            ours.insert(m.id.as_str());
            let here = delivered.contains(&m.id);
            let c = self.counts.entry(Kind::OfflineMessage).or_default();
            match (m.state, here) {
                (State::Acked, true) => c.verified += 1,
                (State::Acked, false) => {
                    c.missing += 1;
                    if self.losses.len() < MAX_LOSS_SAMPLES {
                        self.losses.push(format!(
                            "offline message {} to recipient {recipient}: acknowledged, not delivered",
                            m.id
                        ));
                    }
                }
                (State::Pending, true) => c.stored_unacked += 1,
                _ => {}
            }
        }
        self.redelivered += delivered
            .iter()
            .filter(|id| !ours.contains(id.as_str()) && self.all_message_ids.contains(*id))
            .count() as u64;
    }

    pub fn total(&self) -> Counts {
        self.counts.values().fold(Counts::default(), |a, c| Counts {
            sent: a.sent + c.sent,
            acked: a.acked + c.acked,
            refused: a.refused + c.refused,
            verified: a.verified + c.verified,
            superseded: a.superseded + c.superseded,
            missing: a.missing + c.missing,
            stored_unacked: a.stored_unacked + c.stored_unacked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vcard() -> Key {
        Key::Vcard { owner: 0 }
    }

    #[test]
    fn the_last_acknowledged_value_or_a_later_pending_one_passes() {
        let mut l = Ledger::new();
        let a = l.begin(Kind::Vcard, vcard(), Some("a".into()));
        let b = l.begin(Kind::Vcard, vcard(), Some("b".into()));
        let _c = l.begin(Kind::Vcard, vcard(), Some("c".into()));
        l.settle(a, true);
        l.settle(b, true);
        assert_eq!(l.believed(&vcard()).as_deref(), Some("b"));
        // c was cut off by the kill, yet stored: fine.
        l.check(&vcard(), Some("c".into()));
        let n = l.counts(Kind::Vcard);
        assert_eq!((n.acked, n.verified, n.superseded, n.missing), (2, 1, 1, 0));
        assert_eq!(n.stored_unacked, 1);
        assert_eq!(l.believed(&vcard()).as_deref(), Some("c"));
    }

    #[test]
    fn an_older_value_than_the_acknowledged_one_is_a_loss() {
        let mut l = Ledger::new();
        let a = l.begin(Kind::Vcard, vcard(), Some("a".into()));
        l.settle(a, true);
        l.check(&vcard(), Some("a".into()));
        let b = l.begin(Kind::Vcard, vcard(), Some("b".into()));
        l.settle(b, true);
        l.check(&vcard(), Some("a".into()));
        let n = l.counts(Kind::Vcard);
        assert_eq!((n.verified, n.missing), (1, 1));
        assert_eq!(l.losses.len(), 1);
        // A refused write changes nothing; an unacknowledged one may be lost.
        let c = l.begin(Kind::Vcard, vcard(), Some("c".into()));
        l.settle(c, false);
        let _d = l.begin(Kind::Vcard, vcard(), Some("d".into()));
        l.check(&vcard(), Some("a".into()));
        assert_eq!(l.counts(Kind::Vcard).missing, 1);
        assert_eq!(l.counts(Kind::Vcard).refused, 1);
    }

    #[test]
    fn a_value_that_vanishes_after_a_check_is_a_loss() {
        let mut l = Ledger::new();
        let a = l.begin(Kind::PrivateXml, vcard(), Some("a".into()));
        l.settle(a, true);
        l.check(&vcard(), Some("a".into()));
        l.check(&vcard(), Some("a".into()));
        assert_eq!(l.counts(Kind::PrivateXml).missing, 0);
        l.check(&vcard(), None);
        assert_eq!(l.counts(Kind::PrivateXml).missing, 1);
        // Counted once: the next check starts from what it found.
        l.check(&vcard(), None);
        assert_eq!(l.total().missing, 1);
        // A value stored without its acknowledgement counts as well, once
        // a check has seen it.
        let _b = l.begin(Kind::Vcard, vcard(), Some("b".into()));
        l.check(&vcard(), Some("b".into()));
        l.check(&vcard(), None);
        assert_eq!(l.counts(Kind::Vcard).missing, 1);
    }

    #[test]
    fn removals_are_values_too() {
        let mut l = Ledger::new();
        let item = Key::RosterItem {
            owner: 1,
            contact: "x@localhost".into(),
        };
        let add = l.begin(Kind::RosterAdd, item.clone(), Some("present".into()));
        l.settle(add, true);
        let remove = l.begin(Kind::RosterRemove, item.clone(), None);
        l.settle(remove, true);
        assert_eq!(l.keys_of(1, |_| true), vec![(item.clone(), None)]);
        assert!(l.keys_of(0, |_| true).is_empty());
        l.check(&item, Some("present".into()));
        assert_eq!(l.counts(Kind::RosterRemove).missing, 1);
        assert_eq!(l.counts(Kind::RosterAdd).superseded, 1);
        assert_eq!(l.total().missing, 1);
    }

    #[test]
    fn messages_must_arrive_once_acknowledged() {
        let mut l = Ledger::new();
        let ids: Vec<u64> = (0..4)
            .map(|i| l.begin_message(2, &format!("m{i}")))
            .collect();
        l.settle(ids[0], true);
        l.settle(ids[1], true);
        l.settle(ids[2], false);
        assert!(l.has_messages(2) && !l.has_messages(1));
        assert_eq!(l.acked_messages(2).len(), 2);
        let delivered: BTreeSet<String> = ["m0", "m3"].iter().map(|s| s.to_string()).collect();
        l.check_messages(2, &delivered);
        let n = l.counts(Kind::OfflineMessage);
        assert_eq!((n.sent, n.acked, n.refused), (4, 2, 1));
        assert_eq!((n.verified, n.missing, n.stored_unacked), (1, 1, 1));
        assert!(!l.has_messages(2));
        // Delivered again after the next restart: counted, not a loss.
        l.check_messages(2, &delivered);
        assert_eq!(l.redelivered, 2);
        assert_eq!(l.counts(Kind::OfflineMessage).missing, 1);
    }
}
