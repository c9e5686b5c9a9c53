//! Keeping promises to clients. A stanza that tells someone a thing is stored
//! (an iq result, a roster push, a forwarded subscription request) must not
//! leave before that thing is on disk, yet handlers are plain synchronous
//! code and writes are group-committed in the background.
//!
//! So while one client stanza is routed, the server *holds* every stanza it
//! would send (see [`crate::session::Session::send`]) and collects the tickets
//! of the writes the handlers [`persist`]. When routing returns, the held
//! stanzas are released in the order they were produced, once those writes
//! are durable; only then does the connection read its client's next
//! stanza, so what one client causes stays in order (RFC 6120 §10.1).
//! Stanzas other tasks send meanwhile are not held: they depend on nothing
//! this client is waiting for.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::jid::Jid;
use crate::router;
use crate::server::Server;
use crate::session::{Outbox, Session};
use crate::stanza::{self, Condition, Kind, StanzaError};
use crate::store::{WriteOp, WriteTicket};
use crate::xml::{Element, NS_CLIENT};

/// Work to run once every write submitted before it is on disk.
pub type Continuation = Box<dyn FnOnce(&Server)>;

#[derive(Default)]
pub struct OutputHold {
    active: Cell<bool>,
    held: RefCell<Vec<(Rc<Outbox>, Vec<u8>)>>,
    writes: RefCell<Vec<WriteTicket>>,
    after: RefCell<Vec<Continuation>>,
}

/// What one routed stanza produced: released by [`Held::release`].
pub struct Held {
    outputs: Vec<(Rc<Outbox>, Vec<u8>)>,
    writes: Vec<WriteTicket>,
    after: Vec<Continuation>,
}

impl OutputHold {
    pub fn new() -> Rc<OutputHold> {
        Rc::new(OutputHold::default())
    }

    pub fn is_active(&self) -> bool {
        self.active.get()
    }

    /// Keeps `el` for `outbox` if a hold is active; false means "send now".
    pub fn capture(&self, outbox: &Rc<Outbox>, el: &Element) -> bool {
        if !self.active.get() {
            return false;
        }
        let mut bytes = Vec::with_capacity(256);
        el.write_to(&mut bytes, NS_CLIENT);
        self.held.borrow_mut().push((outbox.clone(), bytes));
        true
    }

    /// Starts holding; false if a hold is already active (the outer one
    /// then owns everything produced).
    fn begin(&self) -> bool {
        !self.active.replace(true)
    }

    fn end(&self) -> Held {
        self.active.set(false);
        Held {
            outputs: std::mem::take(&mut *self.held.borrow_mut()),
            writes: std::mem::take(&mut *self.writes.borrow_mut()),
            after: std::mem::take(&mut *self.after.borrow_mut()),
        }
    }
}

/// Submits `op` to the store. Inside a hold the held stanzas wait for it;
/// outside one it is just queued. Returns its place in the commit order.
pub fn persist(server: &Server, op: WriteOp) -> u64 {
    let ticket = server.store.submit(op);
    let seq = ticket.seq();
    if server.hold.is_active() {
        server.hold.writes.borrow_mut().push(ticket);
    }
    seq
}

/// Runs `work` once every write submitted so far is on disk and the held
/// stanzas are out, e.g. to read what was just stored. Outside a hold
/// (nothing is waiting) it runs at once.
pub fn after_durable(server: &Server, work: Continuation) {
    if server.hold.is_active() {
        // A no-op write: its ticket resolves after everything before it.
        persist(server, Box::new(|_| Ok(())));
        server.hold.after.borrow_mut().push(work);
    } else {
        work(server);
    }
}

impl Held {
    /// Waits for the writes, then sends the held stanzas and runs the
    /// continuations. If a write failed, the in-memory state is reloaded
    /// from disk and the held stanzas are dropped, since they may report
    /// something that was not stored; an iq request then gets
    /// `internal-server-error` through `failure_reply` instead.
    pub async fn release(self, server: &Server, failure_reply: Option<(Rc<Outbox>, Element)>) {
        let mut failed = None;
        for ticket in self.writes {
            if let Err(e) = ticket.wait().await {
                failed = Some(e);
            }
        }
        if let Some(e) = failed {
            log::error!("a write failed, its answers are withdrawn: {e}");
            server.im.forget_all();
            if let Some((outbox, reply)) = failure_reply {
                outbox.send(&reply);
            }
            return;
        }
        for (outbox, bytes) in self.outputs {
            outbox.send_raw(&bytes);
        }
        for work in self.after {
            work(server);
        }
    }
}

