//! A bound client session as the router sees it: its full JID, its
//! presence, and the outbox its connection task drains to the socket.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::durable::OutputHold;
use crate::im::SessionIm;
use crate::jid::Jid;
use crate::stream::{StreamCondition, StreamError};
use crate::xml::{Element, NS_CLIENT};

/// A slow reader may fall this far behind before it is disconnected, so one
/// stalled client cannot make the server hold unbounded memory for it.
pub const MAX_OUTBOX_BYTES: usize = 4 << 20;

/// Bytes waiting to go out on one connection. Producers append serialized
/// stanzas; the connection task writes everything queued in one go, so a
/// burst of stanzas costs one write, not one per stanza.
#[derive(Default)]
pub struct Outbox {
    state: RefCell<OutboxState>,
}

#[derive(Default)]
struct OutboxState {
    buf: Vec<u8>,
    waker: Option<Waker>,
    close: Option<StreamError>,
}

impl Outbox {
    pub fn new() -> Rc<Outbox> {
        Rc::new(Outbox::default())
    }

    /// Queues a stanza for the client, serialized in the `jabber:client`
    /// stream namespace.
    pub fn send(&self, el: &Element) {
        let mut st = self.state.borrow_mut();
        if st.close.is_some() {
            return;
        }
        el.write_to(&mut st.buf, NS_CLIENT);
        Self::after_write(&mut st);
    }

    /// Queues bytes that are already serialized (a prepared broadcast).
    pub fn send_raw(&self, bytes: &[u8]) {
        let mut st = self.state.borrow_mut();
        if st.close.is_some() {
            return;
        }
        st.buf.extend_from_slice(bytes);
        Self::after_write(&mut st);
    }

    /// Lets a producer write straight into the queue.
    pub fn with_buf(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut st = self.state.borrow_mut();
        if st.close.is_some() {
            return;
        }
        f(&mut st.buf);
        Self::after_write(&mut st);
    }

    fn after_write(st: &mut OutboxState) {
        if st.buf.len() > MAX_OUTBOX_BYTES {
            st.buf.clear();
            st.close = Some(StreamError::with_text(
                StreamCondition::PolicyViolation,
                "the client is not reading its stream",
            ));
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }

    /// Asks the connection to end the stream with `error` (e.g. `conflict`
    /// when a newer session takes over the resource, `system-shutdown`).
    pub fn close_with(&self, error: StreamError) {
        let mut st = self.state.borrow_mut();
        if st.close.is_none() {
            st.close = Some(error);
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }

    /// Wakes the connection task without queuing anything, so it looks at
    /// its deadlines again (its address came under pressure).
    pub fn wake(&self) {
        if let Some(w) = self.state.borrow_mut().waker.take() {
            w.wake();
        }
    }

    pub fn is_closing(&self) -> bool {
        self.state.borrow().close.is_some()
    }

    pub fn queued(&self) -> usize {
        self.state.borrow().buf.len()
    }

    /// Ready when there is something to write or a close was requested.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.borrow_mut();
        if !st.buf.is_empty() || st.close.is_some() {
            Poll::Ready(())
        } else {
            match &st.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        }
    }

    /// Swaps the queued bytes into `into` (which must be empty); the
    /// outbox keeps `into`'s allocation (the buffer written last time) for
    /// the next burst.
    pub fn take_into(&self, into: &mut Vec<u8>) {
        let mut st = self.state.borrow_mut();
        std::mem::swap(&mut st.buf, into);
    }

    /// Frees the buffer kept for the next burst, when nothing is queued:
    /// for a connection that has gone quiet.
    pub fn release_spare(&self) {
        let mut st = self.state.borrow_mut();
        if st.buf.is_empty() {
            st.buf = Vec::new();
        }
    }

    pub fn take_close(&self) -> Option<StreamError> {
        self.state.borrow_mut().close.take()
    }
}

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

    /// Queues a stanza for the client, or holds it while the writes it may
    /// report are not yet durable (see [`crate::durable`]).
    pub fn send(&self, el: &Element) {
        if !self.hold.capture(&self.outbox, el) {
            self.outbox.send(el);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn outbox_queues_and_closes_slow_readers() {
        let outbox = Outbox::new();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(outbox.poll_ready(&mut cx).is_pending());
        outbox.send(&Element::new("message", NS_CLIENT).with_attr("to", "a@b"));
        assert!(outbox.poll_ready(&mut cx).is_ready());
        let mut buf = Vec::new();
        outbox.take_into(&mut buf);
        assert_eq!(buf, b"<message to='a@b'/>");
        assert!(outbox.poll_ready(&mut cx).is_pending());
        let big = vec![b'x'; MAX_OUTBOX_BYTES / 2 + 1];
        outbox.send_raw(&big);
        outbox.send_raw(&big);
        assert!(outbox.is_closing());
        assert_eq!(outbox.queued(), 0);
        let err = outbox.take_close().expect("close reason");
        assert_eq!(err.condition, StreamCondition::PolicyViolation);
    }

    #[test]
    fn spare_buffer_is_kept_for_bursts_and_freed_when_quiet() {
        let outbox = Outbox::new();
        outbox.send_raw(b"<presence/>");
        let mut buf = Vec::with_capacity(64);
        outbox.take_into(&mut buf);
        // The connection's emptied buffer is what the outbox fills next.
        assert_eq!(buf, b"<presence/>");
        assert!(outbox.state.borrow().buf.capacity() >= 64);
        outbox.release_spare();
        assert_eq!(outbox.state.borrow().buf.capacity(), 0);
        // Something queued is never dropped.
        outbox.send_raw(b"<presence/>");
        outbox.release_spare();
        assert_eq!(outbox.queued(), 11);
    }
}
