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
//! the transport's and never enter the queue. Entries are counted as they
//! are released, from the start of the session, which is what stream
//! management acknowledges.
//!
//! **Held entries.** A stanza that reports a change (an iq result, a roster
//! push, a room's new configuration) must not leave before the change is on
//! disk. Such a stanza is queued behind a [`Gate`]: it takes its place in
//! the queue at once, but the connection cannot take it (nor anything
//! queued after it) until the gate is released, which the store's group
//! committer does when the writes the gate waits for are durable. If one of
//! them fails, the gate is withdrawn: its entries leave the queue unsent,
//! and the request they answered gets an error in their place. Entries
//! queued behind a held region wait for it whatever their own gate, so a
//! client sees everything in the order it was produced.
//!
//! Entries live back to back in one buffer with their end offsets beside
//! it, and the connection takes all released ones at once
//! ([`Outbox::drain`]), so a burst of stanzas costs one write and no
//! allocation per stanza.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use crate::stanza::{self, StanzaError};
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

    /// Appends `stanza` as the last entry (for a filter that rebuilds what
    /// the connection writes, such as Client State Indication's).
    pub fn push(&mut self, stanza: &[u8]) {
        self.bytes.extend_from_slice(stanza);
        self.ends.push(self.bytes.len());
    }

    /// Appends bytes that are not a stanza after the last entry (a stream
    /// management `<r/>` sent with the stanzas it asks about, in the same
    /// write); `stanzas()` does not see them.
    pub fn append_tail(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Keeps the first `len` entries and drops the rest, keeping the
    /// buffers.
    pub fn truncate(&mut self, len: usize) {
        if len < self.ends.len() {
            let cut = self.start_of(len);
            self.bytes.truncate(cut);
            self.ends.truncate(len);
        }
    }

    /// The buffers' capacity in bytes, for deciding what to keep.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }

    /// Where entry `index` starts in `bytes`.
    fn start_of(&self, index: usize) -> usize {
        match index.checked_sub(1) {
            Some(before) => self.ends.get(before).copied().unwrap_or(self.bytes.len()),
            None => 0,
        }
    }

    /// Moves the first `count` entries to the end of `into`.
    fn move_front(&mut self, count: usize, into: &mut Batch) {
        let cut = self.start_of(count);
        let base = into.bytes.len();
        into.bytes
            .extend_from_slice(self.bytes.get(..cut).unwrap_or_default());
        into.ends.extend(
            self.ends
                .drain(..count.min(self.ends.len()))
                .map(|e| e + base),
        );
        self.bytes.drain(..cut);
        for end in &mut self.ends {
            *end -= cut;
        }
    }

    /// Removes the entries `first..last`.
    fn remove(&mut self, first: usize, last: usize) {
        let (from, to) = (self.start_of(first), self.start_of(last));
        self.bytes.drain(from..to);
        self.ends.drain(first..last);
        for end in self.ends.iter_mut().skip(first) {
            *end -= to - from;
        }
    }

    /// Inserts `stanza` as entry `index`.
    fn insert(&mut self, index: usize, stanza: &[u8]) {
        let at = self.start_of(index);
        self.bytes.splice(at..at, stanza.iter().copied());
        for end in self.ends.iter_mut().skip(index) {
            *end += stanza.len();
        }
        self.ends.insert(index, at + stanza.len());
    }
}

/// Where the output held behind a gate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Waiting for its writes.
    Held,
    /// Its writes are durable: it may leave.
    Released,
    /// A write failed (or an earlier one of the same client did): it never
    /// leaves.
    Withdrawn,
}

/// Why a write a gate waited for did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteFailure {
    /// The store declined it by its rules (a limit, a record that is
    /// gone): an answer for the client, whose stream goes on.
    pub refusal: bool,
    /// What the request the output answered gets instead.
    pub error: StanzaError,
    /// For the log and the operator.
    pub reason: String,
}

/// An iq request from a client, owed exactly one answer: if the writes its
/// answer waits for fail, it gets the error instead.
pub struct Request {
    outbox: Rc<Outbox>,
    iq: Element,
    answered: Cell<bool>,
}

