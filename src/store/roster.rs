//! Rosters on disk: items, the version counter, tombstones for roster
//! versioning and pending inbound subscription requests (tables in
//! `schema.rs`). `im::roster::Roster` is the in-memory form; this module
//! loads one and turns its changes into a write.
//!
//! Item value layout (all integers little-endian):
//!
//! ```text
//! u8   format, 1
//! u8   subscription: 0 none, 1 to, 2 from, 3 both
//! u8   flags: bit 0 ask (pending out), bit 1 approved, bit 2 has a name
//! u64  version at which the item last changed
//! [u16 length, UTF-8 name]       if flag bit 2
//! u16  group count, then per group: u16 length, UTF-8 name
//! ```

use super::schema::{ROSTER_ITEMS, ROSTER_PENDING_IN, ROSTER_TOMBSTONES, ROSTER_VERSIONS};
use super::{Store, StoreError, WriteOp, keys};
use crate::im::roster::{Change, Roster, RosterItem, Subscription};
use crate::jid::Jid;
use crate::xml::Element;

const FORMAT: u8 = 1;
const FLAG_ASK: u8 = 1;
const FLAG_APPROVED: u8 = 2;
const FLAG_NAME: u8 = 4;

pub fn encode_item(item: &RosterItem) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + item.name.as_ref().map_or(0, String::len));
    out.push(FORMAT);
    out.push(item.subscription.code());
    let mut flags = 0;
    if item.ask {
        flags |= FLAG_ASK;
    }
    if item.approved {
        flags |= FLAG_APPROVED;
    }
    if item.name.is_some() {
        flags |= FLAG_NAME;
    }
    out.push(flags);
    out.extend_from_slice(&item.version.to_le_bytes());
    if let Some(name) = &item.name {
        put_str(&mut out, name);
    }
    let groups = u16::try_from(item.groups.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&groups.to_le_bytes());
    for group in item.groups.iter().take(usize::from(groups)) {
        put_str(&mut out, group);
    }
    out
}

/// Strings longer than a u16 cannot occur (names are limited far below);
/// should one appear it is cut at a character boundary rather than
/// corrupting the record.
fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let bytes = s.as_bytes().get(..end).unwrap_or_default();
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.bytes.split_at_checked(n)?;
        self.bytes = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u16()?;
        let bytes = self.take(usize::from(len))?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

pub fn decode_item(contact: &str, bytes: &[u8]) -> Result<RosterItem, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("roster item {contact}"));
    let jid = Jid::parse(contact).map_err(|_| corrupt())?;
    let mut r = Reader { bytes };
    if r.u8() != Some(FORMAT) {
        return Err(corrupt());
    }
    let subscription = r
        .u8()
        .and_then(Subscription::from_code)
        .ok_or_else(corrupt)?;
    let flags = r.u8().ok_or_else(corrupt)?;
    let version = r.u64().ok_or_else(corrupt)?;
    let name = if flags & FLAG_NAME != 0 {
        Some(r.string().ok_or_else(corrupt)?)
    } else {
        None
    };
    let count = r.u16().ok_or_else(corrupt)?;
    let mut groups = Vec::with_capacity(usize::from(count).min(64));
    for _ in 0..count {
        groups.push(r.string().ok_or_else(corrupt)?);
    }
    Ok(RosterItem {
        jid,
        name,
        groups,
        subscription,
        ask: flags & FLAG_ASK != 0,
        approved: flags & FLAG_APPROVED != 0,
        version,
    })
}

/// Reads `owner`'s roster. A record that cannot be read is logged and left
/// out rather than hiding the whole roster from its user.
pub fn load(store: &Store, owner: &Jid) -> Result<Roster, StoreError> {
    store.read(|txn| load_in(txn, owner))
}

