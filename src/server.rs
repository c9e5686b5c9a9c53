//! The server's shared state on the event loop: configuration, database,
//! bound sessions and the per-address guards. One instance, behind `Rc`,
//! reached by every connection task; no locks because there is one thread.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::admission::{Admission, Refusal, Ticket};
use crate::config::{Config, Limits};
use crate::durable::OutputHold;
use crate::fasthash::FastMap;
use crate::im::ImCache;
use crate::jid::{self, Jid};
use crate::log_limit::LogLimiter;
use crate::login_throttle::{LoginThrottle, ThrottlePolicy};
use crate::memory::{ReleasePolicy, ShrinkIdle};
use crate::router::Routes;
use crate::session::{Outbox, Session};
use crate::stanza::{Condition, StanzaError};
use crate::store::Store;
use crate::stream::{StreamCondition, StreamError};

/// More resources than this on one account is a misbehaving client.
pub const MAX_RESOURCES_PER_ACCOUNT: usize = 32;

pub struct Server {
    /// The configuration the server started with. The parts that a reload
    /// (SIGHUP) may change live are copied out below; read those through
    /// their accessors, not from here.
    pub config: Config,
    pub store: Store,
    /// The chat rooms of every MUC domain.
    pub muc: Rc<crate::muc::Service>,
    /// Which part of the server answers for each domain.
    pub routes: Routes,
    /// Live copy of `config.limits`, replaced by a reload.
    limits: Cell<Limits>,
    pub started: Instant,
    /// Stanzas held until the writes they report are durable.
    pub hold: Rc<OutputHold>,
    /// Rosters, blocklists and offline counters of active accounts.
    pub im: ImCache,
    /// Bound sessions by bare JID (its normalized string, so a full JID
    /// finds its account's list without building a bare `Jid`).
    sessions: RefCell<FastMap<Box<str>, Vec<Rc<Session>>>>,
    /// Sessions in `sessions`, kept so counting is not a walk of the table.
    session_total: Cell<usize>,
    next_session_id: Cell<u64>,
    /// Open connections per address, and who gives way at the limit.
    admission: RefCell<Admission>,
    /// How fast passwords may be guessed, per address and per account.
    pub login_throttle: RefCell<LoginThrottle>,
    /// Log lines a client can cause, limited per cause and address.
    pub log_limit: RefCell<LogLimiter>,
    rng: ring::rand::SystemRandom,
    /// Random bytes drawn from the OS in blocks (see `random_bytes`).
    random_pool: RefCell<RandomPool>,
    /// In-band registrations per client address (XEP-0077).
    pub registrations: crate::im::register::Throttle,
    /// When to give memory back after connections left.
    release: RefCell<ReleasePolicy>,
}

