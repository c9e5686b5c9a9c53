//! Hostile input on the HTTP listener (the "bad input" list):
//! what a remote party may send to the HTTP/1.1, WebSocket and BOSH code,
//! each case with the answer it must get (a status, a stream error, a
//! BOSH terminal condition, or the connection closed in time), and after
//! each a check that the server still serves everyone else: a fresh TCP
//! XMPP login and an HTTP `GET /` ([`assert_healthy`]).
//!
//! `[http] request_timeout_secs` is 5 here (its minimum), so the cases
//! that wait for it take about that long. Path traversal in uploads is
//! tested with the upload endpoint.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::bosh::*;
use common::http::*;
use common::websocket::WsClient;
use common::*;
use perch::testing::{TestOptions, TestServer, scaled};
use soketto::base::OpCode;

const ALICE: (&str, &str) = ("alice", "alice-secret");
/// Who checks the server's health after each case.
const CAROL: (&str, &str) = ("carol", "carol-secret");
/// `[http] request_timeout_secs` of these servers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

fn server() -> TestServer {
    TestServer::start(TestOptions {
        accounts: [ALICE, CAROL]
            .iter()
            .map(|(user, password)| (format!("{user}@localhost"), password.to_string()))
            .collect(),
        // TEST_CONFIG ends in its [c2s] table.
        extra_config: format!(
            "[http]\nrequest_timeout_secs = {}\n",
            REQUEST_TIMEOUT.as_secs()
        ),
        ..TestOptions::default()
    })
    .expect("the test server starts")
}

fn http(server: &TestServer) -> SocketAddr {
    server
        .http_addr()
        .expect("the test server has an HTTP listener")
}

/// How long a case may take to be closed by the request timeout: the
/// timeout and a margin for a slow machine.
fn timeout_limit() -> Duration {
    REQUEST_TIMEOUT + scaled(Duration::from_secs(5))
}

/// The server still works for others: a new TCP client logs in and is
/// answered, and a new HTTP connection gets the status page. `after`
/// names the case for the failure message.
fn assert_healthy(server: &TestServer, after: &str) {
    static ROUND: AtomicU32 = AtomicU32::new(0);
    let n = ROUND.fetch_add(1, Ordering::Relaxed);
    let mut carol = Client::connect(server.c2s_addr());
    if let Err(e) = carol.try_login("localhost", CAROL, Some(&format!("health{n}"))) {
        panic!("after {after}: a TCP login fails: {e}");
    }
    let pong = carol.ping("health");
    assert_eq!(pong.attr("type"), Some("result"), "after {after}: {pong}");
    carol.disconnect();
    let page = http_get(http(server), "/");
    assert_eq!(page.status, 200, "after {after}: GET / gave {page}");
}

