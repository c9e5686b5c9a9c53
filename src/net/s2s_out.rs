//! An outgoing federation link's task: find the remote server (a static
//! route, or DNS SRV with the A/AAAA fallback), connect, run the
//! `stream::s2s_out` negotiation (STARTTLS, SASL EXTERNAL or dialback),
//! then drain the link's queue into the stream. Dialback verifications
//! asked by incoming links go out on the same stream. A link that fails
//! returns what it held with the error its failure calls for; an idle one
//! closes after `[s2s] idle_timeout_secs`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use rustls::pki_types::ServerName;
use smol::channel::{Receiver, Sender};
use smol::{Async, Timer};

use crate::dns::targets::s2s_targets;
use crate::s2s::{LinkCommand, OutLink, bounce_all};
use crate::server::Server;
use crate::stanza::Condition;
use crate::stream::s2s_in::AuthMethod;
use crate::stream::s2s_out::{OutAction, OutEnv, S2sOut};
use crate::stream::{StreamCondition, StreamError};
use crate::xml::Limits;

use super::link_io::{LinkIo, LinkWake};
use super::transport::Transport;

/// One address gets this long to accept the TCP connection.
const CONNECT_ATTEMPT: Duration = Duration::from_secs(5);
/// A whitespace keepalive after this long without output (RFC 6120 §4.6.1).
const KEEPALIVE: Duration = Duration::from_secs(60);
/// The TLS handshake's bound.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

struct LinkEnv<'a> {
    server: &'a Server,
    /// Our certificate for the link's local domain would pass the peer's
    /// check.
    sasl_external: bool,
}

impl OutEnv for LinkEnv<'_> {
    fn dialback_key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        self.server
            .federation()
            .dialback_key(receiving, originating, stream_id)
    }

    fn may_use_sasl_external(&self) -> bool {
        self.sasl_external
    }
}

