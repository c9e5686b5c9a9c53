//! Keeping promises to clients. A stanza that tells someone a thing is stored
//! (an iq result, a roster push, a forwarded subscription request) must not
//! leave before that thing is on disk, yet handlers are plain synchronous
//! code and writes are group-committed in the background.
//!
//! Everything one piece of work produces (the handling of one client
//! stanza, one continuation, one room event) is a *section*. While a section
//! runs, the stanzas it sends are queued behind its [`Gate`] (see
//! [`crate::outbox`]): in place in each recipient's queue, but held. The
//! writes it [`Env::persist`]s are the gate's writes. When the section ends, the
//! gate is handed to the store's group committer, which releases it once
//! those writes (and anything else it [`Env::depend_on`]s) are durable, or
//! withdraws it if one failed: its stanzas are dropped and the request they
//! answered gets the error in their place. A failure that is not a refusal
//! also ends the client's stream with `internal-server-error`, and what the
//! client caused after it is withdrawn too.
//!
//! What one client causes stays in order (RFC 6120 §10.1): its next
//! section's gate waits for the previous one's writes, and a queue never
//! lets an entry overtake a held one. So the connection need not wait: it
//! handles the client's next messages while earlier writes commit, and a
//! burst of them costs one fsync ([`route_from_client`] says when it must
//! wait).
//!
//! Work that must come after the writes (reading back what was stored,
//! closing streams once the answer is out) is an [`Env::after_durable`]
//! continuation; work that must first await something off the event loop
//! (hashing a password) is [`Env::after_async`]. Both still belong to the
//! client's stanza: they run, each as a section of its own, before the
//! connection handles its next stanza. Code outside a connection (the
//! admin socket, the end of a session) wraps its work in [`run`] to get the
//! same guarantees.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::env::{Continuation, Env, Next};
use crate::jid::Jid;
use crate::outbox::{Release, WriteFailure};
use crate::router;
use crate::server::Server;
use crate::session::{Outbox, Session};
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

pub use crate::outbox::{Gate, Request};

/// Runs `work` as a section, waits until its output is released, then
/// runs everything it scheduled ([`Env::after_durable`],
/// [`Env::after_async`]) in order, each as a section of its own. Returns
/// why a write failed; the work scheduled after a failed section is
/// dropped.
pub async fn run(server: &Server, work: Continuation) -> Result<(), WriteFailure> {
    run_sections(server, work, None, None, false)
        .await
        .map(|_| ())
}

/// [`run`] with the first section's work unboxed (a client's stanza is
/// routed without an allocation for the closure). With `pipeline`, a first
/// section that scheduled nothing is not waited for: its gate is returned.
async fn run_sections(
    server: &Server,
    first: impl FnOnce(&Env),
    request: Option<Rc<Request>>,
    origin: Option<Rc<Outbox>>,
    pipeline: bool,
) -> Result<Option<Rc<Gate>>, WriteFailure> {
    let mut owed = request;
    let mut queue: VecDeque<Next> = VecDeque::new();
    let (mut gate, next) = section(server, first, owed.clone(), origin.clone());
    if pipeline && next.is_empty() {
        return Ok(Some(gate));
    }
    queue.extend(next);
    loop {
        match gate.settled().await {
            Release::Released => {}
            _ => {
                return Err(gate.failure().unwrap_or_else(|| WriteFailure {
                    refusal: false,
                    error: StanzaError::new(Condition::InternalServerError),
                    reason: "an earlier change of the same client could not be stored".into(),
                }));
            }
        }
        if owed.as_ref().is_some_and(|r| r.is_answered()) {
            owed = None;
        }
        let Some(next) = queue.pop_front() else {
            return Ok(None);
        };
        let work = match next {
            Next::Now(work) => work,
            Next::Later(pending) => pending.await,
        };
        let (next_gate, more) = section(server, work, owed.clone(), origin.clone());
        gate = next_gate;
        for next in more.into_iter().rev() {
            queue.push_front(next);
        }
    }
}

