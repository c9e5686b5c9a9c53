//! Start-up and shutdown: open the database, load certificates, bind the
//! listeners, serve until told to stop, then close every stream cleanly.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use smol::LocalExecutor;

use crate::config::{Config, DB_FILE, ListenerKind};
use crate::net::{admin, listener, tls};
use crate::reload::Reloader;
use crate::sd_notify::{self, Notifier};
use crate::server::Server;
use crate::store::{Store, StoreError};
use crate::stream::{StreamCondition, StreamError};

/// Pending connections the kernel queues per listener. The standard
/// library listens with 128, which a burst of clients (a router rebooting,
/// a load test) overflows: the kernel then drops SYNs and the clients wait
/// a second or more for their retransmit. Linux caps this at somaxconn.
pub const LISTEN_BACKLOG: i32 = 1024;

#[derive(Debug)]
pub enum RunError {
    Store(StoreError),
    Tls(tls::TlsError),
    Bind(SocketAddr, std::io::Error),
    AdminSocket(std::path::PathBuf, std::io::Error),
    Unsupported(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Store(e) => write!(f, "{e}"),
            RunError::Tls(e) => write!(f, "{e}"),
            RunError::Bind(addr, e) => {
                write!(f, "cannot listen on {addr}: {e}")?;
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    write!(f, " (ports below 1024 need CAP_NET_BIND_SERVICE)")?;
                }
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    write!(f, " (is another XMPP server running?)")?;
                }
                Ok(())
            }
            RunError::AdminSocket(p, e) => {
                write!(f, "cannot create the admin socket {}: {e}", p.display())
            }
            RunError::Unsupported(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for RunError {}

/// A server that has opened everything it needs and is ready to serve.
pub struct Prepared {
    server: Rc<Server>,
    tls: Option<Rc<tls::TlsSetup>>,
    listeners: Vec<(ListenerKind, async_net::TcpListener)>,
    admin: Option<async_net::unix::UnixListener>,
    notifier: Option<Rc<Notifier>>,
}

impl Prepared {
    pub fn server(&self) -> &Rc<Server> {
        &self.server
    }

    /// Tells systemd (or a test) about readiness, reloads and shutdown,
    /// and pings its watchdog.
    pub fn with_notifier(mut self, notifier: Notifier) -> Prepared {
        self.notifier = Some(Rc::new(notifier));
        self
    }

    /// Applies a re-read configuration to the server once it runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            server: self.server.clone(),
            tls: self.tls.clone(),
            notifier: self.notifier.clone(),
        }
    }

    /// Where each listener ended up (port 0 becomes a real port).
    pub fn local_addrs(&self) -> Vec<(ListenerKind, SocketAddr)> {
        self.listeners
            .iter()
            .filter_map(|(k, l)| l.local_addr().ok().map(|a| (*k, a)))
            .collect()
    }
}

/// Opens the database, loads or creates certificates and binds every
/// listener, so that each start-up problem is reported before serving.
pub async fn prepare(config: Config, ex: &LocalExecutor<'static>) -> Result<Prepared, RunError> {
    prepare_with(config, ex, Store::open).await
}

