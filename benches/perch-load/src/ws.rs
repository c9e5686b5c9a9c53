//! XMPP over WebSocket (RFC 7395) for the client side, as a byte-stream
//! adapter: the connection's framer reads, and its writers write, the
//! bytes of an ordinary `<stream:stream>` document, and this module
//! translates at the socket.
//!
//! - Out: what the client writes is cut into top-level elements (the
//!   framer of `xml`, run over the outgoing bytes); the stream header
//!   becomes `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to=…
//!   version='1.0'/>`, `</stream:stream>` becomes `<close/>`, and every
//!   other element one masked text frame, `xmlns='jabber:client'` added to
//!   a stanza that does not declare a namespace (RFC 7395 §3.3.3: each
//!   frame is a document of its own).
//! - In: each text message (fragments joined) is passed through as it
//!   is, except the server's `<open/>`, which becomes a stream header
//!   (with its `from`, `id`, `version`, `xml:lang`), and `<close/>`, which
//!   becomes `</stream:stream>`. A ping is answered with a pong; a close
//!   frame ends the input.
//!
//! Frames are encoded and decoded by soketto's sans-I/O codec
//! (`soketto::base`); the upgrade (RFC 6455 §4) is a GET with
//! `Sec-WebSocket-Protocol: xmpp` whose `101` answer is parsed with
//! httparse and checked (status, `Sec-WebSocket-Accept`, the protocol).
//! No TLS: the servers are on loopback (`ws://` only).
//!
//! Cost per message: one scan of the outgoing element, the frame header,
//! the mask, and one copy of the incoming payload into the reader's
//! buffer; no allocation once the buffers have grown, and an idle
//! connection's buffers are released by `shrink`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use smol::net::TcpStream;
use soketto::Parsing;
use soketto::base::{Codec, Header, OpCode};

use crate::rng::Rng;
use crate::xml::{self, Frame};

/// Namespace of `<open/>` and `<close/>`.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// The WebSocket sub-protocol of XMPP.
pub const PROTOCOL: &str = "xmpp";
/// The path Perch, Prosody and ejabberd serve XMPP over WebSocket at.
pub const DEFAULT_PATH: &str = "/xmpp-websocket";

/// RFC 6455 §1.3: appended to the key before hashing.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// Largest message accepted (as `xml::MAX_ELEMENT`, plus room).
const MAX_MESSAGE: usize = 2 * xml::MAX_ELEMENT;
/// Encoded bytes a writer may queue before it has to wait for the socket.
const WIRE_HIGH: usize = 256 * 1024;
/// Largest `101` answer read.
const MAX_HEAD: usize = 16 * 1024;
const CLOSE: &[u8] = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
const STREAM_END: &[u8] = b"</stream:stream>";
const DECLARE_CLIENT: &[u8] = b" xmlns='jabber:client'";

/// Where the WebSocket endpoint is: the `Host` header and the path of the
/// upgrade request (the address is `Target::addr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsEndpoint {
    pub host: String,
    pub path: String,
}

/// A client WebSocket carrying XMPP, read and written as a stream document.
pub struct WsStream {
    tcp: TcpStream,
    codec: Codec,
    masks: Rng,
    /// Received bytes not decoded yet: `raw[raw_start..raw_end]`.
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    /// A fragmented message so far.
    partial: Vec<u8>,
    /// Translated stream bytes for the reader: `out[out_start..]`.
    out: Vec<u8>,
    out_start: usize,
    /// The server sent a close frame.
    peer_closed: bool,
    /// The socket reached its end.
    eof: bool,
    /// Outgoing stream bytes not yet a whole element, and their framer.
    pending: Vec<u8>,
    framer: xml::Framer,
    /// Encoded frames not yet on the socket: `wire[wire_start..]`.
    wire: Vec<u8>,
    wire_start: usize,
    close_sent: bool,
}

/// The `Sec-WebSocket-Accept` a server must answer `key` with.
pub fn accept_for(key: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.as_bytes());
    ctx.update(ACCEPT_GUID.as_bytes());
    crate::base64::encode(ctx.finish().as_ref())
}

/// Parses a `ws://HOST:PORT/PATH` URL: (host, port, path). The host may be
/// an IP address (IPv6 in brackets) or a name; the caller checks it.
pub fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("'{url}': only ws:// URLs (loopback, no TLS)"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = split_authority(authority, 80)?;
    Ok((host, port, path.to_string()))
}