impl Server {
    pub fn new(config: Config, store: Store) -> Rc<Server> {
        let secret = store.secret("muc-occupant-id").unwrap_or_else(|e| {
            // Occupant ids then change at the next start, which XEP-0421
            // clients tolerate; the server still runs.
            log::error!("cannot keep the occupant-id secret: {e}");
            let mut fresh = [0u8; 32];
            let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh);
            fresh.to_vec()
        });
        let muc = Rc::new(crate::muc::Service::new(&secret, &config.admins));
        let routes = routes(&config, &muc);
        let throttle = LoginThrottle::new(throttle_policy(&config.limits));
        let server = Rc::new(Server {
            limits: Cell::new(config.limits),
            config,
            store,
            muc,
            routes,
            started: Instant::now(),
            hold: OutputHold::new(),
            im: ImCache::default(),
            sessions: RefCell::new(FastMap::default()),
            session_total: Cell::new(0),
            next_session_id: Cell::new(1),
            admission: RefCell::new(Admission::default()),
            login_throttle: RefCell::new(throttle),
            log_limit: RefCell::new(LogLimiter::default()),
            rng: ring::rand::SystemRandom::new(),
            random_pool: RefCell::new(RandomPool::default()),
            registrations: Default::default(),
            release: RefCell::new(ReleasePolicy::default()),
        });
        // After a failed write the disk is the truth again: what the IM
        // handlers keep in memory may reflect the change that was lost.
        let weak = Rc::downgrade(&server);
        server.store.on_write_failure(Box::new(move || {
            if let Some(server) = weak.upgrade() {
                server.im.forget_all();
            }
        }));
        server
    }

    /// The resource limits in force (changed by a reload).
    pub fn limits(&self) -> Limits {
        self.limits.get()
    }

    /// Applies new limits to connections and logins from now on; existing
    /// connections keep the stanza size limit they started with.
    pub fn set_limits(&self, limits: Limits) {
        self.limits.set(limits);
        self.login_throttle
            .borrow_mut()
            .set_policy(throttle_policy(&limits));
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

    pub fn is_admin(&self, jid: &Jid) -> bool {
        let bare = jid.to_bare();
        self.config
            .admins
            .iter()
            .any(|a| Jid::parse(a).is_ok_and(|j| j == bare))
    }

    pub fn account_exists(&self, bare: &Jid) -> bool {
        match self.store.accounts().exists(bare.as_str()) {
            Ok(exists) => exists,
            Err(e) => {
                log::error!("reading account {bare}: {e}");
                false
            }
        }
    }

    /// Bytes from the OS random generator, each handed out once. A login
    /// needs several ids, and a system call apiece is a measurable part of
    /// its cost, so they are drawn in blocks.
    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        let mut pool = self.random_pool.borrow_mut();
        let drawn = pool.take(&self.rng, &mut out);
        drop(pool);
        if !drawn {
            // The OS RNG does not fail on Linux once booted; if it ever did,
            // a time-derived value still keeps ids unique (not secret).
            let nanos = self.started.elapsed().as_nanos().to_le_bytes();
            for (i, b) in out.iter_mut().enumerate() {
                *b = nanos[i % nanos.len()] ^ (i as u8);
            }
        }
        out
    }

    pub fn new_id(&self) -> String {
        hex(&self.random_bytes::<9>())
    }

    // ---- sessions ----

    /// Binds a resource for `account` (RFC 6120 §7). A session that already
    /// holds the same full JID is replaced: it gets a `conflict` stream error.
    pub fn bind(
        &self,
        account: &Jid,
        resource: Option<&str>,
        outbox: Rc<Outbox>,
    ) -> Result<Rc<Session>, StanzaError> {
        let resource = match resource {
            Some(r) => jid::prep_resource_strict(r)
                .map_err(|e| StanzaError::new(Condition::BadRequest).with_text(e.to_string()))?
                .into_owned(),
            None => self.new_id(),
        };
        let full = account
            .with_resource(&resource)
            .map_err(|e| StanzaError::new(Condition::BadRequest).with_text(e.to_string()))?;
        let mut sessions = self.sessions.borrow_mut();
        let list = sessions.entry(account.bare_str().into()).or_default();
        if let Some(pos) = list.iter().position(|s| s.jid == full) {
            let old = list.remove(pos);
            self.session_total
                .set(self.session_total.get().saturating_sub(1));
            log::info!("{full} logged in again; closing the older session");
            old.outbox.close_with(StreamError::with_text(
                StreamCondition::Conflict,
                "replaced by a new session",
            ));
            // Its presence is gone from the router's point of view; the
            // replacement will announce its own.
        } else if list.len() >= MAX_RESOURCES_PER_ACCOUNT {
            return Err(StanzaError::new(Condition::ResourceConstraint)
                .with_text("too many resources bound for this account"));
        }
        let id = self.next_session_id.get();
        self.next_session_id.set(id + 1);
        let session = Rc::new(Session::new(id, full, outbox, self.hold.clone()));
        list.push(session.clone());
        self.session_total.set(self.session_total.get() + 1);
        Ok(session)
    }

    /// Removes a session if it is still the one bound to its JID.
    pub fn unbind(&self, session: &Session) {
        let mut sessions = self.sessions.borrow_mut();
        let bare = session.jid.bare_str();
        if let Some(list) = sessions.get_mut(bare) {
            let before = list.len();
            list.retain(|s| s.id != session.id);
            let removed = before - list.len();
            self.session_total
                .set(self.session_total.get().saturating_sub(removed));
            if list.is_empty() {
                sessions.remove(bare);
            }
        }
    }

    pub fn session(&self, full: &Jid) -> Option<Rc<Session>> {
        self.sessions
            .borrow()
            .get(full.bare_str())
            .and_then(|list| list.iter().find(|s| s.jid == *full).cloned())
    }

    /// Whether `bare` has a bound session that is not being closed. Such a
    /// session proves its account exists without a store read: removing an
    /// account closes its sessions.
    pub fn has_open_session(&self, bare: &Jid) -> bool {
        self.any_session_of(bare, |s| !s.outbox.is_closing())
    }

    /// Whether any session of the account `bare` satisfies `pred`, without
    /// copying the session list.
    pub fn any_session_of(&self, bare: &Jid, pred: impl Fn(&Session) -> bool) -> bool {
        self.sessions_list(bare, |list| list.iter().any(|s| pred(s)))
    }

    /// Runs `f` on the sessions of the account `bare` (none for a full JID,
    /// which names no account).
    fn sessions_list<T>(&self, bare: &Jid, f: impl FnOnce(&[Rc<Session>]) -> T) -> T {
        let sessions = self.sessions.borrow();
        let list = match bare.resource() {
            Some(_) => None,
            None => sessions.get(bare.bare_str()),
        };
        f(list.map_or(&[], Vec::as_slice))
    }

    /// All sessions of an account (cloned handles, so the caller may route
    /// while iterating).
    pub fn sessions_of(&self, bare: &Jid) -> Vec<Rc<Session>> {
        self.sessions_list(bare, <[Rc<Session>]>::to_vec)
    }

    pub fn session_count(&self) -> usize {
        self.session_total.get()
    }

    pub fn all_sessions(&self) -> Vec<Rc<Session>> {
        self.sessions.borrow().values().flatten().cloned().collect()
    }

    // ---- connection guards ----

    /// Admits a new connection from `ip` unless a limit is reached (see
    /// `admission`). The returned guard gives the slot back when
    /// dropped.
    pub fn admit(self: &Rc<Self>, ip: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let limits = self.limits();
        let ticket = self.admission.borrow_mut().admit(
            Instant::now(),
            ip,
            limits.max_connections,
            limits.max_connections_per_ip,
        )?;
        let live = self.admission.borrow().total();
        self.release.borrow_mut().admitted(live);
        Ok(ConnectionGuard {
            server: self.clone(),
            ticket,
        })
    }

    pub fn connection_count(&self) -> usize {
        self.admission.borrow().total()
    }

    /// The connection of `ticket` authenticated: it keeps its slot.
    pub fn connection_authenticated(&self, ticket: &Ticket) {
        self.admission.borrow_mut().authenticated(ticket);
    }

    /// After a wave of connections left: shrinks the tables sized for the
    /// wave and hands the freed heap back to the system.
    pub fn release_memory(&self) {
        self.im.sweep(self);
        self.sessions.borrow_mut().shrink_idle();
        self.admission.borrow_mut().shrink_idle();
        self.login_throttle.borrow_mut().sweep(Instant::now());
        self.im.shrink_idle();
        crate::memory::apply_cancelled_timers();
        crate::memory::release_free_heap();
    }

    fn connection_ended(&self, ticket: &Ticket) {
        let live = {
            let mut admission = self.admission.borrow_mut();
            admission.ended(ticket);
            admission.total()
        };
        if self.release.borrow_mut().released(live) {
            self.release_memory();
        }
    }
}

