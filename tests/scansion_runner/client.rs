//! One scripted XMPP client: connects (SASL PLAIN + bind, FORMAT.md §3),
//! writes stanzas, and collects what the server sends on a reader thread.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use perch::xml::{Element, FrameEvent, Framer, Limits, Node};

use super::script::ClientDecl;
use super::tree::{CLIENT_NS, XElem, XNode};

const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const BIND_NS: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const SESSION_NS: &str = "urn:ietf:params:xml:ns:xmpp-session";
const STREAMS_NS: &str = "http://etherx.jabber.org/streams";
/// Time allowed for each exchange while connecting.
fn connect_timeout() -> Duration {
    perch::testing::scaled(Duration::from_secs(5))
}
/// How long `disconnects` waits for the server to close its side.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How many received stanzas are kept for failure reports.
const HISTORY: usize = 8;

/// What the reader thread reports.
enum Incoming {
    Stanza(XElem),
    /// The stream or connection ended; no more stanzas follow.
    Closed(String),
}

/// Why no stanza could be returned.
pub enum RecvError {
    Timeout,
    Closed(String),
}

pub struct Client {
    stream: TcpStream,
    incoming: Receiver<Incoming>,
    reader: Option<JoinHandle<()>>,
    /// Stanzas that arrived while connecting, before the reader started.
    early: VecDeque<XElem>,
    /// Set once the reader reported the end of the stream.
    closed: Option<String>,
    /// The last stanzas taken from the queue, serialized, oldest first.
    history: VecDeque<String>,
    /// The full JID the server bound.
    pub full_jid: String,
}