impl Request {
    /// The request `stanza` is, if it is an iq get or set from the client
    /// behind `outbox`.
    pub fn of(stanza: &Element, outbox: &Rc<Outbox>) -> Option<Rc<Request>> {
        let request =
            stanza.name == "iq" && matches!(stanza.attr("type"), Some("get") | Some("set"));
        request.then(|| {
            Rc::new(Request {
                outbox: outbox.clone(),
                iq: stanza.clone(),
                answered: Cell::new(false),
            })
        })
    }

    /// Whether `el`, queued for `outbox`, answers this request.
    pub fn is_answered_by(&self, outbox: &Rc<Outbox>, el: &Element) -> bool {
        Rc::ptr_eq(outbox, &self.outbox)
            && el.name == "iq"
            && matches!(el.attr("type"), Some("result") | Some("error"))
            && el.attr("id") == self.iq.attr("id")
    }

    /// Whether an answer to it has left (or is released to leave).
    pub fn is_answered(&self) -> bool {
        self.answered.get()
    }

    fn error_bytes(&self, failure: &WriteFailure) -> Option<Vec<u8>> {
        let reply = stanza::error_reply(&self.iq, &failure.error)?;
        let mut bytes = Vec::new();
        reply.write_to(&mut bytes, NS_CLIENT);
        Some(bytes)
    }
}

/// What output produced together (one client stanza's handling, one
/// continuation, one room event) waits for: the writes it reports, the
/// writes of whatever it read that is not on disk yet, and the output the
/// same client caused before it. Released or withdrawn once, by the store's
/// group committer (or at once when it waits for nothing).
pub struct Gate {
    state: Cell<Release>,
    /// The commit number everything it waits for is covered by.
    required: Cell<u64>,
    failure: RefCell<Option<WriteFailure>>,
    /// Tells its entries' marks from other gates'.
    id: u64,
    /// The queues holding a region of its entries.
    outboxes: RefCell<Vec<Rc<Outbox>>>,
    /// The queues it wrote into provisionally (see [`Gate::seal`]).
    provisional: RefCell<Vec<Rc<Outbox>>>,
    /// The client request this output may answer.
    request: Option<Rc<Request>>,
    /// Whether an entry behind this gate answers `request`.
    answers: Cell<bool>,
    /// The client whose stanza this handles: a failed write (not a
    /// refusal) ends its stream, and what it caused later is withdrawn.
    origin: Option<Rc<Outbox>>,
    waker: RefCell<Option<Waker>>,
}

impl Gate {
    pub fn new(origin: Option<Rc<Outbox>>, request: Option<Rc<Request>>) -> Rc<Gate> {
        let required = origin.as_ref().map_or(0, |o| o.caused.get());
        Rc::new(Gate {
            state: Cell::new(Release::Held),
            required: Cell::new(required),
            failure: RefCell::new(None),
            id: NEXT_GATE.fetch_add(1, Ordering::Relaxed),
            outboxes: RefCell::new(Vec::new()),
            provisional: RefCell::new(Vec::new()),
            request,
            answers: Cell::new(false),
            origin,
            waker: RefCell::new(None),
        })
    }

    pub fn state(&self) -> Release {
        self.state.get()
    }

    /// The commit number that releases it.
    pub fn required(&self) -> u64 {
        self.required.get()
    }

    /// Makes the output wait for write `seq` as well.
    pub fn require(&self, seq: u64) {
        self.required.set(self.required.get().max(seq));
    }

    /// Whether an entry behind this gate answers its request.
    pub fn answers_request(&self) -> bool {
        self.answers.get()
    }

    /// Queues `el` for `outbox` behind this gate, noting whether it
    /// answers the gate's request.
    pub fn send(self: &Rc<Self>, outbox: &Rc<Outbox>, el: &Element) {
        if let Some(request) = &self.request
            && request.is_answered_by(outbox, el)
        {
            self.answers.set(true);
        }
        outbox.push_held(self, |buf| el.write_to(buf, NS_CLIENT));
    }

