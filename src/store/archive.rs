//! Message archives (XEP-0313) on disk: the messages of an account or a
//! room under their stamps, an index by peer (an account's) or by nick (a
//! room's), running totals per archive, and each account's preferences.
//! Layouts are documented in `schema.rs`, beside the tables.
//!
//! Every query is one range scan of the messages in stamp order (or of the
//! index, plus a point read per message), so a page costs the same in an
//! archive of ten messages as in one of a million. Counting is the
//! exception: redb keeps no counts per range, so [`count`] answers from
//! the running totals when the range covers the whole archive and walks
//! the keys (up to a cap) when it does not.
//!
//! Files from before the archive existed lack these tables: reads find
//! nothing there, and the first write creates them.

use redb::ReadableTable;

use super::keys::{self, Def};
use super::schema::{
    ARCHIVE_PREFS, ARCHIVE_ROOM_MESSAGES, ARCHIVE_ROOM_STATS, ARCHIVE_ROOM_WITH,
    ARCHIVE_USER_MESSAGES, ARCHIVE_USER_STATS, ARCHIVE_USER_WITH,
};
use super::{Store, StoreError, WriteOp};

/// Whose archive: an account's or a room's (each has its own tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An account's archive, owned by its bare JID and indexed by the
    /// peer's bare JID.
    User,
    /// A room's archive, owned by the room's bare JID and indexed by the
    /// sender's nick.
    Room,
}

/// The tables of one kind of archive.
struct Tables {
    messages: Def,
    with: Def,
    stats: Def,
}

impl Kind {
    fn tables(self) -> Tables {
        match self {
            Kind::User => Tables {
                messages: ARCHIVE_USER_MESSAGES,
                with: ARCHIVE_USER_WITH,
                stats: ARCHIVE_USER_STATS,
            },
            Kind::Room => Tables {
                messages: ARCHIVE_ROOM_MESSAGES,
                with: ARCHIVE_ROOM_WITH,
                stats: ARCHIVE_ROOM_STATS,
            },
        }
    }
}

/// Flag: the owner sent the message (an account's archive).
pub const OUTGOING: u8 = 1;
/// Flag: the message was retracted or moderated; its stanza is the
/// tombstone that replaced it.
pub const TOMBSTONE: u8 = 2;

/// The longest index or extra string a record can hold: its length is
/// stored in two bytes.
pub const MAX_FIELD_BYTES: usize = u16::MAX as usize;

/// One archived message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveRecord {
    /// Microseconds since the Unix epoch, unique in its archive: the key,
    /// the delay stamp of a result, and the source of its stanza id.
    pub stamp: u64,
    /// [`OUTGOING`], [`TOMBSTONE`]; bits this version does not know are
    /// kept as they are.
    pub flags: u8,
    /// What the with-index files it under: the peer's bare JID for an
    /// account, the sender's nick for a room.
    pub index: String,
    /// A room's sender's real JID (shown only where the room's whois
    /// allows); empty otherwise.
    pub extra: String,
    /// The stanza serialized as UTF-8 XML in `jabber:client`.
    pub xml: Vec<u8>,
}

/// A stored value's parts, borrowed from it.
struct Parts<'v> {
    flags: u8,
    index: &'v str,
    extra: &'v str,
    /// Where the stanza starts.
    xml_at: usize,
}

/// Reads a u16-length-prefixed string at the start of `rest`.
fn take_str<'v>(
    table: Def,
    stamp: u64,
    what: &str,
    rest: &'v [u8],
) -> Result<(&'v str, &'v [u8]), StoreError> {
    let damaged = |detail: &str| keys::corrupt(table, format!("record {stamp}: {what} {detail}"));
    let (len, rest) = rest
        .split_first_chunk::<2>()
        .ok_or_else(|| damaged("length cut short"))?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return Err(damaged("cut short"));
    }
    let (text, rest) = rest.split_at(len);
    let text = std::str::from_utf8(text).map_err(|_| damaged("is not UTF-8"))?;
    Ok((text, rest))
}

/// Splits and checks a stored value.
fn split(table: Def, stamp: u64, value: &[u8]) -> Result<Parts<'_>, StoreError> {
    let (&flags, rest) = value
        .split_first()
        .ok_or_else(|| keys::corrupt(table, format!("record {stamp} is empty")))?;
    let (index, rest) = take_str(table, stamp, "index", rest)?;
    let (extra, rest) = take_str(table, stamp, "extra", rest)?;
    Ok(Parts {
        flags,
        index,
        extra,
        xml_at: value.len() - rest.len(),
    })
}

