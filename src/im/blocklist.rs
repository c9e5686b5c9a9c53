//! An account's blocklist (XEP-0191) as data: which JIDs it blocks and
//! how an entry matches. The iqs and filters are in `blocking`.

use std::collections::BTreeSet;

use crate::jid::Jid;

/// The blocked JIDs of one account, as normalized JID strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blocklist {
    items: BTreeSet<String>,
}

impl Blocklist {
    pub fn from_stored(items: Vec<String>) -> Blocklist {
        Blocklist {
            items: items.into_iter().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn contains(&self, jid: &Jid) -> bool {
        self.items.contains(jid.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(String::as_str)
    }

    /// XEP-0191 §3.4 matching (as XEP-0016): an entry `user@domain/resource`
    /// or `domain/resource` matches that JID only, `user@domain` any of its
    /// resources, and `domain` everything at the domain.
    pub fn blocks(&self, jid: &Jid) -> bool {
        !self.items.is_empty()
            && (self.items.contains(jid.as_str())
                || self.items.contains(jid.bare_str())
                || self.items.contains(jid.domain()))
    }

    /// Whether the single entry `item` covers `jid`.
    pub fn entry_covers(item: &Jid, jid: &Jid) -> bool {
        Blocklist::from_stored(vec![item.to_string()]).blocks(jid)
    }

    pub(super) fn insert(&mut self, jid: &Jid) -> bool {
        self.items.insert(jid.to_string())
    }

    pub(super) fn remove(&mut self, jid: &Jid) -> bool {
        self.items.remove(jid.as_str())
    }

    pub(super) fn clear(&mut self) -> Vec<String> {
        std::mem::take(&mut self.items).into_iter().collect()
    }
}
