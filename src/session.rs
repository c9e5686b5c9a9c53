//! A bound client session as the router sees it: its full JID, its
//! presence, and the outbox its connection task drains to the socket.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::im::SessionIm;
use crate::jid::Jid;
use crate::section::OutputHold;
use crate::stream::csi::CsiState;
use crate::stream::sm::StreamManagement;
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
    /// Stream management (XEP-0198), once the client enabled it.
    pub sm: RefCell<Option<StreamManagement>>,
    /// Client State Indication (XEP-0352): inactive, and what is held.
    pub csi: RefCell<CsiState>,
    /// What carries the session now: a connection, or the wait for
    /// resumption after one was lost. A new carrier takes over from the
    /// old one (see [`Carrier`]).
    carrier: RefCell<Option<Rc<Carrier>>>,
    /// The server's output hold: see [`crate::durable`].
    hold: Rc<OutputHold>,
}

/// The link between a session and the task carrying it (its connection,
/// or its wait for resumption). When a resumed stream takes the session
/// over, the old carrier is told and must let go of the session without
/// ending it; when the server stops to restart, it is asked to suspend:
/// close its connection without a word, so the client resumes later.
#[derive(Default)]
pub struct Carrier {
    taken: Cell<bool>,
    suspend: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Carrier {
    pub fn new() -> Rc<Carrier> {
        Rc::new(Carrier::default())
    }

    /// Another carrier has the session now.
    pub fn is_taken(&self) -> bool {
        self.taken.get()
    }

    /// The server stops: keep the session for resumption after the restart.
    pub fn is_suspended(&self) -> bool {
        self.suspend.get()
    }

    pub fn suspend(&self) {
        self.suspend.set(true);
        self.wake();
    }

    fn take(&self) {
        self.taken.set(true);
        self.wake();
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Ready once taken over or suspended.
    pub fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.taken.get() || self.suspend.get() {
            return Poll::Ready(());
        }
        let mut waker = self.waker.borrow_mut();
        match &*waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
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
            sm: RefCell::new(None),
            csi: RefCell::new(CsiState::default()),
            carrier: RefCell::new(None),
            hold,
        }
    }

    /// Makes `carrier` the session's carrier; the previous one, if any, is
    /// told it was taken over.
    pub fn carry(&self, carrier: Rc<Carrier>) {
        if let Some(old) = self.carrier.borrow_mut().replace(carrier)
            && !old.is_taken()
        {
            old.take();
        }
    }

    /// Whether `carrier` carries the session now.
    pub fn is_carried_by(&self, carrier: &Rc<Carrier>) -> bool {
        self.carrier
            .borrow()
            .as_ref()
            .is_some_and(|c| Rc::ptr_eq(c, carrier))
    }

    /// The current carrier, to suspend it when the server stops.
    pub fn carrier(&self) -> Option<Rc<Carrier>> {
        self.carrier.borrow().clone()
    }

    /// Whether the client enabled stream management with resumption.
    pub fn is_resumable(&self) -> bool {
        self.sm.borrow().as_ref().is_some_and(|sm| sm.resumable())
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
