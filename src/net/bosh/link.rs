//! A BOSH session seen from the client stream loop: a byte-stream
//! transport, like a socket. What the client's requests carry comes out
//! of `poll_read` (with a stream header at creation and at each restart);
//! what the stream writes goes, element by element, into the session's
//! responses. The requests themselves are the glue's (`glue.rs`).
//!
//! The link lives as long as the stream: when the session runs out of
//! requests for `inactivity`, reads end as if the socket closed, and a
//! resumable session hibernates (XEP-0198) like any other.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures_lite::{AsyncRead, AsyncWrite, FutureExt};
use smol::Timer;

use super::body::Condition;
use super::session::{BoshSession, Input, RequestId};
use crate::net::framing::{OutPiece, OutputSplitter};

/// The state a session's HTTP requests and its stream share (one thread:
/// `Rc<RefCell<…>>`, never borrowed across an await).
pub struct Shared {
    pub session: BoshSession,
    /// The stream's domain (the creation request's `to`).
    pub domain: String,
    /// The stream counts as encrypted (see the HTTP listener).
    pub secure: bool,
    /// Bytes for the XML framer, from `input_at` on.
    input: Vec<u8>,
    input_at: usize,
    /// The stream loop waiting for input.
    reader: Option<Waker>,
    /// Responses waiting for their HTTP request to pick them up.
    responses: HashMap<RequestId, Rc<[u8]>>,
    /// HTTP requests waiting for their response.
    waiters: HashMap<RequestId, Waker>,
    splitter: OutputSplitter,
    payload: Vec<u8>,
    /// No more input: the client terminated, the session expired or broke
    /// a rule, or the stream ended.
    input_ended: bool,
    /// The stream loop is gone: requests get no new output.
    stream_gone: bool,
}

pub type SharedRef = Rc<RefCell<Shared>>;

impl Shared {
    pub fn new(session: BoshSession, domain: String, lang: Option<&str>, secure: bool) -> Shared {
        let mut shared = Shared {
            session,
            domain,
            secure,
            input: Vec::new(),
            input_at: 0,
            reader: None,
            responses: HashMap::new(),
            waiters: HashMap::new(),
            splitter: OutputSplitter::new(),
            payload: Vec::new(),
            input_ended: false,
            stream_gone: false,
        };
        shared.push_header(lang);
        shared
    }

    /// A stream header as a TCP client would send it: BOSH has none of
    /// its own (the body attributes stand for it).
    fn push_header(&mut self, lang: Option<&str>) {
        self.input.extend_from_slice(
            b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='",
        );
        crate::xml::escape_attr_into(&self.domain, &mut self.input);
        self.input.push(b'\'');
        if let Some(lang) = lang {
            self.input.extend_from_slice(b" xml:lang='");
            crate::xml::escape_attr_into(lang, &mut self.input);
            self.input.push(b'\'');
        }
        self.input.push(b'>');
    }

    /// Moves what the session released into the stream's input.
    pub fn pump_input(&mut self) {
        while let Some(input) = self.session.take_input() {
            match input {
                Input::Payload(bytes) => self.input.extend_from_slice(&bytes),
                Input::Restart => self.push_header(None),
                Input::Terminate => {
                    self.input.extend_from_slice(b"</stream:stream>");
                    self.input_ended = true;
                }
            }
        }
        if self.session.is_terminated() {
            self.input_ended = true;
        }
        if (self.input_at < self.input.len() || self.input_ended)
            && let Some(reader) = self.reader.take()
        {
            reader.wake();
        }
    }

    /// Collects the responses due now and wakes their requests.
    pub fn deliver(&mut self, now: Instant) {
        for (rid, bytes) in self.session.due(now) {
            self.responses.insert(rid, bytes);
            if let Some(waiter) = self.waiters.remove(&rid) {
                waiter.wake();
            }
        }
    }