    /// Notes that a write this gate waits for failed.
    pub fn write_failed(&self, failure: WriteFailure) {
        let mut slot = self.failure.borrow_mut();
        if slot.is_none() {
            *slot = Some(failure);
        }
    }

    pub fn failure(&self) -> Option<WriteFailure> {
        self.failure.borrow().clone()
    }

    /// Closes the gate to new output, once what it waits for is known:
    /// from now on the client's later output waits for this one's.
    ///
    /// Most sections write nothing (a groupchat message, a chat message to
    /// someone online), so their stanzas are queued *provisionally*: as
    /// released entries, with only a note of where they start. Nothing can
    /// take them before the section ends (the connections run between
    /// sections). Here, if everything the gate waits for is `committed`,
    /// they simply stay released; otherwise they become a held region.
    /// Returns whether the gate is still held (for the committer to watch).
    pub fn seal(self: &Rc<Self>, committed: u64) -> bool {
        if let Some(origin) = &self.origin {
            origin
                .caused
                .set(origin.caused.get().max(self.required.get()));
        }
        let origin_failed = self.origin.as_ref().is_some_and(|o| o.poisoned.get());
        let mut provisional = std::mem::take(&mut *self.provisional.borrow_mut());
        let released =
            self.required.get() <= committed && self.failure.borrow().is_none() && !origin_failed;
        if released {
            provisional.clear();
            self.settle();
        } else {
            let mut outboxes = self.outboxes.borrow_mut();
            for outbox in provisional.drain(..) {
                if outbox.hold_provisional(self) {
                    outboxes.push(outbox);
                }
            }
        }
        // Kept, empty, for the next section (see `take_buffer`).
        *self.provisional.borrow_mut() = provisional;
        !released
    }

    /// The emptied list of provisional queues, for the next gate: a
    /// broadcast to a big room then costs no allocation for it.
    pub fn take_buffer(&self) -> Vec<Rc<Outbox>> {
        std::mem::take(&mut *self.provisional.borrow_mut())
    }

    /// Gives a new gate an empty list to note its provisional queues in.
    pub fn with_buffer(self: Rc<Self>, buffer: Vec<Rc<Outbox>>) -> Rc<Self> {
        if buffer.is_empty() {
            *self.provisional.borrow_mut() = buffer;
        }
        self
    }

