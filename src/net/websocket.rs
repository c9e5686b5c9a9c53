//! XMPP over WebSocket (RFC 7395) as a byte-stream transport: the client
//! connection loop reads and writes the same `jabber:client` stream as
//! over TCP, and this link turns it into one text frame per element
//! (`<open/>`, `<close/>`) and back. Frames are decoded and encoded with
//! `soketto`'s sans-I/O codec; the XMPP translation is `framing.rs`.
//!
//! Every buffer is freed when empty and idle (`release_idle`), so an idle
//! WebSocket client costs about what a TCP one does.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite};
use soketto::Parsing;
use soketto::base::{Codec, Header, OpCode};

use super::framing::{InputTranslator, OutPiece, OutputSplitter};

/// Bytes read from the socket per call.
const READ_CHUNK: usize = 4096;
/// Encoded output beyond which writes wait for the socket.
const HIGH_WATER: usize = 64 << 10;

/// Why the link failed in a way the stream should be told about (the
/// connection turns it into a stream error before closing).
#[derive(Debug)]
pub struct FramingViolation(pub String);

impl std::fmt::Display for FramingViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FramingViolation {}

fn violation(text: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, FramingViolation(text.into()))
}

/// `T` is the byte stream under the frames (plain TCP or TLS).
pub struct WebSocketLink<T> {
    inner: T,
    /// The inner stream is TLS.
    tls: bool,
    codec: Codec,
    /// Bytes from the socket, decoded up to `raw_at`.
    raw_in: Vec<u8>,
    raw_at: usize,
    /// A framing violation met after frames whose input is still to be
    /// read: reported once that input is out.
    failed: Option<io::Error>,
    /// The violation was reported: no more input.
    broken: bool,
    /// A fragmented text message being put together.
    message: Vec<u8>,
    /// Translated input for the XML framer, from `ready_at` on.
    ready: Vec<u8>,
    ready_at: usize,
    /// Encoded frames for the socket, from `out_at` on.
    raw_out: Vec<u8>,
    out_at: usize,
    splitter: OutputSplitter,
    payload: Vec<u8>,
    max_message: usize,
    /// The client sent a close frame (or the link broke): reads end.
    read_closed: bool,
    close_sent: bool,
    /// The status our close frame carries (RFC 6455 §7.4.1): 1000, or why
    /// the client's input was refused.
    close_code: u16,
}

impl<T: AsyncRead + AsyncWrite + Unpin> WebSocketLink<T> {
    /// `inner` has just sent the `101`; `tls` says whether it is TLS;
    /// `max_message` bounds one element.
    pub fn new(inner: T, tls: bool, max_message: usize) -> WebSocketLink<T> {
        let mut codec = Codec::new();
        // A frame header above this is refused before its payload is read.
        codec.set_max_data_size(max_message);
        WebSocketLink {
            inner,
            tls,
            codec,
            raw_in: Vec::new(),
            raw_at: 0,
            failed: None,
            broken: false,
            message: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            raw_out: Vec::new(),
            out_at: 0,
            splitter: OutputSplitter::new(),
            payload: Vec::new(),
            max_message,
            read_closed: false,
            close_sent: false,
            close_code: 1000,
        }
    }

    /// Bytes that arrived behind the upgrade request: the first frames.
    pub fn preload(&mut self, bytes: &[u8]) {
        self.raw_in.extend_from_slice(bytes);
    }

    /// Whether the stream under the frames is TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Frees the buffers that are empty (a quiet connection).
    pub fn release_idle(&mut self) {
        if self.raw_at >= self.raw_in.len() {
            self.raw_in = Vec::new();
            self.raw_at = 0;
        }
        if self.message.is_empty() {
            self.message = Vec::new();
        }
        if self.ready_at >= self.ready.len() {
            self.ready = Vec::new();
            self.ready_at = 0;
        }
        if self.out_at >= self.raw_out.len() {
            self.raw_out = Vec::new();
            self.out_at = 0;
        }
        self.payload = Vec::new();
        self.splitter.release();
    }

