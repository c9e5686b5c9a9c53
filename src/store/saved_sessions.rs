//! Resumable sessions saved when the server stops (XEP-0198 resumption
//! across a restart): one record per resumption id, written once at
//! shutdown and taken (read and deleted in one transaction) at the next
//! start, so a crash after the start can never deliver them twice.

use redb::ReadableTable;

use super::schema::SAVED_SESSIONS;
use super::{Store, StoreError, keys};

/// The write that replaces every saved session with `records` (id, the
/// session as serialized XML).
pub fn save_all_op(records: Vec<(String, String)>) -> super::WriteOp {
    Box::new(move |txn| {
        let mut table = txn.open_table(SAVED_SESSIONS)?;
        table.retain(|_, _| false)?;
        for (id, xml) in &records {
            table.insert(keys::single(id), xml.as_bytes())?;
        }
        Ok(())
    })
}

impl Store {
    /// Reads and deletes every saved session, at start-up (before the
    /// committer runs, like the other start-up writes).
    pub fn take_saved_sessions(&self) -> Result<Vec<(String, String)>, StoreError> {
        let txn = self.db().begin_write()?;
        let mut out = Vec::new();
        {
            let mut table = txn.open_table(SAVED_SESSIONS)?;
            for entry in table.iter()? {
                let (k, v) = entry?;
                let id = keys::read_str(SAVED_SESSIONS, k.value())?.to_string();
                let xml = keys::read_str(SAVED_SESSIONS, v.value())?.to_string();
                out.push((id, xml));
            }
            if !out.is_empty() {
                table.retain(|_, _| false)?;
            }
        }
        if out.is_empty() {
            // Nothing to delete: no commit, no fsync.
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn saved_sessions_are_taken_once() {
        let dir = crate::testing::TempDir::new("saved-sessions");
        let store =
            crate::store::Store::open(&dir.path().join("perch.redb"), 1 << 20).expect("open");
        assert!(store.take_saved_sessions().expect("empty").is_empty());
        store
            .write_now(super::save_all_op(vec![
                ("a".into(), "<session/>".into()),
                ("b".into(), "<session n='2'/>".into()),
            ]))
            .expect("save");
        // Saving again replaces everything.
        store
            .write_now(super::save_all_op(vec![("c".into(), "<session/>".into())]))
            .expect("save again");
        let taken = store.take_saved_sessions().expect("take");
        assert_eq!(taken, vec![("c".to_string(), "<session/>".to_string())]);
        assert!(store.take_saved_sessions().expect("gone").is_empty());
    }
}
