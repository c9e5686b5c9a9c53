//! A user's roster (RFC 6121 §2) as the server keeps it: items with their
//! subscription state, the pending inbound subscription requests, and the
//! version counter that roster versioning (§2.6) is built on.
//!
//! Versioning: every change to an item takes the next value of the roster's
//! counter and the item remembers it; a removed item leaves a tombstone with
//! the version of its removal. So a client holding version `v` needs exactly
//! the items and tombstones newer than `v`. Tombstones are capped; when the
//! oldest ones are dropped, `floor` rises, and a client older than the floor
//! gets the whole roster instead.

use std::collections::BTreeMap;

use crate::jid::Jid;
use crate::xml::Element;

use super::subscription::SubState;

pub const NS_ROSTER: &str = "jabber:iq:roster";

/// Longest item name and group name accepted, in bytes (RFC 6121 §2.3.3
/// lets the server choose; a JID part has the same bound).
pub const MAX_NAME_BYTES: usize = 1023;
/// Groups one item may be in.
pub const MAX_GROUPS_PER_ITEM: usize = 64;
/// Removals remembered for roster versioning, per roster.
pub const MAX_TOMBSTONES: usize = 1024;

/// The `subscription` attribute (RFC 6121 §2.1.2.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Subscription {
    #[default]
    None,
    /// The user receives the contact's presence.
    To,
    /// The contact receives the user's presence.
    From,
    Both,
}

impl Subscription {
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    pub fn has_to(self) -> bool {
        matches!(self, Subscription::To | Subscription::Both)
    }

    pub fn has_from(self) -> bool {
        matches!(self, Subscription::From | Subscription::Both)
    }

    pub fn from_parts(to: bool, from: bool) -> Subscription {
        match (to, from) {
            (false, false) => Subscription::None,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (true, true) => Subscription::Both,
        }
    }

