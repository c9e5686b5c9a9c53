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
//! stanza, so what one client causes stays in order (RFC 6120 §10.1) and a
//! `get` right after a `set` sees what the `set` stored. Stanzas other
//! tasks send meanwhile are not held: they depend on nothing this client is
//! waiting for.
//!
//! Work that must come after the writes (reading back what was stored,
//! closing streams once the answer is out) is an [`after_durable`]
//! continuation; work that must first await something off the event loop
//! (hashing a password) is [`after_async`]. Both still belong to the
//! client's stanza: they run, each under a hold of its own, before the
//! connection reads on. Code outside a connection (the admin socket, the
//! end of a session) wraps its work in [`run`] to get the same guarantees.
//!
//! If a write fails, the stanzas held with it are dropped (they may report
//! what was not stored), the in-memory IM state is reloaded from disk, and
//! an iq request that has not been answered yet gets an error instead.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;

use crate::jid::Jid;
use crate::router;
use crate::server::Server;
use crate::session::{Outbox, Session};
use crate::stanza::{self, Condition, Kind, StanzaError};
use crate::store::{StoreError, WriteOp, WriteTicket};
use crate::xml::{Element, NS_CLIENT};

/// Work to run once every write submitted before it is on disk.
pub type Continuation = Box<dyn FnOnce(&Server)>;

/// Work off the event loop, yielding what to do with its result.
type Pending = Pin<Box<dyn Future<Output = Continuation>>>;

/// What a section scheduled to follow it.
enum Next {
    Now(Continuation),
    Later(Pending),
}

#[derive(Default)]
pub struct OutputHold {
    active: Cell<bool>,
    held: RefCell<Vec<(Rc<Outbox>, Range<usize>)>>,
    /// The serialized held stanzas, back to back (`held` has the ranges):
    /// one buffer, reused from section to section, instead of one
    /// allocation per stanza.
    held_bytes: RefCell<Vec<u8>>,
    writes: RefCell<Vec<WriteTicket>>,
    next: RefCell<Vec<Next>>,
    /// The client request still owed an answer, if any, and whether a
    /// stanza held in this section answers it.
    request: RefCell<Option<Rc<Request>>>,
    answered: Cell<bool>,
}

/// What one section produced.
#[derive(Default)]
struct Held {
    outputs: Vec<(Rc<Outbox>, Range<usize>)>,
    bytes: Vec<u8>,
    writes: Vec<WriteTicket>,
    next: Vec<Next>,
    answered: bool,
}

/// An iq request from a client, owed exactly one answer: if a write fails
/// before a reply to it went out, it gets the error for that failure.
pub struct Request {
    outbox: Rc<Outbox>,
    iq: Element,
}

impl Request {
    /// The request `stanza` is, if it is an iq get or set from the client
    /// behind `outbox`.
    pub fn of(stanza: &Element, outbox: &Rc<Outbox>) -> Option<Request> {
        let request = Kind::of(stanza) == Some(Kind::Iq)
            && matches!(stanza.attr("type"), Some("get") | Some("set"));
        request.then(|| Request {
            outbox: outbox.clone(),
            iq: stanza.clone(),
        })
    }

    fn is_answered_by(&self, outbox: &Rc<Outbox>, el: &Element) -> bool {
        Rc::ptr_eq(outbox, &self.outbox)
            && el.name == "iq"
            && matches!(el.attr("type"), Some("result") | Some("error"))
            && el.attr("id") == self.iq.attr("id")
    }

