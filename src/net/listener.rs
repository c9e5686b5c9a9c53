//! Accept loops: one task per listening socket, admitting connections
//! within the configured limits and spawning a task for each.

use std::rc::{Rc, Weak};

use async_net::TcpListener;
use smol::LocalExecutor;

use crate::config::ListenerKind;
use crate::server::Server;

use super::connection::{self, ConnectionParams};
use super::tls::TlsSetup;

pub async fn accept_loop(
    listener: TcpListener,
    kind: ListenerKind,
    server: Rc<Server>,
    tls: Option<Rc<TlsSetup>>,
    executor: Weak<LocalExecutor<'static>>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept failed: {e}");
                smol::Timer::after(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let guard = match server.admit(peer.ip()) {
            Ok(g) => g,
            Err(reason) => {
                log::info!("refusing connection from {peer}: {reason}");
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
            ListenerKind::S2s => {
                // Federation is not served yet; the listener is refused at
                // start-up, so nothing arrives here.
                drop(params);
            }
        }
    }
}
