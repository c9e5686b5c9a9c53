//! FAST tokens (XEP-0484), hashed, per account and client: the table
//! [`FAST_TOKENS`], created at the first token issued (reads treat a
//! missing table as empty). The record's layout and rules are
//! `sasl::fast::TokenRecord`'s.

use redb::{ReadableTable, WriteTransaction};

use crate::sasl::fast::TokenRecord;

use super::account_exists::require_account;
use super::keys::{self, Def};
use super::schema::FAST_TOKENS;
use super::{Store, StoreError, WriteOp};

/// Clients (user-agent ids) of one account that may hold tokens: a client
/// with the password could otherwise make up ids and fill the database.
/// Past it, the record that expires first goes.
pub const MAX_CLIENTS_PER_ACCOUNT: usize = 32;

/// The tokens of `client` (a user-agent id) of the account `bare`.
pub fn get(store: &Store, bare: &str, client: &str) -> Result<Option<TokenRecord>, StoreError> {
    let key = keys::pair(FAST_TOKENS, bare, client)?;
    let bytes = store.read(|txn| match txn.open_table(FAST_TOKENS) {
        Ok(table) => Ok(table.get(key.as_slice())?.map(|v| v.value().to_vec())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    })?;
    bytes
        .map(|b| {
            TokenRecord::decode(&b)
                .ok_or_else(|| StoreError::Corrupt(format!("FAST tokens of {bare}")))
        })
        .transpose()
}

/// The write that stores `record` for `client` of `bare` (or removes it,
/// if it holds no token). `NotFound` if the account is gone: a token must
/// not be handed out for an account deleted meanwhile.
pub fn put_op(bare: &str, client: &str, record: &TokenRecord) -> WriteOp {
    let (bare, client) = (bare.to_string(), client.to_string());
    let empty = record.current.is_none() && record.new.is_none();
    let value = record.encode();
    Box::new(move |txn| {
        require_account(txn, &bare)?;
        let key = keys::pair(FAST_TOKENS, &bare, &client)?;
        let mut table = txn.open_table(FAST_TOKENS)?;
        if empty {
            table.remove(key.as_slice())?;
            return Ok(());
        }
        table.insert(key.as_slice(), value.as_slice())?;
        evict_beyond_limit(&mut table, FAST_TOKENS, &bare)
    })
}

/// Keeps at most [`MAX_CLIENTS_PER_ACCOUNT`] records of `bare`, dropping
/// those that expire first (an unreadable one first of all).
fn evict_beyond_limit(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    def: Def,
    bare: &str,
) -> Result<(), StoreError> {
    let range = keys::owned_by(def, bare)?;
    let mut rows: Vec<(u64, Vec<u8>)> = Vec::new();
    for entry in table.range(range.bounds())? {
        let (key, value) = entry?;
        let expires = TokenRecord::decode(value.value()).map_or(0, |r| r.expires());
        rows.push((expires, key.value().to_vec()));
    }
    if rows.len() <= MAX_CLIENTS_PER_ACCOUNT {
        return Ok(());
    }
    rows.sort();
    let excess = rows.len() - MAX_CLIENTS_PER_ACCOUNT;
    for (_, key) in rows.iter().take(excess) {
        table.remove(key.as_slice())?;
    }
    Ok(())
}

/// Part of deleting an account and of changing its password: every token
/// of every client goes (a token must not outlive the password that
/// earned it).
pub(crate) fn remove_account(txn: &WriteTransaction, bare: &str) -> Result<(), StoreError> {
    let range = keys::owned_by(FAST_TOKENS, bare)?;
    let mut table = txn.open_table(FAST_TOKENS)?;
    super::remove_range(&mut table, &range)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::fast::HtMechanism;
    use crate::store::account_exists::create_accounts_for_test;
    use crate::testing::TempDir;

    fn record(expires: u64) -> TokenRecord {
        let mut r = TokenRecord::default();
        r.issue([1u8; 32], HtMechanism::Sha256None, expires);
        r
    }

    #[test]
    fn stored_per_client_dropped_with_the_account_and_bounded() {
        let dir = TempDir::new("fast_tokens");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        // No table yet: nothing stored, no error.
        assert_eq!(get(&store, "a@x", "c1").expect("read"), None);
        // No account: refused.
        assert!(store.write_now(put_op("a@x", "c1", &record(5))).is_err());
        create_accounts_for_test(&store, &["a@x", "b@x"]);
        store
            .write_now(put_op("a@x", "c1", &record(5)))
            .expect("put");
        store
            .write_now(put_op("b@x", "c1", &record(6)))
            .expect("put");
        assert_eq!(get(&store, "a@x", "c1").expect("read"), Some(record(5)));
        assert_eq!(get(&store, "a@x", "c2").expect("read"), None);
        // An empty record removes the row.
        store
            .write_now(put_op("a@x", "c1", &TokenRecord::default()))
            .expect("put");
        assert_eq!(get(&store, "a@x", "c1").expect("read"), None);
        // More clients than allowed: the ones expiring first go.
        for n in 0..MAX_CLIENTS_PER_ACCOUNT + 3 {
            let r = record(100 + n as u64);
            store
                .write_now(put_op("a@x", &format!("c{n}"), &r))
                .expect("put");
        }
        for n in 0..3 {
            assert_eq!(get(&store, "a@x", &format!("c{n}")).expect("read"), None);
        }
        assert!(get(&store, "a@x", "c3").expect("read").is_some());
        // Removing the account's tokens leaves the other account's.
        store
            .write_now(Box::new(|txn| remove_account(txn, "a@x")))
            .expect("remove");
        assert_eq!(get(&store, "a@x", "c5").expect("read"), None);
        assert_eq!(get(&store, "b@x", "c1").expect("read"), Some(record(6)));
    }
}