    fn fail(&self, error: &StoreError) {
        if let Some(reply) = stanza::error_reply(&self.iq, &failure_error(error)) {
            self.outbox.send(&reply);
        }
    }
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
        if let Some(request) = &*self.request.borrow()
            && request.is_answered_by(outbox, el)
        {
            self.answered.set(true);
        }
        let mut bytes = self.held_bytes.borrow_mut();
        let start = bytes.len();
        el.write_to(&mut bytes, NS_CLIENT);
        let range = start..bytes.len();
        self.held.borrow_mut().push((outbox.clone(), range));
        true
    }

    /// Starts holding; false if a hold is already active (the outer one
    /// then owns everything produced).
    fn begin(&self, request: Option<Rc<Request>>) -> bool {
        if self.active.replace(true) {
            return false;
        }
        *self.request.borrow_mut() = request;
        self.answered.set(false);
        true
    }

    /// Takes back the emptied buffers of a released section for the next
    /// one, unless a section already has new ones or they grew large (a
    /// big burst should not pin its memory).
    fn recycle(&self, mut outputs: Vec<(Rc<Outbox>, Range<usize>)>, mut bytes: Vec<u8>) {
        const KEEP_BYTES: usize = 16 << 10;
        outputs.clear();
        bytes.clear();
        let mut held = self.held.borrow_mut();
        if held.capacity() == 0 && outputs.capacity() <= 64 {
            *held = outputs;
        }
        let mut held_bytes = self.held_bytes.borrow_mut();
        if held_bytes.capacity() == 0 && bytes.capacity() <= KEEP_BYTES {
            *held_bytes = bytes;
        }
    }

    fn end(&self) -> Held {
        self.active.set(false);
        self.request.borrow_mut().take();
        Held {
            outputs: std::mem::take(&mut *self.held.borrow_mut()),
            bytes: std::mem::take(&mut *self.held_bytes.borrow_mut()),
            writes: std::mem::take(&mut *self.writes.borrow_mut()),
            next: std::mem::take(&mut *self.next.borrow_mut()),
            answered: self.answered.replace(false),
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
/// stanzas are out, e.g. to read what was just stored or to close streams
/// after an answer; what it sends is held until its own writes are
/// durable. Outside a hold (nothing is waiting) it runs at once.
pub fn after_durable(server: &Server, work: Continuation) {
    if server.hold.is_active() {
        // A no-op write: its ticket resolves after everything before it.
        persist(server, Box::new(|_| Ok(())));
        server.hold.next.borrow_mut().push(Next::Now(work));
    } else {
        work(server);
    }
}

/// Awaits `work` (something that must not run on the event loop, such as
/// a password hash) after the held stanzas are out, then runs `then` with
/// its result under a hold of its own, all before the client's next stanza
/// is read. An iq request answered in `then` gets the error instead if a
/// write `then` makes fails. Only a hold can wait for this: outside one it
/// is a bug, logged, and the work is dropped.
pub fn after_async<T: 'static>(
    server: &Server,
    work: impl Future<Output = T> + 'static,
    then: impl FnOnce(&Server, T) + 'static,
) {
    if !server.hold.is_active() {
        log::error!("asynchronous work scheduled outside a hold was dropped");
        return;
    }
    let pending: Pending = Box::pin(async move {
        let value = work.await;
        Box::new(move |server: &Server| then(server, value)) as Continuation
    });
    server.hold.next.borrow_mut().push(Next::Later(pending));
}

/// Runs `work` under a hold, releases what it sent once its writes are
/// durable, then everything it scheduled ([`after_durable`],
/// [`after_async`]) in order, each under a hold of its own. `request` is
/// the client request this serves, if any. Returns the first write error;
/// the work scheduled after a failed section is dropped.
pub async fn run(
    server: &Server,
    work: Continuation,
    request: Option<Request>,
) -> Result<(), StoreError> {
    run_sections(server, work, request).await
}

/// [`run`] with the first section's work unboxed: a client's stanza is
/// routed without an allocation for the closure or the queue.
async fn run_sections(
    server: &Server,
    first: impl FnOnce(&Server),
    request: Option<Request>,
) -> Result<(), StoreError> {
    let mut owed = request.map(Rc::new);
    let mut first = Some(first);
    let mut queue: VecDeque<Next> = VecDeque::new();
    loop {
        let mut held = match first.take() {
            Some(work) => section(server, work, owed.clone()),
            None => {
                let Some(next) = queue.pop_front() else {
                    break;
                };
                let work = match next {
                    Next::Now(work) => work,
                    Next::Later(pending) => pending.await,
                };
                section(server, work, owed.clone())
            }
        };
        if let Err(e) = wait_for(held.writes).await {
            if e.is_refusal() {
                log::debug!("a write was refused, its answers are withdrawn: {e}");
            } else {
                log::error!("a write failed, its answers are withdrawn: {e}");
            }
            server.im.forget_all();
            if let Some(request) = owed {
                request.fail(&e);
            }
            return Err(e);
        }
        if held.answered {
            owed = None;
        }
        for (outbox, range) in held.outputs.drain(..) {
            outbox.send_serialized(held.bytes.get(range).unwrap_or_default());
        }
        server.hold.recycle(held.outputs, held.bytes);
        for next in held.next.into_iter().rev() {
            queue.push_front(next);
        }
    }
    Ok(())
}

fn section(server: &Server, work: impl FnOnce(&Server), request: Option<Rc<Request>>) -> Held {
    if !server.hold.begin(request) {
        // Inside another section (not reachable from `run`, which only
        // starts sections between awaits): the outer hold takes it all.
        work(server);
        return Held::default();
    }
    work(server);
    server.hold.end()
}

/// Waits for every ticket; the first error, if any.
async fn wait_for(writes: Vec<WriteTicket>) -> Result<(), StoreError> {
    let mut failed = None;
    for ticket in writes {
        if let Err(e) = ticket.wait().await
            && failed.is_none()
        {
            failed = Some(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Routes one stanza from a bound client and releases what it produced once
/// it is durable. The connection awaits this before reading further input.
pub async fn route_from_client(
    server: &Server,
    origin: &Rc<Session>,
    stanza: Element,
    to: Option<Jid>,
) {
    let request = Request::of(&stanza, &origin.outbox);
    let origin = origin.clone();
    let route = move |server: &Server| router::from_client(server, &origin, stanza, to);
    // A failure is logged and answered inside `run_sections`.
    let _ = run_sections(server, route, request).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::Store;
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

    async fn create_romeo(server: &Server) {
        let creds = crate::sasl::Credentials::derive("pw", 4096).expect("derive");
        server
            .store
            .accounts()
            .create("romeo@localhost", &creds)
            .await
            .expect("create");
    }

    fn executor() -> &'static smol::LocalExecutor<'static> {
        Box::leak(Box::new(smol::LocalExecutor::new()))
    }

    fn sent(session: &Session) -> String {
        let mut batch = crate::outbox::Batch::default();
        session.outbox.drain(&mut batch);
        String::from_utf8(batch.bytes().to_vec()).expect("utf8")
    }

    fn iq(ty: &str, id: &str) -> Element {
        Element::new("iq", NS_CLIENT)
            .with_attr("type", ty)
            .with_attr("id", id)
    }

    fn failing_write() -> WriteOp {
        Box::new(|_| Err(StoreError::Corrupt("test".into())))
    }

    #[test]
    fn held_stanzas_wait_for_their_writes() {
        let dir = TempDir::new("durable");
        let ex = executor();
        let (server, session) = server_with_session(&dir, ex);
        smol::block_on(ex.run(async {
            create_romeo(&server).await;
            assert!(server.hold.begin(None));
            session.send(&Element::new("message", NS_CLIENT).with_attr("id", "1"));
            persist(
                &server,
                crate::store::offline::append_op("romeo@localhost", 1, b"<m/>".to_vec()),
            );
            let held = server.hold.end();
            assert_eq!(
                session.outbox.queued(),
                0,
                "nothing leaves before the write"
            );
            assert_eq!(held.writes.len(), 1);
            assert_eq!(held.outputs.len(), 1);
        }));
    }

    #[test]
    fn continuations_run_after_the_writes_and_are_held_themselves() {
        let dir = TempDir::new("durable-after");
        let ex = executor();
        let (server, session) = server_with_session(&dir, ex);
        smol::block_on(ex.run(async {
            create_romeo(&server).await;
            let order = Rc::new(RefCell::new(Vec::new()));
            let log = order.clone();
            let s = session.clone();
            let work = Box::new(move |server: &Server| {
                s.send(&Element::new("message", NS_CLIENT).with_attr("id", "first"));
                persist(
                    server,
                    crate::store::offline::append_op("romeo@localhost", 1, b"<m/>".to_vec()),
                );
                let log = log.clone();
                let s = s.clone();
                after_durable(
                    server,
                    Box::new(move |server| {
                        // What the first section stored is on disk now.
                        let stored =
                            crate::store::offline::read_after(&server.store, "romeo@localhost", 0);
                        log.borrow_mut()
                            .push(format!("stored {}", stored.map(|m| m.len()).unwrap_or(0)));
                        assert!(server.hold.is_active(), "a continuation is held too");
                        s.send(&Element::new("message", NS_CLIENT).with_attr("id", "second"));
                    }),
                );
            });
            run(&server, work, None).await.expect("durable");
            assert_eq!(*order.borrow(), vec!["stored 1".to_string()]);
            let text = sent(&session);
            let first = text.find("id='first'").expect("first");
            let second = text.find("id='second'").expect("second");
            assert!(first < second, "{text}");
        }));
    }

    #[test]
    fn a_failed_write_withdraws_the_answers() {
        let dir = TempDir::new("durable-fail");
        let ex = executor();
        let (server, session) = server_with_session(&dir, ex);
        smol::block_on(ex.run(async {
            let request = Request::of(&iq("set", "failed"), &session.outbox);
            let s = session.clone();
            let work = Box::new(move |server: &Server| {
                s.send(&iq("result", "failed"));
                s.send(&Element::new("message", NS_CLIENT).with_attr("id", "push"));
                persist(server, failing_write());
                after_durable(server, Box::new(|_| panic!("must not run after a failure")));
            });
            assert!(run(&server, work, request).await.is_err());
            let text = sent(&session);
            assert!(
                text.contains("type='error'")
                    && text.contains("internal-server-error")
                    && !text.contains("type='result'")
                    && !text.contains("id='push'"),
                "{text}"
            );
        }));
    }

    #[test]
    fn refusals_keep_their_meaning() {
        assert_eq!(
            failure_error(&StoreError::LimitExceeded("too big".into())).condition,
            Condition::NotAcceptable
        );
        assert_eq!(
            failure_error(&StoreError::NotFound("account x".into())).condition,
            Condition::ItemNotFound
        );
        assert_eq!(
            failure_error(&StoreError::CommitAborted).condition,
            Condition::InternalServerError
        );
    }

    #[test]
    fn asynchronous_work_answers_in_a_section_of_its_own() {
        let dir = TempDir::new("durable-async");
        let ex = executor();
        let (server, session) = server_with_session(&dir, ex);
        smol::block_on(ex.run(async {
            // The write made after the await fails: the request, not yet
            // answered, gets the error.
            let request = Request::of(&iq("set", "a1"), &session.outbox);
            let s = session.clone();
            let work = Box::new(move |server: &Server| {
                after_async(server, async { 7 }, move |server, n: i32| {
                    assert_eq!(n, 7);
                    persist(server, failing_write());
                    s.send(&iq("result", "a1"));
                });
            });
            assert!(run(&server, work, request).await.is_err());
            let text = sent(&session);
            assert!(
                text.contains("id='a1'") && text.contains("internal-server-error"),
                "{text}"
            );

            // Answered in a section whose writes are durable: a later
            // failure adds no second answer.
            let request = Request::of(&iq("set", "a2"), &session.outbox);
            let s = session.clone();
            let work = Box::new(move |server: &Server| {
                s.send(&iq("result", "a2"));
                after_async(server, async {}, |server, ()| {
                    persist(server, failing_write());
                });
            });
            assert!(run(&server, work, request).await.is_err());
            let text = sent(&session);
            assert_eq!(text.matches("id='a2'").count(), 1, "{text}");
            assert!(!text.contains("type='error'"), "{text}");
        }));
    }

    #[test]
    fn outside_a_hold_nothing_is_held() {
        let dir = TempDir::new("durable-outside");
        let ex = executor();
        let (server, session) = server_with_session(&dir, ex);
        let ran = Rc::new(Cell::new(false));
        let flag = ran.clone();
        after_durable(&server, Box::new(move |_| flag.set(true)));
        assert!(ran.get());
        session.send(&Element::new("message", NS_CLIENT));
        assert!(session.outbox.queued() > 0);
        after_async(&server, async {}, |_, ()| panic!("dropped, not run"));
    }

    #[test]
    fn capture_only_while_active() {
        let hold = OutputHold::new();
        let outbox = Outbox::new();
        let el = Element::new("message", NS_CLIENT);
        assert!(!hold.capture(&outbox, &el));
        assert!(hold.begin(None));
        assert!(!hold.begin(None), "nested begin is refused");
        assert!(hold.capture(&outbox, &el));
        let held = hold.end();
        assert_eq!(held.outputs.len(), 1);
        assert!(!hold.is_active());
        assert_eq!(outbox.queued(), 0);
    }

    #[test]
    fn the_answer_to_the_request_is_recognised() {
        let outbox = Outbox::new();
        let other = Outbox::new();
        let request = Request::of(&iq("get", "q1"), &outbox).expect("a request");
        assert!(request.is_answered_by(&outbox, &iq("result", "q1")));
        assert!(request.is_answered_by(&outbox, &iq("error", "q1")));
        assert!(!request.is_answered_by(&outbox, &iq("result", "q2")));
        assert!(!request.is_answered_by(&outbox, &iq("set", "q1")));
        assert!(!request.is_answered_by(&other, &iq("result", "q1")));
        assert!(Request::of(&iq("result", "r"), &outbox).is_none());
        assert!(Request::of(&Element::new("message", NS_CLIENT), &outbox).is_none());
    }
}
