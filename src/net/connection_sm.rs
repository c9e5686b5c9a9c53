//! The connection's side of stream management (XEP-0198), client state
//! indication (XEP-0352) and server pings (XEP-0199): the state machines'
//! actions carried out against the session, and the timers they need.

use std::time::{Duration, Instant};

use crate::resumption::{Found, Resumption};
use crate::session::{Batch, Carrier, MAX_OUTBOX_BYTES, Outbox};
use crate::stream::sm::{self, StreamManagement};
use crate::stream::{Action, StreamCondition, StreamError};

use super::Connection;

/// A connected client may leave this many times `[c2s] resume_queue_max`
/// stanzas unacknowledged (a burst of room presences arrives faster than
/// its acks) before its stream ends.
const UNACKED_FACTOR: usize = 4;

/// The server's ping of a silent client without stream management.
const PING: &[u8] = b"<iq type='get' id='perch-ping'><ping xmlns='urn:xmpp:ping'/></iq>";

impl Connection {
    /// Whether this connection still carries its session. Taken over by a
    /// resumed stream, it lets go of the session (which lives on) and
    /// closes with `conflict`; suspended by a stopping server, it stops at
    /// once without a word, so the client resumes after the restart.
    pub(super) fn still_carrying(&mut self, actions: &mut Vec<Action>) -> bool {
        let Some(carrier) = &self.carrier else {
            return true;
        };
        if carrier.is_suspended() {
            return false;
        }
        if !carrier.is_taken() {
            return true;
        }
        log::debug!("{}: session resumed on another connection", self.peer);
        // The session and its queue are the new stream's from now on,
        // whatever this one was doing.
        self.session = None;
        self.carrier = None;
        self.outbox = Outbox::new();
        self.in_flight.clear();
        if self.closing {
            return true;
        }
        self.fail(
            StreamError::with_text(
                StreamCondition::Conflict,
                "the session was resumed on another connection",
            ),
            actions,
        );
        actions.clear();
        self.closing = true;
        true
    }

    /// Whether a resumed stream took this connection's session over.
    pub(super) fn taken_over(&self) -> bool {
        self.carrier.as_ref().is_some_and(|c| c.is_taken())
    }

    /// Copies the stream's count of handled stanzas to the session, where
    /// a resumption (on another connection) reads it.
    pub(super) fn sync_handled(&self) {
        if self.taken_over() {
            return;
        }
        if let (Some(session), Some(h)) = (&self.session, self.stream.handled())
            && let Some(sm) = session.sm.borrow_mut().as_mut()
        {
            sm.handled = h;
        }
    }

