//! The message archive (XEP-0313) of accounts and rooms, with XEP-0359
//! stanza ids.
//!
//! - `ids.rs`: the clock that stamps archived messages and the ids clients
//!   see;
//! - `policy.rs`: what is archived, and the stanza ids on messages;
//! - `chat.rs`: one-to-one messages archived as they pass (both sides of a
//!   local conversation, each in its owner's archive);
//! - `query.rs`, `rsm.rs`, `prefs.rs`: the protocol's elements, parsed and
//!   built (sans-I/O, fuzzed);
//! - `page.rs`: a query run against an archive, and its answer;
//! - `account.rs`: an account's own archive, preferences and metadata;
//! - `cleanup.rs`: expiry and size caps, in small batches;
//! - `admin.rs`: `perch archive stats` and `perch archive expire`;
//! - the tables are in `store/archive.rs`; rooms archive through
//!   `muc/archive.rs`.

pub mod account;
pub mod admin;
pub mod chat;
pub mod cleanup;
pub mod ids;
pub mod page;
pub mod policy;
pub mod prefs;
pub mod query;
pub mod rsm;

use std::cell::RefCell;
use std::rc::Rc;

use crate::fasthash::FastMap;
use crate::jid::Jid;
use crate::store::{Store, StoreError};

pub use crate::stanza::{NS_MAM, NS_SID};
pub const NS_MAM_EXTENDED: &str = "urn:xmpp:mam:2#extended";
pub const NS_RSM: &str = "http://jabber.org/protocol/rsm";
pub const NS_FORWARD: &str = crate::stanza::NS_FORWARD;

/// Accounts whose preferences are remembered at once (the cache is emptied
/// when full: it only saves reads).
const PREFS_CACHE_ACCOUNTS: usize = 4096;

/// The archive's state on the event loop: its clock and id key, and the
/// preferences of accounts seen lately.
pub struct Archive {
    pub ids: ids::ArchiveIds,
    /// `None`: the account never set preferences (the server default
    /// applies).
    prefs: RefCell<FastMap<Jid, Option<Rc<prefs::Prefs>>>>,
}

impl Archive {
    /// Reads the id secret and the newest stamp stored, so the clock goes
    /// on after it.
    pub fn open(store: &Store) -> Result<Archive, StoreError> {
        let secret = store.secret("archive-ids")?;
        let mut last = 0;
        for kind in [
            crate::store::archive::Kind::User,
            crate::store::archive::Kind::Room,
        ] {
            for (_, stats) in crate::store::archive::all_stats(store, kind)? {
                last = last.max(stats.last);
            }
        }
        Ok(Archive::new(&secret, last))
    }

    pub fn new(secret: &[u8], last: u64) -> Archive {
        Archive {
            ids: ids::ArchiveIds::new(secret, last),
            prefs: RefCell::new(FastMap::default()),
        }
    }

    /// The preferences `account` set, if any (read once, then remembered).
    pub fn prefs_of(&self, store: &Store, account: &Jid) -> Option<Rc<prefs::Prefs>> {
        if let Some(known) = self.prefs.borrow().get(account) {
            return known.clone();
        }
        let stored = match crate::store::archive::prefs(store, account.as_str()) {
            Ok(stored) => stored,
            Err(e) => {
                log::error!("reading the archive preferences of {account}: {e}");
                None
            }
        };
        let prefs = stored.and_then(|bytes| match prefs::Prefs::decode(&bytes) {
            Ok(p) => Some(Rc::new(p)),
            Err(e) => {
                log::warn!("archive preferences of {account} unreadable, using the default: {e}");
                None
            }
        });
        self.remember(account, prefs.clone());
        prefs
    }

    /// Notes preferences just set (their write is on its way).
    pub fn remember(&self, account: &Jid, prefs: Option<Rc<prefs::Prefs>>) {
        let mut cache = self.prefs.borrow_mut();
        if cache.len() >= PREFS_CACHE_ACCOUNTS {
            cache.clear();
        }
        cache.insert(account.clone(), prefs);
    }
}
