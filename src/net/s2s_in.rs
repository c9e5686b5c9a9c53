//! An incoming federation link: a remote server connected to an `s2s` or
//! `s2s-tls` listener. `stream::s2s_in` decides; this task does the TLS
//! handshakes, asks the authoritative server about dialback keys (over
//! our outgoing link to it, without holding up its reads), routes the
//! stanzas the peer may send, and reads no faster than `[s2s]
//! rate_bytes_per_sec`.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use rustls::pki_types::UnixTime;
use smol::Timer;

use crate::s2s::IncomingLink;
use crate::server::{ConnectionGuard, Server};
use crate::stream::s2s_in::{InAction, InEnv, S2sIn};
use crate::stream::{StreamCondition, StreamError};
use crate::xml::Limits;

use super::link_io::{InFlight, LinkIo, LinkWake};
use super::s2s_tls::{PeerCertificate, S2sTls};
use super::transport::{TcpStream, Transport};

/// The peer must be authenticated within this.
const AUTH_TIMEOUT: Duration = Duration::from_secs(60);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

struct Env<'a> {
    server: &'a Server,
    tls: Option<&'a S2sTls>,
    certificate: Option<&'a PeerCertificate>,
}

impl InEnv for Env<'_> {
    fn is_local_host(&self, domain: &str) -> bool {
        self.server.federation().is_local(domain)
    }

    fn new_stream_id(&self) -> String {
        self.server.new_id()
    }

    fn dialback_key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        self.server
            .federation()
            .dialback_key(receiving, originating, stream_id)
    }

    fn requires_encryption(&self, peer: Option<&str>) -> bool {
        self.server.federation().config.requires_encryption(peer)
    }

    fn requires_valid_certificate(&self, peer: &str) -> bool {
        self.server
            .federation()
            .config
            .requires_valid_certificate(peer)
    }

    fn is_refused(&self, peer: &str) -> bool {
        let federation = self.server.federation();
        !federation.config.enabled
            || federation.config.is_refused(peer)
            || !federation.may_accept_from(peer)
    }

    fn certificate_valid_for(&self, peer: &str) -> bool {
        match (self.certificate, self.tls) {
            (Some(cert), Some(tls)) => cert.is_valid_for(peer, tls.roots(), UnixTime::now()),
            _ => false,
        }
    }
}

/// A dialback answer coming back to the stream that asked.
struct Verified {
    originating: String,
    receiving: String,
    valid: Option<bool>,
}

pub async fn serve(
    tcp: TcpStream,
    server: Rc<Server>,
    peer: SocketAddr,
    guard: ConnectionGuard,
    direct_tls: bool,
) {
    let federation = server.federation().clone();
    let Some(record) = federation.admit_incoming(peer) else {
        log::info!("s2s from {peer}: refused, [s2s] max_links reached");
        return;
    };
    log::debug!("s2s from {peer}: connected");
    serve_link(tcp, &server, peer, direct_tls, &record).await;
    log::debug!("s2s from {peer}: closed");
    federation.incoming_ended(&record);
    drop(guard);
}

