//! The server's shared state on the event loop: configuration, database,
//! bound sessions and the per-address guards. One instance, behind `Rc`,
//! reached by every connection task; no locks because there is one thread.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::admission::{Admission, Refusal, Ticket};
use crate::config::{Config, Limits};
use crate::env::{Clocks, Env, Scheduled};
use crate::ids::Ids;
use crate::im::ImCache;
use crate::jid::Jid;
use crate::log_limit::LogLimiter;
use crate::login_throttle::{LoginThrottle, ThrottlePolicy};
use crate::memory::ReleasePolicy;
use crate::muc::Service as Rooms;
use crate::router::Routes;
use crate::section::OutputHold;
use crate::server_admins::ServerAdmins;
use crate::session::{Outbox, Session};
use crate::sessions::Sessions;
use crate::stanza::StanzaError;
use crate::store::Store;

pub struct Server {
    /// The configuration the server started with. The parts that a reload
    /// (SIGHUP) may change live are copied out below; read those through
    /// their accessors, not from here.
    config: Config,
    store: Store,
    /// The chat rooms of every MUC domain.
    muc: Rc<Rooms>,
    /// The configured and the granted administrators (shared with `muc`).
    admins: Rc<ServerAdmins>,
    /// Which part of the server answers for each domain.
    routes: Routes,
    /// Live copy of `config.limits`, replaced by a reload.
    limits: Cell<Limits>,
    started: Instant,
    /// The section whose output is held until its writes are durable.
    hold: Rc<OutputHold>,
    /// What the running section scheduled to follow it.
    scheduled: Scheduled,
    /// Rosters, blocklists and offline counters of active accounts.
    im: ImCache,
    sessions: Sessions,
    /// Sessions a client may resume (XEP-0198).
    resumption: crate::resumption::Resumption,
    /// The server is stopping: resumable sessions are kept, not ended.
    stopping: Cell<bool>,
    /// Closed when the server starts stopping: idle HTTP connections wait
    /// on a receiver of it (no sender ever sends).
    stop_signal: RefCell<Option<smol::channel::Sender<()>>>,
    stop_watch: smol::channel::Receiver<()>,
    /// The listeners as bound (port 0 in the file becomes a real port):
    /// the URLs handed out name these.
    bound: RefCell<Vec<crate::config::ListenerConfig>>,
    /// Sessions waiting for resumption (they hold no connection, so they
    /// are counted against `[limits] max_connections` here).
    waiting: Cell<usize>,
    ids: Ids,
    /// The message archive's clock, ids and cached preferences.
    archive: crate::archive::Archive,
    /// Verified entity capabilities and publish budgets (pubsub, PEP).
    pubsub: crate::pubsub::state::PubsubState,
    /// Push notifications (XEP-0357).
    push: crate::push::state::PushState,
    /// Ad-hoc command sessions (XEP-0050).
    adhoc: crate::adhoc::Adhoc,
    /// HTTP File Upload (XEP-0363), when a host offers it.
    upload: Option<Rc<crate::upload::Upload>>,
    /// ACME HTTP-01 answers the renewal task publishes (`src/acme/`).
    acme_challenges: crate::http::acme_challenge::Challenges,
    /// External components (XEP-0114), each a route table entry.
    components: crate::component::Components,
    /// Federation: the route of every remote domain.
    federation: Rc<crate::s2s::Federation>,
    /// Open connections per address, and who gives way at the limit.
    admission: RefCell<Admission>,
    /// How fast passwords may be guessed, per address and per account.
    login_throttle: RefCell<LoginThrottle>,
    /// Log lines a client can cause, limited per cause and address.
    log_limit: RefCell<LogLimiter>,
    /// In-band registrations per client address (XEP-0077).
    registrations: crate::im::register::Throttle,
    /// When to give memory back after connections left.
    release: RefCell<ReleasePolicy>,
    /// Told once the storage failed (the server then stops: see
    /// [`Server::storage_failed`]).
    storage_failure: (
        smol::channel::Sender<StorageFailure>,
        smol::channel::Receiver<StorageFailure>,
    ),
}

