//! HTTP File Upload (XEP-0363) records: one per slot handed out, from the
//! moment the client is given its URLs, through the upload (PUT), until
//! the file expires or is purged. The files themselves live beside the
//! database (`upload::files`); a transaction cannot delete a file, so a
//! record goes first and the background sweep removes files whose record
//! is gone. Layouts are documented in `schema.rs`, beside the tables.
//!
//! The limits are checked inside the write that inserts a slot, against
//! what the writes before it left: two slots asked for at once cannot both
//! take the last bytes of a quota. Counting scans the owner's records (a
//! day's worth) and, for the total, every record: a few thousand small
//! values, read from the page cache, once per slot asked for.
//!
//! Files from before uploads existed lack these tables: reads find nothing
//! there, and the first write creates them.

use std::fmt;

use redb::{ReadableTable, WriteTransaction};

use super::keys::{self, Def};
use super::schema::{UPLOAD_BY_OWNER, UPLOAD_FILES};
use super::{Store, StoreError, WriteOp};

/// The window of the daily quota, in seconds.
pub const DAY_SECS: u64 = 86_400;

/// What the store keeps of one upload slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// The bare JID of the account the slot was given to.
    pub owner: String,
    /// The file name the client asked for, as it appears in the URLs.
    pub name: String,
    /// The size the client announced; the upload must be exactly this.
    pub size: u64,
    /// The media type the client announced, if any (the upload must carry
    /// the same, and downloads are served with it).
    pub content_type: Option<String>,
    /// When the slot was handed out (Unix seconds).
    pub created: u64,
    /// When the upload finished (Unix seconds); `None` while it has not.
    pub stored: Option<u64>,
}

/// The version byte that starts an encoded [`FileRecord`].
const RECORD_VERSION: u8 = 1;

impl FileRecord {
    /// The stored value (layout in `schema.rs`).
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let content_type = self.content_type.as_deref().unwrap_or_default();
        let mut out =
            Vec::with_capacity(31 + self.owner.len() + content_type.len() + self.name.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.stored.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        for (what, text) in [
            ("owner", self.owner.as_str()),
            ("content type", content_type),
            ("file name", self.name.as_str()),
        ] {
            let len = u16::try_from(text.len()).map_err(|_| {
                StoreError::LimitExceeded(format!("an upload {what} of {} bytes", text.len()))
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Ok(out)
    }

    /// The record stored as `bytes` under `id`; anything but a whole record
    /// of a known version is `Corrupt`.
    fn decode(id: &str, bytes: &[u8]) -> Result<FileRecord, StoreError> {
        let fail = |detail: &str| keys::corrupt(UPLOAD_FILES, format!("file {id}: {detail}"));
        let (&version, rest) = bytes.split_first().ok_or_else(|| fail("empty"))?;
        if version != RECORD_VERSION {
            return Err(fail(&format!(
                "version {version} (this Perch reads {RECORD_VERSION})"
            )));
        }
        let mut rest = rest;
        let mut number = |field: &str| -> Result<u64, StoreError> {
            let (n, after) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| fail(&format!("{field} missing")))?;
            rest = after;
            Ok(u64::from_be_bytes(*n))
        };
        let created = number("creation time")?;
        let stored = number("upload time")?;
        let size = number("size")?;
        let mut text = |field: &str| -> Result<String, StoreError> {
            let (len, after) = rest
                .split_first_chunk::<2>()
                .ok_or_else(|| fail(&format!("{field} missing")))?;
            let len = usize::from(u16::from_be_bytes(*len));
            let value = after
                .get(..len)
                .ok_or_else(|| fail(&format!("{field} cut short")))?;
            rest = after.get(len..).unwrap_or_default();
            String::from_utf8(value.to_vec()).map_err(|_| fail(&format!("{field} is not UTF-8")))
        };
        let owner = text("owner")?;
        let content_type = text("content type")?;
        let name = text("file name")?;
        if !rest.is_empty() {
            return Err(fail(&format!("{} bytes after the end", rest.len())));
        }
        Ok(FileRecord {
            owner,
            name,
            size,
            content_type: (!content_type.is_empty()).then_some(content_type),
            created,
            stored: (stored != 0).then_some(stored),
        })
    }

    /// Whether the record still takes room at `now`: a stored file, or a
    /// slot that may yet be used. A slot unused for `pending_secs` after it
    /// was handed out never will be (its URL expired, and an upload begun
    /// in time has had as long again to finish).
    pub fn takes_room(&self, now: u64, pending_secs: u64) -> bool {
        self.stored.is_some() || self.created.saturating_add(pending_secs) > now
    }
}

/// Why a slot was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The owner's uploads of the last 24 hours would exceed the daily
    /// quota; enough of them leave the window at `retry_at` (Unix seconds).
    Quota { retry_at: u64 },
    /// All files together would exceed the total storage.
    Full,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Quota { .. } => f.write_str("Daily upload quota reached"),
            Refusal::Full => f.write_str("The server's upload storage is full"),
        }
    }
}

