//! The HTTP side of BOSH: each POST to `/http-bind` is parsed, given to
//! its session (or creates one, whose client stream runs on its own task
//! over a [`BoshLink`]) and answered when the session says so.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Instant;

use futures_lite::AsyncReadExt;

use super::body::{self, Condition, RequestBody};
use super::link::{BoshLink, Shared, SharedRef};
use super::session::{BoshSession, Received, Settings};
use crate::http::Response;
use crate::http::proxy::Client;
use crate::http::request::{BodyLength, Method, RequestHead};
use crate::net::connection::{StreamStart, run_stream};
use crate::net::http_conn::{BodyReader, HttpConnection};
use crate::net::transport::Transport;
use crate::server::Server;

/// Bytes a request body may have besides its stanzas (the `<body/>`
/// wrapper and its attributes, several small stanzas).
const BODY_OVERHEAD: usize = 16 * 1024;

thread_local! {
    /// The sessions by sid. Perch runs one executor thread; the table
    /// holds weak references, so a session ends with its stream.
    static SESSIONS: RefCell<HashMap<String, Weak<RefCell<Shared>>>> =
        RefCell::new(HashMap::new());
}

fn lookup(sid: &str) -> Option<SharedRef> {
    SESSIONS.with(|s| {
        let mut table = s.borrow_mut();
        let found = table.get(sid).and_then(Weak::upgrade);
        if found.is_none() {
            table.remove(sid);
        }
        found
    })
}

/// Answers one request to the BOSH endpoint; whether the connection may
/// carry another.
pub(crate) async fn answer(conn: &mut HttpConnection, head: &RequestHead, client: Client) -> bool {
    let keep_alive = head.keep_alive;
    match head.method {
        Method::Options => {
            return conn
                .respond(&Response::new(204).with_cors(), keep_alive)
                .await
                && keep_alive;
        }
        Method::Post => {}
        Method::Get | Method::Head => {
            let text = "this is the BOSH endpoint (XEP-0206): XMPP clients POST here";
            let response = Response::text(200, text).with_cors();
            let keep = keep_alive && head.body == BodyLength::None;
            return conn.respond(&response, keep).await && keep;
        }
        _ => {
            let response = Response::text(405, "POST only").with("Allow", "POST, OPTIONS");
            conn.respond(&response, false).await;
            return false;
        }
    }
    let server = conn.server.clone();
    let max = server.limits().max_stanza_bytes + BODY_OVERHEAD;
    let length = match head.body {
        BodyLength::Exactly(n) if n <= max as u64 => n,
        BodyLength::Exactly(_) => {
            let text = format!("a BOSH request body is at most {max} bytes");
            conn.respond(&Response::text(413, text).with_cors(), false)
                .await;
            return false;
        }
        BodyLength::Chunked => {
            let text = "BOSH requests need a Content-Length";
            conn.respond(&Response::text(411, text).with_cors(), false)
                .await;
            return false;
        }
        BodyLength::None => 0,
    };
    let mut bytes = Vec::with_capacity(length as usize);
    let mut reader = BodyReader::new(conn, length);
    if let Err(e) = reader.read_to_end(&mut bytes).await {
        log::debug!("BOSH request body: {e}");
        return false;
    }
    let reply = match body::parse(&bytes, max) {
        Ok(request) => exchange(&server, &conn.executor, request, client).await,
        Err(e) => {
            log::debug!("{}: bad BOSH body: {e}", client.ip);
            Reply::status(400, Condition::BadRequest)
        }
    };
    let response = Response::new(reply.status)
        .with("Content-Type", reply.content_type)
        .with("Cache-Control", "no-store")
        .with_body(reply.bytes.to_vec())
        .with_cors();
    conn.respond(&response, keep_alive).await && keep_alive
}

struct Reply {
    status: u16,
    content_type: String,
    bytes: Rc<[u8]>,
}

impl Reply {
    fn status(status: u16, condition: Condition) -> Reply {
        let mut bytes = Vec::new();
        body::write_terminate(&mut bytes, Some(condition));
        Reply {
            status,
            content_type: "text/xml; charset=utf-8".into(),
            bytes: bytes.into(),
        }
    }

