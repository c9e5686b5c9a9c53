//! Connections as the weapon: many silent ones, more than the limits
//! allow, a client that never reads what it is sent, one that writes a
//! stanza too slowly. The timeouts under test are set short in each
//! server's configuration, scaled for emulated runs.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;

/// A loopback address of its own (any of 127.0.0.0/8 works on Linux), so
/// that per-address counts start from zero.
fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Waits until a new connection from the default address is greeted
/// again (connections the server closes free their slots asynchronously).
fn wait_until_admitted(server: &TestServer) {
    let deadline = Instant::now() + timeout();
    loop {
        let mut client = Client::connect(server.c2s_addr());
        if client.try_open_to("localhost").is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no connection admitted within {:?}",
            timeout()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn many_silent_connections_are_closed_after_the_authentication_timeout() {
    let auth_timeout = scaled_secs(2);
    let server = server_with(
        &format!("auth_timeout_secs = {auth_timeout}\n[limits]\nmax_connections_per_ip = 250\n"),
        &[],
    );
    let started = Instant::now();
    let mut silent: Vec<Client> = (0..200)
        .map(|_| Client::connect(server.c2s_addr()))
        .collect();
    // Meanwhile everyone else logs in as usual.
    assert_healthy(&server, "opening 200 silent connections");
    let limit = Duration::from_secs(auth_timeout) + timeout();
    for (i, client) in silent.iter_mut().enumerate() {
        let left = limit.saturating_sub(started.elapsed());
        assert!(
            client.closed_within(left),
            "silent connection {i} still open after {:?}",
            started.elapsed()
        );
        let said = String::from_utf8_lossy(&client.received);
        assert!(
            said.contains("<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
            "silent connection {i} was closed with {said:?}"
        );
    }
    drop(silent);
    assert_healthy(&server, "200 silent connections timed out");
}

#[test]
fn connections_over_the_per_address_limit_are_refused() {
    let server = server_with(
        "auth_timeout_secs = 30\n[limits]\nmax_connections_per_ip = 4\n",
        &[],
    );
    let crowded = loopback(81);
    let addr = server.c2s_addr();
    let mut held: Vec<Client> = (0..4)
        .map(|_| Client::connect_from(addr, crowded))
        .collect();
    // Each of the four is admitted: it is greeted.
    for client in &mut held {
        client.open();
    }
    let mut refused = Client::connect_from(addr, crowded);
    assert!(
        refused.closed_within(timeout()),
        "a fifth connection from one address was admitted"
    );
    assert_eq!(
        refused.unparsed(),
        "",
        "the refused connection was sent something"
    );
    // Other addresses are not affected.
    assert_healthy(&server, "an address at its connection limit");
    drop(held);
}

#[test]
fn connections_over_the_server_limit_are_refused() {
    let server = server_with(
        "auth_timeout_secs = 30\n[limits]\nmax_connections = 6\n",
        &[],
    );
    let addr = server.c2s_addr();
    let mut held: Vec<Client> = (0..6)
        .map(|i| Client::connect_from(addr, loopback(90 + i)))
        .collect();
    for client in &mut held {
        client.open();
    }
    let mut refused = Client::connect_from(addr, loopback(100));
    assert!(
        refused.closed_within(timeout()),
        "a seventh connection was admitted"
    );
    // Once they leave, their slots are free again.
    drop(held);
    wait_until_admitted(&server);
    assert_healthy(&server, "a full server");
}

/// A client that never reads while Bob sends it far more than fits in the
/// sockets' buffers: Bob and everyone else go on, and the server drops the
/// client (its queue past its limit, its write making no progress for
/// `write_timeout_secs`) without its help.
#[test]
fn a_client_that_never_reads_is_dropped_without_stopping_others() {
    let write_timeout = scaled_secs(2);
    let server = server_with(&format!("write_timeout_secs = {write_timeout}\n"), &[]);
    let mut sloth = login(&server, ALICE, Some("sloth"));
    let mut bob = login(&server, BOB, Some("sender"));
    // 16 MB: more than the kernel buffers on both sides (a few MB each on
    // loopback) and the server's queue for one client (4 MiB) together.
    let body = "x".repeat(200_000);
    for i in 0..80 {
        bob.send(&format!(
            "<message to='alice@localhost/sloth' id='big{i}' type='chat'><body>{body}</body></message>"
        ));
    }
    assert_result(&bob.ping("sent"), "sent");
    assert_healthy(&server, "a client stopped reading");
    // The server ends the session: an iq to it is then answered with
    // service-unavailable instead of going nowhere.
    let Transport::Plain(tcp) = &bob.io else {
        panic!("a plaintext client")
    };
    tcp.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("a read timeout");
    let started = Instant::now();
    let limit = Duration::from_secs(write_timeout) + timeout();
    let mut probe = 0;
    let gone = 'probing: loop {
        assert!(
            started.elapsed() < limit,
            "the client that does not read was not dropped within {limit:?}"
        );
        probe += 1;
        bob.send(&format!(
            "<iq type='get' id='probe{probe}' to='alice@localhost/sloth'>\
             <ping xmlns='{NS_PING}'/></iq>"
        ));
        while let Ok(event) = bob.try_next_event() {
            if let Event::Element(el) = event
                && el.is("iq", NS_CLIENT)
                && el.attr("type") == Some("error")
            {
                break 'probing el;
            }
        }
    };
    assert_eq!(error_condition(&gone), "service-unavailable", "{gone}");
    // Its connection is closed: what the sockets held, then the end.
    if let Transport::Plain(tcp) = &sloth.io {
        tcp.set_read_timeout(Some(timeout()))
            .expect("a read timeout");
    }
    let (_, eof) = sloth.read_to_eof();
    assert!(
        eof,
        "the connection of the client that did not read is still open"
    );
    assert_healthy(&server, "a client that did not read was dropped");
}

/// A stanza trickled a byte every 250 ms, below `stanza_min_bytes_per_sec`
/// (100): the stream ends with policy-violation naming that limit, at
/// the latest when the stanza's time limit runs out.
#[test]
fn a_stanza_written_too_slowly_ends_the_stream() {
    let server = server_with(
        "stanza_timeout_secs = 6\nstanza_min_bytes_per_sec = 100\n",
        &[],
    );
    let mut sloth = login(&server, MALLORY, Some("trickle"));
    sloth.send("<message to='bob@localhost' type='chat'>");
    let rest = format!("<body>{}</body></message>", "slow ".repeat(40));
    let mut closed = false;
    for byte in rest.bytes() {
        if sloth.io.write_all(&[byte]).is_err() || sloth.closed_within(Duration::from_millis(250)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "the whole stanza was accepted at 4 bytes/s");
    let error = stream_error(&mut sloth, "a slow stanza");
    assert_eq!(stream_condition(&error), "policy-violation", "{error}");
    let text = error_text(&error);
    assert!(
        text.contains("100 bytes/s") && text.contains("stanza_min_bytes_per_sec"),
        "the text does not name the limit: {error}"
    );
    assert_healthy(&server, "a stanza written too slowly");
}