async fn serve_link(
    tcp: TcpStream,
    server: &Rc<Server>,
    peer: SocketAddr,
    direct_tls: bool,
    record: &Rc<IncomingLink>,
) {
    let federation = server.federation().clone();
    let tls = federation.tls();
    let _ = tcp.get_ref().set_nodelay(true);
    let mut transport = Transport::Plain(tcp);
    let mut certificate = None;
    if direct_tls {
        let Some(setup) = tls.as_ref() else {
            return;
        };
        match handshake(setup.direct_config(), transport).await {
            Some((t, cert)) => {
                transport = t;
                certificate = cert;
            }
            None => {
                log::debug!("s2s from {peer}: TLS handshake failed");
                return;
            }
        }
    }
    let limits = Limits {
        max_stanza_bytes: server.limits().max_stanza_bytes,
        ..Limits::default()
    };
    let stall = Duration::from_secs(u64::from(server.config().c2s.write_timeout_secs));
    let mut io = LinkIo::new(transport, limits, peer, stall);
    let mut stream = S2sIn::new(direct_tls, tls.is_some());
    let (verified_tx, verified_rx) = smol::channel::unbounded::<Verified>();
    let started = Instant::now();
    let idle = Duration::from_secs(u64::from(federation.config.idle_timeout_secs));
    let rate = f64::from(federation.config.rate_bytes_per_sec);
    let mut actions = Vec::new();
    let mut in_flight = InFlight::default();
    let mut last_traffic = Instant::now();
    'link: loop {
        let authenticated = !stream.authenticated_pairs().is_empty();
        let deadline = if authenticated {
            last_traffic + idle
        } else {
            started + AUTH_TIMEOUT
        };
        let other = future::or(async { verified_rx.recv().await.ok() }, async {
            server.stopped().await;
            None
        });
        let env = Env {
            server,
            tls: tls.as_deref(),
            certificate: certificate.as_ref(),
        };
        match io.wait(None, deadline, other).await {
            LinkWake::Input => loop {
                match io.next_event() {
                    Ok(Some(event)) => {
                        // Elements keep a link; whitespace keepalives do not.
                        last_traffic = Instant::now();
                        stream.on_event(&env, event, &mut io.stream_out, &mut actions)
                    }
                    Ok(None) => break,
                    Err(e) => {
                        stream.fail(
                            &env,
                            StreamError::from(&e),
                            &mut io.stream_out,
                            &mut actions,
                        );
                        break;
                    }
                }
                if stream.is_closed() {
                    break;
                }
            },
            LinkWake::Output => {}
            LinkWake::Other(Some(answer)) => stream.dialback_verified(
                &env,
                &answer.originating,
                &answer.receiving,
                answer.valid,
                &mut io.stream_out,
                &mut actions,
            ),
            LinkWake::Other(None) => stream.fail(
                &env,
                StreamError::new(StreamCondition::SystemShutdown),
                &mut io.stream_out,
                &mut actions,
            ),
            LinkWake::Timer if authenticated => {
                log::debug!("s2s from {peer}: idle, closing");
                stream.fail(
                    &env,
                    StreamError::with_text(StreamCondition::ConnectionTimeout, "idle link"),
                    &mut io.stream_out,
                    &mut actions,
                );
            }
            LinkWake::Timer => stream.fail(
                &env,
                StreamError::with_text(
                    StreamCondition::ConnectionTimeout,
                    format!("not authenticated within {} s", AUTH_TIMEOUT.as_secs()),
                ),
                &mut io.stream_out,
                &mut actions,
            ),
            LinkWake::Eof | LinkWake::Error(_) => break 'link,
        }
        let mut closing = false;
        for action in std::mem::take(&mut actions) {
            match action {
                InAction::StartTls => {
                    if !io.flush(None, false).await {
                        break 'link;
                    }
                    let Some(setup) = tls.as_ref() else {
                        break 'link;
                    };
                    match handshake(setup.starttls_config(), io.take_transport()).await {
                        Some((t, cert)) => {
                            io.transport = t;
                            certificate = cert;
                            io.restart();
                            stream.tls_established();
                        }
                        None => {
                            log::debug!("s2s from {peer}: TLS handshake failed");
                            break 'link;
                        }
                    }
                }
                InAction::Restart => io.restart(),
                InAction::VerifyDialback {
                    originating,
                    receiving,
                    stream_id,
                    key,
                } => {
                    let federation = federation.clone();
                    let reply = verified_tx.clone();
                    federation.clone().spawn(async move {
                        let valid = federation
                            .verify(&receiving, &originating, &stream_id, &key)
                            .await;
                        let _ = reply
                            .send(Verified {
                                originating,
                                receiving,
                                valid,
                            })
                            .await;
                    });
                }
                InAction::Authenticated {
                    peer: domain,
                    local,
                    method,
                } => {
                    log::info!("s2s {domain} → {local}: authenticated ({method:?}) from {peer}");
                    record.authenticated(&domain, &local, method);
                }
                InAction::Route { stanza, from, to } => {
                    log::trace!("s2s from {peer}: {} {from} → {to}", stanza.name);
                    record.count_in();
                    if !io.flush(None, false).await {
                        break 'link;
                    }
                    in_flight.route(server, stanza, to).await;
                }
                InAction::Close => closing = true,
            }
        }
        if !io.flush(None, closing).await {
            break;
        }
        if closing {
            io.close().await;
            break;
        }
        // Faster than the rate on average since the link began: pause
        // reading until it is back within it (one second's worth of
        // burst allowed).
        let allowed = rate * (started.elapsed().as_secs_f64() + 1.0);
        let excess = io.bytes_in as f64 - allowed;
        if excess > 0.0 {
            Timer::after(Duration::from_secs_f64((excess / rate).min(10.0))).await;
        }
    }
    in_flight.settle(0).await;
}

/// The server side of a TLS handshake, asking for the peer's certificate.
async fn handshake(
    config: Arc<rustls::ServerConfig>,
    transport: Transport,
) -> Option<(Transport, Option<PeerCertificate>)> {
    let Transport::Plain(tcp) = transport else {
        return None;
    };
    let accept = futures_rustls::TlsAcceptor::from(config).accept(tcp);
    let tls = future::or(async { accept.await.ok() }, async {
        Timer::after(HANDSHAKE_TIMEOUT).await;
        None
    })
    .await?;
    let cert = PeerCertificate::of_client(tls.get_ref().1);
    Some((Transport::Tls(Box::new(tls)), cert))
}
