//! systemd's service notification protocol (sd_notify(3)) in a few lines:
//! datagrams such as `READY=1` sent to the unix socket named by
//! `$NOTIFY_SOCKET`, and the watchdog (`WatchdogSec=` in the unit), which
//! expects `WATCHDOG=1` at least every `$WATCHDOG_USEC` microseconds.
//!
//! The watchdog is pinged from a timer task on the event loop itself, so a
//! loop that is stuck (a blocking call, an endless loop) stops the pings and
//! systemd restarts the service.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::rc::Rc;
use std::time::Duration;

use crate::server::Server;

/// A connection to systemd's notification socket.
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier systemd asked for through the environment, if any.
    /// Problems are logged, not fatal: the server runs without notifications.
    pub fn from_env() -> Option<Notifier> {
        let socket = std::env::var("NOTIFY_SOCKET").ok()?;
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        match Notifier::connect(&socket, watchdog) {
            Ok(n) => Some(n),
            Err(e) => {
                log::warn!("cannot use NOTIFY_SOCKET={socket}: {e}");
                None
            }
        }
    }

    /// A notifier for the socket `socket` (a path, or `@name` for Linux's
    /// abstract namespace) that expects a watchdog ping every `watchdog`.
    pub fn connect(socket: &str, watchdog: Option<Duration>) -> io::Result<Notifier> {
        let address = parse_address(socket)?;
        let socket = UnixDatagram::unbound()?;
        // A full receive queue must never stall the event loop; a lost
        // status update is harmless and the next ping comes soon.
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            socket,
            address,
            watchdog,
        })
    }

    /// How often to ping the watchdog: half the interval systemd enforces,
    /// as sd_watchdog_enabled(3) recommends. `None` when it is off.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Start-up is complete: the listeners accept connections.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// A configuration reload (SIGHUP) began; [`Notifier::ready`] ends it.
    pub fn reloading(&self) {
        self.send("RELOADING=1\nSTATUS=reloading the configuration");
    }

    /// Shutdown began; systemd waits for the process to exit.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=shutting down");
    }

    /// A free-form line shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn watchdog_ping(&self) {
        self.send("WATCHDOG=1");
    }

    fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.address) {
            log::debug!("sd_notify {message:?} failed: {e}");
        }
    }
}

/// Pings the watchdog at [`Notifier::watchdog_period`] and keeps the status
/// line's client count current. Returns at once when the watchdog is off.
pub async fn watchdog_loop(notifier: Rc<Notifier>, server: Rc<Server>) {
    let Some(period) = notifier.watchdog_period() else {
        return;
    };
    let mut shown = None;
    loop {
        notifier.watchdog_ping();
        let clients = server.session_count();
        if shown != Some(clients) {
            notifier.status(&status_line(&server));
            shown = Some(clients);
        }
        smol::Timer::after(period).await;
    }
}

/// What `systemctl status` shows while serving.
pub fn status_line(server: &Server) -> String {
    let hosts: Vec<&str> = server
        .config()
        .hosts
        .iter()
        .map(|h| h.domain.as_str())
        .collect();
    let clients = server.session_count();
    let noun = if clients == 1 { "client" } else { "clients" };
    format!("serving {}; {clients} {noun} online", hosts.join(", "))
}

/// `$NOTIFY_SOCKET` is a filesystem path or, starting with '@', a name in
/// the abstract namespace.
fn parse_address(socket: &str) -> io::Result<SocketAddr> {
    if let Some(name) = socket.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes())
    } else if socket.starts_with('/') {
        SocketAddr::from_pathname(socket)
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "expected an absolute path or an @abstract name",
        ))
    }
}

/// The watchdog interval systemd enforces, from `$WATCHDOG_USEC`; when
/// `$WATCHDOG_PID` is set the watchdog is meant for that process only.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    let usec: u64 = usec?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// A status must stay one line: a newline would start another assignment.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_rules() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(30))
        );
        // Meant for another process (e.g. inherited by a child).
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("30000000"), Some("x"), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("-5"), None, 7), None);
        assert_eq!(watchdog_interval(Some(""), None, 7), None);
    }

    #[test]
    fn addresses() {
        assert!(parse_address("/run/systemd/notify").is_ok());
        let abs = parse_address("@perch/notify").expect("abstract");
        assert_eq!(abs.as_abstract_name(), Some(&b"perch/notify"[..]));
        assert!(parse_address("relative/path").is_err());
        assert!(parse_address("vsock:2:1234").is_err());
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("datagram");
        String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned()
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = crate::testing::TempDir::new("notify");
        let path = dir.path().join("notify.sock");
        let receiver = UnixDatagram::bind(&path).expect("bind");
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = Notifier::connect(path.to_str().expect("utf-8"), Some(Duration::from_secs(10)))
            .expect("connect");
        assert_eq!(n.watchdog_period(), Some(Duration::from_secs(5)));
        n.ready("serving a\nb");
        assert_eq!(receive(&receiver), "READY=1\nSTATUS=serving a b");
        n.watchdog_ping();
        assert_eq!(receive(&receiver), "WATCHDOG=1");
        n.reloading();
        assert!(receive(&receiver).starts_with("RELOADING=1\n"));
        n.stopping();
        assert!(receive(&receiver).starts_with("STOPPING=1\n"));
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        let name = format!("perch-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let receiver = UnixDatagram::bind_addr(&addr).expect("bind");
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = Notifier::connect(&format!("@{name}"), None).expect("connect");
        assert_eq!(n.watchdog_period(), None);
        n.status("hello");
        assert_eq!(receive(&receiver), "STATUS=hello");
    }

    #[test]
    fn a_missing_receiver_is_not_an_error() {
        let n = Notifier::connect("/nonexistent/notify.sock", None).expect("connect");
        n.ready("nobody listens");
    }
}