/// Expects `conn` to be answered with `status` and closed.
fn expect_refused(conn: &mut HttpConn, status: u16, case: &str) {
    match conn.closed_within(timeout()) {
        Ending::Closed(bytes) => {
            let response = parse_response(&bytes).unwrap_or_else(|| {
                panic!(
                    "{case}: closed without a response (got {:?})",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_eq!(response.status, status, "{case}: {response}");
            assert!(
                response.closes(),
                "{case}: no Connection: close: {response}"
            );
        }
        Ending::Open(bytes) => panic!(
            "{case}: still open after {:?}; got {:?}",
            timeout(),
            String::from_utf8_lossy(&bytes)
        ),
    }
}

// ---------------------------------------------------------------------------
// Request heads.

/// A head past `[http] max_head_bytes` (16 KiB by default) is refused
/// with 431 as soon as the limit is reached, not read to its end.
#[test]
fn a_100_kib_head_gets_431_and_is_closed() {
    let server = server();
    let mut conn = HttpConn::connect(http(&server));
    let mut head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Filler: ".to_vec();
    head.resize(100 * 1024, b'a');
    // The server may close while this is still being written.
    let _ = conn.try_send(&head);
    expect_refused(&mut conn, 431, "a 100 KiB head");
    assert_healthy(&server, "a 100 KiB head");
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host` is a 400.
#[test]
fn http11_without_host_gets_400() {
    let server = server();
    let mut conn = HttpConn::connect(http(&server));
    conn.send(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n");
    expect_refused(&mut conn, 400, "no Host");
    assert_healthy(&server, "no Host");
}

/// RFC 9112 §6.3: a `Content-Length` that is not a number, or two that
/// differ, make the message length unknowable: 400 and close (guessing
/// would allow request smuggling).
#[test]
fn bad_content_lengths_get_400() {
    let server = server();
    for (case, lengths) in [
        ("Content-Length: -1", &["-1"][..]),
        ("Content-Length: 1e3", &["1e3"][..]),
        ("two different Content-Lengths", &["5", "6"][..]),
        ("an empty Content-Length", &[""][..]),
        ("Content-Length: 0x10", &["0x10"][..]),
    ] {
        let mut conn = HttpConn::connect(http(&server));
        let mut request = "POST /http-bind HTTP/1.1\r\nHost: localhost\r\n".to_string();
        for length in lengths {
            request.push_str(&format!("Content-Length: {length}\r\n"));
        }
        request.push_str("\r\n<body/>");
        conn.send(request.as_bytes());
        expect_refused(&mut conn, 400, case);
        assert_healthy(&server, case);
    }
}

/// A slow-loris client sends its head one byte a second: it is closed
/// when the request timeout runs out (with a 408 or without a word), not
/// kept as long as it trickles.
#[test]
fn a_head_sent_one_byte_a_second_is_closed_within_the_request_timeout() {
    let server = server();
    let mut conn = HttpConn::connect(http(&server));
    let started = Instant::now();
    let head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut ending = Ending::Open(Vec::new());
    for byte in head.iter() {
        if conn.try_send(&[*byte]).is_err() {
            ending = conn.closed_within(timeout());
            break;
        }
        ending = conn.closed_within(Duration::from_secs(1));
        if matches!(ending, Ending::Closed(_)) || started.elapsed() > timeout_limit() {
            break;
        }
    }
    let took = started.elapsed();
    let Ending::Closed(bytes) = ending else {
        panic!("a trickled head still open after {took:?}");
    };
    assert!(
        took <= timeout_limit() + Duration::from_secs(1),
        "a trickled head closed only after {took:?}"
    );
    assert!(
        took >= REQUEST_TIMEOUT - Duration::from_millis(500),
        "closed after {took:?}, before the request timeout"
    );
    if !bytes.is_empty() {
        let response = parse_response(&bytes)
            .unwrap_or_else(|| panic!("not a response: {:?}", String::from_utf8_lossy(&bytes)));
        assert_eq!(response.status, 408, "{response}");
    }
    assert_healthy(&server, "a slow-loris head");
}

// ---------------------------------------------------------------------------
// Request bodies.

/// BOSH takes only bodies of a known length (XEP-0124 clients all send
/// one): a chunked request is refused with 411 at once.
#[test]
fn a_chunked_bosh_request_gets_411() {
    let server = server();
    let mut conn = HttpConn::connect(http(&server));
    conn.send(
        b"POST /http-bind HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
          7\r\n<body/>\r\n0\r\n\r\n",
    );
    expect_refused(&mut conn, 411, "a chunked BOSH request");
    assert_healthy(&server, "a chunked BOSH request");
}

/// A chunked body that never ends must not hold its connection past the
/// request timeout, on any endpoint: the server answers without reading
/// it and closes (the body would otherwise be taken for the next
/// request), or gives up on it in time.
#[test]
fn a_chunked_body_that_never_ends_is_closed_in_time() {
    let server = server();
    for (case, request) in [
        (
            "POST /http-bind",
            "POST /http-bind HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
             ffff\r\n<body xmlns='http://jabber.org/protocol/httpbind'",
        ),
        (
            "GET /",
            "GET / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\nabc",
        ),
        (
            "POST /upload/x",
            "POST /upload/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\nabc",
        ),
    ] {
        let mut conn = HttpConn::connect(http(&server));
        let started = Instant::now();
        conn.send(request.as_bytes());
        let ending = conn.closed_within(timeout_limit());
        let Ending::Closed(bytes) = ending else {
            panic!(
                "{case}: an endless chunked body held the connection past {:?}",
                timeout_limit()
            );
        };
        if let Some(response) = parse_response(&bytes) {
            assert!(
                response.status >= 400 || response.closes(),
                "{case}: answered {response} and kept the body's connection"
            );
        }
        assert!(started.elapsed() <= timeout_limit() + Duration::from_secs(1));
        assert_healthy(&server, case);
    }
}

/// A body shorter than its `Content-Length` stalls its request: the
/// server waits for the rest up to the request timeout, then closes.
#[test]
fn a_body_shorter_than_its_content_length_is_closed_after_the_request_timeout() {
    let server = server();
    let mut conn = HttpConn::connect(http(&server));
    let partial = format!("<body xmlns='{NS_HTTPBIND}' rid='1' to='localhost'");
    let request = format!(
        "POST /http-bind HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n\
         Content-Length: 400\r\n\r\n{partial}"
    );
    let started = Instant::now();
    conn.send(request.as_bytes());
    let ending = conn.closed_within(timeout_limit());
    let took = started.elapsed();
    let Ending::Closed(bytes) = ending else {
        panic!("a short body held the connection past {took:?}");
    };
    // It waited for the rest of the body, as long as the timeout.
    assert!(
        took >= REQUEST_TIMEOUT - Duration::from_millis(500),
        "closed after {took:?}, before the request timeout"
    );
    // Nothing was processed: no BOSH session answer.
    if let Some(response) = parse_response(&bytes) {
        assert!(
            matches!(response.status, 400 | 408),
            "an incomplete body was answered {response}"
        );
    }
    assert_healthy(&server, "a body shorter than its Content-Length");
}

// ---------------------------------------------------------------------------
// WebSocket frames.

/// A frame header announcing 100 MB, far over `[limits]
/// max_stanza_bytes`, is refused on its header: a `policy-violation`
/// stream error in a text frame, `<close/>`, and the connection ends.
/// Only a kilobyte follows the header, so a server that waited for the
/// announced payload would fail the test by timing out. (The close frame
/// that should come before the end is checked by
/// [`a_refused_frame_header_is_followed_by_a_close_frame`].)
#[test]
fn a_websocket_frame_announcing_100_mb_is_refused_without_reading_it() {
    let server = server();
    let mut ws = WsClient::connect(http(&server));
    ws.open();
    let (_, mut bytes) = ws.frame_header(OpCode::Text, true, 100_000_000);
    bytes.extend_from_slice(&[b'x'; 1024]);
    ws.send_raw(&bytes);
    ws.expect_stream_error_element(&["policy-violation"]);
    ws.expect_close_element();
    assert!(
        ws.closed_within(timeout()),
        "the WebSocket stays open after the stream error"
    );
    assert_healthy(&server, "a 100 MB WebSocket frame");
}

/// RFC 6455 §7.1.7: an endpoint that fails a WebSocket connection after
/// it is established SHOULD send a close frame first, as Perch does after
/// a binary frame. A frame header it refuses (too large, or unmasked,
/// RFC 6455 §5.1) must get one too, after the stream error and
/// `<close/>`.
#[test]
fn a_refused_frame_header_is_followed_by_a_close_frame() {
    let server = server();
    let mut ws = WsClient::connect(http(&server));
    ws.open();
    let (_, bytes) = ws.frame_header(OpCode::Text, true, 100_000_000);
    ws.send_raw(&bytes);
    ws.expect_stream_error(&["policy-violation"]);

    let mut ws = WsClient::connect(http(&server));
    ws.open();
    // A text frame `<a/>` without the mask bit.
    ws.send_raw(&[0x81, 0x04, b'<', b'a', b'/', b'>']);
    ws.expect_stream_error(&["policy-violation"]);
    assert_healthy(&server, "refused frame headers");
}

/// RFC 7395 §3.3.3 uses text frames only: a binary frame ends the stream
/// with a stream error (Perch says `policy-violation`; `not-well-formed`
/// would be as right, the XML never reaching the parser).
#[test]
fn a_binary_websocket_frame_is_a_stream_error() {
    let server = server();
    let mut ws = WsClient::connect(http(&server));
    ws.open();
    ws.send_frame(OpCode::Binary, b"<presence/>");
    ws.expect_stream_error(&["policy-violation", "not-well-formed"]);
    assert_healthy(&server, "a binary WebSocket frame");
}

/// RFC 7395 §3.3.3: each text frame holds whole elements; one that ends
/// inside a stanza ends the stream with a stream error.
#[test]
fn a_websocket_text_frame_with_half_a_stanza_is_a_stream_error() {
    let server = server();
    let mut ws = WsClient::connect(http(&server));
    ws.login(ALICE, "half");
    ws.send("<message to='carol@localhost' type='chat'><body>half of");
    ws.expect_stream_error(&["policy-violation", "not-well-formed"]);
    assert_healthy(&server, "half a stanza in a WebSocket frame");
}

// ---------------------------------------------------------------------------
// BOSH bodies.

/// XEP-0124 §14.2 and §17.2: a rid far out of the window ends the
/// session with `item-not-found`; a sid nobody was given gets the same.
#[test]
fn bosh_rid_out_of_window_and_unknown_sid_get_item_not_found() {
    let server = server();
    let (session, _) = BoshClient::create(http(&server), 5);
    let forged = format!(
        "<body xmlns='{NS_HTTPBIND}' rid='{}' sid='ffffffffffffffffffffffffffffffff'/>",
        session.rid
    );
    assert_terminate(
        &parse_body(&post_bosh(http(&server), &forged)),
        "item-not-found",
    );
    let far = session.body_xml(session.rid + 1_000_000, "", "");
    assert_terminate(
        &parse_body(&post_bosh(http(&server), &far)),
        "item-not-found",
    );
    // The session is over: its next rid gets the same.
    let next = session.body_xml(session.rid, "", "");
    assert_terminate(
        &parse_body(&post_bosh(http(&server), &next)),
        "item-not-found",
    );
    assert_healthy(&server, "BOSH rids out of the window");
}

/// A BOSH request that is not a `<body/>` document is a 400 with the
/// `bad-request` terminal condition (XEP-0124 §17.2), for each kind of
/// breakage; none creates a session.
#[test]
fn bosh_bodies_that_are_not_xml_get_400() {
    let server = server();
    let cases: [(&str, Vec<u8>); 7] = [
        ("plain text", b"this is not XML".to_vec()),
        (
            "a truncated body",
            format!("<body xmlns='{NS_HTTPBIND}' rid='1' to='localhost'").into_bytes(),
        ),
        (
            "another root",
            b"<iq xmlns='jabber:client' type='get'/>".to_vec(),
        ),
        (
            "a non-numeric rid",
            format!("<body xmlns='{NS_HTTPBIND}' rid='one' to='localhost'/>").into_bytes(),
        ),
        (
            "a DTD",
            format!(
                "<!DOCTYPE body [<!ENTITY a 'aaaa'>]><body xmlns='{NS_HTTPBIND}' rid='1' to='localhost'>&a;</body>"
            )
            .into_bytes(),
        ),
        (
            "invalid UTF-8",
            [
                format!("<body xmlns='{NS_HTTPBIND}' rid='1' to='localhost'>").as_bytes(),
                &[0xff, 0xfe][..],
                b"</body>",
            ]
            .concat(),
        ),
        (
            "a NUL character",
            format!("<body xmlns='{NS_HTTPBIND}' rid='1' to='\0localhost'/>").into_bytes(),
        ),
    ];
    for (case, bytes) in cases {
        let response = http_request(
            http(&server),
            "POST",
            BOSH_PATH,
            &["Content-Type: text/xml; charset=utf-8", "Connection: close"],
            &bytes,
        );
        assert_eq!(response.status, 400, "{case}: {response}");
        let body = perch::xml::Element::parse(&response.text())
            .unwrap_or_else(|e| panic!("{case}: {e}: {response}"));
        assert!(body.is("body", NS_HTTPBIND), "{case}: {response}");
        assert_terminate(&body, "bad-request");
    }
    assert_healthy(&server, "BOSH bodies that are not XML");
}

// ---------------------------------------------------------------------------
// Connections.

/// 200 connections that never send a request (as a careless or hostile
/// client, or a reverse proxy's idle pool, keeps) must not stop a new
/// client from the same address: while they are all open, a WebSocket
/// login, a `GET /` and a TCP XMPP login work. (127.0.0.1 is a trusted
/// proxy by default, so the HTTP connections are not limited per
/// address.)
#[test]
fn idle_http_connections_do_not_stop_a_new_client() {
    let server = server();
    let idle: Vec<HttpConn> = (0..200).map(|_| HttpConn::connect(http(&server))).collect();
    let started = Instant::now();
    let mut ws = WsClient::connect(http(&server));
    ws.login(ALICE, "among-idle");
    let page = http_get(http(&server), "/");
    assert_eq!(page.status, 200, "{page}");
    let mut carol = Client::connect(server.c2s_addr());
    if let Err(e) = carol.try_login("localhost", CAROL, Some("among-idle")) {
        panic!("with 200 idle HTTP connections open, a TCP login fails: {e}");
    }
    // The point is that they were still open meanwhile (the server
    // closes them after the request timeout).
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "too slow to tell: {:?}",
        started.elapsed()
    );
    drop(idle);
    assert_healthy(&server, "200 idle HTTP connections");
}

/// The same from a client address that is not a trusted proxy: its
/// connections count against `[limits] max_connections_per_ip` (32 by
/// default), so most of 200 are refused, and other addresses are served.
#[test]
fn idle_http_connections_from_one_address_do_not_stop_another() {
    let server = server();
    let crowded = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 77));
    let idle: Vec<std::net::TcpStream> = (0..200)
        .map(|_| tcp_connect_from(http(&server), crowded))
        .collect();
    let mut carol = Client::connect(server.c2s_addr());
    if let Err(e) = carol.try_login("localhost", CAROL, Some("elsewhere")) {
        panic!("with 200 idle HTTP connections from {crowded}, a TCP login fails: {e}");
    }
    let mut ws = WsClient::connect(http(&server));
    ws.login(ALICE, "elsewhere");
    drop(idle);
    assert_healthy(&server, "200 idle HTTP connections from one address");
}

/// HTTP/1.1 keep-alive: two requests (and a third, a BOSH POST) on one
/// connection, each answered in turn.
#[test]
fn keep_alive_carries_several_requests() {
    let server = server();
    let mut conn = HttpConn::connect(http(&server));
    let first = conn.get("/");
    assert_eq!(first.status, 200, "{first}");
    assert!(!first.closes(), "a keep-alive request was closed: {first}");
    let second = conn.get("/.well-known/host-meta");
    assert_eq!(second.status, 200, "{second}");
    assert!(
        second.text().contains("urn:xmpp:alt-connections:websocket"),
        "{second}"
    );
    let bosh =
        format!("<body xmlns='{NS_HTTPBIND}' rid='1' sid='00000000000000000000000000000000'/>");
    let third = conn.request(
        "POST",
        "/http-bind",
        &["Content-Type: text/xml; charset=utf-8"],
        bosh.as_bytes(),
    );
    assert_terminate(&parse_body(&third), "item-not-found");
    let fourth = conn.get("/.well-known/host-meta.json");
    assert_eq!(fourth.status, 200, "{fourth}");
    assert!(fourth.text().contains("xbosh"), "{fourth}");
    assert_healthy(&server, "keep-alive");
}

/// RFC 9110 §9.3.2: `HEAD /` is answered like `GET /` without a body:
/// the same `Content-Length`, no bytes after the head (a second request
/// on the connection is answered cleanly, which it would not be behind
/// stray body bytes).
#[test]
fn head_of_the_status_page_has_no_body() {
    let server = server();
    let page = http_get(http(&server), "/");
    assert_eq!(page.status, 200, "{page}");
    let mut conn = HttpConn::connect(http(&server));
    let head = conn.request("HEAD", "/", &[], b"");
    assert_eq!(head.status, 200, "{head}");
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(page.body.len().to_string().as_str()),
        "{head}"
    );
    let next = conn.get("/");
    assert_eq!(next.status, 200, "{next}");
    assert_eq!(next.body, page.body);
    // And nothing else is waiting on the connection.
    conn.send_request("GET", "/", &["Connection: close"], b"");
    let last = conn.response();
    assert_eq!(last.status, 200);
    conn.expect_closed();
    assert_healthy(&server, "HEAD /");
}