    fn terminate(condition: Condition) -> Reply {
        Reply::status(200, condition)
    }
}

/// Gives `request` to its session and waits for its response.
async fn exchange(
    server: &Rc<Server>,
    executor: &Weak<smol::LocalExecutor<'static>>,
    request: RequestBody,
    client: Client,
) -> Reply {
    let rid = request.rid;
    let shared = match request.sid.as_deref() {
        None => match create(server, executor, &request, client) {
            Ok(shared) => shared,
            Err(condition) => return Reply::terminate(condition),
        },
        Some(sid) => {
            let Some(shared) = lookup(sid) else {
                return Reply::terminate(Condition::ItemNotFound);
            };
            let received = shared.borrow_mut().session.receive(request, Instant::now());
            match received {
                Received::Held => {}
                Received::Repeat(bytes) => {
                    return reply_with(&shared, bytes);
                }
                Received::Superseded => {
                    // The earlier request of this rid gives way to this one.
                    if let Some(earlier) = shared.borrow_mut().replace_waiter(rid) {
                        earlier.wake();
                    }
                }
                Received::Terminate(condition) => {
                    let mut s = shared.borrow_mut();
                    s.pump_input();
                    s.deliver(Instant::now());
                    return Reply::terminate(condition);
                }
            }
            shared
        }
    };
    {
        let mut s = shared.borrow_mut();
        s.pump_input();
        s.deliver(Instant::now());
    }
    let bytes = futures_lite::future::poll_fn(|cx| {
        let mut s = shared.borrow_mut();
        match s.poll_response(rid, cx.waker()) {
            Some(bytes) => std::task::Poll::Ready(Some(bytes)),
            // Nobody left to answer: the stream is gone for good.
            None if s.is_over() => std::task::Poll::Ready(None),
            None => std::task::Poll::Pending,
        }
    })
    .await;
    match bytes {
        Some(bytes) => reply_with(&shared, bytes),
        None => Reply::terminate(Condition::ItemNotFound),
    }
}

fn reply_with(shared: &SharedRef, bytes: Rc<[u8]>) -> Reply {
    Reply {
        status: 200,
        content_type: shared.borrow().session.content_type().to_string(),
        bytes,
    }
}

/// A new session (XEP-0124 §7.1), its client stream started on its own
/// task.
fn create(
    server: &Rc<Server>,
    executor: &Weak<smol::LocalExecutor<'static>>,
    request: &RequestBody,
    client: Client,
) -> Result<SharedRef, Condition> {
    let domain = request
        .to
        .as_deref()
        .map(str::to_ascii_lowercase)
        .ok_or(Condition::ImproperAddressing)?;
    if !server.is_local_host(&domain) {
        return Err(Condition::HostUnknown);
    }
    let guard = server.admit(client.ip).map_err(|refusal| {
        log::info!(
            "refusing BOSH session from {}: {}",
            client.ip,
            refusal.reason()
        );
        Condition::PolicyViolation
    })?;
    let bosh = &server.config().http.bosh;
    let settings = Settings {
        max_wait: bosh.max_wait_secs,
        inactivity: bosh.inactivity_secs,
        max_pause: bosh.max_pause_secs,
        max_pending_bytes: server.limits().max_stanza_bytes.max(1 << 20),
        ..Settings::default()
    };
    // The sid is the session's only credential: 128 random bits.
    let sid = crate::ids::hex(&server.ids().random_bytes::<16>());
    let session = BoshSession::create(sid.clone(), request, &settings, Instant::now())?;
    let shared = Rc::new(RefCell::new(Shared::new(
        session,
        domain,
        request.lang.as_deref(),
        client.secure,
    )));
    SESSIONS.with(|s| s.borrow_mut().insert(sid, Rc::downgrade(&shared)));
    let start = StreamStart {
        server: server.clone(),
        tls: None,
        peer: std::net::SocketAddr::new(client.ip, 0),
        secure: client.secure,
        channel_binding: None,
        guard,
    };
    let executor = executor.upgrade().ok_or(Condition::SystemShutdown)?;
    let link = BoshLink::new(shared.clone());
    executor
        .spawn(run_stream(Transport::Bosh(Box::new(link)), start))
        .detach();
    Ok(shared)
}