fn field_len(what: &str, text: &str) -> Result<[u8; 2], StoreError> {
    u16::try_from(text.len())
        .map(u16::to_be_bytes)
        .map_err(|_| {
            StoreError::LimitExceeded(format!(
                "an archived message's {what} of {} bytes (at most {MAX_FIELD_BYTES})",
                text.len()
            ))
        })
}

impl ArchiveRecord {
    /// The stored value (layout in `schema.rs`). Refuses (`LimitExceeded`)
    /// an index or extra string longer than [`MAX_FIELD_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let index_len = field_len("index", &self.index)?;
        let extra_len = field_len("extra string", &self.extra)?;
        let mut out = Vec::with_capacity(5 + self.index.len() + self.extra.len() + self.xml.len());
        out.push(self.flags);
        out.extend_from_slice(&index_len);
        out.extend_from_slice(self.index.as_bytes());
        out.extend_from_slice(&extra_len);
        out.extend_from_slice(self.extra.as_bytes());
        out.extend_from_slice(&self.xml);
        Ok(out)
    }

    /// The record stored as `value` under `stamp` in `kind`'s archive; a
    /// damaged value is `Corrupt`, naming the table and the stamp.
    pub fn decode(kind: Kind, stamp: u64, value: &[u8]) -> Result<ArchiveRecord, StoreError> {
        let parts = split(kind.tables().messages, stamp, value)?;
        Ok(ArchiveRecord {
            stamp,
            flags: parts.flags,
            index: parts.index.to_string(),
            extra: parts.extra.to_string(),
            xml: value[parts.xml_at..].to_vec(),
        })
    }
}

/// The running totals of one archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages stored.
    pub count: u64,
    /// Bytes their stored values take (records as encoded, keys aside).
    pub bytes: u64,
    /// The stamp of the oldest message (0 when there is none).
    pub first: u64,
    /// The stamp of the newest message (0 when there is none).
    pub last: u64,
}

impl Stats {
    fn encode(&self) -> [u8; 32] {
        let mut out = [0; 32];
        for (chunk, n) in out
            .chunks_exact_mut(8)
            .zip([self.count, self.bytes, self.first, self.last])
        {
            chunk.copy_from_slice(&n.to_be_bytes());
        }
        out
    }

    fn decode(table: Def, owner: &str, value: &[u8]) -> Result<Stats, StoreError> {
        let bad = || keys::corrupt(table, format!("{owner}: {} bytes of totals", value.len()));
        if value.len() != 32 {
            return Err(bad());
        }
        let mut n = value
            .chunks_exact(8)
            .map(|c| <[u8; 8]>::try_from(c).map(u64::from_be_bytes));
        let mut next = || n.next().and_then(|r| r.ok()).ok_or_else(bad);
        Ok(Stats {
            count: next()?,
            bytes: next()?,
            first: next()?,
            last: next()?,
        })
    }

    /// Whether `lo..=hi` holds every message.
    fn covered_by(&self, lo: u64, hi: u64) -> bool {
        self.count == 0 || (lo <= self.first && self.last <= hi)
    }
}

type BytesTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;
type ReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// `def` in a read transaction; `None` in a file from before it existed.
fn open_read(txn: &redb::ReadTransaction, def: Def) -> Result<Option<ReadTable>, StoreError> {
    match txn.open_table(def) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn read_stats(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    def: Def,
    owner: &str,
) -> Result<Stats, StoreError> {
    match table.get(keys::single(owner))? {
        Some(value) => Stats::decode(def, owner, value.value()),
        None => Ok(Stats::default()),
    }
}

/// Stores `stats`; an empty archive has no row.
fn write_stats(table: &mut BytesTable<'_>, owner: &str, stats: &Stats) -> Result<(), StoreError> {
    if stats.count == 0 {
        table.remove(keys::single(owner))?;
    } else {
        table.insert(keys::single(owner), stats.encode().as_slice())?;
    }
    Ok(())
}

/// The totals disagree with the messages stored.
fn drift(table: Def, owner: &str) -> StoreError {
    keys::corrupt(table, format!("{owner}: totals disagree with the messages"))
}

fn grow(table: Def, owner: &str, bytes: u64, by: usize) -> Result<u64, StoreError> {
    bytes
        .checked_add(by as u64)
        .ok_or_else(|| drift(table, owner))
}

fn shrink(table: Def, owner: &str, bytes: u64, by: usize) -> Result<u64, StoreError> {
    bytes
        .checked_sub(by as u64)
        .ok_or_else(|| drift(table, owner))
}

/// Adds `record` to `owner`'s archive inside `txn`, with its index entry
/// and totals. A record already stored under the same stamp is replaced.
pub fn append(
    txn: &redb::WriteTransaction,
    kind: Kind,
    owner: &str,
    record: &ArchiveRecord,
) -> Result<(), StoreError> {
    let t = kind.tables();
    let value = record.encode()?;
    let key = keys::numbered(t.messages, owner, record.stamp)?;
    let with_key = keys::pair_numbered(t.with, owner, &record.index, record.stamp)?;
    let mut stats_table = txn.open_table(t.stats)?;
    let mut stats = read_stats(&stats_table, t.stats, owner)?;
    let mut messages = txn.open_table(t.messages)?;
    let old = messages
        .insert(key.as_slice(), value.as_slice())?
        .map(|v| v.value().to_vec());
    let mut with = txn.open_table(t.with)?;
    match old {
        // Stamps are unique per archive, so this is a caller's retry.
        Some(old) => {
            let parts = split(t.messages, record.stamp, &old)?;
            if parts.index != record.index {
                let old_key = keys::pair_numbered(t.with, owner, parts.index, record.stamp)?;
                with.remove(old_key.as_slice())?;
            }
            stats.bytes = shrink(t.stats, owner, stats.bytes, old.len())?;
        }
        None => {
            if stats.count == 0 {
                stats.first = record.stamp;
                stats.last = record.stamp;
            } else {
                stats.first = stats.first.min(record.stamp);
                stats.last = stats.last.max(record.stamp);
            }
            stats.count += 1;
        }
    }
    stats.bytes = grow(t.stats, owner, stats.bytes, value.len())?;
    with.insert(with_key.as_slice(), keys::EMPTY)?;
    write_stats(&mut stats_table, owner, &stats)
}

/// The write that adds `record` to `owner`'s archive. An account's record
/// is dropped if the account is gone (a message can race its deletion,
/// like offline messages); a room's is always written.
pub fn append_op(kind: Kind, owner: &str, record: ArchiveRecord) -> WriteOp {
    let owner = owner.to_string();
    Box::new(move |txn| {
        if kind == Kind::User && !super::account_exists::has_account(txn, &owner)? {
            return Ok(());
        }
        append(txn, kind, &owner, &record)
    })
}

/// Replaces the flags and the stanza of the message stored under `stamp`
/// (a retraction or a moderation leaves a tombstone), keeping its index
/// and extra strings, inside `txn`. A missing message is no error:
/// nothing is done (it may have expired meanwhile).
pub fn replace(
    txn: &redb::WriteTransaction,
    kind: Kind,
    owner: &str,
    stamp: u64,
    flags: u8,
    xml: &[u8],
) -> Result<(), StoreError> {
    let t = kind.tables();
    let key = keys::numbered(t.messages, owner, stamp)?;
    let mut messages = txn.open_table(t.messages)?;
    let Some(old) = messages.get(key.as_slice())?.map(|v| v.value().to_vec()) else {
        return Ok(());
    };
    let xml_at = split(t.messages, stamp, &old)?.xml_at;
    let mut value = Vec::with_capacity(xml_at + xml.len());
    value.push(flags);
    value.extend_from_slice(&old[1..xml_at]);
    value.extend_from_slice(xml);
    messages.insert(key.as_slice(), value.as_slice())?;
    let mut stats_table = txn.open_table(t.stats)?;
    let mut stats = read_stats(&stats_table, t.stats, owner)?;
    if stats.count == 0 {
        return Err(drift(t.stats, owner));
    }
    stats.bytes = shrink(t.stats, owner, stats.bytes, old.len())?;
    stats.bytes = grow(t.stats, owner, stats.bytes, value.len())?;
    write_stats(&mut stats_table, owner, &stats)
}

/// The write that does [`replace`].
pub fn replace_op(kind: Kind, owner: &str, stamp: u64, flags: u8, xml: Vec<u8>) -> WriteOp {
    let owner = owner.to_string();
    Box::new(move |txn| replace(txn, kind, &owner, stamp, flags, &xml))
}

/// The message stored under `stamp`, if any.
pub fn get(
    store: &Store,
    kind: Kind,
    owner: &str,
    stamp: u64,
) -> Result<Option<ArchiveRecord>, StoreError> {
    let t = kind.tables();
    let key = keys::numbered(t.messages, owner, stamp)?;
    store.read(|txn| {
        let Some(messages) = open_read(txn, t.messages)? else {
            return Ok(None);
        };
        let value = messages.get(key.as_slice())?;
        value
            .map(|v| ArchiveRecord::decode(kind, stamp, v.value()))
            .transpose()
    })
}

/// The totals of `owner`'s archive (all zero when it has none).
pub fn stats(store: &Store, kind: Kind, owner: &str) -> Result<Stats, StoreError> {
    store.read(|txn| stats_in(txn, kind, owner))
}

fn stats_in(txn: &redb::ReadTransaction, kind: Kind, owner: &str) -> Result<Stats, StoreError> {
    let t = kind.tables();
    match open_read(txn, t.stats)? {
        Some(table) => read_stats(&table, t.stats, owner),
        None => Ok(Stats::default()),
    }
}

/// Every account's (or room's) archive with its totals, in JID order, read
/// in one read transaction (one row per archive): for the CLI and for the
/// cleanup that expires and trims them. Empty archives are not listed.
pub fn all_stats(store: &Store, kind: Kind) -> Result<Vec<(String, Stats)>, StoreError> {
    let t = kind.tables();
    store.read(|txn| {
        let Some(table) = open_read(txn, t.stats)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let owner = keys::read_str(t.stats, key.value())?;
            let stats = Stats::decode(t.stats, owner, value.value())?;
            out.push((owner.to_string(), stats));
        }
        Ok(out)
    })
}