pub async fn run(server: Rc<Server>, link: Rc<OutLink>, commands: Receiver<LinkCommand>) {
    let federation = server.federation().clone();
    let connect_timeout = Duration::from_secs(u64::from(federation.config.connect_timeout_secs));
    let deadline = Instant::now() + connect_timeout;
    let connected = future::or(async { Some(connect(&server, &link).await) }, async {
        Timer::at(deadline).await;
        None
    })
    .await;
    let (transport, direct_tls, address) = match connected {
        Some(Ok(found)) => found,
        Some(Err(why)) => {
            log::info!("s2s {} → {}: {why}", link.local, link.remote);
            return give_up(
                &server,
                &link,
                &commands,
                Condition::RemoteServerNotFound,
                &why,
            )
            .await;
        }
        None => {
            let why = format!(
                "no connection to {} within {} s",
                link.remote,
                connect_timeout.as_secs()
            );
            log::info!("s2s {} → {}: {why}", link.local, link.remote);
            return give_up(
                &server,
                &link,
                &commands,
                Condition::RemoteServerTimeout,
                &why,
            )
            .await;
        }
    };
    link.connected_to(address);
    log::debug!(
        "s2s {} → {}: connected to {address}",
        link.local,
        link.remote
    );
    let limits = Limits {
        max_stanza_bytes: server.limits().max_stanza_bytes,
        ..Limits::default()
    };
    let stall = Duration::from_secs(u64::from(server.config().c2s.write_timeout_secs));
    let mut io = LinkIo::new(transport, limits, address, stall);
    let require_encryption = federation.config.requires_encryption(Some(&link.remote));
    let mut stream = S2sOut::new(&link.local, &link.remote, direct_tls, require_encryption);
    let env = LinkEnv {
        server: &server,
        sasl_external: federation.own_certificate_valid(&link.local),
    };
    stream.start(&mut io.stream_out);
    if !io.flush(None, false).await {
        return give_up(
            &server,
            &link,
            &commands,
            Condition::RemoteServerNotFound,
            &format!("{address} closed the connection"),
        )
        .await;
    }
    let idle = Duration::from_secs(u64::from(federation.config.idle_timeout_secs));
    let mut verifies: HashMap<String, Sender<Option<bool>>> = HashMap::new();
    let mut actions = Vec::new();
    let mut failure: Option<(Condition, String)> = None;
    let mut last_traffic = Instant::now();
    'link: loop {
        let ready = link.is_ready();
        // Stanzas either way keep a link; whitespace keepalives (which let
        // TCP notice a dead peer) do not.
        let idle_at = last_traffic + idle;
        let keepalive_at = io.last_output + KEEPALIVE;
        let timer = if ready {
            idle_at.min(keepalive_at)
        } else {
            deadline
        };
        let queue = ready.then_some(&link.outbox);
        let other = future::or(async { commands.recv().await.ok() }, async {
            server.stopped().await;
            None
        });
        match io.wait(queue, timer, other).await {
            LinkWake::Input => loop {
                match io.next_event() {
                    Ok(Some(event)) => {
                        last_traffic = Instant::now();
                        stream.on_event(&env, event, &mut io.stream_out, &mut actions)
                    }
                    Ok(None) => break,
                    Err(e) => {
                        stream.fail(StreamError::from(&e), &mut io.stream_out, &mut actions);
                        break;
                    }
                }
                if stream.is_closed() {
                    break;
                }
            },
            LinkWake::Output => {
                last_traffic = Instant::now();
                if let Some(error) = link.outbox.take_close() {
                    stream.fail(error, &mut io.stream_out, &mut actions);
                }
            }
            LinkWake::Other(Some(LinkCommand::Verify {
                stream_id,
                key,
                reply,
            })) => {
                verifies.insert(stream_id.clone(), reply);
                let (local, remote) = (link.local.clone(), link.remote.clone());
                stream.request_verify(
                    &local,
                    &remote,
                    &stream_id,
                    &key,
                    &mut io.stream_out,
                    &mut actions,
                );
            }
            LinkWake::Other(None) => {
                if server.is_stopping() {
                    stream.fail(
                        StreamError::new(StreamCondition::SystemShutdown),
                        &mut io.stream_out,
                        &mut actions,
                    );
                }
            }
            LinkWake::Timer if ready && Instant::now() < idle_at => io.stream_out.push(b' '),
            LinkWake::Timer if ready => {
                log::debug!("s2s {} → {}: idle, closing", link.local, link.remote);
                stream.close(&mut io.stream_out, &mut actions);
            }
            LinkWake::Timer => {
                failure = Some((
                    Condition::RemoteServerTimeout,
                    format!(
                        "{} did not authenticate this server within {} s",
                        link.remote,
                        connect_timeout.as_secs()
                    ),
                ));
                stream.fail(
                    StreamError::new(StreamCondition::ConnectionTimeout),
                    &mut io.stream_out,
                    &mut actions,
                );
            }
            LinkWake::Eof | LinkWake::Error(_) => break 'link,
        }
        let mut closing = false;
        for action in std::mem::take(&mut actions) {
            match action {
                OutAction::StartTls => {
                    if !io.flush(None, false).await {
                        break 'link;
                    }
                    match client_handshake(&server, &link, io.take_transport(), false).await {
                        Ok(tls) => {
                            io.transport = tls;
                            io.restart();
                            stream.tls_established(&mut io.stream_out);
                        }
                        Err(why) => {
                            failure = Some((Condition::RemoteServerTimeout, why));
                            break 'link;
                        }
                    }
                }
                OutAction::Restart => io.restart(),
                OutAction::Ready => {
                    let method = stream.method().unwrap_or(AuthMethod::Dialback);
                    log::info!(
                        "s2s {} → {}: authenticated ({method:?}) at {address}",
                        link.local,
                        link.remote
                    );
                    link.ready(method);
                }
                OutAction::Authenticated { .. } | OutAction::NotAuthenticated { .. } => {}
                OutAction::VerifyResult {
                    stream_id, valid, ..
                } => {
                    if let Some(reply) = verifies.remove(&stream_id) {
                        let _ = reply.try_send(valid);
                    }
                }
                OutAction::Failed { condition, text } => {
                    log::info!("s2s {} → {}: {text}", link.local, link.remote);
                    failure = Some((condition.bounce_condition(), text));
                }
                OutAction::Close => closing = true,
            }
        }
        let queue = link.is_ready().then_some(&link.outbox);
        if !io.flush(queue, closing).await {
            break;
        }
        if closing {
            io.close().await;
            break;
        }
    }
    for (_, reply) in verifies {
        let _ = reply.try_send(None);
    }
    let (condition, text) = failure.unwrap_or((
        Condition::RemoteServerTimeout,
        format!("the link to {} closed", link.remote),
    ));
    give_up(&server, &link, &commands, condition, &text).await;
}

