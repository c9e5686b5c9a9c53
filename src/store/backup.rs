//! Consistent copies of the whole database (`perch backup`): one read
//! transaction is a snapshot, and its tables are written into a fresh redb
//! file. The server keeps serving meanwhile; the copy runs on the blocking
//! pool.
//!
//! Tables are copied through [`CopyTable`], which every table definition of
//! the schema implements; [`super::schema::TABLES`] lists them. A table that
//! is in the file but not in that list stops the backup with an error, so a
//! table added without registering it cannot silently go missing from
//! backups (a unit test checks the list against a fresh database, too).

use std::fs::File;

use redb::{
    Durability, Key, MultimapTableDefinition, ReadTransaction, ReadableDatabase,
    ReadableMultimapTable, ReadableTable, TableDefinition, Value, WriteTransaction,
};

use super::StoreError;
use super::schema::TABLES;

/// Records per write transaction in the copy, so that a large database is
/// not held in memory as one giant transaction.
const RECORDS_PER_TRANSACTION: u64 = 4096;

/// Page cache for the file being written: it is written once, never read.
const TARGET_CACHE_BYTES: usize = 1 << 20;

/// One table that a backup copies.
pub(crate) trait CopyTable {
    fn name(&self) -> &str;
    fn is_multimap(&self) -> bool;
    /// Copies every record of this table in `from` into `to`, committing
    /// (not yet durably) every [`RECORDS_PER_TRANSACTION`] records; returns
    /// how many were copied. A table missing from `from` is created empty.
    fn copy(&self, from: &ReadTransaction, to: &redb::Database) -> Result<u64, StoreError>;
}

fn begin(to: &redb::Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = to.begin_write()?;
    // Made durable by the final commit in `snapshot_into`.
    txn.set_durability(Durability::None)
        .map_err(|e| StoreError::Db(e.into()))?;
    Ok(txn)
}

impl<K: Key + 'static, V: Value + 'static> CopyTable for TableDefinition<'static, K, V> {
    fn name(&self) -> &str {
        redb::TableHandle::name(self)
    }

    fn is_multimap(&self) -> bool {
        false
    }

    fn copy(&self, from: &ReadTransaction, to: &redb::Database) -> Result<u64, StoreError> {
        let source = match from.open_table(*self) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                let txn = begin(to)?;
                txn.open_table(*self)?;
                txn.commit()?;
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let mut records = source.iter()?;
        let mut total = 0;
        loop {
            let txn = begin(to)?;
            let mut batch = 0;
            {
                let mut target = txn.open_table(*self)?;
                while batch < RECORDS_PER_TRANSACTION {
                    let Some(entry) = records.next() else { break };
                    let (key, value) = entry?;
                    target.insert(key.value(), value.value())?;
                    batch += 1;
                }
            }
            txn.commit()?;
            total += batch;
            if batch < RECORDS_PER_TRANSACTION {
                return Ok(total);
            }
        }
    }
}

impl<K: Key + 'static, V: Key + 'static> CopyTable for MultimapTableDefinition<'static, K, V> {
    fn name(&self) -> &str {
        redb::MultimapTableHandle::name(self)
    }

    fn is_multimap(&self) -> bool {
        true
    }

    fn copy(&self, from: &ReadTransaction, to: &redb::Database) -> Result<u64, StoreError> {
        let source = match from.open_multimap_table(*self) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                let txn = begin(to)?;
                txn.open_multimap_table(*self)?;
                txn.commit()?;
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        // Keys with their value sets; a key's values go into one
        // transaction, so batches may run a little over the target size.
        let mut keys = source.iter()?;
        let mut total = 0;
        loop {
            let txn = begin(to)?;
            let mut batch = 0;
            {
                let mut target = txn.open_multimap_table(*self)?;
                while batch < RECORDS_PER_TRANSACTION {
                    let Some(entry) = keys.next() else { break };
                    let (key, values) = entry?;
                    for value in values {
                        target.insert(key.value(), value?.value())?;
                        batch += 1;
                    }
                }
            }
            txn.commit()?;
            total += batch;
            if batch < RECORDS_PER_TRANSACTION {
                return Ok(total);
            }
        }
    }
}

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    pub tables: usize,
    pub records: u64,
}

/// Tables present in the snapshot that [`TABLES`] does not list.
fn unregistered_tables(snapshot: &ReadTransaction) -> Result<Vec<String>, StoreError> {
    let known = |name: &str, multimap: bool| {
        TABLES
            .iter()
            .any(|t| t.name() == name && t.is_multimap() == multimap)
    };
    let mut unknown = Vec::new();
    for table in snapshot.list_tables()? {
        let name = redb::TableHandle::name(&table);
        if !known(name, false) {
            unknown.push(name.to_string());
        }
    }
    for table in snapshot.list_multimap_tables()? {
        let name = redb::MultimapTableHandle::name(&table);
        if !known(name, true) {
            unknown.push(format!("{name} (multimap)"));
        }
    }
    Ok(unknown)
}

