//! Schema version 1, kept to upgrade files written by Perch before
//! version 2. Version 1 gave every table its own Rust key and value types;
//! version 2 stores bytes everywhere (`schema.rs` says why, `keys.rs` how).
//!
//! The upgrade only reads the old tables, and reads all of them through
//! one pair of types, [`StoredKey`] and [`StoredValue`], which take the
//! redb type name and width of the table being read (`READING`): redb
//! checks them exactly as for the old types, but its B-tree reading code is
//! compiled once instead of once per old type pair, which is the whole
//! point of version 2. The old types' own decoders then turn the bytes into
//! the new layout.

use std::cell::Cell;

use redb::{Key, ReadableTable, TableDefinition, TableHandle, TypeName, Value, WriteTransaction};

use super::StoreError;
use super::keys::{self, Def};
use super::schema;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
pub(crate) const MUC_ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("muc_rooms");
pub(crate) const MUC_AFFILIATIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("muc_affiliations");
pub(crate) const MUC_HISTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("muc_history");
pub(crate) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
pub(crate) const TOMBSTONES: TableDefinition<&str, u64> = TableDefinition::new("tombstones");
pub(crate) const VCARDS: TableDefinition<&str, &str> = TableDefinition::new("vcards");
pub(crate) const AVATAR_HASHES: TableDefinition<&str, &str> = TableDefinition::new("avatar_hashes");
pub(crate) const PRIVATE_XML: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("private_xml");
pub(crate) const LAST_LOGOUT: TableDefinition<&str, &[u8]> = TableDefinition::new("last_logout");
pub(crate) const ROSTER_ITEMS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("roster_items");
pub(crate) const ROSTER_VERSIONS: TableDefinition<&str, (u64, u64)> =
    TableDefinition::new("roster_versions");
pub(crate) const ROSTER_TOMBSTONES: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("roster_tombstones");
pub(crate) const ROSTER_PENDING_IN: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("roster_pending_in");
pub(crate) const OFFLINE_MESSAGES: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("offline_messages");
pub(crate) const BLOCKLIST: TableDefinition<(&str, &str), ()> = TableDefinition::new("blocklist");

/// A record in the version 2 layout: key, value.
type Record = (Vec<u8>, Vec<u8>);

/// Rewrites every version 1 table in the version 2 layout inside `txn`
/// (the caller sets the new version and commits); returns how many records
/// were converted. Any record that cannot be converted fails the whole
/// upgrade, leaving the file as it was.
pub(super) fn upgrade(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let meta = read_all(txn, META, schema::META)?;
    check_version(&meta)?;
    let mut records = rewrite(txn, schema::META, meta)?;
    records += convert(txn, ACCOUNTS, schema::ACCOUNTS)?;
    records += convert(txn, SECRETS, schema::SECRETS)?;
    records += convert(txn, TOMBSTONES, schema::TOMBSTONES)?;
    records += convert(txn, VCARDS, schema::VCARDS)?;
    records += convert(txn, AVATAR_HASHES, schema::AVATAR_HASHES)?;
    records += convert(txn, PRIVATE_XML, schema::PRIVATE_XML)?;
    records += convert(txn, LAST_LOGOUT, schema::LAST_LOGOUT)?;
    records += convert(txn, MUC_ROOMS, schema::MUC_ROOMS)?;
    records += convert(txn, MUC_AFFILIATIONS, schema::MUC_AFFILIATIONS)?;
    records += convert(txn, MUC_HISTORY, schema::MUC_HISTORY)?;
    records += convert(txn, ROSTER_ITEMS, schema::ROSTER_ITEMS)?;
    records += convert(txn, ROSTER_VERSIONS, schema::ROSTER_VERSIONS)?;
    records += convert(txn, ROSTER_TOMBSTONES, schema::ROSTER_TOMBSTONES)?;
    records += convert(txn, ROSTER_PENDING_IN, schema::ROSTER_PENDING_IN)?;
    records += convert(txn, OFFLINE_MESSAGES, schema::OFFLINE_MESSAGES)?;
    records += convert(txn, BLOCKLIST, schema::BLOCKLIST)?;
    Ok(records)
}

