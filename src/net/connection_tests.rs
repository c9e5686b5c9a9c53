//! The connection's write timeout and what a slow client is told.

use std::io::Read;
use std::net::{TcpListener, TcpStream as StdTcpStream};
use std::thread;

use smol::Async;

use super::*;

/// A connected pair: the server's end as a [`Transport`], the peer's as a
/// blocking socket.
fn pair() -> (Transport, StdTcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
    let addr = listener.local_addr().expect("its address");
    let peer = StdTcpStream::connect(addr).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    let server = Async::new(server).expect("a non-blocking socket");
    (Transport::Plain(server), peer)
}

#[test]
fn a_write_the_peer_does_not_read_times_out() {
    let (mut transport, _peer) = pair();
    // More than the socket buffers of both ends hold.
    let bytes = vec![b'x'; 32 << 20];
    let stall = Duration::from_millis(300);
    let result = smol::block_on(write_progressing(&mut transport, &bytes, stall));
    let error = result.expect_err("a peer that never reads stalls the write");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    assert!(error.to_string().contains("write_timeout_secs"), "{error}");
}

/// A peer that keeps reading, slowly, is not cut off even though the whole
/// write takes longer than the stall limit (it once was: the limit bounded
/// the whole write, not each wait).
#[test]
fn a_slow_but_steady_reader_is_not_timed_out() {
    let (mut transport, mut peer) = pair();
    let total = 16 << 20;
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 128 << 10];
        let mut got = 0;
        while got < total {
            thread::sleep(Duration::from_millis(20));
            match peer.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        got
    });
    let bytes = vec![b'x'; total];
    let stall = crate::testing::scaled(Duration::from_secs(1));
    let started = Instant::now();
    smol::block_on(write_progressing(&mut transport, &bytes, stall))
        .expect("a reader that keeps reading is written to");
    drop(transport);
    assert_eq!(reader.join().expect("the reader"), total);
    // Only meaningful if the write as a whole outlasted one stall.
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "the write took only {:?}",
        started.elapsed()
    );
}

#[test]
fn a_slow_stanza_is_told_the_limit_it_broke() {
    assert_eq!(
        slow_stanza_text(true, 30, 100),
        "a stanza must arrive whole within 30 s ([c2s] stanza_timeout_secs)"
    );
    assert_eq!(
        slow_stanza_text(false, 30, 100),
        "a stanza must arrive at 100 bytes/s at least ([c2s] stanza_min_bytes_per_sec)"
    );
}
