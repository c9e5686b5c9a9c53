//! In-process servers and temporary directories for tests (unit tests,
//! the scansion runner, interop tests). Small enough to ship in the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{Config, ListenerKind};

mod power_cut;
#[cfg(test)]
pub mod world;

pub use power_cut::{CutMode, PowerCut};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("perch-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        if let Err(e) = std::fs::create_dir_all(&path) {
            panic!("cannot create test directory {}: {e}", path.display());
        }
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[derive(Default, Clone)]
pub struct TestOptions {
    /// Accounts to create before start: (bare JID, password).
    pub accounts: Vec<(String, String)>,
    /// TOML appended to the test configuration.
    pub extra_config: String,
    /// The database on this simulated disk instead of a file.
    pub disk: Option<PowerCut>,
}

/// A server on its own thread, on ephemeral loopback ports, with a fresh
/// data directory: plaintext c2s with PLAIN allowed (as the scansion
/// scripts expect), STARTTLS offered, and a direct-TLS port.
pub struct TestServer {
    c2s: SocketAddr,
    c2s_tls: Option<SocketAddr>,
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
    /// Every bound listener, for kinds without an accessor of their own.
    listeners: Vec<(ListenerKind, SocketAddr)>,
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: Option<TempDir>,
}

pub const TEST_CONFIG: &str = r#"
log_level = "warn"
admins = ["admin@localhost"]

[[host]]
domain = "localhost"

[[listener]]
kind = "c2s"
address = "127.0.0.1"
port = 0

[[listener]]
kind = "c2s-tls"
address = "127.0.0.1"
port = 0

[[listener]]
kind = "http"
address = "127.0.0.1"
port = 0

[c2s]
require_encryption = false
allow_plaintext_auth = true
"#;

impl TestServer {
    pub fn start(opts: TestOptions) -> std::io::Result<TestServer> {
        let dir = TempDir::new("server");
        Self::start_in(dir, opts)
    }

    fn start_in(dir: TempDir, opts: TestOptions) -> std::io::Result<TestServer> {
        let mut text = format!(
            "data_dir = \"{}\"\n{TEST_CONFIG}\n{}",
            dir.path().display(),
            opts.extra_config
        );
        // Tests send traffic to loopback only: unless a test sets up
        // federation itself, remote domains are looked up at a loopback
        // port where nothing answers (at once: the port is closed), never
        // through the machine's resolver.
        if !opts.extra_config.contains("[s2s]") {
            text.push_str("\n[s2s]\ndns_server = \"127.0.0.1:9\"\n");
        }
        let config = Config::from_toml_str(&text, "test config")
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let accounts = opts.accounts;
        let disk = opts.disk;
        let thread = std::thread::Builder::new()
            .name("perch-test-server".into())
            .spawn(move || {
                let ex = Rc::new(smol::LocalExecutor::new());
                smol::block_on(ex.run(async {
                    let opened = match disk {
                        Some(disk) => {
                            crate::run::prepare_with(config, &ex, |path, cache| {
                                crate::store::Store::open_with_backend(disk, path, cache)
                            })
                            .await
                        }
                        None => crate::run::prepare(config, &ex).await,
                    };
                    let prepared = match opened {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let server = prepared.server().clone();
                    for (jid, password) in &accounts {
                        let cmd = crate::admin::Command::UserAdd {
                            jid: jid.clone(),
                            password: password.clone(),
                            reuse_deleted: false,
                        };
                        if let Err(e) = crate::admin::execute(&server, &cmd).await {
                            let _ = ready_tx.send(Err(format!("creating {jid}: {e}")));
                            return;
                        }
                    }
                    let _ = ready_tx.send(Ok(prepared.local_addrs()));
                    crate::run::serve(prepared, ex.clone(), async {
                        let _ = stop_rx.recv().await;
                    })
                    .await;
                }));
            })?;
        let addrs = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("test server thread died"))?
            .map_err(std::io::Error::other)?;
        let find = |kind| addrs.iter().find(|(k, _)| *k == kind).map(|(_, a)| *a);
        let c2s =
            find(ListenerKind::C2s).ok_or_else(|| std::io::Error::other("no c2s listener"))?;
        Ok(TestServer {
            c2s,
            c2s_tls: find(ListenerKind::C2sTls),
            http: find(ListenerKind::Http),
            https: find(ListenerKind::Https),
            listeners: addrs.clone(),
            stop: Some(stop_tx),
            thread: Some(thread),
            dir: Some(dir),
        })
    }

    pub fn c2s_addr(&self) -> SocketAddr {
        self.c2s
    }

    pub fn c2s_tls_addr(&self) -> Option<SocketAddr> {
        self.c2s_tls
    }

    /// The plain HTTP listener (WebSocket, BOSH, upload, discovery).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// An `https` listener, when the test's config added one.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https
    }

    /// The first listener of `kind` the test's config added.
    pub fn listener_addr(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, addr)| *addr)
    }

    pub fn data_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(TempDir::path)
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.try_send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops the server and starts a new one on the same data directory
    /// (new ports): for persistence tests.
    pub fn restart(mut self, opts: TestOptions) -> std::io::Result<TestServer> {
        self.shutdown();
        let dir = self
            .dir
            .take()
            .ok_or_else(|| std::io::Error::other("no data directory"))?;
        Self::start_in(dir, opts)
    }

    /// Stops the server, runs `offline` on its data directory (what the
    /// command line does when no server runs), then starts a new server
    /// there (new ports).
    pub fn restart_after(
        mut self,
        opts: TestOptions,
        offline: impl FnOnce(&Path),
    ) -> std::io::Result<TestServer> {
        self.shutdown();
        let dir = self
            .dir
            .take()
            .ok_or_else(|| std::io::Error::other("no data directory"))?;
        offline(dir.path());
        Self::start_in(dir, opts)
    }

    /// Whether the server stopped without being asked (its storage
    /// failed), within `limit`.
    pub fn stops_by_itself_within(&self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn stop(mut self) {
        self.shutdown();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Multiplies a test's timeout by `PERCH_TEST_TIME_SCALE` (a whole number,
/// 1 when unset or unreadable). `cross/perch-cross test` sets it when the
/// suite runs under qemu-user, where everything is 10–50 times slower: a
/// timeout there bounds how long a test waits for an answer; it does not
/// measure how fast the server is on real hardware.
pub fn scaled(base: std::time::Duration) -> std::time::Duration {
    let scale = std::env::var("PERCH_TEST_TIME_SCALE")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1);
    base * scale
}
