//! Delivering what rooms emit, in order, and only once what it announces is
//! stored.
//!
//! While a room is handling a stanza, its output goes to a [`Dispatch`].
//! Stanzas for clients of this server go straight into their queues behind
//! the running section's gate (see [`crate::durable`]); a broadcast is
//! serialized once and only `to` differs per copy. Everything else (remote
//! or missing recipients) is routed once the room is released, since
//! routing may come back into the MUC.
//!
//! The store operations a room emits are submitted when it is released, as
//! one write: the section's output waits for it, and so does the output of
//! the room's next events (the service makes them [`durable::depend_on`]
//! it), so occupants see events in the order they happened and never one
//! that is not on disk yet.

use std::rc::Rc;

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::store::{self, MucWrite};
use crate::xml::{Element, NS_CLIENT, Prepared};

use super::room::Sink;

pub(super) struct Dispatch<'a> {
    env: &'a Env<'a>,
    writes: Vec<MucWrite>,
    /// Stanzas for recipients without a session here.
    remote: Vec<Element>,
    /// Messages queued for sessions whose client is away: push (XEP-0357)
    /// looks at them once the room is released (a notification is routed,
    /// and may come back into the MUC).
    sleeping: Vec<(Element, Rc<Session>)>,
}

impl<'a> Dispatch<'a> {
    pub(super) fn new(env: &'a Env<'a>) -> Dispatch<'a> {
        Dispatch {
            env,
            writes: Vec::new(),
            remote: Vec::new(),
            sleeping: Vec::new(),
        }
    }

    /// A write outside the room's handling: the history of a room that is
    /// emptying, the removal of a destroyed room written again.
    pub(super) fn store_outside(&mut self, write: MucWrite) {
        self.writes.push(write);
    }

    /// Submits the room's writes (what it emitted waits for them) and
    /// routes what was not for a local session. Returns the writes' place
    /// in the commit order, if there were any.
    pub(super) fn finish(self) -> Option<u64> {
        let seq =
            (!self.writes.is_empty()).then(|| self.env.persist(store::muc_write_op(self.writes)));
        for stanza in self.remote {
            route(self.env, stanza);
        }
        for (message, session) in self.sleeping {
            crate::push::message_queued(self.env, &message, &session);
        }
        seq
    }
}

impl Sink for Dispatch<'_> {
    fn emit(&mut self, stanza: Element) {
        match deliver_local(self.env, &stanza) {
            Some(session) if stanza.name == "message" && crate::push::is_hibernated(&session) => {
                self.sleeping.push((stanza, session));
            }
            Some(_) => {}
            None => self.remote.push(stanza),
        }
    }

    fn broadcast(&mut self, stanza: &Element, to: &[&Jid]) {
        self.broadcast_prepared(stanza, &stanza.prepare_with_to(NS_CLIENT), to);
    }

    fn broadcast_prepared(&mut self, stanza: &Element, prepared: &Prepared, to: &[&Jid]) {
        for jid in to {
            match self.env.session(jid) {
                Some(session) => {
                    self.env
                        .hold
                        .send_prepared(&session.outbox, prepared, jid.as_str());
                    if stanza.name == "message" && crate::push::is_hibernated(&session) {
                        self.sleeping.push((stanza.clone(), session));
                    }
                }
                None => {
                    let mut copy = stanza.clone();
                    copy.set_attr("to", jid.as_str());
                    self.remote.push(copy);
                }
            }
        }
    }

    fn reply(&mut self, reply: Element) {
        self.emit(reply);
    }

    fn store(&mut self, op: MucWrite) {
        self.writes.push(op);
    }
}

/// Queues a stanza for a local client: its session; `None` if the
/// recipient is not a bound session here.
fn deliver_local(env: &Env, stanza: &Element) -> Option<Rc<Session>> {
    let to = stanza.attr("to").and_then(|t| Jid::parse(t).ok())?;
    let session = env.session(&to)?;
    session.send(stanza);
    Some(session)
}

/// Delivers one stanza from the service: into a local queue, or routed.
pub(super) fn deliver(env: &Env, stanza: Element) {
    if deliver_local(env, &stanza).is_none() {
        route(env, stanza);
    }
}

fn route(env: &Env, stanza: Element) {
    match stanza.attr("to").and_then(|t| Jid::parse(t).ok()) {
        Some(to) => env.deliver(stanza, &to),
        None => log::debug!("dropping a room stanza without a valid recipient"),
    }
}

/// How often the changed history of occupied persistent rooms is saved: a
/// crash or power cut loses at most this much discussion. Rooms also save
/// it when they leave memory and at shutdown. One write per active room
/// per interval keeps SD card wear low.
pub const HISTORY_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