/// [`prepare`], opening the database with `open_store` (tests give it a
/// simulated disk).
pub(crate) async fn prepare_with(
    config: Config,
    ex: &LocalExecutor<'static>,
    open_store: impl FnOnce(&std::path::Path, usize) -> Result<Store, crate::store::StoreError>,
) -> Result<Prepared, RunError> {
    log_data_dir(&config.data_dir);
    // Before anything is opened: files an older version left readable
    // become owner-only (new ones are, by the umask `main` sets).
    crate::file_modes::fix(&config.data_dir);
    let cache = config.storage.cache_bytes();
    let mut store = open_store(&config.data_dir.join(DB_FILE), cache).map_err(RunError::Store)?;
    // Unknown users get SCRAM salts derived from this secret; keeping it
    // stable across restarts keeps them indistinguishable from real ones.
    let secret = store.secret("scram-fake-salt").map_err(RunError::Store)?;
    crate::sasl::init_fake_salt_secret(&secret);
    store.start_committer(ex);
    let tls = tls::TlsSetup::load_or_create(&tls_hosts(&config), &config.data_dir)
        .map_err(RunError::Tls)?;
    let mut listeners = Vec::new();
    for l in &config.listeners {
        let listener = async_net::TcpListener::bind(l.address)
            .await
            .map_err(|e| RunError::Bind(l.address, e))?;
        // Listening again on a listening socket only changes its backlog.
        rustix::net::listen(&listener, LISTEN_BACKLOG)
            .map_err(|e| RunError::Bind(l.address, e.into()))?;
        listeners.push((l.kind, listener));
    }
    let admin = match admin::bind(&config.data_dir) {
        Ok(l) => Some(l),
        Err(e) => {
            return Err(RunError::AdminSocket(
                admin::socket_path(&config.data_dir),
                e,
            ));
        }
    };
    let server = Server::new(config, store);
    server.set_bound_listeners(
        listeners
            .iter()
            .filter_map(|(kind, l): &(ListenerKind, async_net::TcpListener)| {
                let address = l.local_addr().ok()?;
                Some(crate::config::ListenerConfig {
                    kind: *kind,
                    address,
                })
            })
            .collect(),
    );
    Ok(Prepared {
        server,
        tls: Some(Rc::new(tls)),
        listeners,
        admin,
        notifier: None,
    })
}

/// Gives federation its TLS (the trust roots, the hosts' certificates)
/// and the executor its links run on.
fn start_federation(
    server: &Rc<Server>,
    tls: Option<&tls::TlsSetup>,
    ex: &Rc<LocalExecutor<'static>>,
) {
    let federation = server.federation();
    let config = &federation.config;
    let (roots, report) = crate::net::s2s_tls::load_roots(config.ca_file.as_deref());
    log::debug!("s2s trust roots: {report}");
    let s2s_tls = tls.and_then(|tls| match crate::net::s2s_tls::S2sTls::new(tls, roots) {
        Ok(s2s) => Some(std::sync::Arc::new(s2s)),
        Err(e) => {
            log::error!("federation TLS: {e}");
            None
        }
    });
    let own_valid = match (&s2s_tls, tls) {
        (Some(s2s), Some(tls)) => server
            .config()
            .hosts
            .iter()
            .map(|h| {
                let chain = tls.certificate_for(Some(&h.domain)).cert.clone();
                let valid = crate::net::s2s_tls::PeerCertificate::new(
                    chain,
                    crate::net::s2s_tls::PeerRole::Server,
                )
                .is_some_and(|c| {
                    c.is_valid_for(&h.domain, s2s.roots(), rustls::pki_types::UnixTime::now())
                });
                (h.domain.clone(), valid)
            })
            .collect(),
        _ => Default::default(),
    };
    let executor = Rc::downgrade(ex);
    let spawner: crate::s2s::Spawner = Rc::new(move |work| {
        if let Some(ex) = executor.upgrade() {
            ex.spawn(work).detach();
        }
    });
    let (weak_server, executor) = (Rc::downgrade(server), Rc::downgrade(ex));
    let link_starter: crate::s2s::LinkStarter = Rc::new(move |link, commands| {
        if let (Some(server), Some(ex)) = (weak_server.upgrade(), executor.upgrade()) {
            ex.spawn(crate::net::s2s_out::run(server, link, commands))
                .detach();
        }
    });
    federation.start(spawner, link_starter, s2s_tls, own_valid);
}

/// Says where the data is, as an absolute path: the first thing to look at
/// when `perch user …` does not find the accounts a client sees.
fn log_data_dir(data_dir: &std::path::Path) {
    let absolute = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    log::info!("data: {}", absolute.join(DB_FILE).display());
    if data_dir.is_relative() {
        log::warn!(
            "data_dir {} is relative to the directory Perch was started in; `perch user …` run elsewhere will not find it: set data_dir = {:?} in the configuration",
            data_dir.display(),
            absolute.display().to_string()
        );
    }
}

