//! An external component's connection (XEP-0114): the handshake of
//! `stream::component`, then stanzas both ways. What the component sends
//! is routed like any stanza, one at a time in order; what the server
//! routes to the component's domain arrives in the queue it attached to
//! its route table entry.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::component::ComponentRoute;
use crate::outbox::Outbox;
use crate::server::{ConnectionGuard, Server};
use crate::stream::component::{ComponentAction, ComponentEnv, ComponentStream};
use crate::stream::{StreamCondition, StreamError};
use crate::xml::Limits;

use super::link_io::{InFlight, LinkIo, LinkWake};
use super::transport::{TcpStream, Transport};

/// Time a connection gets to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A whitespace keepalive after this long without output, so a dead peer
/// is noticed by TCP.
const KEEPALIVE: Duration = Duration::from_secs(60);

struct Env<'a> {
    server: &'a Server,
}

impl ComponentEnv for Env<'_> {
    fn secret_for(&self, domain: &str) -> Option<&str> {
        self.server.components().get(domain).map(|c| c.secret())
    }

    fn new_stream_id(&self) -> String {
        self.server.new_id()
    }

    fn is_connected(&self, domain: &str) -> bool {
        self.server
            .components()
            .get(domain)
            .is_some_and(|c| c.connected_since().is_some())
    }
}

pub async fn serve(
    tcp: TcpStream,
    server: Rc<Server>,
    peer: std::net::SocketAddr,
    guard: ConnectionGuard,
) {
    let _ = tcp.get_ref().set_nodelay(true);
    let limits = Limits {
        max_stanza_bytes: server.limits().max_stanza_bytes,
        ..Limits::default()
    };
    let stall = Duration::from_secs(u64::from(server.config().c2s.write_timeout_secs));
    let mut io = LinkIo::new(Transport::Plain(tcp), limits, peer, stall);
    let outbox = Outbox::new();
    let mut stream = ComponentStream::new();
    let mut attached: Option<Rc<ComponentRoute>> = None;
    let started = Instant::now();
    let mut actions = Vec::new();
    let mut in_flight = InFlight::default();
    'link: loop {
        let deadline = if attached.is_some() {
            io.last_output + KEEPALIVE
        } else {
            started + HANDSHAKE_TIMEOUT
        };
        let queue = attached.as_ref().map(|_| &outbox);
        match io.wait(queue, deadline, server.stopped()).await {
            LinkWake::Input => loop {
                let event = match io.next_event() {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(e) => {
                        stream.fail(StreamError::from(&e), &mut io.stream_out, &mut actions);
                        break;
                    }
                };
                stream.on_event(
                    &Env { server: &server },
                    event,
                    &mut io.stream_out,
                    &mut actions,
                );
                if stream.is_closed() {
                    break;
                }
            },
            LinkWake::Output => {
                if let Some(error) = outbox.take_close() {
                    stream.fail(error, &mut io.stream_out, &mut actions);
                }
            }
            LinkWake::Timer if attached.is_some() => io.stream_out.push(b' '),
            LinkWake::Timer => stream.fail(
                StreamError::with_text(
                    StreamCondition::ConnectionTimeout,
                    "no handshake within 30 seconds",
                ),
                &mut io.stream_out,
                &mut actions,
            ),
            LinkWake::Other(()) => stream.fail(
                StreamError::new(StreamCondition::SystemShutdown),
                &mut io.stream_out,
                &mut actions,
            ),
            LinkWake::Eof | LinkWake::Error(_) => break 'link,
        }
        let mut closing = false;
        for action in actions.drain(..) {
            match action {
                ComponentAction::Authenticated { domain } => {
                    let Some(route) = server.components().get(&domain).cloned() else {
                        continue;
                    };
                    if route.attach(&outbox) {
                        log::info!("component {domain} connected from {peer}");
                        guard.ticket().input_at(Instant::now());
                        attached = Some(route);
                    } else {
                        log::warn!("component {domain}: refused a second connection from {peer}");
                        let mut more = Vec::new();
                        stream.fail(
                            StreamError::with_text(
                                StreamCondition::Conflict,
                                format!("{domain} is already connected"),
                            ),
                            &mut io.stream_out,
                            &mut more,
                        );
                        closing = true;
                    }
                }
                ComponentAction::Route { stanza, to } => {
                    // Flushed first: what the component was told precedes
                    // what its stanza causes.
                    if !io.flush(attached.as_ref().map(|_| &outbox), false).await {
                        break 'link;
                    }
                    in_flight.route(&server, stanza, to).await;
                }
                ComponentAction::Close => closing = true,
            }
        }
        let queue = attached.as_ref().map(|_| &outbox);
        if !io.flush(queue, closing).await {
            break;
        }
        if closing {
            io.close().await;
            break;
        }
    }
    in_flight.settle(0).await;
    if let Some(route) = attached {
        route.detach(&outbox);
        log::info!("component {} disconnected", route.domain);
    }
    drop(guard);
}