/// [`load`] inside a read transaction (the portable export's snapshot).
pub fn load_in(txn: &redb::ReadTransaction, owner: &Jid) -> Result<Roster, StoreError> {
    let owner = owner.as_str();
    {
        // Every write of a roster stores its version row (`write_op`) and
        // only `purge` removes it, with the rest: an owner without one has
        // no items, tombstones or requests, and most accounts that log in
        // have never had a roster. Each table opened costs a lookup.
        let stored = txn
            .open_table(ROSTER_VERSIONS)?
            .get(keys::single(owner))?
            .map(|v| keys::read_u64_pair(ROSTER_VERSIONS, v.value()))
            .transpose()?;
        let Some((version, floor)) = stored else {
            return Ok(Roster::default());
        };
        let mut items = Vec::new();
        let table = txn.open_table(ROSTER_ITEMS)?;
        for entry in table.range(keys::owned_by(ROSTER_ITEMS, owner)?.bounds())? {
            let (key, value) = entry?;
            let decoded = keys::second_part(ROSTER_ITEMS, owner, key.value())
                .and_then(|contact| decode_item(contact, value.value()));
            match decoded {
                Ok(item) => items.push(item),
                Err(e) => log::error!("roster of {owner}: {e}"),
            }
        }
        let mut removed = Vec::new();
        let table = txn.open_table(ROSTER_TOMBSTONES)?;
        for entry in table.range(keys::owned_by(ROSTER_TOMBSTONES, owner)?.bounds())? {
            let (key, value) = entry?;
            let contact = keys::second_part(ROSTER_TOMBSTONES, owner, key.value());
            let at = keys::read_u64(ROSTER_TOMBSTONES, value.value());
            match (contact, at) {
                (Ok(contact), Ok(at)) => {
                    if let Ok(jid) = Jid::parse(contact) {
                        removed.push((jid, at));
                    }
                }
                (Err(e), _) | (_, Err(e)) => log::error!("roster of {owner}: {e}"),
            }
        }
        let mut pending = Vec::new();
        let table = txn.open_table(ROSTER_PENDING_IN)?;
        for entry in table.range(keys::owned_by(ROSTER_PENDING_IN, owner)?.bounds())? {
            let (key, value) = entry?;
            let contact = match keys::second_part(ROSTER_PENDING_IN, owner, key.value()) {
                Ok(contact) => contact,
                Err(e) => {
                    log::error!("roster of {owner}: {e}");
                    continue;
                }
            };
            let parsed = Jid::parse(contact).ok().zip(
                std::str::from_utf8(value.value())
                    .ok()
                    .and_then(|xml| Element::parse(xml).ok()),
            );
            match parsed {
                Some(request) => pending.push(request),
                None => log::error!("roster of {owner}: unreadable request from {contact}"),
            }
        }
        Ok(Roster::from_parts(version, floor, items, removed, pending))
    }
}

/// The write that stores `changes` (made to `roster`, which now carries
/// the new version and floor).
pub fn write_op(owner: &Jid, roster: &Roster, changes: &[Change]) -> WriteOp {
    let owner = owner.as_str().to_string();
    let version = (roster.version(), roster.floor());
    let mut puts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut removes: Vec<(String, u64)> = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    let mut pending: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for change in changes {
        match change {
            Change::Item(item) => puts.push((item.jid.to_string(), encode_item(item))),
            Change::Removed { jid, version } => removes.push((jid.to_string(), *version)),
            Change::TombstonesDropped(jids) => dropped.extend(jids.iter().map(Jid::to_string)),
            Change::PendingIn { jid, request } => {
                pending.push((jid.to_string(), request.as_ref().map(|r| r.to_bytes(""))))
            }
        }
    }
    Box::new(move |txn| {
        if !super::account_exists::has_account(txn, &owner)? {
            return Ok(());
        }
        txn.open_table(ROSTER_VERSIONS)?.insert(
            keys::single(&owner),
            keys::u64_pair_value(version.0, version.1).as_slice(),
        )?;
        // Items, tombstones and requests share the two-part key layout.
        let key = |contact: &str| keys::pair(ROSTER_ITEMS, &owner, contact);
        let mut items = txn.open_table(ROSTER_ITEMS)?;
        let mut tombstones = txn.open_table(ROSTER_TOMBSTONES)?;
        for (contact, value) in &puts {
            let key = key(contact)?;
            items.insert(key.as_slice(), value.as_slice())?;
            tombstones.remove(key.as_slice())?;
        }
        for (contact, at) in &removes {
            let key = key(contact)?;
            items.remove(key.as_slice())?;
            tombstones.insert(key.as_slice(), keys::u64_value(*at).as_slice())?;
        }
        for contact in &dropped {
            tombstones.remove(key(contact)?.as_slice())?;
        }
        let mut requests = txn.open_table(ROSTER_PENDING_IN)?;
        for (contact, request) in &pending {
            match request {
                Some(xml) => {
                    requests.insert(key(contact)?.as_slice(), xml.as_slice())?;
                }
                None => {
                    requests.remove(key(contact)?.as_slice())?;
                }
            }
        }
        Ok(())
    })
}