    /// The response for `rid`, once due; registers `waker` until then.
    pub fn poll_response(&mut self, rid: RequestId, waker: &Waker) -> Option<Rc<[u8]>> {
        if let Some(bytes) = self.responses.remove(&rid) {
            return Some(bytes);
        }
        self.waiters.insert(rid, waker.clone());
        None
    }

    /// Another HTTP request took over `rid`: the earlier one is told to
    /// give up (its waker is replaced; it sees no response).
    pub fn replace_waiter(&mut self, rid: RequestId) -> Option<Waker> {
        self.waiters.remove(&rid)
    }

    pub fn is_over(&self) -> bool {
        self.stream_gone && self.session.is_terminated() && self.waiters.is_empty()
    }

    /// The stream wrote `bytes`: its elements become response payload.
    fn push_output(&mut self, bytes: &[u8]) {
        self.splitter.push(bytes);
        let mut payload = std::mem::take(&mut self.payload);
        let mut error = false;
        while let Some(piece) = self.splitter.next_piece(&mut payload) {
            match piece {
                OutPiece::Open(attrs) => {
                    let id = attrs.id.unwrap_or_default();
                    let from = attrs.from.unwrap_or_else(|| self.domain.clone());
                    self.session.opened(&id, &from, self.secure);
                }
                OutPiece::Element => {
                    error = payload.starts_with(b"<stream:error");
                    self.session.push_output(&payload);
                }
                OutPiece::Close => {
                    self.session
                        .close(error.then_some(Condition::RemoteStreamError));
                    self.input_ended = true;
                }
                OutPiece::Keepalive => {}
            }
        }
        payload.clear();
        self.payload = payload;
        self.deliver(Instant::now());
    }
}

/// The stream loop's end of a BOSH session.
pub struct BoshLink {
    shared: SharedRef,
    timer: Timer,
    armed: Option<Instant>,
}

impl BoshLink {
    pub fn new(shared: SharedRef) -> BoshLink {
        BoshLink {
            shared,
            timer: Timer::never(),
            armed: None,
        }
    }

    pub fn release_idle(&mut self) {
        let mut shared = self.shared.borrow_mut();
        if shared.input_at >= shared.input.len() {
            shared.input = Vec::new();
            shared.input_at = 0;
        }
        shared.payload = Vec::new();
        shared.splitter.release();
    }
}

impl Drop for BoshLink {
    fn drop(&mut self) {
        // The stream is over: whatever is held gets its final answer.
        let mut shared = self.shared.borrow_mut();
        shared.stream_gone = true;
        shared.session.close(None);
        shared.deliver(Instant::now());
    }
}

impl AsyncRead for BoshLink {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let now = Instant::now();
            let deadline = {
                let mut shared = this.shared.borrow_mut();
                let shared = &mut *shared;
                if shared.input_at < shared.input.len() {
                    let available = shared.input.get(shared.input_at..).unwrap_or_default();
                    let n = available.len().min(buf.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(..n), available.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    shared.input_at += n;
                    if shared.input_at >= shared.input.len() {
                        shared.input.clear();
                        shared.input_at = 0;
                    }
                    return Poll::Ready(Ok(n));
                }
                shared.deliver(now);
                if shared.session.expired(now) {
                    shared.input_ended = true;
                }
                if shared.input_ended {
                    return Poll::Ready(Ok(0));
                }
                shared.reader = Some(cx.waker().clone());
                shared.session.next_deadline()
            };
            let Some(deadline) = deadline else {
                return Poll::Pending;
            };
            if this.armed != Some(deadline) {
                this.timer.set_at(deadline);
                this.armed = Some(deadline);
            }
            match this.timer.poll(cx) {
                Poll::Ready(_) => this.armed = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for BoshLink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = self.shared.borrow_mut();
        if shared.session.is_terminated() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        shared.push_output(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = self.shared.borrow_mut();
        shared.session.close(None);
        shared.deliver(Instant::now());
        Poll::Ready(Ok(()))
    }
}
