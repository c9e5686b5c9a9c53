//! The I/O half of the server's own links (federation streams and external
//! components): one socket, one framer, the stream's own bytes and an
//! outbound queue, waited on together. The rules of each kind of link are
//! sans-I/O state machines in `stream`; this is what they share of the
//! socket side, so each link's loop is a short match over its actions.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWriteExt, future};
use smol::Timer;

use crate::durable::{self, Routed};
use crate::jid::Jid;
use crate::outbox::{Batch, Gate, Outbox, Release};
use crate::server::Server;
use crate::xml::Element;
use crate::xml::{FrameEvent, Framer, Limits, XmlError};

use super::connection::write::{within, write_progressing};
use super::transport::Transport;

const READ_CHUNK: usize = 16 * 1024;
/// A link this long without traffic frees its buffers.
const QUIET_RELEASE: Duration = Duration::from_secs(10);
/// How long the peer gets to answer our `</stream:stream>` with its own.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why a link's wait ended; `T` is what the caller's own future gave.
pub enum LinkWake<T> {
    /// Bytes arrived and are in the framer.
    Input,
    /// The outbound queue has stanzas (or was closed).
    Output,
    /// The deadline passed.
    Timer,
    /// The caller's future finished first (the server stops, a command).
    Other(T),
    Eof,
    Error(io::Error),
}

pub struct LinkIo {
    pub transport: Transport,
    pub framer: Framer,
    /// The stream's own bytes: header, features, negotiation, errors.
    pub stream_out: Vec<u8>,
    pub peer: SocketAddr,
    pub last_input: Instant,
    pub last_output: Instant,
    /// Bytes read since the link began (for rates and `perch s2s list`).
    pub bytes_in: u64,
    batch: Batch,
    write_stall: Duration,
}

impl LinkIo {
    pub fn new(
        transport: Transport,
        limits: Limits,
        peer: SocketAddr,
        write_stall: Duration,
    ) -> Self {
        let now = Instant::now();
        LinkIo {
            transport,
            framer: Framer::new(limits),
            stream_out: Vec::new(),
            peer,
            last_input: now,
            last_output: now,
            bytes_in: 0,
            batch: Batch::default(),
            write_stall,
        }
    }

    /// The transport, for a TLS handshake that puts the new one back.
    pub fn take_transport(&mut self) -> Transport {
        std::mem::replace(&mut self.transport, Transport::Upgrading)
    }

    /// A new stream starts on the same connection (after TLS or SASL).
    pub fn restart(&mut self) {
        self.framer.reset();
    }

    pub fn next_event(&mut self) -> Result<Option<FrameEvent>, XmlError> {
        self.framer.next_event()
    }

    /// Waits for input, output queued in `outbox`, the deadline or
    /// `other`, whichever comes first. A link quiet for [`QUIET_RELEASE`]
    /// gives its parse and write buffers back meanwhile.
    pub async fn wait<T>(
        &mut self,
        outbox: Option<&Rc<Outbox>>,
        deadline: Instant,
        other: impl std::future::Future<Output = T>,
    ) -> LinkWake<T> {
        let mut other = std::pin::pin!(other);
        loop {
            let quiet = Instant::now() + QUIET_RELEASE;
            let release = deadline > quiet;
            match self
                .wait_once(outbox, deadline.min(quiet), other.as_mut())
                .await
            {
                LinkWake::Timer if release => self.release_idle(),
                wake => return wake,
            }
        }
    }

    /// Frees the buffers a quiet link does not need.
    fn release_idle(&mut self) {
        self.framer.release_idle();
        if self.batch.is_empty() {
            self.batch = Batch::default();
        }
        if self.stream_out.is_empty() {
            self.stream_out = Vec::new();
        }
    }

