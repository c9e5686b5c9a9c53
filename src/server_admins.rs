//! Who administers the server right now: the accounts the configuration
//! names (`admins = [...]`, replaced by a reload) and those granted it at
//! run time (an admin invitation, `perch user admin`; stored in
//! `store::granted_admins` and loaded at start). One shared set, asked by
//! the ad-hoc commands, the pubsub service and every MUC room.

use std::cell::RefCell;

use crate::jid::Jid;

#[derive(Debug, Default)]
pub struct ServerAdmins {
    /// Bare JIDs from the configuration, normalized.
    configured: RefCell<Vec<String>>,
    /// Bare JIDs granted at run time.
    granted: RefCell<Vec<String>>,
}

/// `raw` as a normalized bare JID; `None` if it is not one (the config
/// check already refused those).
fn bare(raw: &str) -> Option<String> {
    Jid::parse(raw).ok().map(|j| j.bare_str().to_string())
}

impl ServerAdmins {
    pub fn new(configured: &[String], granted: &[String]) -> Self {
        let admins = ServerAdmins::default();
        admins.set_configured(configured);
        *admins.granted.borrow_mut() = granted.iter().filter_map(|g| bare(g)).collect();
        admins
    }

    /// Whether `jid`'s account administers the server.
    pub fn contains(&self, jid: &Jid) -> bool {
        let account = jid.bare_str();
        self.configured.borrow().iter().any(|a| a == account)
            || self.granted.borrow().iter().any(|a| a == account)
    }

    /// The configuration's list, after a reload.
    pub fn set_configured(&self, configured: &[String]) {
        *self.configured.borrow_mut() = configured.iter().filter_map(|c| bare(c)).collect();
    }

    /// Records a grant (`true`) or a revocation that is on disk.
    pub fn set_granted(&self, account: &Jid, admin: bool) {
        let account = account.bare_str();
        let mut granted = self.granted.borrow_mut();
        granted.retain(|a| a != account);
        if admin {
            granted.push(account.to_string());
        }
    }

    /// The configuration's administrators (bare JIDs, as in force).
    pub fn configured(&self) -> Vec<String> {
        self.configured.borrow().clone()
    }

    /// Whether `jid` is an administrator by the configuration (a
    /// grant cannot be revoked there).
    pub fn is_configured(&self, jid: &Jid) -> bool {
        self.configured.borrow().iter().any(|a| a == jid.bare_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    #[test]
    fn configured_and_granted_admins() {
        let admins = ServerAdmins::new(&["Root@Example.org".into()], &["ann@example.org".into()]);
        assert!(admins.contains(&jid("root@example.org/phone")));
        assert!(admins.contains(&jid("ann@example.org")));
        assert!(!admins.contains(&jid("bob@example.org")));
        admins.set_granted(&jid("bob@example.org/x"), true);
        assert!(admins.contains(&jid("bob@example.org")));
        admins.set_granted(&jid("ann@example.org"), false);
        assert!(!admins.contains(&jid("ann@example.org")));
        assert!(admins.is_configured(&jid("root@example.org")));
        admins.set_configured(&[]);
        assert!(!admins.contains(&jid("root@example.org")));
        assert!(admins.contains(&jid("bob@example.org")));
    }
}