/// The limits a new slot must fit in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one owner may take within [`DAY_SECS`].
    pub daily_quota: u64,
    /// Bytes all records together may take.
    pub max_total: u64,
    /// See [`FileRecord::takes_room`].
    pub pending_secs: u64,
    /// Slots one owner may be given within [`DAY_SECS`], whatever their
    /// sizes: each is a record, and a client asking for one-byte slots
    /// must not fill the database.
    pub max_slots_per_day: usize,
}

type ReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// `def` in a read transaction; `None` in a file from before it existed.
fn open_read(txn: &redb::ReadTransaction, def: Def) -> Result<Option<ReadTable>, StoreError> {
    match txn.open_table(def) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn id_str(key: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(key)
        .map_err(|_| keys::corrupt(UPLOAD_FILES, "a file id that is not UTF-8".to_string()))
}

/// Every record, by id.
fn read_all(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
) -> Result<Vec<(String, FileRecord)>, StoreError> {
    let mut out = Vec::new();
    for entry in files.iter()? {
        let (key, value) = entry?;
        let id = id_str(key.value())?;
        out.push((id.to_string(), FileRecord::decode(id, value.value())?));
    }
    Ok(out)
}

/// The records of `owner`, by id.
fn read_owned(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    by_owner: &impl ReadableTable<&'static [u8], &'static [u8]>,
    owner: &str,
) -> Result<Vec<(String, FileRecord)>, StoreError> {
    let mut out = Vec::new();
    for id in super::owned_keys(UPLOAD_BY_OWNER, by_owner, owner)? {
        // An index entry without its record would be damage; skipped, and
        // removed with the owner's records.
        if let Some(value) = files.get(keys::single(&id))? {
            let record = FileRecord::decode(&id, value.value())?;
            out.push((id, record));
        }
    }
    Ok(out)
}

/// Whether `owner` may have a new slot of `size` bytes at `now`.
fn check_room(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    by_owner: &impl ReadableTable<&'static [u8], &'static [u8]>,
    owner: &str,
    size: u64,
    now: u64,
    limits: &Limits,
) -> Result<Result<(), Refusal>, StoreError> {
    let day_start = now.saturating_sub(DAY_SECS);
    let owned = read_owned(files, by_owner, owner)?;
    let mut given: Vec<u64> = owned
        .iter()
        .map(|(_, r)| r.created)
        .filter(|&created| created > day_start)
        .collect();
    if let Some(excess) = (given.len() + 1).checked_sub(limits.max_slots_per_day)
        && excess > 0
    {
        // When enough of today's slots have left the window.
        given.sort_unstable();
        let retry_at = given
            .get(excess - 1)
            .map_or(now, |&created| created)
            .saturating_add(DAY_SECS);
        return Ok(Err(Refusal::Quota { retry_at }));
    }
    let mut today: Vec<(u64, u64)> = owned
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.created > day_start && r.takes_room(now, limits.pending_secs))
        .map(|r| (r.created, r.size))
        .collect();
    let used = today
        .iter()
        .fold(0u64, |sum, (_, s)| sum.saturating_add(*s));
    if used.saturating_add(size) > limits.daily_quota {
        // The earliest time enough of today's uploads have left the window.
        today.sort_unstable();
        let mut left = used;
        let mut retry_at = now.saturating_add(DAY_SECS);
        for (created, bytes) in today {
            left = left.saturating_sub(bytes);
            if left.saturating_add(size) <= limits.daily_quota {
                retry_at = created.saturating_add(DAY_SECS);
                break;
            }
        }
        return Ok(Err(Refusal::Quota { retry_at }));
    }
    let mut total = size;
    for entry in files.iter()? {
        let (key, value) = entry?;
        let record = FileRecord::decode(id_str(key.value())?, value.value())?;
        if record.takes_room(now, limits.pending_secs) {
            total = total.saturating_add(record.size);
        }
    }
    if total > limits.max_total {
        return Ok(Err(Refusal::Full));
    }
    Ok(Ok(()))
}

