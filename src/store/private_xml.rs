//! Private XML storage (XEP-0049): per account, one record per namespace.
//! A record is a serialized `<query xmlns='jabber:iq:private'>` holding the
//! elements the user stored under that namespace, so several elements of
//! one namespace survive the round trip together.

use redb::{ReadableTable, WriteTransaction};

use super::account_exists::require_account;
use super::schema::PRIVATE_XML;
use super::{Store, StoreError, WriteOp, keys};
use crate::xml::Element;

pub const NS_PRIVATE: &str = "jabber:iq:private";

pub struct PrivateXml<'a> {
    store: &'a Store,
}

impl<'a> PrivateXml<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        PrivateXml { store }
    }

    /// The elements stored under `namespace`; empty when there are none.
    pub fn get(&self, bare_jid: &str, namespace: &str) -> Result<Vec<Element>, StoreError> {
        let xml = self.store.read(|txn| {
            let key = keys::pair(PRIVATE_XML, bare_jid, namespace)?;
            txn.open_table(PRIVATE_XML)?
                .get(key.as_slice())?
                .map(|v| keys::read_str(PRIVATE_XML, v.value()).map(str::to_string))
                .transpose()
        })?;
        let Some(xml) = xml else {
            return Ok(Vec::new());
        };
        let wrapper = Element::parse(&xml).map_err(|e| {
            StoreError::Corrupt(format!("private XML {namespace} of {bare_jid}: {e}"))
        })?;
        Ok(wrapper.children().cloned().collect())
    }

    /// Bytes of private XML stored for the account.
    pub fn usage(&self, bare_jid: &str) -> Result<usize, StoreError> {
        self.store
            .read(|txn| account_usage(&txn.open_table(PRIVATE_XML)?, bare_jid, &[]))
    }

    /// Replaces, per namespace, what the account stored under it (see
    /// [`set_op`]).
    pub async fn set(
        &self,
        bare_jid: &str,
        entries: Vec<(String, Vec<Element>)>,
        max_total_bytes: usize,
    ) -> Result<(), StoreError> {
        self.store
            .write(set_op(bare_jid, entries, max_total_bytes))
            .await
    }
}

/// The write that replaces, per namespace, what the account stored under
/// it; all or nothing. It fails with `LimitExceeded` if the account's
/// private XML would then take more than `max_total_bytes`, and with
/// `NotFound` if the account does not exist.
pub fn set_op(
    bare_jid: &str,
    entries: Vec<(String, Vec<Element>)>,
    max_total_bytes: usize,
) -> WriteOp {
    let key = bare_jid.to_string();
    let records: Vec<(String, String)> = entries
        .into_iter()
        .map(|(ns, elements)| {
            let mut wrapper = Element::new("query", NS_PRIVATE);
            for el in elements {
                wrapper.push_child(el);
            }
            (
                ns,
                String::from_utf8_lossy(&wrapper.to_bytes("")).into_owned(),
            )
        })
        .collect();
    Box::new(move |txn| {
        require_account(txn, &key)?;
        let mut table = txn.open_table(PRIVATE_XML)?;
        let replaced: Vec<&str> = records.iter().map(|(ns, _)| ns.as_str()).collect();
        let kept = account_usage(&table, &key, &replaced)?;
        let added: usize = records.iter().map(|(ns, xml)| ns.len() + xml.len()).sum();
        if kept + added > max_total_bytes {
            return Err(StoreError::LimitExceeded(format!(
                "private XML storage is limited to {max_total_bytes} bytes per account"
            )));
        }
        for (ns, xml) in &records {
            let record_key = keys::pair(PRIVATE_XML, &key, ns)?;
            table.insert(record_key.as_slice(), xml.as_bytes())?;
        }
        Ok(())
    })
}

/// Every namespace the account stored something under, with the elements
/// stored there, in namespace order; read inside a read transaction (the
/// portable export's snapshot).
pub fn all_in(
    txn: &redb::ReadTransaction,
    bare_jid: &str,
) -> Result<Vec<(String, Vec<Element>)>, StoreError> {
    let table = txn.open_table(PRIVATE_XML)?;
    let mut out = Vec::new();
    let range = keys::owned_by(PRIVATE_XML, bare_jid)?;
    for entry in table.range(range.bounds())? {
        let (k, v) = entry?;
        let ns = keys::second_part(PRIVATE_XML, bare_jid, k.value())?;
        let wrapper = Element::parse(keys::read_str(PRIVATE_XML, v.value())?)
            .map_err(|e| StoreError::Corrupt(format!("private XML {ns} of {bare_jid}: {e}")))?;
        out.push((ns.to_string(), wrapper.children().cloned().collect()));
    }
    Ok(out)
}

