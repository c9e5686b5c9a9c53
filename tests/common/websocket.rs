//! A minimal blocking WebSocket client (RFC 6455) speaking XMPP (RFC
//! 7395): the upgrade request with `Sec-WebSocket-Protocol: xmpp`, masked
//! frames encoded with `soketto`'s codec, whole frames read with timeouts,
//! ping, pong and close, and raw bytes for frames no client should send.
//!
//! Every text frame the server sends is checked to be one complete XML
//! element that parses on its own (RFC 7395 §3.3.3), so a frame that
//! relies on a namespace declared elsewhere fails the test where it
//! arrives.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use perch::sasl::base64;
use perch::xml::Element;
use soketto::Parsing;
use soketto::base::{Codec, Header, OpCode};

use super::client::{is_timeout, tcp_connect};
use super::http::{HttpResponse, parse_response};
use super::ns::*;
use super::timeout;

/// Namespace of the RFC 7395 `<open/>` and `<close/>`.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// The `Sec-WebSocket-Key` of every upgrade (RFC 6455 §1.3's example), and
/// the `Sec-WebSocket-Accept` it must get.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// How often [`WsClient::closed_within`] looks at the socket.
const POLL: Duration = Duration::from_millis(100);

/// A whole frame from the server.
#[derive(Debug, Clone)]
pub struct Frame {
    pub opcode: OpCode,
    pub fin: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// The upgrade request for the XMPP endpoint, with extra header lines.
pub fn upgrade_request(extra: &[&str]) -> Vec<u8> {
    let mut out = format!(
        "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: xmpp\r\n"
    );
    for h in extra {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

pub struct WsClient {
    pub tcp: TcpStream,
    codec: Codec,
    /// Bytes read and not yet decoded.
    buf: Vec<u8>,
    /// The text frames received, for failure messages.
    pub transcript: Vec<String>,
    /// Varies the masks (RFC 6455 wants them unpredictable; a test needs
    /// only that they are applied).
    mask: u32,
    /// The full JID bound on this stream.
    pub jid: String,
}

impl WsClient {
    /// Opens a WebSocket to the XMPP endpoint; panics unless the server
    /// switches protocols as RFC 6455 and RFC 7395 say.
    pub fn connect(addr: SocketAddr) -> WsClient {
        match WsClient::try_connect(addr, &[]) {
            Ok(ws) => ws,
            Err(refusal) => panic!("the WebSocket upgrade was refused: {refusal}"),
        }
    }

    /// The upgrade with `extra` header lines; `Err` with the server's
    /// response if it is not a `101`.
    pub fn try_connect(addr: SocketAddr, extra: &[&str]) -> Result<WsClient, HttpResponse> {
        let mut tcp = tcp_connect(addr);
        tcp.write_all(&upgrade_request(extra))
            .expect("write the upgrade request");
        // Read the head only: frames may follow it at once.
        let mut head = Vec::new();
        let deadline = Instant::now() + timeout();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert!(
                Instant::now() < deadline,
                "no upgrade response within {:?}; received {:?}",
                timeout(),
                String::from_utf8_lossy(&head)
            );
            match tcp.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => head.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!(
                    "reading the upgrade response failed: {e}; received {:?}",
                    String::from_utf8_lossy(&head)
                ),
            }
        }
        let response = parse_response(&head).unwrap_or_else(|| {
            panic!(
                "not an HTTP response to the upgrade: {:?}",
                String::from_utf8_lossy(&head)
            )
        });
        if response.status != 101 {
            return Err(response);
        }
        let token = |name: &str, want: &str| {
            response
                .header(name)
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(want)))
        };
        assert!(token("upgrade", "websocket"), "{response}");
        assert!(token("connection", "upgrade"), "{response}");
        assert_eq!(
            response.header("sec-websocket-accept"),
            Some(ACCEPT),
            "{response}"
        );
        // RFC 7395 §3.2: the server confirms the subprotocol.
        assert_eq!(
            response.header("sec-websocket-protocol"),
            Some("xmpp"),
            "{response}"
        );
        Ok(WsClient {
            tcp,
            codec: Codec::new(),
            buf: Vec::new(),
            transcript: Vec::new(),
            mask: 0x3779_a1c5,
            jid: String::new(),
        })
    }

    /// The last text frames received, for failure messages.
    pub fn recent(&self) -> String {
        let from = self.transcript.len().saturating_sub(12);
        format!("{:?}", &self.transcript[from..])
    }

    // -- Writing -----------------------------------------------------------

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes)
            .unwrap_or_else(|e| panic!("cannot write to the server: {e}"));
    }

    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tcp.write_all(bytes)?;
        self.tcp.flush()
    }

    /// A masked frame header announcing `len` payload bytes, masked with
    /// the returned header's mask.
    pub fn frame_header(&mut self, opcode: OpCode, fin: bool, len: usize) -> (Header, Vec<u8>) {
        self.mask = self.mask.rotate_left(7).wrapping_add(0x9e37_79b9);
        let mut header = Header::new(opcode);
        header.set_fin(fin);
        header.set_masked(true);
        header.set_mask(self.mask);
        header.set_payload_len(len);
        let bytes = self.codec.encode_header(&header).to_vec();
        (header, bytes)
    }

    /// One whole masked frame as bytes.
    pub fn frame_bytes(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let (header, mut bytes) = self.frame_header(opcode, fin, payload.len());
        let mut data = payload.to_vec();
        Codec::apply_mask(&header, &mut data);
        bytes.extend_from_slice(&data);
        bytes
    }

    pub fn send_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let bytes = self.frame_bytes(opcode, true, payload);
        self.send_raw(&bytes);
    }

    pub fn try_send_frame(&mut self, opcode: OpCode, payload: &[u8]) -> io::Result<()> {
        let bytes = self.frame_bytes(opcode, true, payload);
        self.try_send_raw(&bytes)
    }

    /// One text frame.
    pub fn send(&mut self, xml: &str) {
        self.send_frame(OpCode::Text, xml.as_bytes());
    }

    /// `<open/>` to `localhost` (RFC 7395 §3.4).
    pub fn send_open(&mut self) {
        self.send(&format!(
            "<open xmlns='{NS_FRAMING}' to='localhost' version='1.0' xml:lang='en'/>"
        ));
    }

    pub fn send_close(&mut self) {
        self.send(&format!("<close xmlns='{NS_FRAMING}'/>"));
    }

    // -- Reading -----------------------------------------------------------

    /// Reads more bytes; `Ok(false)` at the end of the connection.
    fn fill(&mut self, deadline: Instant) -> Result<bool, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no whole frame within {:?}; text frames so far: {}",
                timeout(),
                self.recent()
            ));
        }
        let _ = self.tcp.set_read_timeout(Some(left));
        let mut chunk = [0u8; 8192];
        match self.tcp.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) if is_timeout(&e) => Err(format!(
                "no whole frame within {:?}; text frames so far: {}",
                timeout(),
                self.recent()
            )),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(false),
            Err(e) => Err(format!(
                "read failed: {e}; text frames so far: {}",
                self.recent()
            )),
        }
    }

    /// Decodes one whole frame from `buf`, if there is one.
    fn decode(&mut self) -> Result<Option<Frame>, String> {
        let parsed = self
            .codec
            .decode_header(&self.buf)
            .map_err(|e| format!("the server sent a bad frame header: {e}"))?;
        let Parsing::Done {
            value: header,
            offset,
        } = parsed
        else {
            return Ok(None);
        };
        let end = offset + header.payload_len();
        if self.buf.len() < end {
            return Ok(None);
        }
        // RFC 6455 §5.1: a server never masks.
        if header.is_masked() {
            return Err("the server sent a masked frame".to_string());
        }
        let payload = self.buf[offset..end].to_vec();
        self.buf.drain(..end);
        if header.opcode() == OpCode::Text {
            self.transcript
                .push(String::from_utf8_lossy(&payload).into_owned());
        }
        Ok(Some(Frame {
            opcode: header.opcode(),
            fin: header.is_fin(),
            payload,
        }))
    }

    /// The next whole frame of any kind; `Ok(None)` when the connection
    /// ends first.
    pub fn try_frame(&mut self) -> Result<Option<Frame>, String> {
        let deadline = Instant::now() + timeout();
        loop {
            if let Some(frame) = self.decode()? {
                return Ok(Some(frame));
            }
            if !self.fill(deadline)? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(format!(
                        "the connection ended inside a frame ({} bytes left)",
                        self.buf.len()
                    ))
                };
            }
        }
    }

    pub fn frame(&mut self) -> Frame {
        match self.try_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!(
                "the server closed the connection; text frames so far: {}",
                self.recent()
            ),
            Err(e) => panic!("{e}"),
        }
    }

    /// The next text frame, answering the server's pings on the way.
    pub fn try_text(&mut self) -> Result<String, String> {
        loop {
            let frame = match self.try_frame()? {
                Some(f) => f,
                None => {
                    return Err(format!(
                        "the server closed the connection; text frames so far: {}",
                        self.recent()
                    ));
                }
            };
            match frame.opcode {
                OpCode::Text => {
                    assert!(frame.fin, "a fragmented text frame: {frame:?}");
                    return String::from_utf8(frame.payload)
                        .map_err(|e| format!("a text frame that is not UTF-8: {e}"));
                }
                OpCode::Ping => {
                    let _ = self.try_send_frame(OpCode::Pong, &frame.payload);
                }
                OpCode::Pong => {}
                other => {
                    return Err(format!(
                        "expected a text frame, got {other:?} ({:?}); text frames so far: {}",
                        frame.text(),
                        self.recent()
                    ));
                }
            }
        }
    }

    /// The next text frame as an element: it must parse on its own, with
    /// every namespace it uses declared in it.
    pub fn try_element(&mut self) -> Result<Element, String> {
        let text = self.try_text()?;
        Element::parse(&text)
            .map_err(|e| format!("a frame that is not one standalone element ({e}): {text:?}"))
    }

    pub fn element(&mut self) -> Element {
        self.try_element().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The next element that is not a presence.
    pub fn non_presence(&mut self) -> Element {
        loop {
            let el = self.element();
            if el.name != "presence" {
                return el;
            }
        }
    }

    /// The first element satisfying `wanted`, skipping others.
    pub fn element_matching(&mut self, what: &str, wanted: impl Fn(&Element) -> bool) -> Element {
        let deadline = Instant::now() + timeout();
        loop {
            assert!(
                Instant::now() < deadline,
                "no {what} within {:?}; text frames so far: {}",
                timeout(),
                self.recent()
            );
            let el = self
                .try_element()
                .unwrap_or_else(|e| panic!("no {what}: {e}"));
            if wanted(&el) {
                return el;
            }
        }
    }

    // -- XMPP --------------------------------------------------------------

    /// Sends `<open/>` and returns the stream features, checking the
    /// server's `<open/>` (RFC 7395 §3.4) on the way.
    pub fn open(&mut self) -> Element {
        self.send_open();
        let open = self.element();
        assert!(open.is("open", NS_FRAMING), "expected <open/>, got {open}");
        assert_eq!(open.attr("from"), Some("localhost"), "{open}");
        assert_eq!(open.attr("version"), Some("1.0"), "{open}");
        assert!(
            open.attr("id").is_some_and(|id| !id.is_empty()),
            "<open/> needs an id: {open}"
        );
        let features = self.element();
        assert!(
            features.is("features", NS_STREAM),
            "expected stream features, got {features}"
        );
        features
    }

    /// SASL PLAIN; true on `<success/>`.
    pub fn auth_plain(&mut self, (user, password): (&str, &str)) -> bool {
        let payload = base64::encode(format!("\0{user}\0{password}").as_bytes());
        self.send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"
        ));
        let outcome = self.element();
        assert!(
            outcome.is("success", NS_SASL) || outcome.is("failure", NS_SASL),
            "expected the SASL outcome, got {outcome}"
        );
        outcome.is("success", NS_SASL)
    }

    /// Binds `resource`; returns the full JID.
    pub fn bind(&mut self, resource: &str) -> String {
        self.send(&format!(
            "<iq type='set' id='bind-1'><bind xmlns='{NS_BIND}'><resource>{resource}</resource></bind></iq>"
        ));
        let iq = self.element();
        assert!(
            iq.is("iq", NS_CLIENT) && iq.attr("type") == Some("result"),
            "bind failed: {iq}"
        );
        let jid = iq
            .get_child("bind", NS_BIND)
            .and_then(|b| b.get_child("jid", NS_BIND))
            .map(|j| j.text().trim().to_string())
            .unwrap_or_else(|| panic!("bind result without <jid/>: {iq}"));
        self.jid = jid.clone();
        jid
    }

    /// `<open/>`, SASL PLAIN, a new `<open/>` (RFC 7395 §3.5: the restart
    /// is a new `<open/>` on the same WebSocket) and resource binding.
    /// Returns the features after authentication.
    pub fn login(&mut self, account: (&str, &str), resource: &str) -> Element {
        let features = self.open();
        assert!(
            super::mechanisms(&features).iter().any(|m| m == "PLAIN"),
            "PLAIN is not offered: {features}"
        );
        assert!(self.auth_plain(account), "PLAIN as {} failed", account.0);
        let features = self.open();
        assert!(features.get_child("bind", NS_BIND).is_some(), "{features}");
        self.bind(resource);
        features
    }

    /// Expects a stream error with one of `conditions`, then `<close/>`
    /// and the end of the WebSocket (a close frame, then the end of the
    /// connection). Returns the condition.
    pub fn expect_stream_error(&mut self, conditions: &[&str]) -> String {
        let condition = self.expect_stream_error_element(conditions);
        self.expect_close();
        condition
    }

    /// Expects a stream error with one of `conditions` (the element only);
    /// returns the condition.
    pub fn expect_stream_error_element(&mut self, conditions: &[&str]) -> String {
        let el = self.element();
        assert!(
            el.is("error", NS_STREAM),
            "expected a stream error ({conditions:?}), got {el}; text frames so far: {}",
            self.recent()
        );
        let found: Vec<String> = el
            .children()
            .filter(|c| c.ns == NS_STREAM_ERRORS && c.name != "text")
            .map(|c| c.name.to_string())
            .collect();
        assert!(
            found.len() == 1 && conditions.contains(&found[0].as_str()),
            "stream error {found:?}, expected one of {conditions:?}: {el}"
        );
        found[0].clone()
    }

    /// Expects `<close/>`, then a close frame and the end of the
    /// connection.
    pub fn expect_close(&mut self) {
        self.expect_close_element();
        self.expect_close_frame();
    }

    /// Expects `<close/>` (RFC 7395 §3.6), the element only.
    pub fn expect_close_element(&mut self) {
        let close = self.element();
        assert!(
            close.is("close", NS_FRAMING),
            "expected <close/>, got {close}"
        );
    }

    /// Expects a WebSocket close frame (answering it) and then the end of
    /// the connection; nothing else may come.
    pub fn expect_close_frame(&mut self) {
        let frame = self.frame();
        assert_eq!(
            frame.opcode,
            OpCode::Close,
            "expected a close frame, got {frame:?}"
        );
        let _ = self.try_send_frame(OpCode::Close, &frame.payload);
        match self.try_frame() {
            Ok(None) => {}
            Ok(Some(frame)) => panic!("a frame after the close frame: {frame:?}"),
            Err(e) => panic!("the connection did not end after the close frame: {e}"),
        }
    }

    /// Whether the server closes the connection within `limit`; frames
    /// that arrive meanwhile are dropped (text ones are kept in the
    /// transcript).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let _ = self.tcp.set_read_timeout(Some(POLL));
        let mut chunk = [0u8; 8192];
        loop {
            if Instant::now() >= deadline {
                return false;
            }
            match self.tcp.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    while let Ok(Some(_)) = self.decode() {}
                }
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    /// Cuts the connection without closing the stream or the WebSocket,
    /// as a phone losing its network does.
    pub fn cut(self) {
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }
}
