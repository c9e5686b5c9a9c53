//! Table definitions and the schema version with its migration path.
//!
//! Every table maps bytes to bytes (`&[u8]` to `&[u8]`), and `keys.rs`
//! lays records out in them. The reason is the binary's size: redb's B-tree
//! code is generic over a table's key and value types, so each distinct pair
//! compiles it again (insert, delete, open, range, cursor, backup copy:
//! about 25 KB a pair), and the kernel's fault-around makes nearly the
//! whole text of the binary resident, so binary size is idle RSS on a
//! Raspberry Pi. Version 1's nine typed pairs cost 216 KiB (x86-64 musl)
//! and 128 KiB of idle RSS more than this one pair.
//!
//! Rules for a new table: key and value `&[u8]`, layout built and checked
//! by functions in `keys.rs` (or the record's module), documented here;
//! created in `migrate` for a fresh file, listed in [`TABLES`]. Pass keys
//! and values as `&[u8]` and ranges as [`keys::KeyRange::bounds`]: redb's
//! methods are generic over their argument types too. Changing a layout
//! means a new [`SCHEMA_VERSION`] and a step in `migrate`.

use redb::{ReadableDatabase, TableDefinition, TableHandle};

use super::StoreError;
use super::keys::{self, Def};

/// Bumped whenever a table's key or value layout changes; `migrate` holds
/// the step from every older version to the next. Version 1 had a Rust type
/// per key and value (`schema_v1.rs`); version 2 stores bytes everywhere.
pub const SCHEMA_VERSION: u64 = 2;

/// Name -> u64 (8 bytes big endian). Holds the schema version.
pub(crate) const META: Def = TableDefinition::new("meta");
/// Bare JID (normalized) -> encoded `sasl::Credentials`.
pub(crate) const ACCOUNTS: Def = TableDefinition::new("accounts");

/// Room bare JID -> encoded `muc::record::RoomRecord`.
pub(crate) const MUC_ROOMS: Def = TableDefinition::new("muc_rooms");
/// Room bare JID 0x00 user bare JID -> encoded
/// `muc::record::AffiliationRecord`.
pub(crate) const MUC_AFFILIATIONS: Def = TableDefinition::new("muc_affiliations");
/// Room bare JID -> encoded discussion history, saved when the room leaves
/// memory.
pub(crate) const MUC_HISTORY: Def = TableDefinition::new("muc_history");

/// Name -> a server-wide random secret (32 bytes), created on first use and
/// kept forever.
pub(crate) const SECRETS: Def = TableDefinition::new("secrets");

/// Bare JID of a deleted account -> when it was deleted (Unix seconds, 8
/// bytes big endian). The address can never be registered again (see
/// `tombstones.rs`).
pub(crate) const TOMBSTONES: Def = TableDefinition::new("tombstones");

/// Bare JID -> the account's vCard (XEP-0054): the `<vCard xmlns='vcard-temp'>`
/// element serialized as UTF-8 XML, exactly as the user stored it.
pub(crate) const VCARDS: Def = TableDefinition::new("vcards");

/// Bare JID -> lower-case hex SHA-1 of the image in the vCard's PHOTO
/// (XEP-0153, UTF-8), kept apart so that stamping it on every presence
/// reads 40 bytes, not the whole vCard. No entry: no photo.
pub(crate) const AVATAR_HASHES: Def = TableDefinition::new("avatar_hashes");

/// Bare JID 0x00 namespace -> private XML (XEP-0049): a serialized
/// `<query xmlns='jabber:iq:private'>` holding the elements of that
/// namespace, UTF-8.
pub(crate) const PRIVATE_XML: Def = TableDefinition::new("private_xml");

/// Bare JID -> the last logout (XEP-0012): 8 bytes of Unix seconds (big
/// endian), then the status text of the last unavailable presence (UTF-8).
pub(crate) const LAST_LOGOUT: Def = TableDefinition::new("last_logout");