/// Deletes everything stored about `owner`'s roster (account deletion).
pub(crate) fn purge(txn: &redb::WriteTransaction, owner: &str) -> Result<(), StoreError> {
    txn.open_table(ROSTER_VERSIONS)?
        .remove(keys::single(owner))?;
    for table in [ROSTER_ITEMS, ROSTER_PENDING_IN, ROSTER_TOMBSTONES] {
        super::remove_range(&mut txn.open_table(table)?, &keys::owned_by(table, owner)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::im::subscription::SubState;
    use crate::testing::TempDir;
    use crate::xml::NS_CLIENT;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    #[test]
    fn item_round_trip() {
        let mut item = RosterItem::new(jid("nurse@example.com"));
        item.name = Some("Nurse ☺".into());
        item.groups = vec!["Servants".into(), "".into(), "Capulets".into()];
        item.subscription = Subscription::Both;
        item.ask = true;
        item.approved = true;
        item.version = 42;
        let bytes = encode_item(&item);
        assert_eq!(
            decode_item("nurse@example.com", &bytes).expect("decode"),
            item
        );
        let plain = RosterItem::new(jid("a@b"));
        assert_eq!(
            decode_item("a@b", &encode_item(&plain)).expect("decode"),
            plain
        );
    }

    #[test]
    fn truncated_or_foreign_records_are_corrupt() {
        let mut item = RosterItem::new(jid("a@b"));
        item.name = Some("x".into());
        let bytes = encode_item(&item);
        for cut in 0..bytes.len() {
            assert!(
                decode_item("a@b", bytes.get(..cut).unwrap_or_default()).is_err(),
                "{cut}"
            );
        }
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert!(decode_item("a@b", &wrong).is_err());
        let mut wrong = bytes;
        wrong[1] = 7;
        assert!(decode_item("a@b", &wrong).is_err());
    }

    #[test]
    fn changes_survive_a_reopen() {
        let dir = TempDir::new("roster-store");
        let path = dir.path().join("db.redb");
        let owner = jid("juliet@example.com");
        let mut roster = Roster::default();
        {
            let store = Store::open(&path, 1 << 20).expect("open");
            crate::store::account_exists::create_accounts_for_test(
                &store,
                &["juliet@example.com", "juliet@example.co"],
            );
            let mut changes = roster.set_item(
                &jid("nurse@example.com"),
                Some("Nurse".into()),
                vec!["G".into()],
            );
            let request = Element::new("presence", NS_CLIENT)
                .with_attr("type", "subscribe")
                .with_child(Element::new("status", NS_CLIENT).with_text("let me in"));
            changes.extend(roster.apply_state(
                &jid("romeo@example.net"),
                SubState {
                    pending_in: true,
                    ..SubState::default()
                },
                Some(request),
            ));
            changes.extend(roster.set_item(&jid("tybalt@example.com"), None, vec![]));
            changes.extend(
                roster
                    .remove_item(&jid("tybalt@example.com"))
                    .expect("present"),
            );
            store
                .write_now(write_op(&owner, &roster, &changes))
                .expect("write");
            // Another owner's data stays apart.
            let mut other = Roster::default();
            let c = other.set_item(&jid("x@y"), None, vec![]);
            store
                .write_now(write_op(&jid("juliet@example.co"), &other, &c))
                .expect("write");
        }
        let store = Store::open(&path, 1 << 20).expect("reopen");
        let loaded = load(&store, &owner).expect("load");
        assert_eq!(loaded.version(), roster.version());
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded.item(&jid("nurse@example.com")),
            roster.item(&jid("nurse@example.com"))
        );
        let pending: Vec<_> = loaded.pending_in().collect();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending[0]
                .1
                .get_child("status", NS_CLIENT)
                .map(|s| s.text()),
            Some("let me in".into())
        );
        assert_eq!(loaded.tombstones().count(), 1);
        store
            .write_now(Box::new(|txn| purge(txn, "juliet@example.com")))
            .expect("purge");
        let gone = load(&store, &owner).expect("load");
        assert!(gone.is_empty() && gone.pending_in_count() == 0 && gone.version() == 0);
        assert_eq!(
            load(&store, &jid("juliet@example.co")).expect("load").len(),
            1
        );
    }
}
