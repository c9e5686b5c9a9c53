//! Just enough HTTP/1.1 for the `upload` scenario: one PUT of a body
//! generated on the fly (never held whole), one GET whose body is handed
//! to the caller piece by piece, each on a fresh connection to a loopback
//! address. The answers' heads are parsed with httparse; bodies need a
//! `Content-Length` (what Perch, Prosody and ejabberd send for files) or
//! end with the connection. `http://` only: the servers are on loopback.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use smol::net::TcpStream;

/// Bytes written or read per call: large enough that the system calls
/// cost little beside the copy.
pub const CHUNK: usize = 256 * 1024;
/// Largest response head read.
const MAX_HEAD: usize = 64 * 1024;
/// Largest error body kept for a message.
const MAX_SMALL_BODY: usize = 4096;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The `Host` header: the URL's authority as written.
    pub host: String,
    /// The path and query, as written.
    pub target: String,
    /// The loopback address to connect to.
    pub connect: SocketAddr,
}

impl Url {
    /// `http://AUTHORITY/PATH?QUERY`. The connection goes to the URL's host
    /// if it is an IP address (which must be loopback), else to `fallback`
    /// (`--host`: a name such as `upload.localhost` need not resolve); to
    /// `port` if given, else the URL's port (80 when it names none).
    pub fn parse(url: &str, fallback: IpAddr, port: Option<u16>) -> Result<Url, String> {
        if url.starts_with("https://") {
            return Err(format!(
                "{url}: an https URL; this tool speaks plain HTTP to loopback only (give the service an http:// base URL)"
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: not an http:// URL"))?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let target = target.split('#').next().unwrap_or("/").to_string();
        if authority.contains('@') || target.contains([' ', '\r', '\n']) {
            return Err(format!("{url}: not a URL this tool sends"));
        }
        let (host, url_port) = crate::ws::split_authority(authority, 80)?;
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => ip,
            Ok(ip) => {
                return Err(format!(
                    "{url}: {ip} is not a loopback address; this tool only talks to servers on this machine"
                ));
            }
            Err(_) => fallback,
        };
        Ok(Url {
            host: authority.to_string(),
            target,
            connect: SocketAddr::new(ip, port.unwrap_or(url_port)),
        })
    }
}

/// An answer: status, its reason, and how long the request took from the
/// first byte written to the last byte read.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
    /// Body bytes received.
    pub body_bytes: u64,
    /// The start of a short body (error text).
    pub body_start: String,
    /// From the connection's first byte written to the answer's last
    /// byte read.
    pub elapsed: Duration,
    /// From the first byte written to the answer's head (a GET's wait for
    /// the first byte; a PUT's for the server to store the file).
    pub head_after: Duration,
}

/// A request head with `headers` (each checked for CR and LF).
fn request_head(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    length: Option<u64>,
) -> Result<String, String> {
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: perch-load\r\n",
        url.target, url.host
    );
    for (name, value) in headers {
        if name.contains([':', '\r', '\n']) || value.contains(['\r', '\n']) {
            return Err(format!("header {name:?} cannot be sent"));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(n) = length {
        head.push_str(&format!("Content-Length: {n}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    Ok(head)
}

async fn connect(url: &Url) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect(url.connect)
        .await
        .map_err(|e| format!("connecting to {}: {e}", url.connect))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// PUTs `length` bytes that `fill` writes, chunk by chunk, into the
/// buffer it is given (it returns how many it wrote; 0 ends the body
/// early, which the server will refuse). Bounded by `limit` in all.
pub async fn put(
    url: &Url,
    headers: &[(String, String)],
    length: u64,
    mut fill: impl FnMut(&mut [u8]) -> usize,
    limit: Duration,
) -> Result<Answer, String> {
    bounded(limit, "PUT", async {
        let mut tcp = connect(url).await?;
        let t0 = Instant::now();
        let head = request_head("PUT", url, headers, Some(length))?;
        tcp.write_all(head.as_bytes())
            .await
            .map_err(|e| format!("PUT head: {e}"))?;
        let mut buf = vec![0u8; CHUNK];
        let mut left = length;
        // The server may answer early (413, 401) and close: stop writing then.
        let mut early = None;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            let n = fill(&mut buf[..want]).min(want);
            if n == 0 {
                break;
            }
            if let Err(e) = tcp.write_all(&buf[..n]).await {
                early = Some(format!("PUT body: {e}"));
                break;
            }
            left -= n as u64;
        }
        drop(buf);
        let _ = tcp.flush().await;
        match read_answer(&mut tcp, t0, |_| {}).await {
            Ok(answer) => Ok(answer),
            Err(e) => Err(early.map_or(e.clone(), |w| format!("{w}; {e}"))),
        }
    })
    .await
}

/// GETs `url`, handing each piece of the body to `sink`.
pub async fn get(url: &Url, sink: impl FnMut(&[u8]), limit: Duration) -> Result<Answer, String> {
    bounded(limit, "GET", async {
        let mut tcp = connect(url).await?;
        let t0 = Instant::now();
        let head = request_head("GET", url, &[], None)?;
        tcp.write_all(head.as_bytes())
            .await
            .map_err(|e| format!("GET head: {e}"))?;
        read_answer(&mut tcp, t0, sink).await
    })
    .await
}

async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    future::or(fut, async {
        smol::Timer::after(limit).await;
        Err(format!("{what}: no complete answer within {limit:?}"))
    })
    .await
}

/// An answer's head, read whole with `httparse`.
pub struct Head {
    pub status: u16,
    pub reason: String,
    /// Names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
    /// What was read past the head (the body's or the frames' start), in
    /// the first `rest_len` bytes.
    pub rest: Vec<u8>,
    pub rest_len: usize,
}

impl Head {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads an answer head of at most `max` bytes from `tcp`; `what` names
/// it in errors.
pub async fn read_head(tcp: &mut TcpStream, max: usize, what: &str) -> Result<Head, String> {
    let mut buf = vec![0u8; max];
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Err(format!("no {what} head within {max} bytes"));
        }
        let n = tcp
            .read(&mut buf[len..])
            .await
            .map_err(|e| format!("reading the {what}: {e}"))?;
        if n == 0 {
            return Err(format!(
                "the server closed the connection without an {what}"
            ));
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut answer = httparse::Response::new(&mut headers);
        match answer.parse(&buf[..len]) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(used)) => {
                let headers = answer
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).trim().to_string();
                        (h.name.to_string(), value)
                    })
                    .collect();
                let (status, reason) = (answer.code.unwrap_or(0), answer.reason.unwrap_or(""));
                let reason = reason.to_string();
                buf.copy_within(used..len, 0);
                return Ok(Head {
                    status,
                    reason,
                    headers,
                    rest: buf,
                    rest_len: len - used,
                });
            }
            Err(e) => return Err(format!("{what} head: {e}")),
        }
    }
}