    async fn wait_once<T>(
        &mut self,
        outbox: Option<&Rc<Outbox>>,
        deadline: Instant,
        other: Pin<&mut impl std::future::Future<Output = T>>,
    ) -> LinkWake<T> {
        let transport = &mut self.transport;
        let framer = &mut self.framer;
        let bytes_in = &mut self.bytes_in;
        let last_input = &mut self.last_input;
        let io = future::poll_fn(|cx| {
            if let Some(outbox) = outbox
                && outbox.poll_ready(cx).is_ready()
            {
                return Poll::Ready(LinkWake::Output);
            }
            let mut chunk = [0u8; READ_CHUNK];
            match Pin::new(&mut *transport).poll_read(cx, &mut chunk) {
                Poll::Ready(Ok(0)) => Poll::Ready(LinkWake::Eof),
                Poll::Ready(Ok(n)) => {
                    framer.push(chunk.get(..n).unwrap_or_default());
                    *bytes_in += n as u64;
                    *last_input = Instant::now();
                    Poll::Ready(LinkWake::Input)
                }
                Poll::Ready(Err(e)) => Poll::Ready(LinkWake::Error(e)),
                Poll::Pending => Poll::Pending,
            }
        });
        let timer = async {
            Timer::at(deadline).await;
            LinkWake::Timer
        };
        let stop = async { LinkWake::Other(other.await) };
        future::or(io, future::or(timer, stop)).await
    }

    /// Writes the stream's own bytes, then what `outbox` released; when
    /// `closing`, the queued stanzas go first and the stream's closing
    /// bytes last. False if the peer is gone or stopped reading.
    pub async fn flush(&mut self, outbox: Option<&Rc<Outbox>>, closing: bool) -> bool {
        if let Some(outbox) = outbox {
            outbox.drain(&mut self.batch);
        }
        if self.stream_out.is_empty() && self.batch.is_empty() {
            return true;
        }
        let stall = self.write_stall;
        let result = async {
            if !closing && !self.stream_out.is_empty() {
                write_progressing(&mut self.transport, &self.stream_out, stall).await?;
            }
            if !self.batch.is_empty() {
                write_progressing(&mut self.transport, self.batch.bytes(), stall).await?;
            }
            if closing && !self.stream_out.is_empty() {
                write_progressing(&mut self.transport, &self.stream_out, stall).await?;
            }
            within(stall, self.transport.flush()).await
        }
        .await;
        self.stream_out.clear();
        self.batch.clear();
        if let Err(e) = result {
            log::debug!("{}: write failed: {e}", self.peer);
            return false;
        }
        self.last_output = Instant::now();
        true
    }

    /// After `</stream:stream>`: a moment for the peer's own, then close.
    pub async fn close(&mut self) {
        let transport = &mut self.transport;
        let wait_for_peer = async {
            let mut buf = [0u8; 256];
            loop {
                match future::poll_fn(|cx| Pin::new(&mut *transport).poll_read(cx, &mut buf)).await
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        future::or(wait_for_peer, async {
            Timer::after(CLOSE_GRACE).await;
        })
        .await;
        let _ = future::or(self.transport.close(), async {
            Timer::after(CLOSE_GRACE).await;
            Ok(())
        })
        .await;
    }
}

/// Messages a link handed to the router whose writes are not yet on disk,
/// at most this many: the link reads on meanwhile, so a burst commits
/// together (as a client's does).
const MAX_IN_FLIGHT: usize = 64;

/// The stanzas a link routed that are still in flight, oldest first.
#[derive(Default)]
pub struct InFlight {
    gates: std::collections::VecDeque<Rc<Gate>>,
}

impl InFlight {
    /// Routes `stanza` from the link: a message is pipelined behind the
    /// ones in flight; anything else first waits for all of them (its
    /// handler may read what they wrote).
    pub async fn route(&mut self, server: &Server, stanza: Element, to: Jid) {
        let limit = if &*stanza.name == "message" {
            MAX_IN_FLIGHT - 1
        } else {
            0
        };
        self.settle(limit).await;
        if let Routed::InFlight(gate) = durable::route_from_link(server, stanza, to).await
            && gate.state() == Release::Held
        {
            self.gates.push_back(gate);
        }
    }

    /// Waits until at most `limit` are in flight.
    pub async fn settle(&mut self, limit: usize) {
        while let Some(oldest) = self.gates.front() {
            if oldest.state() == Release::Held {
                if self.gates.len() <= limit {
                    return;
                }
                oldest.settled().await;
            }
            self.gates.pop_front();
        }
    }
}
