//! The one XMPP test client the integration tests share: a blocking socket
//! (plaintext, STARTTLS or direct TLS) with read and write timeouts, so a
//! broken server fails a test instead of hanging it, and failure messages
//! that quote what the server sent. Each test binary uses part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use perch::sasl::client::ScramClient;
use perch::sasl::{ChannelBinding, ScramHash, base64};
use perch::testing::TestServer;
use perch::xml::{Element, FrameEvent, Framer, Limits, StreamHeader};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, ProtocolVersion, SignatureScheme,
    StreamOwned, SupportedProtocolVersion,
};

pub const NS_CLIENT: &str = "jabber:client";
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_PING: &str = "urn:xmpp:ping";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_VERSION: &str = "jabber:iq:version";
pub const NS_TIME: &str = "urn:xmpp:time";

/// The longest any single exchange may take before the test fails.
pub fn timeout() -> Duration {
    perch::testing::scaled(Duration::from_secs(5))
}

// ---------------------------------------------------------------------------
// TLS for tests: the server's certificate is self-signed, so any certificate
// is accepted; handshake signatures are still checked.

#[derive(Debug)]
pub struct AcceptSelfSigned(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptSelfSigned {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
pub const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

pub fn tls_handshake(
    tcp: TcpStream,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> TlsStream {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("the ring provider supports these TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptSelfSigned(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from("localhost").expect("a valid server name");
    let conn = ClientConnection::new(Arc::new(config), name).expect("a TLS client connection");
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("the TLS handshake completes");
    }
    tls
}

// ---------------------------------------------------------------------------
// A scripted client.

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// Only while STARTTLS swaps the transport.
    Upgrading,
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
    /// The full JID bound on this stream.
    pub jid: String,
}

pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect_timeout(&addr, timeout()).expect("connect to the test server");
    tcp.set_read_timeout(Some(timeout())).expect("read timeout");
    tcp.set_write_timeout(Some(timeout()))
        .expect("write timeout");
    tcp.set_nodelay(true).expect("nodelay");
    tcp
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
    let tcp = TcpStream::from(fd);
    tcp.set_read_timeout(Some(timeout())).expect("read timeout");
    tcp.set_write_timeout(Some(timeout()))
        .expect("write timeout");
    tcp.set_nodelay(true).expect("nodelay");
    tcp
}

pub fn client_framer() -> Framer {
    Framer::new(Limits {
        max_stanza_bytes: 1 << 20,
        max_depth: 64,
    })
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(Transport::Plain(tcp_connect(addr)))
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

    pub fn send(&mut self, xml: &str) {
        self.send_bytes(xml.as_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.io
            .write_all(bytes)
            .and_then(|()| self.io.flush())
            .unwrap_or_else(|e| panic!("cannot write to the server: {e}"));
    }

    pub fn send_header_to(&mut self, to: &str) {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' \
             to='{to}' version='1.0' xml:lang='en'>"
        ));
    }

    pub fn next_event(&mut self) -> Event {
        let deadline = Instant::now() + timeout();
        loop {
            match self.framer.next_event() {
                Ok(Some(FrameEvent::StreamOpen(header))) => return Event::Open(header),
                Ok(Some(FrameEvent::Element(el))) => return Event::Element(el),
                Ok(Some(FrameEvent::StreamClose)) => return Event::Close,
                Ok(None) => {}
                Err(e) => panic!(
                    "the server sent XML the client cannot parse ({e}); received: {}",
                    self.transcript()
                ),
            }
            assert!(
                Instant::now() < deadline,
                "no complete answer within {:?}; received: {}",
                timeout(),
                self.transcript()
            );
            let mut buf = [0u8; 8192];
            match self.io.read(&mut buf) {
                Ok(0) => return Event::Eof,
                Ok(n) => {
                    let data = &buf[..n];
                    self.received.extend_from_slice(data);
                    self.framer.push(data);
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Event::Eof,
                Err(e) if is_timeout(&e) => panic!(
                    "no answer within {:?}; received: {}",
                    timeout(),
                    self.transcript()
                ),
                Err(e) => panic!("read failed: {e}; received: {}", self.transcript()),
            }
        }
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

    pub fn iq(&mut self, xml: &str) -> Element {
        self.send(xml);
        self.element()
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

    /// A new stream on the same connection, as after STARTTLS or SASL.
    pub fn restart(&mut self) -> Element {
        self.framer = client_framer();
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

    pub fn sasl_outcome(&mut self) -> Sasl {
        let el = self.element();
        if el.is("success", NS_SASL) {
            let text = el.text();
            let text = text.trim();
            let data = if text.is_empty() || text == "=" {
                Vec::new()
            } else {
                base64::decode(text).expect("<success/> carries base64")
            };
            Sasl::Success(data)
        } else if el.is("failure", NS_SASL) {
            Sasl::Failure {
                condition: failure_condition(&el),
                xml: el.to_string(),
            }
        } else {
            panic!("expected <success/> or <failure/>, got {el}")
        }
    }

    pub fn auth_plain(&mut self, user: &str, password: &str) -> Sasl {
        let payload = base64::encode(format!("\0{user}\0{password}").as_bytes());
        self.send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"
        ));
        self.sasl_outcome()
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

    /// Binds a resource and returns the full JID the server assigned.
    pub fn bind(&mut self, resource: Option<&str>) -> String {
        let resource = resource
            .map(|r| format!("<resource>{r}</resource>"))
            .unwrap_or_default();
        let iq = self.iq(&format!(
            "<iq type='set' id='bind-1'><bind xmlns='{NS_BIND}'>{resource}</bind></iq>"
        ));
        assert_eq!(iq.attr("type"), Some("result"), "bind failed: {iq}");
        assert_eq!(iq.attr("id"), Some("bind-1"), "{iq}");
        let jid = iq
            .get_child("bind", NS_BIND)
            .and_then(|b| b.get_child("jid", NS_BIND))
            .map(|j| j.text().trim().to_string())
            .unwrap_or_else(|| panic!("bind result without <jid/>: {iq}"));
        self.jid = jid.clone();
        jid
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
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    break;
                }
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

/// A plaintext client with a PLAIN login and a bound resource.
pub fn login(
    server: &TestServer,
    (user, password): (&str, &str),
    resource: Option<&str>,
) -> Client {
    let mut client = Client::connect(server.c2s_addr());
    client.open();
    assert_eq!(
        client.auth_plain(user, password),
        Sasl::Success(Vec::new()),
        "PLAIN login as {user}"
    );
    let features = client.restart();
    assert!(features.get_child("bind", NS_BIND).is_some(), "{features}");
    client.bind(resource);
    client
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

/// Checks that `reply` is the error answer to a stanza (RFC 6120 §8.3):
/// same kind, `type='error'`, same id, one defined condition of the given
/// error type.
pub fn assert_stanza_error(
    reply: &Element,
    name: &str,
    id: Option<&str>,
    condition: &str,
    error_type: &str,
) {
    assert!(
        reply.is(name, NS_CLIENT),
        "expected an error <{name}/>, got {reply}"
    );
    assert_eq!(reply.attr("type"), Some("error"), "{reply}");
    assert_eq!(reply.attr("id"), id, "{reply}");
    let error = reply
        .get_child("error", NS_CLIENT)
        .unwrap_or_else(|| panic!("no <error/> child: {reply}"));
    assert_eq!(error.attr("type"), Some(error_type), "{reply}");
    let conditions: Vec<&str> = error
        .children()
        .filter(|c| c.ns == NS_STANZAS && c.name != "text")
        .map(|c| c.name.as_ref())
        .collect();
    assert_eq!(conditions, [condition], "{reply}");
}

pub fn assert_result(reply: &Element, id: &str) {
    assert!(reply.is("iq", NS_CLIENT), "expected an iq, got {reply}");
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    assert_eq!(reply.attr("id"), Some(id), "{reply}");
}
