//! The XMPP test client: a blocking socket (plaintext, STARTTLS or direct
//! TLS) with read and write timeouts, so a broken server fails a test
//! instead of hanging it, and failure messages that quote what the server
//! sent.
//!
//! Most methods panic on anything unexpected, which is what a test wants.
//! The `try_` ones return the failure instead, for callers that must
//! report rather than panic (the scansion runner plays many scripts in one
//! test) or that expect a login to fail.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use perch::sasl::client::ScramClient;
use perch::sasl::{ChannelBinding, ScramHash, base64};
use perch::testing::TestServer;
use perch::xml::{Element, FrameEvent, Framer, Limits, StreamHeader};
use rustls::{ProtocolVersion, SupportedProtocolVersion};

use super::ns::*;
use super::timeout;
use super::tls::{TlsStream, tls_handshake};

/// How long [`Client::disconnect`] waits for the server to close its side.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How often [`Client::closed_within`] looks at the socket.
const POLL: Duration = Duration::from_millis(100);

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// Only while STARTTLS swaps the transport.
    Upgrading,
}

impl Transport {
    /// The TCP socket under the transport, for its timeouts.
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Transport::Plain(s) => Some(s),
            Transport::Tls(s) => Some(&s.sock),
            Transport::Upgrading => None,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
            Transport::Upgrading => Err(io::Error::other("no transport")),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
            Transport::Upgrading => Err(io::Error::other("no transport")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
            Transport::Upgrading => Err(io::Error::other("no transport")),
        }
    }
}

#[derive(Debug)]
pub enum Event {
    Open(StreamHeader),
    Element(Element),
    Close,
    Eof,
}

/// The outcome of a SASL exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum Sasl {
    /// `<success/>` with its decoded additional data.
    Success(Vec<u8>),
    /// `<failure/>`: the serialized element and its condition.
    Failure { condition: String, xml: String },
}

pub struct Client {
    pub io: Transport,
    pub framer: Framer,
    /// Everything the server sent, for failure messages.
    pub received: Vec<u8>,
    /// Where in `received` the bytes start that no event has consumed.
    unparsed_from: usize,
    /// Elements read ahead while looking for another one (an iq answer),
    /// handed out first.
    pub pending: VecDeque<Element>,
    /// The full JID bound on this stream.
    pub jid: String,
}

fn tuned(tcp: TcpStream) -> io::Result<TcpStream> {
    tcp.set_read_timeout(Some(timeout()))?;
    tcp.set_write_timeout(Some(timeout()))?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

pub fn try_tcp_connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect_timeout(&addr, timeout())
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    tuned(tcp).map_err(|e| format!("cannot set up the socket: {e}"))
}

pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    try_tcp_connect(addr).unwrap_or_else(|e| panic!("{e}"))
}

