//! Persistent chat rooms: configuration and subject, affiliations (with
//! reserved nicknames and reasons), and the discussion history saved when a
//! room leaves memory. Values are encoded by `muc::record`; this module
//! only moves bytes in and out of the tables.

use redb::{ReadableTable, ReadableTableMetadata};

use super::archive::{self, ArchiveRecord, Kind};
use super::schema::{MUC_AFFILIATIONS, MUC_HISTORY, MUC_ROOMS};
use super::{Store, StoreError, WriteOp, keys};

/// One change to the MUC tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MucWrite {
    PutRoom {
        room: String,
        value: Vec<u8>,
    },
    /// Removes the room with its affiliations, history and archive.
    DeleteRoom {
        room: String,
    },
    /// Removes the room's configuration and affiliations (and an old
    /// history saved whole) but not its archive: the first step of writing
    /// a room again whole after a failed write.
    ResetRoom {
        room: String,
    },
    PutAffiliation {
        room: String,
        user: String,
        value: Vec<u8>,
    },
    DeleteAffiliation {
        room: String,
        user: String,
    },
    PutHistory {
        room: String,
        value: Vec<u8>,
    },
    /// Appends a message to the room's archive.
    Archive {
        room: String,
        record: ArchiveRecord,
    },
    /// Replaces the flags and stanza of the archived message `stamp` (a
    /// retraction's or moderation's tombstone), keeping its nick and real
    /// JID; nothing if it is gone.
    ArchiveReplace {
        room: String,
        stamp: u64,
        flags: u8,
        xml: Vec<u8>,
    },
    /// Deletes the room's archived messages with stamps below `before` (a
    /// room that keeps only its recent history).
    ArchiveTrim {
        room: String,
        before: u64,
    },
}

/// Everything stored about one room.
pub struct StoredRoom {
    pub record: Vec<u8>,
    /// (user bare JID, encoded affiliation record)
    pub affiliations: Vec<(String, Vec<u8>)>,
    pub history: Option<Vec<u8>>,
}

/// The writes as one store operation, applied in order in one transaction.
pub fn write_op(writes: Vec<MucWrite>) -> WriteOp {
    Box::new(move |txn| {
        for w in &writes {
            apply(txn, w)?;
        }
        Ok(())
    })
}

/// Removes what is stored of `room` but its archive.
fn reset(txn: &redb::WriteTransaction, room: &str) -> Result<(), StoreError> {
    txn.open_table(MUC_ROOMS)?.remove(keys::single(room))?;
    txn.open_table(MUC_HISTORY)?.remove(keys::single(room))?;
    let range = keys::owned_by(MUC_AFFILIATIONS, room)?;
    super::remove_range(&mut txn.open_table(MUC_AFFILIATIONS)?, &range)?;
    Ok(())
}

fn apply(txn: &redb::WriteTransaction, write: &MucWrite) -> Result<(), StoreError> {
    match write {
        MucWrite::PutRoom { room, value } => {
            txn.open_table(MUC_ROOMS)?
                .insert(keys::single(room), value.as_slice())?;
        }
        MucWrite::DeleteRoom { room } => {
            reset(txn, room)?;
            archive::purge(txn, Kind::Room, room)?;
        }
        MucWrite::ResetRoom { room } => reset(txn, room)?,
        MucWrite::PutAffiliation { room, user, value } => {
            let key = keys::pair(MUC_AFFILIATIONS, room, user)?;
            txn.open_table(MUC_AFFILIATIONS)?
                .insert(key.as_slice(), value.as_slice())?;
        }
        MucWrite::DeleteAffiliation { room, user } => {
            let key = keys::pair(MUC_AFFILIATIONS, room, user)?;
            txn.open_table(MUC_AFFILIATIONS)?.remove(key.as_slice())?;
        }
        MucWrite::PutHistory { room, value } => {
            let mut table = txn.open_table(MUC_HISTORY)?;
            if value.is_empty() {
                table.remove(keys::single(room))?;
            } else {
                table.insert(keys::single(room), value.as_slice())?;
            }
        }
        MucWrite::Archive { room, record } => archive::append(txn, Kind::Room, room, record)?,
        MucWrite::ArchiveReplace {
            room,
            stamp,
            flags,
            xml,
        } => archive::replace(txn, Kind::Room, room, *stamp, *flags, xml)?,
        MucWrite::ArchiveTrim { room, before } => {
            // Unbounded, unlike expiry: called as messages arrive, it
            // finds only the few that fell out of the kept history.
            archive::delete_before(txn, Kind::Room, room, *before, usize::MAX)?;
        }
    }
    Ok(())
}

pub struct MucRooms<'a> {
    store: &'a Store,
}

