//! One HTTP/1.1 connection's I/O: request heads read within the limits
//! and timeouts, responses written, request bodies read within their
//! length. What each request gets is `http_server.rs`'s.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWriteExt, FutureExt, future};
use smol::{LocalExecutor, Timer};

use crate::http::Response;
use crate::http::request::{RequestHead, parse_head};
use crate::server::Server;

use super::transport::Transport;

const READ_CHUNK: usize = 8192;

/// One HTTP connection's state between requests.
pub(crate) struct HttpConnection {
    pub(crate) server: Rc<Server>,
    pub(crate) peer: SocketAddr,
    pub(crate) transport: Transport,
    /// Bytes read past the last request (pipelining, or the body start).
    pub(crate) buffered: Vec<u8>,
    pub(crate) tls: bool,
    pub(crate) timeout: Duration,
    pub(crate) executor: Weak<LocalExecutor<'static>>,
}

/// A request refused before it reached an endpoint, with its answer.
pub(crate) struct Refused(pub(crate) Response);

impl HttpConnection {
    /// Reads the next request head. `Ok(None)`: the client closed, the
    /// idle keep-alive time passed or the server stops, between requests.
    pub(crate) async fn read_head(&mut self, first: bool) -> Result<Option<RequestHead>, Refused> {
        let config = &self.server.config().http;
        let max = config.max_head_bytes;
        let idle = Duration::from_secs(u64::from(config.keepalive_secs));
        // The first request has `timeout` to arrive whole; a kept-alive
        // connection may idle for `keepalive_secs` before its next one.
        let mut deadline = Instant::now() + if first { self.timeout } else { idle };
        let mut started = first;
        loop {
            match parse_head(&self.buffered, max) {
                Ok(Some((head, len))) => {
                    self.buffered.drain(..len);
                    return Ok(Some(head));
                }
                Ok(None) => {}
                Err(e) => {
                    log::debug!("{}: {e}", self.peer);
                    return Err(Refused(Response::text(e.status(), e.to_string())));
                }
            }
            if !self.buffered.is_empty() && !started {
                started = true;
                deadline = Instant::now() + self.timeout;
            }
            let server = self.server.clone();
            let read = self.read_more(deadline).or(async {
                server.stopped().await;
                ReadMore::Stopped
            });
            match read.await {
                ReadMore::Data => {}
                ReadMore::Closed | ReadMore::Stopped if self.buffered.is_empty() => {
                    return Ok(None);
                }
                ReadMore::Closed | ReadMore::Stopped => return Ok(None),
                ReadMore::TimedOut if !started => return Ok(None),
                ReadMore::TimedOut => {
                    return Err(Refused(Response::text(
                        408,
                        "the request head did not arrive in time ([http] request_timeout_secs)",
                    )));
                }
            }
        }
    }

    async fn read_more(&mut self, deadline: Instant) -> ReadMore {
        let transport = &mut self.transport;
        let buffered = &mut self.buffered;
        // The chunk lives on the stack for the read only, not in this
        // future's state: every HTTP connection's task would carry it.
        let read = future::poll_fn(|cx| {
            let mut chunk = [0u8; READ_CHUNK];
            match Pin::new(&mut *transport).poll_read(cx, &mut chunk) {
                Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(ReadMore::Closed),
                Poll::Ready(Ok(n)) => {
                    buffered.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    Poll::Ready(ReadMore::Data)
                }
                Poll::Pending => Poll::Pending,
            }
        });
        read.or(async {
            Timer::at(deadline).await;
            ReadMore::TimedOut
        })
        .await
    }

    /// Writes `response` (head and in-memory body). False if the client
    /// is gone.
    pub(crate) async fn respond(&mut self, response: &Response, keep_alive: bool) -> bool {
        let mut bytes = Vec::with_capacity(256 + response.body.len());
        response.write_head(&mut bytes, keep_alive);
        bytes.extend_from_slice(&response.body);
        self.write_all(&bytes).await.is_ok()
    }

    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let transport = &mut self.transport;
        let write = async {
            transport.write_all(bytes).await?;
            transport.flush().await
        };
        write
            .or(async {
                Timer::after(self.timeout).await;
                Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled"))
            })
            .await
    }
}

pub(crate) enum ReadMore {
    Data,
    Closed,
    TimedOut,
    Stopped,
}

/// A request body, read from the connection within its length and the
/// request timeout (each read must make progress within it).
pub(crate) struct BodyReader<'a> {
    conn: &'a mut HttpConnection,
    remaining: u64,
    timer: Timer,
}

impl<'a> BodyReader<'a> {
    pub(crate) fn new(conn: &'a mut HttpConnection, length: u64) -> BodyReader<'a> {
        let timeout = conn.timeout;
        BodyReader {
            conn,
            remaining: length,
            timer: Timer::after(timeout),
        }
    }

    /// Bytes of the body not read (yet).
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl AsyncRead for BodyReader<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.remaining == 0 || buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if !this.conn.buffered.is_empty() {
            let n = want.min(this.conn.buffered.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), this.conn.buffered.get(..n)) {
                dst.copy_from_slice(src);
            }
            this.conn.buffered.drain(..n);
            this.remaining -= n as u64;
            return Poll::Ready(Ok(n));
        }
        let dst = buf.get_mut(..want).unwrap_or_default();
        match Pin::new(&mut this.conn.transport).poll_read(cx, dst) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
            Poll::Ready(Ok(n)) => {
                this.remaining -= n as u64;
                this.timer.set_after(this.conn.timeout);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match Pin::new(&mut this.timer).poll(cx) {
                Poll::Ready(_) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body stalled ([http] request_timeout_secs)",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
