//! One client connection: TCP (optionally TLS, direct or STARTTLS) or
//! XMPP over WebSocket (RFC 7395, `ws`), the framer over its input, and the
//! c2s login (SASL, bind, session, initial presence) as any RFC 6120
//! server expects it. Over WebSocket the transport translates frames to and
//! from the bytes of a stream document, so everything above it (the
//! login, the scenarios) is the same for both.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, future};
use futures_rustls::client::TlsStream;
use rustls::pki_types::ServerName;
use smol::net::TcpStream;

use crate::base64;
use crate::sasl::{self, Mechanism, SaslError, ScramClient};
use crate::sm::{self, NS_SM};
use crate::ws::{WsEndpoint, WsStream};
use crate::xml::{self, Frame, FrameError};

pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";

/// Bytes asked of the socket per read. Large enough that a burst of
/// deliveries is handled in one wake-up.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Direct,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s {
            "none" | "plain" => Some(TlsMode::None),
            "starttls" => Some(TlsMode::StartTls),
            "direct" => Some(TlsMode::Direct),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::StartTls => "starttls",
            TlsMode::Direct => "direct",
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub domain: String,
    pub tls: TlsMode,
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
    /// Bound on each negotiation step.
    pub step_timeout: Duration,
    /// XMPP over WebSocket at `addr` (an HTTP listener), not c2s over TCP.
    pub ws: Option<Arc<WsEndpoint>>,
}

/// How clients reach the server: c2s over TCP or XMPP over WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Ws,
}

impl Transport {
    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "tcp" => Some(Transport::Tcp),
            "ws" | "websocket" => Some(Transport::Ws),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
        }
    }
}

#[derive(Debug)]
pub enum ClientError {
    Io(&'static str, io::Error),
    Timeout(&'static str),
    Closed(&'static str),
    Frame(FrameError),
    StreamError(String),
    Sasl(SaslError),
    /// The server said no (auth failure, bind error, stanza error).
    Refused(&'static str, String),
    NotOffered(String, Vec<String>),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(step, e) => write!(f, "{step}: {e}"),
            ClientError::Timeout(step) => write!(f, "{step}: timed out"),
            ClientError::Closed(step) => write!(f, "{step}: server closed the stream"),
            ClientError::Frame(e) => write!(f, "{e}"),
            ClientError::StreamError(text) => write!(f, "stream error: {text}"),
            ClientError::Sasl(e) => write!(f, "{e}"),
            ClientError::Refused(step, text) => write!(f, "{step} refused: {text}"),
            ClientError::NotOffered(what, offered) => {
                write!(f, "{what} not offered (offered: {})", offered.join(" "))
            }
        }
    }
}

impl std::error::Error for ClientError {}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        ClientError::Frame(e)
    }
}

