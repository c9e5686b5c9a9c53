//! The `https` listener: TLS with the host's certificate and ALPN
//! `http/1.1`, the same endpoints as `http`, and discovery that names
//! `wss://` and `https://` URLs (the scheme the client used).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::tls::tls_handshake;
use perch::testing::{TestOptions, TestServer};

fn server() -> TestServer {
    TestServer::start(TestOptions {
        extra_config: "[[listener]]\nkind = \"https\"\naddress = \"127.0.0.1\"\nport = 0\n".into(),
        ..TestOptions::default()
    })
    .expect("server starts")
}

/// One request over a fresh TLS connection, read to the server's close.
fn fetch(server: &TestServer, path: &str) -> (Option<Vec<u8>>, String) {
    let addr = server.https_addr().expect("an https listener");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = tls_handshake(
        tcp,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        &[b"h2", b"http/1.1"],
    );
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    tls.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    // The server closes after its answer (close_notify, or a plain close).
    let _ = tls.read_to_end(&mut answer);
    let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
    (alpn, String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn https_serves_the_status_page_with_http_1_1_alpn() {
    let server = server();
    let (alpn, answer) = fetch(&server, "/");
    // h2 was offered first; Perch speaks HTTP/1.1 only.
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("<h1>localhost</h1>"), "{answer}");
}

#[test]
fn discovery_over_https_names_secure_urls() {
    let server = server();
    let (_, answer) = fetch(&server, "/.well-known/host-meta.json");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let port = server.https_addr().unwrap().port();
    assert!(
        answer.contains(&format!("\"wss://localhost:{port}/xmpp-websocket\"")),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("\"https://localhost:{port}/http-bind\"")),
        "{answer}"
    );
}
