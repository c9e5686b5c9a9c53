//! What handlers get: the environment of one piece of work. The IM
//! handlers, the router's delivery rules and the hosted services (the chat
//! rooms) take an [`Env`] instead of the whole server: the configuration,
//! the store, the bound sessions, the section their output is held in, the
//! IM state, ids, and the route table behind [`Routing`] (so a handler
//! routes a stanza without depending on the router, which depends on the
//! handlers).
//!
//! An `Env` is a handful of references, made by the server for each
//! section ([`crate::durable`]); a test makes one from its own parts.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use crate::config::{Config, Limits};
use crate::ids::Ids;
use crate::im::ImCache;
use crate::im::cache::AccountState;
use crate::jid::Jid;
use crate::section::OutputHold;
use crate::session::Session;
use crate::sessions::Sessions;
use crate::stanza::{self, StanzaError};
use crate::store::{Store, StoreError, WriteOp};
use crate::xml::Element;

/// Work to run once every write submitted before it is on disk.
pub type Continuation = Box<dyn FnOnce(&Env)>;

/// Work off the event loop, yielding what to do with its result.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Continuation>>>;

/// What a section scheduled to follow it.
pub(crate) enum Next {
    Now(Continuation),
    Later(Pending),
}

/// The work the running section scheduled (see [`Env::after_durable`]).
#[derive(Default)]
pub struct Scheduled {
    next: RefCell<Vec<Next>>,
}

impl Scheduled {
    pub(crate) fn take(&self) -> Vec<Next> {
        std::mem::take(&mut *self.next.borrow_mut())
    }
}

/// The route table as handlers see it.
pub trait Routing {
    /// Delivers `stanza` to `to`, answering with the errors RFC 6120/6121
    /// prescribe when that is impossible.
    fn deliver(&self, env: &Env, stanza: Element, to: &Jid);

    /// Whether `domain` is a user host of this server.
    fn is_user_host(&self, domain: &str) -> bool;

    /// The services a user host lists (disco#items): domain and name.
    fn services_of(&self, domain: &str) -> Vec<(String, String)>;
}

/// Something hosted under a domain of its own.
pub trait Service {
    /// What the service is called in its user host's disco#items.
    fn name(&self) -> &str;

    /// Handles a stanza addressed to the service's domain or to an entity
    /// under it (`to`); `from` is stamped. Answers and errors go out
    /// through the router like any stanza.
    fn handle(&self, env: &Env, stanza: Element, to: &Jid);
}

pub struct Env<'a> {
    pub config: &'a Config,
    /// The limits in force (a reload may change them).
    pub limits: Limits,
    pub store: &'a Store,
    pub sessions: &'a Sessions,
    /// The section this work's output is held in.
    pub hold: &'a Rc<OutputHold>,
    /// Rosters, blocklists and offline counters of active accounts.
    pub im: &'a ImCache,
    pub ids: &'a Ids,
    /// The message archive's clock, ids and cached preferences.
    pub archive: &'a crate::archive::Archive,
    /// Verified entity capabilities and publish budgets (pubsub, PEP).
    pub pubsub: &'a crate::pubsub::state::PubsubState,
    /// Ad-hoc command sessions (XEP-0050).
    pub adhoc: &'a crate::adhoc::Adhoc,
    /// Push registrations and the notifications awaiting answers.
    pub push: &'a crate::push::state::PushState,
    /// Who administers the server (configured and granted).
    pub admins: &'a crate::server_admins::ServerAdmins,
    pub routes: &'a dyn Routing,
    pub scheduled: &'a Scheduled,
    /// When the server started (for uptime).
    pub started: Instant,
    /// The clocks as this work first read them: one reading for all of it.
    pub clocks: Clocks,
}

/// The wall clock and the monotonic clock, read once when first needed
/// (most stanzas need neither).
#[derive(Default)]
pub struct Clocks {
    now: Cell<Option<SystemTime>>,
    clock: Cell<Option<Instant>>,
}

