//! HTTP/1.1 as the ACME client speaks it, without sockets: `https` URLs
//! split into host, port and path, request bytes, and whole responses
//! (head parsed with httparse, body by `Content-Length`, chunked, or up to
//! the end of the connection) with the headers ACME needs. Every request
//! closes its connection, so a response is all the bytes the server sent.

use std::time::Duration;

use super::AcmeError;

/// Longest response head.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Longest response read (a certificate chain is a few kilobytes).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Longest `Retry-After` honoured: a CA asking for more gets this, and the
/// renewal's own back-off takes over.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_HEADERS: usize = 64;

/// An `https://host[:port]/path` URL; nothing else is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// A DNS name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub target: String,
}

impl Url {
    pub fn parse(text: &str) -> Option<Url> {
        let rest = text.strip_prefix("https://")?;
        if rest.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') {
            return None;
        }
        let (authority, target) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if authority.contains('@') || authority.is_empty() {
            return None;
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            host.parse::<std::net::Ipv6Addr>().ok()?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
            None => 443,
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
        {
            return None;
        }
        Some(Url {
            host: host.to_ascii_lowercase(),
            port,
            target: target.to_owned(),
        })
    }

    /// The `Host` header's value.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
}

/// The bytes of one request; `body` is a JWS (`application/jose+json`).
pub fn request_bytes(method: Method, url: &Url, body: Option<&[u8]>, accept: &str) -> Vec<u8> {
    let name = match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
    };
    let mut out = format!(
        "{name} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: perch/{} (built-in ACME client)\r\nAccept: {accept}\r\nConnection: close\r\n",
        url.target,
        url.authority(),
        env!("CARGO_PKG_VERSION"),
    );
    if let Some(body) = body {
        out.push_str(&format!(
            "Content-Type: application/jose+json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    bytes
}

/// A response with the headers ACME uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub replay_nonce: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// Parses everything a server sent before closing. `Ok(None)`: the bytes
/// end before the response does (the connection was cut).
pub fn parse_response(bytes: &[u8], head_only: bool) -> Result<Option<Response>, AcmeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if bytes.len() > MAX_HEAD_BYTES => {
            return Err(bad_http(format!(
                "a response head longer than {MAX_HEAD_BYTES} bytes"
            )));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(bad_http(format!("an unreadable response head ({err})"))),
    };
    let status = parsed.code.unwrap_or_default();
    let mut response = Response {
        status,
        ..Response::default()
    };
    let mut content_length = None;
    let mut chunked = false;
    for header in parsed.headers.iter() {
        let Ok(value) = std::str::from_utf8(header.value) else {
            continue;
        };
        let value = value.trim();
        match header.name.to_ascii_lowercase().as_str() {
            "location" => response.location = Some(value.to_owned()),
            // A nonce goes back into a JWS: base64url only (§6.5.1).
            "replay-nonce" if super::jws::is_base64url(value) && value.len() <= 256 => {
                response.replay_nonce = Some(value.to_owned());
            }
            "retry-after" => response.retry_after = parse_retry_after(value),
            "content-length" => {
                let length = value
                    .parse::<usize>()
                    .map_err(|_| bad_http(format!("Content-Length {value:?}")))?;
                content_length = Some(length);
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let rest = bytes.get(head_len..).unwrap_or_default();
    if head_only || status == 204 || status == 304 {
        return Ok(Some(response));
    }
    response.body = if chunked {
        match dechunk(rest)? {
            Some(body) => body,
            None => return Ok(None),
        }
    } else if let Some(length) = content_length {
        match rest.get(..length) {
            Some(body) => body.to_vec(),
            None => return Ok(None),
        }
    } else {
        rest.to_vec()
    };
    Ok(Some(response))
}

/// `Retry-After` in seconds (what ACME servers send); an HTTP date or
/// nonsense counts as absent, so the caller's default applies.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs = value.parse::<u64>().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Decodes a chunked body; `Ok(None)` if it is cut before the last chunk.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, AcmeError> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = rest.get(..line_end).unwrap_or_default();
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
            .ok_or_else(|| bad_http("a bad chunk size".to_owned()))?;
        rest = rest.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(Some(body));
        }
        if size > MAX_RESPONSE_BYTES || body.len() + size > MAX_RESPONSE_BYTES {
            return Err(bad_http(format!("a body over {MAX_RESPONSE_BYTES} bytes")));
        }
        let Some(chunk) = rest.get(..size) else {
            return Ok(None);
        };
        body.extend_from_slice(chunk);
        rest = match rest.get(size..size + 2) {
            Some(b"\r\n") => rest.get(size + 2..).unwrap_or_default(),
            Some(_) => return Err(bad_http("a chunk without its CRLF".to_owned())),
            None => return Ok(None),
        };
    }
}

fn bad_http(detail: String) -> AcmeError {
    AcmeError::Malformed {
        what: "HTTP response",
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = Url::parse("https://acme-v02.api.letsencrypt.org/directory").expect("url");
        assert_eq!(url.host, "acme-v02.api.letsencrypt.org");
        assert_eq!(url.port, 443);
        assert_eq!(url.target, "/directory");
        let url = Url::parse("https://127.0.0.1:14000/dir?x=1").expect("url");
        assert_eq!(
            (url.host.as_str(), url.port, url.target.as_str()),
            ("127.0.0.1", 14000, "/dir?x=1")
        );
        assert_eq!(url.authority(), "127.0.0.1:14000");
        let v6 = Url::parse("https://[::1]:8443").expect("v6");
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.target.as_str()),
            ("::1", 8443, "/")
        );
        assert_eq!(v6.authority(), "[::1]:8443");
        for bad in [
            "http://ca.test/",
            "https://",
            "https://user@ca.test/",
            "https://ca.test:0/",
            "https://ca.test:99999/",
            "https://ca test/",
            "https://ca.test/a b",
            "https://ca.test/\r\nX: y",
            "https://[nothost]/",
            "https://ca_test/",
        ] {
            assert_eq!(Url::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn requests_close_and_carry_a_jws() {
        let url = Url::parse("https://ca.test/new-order").expect("url");
        let bytes = request_bytes(Method::Post, &url, Some(b"{}"), "application/json");
        let text = String::from_utf8(bytes).expect("ascii");
        assert!(
            text.starts_with("POST /new-order HTTP/1.1\r\nHost: ca.test\r\n"),
            "{text}"
        );
        assert!(text.contains("Connection: close\r\n"));
        assert!(
            text.contains("Content-Type: application/jose+json\r\nContent-Length: 2\r\n\r\n{}")
        );
        let head = request_bytes(Method::Head, &url, None, "*/*");
        assert!(
            !String::from_utf8(head)
                .expect("ascii")
                .contains("Content-Length")
        );
    }

    #[test]
    fn responses_by_length_chunks_or_close() {
        let sized = b"HTTP/1.1 201 Created\r\nLocation: https://ca.test/acct/1\r\nReplay-Nonce: abc_-1\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\n{}";
        let r = parse_response(sized, false).expect("ok").expect("whole");
        assert_eq!(r.status, 201);
        assert_eq!(r.location.as_deref(), Some("https://ca.test/acct/1"));
        assert_eq!(r.replay_nonce.as_deref(), Some("abc_-1"));
        assert_eq!(r.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(r.body, b"{}");
        // Cut anywhere, it is incomplete, never wrong.
        for cut in 0..sized.len() {
            assert_eq!(
                parse_response(&sized[..cut], false).expect("ok"),
                None,
                "cut at {cut}"
            );
        }
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n----\r\n3\r\nBEG\r\n0\r\n\r\n";
        let r = parse_response(chunked, false).expect("ok").expect("whole");
        assert_eq!(r.body, b"----BEG");
        assert_eq!(
            parse_response(&chunked[..chunked.len() - 5], false).expect("ok"),
            None
        );
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false
            )
            .is_err()
        );
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
                false
            )
            .is_err()
        );
        let to_close = b"HTTP/1.1 200 OK\r\n\r\nuntil the end";
        assert_eq!(
            parse_response(to_close, false)
                .expect("ok")
                .expect("whole")
                .body,
            b"until the end"
        );
        // A HEAD answer has a length but no body.
        let head = b"HTTP/1.1 200 OK\r\nReplay-Nonce: n1\r\nContent-Length: 10\r\n\r\n";
        let r = parse_response(head, true).expect("ok").expect("whole");
        assert_eq!(r.replay_nonce.as_deref(), Some("n1"));
    }

    #[test]
    fn hostile_headers() {
        // A nonce that is not base64url is dropped (it would go into JSON).
        let r = parse_response(b"HTTP/1.1 200 OK\r\nReplay-Nonce: a\"b\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nContent-Length: 0\r\n\r\n", false)
            .expect("ok")
            .expect("whole");
        assert_eq!(r.replay_nonce, None);
        assert_eq!(r.retry_after, None);
        let r = parse_response(
            b"HTTP/1.1 429 Too Many\r\nRetry-After: 99999999\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .expect("ok")
        .expect("whole");
        assert_eq!(r.retry_after, Some(MAX_RETRY_AFTER));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false).is_err());
        assert!(parse_response(b"NOT HTTP\r\n\r\n", false).is_err());
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.extend(vec![b'a'; MAX_HEAD_BYTES + 1]);
        assert!(parse_response(&long, false).is_err());
    }
}