/// The version 1 `meta` table must say version 1 (or nothing, as a file
/// interrupted at creation would).
fn check_version(meta: &[Record]) -> Result<(), StoreError> {
    let stored = meta
        .iter()
        .find(|(key, _)| key.as_slice() == keys::single(schema::VERSION_KEY))
        .map(|(_, value)| keys::read_u64(schema::META, value))
        .transpose()?;
    match stored {
        None | Some(1) => Ok(()),
        Some(v) if v > schema::SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            found: v,
            supported: schema::SCHEMA_VERSION,
        }),
        Some(v) => Err(StoreError::Corrupt(format!(
            "table meta: schema version {v} in the layout of version 1"
        ))),
    }
}

fn convert<K: OldKey + 'static, V: OldValue + 'static>(
    txn: &WriteTransaction,
    old: TableDefinition<'static, K, V>,
    new: Def,
) -> Result<u64, StoreError> {
    let records = read_all(txn, old, new)?;
    rewrite(txn, new, records)
}

/// Every record of `old` in the layout of `new`.
fn read_all<K: OldKey + 'static, V: OldValue + 'static>(
    txn: &WriteTransaction,
    old: TableDefinition<'static, K, V>,
    new: Def,
) -> Result<Vec<Record>, StoreError> {
    read_stored(txn, old.name(), (K::LAYOUT, V::LAYOUT), new)
}

std::thread_local! {
    /// The types of the version 1 table being read on this thread, for
    /// [`StoredKey`] and [`StoredValue`]; `None` outside [`read_stored`].
    static READING: Cell<Option<(KeyLayout, ValueLayout)>> = const { Cell::new(None) };
}

/// Every record of the table `name`, which has the version 1 types
/// `layout`, in the layout of `new`; none if the table does not exist (it
/// was added to version 1 after the file was made).
fn read_stored(
    txn: &WriteTransaction,
    name: &str,
    layout: (KeyLayout, ValueLayout),
    new: Def,
) -> Result<Vec<Record>, StoreError> {
    READING.set(Some(layout));
    let stored = stored_records(txn, name);
    READING.set(None);
    let (key_layout, value_layout) = layout;
    let mut records = stored?;
    for (key, value) in &mut records {
        *key = key_layout.convert(new, key)?;
        *value = value_layout.convert(new, value)?;
    }
    Ok(records)
}

/// The stored bytes of every record of `name`, read as the types in
/// `READING`.
fn stored_records(txn: &WriteTransaction, name: &str) -> Result<Vec<Record>, StoreError> {
    let definition = TableDefinition::<StoredKey, StoredValue>::new(name);
    let table = match txn.open_table(definition) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut records = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        records.push((key.value().to_vec(), value.value().to_vec()));
    }
    Ok(records)
}

/// Replaces the table named like `new` (deleted by name, whatever its
/// types) by one of the new type holding `records`.
fn rewrite(txn: &WriteTransaction, new: Def, records: Vec<Record>) -> Result<u64, StoreError> {
    txn.delete_table(new)?;
    let mut table = txn.open_table(new)?;
    for (key, value) in &records {
        table.insert(key.as_slice(), value.as_slice())?;
    }
    Ok(records.len() as u64)
}

/// The key types of version 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyLayout {
    /// `&str`
    Str,
    /// `(&str, &str)`
    StrPair,
    /// `(&str, u64)`
    StrNumber,
}

/// The value types of version 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueLayout {
    /// `&[u8]`
    Bytes,
    /// `&str`
    Str,
    /// `u64`
    Number,
    /// `(u64, u64)`
    NumberPair,
    /// `()`
    Nothing,
}

