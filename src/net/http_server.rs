//! One task per HTTP connection (`http` and `https` listeners): request
//! heads read within the limits, each request answered by its endpoint,
//! keep-alive, and the hand-over of a WebSocket upgrade to the client
//! stream loop.

use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::LocalExecutor;

use crate::http::acme_challenge;
use crate::http::pages::{self, BOSH_PATH, WEBSOCKET_PATH};
use crate::http::proxy::{self, Client};
use crate::http::request::{BodyLength, Method, RequestHead};
use crate::http::{Response, upgrade};
use crate::server::{ConnectionGuard, Server};

use super::connection::{StreamStart, run_stream};
use super::http_conn::{BodyReader, HttpConnection, Refused};
use super::tls::TlsSetup;
use super::transport::{TcpStream, Transport};
use super::websocket::WebSocketLink;

/// Bytes of a file read and written per step of a download.
const FILE_CHUNK: usize = 64 << 10;

pub struct HttpParams {
    pub server: Rc<Server>,
    pub tls: Option<Rc<TlsSetup>>,
    pub peer: SocketAddr,
    /// An `https` listener: TLS first.
    pub https: bool,
    pub guard: ConnectionGuard,
    /// For the tasks of BOSH sessions.
    pub executor: Weak<LocalExecutor<'static>>,
}

/// The request routes, by path.
enum Endpoint {
    Status,
    HostMeta {
        json: bool,
    },
    WebSocket,
    Bosh,
    Upload,
    Invite,
    /// `/.well-known/acme-challenge/TOKEN` (`crate::acme`).
    AcmeChallenge,
    NotFound,
}

fn endpoint(path: &str) -> Endpoint {
    match path {
        "/" => Endpoint::Status,
        "/.well-known/host-meta" => Endpoint::HostMeta { json: false },
        "/.well-known/host-meta.json" => Endpoint::HostMeta { json: true },
        WEBSOCKET_PATH => Endpoint::WebSocket,
        BOSH_PATH | "/http-bind/" => Endpoint::Bosh,
        p if p.starts_with("/upload/") => Endpoint::Upload,
        p if p.starts_with(crate::invite::landing::PATH_PREFIX) => Endpoint::Invite,
        p if p.starts_with(acme_challenge::PATH_PREFIX) => Endpoint::AcmeChallenge,
        _ => Endpoint::NotFound,
    }
}

pub async fn serve(tcp: TcpStream, params: HttpParams) {
    let HttpParams {
        server,
        tls,
        peer,
        https,
        guard,
        executor,
    } = params;
    let _ = tcp.get_ref().set_nodelay(true);
    let mut transport = Transport::Plain(tcp);
    if https {
        let Some(setup) = tls.as_ref() else {
            return;
        };
        match Box::pin(super::connection::handshake(
            setup.https_config(),
            transport,
        ))
        .await
        {
            Some((t, _)) => transport = t,
            None => {
                log::debug!("{peer}: HTTPS handshake failed");
                return;
            }
        }
    }
    let http = &server.config().http;
    let timeout = Duration::from_secs(u64::from(http.request_timeout_secs));
    let mut conn = HttpConnection {
        server: server.clone(),
        peer,
        transport,
        buffered: Vec::new(),
        tls: https,
        timeout,
        executor,
    };
    let mut guard = Some(guard);
    let mut first = true;
    loop {
        let head = match conn.read_head(first).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(Refused(response)) => {
                let _ = conn.respond(&response, false).await;
                return;
            }
        };
        first = false;
        let client = proxy::client(&head, peer, conn.tls, &server.config().http);
        match endpoint(&head.path) {
            Endpoint::WebSocket => {
                match upgrade::check(&head, &server.config().http.websocket_origins) {
                    Ok(accept) => {
                        let Some(guard) = guard.take() else {
                            return;
                        };
                        return conn.into_websocket(accept, client, guard).await;
                    }
                    Err(refusal) => {
                        if !conn.respond(&refusal, head.keep_alive).await || !head.keep_alive {
                            return;
                        }
                    }
                }
            }
            other => {
                let keep = conn.answer(other, &head, client).await;
                if !keep || server.is_stopping() {
                    return;
                }
            }
        }
    }
}