/// Owner 0x00 contact, both bare JIDs -> encoded roster item
/// (`store::roster`).
pub(crate) const ROSTER_ITEMS: Def = TableDefinition::new("roster_items");
/// Owner -> roster version then versioning floor, 8 bytes big endian each:
/// see `im::roster`.
pub(crate) const ROSTER_VERSIONS: Def = TableDefinition::new("roster_versions");
/// Owner 0x00 contact -> roster version at which the item was removed (8
/// bytes big endian).
pub(crate) const ROSTER_TOMBSTONES: Def = TableDefinition::new("roster_tombstones");
/// Owner 0x00 contact -> the contact's unanswered subscription request, as
/// serialized XML (RFC 6121 §3.1.3: kept whole, status and extensions).
pub(crate) const ROSTER_PENDING_IN: Def = TableDefinition::new("roster_pending_in");
/// Owner 0x00 sequence number (8 bytes big endian) -> an offline message
/// (XEP-0160) as serialized XML with its XEP-0203 delay; numbers grow, so
/// key order is arrival order.
pub(crate) const OFFLINE_MESSAGES: Def = TableDefinition::new("offline_messages");
/// Owner 0x00 blocked JID -> nothing (XEP-0191 blocklist).
pub(crate) const BLOCKLIST: Def = TableDefinition::new("blocklist");
/// Resumption id (XEP-0198) -> a resumable session saved when the server
/// stopped, as serialized XML (`saved_sessions.rs` at the crate root
/// documents the element); taken and deleted at the next start. Files
/// older than this table get it at the first save.
pub(crate) const SAVED_SESSIONS: Def = TableDefinition::new("saved_sessions");

/// Message archives (XEP-0313), one set of tables for accounts and one for
/// rooms (`store::archive`); files older than these tables get them at the
/// first archived message, and reads treat a missing table as empty.
///
/// Owner (the account's or the room's bare JID) 0x00 stamp (microseconds
/// since the Unix epoch, 8 bytes big endian, unique per archive) -> flags
/// (1 byte: bit 0 outgoing, bit 1 tombstone), u16 big endian length and
/// the index string (the peer's bare JID; a room: the sender's nick), u16
/// big endian length and the extra string (a room: the sender's real JID;
/// else empty), then the stanza serialized as UTF-8 XML in `jabber:client`.
pub(crate) const ARCHIVE_USER_MESSAGES: Def = TableDefinition::new("archive_user_messages");
/// Owner 0x00 index string 0x00 stamp (8 bytes big endian) -> nothing: the
/// messages of [`ARCHIVE_USER_MESSAGES`] by peer, so that "the newest with
/// X" is one range scan.
pub(crate) const ARCHIVE_USER_WITH: Def = TableDefinition::new("archive_user_with");
/// Owner -> message count, sum of the lengths of its values in
/// [`ARCHIVE_USER_MESSAGES`], stamps of the oldest and of the newest
/// message: 4 x 8 bytes big endian, written with every change of the
/// archive. No row: no message.
pub(crate) const ARCHIVE_USER_STATS: Def = TableDefinition::new("archive_user_stats");
/// As [`ARCHIVE_USER_MESSAGES`], for rooms.
pub(crate) const ARCHIVE_ROOM_MESSAGES: Def = TableDefinition::new("archive_room_messages");
/// As [`ARCHIVE_USER_WITH`], for rooms (index: the sender's nick).
pub(crate) const ARCHIVE_ROOM_WITH: Def = TableDefinition::new("archive_room_with");
/// As [`ARCHIVE_USER_STATS`], for rooms.
pub(crate) const ARCHIVE_ROOM_STATS: Def = TableDefinition::new("archive_room_stats");
/// Account bare JID -> its archiving preferences, as `archive::prefs`
/// encodes them. No row: the server's default.
pub(crate) const ARCHIVE_PREFS: Def = TableDefinition::new("archive_prefs");

/// Publish-subscribe nodes (XEP-0060), of every account's PEP service
/// (XEP-0163; the service is the account's bare JID) and of the pubsub
/// service (the service is its domain), in `store::pubsub`; files older
/// than these tables get them at the first write, and reads treat a
/// missing table as empty.
///
/// Service 0x00 node name -> the node's record as `pubsub::NodeRecord`
/// encodes it: a version byte (1), the configuration (opaque to the store)
/// length-prefixed, the number of affiliations then per affiliation the
/// bare JID length-prefixed and a byte (1 owner, 2 publisher, 3
/// publish-only, 4 member, 5 none, 6 outcast), the number of subscriptions
/// then per subscription the JID and the subscription id, each
/// length-prefixed. Numbers and lengths are unsigned LEB128 (7 bits a byte,
/// low bits first).
pub(crate) const PUBSUB_NODES: Def = TableDefinition::new("pubsub_nodes");
/// Service 0x00 node name 0x00 item id -> the publication stamp (8 bytes big
/// endian; newer items have greater stamps), the publisher's JID
/// length-prefixed (LEB128 as in [`PUBSUB_NODES`]), then the item's payload
/// serialized as UTF-8 XML (the rest). A node's items form one range,
/// ordered by id; their order of publication is the stamps'.
pub(crate) const PUBSUB_ITEMS: Def = TableDefinition::new("pubsub_items");

