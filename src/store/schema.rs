//! Table definitions and the schema version with its migration path.

use redb::{ReadableDatabase, TableDefinition};

use super::StoreError;

/// Bumped whenever a table's key or value layout changes; `migrate` holds
/// the step from every older version to the next.
pub const SCHEMA_VERSION: u64 = 1;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Bare JID (normalized) -> encoded `sasl::Credentials`.
pub(crate) const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");

/// Server-wide random secrets, created on first use and kept forever.
pub(crate) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

const VERSION_KEY: &str = "schema_version";

/// Every table of the schema, for `perch backup`: a table created in
/// `migrate` must be listed here too (a test checks), or backups refuse to
/// run rather than leave it out.
pub(crate) const TABLES: &[&dyn super::backup::CopyTable] = &[&META, &ACCOUNTS, &SECRETS];

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