impl HttpConnection {
    /// Answers one request at a non-WebSocket endpoint. Returns whether
    /// the connection may carry another request.
    async fn answer(&mut self, endpoint: Endpoint, head: &RequestHead, client: Client) -> bool {
        let keep_alive = head.keep_alive;
        let response = match endpoint {
            Endpoint::Status => self.simple(head, status),
            Endpoint::HostMeta { json } => {
                let http = &self.server.config().http;
                let base = pages::request_base(head, http.external_url.as_deref(), client.https);
                self.simple(head, |_| pages::host_meta(&base, json))
            }
            Endpoint::Bosh => return super::bosh::glue::answer(self, head, client).await,
            Endpoint::Upload => return self.upload(head).await,
            Endpoint::AcmeChallenge => {
                self.simple(head, |server| server.acme_challenges().respond(&head.path))
            }
            Endpoint::Invite => return self.invite(head, client).await,
            Endpoint::NotFound | Endpoint::WebSocket => {
                Response::text(404, "nothing here").with_cors()
            }
        };
        // A body nobody read would be taken for the next request.
        let keep = keep_alive && head.body == BodyLength::None;
        let response = if head.method == Method::Head {
            Response {
                streamed_length: Some(response.body.len() as u64),
                body: Vec::new(),
                ..response
            }
        } else {
            response
        };
        self.respond(&response, keep).await && keep
    }

    /// A document endpoint: GET/HEAD/OPTIONS only.
    fn simple(&self, head: &RequestHead, page: impl FnOnce(&Server) -> Response) -> Response {
        match head.method {
            Method::Get | Method::Head => page(&self.server),
            Method::Options => Response::new(204).with_cors(),
            _ => Response::text(405, "GET or HEAD only").with("Allow", "GET, HEAD, OPTIONS"),
        }
    }

    /// `/upload/…` (XEP-0363): the handler reads the body itself (a PUT
    /// streams to disk) and answers with a document or a file.
    async fn upload(&mut self, head: &RequestHead) -> bool {
        let server = self.server.clone();
        let rest = head.path.strip_prefix("/upload/").unwrap_or_default();
        let segments: Vec<&str> = rest.split('/').collect();
        let length = match head.body {
            BodyLength::Exactly(n) => n,
            BodyLength::None | BodyLength::Chunked => 0,
        };
        let (reply, unread) = {
            let mut body = BodyReader::new(self, length);
            let reply = crate::upload::http::handle(&server, head, &segments, &mut body).await;
            (reply, body.remaining())
        };
        // A body left unread (a refused PUT) would be taken for the next
        // request: the connection closes instead.
        let keep = head.keep_alive && unread == 0 && head.body != BodyLength::Chunked;
        match reply {
            crate::upload::http::Reply::Full(mut response) => {
                if head.method == Method::Head && !response.body.is_empty() {
                    response.streamed_length = Some(response.body.len() as u64);
                    response.body.clear();
                }
                self.respond(&response, keep).await && keep
            }
            crate::upload::http::Reply::File {
                response,
                file,
                length,
            } => self.send_file(&response, file, length, keep).await && keep,
        }
    }

    /// `/invite/TOKEN`: the page, or its form posted (a small body).
    async fn invite(&mut self, head: &RequestHead, client: Client) -> bool {
        let server = self.server.clone();
        let length = match head.body {
            BodyLength::Exactly(n) => n,
            BodyLength::None | BodyLength::Chunked => 0,
        };
        let (mut response, unread) = {
            let mut body = BodyReader::new(self, length);
            let r =
                crate::invite::landing::handle(&server, head, client.https, client.ip, &mut body);
            (r.await, body.remaining())
        };
        if head.method == Method::Head {
            response.streamed_length = Some(response.body.len() as u64);
            response.body.clear();
        }
        let keep = head.keep_alive && unread == 0 && head.body != BodyLength::Chunked;
        self.respond(&response, keep).await && keep
    }

