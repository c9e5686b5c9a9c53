//! Accept loops: one task per listening socket, admitting connections
//! within the configured limits and spawning a task for each.

use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use async_net::TcpListener;
use rustix::net::SocketFlags;
use smol::{Async, LocalExecutor};

use crate::config::ListenerKind;
use crate::log_limit::Repeated;
use crate::server::Server;

use super::connection::{self, ConnectionParams};
use super::http_server::{self, HttpParams};
use super::tls::TlsSetup;
use super::transport::TcpStream;

/// Accepts a connection whose socket is non-blocking from the start, which
/// saves the system call that would make it so afterwards.
async fn accept(listener: &Async<std::net::TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    let (fd, peer) = listener
        .read_with(|l| {
            rustix::net::acceptfrom_with(l, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
                .map_err(io::Error::from)
        })
        .await?;
    let peer = peer
        .and_then(|p| SocketAddr::try_from(p).ok())
        .ok_or_else(|| io::Error::other("accepted a connection without an IP address"))?;
    Ok((Async::new_nonblocking(std::net::TcpStream::from(fd))?, peer))
}

pub async fn accept_loop(
    listener: TcpListener,
    kind: ListenerKind,
    server: Rc<Server>,
    tls: Option<Rc<TlsSetup>>,
    executor: Weak<LocalExecutor<'static>>,
) {
    let listener: Arc<Async<std::net::TcpListener>> = listener.into();
    loop {
        let (tcp, peer) = match accept(&listener).await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept failed: {e}");
                smol::Timer::after(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let http = matches!(kind, ListenerKind::Http | ListenerKind::Https);
        // A trusted reverse proxy carries many clients: they are counted
        // by their own addresses once its requests name them.
        let admitted = if http && server.config().http.is_trusted_proxy(peer.ip()) {
            server.admit_proxy(peer.ip())
        } else {
            server.admit(peer.ip())
        };
        let guard = match admitted {
            Ok(g) => g,
            Err(refusal) => {
                // A flood of these must not become a flood of log lines.
                let reason = refusal.reason();
                let event = Repeated::Refused(reason);
                let now = std::time::Instant::now();
                if server
                    .log_limit()
                    .borrow_mut()
                    .should_log(now, event, peer.ip())
                {
                    log::info!("refusing connection from {peer}: {reason}");
                }
                continue;
            }
        };
        let Some(executor) = executor.upgrade() else {
            return;
        };
        let params = ConnectionParams {
            server: server.clone(),
            tls: tls.clone(),
            peer,
            direct_tls: kind == ListenerKind::C2sTls,
            guard,
        };
        match kind {
            ListenerKind::C2s | ListenerKind::C2sTls => {
                executor.spawn(connection::serve(tcp, params)).detach();
            }
            ListenerKind::Http | ListenerKind::Https => {
                let params = HttpParams {
                    server: params.server,
                    tls: params.tls,
                    peer,
                    https: kind == ListenerKind::Https,
                    guard: params.guard,
                    executor: Rc::downgrade(&executor),
                };
                executor.spawn(http_server::serve(tcp, params)).detach();
            }
            ListenerKind::Component => {
                executor
                    .spawn(super::component::serve(
                        tcp,
                        params.server,
                        peer,
                        params.guard,
                    ))
                    .detach();
            }
            ListenerKind::S2s | ListenerKind::S2sTls => {
                let direct_tls = kind == ListenerKind::S2sTls;
                executor
                    .spawn(super::s2s_in::serve(
                        tcp,
                        params.server,
                        peer,
                        params.guard,
                        direct_tls,
                    ))
                    .detach();
            }
        }
    }
}
