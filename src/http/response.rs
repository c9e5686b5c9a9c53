//! An HTTP/1.1 response head and small in-memory bodies, written as bytes.
//! Large bodies (upload downloads) are written by their handler after the
//! head.

use std::fmt::Write as _;

/// A response whose head is written by [`Response::write_head`]; `body`
/// follows unless the request was `HEAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Extra headers (`Content-Length`, `Date`-less by design, and
    /// `Connection` are written by [`Response::write_head`]).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// The length announced when the body is streamed by the caller
    /// instead of held in `body`.
    pub streamed_length: Option<u64>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            streamed_length: None,
        }
    }

    /// A plain-text body: errors say what went wrong, in one line.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        let mut text = text.into();
        text.push('\n');
        Response::new(status)
            .with("Content-Type", "text/plain; charset=utf-8")
            .with_body(text.into_bytes())
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// CORS for a resource any web page may use: the session id or the
    /// URL's secret is the credential, never a cookie, so `*` is safe and
    /// saves web clients the configuration both other servers need.
    pub fn with_cors(self) -> Response {
        self.with("Access-Control-Allow-Origin", "*")
            .with(
                "Access-Control-Allow-Methods",
                "GET, HEAD, POST, PUT, OPTIONS",
            )
            .with(
                "Access-Control-Allow-Headers",
                "Content-Type, Content-Length, Range, Authorization",
            )
            .with("Access-Control-Max-Age", "86400")
    }

    /// The status line and headers; `keep_alive` says whether the
    /// connection stays open after the body.
    pub fn write_head(&self, out: &mut Vec<u8>, keep_alive: bool) {
        let mut head = String::with_capacity(160);
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let length = self.streamed_length.unwrap_or(self.body.len() as u64);
        // 1xx and 204 carry no body and no length.
        if self.status >= 200 && self.status != 204 && self.status != 304 {
            let _ = write!(head, "Content-Length: {length}\r\n");
        }
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
    }
}

/// The reason phrase for the statuses Perch sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Status",
    }
}