impl<'a> MucRooms<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        MucRooms { store }
    }

    pub fn load(&self, room: &str) -> Result<Option<StoredRoom>, StoreError> {
        self.store.read(|txn| {
            let rooms = txn.open_table(MUC_ROOMS)?;
            let Some(record) = rooms.get(keys::single(room))?.map(|v| v.value().to_vec()) else {
                return Ok(None);
            };
            let table = txn.open_table(MUC_AFFILIATIONS)?;
            let mut affiliations = Vec::new();
            for entry in table.range(keys::owned_by(MUC_AFFILIATIONS, room)?.bounds())? {
                let (key, value) = entry?;
                let user = keys::second_part(MUC_AFFILIATIONS, room, key.value())?;
                affiliations.push((user.to_string(), value.value().to_vec()));
            }
            let history = txn
                .open_table(MUC_HISTORY)?
                .get(keys::single(room))?
                .map(|v| v.value().to_vec());
            Ok(Some(StoredRoom {
                record,
                affiliations,
                history,
            }))
        })
    }

    pub fn exists(&self, room: &str) -> Result<bool, StoreError> {
        self.store.read(|txn| {
            Ok(txn
                .open_table(MUC_ROOMS)?
                .get(keys::single(room))?
                .is_some())
        })
    }

    /// Every stored room with its encoded record, sorted by JID.
    pub fn list(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.store.read(|txn| {
            let table = txn.open_table(MUC_ROOMS)?;
            let mut out = Vec::with_capacity(table.len()? as usize);
            for entry in table.iter()? {
                let (key, value) = entry?;
                let room = keys::read_str(MUC_ROOMS, key.value())?;
                out.push((room.to_string(), value.value().to_vec()));
            }
            Ok(out)
        })
    }

    /// The encoded affiliation records `user` holds in stored rooms. A
    /// scan of every affiliation: for the rare question of how many rooms
    /// one user owns, asked when the user creates one.
    pub fn affiliations_of(&self, user: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        self.store.read(|txn| {
            let table = txn.open_table(MUC_AFFILIATIONS)?;
            let mut found = Vec::new();
            for entry in table.iter()? {
                let (key, value) = entry?;
                let key = key.value();
                let is_user = key
                    .strip_suffix(user.as_bytes())
                    .and_then(|rest| rest.strip_suffix(&[keys::SEPARATOR]))
                    .is_some_and(|room| !room.contains(&keys::SEPARATOR));
                if is_user {
                    found.push(value.value().to_vec());
                }
            }
            Ok(found)
        })
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        self.store.read(|txn| Ok(txn.open_table(MUC_ROOMS)?.len()?))
    }

    pub async fn write(&self, writes: Vec<MucWrite>) -> Result<(), StoreError> {
        self.store.write(write_op(writes)).await
    }

    /// Deletes a room; `NotFound` if it is not stored.
    pub async fn delete(&self, room: &str) -> Result<(), StoreError> {
        if !self.exists(room)? {
            return Err(StoreError::NotFound(format!("room {room}")));
        }
        self.write(vec![MucWrite::DeleteRoom {
            room: room.to_string(),
        }])
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn rooms_affiliations_history() {
        let dir = TempDir::new("muc-store");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let muc = store.muc_rooms();
        smol::block_on(async {
            muc.write(vec![
                MucWrite::PutRoom {
                    room: "a@muc".into(),
                    value: vec![1, 2],
                },
                MucWrite::PutRoom {
                    room: "b@muc".into(),
                    value: vec![3],
                },
                MucWrite::PutAffiliation {
                    room: "a@muc".into(),
                    user: "x@h".into(),
                    value: vec![7],
                },
                MucWrite::PutAffiliation {
                    room: "a@muc".into(),
                    user: "y@h".into(),
                    value: vec![8],
                },
                MucWrite::PutAffiliation {
                    room: "b@muc".into(),
                    user: "x@h".into(),
                    value: vec![9],
                },
                MucWrite::PutHistory {
                    room: "a@muc".into(),
                    value: vec![5],
                },
            ])
            .await
            .expect("write");
            let a = muc.load("a@muc").expect("load").expect("stored");
            assert_eq!(a.record, vec![1, 2]);
            assert_eq!(
                a.affiliations,
                vec![("x@h".to_string(), vec![7]), ("y@h".to_string(), vec![8])]
            );
            assert_eq!(a.history, Some(vec![5]));
            assert!(muc.load("c@muc").expect("load").is_none());
            assert_eq!(muc.count().expect("count"), 2);
            muc.write(vec![MucWrite::DeleteAffiliation {
                room: "a@muc".into(),
                user: "x@h".into(),
            }])
            .await
            .expect("write");
            let a = muc.load("a@muc").expect("load").expect("stored");
            assert_eq!(a.affiliations.len(), 1);
            muc.delete("a@muc").await.expect("delete");
            assert!(muc.load("a@muc").expect("load").is_none());
            assert!(matches!(
                muc.delete("a@muc").await,
                Err(StoreError::NotFound(_))
            ));
            let b = muc.load("b@muc").expect("load").expect("stored");
            assert_eq!(b.affiliations, vec![("x@h".to_string(), vec![9])]);
            let listed: Vec<String> = muc
                .list()
                .expect("list")
                .into_iter()
                .map(|(r, _)| r)
                .collect();
            assert_eq!(listed, vec!["b@muc".to_string()]);
        });
    }
}
