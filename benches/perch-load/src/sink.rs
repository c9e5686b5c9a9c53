//! The sink: a trivial XMPP-ish server to measure the tool against, so that
//! nobody mistakes the tool's own limit for a server's. It accepts any
//! account and password (SCRAM included: it answers with a valid server
//! signature but does not check the proof), binds any resource, answers
//! every iq with an empty result, routes one-to-one messages by full JID,
//! and runs rooms that fan out presence and groupchat. Stream management
//! (XEP-0198) only as far as `chat --sm` needs it: `<enabled/>`, and
//! `<a h/>` for every `<r/>` (it asks for no acks and resumes nothing).
//! No rosters, no storage, no limits, no TLS: not a server, a mirror.
//!
//! One thread, one smol LocalExecutor, like the server it stands in for.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWriteExt, future};
use smol::net::{TcpListener, TcpStream};

use crate::base64;
use crate::sasl::{self, Mechanism};
use crate::xml::{self, Frame, NS_CLIENT, NS_STREAM};

const SALT: &[u8] = b"perch-load-sink!";
const ITERATIONS: u32 = 4096;

/// Output queued for one connection.
#[derive(Default)]
struct Outbox {
    buf: RefCell<Vec<u8>>,
    waker: RefCell<Option<Waker>>,
}

