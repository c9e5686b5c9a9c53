//! The in-memory copy of each active account's IM state: roster, blocklist
//! and offline-message counters. On the event loop this copy is the truth;
//! every change is applied here first and then written through to the
//! store in the same order (see `Env::persist`), so a stanza handled
//! while an earlier write is still being committed already sees its effect.
//!
//! An account's state is loaded on first use and kept while the account
//! has sessions. Others are dropped in sweeps once their writes are on disk
//! (dropping one earlier could reload a state that misses them).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::fasthash::FastMap;
use crate::jid::Jid;
use crate::sessions::Sessions;
use crate::store::{self, Store, StoreError};

use super::blocklist::Blocklist;
use super::roster::Roster;

/// Idle account states kept beyond those of connected accounts before a
/// sweep runs.
const IDLE_STATES: usize = 256;

/// Offline-message bookkeeping of one account (the messages stay on disk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfflineQueue {
    pub count: usize,
    pub bytes: usize,
    /// The sequence number the next stored message gets.
    pub next_seq: u64,
    /// Messages numbered up to here were handed to a session already
    /// (their deletion may still be in flight).
    pub delivered_through: u64,
}

pub struct AccountState {
    pub roster: RefCell<Roster>,
    pub blocklist: RefCell<Blocklist>,
    pub offline: RefCell<OfflineQueue>,
    /// Commit sequence number of the last write made for this account.
    last_write: Cell<u64>,
}

impl AccountState {
    fn load(store: &store::Store, bare: &Jid) -> Result<AccountState, StoreError> {
        // One read transaction for all of it: a login pays for this.
        let (roster, blocked, summary) = store.read(|txn| {
            Ok((
                store::roster::load_in(txn, bare)?,
                store::blocking::load_in(txn, bare.as_str())?,
                store::offline::summary_in(txn, bare.as_str())?,
            ))
        })?;
        let blocklist = Blocklist::from_stored(blocked);
        Ok(AccountState {
            roster: RefCell::new(roster),
            blocklist: RefCell::new(blocklist),
            offline: RefCell::new(OfflineQueue {
                count: summary.count,
                bytes: summary.bytes,
                next_seq: summary.last_seq + 1,
                delivered_through: 0,
            }),
            last_write: Cell::new(0),
        })
    }

    /// Notes write `seq` made for this account (see `Env::persist_for`).
    pub fn wrote(&self, seq: u64) {
        self.last_write.set(self.last_write.get().max(seq));
    }
}

#[derive(Default)]
pub struct ImCache {
    accounts: RefCell<FastMap<Jid, Rc<AccountState>>>,
}

impl ImCache {
    /// The state of the local account `bare` (which must exist), loaded
    /// from the store on first use.
    pub fn account(
        &self,
        store: &Store,
        sessions: &Sessions,
        bare: &Jid,
    ) -> Result<Rc<AccountState>, StoreError> {
        if let Some(state) = self.accounts.borrow().get(bare) {
            return Ok(state.clone());
        }
        let state = Rc::new(AccountState::load(store, bare)?);
        self.sweep(store, sessions);
        self.accounts
            .borrow_mut()
            .insert(bare.clone(), state.clone());
        Ok(state)
    }

    /// Drops one account's state, e.g. after the account was deleted.
    pub fn forget(&self, bare: &Jid) {
        self.accounts.borrow_mut().remove(bare);
    }

    /// After a failed write: drops the states whose writes are all
    /// processed (up to `processed`), so the disk, the truth again, is read
    /// back. A state with a write still in flight is kept: reading it
    /// back now would miss that write (an offline message's number given
    /// out twice, a roster change lost).
    pub fn forget_processed(&self, processed: u64) {
        self.accounts
            .borrow_mut()
            .retain(|_, state| state.last_write.get() > processed);
    }

    /// Shrinks the table after the accounts of a wave of logins left.
    pub fn shrink_idle(&self) {
        crate::memory::ShrinkIdle::shrink_idle(&mut *self.accounts.borrow_mut());
    }

    pub fn len(&self) -> usize {
        self.accounts.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.borrow().is_empty()
    }

    /// Drops the states of accounts without sessions whose writes are on
    /// disk, once there are more than `IDLE_STATES` of them.
    pub fn sweep(&self, store: &Store, sessions: &Sessions) {
        let mut accounts = self.accounts.borrow_mut();
        if accounts.len() < IDLE_STATES + sessions.count() {
            return;
        }
        let committed = store.committed_seq();
        accounts.retain(|bare, state| {
            state.last_write.get() > committed || sessions.any_session_of(bare, |_| true)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn a_failure_forgets_only_states_with_nothing_in_flight() {
        let dir = TempDir::new("im-cache");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let sessions = Sessions::default();
        let cache = ImCache::default();
        let busy = Jid::parse("busy@localhost").expect("jid");
        let idle = Jid::parse("idle@localhost").expect("jid");
        cache
            .account(&store, &sessions, &busy)
            .expect("load")
            .wrote(7);
        cache
            .account(&store, &sessions, &idle)
            .expect("load")
            .wrote(3);
        cache.forget_processed(5);
        // Write 7 is still in flight: reading that account back now would
        // miss it.
        assert_eq!(cache.len(), 1);
        assert!(cache.accounts.borrow().contains_key(&busy));
    }
}