/// Runs `work` as a section and hands its gate to the committer.
fn section(
    server: &Server,
    work: impl FnOnce(&Env),
    request: Option<Rc<Request>>,
    origin: Option<Rc<Outbox>>,
) -> (Rc<Gate>, Vec<Next>) {
    let env = server.env();
    let Some(gate) = server.hold().begin(origin.clone(), request.clone()) else {
        // Inside another section (not reachable from `run`, which only
        // starts sections between awaits): the outer one takes it all.
        work(&env);
        let gate = Gate::new(origin, request);
        gate.settle();
        return (gate, Vec::new());
    };
    work(&env);
    server.hold().end(server.store());
    (gate, server.scheduled().take())
}

/// Runs `work` as a section of `origin`'s client and does not wait for it
/// (a test's way of handing over a client's stanza).
#[cfg(test)]
pub fn section_without_waiting(server: &Server, origin: &Rc<Outbox>, work: impl FnOnce(&Env)) {
    let (_, next) = section(server, work, None, Some(origin.clone()));
    assert!(next.is_empty(), "the work scheduled continuations");
}

/// What the connection may do after handing a client's stanza over.
pub enum Routed {
    /// Everything the stanza caused is settled.
    Done,
    /// Its output is still held behind this gate: the connection may go on
    /// with the client's next stanzas (up to a bound) meanwhile.
    InFlight(Rc<Gate>),
}

/// Routes one stanza from a bound client. A message that scheduled no
/// further work is not waited for (its writes, such as offline storage,
/// commit with those of the next ones: a burst costs one fsync); anything
/// else is waited for, continuations included, so that an iq request's
/// effects are on disk before the client's next stanza is handled (a
/// handler may read the disk). The caller waits for every message in
/// flight before handing over anything but a message.
pub async fn route_from_client(
    server: &Server,
    origin: &Rc<Session>,
    stanza: Element,
    to: Option<Jid>,
) -> Routed {
    let request = Request::of(&stanza, &origin.outbox);
    let pipeline = stanza.name == "message";
    let session = origin.clone();
    let route = move |env: &Env| router::from_client(env, &session, stanza, to);
    // A failure was logged and answered when its gate settled.
    match run_sections(
        server,
        route,
        request,
        Some(origin.outbox.clone()),
        pipeline,
    )
    .await
    {
        Ok(Some(gate)) => Routed::InFlight(gate),
        Ok(None) | Err(_) => Routed::Done,
    }
}