fn tls_hosts(config: &Config) -> Vec<tls::HostCert> {
    config
        .hosts
        .iter()
        .map(|h| {
            // A certificate from ACME also answers for the service names.
            let acme = crate::acme::served(config, h);
            tls::HostCert {
                domain: h.domain.clone(),
                extra_names: acme.as_ref().map_or_else(
                    || h.muc.iter().cloned().collect(),
                    |(_, names)| names.clone(),
                ),
                files: h
                    .certificate
                    .clone()
                    .zip(h.key.clone())
                    .or(acme.map(|(files, _)| files)),
            }
        })
        .collect()
}

/// Starts the ACME renewal task when `[acme]` is on: it obtains and renews
/// the hosts' certificates and reloads them into the running TLS setup.
fn start_acme(
    server: &Rc<Server>,
    tls: Option<Rc<tls::TlsSetup>>,
    ex: &LocalExecutor<'static>,
) -> Option<smol::Task<()>> {
    let acme = server.config().acme.as_ref()?;
    let (roots, report) = crate::net::s2s_tls::load_roots(acme.ca_file.as_deref());
    if report.errors.is_empty() {
        log::debug!("acme trust roots: {report}");
    } else {
        log::warn!("acme trust roots: {report}");
    }
    let weak = Rc::downgrade(server);
    let on_installed = Box::new(move || {
        let (Some(server), Some(tls)) = (weak.upgrade(), tls.as_ref()) else {
            return;
        };
        let config = server.config();
        match tls.reload(&tls_hosts(config), &config.data_dir) {
            Ok(()) => log::info!("acme: new connections get the new certificate"),
            Err(e) => log::error!("acme: the new certificate cannot be served: {e}"),
        }
    });
    let renewal = crate::acme::renewal::Renewal::from_config(
        server.config(),
        server.acme_challenges().clone(),
        roots,
        on_installed,
    )?;
    Some(ex.spawn(renewal.run()))
}

/// Serves until `shutdown` completes, then closes every stream with
/// `system-shutdown` and waits (briefly) for pending writes.
/// How long a server whose disk is full keeps running before it stops to
/// reopen the database (redb takes no writes after an I/O error until it
/// is reopened): with systemd restarting it, one attempt a minute.
const DISK_FULL_GRACE: Duration = Duration::from_secs(60);

/// Why [`serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `shutdown` resolved (SIGTERM, a test).
    Requested,
    /// The database can take no more writes (see
    /// [`crate::store::StoreError::is_storage_failure`]).
    StorageFailed,
}