    /// Its writes are done (or failed): lets its entries go, or withdraws
    /// them and answers the request with the error.
    pub fn settle(&self) {
        if self.state.get() != Release::Held {
            return;
        }
        let failure = self.failure.borrow().clone();
        let origin_failed = self.origin.as_ref().is_some_and(|o| o.poisoned.get());
        let released = failure.is_none() && !origin_failed;
        self.state.set(if released {
            Release::Released
        } else {
            Release::Withdrawn
        });
        let mut error = None;
        if let Some(failure) = &failure
            && let Some(request) = &self.request
            && !request.answered.get()
        {
            error = request
                .error_bytes(failure)
                .map(|b| (request.outbox.clone(), b));
        }
        if released
            && self.answers.get()
            && let Some(request) = &self.request
        {
            request.answered.set(true);
        }
        let outboxes = std::mem::take(&mut *self.outboxes.borrow_mut());
        for outbox in &outboxes {
            let placed = match &error {
                Some((owed, bytes)) if Rc::ptr_eq(owed, outbox) => {
                    outbox.settle(Some(bytes));
                    true
                }
                _ => {
                    outbox.settle(None);
                    false
                }
            };
            if placed {
                error = None;
            }
        }
        // No entry of this gate was queued for the requester: the error
        // joins the end of its queue.
        if let Some((owed, bytes)) = error {
            owed.send_serialized(&bytes);
        }
        // Only now: a poisoned queue takes nothing more, the error above
        // included.
        if let Some(failure) = &failure
            && !failure.refusal
            && let Some(origin) = &self.origin
        {
            origin.poison();
        }
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Waits until the gate is released or withdrawn.
    pub async fn settled(&self) -> Release {
        std::future::poll_fn(|cx| match self.state.get() {
            Release::Held => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
            done => Poll::Ready(done),
        })
        .await
    }
}

static NEXT_GATE: AtomicU64 = AtomicU64::new(1);

/// Entries from `start` (an entry index in the queue) up to the next
/// region's start wait for `gate` (or, without one, only for the regions
/// before them).
struct Region {
    gate: Option<Rc<Gate>>,
    start: usize,
}

#[derive(Default)]
pub struct Outbox {
    state: RefCell<OutboxState>,
    /// The commit number releasing the last output this client caused:
    /// what it causes next waits for it too (RFC 6120 §10.1 order).
    caused: Cell<u64>,
    /// A write this client caused failed: its stream is ending and what it
    /// caused after that is withdrawn.
    poisoned: Cell<bool>,
}

#[derive(Default)]
struct OutboxState {
    /// Released entries first, then the held ones (see `held`).
    queued: Batch,
    /// The held regions of `queued`, in order.
    held: VecDeque<Region>,
    /// Stanzas taken by the connection since the session began.
    total: u64,
    /// The gate that last queued provisional entries here, and the index
    /// of the first of them.
    provisional: (u64, usize),
    waker: Option<Waker>,
    close: Option<StreamError>,
}

impl OutboxState {
    /// Entries the connection may take.
    fn released(&self) -> usize {
        self.held.front().map_or(self.queued.len(), |r| r.start)
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Appends one entry written by `write`, behind `gate` if given, and
    /// says how the gate must remember this queue.
    fn push(&mut self, gate: Option<&Rc<Gate>>, write: impl FnOnce(&mut Vec<u8>)) -> Noted {
        if self.close.is_some() {
            return Noted::Nothing;
        }
        let start = self.queued.bytes.len();
        write(&mut self.queued.bytes);
        if self.queued.bytes.len() == start {
            return Noted::Nothing;
        }
        let index = self.queued.ends.len();
        self.queued.ends.push(self.queued.bytes.len());
        if self.queued.bytes.len() > MAX_OUTBOX_BYTES {
            self.queued.clear();
            self.held.clear();
            self.close = Some(StreamError::with_text(
                StreamCondition::PolicyViolation,
                format!(
                    "the client is not reading its stream: more than {MAX_OUTBOX_BYTES} \
                     bytes wait for it"
                ),
            ));
            self.wake();
            return Noted::Nothing;
        }
        let noted = match (self.held.back(), gate) {
            // Nothing held here: released, provisionally if for a gate.
            (None, None) => Noted::Nothing,
            (None, Some(gate)) => {
                if self.provisional.0 == gate.id {
                    Noted::Nothing
                } else {
                    self.provisional = (gate.id, index);
                    Noted::Provisional
                }
            }
            (Some(last), gate) => {
                let same = match (&last.gate, gate) {
                    (Some(a), Some(b)) => Rc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if same {
                    Noted::Nothing
                } else {
                    self.held.push_back(Region {
                        gate: gate.cloned(),
                        start: index,
                    });
                    if gate.is_some() {
                        Noted::Region
                    } else {
                        Noted::Nothing
                    }
                }
            }
        };
        if self.held.is_empty() {
            self.wake();
        }
        noted
    }
}

/// What a gate must remember of a queue it wrote into.
enum Noted {
    Nothing,
    /// A held region of its own: settle the queue when the gate settles.
    Region,
    /// Provisional entries: hold them if the gate is not released at once.
    Provisional,
}

impl Outbox {
    pub fn new() -> Rc<Outbox> {
        Rc::new(Outbox::default())
    }

    /// Queues a stanza (behind any held region).
    pub fn send(&self, el: &Element) {
        self.push_with(|buf| el.write_to(buf, NS_CLIENT));
    }

    /// Queues one stanza that is already serialized (with `jabber:client`
    /// as its default namespace).
    pub fn send_serialized(&self, stanza: &[u8]) {
        self.push_with(|buf| buf.extend_from_slice(stanza));
    }

    /// Queues a copy of a broadcast addressed to `to`.
    pub fn send_prepared(&self, prepared: &Prepared, to: &str) {
        self.push_with(|buf| prepared.write_with_to(to, buf));
    }

    /// Queues one stanza that `write` appends to the queue's buffer; it
    /// waits for nothing but the held regions before it.
    pub fn push_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        self.state.borrow_mut().push(None, write);
    }

    /// Queues one stanza behind `gate`: it leaves once the gate is
    /// released (and everything queued before it has left).
    pub fn push_held(self: &Rc<Self>, gate: &Rc<Gate>, write: impl FnOnce(&mut Vec<u8>)) {
        let noted = self.state.borrow_mut().push(Some(gate), write);
        match noted {
            Noted::Nothing => {}
            Noted::Region => gate.outboxes.borrow_mut().push(self.clone()),
            Noted::Provisional => gate.provisional.borrow_mut().push(self.clone()),
        }
    }

    /// Turns `gate`'s provisional entries into a held region (it was not
    /// released when its section ended); false if there are none left.
    fn hold_provisional(&self, gate: &Rc<Gate>) -> bool {
        let mut st = self.state.borrow_mut();
        let (id, start) = st.provisional;
        if id != gate.id || start >= st.queued.len() || !st.held.is_empty() {
            // Gone with a closed queue (or, impossibly, overtaken).
            return false;
        }
        st.provisional = (0, 0);
        st.held.push_back(Region {
            gate: Some(gate.clone()),
            start,
        });
        true
    }

    /// Releases (or drops) the held regions at the front whose gates are
    /// settled. `error`, if given, replaces a withdrawn region: the answer
    /// owed to the request that region was to answer.
    fn settle(&self, mut error: Option<&[u8]>) {
        let mut st = self.state.borrow_mut();
        let before = st.released();
        while let Some(front) = st.held.front() {
            let state = front.gate.as_ref().map_or(Release::Released, |g| g.state());
            let start = front.start;
            match state {
                Release::Held => break,
                Release::Released => {
                    st.held.pop_front();
                }
                Release::Withdrawn => {
                    let end = st.held.get(1).map_or(st.queued.len(), |r| r.start);
                    st.queued.remove(start, end);
                    let mut shift = end - start;
                    if let Some(bytes) = error.take() {
                        // Released where the region was.
                        st.queued.insert(start, bytes);
                        shift -= 1;
                    }
                    st.held.pop_front();
                    for region in st.held.iter_mut() {
                        region.start -= shift;
                    }
                }
            }
        }
        if st.released() > before {
            st.wake();
        }
    }

    /// Asks the connection to end the stream with `error` (e.g. `conflict`
    /// when a newer session takes over the resource, `system-shutdown`).
    pub fn close_with(&self, error: StreamError) {
        let mut st = self.state.borrow_mut();
        if st.close.is_none() {
            st.close = Some(error);
        }
        st.wake();
    }

    /// A write this client caused failed: its stream ends with
    /// `internal-server-error` after what was released before, and its
    /// later output is withdrawn.
    fn poison(&self) {
        self.poisoned.set(true);
        self.close_with(StreamError::with_text(
            StreamCondition::InternalServerError,
            "a change could not be stored; nothing after it was done",
        ));
    }

    /// Wakes the connection task without queuing anything, so it looks at
    /// its deadlines again (its address came under pressure).
    pub fn wake(&self) {
        self.state.borrow_mut().wake();
    }

    pub fn is_closing(&self) -> bool {
        self.state.borrow().close.is_some()
    }

    /// Bytes queued (released or held) and not yet taken by the connection.
    pub fn queued(&self) -> usize {
        self.state.borrow().queued.bytes.len()
    }

    /// Whether a stanza is ready for the connection to take.
    pub fn has_released(&self) -> bool {
        self.state.borrow().released() > 0
    }

    /// Stanzas queued (released or held) and not yet taken.
    pub fn stanza_count(&self) -> usize {
        self.state.borrow().queued.len()
    }

    /// Ready when more than `than` stanzas are queued or a close was
    /// requested: what a session waiting for resumption watches (it must
    /// not take anything, so `poll_ready` would never rest).
    pub fn poll_grown(&self, than: usize, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.borrow_mut();
        if st.queued.len() > than || st.close.is_some() {
            Poll::Ready(())
        } else {
            match &st.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        }
    }

    /// Stanzas the connection took since the session began.
    pub fn total(&self) -> u64 {
        self.state.borrow().total
    }

    /// Ready when there is something to write or a close was requested.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.borrow_mut();
        if st.released() > 0 || st.close.is_some() {
            Poll::Ready(())
        } else {
            match &st.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        }
    }

