//! A stream-managed session whose connection was lost, waiting for its
//! client to resume it (XEP-0198 §4), and the end of a session.
//!
//! While it waits the session stays bound: it counts as available, stays
//! in its rooms, and what is sent to it collects in its queue. The wait
//! ends when a resumed stream takes the session over, when the server
//! stops (the session is then saved for the next start), or when the
//! session ends: its timeout passes, its queue outgrows
//! `[c2s] resume_queue_max`, or it is closed (a new login took its
//! resource, the account was removed).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Instant, SystemTime};

use futures_lite::future;
use smol::Timer;

use crate::durable;
use crate::im;
use crate::server::Server;
use crate::session::{Batch, Carrier, MAX_OUTBOX_BYTES, Session};

pub struct Hibernating {
    server: Rc<Server>,
    session: Rc<Session>,
    carrier: Rc<Carrier>,
    until: Instant,
}

impl Hibernating {
    /// The session's connection is gone; from now on it waits its
    /// resumption timeout (the caller counted it with
    /// `Server::start_waiting`).
    pub fn start(server: Rc<Server>, session: Rc<Session>) -> Hibernating {
        let timeout = session
            .sm
            .borrow()
            .as_ref()
            .map(|sm| sm.resume_timeout)
            .unwrap_or_default();
        log::debug!(
            "{} waits {} s for resumption",
            session.jid,
            timeout.as_secs()
        );
        Hibernating::until(server, session, Instant::now() + timeout)
    }

    /// The session waits until `until` (one restored at start-up keeps
    /// what was left of its wait).
    pub fn until(server: Rc<Server>, session: Rc<Session>, until: Instant) -> Hibernating {
        if let Some(sm) = session.sm.borrow_mut().as_mut() {
            sm.waiting_until = Some(until);
        }
        let carrier = Carrier::new();
        session.carry(carrier.clone());
        Hibernating {
            server,
            session,
            carrier,
            until,
        }
    }

    /// Waits until the session is resumed, saved, or ends.
    pub async fn wait(self) {
        let server = self.server.clone();
        self.wait_counted().await;
        server.stop_waiting();
    }

    async fn wait_counted(self) {
        let max = self.server.config().c2s.resume_queue_max as usize;
        let mut timer = Timer::at(self.until);
        let why = loop {
            let (arrived, bytes) = waiting(&self.session);
            if arrived > max {
                break "its queue is full ([c2s] resume_queue_max)";
            }
            // Half the outbox's own limit, so the session ends (and its
            // stanzas are rerouted) before the outbox would drop them.
            if bytes > MAX_OUTBOX_BYTES / 2 {
                break "its queue is full (2 MiB)";
            }
            if self.session.outbox.is_closing() {
                break "it was closed";
            }
            let outbox_len = self.session.outbox.stanza_count();
            let woke = future::poll_fn(|cx| {
                if self.carrier.poll_signal(cx).is_ready() {
                    return Poll::Ready(Woke::Carrier);
                }
                if Pin::new(&mut timer).poll(cx).is_ready() {
                    return Poll::Ready(Woke::Expired);
                }
                if self.session.outbox.poll_grown(outbox_len, cx).is_ready() {
                    return Poll::Ready(Woke::Queued);
                }
                Poll::Pending
            })
            .await;
            match woke {
                // Resumed, or kept for the restart.
                Woke::Carrier => return,
                Woke::Expired => break "it was not resumed in time",
                Woke::Queued => {}
            }
        };
        if !self.session.is_carried_by(&self.carrier) {
            return;
        }
        log::debug!("{}: session ends: {why}", self.session.jid);
        end_session(&self.server, self.session).await;
    }
}

enum Woke {
    Carrier,
    Expired,
    Queued,
}

/// What waits for the client: the stanzas that arrived since its
/// connection was lost (queued, or held back while it was inactive), and
/// the bytes of everything, unacknowledged ones included.
fn waiting(session: &Session) -> (usize, usize) {
    let unacked = session
        .sm
        .borrow()
        .as_ref()
        .map_or(0, |sm| sm.unacked.byte_len());
    let csi = session.csi.borrow();
    let arrived = csi.held_len() + session.outbox.stanza_count();
    (
        arrived,
        unacked + csi.held_bytes() + session.outbox.queued(),
    )
}

/// Ends a session: what it was sent and did not acknowledge, or never
/// got, goes where XEP-0198 §4 and RFC 6121 say (`im::undelivered`); then
/// it goes unavailable and is unbound.
pub async fn end_session(server: &Server, session: Rc<Session>) {
    let now = Instant::now();
    let mut stanzas = Vec::new();
    let mut kept_offline = Vec::new();
    if let Some(sm) = session.sm.borrow_mut().as_mut() {
        kept_offline = std::mem::take(&mut sm.offline_pending);
        if let Some(id) = &sm.id {
            server.resumption().ended(id, &session.jid, sm.handled, now);
            if std::mem::take(&mut sm.saved) {
                let _ = server
                    .store()
                    .submit(crate::store::saved_sessions::delete_op(id));
            }
        }
        stanzas.extend(sm.unacked.take_all());
    }
    let held = session.csi.borrow_mut().take_held();
    stanzas.extend(held.stanzas().map(<[u8]>::to_vec));
    let mut queued = Batch::default();
    session.outbox.take_everything(&mut queued);
    stanzas.extend(queued.stanzas().map(<[u8]>::to_vec));
    let elements: Vec<_> = stanzas
        .iter()
        .filter_map(|s| im::undelivered::parse_serialized(s))
        .collect();
    let failed_at = SystemTime::now();
    let end = move |env: &crate::env::Env| {
        // Offline messages it never acknowledged are still stored: the
        // next login gets them again (and they are not stored twice).
        let kept = !kept_offline.is_empty();
        if kept {
            im::offline::not_delivered(env, &session.jid.to_bare(), &kept_offline);
        }
        if !elements.is_empty() {
            im::undelivered::session_ending(env, &session, elements, failed_at, kept);
        }
        im::presence::session_ended(env, &session);
        env.sessions.unbind(&session);
    };
    // Nobody waits for an answer, but what the end of the session stores
    // (offline messages, the last logout) follows the same rules as the
    // rest.
    let _ = durable::run(server, Box::new(end)).await;
}