    /// `<enable/>`: stream management on, resumable if the client asked
    /// and the server allows it.
    pub(super) fn sm_enable(&mut self, resume: bool, max: Option<u32>) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let c2s = &self.server.config().c2s;
        let timeout_secs = if resume && c2s.resume_timeout_secs > 0 {
            max.map_or(c2s.resume_timeout_secs, |m| {
                m.min(c2s.max_resume_timeout_secs)
            })
        } else {
            0
        };
        let id = (timeout_secs > 0).then(|| Resumption::new_id(self.server.ids()));
        if let Some(id) = &id {
            self.server.resumption().register(id, session.clone());
        }
        sm::write_enabled(&mut self.stream_out, id.as_deref(), u64::from(timeout_secs));
        *session.sm.borrow_mut() = Some(StreamManagement::new(
            id,
            Duration::from_secs(u64::from(timeout_secs)),
        ));
    }

    /// `<resume/>`: takes the session over if it exists, is the same
    /// account's and `h` is possible; `<failed/>` otherwise.
    pub(super) fn sm_resume(&mut self, previd: &str, h: u32, actions: &mut Vec<Action>) {
        self.sm_resume_with(previd, h, actions, &mut |out, reply| match reply {
            ResumeReply::Failed(handled) => sm::write_failed(out, "item-not-found", handled),
            ResumeReply::Resumed { handled, .. } => sm::write_resumed(out, previd, handled),
        });
    }

    /// [`Connection::sm_resume`], with `reply` writing the `<failed/>` or
    /// `<resumed/>` (SASL2 puts them in its `<success/>`); the stanzas
    /// sent again follow it. Returns whether the session was resumed.
    pub(super) fn sm_resume_with(
        &mut self,
        previd: &str,
        h: u32,
        actions: &mut Vec<Action>,
        reply: &mut dyn FnMut(&mut Vec<u8>, ResumeReply<'_>),
    ) -> bool {
        let now = Instant::now();
        let found = match self.stream.account() {
            Some(account) => self.server.resumption().find(previd, account, now),
            None => Found::Nothing { h: None },
        };
        // A session that is ending (replaced by a new login of its
        // resource, its account removed) is not resumed.
        let found = match found {
            Found::Session(session)
                if session.outbox.is_closing()
                    || self
                        .server
                        .session(&session.jid)
                        .is_none_or(|bound| bound.id != session.id) =>
            {
                Found::Nothing { h: None }
            }
            other => other,
        };
        let session = match found {
            Found::Session(session) => session,
            Found::Nothing { h: handled } => {
                reply(&mut self.stream_out, ResumeReply::Failed(handled));
                self.stream.resume_result(None);
                return false;
            }
        };
        let acked = session
            .sm
            .borrow_mut()
            .as_mut()
            .map(|sm| acknowledge(&self.server, &session, sm, h));
        match acked {
            Some(Ok(_)) => {}
            Some(Err(too_high)) => {
                // The session stays as it was, for a client that knows
                // what it received.
                self.stream.resume_result(None);
                self.fail(too_high.stream_error(), actions);
                return false;
            }
            None => {
                reply(&mut self.stream_out, ResumeReply::Failed(None));
                self.stream.resume_result(None);
                return false;
            }
        }
        let carrier = Carrier::new();
        session.carry(carrier.clone());
        self.carrier = Some(carrier);
        self.outbox = session.outbox.clone();
        self.auth_deadline = None;
        self.server.connection_authenticated(&self.ticket);
        let handled = {
            let mut slot = session.sm.borrow_mut();
            let Some(sm) = slot.as_mut() else {
                return false;
            };
            sm.waiting_until = None;
            if std::mem::take(&mut sm.saved) {
                // Resumed after a restart: the saved copy is stale now.
                let _ = self
                    .server
                    .store()
                    .submit(crate::store::saved_sessions::delete_op(previd));
            }
            let resumed = ResumeReply::Resumed {
                handled: sm.handled,
                jid: &session.jid,
            };
            reply(&mut self.stream_out, resumed);
            // Everything unacknowledged goes again, first, in order; an
            // `<r/>` after it learns what arrives this time.
            sm.unacked.write_all(&mut self.stream_out);
            sm.request_outstanding = false;
            sm.since_request = 0;
            if !sm.unacked.is_empty() {
                sm.request(&mut self.stream_out);
            }
            sm.handled
        };
        // XEP-0352 §6: a resumed stream starts active; what was held goes
        // out after the resent stanzas, before anything newer.
        session.csi.borrow_mut().wake();
        log::debug!("{}: resumed {}", self.peer, session.jid);
        self.stream
            .resume_result(Some((session.jid.clone(), handled)));
        self.session = Some(session);
        self.ack_due = None;
        true
    }

    /// `<a h/>` from the client.
    pub(super) fn sm_ack(&mut self, h: u32, actions: &mut Vec<Action>) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let c2s = &self.server.config().c2s;
        let (every, secs) = (c2s.ack_request_stanzas, c2s.ack_request_secs);
        let mut slot = session.sm.borrow_mut();
        let Some(sm) = slot.as_mut() else {
            return;
        };
        match acknowledge(&self.server, &session, sm, h) {
            Err(too_high) => {
                drop(slot);
                self.fail(too_high.stream_error(), actions);
            }
            Ok(()) => {
                if sm.unacked.is_empty() {
                    self.ack_due = None;
                } else if sm.should_request(every) {
                    // What went out while the last request was answered.
                    sm.request(&mut self.stream_out);
                    self.ack_due = None;
                } else if self.ack_due.is_none() {
                    self.ack_due = Some(Instant::now() + Duration::from_secs(u64::from(secs)));
                }
            }
        }
    }

    /// `<r/>` from the client: `<a h/>`.
    pub(super) fn sm_answer_request(&mut self) {
        if let Some(h) = self.stream.handled() {
            let only_acks = self.stream_out.is_empty() || self.acks_only;
            sm::write_ack(&mut self.stream_out, h);
            self.acks_only = only_acks;
        }
    }

    /// Asks the client for an ack now (by time, or as a ping).
    pub(super) fn request_ack_now(&mut self) {
        self.ack_due = None;
        if let Some(session) = &self.session
            && let Some(sm) = session.sm.borrow_mut().as_mut()
        {
            sm.request(&mut self.stream_out);
        }
    }

    /// `<active/>` or `<inactive/>` (XEP-0352). What was held stays with
    /// the session until the next write takes it, first.
    pub(super) fn csi(&mut self, active: bool) {
        if let Some(session) = &self.session {
            let mut csi = session.csi.borrow_mut();
            if active {
                csi.wake();
            } else {
                csi.set_inactive();
            }
        }
    }

    /// Runs between taking the session's stanzas and writing them: client
    /// state indication holds back what can wait, stream management counts
    /// what goes and asks for an ack when due (its `<r/>` rides in the
    /// same write).
    pub(super) fn before_write(&mut self, batch: &mut Batch) {
        let Some(session) = self.session.clone() else {
            return;
        };
        {
            let mut csi = session.csi.borrow_mut();
            if csi.is_inactive() || csi.held_len() > 0 {
                let env = CsiLookup {
                    server: &self.server,
                    session: &session,
                };
                csi.filter(batch, &env);
            }
        }
        let mut slot = session.sm.borrow_mut();
        let Some(sm) = slot.as_mut() else {
            return;
        };
        if batch.is_empty() {
            return;
        }
        for stanza in batch.stanzas() {
            sm.sent(stanza);
        }
        let c2s = &self.server.config().c2s;
        // A client that never acknowledges would make the server keep
        // everything it was ever sent: once it leaves more than it was
        // asked for unacknowledged (four times what a waiting session may
        // collect), or 4 MiB, the stream ends after this write and what it
        // did not acknowledge goes to offline storage.
        let max_stanzas = (c2s.resume_queue_max as usize).saturating_mul(UNACKED_FACTOR);
        if sm.unacked.byte_len() > MAX_OUTBOX_BYTES || sm.overdue() > max_stanzas {
            self.unacked_overflow = Some(StreamError::with_text(
                StreamCondition::PolicyViolation,
                format!(
                    "more than {max_stanzas} stanzas or {MAX_OUTBOX_BYTES} bytes sent and not acknowledged"
                ),
            ));
        }
        if sm.should_request(c2s.ack_request_stanzas) {
            let mut r = Vec::new();
            sm.request(&mut r);
            batch.append_tail(&r);
            self.ack_due = None;
        } else if self.ack_due.is_none() && !sm.request_outstanding {
            self.ack_due =
                Some(Instant::now() + Duration::from_secs(u64::from(c2s.ack_request_secs)));
        }
    }

    /// When the silent client is to be pinged, or (pinged) taken as lost.
    pub(super) fn ping_deadline(&self) -> Option<Instant> {
        let c2s = &self.server.config().c2s;
        if c2s.ping_idle_secs == 0 || self.session.is_none() {
            return None;
        }
        Some(match self.ping_sent {
            Some(sent) => sent + Duration::from_secs(u64::from(c2s.ping_timeout_secs)),
            None => self.last_input + Duration::from_secs(u64::from(c2s.ping_idle_secs)),
        })
    }

    pub(super) fn ping_due(&self, now: Instant) -> bool {
        self.ping_sent.is_none() && self.ping_deadline().is_some_and(|d| now >= d)
    }

    /// The ping went unanswered: the connection is dead.
    pub(super) fn ping_expired(&self) -> bool {
        self.ping_sent.is_some() && self.ping_deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Pings the silent client: `<r/>` with stream management (any answer
    /// will do), an XEP-0199 ping without (even an error reply is input).
    pub(super) fn ping(&mut self, now: Instant) {
        self.ping_sent = Some(now);
        let sm_on = self
            .session
            .as_ref()
            .is_some_and(|s| s.sm.borrow().is_some());
        if sm_on {
            self.request_ack_now();
        } else {
            self.stream_out.extend_from_slice(PING);
        }
    }
}

/// What a `<resume/>` came to, for the writer of the reply.
pub(super) enum ResumeReply<'a> {
    /// Nothing to resume; the `h` of the session, if it is known.
    Failed(Option<u32>),
    /// Resumed the session `jid`, which had handled `handled` stanzas.
    Resumed {
        handled: u32,
        jid: &'a crate::jid::Jid,
    },
}

