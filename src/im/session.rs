//! What the IM handlers remember about one bound session.

use std::cell::Cell;
use std::time::SystemTime;

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
}
