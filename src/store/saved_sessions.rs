//! Resumable sessions saved when the server stops (XEP-0198 resumption
//! across a restart): one record per resumption id, written at shutdown,
//! read at the next start, and deleted when its session is resumed or
//! ends (so a power cut before then restores it again rather than lose
//! what it held).

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

/// The write that deletes the saved session `id` (resumed, or ended).
pub fn delete_op(id: &str) -> super::WriteOp {
    let id = id.to_string();
    Box::new(move |txn| {
        txn.open_table(SAVED_SESSIONS)?.remove(keys::single(&id))?;
        Ok(())
    })
}

impl Store {
    /// Every saved session, at start-up.
    pub fn saved_sessions(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|txn| {
            let table = match txn.open_table(SAVED_SESSIONS) {
                Ok(t) => t,
                // A file from before this table: nothing was saved.
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                let id = keys::read_str(SAVED_SESSIONS, k.value())?.to_string();
                let xml = keys::read_str(SAVED_SESSIONS, v.value())?.to_string();
                out.push((id, xml));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn saved_sessions_stay_until_deleted() {
        let dir = crate::testing::TempDir::new("saved-sessions");
        let store =
            crate::store::Store::open(&dir.path().join("perch.redb"), 1 << 20).expect("open");
        assert!(store.saved_sessions().expect("empty").is_empty());
        store
            .write_now(super::save_all_op(vec![
                ("a".into(), "<session/>".into()),
                ("b".into(), "<session n='2'/>".into()),
            ]))
            .expect("save");
        // Saving again replaces everything.
        store
            .write_now(super::save_all_op(vec![
                ("c".into(), "<session/>".into()),
                ("d".into(), "<session/>".into()),
            ]))
            .expect("save again");
        let saved = store.saved_sessions().expect("read");
        assert_eq!(saved.len(), 2);
        assert_eq!(saved[0], ("c".to_string(), "<session/>".to_string()));
        // Reading again finds them again, until one is deleted.
        assert_eq!(store.saved_sessions().expect("again").len(), 2);
        store.write_now(super::delete_op("c")).expect("delete");
        let left: Vec<String> = store
            .saved_sessions()
            .expect("left")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(left, ["d"]);
    }
}
