//! Persistence: one redb file of byte-keyed tables (layouts in `keys.rs`
//! and `schema.rs`), a schema version, and group commit so that
//! message-rate writes cost one fsync per batch, not per write.

mod account_data;
mod account_exists;
pub mod accounts;
pub mod archive;
mod backup;
pub mod blocking;
mod commit;
pub mod fast_tokens;
pub mod granted_admins;
mod interrupted_creation;
pub mod invites;
mod keys;
pub mod last_logout;
mod muc;
pub mod offline;
pub mod private_xml;
pub mod pubsub;
pub mod push;
pub mod roster;
pub mod saved_sessions;
mod schema;
mod schema_v1;
pub mod server_notices;
mod tombstones;
pub mod upload;
pub mod vcards;

pub use accounts::{Accounts, CredentialReader, delete_account_op, set_credentials_op};
pub use backup::{BackupSummary, snapshot_into};
pub use commit::{BatchFailure, Waiter, WriteOp, WriteTicket};
pub use last_logout::{LastLogout, LastLogouts};
pub use muc::{MucRooms, MucWrite, StoredRoom, write_op as muc_write_op};
pub use private_xml::PrivateXml;
pub use pubsub::Pubsub;
pub use schema::SCHEMA_VERSION;
pub use server_notices::ServerNotices;
pub use tombstones::Tombstones;
pub use upload::Uploads;
pub use vcards::VCards;

/// Test set-up for modules outside the store (the upload service).
#[cfg(test)]
pub(crate) use account_exists::create_accounts_for_test;

use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};

/// Anything that can go wrong talking to the database file.
#[derive(Debug)]
pub enum StoreError {
    /// Another process (usually a running `perch run`) holds the file lock.
    Locked(PathBuf),
    /// The file was written by a newer Perch whose schema we do not know.
    SchemaTooNew { found: u64, supported: u64 },
    /// Creating the data directory failed.
    Io(PathBuf, std::io::Error),
    /// redb reported an error (storage, corruption, transaction).
    Db(redb::Error),
    /// The background commit was dropped (server shutting down).
    CommitAborted,
    /// A stored value could not be decoded.
    Corrupt(String),
    /// A key part contained NUL, the separator of two-part keys (JIDs and
    /// XML names never do); nothing was read or written under it.
    InvalidKey { table: String, part: String },
    /// The record to create exists already (e.g. an account).
    AlreadyExists(String),
    /// The record to change or delete does not exist.
    NotFound(String),
    /// The address belonged to an account that was deleted; it cannot be
    /// registered again (so nobody can take over a deleted user's contacts).
    Tombstoned(String),
    /// Storing this would exceed a configured limit.
    LimitExceeded(String),
    /// A write made on the caller's behalf failed (why, in words).
    WriteFailed(String),
    /// A backup was asked to write into a file that has data.
    BackupTargetNotEmpty,
    /// Tables in the file that the backup does not know how to copy (a
    /// table missing from `schema::TABLES`): no backup is written.
    UnregisteredTables(Vec<String>),
}

impl StoreError {
    /// A write the store declined by its rules (a record exists already or
    /// is gone, a limit) rather than one it failed to make: an answer for
    /// the client, not storage trouble for the operator.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::AlreadyExists(_)
                | StoreError::NotFound(_)
                | StoreError::Tombstoned(_)
                | StoreError::LimitExceeded(_)
                | StoreError::InvalidKey { .. }
        )
    }
}

impl StoreError {
    /// The database can take no more writes until it is reopened: redb
    /// refuses every write after an I/O error (and a reopen repairs the
    /// file), so the server stops rather than answer every request with
    /// an error. A full or failing disk, a file removed under it.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
            )
        )
    }

    /// An I/O error saying the disk is full: it may have room again later.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Db(redb::Error::Io(e)) if e.kind() == std::io::ErrorKind::StorageFull)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked(p) => write!(
                f,
                "database {} is in use by another process (is `perch run` already running?)",
                p.display()
            ),
            StoreError::SchemaTooNew { found, supported } => write!(
                f,
                "database schema version {found} is newer than this Perch supports ({supported}); upgrade Perch"
            ),
            StoreError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            StoreError::Db(e) => write!(f, "database error: {e}"),
            StoreError::CommitAborted => write!(f, "database write was aborted by shutdown"),
            StoreError::Corrupt(what) => write!(f, "corrupt database record: {what}"),
            StoreError::InvalidKey { table, part } => write!(
                f,
                "{part:?} cannot be part of a key of table {table}: it contains NUL"
            ),
            StoreError::AlreadyExists(what) => write!(f, "{what} exists already"),
            StoreError::NotFound(what) => write!(f, "{what} does not exist"),
            StoreError::Tombstoned(jid) => write!(
                f,
                "{jid} belonged to a deleted account and cannot be registered again"
            ),
            StoreError::LimitExceeded(what) => f.write_str(what),
            StoreError::WriteFailed(why) => write!(f, "the change could not be stored: {why}"),
            StoreError::BackupTargetNotEmpty => {
                write!(
                    f,
                    "the backup file is not empty; a backup writes a new file"
                )
            }
            StoreError::UnregisteredTables(names) => write!(
                f,
                "the database has table(s) {} that this Perch cannot back up; no backup was written",
                names.join(", ")
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Db(e.into())
    }
}

