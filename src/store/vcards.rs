//! vCards (XEP-0054) and the hash of their photo (XEP-0153), one per
//! account. The vCard is kept as the XML the user stored; the server never
//! rewrites it.

use super::account_exists::require_account;
use super::schema::{AVATAR_HASHES, VCARDS};
use super::{Store, StoreError, WriteOp, keys};
use crate::xml::Element;

pub struct VCards<'a> {
    store: &'a Store,
}

impl<'a> VCards<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        VCards { store }
    }

    /// The stored `<vCard xmlns='vcard-temp'>` of `bare_jid`, if any.
    pub fn get(&self, bare_jid: &str) -> Result<Option<Element>, StoreError> {
        self.store.read(|txn| get_in(txn, bare_jid))
    }

    /// The hex SHA-1 of the vCard's photo, if it has one.
    pub fn photo_hash(&self, bare_jid: &str) -> Result<Option<String>, StoreError> {
        self.store.read(|txn| {
            txn.open_table(AVATAR_HASHES)?
                .get(keys::single(bare_jid))?
                .map(|v| keys::read_str(AVATAR_HASHES, v.value()).map(str::to_string))
                .transpose()
        })
    }

    /// Replaces the vCard of an existing account (`NotFound` otherwise);
    /// `None` removes it. `photo_hash` is stored alongside, or cleared.
    pub async fn set(
        &self,
        bare_jid: &str,
        vcard: Option<&Element>,
        photo_hash: Option<String>,
    ) -> Result<(), StoreError> {
        self.store.write(set_op(bare_jid, vcard, photo_hash)).await
    }
}

/// [`VCards::get`] inside a read transaction (the portable export's
/// snapshot).
pub fn get_in(txn: &redb::ReadTransaction, bare_jid: &str) -> Result<Option<Element>, StoreError> {
    let xml = txn
        .open_table(VCARDS)?
        .get(keys::single(bare_jid))?
        .map(|v| keys::read_str(VCARDS, v.value()).map(str::to_string))
        .transpose()?;
    xml.map(|xml| {
        Element::parse(&xml).map_err(|e| StoreError::Corrupt(format!("vCard of {bare_jid}: {e}")))
    })
    .transpose()
}

/// The write behind [`VCards::set`].
pub fn set_op(bare_jid: &str, vcard: Option<&Element>, photo_hash: Option<String>) -> WriteOp {
    let key = bare_jid.to_string();
    let xml = vcard.map(|v| String::from_utf8_lossy(&v.to_bytes("")).into_owned());
    Box::new(move |txn| {
        require_account(txn, &key)?;
        let mut vcards = txn.open_table(VCARDS)?;
        match &xml {
            Some(xml) => vcards.insert(keys::single(&key), xml.as_bytes())?,
            None => vcards.remove(keys::single(&key))?,
        };
        let mut hashes = txn.open_table(AVATAR_HASHES)?;
        match &photo_hash {
            Some(hash) => hashes.insert(keys::single(&key), hash.as_bytes())?,
            None => hashes.remove(keys::single(&key))?,
        };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn set_get_replace_remove() {
        let dir = TempDir::new("vcards");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let creds = crate::sasl::Credentials::derive("pw", 4096).expect("derive");
        let vcard = Element::parse("<vCard xmlns='vcard-temp'><FN>Romeo &amp; co</FN></vCard>")
            .expect("parse");
        smol::block_on(async {
            assert!(matches!(
                store.vcards().set("nobody@x", Some(&vcard), None).await,
                Err(StoreError::NotFound(_))
            ));
            store
                .accounts()
                .create("romeo@x", &creds)
                .await
                .expect("create");
            assert_eq!(store.vcards().get("romeo@x").expect("get"), None);
            store
                .vcards()
                .set("romeo@x", Some(&vcard), Some("ab".repeat(20)))
                .await
                .expect("set");
            assert_eq!(
                store.vcards().get("romeo@x").expect("get"),
                Some(vcard.clone())
            );
            assert_eq!(
                store.vcards().photo_hash("romeo@x").expect("hash"),
                Some("ab".repeat(20))
            );
            store
                .vcards()
                .set("romeo@x", Some(&vcard), None)
                .await
                .expect("set without photo");
            assert_eq!(store.vcards().photo_hash("romeo@x").expect("hash"), None);
            store
                .vcards()
                .set("romeo@x", None, None)
                .await
                .expect("remove");
            assert_eq!(store.vcards().get("romeo@x").expect("get"), None);
            store
                .vcards()
                .set("romeo@x", Some(&vcard), Some("cd".repeat(20)))
                .await
                .expect("set again");
            store
                .accounts()
                .delete("romeo@x")
                .await
                .expect("delete account");
            assert_eq!(store.vcards().get("romeo@x").expect("get"), None);
            assert_eq!(store.vcards().photo_hash("romeo@x").expect("hash"), None);
        });
    }
}
