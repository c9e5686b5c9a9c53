//! A client connection's byte stream, plain TCP or TLS, behind one type so
//! the connection loop is written once and STARTTLS can swap it in place.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use smol::Async;

/// The accepted socket, registered with the reactor.
pub type TcpStream = Async<std::net::TcpStream>;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// TLS we initiated: an outgoing federation link.
    TlsClient(Box<futures_rustls::client::TlsStream<TcpStream>>),
    /// XMPP over WebSocket (RFC 7395), itself over plain TCP or TLS.
    WebSocket(Box<super::websocket::WebSocketLink<Transport>>),
    /// XMPP over BOSH (XEP-0206): a session's HTTP requests.
    Bosh(Box<super::bosh::link::BoshLink>),
    /// Between taking the TCP stream for a TLS handshake and putting the TLS
    /// stream back; never observed by I/O.
    Upgrading,
}

impl Transport {
    pub fn is_tls(&self) -> bool {
        match self {
            Transport::Tls(_) | Transport::TlsClient(_) => true,
            Transport::WebSocket(link) => link.is_tls(),
            _ => false,
        }
    }

    /// The TLS session a stream may bind to (SCRAM-PLUS). None for a
    /// WebSocket: behind a reverse proxy the TLS session is the proxy's.
    pub fn tls_connection(&self) -> Option<&rustls::ServerConnection> {
        match self {
            Transport::Tls(s) => Some(s.get_ref().1),
            _ => None,
        }
    }

    /// Frees a quiet connection's framing buffers (TCP and TLS hold none
    /// of their own).
    pub fn release_idle(&mut self) {
        match self {
            Transport::WebSocket(link) => link.release_idle(),
            Transport::Bosh(link) => link.release_idle(),
            _ => {}
        }
    }

    /// Reads once the socket has reported readability, without the read
    /// that `poll_read` tries first. After we answered, the peer's next
    /// bytes are not there yet: that first read would only fail with
    /// EAGAIN, a system call per round trip for nothing. TLS reads as
    /// usual (rustls may hold decrypted data the socket no longer shows).
    pub fn poll_read_when_ready(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Transport::Plain(s) => loop {
                ready!(s.poll_readable(cx))?;
                match s.get_ref().read(buf) {
                    // A stale readiness event: wait for the next one.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    result => return Poll::Ready(result),
                }
            },
            other => Pin::new(other).poll_read(cx, buf),
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "transport is being upgraded")
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::WebSocket(l) => Pin::new(l.as_mut()).poll_read(cx, buf),
            Transport::Bosh(l) => Pin::new(l.as_mut()).poll_read(cx, buf),
            Transport::Upgrading => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::WebSocket(l) => Pin::new(l.as_mut()).poll_write(cx, buf),
            Transport::Bosh(l) => Pin::new(l.as_mut()).poll_write(cx, buf),
            Transport::Upgrading => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::WebSocket(l) => Pin::new(l.as_mut()).poll_flush(cx),
            Transport::Bosh(l) => Pin::new(l.as_mut()).poll_flush(cx),
            Transport::Upgrading => Poll::Ready(Err(gone())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_close(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_close(cx),
            Transport::WebSocket(l) => Pin::new(l.as_mut()).poll_close(cx),
            Transport::Bosh(l) => Pin::new(l.as_mut()).poll_close(cx),
            Transport::Upgrading => Poll::Ready(Ok(())),
        }
    }
}
