//! Schema version 1, kept to upgrade files written by Perch before
//! version 2. Version 1 gave every table its own Rust key and value types;
//! version 2 stores bytes everywhere (`schema.rs` says why, `keys.rs` how).
//! Only the read side of these definitions is ever used: the upgrade reads
//! each table with its old types and writes it anew in the new layout, so
//! redb's write paths are not compiled for the old types.

use redb::{Key, ReadableTable, TableDefinition, Value, WriteTransaction};

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

/// Every record of `old` in the layout of `new`; none if the table does
/// not exist (it was added to version 1 after the file was made).
fn read_all<K: OldKey + 'static, V: OldValue + 'static>(
    txn: &WriteTransaction,
    old: TableDefinition<'static, K, V>,
    new: Def,
) -> Result<Vec<Record>, StoreError> {
    let table = match txn.open_table(old) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut records = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        records.push((K::to_v2(new, key.value())?, V::to_v2(value.value())));
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

/// A version 1 key type and its version 2 layout.
trait OldKey: Key {
    fn to_v2(table: Def, key: Self::SelfType<'_>) -> Result<Vec<u8>, StoreError>;
}

/// A version 1 value type and its version 2 layout.
trait OldValue: Value {
    fn to_v2(value: Self::SelfType<'_>) -> Vec<u8>;
}

impl OldKey for &str {
    fn to_v2(_: Def, key: &str) -> Result<Vec<u8>, StoreError> {
        Ok(keys::single(key).to_vec())
    }
}

impl OldKey for (&str, &str) {
    fn to_v2(table: Def, (first, second): (&str, &str)) -> Result<Vec<u8>, StoreError> {
        keys::pair(table, first, second)
    }
}

impl OldKey for (&str, u64) {
    fn to_v2(table: Def, (owner, seq): (&str, u64)) -> Result<Vec<u8>, StoreError> {
        keys::numbered(table, owner, seq)
    }
}

impl OldValue for &[u8] {
    fn to_v2(value: &[u8]) -> Vec<u8> {
        value.to_vec()
    }
}

impl OldValue for &str {
    fn to_v2(value: &str) -> Vec<u8> {
        value.as_bytes().to_vec()
    }
}

impl OldValue for u64 {
    fn to_v2(value: u64) -> Vec<u8> {
        keys::u64_value(value).to_vec()
    }
}

impl OldValue for (u64, u64) {
    fn to_v2((first, second): (u64, u64)) -> Vec<u8> {
        keys::u64_pair_value(first, second).to_vec()
    }
}

impl OldValue for () {
    fn to_v2((): ()) -> Vec<u8> {
        keys::EMPTY.to_vec()
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
