//! What the operator set for the users of each host rather than for one
//! account: the message of the day (XEP-0133 `set-motd`, `perch motd`),
//! and which accounts are disabled (XEP-0133 `disable-user`, `perch user
//! disable`). Layouts in `schema.rs` ([`MOTD`], [`DISABLED_ACCOUNTS`]);
//! files older than these tables get them at the first write, and reads
//! treat a missing table as empty.

use redb::ReadableTable;

use super::account_exists::{require_account, unix_now};
use super::schema::{DISABLED_ACCOUNTS, MOTD};
use super::{Store, StoreError, WriteOp, keys};

/// Longest message of the day kept, in bytes: it is sent to every user at
/// every login.
pub const MAX_MOTD_BYTES: usize = 4096;

pub struct ServerNotices<'a> {
    store: &'a Store,
}

impl<'a> ServerNotices<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        ServerNotices { store }
    }

    /// The message of the day of `domain`, if one is set.
    pub fn motd(&self, domain: &str) -> Result<Option<String>, StoreError> {
        self.store.read(|txn| {
            let table = match txn.open_table(MOTD) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            table
                .get(keys::single(domain))?
                .map(|v| keys::read_str(MOTD, v.value()).map(str::to_string))
                .transpose()
        })
    }

    /// Whether the account `bare_jid` is disabled (it may not log in).
    pub fn is_disabled(&self, bare_jid: &str) -> Result<bool, StoreError> {
        self.store.read(|txn| {
            let table = match txn.open_table(DISABLED_ACCOUNTS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
                Err(e) => return Err(e.into()),
            };
            Ok(table.get(keys::single(bare_jid))?.is_some())
        })
    }

    /// Sets (`Some`) or clears (`None`) the message of the day of `domain`,
    /// waiting until it is on disk.
    pub async fn set_motd(&self, domain: &str, text: Option<&str>) -> Result<(), StoreError> {
        self.store.write(set_motd_op(domain, text)?).await
    }

    /// Disables or re-enables an account, waiting until it is on disk.
    pub async fn set_disabled(&self, bare_jid: &str, disabled: bool) -> Result<(), StoreError> {
        self.store.write(set_disabled_op(bare_jid, disabled)).await
    }
}

/// The write that sets or clears `domain`'s message of the day;
/// `LimitExceeded` if the text is longer than [`MAX_MOTD_BYTES`].
pub fn set_motd_op(domain: &str, text: Option<&str>) -> Result<WriteOp, StoreError> {
    if let Some(text) = text
        && text.len() > MAX_MOTD_BYTES
    {
        return Err(StoreError::LimitExceeded(format!(
            "the message of the day is {} bytes long; at most {MAX_MOTD_BYTES} are kept",
            text.len()
        )));
    }
    let key = domain.to_string();
    let value = text.map(str::to_string);
    Ok(Box::new(move |txn| {
        let mut table = txn.open_table(MOTD)?;
        match &value {
            Some(text) => {
                table.insert(keys::single(&key), text.as_bytes())?;
            }
            None => {
                table.remove(keys::single(&key))?;
            }
        }
        Ok(())
    }))
}

/// The write that disables (recording when) or re-enables the account
/// `bare_jid`; `NotFound` if there is no such account.
pub fn set_disabled_op(bare_jid: &str, disabled: bool) -> WriteOp {
    let key = bare_jid.to_string();
    let now = unix_now();
    Box::new(move |txn| {
        require_account(txn, &key)?;
        let mut table = txn.open_table(DISABLED_ACCOUNTS)?;
        if disabled {
            // Disabling twice keeps the first date.
            if table.get(keys::single(&key))?.is_none() {
                table.insert(keys::single(&key), keys::u64_value(now).as_slice())?;
            }
        } else {
            table.remove(keys::single(&key))?;
        }
        Ok(())
    })
}

/// Part of deleting an account (`account_data::remove_all`).
pub(super) fn remove_account(txn: &redb::WriteTransaction, bare: &str) -> Result<(), StoreError> {
    txn.open_table(DISABLED_ACCOUNTS)?
        .remove(keys::single(bare))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn motd_per_domain_set_and_cleared() {
        let dir = TempDir::new("motd");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let notices = store.server_notices();
        smol::block_on(async {
            assert_eq!(notices.motd("example.com").expect("read"), None);
            notices
                .set_motd("example.com", Some("Maintenance at 22:00"))
                .await
                .expect("set");
            assert_eq!(
                notices.motd("example.com").expect("read").as_deref(),
                Some("Maintenance at 22:00")
            );
            assert_eq!(notices.motd("example.net").expect("read"), None);
            notices.set_motd("example.com", None).await.expect("clear");
            assert_eq!(notices.motd("example.com").expect("read"), None);
        });
        let long = "x".repeat(MAX_MOTD_BYTES + 1);
        assert!(matches!(
            set_motd_op("example.com", Some(&long)),
            Err(StoreError::LimitExceeded(_))
        ));
    }

    #[test]
    fn disabled_flag_needs_an_account_and_goes_with_it() {
        let dir = TempDir::new("disabled");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let notices = store.server_notices();
        smol::block_on(async {
            assert!(matches!(
                notices.set_disabled("ghost@example.com", true).await,
                Err(StoreError::NotFound(_))
            ));
            super::super::create_accounts_for_test(&store, &["romeo@example.com"]);
            assert!(!notices.is_disabled("romeo@example.com").expect("read"));
            notices
                .set_disabled("romeo@example.com", true)
                .await
                .expect("disable");
            assert!(notices.is_disabled("romeo@example.com").expect("read"));
            notices
                .set_disabled("romeo@example.com", false)
                .await
                .expect("enable");
            assert!(!notices.is_disabled("romeo@example.com").expect("read"));
            notices
                .set_disabled("romeo@example.com", true)
                .await
                .expect("disable");
            store
                .write(super::super::delete_account_op("romeo@example.com"))
                .await
                .expect("delete");
            assert!(!notices.is_disabled("romeo@example.com").expect("read"));
        });
    }
}