/// Removes every record of the account (account deletion).
pub(super) fn remove_account(txn: &WriteTransaction, bare_jid: &str) -> Result<(), StoreError> {
    let range = keys::owned_by(PRIVATE_XML, bare_jid)?;
    super::remove_range(&mut txn.open_table(PRIVATE_XML)?, &range)?;
    Ok(())
}

/// Bytes the account's records take (namespace plus value), leaving out
/// the namespaces in `except`.
fn account_usage(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    bare_jid: &str,
    except: &[&str],
) -> Result<usize, StoreError> {
    let mut total = 0usize;
    let range = keys::owned_by(PRIVATE_XML, bare_jid)?;
    for entry in table.range(range.bounds())? {
        let (k, v) = entry?;
        let ns = keys::second_part(PRIVATE_XML, bare_jid, k.value())?;
        if !except.contains(&ns) {
            total = total.saturating_add(ns.len() + v.value().len());
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn el(xml: &str) -> Element {
        Element::parse(xml).expect("parse")
    }

    #[test]
    fn namespaces_are_separate_and_quota_holds() {
        let dir = TempDir::new("private");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let creds = crate::sasl::Credentials::derive("pw", 4096).expect("derive");
        let prefs = el("<prefs xmlns='exodus:prefs'><nick>Hamlet</nick></prefs>");
        let notes = el("<storage xmlns='storage:rosternotes'><note jid='a@b'>x</note></storage>");
        smol::block_on(async {
            let px = store.private_xml();
            assert!(matches!(
                px.set(
                    "ghost@x",
                    vec![("exodus:prefs".into(), vec![prefs.clone()])],
                    1000
                )
                .await,
                Err(StoreError::NotFound(_))
            ));
            for who in ["a@x", "b@x", "c@x"] {
                store.accounts().create(who, &creds).await.expect("create");
            }
            px.set(
                "b@x",
                vec![("exodus:prefs".into(), vec![prefs.clone(), prefs.clone()])],
                1000,
            )
            .await
            .expect("set two elements");
            px.set(
                "b@x",
                vec![("storage:rosternotes".into(), vec![notes.clone()])],
                1000,
            )
            .await
            .expect("set other ns");
            px.set(
                "a@x",
                vec![("exodus:prefs".into(), vec![notes.clone()])],
                1000,
            )
            .await
            .expect("neighbour");
            px.set(
                "c@x",
                vec![("exodus:prefs".into(), vec![notes.clone()])],
                1000,
            )
            .await
            .expect("neighbour");
            assert_eq!(
                px.get("b@x", "exodus:prefs").expect("get"),
                vec![prefs.clone(), prefs.clone()]
            );
            assert_eq!(
                px.get("b@x", "storage:rosternotes").expect("get"),
                vec![notes.clone()]
            );
            assert!(px.get("b@x", "nothing:here").expect("get").is_empty());
            let used = px.usage("b@x").expect("usage");
            // Replacing a namespace counts only the new value.
            px.set(
                "b@x",
                vec![("exodus:prefs".into(), vec![prefs.clone()])],
                used,
            )
            .await
            .expect("smaller replacement fits");
            let used = px.usage("b@x").expect("usage");
            let big = el(&format!("<big xmlns='big:ns'>{}</big>", "x".repeat(200)));
            assert!(matches!(
                px.set("b@x", vec![("big:ns".into(), vec![big])], used + 100)
                    .await,
                Err(StoreError::LimitExceeded(_))
            ));
            assert!(px.get("b@x", "big:ns").expect("get").is_empty());
            store.accounts().delete("b@x").await.expect("delete");
            assert_eq!(px.usage("b@x").expect("usage"), 0);
            assert_eq!(
                px.get("a@x", "exodus:prefs").expect("a kept"),
                vec![notes.clone()]
            );
            assert_eq!(px.get("c@x", "exodus:prefs").expect("c kept"), vec![notes]);
        });
    }
}
