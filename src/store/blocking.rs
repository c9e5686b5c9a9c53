//! Blocklists on disk (XEP-0191): one row per (owner, blocked JID).

use super::schema::BLOCKLIST;
use super::{Store, StoreError, WriteOp, keys};

/// The blocked JIDs of `owner`, as stored (normalized JID strings).
pub fn load(store: &Store, owner: &str) -> Result<Vec<String>, StoreError> {
    store.read(|txn| load_in(txn, owner))
}

/// [`load`] inside a read transaction (an account's state is read in one).
pub fn load_in(txn: &redb::ReadTransaction, owner: &str) -> Result<Vec<String>, StoreError> {
    super::owned_keys(BLOCKLIST, &txn.open_table(BLOCKLIST)?, owner)
}

/// Adds `block` and removes `unblock`; with `unblock_all` the whole list is
/// cleared first.
pub fn update_op(
    owner: &str,
    block: Vec<String>,
    unblock: Vec<String>,
    unblock_all: bool,
) -> WriteOp {
    let owner = owner.to_string();
    Box::new(move |txn| {
        if !super::account_exists::has_account(txn, &owner)? {
            return Ok(());
        }
        if unblock_all {
            purge(txn, &owner)?;
        }
        let mut table = txn.open_table(BLOCKLIST)?;
        for jid in &unblock {
            table.remove(keys::pair(BLOCKLIST, &owner, jid)?.as_slice())?;
        }
        for jid in &block {
            table.insert(keys::pair(BLOCKLIST, &owner, jid)?.as_slice(), keys::EMPTY)?;
        }
        Ok(())
    })
}

/// Deletes `owner`'s blocklist.
pub(crate) fn purge(txn: &redb::WriteTransaction, owner: &str) -> Result<(), StoreError> {
    let range = keys::owned_by(BLOCKLIST, owner)?;
    super::remove_range(&mut txn.open_table(BLOCKLIST)?, &range)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn block_unblock_purge() {
        let dir = TempDir::new("blocklist-store");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        crate::store::account_exists::create_accounts_for_test(&store, &["a@x", "a@xx"]);
        store
            .write_now(update_op("a@x", s(&["b@x", "evil.example"]), vec![], false))
            .expect("block");
        store
            .write_now(update_op("a@xx", s(&["c@x"]), vec![], false))
            .expect("block");
        assert_eq!(
            load(&store, "a@x").expect("load"),
            s(&["b@x", "evil.example"])
        );
        store
            .write_now(update_op("a@x", vec![], s(&["b@x"]), false))
            .expect("unblock");
        assert_eq!(load(&store, "a@x").expect("load"), s(&["evil.example"]));
        store
            .write_now(update_op("a@x", s(&["d@x"]), vec![], true))
            .expect("reset");
        assert_eq!(load(&store, "a@x").expect("load"), s(&["d@x"]));
        assert_eq!(load(&store, "a@xx").expect("load"), s(&["c@x"]));
        // Nothing is kept for an address without an account.
        store
            .write_now(update_op("gone@x", s(&["b@x"]), vec![], false))
            .expect("dropped");
        assert!(load(&store, "gone@x").expect("load").is_empty());
    }
}