impl From<SaslError> for ClientError {
    fn from(e: SaslError) -> Self {
        ClientError::Sasl(e)
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Ws(Box<WsStream>),
    Upgrading,
}

fn upgrading() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "TLS upgrade in progress")
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Io::Ws(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Io::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Io::Ws(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Io::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Io::Ws(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Io::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_close(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Io::Ws(s) => Pin::new(s.as_mut()).poll_close(cx),
            Io::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// Runs `fut` for at most `limit`.
pub async fn timeout<T>(
    limit: Duration,
    step: &'static str,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    future::or(fut, async {
        smol::Timer::after(limit).await;
        Err(ClientError::Timeout(step))
    })
    .await
}

pub struct Conn {
    io: Io,
    /// Unconsumed input; frames index into it.
    buf: Vec<u8>,
    framer: xml::Framer,
    /// The full JID the server bound.
    pub jid: String,
    /// Index of the account this connection logged in as.
    pub index: usize,
    /// Stream management's counts, once enabled (`Login::sm`) or resumed.
    pub sm: Option<sm::Counter>,
    /// Round trips so far: writes that were followed by a read (a request
    /// and the start of its answer; pipelined writes count once).
    round_trips: u32,
    /// `round_trips` when the TLS handshake ended (0 without TLS).
    round_trips_at_tls: u32,
    /// Something was written and no answer read yet.
    awaiting: bool,
}

impl Conn {
    /// Connects, opens the stream and returns the first `<stream:features>`.
    pub async fn open(target: &Target) -> Result<(Conn, Vec<u8>), ClientError> {
        let tcp = timeout(target.step_timeout, "connect", async {
            TcpStream::connect(target.addr)
                .await
                .map_err(|e| ClientError::Io("connect", e))
        })
        .await?;
        Conn::open_on(target, tcp).await
    }

    /// Like `open`, over a TCP connection the caller made (one from a
    /// chosen source address: `source::connect_from`).
    pub async fn open_on(target: &Target, tcp: TcpStream) -> Result<(Conn, Vec<u8>), ClientError> {
        let _ = tcp.set_nodelay(true);
        let io = match &target.ws {
            None => Io::Plain(tcp),
            Some(endpoint) => {
                if target.tls != TlsMode::None {
                    return Err(ClientError::Refused(
                        "websocket",
                        "TLS over WebSocket (wss) is not supported".into(),
                    ));
                }
                let ws = timeout(target.step_timeout, "websocket upgrade", async {
                    WsStream::connect(tcp, endpoint)
                        .await
                        .map_err(|e| ClientError::Refused("websocket upgrade", e))
                })
                .await?;
                Io::Ws(Box::new(ws))
            }
        };
        let mut conn = Conn {
            io,
            buf: Vec::new(),
            framer: xml::Framer::new(),
            jid: String::new(),
            index: 0,
            sm: None,
            round_trips: 0,
            round_trips_at_tls: 0,
            awaiting: false,
        };
        if target.tls == TlsMode::Direct {
            conn.handshake(target).await?;
        }
        let mut features = conn.restart(target).await?;
        if target.tls == TlsMode::StartTls {
            if !has_child(&features, "starttls", NS_TLS) {
                return Err(ClientError::NotOffered("STARTTLS".into(), Vec::new()));
            }
            conn.send(format!("<starttls xmlns='{NS_TLS}'/>").as_bytes())
                .await?;
            let answer = timeout(target.step_timeout, "starttls", conn.next_element()).await?;
            if xml::local_name(&answer) != b"proceed" {
                return Err(ClientError::Refused("starttls", lossy(&answer)));
            }
            conn.handshake(target).await?;
            features = conn.restart(target).await?;
        }
        Ok((conn, features))
    }

    async fn handshake(&mut self, target: &Target) -> Result<(), ClientError> {
        let Some(config) = target.tls_config.clone() else {
            return Err(ClientError::Refused("tls", "no TLS configuration".into()));
        };
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Upgrading) else {
            return Err(ClientError::Refused("tls", "already encrypted".into()));
        };
        let name = ServerName::try_from(target.domain.clone())
            .map_err(|e| ClientError::Refused("tls", e.to_string()))?;
        let tls = timeout(target.step_timeout, "tls handshake", async {
            futures_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| ClientError::Io("tls handshake", e))
        })
        .await?;
        self.io = Io::Tls(Box::new(tls));
        self.buf.clear();
        self.framer.reset();
        self.awaiting = false;
        self.round_trips_at_tls = self.round_trips;
        Ok(())
    }

    /// Sends a stream header and waits for the server's header and features.
    async fn restart(&mut self, target: &Target) -> Result<Vec<u8>, ClientError> {
        self.framer.reset();
        self.buf.clear();
        self.send(xml::stream_header(&target.domain).as_bytes())
            .await?;
        timeout(target.step_timeout, "stream features", async {
            loop {
                match self.next_frame_owned().await? {
                    Owned::Header => continue,
                    Owned::Element(el) if xml::local_name(&el) == b"features" => return Ok(el),
                    Owned::Element(el) => check_stream_error(&el)?,
                }
            }
        })
        .await
    }

    /// Round trips since the TLS handshake (since connecting, without
    /// TLS): the exchanges a login needs once the channel is secure.
    pub fn round_trips_after_tls(&self) -> u32 {
        self.round_trips - self.round_trips_at_tls
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.awaiting = true;
        self.io
            .write_all(bytes)
            .await
            .map_err(|e| ClientError::Io("write", e))?;
        self.io
            .flush()
            .await
            .map_err(|e| ClientError::Io("write", e))
    }

    /// Reads more input; cancel-safe (a dropped read leaves the buffer as it
    /// was). Returns the number of bytes read; end of stream is an error.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, ClientError>> {
        let reclaim = self.framer.reclaimable();
        if reclaim > 0 && (reclaim == self.buf.len() || reclaim >= READ_CHUNK) {
            self.buf.drain(..reclaim);
            self.framer.consumed(reclaim);
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let result = Pin::new(&mut self.io).poll_read(cx, &mut self.buf[old..]);
        let n = match &result {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        self.buf.truncate(old + n);
        match result {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(0)) => Poll::Ready(Err(ClientError::Closed("read"))),
            Poll::Ready(Ok(n)) => {
                if std::mem::take(&mut self.awaiting) {
                    self.round_trips += 1;
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(ClientError::Io("read", e))),
        }
    }

    pub async fn fill(&mut self) -> Result<usize, ClientError> {
        future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// Reads more input, unless `stop` fires first: `Ok(false)` then.
    pub async fn fill_or_stop(
        &mut self,
        stop: &smol::channel::Receiver<()>,
    ) -> Result<bool, ClientError> {
        let filled = future::or(async { Some(self.fill().await) }, async {
            let _ = stop.recv().await;
            None
        })
        .await;
        match filled {
            Some(r) => r.map(|_| true),
            None => Ok(false),
        }
    }

    /// Reads and drops input (an idle client): no buffer is kept.
    pub async fn discard(&mut self) -> Result<usize, ClientError> {
        future::poll_fn(|cx| {
            let mut scratch = [0u8; 512];
            match Pin::new(&mut self.io).poll_read(cx, &mut scratch) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(0)) => Poll::Ready(Err(ClientError::Closed("read"))),
                Poll::Ready(Ok(n)) => Poll::Ready(Ok(n)),
                Poll::Ready(Err(e)) => Poll::Ready(Err(ClientError::Io("read", e))),
            }
        })
        .await
    }

    /// The next complete frame already buffered.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ClientError> {
        Ok(self.framer.next(&self.buf)?)
    }

    pub fn bytes(&self, start: usize, end: usize) -> &[u8] {
        self.buf.get(start..end).unwrap_or_default()
    }

    /// Releases the read buffer (an idle connection should hold none).
    pub fn shrink(&mut self) {
        let reclaim = self.framer.reclaimable();
        self.buf.drain(..reclaim);
        self.framer.consumed(reclaim);
        self.buf.shrink_to_fit();
        if let Io::Ws(ws) = &mut self.io {
            ws.shrink();
        }
    }

    async fn next_frame_owned(&mut self) -> Result<Owned, ClientError> {
        loop {
            match self.next_frame()? {
                Some(Frame::Header(..)) => return Ok(Owned::Header),
                Some(Frame::Element(a, b)) => return Ok(Owned::Element(self.bytes(a, b).to_vec())),
                Some(Frame::End) => return Err(ClientError::Closed("stream")),
                None => {
                    self.fill().await?;
                }
            }
        }
    }

    /// The next top-level element (negotiation; allocates). With stream
    /// management on, stanzas are counted, `<r/>` is answered and `<a/>`
    /// checked on the way; neither of the last two is returned.
    pub async fn next_element(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Owned::Element(el) = self.next_frame_owned().await? {
                check_stream_error(&el)?;
                if let Some(counter) = self.sm.as_mut() {
                    let mut answer = Vec::new();
                    let kind = counter.inbound(&el, &mut answer).map_err(bad_ack)?;
                    if !answer.is_empty() {
                        self.send(&answer).await?;
                    }
                    if matches!(kind, sm::Inbound::Request | sm::Inbound::Ack(_)) {
                        continue;
                    }
                }
                return Ok(el);
            }
        }
    }

    /// Stream management's view of the element at `start..end` (from
    /// `next_frame`): counts a stanza, appends the answer to an `<r/>` to
    /// `out`, checks an `<a/>`. `Other` when stream management is off.
    pub fn sm_inbound(
        &mut self,
        start: usize,
        end: usize,
        out: &mut Vec<u8>,
    ) -> Result<sm::Inbound, ClientError> {
        let el = self.buf.get(start..end).unwrap_or_default();
        match self.sm.as_mut() {
            Some(counter) => counter.inbound(el, out).map_err(bad_ack),
            None => Ok(sm::Inbound::Other),
        }
    }

    /// Loses the connection the way a phone does: both directions shut
    /// down, no `</stream:stream>`, so a stream-managed session waits for
    /// its client to resume it.
    pub fn cut(self) {
        let tcp = match &self.io {
            Io::Plain(tcp) => Some(tcp),
            Io::Tls(tls) => Some(tls.get_ref().0),
            Io::Ws(ws) => Some(ws.tcp()),
            Io::Upgrading => None,
        };
        if let Some(tcp) = tcp {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Waits for the iq with this id, skipping anything else.
    pub async fn await_iq(&mut self, id: &str) -> Result<Vec<u8>, ClientError> {
        loop {
            let el = self.next_element().await?;
            if xml::local_name(&el) == b"iq"
                && xml::start_tag_attr(&el, "id") == Some(id.as_bytes())
            {
                return Ok(el);
            }
        }
    }

    /// Ends the stream politely and closes the socket without waiting long.
    /// With stream management, everything received is acknowledged first,
    /// so the server need not treat it as undelivered.
    pub async fn close(mut self) {
        let mut last = Vec::new();
        if let Some(counter) = self.sm.as_mut() {
            counter.answer(&mut last);
        }
        last.extend_from_slice(b"</stream:stream>");
        let _ = future::or(
            async {
                let _ = self.io.write_all(&last).await;
                let _ = self.io.close().await;
            },
            async {
                smol::Timer::after(Duration::from_secs(2)).await;
            },
        )
        .await;
    }
}

enum Owned {
    Header,
    Element(Vec<u8>),
}

fn bad_ack(e: sm::BadAck) -> ClientError {
    ClientError::Refused("stream management ack", e.to_string())
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(300).collect()
}

fn check_stream_error(el: &[u8]) -> Result<(), ClientError> {
    if xml::local_name(el) == b"error" && el.starts_with(b"<stream:error") {
        return Err(ClientError::StreamError(lossy(el)));
    }
    Ok(())
}

fn has_child(el: &[u8], name: &str, ns: &str) -> bool {
    xml::with_parsed(el, |n| {
        n.children()
            .any(|c| c.tag_name().name() == name && c.tag_name().namespace() == Some(ns))
    })
    .unwrap_or(false)
}

/// The SASL mechanisms a `<stream:features>` offers.
pub fn mechanisms(features: &[u8]) -> Vec<String> {
    xml::with_parsed(features, |n| {
        n.descendants()
            .filter(|c| {
                c.tag_name().name() == "mechanism" && c.tag_name().namespace() == Some(NS_SASL)
            })
            .filter_map(|c| c.text().map(|t| t.trim().to_string()))
            .collect()
    })
    .unwrap_or_default()
}

/// The text content of a SASL element (`<challenge>`, `<success>`), base64-decoded.
fn sasl_payload(el: &[u8]) -> Result<Vec<u8>, ClientError> {
    let text = xml::with_parsed(el, |n| n.text().unwrap_or("").trim().to_string())?;
    if text == "=" {
        return Ok(Vec::new());
    }
    base64::decode(&text).map_err(|_| ClientError::Refused("sasl", "bad base64".into()))
}

/// Credentials and what to do after binding.
pub struct Login<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub mechanism: Mechanism,
    pub resource: &'a str,
    pub presence: bool,
    /// Enable stream management with resumption (XEP-0198) after binding.
    pub sm: bool,
}

