//! User accounts: SCRAM credentials keyed by normalized bare JID. Passwords
//! are never stored, only the salted keys derived from them.

use redb::{ReadableTable, ReadableTableMetadata};

use super::schema::{ACCOUNTS, TOMBSTONES};
use super::{Store, StoreError, WriteOp, account_data, keys};
use crate::sasl::Credentials;

pub struct CredentialReader {
    db: std::sync::Arc<redb::Database>,
    domain: String,
}

impl CredentialReader {
    fn credentials(&self, username: &str) -> Option<Credentials> {
        let bare = crate::jid::Jid::new(Some(username), &self.domain, None).ok()?;
        let read = || -> Result<Option<Vec<u8>>, StoreError> {
            let txn = redb::ReadableDatabase::begin_read(self.db.as_ref())?;
            let table = txn.open_table(ACCOUNTS)?;
            Ok(table
                .get(keys::single(bare.as_str()))?
                .map(|v| v.value().to_vec()))
        };
        match read() {
            Ok(Some(bytes)) => match Credentials::from_bytes(&bytes) {
                Ok(c) => Some(c),
                Err(e) => {
                    log::error!("credentials of {bare} are unreadable: {e}");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                log::error!("reading credentials of {bare}: {e}");
                None
            }
        }
    }
}

impl crate::sasl::CredentialLookup for CredentialReader {
    fn scram_keys(
        &self,
        username: &str,
        hash: crate::sasl::ScramHash,
    ) -> Option<crate::sasl::ScramKeys> {
        self.credentials(username)?.keys(hash).cloned()
    }

    // `check_plain` is the provided one: it does the same work for an
    // unknown user as for a wrong password.

    fn domain(&self) -> Option<&str> {
        Some(&self.domain)
    }
}

/// The credentials of `bare_jid` as `txn` sees them; for bulk work
/// (export) that must read one snapshot.
pub fn credentials_in(
    txn: &redb::ReadTransaction,
    bare_jid: &str,
) -> Result<Option<Credentials>, StoreError> {
    let table = txn.open_table(ACCOUNTS)?;
    match table.get(keys::single(bare_jid))? {
        None => Ok(None),
        Some(v) => Credentials::from_bytes(v.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("credentials of {bare_jid}: {e}"))),
    }
}

/// Every account's bare JID as `txn` sees them, sorted.
pub fn list_in(txn: &redb::ReadTransaction) -> Result<Vec<String>, StoreError> {
    let table = txn.open_table(ACCOUNTS)?;
    let mut out = Vec::with_capacity(usize::try_from(table.len()?).unwrap_or(0));
    for entry in table.iter()? {
        let (key, _) = entry?;
        out.push(keys::read_str(ACCOUNTS, key.value())?.to_string());
    }
    Ok(out)
}

/// Creates an account inside `txn`; `AlreadyExists` if the name is taken.
/// For bulk work (import) that writes many records in one transaction.
pub fn create_in(
    txn: &redb::WriteTransaction,
    bare_jid: &str,
    credentials: &Credentials,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(ACCOUNTS)?;
    if table.get(keys::single(bare_jid))?.is_some() {
        return Err(StoreError::AlreadyExists(format!("account {bare_jid}")));
    }
    // A deleted account's address is never handed out again (imports too).
    if txn
        .open_table(TOMBSTONES)?
        .get(keys::single(bare_jid))?
        .is_some()
    {
        return Err(StoreError::Tombstoned(bare_jid.to_string()));
    }
    table.insert(keys::single(bare_jid), credentials.to_bytes().as_slice())?;
    Ok(())
}

pub struct Accounts<'a> {
    store: &'a Store,
}

