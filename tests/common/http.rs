//! A raw HTTP/1.1 test client: requests written as bytes (so that tests
//! can send what no well-behaved client would), responses read with
//! timeouts (status, headers, a body delimited by `Content-Length`), and
//! checks of how the server ends a connection.
//!
//! Most methods panic on anything unexpected; the `try_` ones return the
//! failure, for tests that expect the server to close instead.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::client::{is_timeout, tcp_connect};
use super::timeout;

/// How often [`HttpConn::closed_within`] looks at the socket.
const POLL: Duration = Duration::from_millis(100);
/// Most bytes of a response head the client accepts.
const MAX_HEAD: usize = 64 * 1024;
/// Bytes of a streamed body written or read at a time.
const STREAM_CHUNK: usize = 64 * 1024;

/// A response as read from the wire.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case, values as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the server said it closes the connection after this.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }
}

impl std::fmt::Display for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        for (n, v) in &self.headers {
            write!(f, "\n{n}: {v}")?;
        }
        write!(f, "\n\n{}", self.text())
    }
}

/// A response head as read: status, headers (names in lower case), and
/// its length in bytes.
type Head = (u16, Vec<(String, String)>, usize);

/// How a connection ended, as [`HttpConn::closed_within`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The server closed (FIN or reset) after sending these bytes.
    Closed(Vec<u8>),
    /// Still open when the time was up; what arrived meanwhile.
    Open(Vec<u8>),
}

/// One HTTP connection.
pub struct HttpConn {
    pub tcp: TcpStream,
    /// Bytes read past the last response.
    buf: Vec<u8>,
}

impl HttpConn {
    pub fn connect(addr: SocketAddr) -> HttpConn {
        HttpConn {
            tcp: tcp_connect(addr),
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("cannot write to the server: {e}"));
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tcp.write_all(bytes)?;
        self.tcp.flush()
    }

    /// Writes a request with `Host: localhost`, the given extra header
    /// lines (each without its CRLF) and, if there is a body, its
    /// `Content-Length`.
    pub fn send_request(&mut self, method: &str, path: &str, headers: &[&str], body: &[u8]) {
        self.send(&request_bytes(method, path, headers, body));
    }

