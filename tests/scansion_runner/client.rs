//! One scripted XMPP client: logs in with the shared test client
//! (`tests/common`: SASL PLAIN and bind, FORMAT.md §3), then writes the
//! script's stanzas and collects what the server sends on a reader thread,
//! so that a step can wait for a stanza with a deadline.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use perch::xml::{Element, FrameEvent, Framer, Node};

use super::script::ClientDecl;
use super::tree::{CLIENT_NS, XElem, XNode};
use crate::common;

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
        let mut conn = common::Client::try_connect(addr)?;
        let full_jid = conn.try_login(
            decl.domain(),
            (decl.localpart(), &decl.password),
            decl.requested_resource(),
        )?;
        let (stream, framer, early) = conn.into_plain_parts()?;
        // The reader thread blocks until the server sends something or
        // the socket is shut down; steps have their own deadlines.
        stream
            .set_read_timeout(None)
            .map_err(|e| format!("cannot set up the socket: {e}"))?;
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
            early: early.iter().map(to_xelem).collect(),
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