    /// Compact code for the store.
    pub fn code(self) -> u8 {
        match self {
            Subscription::None => 0,
            Subscription::To => 1,
            Subscription::From => 2,
            Subscription::Both => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Subscription> {
        match code {
            0 => Some(Subscription::None),
            1 => Some(Subscription::To),
            2 => Some(Subscription::From),
            3 => Some(Subscription::Both),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterItem {
    /// Always a bare JID (or a domain).
    pub jid: Jid,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub subscription: Subscription,
    /// A subscription request from the user is pending (`ask='subscribe'`).
    pub ask: bool,
    /// The user pre-approved the contact's subscription (§3.4).
    pub approved: bool,
    /// The roster version at which this item last changed.
    pub version: u64,
}

impl RosterItem {
    pub fn new(jid: Jid) -> RosterItem {
        RosterItem {
            jid,
            name: None,
            groups: Vec::new(),
            subscription: Subscription::None,
            ask: false,
            approved: false,
            version: 0,
        }
    }

    /// `<item/>` as it appears in roster results and pushes.
    pub fn to_element(&self) -> Element {
        let mut item = Element::new("item", NS_ROSTER)
            .with_attr("jid", self.jid.as_str())
            .with_attr("subscription", self.subscription.as_str());
        if let Some(name) = &self.name {
            item.set_attr("name", name.as_str());
        }
        if self.ask {
            item.set_attr("ask", "subscribe");
        }
        if self.approved {
            item.set_attr("approved", "true");
        }
        for group in &self.groups {
            item.push_child(Element::new("group", NS_ROSTER).with_text(group.as_str()));
        }
        item
    }
}

/// `<item subscription='remove'/>` for a removed contact.
pub fn removed_element(jid: &Jid) -> Element {
    Element::new("item", NS_ROSTER)
        .with_attr("jid", jid.as_str())
        .with_attr("subscription", "remove")
}

/// One change, for the store and for roster pushes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The item was added or changed (it carries its new version).
    Item(RosterItem),
    /// The item was removed at `version`.
    Removed { jid: Jid, version: u64 },
    /// A pending inbound request was stored (`Some`) or answered (`None`).
    PendingIn { jid: Jid, request: Option<Element> },
    /// Tombstones dropped to respect [`MAX_TOMBSTONES`]; `floor` rose.
    TombstonesDropped(Vec<Jid>),
}

impl Change {
    /// The `<item/>` of a roster push, if this change is one the user sees.
    pub fn push_item(&self) -> Option<(Element, u64)> {
        match self {
            Change::Item(item) => Some((item.to_element(), item.version)),
            Change::Removed { jid, version } => Some((removed_element(jid), *version)),
            Change::PendingIn { .. } | Change::TombstonesDropped(_) => None,
        }
    }
}

/// The version string of roster version `version`. A roster never changed
/// (version 0) is reported as "1", as Prosody does and clients and test
/// scripts expect; [`parse_version`] reads "1" back as 0, so a client that
/// cached the empty roster still gets the first change.
pub fn version_string(version: u64) -> String {
    version.max(1).to_string()
}

/// The version a client's cached version string stands for (see
/// [`version_string`]): "1" may be the empty roster, so it counts as 0 and
/// the first change is sent again rather than missed.
pub fn parse_version(ver: &str) -> Option<u64> {
    match ver.trim().parse::<u64>().ok()? {
        1 => Some(0),
        v => Some(v),
    }
}

/// What a client holding some roster version needs (RFC 6121 §2.6.3).
#[derive(Debug, PartialEq, Eq)]
pub enum Catchup<'a> {
    /// Its copy is current: an empty result, no pushes.
    Current,
    /// An empty result, then these changes as pushes, oldest first.
    Pushes(Vec<(Element, u64)>),
    /// The whole roster.
    Full(Vec<&'a RosterItem>),
}

#[derive(Clone, Debug, Default)]
pub struct Roster {
    items: BTreeMap<Jid, RosterItem>,
    removed: BTreeMap<Jid, u64>,
    pending_in: BTreeMap<Jid, Element>,
    version: u64,
    floor: u64,
}

impl Roster {
    /// Rebuilds a roster from stored parts.
    pub fn from_parts(
        version: u64,
        floor: u64,
        items: Vec<RosterItem>,
        removed: Vec<(Jid, u64)>,
        pending_in: Vec<(Jid, Element)>,
    ) -> Roster {
        let items: BTreeMap<Jid, RosterItem> =
            items.into_iter().map(|i| (i.jid.clone(), i)).collect();
        // A version below an item's own would hand out stale roster
        // versions; trust the largest one seen.
        let newest = items
            .values()
            .map(|i| i.version)
            .chain(removed.iter().map(|(_, v)| *v))
            .max()
            .unwrap_or(0);
        Roster {
            items,
            removed: removed.into_iter().collect(),
            pending_in: pending_in.into_iter().collect(),
            version: version.max(newest),
            floor: floor.min(version.max(newest)),
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn item(&self, jid: &Jid) -> Option<&RosterItem> {
        self.items.get(jid)
    }

    pub fn items(&self) -> impl Iterator<Item = &RosterItem> {
        self.items.values()
    }

    pub fn pending_in(&self) -> impl Iterator<Item = (&Jid, &Element)> {
        self.pending_in.iter()
    }

    pub fn pending_in_count(&self) -> usize {
        self.pending_in.len()
    }

    pub fn tombstones(&self) -> impl Iterator<Item = (&Jid, u64)> {
        self.removed.iter().map(|(j, v)| (j, *v))
    }

    /// The subscription state with `contact` (all "none" for a stranger).
    pub fn state(&self, contact: &Jid) -> SubState {
        let item = self.items.get(contact);
        SubState {
            subscription: item.map(|i| i.subscription).unwrap_or_default(),
            pending_out: item.is_some_and(|i| i.ask),
            pending_in: self.pending_in.contains_key(contact),
            approved: item.is_some_and(|i| i.approved),
        }
    }

    fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Adds or updates the item for `jid` with the user's name and groups
    /// (a roster set, §2.3/§2.4); its subscription state is kept.
    pub fn set_item(
        &mut self,
        jid: &Jid,
        name: Option<String>,
        groups: Vec<String>,
    ) -> Vec<Change> {
        let version = self.next_version();
        let item = self
            .items
            .entry(jid.clone())
            .or_insert_with(|| RosterItem::new(jid.clone()));
        item.name = name;
        item.groups = groups;
        item.version = version;
        let mut changes = vec![Change::Item(item.clone())];
        self.removed.remove(jid);
        changes.extend(self.trim_tombstones());
        changes
    }

    /// Removes the item (§2.5), with its pending request, if any. `None` if
    /// there was no item.
    pub fn remove_item(&mut self, jid: &Jid) -> Option<Vec<Change>> {
        self.items.remove(jid)?;
        let version = self.next_version();
        self.removed.insert(jid.clone(), version);
        let mut changes = vec![Change::Removed {
            jid: jid.clone(),
            version,
        }];
        if self.pending_in.remove(jid).is_some() {
            changes.push(Change::PendingIn {
                jid: jid.clone(),
                request: None,
            });
        }
        changes.extend(self.trim_tombstones());
        Some(changes)
    }

    /// Moves the relationship with `contact` to `next`. `request` is the
    /// subscription request to keep when `next` gains "pending in". An item
    /// is created when the new state needs one (a subscription, a pending
    /// outbound request or a pre-approval); a mere inbound request does not
    /// create one (it is kept apart until answered).
    pub fn apply_state(
        &mut self,
        contact: &Jid,
        next: SubState,
        request: Option<Element>,
    ) -> Vec<Change> {
        let before = self.state(contact);
        let mut changes = Vec::new();
        let item_fields_differ = before.subscription != next.subscription
            || before.pending_out != next.pending_out
            || before.approved != next.approved;
        let needs_item =
            next.subscription != Subscription::None || next.pending_out || next.approved;
        if item_fields_differ && (self.items.contains_key(contact) || needs_item) {
            let version = self.next_version();
            let item = self
                .items
                .entry(contact.clone())
                .or_insert_with(|| RosterItem::new(contact.clone()));
            item.subscription = next.subscription;
            item.ask = next.pending_out;
            item.approved = next.approved;
            item.version = version;
            changes.push(Change::Item(item.clone()));
            self.removed.remove(contact);
        }
        if next.pending_in && !before.pending_in {
            if let Some(request) = request {
                // The roster changed (it holds one more request), though
                // no push shows it: Prosody counts it too, and clients
                // and test scripts follow its numbering.
                self.next_version();
                self.pending_in.insert(contact.clone(), request.clone());
                changes.push(Change::PendingIn {
                    jid: contact.clone(),
                    request: Some(request),
                });
            }
        } else if !next.pending_in && before.pending_in {
            self.pending_in.remove(contact);
            changes.push(Change::PendingIn {
                jid: contact.clone(),
                request: None,
            });
        }
        changes.extend(self.trim_tombstones());
        changes
    }

    fn trim_tombstones(&mut self) -> Option<Change> {
        if self.removed.len() <= MAX_TOMBSTONES {
            return None;
        }
        let mut by_age: Vec<(u64, Jid)> =
            self.removed.iter().map(|(j, v)| (*v, j.clone())).collect();
        by_age.sort();
        let excess = self.removed.len() - MAX_TOMBSTONES;
        let mut dropped = Vec::with_capacity(excess);
        for (version, jid) in by_age.into_iter().take(excess) {
            self.removed.remove(&jid);
            self.floor = self.floor.max(version);
            dropped.push(jid);
        }
        Some(Change::TombstonesDropped(dropped))
    }

    /// What a client that announced `ver` (or none) must be sent.
    pub fn catch_up(&self, ver: Option<&str>) -> Catchup<'_> {
        let known = ver.and_then(parse_version);
        match known {
            Some(v) if v == self.version => Catchup::Current,
            Some(v) if v < self.version && v >= self.floor => {
                let mut changes: Vec<(u64, Element)> = self
                    .items
                    .values()
                    .filter(|i| i.version > v)
                    .map(|i| (i.version, i.to_element()))
                    .chain(
                        self.removed
                            .iter()
                            .filter(|(_, rv)| **rv > v)
                            .map(|(j, rv)| (*rv, removed_element(j))),
                    )
                    .collect();
                // Pushes cost more than items: past the roster's size the
                // whole roster is the cheaper answer.
                if changes.len() > self.items.len() {
                    return Catchup::Full(self.items.values().collect());
                }
                changes.sort_by_key(|(version, _)| *version);
                Catchup::Pushes(changes.into_iter().map(|(v, e)| (e, v)).collect())
            }
            _ => Catchup::Full(self.items.values().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    fn subscribed_to() -> SubState {
        SubState {
            subscription: Subscription::To,
            ..SubState::default()
        }
    }

    #[test]
    fn set_update_remove_bump_versions() {
        let mut r = Roster::default();
        assert_eq!(r.version(), 0);
        let c = r.set_item(
            &jid("nurse@example.com"),
            Some("Nurse".into()),
            vec!["Servants".into()],
        );
        assert_eq!(r.version(), 1);
        assert!(
            matches!(&c[..], [Change::Item(i)] if i.version == 1 && i.name.as_deref() == Some("Nurse"))
        );
        r.set_item(&jid("nurse@example.com"), None, vec![]);
        assert_eq!(r.version(), 2);
        assert_eq!(r.len(), 1);
        let c = r.remove_item(&jid("nurse@example.com")).expect("present");
        assert_eq!(
            c,
            vec![Change::Removed {
                jid: jid("nurse@example.com"),
                version: 3
            }]
        );
        assert!(r.remove_item(&jid("nurse@example.com")).is_none());
        assert!(r.is_empty());
    }

    #[test]
    fn item_element_carries_state() {
        let mut item = RosterItem::new(jid("romeo@example.net"));
        item.name = Some("Romeo".into());
        item.groups = vec!["Friends".into()];
        item.subscription = Subscription::From;
        item.ask = true;
        item.approved = true;
        let el = item.to_element();
        assert_eq!(el.attr("jid"), Some("romeo@example.net"));
        assert_eq!(el.attr("subscription"), Some("from"));
        assert_eq!(el.attr("ask"), Some("subscribe"));
        assert_eq!(el.attr("approved"), Some("true"));
        assert_eq!(el.attr("name"), Some("Romeo"));
        assert_eq!(
            el.get_child("group", NS_ROSTER).map(|g| g.text()),
            Some("Friends".to_string())
        );
    }

    #[test]
    fn inbound_request_alone_creates_no_item() {
        let mut r = Roster::default();
        let contact = jid("romeo@example.net");
        let request =
            Element::new("presence", crate::xml::NS_CLIENT).with_attr("type", "subscribe");
        let next = SubState {
            pending_in: true,
            ..SubState::default()
        };
        let c = r.apply_state(&contact, next, Some(request.clone()));
        assert_eq!(
            c,
            vec![Change::PendingIn {
                jid: contact.clone(),
                request: Some(request)
            }]
        );
        assert!(r.item(&contact).is_none());
        // No item, but the roster's version moves (as Prosody numbers it).
        assert_eq!(r.version(), 1);
        assert!(r.state(&contact).pending_in);
        // Approving creates the item with subscription 'from'.
        let next = SubState {
            subscription: Subscription::From,
            ..SubState::default()
        };
        let c = r.apply_state(&contact, next, None);
        assert_eq!(c.len(), 2);
        assert_eq!(
            r.item(&contact).map(|i| i.subscription),
            Some(Subscription::From)
        );
        assert!(!r.state(&contact).pending_in);
    }

    #[test]
    fn versioning_catch_up() {
        let mut r = Roster::default();
        for name in ["a", "b", "c"] {
            r.set_item(&jid(&format!("{name}@x")), None, vec![]);
        }
        assert_eq!(r.catch_up(Some("3")), Catchup::Current);
        r.apply_state(&jid("b@x"), subscribed_to(), None); // v4
        r.remove_item(&jid("c@x")); // v5
        match r.catch_up(Some("3")) {
            Catchup::Pushes(p) => {
                let versions: Vec<u64> = p.iter().map(|(_, v)| *v).collect();
                assert_eq!(versions, vec![4, 5]);
                assert_eq!(p[1].0.attr("subscription"), Some("remove"));
                assert_eq!(p[0].0.attr("subscription"), Some("to"));
            }
            other => panic!("expected pushes, got {other:?}"),
        }
        for stale in [None, Some("99"), Some("x"), Some("")] {
            assert!(matches!(r.catch_up(stale), Catchup::Full(items) if items.len() == 2));
        }
        // Many changes since an old version: the full roster is cheaper.
        assert!(matches!(r.catch_up(Some("0")), Catchup::Full(_)));
    }

    #[test]
    fn an_empty_roster_is_version_1_and_its_first_change_is_not_missed() {
        let mut r = Roster::default();
        assert_eq!(version_string(r.version()), "1");
        // A client that cached the empty roster is current…
        assert_eq!(r.catch_up(Some("1")), Catchup::Current);
        assert_eq!(r.catch_up(Some("0")), Catchup::Current);
        r.set_item(&jid("a@x"), None, vec![]); // v1
        assert_eq!(version_string(r.version()), "1");
        // …and after the first change, which is also "1", it still gets it.
        match r.catch_up(Some("1")) {
            Catchup::Pushes(p) => assert_eq!(p.len(), 1),
            Catchup::Full(items) => assert_eq!(items.len(), 1),
            Catchup::Current => panic!("the first change was missed"),
        }
        r.set_item(&jid("b@x"), None, vec![]); // v2
        assert_eq!(r.catch_up(Some("2")), Catchup::Current);
    }

    #[test]
    fn a_new_inbound_request_counts_as_a_change() {
        let mut r = Roster::default();
        let pending = SubState {
            pending_in: true,
            ..r.state(&jid("a@x"))
        };
        let request = Element::new("presence", crate::xml::NS_CLIENT);
        let changes = r.apply_state(&jid("a@x"), pending, Some(request));
        assert_eq!(changes.len(), 1);
        assert_eq!(r.version(), 1);
    }

    #[test]
    fn tombstones_are_capped_and_raise_the_floor() {
        let mut r = Roster::default();
        for i in 0..(MAX_TOMBSTONES + 3) {
            let j = jid(&format!("u{i}@x"));
            r.set_item(&j, None, vec![]);
            r.remove_item(&j);
        }
        assert_eq!(r.tombstones().count(), MAX_TOMBSTONES);
        assert!(r.floor() > 0);
        let below_floor = (r.floor() - 1).to_string();
        assert!(matches!(r.catch_up(Some(&below_floor)), Catchup::Full(_)));
        let at_current = r.version().to_string();
        assert_eq!(r.catch_up(Some(&at_current)), Catchup::Current);
    }

    #[test]
    fn from_parts_never_goes_back_in_version() {
        let mut item = RosterItem::new(jid("a@x"));
        item.version = 7;
        let r = Roster::from_parts(2, 0, vec![item], vec![(jid("b@x"), 9)], vec![]);
        assert_eq!(r.version(), 9);
    }
}
