//! One exchange with one name server: a datagram, and over TCP again if the
//! answer was truncated (RFC 1035 §4.2, RFC 7766).
//!
//! Every wait is bounded by the timeout: the UDP exchange gets one, the TCP
//! retry (connect, write, read) another, so an exchange takes at most twice
//! the timeout whatever the server or the network does.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use async_net::{TcpStream, UdpSocket};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use smol::Timer;

use super::DnsError;
use super::message::{MAX_MESSAGE_BYTES, Query, Rejected, Reply};

/// Asks `server` for `query`, within `timeout` for the datagram exchange and
/// as much again for a TCP retry. Never returns [`Reply::Truncated`].
pub async fn exchange(
    server: SocketAddr,
    query: &Query,
    timeout: Duration,
) -> Result<Reply, DnsError> {
    let bytes = query.to_bytes()?;
    match within(timeout, query, udp(server, query, &bytes)).await? {
        Reply::Truncated => {
            log::debug!(
                "DNS answer from {server} for {} truncated; asking over TCP",
                query.label()
            );
            within(timeout, query, tcp(server, query, &bytes)).await
        }
        reply => Ok(reply),
    }
}

/// `work`, or [`DnsError::Timeout`] once `timeout` has passed.
async fn within(
    timeout: Duration,
    query: &Query,
    work: impl Future<Output = Result<Reply, DnsError>>,
) -> Result<Reply, DnsError> {
    future::or(work, async {
        Timer::after(timeout).await;
        Err(DnsError::Timeout {
            name: query.label(),
        })
    })
    .await
}

fn io_error(query: &Query, source: io::Error) -> DnsError {
    DnsError::Io {
        name: query.label(),
        source,
    }
}

/// Sends the query from a fresh socket (a random port the kernel picks)
/// and waits for an answer that is from the server and answers this
/// question; everything else is dropped and the wait goes on.
async fn udp(server: SocketAddr, query: &Query, bytes: &[u8]) -> Result<Reply, DnsError> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        SocketAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| io_error(query, e))?;
    // Connected, the kernel already drops datagrams from elsewhere and
    // reports an ICMP "port unreachable" as an error, so a server that is
    // down fails at once instead of after the timeout.
    socket
        .connect(server)
        .await
        .map_err(|e| io_error(query, e))?;
    socket.send(bytes).await.map_err(|e| io_error(query, e))?;
    let mut buffer = vec![0; MAX_MESSAGE_BYTES];
    loop {
        let (len, from) = socket
            .recv_from(&mut buffer)
            .await
            .map_err(|e| io_error(query, e))?;
        if from.ip() != server.ip() || from.port() != server.port() {
            log::debug!(
                "DNS: dropped a datagram from {from} while asking {server} for {}",
                query.label()
            );
            continue;
        }
        match query.read_reply(buffer.get(..len).unwrap_or_default()) {
            Ok(reply) => return Ok(reply),
            Err(Rejected::NotOurs(why)) => log::debug!(
                "DNS: dropped an answer from {server} for {}: {why}",
                query.label()
            ),
            Err(Rejected::Malformed(why)) => {
                return Err(DnsError::Malformed {
                    name: query.label(),
                    why: format!("{why} (from {server})"),
                });
            }
        }
    }
}

/// The same over TCP: each message is prefixed with its length in two
/// bytes, which also caps an answer at 64 KiB.
async fn tcp(server: SocketAddr, query: &Query, bytes: &[u8]) -> Result<Reply, DnsError> {
    let io = |e| io_error(query, e);
    let malformed = |why: String| DnsError::Malformed {
        name: query.label(),
        why: format!("{why} (from {server} over TCP)"),
    };
    let len = u16::try_from(bytes.len()).map_err(|_| malformed("query too long".into()))?;
    let mut framed = Vec::with_capacity(2 + bytes.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);

    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    stream.write_all(&framed).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut prefix = [0; 2];
    stream.read_exact(&mut prefix).await.map_err(io)?;
    let mut answer = vec![0; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut answer).await.map_err(io)?;
    match query.read_reply(&answer) {
        Ok(Reply::Truncated) => Err(malformed("truncated even over TCP".into())),
        Ok(reply) => Ok(reply),
        // On a connection of its own, an answer to something else is
        // simply wrong.
        Err(Rejected::NotOurs(why)) => Err(malformed(why.into())),
        Err(Rejected::Malformed(why)) => Err(malformed(why)),
    }
}