impl<'a> Accounts<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Accounts { store }
    }

    pub fn credentials(&self, bare_jid: &str) -> Result<Option<Credentials>, StoreError> {
        self.store.read(|txn| credentials_in(txn, bare_jid))
    }

    pub fn exists(&self, bare_jid: &str) -> Result<bool, StoreError> {
        self.store.read(|txn| {
            Ok(txn
                .open_table(ACCOUNTS)?
                .get(keys::single(bare_jid))?
                .is_some())
        })
    }

    /// Bare JIDs of all accounts, optionally only those of one domain, sorted.
    pub fn list(&self, domain: Option<&str>) -> Result<Vec<String>, StoreError> {
        self.store.read(|txn| {
            let table = txn.open_table(ACCOUNTS)?;
            let mut out = Vec::with_capacity(table.len()? as usize);
            for entry in table.iter()? {
                let (key, _) = entry?;
                let jid = keys::read_str(ACCOUNTS, key.value())?;
                let in_domain = match domain {
                    None => true,
                    Some(d) => jid.rsplit_once('@').is_some_and(|(_, host)| host == d),
                };
                if in_domain {
                    out.push(jid.to_string());
                }
            }
            Ok(out)
        })
    }

    /// A credential source for SASL that can travel to the blocking pool
    /// (PLAIN runs PBKDF2 there). Usernames are localparts of `domain`.
    pub fn reader(&self, domain: &str) -> CredentialReader {
        CredentialReader {
            db: self.store.db().clone(),
            domain: domain.to_string(),
        }
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        self.store.read(|txn| Ok(txn.open_table(ACCOUNTS)?.len()?))
    }

    /// Creates an account; fails with `AlreadyExists` if the name is taken
    /// and with `Tombstoned` if it belonged to a deleted account.
    pub async fn create(
        &self,
        bare_jid: &str,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        let key = bare_jid.to_string();
        let credentials = credentials.clone();
        self.store
            .write(Box::new(move |txn| create_in(txn, &key, &credentials)))
            .await
    }

    /// Like [`Accounts::create`], but first lifts the tombstone a deleted
    /// account left on `bare_jid` (in the same transaction), so that an
    /// administrator can give the address out again on purpose. Returns
    /// whether there was a tombstone.
    pub async fn create_over_tombstone(
        &self,
        bare_jid: &str,
        credentials: &Credentials,
    ) -> Result<bool, StoreError> {
        // Read first for the answer only; the write decides on its own.
        let had_tombstone = self.store.tombstones().contains(bare_jid)?;
        let key = bare_jid.to_string();
        let credentials = credentials.clone();
        self.store
            .write(Box::new(move |txn| {
                if txn.open_table(ACCOUNTS)?.get(keys::single(&key))?.is_some() {
                    return Err(StoreError::AlreadyExists(format!("account {key}")));
                }
                txn.open_table(TOMBSTONES)?.remove(keys::single(&key))?;
                create_in(txn, &key, &credentials)
            }))
            .await?;
        Ok(had_tombstone)
    }

    /// Replaces the credentials of an existing account.
    pub async fn set_credentials(
        &self,
        bare_jid: &str,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        self.store
            .write(set_credentials_op(bare_jid, credentials))
            .await
    }

    /// Deletes an account with everything stored for it, in one
    /// transaction, and leaves a tombstone so the address is never handed
    /// to someone else. On a running server use `im::account_removal`,
    /// which also ends the account's subscriptions and sessions.
    pub async fn delete(&self, bare_jid: &str) -> Result<(), StoreError> {
        self.store.write(delete_account_op(bare_jid)).await
    }
}

/// The write that replaces the credentials of the account `bare_jid`
/// (`NotFound` if there is none).
pub fn set_credentials_op(bare_jid: &str, credentials: &Credentials) -> WriteOp {
    let key = bare_jid.to_string();
    let value = credentials.to_bytes();
    Box::new(move |txn| {
        let mut table = txn.open_table(ACCOUNTS)?;
        if table.get(keys::single(&key))?.is_none() {
            return Err(StoreError::NotFound(format!("account {key}")));
        }
        table.insert(keys::single(&key), value.as_slice())?;
        // A FAST token (XEP-0484) must not outlive the password it was
        // earned with.
        super::fast_tokens::remove_account(txn, &key)
    })
}

