use super::*;

fn parse(text: &str) -> Result<Option<(RequestHead, usize)>, HeadError> {
    parse_head(text.as_bytes(), 16 * 1024)
}

fn head(text: &str) -> RequestHead {
    parse(text).unwrap().unwrap().0
}

#[test]
fn a_simple_get() {
    let text =
        "GET /upload/abc/x.png?v=1 HTTP/1.1\r\nHost: example.org\r\nX-Thing:  a b \r\n\r\nrest";
    let (h, len) = parse(text).unwrap().unwrap();
    assert_eq!(len, text.len() - 4);
    assert_eq!(h.method, Method::Get);
    assert_eq!(h.path, "/upload/abc/x.png");
    assert_eq!(h.query.as_deref(), Some("v=1"));
    assert_eq!(h.header("x-thing"), Some("a b"));
    assert_eq!(h.body, BodyLength::None);
    assert!(h.keep_alive);
}

#[test]
fn partial_heads_wait_until_the_limit() {
    assert!(parse("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "y".repeat(20_000));
    assert_eq!(parse(&big).unwrap_err(), HeadError::TooLarge);
    assert_eq!(parse(&big).unwrap_err().status(), 431);
}

#[test]
fn host_is_required_in_http_1_1_only() {
    assert_eq!(
        parse("GET / HTTP/1.1\r\n\r\n").unwrap_err(),
        HeadError::NoHost
    );
    assert_eq!(
        parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").unwrap_err(),
        HeadError::TwoHosts
    );
    let old = head("GET / HTTP/1.0\r\n\r\n");
    assert!(!old.keep_alive);
    let old = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(old.keep_alive);
}

#[test]
fn body_lengths() {
    let h = head("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
    assert_eq!(h.body, BodyLength::Exactly(42));
    let h = head("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(h.body, BodyLength::Chunked);
    for bad in ["-1", "1 2", "0x10", "", "99999999999999999999", "+5"] {
        let text = format!("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: {bad}\r\n\r\n");
        assert!(parse(&text).is_err(), "{bad:?} accepted");
    }
    let twice = "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
    assert_eq!(parse(twice).unwrap_err(), HeadError::BadContentLength);
    let both =
        "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(parse(both).unwrap_err(), HeadError::AmbiguousLength);
    let gzip = "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert_eq!(parse(gzip).unwrap_err().status(), 501);
}

#[test]
fn connection_tokens() {
    let h = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\n");
    assert!(h.header_has_token("connection", "upgrade"));
    let h = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(!h.keep_alive);
}

#[test]
fn garbage_and_too_many_headers() {
    assert!(matches!(
        parse("\x00\x01 nonsense\r\n\r\n"),
        Err(HeadError::Malformed(_))
    ));
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    let text = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    assert_eq!(parse(&text).unwrap_err(), HeadError::TooManyHeaders);
}

#[test]
fn segments_cannot_smuggle_separators() {
    assert_eq!(decode_segment("a%20b.png").as_deref(), Some("a b.png"));
    assert_eq!(decode_segment("caf%C3%A9").as_deref(), Some("café"));
    assert_eq!(decode_segment("%2e%2e").as_deref(), Some(".."));
    assert_eq!(decode_segment("a%2Fb"), None);
    assert_eq!(decode_segment("a%5cb"), None);
    assert_eq!(decode_segment("a%00"), None);
    assert_eq!(decode_segment("bad%zz"), None);
    assert_eq!(decode_segment("cut%2"), None);
    assert_eq!(decode_segment("%ff"), None);
}