/// Read access to the upload records.
pub struct Uploads<'a> {
    store: &'a Store,
}

impl<'a> Uploads<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Uploads { store }
    }

    /// The record of file `id`, if there is one.
    pub fn get(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        self.store.read(|txn| {
            let Some(files) = open_read(txn, UPLOAD_FILES)? else {
                return Ok(None);
            };
            let value = files.get(keys::single(id))?;
            value.map(|v| FileRecord::decode(id, v.value())).transpose()
        })
    }

    /// Every record, by id.
    pub fn all(&self) -> Result<Vec<(String, FileRecord)>, StoreError> {
        self.store.read(|txn| match open_read(txn, UPLOAD_FILES)? {
            Some(files) => read_all(&files),
            None => Ok(Vec::new()),
        })
    }

    /// The records of `owner` (a bare JID), by id.
    pub fn of_owner(&self, owner: &str) -> Result<Vec<(String, FileRecord)>, StoreError> {
        self.store.read(|txn| {
            let (Some(files), Some(by_owner)) = (
                open_read(txn, UPLOAD_FILES)?,
                open_read(txn, UPLOAD_BY_OWNER)?,
            ) else {
                return Ok(Vec::new());
            };
            read_owned(&files, &by_owner, owner)
        })
    }

    /// Whether `owner` may be given a slot of `size` bytes at `now` (the
    /// insert checks again, inside its write).
    pub fn check_room(
        &self,
        owner: &str,
        size: u64,
        now: u64,
        limits: &Limits,
    ) -> Result<Result<(), Refusal>, StoreError> {
        self.store.read(|txn| {
            let (Some(files), Some(by_owner)) = (
                open_read(txn, UPLOAD_FILES)?,
                open_read(txn, UPLOAD_BY_OWNER)?,
            ) else {
                // Nothing stored yet: only the new slot counts.
                let fits = size <= limits.daily_quota && size <= limits.max_total;
                return Ok(if fits {
                    Ok(())
                } else if size > limits.daily_quota {
                    Err(Refusal::Quota {
                        retry_at: now.saturating_add(DAY_SECS),
                    })
                } else {
                    Err(Refusal::Full)
                });
            };
            check_room(&files, &by_owner, owner, size, now, limits)
        })
    }

    /// Bytes the records that take room at `now` add up to (see
    /// [`FileRecord::takes_room`]).
    pub fn total_bytes(&self, now: u64, pending_secs: u64) -> Result<u64, StoreError> {
        Ok(self
            .all()?
            .iter()
            .filter(|(_, r)| r.takes_room(now, pending_secs))
            .fold(0u64, |sum, (_, r)| sum.saturating_add(r.size)))
    }

    /// Bytes of `owner`'s slots handed out after `since` that take room at
    /// `now`: what the daily quota counts.
    pub fn owner_bytes_since(
        &self,
        owner: &str,
        since: u64,
        now: u64,
        pending_secs: u64,
    ) -> Result<u64, StoreError> {
        Ok(self
            .of_owner(owner)?
            .iter()
            .filter(|(_, r)| r.created > since && r.takes_room(now, pending_secs))
            .fold(0u64, |sum, (_, r)| sum.saturating_add(r.size)))
    }
}

