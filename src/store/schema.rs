//! Table definitions and the schema version with its migration path.

use redb::{ReadableDatabase, TableDefinition};

use super::StoreError;

/// Bumped whenever a table's key or value layout changes; `migrate` holds
/// the step from every older version to the next.
pub const SCHEMA_VERSION: u64 = 1;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Bare JID (normalized) -> encoded `sasl::Credentials`.
pub(crate) const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");

/// Room bare JID -> encoded `muc::record::RoomRecord`.
pub(crate) const MUC_ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("muc_rooms");
/// (room bare JID, user bare JID) -> encoded `muc::record::AffiliationRecord`.
pub(crate) const MUC_AFFILIATIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("muc_affiliations");
/// Room bare JID -> encoded discussion history, saved when the room leaves
/// memory.
pub(crate) const MUC_HISTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("muc_history");

/// Server-wide random secrets, created on first use and kept forever.
pub(crate) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

/// Bare JID of a deleted account -> when it was deleted (Unix seconds).
/// The address can never be registered again (see `tombstones.rs`).
pub(crate) const TOMBSTONES: TableDefinition<&str, u64> = TableDefinition::new("tombstones");

/// Bare JID -> the account's vCard (XEP-0054): the `<vCard xmlns='vcard-temp'>`
/// element serialized as UTF-8 XML, exactly as the user stored it.
pub(crate) const VCARDS: TableDefinition<&str, &str> = TableDefinition::new("vcards");

/// Bare JID -> lower-case hex SHA-1 of the image in the vCard's PHOTO
/// (XEP-0153), kept apart so that stamping it on every presence reads 40
/// bytes, not the whole vCard. No entry: no photo.
pub(crate) const AVATAR_HASHES: TableDefinition<&str, &str> = TableDefinition::new("avatar_hashes");

/// (bare JID, namespace) -> private XML (XEP-0049): a serialized
/// `<query xmlns='jabber:iq:private'>` holding the elements of that namespace.
pub(crate) const PRIVATE_XML: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("private_xml");

/// Bare JID -> the last logout (XEP-0012): 8 bytes of Unix seconds (big
/// endian), then the status text of the last unavailable presence (UTF-8).
pub(crate) const LAST_LOGOUT: TableDefinition<&str, &[u8]> = TableDefinition::new("last_logout");

/// (owner, contact), both bare JIDs -> encoded roster item (`store::roster`).
pub(crate) const ROSTER_ITEMS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("roster_items");
/// owner -> (roster version, versioning floor): see `im::roster`.
pub(crate) const ROSTER_VERSIONS: TableDefinition<&str, (u64, u64)> =
    TableDefinition::new("roster_versions");
/// (owner, contact) -> roster version at which the item was removed.
pub(crate) const ROSTER_TOMBSTONES: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("roster_tombstones");
/// (owner, contact) -> the contact's unanswered subscription request, as
/// serialized XML (RFC 6121 §3.1.3: kept whole, status and extensions).
pub(crate) const ROSTER_PENDING_IN: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("roster_pending_in");
/// (owner, sequence number) -> an offline message (XEP-0160) as serialized
/// XML with its XEP-0203 delay; numbers grow, so key order is arrival order.
pub(crate) const OFFLINE_MESSAGES: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("offline_messages");
/// (owner, blocked JID) -> nothing (XEP-0191 blocklist).
pub(crate) const BLOCKLIST: TableDefinition<(&str, &str), ()> = TableDefinition::new("blocklist");

const VERSION_KEY: &str = "schema_version";

/// Every table of the schema, for `perch backup`: a table created in
/// `migrate` must be listed here too (a test checks), or backups refuse to
/// run rather than leave it out.
pub(crate) const TABLES: &[&dyn super::backup::CopyTable] = &[
    &META,
    &ACCOUNTS,
    &SECRETS,
    &TOMBSTONES,
    &VCARDS,
    &AVATAR_HASHES,
    &PRIVATE_XML,
    &LAST_LOGOUT,
    &ROSTER_ITEMS,
    &ROSTER_VERSIONS,
    &ROSTER_TOMBSTONES,
    &ROSTER_PENDING_IN,
    &OFFLINE_MESSAGES,
    &BLOCKLIST,
    &MUC_ROOMS,
    &MUC_AFFILIATIONS,
    &MUC_HISTORY,
];

pub(crate) fn migrate(db: &redb::Database) -> Result<(), StoreError> {
    let found = {
        let txn = db.begin_read()?;
        match txn.open_table(META) {
            Ok(t) => t.get(VERSION_KEY)?.map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        }
    };
    match found {
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        Some(v) if v > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            found: v,
            supported: SCHEMA_VERSION,
        }),
        // Older versions would be upgraded step by step here; version 1 is
        // the first, so only a fresh file needs its tables created.
        _ => {
            let txn = db.begin_write()?;
            txn.open_table(ACCOUNTS)?;
            txn.open_table(SECRETS)?;
            txn.open_table(TOMBSTONES)?;
            txn.open_table(VCARDS)?;
            txn.open_table(AVATAR_HASHES)?;
            txn.open_table(PRIVATE_XML)?;
            txn.open_table(LAST_LOGOUT)?;
            txn.open_table(MUC_ROOMS)?;
            txn.open_table(MUC_AFFILIATIONS)?;
            txn.open_table(MUC_HISTORY)?;
            txn.open_table(ROSTER_ITEMS)?;
            txn.open_table(ROSTER_VERSIONS)?;
            txn.open_table(ROSTER_TOMBSTONES)?;
            txn.open_table(ROSTER_PENDING_IN)?;
            txn.open_table(OFFLINE_MESSAGES)?;
            txn.open_table(BLOCKLIST)?;
            txn.open_table(META)?.insert(VERSION_KEY, SCHEMA_VERSION)?;
            txn.commit()?;
            log::debug!("database initialised at schema version {SCHEMA_VERSION}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_schema_is_refused() {
        let dir = crate::testing::TempDir::new("schema");
        let path = dir.path().join("perch.redb");
        {
            let db = redb::Database::create(&path).expect("create");
            let txn = db.begin_write().expect("txn");
            txn.open_table(META)
                .expect("meta")
                .insert(VERSION_KEY, SCHEMA_VERSION + 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        match crate::store::Store::open(&path, 1 << 20) {
            Err(StoreError::SchemaTooNew { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
            other => panic!("expected SchemaTooNew, got {:?}", other.err()),
        }
    }

    #[test]
    fn secrets_are_stable() {
        let dir = crate::testing::TempDir::new("secret");
        let path = dir.path().join("perch.redb");
        let first = {
            let store = crate::store::Store::open(&path, 1 << 20).expect("open");
            let s = store.secret("x").expect("secret");
            assert_eq!(s.len(), 32);
            assert_eq!(store.secret("x").expect("again"), s);
            assert_ne!(store.secret("y").expect("other"), s);
            s
        };
        let store = crate::store::Store::open(&path, 1 << 20).expect("reopen");
        assert_eq!(store.secret("x").expect("after reopen"), first);
    }

    #[test]
    fn reopen_keeps_version() {
        let dir = crate::testing::TempDir::new("schema2");
        let path = dir.path().join("perch.redb");
        drop(crate::store::Store::open(&path, 1 << 20).expect("first open"));
        let store = crate::store::Store::open(&path, 1 << 20).expect("second open");
        let v = store
            .read(|txn| Ok(txn.open_table(META)?.get(VERSION_KEY)?.map(|v| v.value())))
            .expect("read");
        assert_eq!(v, Some(SCHEMA_VERSION));
    }
}