impl Conn {
    /// A complete login: stream, SASL, bind, (session), (stream
    /// management), initial presence, then a ping round trip so the server
    /// has processed all of it.
    pub async fn login(target: &Target, login: &Login<'_>) -> Result<Conn, ClientError> {
        let (mut conn, features) = Conn::authenticate(target, login).await?;
        conn.bind(target, login, &features).await?;
        Ok(conn)
    }

    /// Resumes the stream-managed session `counter` (which has its
    /// resumption id) on a new connection: stream, SASL, `<resume/>`. The
    /// stanzas the server sends again follow `<resumed/>`, and are counted
    /// as they are read. The server's `h` must be what was acknowledged
    /// at least and what was sent at most.
    pub async fn resume(
        target: &Target,
        login: &Login<'_>,
        mut counter: sm::Counter,
    ) -> Result<(Conn, sm::Resumed), ClientError> {
        let previd = counter
            .id
            .clone()
            .ok_or_else(|| ClientError::Refused("resume", "no resumption id".into()))?;
        let (mut conn, features) = Conn::authenticate(target, login).await?;
        if !has_child(&features, "sm", NS_SM) {
            return Err(ClientError::NotOffered(
                "stream management".into(),
                Vec::new(),
            ));
        }
        conn.send(sm::resume(&previd, counter.handled).as_bytes())
            .await?;
        let answer = timeout(target.step_timeout, "resume", conn.next_element()).await?;
        let Some(resumed) = sm::parse_resumed(&answer) else {
            return Err(ClientError::Refused("resume", lossy(&answer)));
        };
        if resumed.previd != previd {
            return Err(ClientError::Refused(
                "resume",
                format!("resumed {} instead of {previd}", resumed.previd),
            ));
        }
        counter.resumed(resumed.h).map_err(bad_ack)?;
        conn.sm = Some(counter);
        Ok((conn, resumed))
    }