/// Why the storage can take no more writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageFailure {
    /// The disk is full (rather than failing).
    pub disk_full: bool,
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
        let granted: Vec<String> = store
            .granted_admins()
            .list()
            .unwrap_or_else(|e| {
                // They act as plain users until the next start.
                log::error!("cannot read the granted administrators: {e}");
                Vec::new()
            })
            .into_iter()
            .map(|(jid, _)| jid)
            .collect();
        let admins = Rc::new(ServerAdmins::new(&config.admins, &granted));
        let muc = Rc::new(Rooms::new(&secret, admins.clone()));
        let archive = crate::archive::Archive::open(&store).unwrap_or_else(|e| {
            // Ids given out before stop naming their messages, and the
            // clock may repeat stamps: say so, and run on a fresh start.
            log::error!("cannot read the archive's state: {e}");
            let fresh: [u8; 32] = Ids::default().random_bytes();
            crate::archive::Archive::new(&fresh, 0)
        });
        let upload = crate::upload::Upload::new(&config, &store);
        let components = crate::component::Components::new(&config.components);
        let mut routes = routes(&config, &muc, upload.as_ref(), &components);
        let federation = Rc::new(crate::s2s::Federation::new(
            &config.s2s,
            dialback_secret(&store),
            routes.domains().map(str::to_string).collect(),
        ));
        routes.set_remote(federation.clone());
        let pubsub = crate::pubsub::state::PubsubState::new(config.pubsub.caps_cache as usize);
        let throttle = LoginThrottle::new(throttle_policy(&config.limits));
        let (stop_signal, stop_watch) = smol::channel::bounded(1);
        let server = Rc::new(Server {
            stop_signal: RefCell::new(Some(stop_signal)),
            stop_watch,
            bound: RefCell::new(config.listeners.clone()),
            limits: Cell::new(config.limits),
            config,
            store,
            muc,
            admins,
            routes,
            started: Instant::now(),
            hold: OutputHold::new(),
            scheduled: Scheduled::default(),
            im: ImCache::default(),
            sessions: Sessions::default(),
            resumption: Default::default(),
            stopping: Cell::new(false),
            waiting: Cell::new(0),
            ids: Ids::default(),
            archive,
            pubsub,
            push: Default::default(),
            adhoc: Default::default(),
            upload,
            acme_challenges: Default::default(),
            components,
            federation,
            admission: RefCell::new(Admission::default()),
            login_throttle: RefCell::new(throttle),
            log_limit: RefCell::new(LogLimiter::default()),
            registrations: Default::default(),
            release: RefCell::new(ReleasePolicy::default()),
            storage_failure: smol::channel::bounded(1),
        });
        // After a failed write the disk is the truth again for what the IM
        // handlers keep in memory (it may reflect the change that was
        // lost); rooms, whose memory is the truth, are written again.
        let weak = Rc::downgrade(&server);
        server.store.on_write_failure(Box::new(move |failure| {
            if let Some(server) = weak.upgrade() {
                server.im.forget_processed(failure.processed);
                server.muc.writes_failed(&server.env(), &failure.failed);
                if failure.storage_failed {
                    let _ = server.storage_failure.0.try_send(StorageFailure {
                        disk_full: failure.disk_full,
                    });
                }
            }
        }));
        server
    }

    /// The environment handlers get (see [`crate::env`]).
    pub fn env(&self) -> Env<'_> {
        Env {
            config: &self.config,
            limits: self.limits.get(),
            store: &self.store,
            sessions: &self.sessions,
            hold: &self.hold,
            im: &self.im,
            ids: &self.ids,
            archive: &self.archive,
            pubsub: &self.pubsub,
            push: &self.push,
            admins: &self.admins,
            adhoc: &self.adhoc,
            routes: &self.routes,
            scheduled: &self.scheduled,
            started: self.started,
            clocks: Clocks::default(),
        }
    }

    /// Resolves once a write failed for a reason that fails every later
    /// write too (an I/O error: a full or failing disk). `perch run` then
    /// stops with its own exit status, and systemd restarts it: opening
    /// the file again repairs it, and nothing acknowledged is lost.
    pub async fn storage_failed(&self) -> StorageFailure {
        self.storage_failure
            .1
            .recv()
            .await
            .unwrap_or(StorageFailure { disk_full: false })
    }

    pub fn resumption(&self) -> &crate::resumption::Resumption {
        &self.resumption
    }

    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Whether the server is stopping (resumable sessions are then kept
    /// for the next start, not ended).
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    pub fn set_stopping(&self) {
        self.stopping.set(true);
        self.stop_signal.borrow_mut().take();
    }

    /// Records where the listeners ended up.
    pub fn set_bound_listeners(&self, bound: Vec<crate::config::ListenerConfig>) {
        if let Some(upload) = self.upload() {
            upload.set_listeners(&self.config, &bound);
        }
        *self.bound.borrow_mut() = bound;
    }

    /// The public base URL of the HTTP listeners for `domain` (no
    /// trailing slash): `[http] external_url`, else the first https, else
    /// the first http listener. `None` without an HTTP listener.
    pub fn http_base_url(&self, domain: &str) -> Option<String> {
        self.config.http.base_url(&self.bound.borrow(), domain)
    }

    /// Completes once the server starts stopping.
    pub async fn stopped(&self) {
        let _ = self.stop_watch.recv().await;
    }

    /// Admits a connection from a trusted reverse proxy: only the global
    /// limit applies (its clients are counted by their own addresses once
    /// a request names them).
    pub fn admit_proxy(self: &Rc<Self>, ip: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let limits = self.limits();
        let ticket = self.admission.borrow_mut().admit_proxied(
            Instant::now(),
            ip,
            limits.max_connections,
        )?;
        let live = self.admission.borrow().total();
        self.release.borrow_mut().admitted(live);
        Ok(ConnectionGuard {
            server: self.clone(),
            ticket,
        })
    }

    /// Counts one more session waiting for resumption, unless as many wait
    /// as `[limits] max_connections` allows connections: then false, and
    /// the session must end instead.
    pub fn start_waiting(&self) -> bool {
        if self.waiting.get() >= self.limits().max_connections {
            return false;
        }
        self.waiting.set(self.waiting.get() + 1);
        true
    }

    /// Counts a waiting session whatever the limit (one restored at start).
    pub fn count_waiting(&self) {
        self.waiting.set(self.waiting.get() + 1);
    }

    pub fn stop_waiting(&self) {
        self.waiting.set(self.waiting.get().saturating_sub(1));
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The chat rooms of every MUC domain.
    pub fn muc(&self) -> &Rc<Rooms> {
        &self.muc
    }

    /// The file upload service's state; `None` when no host offers it.
    pub fn federation(&self) -> &Rc<crate::s2s::Federation> {
        &self.federation
    }

    pub fn components(&self) -> &crate::component::Components {
        &self.components
    }

    pub fn acme_challenges(&self) -> &crate::http::acme_challenge::Challenges {
        &self.acme_challenges
    }

    pub fn upload(&self) -> Option<&Rc<crate::upload::Upload>> {
        self.upload.as_ref()
    }

    /// What the running section scheduled to follow it.
    pub(crate) fn scheduled(&self) -> &Scheduled {
        &self.scheduled
    }

    pub fn hold(&self) -> &Rc<OutputHold> {
        &self.hold
    }

    pub fn login_throttle(&self) -> &RefCell<LoginThrottle> {
        &self.login_throttle
    }

    pub fn log_limit(&self) -> &RefCell<LogLimiter> {
        &self.log_limit
    }

    pub fn registrations(&self) -> &crate::im::register::Throttle {
        &self.registrations
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

    /// The administrators: configured (a reload replaces them) and
    /// granted at run time.
    pub fn admins(&self) -> &ServerAdmins {
        &self.admins
    }

    pub fn new_id(&self) -> String {
        self.ids.new_id()
    }

    // ---- sessions ----

    /// Binds a resource for `account` (see [`Sessions::bind`]).
    pub fn bind(
        &self,
        account: &Jid,
        resource: Option<&str>,
        outbox: Rc<Outbox>,
    ) -> Result<Rc<Session>, StanzaError> {
        self.sessions
            .bind(account, resource, outbox, &self.hold, &self.ids)
    }

    pub fn unbind(&self, session: &Session) {
        self.sessions.unbind(session);
    }

    pub fn session(&self, full: &Jid) -> Option<Rc<Session>> {
        self.sessions.session(full)
    }

    pub fn sessions_of(&self, bare: &Jid) -> Vec<Rc<Session>> {
        self.sessions.sessions_of(bare)
    }

    pub fn session_count(&self) -> usize {
        self.sessions.count()
    }

    pub fn all_sessions(&self) -> Vec<Rc<Session>> {
        self.sessions.all()
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
        self.im.sweep(&self.store, &self.sessions);
        self.sessions.shrink_idle();
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
/// domain served by the one MUC service, its pubsub domain served by the
/// pubsub service, and its upload domain served by the upload service
/// (when an HTTP listener can serve the URLs). (The configuration refuses
/// a domain used twice.)
fn routes(
    config: &Config,
    muc: &Rc<crate::muc::Service>,
    upload: Option<&Rc<crate::upload::Upload>>,
    components: &crate::component::Components,
) -> Routes {
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
    let pubsub: Rc<dyn crate::env::Service> = Rc::new(crate::pubsub::host::PubsubService);
    for host in &config.hosts {
        if let Some(domain) = &host.pubsub
            && let Err(e) = routes.add_service(domain, &host.domain, pubsub.clone())
        {
            log::error!("{e}");
        }
    }
    if let Some(upload) = upload {
        let service: Rc<dyn crate::env::Service> =
            Rc::new(crate::upload::service::UploadService::new(upload.clone()));
        for host in &config.hosts {
            let offered = crate::upload::base_url(config, &host.domain).is_some();
            if let Some(domain) = host.upload.as_ref().filter(|_| offered)
                && let Err(e) = routes.add_service(domain, &host.domain, service.clone())
            {
                log::error!("{e}");
            }
        }
    }
    for (component, config) in components.iter().zip(&config.components) {
        let parent = config.parent.as_deref().unwrap_or_default();
        let service: Rc<dyn crate::env::Service> = component.clone();
        if let Err(e) = routes.add_service(&component.domain, parent, service) {
            log::error!("{e}");
        }
    }
    routes
}

/// The secret dialback keys are made from (XEP-0185), kept in the
/// database so keys handed out before a restart still verify after it.
fn dialback_secret(store: &Store) -> crate::stream::dialback::DialbackSecret {
    let stored = store.secret("s2s-dialback").unwrap_or_else(|e| {
        log::error!("cannot keep the dialback secret: {e}");
        Ids::default().random_bytes::<32>().to_vec()
    });
    let mut secret = [0u8; 32];
    for (slot, byte) in secret.iter_mut().zip(stored.iter()) {
        *slot = *byte;
    }
    crate::stream::dialback::DialbackSecret::new(secret)
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