/// Routes one stanza from a bound client and releases what it produced once
/// it is durable. The connection awaits this before reading further input.
pub async fn route_from_client(
    server: &Server,
    origin: &Rc<Session>,
    stanza: Element,
    to: Option<Jid>,
) {
    let failure_reply = iq_failure_reply(&stanza).map(|r| (origin.outbox.clone(), r));
    if !server.hold.begin() {
        router::from_client(server, origin, stanza, to);
        return;
    }
    router::from_client(server, origin, stanza, to);
    server.hold.end().release(server, failure_reply).await;
}

fn iq_failure_reply(stanza: &Element) -> Option<Element> {
    let request = Kind::of(stanza) == Some(Kind::Iq)
        && matches!(stanza.attr("type"), Some("get") | Some("set"));
    if !request {
        return None;
    }
    stanza::error_reply(
        stanza,
        &StanzaError::new(Condition::InternalServerError)
            .with_text("the change could not be stored"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::{Store, StoreError};
    use crate::testing::TempDir;

    fn server_with_session(
        dir: &TempDir,
        ex: &smol::LocalExecutor<'static>,
    ) -> (Rc<Server>, Rc<Session>) {
        let mut store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        store.start_committer(ex);
        let server = Server::new(Config::default(), store);
        let account = Jid::parse("romeo@localhost").expect("jid");
        let session = server
            .bind(&account, Some("garden"), Outbox::new())
            .expect("bind");
        (server, session)
    }

    #[test]
    fn held_stanzas_wait_for_their_writes() {
        let dir = TempDir::new("durable");
        let ex: &'static smol::LocalExecutor<'static> =
            Box::leak(Box::new(smol::LocalExecutor::new()));
        let (server, session) = server_with_session(&dir, ex);
        smol::block_on(ex.run(async {
            assert!(server.hold.begin());
            session.send(&Element::new("message", NS_CLIENT).with_attr("id", "1"));
            persist(
                &server,
                crate::store::offline::append_op("romeo@localhost", 1, b"<m/>".to_vec()),
            );
            let ran = Rc::new(Cell::new(false));
            let flag = ran.clone();
            after_durable(&server, Box::new(move |_| flag.set(true)));
            let held = server.hold.end();
            assert_eq!(
                session.outbox.queued(),
                0,
                "nothing leaves before the write"
            );
            assert!(!ran.get());
            held.release(&server, None).await;
            assert!(session.outbox.queued() > 0);
            assert!(ran.get());
            let stored = crate::store::offline::read_after(&server.store, "romeo@localhost", 0);
            assert_eq!(stored.expect("read").len(), 1);
        }));
    }

    #[test]
    fn a_failed_write_withdraws_the_answers() {
        let dir = TempDir::new("durable-fail");
        let ex: &'static smol::LocalExecutor<'static> =
            Box::leak(Box::new(smol::LocalExecutor::new()));
        let (server, session) = server_with_session(&dir, ex);
        smol::block_on(ex.run(async {
            assert!(server.hold.begin());
            session.send(&Element::new("iq", NS_CLIENT).with_attr("id", "ok"));
            persist(
                &server,
                Box::new(|_| Err(StoreError::Corrupt("test".into()))),
            );
            let held = server.hold.end();
            let failure = Element::new("iq", NS_CLIENT).with_attr("id", "failed");
            held.release(&server, Some((session.outbox.clone(), failure)))
                .await;
            let mut bytes = Vec::new();
            session.outbox.take_into(&mut bytes);
            let text = String::from_utf8(bytes).expect("utf8");
            assert!(
                text.contains("id='failed'") && !text.contains("id='ok'"),
                "{text}"
            );
        }));
    }

    #[test]
    fn capture_only_while_active() {
        let hold = OutputHold::new();
        let outbox = Outbox::new();
        let el = Element::new("message", NS_CLIENT);
        assert!(!hold.capture(&outbox, &el));
        assert!(hold.begin());
        assert!(!hold.begin(), "nested begin is refused");
        assert!(hold.capture(&outbox, &el));
        let held = hold.end();
        assert_eq!(held.outputs.len(), 1);
        assert!(!hold.is_active());
        assert_eq!(outbox.queued(), 0);
    }
}
