//! HTTP File Upload (XEP-0363) end to end over real sockets: a slot asked
//! for over XMPP with the shared test client, then the PUT and the GETs
//! with the raw HTTP/1.1 client of `common::http`, against an in-process
//! server.
//!
//! The 100 MiB test streams both ways from a generator and measures the
//! server's memory as this process's resident set (the server runs in a
//! thread of it): every other test here takes [`shared`] and that one
//! takes [`alone`], so that nothing else runs meanwhile.

mod common;

use std::net::SocketAddr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::http::{HttpConn, HttpResponse, http_get, http_request};
use common::{Client, NS_DISCO_INFO, NS_DISCO_ITEMS, error_condition, login, timeout};
use perch::testing::{TestOptions, TestServer};
use perch::xml::Element;

const NS_UPLOAD: &str = "urn:xmpp:http:upload:0";
const NS_DATA: &str = "jabber:x:data";
const SERVICE: &str = "upload.localhost";

const ROMEO: (&str, &str) = ("romeo", "password");
const JULIET: (&str, &str) = ("juliet", "password");

static EXCLUSIVE: RwLock<()> = RwLock::new(());

/// Taken by every test but the one that measures memory.
fn shared() -> RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner())
}

/// Taken by the test that measures memory: no other test runs meanwhile.
fn alone() -> RwLockWriteGuard<'static, ()> {
    EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner())
}

fn server_with(extra_config: &str) -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![
            ("romeo@localhost".into(), "password".into()),
            ("juliet@localhost".into(), "password".into()),
        ],
        extra_config: extra_config.into(),
        ..TestOptions::default()
    })
    .expect("the test server should start")
}

fn http_addr(server: &TestServer) -> SocketAddr {
    server
        .http_addr()
        .expect("the test server should have an http listener")
}

/// Sends `xml` (an iq with id `id`) and returns the answer to it,
/// skipping anything else.
fn ask(client: &mut Client, id: &str, xml: &str) -> Element {
    client.send(xml);
    let id = id.to_string();
    client.element_matching(&format!("the answer to iq {id}"), move |el| {
        el.name == "iq" && el.attr("id") == Some(id.as_str())
    })
}

fn slot_request(id: &str, name: &str, size: u64, content_type: Option<&str>) -> String {
    let content_type = content_type
        .map(|t| format!(" content-type='{t}'"))
        .unwrap_or_default();
    format!(
        "<iq type='get' id='{id}' to='{SERVICE}'><request xmlns='{NS_UPLOAD}' \
         filename='{name}' size='{size}'{content_type}/></iq>"
    )
}

/// A slot as handed out, its URLs reduced to request targets on the test
/// server's http listener.
#[derive(Clone, Debug)]
struct Slot {
    /// `/upload/{id}/{name}?expires=…&sig=…`
    put: String,
    /// The `Authorization` header's value.
    authorization: String,
    /// `/upload/{id}/{name}`
    get: String,
    /// The file id.
    id: String,
    /// The file name segment, as in the URL.
    name: String,
    /// The full GET URL.
    get_url: String,
}

