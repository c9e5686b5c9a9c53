//! What the IM handlers remember about one bound session.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::SystemTime;

use super::caps::{CapsClaim, Features};

#[derive(Default)]
pub struct SessionIm {
    /// It requested the roster, so it gets roster pushes (RFC 6121 §2.1.6).
    pub roster_interested: Cell<bool>,
    /// It requested the blocklist, so it gets blocklist pushes (XEP-0191).
    pub blocklist_interested: Cell<bool>,
    /// It enabled carbons (XEP-0280).
    pub carbons: Cell<bool>,
    /// When its current presence was set: the XEP-0203 stamp on copies of
    /// that presence sent later (probe answers, new subscribers).
    pub presence_since: Cell<Option<SystemTime>>,
    /// It queried the account's archive (XEP-0313) before its initial
    /// presence: it has the archived offline messages already.
    pub archive_queried: Cell<bool>,
    /// The entity capabilities its presence claims (XEP-0115), with the
    /// features once verified: PEP notifications follow its `+notify`s.
    pub caps: RefCell<Option<SessionCaps>>,
    /// While its available presence is being broadcast: it came online or
    /// changed capabilities, so PEP services that see the presence send it
    /// their last items (or first ask what it wants).
    pub pep_fresh: Cell<bool>,
    /// It was sent the message of the day (once per login: not again
    /// after unavailable and available, nor after a resumption).
    pub motd_sent: Cell<bool>,
}

/// A session's claimed capabilities and, once known, its features.
pub struct SessionCaps {
    pub claim: CapsClaim,
    pub features: Option<Rc<Features>>,
    /// The PEP services (bare JIDs) that asked the client what `claim`
    /// means and wait for its answer.
    pub asked_by: Vec<Box<str>>,
}
