use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::Async;

use super::*;
use crate::net::transport::Transport;

/// A link on one end of a loopback connection, the other end blocking.
fn pair() -> (WebSocketLink<Transport>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let server = Async::new(server).unwrap();
    (
        WebSocketLink::new(Transport::Plain(server), false, 10_000),
        client,
    )
}

fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut codec = Codec::new();
    let mut header = Header::new(opcode);
    header.set_fin(fin);
    header.set_masked(true);
    header.set_mask(0x1234_5678);
    header.set_payload_len(payload.len());
    let mut out = codec.encode_header(&header).to_vec();
    let mut data = payload.to_vec();
    Codec::apply_mask(&header, &mut data);
    out.extend_from_slice(&data);
    out
}

/// Reads one server frame (unmasked) from the blocking end.
fn server_frame(client: &mut TcpStream) -> (OpCode, Vec<u8>) {
    let codec = Codec::new();
    let mut buf = Vec::new();
    loop {
        if let Ok(Parsing::Done { value, offset }) = codec.decode_header(&buf) {
            let end = offset + value.payload_len();
            if buf.len() >= end {
                assert!(!value.is_masked(), "server frames are not masked");
                return (value.opcode(), buf[offset..end].to_vec());
            }
        }
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte).unwrap();
        buf.push(byte[0]);
    }
}

async fn read_some(link: &mut WebSocketLink<Transport>) -> io::Result<String> {
    let mut buf = [0u8; 1024];
    let n = link.read(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn open_and_stanzas_become_the_c2s_stream() {
    let (mut link, mut client) = pair();
    client
        .write_all(&client_frame(
            OpCode::Text,
            true,
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
        ))
        .unwrap();
    // A stanza split over two fragments.
    client
        .write_all(&client_frame(OpCode::Text, false, b"<message to='a@b'><bo"))
        .unwrap();
    client
        .write_all(&client_frame(
            OpCode::Continue,
            true,
            b"dy>hi</body></message>",
        ))
        .unwrap();
    smol::block_on(async {
        // Every whole frame buffered comes out in one read, as a burst of
        // stanzas does over TCP.
        let mut input = String::new();
        while !input.ends_with("</message>") {
            input.push_str(&read_some(&mut link).await.unwrap());
        }
        let (header, stanza) = input.split_at(input.find("<message").unwrap());
        assert!(header.starts_with("<stream:stream"), "{header}");
        assert!(header.contains("to='localhost'"), "{header}");
        assert_eq!(stanza, "<message to='a@b'><body>hi</body></message>");
    });
}

#[test]
fn output_is_one_frame_per_element() {
    let (mut link, mut client) = pair();
    smol::block_on(async {
        link.write_all(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0' xml:lang='en'><stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>")
            .await
            .unwrap();
        link.write_all(b"<message from='a@b' to='c@d'><body>x</body></message> ")
            .await
            .unwrap();
        link.flush().await.unwrap();
    });
    let (op, open) = server_frame(&mut client);
    assert_eq!(op, OpCode::Text);
    let open = String::from_utf8(open).unwrap();
    assert!(
        open.starts_with("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'"),
        "{open}"
    );
    let (_, features) = server_frame(&mut client);
    let features = String::from_utf8(features).unwrap();
    assert!(
        features.starts_with("<stream:features xmlns:stream='http://etherx.jabber.org/streams'"),
        "{features}"
    );
    let (_, message) = server_frame(&mut client);
    assert_eq!(
        String::from_utf8(message).unwrap(),
        "<message xmlns='jabber:client' from='a@b' to='c@d'><body>x</body></message>"
    );
    // The keepalive space became a ping.
    let (op, _) = server_frame(&mut client);
    assert_eq!(op, OpCode::Ping);
}

#[test]
fn pings_are_answered_and_close_is_echoed() {
    let (mut link, mut client) = pair();
    client
        .write_all(&client_frame(OpCode::Ping, true, b"hey"))
        .unwrap();
    client
        .write_all(&client_frame(OpCode::Close, true, &1000u16.to_be_bytes()))
        .unwrap();
    smol::block_on(async {
        assert_eq!(read_some(&mut link).await.unwrap(), "");
        link.flush().await.unwrap();
    });
    assert_eq!(server_frame(&mut client), (OpCode::Pong, b"hey".to_vec()));
    assert_eq!(
        server_frame(&mut client),
        (OpCode::Close, 1000u16.to_be_bytes().to_vec())
    );
}

fn violation_of(result: io::Result<String>) -> String {
    let e = result.unwrap_err();
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<FramingViolation>())
        .map(|v| v.to_string())
        .unwrap_or_else(|| panic!("not a framing violation: {e}"))
}

#[test]
fn binary_frames_half_stanzas_and_huge_frames_are_violations() {
    let (mut link, mut client) = pair();
    client
        .write_all(&client_frame(OpCode::Binary, true, b"<x/>"))
        .unwrap();
    let text = smol::block_on(async { violation_of(read_some(&mut link).await) });
    assert!(text.contains("binary"), "{text}");

    let (mut link, mut client) = pair();
    client
        .write_all(&client_frame(OpCode::Text, true, b"<message><body>"))
        .unwrap();
    let text = smol::block_on(async { violation_of(read_some(&mut link).await) });
    assert!(text.contains("text frame"), "{text}");

    // A header announcing 100 MB is refused before any payload is read.
    let (mut link, mut client) = pair();
    let mut header = Header::new(OpCode::Text);
    header.set_fin(true);
    header.set_masked(true);
    header.set_payload_len(100 << 20);
    let mut codec = Codec::new();
    client.write_all(codec.encode_header(&header)).unwrap();
    let text = smol::block_on(async { violation_of(read_some(&mut link).await) });
    assert!(text.contains("payload too large"), "{text}");

    // Unmasked client frames break RFC 6455.
    let (mut link, mut client) = pair();
    let mut header = Header::new(OpCode::Text);
    header.set_fin(true);
    header.set_payload_len(4);
    let mut frame = codec.encode_header(&header).to_vec();
    frame.extend_from_slice(b"<a/>");
    client.write_all(&frame).unwrap();
    let text = smol::block_on(async { violation_of(read_some(&mut link).await) });
    assert!(text.contains("masked"), "{text}");
}

#[test]
fn idle_links_hold_no_buffers() {
    let (mut link, mut client) = pair();
    client
        .write_all(&client_frame(OpCode::Text, true, b"<presence/>"))
        .unwrap();
    smol::block_on(async {
        read_some(&mut link).await.unwrap();
        link.write_all(b"<presence/>").await.unwrap();
        link.flush().await.unwrap();
    });
    link.release_idle();
    assert_eq!(link.raw_in.capacity(), 0);
    assert_eq!(link.ready.capacity(), 0);
    assert_eq!(link.raw_out.capacity(), 0);
    assert_eq!(link.payload.capacity(), 0);
}