    /// Stream and SASL, up to the restarted stream's features.
    pub async fn authenticate(
        target: &Target,
        login: &Login<'_>,
    ) -> Result<(Conn, Vec<u8>), ClientError> {
        let (mut conn, features) = Conn::open(target).await?;
        let t = target.step_timeout;
        let offered = mechanisms(&features);
        let mech = login.mechanism;
        if !offered.iter().any(|m| m == mech.name()) {
            return Err(ClientError::NotOffered(mech.name().into(), offered));
        }
        match mech {
            Mechanism::Plain => {
                let token = base64::encode(&sasl::plain_initial(login.user, login.password));
                conn.send(
                    format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>").as_bytes(),
                )
                .await?;
                let answer = timeout(t, "sasl", conn.next_element()).await?;
                if xml::local_name(&answer) != b"success" {
                    return Err(ClientError::Refused("sasl", lossy(&answer)));
                }
            }
            Mechanism::ScramSha1 | Mechanism::ScramSha256 => {
                let nonce = base64::encode(&random_bytes::<18>());
                let mut scram = ScramClient::new(mech, login.user, &nonce);
                conn.send(
                    format!(
                        "<auth xmlns='{NS_SASL}' mechanism='{}'>{}</auth>",
                        mech.name(),
                        base64::encode(&scram.first_message())
                    )
                    .as_bytes(),
                )
                .await?;
                let challenge = timeout(t, "sasl", conn.next_element()).await?;
                if xml::local_name(&challenge) != b"challenge" {
                    return Err(ClientError::Refused("sasl", lossy(&challenge)));
                }
                let server_first = sasl_payload(&challenge)?;
                let fin = scram.final_message(&server_first, login.password)?;
                conn.send(
                    format!(
                        "<response xmlns='{NS_SASL}'>{}</response>",
                        base64::encode(&fin)
                    )
                    .as_bytes(),
                )
                .await?;
                let mut answer = timeout(t, "sasl", conn.next_element()).await?;
                if xml::local_name(&answer) == b"challenge" {
                    // RFC 6120 §6.4.6 allows the verifier in a last challenge.
                    scram.verify(&sasl_payload(&answer)?)?;
                    conn.send(format!("<response xmlns='{NS_SASL}'/>").as_bytes())
                        .await?;
                    answer = timeout(t, "sasl", conn.next_element()).await?;
                    if xml::local_name(&answer) != b"success" {
                        return Err(ClientError::Refused("sasl", lossy(&answer)));
                    }
                } else if xml::local_name(&answer) == b"success" {
                    scram.verify(&sasl_payload(&answer)?)?;
                } else {
                    return Err(ClientError::Refused("sasl", lossy(&answer)));
                }
            }
        }
        let features = conn.restart(target).await?;
        Ok((conn, features))
    }

