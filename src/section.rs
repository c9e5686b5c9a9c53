//! The section running now: everything one piece of work produces (the
//! handling of one client stanza, one continuation, one room event) is
//! queued behind that section's [`Gate`] (see [`crate::outbox`]), and the
//! writes it makes are the gate's writes. [`crate::durable`] starts and
//! ends sections; handlers reach this through their environment
//! ([`crate::env::Env`]).

use std::cell::RefCell;
use std::rc::Rc;

use crate::outbox::{Gate, Outbox, WriteFailure};
use crate::stanza::{Condition, StanzaError};
use crate::store::{Store, StoreError, Waiter, WriteOp};
use crate::xml::{Element, Prepared};

/// The gate of the section running now, if any.
#[derive(Default)]
pub struct OutputHold {
    gate: RefCell<Option<Rc<Gate>>>,
    /// The list the last gate noted its provisional queues in, emptied,
    /// for the next one.
    spare: RefCell<Vec<Rc<Outbox>>>,
}

/// The stanza error for a write that did not happen: a refusal the store
/// made (a limit, a record that is gone) says so; anything else is the
/// server's fault.
pub fn failure_error(error: &StoreError) -> StanzaError {
    match error {
        StoreError::LimitExceeded(why) => {
            StanzaError::new(Condition::NotAcceptable).with_text(why.clone())
        }
        StoreError::NotFound(_) => StanzaError::new(Condition::ItemNotFound),
        _ => StanzaError::new(Condition::InternalServerError)
            .with_text("the change could not be stored"),
    }
}

/// The committer settles gates: see [`crate::store::Waiter`].
impl Waiter for Gate {
    fn required(&self) -> u64 {
        Gate::required(self)
    }

    fn write_failed(&self, error: &StoreError) {
        if error.is_refusal() {
            log::debug!("a write was refused, its answers are withdrawn: {error}");
        } else {
            log::error!("a write failed, its answers are withdrawn: {error}");
        }
        Gate::write_failed(
            self,
            WriteFailure {
                refusal: error.is_refusal(),
                error: failure_error(error),
                reason: error.to_string(),
            },
        );
    }

    fn settle(&self) {
        Gate::settle(self);
    }
}

impl OutputHold {
    pub fn new() -> Rc<OutputHold> {
        Rc::new(OutputHold::default())
    }

    pub fn is_active(&self) -> bool {
        self.gate.borrow().is_some()
    }

    /// Queues `el` for `outbox`: behind the running section's gate, or (no
    /// section running) behind nothing but what is held there already.
    pub fn send(&self, outbox: &Rc<Outbox>, el: &Element) {
        match &*self.gate.borrow() {
            Some(gate) => gate.send(outbox, el),
            None => outbox.send(el),
        }
    }

    /// Queues a copy of a broadcast for `outbox`, addressed to `to`, like
    /// [`OutputHold::send`].
    pub fn send_prepared(&self, outbox: &Rc<Outbox>, prepared: &Prepared, to: &str) {
        match &*self.gate.borrow() {
            Some(gate) => outbox.push_held(gate, |buf| prepared.write_with_to(to, buf)),
            None => outbox.send_prepared(prepared, to),
        }
    }

    /// Submits `op` to `store`. Inside a section, the section's output
    /// waits for it; outside one it is just queued. Returns its place in
    /// the commit order.
    pub fn persist(&self, store: &Store, op: WriteOp) -> u64 {
        let gate = self.gate.borrow().clone();
        match gate {
            Some(gate) => {
                let seq = store.submit_for(op, gate.clone());
                gate.require(seq);
                seq
            }
            None => store.submit(op).seq(),
        }
    }

    /// Makes the running section's output wait for write `seq` too
    /// (someone else's write, whose result it shows).
    pub fn depend_on(&self, seq: u64) {
        if let Some(gate) = &*self.gate.borrow() {
            gate.require(seq);
        }
    }

    /// Starts a section behind a new gate; `None` if one is running (the
    /// outer one then owns everything produced).
    pub(crate) fn begin(
        &self,
        origin: Option<Rc<Outbox>>,
        request: Option<Rc<crate::outbox::Request>>,
    ) -> Option<Rc<Gate>> {
        let mut current = self.gate.borrow_mut();
        if current.is_some() {
            return None;
        }
        let spare = std::mem::take(&mut *self.spare.borrow_mut());
        let gate = Gate::new(origin, request).with_buffer(spare);
        *current = Some(gate.clone());
        Some(gate)
    }

    /// Ends the running section: its gate is sealed, and handed to the
    /// committer if its output must wait.
    pub(crate) fn end(&self, store: &Store) {
        let Some(gate) = self.gate.borrow_mut().take() else {
            return;
        };
        if gate.seal(store.committed_seq()) {
            store.watch(gate.clone());
        }
        let buffer = gate.take_buffer();
        if buffer.capacity() <= 4096 {
            *self.spare.borrow_mut() = buffer;
        }
    }
}
