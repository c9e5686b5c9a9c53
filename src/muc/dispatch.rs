//! Delivering what rooms emit, in order, and only once what it announces is
//! stored.
//!
//! While a room is handling a stanza, its output goes to a [`Dispatch`].
//! Stanzas for clients of this server are written straight into their
//! outboxes; a broadcast is serialized once and only `to` differs per
//! copy. Everything else (remote or missing recipients) is routed once the
//! room is released, since routing may come back into the MUC.
//!
//! When a room emits a store operation, everything after it waits: the
//! batch is queued, [`run_writer`] commits it (one transaction for all
//! batches queued at that moment, so a burst costs one fsync), then
//! delivers its stanzas. Later output of a room with queued batches queues
//! behind them, so occupants see events in the order they happened.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::fasthash::FastMap;
use crate::jid::Jid;
use crate::router;
use crate::server::Server;
use crate::stanza::{self, Condition, StanzaError};
use crate::store::MucWrite;
use crate::xml::{Element, NS_CLIENT, Prepared};

use super::room::Sink;

enum Out {
    One(Element),
    Many(Element, Vec<Jid>),
    /// The answer to the request (an iq result): turned into an error if
    /// the writes before it failed.
    Reply(Element),
}

pub(super) struct Batch {
    room: Jid,
    writes: Vec<MucWrite>,
    out: Vec<Out>,
}

impl Batch {
    /// A write that announces nothing (a history checkpoint).
    pub(super) fn silent(room: Jid, write: MucWrite) -> Batch {
        Batch {
            room,
            writes: vec![write],
            out: Vec::new(),
        }
    }
}

/// Batches waiting for their writes, oldest first.
#[derive(Default)]
pub(super) struct Pending {
    queue: VecDeque<Batch>,
    /// Batches per room, queued or being written.
    per_room: FastMap<Jid, usize>,
    in_flight: bool,
}

impl Pending {
    pub(super) fn has(&self, room: &Jid) -> bool {
        self.per_room.contains_key(room)
    }

    pub(super) fn push(&mut self, batch: Batch) {
        *self.per_room.entry(batch.room.clone()).or_insert(0) += 1;
        self.queue.push_back(batch);
    }

    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty() && !self.in_flight
    }

    fn done(&mut self, room: &Jid) {
        if let Some(n) = self.per_room.get_mut(room) {
            *n -= 1;
            if *n == 0 {
                self.per_room.remove(room);
            }
        }
    }
}

pub(super) struct Dispatch<'a> {
    server: &'a Server,
    /// Output is held back: a store operation was emitted, or the room
    /// already has batches waiting.
    holding: bool,
    writes: Vec<MucWrite>,
    out: Vec<Out>,
}

