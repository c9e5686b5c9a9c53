//! Accounts made server administrators at run time, beside those the
//! configuration names (`admins = [...]`): an invitation created with
//! `perch invite --admin` makes the account it registers one, and `perch
//! user admin` grants and revokes by hand. Layout in `schema.rs`
//! ([`GRANTED_ADMINS`]); files older than the table get it at the first
//! write, and reads treat a missing table as empty.

use redb::{ReadableTable, WriteTransaction};

use super::account_exists::{require_account, unix_now};
use super::schema::GRANTED_ADMINS;
use super::{Store, StoreError, WriteOp, keys};

pub struct GrantedAdmins<'a> {
    store: &'a Store,
}

impl<'a> GrantedAdmins<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        GrantedAdmins { store }
    }

    /// Every granted administrator (bare JIDs, sorted) with when the grant
    /// was made (Unix seconds).
    pub fn list(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.store.read(|txn| {
            let table = match txn.open_table(GRANTED_ADMINS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                let jid = keys::read_str(GRANTED_ADMINS, key.value())?.to_string();
                let since = keys::read_u64(GRANTED_ADMINS, value.value())?;
                out.push((jid, since));
            }
            Ok(out)
        })
    }

    /// Grants (or with `false` revokes) administration to the account
    /// `bare_jid`, waiting until it is on disk; granting needs the account.
    pub async fn set(&self, bare_jid: &str, admin: bool) -> Result<(), StoreError> {
        self.store.write(set_op(bare_jid, admin)).await
    }
}

/// The write that grants (`NotFound` without the account) or revokes
/// administration for `bare_jid`. Granting twice keeps the first date.
pub fn set_op(bare_jid: &str, admin: bool) -> WriteOp {
    let key = bare_jid.to_string();
    Box::new(move |txn| {
        if admin {
            require_account(txn, &key)?;
            grant_in(txn, &key)
        } else {
            txn.open_table(GRANTED_ADMINS)?.remove(keys::single(&key))?;
            Ok(())
        }
    })
}

/// Records `bare` as an administrator inside a write that made sure the
/// account exists (an invitation's registration).
pub(super) fn grant_in(txn: &WriteTransaction, bare: &str) -> Result<(), StoreError> {
    let mut table = txn.open_table(GRANTED_ADMINS)?;
    if table.get(keys::single(bare))?.is_none() {
        table.insert(keys::single(bare), keys::u64_value(unix_now()).as_slice())?;
    }
    Ok(())
}

/// Part of deleting an account (`account_data::remove_all`): a later
/// account of the same name is not an administrator.
pub(super) fn remove_account(txn: &WriteTransaction, bare: &str) -> Result<(), StoreError> {
    txn.open_table(GRANTED_ADMINS)?.remove(keys::single(bare))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::account_exists::create_accounts_for_test;
    use crate::testing::TempDir;

    #[test]
    fn grants_need_an_account_and_go_with_it() {
        let dir = TempDir::new("granted-admins");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let admins = store.granted_admins();
        assert_eq!(admins.list().expect("list"), Vec::new());
        create_accounts_for_test(&store, &["romeo@example.com"]);
        smol::block_on(async {
            assert!(matches!(
                admins.set("ghost@example.com", true).await,
                Err(StoreError::NotFound(_))
            ));
            admins.set("romeo@example.com", true).await.expect("grant");
            let listed = admins.list().expect("list");
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].0, "romeo@example.com");
            admins
                .set("romeo@example.com", false)
                .await
                .expect("revoke");
            assert_eq!(admins.list().expect("list"), Vec::new());
            admins
                .set("romeo@example.com", true)
                .await
                .expect("grant again");
            store
                .write(crate::store::delete_account_op("romeo@example.com"))
                .await
                .expect("delete");
            assert_eq!(admins.list().expect("list"), Vec::new());
        });
    }
}