/// A connection from a chosen loopback address (any of 127.0.0.0/8 works
/// on Linux), for tests of what the server counts per address.
pub fn tcp_connect_from(addr: SocketAddr, source: IpAddr) -> TcpStream {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let family = match source {
        IpAddr::V4(_) => AddressFamily::INET,
        IpAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = socket(family, SocketType::STREAM, None).expect("a socket");
    bind(&fd, &SocketAddr::new(source, 0)).expect("bind the source address");
    connect(&fd, &addr).expect("connect to the test server");
    tuned(TcpStream::from(fd)).expect("socket options")
}

/// Generous limits: the client parses whatever the server may send (the
/// scansion scripts fetch large items), the server's own limits are what
/// the tests test.
pub fn client_framer() -> Framer {
    Framer::new(Limits {
        max_stanza_bytes: 16 << 20,
        max_depth: 256,
    })
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Whether a read error means the peer is gone (a TLS peer that closes
/// without `close_notify`, a reset after its last bytes).
fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
    )
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(Transport::Plain(tcp_connect(addr)))
    }

    pub fn try_connect(addr: SocketAddr) -> Result<Client, String> {
        try_tcp_connect(addr).map(|tcp| Client::over(Transport::Plain(tcp)))
    }

    /// A plaintext connection from the loopback address `source`.
    pub fn connect_from(addr: SocketAddr, source: IpAddr) -> Client {
        Client::over(Transport::Plain(tcp_connect_from(addr, source)))
    }

    /// XEP-0368 direct TLS, with the `xmpp-client` ALPN protocol.
    pub fn connect_tls(addr: SocketAddr, versions: &[&'static SupportedProtocolVersion]) -> Client {
        let tls = tls_handshake(tcp_connect(addr), versions, &[b"xmpp-client"]);
        Client::over(Transport::Tls(Box::new(tls)))
    }

    pub fn over(io: Transport) -> Client {
        Client {
            io,
            framer: client_framer(),
            received: Vec::new(),
            unparsed_from: 0,
            pending: VecDeque::new(),
            jid: String::new(),
        }
    }

    /// What the server sent so far, for failure messages.
    pub fn transcript(&self) -> String {
        let text = String::from_utf8_lossy(&self.received);
        let chars: Vec<char> = text.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(3000)..].iter().collect();
        format!("{tail:?}")
    }

    /// The bytes received after the last event this client handed out,
    /// as text: for tests that look at what came with the end of a stream
    /// (after [`Client::read_to_eof`] or [`Client::closed_within`]).
    pub fn unparsed(&self) -> String {
        String::from_utf8_lossy(&self.received[self.unparsed_from.min(self.received.len())..])
            .into_owned()
    }

    pub fn send(&mut self, xml: &str) {
        self.send_bytes(xml.as_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.io
            .write_all(bytes)
            .and_then(|()| self.io.flush())
            .unwrap_or_else(|e| panic!("cannot write to the server: {e}"));
    }

    pub fn try_send(&mut self, xml: &str) -> Result<(), String> {
        self.io
            .write_all(xml.as_bytes())
            .and_then(|()| self.io.flush())
            .map_err(|e| format!("cannot write to the server: {e}"))
    }

    pub fn send_header_to(&mut self, to: &str) {
        self.send(&header_to(to));
    }

    /// Reads into `received` (and the framer); `Ok(0)` at the end of the
    /// connection.
    fn fill(&mut self) -> io::Result<usize> {
        let mut buf = [0u8; 8192];
        let n = self.io.read(&mut buf)?;
        let data = &buf[..n];
        self.received.extend_from_slice(data);
        self.framer.push(data);
        Ok(n)
    }

    /// The next event; `Err` when the XML is broken, nothing complete
    /// arrives in time, or reading fails.
    pub fn try_next_event(&mut self) -> Result<Event, String> {
        if let Some(el) = self.pending.pop_front() {
            return Ok(Event::Element(el));
        }
        let deadline = Instant::now() + timeout();
        loop {
            let event = match self.framer.next_event() {
                Ok(Some(FrameEvent::StreamOpen(header))) => Some(Event::Open(header)),
                Ok(Some(FrameEvent::Element(el))) => Some(Event::Element(el)),
                Ok(Some(FrameEvent::StreamClose)) => Some(Event::Close),
                Ok(None) => None,
                Err(e) => {
                    return Err(format!(
                        "the server sent XML the client cannot parse ({e}); received: {}",
                        self.transcript()
                    ));
                }
            };
            if let Some(event) = event {
                self.unparsed_from = self.received.len() - self.framer.buffered();
                return Ok(event);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no complete answer within {:?}; received: {}",
                    timeout(),
                    self.transcript()
                ));
            }
            match self.fill() {
                Ok(0) => return Ok(Event::Eof),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Event::Eof),
                Err(e) if is_timeout(&e) => {
                    return Err(format!(
                        "no answer within {:?}; received: {}",
                        timeout(),
                        self.transcript()
                    ));
                }
                Err(e) => return Err(format!("read failed: {e}; received: {}", self.transcript())),
            }
        }
    }

    pub fn next_event(&mut self) -> Event {
        self.try_next_event().unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn header(&mut self) -> StreamHeader {
        match self.next_event() {
            Event::Open(header) => header,
            other => panic!(
                "expected a stream header, got {other:?}; received: {}",
                self.transcript()
            ),
        }
    }

    pub fn element(&mut self) -> Element {
        match self.next_event() {
            Event::Element(el) => el,
            other => panic!(
                "expected an element, got {other:?}; received: {}",
                self.transcript()
            ),
        }
    }

    /// The next element, waiting for `what`; a stream error or the end
    /// of the stream is an `Err`.
    pub fn try_element(&mut self, what: &str) -> Result<Element, String> {
        match self.try_next_event()? {
            Event::Element(el) if el.is("error", NS_STREAM) => {
                Err(format!("stream error while waiting for {what}: {el}"))
            }
            Event::Element(el) => Ok(el),
            Event::Open(_) => Err(format!("unexpected stream header while waiting for {what}")),
            Event::Close => Err(format!(
                "the server closed the stream while waiting for {what}"
            )),
            Event::Eof => Err(format!("the server closed the connection before {what}")),
        }
    }

    /// The next element that is not a presence (presence broadcasts come
    /// and go with other clients' sessions).
    pub fn non_presence(&mut self) -> Element {
        loop {
            let el = self.element();
            if el.name != "presence" {
                return el;
            }
        }
    }

    /// The first element satisfying `wanted`, skipping others (as the
    /// scansion runner does); `what` names it in the failure message.
    pub fn element_matching(&mut self, what: &str, wanted: impl Fn(&Element) -> bool) -> Element {
        let deadline = Instant::now() + timeout();
        loop {
            assert!(
                Instant::now() < deadline,
                "{}: no {what} within {:?}; received: {}",
                self.jid,
                timeout(),
                self.transcript()
            );
            match self.try_next_event() {
                Ok(Event::Element(el)) if wanted(&el) => return el,
                Ok(Event::Element(_)) => {}
                Ok(other) => panic!(
                    "{}: the stream ended ({other:?}) before {what}; received: {}",
                    self.jid,
                    self.transcript()
                ),
                Err(e) => panic!("{}: no {what}: {e}", self.jid),
            }
        }
    }

    pub fn iq(&mut self, xml: &str) -> Element {
        self.send(xml);
        self.element()
    }

    /// Reads until the answer to the iq `id`, keeping other elements for
    /// later; an answer that is not a result is an `Err`.
    pub fn try_iq_result(&mut self, id: &str) -> Result<Element, String> {
        let mut skipped = VecDeque::new();
        let answer = loop {
            match self.try_element(&format!("the answer to iq {id}")) {
                Ok(el) if el.is("iq", NS_CLIENT) && el.attr("id") == Some(id) => break Ok(el),
                Ok(el) => skipped.push_back(el),
                Err(e) => break Err(e),
            }
        };
        skipped.append(&mut self.pending);
        self.pending = skipped;
        let answer = answer?;
        if answer.attr("type") == Some("result") {
            Ok(answer)
        } else {
            Err(format!("iq {id} failed: {answer}"))
        }
    }

    /// Pings the server and returns its answer (other stanzas are kept).
    pub fn ping(&mut self, id: &str) -> Element {
        self.send(&format!(
            "<iq type='get' id='{id}' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
        ));
        let wanted = id.to_string();
        self.element_matching(&format!("answer to ping {id}"), move |el| {
            el.is("iq", NS_CLIENT) && el.attr("id") == Some(wanted.as_str())
        })
    }

    /// Opens a stream to `localhost` and returns the stream features.
    pub fn open(&mut self) -> Element {
        self.send_header_to("localhost");
        let header = self.header();
        assert_eq!(header.from.as_deref(), Some("localhost"), "{header:?}");
        assert_eq!(header.version.as_deref(), Some("1.0"), "{header:?}");
        assert!(
            header.id.as_deref().is_some_and(|id| !id.is_empty()),
            "the stream header needs an id: {header:?}"
        );
        let features = self.element();
        assert!(
            features.is("features", NS_STREAM),
            "expected stream features, got {features}"
        );
        features
    }

    /// Opens a stream to `domain` and returns the stream features.
    pub fn try_open_to(&mut self, domain: &str) -> Result<Element, String> {
        self.try_send(&header_to(domain))?;
        match self.try_next_event()? {
            Event::Open(_) => {}
            Event::Element(el) => return Err(format!("expected a stream header, got {el}")),
            Event::Close | Event::Eof => {
                return Err("the server closed the stream at once".to_string());
            }
        }
        let features = self.try_element("stream features")?;
        if features.is("features", NS_STREAM) {
            Ok(features)
        } else {
            Err(format!("expected stream features, got {features}"))
        }
    }

    /// Starts over on the same connection, as after STARTTLS or SASL.
    fn reset(&mut self) {
        self.framer = client_framer();
        self.unparsed_from = self.received.len();
    }

    /// A new stream on the same connection, as after STARTTLS or SASL.
    pub fn restart(&mut self) -> Element {
        self.reset();
        self.open()
    }

    /// STARTTLS (RFC 6120 §5) and a new stream; returns its features.
    pub fn starttls(&mut self, versions: &[&'static SupportedProtocolVersion]) -> Element {
        self.send(&format!("<starttls xmlns='{NS_TLS}'/>"));
        let proceed = self.element();
        assert!(
            proceed.is("proceed", NS_TLS),
            "expected <proceed/>, got {proceed}"
        );
        let tcp = match std::mem::replace(&mut self.io, Transport::Upgrading) {
            Transport::Plain(tcp) => tcp,
            _ => panic!("STARTTLS on a stream that is not plaintext"),
        };
        self.io = Transport::Tls(Box::new(tls_handshake(tcp, versions, &[])));
        self.restart()
    }

    pub fn tls(&self) -> &TlsStream {
        match &self.io {
            Transport::Tls(tls) => tls,
            _ => panic!("the stream is not encrypted"),
        }
    }

    pub fn tls_version(&self) -> Option<ProtocolVersion> {
        self.tls().conn.protocol_version()
    }

    /// RFC 9266 `tls-exporter` channel binding of this connection.
    pub fn channel_binding(&self) -> ChannelBinding {
        let data = self
            .tls()
            .conn
            .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
            .expect("keying material can be exported");
        ChannelBinding::tls_exporter(data.to_vec())
    }

    pub fn try_sasl_outcome(&mut self) -> Result<Sasl, String> {
        let el = self.try_element("the SASL outcome")?;
        if el.is("success", NS_SASL) {
            let text = el.text();
            let text = text.trim();
            let data = if text.is_empty() || text == "=" {
                Vec::new()
            } else {
                base64::decode(text)
                    .map_err(|e| format!("<success/> is not base64 ({e:?}): {el}"))?
            };
            Ok(Sasl::Success(data))
        } else if el.is("failure", NS_SASL) {
            Ok(Sasl::Failure {
                condition: failure_condition(&el),
                xml: el.to_string(),
            })
        } else {
            Err(format!("expected <success/> or <failure/>, got {el}"))
        }
    }

    pub fn sasl_outcome(&mut self) -> Sasl {
        self.try_sasl_outcome().unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_auth_plain(&mut self, user: &str, password: &str) -> Result<Sasl, String> {
        let payload = base64::encode(format!("\0{user}\0{password}").as_bytes());
        self.try_send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"
        ))?;
        self.try_sasl_outcome()
    }

    pub fn auth_plain(&mut self, user: &str, password: &str) -> Sasl {
        self.try_auth_plain(user, password)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs a SCRAM exchange; returns the server-first message (when the
    /// server got that far) and the outcome.
    pub fn auth_scram(&mut self, scram: &mut ScramClient) -> (Option<Vec<u8>>, Sasl) {
        self.send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='{}'>{}</auth>",
            scram.mechanism().name(),
            base64::encode(&scram.first())
        ));
        let challenge = self.element();
        if challenge.is("failure", NS_SASL) {
            let outcome = Sasl::Failure {
                condition: failure_condition(&challenge),
                xml: challenge.to_string(),
            };
            return (None, outcome);
        }
        assert!(
            challenge.is("challenge", NS_SASL),
            "expected <challenge/>, got {challenge}"
        );
        let server_first =
            base64::decode(challenge.text().trim()).expect("the challenge is base64");
        let client_final = scram
            .final_(&server_first)
            .expect("the server-first message is valid");
        self.send(&format!(
            "<response xmlns='{NS_SASL}'>{}</response>",
            base64::encode(&client_final)
        ));
        (Some(server_first), self.sasl_outcome())
    }

    /// Binds a resource (`None`: the server picks one) and returns the
    /// full JID the server assigned.
    pub fn try_bind(&mut self, resource: Option<&str>) -> Result<String, String> {
        let resource = resource
            .map(|r| {
                format!(
                    "<resource>{}</resource>",
                    escaped(r, perch::xml::escape_text_into)
                )
            })
            .unwrap_or_default();
        self.try_send(&format!(
            "<iq type='set' id='bind-1'><bind xmlns='{NS_BIND}'>{resource}</bind></iq>"
        ))?;
        let iq = self.try_element("the bind result")?;
        if !iq.is("iq", NS_CLIENT)
            || iq.attr("type") != Some("result")
            || iq.attr("id") != Some("bind-1")
        {
            return Err(format!("bind failed: {iq}"));
        }
        let jid = iq
            .get_child("bind", NS_BIND)
            .and_then(|b| b.get_child("jid", NS_BIND))
            .map(|j| j.text().trim().to_string())
            .filter(|j| !j.is_empty())
            .ok_or_else(|| format!("bind result without <jid/>: {iq}"))?;
        self.jid = jid.clone();
        Ok(jid)
    }

    pub fn bind(&mut self, resource: Option<&str>) -> String {
        self.try_bind(resource).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Opens a stream to `domain`, authenticates with PLAIN, binds
    /// `resource` and, if the server requires one, opens an RFC 3921
    /// session: what a minimal client does before its first stanza.
    /// Returns the full JID.
    pub fn try_login(
        &mut self,
        domain: &str,
        (user, password): (&str, &str),
        resource: Option<&str>,
    ) -> Result<String, String> {
        let features = self.try_open_to(domain)?;
        if !mechanisms(&features).iter().any(|m| m == "PLAIN") {
            return Err(format!("server offers no SASL PLAIN: {features}"));
        }
        match self.try_auth_plain(user, password)? {
            Sasl::Success(data) if data.is_empty() => {}
            other => return Err(format!("SASL PLAIN as {user:?} failed: {other:?}")),
        }
        self.reset();
        let features = self.try_open_to(domain)?;
        if features.get_child("bind", NS_BIND).is_none() {
            return Err(format!("server offers no resource binding: {features}"));
        }
        let jid = self.try_bind(resource)?;
        if let Some(session) = features.get_child("session", NS_SESSION)
            && session.get_child("optional", NS_SESSION).is_none()
        {
            self.try_send(&format!(
                "<iq type='set' id='session-1'><session xmlns='{NS_SESSION}'/></iq>"
            ))?;
            self.try_iq_result("session-1")?;
        }
        Ok(jid)
    }

    /// Reads until the server closes the connection; nothing but the
    /// already received `</stream:stream>` may come before.
    pub fn expect_eof(&mut self) {
        let before = self.received.len();
        let deadline = Instant::now() + timeout();
        let mut buf = [0u8; 4096];
        loop {
            match self.io.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if is_gone(&e) => break,
                Err(e) if is_timeout(&e) => panic!(
                    "the server did not close the connection within {:?}; received: {}",
                    timeout(),
                    self.transcript()
                ),
                Err(e) => panic!("read failed: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "the server did not close the connection within {:?}; received: {}",
                timeout(),
                self.transcript()
            );
        }
        let after = String::from_utf8_lossy(&self.received[before..]);
        assert!(
            after.trim().is_empty(),
            "the server sent {after:?} after closing its stream"
        );
    }

    /// Reads raw bytes until the server closes the connection (`true`) or
    /// a read times out (`false`); returns [`Client::unparsed`].
    pub fn read_to_eof(&mut self) -> (String, bool) {
        let eof = loop {
            match self.fill() {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_gone(&e) => break true,
                Err(_) => break false,
            }
        };
        (self.unparsed(), eof)
    }

    /// Whether the server closes the connection within `limit`; what it
    /// sends before is kept (see [`Client::unparsed`]).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        if let Some(tcp) = self.io.tcp() {
            tcp.set_read_timeout(Some(POLL)).expect("read timeout");
        }
        let closed = loop {
            if Instant::now() >= deadline {
                break false;
            }
            match self.fill() {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if let Some(tcp) = self.io.tcp() {
            let _ = tcp.set_read_timeout(Some(timeout()));
        }
        closed
    }

    /// Expects `</stream:stream>` and then the end of the connection.
    pub fn expect_close(&mut self) {
        match self.next_event() {
            Event::Close => {}
            other => panic!(
                "expected </stream:stream>, got {other:?}; received: {}",
                self.transcript()
            ),
        }
        self.expect_eof();
    }

    /// Expects a stream error with `condition` (RFC 6120 §4.9.3), then
    /// `</stream:stream>` and the end of the connection.
    pub fn expect_stream_error(&mut self, condition: &str) {
        let el = self.element();
        assert!(
            el.is("error", NS_STREAM),
            "expected <stream:error><{condition}/>, got {el}; received: {}",
            self.transcript()
        );
        let found: Vec<&str> = el
            .children()
            .filter(|c| c.ns == NS_STREAM_ERRORS && c.name != "text")
            .map(|c| c.name.as_ref())
            .collect();
        assert_eq!(
            found,
            [condition],
            "wrong stream error condition; received: {}",
            self.transcript()
        );
        self.expect_close();
    }

    /// Cuts the connection without closing the stream, as a phone losing
    /// its network does (the server sees the connection end, not the
    /// stream).
    pub fn cut(self) {
        if let Some(tcp) = self.io.tcp() {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Closes the stream and waits briefly for the server to close its
    /// side (so that what the session did is done), then the connection.
    /// Whatever arrives before is dropped.
    pub fn disconnect(mut self) {
        if self.try_send("</stream:stream>").is_err() {
            return;
        }
        let deadline = Instant::now() + CLOSE_WAIT;
        if let Some(tcp) = self.io.tcp() {
            let _ = tcp.set_read_timeout(Some(CLOSE_WAIT));
        }
        while Instant::now() < deadline {
            match self.try_next_event() {
                Ok(Event::Open(_) | Event::Element(_)) => {}
                Ok(Event::Close | Event::Eof) | Err(_) => break,
            }
        }
    }

    /// The plaintext socket, the framer holding what was read but not
    /// parsed, and elements read ahead: for a caller that reads the stream
    /// on its own from here (the scansion runner's reader thread).
    pub fn into_plain_parts(self) -> Result<(TcpStream, Framer, VecDeque<Element>), String> {
        match self.io {
            Transport::Plain(tcp) => Ok((tcp, self.framer, self.pending)),
            _ => Err("the connection is not plaintext".to_string()),
        }
    }
}

/// `s` escaped with one of the library's escapers.
fn escaped(s: &str, escape: fn(&str, &mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    escape(s, &mut out);
    String::from_utf8(out).expect("escaping keeps UTF-8")
}

fn header_to(to: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' \
         to='{}' version='1.0' xml:lang='en'>",
        escaped(to, perch::xml::escape_attr_into)
    )
}

pub fn failure_condition(failure: &Element) -> String {
    failure
        .children()
        .find(|c| c.ns == NS_SASL && c.name != "text")
        .map(|c| c.name.to_string())
        .unwrap_or_default()
}

pub fn mechanisms(features: &Element) -> Vec<String> {
    features
        .get_child("mechanisms", NS_SASL)
        .map(|m| {
            m.children()
                .filter(|c| c.is("mechanism", NS_SASL))
                .map(|c| c.text().trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

pub fn channel_binding_types(features: &Element) -> Vec<String> {
    features
        .get_child("sasl-channel-binding", NS_SASL_CB)
        .map(|cb| {
            cb.children()
                .filter(|c| c.is("channel-binding", NS_SASL_CB))
                .filter_map(|c| c.attr("type").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A plaintext client at `addr` with a PLAIN login and a bound resource.
pub fn login_at(addr: SocketAddr, account: (&str, &str), resource: Option<&str>) -> Client {
    let mut client = Client::connect(addr);
    if let Err(e) = client.try_login("localhost", account, resource) {
        panic!("login as {}: {e}", account.0);
    }
    client
}

/// [`login_at`] the test server's plaintext c2s port.
pub fn login(server: &TestServer, account: (&str, &str), resource: Option<&str>) -> Client {
    login_at(server.c2s_addr(), account, resource)
}

/// A plaintext client at `addr`, authenticated with PLAIN but not bound;
/// `Err` with the server's `<failure/>` when the login fails.
pub fn authenticate(addr: SocketAddr, (user, password): (&str, &str)) -> Result<Client, String> {
    let mut client = Client::connect(addr);
    let features = client.open();
    assert!(
        mechanisms(&features).iter().any(|m| m == "PLAIN"),
        "PLAIN is not offered: {features}"
    );
    match client.auth_plain(user, password) {
        Sasl::Success(_) => Ok(client),
        Sasl::Failure { xml, .. } => Err(xml),
    }
}

/// A plaintext client whose stream is open but not authenticated.
pub fn opened(server: &TestServer) -> Client {
    let mut client = Client::connect(server.c2s_addr());
    client.open();
    client
}

pub fn scram(
    hash: ScramHash,
    (user, password): (&str, &str),
    cb: Option<ChannelBinding>,
) -> ScramClient {
    ScramClient::new(hash, user, password, cb).expect("a SCRAM client")
}

/// A loopback port nothing listens on now: for servers that must know
/// each other's ports before either starts (federation tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `user@domain` logged in with password `password` and available
/// (initial presence sent and echoed), so messages to its bare JID reach
/// it (RFC 6121 §8.5.2).
pub fn available_at(
    addr: SocketAddr,
    domain: &str,
    (user, password): (&str, &str),
    resource: &str,
) -> Client {
    let mut client = Client::connect(addr);
    client
        .try_login(domain, (user, password), Some(resource))
        .unwrap_or_else(|e| panic!("login {user}@{domain}: {e}"));
    client.send("<presence/>");
    client.element_matching("the presence echo", |el| el.name == "presence");
    client
}
