//! Push registrations (XEP-0357): the app servers each account enabled, in
//! the table [`PUSH_REGISTRATIONS`] (layout documented in `schema.rs`).
//! The table is created at the first registration; a file without it has
//! none.

use redb::ReadableTable;

use super::schema::PUSH_REGISTRATIONS;
use super::{Store, StoreError, WriteOp, keys};

/// One stored registration: where to publish, and the publish options the
/// client gave (serialized `<x xmlns='jabber:x:data'>`, empty for none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRegistration {
    /// The app server's JID, as normalized by the JID code.
    pub app: String,
    pub node: String,
    /// When it was enabled, in Unix seconds: the oldest is replaced first.
    pub enabled_at: u64,
    pub options: String,
}

/// The version byte of the value layout.
const LAYOUT: u8 = 1;

/// The key: account 0x00 app server JID 0x00 node. None of the three can
/// hold a NUL (XML cannot carry one); the first two are refused with one
/// by `keys::pair`, the node is checked here.
fn key(account: &str, app: &str, node: &str) -> Result<Vec<u8>, StoreError> {
    if node.as_bytes().contains(&keys::SEPARATOR) {
        return Err(StoreError::InvalidKey {
            table: "push_registrations".into(),
            part: node.to_string(),
        });
    }
    let mut key = keys::pair(PUSH_REGISTRATIONS, account, app)?;
    key.push(keys::SEPARATOR);
    key.extend_from_slice(node.as_bytes());
    Ok(key)
}

fn encode(enabled_at: u64, options: &str) -> Vec<u8> {
    let mut value = Vec::with_capacity(9 + options.len());
    value.push(LAYOUT);
    value.extend_from_slice(&enabled_at.to_be_bytes());
    value.extend_from_slice(options.as_bytes());
    value
}

fn decode(account: &str, key: &[u8], value: &[u8]) -> Result<StoredRegistration, StoreError> {
    let corrupt = |what: &str| keys::corrupt(PUSH_REGISTRATIONS, format!("{what} of {account}"));
    let rest = keys::second_part(PUSH_REGISTRATIONS, account, key)?;
    let (app, node) = rest
        .split_once('\0')
        .ok_or_else(|| corrupt("a key without a node"))?;
    let (&layout, value) = value
        .split_first()
        .ok_or_else(|| corrupt("an empty registration"))?;
    if layout != LAYOUT {
        return Err(corrupt("a registration of an unknown layout"));
    }
    let (stamp, options) = value
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("a registration without its time"))?;
    let options =
        std::str::from_utf8(options).map_err(|_| corrupt("publish options that are not UTF-8"))?;
    Ok(StoredRegistration {
        app: app.to_string(),
        node: node.to_string(),
        enabled_at: u64::from_be_bytes(*stamp),
        options: options.to_string(),
    })
}

/// The write that adds (or replaces, same app server and node) one
/// registration of `account`.
pub fn put_op(account: &str, registration: &StoredRegistration) -> Result<WriteOp, StoreError> {
    let key = key(account, &registration.app, &registration.node)?;
    let value = encode(registration.enabled_at, &registration.options);
    Ok(Box::new(move |txn| {
        txn.open_table(PUSH_REGISTRATIONS)?
            .insert(key.as_slice(), value.as_slice())?;
        Ok(())
    }))
}

/// The write that removes one registration of `account`.
pub fn delete_op(account: &str, app: &str, node: &str) -> Result<WriteOp, StoreError> {
    let key = key(account, app, node)?;
    Ok(Box::new(move |txn| {
        txn.open_table(PUSH_REGISTRATIONS)?.remove(key.as_slice())?;
        Ok(())
    }))
}

/// Removes every registration of `account` (the account is deleted).
pub(super) fn remove_account(
    txn: &redb::WriteTransaction,
    account: &str,
) -> Result<(), StoreError> {
    let range = keys::owned_by(PUSH_REGISTRATIONS, account)?;
    let mut table = txn.open_table(PUSH_REGISTRATIONS)?;
    let doomed: Vec<Vec<u8>> = table
        .range(range.bounds())?
        .map(|entry| entry.map(|(k, _)| k.value().to_vec()))
        .collect::<Result<_, _>>()?;
    for key in doomed {
        table.remove(key.as_slice())?;
    }
    Ok(())
}

impl Store {
    /// Every registration of `account`, in key order.
    pub fn push_registrations(&self, account: &str) -> Result<Vec<StoredRegistration>, StoreError> {
        let range = keys::owned_by(PUSH_REGISTRATIONS, account)?;
        self.read(|txn| {
            let table = match txn.open_table(PUSH_REGISTRATIONS) {
                Ok(t) => t,
                // A file from before the first registration.
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            for entry in table.range(range.bounds())? {
                let (k, v) = entry?;
                out.push(decode(account, k.value(), v.value())?);
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn registration(app: &str, node: &str, at: u64) -> StoredRegistration {
        StoredRegistration {
            app: app.into(),
            node: node.into(),
            enabled_at: at,
            options: "<x xmlns='jabber:x:data' type='submit'/>".into(),
        }
    }

    #[test]
    fn registrations_are_kept_per_account_and_removed_with_it() {
        let dir = TempDir::new("push-store");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        assert_eq!(store.push_registrations("romeo@x").expect("empty"), []);
        let a = registration("push.example", "n1", 7);
        let b = StoredRegistration {
            options: String::new(),
            ..registration("push.example", "n2", 8)
        };
        let other = registration("push.example", "n1", 9);
        for (account, r) in [("romeo@x", &a), ("romeo@x", &b), ("romeo@xy", &other)] {
            store
                .write_now(put_op(account, r).expect("op"))
                .expect("put");
        }
        assert_eq!(
            store.push_registrations("romeo@x").expect("read"),
            [a.clone(), b.clone()]
        );
        store
            .write_now(delete_op("romeo@x", "push.example", "n1").expect("op"))
            .expect("delete");
        assert_eq!(store.push_registrations("romeo@x").expect("read"), [b]);
        store
            .write_now(Box::new(|txn| remove_account(txn, "romeo@x")))
            .expect("remove");
        assert_eq!(store.push_registrations("romeo@x").expect("read"), []);
        assert_eq!(store.push_registrations("romeo@xy").expect("read"), [other]);
    }

    #[test]
    fn a_node_with_a_nul_is_refused() {
        assert!(key("a@x", "push.example", "n\0").is_err());
        assert!(decode("a@x", b"a@x\0push.example", &encode(1, "")).is_err());
        assert!(decode("a@x", b"a@x\0p\0n", &[2, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
    }
}