/// The write that deletes the account `bare_jid` (`NotFound` if there is
/// none) with all its data (see `account_data::remove_all`) and leaves its
/// tombstone.
pub fn delete_account_op(bare_jid: &str) -> WriteOp {
    let key = bare_jid.to_string();
    let now = super::account_exists::unix_now();
    Box::new(move |txn| {
        let mut table = txn.open_table(ACCOUNTS)?;
        if table.remove(keys::single(&key))?.is_none() {
            return Err(StoreError::NotFound(format!("account {key}")));
        }
        account_data::remove_all(txn, &key)?;
        txn.open_table(TOMBSTONES)?
            .insert(keys::single(&key), keys::u64_value(now).as_slice())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn creds(pw: &str) -> Credentials {
        Credentials::derive(pw, crate::sasl::DEFAULT_ITERATIONS).expect("derive")
    }

    #[test]
    fn create_get_list_delete() {
        let dir = TempDir::new("accounts");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let accounts = store.accounts();
        smol::block_on(async {
            accounts
                .create("romeo@example.com", &creds("pw"))
                .await
                .expect("create");
            accounts
                .create("juliet@example.net", &creds("pw"))
                .await
                .expect("create");
            assert!(matches!(
                accounts.create("romeo@example.com", &creds("x")).await,
                Err(StoreError::AlreadyExists(_))
            ));
            let c = accounts
                .credentials("romeo@example.com")
                .expect("read")
                .expect("present");
            assert!(c.verify_password("pw"));
            assert_eq!(
                accounts.list(Some("example.com")).expect("list"),
                vec!["romeo@example.com".to_string()]
            );
            assert_eq!(accounts.list(None).expect("list").len(), 2);
            accounts
                .set_credentials("romeo@example.com", &creds("new"))
                .await
                .expect("passwd");
            let c = accounts
                .credentials("romeo@example.com")
                .expect("read")
                .expect("present");
            assert!(c.verify_password("new") && !c.verify_password("pw"));
            accounts.delete("romeo@example.com").await.expect("delete");
            assert!(matches!(
                accounts.delete("romeo@example.com").await,
                Err(StoreError::NotFound(_))
            ));
            assert!(!accounts.exists("romeo@example.com").expect("exists"));
            assert!(matches!(
                accounts.create("romeo@example.com", &creds("pw")).await,
                Err(StoreError::Tombstoned(_))
            ));
            assert!(
                store
                    .tombstones()
                    .contains("romeo@example.com")
                    .expect("read")
            );
            // Lifted on purpose: the account exists again, the tombstone
            // is gone, and a second attempt finds the account.
            assert!(
                accounts
                    .create_over_tombstone("romeo@example.com", &creds("again"))
                    .await
                    .expect("reuse")
            );
            assert!(accounts.exists("romeo@example.com").expect("exists"));
            assert!(
                !store
                    .tombstones()
                    .contains("romeo@example.com")
                    .expect("read")
            );
            assert!(matches!(
                accounts
                    .create_over_tombstone("romeo@example.com", &creds("x"))
                    .await,
                Err(StoreError::AlreadyExists(_))
            ));
            // Without a tombstone it is a plain create.
            assert!(
                !accounts
                    .create_over_tombstone("mercutio@example.com", &creds("pw"))
                    .await
                    .expect("plain")
            );
        });
    }

    #[test]
    fn group_commit_isolates_failing_op() {
        let dir = TempDir::new("commit");
        let mut store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let ex = Box::leak(Box::new(smol::LocalExecutor::new()));
        store.start_committer(ex);
        let c = creds("pw");
        smol::block_on(ex.run(async {
            store.accounts().create("a@x", &c).await.expect("first");
            // Three writes land in one batch; the duplicate must fail alone.
            let (r1, (r2, r3)) = futures_lite::future::zip(
                store.accounts().create("b@x", &c),
                futures_lite::future::zip(
                    store.accounts().create("a@x", &c),
                    store.accounts().create("c@x", &c),
                ),
            )
            .await;
            assert!(r1.is_ok());
            assert!(matches!(r2, Err(StoreError::AlreadyExists(_))));
            assert!(r3.is_ok());
            assert_eq!(store.accounts().count().expect("count"), 3);
        }));
    }
}