    /// Bind, (session), (stream management), initial presence, ping.
    async fn bind(
        &mut self,
        target: &Target,
        login: &Login<'_>,
        features: &[u8],
    ) -> Result<(), ClientError> {
        self.bind_resource(target, login.resource, features).await?;
        self.after_bind(target, login, features).await
    }

    /// Resource binding (RFC 6120 §7) and, where the server still requires
    /// it, the session iq: the session is ready after this.
    pub async fn bind_resource(
        &mut self,
        target: &Target,
        resource: &str,
        features: &[u8],
    ) -> Result<(), ClientError> {
        let conn = self;
        let t = target.step_timeout;
        if !has_child(features, "bind", NS_BIND) {
            return Err(ClientError::NotOffered(
                "resource binding".into(),
                Vec::new(),
            ));
        }
        conn.send(
            format!(
                "<iq type='set' id='bind1'><bind xmlns='{NS_BIND}'><resource>{}</resource></bind></iq>",
                xml::escape(resource)
            )
            .as_bytes(),
        )
        .await?;
        let bound = timeout(t, "bind", conn.await_iq("bind1")).await?;
        let jid = xml::with_parsed(&bound, |n| {
            (n.attribute("type") == Some("result"))
                .then(|| {
                    n.descendants()
                        .find(|c| c.tag_name().name() == "jid")
                        .and_then(|c| c.text())
                        .map(str::to_string)
                })
                .flatten()
        })?;
        conn.jid = jid.ok_or_else(|| ClientError::Refused("bind", lossy(&bound)))?;
        // RFC 6121 errata: only a session feature without <optional/> needs the iq.
        let session_required = xml::with_parsed(features, |n| {
            n.children().any(|c| {
                c.tag_name().name() == "session"
                    && c.tag_name().namespace() == Some(NS_SESSION)
                    && !c.children().any(|o| o.tag_name().name() == "optional")
            })
        })?;
        if session_required {
            conn.send(
                format!("<iq type='set' id='sess1'><session xmlns='{NS_SESSION}'/></iq>")
                    .as_bytes(),
            )
            .await?;
            timeout(t, "session", conn.await_iq("sess1")).await?;
        }
        Ok(())
    }

