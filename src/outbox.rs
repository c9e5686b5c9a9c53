//! A session's outbound stanza queue: what the router, the IM handlers and
//! the rooms give a client, waiting for its connection to write it.
//!
//! The queue holds stanzas, not stream bytes. Each entry is one stanza
//! serialized once (a broadcast is one serialization copied per recipient
//! with its own `to`), with `jabber:client` as the default namespace, so no
//! stream's framing is baked in: a TCP c2s stream writes the entries as
//! they are, an s2s link would write the same bytes in a `jabber:server`
//! stream (the default namespace is the stream's), a WebSocket transport
//! would send each entry as one frame with the namespace declared on it.
//! Stream-level bytes (headers, negotiation, keepalives, stream errors) are
//! the transport's and never enter the queue. Entries are counted from the
//! start of the session, which is what stream management acknowledges.
//!
//! Entries live back to back in one buffer with their end offsets beside
//! it, and the connection takes all of them at once ([`Outbox::drain`]),
//! so a burst of stanzas costs one write and no allocation per stanza.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::stream::{StreamCondition, StreamError};
use crate::xml::{Element, NS_CLIENT, Prepared};

/// A slow reader may fall this far behind before it is disconnected, so one
/// stalled client cannot make the server hold unbounded memory for it.
pub const MAX_OUTBOX_BYTES: usize = 4 << 20;

/// Stanzas taken from an outbox, for a transport to frame and write.
#[derive(Default, Debug)]
pub struct Batch {
    bytes: Vec<u8>,
    /// Where each stanza ends in `bytes`.
    ends: Vec<usize>,
}

impl Batch {
    /// Every stanza, back to back: what a TCP c2s stream writes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The stanzas one by one (what a transport that frames each stanza
    /// on its own writes).
    pub fn stanzas(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| self.bytes.get(start..end).unwrap_or_default())
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Empties the batch, keeping its buffers for the next one.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// The buffers' capacity in bytes, for deciding what to keep.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }
}

#[derive(Default)]
pub struct Outbox {
    state: RefCell<OutboxState>,
}

#[derive(Default)]
struct OutboxState {
    queued: Batch,
    /// Stanzas queued since the session began.
    total: u64,
    waker: Option<Waker>,
    close: Option<StreamError>,
}

impl Outbox {
    pub fn new() -> Rc<Outbox> {
        Rc::new(Outbox::default())
    }

    /// Queues a stanza.
    pub fn send(&self, el: &Element) {
        self.push_with(|buf| el.write_to(buf, NS_CLIENT));
    }

    /// Queues one stanza that is already serialized (with `jabber:client`
    /// as its default namespace): a held stanza being released.
    pub fn send_serialized(&self, stanza: &[u8]) {
        self.push_with(|buf| buf.extend_from_slice(stanza));
    }

    /// Queues a copy of a broadcast addressed to `to`.
    pub fn send_prepared(&self, prepared: &Prepared, to: &str) {
        self.push_with(|buf| prepared.write_with_to(to, buf));
    }

    /// Queues one stanza that `write` appends to the queue's buffer.
    pub fn push_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut st = self.state.borrow_mut();
        if st.close.is_some() {
            return;
        }
        let queued = &mut st.queued;
        let start = queued.bytes.len();
        write(&mut queued.bytes);
        if queued.bytes.len() == start {
            return;
        }
        queued.ends.push(queued.bytes.len());
        st.total += 1;
        if st.queued.bytes.len() > MAX_OUTBOX_BYTES {
            st.queued.clear();
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

    /// Bytes queued and not yet taken by the connection.
    pub fn queued(&self) -> usize {
        self.state.borrow().queued.bytes.len()
    }

    /// Stanzas queued since the session began, taken or not.
    pub fn total(&self) -> u64 {
        self.state.borrow().total
    }

    /// Ready when there is something to write or a close was requested.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.borrow_mut();
        if !st.queued.is_empty() || st.close.is_some() {
            Poll::Ready(())
        } else {
            match &st.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        }
    }

    /// Swaps the queued stanzas into `into` (which must be empty); the
    /// outbox keeps `into`'s buffers (the batch written last time) for the
    /// next burst.
    pub fn drain(&self, into: &mut Batch) {
        let mut st = self.state.borrow_mut();
        std::mem::swap(&mut st.queued, into);
    }

    /// Frees the buffers kept for the next burst, when nothing is queued:
    /// for a connection that has gone quiet.
    pub fn release_spare(&self) {
        let mut st = self.state.borrow_mut();
        if st.queued.is_empty() {
            st.queued = Batch::default();
        }
    }

    pub fn take_close(&self) -> Option<StreamError> {
        self.state.borrow_mut().close.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn drained(outbox: &Outbox) -> Batch {
        let mut batch = Batch::default();
        outbox.drain(&mut batch);
        batch
    }

    #[test]
    fn stanzas_are_queued_one_by_one_and_counted() {
        let outbox = Outbox::new();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(outbox.poll_ready(&mut cx).is_pending());
        outbox.send(&Element::new("message", NS_CLIENT).with_attr("to", "a@b"));
        outbox.send_serialized(b"<presence/>");
        let prepared = Element::new("message", NS_CLIENT)
            .with_attr("type", "groupchat")
            .prepare_with_to(NS_CLIENT);
        outbox.send_prepared(&prepared, "c@d/e");
        assert!(outbox.poll_ready(&mut cx).is_ready());
        let batch = drained(&outbox);
        assert_eq!(
            batch.bytes(),
            b"<message to='a@b'/><presence/><message to='c@d/e' type='groupchat'/>"
        );
        let stanzas: Vec<&[u8]> = batch.stanzas().collect();
        assert_eq!(
            stanzas,
            [
                &b"<message to='a@b'/>"[..],
                b"<presence/>",
                b"<message to='c@d/e' type='groupchat'/>"
            ]
        );
        assert_eq!(batch.len(), 3);
        assert_eq!(outbox.total(), 3);
        assert!(outbox.poll_ready(&mut cx).is_pending());
        // Nothing written is not a stanza.
        outbox.push_with(|_| {});
        assert_eq!(outbox.total(), 3);
    }

    #[test]
    fn a_slow_reader_is_closed() {
        let outbox = Outbox::new();
        let big = vec![b'x'; MAX_OUTBOX_BYTES / 2 + 1];
        outbox.send_serialized(&big);
        outbox.send_serialized(&big);
        assert!(outbox.is_closing());
        assert_eq!(outbox.queued(), 0);
        let err = outbox.take_close().expect("close reason");
        assert_eq!(err.condition, StreamCondition::PolicyViolation);
    }

    #[test]
    fn spare_buffers_are_kept_for_bursts_and_freed_when_quiet() {
        let outbox = Outbox::new();
        outbox.send_serialized(b"<presence/>");
        let mut batch = Batch {
            bytes: Vec::with_capacity(64),
            ends: Vec::with_capacity(4),
        };
        outbox.drain(&mut batch);
        // The connection's emptied batch is what the outbox fills next.
        assert_eq!(batch.bytes(), b"<presence/>");
        assert!(outbox.state.borrow().queued.bytes.capacity() >= 64);
        outbox.release_spare();
        assert_eq!(outbox.state.borrow().queued.capacity(), 0);
        // Something queued is never dropped.
        outbox.send_serialized(b"<presence/>");
        outbox.release_spare();
        assert_eq!(outbox.queued(), 11);
    }
}