pub struct ConnectionGuard {
    server: Rc<Server>,
    ticket: Rc<Ticket>,
}

impl ConnectionGuard {
    /// The connection's entry in the admission table (its outbox, its
    /// last input, its deadline while its address is at its limit).
    pub fn ticket(&self) -> &Rc<Ticket> {
        &self.ticket
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.server.connection_ended(&self.ticket);
    }
}

/// The route table of the configured hosts: each user host, and its MUC
/// domain served by the one MUC service. (The configuration refuses a
/// domain used twice.)
fn routes(config: &Config, muc: &Rc<crate::muc::Service>) -> Routes {
    let mut routes = Routes::default();
    for host in &config.hosts {
        if let Err(e) = routes.add_user_host(&host.domain) {
            log::error!("{e}");
        }
    }
    for host in &config.hosts {
        if let Some(domain) = &host.muc
            && let Err(e) = routes.add_service(domain, &host.domain, muc.clone())
        {
            log::error!("{e}");
        }
    }
    routes
}

/// The login throttle's schedule from the configured limits.
fn throttle_policy(limits: &Limits) -> ThrottlePolicy {
    ThrottlePolicy {
        free_failures: limits.login_attempts_per_minute.max(1),
        address_cap: Duration::from_secs(u64::from(limits.login_delay_cap_secs)),
        account_cap: Duration::from_secs(u64::from(limits.login_account_delay_cap_secs)),
        ..ThrottlePolicy::default()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Bytes per draw from the OS for `Server::random_bytes`.
const RANDOM_POOL_BYTES: usize = 256;

/// A block of OS randomness; bytes are wiped as they are handed out, so
/// none is ever given twice.
struct RandomPool {
    bytes: [u8; RANDOM_POOL_BYTES],
    /// Bytes before this index were handed out already.
    used: usize,
}

impl Default for RandomPool {
    fn default() -> Self {
        RandomPool {
            bytes: [0; RANDOM_POOL_BYTES],
            used: RANDOM_POOL_BYTES,
        }
    }
}

impl RandomPool {
    /// Fills `out`; false if the OS generator failed.
    fn take(&mut self, rng: &ring::rand::SystemRandom, out: &mut [u8]) -> bool {
        if out.len() > RANDOM_POOL_BYTES {
            return ring::rand::SecureRandom::fill(rng, out).is_ok();
        }
        if RANDOM_POOL_BYTES - self.used < out.len() {
            if ring::rand::SecureRandom::fill(rng, &mut self.bytes).is_err() {
                return false;
            }
            self.used = 0;
        }
        let Some(fresh) = self.bytes.get_mut(self.used..self.used + out.len()) else {
            return false;
        };
        out.copy_from_slice(fresh);
        fresh.fill(0);
        self.used += out.len();
        true
    }
}

#[cfg(test)]
mod random_pool_tests {
    use super::*;

    #[test]
    fn hands_out_each_byte_once_and_refills() {
        let rng = ring::rand::SystemRandom::new();
        let mut pool = RandomPool::default();
        let mut seen = Vec::new();
        for _ in 0..100 {
            let mut id = [0u8; 9];
            assert!(pool.take(&rng, &mut id));
            seen.push(id);
        }
        // 900 bytes: the pool was refilled several times, and 9 random
        // bytes repeating would be a bug, not chance.
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len());
        let mut big = [0u8; RANDOM_POOL_BYTES + 1];
        assert!(pool.take(&rng, &mut big));
        assert!(big.iter().any(|&b| b != 0));
    }
}
