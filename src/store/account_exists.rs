//! Whether an account exists, asked inside a write: the check every
//! per-account record makes before it is written (`account_data` removes
//! those records, the tables' modules write them; both depend on this one).

use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadableTable, WriteTransaction};

use super::schema::ACCOUNTS;
use super::{StoreError, keys};

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