    /// [`HttpConn::send_request`] and the response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &[u8],
    ) -> HttpResponse {
        self.send_request(method, path, headers, body);
        self.response_to(method)
    }

    pub fn get(&mut self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }

    /// The response to a request of `method` (a `HEAD` response has no
    /// body whatever its `Content-Length` says).
    pub fn response_to(&mut self, method: &str) -> HttpResponse {
        self.try_response_to(method)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn response(&mut self) -> HttpResponse {
        self.response_to("GET")
    }

    pub fn try_response(&mut self) -> Result<HttpResponse, String> {
        self.try_response_to("GET")
    }

    pub fn try_response_to(&mut self, method: &str) -> Result<HttpResponse, String> {
        self.try_response_within(method, timeout())
    }

    /// The response to a request of `method` within `limit` (for one the
    /// server may hold, as BOSH does).
    pub fn try_response_within(
        &mut self,
        method: &str,
        limit: Duration,
    ) -> Result<HttpResponse, String> {
        let deadline = Instant::now() + limit;
        let (status, headers, head_len) = self.read_head(deadline)?;
        self.buf.drain(..head_len);
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| {
                v.parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {v:?} in the response"))
            })
            .transpose()?;
        let bodiless = method == "HEAD" || status < 200 || status == 204 || status == 304;
        let length = if bodiless { 0 } else { length.unwrap_or(0) };
        while self.buf.len() < length {
            self.fill(deadline, "the response body")?;
        }
        let body = self.buf.drain(..length).collect();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// Reads until `buf` starts with a whole response head: its status,
    /// headers (names in lower case) and length in bytes.
    fn read_head(&mut self, deadline: Instant) -> Result<Head, String> {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let headers = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).trim().to_string(),
                            )
                        })
                        .collect::<Vec<_>>();
                    return Ok((parsed.code.unwrap_or_default(), headers, len));
                }
                Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => {
                    return Err(format!("a response head over {MAX_HEAD} bytes"));
                }
                Err(e) => {
                    return Err(format!(
                        "not an HTTP response ({e}): {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ));
                }
            }
            self.fill(deadline, "a response head")?;
        }
    }

    /// Writes a request head (as [`HttpConn::send_request`], with the
    /// given `Content-Length`), then a body of `length` bytes that `fill`
    /// produces a piece at a time (each call fills the whole slice it is
    /// given, at most 64 KiB): a large body never sits whole in memory.
    pub fn try_send_streamed(
        &mut self,
        method: &str,
        path: &str,
        headers: &[&str],
        length: u64,
        mut fill: impl FnMut(&mut [u8]),
    ) -> io::Result<()> {
        let mut head = request_bytes(method, path, headers, b"");
        // Before the blank line that ends the head.
        head.truncate(head.len() - 2);
        head.extend_from_slice(format!("Content-Length: {length}\r\n\r\n").as_bytes());
        self.try_send(&head)?;
        let mut chunk = vec![0u8; STREAM_CHUNK];
        let mut left = length;
        while left > 0 {
            let n = usize::try_from(left).map_or(STREAM_CHUNK, |l| l.min(STREAM_CHUNK));
            let piece = &mut chunk[..n];
            fill(piece);
            self.tcp.write_all(piece)?;
            left -= n as u64;
        }
        self.tcp.flush()
    }

    /// The head of the next response, with an empty `body`: the body
    /// (its `Content-Length`) is left to [`HttpConn::stream_body`].
    pub fn response_head(&mut self) -> HttpResponse {
        let deadline = Instant::now() + timeout();
        let (status, headers, head_len) =
            self.read_head(deadline).unwrap_or_else(|e| panic!("{e}"));
        self.buf.drain(..head_len);
        HttpResponse {
            status,
            headers,
            body: Vec::new(),
        }
    }

    /// Reads exactly `length` bytes of body, handing them to `sink` a
    /// piece at a time; each read must make progress within the test
    /// timeout.
    pub fn stream_body(&mut self, length: u64, mut sink: impl FnMut(&[u8])) -> Result<(), String> {
        let mut left = length;
        let take = usize::try_from(left).map_or(self.buf.len(), |l| l.min(self.buf.len()));
        if take > 0 {
            sink(&self.buf[..take]);
            self.buf.drain(..take);
            left -= take as u64;
        }
        let _ = self.tcp.set_read_timeout(Some(timeout()));
        let mut chunk = vec![0u8; STREAM_CHUNK];
        while left > 0 {
            let want = usize::try_from(left).map_or(STREAM_CHUNK, |l| l.min(STREAM_CHUNK));
            match self.tcp.read(&mut chunk[..want]) {
                Ok(0) => {
                    return Err(format!(
                        "the server closed the connection {left} bytes before the body's end"
                    ));
                }
                Ok(n) => {
                    sink(&chunk[..n]);
                    left -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    return Err(format!(
                        "the body stalled for {:?} with {left} bytes to go",
                        timeout()
                    ));
                }
                Err(e) => return Err(format!("reading the body failed with {left} to go: {e}")),
            }
        }
        Ok(())
    }

    /// Reads more into `buf`; an error when the connection ends or
    /// nothing arrives before `deadline`.
    fn fill(&mut self, deadline: Instant, what: &str) -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no {what} in time; received: {:?}",
                String::from_utf8_lossy(&self.buf)
            ));
        }
        let _ = self.tcp.set_read_timeout(Some(left));
        let mut chunk = [0u8; 8192];
        match self.tcp.read(&mut chunk) {
            Ok(0) => Err(format!(
                "the server closed the connection before {what}; received: {:?}",
                String::from_utf8_lossy(&self.buf)
            )),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) if is_timeout(&e) => Err(format!(
                "no {what} in time; received: {:?}",
                String::from_utf8_lossy(&self.buf)
            )),
            Err(e) => Err(format!(
                "reading {what} failed: {e}; received: {:?}",
                String::from_utf8_lossy(&self.buf)
            )),
        }
    }

    /// Waits up to `limit` for the server to close the connection (a
    /// reset counts: a server that closes with unread input resets it).
    /// Whatever it sends meanwhile is returned, including bytes read
    /// before but not taken by a response.
    pub fn closed_within(&mut self, limit: Duration) -> Ending {
        let deadline = Instant::now() + limit;
        let mut got = std::mem::take(&mut self.buf);
        let _ = self.tcp.set_read_timeout(Some(POLL));
        let mut chunk = [0u8; 8192];
        let ending = loop {
            if Instant::now() >= deadline {
                break Ending::Open(got);
            }
            match self.tcp.read(&mut chunk) {
                Ok(0) => break Ending::Closed(got),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Ending::Closed(got),
            }
        };
        let _ = self.tcp.set_read_timeout(Some(timeout()));
        ending
    }

    /// Expects the server to close the connection (within the test
    /// timeout) after what was read so far, sending nothing more.
    pub fn expect_closed(&mut self) {
        match self.closed_within(timeout()) {
            Ending::Closed(rest) if rest.is_empty() => {}
            Ending::Closed(rest) => panic!(
                "the server sent more before closing: {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Ending::Open(rest) => panic!(
                "the server did not close the connection within {:?}; it sent {:?}",
                timeout(),
                String::from_utf8_lossy(&rest)
            ),
        }
    }
}

/// A request as bytes: see [`HttpConn::send_request`].
pub fn request_bytes(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One request on a new connection.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> HttpResponse {
    HttpConn::connect(addr).request(method, path, headers, body)
}

/// `GET path` on a new connection.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, &[], b"")
}

/// Parses the bytes `ending` holds as one response (for a connection the
/// server answered and closed).
pub fn parse_response(bytes: &[u8]) -> Option<HttpResponse> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    let headers = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    Some(HttpResponse {
        status: parsed.code.unwrap_or_default(),
        headers,
        body: bytes[len..].to_vec(),
    })
}