    /// Moves the released stanzas into `into` (which must be empty). With
    /// nothing held the buffers are swapped: the outbox keeps `into`'s
    /// (the batch written last time) for the next burst.
    pub fn drain(&self, into: &mut Batch) {
        let mut st = self.state.borrow_mut();
        if st.held.is_empty() {
            std::mem::swap(&mut st.queued, into);
            st.total += into.len() as u64;
            return;
        }
        let count = st.released();
        if count == 0 {
            return;
        }
        st.total += count as u64;
        st.queued.move_front(count, into);
        for region in st.held.iter_mut() {
            region.start -= count;
        }
    }

    /// Takes every queued stanza, released or still held for its writes,
    /// into `into` (which must be empty): for a session that ends or is
    /// saved, whose stanzas go elsewhere. What a held region's gate does
    /// later finds nothing here.
    pub fn take_everything(&self, into: &mut Batch) {
        let mut st = self.state.borrow_mut();
        std::mem::swap(&mut st.queued, into);
        st.held.clear();
        st.provisional = (0, 0);
    }

    /// Frees the buffers kept for the next burst, when nothing is queued:
    /// for a connection that has gone quiet.
    pub fn release_spare(&self) {
        let mut st = self.state.borrow_mut();
        if st.queued.is_empty() && st.held.is_empty() {
            st.queued = Batch::default();
            st.held = VecDeque::new();
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

    fn gate() -> Rc<Gate> {
        Gate::new(None, None)
    }

    fn stanzas(batch: &Batch) -> Vec<String> {
        batch
            .stanzas()
            .map(|s| String::from_utf8(s.to_vec()).expect("utf-8"))
            .collect()
    }

    #[test]
    fn held_entries_wait_in_place_and_keep_their_order() {
        let outbox = Outbox::new();
        let mut cx = Context::from_waker(Waker::noop());
        outbox.send_serialized(b"<a/>");
        let first = gate();
        first.require(1);
        outbox.push_held(&first, |b| b.extend_from_slice(b"<b/>"));
        assert!(first.seal(0), "write 1 is not committed");
        // Not held itself, but behind a held entry.
        outbox.send_serialized(b"<c/>");
        let second = gate();
        second.require(1);
        outbox.push_held(&second, |b| b.extend_from_slice(b"<d/>"));
        assert!(second.seal(0));
        assert_eq!(stanzas(&drained(&outbox)), ["<a/>"]);
        assert!(outbox.poll_ready(&mut cx).is_pending());
        // The later gate first: nothing may overtake the earlier one.
        second.settle();
        assert!(drained(&outbox).is_empty());
        first.settle();
        assert!(outbox.poll_ready(&mut cx).is_ready());
        assert_eq!(stanzas(&drained(&outbox)), ["<b/>", "<c/>", "<d/>"]);
        assert_eq!(outbox.total(), 4);
        assert_eq!(outbox.queued(), 0);
    }

    #[test]
    fn output_waiting_for_nothing_is_released_when_its_section_ends() {
        let outbox = Outbox::new();
        let idle = gate();
        outbox.push_held(&idle, |b| b.extend_from_slice(b"<a/>"));
        outbox.push_held(&idle, |b| b.extend_from_slice(b"<b/>"));
        // Queued provisionally: no region, nothing to undo.
        assert!(outbox.state.borrow().held.is_empty());
        assert!(idle.provisional.borrow().len() == 1);
        assert!(!idle.seal(5), "everything it waits for is committed");
        assert_eq!(idle.state(), Release::Released);
        assert_eq!(stanzas(&drained(&outbox)), ["<a/>", "<b/>"]);

        // The same, but a write came later in the section: held after all.
        outbox.send_serialized(b"<c/>");
        let busy = gate();
        outbox.push_held(&busy, |b| b.extend_from_slice(b"<d/>"));
        busy.require(6);
        assert!(busy.seal(5));
        assert_eq!(stanzas(&drained(&outbox)), ["<c/>"]);
        busy.settle();
        assert_eq!(stanzas(&drained(&outbox)), ["<d/>"]);
        assert_eq!(outbox.total(), 4);
    }

    #[test]
    fn a_withdrawn_region_leaves_unsent_and_the_request_gets_the_error() {
        let outbox = Outbox::new();
        let iq = Element::new("iq", NS_CLIENT)
            .with_attr("type", "set")
            .with_attr("id", "r1");
        let request = Request::of(&iq, &outbox);
        let failed = Gate::new(Some(outbox.clone()), request);
        failed.send(
            &outbox,
            &Element::new("iq", NS_CLIENT)
                .with_attr("type", "result")
                .with_attr("id", "r1"),
        );
        assert!(failed.answers_request());
        outbox.push_held(&failed, |b| b.extend_from_slice(b"<push/>"));
        failed.require(1);
        assert!(failed.seal(0));
        let later = Gate::new(Some(outbox.clone()), None);
        assert_eq!(later.required(), 1, "behind the client's earlier output");
        outbox.push_held(&later, |b| b.extend_from_slice(b"<later/>"));
        outbox.send_serialized(b"<other/>");
        failed.write_failed(WriteFailure {
            refusal: true,
            error: StanzaError::new(crate::stanza::Condition::NotAcceptable),
            reason: "too big".into(),
        });
        failed.settle();
        assert_eq!(failed.state(), Release::Withdrawn);
        let out = stanzas(&drained(&outbox));
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].contains("type='error'") && out[0].contains("not-acceptable"));
        // A refusal: the client's later output still goes.
        later.settle();
        assert_eq!(stanzas(&drained(&outbox)), ["<later/>", "<other/>"]);
        assert!(!outbox.is_closing());
    }