/// HTTP File Upload (XEP-0363) slots and files, in `store::upload`; files
/// older than these tables get them at the first slot, and reads treat a
/// missing table as empty. The files themselves are in `<data_dir>/upload/`
/// under their ids.
///
/// File id (32 lower-case hex digits, the URLs' secret) -> a version byte
/// (1), when the slot was handed out, when the upload finished (0: not
/// yet) and the announced size (Unix seconds and bytes, 8 bytes big endian
/// each), then the owner's bare JID, the announced media type (empty:
/// none) and the file name, each as a 2-byte big endian length and UTF-8.
pub(crate) const UPLOAD_FILES: Def = TableDefinition::new("upload_files");
/// Owner bare JID 0x00 file id -> nothing: the files of [`UPLOAD_FILES`] by
/// owner, for the daily quota and for account deletion.
pub(crate) const UPLOAD_BY_OWNER: Def = TableDefinition::new("upload_by_owner");

/// Operator notices, in `store::server_notices`; files older than these
/// tables get them at the first write, and reads treat a missing table as
/// empty.
///
/// Host domain -> its message of the day (XEP-0133), UTF-8.
pub(crate) const MOTD: Def = TableDefinition::new("motd");
/// Bare JID of a disabled account -> when it was disabled (Unix seconds, 8
/// bytes big endian). No row: the account may log in.
pub(crate) const DISABLED_ACCOUNTS: Def = TableDefinition::new("disabled_accounts");

/// Push registrations (XEP-0357), in `store::push`; created at the first
/// write, and reads treat a missing table as empty.
///
/// Account bare JID 0x00 app server JID 0x00 node -> a version byte (1),
/// when the registration was made (Unix seconds, 8 bytes big endian), then
/// the publish options the client gave as a serialized
/// `<x xmlns='jabber:x:data'>` form, UTF-8 (empty: none).
pub(crate) const PUSH_REGISTRATIONS: Def = TableDefinition::new("push_registrations");

/// Invitations (XEP-0401/0445/0379), in `store::invites`; files older
/// than this table get it at the first invite, and reads treat a missing
/// table as empty.
///
/// Token (the URL-safe secret, ASCII) -> a version byte (1), the kind (1
/// account, 2 contact), when it was created and when it expires (Unix
/// seconds, 8 bytes big endian each), the uses left (4 bytes big endian),
/// then the host, the creator's bare JID, the fixed username and the
/// roster group, each as a 2-byte big endian length and UTF-8 (empty:
/// none).
pub(crate) const INVITES: Def = TableDefinition::new("invites");

/// FAST tokens (XEP-0484), in `store::fast_tokens`; created at the first
/// token issued, and reads treat a missing table as empty.
///
/// Account bare JID 0x00 client (its SASL2 user-agent id, a UUID) -> the
/// client's tokens as `sasl::fast::TokenRecord` encodes them: a version
/// byte (1), then two slots (the current token, then a new one not yet
/// used), each a byte 0 (empty) or 1 followed by the mechanism (1
/// HT-SHA-256-NONE, 2 HT-SHA-256-EXPR), the SHA-256 of the token (32
/// bytes; never the token), its expiry (Unix seconds) and the last replay
/// count seen (8 and 4 bytes big endian). At most
/// `fast_tokens::MAX_CLIENTS_PER_ACCOUNT` rows per account; all of them go
/// when the password changes or the account is deleted.
pub(crate) const FAST_TOKENS: Def = TableDefinition::new("fast_tokens");

/// Accounts made administrators at run time, in `store::granted_admins`;
/// created at the first grant, and reads treat a missing table as empty.
///
/// Account bare JID -> when it was granted (Unix seconds, 8 bytes big
/// endian). The configuration's `admins` are not stored here.
pub(crate) const GRANTED_ADMINS: Def = TableDefinition::new("granted_admins");

pub(crate) const VERSION_KEY: &str = "schema_version";

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
    &SAVED_SESSIONS,
    &MUC_ROOMS,
    &MUC_AFFILIATIONS,
    &MUC_HISTORY,
    &ARCHIVE_USER_MESSAGES,
    &ARCHIVE_USER_WITH,
    &ARCHIVE_USER_STATS,
    &ARCHIVE_ROOM_MESSAGES,
    &ARCHIVE_ROOM_WITH,
    &ARCHIVE_ROOM_STATS,
    &ARCHIVE_PREFS,
    &PUBSUB_NODES,
    &PUBSUB_ITEMS,
    &UPLOAD_FILES,
    &UPLOAD_BY_OWNER,
    &PUSH_REGISTRATIONS,
    &MOTD,
    &DISABLED_ACCOUNTS,
    &INVITES,
    &FAST_TOKENS,
    &GRANTED_ADMINS,
];