    /// Writes `response`'s head, then `length` bytes of `file`, in chunks:
    /// a download never sits whole in memory.
    async fn send_file(
        &mut self,
        response: &Response,
        mut file: crate::upload::files::DiskFile,
        length: u64,
        keep_alive: bool,
    ) -> bool {
        let mut head = Vec::with_capacity(512);
        response.write_head(&mut head, keep_alive);
        if self.write_all(&head).await.is_err() {
            return false;
        }
        let mut left = length;
        let mut chunk = vec![0u8; FILE_CHUNK];
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(FILE_CHUNK).min(FILE_CHUNK);
            let Some(buf) = chunk.get_mut(..want) else {
                return false;
            };
            match file.read(buf).await {
                Ok(0) | Err(_) => {
                    // Shorter than announced: the client sees a cut body.
                    log::warn!("upload: a stored file ended early while being sent");
                    return false;
                }
                Ok(n) => {
                    let Some(data) = chunk.get(..n) else {
                        return false;
                    };
                    if self.write_all(data).await.is_err() {
                        return false;
                    }
                    left -= n as u64;
                }
            }
        }
        true
    }

    /// Sends the `101` and runs the client stream over the WebSocket.
    async fn into_websocket(self, accept: Response, client: Client, guard: ConnectionGuard) {
        let HttpConnection {
            server,
            peer,
            mut transport,
            buffered,
            executor,
            ..
        } = self;
        let mut head = Vec::new();
        accept.write_head(&mut head, true);
        if transport.write_all(&head).await.is_err() || transport.flush().await.is_err() {
            return;
        }
        // Through a proxy, the connection counts for the client's address.
        let guard = if client.proxied {
            match server.admit(client.ip) {
                Ok(own) => {
                    drop(guard);
                    own
                }
                Err(refusal) => {
                    log::info!(
                        "refusing WebSocket from {}: {}",
                        client.ip,
                        refusal.reason()
                    );
                    return;
                }
            }
        } else {
            guard
        };
        let max = server.limits().max_stanza_bytes;
        let tls = transport.is_tls();
        let mut link = WebSocketLink::new(transport, tls, max);
        if !buffered.is_empty() {
            // A client may send its first frame right behind the request.
            link.preload(&buffered);
        }
        let peer = if client.proxied {
            SocketAddr::new(client.ip, peer.port())
        } else {
            peer
        };
        let start = StreamStart {
            server,
            tls: None,
            peer,
            secure: client.secure,
            channel_binding: None,
            guard,
        };
        // A task of its own, sized for the stream alone: this HTTP task,
        // with room for every request kind, ends here and frees its state.
        let stream = run_stream(Transport::WebSocket(Box::new(link)), start);
        match executor.upgrade() {
            Some(executor) => executor.spawn(stream).detach(),
            None => stream.await,
        }
    }
}

fn status(server: &Server) -> Response {
    let config = server.config();
    let name = config
        .hosts
        .first()
        .map(|h| h.domain.as_str())
        .unwrap_or("Perch");
    let mut services = vec![
        ("WebSocket (RFC 7395)", WEBSOCKET_PATH.to_string()),
        ("BOSH (XEP-0206)", BOSH_PATH.to_string()),
    ];
    for host in &config.hosts {
        if let Some(muc) = &host.muc {
            services.push(("Group chats (XEP-0045)", muc.clone()));
        }
        if let Some(pubsub) = &host.pubsub {
            services.push(("Publish-subscribe (XEP-0060)", pubsub.clone()));
        }
        if let Some(upload) = host.upload.as_ref().filter(|_| server.upload().is_some()) {
            services.push(("File upload (XEP-0363)", upload.clone()));
        }
    }
    pages::status_page(&pages::Status {
        name,
        version: env!("CARGO_PKG_VERSION"),
        services,
    })
}