/// The write that records a new slot `id` for `record.owner`, refusing
/// with `LimitExceeded` (saying which limit) when it does not fit in
/// `limits` at `record.created`, `NotFound` when the owner's account is
/// gone, and `AlreadyExists` for an id in use.
pub fn insert_slot_op(id: &str, record: FileRecord, limits: Limits) -> WriteOp {
    let id = id.to_string();
    Box::new(move |txn| {
        super::account_exists::require_account(txn, &record.owner)?;
        let index_key = keys::pair(UPLOAD_BY_OWNER, &record.owner, &id)?;
        let value = record.encode()?;
        let mut files = txn.open_table(UPLOAD_FILES)?;
        let mut by_owner = txn.open_table(UPLOAD_BY_OWNER)?;
        if id.is_empty() || files.get(keys::single(&id))?.is_some() {
            return Err(StoreError::AlreadyExists(format!("upload slot {id:?}")));
        }
        check_room(
            &files,
            &by_owner,
            &record.owner,
            record.size,
            record.created,
            &limits,
        )?
        .map_err(|refusal| StoreError::LimitExceeded(refusal.to_string()))?;
        files.insert(keys::single(&id), value.as_slice())?;
        by_owner.insert(index_key.as_slice(), keys::EMPTY)?;
        Ok(())
    })
}

/// The write that marks file `id` uploaded at `at`: `NotFound` if its
/// record is gone (expired, purged, its account deleted), `AlreadyExists`
/// if it was marked before.
pub fn mark_stored_op(id: &str, at: u64) -> WriteOp {
    let id = id.to_string();
    Box::new(move |txn| {
        let mut files = txn.open_table(UPLOAD_FILES)?;
        let current = files
            .get(keys::single(&id))?
            .map(|v| FileRecord::decode(&id, v.value()))
            .transpose()?;
        let Some(mut record) = current else {
            return Err(StoreError::NotFound(format!("upload slot {id}")));
        };
        if record.stored.is_some() {
            return Err(StoreError::AlreadyExists(format!("the upload of {id}")));
        }
        record.stored = Some(at.max(1));
        files.insert(keys::single(&id), record.encode()?.as_slice())?;
        Ok(())
    })
}

/// The write that removes the records of these files (ids without one are
/// ignored). Their files on disk are the caller's to remove, after.
pub fn remove_op(ids: Vec<String>) -> WriteOp {
    Box::new(move |txn| {
        let mut files = txn.open_table(UPLOAD_FILES)?;
        let mut by_owner = txn.open_table(UPLOAD_BY_OWNER)?;
        for id in &ids {
            let removed = files.remove(keys::single(id))?;
            let owner = removed
                .map(|v| FileRecord::decode(id, v.value()).map(|r| r.owner))
                .transpose()?;
            if let Some(owner) = owner {
                by_owner.remove(keys::pair(UPLOAD_BY_OWNER, &owner, id)?.as_slice())?;
            }
        }
        Ok(())
    })
}

/// Removes every record of `owner` inside `txn` (account deletion; the
/// sweep then removes the files, which no record names any more).
pub(crate) fn remove_owner(txn: &WriteTransaction, owner: &str) -> Result<(), StoreError> {
    let range = keys::owned_by(UPLOAD_BY_OWNER, owner)?;
    let mut by_owner = txn.open_table(UPLOAD_BY_OWNER)?;
    let ids = super::owned_keys(UPLOAD_BY_OWNER, &by_owner, owner)?;
    super::remove_range(&mut by_owner, &range)?;
    let mut files = txn.open_table(UPLOAD_FILES)?;
    for id in &ids {
        files.remove(keys::single(id))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "upload_tests.rs"]
mod tests;