/// Handle to the database. Cheap to clone; reads run inline (redb reads are
/// served from its page cache), writes go through the group committer.
#[derive(Clone)]
pub struct Store {
    db: Arc<redb::Database>,
    committer: Option<Rc<commit::Committer>>,
    /// Sequence numbers of writes made without a committer (CLI, start-up).
    direct_seq: Rc<Cell<u64>>,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the database at `path` with a page cache of
    /// `cache_bytes`, migrating the schema if needed.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(dir.to_path_buf(), e))?;
        }
        let create = || {
            redb::Builder::new()
                .set_cache_size(cache_bytes)
                .create(path)
        };
        let db = match create() {
            // Checked only once redb has refused the file. Another
            // process creating it at this very moment would have written
            // the magic number within milliseconds of its first sync.
            Err(redb::DatabaseError::Storage(_))
                if interrupted_creation::discard_file_if_interrupted(path) =>
            {
                create()
            }
            other => other,
        }
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.to_path_buf()),
            other => StoreError::from(other),
        })?;
        Store::migrated(db, path)
    }

    /// Opens (or creates) the database on `backend` instead of a file (tests
    /// of what a power cut leaves); `path` only names it in messages.
    pub fn open_with_backend(
        backend: impl redb::StorageBackend,
        path: &Path,
        cache_bytes: usize,
    ) -> Result<Store, StoreError> {
        interrupted_creation::discard_backend_if_interrupted(&backend);
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create_with_backend(backend)?;
        Store::migrated(db, path)
    }

    fn migrated(db: redb::Database, path: &Path) -> Result<Store, StoreError> {
        schema::migrate(&db)?;
        Ok(Store {
            db: Arc::new(db),
            committer: None,
            direct_seq: Rc::new(Cell::new(0)),
            path: path.to_path_buf(),
        })
    }

    /// Starts the group committer on the current (local) executor. Until this
    /// is called, writes are committed synchronously (CLI use).
    pub fn start_committer(&mut self, ex: &smol::LocalExecutor<'static>) {
        let committer = Rc::new(commit::Committer::new(self.db.clone()));
        ex.spawn(commit::run(committer.clone())).detach();
        self.committer = Some(committer);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn db(&self) -> &Arc<redb::Database> {
        &self.db
    }

    /// Applies `op` durably. With a committer, the op joins the next batch and
    /// the future resolves once that batch's transaction is on disk.
    pub async fn write(&self, op: WriteOp) -> Result<(), StoreError> {
        self.submit(op).wait().await
    }

    /// Queues `op` without waiting: writes submitted one after the other
    /// reach the disk in that order. Without a committer the write happens
    /// here and the ticket is already resolved.
    pub fn submit(&self, op: WriteOp) -> WriteTicket {
        match &self.committer {
            Some(c) => c.submit(op),
            None => {
                let seq = self.direct_seq.get() + 1;
                self.direct_seq.set(seq);
                WriteTicket::ready(seq, self.write_now(op))
            }
        }
    }

    /// The sequence number of the last write known to be processed: every
    /// write whose ticket has a number up to this one is on disk (or failed).
    /// Queues `op` for `waiter`, which hears if it fails (see
    /// [`Waiter`]). Returns its sequence number.
    pub fn submit_for(&self, op: WriteOp, waiter: Rc<dyn Waiter>) -> u64 {
        match &self.committer {
            Some(c) => c.submit_for(op, waiter),
            None => {
                let seq = self.direct_seq.get() + 1;
                self.direct_seq.set(seq);
                if let Err(e) = self.write_now(op) {
                    waiter.write_failed(&e);
                }
                seq
            }
        }
    }

    /// Settles `waiter` once the writes it requires are processed.
    pub fn watch(&self, waiter: Rc<dyn Waiter>) {
        match &self.committer {
            Some(c) => c.watch(waiter),
            None => waiter.settle(),
        }
    }

    /// Runs `hook` after every batch in which a write failed (not a
    /// refusal).
    pub fn on_write_failure(&self, hook: Box<dyn Fn(&BatchFailure)>) {
        if let Some(c) = &self.committer {
            c.on_failure(hook);
        }
    }

    /// Tests: the next `count` writes submitted to the committer fail.
    #[cfg(test)]
    pub(crate) fn fail_next_writes(&self, count: usize) {
        if let Some(c) = &self.committer {
            c.fail_next_writes(count);
        }
    }

    pub fn committed_seq(&self) -> u64 {
        match &self.committer {
            Some(c) => c.committed(),
            None => self.direct_seq.get(),
        }
    }

    /// Applies `op` in its own transaction, blocking the caller until it is
    /// on disk. For the CLI and start-up, never for the event loop.
    pub fn write_now(&self, op: WriteOp) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        op(&txn)?;
        txn.commit()?;
        Ok(())
    }

    /// Runs a read-only closure against a consistent snapshot.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read()?;
        f(&txn)
    }

    /// A 32-byte random secret named `name`, created on first call and
    /// identical on every later one (also across restarts). Called at
    /// start-up, before the committer exists, so it may write directly.
    pub fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let existing = self.read(|txn| {
            Ok(txn
                .open_table(schema::SECRETS)?
                .get(keys::single(name))?
                .map(|v| v.value().to_vec()))
        })?;
        if let Some(secret) = existing {
            return Ok(secret);
        }
        let mut fresh = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
            .map_err(|_| StoreError::Corrupt("the system random generator failed".to_string()))?;
        let key = name.to_string();
        self.write_now(Box::new(move |txn| {
            let mut table = txn.open_table(schema::SECRETS)?;
            if table.get(keys::single(&key))?.is_none() {
                table.insert(keys::single(&key), fresh.as_slice())?;
            }
            Ok(())
        }))?;
        self.read(|txn| {
            txn.open_table(schema::SECRETS)?
                .get(keys::single(name))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| StoreError::Corrupt(format!("secret {name} vanished")))
        })
    }

    /// Writes a consistent copy of the whole database into `file` (new and
    /// empty) on the blocking pool, while the server keeps serving. The copy
    /// is a complete database: stop Perch and put it in place to restore.
    pub async fn backup_into(&self, file: std::fs::File) -> Result<BackupSummary, StoreError> {
        let db = self.db.clone();
        smol::unblock(move || backup::snapshot_into(&db, file)).await
    }

    pub fn accounts(&self) -> Accounts<'_> {
        Accounts::new(self)
    }

    pub fn tombstones(&self) -> Tombstones<'_> {
        Tombstones::new(self)
    }

    pub fn vcards(&self) -> VCards<'_> {
        VCards::new(self)
    }

    pub fn private_xml(&self) -> PrivateXml<'_> {
        PrivateXml::new(self)
    }

    pub fn pubsub(&self) -> Pubsub<'_> {
        Pubsub::new(self)
    }

    /// HTTP File Upload (XEP-0363) slots and files.
    pub fn uploads(&self) -> Uploads<'_> {
        Uploads::new(self)
    }

    /// The message of the day and the disabled accounts.
    pub fn server_notices(&self) -> ServerNotices<'_> {
        ServerNotices::new(self)
    }

    /// Accounts made administrators at run time (beside `admins`).
    pub fn granted_admins(&self) -> granted_admins::GrantedAdmins<'_> {
        granted_admins::GrantedAdmins::new(self)
    }

    /// Invitations (XEP-0401/0445/0379).
    pub fn invites(&self) -> invites::Invites<'_> {
        invites::Invites::new(self)
    }

    pub fn last_logouts(&self) -> LastLogouts<'_> {
        LastLogouts::new(self)
    }

    pub fn muc_rooms(&self) -> MucRooms<'_> {
        MucRooms::new(self)
    }

    /// Waits until every write submitted so far is on disk.
    pub async fn flush(&self) {
        if let Some(c) = &self.committer {
            c.flush().await;
        }
    }
}

/// The second key parts of `owner`'s rows in the two-part-key table
/// `def` (open as `table`), e.g. the contacts of a roster, in order.
pub(crate) fn owned_keys(
    def: keys::Def,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    owner: &str,
) -> Result<Vec<String>, StoreError> {
    let range = keys::owned_by(def, owner)?;
    let mut out = Vec::new();
    for entry in table.range(range.bounds())? {
        let (key, _) = entry?;
        out.push(keys::second_part(def, owner, key.value())?.to_string());
    }
    Ok(out)
}

/// Removes every row of `table` whose key is in `range`; returns how many.
pub(crate) fn remove_range(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    range: &keys::KeyRange,
) -> Result<usize, StoreError> {
    let doomed: Vec<Vec<u8>> = table
        .range(range.bounds())?
        .map(|entry| entry.map(|(key, _)| key.value().to_vec()))
        .collect::<Result<_, _>>()?;
    for key in &doomed {
        table.remove(key.as_slice())?;
    }
    Ok(doomed.len())
}
