//! An HTTP/1.1 request head, parsed by `httparse` and checked against the
//! limits a small server needs: what a handler may rely on.

use std::fmt;

/// Most header lines a request may have.
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Options,
    /// Anything else: answered `405` or `501` by the handlers.
    Other,
}

impl Method {
    fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body (no `Content-Length`, or zero).
    None,
    /// `Content-Length` bytes follow the head.
    Exactly(u64),
    /// `Transfer-Encoding: chunked`: refused by the handlers that take a
    /// body (`411`), since every client of ours sends a length and a
    /// chunked body has no size to check before it is read.
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Method,
    /// The path, still percent-encoded (handlers decode what they use,
    /// after splitting, so that `%2F` cannot forge a separator).
    pub path: String,
    /// What followed `?`, if anything.
    pub query: Option<String>,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// Header names in lower case, values as sent (trimmed).
    pub headers: Vec<(String, String)>,
    pub body: BodyLength,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
}

impl RequestHead {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, for headers that may repeat.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header (`Connection`, `Upgrade`) lists
    /// `token`, case-insensitively.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Why a request head was refused; each maps to the status it is answered
/// with before the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// More than the head limit without the blank line that ends it.
    TooLarge,
    TooManyHeaders,
    /// Not HTTP/1.x syntax (`httparse`'s reason).
    Malformed(&'static str),
    /// HTTP/1.1 requires `Host`.
    NoHost,
    /// More than one `Host`.
    TwoHosts,
    BadContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` (request smuggling).
    AmbiguousLength,
    /// A transfer coding other than `chunked`.
    UnsupportedTransferEncoding,
}

impl HeadError {
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge | HeadError::TooManyHeaders => 431,
            HeadError::UnsupportedTransferEncoding => 501,
            _ => 400,
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => f.write_str("request head too large"),
            HeadError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} header lines"),
            HeadError::Malformed(why) => write!(f, "malformed request: {why}"),
            HeadError::NoHost => f.write_str("HTTP/1.1 request without Host"),
            HeadError::TwoHosts => f.write_str("more than one Host"),
            HeadError::BadContentLength => f.write_str("bad Content-Length"),
            HeadError::AmbiguousLength => f.write_str("both Content-Length and Transfer-Encoding"),
            HeadError::UnsupportedTransferEncoding => {
                f.write_str("a transfer coding other than chunked")
            }
        }
    }
}

/// Parses the head at the start of `buf`. `Ok(None)`: not complete yet
/// (and still within `max_bytes`); `Ok(Some((head, len)))`: the head and
/// how many bytes of `buf` it took.
pub fn parse_head(buf: &[u8], max_bytes: usize) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= max_bytes {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Malformed(malformed(e))),
    };
    if len > max_bytes {
        return Err(HeadError::TooLarge);
    }
    let method = Method::parse(request.method.unwrap_or_default());
    let target = request.path.unwrap_or_default();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let minor_version = request.version.unwrap_or(1);
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let head = finish(method, path, query, minor_version, headers)?;
    Ok(Some((head, len)))
}

/// `httparse`'s reasons, in words.
fn malformed(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

fn finish(
    method: Method,
    path: String,
    query: Option<String>,
    minor_version: u8,
    headers: Vec<(String, String)>,
) -> Result<RequestHead, HeadError> {
    let mut head = RequestHead {
        method,
        path,
        query,
        minor_version,
        headers,
        body: BodyLength::None,
        keep_alive: false,
    };
    if minor_version >= 1 && head.header("host").is_none_or(str::is_empty) {
        return Err(HeadError::NoHost);
    }
    // RFC 9112 §3.2: two Hosts is a request nobody can route safely.
    if head.headers_named("host").nth(1).is_some() {
        return Err(HeadError::TwoHosts);
    }
    head.body = body_length(&head)?;
    head.keep_alive = if minor_version >= 1 {
        !head.header_has_token("connection", "close")
    } else {
        head.header_has_token("connection", "keep-alive")
    };
    Ok(head)
}

/// RFC 9112 §6: `Transfer-Encoding` and `Content-Length` together, or
/// differing lengths, are refused rather than guessed at.
fn body_length(head: &RequestHead) -> Result<BodyLength, HeadError> {
    let mut lengths = head.headers_named("content-length");
    let length = match lengths.next() {
        None => None,
        Some(first) => {
            let n = parse_length(first)?;
            for other in lengths {
                if parse_length(other)? != n {
                    return Err(HeadError::BadContentLength);
                }
            }
            Some(n)
        }
    };
    let coding = head.header("transfer-encoding");
    match (length, coding) {
        (Some(_), Some(_)) => Err(HeadError::AmbiguousLength),
        (None, Some(coding)) if coding.trim().eq_ignore_ascii_case("chunked") => {
            Ok(BodyLength::Chunked)
        }
        (None, Some(_)) => Err(HeadError::UnsupportedTransferEncoding),
        (Some(0) | None, None) => Ok(BodyLength::None),
        (Some(n), None) => Ok(BodyLength::Exactly(n)),
    }
}

/// Digits only (no sign, no spaces inside), at most 2^53: a length no
/// client needs more of and no addition overflows with.
fn parse_length(value: &str) -> Result<u64, HeadError> {
    if value.is_empty() || value.len() > 16 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeadError::BadContentLength);
    }
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= 1 << 53)
        .ok_or(HeadError::BadContentLength)
}

/// Decodes `%XX` escapes of one path segment (after splitting on `/`).
/// `None` for a bad escape or a decoded byte that has no place in a
/// segment (`/`, `\`, NUL), so encoded separators cannot smuggle a path.
pub fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
        return None;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