/// Writes a consistent copy of `db` into `file`, which must be empty (a
/// new file the caller created). Blocks: call it on the blocking pool.
pub fn snapshot_into(db: &redb::Database, file: File) -> Result<BackupSummary, StoreError> {
    let existing = file
        .metadata()
        .map_err(|e| StoreError::Io("the backup file".into(), e))?
        .len();
    if existing != 0 {
        return Err(StoreError::BackupTargetNotEmpty);
    }
    let snapshot = db.begin_read()?;
    let unknown = unregistered_tables(&snapshot)?;
    if !unknown.is_empty() {
        return Err(StoreError::UnregisteredTables(unknown));
    }
    let target = redb::Builder::new()
        .set_cache_size(TARGET_CACHE_BYTES)
        .create_with_backend(redb::backends::FileBackend::new(file)?)?;
    let mut records = 0;
    for table in TABLES {
        records += table.copy(&snapshot, &target)?;
    }
    // An empty durable commit makes every earlier non-durable one durable.
    let last = target.begin_write()?;
    last.commit()?;
    Ok(BackupSummary {
        tables: TABLES.len(),
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::{Credentials, DEFAULT_ITERATIONS};
    use crate::store::Store;
    use crate::testing::TempDir;

    fn new_file(dir: &TempDir, name: &str) -> (std::path::PathBuf, File) {
        let path = dir.path().join(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create");
        (path, file)
    }

    #[test]
    fn every_schema_table_is_registered() {
        let dir = TempDir::new("backup-registry");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let unknown = store.read(unregistered_tables).expect("list");
        assert!(
            unknown.is_empty(),
            "tables created by schema::migrate but missing from schema::TABLES: {unknown:?}"
        );
    }

    /// Tables created lazily (at their first write) escape the check
    /// above; every table the schema defines must be in [`TABLES`] all the
    /// same, or the first invitation or FAST token makes backups refuse.
    #[test]
    fn every_defined_table_is_registered() {
        let source = include_str!("schema.rs");
        let defined: Vec<&str> = source
            .split("TableDefinition::new(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(defined.len() >= TABLES.len(), "{defined:?}");
        let missing: Vec<&&str> = defined
            .iter()
            .filter(|name| !TABLES.iter().any(|t| t.name() == **name))
            .collect();
        assert!(
            missing.is_empty(),
            "tables schema.rs defines but schema::TABLES does not list: {missing:?}"
        );
    }

    #[test]
    fn copy_is_complete_and_opens_as_a_store() {
        let dir = TempDir::new("backup");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let secret = store.secret("scram-fake-salt").expect("secret");
        let creds = Credentials::derive("pw", DEFAULT_ITERATIONS).expect("derive");
        // More accounts than one copy transaction holds.
        let count = RECORDS_PER_TRANSACTION + 10;
        store
            .write_now(Box::new(move |txn| {
                let mut t = txn.open_table(super::super::schema::ACCOUNTS)?;
                for i in 0..count {
                    t.insert(format!("user{i}@example.com").as_bytes(), b"x".as_slice())?;
                }
                Ok(())
            }))
            .expect("fill");
        smol::block_on(store.accounts().create("romeo@example.com", &creds)).expect("create");

        let (path, file) = new_file(&dir, "backup.redb");
        let summary = smol::block_on(store.backup_into(file)).expect("backup");
        assert_eq!(summary.tables, TABLES.len());
        // accounts + the secret + the schema version
        assert_eq!(summary.records, count + 1 + 1 + 1);

        drop(store);
        let copy = Store::open(&path, 1 << 20).expect("backup opens");
        assert_eq!(copy.accounts().count().expect("count"), count + 1);
        let got = copy
            .accounts()
            .credentials("romeo@example.com")
            .expect("read")
            .expect("present");
        assert!(got.verify_password("pw"));
        assert_eq!(copy.secret("scram-fake-salt").expect("secret"), secret);
    }

    #[test]
    fn a_non_empty_target_is_refused() {
        let dir = TempDir::new("backup-nonempty");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let (_, mut file) = new_file(&dir, "x");
        std::io::Write::write_all(&mut file, b"important").expect("write");
        assert!(matches!(
            smol::block_on(store.backup_into(file)),
            Err(StoreError::BackupTargetNotEmpty)
        ));
    }

    #[test]
    fn an_unregistered_table_stops_the_backup() {
        const STRAY: TableDefinition<&str, u64> = TableDefinition::new("stray");
        let dir = TempDir::new("backup-stray");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        store
            .write_now(Box::new(|txn| {
                txn.open_table(STRAY)?.insert("k", 1)?;
                Ok(())
            }))
            .expect("stray");
        let (_, file) = new_file(&dir, "b.redb");
        match smol::block_on(store.backup_into(file)) {
            Err(StoreError::UnregisteredTables(t)) => assert_eq!(t, vec!["stray".to_string()]),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