/// Ends the link: forgets it, answers waiting verifications with "no
/// answer", and returns what it held with `condition`.
async fn give_up(
    server: &Rc<Server>,
    link: &Rc<OutLink>,
    commands: &Receiver<LinkCommand>,
    condition: Condition,
    text: &str,
) {
    server.federation().outgoing_ended(link);
    commands.close();
    while let Ok(LinkCommand::Verify { reply, .. }) = commands.try_recv() {
        let _ = reply.try_send(None);
    }
    let mut held = link.close();
    // Stanzas queued after the link was ready but never written (the peer
    // closed first): returned like the held ones, not lost.
    let mut unsent = crate::outbox::Batch::default();
    link.outbox.take_everything(&mut unsent);
    held.extend(
        unsent
            .stanzas()
            .filter_map(crate::im::undelivered::parse_serialized),
    );
    if held.is_empty() {
        return;
    }
    let text = text.to_string();
    let work: crate::env::Continuation =
        Box::new(move |env| bounce_all(env, held, condition, &text));
    let _ = crate::durable::run(server, work).await;
}

/// Finds and connects to the remote server: (transport, direct TLS, the
/// address), or why not.
async fn connect(server: &Server, link: &OutLink) -> Result<(Transport, bool, SocketAddr), String> {
    let federation = server.federation();
    let remote = &link.remote;
    let mut candidates: Vec<(SocketAddr, bool)> = Vec::new();
    let mut refused_private = false;
    if let Some(route) = federation.config.route(remote) {
        candidates.push((route.address, route.direct_tls));
    } else {
        let resolver = federation.resolver();
        let targets = s2s_targets(&resolver, remote).await;
        if targets.is_empty() {
            return Err(format!(
                "{remote} does not offer federation (its SRV record is \".\")"
            ));
        }
        for target in targets {
            let ips = match resolver.ips(&target.host).await {
                Ok(ips) => ips,
                Err(e) => {
                    log::debug!("s2s → {remote}: {e}");
                    continue;
                }
            };
            for ip in ips {
                if !federation.config.allow_private_addresses && is_private(ip) {
                    refused_private = true;
                    continue;
                }
                candidates.push((SocketAddr::new(ip, target.port), target.direct_tls));
            }
        }
    }
    if candidates.is_empty() {
        return Err(if refused_private {
            format!(
                "{remote} resolves only to private addresses ([s2s] allow_private_addresses is off)"
            )
        } else {
            format!("no address found for {remote}")
        });
    }
    let mut last_error = String::new();
    for (address, direct_tls) in candidates {
        let attempt = future::or(
            async { Some(Async::<std::net::TcpStream>::connect(address).await) },
            async {
                Timer::after(CONNECT_ATTEMPT).await;
                None
            },
        )
        .await;
        let tcp = match attempt {
            Some(Ok(tcp)) => tcp,
            Some(Err(e)) => {
                last_error = format!("{address}: {e}");
                continue;
            }
            None => {
                last_error = format!(
                    "{address}: no answer within {} s",
                    CONNECT_ATTEMPT.as_secs()
                );
                continue;
            }
        };
        let _ = tcp.get_ref().set_nodelay(true);
        let transport = Transport::Plain(tcp);
        if !direct_tls {
            return Ok((transport, false, address));
        }
        match client_handshake(server, link, transport, true).await {
            Ok(tls) => return Ok((tls, true, address)),
            Err(why) => last_error = format!("{address}: {why}"),
        }
    }
    Err(format!("cannot connect to {remote}: {last_error}"))
}

/// The TLS handshake as client, presenting our certificate for the link's
/// local domain; the peer's certificate is judged later (dialback or
/// SASL EXTERNAL).
async fn client_handshake(
    server: &Server,
    link: &OutLink,
    transport: Transport,
    direct_tls: bool,
) -> Result<Transport, String> {
    let Transport::Plain(tcp) = transport else {
        return Err("the connection is already encrypted".to_string());
    };
    let tls = server
        .federation()
        .tls()
        .ok_or_else(|| "no TLS set up for federation".to_string())?;
    let config = tls
        .client_config(&link.local, direct_tls)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let name = ServerName::try_from(link.remote.clone())
        .map_err(|e| format!("{} is not a valid server name: {e}", link.remote))?;
    let connect = futures_rustls::TlsConnector::from(config).connect(name, tcp);
    match future::or(async { Some(connect.await) }, async {
        Timer::after(HANDSHAKE_TIMEOUT).await;
        None
    })
    .await
    {
        Some(Ok(stream)) => Ok(Transport::TlsClient(Box::new(stream))),
        Some(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        None => Err("the TLS handshake did not finish in time".to_string()),
    }
}

/// Loopback, private, link-local and unspecified addresses: a remote
/// domain pointing there is a mistake or an attack on the local network.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_private;

    #[test]
    fn private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "169.254.0.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2001:db8::1", "100.128.0.1"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }
}