pub async fn serve(
    prepared: Prepared,
    ex: Rc<LocalExecutor<'static>>,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    let Prepared {
        server,
        tls,
        listeners,
        admin,
        notifier,
    } = prepared;
    // Before anyone connects: a restored session's resource and room nicks
    // are its own again before a new login could take them.
    crate::saved_sessions::restore_all(&server, &ex).await;
    start_federation(&server, tls.as_deref(), &ex);
    let mut tasks = Vec::new();
    tasks.extend(start_acme(&server, tls.clone(), &ex));
    if server.upload().is_some() {
        tasks.push(ex.spawn(crate::upload::expiry::run(server.clone())));
    }
    for (kind, listener) in listeners {
        if let Ok(addr) = listener.local_addr() {
            log::info!("listening for {} on {addr}", kind.describe());
        }
        tasks.push(ex.spawn(listener::accept_loop(
            listener,
            kind,
            server.clone(),
            tls.clone(),
            Rc::downgrade(&ex),
        )));
    }
    if let Some(admin) = admin {
        tasks.push(ex.spawn(admin::serve(admin, server.clone())));
    }
    tasks.push(ex.spawn(save_room_history(server.clone())));
    tasks.push(ex.spawn(push_sweep(server.clone())));
    tasks.push(ex.spawn(crate::archive::cleanup::run(server.clone())));
    tasks.push(ex.spawn(log_repeat_summaries(server.clone())));
    let hosts: Vec<&str> = server
        .config()
        .hosts
        .iter()
        .map(|h| h.domain.as_str())
        .collect();
    log::info!(
        "Perch {} serving {}",
        env!("CARGO_PKG_VERSION"),
        hosts.join(", ")
    );
    if let Some(n) = &notifier {
        n.ready(&sd_notify::status_line(&server));
        tasks.push(ex.spawn(sd_notify::watchdog_loop(n.clone(), server.clone())));
    }
    let stopped = futures_lite::future::or(
        async {
            shutdown.await;
            Stopped::Requested
        },
        async {
            let failure = server.storage_failed().await;
            if failure.disk_full {
                // A restart cannot help before the disk has room again:
                // clients get errors for changes meanwhile, but messages
                // between online users still flow, and a full disk does
                // not become a restart loop.
                log::error!(
                    "the disk holding {} is full: Perch stops in {} s so that the database is reopened once there is room (free some space)",
                    server.store().path().display(),
                    DISK_FULL_GRACE.as_secs()
                );
                smol::Timer::after(DISK_FULL_GRACE).await;
            }
            Stopped::StorageFailed
        },
    )
    .await;
    if stopped == Stopped::StorageFailed {
        log::error!(
            "the database {} can take no more writes (see the error above: a full or failing disk?); stopping so that it is reopened and repaired at the next start",
            server.store().path().display()
        );
    }
    log::info!("shutting down");
    if let Some(n) = &notifier {
        n.stopping();
    }
    drop(tasks);
    // Resumable sessions (XEP-0198) are kept for the next start: their
    // connections close without a word, so the clients resume then; the
    // others end with `system-shutdown`.
    server.set_stopping();
    for session in server.all_sessions() {
        match session.carrier().filter(|_| session.is_resumable()) {
            Some(carrier) => carrier.suspend(),
            None => session
                .outbox
                .close_with(StreamError::new(StreamCondition::SystemShutdown)),
        }
    }
    let drained = async {
        while server.connection_count() > 0 {
            smol::Timer::after(Duration::from_millis(20)).await;
        }
    };
    futures_lite::future::or(drained, async {
        smol::Timer::after(Duration::from_secs(2)).await;
    })
    .await;
    let saved = crate::saved_sessions::save_all(&server).await;
    if saved > 0 {
        log::info!("{saved} resumable sessions saved for the next start");
    }
    futures_lite::future::or(server.muc().flush(&server.env()), async {
        smol::Timer::after(Duration::from_secs(2)).await;
    })
    .await;
    server.store().flush().await;
    for line in server.log_limit().borrow_mut().flush_all() {
        log::info!("{line}");
    }
    let _ = std::fs::remove_file(admin::socket_path(&server.config().data_dir));
    log::info!("stopped");
    stopped
}

/// Saves the changed history of occupied persistent rooms every
/// [`crate::muc::HISTORY_SAVE_INTERVAL`].
async fn save_room_history(server: Rc<Server>) {
    loop {
        smol::Timer::after(crate::muc::HISTORY_SAVE_INTERVAL).await;
        let queued = server.muc().save_changed_history(&server.env());
        if queued > 0 {
            log::debug!("saving the history of {queued} chat rooms");
        }
    }
}

/// Acts on the push work the clock made due (held messages to tell, app
/// servers that did not answer) every [`crate::push::SWEEP_INTERVAL`]; a
/// tick with nothing in flight or held is one check.
async fn push_sweep(server: Rc<Server>) {
    loop {
        smol::Timer::after(crate::push::SWEEP_INTERVAL).await;
        if server.env().push.has_work() {
            // As a section: a disabled registration's removal is written
            // like any other change.
            let _ = crate::durable::run(&server, Box::new(crate::push::sweep)).await;
        }
    }
}

/// Logs, once per window, how often each limited log line repeated
/// (`log_limit`).
async fn log_repeat_summaries(server: Rc<Server>) {
    loop {
        smol::Timer::after(crate::log_limit::WINDOW).await;
        let lines = server
            .log_limit()
            .borrow_mut()
            .flush(std::time::Instant::now());
        for line in lines {
            log::info!("{line}");
        }
    }
}
