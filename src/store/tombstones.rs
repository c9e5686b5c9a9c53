//! Tombstones: the bare JIDs of deleted accounts. Handing a deleted
//! user's address to a newcomer would let them inherit the old user's
//! contacts' trust (and messages still on the way), so an address is
//! never registered twice. Written by `Accounts::delete`, checked by
//! `Accounts::create` inside the same transactions.

use super::schema::TOMBSTONES;
use super::{Store, StoreError, keys};

pub struct Tombstones<'a> {
    store: &'a Store,
}

impl<'a> Tombstones<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Tombstones { store }
    }

    /// Whether `bare_jid` belonged to a deleted account.
    pub fn contains(&self, bare_jid: &str) -> Result<bool, StoreError> {
        self.store.read(|txn| {
            Ok(txn
                .open_table(TOMBSTONES)?
                .get(keys::single(bare_jid))?
                .is_some())
        })
    }

    /// When the account was deleted (Unix seconds), if it was.
    pub fn deleted_at(&self, bare_jid: &str) -> Result<Option<u64>, StoreError> {
        self.store.read(|txn| {
            txn.open_table(TOMBSTONES)?
                .get(keys::single(bare_jid))?
                .map(|v| keys::read_u64(TOMBSTONES, v.value()))
                .transpose()
        })
    }
}