    fn push_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let mut header = Header::new(opcode);
        header.set_fin(true);
        header.set_payload_len(payload.len());
        self.raw_out
            .extend_from_slice(self.codec.encode_header(&header));
        self.raw_out.extend_from_slice(payload);
    }

    /// Decodes one whole frame from `raw_in`, if there is one; its
    /// payload is unmasked in place and returned as a range of `raw_in`.
    fn decode_frame(&mut self) -> io::Result<Option<(Header, std::ops::Range<usize>)>> {
        let buffered = self.raw_in.get(self.raw_at..).unwrap_or_default();
        let parsed = match self.codec.decode_header(buffered) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.close_code = match e {
                    soketto::base::Error::PayloadTooLarge { .. } => 1009,
                    _ => 1002,
                };
                return Err(violation(format!("WebSocket frame: {e}")));
            }
        };
        let Parsing::Done {
            value: header,
            offset,
        } = parsed
        else {
            return Ok(None);
        };
        let start = self.raw_at + offset;
        let end = start.saturating_add(header.payload_len());
        if self.raw_in.len() < end {
            return Ok(None);
        }
        if !header.is_masked() {
            self.close_code = 1002;
            return Err(violation("client frames must be masked (RFC 6455 §5.1)"));
        }
        if let Some(data) = self.raw_in.get_mut(start..end) {
            Codec::apply_mask(&header, data);
        }
        self.raw_at = end;
        Ok(Some((header, start..end)))
    }

    /// Decodes every whole frame buffered, so that a burst of stanzas
    /// reaches the stream in one read; stops at a close or a violation
    /// (kept for after the input before it).
    fn decode_buffered(&mut self) {
        while !self.read_closed && !self.broken && self.failed.is_none() {
            let frame = self.decode_frame().and_then(|f| match f {
                Some((header, range)) => self.on_frame(&header, range).map(|()| true),
                None => Ok(false),
            });
            match frame {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => self.failed = Some(e),
            }
        }
        // What was decoded is dropped from the front once it is most of
        // the buffer (one move per burst, not one per frame).
        if self.raw_at >= self.raw_in.len() {
            self.raw_in.clear();
            self.raw_at = 0;
        } else if self.raw_at > self.raw_in.len() / 2 {
            self.raw_in.drain(..self.raw_at);
            self.raw_at = 0;
        }
    }

    /// Handles a decoded frame: text becomes framer input, control frames
    /// are answered.
    fn on_frame(&mut self, header: &Header, range: std::ops::Range<usize>) -> io::Result<()> {
        match header.opcode() {
            OpCode::Text | OpCode::Continue => self.on_text(header, range),
            OpCode::Binary => {
                self.close_code = 1003;
                Err(violation(
                    "binary frames carry no XMPP: RFC 7395 uses text frames",
                ))
            }
            OpCode::Ping => {
                let payload = self.raw_in.get(range).unwrap_or_default().to_vec();
                self.push_frame(OpCode::Pong, &payload);
                Ok(())
            }
            // An answer to our keepalive: activity, as whitespace is on TCP.
            OpCode::Pong => {
                self.ready.push(b' ');
                Ok(())
            }
            OpCode::Close => {
                if !self.close_sent {
                    // Echo the status code (RFC 6455 §5.5.1).
                    let data = self.raw_in.get(range).unwrap_or_default();
                    let status = data.get(..2).unwrap_or(&[0x03, 0xe8]).to_vec();
                    self.push_frame(OpCode::Close, &status);
                    self.close_sent = true;
                }
                self.read_closed = true;
                Ok(())
            }
            _ => {
                self.close_code = 1002;
                Err(violation("a reserved WebSocket opcode"))
            }
        }
    }

    /// A text frame: a whole element (translated straight from the read
    /// buffer) or a fragment of one.
    fn on_text(&mut self, header: &Header, range: std::ops::Range<usize>) -> io::Result<()> {
        if header.opcode() == OpCode::Text && !self.message.is_empty() {
            self.close_code = 1002;
            return Err(violation("a new text message inside a fragmented one"));
        }
        if self.message.len() + range.len() > self.max_message {
            self.close_code = 1009;
            return Err(violation(format!(
                "an element larger than {} bytes ([limits] max_stanza_bytes)",
                self.max_message
            )));
        }
        let data = self.raw_in.get(range).unwrap_or_default();
        if !header.is_fin() {
            self.message.extend_from_slice(data);
            return Ok(());
        }
        if self.ready_at >= self.ready.len() {
            self.ready.clear();
            self.ready_at = 0;
        }
        let translated = if self.message.is_empty() {
            InputTranslator::frame(data, &mut self.ready)
        } else {
            self.message.extend_from_slice(data);
            let text = std::mem::take(&mut self.message);
            InputTranslator::frame(&text, &mut self.ready)
        };
        translated.map(|_| ()).map_err(|e| {
            // Not one element: "inconsistent data" (RFC 6455 §7.4.1).
            self.close_code = 1007;
            violation(format!("WebSocket text frame: {e}"))
        })
    }

    /// Writes as much of `raw_out` as the socket takes without waiting.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.raw_out.len() {
            let pending = self.raw_out.get(self.out_at..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_at += n;
        }
        self.raw_out.clear();
        self.out_at = 0;
        Poll::Ready(Ok(()))
    }

    fn encode_output(&mut self) {
        let mut payload = std::mem::take(&mut self.payload);
        while let Some(piece) = self.splitter.next_piece(&mut payload) {
            match piece {
                OutPiece::Keepalive => self.push_frame(OpCode::Ping, &[]),
                OutPiece::Open(_) | OutPiece::Element | OutPiece::Close => {
                    self.push_frame(OpCode::Text, &payload)
                }
            }
        }
        self.payload = payload;
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for WebSocketLink<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            this.decode_buffered();
            if this.ready_at < this.ready.len() {
                let available = this.ready.get(this.ready_at..).unwrap_or_default();
                let n = available.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), available.get(..n)) {
                    dst.copy_from_slice(src);
                }
                this.ready_at += n;
                return Poll::Ready(Ok(n));
            }
            // Pongs and a close answer go out as soon as they can.
            if this.out_at < this.raw_out.len() {
                let _ = this.poll_drain(cx);
            }
            if let Some(e) = this.failed.take() {
                // Reported once as what it is; later reads fail plainly.
                this.broken = true;
                return Poll::Ready(Err(e));
            }
            if this.broken {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the WebSocket input was refused",
                )));
            }
            if this.read_closed {
                return Poll::Ready(Ok(0));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk))?;
            if n == 0 {
                this.read_closed = true;
                return Poll::Ready(Ok(0));
            }
            this.raw_in
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WebSocketLink<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.raw_out.len() - this.out_at > HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        this.splitter.push(buf);
        this.encode_output();
        // Start the write now; what the socket does not take waits for
        // the next write or the flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.close_sent = true;
            let code = this.close_code;
            this.push_frame(OpCode::Close, &code.to_be_bytes());
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_close(cx)
    }
}

#[cfg(test)]
#[path = "websocket_tests.rs"]
mod tests;
