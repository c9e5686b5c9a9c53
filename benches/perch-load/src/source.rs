//! TCP connections from a chosen loopback source address (127.0.0.0/8 all
//! reach a server on 127.0.0.1 on Linux), so one tool can look like many
//! clients' addresses to a server that counts per address. The socket must
//! be bound before it connects, which std cannot do: rustix makes it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
use smol::Async;
use smol::net::TcpStream;

use crate::conn::{ClientError, timeout};

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::INET,
        IpAddr::V6(_) => AddressFamily::INET6,
    }
}

/// Connects to `to` from `source` (any free port), within `limit`.
///
/// The socket closes with a reset (SO_LINGER 0): no TIME_WAIT is left on
/// this side, so thousands of short connections a second from one source
/// address do not use up its ephemeral ports within the minute a
/// TIME_WAIT lasts. A client that drops its connections this way is also
/// what a password guesser looks like.
pub async fn connect_from(
    source: IpAddr,
    to: SocketAddr,
    limit: Duration,
) -> Result<TcpStream, ClientError> {
    let io_err = |e: rustix::io::Errno| ClientError::Io("connect", io::Error::from(e));
    if family(source) != family(to.ip()) {
        return Err(ClientError::Io(
            "connect",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("source {source} and server {} differ in family", to.ip()),
            ),
        ));
    }
    let fd = rustix::net::socket_with(
        family(source),
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io_err)?;
    sockopt::set_socket_linger(&fd, Some(Duration::ZERO)).map_err(io_err)?;
    rustix::net::bind(&fd, &SocketAddr::new(source, 0)).map_err(io_err)?;
    // Non-blocking: the connect completes in the reactor, so a server whose
    // accept queue is full delays this task and not the executor thread.
    match rustix::net::connect(&fd, &to) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {}
        Err(e) => return Err(io_err(e)),
    }
    let stream =
        Async::new(std::net::TcpStream::from(fd)).map_err(|e| ClientError::Io("connect", e))?;
    timeout(limit, "connect", async {
        stream
            .writable()
            .await
            .map_err(|e| ClientError::Io("connect", e))?;
        match stream.get_ref().take_error() {
            Ok(None) => Ok(()),
            Ok(Some(e)) | Err(e) => Err(ClientError::Io("connect", e)),
        }
    })
    .await?;
    Ok(TcpStream::from(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    #[test]
    fn the_server_sees_the_chosen_source_address() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
        let to = listener.local_addr().expect("bound");
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 9, 7));
        let _client = smol::block_on(connect_from(source, to, Duration::from_secs(5)))
            .expect("connects from 127.0.9.7");
        let (_server_side, peer) = listener.accept().expect("accepted");
        assert_eq!(peer.ip(), source);
    }

    #[test]
    fn a_closed_port_is_an_error_not_a_hang() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("listen");
            l.local_addr().expect("bound").port()
        };
        let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 9, 8));
        assert!(smol::block_on(connect_from(source, to, Duration::from_secs(5))).is_err());
    }
}