impl KeyLayout {
    fn type_name(self) -> TypeName {
        match self {
            KeyLayout::Str => <&str>::type_name(),
            KeyLayout::StrPair => <(&str, &str)>::type_name(),
            KeyLayout::StrNumber => <(&str, u64)>::type_name(),
        }
    }

    fn fixed_width(self) -> Option<usize> {
        match self {
            KeyLayout::Str => <&str>::fixed_width(),
            KeyLayout::StrPair => <(&str, &str)>::fixed_width(),
            KeyLayout::StrNumber => <(&str, u64)>::fixed_width(),
        }
    }

    /// A stored key in the version 2 layout of table `new`.
    fn convert(self, new: Def, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        match self {
            KeyLayout::Str => Ok(keys::single(keys::read_str(new, stored)?).to_vec()),
            KeyLayout::StrPair => {
                let (first, second) = split_tuple(new, stored)?;
                keys::pair(
                    new,
                    keys::read_str(new, first)?,
                    keys::read_str(new, second)?,
                )
            }
            KeyLayout::StrNumber => {
                let (owner, seq) = split_tuple(new, stored)?;
                keys::numbered(new, keys::read_str(new, owner)?, le_u64(new, seq)?)
            }
        }
    }
}

impl ValueLayout {
    fn type_name(self) -> TypeName {
        match self {
            ValueLayout::Bytes => <&[u8]>::type_name(),
            ValueLayout::Str => <&str>::type_name(),
            ValueLayout::Number => <u64>::type_name(),
            ValueLayout::NumberPair => <(u64, u64)>::type_name(),
            ValueLayout::Nothing => <()>::type_name(),
        }
    }

    fn fixed_width(self) -> Option<usize> {
        match self {
            ValueLayout::Bytes => <&[u8]>::fixed_width(),
            ValueLayout::Str => <&str>::fixed_width(),
            ValueLayout::Number => <u64>::fixed_width(),
            ValueLayout::NumberPair => <(u64, u64)>::fixed_width(),
            ValueLayout::Nothing => <()>::fixed_width(),
        }
    }

    /// A stored value in the version 2 layout (of table `new`, named in
    /// errors).
    fn convert(self, new: Def, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(match self {
            ValueLayout::Bytes => stored.to_vec(),
            ValueLayout::Str => keys::read_str(new, stored)?.as_bytes().to_vec(),
            ValueLayout::Number => keys::u64_value(le_u64(new, stored)?).to_vec(),
            ValueLayout::NumberPair => {
                let pair = <[u8; 16]>::try_from(stored).map_err(|_| {
                    keys::corrupt(new, format!("a {}-byte pair of numbers", stored.len()))
                })?;
                let (first, second) = pair.split_at(8);
                keys::u64_pair_value(le_u64(new, first)?, le_u64(new, second)?).to_vec()
            }
            ValueLayout::Nothing => keys::EMPTY.to_vec(),
        })
    }
}

// redb's own decoders of these types trust the bytes and panic on a
// damaged record; the upgrade reads every record once, so it decodes them
// itself, checking every length.

/// A version 1 number: 8 bytes, little endian (redb's layout of `u64`).
fn le_u64(new: Def, stored: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(stored)
        .map(u64::from_le_bytes)
        .map_err(|_| keys::corrupt(new, format!("a {}-byte number", stored.len())))
}

/// The two parts of a version 1 pair key (redb's layout of a tuple whose
/// first part has no fixed width): the first part's length (one byte up to
/// 253, or 254 and a little-endian u16, or 255 and a little-endian u32),
/// the first part, then the second part.
fn split_tuple(new: Def, stored: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let damaged = || keys::corrupt(new, format!("a damaged {}-byte pair key", stored.len()));
    let (&tag, rest) = stored.split_first().ok_or_else(damaged)?;
    let (len, rest) = match tag {
        0..=253 => (usize::from(tag), rest),
        254 => {
            let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(damaged)?;
            (usize::from(u16::from_le_bytes(*len)), rest)
        }
        255 => {
            let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(damaged)?;
            let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| damaged())?;
            (len, rest)
        }
    };
    if rest.len() < len {
        return Err(damaged());
    }
    Ok(rest.split_at(len))
}