impl<'a> Dispatch<'a> {
    pub(super) fn new(server: &'a Server, room_has_pending: bool) -> Dispatch<'a> {
        Dispatch {
            server,
            holding: room_has_pending,
            writes: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Queues a broadcast behind the writes it must wait for.
    fn hold_broadcast(&mut self, stanza: &Element, to: &[&Jid]) {
        self.out.push(Out::Many(
            stanza.clone(),
            to.iter().map(|j| (*j).clone()).collect(),
        ));
    }

    /// Saving the history of a room that is emptying: it must be written,
    /// but holds back nothing already sent.
    pub(super) fn store_history(&mut self, write: MucWrite) {
        self.writes.push(write);
    }

    /// Either a batch to queue, or `None` after delivering what is left.
    pub(super) fn into_batch(self, room: &Jid) -> Option<Batch> {
        if self.holding || !self.writes.is_empty() {
            return Some(Batch {
                room: room.clone(),
                writes: self.writes,
                out: self.out,
            });
        }
        deliver_all(self.server, self.out, true);
        None
    }
}

impl Sink for Dispatch<'_> {
    fn send(&mut self, stanza: Element) {
        if self.holding || !deliver_local(self.server, &stanza) {
            self.out.push(Out::One(stanza));
        }
    }

    fn broadcast(&mut self, stanza: &Element, to: &[&Jid]) {
        if self.holding {
            self.hold_broadcast(stanza, to);
        } else {
            self.broadcast_prepared(stanza, &stanza.prepare_with_to(NS_CLIENT), to);
        }
    }

    fn broadcast_prepared(&mut self, stanza: &Element, prepared: &Prepared, to: &[&Jid]) {
        if self.holding {
            return self.hold_broadcast(stanza, to);
        }
        let remote = broadcast_local(self.server, prepared, to.iter().copied());
        if !remote.is_empty() {
            self.out.push(Out::Many(stanza.clone(), remote));
        }
    }

    fn reply(&mut self, reply: Element) {
        if self.holding {
            self.out.push(Out::Reply(reply));
        } else {
            self.send(reply);
        }
    }

    fn store(&mut self, op: MucWrite) {
        self.holding = true;
        self.writes.push(op);
    }
}

/// Writes a stanza straight into a local client's outbox; `false` if the
/// recipient is not a bound session here. Straight, not through
/// `Session::send`: a room already waits for its own writes before it
/// emits, and its stanzas must keep the order it emitted them in, which the
/// output hold of `durable` (for what one client stanza causes) would not
/// keep next to the broadcasts written below.
fn deliver_local(server: &Server, stanza: &Element) -> bool {
    let Some(to) = stanza.attr("to").and_then(|t| Jid::parse(t).ok()) else {
        return false;
    };
    match server.session(&to) {
        Some(session) => {
            session.outbox.send(stanza);
            true
        }
        None => false,
    }
}

/// Writes a copy of the once-serialized stanza addressed to each local
/// recipient; returns the recipients that need routing.
fn broadcast_local<'j>(
    server: &Server,
    prepared: &Prepared,
    to: impl Iterator<Item = &'j Jid>,
) -> Vec<Jid> {
    let mut remote = Vec::new();
    for jid in to {
        match server.session(jid) {
            Some(session) => session.outbox.send_prepared(prepared, jid.as_str()),
            None => remote.push(jid.clone()),
        }
    }
    remote
}

fn deliver_all(server: &Server, out: Vec<Out>, written: bool) {
    let one = |stanza: Element| deliver(server, stanza);
    for o in out {
        match o {
            Out::One(stanza) => one(stanza),
            Out::Reply(reply) if written => one(reply),
            Out::Reply(reply) => {
                // The change was not stored: the requester must not be
                // told it was.
                let failed = StanzaError::new(Condition::InternalServerError)
                    .with_text("the change could not be saved");
                if let Some(error) = failure_for(&reply, &failed) {
                    one(error);
                }
            }
            Out::Many(stanza, to) => {
                let prepared = stanza.prepare_with_to(NS_CLIENT);
                for jid in broadcast_local(server, &prepared, to.iter()) {
                    let mut copy = stanza.clone();
                    copy.set_attr("to", jid.as_str());
                    route(server, copy);
                }
            }
        }
    }
}

/// The error answer for a request whose result was `reply`.
fn failure_for(reply: &Element, error: &StanzaError) -> Option<Element> {
    // `error_reply` answers a stanza: give it the request's addressing.
    let mut request = Element::new(reply.name.clone(), reply.ns.clone()).with_attr("type", "set");
    if let Some(id) = reply.attr("id") {
        request.set_attr("id", id);
    }
    if let Some(to) = reply.attr("to") {
        request.set_attr("from", to);
    }
    if let Some(from) = reply.attr("from") {
        request.set_attr("to", from);
    }
    stanza::error_reply(&request, error)
}

/// Delivers one stanza from the service: into a local outbox, or routed.
pub(super) fn deliver(server: &Server, stanza: Element) {
    if !deliver_local(server, &stanza) {
        route(server, stanza);
    }
}

fn route(server: &Server, stanza: Element) {
    match stanza.attr("to").and_then(|t| Jid::parse(t).ok()) {
        Some(to) => router::deliver(server, stanza, &to),
        None => log::debug!("dropping a room stanza without a valid recipient"),
    }
}

/// Commits queued room writes and then delivers what waited for them.
/// Runs for the server's lifetime; [`super::Service::flush`] waits for it
/// to catch up.
/// How often the changed history of occupied persistent rooms is saved: a
/// crash or power cut loses at most this much discussion. Rooms also save
/// it when they leave memory and at shutdown. One write per active room
/// per interval keeps SD card wear low.
pub const HISTORY_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Saves changed room history every [`HISTORY_SAVE_INTERVAL`].
pub async fn run_history_saver(server: Rc<Server>) {
    loop {
        smol::Timer::after(HISTORY_SAVE_INTERVAL).await;
        let queued = server.muc.save_changed_history();
        if queued > 0 {
            log::debug!("saving the history of {queued} chat rooms");
        }
    }
}

pub async fn run_writer(server: Rc<Server>) {
    let service = &server.muc;
    loop {
        let batches: Vec<Batch> = {
            let mut pending = service.pending.borrow_mut();
            let batches: Vec<Batch> = pending.queue.drain(..).collect();
            pending.in_flight = !batches.is_empty();
            batches
        };
        if batches.is_empty() {
            if service.wake.1.recv().await.is_err() {
                return;
            }
            continue;
        }
        let mut writes = Vec::new();
        let mut deliveries = Vec::with_capacity(batches.len());
        for batch in batches {
            writes.extend(batch.writes);
            deliveries.push((batch.room, batch.out));
        }
        let written = if writes.is_empty() {
            true
        } else {
            let count = writes.len();
            match server.store.muc_rooms().write(writes).await {
                Ok(()) => true,
                Err(e) => {
                    log::error!("saving {count} chat room changes failed: {e}");
                    false
                }
            }
        };
        for (room, out) in deliveries {
            deliver_all(&server, out, written);
            service.pending.borrow_mut().done(&room);
            service.maybe_unload(&room);
        }
        service.pending.borrow_mut().in_flight = false;
    }
}