/// What client state indication asks of the server: the user's nick in a
/// room, to tell a mention from chatter.
struct CsiLookup<'a> {
    server: &'a crate::server::Server,
    session: &'a crate::session::Session,
}

impl crate::stream::csi::CsiEnv for CsiLookup<'_> {
    fn nick_in(&self, room: &str) -> Option<String> {
        let room = crate::jid::Jid::parse(room).ok()?;
        self.server.muc().nick_in(&room, &self.session.jid)
    }
}

/// The client handled `h` stanzas: drops them from the unacknowledged
/// queue and deletes the offline messages that covers (kept in storage
/// until now; see `sm::OfflinePending`).
fn acknowledge(
    server: &crate::server::Server,
    session: &crate::session::Session,
    sm: &mut StreamManagement,
    h: u32,
) -> Result<(), sm::TooHigh> {
    sm.ack(h)?;
    let mut done = sm.take_acknowledged_offline(h);
    // Everything it was ever sent is acknowledged: whatever the thresholds
    // say (client state indication may have dropped stanzas they counted),
    // its offline messages arrived.
    if sm.unacked.is_empty()
        && session.outbox.stanza_count() == 0
        && session.csi.borrow().held_len() == 0
    {
        done.append(&mut sm.offline_pending);
    }
    delete_offline(server, &session.jid, done);
    Ok(())
}

fn delete_offline(
    server: &crate::server::Server,
    full: &crate::jid::Jid,
    done: Vec<crate::stream::sm::OfflinePending>,
) {
    for done in done {
        let op =
            crate::store::offline::delete_between_op(full.bare_str(), done.after, done.through);
        // Nobody waits for it: a crash before it commits delivers them
        // again at the next login, which is what at-least-once allows.
        let _ = server.store().submit(op);
    }
}
