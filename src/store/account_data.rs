//! Everything stored per account, in one place, so that deleting an
//! account removes all of it in the same transaction. A table keyed by
//! account belongs in [`remove_all`].

use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadableTable, WriteTransaction};

use super::schema::{ACCOUNTS, AVATAR_HASHES, LAST_LOGOUT, VCARDS};
use super::{StoreError, keys};

/// Removes every record of `bare` except the account itself and its
/// tombstone (the caller handles those).
pub(super) fn remove_all(txn: &WriteTransaction, bare: &str) -> Result<(), StoreError> {
    txn.open_table(VCARDS)?.remove(keys::single(bare))?;
    txn.open_table(AVATAR_HASHES)?.remove(keys::single(bare))?;
    txn.open_table(LAST_LOGOUT)?.remove(keys::single(bare))?;
    super::private_xml::remove_account(txn, bare)?;
    super::roster::purge(txn, bare)?;
    super::offline::purge(txn, bare)?;
    super::blocking::purge(txn, bare)
}

/// Fails with `NotFound` unless `bare` has an account: per-account records
/// are written inside the transaction that checks this, so data never
/// outlives (or resurrects) a deleted account.
pub(super) fn require_account(txn: &WriteTransaction, bare: &str) -> Result<(), StoreError> {
    if txn.open_table(ACCOUNTS)?.get(keys::single(bare))?.is_none() {
        return Err(StoreError::NotFound(format!("account {bare}")));
    }
    Ok(())
}

/// Whether `bare` has an account, inside a write. Writes that follow
/// traffic (rosters, offline messages, blocklists, logouts) are dropped for
/// an account that is gone: a stanza can race the deletion of the account
/// it concerns, and nobody waits for what it would have stored.
pub(super) fn has_account(txn: &WriteTransaction, bare: &str) -> Result<bool, StoreError> {
    Ok(txn.open_table(ACCOUNTS)?.get(keys::single(bare))?.is_some())
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Test set-up: accounts without credentials worth the name, for tests of
/// the per-account records (which are only written for accounts).
#[cfg(test)]
pub(crate) fn create_accounts_for_test(store: &super::Store, bare_jids: &[&str]) {
    for bare in bare_jids {
        let key = bare.to_string();
        store
            .write_now(Box::new(move |txn| {
                txn.open_table(ACCOUNTS)?
                    .insert(keys::single(&key), keys::EMPTY)?;
                Ok(())
            }))
            .expect("create a test account");
    }
}
