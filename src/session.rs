//! A bound client session as the router sees it: its full JID, its
//! presence, and the outbox its connection task drains to the socket.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::im::SessionIm;
use crate::jid::Jid;
use crate::section::OutputHold;
use crate::xml::Element;

pub use crate::outbox::{Batch, MAX_OUTBOX_BYTES, Outbox};

pub struct Session {
    pub id: u64,
    pub jid: Jid,
    pub outbox: Rc<Outbox>,
    /// The last available presence the client broadcast; `None` until its
    /// initial presence and after it went unavailable.
    pub presence: RefCell<Option<Element>>,
    pub priority: Cell<i8>,
    /// Entities that received directed available presence from this
    /// session (RFC 6121 §4.6): they are told when it goes unavailable.
    pub directed: RefCell<Vec<Jid>>,
    /// What the IM handlers remember per session (roster interest, carbons…).
    pub im: SessionIm,
    /// The server's output hold: see [`crate::durable`].
    hold: Rc<OutputHold>,
}

impl Session {
    pub fn new(id: u64, jid: Jid, outbox: Rc<Outbox>, hold: Rc<OutputHold>) -> Session {
        Session {
            id,
            jid,
            outbox,
            presence: RefCell::new(None),
            priority: Cell::new(0),
            directed: RefCell::new(Vec::new()),
            im: SessionIm::default(),
            hold,
        }
    }

    pub fn is_available(&self) -> bool {
        self.presence.borrow().is_some()
    }

    /// Queues a stanza for the client: behind the running section's gate,
    /// so it waits for the writes it may report (see [`crate::durable`]).
    pub fn send(&self, el: &Element) {
        self.hold.send(&self.outbox, el);
    }
}