impl Slot {
    /// The `expires` of the PUT URL.
    fn expires(&self) -> u64 {
        let (_, query) = self.put.split_once('?').expect("a query");
        query
            .split('&')
            .find_map(|p| p.strip_prefix("expires="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no expires in {}", self.put))
    }

    /// The `sig` of the PUT URL.
    fn sig(&self) -> &str {
        let (_, query) = self.put.split_once('?').expect("a query");
        query
            .split('&')
            .find_map(|p| p.strip_prefix("sig="))
            .unwrap_or_else(|| panic!("no sig in {}", self.put))
    }

    fn bearer(&self) -> String {
        format!("Authorization: {}", self.authorization)
    }
}

/// Asks for a slot and parses the answer; panics if refused.
fn slot(
    client: &mut Client,
    http: SocketAddr,
    name: &str,
    size: u64,
    content_type: Option<&str>,
) -> Slot {
    let answer = ask(
        client,
        "slot",
        &slot_request("slot", name, size, content_type),
    );
    assert_eq!(answer.attr("type"), Some("result"), "{answer}");
    let slot = answer
        .get_child("slot", NS_UPLOAD)
        .unwrap_or_else(|| panic!("no <slot/>: {answer}"));
    let put = slot.get_child("put", NS_UPLOAD).expect("<put/>");
    let get = slot.get_child("get", NS_UPLOAD).expect("<get/>");
    let headers: Vec<&Element> = put
        .children()
        .filter(|c| c.is("header", NS_UPLOAD))
        .collect();
    assert_eq!(headers.len(), 1, "{answer}");
    assert_eq!(headers[0].attr("name"), Some("Authorization"), "{answer}");
    let authorization = headers[0].text();
    assert!(authorization.starts_with("Bearer "), "{answer}");
    let base = format!("http://localhost:{}", http.port());
    let target = |url: &str| {
        url.strip_prefix(&base)
            .unwrap_or_else(|| panic!("{url} is not on {base}"))
            .to_string()
    };
    let get_url = get.attr("url").expect("a GET url").to_string();
    let get_path = target(&get_url);
    let put_path = target(put.attr("url").expect("a PUT url"));
    assert!(
        put_path.starts_with(&format!("{get_path}?")),
        "PUT {put_path} is not GET {get_path} with a query"
    );
    let rest = get_path.strip_prefix("/upload/").expect("under /upload/");
    let (id, file) = rest.split_once('/').expect("{id}/{name}");
    assert_eq!(id.len(), 32, "{id}");
    Slot {
        put: put_path.clone(),
        authorization,
        id: id.to_string(),
        name: file.to_string(),
        get: get_path,
        get_url,
    }
}

/// PUT of `body` to the slot's URL with its header, on a new connection.
fn put(http: SocketAddr, slot: &Slot, content_type: &str, body: &[u8]) -> HttpResponse {
    let ct = format!("Content-Type: {content_type}");
    http_request(http, "PUT", &slot.put, &[&ct, &slot.bearer()], body)
}

fn assert_status(response: &HttpResponse, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: {response}");
}

/// Some bytes of length `n`, different for each `seed`.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// One header of `response`, which must be there.
fn header<'a>(response: &'a HttpResponse, name: &str) -> &'a str {
    response
        .header(name)
        .unwrap_or_else(|| panic!("no {name}: {response}"))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[test]
fn disco_info_has_the_feature_and_the_size_limit() {
    let _shared = shared();
    let server = server_with("[upload]\nmax_file_bytes = 123456\n");
    let mut c = login(&server, ROMEO, None);
    let items = ask(
        &mut c,
        "items",
        &format!("<iq type='get' id='items' to='localhost'><query xmlns='{NS_DISCO_ITEMS}'/></iq>"),
    );
    assert!(
        items
            .get_child("query", NS_DISCO_ITEMS)
            .is_some_and(|q| q.children().any(|i| i.attr("jid") == Some(SERVICE))),
        "the host's disco#items lacks {SERVICE}: {items}"
    );
    let info = ask(
        &mut c,
        "info",
        &format!("<iq type='get' id='info' to='{SERVICE}'><query xmlns='{NS_DISCO_INFO}'/></iq>"),
    );
    assert_eq!(info.attr("type"), Some("result"), "{info}");
    let query = info.get_child("query", NS_DISCO_INFO).expect("a query");
    assert!(
        query.children().any(|i| i.name == "identity"
            && i.attr("category") == Some("store")
            && i.attr("type") == Some("file")),
        "no store/file identity: {info}"
    );
    assert!(
        query
            .children()
            .any(|f| f.name == "feature" && f.attr("var") == Some(NS_UPLOAD)),
        "no {NS_UPLOAD} feature: {info}"
    );
    let form = query
        .children()
        .find(|x| {
            x.is("x", NS_DATA)
                && x.children().any(|f| {
                    f.attr("var") == Some("FORM_TYPE")
                        && f.get_child("value", NS_DATA).map(Element::text).as_deref()
                            == Some(NS_UPLOAD)
                })
        })
        .unwrap_or_else(|| panic!("no form of type {NS_UPLOAD}: {info}"));
    let max = form
        .children()
        .find(|f| f.attr("var") == Some("max-file-size"))
        .and_then(|f| f.get_child("value", NS_DATA))
        .map(Element::text);
    assert_eq!(max.as_deref(), Some("123456"), "{info}");
    server.stop();
}

#[test]
fn put_then_get_with_the_download_headers() {
    let _shared = shared();
    let server = server_with("");
    let http = http_addr(&server);
    let mut c = login(&server, ROMEO, None);
    let data = bytes(1000, 7);
    let png = slot(&mut c, http, "photo.png", 1000, Some("image/png"));
    assert_status(&put(http, &png, "image/png", &data), 201, "PUT");

    let got = http_get(http, &png.get);
    assert_status(&got, 200, "GET");
    assert!(got.body == data, "the body differs from what was uploaded");
    assert_eq!(header(&got, "content-type"), "image/png");
    assert_eq!(header(&got, "content-length"), "1000");
    let disposition = header(&got, "content-disposition");
    assert!(disposition.starts_with("inline;"), "{disposition}");
    assert!(
        disposition.contains("filename=\"photo.png\""),
        "{disposition}"
    );
    assert_eq!(header(&got, "x-content-type-options"), "nosniff");
    let csp = header(&got, "content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let cache = header(&got, "cache-control");
    assert!(cache.contains("max-age="), "{cache}");
    assert_eq!(header(&got, "access-control-allow-origin"), "*");

    // HEAD: the same headers, no body (the next response on the same
    // connection would not parse if one were sent).
    let mut conn = HttpConn::connect(http);
    let head = conn.request("HEAD", &png.get, &[], b"");
    assert_status(&head, 200, "HEAD");
    for name in [
        "content-type",
        "content-length",
        "content-disposition",
        "x-content-type-options",
        "content-security-policy",
        "cache-control",
        "access-control-allow-origin",
    ] {
        assert_eq!(head.header(name), got.header(name), "{name}: {head}");
    }
    let again = conn.get(&png.get);
    assert_status(&again, 200, "GET after HEAD on one connection");
    assert!(again.body == data);

    let options = http_request(
        http,
        "OPTIONS",
        &png.get,
        &[
            "Origin: https://web.example",
            "Access-Control-Request-Method: PUT",
        ],
        b"",
    );
    assert_status(&options, 204, "OPTIONS");
    assert_eq!(header(&options, "access-control-allow-origin"), "*");
    let methods = header(&options, "access-control-allow-methods");
    assert!(
        methods.contains("PUT") && methods.contains("GET"),
        "{methods}"
    );

    let part = http_request(http, "GET", &png.get, &["Range: bytes=10-19"], b"");
    assert_status(&part, 206, "Range 10-19");
    assert_eq!(header(&part, "content-range"), "bytes 10-19/1000");
    assert_eq!(header(&part, "content-length"), "10");
    assert_eq!(part.body, data[10..20]);
    let tail = http_request(http, "GET", &png.get, &["Range: bytes=-5"], b"");
    assert_status(&tail, 206, "Range -5");
    assert_eq!(header(&tail, "content-range"), "bytes 995-999/1000");
    assert_eq!(tail.body, data[995..]);
    let past = http_request(http, "GET", &png.get, &["Range: bytes=1000-"], b"");
    assert_status(&past, 416, "Range past the end");
    assert_eq!(header(&past, "content-range"), "bytes */1000");

    // What a browser could run is an attachment.
    for (name, content_type) in [("page.html", "text/html"), ("icon.svg", "image/svg+xml")] {
        let body = bytes(64, 1);
        let s = slot(&mut c, http, name, 64, Some(content_type));
        assert_status(&put(http, &s, content_type, &body), 201, name);
        let got = http_get(http, &s.get);
        assert_status(&got, 200, name);
        assert_eq!(header(&got, "content-type"), content_type);
        let disposition = header(&got, "content-disposition");
        assert!(
            disposition.starts_with("attachment;"),
            "{content_type}: {disposition}"
        );
        assert_eq!(header(&got, "x-content-type-options"), "nosniff");
        assert!(got.body == body);
    }
    server.stop();
}

/// The resident set of this process (the server is a thread of it).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Deterministic bytes that do not repeat within a file (xorshift64*).
struct Generator(u64);

impl Generator {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            let word = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// How much the resident set may grow while 100 MiB pass through: the
/// server copies in 64 KiB chunks, the test in 64 KiB chunks too; the
/// rest is allocator slack and the test process's own threads.
const RSS_GROWTH_LIMIT: u64 = 16 * MIB;

#[test]
fn a_100_mib_file_streams_both_ways() {
    let _alone = alone();
    const SIZE: u64 = 100 * MIB;
    let server = server_with(&format!("[upload]\nmax_file_bytes = {SIZE}\n"));
    let http = http_addr(&server);
    let mut c = login(&server, ROMEO, None);
    let s = slot(
        &mut c,
        http,
        "big.bin",
        SIZE,
        Some("application/octet-stream"),
    );
    // Warm up the connection paths once, so that the baseline includes
    // what any request allocates.
    assert_status(&http_get(http, "/"), 200, "status page");
    let before = rss_bytes();
    let mut peak = before;
    let sample_every = 16 * MIB;

    let mut conn = HttpConn::connect(http);
    let mut generator = Generator(0x9e37_79b9_7f4a_7c15);
    let mut sent = ring::digest::Context::new(&ring::digest::SHA256);
    let mut written = 0u64;
    let started = Instant::now();
    conn.try_send_streamed(
        "PUT",
        &s.put,
        &["Content-Type: application/octet-stream", &s.bearer()],
        SIZE,
        |buf| {
            generator.fill(buf);
            sent.update(buf);
            written += buf.len() as u64;
            if written % sample_every < buf.len() as u64 {
                peak = peak.max(rss_bytes());
            }
        },
    )
    .expect("streaming the PUT");
    // The server syncs the file before it answers.
    let answer = conn
        .try_response_within("PUT", perch::testing::scaled(Duration::from_secs(120)))
        .unwrap_or_else(|e| panic!("the PUT's answer: {e}"));
    let put_secs = started.elapsed().as_secs_f64();
    assert_status(&answer, 201, "PUT of 100 MiB");
    let sent = sent.finish();
    peak = peak.max(rss_bytes());

    let mut conn = HttpConn::connect(http);
    let started = Instant::now();
    conn.send_request("GET", &s.get, &[], b"");
    let head = conn.response_head();
    assert_status(&head, 200, "GET of 100 MiB");
    assert_eq!(header(&head, "content-length"), SIZE.to_string());
    let mut received = ring::digest::Context::new(&ring::digest::SHA256);
    let mut read = 0u64;
    conn.stream_body(SIZE, |piece| {
        received.update(piece);
        read += piece.len() as u64;
        if read % sample_every < piece.len() as u64 {
            peak = peak.max(rss_bytes());
        }
    })
    .unwrap_or_else(|e| panic!("the GET's body: {e}"));
    let get_secs = started.elapsed().as_secs_f64();
    let received = received.finish();
    let after = rss_bytes();
    peak = peak.max(after);
    assert_eq!(read, SIZE);
    assert_eq!(
        received.as_ref(),
        sent.as_ref(),
        "the downloaded file's SHA-256 differs from the uploaded one's"
    );
    let mb = SIZE as f64 / 1e6;
    println!(
        "100 MiB upload: PUT {:.1} MB/s ({put_secs:.2} s, including the server's fsync), \
         GET {:.1} MB/s ({get_secs:.2} s)",
        mb / put_secs,
        mb / get_secs
    );
    println!(
        "resident set: {} KiB before, {} KiB peak, {} KiB after (this whole test process)",
        before / 1024,
        peak / 1024,
        after / 1024
    );
    if before > 0 {
        assert!(
            peak.saturating_sub(before) <= RSS_GROWTH_LIMIT,
            "the process grew by {} KiB while 100 MiB passed through (limit {} KiB)",
            peak.saturating_sub(before) / 1024,
            RSS_GROWTH_LIMIT / 1024
        );
    } else {
        println!("no /proc/self/status VmRSS: memory not checked");
    }
    server.stop();
}

#[test]
fn put_urls_must_be_signed() {
    let _shared = shared();
    let server = server_with("");
    let http = http_addr(&server);
    let mut c = login(&server, ROMEO, None);
    let data = bytes(300, 3);
    let s = slot(&mut c, http, "note.txt", 300, Some("text/plain"));
    let ct = "Content-Type: text/plain";

    // One character of the signature flipped, no header.
    let sig = s.sig();
    let flipped_char = if sig.starts_with('0') { "1" } else { "0" };
    let flipped = s.put.replace(sig, &format!("{flipped_char}{}", &sig[1..]));
    assert_ne!(flipped, s.put);
    let r = http_request(http, "PUT", &flipped, &[ct], &data);
    assert_status(&r, 403, "a flipped signature");
    // Same, with a flipped bearer token as well.
    let bad_bearer = format!("Authorization: Bearer {flipped_char}{}", &sig[1..]);
    let r = http_request(http, "PUT", &flipped, &[ct, &bad_bearer], &data);
    assert_status(&r, 403, "a flipped signature and bearer token");
    // No signature at all.
    let r = http_request(http, "PUT", &s.get, &[ct], &data);
    assert_status(&r, 403, "no signature");
    let unsigned = format!("{}?expires={}", s.get, s.expires());
    let r = http_request(http, "PUT", &unsigned, &[ct], &data);
    assert_status(&r, 403, "an expiry without a signature");
    // A later expiry with the slot's signature.
    let later = s.put.replace(
        &format!("expires={}", s.expires()),
        &format!("expires={}", s.expires() + 3600),
    );
    let r = http_request(http, "PUT", &later, &[ct, &s.bearer()], &data);
    assert_status(&r, 403, "a forged expiry");
    // None of that stored anything.
    assert_status(&http_get(http, &s.get), 404, "GET before the upload");
    // The bearer token alone (with the URL's expiry) is enough.
    let r = http_request(http, "PUT", &unsigned, &[ct, &s.bearer()], &data);
    assert_status(&r, 201, "the bearer token and the expiry");
    let got = http_get(http, &s.get);
    assert_status(&got, 200, "GET");
    assert!(got.body == data);
    server.stop();
}

#[test]
fn an_expired_put_url_is_refused() {
    let _shared = shared();
    let server = server_with("[upload]\nslot_lifetime_secs = 10\n");
    let http = http_addr(&server);
    let mut c = login(&server, ROMEO, None);
    let s = slot(&mut c, http, "late.txt", 10, Some("text/plain"));
    let expires = s.expires();
    let lifetime = expires.saturating_sub(now_secs());
    assert!(lifetime <= 11, "the URL lives {lifetime} s, not 10");
    while now_secs() <= expires {
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = put(http, &s, "text/plain", &bytes(10, 0));
    assert_status(&r, 403, "an expired URL");
    assert!(r.text().contains("expired"), "{r}");
    assert_status(&http_get(http, &s.get), 404, "GET");
    server.stop();
}

#[test]
fn a_put_must_match_its_slot() {
    let _shared = shared();
    let server = server_with("");
    let http = http_addr(&server);
    let mut c = login(&server, ROMEO, None);
    let data = bytes(100, 9);
    let s = slot(&mut c, http, "exact.txt", 100, Some("text/plain"));

    let r = put(http, &s, "text/plain", &bytes(101, 9));
    assert_status(&r, 413, "a larger Content-Length");
    let r = put(http, &s, "text/plain", &data[..99]);
    assert_status(&r, 400, "a smaller Content-Length");
    let r = put(http, &s, "application/octet-stream", &data);
    assert_status(&r, 415, "another Content-Type");

    let mut chunked = format!(
        "PUT {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n{}\r\n\
         Transfer-Encoding: chunked\r\n\r\n64\r\n",
        s.put,
        s.bearer()
    )
    .into_bytes();
    chunked.extend_from_slice(&data);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut conn = HttpConn::connect(http);
    conn.send(&chunked);
    let r = conn.response_to("PUT");
    assert_status(&r, 411, "Transfer-Encoding: chunked");

    // No Content-Length at all.
    let mut conn = HttpConn::connect(http);
    let r = conn.request(
        "PUT",
        &s.put,
        &["Content-Type: text/plain", &s.bearer()],
        b"",
    );
    assert_status(&r, 411, "no Content-Length");

    assert_status(&http_get(http, &s.get), 404, "GET after refused PUTs");
    // The refusals did not use up the slot.
    assert_status(&put(http, &s, "text/plain", &data), 201, "the right PUT");
    let got = http_get(http, &s.get);
    assert_status(&got, 200, "GET");
    assert!(got.body == data);
    server.stop();
}

#[test]
fn a_second_put_is_a_conflict() {
    let _shared = shared();
    let server = server_with("");
    let http = http_addr(&server);
    let mut c = login(&server, ROMEO, None);
    let first = bytes(500, 1);
    let s = slot(&mut c, http, "once.png", 500, Some("image/png"));
    assert_status(&put(http, &s, "image/png", &first), 201, "first PUT");
    let r = put(http, &s, "image/png", &bytes(500, 2));
    assert_status(&r, 409, "second PUT");
    let got = http_get(http, &s.get);
    assert_status(&got, 200, "GET");
    assert!(got.body == first, "the second PUT changed the file");
    server.stop();
}

#[test]
fn paths_outside_a_slot_are_not_found() {
    let _shared = shared();
    let server = server_with("");
    let http = http_addr(&server);
    let data_dir = server.data_dir().expect("a data dir").to_path_buf();
    assert!(data_dir.join("perch.redb").exists(), "no database file");
    let mut c = login(&server, ROMEO, None);
    let data = bytes(200, 5);
    let s = slot(&mut c, http, "secret.png", 200, Some("image/png"));
    assert_status(&put(http, &s, "image/png", &data), 201, "PUT");
    let (id, name) = (s.id.as_str(), s.name.as_str());
    let mut unknown = id.to_string();
    let last = if id.ends_with('0') { "1" } else { "0" };
    unknown.replace_range(31.., last);
    let paths = [
        "/upload/../perch.redb".to_string(),
        "/upload/../../perch.redb".to_string(),
        "/upload/%2e%2e/x".to_string(),
        "/upload/%2e%2e/perch.redb".to_string(),
        "/upload/%2E%2E/%2E%2E/etc/passwd".to_string(),
        "/upload/perch.redb".to_string(),
        "/upload/".to_string(),
        "/perch.redb".to_string(),
        "/upload/upload/x".to_string(),
        format!("/upload/{id}/..%2fx"),
        format!("/upload/{id}/..%2f..%2fperch.redb"),
        format!("/upload/{id}/..%5c..%5cperch.redb"),
        format!("/upload/{id}/%2e%2e"),
        format!("/upload/{id}/.."),
        format!("/upload/{id}/."),
        format!("/upload/{id}%2f{name}"),
        format!("/upload/{id}%2F{name}"),
        format!("/upload/{id}"),
        format!("/upload/{id}/"),
        format!("/upload/{id}/{name}/"),
        format!("/upload/{id}/{name}/x"),
        format!("/upload/{id}//{name}"),
        format!("/upload/./{id}/{name}"),
        format!("/upload/{id}/wrong.png"),
        format!("/upload/{id}/{name}%00"),
        format!("/upload/{id}.part/{name}"),
        format!("/upload/{unknown}/{name}"),
        format!("/upload/{}/{name}", id.to_ascii_uppercase()),
        format!("/upload/{}/{name}", &id[..31]),
        format!("/upload/{id}0/{name}"),
        format!("/upload/..%2f{id}/{name}"),
    ];
    for path in &paths {
        for method in ["GET", "HEAD"] {
            let r = http_request(http, method, path, &[], b"");
            assert_eq!(r.status, 404, "{method} {path}: {r}");
            assert!(
                r.body.len() < 100,
                "{method} {path} served {} bytes",
                r.body.len()
            );
        }
        // A PUT with the slot's signature and header does not reach the
        // file either.
        let signed = format!("{path}?expires={}&sig={}", s.expires(), s.sig());
        let ct = "Content-Type: image/png";
        let r = http_request(http, "PUT", &signed, &[ct, &s.bearer()], &bytes(200, 6));
        assert_eq!(r.status, 404, "PUT {signed}: {r}");
    }
    // The real file is untouched, and the upload folder holds only it.
    let got = http_get(http, &s.get);
    assert_status(&got, 200, "GET");
    assert!(got.body == data);
    let listed: Vec<String> = std::fs::read_dir(data_dir.join("upload"))
        .expect("the upload folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(listed, [id.to_string()]);
    server.stop();
}

#[test]
fn a_file_is_shared_by_its_exact_url_only() {
    let _shared = shared();
    let server = server_with("");
    let http = http_addr(&server);
    let mut juliet = login(&server, JULIET, None);
    let data = bytes(4000, 11);
    let s = slot(&mut juliet, http, "balcony.jpg", 4000, Some("image/jpeg"));
    assert_status(&put(http, &s, "image/jpeg", &data), 201, "juliet's PUT");
    // Anyone with the URL: no account, no cookie, no header.
    let got = http_get(http, &s.get);
    assert_status(&got, 200, "GET by URL");
    assert!(got.body == data);
    assert!(s.get_url.ends_with("/balcony.jpg"), "{}", s.get_url);

    // Romeo's own slot does not open Juliet's file.
    let mut romeo = login(&server, ROMEO, None);
    let mine = slot(&mut romeo, http, "balcony.jpg", 4000, Some("image/jpeg"));
    assert_ne!(mine.id, s.id);
    let r = http_request(
        http,
        "PUT",
        &format!(
            "/upload/{}/{}?expires={}&sig={}",
            s.id,
            s.name,
            mine.expires(),
            mine.sig()
        ),
        &["Content-Type: image/jpeg", &mine.bearer()],
        &bytes(4000, 12),
    );
    assert_status(&r, 403, "romeo's signature on juliet's file");
    assert!(http_get(http, &s.get).body == data);

    // Guessed ids: one digit off, and made up.
    let mut off = s.id.clone();
    let digit = if off.ends_with('f') { "e" } else { "f" };
    off.replace_range(31.., digit);
    for id in [off.as_str(), "0123456789abcdef0123456789abcdef"] {
        let r = http_get(http, &format!("/upload/{id}/{}", s.name));
        assert_status(&r, 404, id);
    }
    server.stop();
}

#[test]
fn deleting_the_account_takes_its_files() {
    let _shared = shared();
    let server = server_with("");
    let http = http_addr(&server);
    let data_dir = server.data_dir().expect("a data dir").to_path_buf();
    let mut c = login(&server, ROMEO, None);
    let data = bytes(700, 4);
    let s = slot(&mut c, http, "gone.png", 700, Some("image/png"));
    assert_status(&put(http, &s, "image/png", &data), 201, "PUT");
    let file = data_dir.join("upload").join(&s.id);
    assert_eq!(std::fs::read(&file).expect("the stored file"), data);

    let deleted = perch::net::admin::request(
        &data_dir,
        &perch::admin::Command::UserDel {
            jid: "romeo@localhost".into(),
        },
    )
    .expect("delete")
    .expect("the server answered");
    assert_eq!(deleted, vec!["deleted romeo@localhost".to_string()]);
    assert_status(&http_get(http, &s.get), 404, "GET after the deletion");
    assert_status(
        &http_request(http, "HEAD", &s.get, &[], b""),
        404,
        "HEAD after the deletion",
    );
    drop(c);

    // The record is gone; the file goes with the sweep, which runs at
    // start-up (then hourly).
    let server = server
        .restart(TestOptions::default())
        .expect("the server should restart");
    let deadline = Instant::now() + timeout();
    while file.exists() {
        assert!(
            Instant::now() < deadline,
            "{} is still there {:?} after the restart's sweep",
            file.display(),
            timeout()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let http = http_addr(&server);
    assert_status(&http_get(http, &s.get), 404, "GET after the sweep");
    server.stop();
}

#[test]
fn slot_requests_refused_over_xmpp() {
    let _shared = shared();
    let server = server_with("[upload]\nmax_file_bytes = 1000\ndaily_quota_bytes = 1500\n");
    let http = http_addr(&server);
    let mut c = login(&server, ROMEO, None);

    let big = ask(
        &mut c,
        "big",
        &slot_request("big", "big.bin", 1001, Some("application/octet-stream")),
    );
    assert_eq!(big.attr("type"), Some("error"), "{big}");
    assert_eq!(error_condition(&big), "not-acceptable", "{big}");
    let error = big.children().find(|e| e.name == "error").expect("error");
    assert_eq!(error.attr("type"), Some("modify"), "{big}");
    let max = error
        .get_child("file-too-large", NS_UPLOAD)
        .and_then(|f| f.get_child("max-file-size", NS_UPLOAD))
        .map(Element::text);
    assert_eq!(max.as_deref(), Some("1000"), "{big}");

    for (id, request) in [
        ("zero", slot_request("zero", "a.bin", 0, None)),
        ("noname", slot_request("noname", "", 10, None)),
        ("slash", slot_request("slash", "a/b", 10, None)),
    ] {
        let r = ask(&mut c, id, &request);
        assert_eq!(error_condition(&r), "bad-request", "{r}");
    }

    // 1000 of the day's 1500 bytes, then 1000 more: over the quota.
    slot(&mut c, http, "first.bin", 1000, None);
    let over = ask(
        &mut c,
        "over",
        &slot_request("over", "second.bin", 1000, None),
    );
    assert_eq!(over.attr("type"), Some("error"), "{over}");
    assert_eq!(error_condition(&over), "resource-constraint", "{over}");
    let error = over.children().find(|e| e.name == "error").expect("error");
    assert_eq!(error.attr("type"), Some("wait"), "{over}");
    assert!(
        error
            .get_child("retry", NS_UPLOAD)
            .is_some_and(|r| r.attr("stamp").is_some()),
        "no <retry stamp=…/>: {over}"
    );
    // What is left of the quota still fits.
    slot(&mut c, http, "small.bin", 400, None);
    server.stop();
}

#[test]
fn a_refused_large_body_is_still_answered() {
    let _shared = shared();
    let server = server_with("");
    let http = http_addr(&server);
    let mut c = login(&server, ROMEO, None);
    let s = slot(
        &mut c,
        http,
        "small.bin",
        1000,
        Some("application/octet-stream"),
    );
    // A client that sends its body at once (no `Expect: 100-continue`, as
    // Conversations): the server answers without reading 4 MiB and
    // closes, so the write may fail; the answer must still be readable.
    let mut conn = HttpConn::connect(http);
    let sent = conn.try_send_streamed(
        "PUT",
        &s.put,
        &["Content-Type: application/octet-stream", &s.bearer()],
        4 * MIB,
        |b| b.fill(b'x'),
    );
    let r = conn
        .try_response_to("PUT")
        .unwrap_or_else(|e| panic!("no answer to a 4 MiB PUT (the write gave {sent:?}): {e}"));
    assert_status(&r, 413, "a 4 MiB body for a 1000-byte slot");
    server.stop();
}