/// What `migrate` found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Migration {
    /// The file was at [`SCHEMA_VERSION`] already.
    Current,
    /// A new file: its tables were created.
    Created,
    /// The file was upgraded from `from`, converting `records` records.
    Upgraded { from: u64, records: u64 },
}

/// The version a file's `meta` table records, as far as it can be read.
enum Found {
    /// No `meta` table or no version in it: a new file.
    Nothing,
    /// A version stored in the current layout.
    Version(u64),
    /// `meta` has the version 1 types.
    Version1Layout,
}

fn found_version(db: &redb::Database) -> Result<Found, StoreError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Found::Nothing),
        Err(redb::TableError::TableTypeMismatch { .. }) => return Ok(Found::Version1Layout),
        Err(e) => return Err(e.into()),
    };
    match redb::ReadableTable::get(&table, keys::single(VERSION_KEY))? {
        Some(v) => Ok(Found::Version(keys::read_u64(META, v.value())?)),
        None => Ok(Found::Nothing),
    }
}

/// Brings the file to [`SCHEMA_VERSION`]: creates the tables of a new
/// file, upgrades an older one in one transaction (all or nothing), and
/// refuses one written by a newer Perch.
pub(crate) fn migrate(db: &redb::Database) -> Result<Migration, StoreError> {
    match found_version(db)? {
        Found::Version(v) if v == SCHEMA_VERSION => Ok(Migration::Current),
        Found::Version(v) if v > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            found: v,
            supported: SCHEMA_VERSION,
        }),
        Found::Version(v) => Err(StoreError::Corrupt(format!(
            "table {}: schema version {v} in the layout of version {SCHEMA_VERSION}",
            META.name()
        ))),
        Found::Version1Layout => {
            let txn = db.begin_write()?;
            let records = super::schema_v1::upgrade(&txn)?;
            set_version(&txn)?;
            txn.commit()?;
            log::info!("database upgraded from schema 1 to {SCHEMA_VERSION} ({records} records)");
            Ok(Migration::Upgraded { from: 1, records })
        }
        Found::Nothing => {
            let txn = db.begin_write()?;
            for table in [
                ACCOUNTS,
                SECRETS,
                TOMBSTONES,
                VCARDS,
                AVATAR_HASHES,
                PRIVATE_XML,
                LAST_LOGOUT,
                MUC_ROOMS,
                MUC_AFFILIATIONS,
                MUC_HISTORY,
                ROSTER_ITEMS,
                ROSTER_VERSIONS,
                ROSTER_TOMBSTONES,
                ROSTER_PENDING_IN,
                OFFLINE_MESSAGES,
                BLOCKLIST,
                SAVED_SESSIONS,
                ARCHIVE_USER_MESSAGES,
                ARCHIVE_USER_WITH,
                ARCHIVE_USER_STATS,
                ARCHIVE_ROOM_MESSAGES,
                ARCHIVE_ROOM_WITH,
                ARCHIVE_ROOM_STATS,
                ARCHIVE_PREFS,
                PUBSUB_NODES,
                PUBSUB_ITEMS,
                UPLOAD_FILES,
                UPLOAD_BY_OWNER,
                MOTD,
                DISABLED_ACCOUNTS,
            ] {
                txn.open_table(table)?;
            }
            set_version(&txn)?;
            txn.commit()?;
            log::debug!("database initialised at schema version {SCHEMA_VERSION}");
            Ok(Migration::Created)
        }
    }
}

fn set_version(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(META)?.insert(
        keys::single(VERSION_KEY),
        keys::u64_value(SCHEMA_VERSION).as_slice(),
    )?;
    Ok(())
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
                .insert(
                    keys::single(VERSION_KEY),
                    keys::u64_value(SCHEMA_VERSION + 1).as_slice(),
                )
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
            .read(|txn| {
                let meta = txn.open_table(META)?;
                let stored = meta.get(keys::single(VERSION_KEY))?;
                stored.map(|v| keys::read_u64(META, v.value())).transpose()
            })
            .expect("read");
        assert_eq!(v, Some(SCHEMA_VERSION));
    }
}