impl Outbox {
    fn push(&self, bytes: &[u8]) {
        self.buf.borrow_mut().extend_from_slice(bytes);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

struct Occupant {
    nick: String,
    jid: String,
    outbox: Rc<Outbox>,
}

struct Sink {
    domain: String,
    password: String,
    sessions: RefCell<HashMap<String, Rc<Outbox>>>,
    rooms: RefCell<HashMap<String, Vec<Occupant>>>,
}

/// A running sink on its own thread; stops when dropped.
pub struct SinkHandle {
    addr: SocketAddr,
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SinkHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a sink on `addr` (port 0 picks one) on a thread of its own.
pub fn spawn(addr: SocketAddr, domain: &str, password: &str) -> std::io::Result<SinkHandle> {
    let listener = std::net::TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let (domain, password) = (domain.to_string(), password.to_string());
    let thread = std::thread::Builder::new()
        .name("perch-load-sink".into())
        .spawn(move || {
            let ex = Rc::new(smol::LocalExecutor::new());
            let run = serve(listener, domain, password, ex.clone());
            smol::block_on(ex.run(future::or(run, async {
                let _ = stop_rx.recv().await;
            })));
        })?;
    Ok(SinkHandle {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Runs a sink in this thread for at most `limit`.
pub fn run_for(
    addr: SocketAddr,
    domain: &str,
    password: &str,
    limit: Duration,
) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(addr)?;
    eprintln!("[perch-load] sink listening on {}", listener.local_addr()?);
    let ex = Rc::new(smol::LocalExecutor::new());
    let run = serve(
        listener,
        domain.to_string(),
        password.to_string(),
        ex.clone(),
    );
    smol::block_on(ex.run(future::or(run, async {
        smol::Timer::after(limit).await;
    })));
    Ok(())
}

async fn serve(
    listener: std::net::TcpListener,
    domain: String,
    password: String,
    ex: Rc<smol::LocalExecutor<'static>>,
) {
    let Ok(listener) = TcpListener::try_from(listener) else {
        return;
    };
    let sink = Rc::new(Sink {
        domain,
        password,
        sessions: RefCell::new(HashMap::new()),
        rooms: RefCell::new(HashMap::new()),
    });
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                ex.spawn(connection(tcp, sink.clone())).detach();
            }
            Err(_) => {
                // Out of descriptors: back off instead of spinning.
                smol::Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

enum Auth {
    None,
    Scram {
        mech: Mechanism,
        first_bare: String,
        server_first: String,
    },
    Done(String),
}

struct Conn {
    sink: Rc<Sink>,
    outbox: Rc<Outbox>,
    auth: Auth,
    jid: Option<String>,
    closing: bool,
    /// Stanzas received since `<enable/>` (stream management on).
    handled: Option<u32>,
}

async fn connection(mut tcp: TcpStream, sink: Rc<Sink>) {
    let mut c = Conn {
        sink,
        outbox: Rc::new(Outbox::default()),
        auth: Auth::None,
        jid: None,
        closing: false,
        handled: None,
    };
    let mut buf = Vec::new();
    let mut framer = xml::Framer::new();
    let mut out = Vec::new();
    'outer: loop {
        loop {
            match framer.next(&buf) {
                Ok(Some(Frame::Header(..))) => c.header(),
                Ok(Some(Frame::Element(a, b))) => {
                    let restart = c.element(buf.get(a..b).unwrap_or_default());
                    if restart {
                        // The client sends a new header next: drop the old stream.
                        buf.drain(..b);
                        framer.reset();
                    }
                }
                Ok(Some(Frame::End)) | Err(_) => {
                    c.outbox.push(b"</stream:stream>");
                    c.closing = true;
                    break;
                }
                Ok(None) => break,
            }
        }
        let n = framer.reclaimable();
        buf.drain(..n);
        framer.consumed(n);
        std::mem::swap(&mut out, &mut *c.outbox.buf.borrow_mut());
        if !out.is_empty() {
            if tcp.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
        }
        if c.closing {
            break;
        }
        let outbox = c.outbox.clone();
        let woke = future::poll_fn(|cx| {
            if !outbox.buf.borrow().is_empty() {
                return Poll::Ready(Ok(1));
            }
            *outbox.waker.borrow_mut() = Some(cx.waker().clone());
            let old = buf.len();
            buf.resize(old + 16 * 1024, 0);
            let r = Pin::new(&mut tcp).poll_read(cx, &mut buf[old..]);
            let n = match &r {
                Poll::Ready(Ok(n)) => *n,
                _ => 0,
            };
            buf.truncate(old + n);
            match r {
                Poll::Ready(Ok(0)) => Poll::Ready(Err(())),
                Poll::Ready(Ok(n)) => Poll::Ready(Ok(n)),
                Poll::Ready(Err(_)) => Poll::Ready(Err(())),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        if woke.is_err() {
            break 'outer;
        }
    }
    c.leave_everything();
}

fn attr(el: &[u8], name: &str) -> Option<String> {
    xml::start_tag_attr(el, name).and_then(|v| std::str::from_utf8(v).ok().map(str::to_string))
}

fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

/// The bytes inside an element (between its start and end tags).
fn inner(el: &[u8]) -> &[u8] {
    let Some(gt) = xml::find_byte(b'>', el, 0) else {
        return b"";
    };
    if el.get(gt.wrapping_sub(1)) == Some(&b'/') {
        return b"";
    }
    let end = el.iter().rposition(|&b| b == b'<').unwrap_or(el.len());
    el.get(gt + 1..end).unwrap_or_default()
}

impl Conn {
    fn send(&self, s: &str) {
        self.outbox.push(s.as_bytes());
    }

    fn header(&mut self) {
        let d = xml::escape(&self.sink.domain);
        let mut s = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' \
             id='{}' from='{d}' version='1.0'><stream:features>",
            base64::encode(&crate::conn::random_bytes::<6>())
        );
        if matches!(self.auth, Auth::Done(_)) {
            s.push_str(
                "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
                 <session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>\
                 <sm xmlns='urn:xmpp:sm:3'/>",
            );
        } else {
            s.push_str(
                "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism>\
                 <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>\
                 <register xmlns='http://jabber.org/features/iq-register'/>",
            );
        }
        s.push_str("</stream:features>");
        self.send(&s);
    }

    /// Handles one element; true when the stream restarts after it.
    fn element(&mut self, el: &[u8]) -> bool {
        let name = xml::local_name(el);
        if matches!(name, b"message" | b"presence" | b"iq")
            && let Some(h) = &mut self.handled
        {
            *h = h.wrapping_add(1);
        }
        match name {
            b"message" => self.message(el),
            b"presence" => self.presence(el),
            b"iq" => self.iq(el),
            b"auth" => return self.auth(el),
            b"response" => return self.response(el),
            b"enable" | b"r" | b"a" | b"resume" => self.sm(name),
            _ => {}
        }
        false
    }

    fn sm(&mut self, name: &[u8]) {
        match (name, self.handled, &self.jid) {
            (b"enable", None, Some(_)) => {
                self.handled = Some(0);
                self.send(&format!(
                    "<enabled xmlns='urn:xmpp:sm:3' id='{}' resume='true' max='300'/>",
                    base64::encode(&crate::conn::random_bytes::<12>())
                ));
            }
            (b"r", Some(h), _) => self.send(&format!("<a xmlns='urn:xmpp:sm:3' h='{h}'/>")),
            (b"a", Some(_), _) => {}
            _ => self.send(
                "<failed xmlns='urn:xmpp:sm:3'><unexpected-request \
                 xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
            ),
        }
    }

    fn sasl_failure(&mut self) {
        self.send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
        self.auth = Auth::None;
    }

    /// Starts SASL; true when it succeeded at once (PLAIN) and the stream restarts.
    fn auth(&mut self, el: &[u8]) -> bool {
        let payload = std::str::from_utf8(inner(el))
            .ok()
            .and_then(|t| base64::decode(t.trim()).ok())
            .unwrap_or_default();
        let mech = attr(el, "mechanism").and_then(|m| Mechanism::parse(&m));
        match mech {
            Some(Mechanism::Plain) => {
                let mut parts = payload.split(|&b| b == 0);
                let user = parts
                    .nth(1)
                    .map(|u| String::from_utf8_lossy(u).into_owned());
                match user {
                    Some(u) if !u.is_empty() => {
                        self.auth = Auth::Done(u);
                        self.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
                        return true;
                    }
                    _ => self.sasl_failure(),
                }
            }
            Some(mech) => {
                let text = String::from_utf8_lossy(&payload).into_owned();
                let Some(first_bare) = text.strip_prefix("n,,") else {
                    self.sasl_failure();
                    return false;
                };
                let nonce = first_bare
                    .split(',')
                    .find_map(|p| p.strip_prefix("r="))
                    .unwrap_or("");
                let server_first = format!(
                    "r={nonce}{},s={},i={ITERATIONS}",
                    base64::encode(&crate::conn::random_bytes::<12>()),
                    base64::encode(SALT)
                );
                self.send(&format!(
                    "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</challenge>",
                    base64::encode(server_first.as_bytes())
                ));
                self.auth = Auth::Scram {
                    mech,
                    first_bare: first_bare.to_string(),
                    server_first,
                };
            }
            None => self.sasl_failure(),
        }
        false
    }

    fn response(&mut self, el: &[u8]) -> bool {
        let Auth::Scram {
            mech,
            first_bare,
            server_first,
        } = std::mem::replace(&mut self.auth, Auth::None)
        else {
            self.sasl_failure();
            return false;
        };
        let text = std::str::from_utf8(inner(el))
            .ok()
            .and_then(|t| base64::decode(t.trim()).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let Some((without_proof, _proof)) = text.rsplit_once(",p=") else {
            self.sasl_failure();
            return false;
        };
        let user = first_bare
            .split(',')
            .find_map(|p| p.strip_prefix("n="))
            .unwrap_or("user")
            .to_string();
        let Some(iterations) = NonZeroU32::new(ITERATIONS) else {
            return false;
        };
        let keys = sasl::keys(mech, &self.sink.password, SALT, iterations);
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let signature = sasl::hmac(mech, &keys.server_key, auth_message.as_bytes());
        self.send(&format!(
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</success>",
            base64::encode(format!("v={}", base64::encode(&signature)).as_bytes())
        ));
        self.auth = Auth::Done(user);
        true
    }

    fn iq(&mut self, el: &[u8]) {
        let id = attr(el, "id").unwrap_or_default();
        let id = xml::escape(&id);
        let is_bind = xml::find_seq(b"urn:ietf:params:xml:ns:xmpp-bind", el, 0).is_some();
        if is_bind {
            let (Auth::Done(user), None) = (&self.auth, &self.jid) else {
                return self.send(&format!("<iq type='error' id='{id}'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
            };
            let resource = xml::with_parsed(el, |n| {
                n.descendants()
                    .find(|c| c.tag_name().name() == "resource")
                    .and_then(|c| c.text())
                    .map(str::to_string)
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| base64::encode(&crate::conn::random_bytes::<6>()));
            let jid = format!("{user}@{}/{resource}", self.sink.domain);
            self.sink
                .sessions
                .borrow_mut()
                .insert(jid.clone(), self.outbox.clone());
            self.send(&format!(
                "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>{}</jid></bind></iq>",
                xml::escape(&jid)
            ));
            self.jid = Some(jid);
            return;
        }
        match attr(el, "type").as_deref() {
            Some("get") | Some("set") => {
                let to = attr(el, "to")
                    .map(|t| format!(" from='{}'", xml::escape(&t)))
                    .unwrap_or_default();
                self.send(&format!("<iq type='result' id='{id}'{to}/>"));
            }
            _ => {}
        }
    }

    fn message(&mut self, el: &[u8]) {
        let (Some(from), Some(to)) = (self.jid.clone(), attr(el, "to")) else {
            return;
        };
        let rooms = self.sink.rooms.borrow();
        if let Some(occupants) = rooms.get(bare(&to)) {
            let Some(me) = occupants.iter().find(|o| o.jid == from) else {
                return;
            };
            let body = inner(el);
            let from_attr = format!(
                "<message from='{}/{}' type='groupchat' to='",
                xml::escape(&to),
                xml::escape(&me.nick)
            );
            for o in occupants {
                let mut out = o.outbox.buf.borrow_mut();
                out.extend_from_slice(from_attr.as_bytes());
                out.extend_from_slice(xml::escape(&o.jid).as_bytes());
                out.extend_from_slice(b"'>");
                out.extend_from_slice(body);
                out.extend_from_slice(b"</message>");
                drop(out);
                if let Some(w) = o.outbox.waker.borrow_mut().take() {
                    w.wake();
                }
            }
            return;
        }
        drop(rooms);
        let target = self.sink.sessions.borrow().get(&to).cloned();
        if let Some(outbox) = target {
            let mut out = Vec::with_capacity(el.len() + from.len() + 10);
            out.extend_from_slice(b"<message from='");
            out.extend_from_slice(xml::escape(&from).as_bytes());
            out.extend_from_slice(b"'");
            out.extend_from_slice(el.get(8..).unwrap_or_default());
            outbox.push(&out);
        }
    }

    fn presence(&mut self, el: &[u8]) {
        let (Some(from), Some(to)) = (self.jid.clone(), attr(el, "to")) else {
            return;
        };
        let Some((room, nick)) = to.split_once('/') else {
            return;
        };
        let leaving = attr(el, "type").as_deref() == Some("unavailable");
        let mut rooms = self.sink.rooms.borrow_mut();
        let occupants = rooms.entry(room.to_string()).or_default();
        let item = "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>";
        let (er, en) = (xml::escape(room), xml::escape(nick));
        if leaving {
            occupants.retain(|o| o.jid != from);
            for o in occupants.iter() {
                o.outbox.push(format!("<presence from='{er}/{en}' to='{}' type='unavailable'>{item}</x></presence>", xml::escape(&o.jid)).as_bytes());
            }
            self.send(&format!("<presence from='{er}/{en}' type='unavailable'>{item}<status code='110'/></x></presence>"));
            if occupants.is_empty() {
                rooms.remove(room);
            }
            return;
        }
        if occupants.iter().any(|o| o.jid == from) {
            return;
        }
        let mut to_me = String::new();
        for o in occupants.iter() {
            to_me.push_str(&format!(
                "<presence from='{er}/{}'>{item}</x></presence>",
                xml::escape(&o.nick)
            ));
            o.outbox.push(
                format!(
                    "<presence from='{er}/{en}' to='{}'>{item}</x></presence>",
                    xml::escape(&o.jid)
                )
                .as_bytes(),
            );
        }
        to_me.push_str(&format!(
            "<presence from='{er}/{en}'>{item}<status code='110'/></x></presence>"
        ));
        self.send(&to_me);
        occupants.push(Occupant {
            nick: nick.to_string(),
            jid: from,
            outbox: self.outbox.clone(),
        });
    }

    fn leave_everything(&mut self) {
        let Some(jid) = self.jid.take() else { return };
        self.sink.sessions.borrow_mut().remove(&jid);
        let mut rooms = self.sink.rooms.borrow_mut();
        rooms.retain(|_, occupants| {
            occupants.retain(|o| o.jid != jid);
            !occupants.is_empty()
        });
    }
}