/// Which messages a [`scan`] visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scan<'a> {
    /// The oldest stamp visited (inclusive).
    pub lo: u64,
    /// The newest stamp visited (inclusive).
    pub hi: u64,
    /// Only the messages the with-index files under this key (a bare JID
    /// for an account, a nick for a room).
    pub with: Option<&'a str>,
    /// Newest first (a page before a point, or the last page).
    pub descending: bool,
    /// At most this many records are returned.
    pub limit: usize,
}

/// The records a scan collects.
struct Page<'k> {
    records: Vec<ArchiveRecord>,
    limit: usize,
    keep: &'k dyn Fn(&ArchiveRecord) -> bool,
    more: bool,
}

impl Page<'_> {
    /// Takes `record` if it is kept and there is room; false once the page
    /// is full and one more record was kept (so there are more).
    fn offer(&mut self, record: ArchiveRecord) -> bool {
        if !(self.keep)(&record) {
            return true;
        }
        if self.records.len() < self.limit {
            self.records.push(record);
            true
        } else {
            self.more = true;
            false
        }
    }
}

/// The messages of `owner`'s archive in `scan`'s stamp range, in its
/// direction, that `keep` accepts (e.g. those whose peer is one full JID),
/// up to its limit; and whether more of them lie beyond the limit in
/// that direction (the scan reads on to the next kept record to know).
/// One range scan of the messages, or of the with-index plus a point read
/// per message.
pub fn scan(
    store: &Store,
    kind: Kind,
    owner: &str,
    scan: &Scan<'_>,
    keep: &dyn Fn(&ArchiveRecord) -> bool,
) -> Result<(Vec<ArchiveRecord>, bool), StoreError> {
    if scan.lo > scan.hi {
        return Ok((Vec::new(), false));
    }
    let t = kind.tables();
    let mut page = Page {
        records: Vec::new(),
        limit: scan.limit,
        keep,
        more: false,
    };
    store.read(|txn| {
        let Some(messages) = open_read(txn, t.messages)? else {
            return Ok(());
        };
        match scan.with {
            None => {
                let range = keys::numbered_between(t.messages, owner, scan.lo, scan.hi)?;
                let mut entries = messages.range(range.bounds())?;
                loop {
                    let entry = if scan.descending {
                        entries.next_back()
                    } else {
                        entries.next()
                    };
                    let Some(entry) = entry else { break };
                    let (key, value) = entry?;
                    let stamp = keys::number(t.messages, owner, key.value())?;
                    if !page.offer(ArchiveRecord::decode(kind, stamp, value.value())?) {
                        break;
                    }
                }
            }
            Some(with) => {
                let Some(index) = open_read(txn, t.with)? else {
                    return Ok(());
                };
                let range = keys::pair_numbered_between(t.with, owner, with, scan.lo, scan.hi)?;
                let mut entries = index.range(range.bounds())?;
                loop {
                    let entry = if scan.descending {
                        entries.next_back()
                    } else {
                        entries.next()
                    };
                    let Some(entry) = entry else { break };
                    let (key, _) = entry?;
                    let stamp = keys::pair_number(t.with, owner, with, key.value())?;
                    let message_key = keys::numbered(t.messages, owner, stamp)?;
                    let value = messages.get(message_key.as_slice())?.ok_or_else(|| {
                        keys::corrupt(t.with, format!("{owner}: {stamp} has no message"))
                    })?;
                    if !page.offer(ArchiveRecord::decode(kind, stamp, value.value())?) {
                        break;
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok((page.records, page.more))
}

/// How many messages of `owner`'s archive have stamps in `lo..=hi` (and,
/// with `with`, are filed under it), or `None` if more than `cap`. Answered
/// from the totals when the range covers the whole archive; otherwise the
/// keys are counted (values are not read), at most `cap + 1` of them. The
/// totals' count is given whatever `cap` says: it costs nothing.
pub fn count(
    store: &Store,
    kind: Kind,
    owner: &str,
    lo: u64,
    hi: u64,
    with: Option<&str>,
    cap: u64,
) -> Result<Option<u64>, StoreError> {
    if lo > hi {
        return Ok(Some(0));
    }
    let t = kind.tables();
    store.read(|txn| {
        let (def, range) = match with {
            None => {
                let stats = stats_in(txn, kind, owner)?;
                if stats.covered_by(lo, hi) {
                    return Ok(Some(stats.count));
                }
                let range = keys::numbered_between(t.messages, owner, lo, hi)?;
                (t.messages, range)
            }
            Some(with) => {
                let range = keys::pair_numbered_between(t.with, owner, with, lo, hi)?;
                (t.with, range)
            }
        };
        let Some(table) = open_read(txn, def)? else {
            return Ok(Some(0));
        };
        let mut n = 0u64;
        for entry in table.range(range.bounds())? {
            entry?;
            n += 1;
            if n > cap {
                return Ok(None);
            }
        }
        Ok(Some(n))
    })
}

/// The newest `limit` messages of `owner`'s archive, oldest first (a
/// room's discussion history for a joining occupant).
pub fn newest(
    store: &Store,
    kind: Kind,
    owner: &str,
    limit: usize,
) -> Result<Vec<ArchiveRecord>, StoreError> {
    let everything = Scan {
        lo: 0,
        hi: u64::MAX,
        with: None,
        descending: true,
        limit,
    };
    let (mut records, _) = scan(store, kind, owner, &everything, &|_| true)?;
    records.reverse();
    Ok(records)
}

/// Deletes the oldest messages of `owner`'s archive with stamps up to
/// `last_doomed`, at most `max_entries` of them, and while `max_bytes` (if
/// given) is exceeded; with their index entries and totals, inside `txn`.
/// Returns how many were deleted.
fn delete_oldest(
    txn: &redb::WriteTransaction,
    kind: Kind,
    owner: &str,
    last_doomed: u64,
    max_entries: usize,
    max_bytes: Option<u64>,
) -> Result<usize, StoreError> {
    let t = kind.tables();
    let mut stats_table = txn.open_table(t.stats)?;
    let mut stats = read_stats(&stats_table, t.stats, owner)?;
    let within = |stats: &Stats| max_bytes.is_some_and(|max| stats.bytes <= max);
    if max_entries == 0 || within(&stats) {
        return Ok(0);
    }
    let mut messages = txn.open_table(t.messages)?;
    // Gathered first: a table cannot change while a range of it is open.
    let mut doomed: Vec<(u64, String)> = Vec::new();
    let range = keys::numbered_between(t.messages, owner, 0, last_doomed)?;
    for entry in messages.range(range.bounds())? {
        let (key, value) = entry?;
        let stamp = keys::number(t.messages, owner, key.value())?;
        let parts = split(t.messages, stamp, value.value())?;
        doomed.push((stamp, parts.index.to_string()));
        stats.count = stats
            .count
            .checked_sub(1)
            .ok_or_else(|| drift(t.stats, owner))?;
        stats.bytes = shrink(t.stats, owner, stats.bytes, value.value().len())?;
        if doomed.len() >= max_entries || within(&stats) {
            break;
        }
    }
    if doomed.is_empty() {
        return Ok(0);
    }
    let mut with = txn.open_table(t.with)?;
    for (stamp, index) in &doomed {
        messages.remove(keys::numbered(t.messages, owner, *stamp)?.as_slice())?;
        with.remove(keys::pair_numbered(t.with, owner, index, *stamp)?.as_slice())?;
    }
    let all = keys::owned_by(t.messages, owner)?;
    let oldest_left = match messages.range(all.bounds())?.next() {
        Some(entry) => Some(keys::number(t.messages, owner, entry?.0.value())?),
        None => None,
    };
    match oldest_left {
        Some(first) if stats.count > 0 => stats.first = first,
        None if stats.count == 0 => stats = Stats::default(),
        _ => return Err(drift(t.stats, owner)),
    }
    write_stats(&mut stats_table, owner, &stats)?;
    Ok(doomed.len())
}

/// Deletes, inside `txn`, the oldest messages of `owner`'s archive whose
/// stamps are below `before`, at most `max_entries` of them (expiry runs
/// in small transactions so the writes of traffic wait little); returns
/// how many. The totals' `first` then tells whether any are left.
pub fn delete_before(
    txn: &redb::WriteTransaction,
    kind: Kind,
    owner: &str,
    before: u64,
    max_entries: usize,
) -> Result<usize, StoreError> {
    match before.checked_sub(1) {
        Some(last_doomed) => delete_oldest(txn, kind, owner, last_doomed, max_entries, None),
        None => Ok(0),
    }
}

/// The write that does [`delete_before`].
pub fn delete_before_op(kind: Kind, owner: &str, before: u64, max_entries: usize) -> WriteOp {
    let owner = owner.to_string();
    Box::new(move |txn| delete_before(txn, kind, &owner, before, max_entries).map(drop))
}

/// Deletes, inside `txn`, the oldest messages of `owner`'s archive while it
/// takes more than `max_bytes`, at most `max_entries` of them; returns how
/// many. The totals' `bytes` then tell whether it is within the cap.
pub fn trim_to_bytes(
    txn: &redb::WriteTransaction,
    kind: Kind,
    owner: &str,
    max_bytes: u64,
    max_entries: usize,
) -> Result<usize, StoreError> {
    delete_oldest(txn, kind, owner, u64::MAX, max_entries, Some(max_bytes))
}

/// The write that does [`trim_to_bytes`].
pub fn trim_to_bytes_op(kind: Kind, owner: &str, max_bytes: u64, max_entries: usize) -> WriteOp {
    let owner = owner.to_string();
    Box::new(move |txn| trim_to_bytes(txn, kind, &owner, max_bytes, max_entries).map(drop))
}

/// Deletes `owner`'s whole archive (messages, index, totals) inside `txn`;
/// an account's preferences stay (see [`remove_account`]).
pub fn purge(txn: &redb::WriteTransaction, kind: Kind, owner: &str) -> Result<(), StoreError> {
    let t = kind.tables();
    let range = keys::owned_by(t.messages, owner)?;
    super::remove_range(&mut txn.open_table(t.messages)?, &range)?;
    let range = keys::owned_by(t.with, owner)?;
    super::remove_range(&mut txn.open_table(t.with)?, &range)?;
    txn.open_table(t.stats)?.remove(keys::single(owner))?;
    Ok(())
}

/// Deletes everything archived for the account `bare`, preferences
/// included (account deletion).
pub(crate) fn remove_account(txn: &redb::WriteTransaction, bare: &str) -> Result<(), StoreError> {
    purge(txn, Kind::User, bare)?;
    txn.open_table(ARCHIVE_PREFS)?.remove(keys::single(bare))?;
    Ok(())
}

/// The account's archiving preferences as stored (`archive::prefs`
/// decodes them); `None`: never set, the server's default applies.
pub fn prefs(store: &Store, account: &str) -> Result<Option<Vec<u8>>, StoreError> {
    store.read(|txn| {
        let Some(table) = open_read(txn, ARCHIVE_PREFS)? else {
            return Ok(None);
        };
        let value = table.get(keys::single(account))?;
        Ok(value.map(|v| v.value().to_vec()))
    })
}

/// The write that stores the account's preferences (encoded by
/// `archive::prefs`); dropped if the account is gone.
pub fn put_prefs_op(account: &str, bytes: Vec<u8>) -> WriteOp {
    let account = account.to_string();
    Box::new(move |txn| {
        if !super::account_exists::has_account(txn, &account)? {
            return Ok(());
        }
        txn.open_table(ARCHIVE_PREFS)?
            .insert(keys::single(&account), bytes.as_slice())?;
        Ok(())
    })
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