    #[test]
    fn a_failure_ends_the_stream_and_withdraws_what_the_client_caused_later() {
        let origin = Outbox::new();
        let other = Outbox::new();
        let failed = Gate::new(Some(origin.clone()), None);
        failed.require(7);
        other.push_held(&failed, |b| b.extend_from_slice(b"<one/>"));
        assert!(failed.seal(0));
        let later = Gate::new(Some(origin.clone()), None);
        // It waits for the earlier output of the same client.
        assert_eq!(later.required(), 7);
        other.push_held(&later, |b| b.extend_from_slice(b"<two/>"));
        failed.write_failed(WriteFailure {
            refusal: false,
            error: StanzaError::new(crate::stanza::Condition::InternalServerError),
            reason: "disk".into(),
        });
        failed.settle();
        later.settle();
        assert_eq!(later.state(), Release::Withdrawn);
        assert!(drained(&other).is_empty());
        assert_eq!(other.queued(), 0);
        let close = origin.take_close().expect("closing");
        assert_eq!(close.condition, StreamCondition::InternalServerError);
    }

    #[test]
    fn everything_can_be_taken_held_or_not() {
        let outbox = Outbox::new();
        outbox.send_serialized(b"<a/>");
        let gate = gate();
        gate.require(1);
        outbox.push_held(&gate, |b| b.extend_from_slice(b"<b/>"));
        assert!(gate.seal(0));
        outbox.send_serialized(b"<c/>");
        let mut all = Batch::default();
        outbox.take_everything(&mut all);
        assert_eq!(stanzas(&all), ["<a/>", "<b/>", "<c/>"]);
        assert_eq!(outbox.stanza_count(), 0);
        // The gate settling later finds nothing to release.
        gate.settle();
        assert!(drained(&outbox).is_empty());
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
        // The text names the limit.
        assert!(err.text.is_some_and(|t| t.contains("4194304 bytes")));
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
