//! Everything stored per account, in one place, so that deleting an
//! account removes all of it in the same transaction. A table keyed by
//! account belongs in [`remove_all`].

use redb::WriteTransaction;

use super::schema::{AVATAR_HASHES, LAST_LOGOUT, VCARDS};
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
    super::archive::remove_account(txn, bare)?;
    // The account's PEP service (XEP-0163) is addressed by its bare JID.
    super::pubsub::remove_service(txn, bare)?;
    // Upload records; the files they named are removed by the upload
    // sweep, which finds them without a record.
    super::upload::remove_owner(txn, bare)?;
    super::fast_tokens::remove_account(txn, bare)?;
    super::push::remove_account(txn, bare)?;
    super::server_notices::remove_account(txn, bare)?;
    super::granted_admins::remove_account(txn, bare)?;
    super::blocking::purge(txn, bare)
}
