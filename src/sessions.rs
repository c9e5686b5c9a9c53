//! The bound client sessions, by account: binding and replacing
//! resources (RFC 6120 §7), and finding a session or an account's
//! sessions for delivery.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::fasthash::FastMap;
use crate::ids::Ids;
use crate::jid::{self, Jid};
use crate::section::OutputHold;
use crate::session::{Outbox, Session};
use crate::stanza::{Condition, StanzaError};
use crate::stream::{StreamCondition, StreamError};

/// More resources than this on one account is a misbehaving client.
pub const MAX_RESOURCES_PER_ACCOUNT: usize = 32;

#[derive(Default)]
pub struct Sessions {
    /// Bound sessions by bare JID (its normalized string, so a full JID
    /// finds its account's list without building a bare `Jid`).
    by_account: RefCell<FastMap<Box<str>, Vec<Rc<Session>>>>,
    /// Sessions in `by_account`, kept so counting is not a walk of the
    /// table.
    total: Cell<usize>,
    next_id: Cell<u64>,
}

impl Sessions {
    /// Binds a resource for `account` (RFC 6120 §7). A session that already
    /// holds the same full JID is replaced: it gets a `conflict` stream error.
    /// Its output is queued through `hold`; a missing resource is made up
    /// from `ids`.
    pub fn bind(
        &self,
        account: &Jid,
        resource: Option<&str>,
        outbox: Rc<Outbox>,
        hold: &Rc<OutputHold>,
        ids: &Ids,
    ) -> Result<Rc<Session>, StanzaError> {
        let resource = match resource {
            Some(r) => jid::prep_resource_strict(r)
                .map_err(|e| StanzaError::new(Condition::BadRequest).with_text(e.to_string()))?
                .into_owned(),
            None => ids.new_id(),
        };
        let full = account
            .with_resource(&resource)
            .map_err(|e| StanzaError::new(Condition::BadRequest).with_text(e.to_string()))?;
        let mut sessions = self.by_account.borrow_mut();
        let list = sessions.entry(account.bare_str().into()).or_default();
        if let Some(pos) = list.iter().position(|s| s.jid == full) {
            let old = list.remove(pos);
            self.total.set(self.total.get().saturating_sub(1));
            log::info!("{full} logged in again; closing the older session");
            old.outbox.close_with(StreamError::with_text(
                StreamCondition::Conflict,
                "replaced by a new session",
            ));
            // Its presence is gone from the router's point of view; the
            // replacement will announce its own.
        } else if list.len() >= MAX_RESOURCES_PER_ACCOUNT {
            return Err(StanzaError::new(Condition::ResourceConstraint)
                .with_text("too many resources bound for this account"));
        }
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let session = Rc::new(Session::new(id, full, outbox, hold.clone()));
        list.push(session.clone());
        self.total.set(self.total.get() + 1);
        Ok(session)
    }

    /// Removes a session if it is still the one bound to its JID.
    pub fn unbind(&self, session: &Session) {
        let mut sessions = self.by_account.borrow_mut();
        let bare = session.jid.bare_str();
        if let Some(list) = sessions.get_mut(bare) {
            let before = list.len();
            list.retain(|s| s.id != session.id);
            let removed = before - list.len();
            self.total.set(self.total.get().saturating_sub(removed));
            if list.is_empty() {
                sessions.remove(bare);
            }
        }
    }

    /// The session bound to `full`, if any.
    pub fn session(&self, full: &Jid) -> Option<Rc<Session>> {
        self.by_account
            .borrow()
            .get(full.bare_str())
            .and_then(|list| list.iter().find(|s| s.jid == *full).cloned())
    }

    /// Whether `bare` has a bound session that is not being closed. Such a
    /// session proves its account exists without a store read: removing an
    /// account closes its sessions.
    pub fn has_open_session(&self, bare: &Jid) -> bool {
        self.any_session_of(bare, |s| !s.outbox.is_closing())
    }

    /// Whether any session of the account `bare` satisfies `pred`, without
    /// copying the session list.
    pub fn any_session_of(&self, bare: &Jid, pred: impl Fn(&Session) -> bool) -> bool {
        self.sessions_list(bare, |list| list.iter().any(|s| pred(s)))
    }

    /// Runs `f` on the sessions of the account `bare` (none for a full JID,
    /// which names no account).
    fn sessions_list<T>(&self, bare: &Jid, f: impl FnOnce(&[Rc<Session>]) -> T) -> T {
        let sessions = self.by_account.borrow();
        let list = match bare.resource() {
            Some(_) => None,
            None => sessions.get(bare.bare_str()),
        };
        f(list.map_or(&[], Vec::as_slice))
    }

    /// All sessions of an account (cloned handles, so the caller may route
    /// while iterating).
    pub fn sessions_of(&self, bare: &Jid) -> Vec<Rc<Session>> {
        self.sessions_list(bare, <[Rc<Session>]>::to_vec)
    }

    /// Sessions bound now.
    pub fn count(&self) -> usize {
        self.total.get()
    }

    /// Shrinks the table after a wave of logins left.
    pub fn shrink_idle(&self) {
        crate::memory::ShrinkIdle::shrink_idle(&mut *self.by_account.borrow_mut());
    }

    pub fn all(&self) -> Vec<Rc<Session>> {
        self.by_account
            .borrow()
            .values()
            .flatten()
            .cloned()
            .collect()
    }
}
