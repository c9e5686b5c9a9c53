//! Offline messages on disk (XEP-0160): per owner, serialized message
//! stanzas under growing sequence numbers, so a range scan returns them in
//! the order they arrived.

use super::schema::OFFLINE_MESSAGES;
use super::{Store, StoreError, WriteOp, keys};

/// What is stored for one owner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfflineSummary {
    pub count: usize,
    pub bytes: usize,
    /// The highest sequence number in use (0 when none ever was).
    pub last_seq: u64,
}

pub fn summary(store: &Store, owner: &str) -> Result<OfflineSummary, StoreError> {
    store.read(|txn| summary_in(txn, owner))
}

/// [`summary`] inside a read transaction (an account's state is read in one).
pub fn summary_in(txn: &redb::ReadTransaction, owner: &str) -> Result<OfflineSummary, StoreError> {
    let table = txn.open_table(OFFLINE_MESSAGES)?;
    let mut s = OfflineSummary::default();
    let range = keys::owned_by(OFFLINE_MESSAGES, owner)?;
    for entry in table.range(range.bounds())? {
        let (key, value) = entry?;
        s.count += 1;
        s.bytes += value.value().len();
        let seq = keys::number(OFFLINE_MESSAGES, owner, key.value())?;
        s.last_seq = s.last_seq.max(seq);
    }
    Ok(s)
}

/// The messages numbered above `after`, oldest first.
pub fn read_after(
    store: &Store,
    owner: &str,
    after: u64,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let Some(start) = after.checked_add(1) else {
        return Ok(Vec::new());
    };
    store.read(|txn| {
        let table = txn.open_table(OFFLINE_MESSAGES)?;
        let mut out = Vec::new();
        let range = keys::numbered_between(OFFLINE_MESSAGES, owner, start, u64::MAX)?;
        for entry in table.range(range.bounds())? {
            let (key, value) = entry?;
            let seq = keys::number(OFFLINE_MESSAGES, owner, key.value())?;
            out.push((seq, value.value().to_vec()));
        }
        Ok(out)
    })
}

/// Every stored message of `owner`, oldest first, read inside a read
/// transaction (the portable export's snapshot).
pub fn all_in(txn: &redb::ReadTransaction, owner: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let table = txn.open_table(OFFLINE_MESSAGES)?;
    let mut out = Vec::new();
    let range = keys::owned_by(OFFLINE_MESSAGES, owner)?;
    for entry in table.range(range.bounds())? {
        let (_, value) = entry?;
        out.push(value.value().to_vec());
    }
    Ok(out)
}

pub fn append_op(owner: &str, seq: u64, xml: Vec<u8>) -> WriteOp {
    let owner = owner.to_string();
    Box::new(move |txn| {
        if !super::account_exists::has_account(txn, &owner)? {
            return Ok(());
        }
        let key = keys::numbered(OFFLINE_MESSAGES, &owner, seq)?;
        txn.open_table(OFFLINE_MESSAGES)?
            .insert(key.as_slice(), xml.as_slice())?;
        Ok(())
    })
}

/// Deletes the messages numbered after `after` up to `through`: those one
/// stream-managed session acknowledged (another session may still hold
/// earlier ones unacknowledged).
pub fn delete_between_op(owner: &str, after: u64, through: u64) -> WriteOp {
    let owner = owner.to_string();
    Box::new(move |txn| {
        let range =
            keys::numbered_between(OFFLINE_MESSAGES, &owner, after.saturating_add(1), through)?;
        super::remove_range(&mut txn.open_table(OFFLINE_MESSAGES)?, &range)?;
        Ok(())
    })
}

fn delete_range(txn: &redb::WriteTransaction, owner: &str, through: u64) -> Result<(), StoreError> {
    let range = keys::numbered_between(OFFLINE_MESSAGES, owner, 0, through)?;
    super::remove_range(&mut txn.open_table(OFFLINE_MESSAGES)?, &range)?;
    Ok(())
}

/// Deletes every offline message of `owner` (account deletion).
pub(crate) fn purge(txn: &redb::WriteTransaction, owner: &str) -> Result<(), StoreError> {
    delete_range(txn, owner, u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn append_read_delete_in_order() {
        let dir = TempDir::new("offline-store");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        crate::store::account_exists::create_accounts_for_test(&store, &["a@x", "a@xy"]);
        store
            .write_now(append_op("gone@x", 1, b"lost".to_vec()))
            .expect("dropped");
        assert_eq!(summary(&store, "gone@x").expect("summary").count, 0);
        for (seq, text) in [(1u64, "one"), (2, "two"), (3, "three")] {
            store
                .write_now(append_op("a@x", seq, text.as_bytes().to_vec()))
                .expect("append");
        }
        store
            .write_now(append_op("a@xy", 1, b"other".to_vec()))
            .expect("append");
        assert_eq!(
            summary(&store, "a@x").expect("summary"),
            OfflineSummary {
                count: 3,
                bytes: 11,
                last_seq: 3
            }
        );
        let texts = |after| -> Vec<String> {
            read_after(&store, "a@x", after)
                .expect("read")
                .into_iter()
                .map(|(_, b)| String::from_utf8(b).expect("utf8"))
                .collect()
        };
        assert_eq!(texts(0), vec!["one", "two", "three"]);
        assert_eq!(texts(1), vec!["two", "three"]);
        assert!(texts(u64::MAX).is_empty());
        store
            .write_now(delete_between_op("a@x", 0, 2))
            .expect("delete");
        assert_eq!(texts(0), vec!["three"]);
        store
            .write_now(Box::new(|txn| purge(txn, "a@x")))
            .expect("purge");
        assert_eq!(
            summary(&store, "a@x").expect("summary"),
            OfflineSummary::default()
        );
        assert_eq!(summary(&store, "a@xy").expect("summary").count, 1);
    }
}