/// `host[:port]` or `[v6][:port]` → (host without brackets, port).
pub fn split_authority(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = || format!("'{authority}': not a host[:port]");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => default_port,
    };
    Ok((host.to_string(), port))
}

impl WsStream {
    /// Upgrades `tcp` to a WebSocket with the `xmpp` sub-protocol.
    pub async fn connect(mut tcp: TcpStream, endpoint: &WsEndpoint) -> Result<WsStream, String> {
        let nonce: [u8; 16] = crate::rng::random_bytes();
        let key = crate::base64::encode(&nonce);
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {PROTOCOL}\r\n\r\n",
            endpoint.path, endpoint.host
        );
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("sending the upgrade request: {e}"))?;
        let head = crate::http::read_head(&mut tcp, MAX_HEAD, "upgrade answer").await?;
        if head.status != 101 {
            return Err(format!("upgrade refused: {} {}", head.status, head.reason));
        }
        let accept = head.header("sec-websocket-accept").map(str::to_string);
        let protocol = head.header("sec-websocket-protocol").map(str::to_string);
        if accept.as_deref() != Some(accept_for(&key).as_str()) {
            return Err(format!("wrong Sec-WebSocket-Accept {accept:?}"));
        }
        if !protocol
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(PROTOCOL))
        {
            return Err(format!(
                "the server did not agree to the '{PROTOCOL}' sub-protocol ({protocol:?})"
            ));
        }
        let mut codec = Codec::new();
        codec.set_max_data_size(MAX_MESSAGE);
        // Frames the server sent right behind its answer stay for the reader.
        let raw_end = head.rest_len;
        let raw = if raw_end == 0 { Vec::new() } else { head.rest };
        Ok(WsStream {
            tcp,
            codec,
            masks: Rng::new(u64::from_le_bytes(crate::rng::random_bytes())),
            raw,
            raw_start: 0,
            raw_end,
            partial: Vec::new(),
            out: Vec::new(),
            out_start: 0,
            peer_closed: false,
            eof: false,
            pending: Vec::new(),
            framer: xml::Framer::new(),
            wire: Vec::new(),
            wire_start: 0,
            close_sent: false,
        })
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Releases the buffers that hold nothing (an idle connection).
    pub fn shrink(&mut self) {
        if self.raw_start == self.raw_end {
            self.raw = Vec::new();
            self.raw_start = 0;
            self.raw_end = 0;
        }
        if self.out_start == self.out.len() {
            self.out = Vec::new();
            self.out_start = 0;
        }
        if self.wire_start == self.wire.len() {
            self.wire = Vec::new();
            self.wire_start = 0;
        }
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
        self.partial.shrink_to_fit();
    }

    /// Decodes every complete frame in `raw` into `out` (and pongs or a
    /// close answer into `wire`).
    fn decode(&mut self) -> io::Result<()> {
        while !self.peer_closed {
            let avail = &self.raw[self.raw_start..self.raw_end];
            let (header, offset) = match self.codec.decode_header(avail) {
                Ok(Parsing::Done { value, offset }) => (value, offset),
                Ok(Parsing::NeedMore(_)) => return Ok(()),
                Err(e) => return Err(invalid(format!("WebSocket frame: {e}"))),
            };
            let len = header.payload_len();
            if avail.len() < offset + len {
                return Ok(());
            }
            let start = self.raw_start + offset;
            let end = start + len;
            self.raw_start = end;
            let payload = &mut self.raw[start..end];
            // A server must not mask; undo it if one does.
            Codec::apply_mask(&header, payload);
            match header.opcode() {
                OpCode::Text | OpCode::Binary | OpCode::Continue => {
                    let whole = header.is_fin()
                        && self.partial.is_empty()
                        && header.opcode() != OpCode::Continue;
                    if whole {
                        translate_in(payload, &mut self.out);
                    } else {
                        if self.partial.len() + len > MAX_MESSAGE {
                            return Err(invalid("a WebSocket message is too large".into()));
                        }
                        self.partial.extend_from_slice(payload);
                        if header.is_fin() {
                            translate_in(&self.partial, &mut self.out);
                            self.partial.clear();
                        }
                    }
                }
                OpCode::Ping => {
                    let data = payload.to_vec();
                    encode(
                        &mut self.codec,
                        &mut self.masks,
                        &mut self.wire,
                        OpCode::Pong,
                        &[&data],
                    );
                }
                OpCode::Pong => {}
                OpCode::Close => {
                    self.peer_closed = true;
                    if !self.close_sent {
                        self.close_sent = true;
                        let code = payload.get(..2).map(<[u8]>::to_vec).unwrap_or_default();
                        encode(
                            &mut self.codec,
                            &mut self.masks,
                            &mut self.wire,
                            OpCode::Close,
                            &[&code],
                        );
                    }
                }
                _ => return Err(invalid("reserved WebSocket opcode".into())),
            }
        }
        Ok(())
    }

    /// Room for at least `READ_CHUNK` more bytes behind `raw_end`.
    fn make_room(&mut self) {
        if self.raw_start == self.raw_end {
            self.raw_start = 0;
            self.raw_end = 0;
        }
        if self.raw.len() - self.raw_end >= READ_CHUNK {
            return;
        }
        if self.raw_start > 0 {
            self.raw.copy_within(self.raw_start..self.raw_end, 0);
            self.raw_end -= self.raw_start;
            self.raw_start = 0;
        }
        if self.raw.len() - self.raw_end < READ_CHUNK {
            let grown = (self.raw_end + READ_CHUNK).max(2 * self.raw.len());
            self.raw.resize(grown, 0);
        }
    }

    /// Writes queued frames until none is left or the socket is full.
    fn poll_wire(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wire_start < self.wire.len() {
            match Pin::new(&mut self.tcp).poll_write(cx, &self.wire[self.wire_start..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.wire_start += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.wire.clear();
        self.wire_start = 0;
        Poll::Ready(Ok(()))
    }

    /// Frames every complete element of `pending`.
    fn frame_pending(&mut self) -> io::Result<()> {
        loop {
            let frame = self
                .framer
                .next(&self.pending)
                .map_err(|e| invalid(format!("what the client wrote: {e}")))?;
            let codec = &mut self.codec;
            let (masks, wire) = (&mut self.masks, &mut self.wire);
            match frame {
                None => break,
                Some(Frame::Header(a, b)) => {
                    let header = &self.pending[a..b];
                    let mut open = format!("<open xmlns='{NS_FRAMING}'");
                    for name in ["to", "from", "xml:lang"] {
                        if let Some(v) = xml::start_tag_attr(header, name) {
                            open.push_str(&format!(" {name}='{}'", String::from_utf8_lossy(v)));
                        }
                    }
                    open.push_str(" version='1.0'/>");
                    encode(codec, masks, wire, OpCode::Text, &[open.as_bytes()]);
                }
                Some(Frame::Element(a, b)) => {
                    let el = &self.pending[a..b];
                    match client_namespace_at(el) {
                        Some(at) => encode(
                            codec,
                            masks,
                            wire,
                            OpCode::Text,
                            &[&el[..at], DECLARE_CLIENT, &el[at..]],
                        ),
                        None => encode(codec, masks, wire, OpCode::Text, &[el]),
                    }
                }
                Some(Frame::End) => encode(codec, masks, wire, OpCode::Text, &[CLOSE]),
            }
        }
        let done = self.framer.reclaimable();
        self.pending.drain(..done);
        self.framer.consumed(done);
        Ok(())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Appends one masked frame of `opcode` whose payload is `parts` joined.
fn encode(codec: &mut Codec, masks: &mut Rng, wire: &mut Vec<u8>, opcode: OpCode, parts: &[&[u8]]) {
    let len = parts.iter().map(|p| p.len()).sum();
    let mut header = Header::new(opcode);
    header.set_masked(true);
    header.set_mask(masks.next_u64() as u32);
    header.set_payload_len(len);
    wire.extend_from_slice(codec.encode_header(&header));
    let start = wire.len();
    for p in parts {
        wire.extend_from_slice(p);
    }
    Codec::apply_mask(&header, &mut wire[start..]);
}

/// Where `xmlns='jabber:client'` goes in an element whose start tag
/// declares no default namespace (after its name), or None.
fn client_namespace_at(el: &[u8]) -> Option<usize> {
    if xml::start_tag_attr(el, "xmlns").is_some() {
        return None;
    }
    let name_end = el
        .iter()
        .skip(1)
        .position(|&b| b.is_ascii_whitespace() || b == b'>' || b == b'/')?
        + 1;
    // A prefixed element (`stream:…`) is not a stanza.
    (!el[..name_end].contains(&b':')).then_some(name_end)
}

/// One whole message from the server, as stream bytes.
fn translate_in(message: &[u8], out: &mut Vec<u8>) {
    let start = message
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(message.len());
    let el = &message[start..];
    match control(el) {
        Some(b"open") => {
            out.extend_from_slice(
                b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'",
            );
            for name in ["from", "to", "id", "version", "xml:lang"] {
                if let Some(v) = xml::start_tag_attr(el, name) {
                    out.push(b' ');
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"='");
                    out.extend_from_slice(v);
                    out.push(b'\'');
                }
            }
            out.push(b'>');
        }
        Some(_) => out.extend_from_slice(STREAM_END),
        None => out.extend_from_slice(message),
    }
}

/// `open` or `close` if `el` is the framing namespace's element of that name.
fn control(el: &[u8]) -> Option<&'static [u8]> {
    let name = xml::local_name(el);
    let which: &'static [u8] = match name {
        b"open" => b"open",
        b"close" => b"close",
        _ => return None,
    };
    (xml::start_tag_attr(el, "xmlns") == Some(NS_FRAMING.as_bytes())).then_some(which)
}

/// Does `buf` begin a new stream document (`<?xml …` or `<stream:stream`)?
fn starts_document(buf: &[u8]) -> bool {
    buf.starts_with(b"<?xml") || buf.starts_with(b"<stream:stream")
}

impl AsyncRead for WsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if this.out_start < this.out.len() {
                let n = buf.len().min(this.out.len() - this.out_start);
                buf[..n].copy_from_slice(&this.out[this.out_start..this.out_start + n]);
                this.out_start += n;
                if this.out_start == this.out.len() {
                    this.out.clear();
                    this.out_start = 0;
                }
                return Poll::Ready(Ok(n));
            }
            this.decode()?;
            if this.wire_start < this.wire.len() {
                // A pong or the answer to a close: sent when the socket takes it.
                if let Poll::Ready(Err(e)) = this.poll_wire(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            if this.out_start < this.out.len() {
                continue;
            }
            if this.peer_closed || this.eof {
                return Poll::Ready(Ok(0));
            }
            this.make_room();
            let end = this.raw_end;
            match Pin::new(&mut this.tcp).poll_read(cx, &mut this.raw[end..]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => this.eof = true,
                Poll::Ready(Ok(n)) => this.raw_end += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.wire.len() - this.wire_start > WIRE_HIGH {
            match this.poll_wire(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if this.wire.len() - this.wire_start > WIRE_HIGH => {
                    return Poll::Pending;
                }
                _ => {}
            }
        }
        if this.pending.is_empty() && starts_document(buf) {
            // A stream restart (after SASL): a new document begins.
            this.framer.reset();
        }
        this.pending.extend_from_slice(buf);
        this.frame_pending()?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_wire(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.tcp).poll_flush(cx),
            other => other,
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.close_sent = true;
            let normal = 1000u16.to_be_bytes();
            encode(
                &mut this.codec,
                &mut this.masks,
                &mut this.wire,
                OpCode::Close,
                &[&normal],
            );
        }
        match this.poll_wire(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.tcp).poll_close(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::AsyncReadExt;

    #[test]
    fn accept_key_of_rfc_6455() {
        // RFC 6455 §1.3's example.
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn urls_and_authorities() {
        assert_eq!(
            parse_url("ws://127.0.0.1:5280/xmpp-websocket"),
            Ok(("127.0.0.1".into(), 5280, "/xmpp-websocket".into()))
        );
        assert_eq!(
            parse_url("ws://[::1]/x"),
            Ok(("::1".into(), 80, "/x".into()))
        );
        assert_eq!(
            parse_url("ws://localhost"),
            Ok(("localhost".into(), 80, "/".into()))
        );
        assert!(parse_url("wss://127.0.0.1/").is_err());
        assert!(parse_url("ws://:5/").is_err());
        assert!(parse_url("ws://h:x/").is_err());
    }

    #[test]
    fn server_messages_become_a_stream_document() {
        let mut out = Vec::new();
        translate_in(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='s1' version='1.0' xml:lang='en'/>",
            &mut out,
        );
        translate_in(
            b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
            &mut out,
        );
        translate_in(
            b"<message xmlns='jabber:client' to='a@b'><body>B 1 2 3</body></message>",
            &mut out,
        );
        translate_in(
            b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
            &mut out,
        );
        let mut framer = xml::Framer::new();
        let mut seen = Vec::new();
        while let Some(f) = framer.next(&out).expect("well-formed") {
            seen.push(match f {
                Frame::Header(a, b) => String::from_utf8_lossy(&out[a..b]).into_owned(),
                Frame::Element(a, b) => xml::local_name(&out[a..b]).escape_ascii().to_string(),
                Frame::End => "END".into(),
            });
        }
        assert_eq!(
            seen,
            [
                "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0' xml:lang='en'>",
                "features",
                "message",
                "END"
            ]
        );
        // A `close` in another namespace is an ordinary element.
        let mut out = Vec::new();
        translate_in(b"<close xmlns='urn:example'/>", &mut out);
        assert_eq!(out, b"<close xmlns='urn:example'/>");
    }

    #[test]
    fn stanzas_get_the_client_namespace_and_others_keep_theirs() {
        assert_eq!(client_namespace_at(b"<message to='a'/>"), Some(8));
        assert_eq!(client_namespace_at(b"<presence/>"), Some(9));
        assert_eq!(client_namespace_at(b"<iq>x</iq>"), Some(3));
        assert_eq!(client_namespace_at(b"<r xmlns='urn:xmpp:sm:3'/>"), None);
        assert_eq!(client_namespace_at(b"<stream:x/>"), None);
    }

    /// The outgoing side against a decoder: frames, masks, open and close.
    #[test]
    fn what_the_client_writes_becomes_masked_frames() {
        smol::block_on(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let server = smol::spawn(async move {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                // The request, answered, then frames until a close frame.
                loop {
                    let n = s.read(&mut buf).await.expect("read");
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&got).into_owned();
                let key = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .expect("key")
                    .trim()
                    .to_string();
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
                    accept_for(&key)
                );
                s.write_all(answer.as_bytes()).await.expect("write");
                // Frames: an open, then a message, from the server.
                let mut codec = Codec::new();
                for payload in [
                    &b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='x' version='1.0'/>"[..],
                    b"<message xmlns='jabber:client'><body>hi</body></message>",
                ] {
                    let mut h = Header::new(OpCode::Text);
                    h.set_payload_len(payload.len());
                    let mut frame = codec.encode_header(&h).to_vec();
                    frame.extend_from_slice(payload);
                    s.write_all(&frame).await.expect("write");
                }
                let mut raw = Vec::new();
                let mut messages = Vec::new();
                'read: loop {
                    let n = s.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    while let Ok(Parsing::Done { value, offset }) = codec.decode_header(&raw) {
                        let len = value.payload_len();
                        if raw.len() < offset + len {
                            break;
                        }
                        assert!(value.is_masked());
                        let mut payload = raw[offset..offset + len].to_vec();
                        Codec::apply_mask(&value, &mut payload);
                        raw.drain(..offset + len);
                        if value.opcode() == OpCode::Close {
                            break 'read;
                        }
                        messages.push(String::from_utf8(payload).expect("utf-8"));
                    }
                }
                messages
            });
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let endpoint = WsEndpoint {
                host: addr.to_string(),
                path: DEFAULT_PATH.into(),
            };
            let mut ws = WsStream::connect(tcp, &endpoint).await.expect("upgrade");
            ws.write_all(xml::stream_header("localhost").as_bytes())
                .await
                .expect("write");
            // Two stanzas in one write, the second split across writes.
            ws.write_all(b"<message to='a@localhost'><body>1</body></message><presence")
                .await
                .expect("write");
            ws.write_all(b"/><r xmlns='urn:xmpp:sm:3'/>")
                .await
                .expect("write");
            ws.flush().await.expect("flush");
            let mut input = Vec::new();
            let mut buf = [0u8; 64];
            while !input.ends_with(b"</message>") {
                let n = ws.read(&mut buf).await.expect("read");
                assert!(n > 0);
                input.extend_from_slice(&buf[..n]);
            }
            assert!(input.starts_with(b"<stream:stream xmlns='jabber:client'"));
            // A restart after SASL, then the end of the stream.
            ws.write_all(xml::stream_header("localhost").as_bytes())
                .await
                .expect("write");
            ws.write_all(b"</stream:stream>").await.expect("write");
            ws.close().await.expect("close");
            let messages = server.await;
            let open =
                "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
            assert_eq!(
                messages,
                [
                    open,
                    "<message xmlns='jabber:client' to='a@localhost'><body>1</body></message>",
                    "<presence xmlns='jabber:client'/>",
                    "<r xmlns='urn:xmpp:sm:3'/>",
                    open,
                    "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
                ]
            );
        });
    }
}