impl Env<'_> {
    /// The wall clock.
    pub fn now(&self) -> SystemTime {
        let now = self.clocks.now.get().unwrap_or_else(SystemTime::now);
        self.clocks.now.set(Some(now));
        now
    }

    /// The monotonic clock.
    pub fn clock(&self) -> Instant {
        let clock = self.clocks.clock.get().unwrap_or_else(Instant::now);
        self.clocks.clock.set(Some(clock));
        clock
    }

    pub fn new_id(&self) -> String {
        self.ids.new_id()
    }

    // ---- routing ----

    /// Delivers `stanza` to `to` through the route table.
    pub fn deliver(&self, stanza: Element, to: &Jid) {
        self.routes.deliver(self, stanza, to);
    }

    /// Sends the error reply for `stanza` back to its sender.
    pub fn bounce(&self, stanza: &Element, error: StanzaError) {
        if let Some(reply) = stanza::error_reply(stanza, &error) {
            self.reply_to_sender(reply);
        }
    }

    /// Delivers a reply (result or error) to the address in its `to`.
    pub fn reply_to_sender(&self, reply: Element) {
        let to = reply.attr("to").and_then(|t| Jid::parse(t).ok());
        match to {
            Some(to) => self.deliver(reply, &to),
            None => log::debug!("dropping reply without a valid recipient: {reply}"),
        }
    }

    /// A stanza from the server itself to a local full JID, e.g. an iq
    /// result; false if no such session is bound.
    pub fn send_to_session(&self, to: &Jid, stanza: &Element) -> bool {
        match self.sessions.session(to) {
            Some(s) => {
                s.send(stanza);
                true
            }
            None => false,
        }
    }

    /// Is `domain` one of the user hosts (not a service)?
    pub fn is_local_host(&self, domain: &str) -> bool {
        self.routes.is_user_host(domain)
    }

    pub fn is_muc_host(&self, domain: &str) -> bool {
        self.config
            .hosts
            .iter()
            .any(|h| h.muc.as_deref() == Some(domain))
    }

    // ---- sessions ----

    pub fn session(&self, full: &Jid) -> Option<Rc<Session>> {
        self.sessions.session(full)
    }

    pub fn sessions_of(&self, bare: &Jid) -> Vec<Rc<Session>> {
        self.sessions.sessions_of(bare)
    }

    pub fn any_session_of(&self, bare: &Jid, pred: impl Fn(&Session) -> bool) -> bool {
        self.sessions.any_session_of(bare, pred)
    }

    pub fn has_open_session(&self, bare: &Jid) -> bool {
        self.sessions.has_open_session(bare)
    }

    pub fn session_count(&self) -> usize {
        self.sessions.count()
    }

    // ---- accounts and their state ----

    pub fn account_exists(&self, bare: &Jid) -> bool {
        match self.store.accounts().exists(bare.as_str()) {
            Ok(exists) => exists,
            Err(e) => {
                log::error!("reading account {bare}: {e}");
                false
            }
        }
    }

    /// The IM state of the local account `bare` (which must exist).
    pub fn account(&self, bare: &Jid) -> Result<Rc<AccountState>, StoreError> {
        self.im.account(self.store, self.sessions, bare)
    }

    // ---- writes and what waits for them ----

    /// Submits `op` to the store; the section's output waits for it.
    /// Returns its place in the commit order.
    pub fn persist(&self, op: WriteOp) -> u64 {
        self.hold.persist(self.store, op)
    }

    /// Writes `op` for the account whose state is `state`: see
    /// [`Env::persist`]; the state remembers it (it is not dropped from
    /// memory before the write lands).
    pub fn persist_for(&self, state: &AccountState, op: WriteOp) {
        state.wrote(self.persist(op));
    }

    /// Makes the section's output wait for write `seq` too.
    pub fn depend_on(&self, seq: u64) {
        self.hold.depend_on(seq);
    }

    /// Runs `work` once every write submitted so far is on disk and the
    /// section's stanzas are out, e.g. to read what was just stored or to
    /// close streams after an answer; it runs as a section of its own.
    /// Outside a section (nothing is waiting) it runs at once.
    pub fn after_durable(&self, work: Continuation) {
        if self.hold.is_active() {
            // A no-op write: it commits after everything submitted before.
            self.persist(Box::new(|_| Ok(())));
            self.scheduled.next.borrow_mut().push(Next::Now(work));
        } else {
            work(self);
        }
    }

    /// Awaits `work` (something that must not run on the event loop, such
    /// as a password hash) after the section's stanzas are out, then runs
    /// `then` with its result as a section of its own, all before the
    /// client's next stanza is handled. Only a section can wait for this:
    /// outside one it is a bug, logged, and the work is dropped.
    pub fn after_async<T: 'static>(
        &self,
        work: impl Future<Output = T> + 'static,
        then: impl FnOnce(&Env, T) + 'static,
    ) {
        if !self.hold.is_active() {
            log::error!("asynchronous work scheduled outside a section was dropped");
            return;
        }
        let pending: Pending = Box::pin(async move {
            let value = work.await;
            Box::new(move |env: &Env| then(env, value)) as Continuation
        });
        self.scheduled.next.borrow_mut().push(Next::Later(pending));
    }
}
