//! When each account last went offline, and the status text it left with
//! (XEP-0012 last activity). Layout: 8 bytes of Unix seconds, big endian,
//! then the status text as UTF-8.

use super::account_exists::has_account;
use super::schema::LAST_LOGOUT;
use super::{Store, StoreError, WriteOp, keys};

/// Longest status text kept: a presence may carry a lot more, and nobody
/// reads an essay as "last seen" text.
pub const MAX_STATUS_BYTES: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastLogout {
    /// Unix seconds.
    pub at: u64,
    pub status: String,
}

impl LastLogout {
    fn encode(&self) -> Vec<u8> {
        let status = truncate_utf8(&self.status, MAX_STATUS_BYTES);
        let mut out = Vec::with_capacity(8 + status.len());
        out.extend_from_slice(&self.at.to_be_bytes());
        out.extend_from_slice(status.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<LastLogout> {
        let (at, status) = bytes.split_first_chunk::<8>()?;
        Some(LastLogout {
            at: u64::from_be_bytes(*at),
            status: String::from_utf8(status.to_vec()).ok()?,
        })
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

pub struct LastLogouts<'a> {
    store: &'a Store,
}

impl<'a> LastLogouts<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        LastLogouts { store }
    }

    pub fn get(&self, bare_jid: &str) -> Result<Option<LastLogout>, StoreError> {
        let bytes = self.store.read(|txn| {
            Ok(txn
                .open_table(LAST_LOGOUT)?
                .get(keys::single(bare_jid))?
                .map(|v| v.value().to_vec()))
        })?;
        bytes
            .map(|b| {
                LastLogout::decode(&b)
                    .ok_or_else(|| StoreError::Corrupt(format!("last logout of {bare_jid}")))
            })
            .transpose()
    }

    /// Records a logout (see [`record_op`]).
    pub async fn record(&self, bare_jid: &str, logout: &LastLogout) -> Result<(), StoreError> {
        self.store.write(record_op(bare_jid, logout)).await
    }
}

/// The write that records a logout. Nothing is written for an account
/// that no longer exists: its sessions end *after* it was deleted.
pub fn record_op(bare_jid: &str, logout: &LastLogout) -> WriteOp {
    let key = bare_jid.to_string();
    let value = logout.encode();
    Box::new(move |txn| {
        if !has_account(txn, &key)? {
            return Ok(());
        }
        txn.open_table(LAST_LOGOUT)?
            .insert(keys::single(&key), value.as_slice())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn encoding_round_trips_and_truncates_on_char_boundary() {
        let l = LastLogout {
            at: 1_700_000_000,
            status: "Heading Home".into(),
        };
        assert_eq!(LastLogout::decode(&l.encode()), Some(l));
        let long = LastLogout {
            at: 1,
            status: "é".repeat(MAX_STATUS_BYTES),
        };
        let back = LastLogout::decode(&long.encode()).expect("decode");
        assert!(back.status.len() <= MAX_STATUS_BYTES);
        assert!(back.status.chars().all(|c| c == 'é'));
        assert_eq!(LastLogout::decode(&[1, 2, 3]), None);
    }

    #[test]
    fn recorded_only_for_existing_accounts() {
        let dir = TempDir::new("lastlogout");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let creds = crate::sasl::Credentials::derive("pw", 4096).expect("derive");
        let l = LastLogout {
            at: 42,
            status: "bye".into(),
        };
        smol::block_on(async {
            store
                .last_logouts()
                .record("ghost@x", &l)
                .await
                .expect("no-op");
            assert_eq!(store.last_logouts().get("ghost@x").expect("get"), None);
            store
                .accounts()
                .create("romeo@x", &creds)
                .await
                .expect("create");
            store
                .last_logouts()
                .record("romeo@x", &l)
                .await
                .expect("record");
            assert_eq!(store.last_logouts().get("romeo@x").expect("get"), Some(l));
            store.accounts().delete("romeo@x").await.expect("delete");
            assert_eq!(store.last_logouts().get("romeo@x").expect("get"), None);
        });
    }
}