/// Reads an answer's head and its body (to `sink` if the status is 2xx).
async fn read_answer(
    tcp: &mut TcpStream,
    t0: Instant,
    mut sink: impl FnMut(&[u8]),
) -> Result<Answer, String> {
    let head = read_head(tcp, MAX_HEAD.min(CHUNK), "answer").await?;
    let length = match head.header("content-length") {
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| format!("Content-Length '{v}'"))?,
        ),
        None => None,
    };
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let (status, reason, rest_len) = (head.status, head.reason, head.rest_len);
    let mut buf = head.rest;
    buf.resize(CHUNK.max(buf.len()), 0);
    let head_after = t0.elapsed();
    if chunked {
        return Err(format!(
            "{status} {reason}: a chunked body, which this tool does not read"
        ));
    }
    let ok = (200..300).contains(&status);
    let mut small = Vec::new();
    let mut got = 0u64;
    let mut take = |piece: &[u8]| {
        if ok {
            sink(piece);
        }
        if small.len() < MAX_SMALL_BODY {
            let room = MAX_SMALL_BODY - small.len();
            small.extend_from_slice(&piece[..piece.len().min(room)]);
        }
    };
    let first = &buf[..rest_len];
    let first = &first[..first
        .len()
        .min(length.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)))];
    got += first.len() as u64;
    take(first);
    while length.is_none_or(|l| got < l) {
        let want = length.map_or(CHUNK, |l| {
            usize::try_from(l - got).unwrap_or(CHUNK).min(CHUNK)
        });
        let n = tcp
            .read(&mut buf[..want])
            .await
            .map_err(|e| format!("reading the body after {got} bytes: {e}"))?;
        if n == 0 {
            if let Some(l) = length {
                return Err(format!("the body ended after {got} of {l} bytes"));
            }
            break;
        }
        got += n as u64;
        take(&buf[..n]);
    }
    Ok(Answer {
        status,
        reason,
        body_bytes: got,
        body_start: String::from_utf8_lossy(&small).chars().take(300).collect(),
        elapsed: t0.elapsed(),
        head_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn urls_connect_to_loopback_only() {
        let u = Url::parse(
            "http://upload.localhost:5280/upload/abc/f.bin?v=1&s=x",
            LO,
            None,
        )
        .expect("valid");
        assert_eq!(u.host, "upload.localhost:5280");
        assert_eq!(u.target, "/upload/abc/f.bin?v=1&s=x");
        assert_eq!(u.connect, "127.0.0.1:5280".parse().unwrap());
        let u = Url::parse("http://[::1]/f", LO, Some(7)).expect("valid");
        assert_eq!(u.connect, "[::1]:7".parse().unwrap());
        assert_eq!(u.target, "/f");
        let u = Url::parse("http://localhost?x", LO, None).expect("valid");
        assert_eq!((u.target.as_str(), u.connect.port()), ("/?x", 80));
        assert!(Url::parse("http://10.0.0.1/f", LO, None).is_err());
        assert!(Url::parse("https://localhost/f", LO, None).is_err());
        assert!(Url::parse("ftp://localhost/f", LO, None).is_err());
        assert!(Url::parse("http://u@localhost/f", LO, None).is_err());
    }

    /// A PUT streamed from a generator and a GET read in pieces, against a
    /// tiny server that echoes the PUT's body on the GET.
    #[test]
    fn put_then_get_round_trip() {
        smol::block_on(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let server = smol::spawn(async move {
                let mut stored = Vec::new();
                for _ in 0..2 {
                    let (mut s, _) = listener.accept().await.expect("accept");
                    let mut got = Vec::new();
                    let mut buf = [0u8; 8192];
                    let head_end = loop {
                        let n = s.read(&mut buf).await.expect("read");
                        got.extend_from_slice(&buf[..n]);
                        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
                    if head.starts_with("PUT /up?x=1 HTTP/1.1\r\n") {
                        assert!(head.contains("\r\nAuthorization: Bearer t\r\n"), "{head}");
                        assert!(head.contains("\r\nHost: h:1\r\n"), "{head}");
                        let mut body = got[head_end..].to_vec();
                        while body.len() < 100_000 {
                            let n = s.read(&mut buf).await.expect("read");
                            assert!(n > 0);
                            body.extend_from_slice(&buf[..n]);
                        }
                        stored = body;
                        s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                            .await
                            .expect("write");
                    } else {
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                            stored.len()
                        );
                        s.write_all(answer.as_bytes()).await.expect("write");
                        s.write_all(&stored).await.expect("write");
                    }
                }
            });
            let url = Url {
                host: "h:1".into(),
                target: "/up?x=1".into(),
                connect: addr,
            };
            let mut next = 0u8;
            let put = put(
                &url,
                &[("Authorization".into(), "Bearer t".into())],
                100_000,
                |buf| {
                    for b in buf.iter_mut() {
                        *b = next;
                        next = next.wrapping_add(1);
                    }
                    buf.len()
                },
                Duration::from_secs(10),
            )
            .await
            .expect("put");
            assert_eq!(put.status, 201);
            let mut expect = 0u8;
            let mut seen = 0;
            let get = get(
                &url,
                |piece| {
                    for &b in piece {
                        assert_eq!(b, expect);
                        expect = expect.wrapping_add(1);
                    }
                    seen += piece.len();
                },
                Duration::from_secs(10),
            )
            .await
            .expect("get");
            assert_eq!((get.status, get.body_bytes, seen), (200, 100_000, 100_000));
            server.await;
        });
    }
}