    /// Stream management, initial presence and a ping, once bound.
    async fn after_bind(
        &mut self,
        target: &Target,
        login: &Login<'_>,
        features: &[u8],
    ) -> Result<(), ClientError> {
        let conn = self;
        let t = target.step_timeout;
        if login.sm {
            if !has_child(features, "sm", NS_SM) {
                return Err(ClientError::NotOffered(
                    "stream management".into(),
                    Vec::new(),
                ));
            }
            conn.send(sm::enable().as_bytes()).await?;
            let answer = timeout(t, "enable", conn.next_element()).await?;
            let enabled = sm::parse_enabled(&answer)
                .ok_or_else(|| ClientError::Refused("enable", lossy(&answer)))?;
            conn.sm = Some(sm::Counter::new(enabled.id));
        }
        let mut tail = String::new();
        let mut stanzas = 1;
        if login.presence {
            tail.push_str("<presence/>");
            stanzas += 1;
        }
        tail.push_str(&format!(
            "<iq type='get' id='ping1' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
            xml::escape(&target.domain)
        ));
        if let Some(counter) = conn.sm.as_mut() {
            for _ in 0..stanzas {
                counter.sent_one(0);
            }
        }
        conn.send(tail.as_bytes()).await?;
        timeout(t, "ping after presence", conn.await_iq("ping1")).await?;
        Ok(())
    }
}

pub use crate::rng::random_bytes;