impl Client {
    /// Opens a stream to the JID's domain, authenticates with SASL PLAIN
    /// and binds a resource. No presence, roster or other setup is sent.
    pub fn connect(addr: SocketAddr, decl: &ClientDecl) -> Result<Client, String> {
        let stream = TcpStream::connect_timeout(&addr, connect_timeout())
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let setup = |e: std::io::Error| format!("cannot set up the socket: {e}");
        stream.set_nodelay(true).map_err(setup)?;
        stream
            .set_read_timeout(Some(connect_timeout()))
            .map_err(setup)?;
        stream
            .set_write_timeout(Some(connect_timeout()))
            .map_err(setup)?;

        let mut conn = Handshake {
            stream,
            framer: Framer::new(Limits {
                max_stanza_bytes: 16 << 20,
                max_depth: 256,
            }),
            early: VecDeque::new(),
        };
        let domain = decl.domain();
        conn.open_stream(domain)?;
        let features = conn.read_element("stream features")?;
        let offers_plain = features.child("mechanisms", SASL_NS).is_some_and(|m| {
            m.children()
                .any(|c| c.name == "mechanism" && c.text().trim() == "PLAIN")
        });
        if !offers_plain {
            return Err(format!("server offers no SASL PLAIN: {features}"));
        }
        let creds = format!("\0{}\0{}", decl.localpart(), decl.password);
        conn.write(&format!(
            "<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{}</auth>",
            perch::sasl::base64::encode(creds.as_bytes())
        ))?;
        let answer = conn.read_element("the SASL answer")?;
        if answer.name != "success" || answer.ns != SASL_NS {
            return Err(format!(
                "SASL PLAIN as {:?} failed: {answer}",
                decl.localpart()
            ));
        }

        conn.framer.reset();
        conn.open_stream(domain)?;
        let features = conn.read_element("stream features after SASL")?;
        if features.child("bind", BIND_NS).is_none() {
            return Err(format!("server offers no resource binding: {features}"));
        }
        let resource = decl
            .requested_resource()
            .map(|r| format!("<resource>{}</resource>", super::tree::escape(r)))
            .unwrap_or_default();
        conn.write(&format!(
            "<iq type='set' id='scansion-bind'><bind xmlns='{BIND_NS}'>{resource}</bind></iq>"
        ))?;
        let result = conn.read_iq_result("scansion-bind")?;
        let full_jid = result
            .child("bind", BIND_NS)
            .and_then(|b| b.child("jid", BIND_NS))
            .map(|j| j.text().trim().to_string())
            .filter(|j| !j.is_empty())
            .ok_or_else(|| format!("bind result without a JID: {result}"))?;

        // RFC 3921 sessions, only when the server says they are required.
        if let Some(session) = features.child("session", SESSION_NS)
            && session.child("optional", SESSION_NS).is_none()
        {
            conn.write(&format!(
                "<iq type='set' id='scansion-session'><session xmlns='{SESSION_NS}'/></iq>"
            ))?;
            conn.read_iq_result("scansion-session")?;
        }

        conn.stream
            .set_read_timeout(None)
            .map_err(|e| format!("cannot set up the socket: {e}"))?;
        let Handshake {
            stream,
            framer,
            early,
        } = conn;
        let read_half = stream
            .try_clone()
            .map_err(|e| format!("cannot clone the socket: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name(format!("scansion-reader-{full_jid}"))
            .spawn(move || read_loop(read_half, framer, tx))
            .map_err(|e| format!("cannot start the reader thread: {e}"))?;
        Ok(Client {
            stream,
            incoming: rx,
            reader: Some(reader),
            early,
            closed: None,
            history: VecDeque::new(),
            full_jid,
        })
    }

    /// Writes raw XML to the stream.
    pub fn send_raw(&mut self, xml: &str) -> Result<(), String> {
        self.stream
            .write_all(xml.as_bytes())
            .and_then(|()| self.stream.flush())
            .map_err(|e| format!("cannot write to the server: {e}"))
    }

    /// The next received stanza, waiting until `deadline`.
    pub fn next_stanza(&mut self, deadline: Instant) -> Result<XElem, RecvError> {
        let stanza = if let Some(s) = self.early.pop_front() {
            s
        } else {
            if let Some(reason) = &self.closed {
                return Err(RecvError::Closed(reason.clone()));
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(wait) {
                Ok(Incoming::Stanza(s)) => s,
                Ok(Incoming::Closed(reason)) => {
                    self.closed = Some(reason.clone());
                    return Err(RecvError::Closed(reason));
                }
                Err(RecvTimeoutError::Timeout) => return Err(RecvError::Timeout),
                Err(RecvTimeoutError::Disconnected) => {
                    let reason = "the reader thread stopped".to_string();
                    self.closed = Some(reason.clone());
                    return Err(RecvError::Closed(reason));
                }
            }
        };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(stanza.to_xml(CLIENT_NS));
        Ok(stanza)
    }

    /// The last stanzas received (serialized), oldest first.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str)
    }

    /// Closes the stream, waits briefly for the server to close its side,
    /// then closes the connection.
    pub fn disconnect(mut self) {
        if self.closed.is_none() && self.send_raw("</stream:stream>").is_ok() {
            let deadline = Instant::now() + CLOSE_WAIT;
            // Whatever arrives before the server's own close is dropped.
            while self.next_stanza(deadline).is_ok() {}
        }
        // Drop shuts the socket down and joins the reader.
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The connection while it is being set up, read synchronously.
struct Handshake {
    stream: TcpStream,
    framer: Framer,
    early: VecDeque<XElem>,
}

impl Handshake {
    fn write(&mut self, xml: &str) -> Result<(), String> {
        self.stream
            .write_all(xml.as_bytes())
            .map_err(|e| format!("cannot write to the server: {e}"))
    }

    fn open_stream(&mut self, domain: &str) -> Result<(), String> {
        self.write(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='{CLIENT_NS}' xmlns:stream='{STREAMS_NS}' to='{}' version='1.0' xml:lang='en'>",
            super::tree::escape(domain)
        ))?;
        match self.read_event("the stream header")? {
            FrameEvent::StreamOpen(_) => Ok(()),
            FrameEvent::Element(e) => {
                Err(format!("expected a stream header, got {}", to_xelem(&e)))
            }
            FrameEvent::StreamClose => Err("the server closed the stream at once".to_string()),
        }
    }

    fn read_event(&mut self, what: &str) -> Result<FrameEvent, String> {
        let mut buf = [0u8; 8192];
        loop {
            match self.framer.next_event() {
                Ok(Some(event)) => return Ok(event),
                Ok(None) => {}
                Err(e) => {
                    return Err(format!(
                        "malformed XML from the server while waiting for {what}: {e}"
                    ));
                }
            }
            let n = self
                .stream
                .read(&mut buf)
                .map_err(|e| format!("no {what} from the server: {e}"))?;
            if n == 0 {
                return Err(format!("the server closed the connection before {what}"));
            }
            self.framer.push(&buf[..n]);
        }
    }

    fn read_element(&mut self, what: &str) -> Result<XElem, String> {
        match self.read_event(what)? {
            FrameEvent::Element(e) => {
                let e = to_xelem(&e);
                if e.name == "error" && e.ns == STREAMS_NS {
                    return Err(format!("stream error while waiting for {what}: {e}"));
                }
                Ok(e)
            }
            FrameEvent::StreamOpen(_) => {
                Err(format!("unexpected stream header while waiting for {what}"))
            }
            FrameEvent::StreamClose => Err(format!(
                "the server closed the stream while waiting for {what}"
            )),
        }
    }

    /// Reads until the IQ answer with `id`; other stanzas are kept for the
    /// script. An error answer is an error.
    fn read_iq_result(&mut self, id: &str) -> Result<XElem, String> {
        loop {
            let e = self.read_element(&format!("the answer to iq {id}"))?;
            if e.name == "iq" && e.ns == CLIENT_NS && e.attr("id") == Some(id) {
                return if e.attr("type") == Some("result") {
                    Ok(e)
                } else {
                    Err(format!("iq {id} failed: {e}"))
                };
            }
            self.early.push_back(e);
        }
    }
}

fn read_loop(mut stream: TcpStream, mut framer: Framer, tx: Sender<Incoming>) {
    let mut buf = [0u8; 16384];
    let reason = 'outer: loop {
        loop {
            match framer.next_event() {
                Ok(Some(FrameEvent::Element(e))) => {
                    if tx.send(Incoming::Stanza(to_xelem(&e))).is_err() {
                        return;
                    }
                }
                Ok(Some(FrameEvent::StreamClose)) => {
                    break 'outer "the server closed the stream".to_string();
                }
                Ok(Some(FrameEvent::StreamOpen(_))) => {
                    break 'outer "unexpected second stream header from the server".to_string();
                }
                Ok(None) => break,
                Err(e) => break 'outer format!("malformed XML from the server: {e}"),
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => break "the server closed the connection".to_string(),
            Ok(n) => framer.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break format!("read error: {e}"),
        }
    };
    let _ = tx.send(Incoming::Closed(reason));
}

/// Converts perch's element into the runner's tree.
fn to_xelem(e: &Element) -> XElem {
    XElem {
        name: e.name.to_string(),
        ns: e.ns.to_string(),
        attrs: e
            .attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        nodes: e
            .children
            .iter()
            .map(|n| match n {
                Node::Element(c) => XNode::Elem(to_xelem(c)),
                Node::Text(t) => XNode::Text(t.clone()),
            })
            .collect(),
        strict: None,
    }
}