/// A version 1 key type, by its layout.
trait OldKey: Key {
    const LAYOUT: KeyLayout;
}

/// A version 1 value type, by its layout.
trait OldValue: Value {
    const LAYOUT: ValueLayout;
}

impl OldKey for &'static str {
    const LAYOUT: KeyLayout = KeyLayout::Str;
}

impl OldKey for (&'static str, &'static str) {
    const LAYOUT: KeyLayout = KeyLayout::StrPair;
}

impl OldKey for (&'static str, u64) {
    const LAYOUT: KeyLayout = KeyLayout::StrNumber;
}

impl OldValue for &'static [u8] {
    const LAYOUT: ValueLayout = ValueLayout::Bytes;
}

impl OldValue for &'static str {
    const LAYOUT: ValueLayout = ValueLayout::Str;
}

impl OldValue for u64 {
    const LAYOUT: ValueLayout = ValueLayout::Number;
}

impl OldValue for (u64, u64) {
    const LAYOUT: ValueLayout = ValueLayout::NumberPair;
}

impl OldValue for () {
    const LAYOUT: ValueLayout = ValueLayout::Nothing;
}

/// A key (`IS_KEY`) or value of the version 1 table being read, as its
/// stored bytes, with the redb type name and width of its version 1 type
/// (from `READING`). Keys compare bytewise: they are only ever used to walk
/// a whole table, never to seek.
#[derive(Debug)]
struct Stored<const IS_KEY: bool>;
type StoredKey = Stored<true>;
type StoredValue = Stored<false>;

impl<const IS_KEY: bool> Stored<IS_KEY> {
    /// The type name and width redb expects, or none outside [`read_stored`].
    fn reading() -> Option<(TypeName, Option<usize>)> {
        READING.get().map(|(key, value)| {
            if IS_KEY {
                (key.type_name(), key.fixed_width())
            } else {
                (value.type_name(), value.fixed_width())
            }
        })
    }
}

/// Outside [`read_stored`] nothing matches: opening a table fails with a
/// type mismatch rather than reading it wrongly.
fn unset() -> TypeName {
    TypeName::new("perch::schema_v1::unset")
}

impl<const IS_KEY: bool> Value for Stored<IS_KEY> {
    type SelfType<'a> = &'a [u8];
    type AsBytes<'a> = &'a [u8];