/// Routes one stanza from another server or a component (its addresses
/// checked by the link): as [`route_from_client`], a message that
/// scheduled no further work is not waited for, so a burst over one link
/// costs one fsync; the link waits for its messages in flight before
/// handing over anything else.
pub async fn route_from_link(server: &Server, stanza: Element, to: Jid) -> Routed {
    let pipeline = stanza.name == "message";
    let route = move |env: &Env| env.deliver(stanza, &to);
    match run_sections(server, route, None, None, pipeline).await {
        Ok(Some(gate)) => Routed::InFlight(gate),
        Ok(None) | Err(_) => Routed::Done,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;
    use crate::config::Config;
    use crate::section::failure_error;
    use crate::store::Store;
    use crate::store::{StoreError, WriteOp};
    use crate::stream::StreamCondition;
    use crate::testing::TempDir;
    use crate::xml::NS_CLIENT;

    fn server_with(dir: &TempDir, ex: &smol::LocalExecutor<'static>) -> Rc<Server> {
        let mut store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        store.start_committer(ex);
        Server::new(Config::default(), store)
    }

    fn bind(server: &Server, full: &str) -> Rc<Session> {
        let jid = Jid::parse(full).expect("jid");
        server
            .bind(&jid.to_bare(), jid.resource(), Outbox::new())
            .expect("bind")
    }

    async fn create(server: &Server, bare: &str) {
        let creds = crate::sasl::Credentials::derive("pw", 4096).expect("derive");
        server
            .store()
            .accounts()
            .create(bare, &creds)
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

    fn message(id: &str) -> Element {
        Element::new("message", NS_CLIENT).with_attr("id", id)
    }

    fn store_offline() -> WriteOp {
        crate::store::offline::append_op("romeo@localhost", 1, b"<m/>".to_vec())
    }

    fn failing_write() -> WriteOp {
        Box::new(|_| Err(StoreError::Corrupt("test".into())))
    }

    fn refused_write() -> WriteOp {
        Box::new(|_| Err(StoreError::LimitExceeded("too much".into())))
    }

    /// Handles `work` as one pipelined stanza of `origin`'s client.
    async fn pipelined(
        server: &Server,
        origin: &Session,
        work: impl FnOnce(&Env),
    ) -> Option<Rc<Gate>> {
        run_sections(server, work, None, Some(origin.outbox.clone()), true)
            .await
            .expect("no failure yet")
    }

    #[test]
    fn held_stanzas_wait_for_their_writes() {
        let dir = TempDir::new("durable");
        let ex = executor();
        let server = server_with(&dir, ex);
        let romeo = bind(&server, "romeo@localhost/garden");
        smol::block_on(ex.run(async {
            create(&server, "romeo@localhost").await;
            let s = romeo.clone();
            let gate = pipelined(&server, &romeo, move |env| {
                s.send(&message("1"));
                env.persist(store_offline());
            })
            .await
            .expect("in flight");
            assert_eq!(gate.state(), Release::Held);
            assert!(romeo.outbox.queued() > 0, "queued in place");
            assert_eq!(sent(&romeo), "", "but nothing leaves before the write");
            assert_eq!(gate.settled().await, Release::Released);
            assert!(sent(&romeo).contains("id='1'"));
            assert_eq!(romeo.outbox.total(), 1);
        }));
    }

    #[test]
    fn a_clients_later_output_waits_for_its_earlier_writes() {
        let dir = TempDir::new("durable-order");
        let ex = executor();
        let server = server_with(&dir, ex);
        let romeo = bind(&server, "romeo@localhost/garden");
        let juliet = bind(&server, "juliet@localhost/balcony");
        let nurse = bind(&server, "nurse@localhost/hall");
        smol::block_on(ex.run(async {
            create(&server, "romeo@localhost").await;
            let j = juliet.clone();
            let first = pipelined(&server, &romeo, move |env| {
                j.send(&message("1"));
                env.persist(store_offline());
            })
            .await
            .expect("in flight");
            // No write of its own, but the same client's: it waits, and
            // even where the first left nothing (the nurse's queue).
            let (j, n) = (juliet.clone(), nurse.clone());
            let second = pipelined(&server, &romeo, move |_| {
                j.send(&message("2"));
                n.send(&message("3"));
            })
            .await
            .expect("in flight");
            assert_eq!(second.state(), Release::Held);
            assert_eq!(sent(&juliet), "");
            assert_eq!(sent(&nurse), "");
            // Someone else's stanza queued behind a held one waits too.
            juliet.outbox.send(&message("4"));
            assert_eq!(sent(&juliet), "");
            second.settled().await;
            assert_eq!(first.state(), Release::Released);
            let text = sent(&juliet);
            let order: Vec<usize> = ["id='1'", "id='2'", "id='4'"]
                .iter()
                .map(|id| text.find(id).expect(id))
                .collect();
            assert!(order.is_sorted(), "{text}");
            assert!(sent(&nurse).contains("id='3'"));
        }));
    }

    #[test]
    fn a_burst_of_writes_shares_commits() {
        let dir = TempDir::new("durable-burst");
        let ex = executor();
        let server = server_with(&dir, ex);
        let romeo = bind(&server, "romeo@localhost/garden");
        smol::block_on(ex.run(async {
            create(&server, "romeo@localhost").await;
            let before = server.store().committed_seq();
            let mut gates = Vec::new();
            for n in 0..100u64 {
                let gate = pipelined(&server, &romeo, move |env| {
                    let op = crate::store::offline::append_op(
                        "romeo@localhost",
                        n + 1,
                        b"<m/>".to_vec(),
                    );
                    env.persist(op);
                })
                .await
                .expect("in flight");
                gates.push(gate);
            }
            // Nothing was waited for: all 100 are queued together.
            assert!(gates.iter().all(|g| g.state() == Release::Held));
            assert_eq!(server.store().committed_seq(), before);
            gates.last().expect("gates").settled().await;
            assert!(gates.iter().all(|g| g.state() == Release::Released));
            let stored = crate::store::offline::read_after(server.store(), "romeo@localhost", 0)
                .expect("read");
            assert_eq!(stored.len(), 100);
        }));
    }

    #[test]
    fn continuations_run_after_the_writes_and_are_held_themselves() {
        let dir = TempDir::new("durable-after");
        let ex = executor();
        let server = server_with(&dir, ex);
        let session = bind(&server, "romeo@localhost/garden");
        smol::block_on(ex.run(async {
            create(&server, "romeo@localhost").await;
            let order = Rc::new(RefCell::new(Vec::new()));
            let log = order.clone();
            let s = session.clone();
            let work = Box::new(move |env: &Env| {
                s.send(&message("first"));
                env.persist(store_offline());
                let log = log.clone();
                let s = s.clone();
                env.after_durable(Box::new(move |env| {
                    // What the first section stored is on disk now.
                    let stored = crate::store::offline::read_after(env.store, "romeo@localhost", 0);
                    log.borrow_mut()
                        .push(format!("stored {}", stored.map(|m| m.len()).unwrap_or(0)));
                    assert!(env.hold.is_active(), "a continuation is held too");
                    s.send(&message("second"));
                }));
            });
            run(&server, work).await.expect("durable");
            assert_eq!(*order.borrow(), vec!["stored 1".to_string()]);
            let text = sent(&session);
            let first = text.find("id='first'").expect("first");
            let second = text.find("id='second'").expect("second");
            assert!(first < second, "{text}");
        }));
    }

    #[test]
    fn a_failed_write_withdraws_the_answers_and_ends_the_stream() {
        let dir = TempDir::new("durable-fail");
        let ex = executor();
        let server = server_with(&dir, ex);
        let romeo = bind(&server, "romeo@localhost/garden");
        let juliet = bind(&server, "juliet@localhost/balcony");
        smol::block_on(ex.run(async {
            // A message the client sent earlier goes out.
            let j = juliet.clone();
            pipelined(&server, &romeo, move |_| j.send(&message("before")))
                .await
                .expect("gate");
            let request = Request::of(&iq("set", "failed"), &romeo.outbox);
            let (r, j) = (romeo.clone(), juliet.clone());
            let work = move |env: &Env| {
                r.send(&iq("result", "failed"));
                j.send(&message("push"));
                env.persist(failing_write());
                env.after_durable(Box::new(|_| panic!("must not run after a failure")));
            };
            let outcome =
                run_sections(&server, work, request, Some(romeo.outbox.clone()), true).await;
            assert!(outcome.is_err_and(|f| !f.refusal));
            // What the client sends next is withdrawn as well.
            let j = juliet.clone();
            let later = pipelined(&server, &romeo, move |_| j.send(&message("after")))
                .await
                .expect("gate");
            assert_eq!(later.settled().await, Release::Withdrawn);
            let text = sent(&romeo);
            assert!(
                text.contains("type='error'")
                    && text.contains("internal-server-error")
                    && !text.contains("type='result'"),
                "{text}"
            );
            let close = romeo.outbox.take_close().expect("the stream ends");
            assert_eq!(close.condition, StreamCondition::InternalServerError);
            let text = sent(&juliet);
            assert!(text.contains("id='before'"), "{text}");
            assert!(
                !text.contains("id='push'") && !text.contains("id='after'"),
                "{text}"
            );
        }));
    }

    #[test]
    fn a_failure_with_no_answer_queued_still_answers_the_request() {
        let dir = TempDir::new("durable-fail-unanswered");
        let ex = executor();
        let server = server_with(&dir, ex);
        let romeo = bind(&server, "romeo@localhost/garden");
        smol::block_on(ex.run(async {
            let request = Request::of(&iq("set", "lost"), &romeo.outbox);
            let work = move |env: &Env| {
                env.persist(failing_write());
            };
            let origin = Some(romeo.outbox.clone());
            assert!(
                run_sections(&server, work, request, origin, false)
                    .await
                    .is_err()
            );
            let text = sent(&romeo);
            assert!(
                text.contains("id='lost'") && text.contains("internal-server-error"),
                "{text}"
            );
            assert!(romeo.outbox.is_closing());
        }));
    }

    #[test]
    fn a_refusal_answers_the_request_and_the_stream_goes_on() {
        let dir = TempDir::new("durable-refusal");
        let ex = executor();
        let server = server_with(&dir, ex);
        let romeo = bind(&server, "romeo@localhost/garden");
        smol::block_on(ex.run(async {
            let request = Request::of(&iq("set", "big"), &romeo.outbox);
            let r = romeo.clone();
            let work = move |env: &Env| {
                r.send(&message("held"));
                r.send(&iq("result", "big"));
                env.persist(refused_write());
            };
            let outcome =
                run_sections(&server, work, request, Some(romeo.outbox.clone()), false).await;
            assert!(outcome.is_err_and(|f| f.refusal));
            let r = romeo.clone();
            let next = pipelined(&server, &romeo, move |_| r.send(&message("next")))
                .await
                .expect("gate");
            assert_eq!(next.settled().await, Release::Released);
            let text = sent(&romeo);
            assert!(
                text.contains("not-acceptable")
                    && text.contains("too much")
                    && !text.contains("id='held'")
                    && text.contains("id='next'"),
                "{text}"
            );
            assert!(!romeo.outbox.is_closing());
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
        let server = server_with(&dir, ex);
        let session = bind(&server, "romeo@localhost/garden");
        smol::block_on(ex.run(async {
            // The write made after the await is refused: the request, not
            // yet answered, gets the error.
            let request = Request::of(&iq("set", "a1"), &session.outbox);
            let s = session.clone();
            let work = move |env: &Env| {
                env.after_async(async { 7 }, move |env, n: i32| {
                    assert_eq!(n, 7);
                    env.persist(refused_write());
                    s.send(&iq("result", "a1"));
                });
            };
            let origin = Some(session.outbox.clone());
            assert!(
                run_sections(&server, work, request, origin, false)
                    .await
                    .is_err()
            );
            let text = sent(&session);
            assert!(
                text.contains("id='a1'") && text.contains("not-acceptable"),
                "{text}"
            );

            // Answered in a section whose writes are durable: a later
            // failure adds no second answer.
            let request = Request::of(&iq("set", "a2"), &session.outbox);
            let s = session.clone();
            let work = move |env: &Env| {
                s.send(&iq("result", "a2"));
                env.after_async(async {}, |env, ()| {
                    env.persist(refused_write());
                });
            };
            let origin = Some(session.outbox.clone());
            assert!(
                run_sections(&server, work, request, origin, false)
                    .await
                    .is_err()
            );
            let text = sent(&session);
            assert_eq!(text.matches("id='a2'").count(), 1, "{text}");
            assert!(!text.contains("type='error'"), "{text}");
        }));
    }

    #[test]
    fn outside_a_section_nothing_is_held() {
        let dir = TempDir::new("durable-outside");
        let ex = executor();
        let server = server_with(&dir, ex);
        let session = bind(&server, "romeo@localhost/garden");
        let ran = Rc::new(Cell::new(false));
        let flag = ran.clone();
        server
            .env()
            .after_durable(Box::new(move |_| flag.set(true)));
        assert!(ran.get());
        session.send(&message("now"));
        assert!(sent(&session).contains("id='now'"));
        server
            .env()
            .after_async(async {}, |_, ()| panic!("dropped, not run"));
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
        assert!(Request::of(&message("m"), &outbox).is_none());
    }
}