    fn fixed_width() -> Option<usize> {
        Self::reading().and_then(|(_, width)| width)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> &'a [u8]
    where
        Self: 'a,
    {
        data
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a &'b [u8]) -> &'a [u8]
    where
        Self: 'b,
    {
        value
    }

    fn type_name() -> TypeName {
        Self::reading().map_or_else(unset, |(name, _)| name)
    }
}

impl Key for StoredKey {
    fn compare(data1: &[u8], data2: &[u8]) -> std::cmp::Ordering {
        data1.cmp(data2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::im::roster::{RosterItem, Subscription};
    use crate::jid::Jid;
    use crate::sasl::Credentials;
    use crate::store::schema::Migration;
    use crate::store::{Store, offline, roster};
    use crate::testing::TempDir;
    use crate::xml::Element;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    fn item(contact: &str, version: u64) -> RosterItem {
        let mut item = RosterItem::new(jid(contact));
        item.name = Some(format!("{contact} ☺"));
        item.groups = vec!["Friends".into()];
        item.subscription = Subscription::Both;
        item.version = version;
        item
    }

    const SUBSCRIBE: &str =
        "<presence xmlns='jabber:client' type='subscribe'><status>hi</status></presence>";
    const VCARD: &str = "<vCard xmlns='vcard-temp'><FN>A &amp; B</FN></vCard>";
    const PRIVATE: &str =
        "<query xmlns='jabber:iq:private'><prefs xmlns='exodus:prefs'>x</prefs></query>";

    /// Offline sequence numbers of a@b, beyond one byte to check that the
    /// new keys sort by number.
    const SEQS: [u64; 5] = [1, 2, 255, 256, 70_000];

    /// A version 1 file as Perch wrote it, with something in every table;
    /// `a@b` and `a@bc` check that one owner's keys never run into the
    /// next. Returns how many records it holds.
    fn write_version_1(path: &std::path::Path) -> u64 {
        let db = redb::Database::create(path).expect("create");
        let txn = db.begin_write().expect("txn");
        let mut records = 0;
        let mut count = |n: u64| records += n;
        {
            let mut t = txn.open_table(META).expect("meta");
            t.insert("schema_version", 1).expect("insert");
            count(1);
            let mut t = txn.open_table(ACCOUNTS).expect("accounts");
            for (who, pw) in [("a@b", "pw-ab"), ("a@bc", "pw-abc")] {
                let creds = Credentials::derive(pw, 4096).expect("derive");
                t.insert(who, creds.to_bytes().as_slice()).expect("insert");
            }
            count(2);
            let mut t = txn.open_table(SECRETS).expect("secrets");
            t.insert("salt", [7u8; 32].as_slice()).expect("insert");
            count(1);
            let mut t = txn.open_table(TOMBSTONES).expect("tombstones");
            t.insert("gone@b", 1_700_000_000).expect("insert");
            count(1);
            let mut t = txn.open_table(VCARDS).expect("vcards");
            t.insert("a@b", VCARD).expect("insert");
            count(1);
            let mut t = txn.open_table(AVATAR_HASHES).expect("hashes");
            t.insert("a@b", "ab".repeat(20).as_str()).expect("insert");
            count(1);
            let mut t = txn.open_table(PRIVATE_XML).expect("private");
            t.insert(("a@b", "exodus:prefs"), PRIVATE).expect("insert");
            t.insert(("a@bc", "exodus:prefs"), PRIVATE).expect("insert");
            count(2);
            let mut t = txn.open_table(LAST_LOGOUT).expect("last");
            let mut logout = 1_600_000_000u64.to_be_bytes().to_vec();
            logout.extend_from_slice("bye".as_bytes());
            t.insert("a@b", logout.as_slice()).expect("insert");
            count(1);
            let mut t = txn.open_table(MUC_ROOMS).expect("rooms");
            t.insert("room@muc", [1u8, 2, 3].as_slice())
                .expect("insert");
            t.insert("room@mucx", [4u8].as_slice()).expect("insert");
            count(2);
            let mut t = txn.open_table(MUC_AFFILIATIONS).expect("affiliations");
            t.insert(("room@muc", "a@b"), [7u8].as_slice())
                .expect("insert");
            t.insert(("room@muc", "a@bc"), [8u8].as_slice())
                .expect("insert");
            t.insert(("room@mucx", "a@b"), [9u8].as_slice())
                .expect("insert");
            count(3);
            let mut t = txn.open_table(MUC_HISTORY).expect("history");
            t.insert("room@muc", [5u8, 5].as_slice()).expect("insert");
            count(1);
            let mut t = txn.open_table(ROSTER_ITEMS).expect("items");
            for contact in ["c@d", "e@f"] {
                let value = roster::encode_item(&item(contact, 3));
                t.insert(("a@b", contact), value.as_slice())
                    .expect("insert");
            }
            let value = roster::encode_item(&item("x@y", 1));
            t.insert(("a@bc", "x@y"), value.as_slice()).expect("insert");
            count(3);
            let mut t = txn.open_table(ROSTER_VERSIONS).expect("versions");
            t.insert("a@b", (9, 2)).expect("insert");
            t.insert("a@bc", (1, 0)).expect("insert");
            count(2);
            let mut t = txn.open_table(ROSTER_TOMBSTONES).expect("tombstones");
            t.insert(("a@b", "old@f"), 8).expect("insert");
            count(1);
            let mut t = txn.open_table(ROSTER_PENDING_IN).expect("pending");
            t.insert(("a@b", "fan@f"), SUBSCRIBE.as_bytes())
                .expect("insert");
            count(1);
            let mut t = txn.open_table(OFFLINE_MESSAGES).expect("offline");
            // Inserted out of order: the key, not the insertion, orders them.
            for seq in SEQS.iter().rev() {
                t.insert(("a@b", *seq), format!("m{seq}").as_bytes())
                    .expect("insert");
            }
            t.insert(("a@bc", 1), b"other".as_slice()).expect("insert");
            count(SEQS.len() as u64 + 1);
            let mut t = txn.open_table(BLOCKLIST).expect("blocklist");
            t.insert(("a@b", "evil@x"), ()).expect("insert");
            t.insert(("a@b", "spam.example"), ()).expect("insert");
            t.insert(("a@bc", "troll@x"), ()).expect("insert");
            count(3);
        }
        txn.commit().expect("commit");
        records
    }

    fn stored_version(path: &std::path::Path) -> (Migration, Option<u64>) {
        let db = redb::Database::create(path).expect("open");
        let migration = schema::migrate(&db).expect("migrate");
        let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
        let meta = txn.open_table(schema::META).expect("meta");
        let version = redb::ReadableTable::get(&meta, keys::single(schema::VERSION_KEY))
            .expect("get")
            .map(|v| keys::read_u64(schema::META, v.value()).expect("u64"));
        (migration, version)
    }

    fn check_every_record(store: &Store) {
        let accounts = store.accounts();
        assert_eq!(
            accounts.list(None).expect("list"),
            vec!["a@b".to_string(), "a@bc".to_string()]
        );
        let ab = accounts.credentials("a@b").expect("read").expect("a@b");
        assert!(ab.verify_password("pw-ab"));
        let abc = accounts.credentials("a@bc").expect("read").expect("a@bc");
        assert!(abc.verify_password("pw-abc"));
        assert_eq!(store.secret("salt").expect("secret"), vec![7u8; 32]);
        assert_eq!(
            store.tombstones().deleted_at("gone@b").expect("tombstone"),
            Some(1_700_000_000)
        );

        let vcard = store.vcards().get("a@b").expect("vcard");
        assert_eq!(vcard, Some(Element::parse(VCARD).expect("parse")));
        assert_eq!(
            store.vcards().photo_hash("a@b").expect("hash"),
            Some("ab".repeat(20))
        );
        assert_eq!(store.vcards().get("a@bc").expect("vcard"), None);
        let prefs = Element::parse(PRIVATE).expect("parse");
        let expected: Vec<Element> = prefs.children().cloned().collect();
        for who in ["a@b", "a@bc"] {
            let got = store.private_xml().get(who, "exodus:prefs").expect("get");
            assert_eq!(got, expected, "{who}");
        }
        let logout = store.last_logouts().get("a@b").expect("logout");
        assert_eq!(
            logout.map(|l| (l.at, l.status)),
            Some((1_600_000_000, "bye".into()))
        );

        let rooms = store.muc_rooms();
        let room = rooms.load("room@muc").expect("load").expect("room");
        assert_eq!(room.record, vec![1, 2, 3]);
        assert_eq!(
            room.affiliations,
            vec![("a@b".to_string(), vec![7]), ("a@bc".to_string(), vec![8])]
        );
        assert_eq!(room.history, Some(vec![5, 5]));
        let other = rooms.load("room@mucx").expect("load").expect("room");
        assert_eq!(other.affiliations, vec![("a@b".to_string(), vec![9])]);
        assert_eq!(other.history, None);
        assert_eq!(rooms.count().expect("count"), 2);

        let ab_roster = roster::load(store, &jid("a@b")).expect("roster");
        assert_eq!((ab_roster.version(), ab_roster.floor()), (9, 2));
        assert_eq!(ab_roster.len(), 2);
        for contact in ["c@d", "e@f"] {
            assert_eq!(ab_roster.item(&jid(contact)), Some(&item(contact, 3)));
        }
        let tombstones: Vec<(String, u64)> = ab_roster
            .tombstones()
            .map(|(j, v)| (j.to_string(), v))
            .collect();
        assert_eq!(tombstones, vec![("old@f".to_string(), 8)]);
        let pending: Vec<(String, Element)> = ab_roster
            .pending_in()
            .map(|(j, e)| (j.to_string(), e.clone()))
            .collect();
        assert_eq!(
            pending,
            vec![("fan@f".to_string(), Element::parse(SUBSCRIBE).expect("xml"))]
        );
        let abc_roster = roster::load(store, &jid("a@bc")).expect("roster");
        assert_eq!(abc_roster.len(), 1);
        assert_eq!(abc_roster.item(&jid("x@y")), Some(&item("x@y", 1)));
        assert_eq!(abc_roster.tombstones().count(), 0);
        assert_eq!(abc_roster.pending_in_count(), 0);

        let messages = offline::read_after(store, "a@b", 0).expect("offline");
        let expected: Vec<(u64, Vec<u8>)> = SEQS
            .iter()
            .map(|seq| (*seq, format!("m{seq}").into_bytes()))
            .collect();
        assert_eq!(messages, expected);
        let after = offline::read_after(store, "a@b", 255).expect("offline");
        assert_eq!(after.first().map(|(seq, _)| *seq), Some(256));
        let summary = offline::summary(store, "a@bc").expect("summary");
        assert_eq!((summary.count, summary.last_seq), (1, 1));

        assert_eq!(
            crate::store::blocking::load(store, "a@b").expect("blocklist"),
            vec!["evil@x".to_string(), "spam.example".to_string()]
        );
        assert_eq!(
            crate::store::blocking::load(store, "a@bc").expect("blocklist"),
            vec!["troll@x".to_string()]
        );
    }

    #[test]
    fn a_version_1_file_keeps_every_record() {
        let dir = TempDir::new("schema-v1");
        let path = dir.path().join("perch.redb");
        let written = write_version_1(&path);
        // Every table of version 1 has a record.
        assert!(written >= 16);

        {
            let db = redb::Database::create(&path).expect("open");
            let txn = db.begin_write().expect("txn");
            let converted = upgrade(&txn).expect("upgrade");
            assert_eq!(converted, written);
            // Rolled back: the real upgrade below is Store::open's.
            txn.abort().expect("abort");
        }

        let store = Store::open(&path, 1 << 20).expect("open upgrades");
        check_every_record(&store);
        drop(store);

        assert_eq!(
            stored_version(&path),
            (Migration::Current, Some(schema::SCHEMA_VERSION))
        );
        let store = Store::open(&path, 1 << 20).expect("reopen");
        check_every_record(&store);
        // The upgraded file backs up like any other.
        let backup = dir.path().join("backup.redb");
        let file = std::fs::File::create_new(&backup).expect("create");
        let summary = smol::block_on(store.backup_into(file)).expect("backup");
        assert_eq!(summary.records, written);
    }

    #[test]
    fn version_1_records_decode_as_redb_wrote_them_and_damage_is_an_error() {
        let t = schema::OFFLINE_MESSAGES;
        let long = "x".repeat(300);
        let pair = <(&str, &str)>::as_bytes(&(long.as_str(), "b@c"));
        assert_eq!(
            KeyLayout::StrPair.convert(t, &pair).expect("pair"),
            keys::pair(t, &long, "b@c").expect("key")
        );
        let numbered = <(&str, u64)>::as_bytes(&("a@b", 256));
        assert_eq!(
            KeyLayout::StrNumber
                .convert(t, &numbered)
                .expect("numbered"),
            keys::numbered(t, "a@b", 256).expect("key")
        );
        let number = <u64>::as_bytes(&7);
        assert_eq!(
            ValueLayout::Number.convert(t, &number).expect("number"),
            keys::u64_value(7)
        );
        let two = <(u64, u64)>::as_bytes(&(1, u64::MAX));
        assert_eq!(
            ValueLayout::NumberPair.convert(t, &two).expect("pair"),
            keys::u64_pair_value(1, u64::MAX)
        );
        for damaged in [&[][..], &[5, b'a'], &[254, 1], &[255, 9, 0, 0, 0, b'a']] {
            assert!(matches!(
                KeyLayout::StrPair.convert(t, damaged),
                Err(StoreError::Corrupt(_))
            ));
        }
        assert!(matches!(
            KeyLayout::StrNumber.convert(t, &numbered[..numbered.len() - 1]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            KeyLayout::Str.convert(t, &[0xff]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            ValueLayout::Number.convert(t, &[1, 2]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            ValueLayout::NumberPair.convert(t, &two[..15]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn the_reading_types_match_only_the_table_being_read() {
        let dir = TempDir::new("schema-v1-types");
        let path = dir.path().join("perch.redb");
        write_version_1(&path);
        let db = redb::Database::open(&path).expect("open");
        let txn = db.begin_write().expect("txn");
        let accounts = TableDefinition::<StoredKey, StoredValue>::new("accounts");
        // Outside `read_stored`, and with another table's types, redb
        // refuses the table instead of misreading it.
        assert!(matches!(
            txn.open_table(accounts),
            Err(redb::TableError::TableTypeMismatch { .. })
        ));
        READING.set(Some((KeyLayout::StrPair, ValueLayout::Bytes)));
        let wrong = txn.open_table(accounts).map(drop);
        READING.set(None);
        assert!(matches!(
            wrong,
            Err(redb::TableError::TableTypeMismatch { .. })
        ));
        let read = read_stored(
            &txn,
            "accounts",
            (KeyLayout::Str, ValueLayout::Bytes),
            schema::ACCOUNTS,
        )
        .expect("read");
        assert_eq!(read.len(), 2);
        assert_eq!(READING.get(), None);
    }

    #[test]
    fn tables_added_late_to_version_1_are_created() {
        let dir = TempDir::new("schema-v1-old");
        let path = dir.path().join("perch.redb");
        {
            let db = redb::Database::create(&path).expect("create");
            let txn = db.begin_write().expect("txn");
            txn.open_table(META)
                .expect("meta")
                .insert("schema_version", 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let (migration, version) = stored_version(&path);
        assert_eq!(
            migration,
            Migration::Upgraded {
                from: 1,
                records: 1
            }
        );
        assert_eq!(version, Some(schema::SCHEMA_VERSION));
        let store = Store::open(&path, 1 << 20).expect("open");
        assert_eq!(store.muc_rooms().count().expect("count"), 0);
        let backup = dir.path().join("backup.redb");
        let file = std::fs::File::create_new(&backup).expect("create");
        let summary = smol::block_on(store.backup_into(file)).expect("backup");
        assert_eq!(summary.records, 1);
    }

    #[test]
    fn an_unconvertible_record_leaves_the_file_at_version_1() {
        let dir = TempDir::new("schema-v1-bad");
        let path = dir.path().join("perch.redb");
        write_version_1(&path);
        {
            let db = redb::Database::open(&path).expect("open");
            let txn = db.begin_write().expect("txn");
            txn.open_table(BLOCKLIST)
                .expect("blocklist")
                .insert(("a@b", "nul\0x"), ())
                .expect("insert");
            txn.commit().expect("commit");
        }
        assert!(matches!(
            Store::open(&path, 1 << 20),
            Err(StoreError::InvalidKey { table, .. }) if table == "blocklist"
        ));
        let db = redb::Database::open(&path).expect("open");
        let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
        let meta = txn.open_table(META).expect("still the version 1 types");
        let version = redb::ReadableTable::get(&meta, "schema_version").expect("get");
        assert_eq!(version.map(|v| v.value()), Some(1));
    }
}
