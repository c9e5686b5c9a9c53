//! Stream errors (RFC 6120 §4.9.3): what ends a stream, with which
//! condition.

use super::*;

// ---------------------------------------------------------------------------
// 4. Stream errors (RFC 6120 §4.9.3).

/// A bound client sends `bytes`; the stream must end with `condition`.
fn bound_client_sends(bytes: &[u8], condition: &str) {
    let server = server();
    let mut client = login(&server, ALICE, Some("errors"));
    client.send_bytes(bytes);
    client.expect_stream_error(condition);
}

/// An unauthenticated client sends `bytes` after its stream header.
fn fresh_client_sends(bytes: &[u8], condition: &str) {
    let server = server();
    let mut client = opened(&server);
    client.send_bytes(bytes);
    client.expect_stream_error(condition);
}

#[test]
fn malformed_xml_is_not_well_formed() {
    fresh_client_sends(
        b"<message to='bob@localhost'><body>hi</bdy></message>",
        "not-well-formed",
    );
}

#[test]
fn invalid_utf8_is_not_well_formed() {
    bound_client_sends(
        b"<message to='bob@localhost'><body>\xff\xfe\xc3</body></message>",
        "not-well-formed",
    );
}

#[test]
fn comment_is_restricted_xml() {
    bound_client_sends(b"<!-- hello -->", "restricted-xml");
}

#[test]
fn comment_inside_a_stanza_is_restricted_xml() {
    bound_client_sends(
        b"<message to='bob@localhost'><!-- hello --><body>hi</body></message>",
        "restricted-xml",
    );
}

#[test]
fn processing_instruction_is_restricted_xml() {
    bound_client_sends(b"<?evil instruction?>", "restricted-xml");
}

#[test]
fn dtd_is_restricted_xml() {
    bound_client_sends(b"<!DOCTYPE message [<!ENTITY x 'y'>]>", "restricted-xml");
}

#[test]
fn unknown_entity_is_restricted_xml() {
    bound_client_sends(
        b"<message to='bob@localhost'><body>&xxe;</body></message>",
        "restricted-xml",
    );
}

#[test]
fn oversized_stanza_is_a_policy_violation() {
    let server = server_with("[limits]\nmax_stanza_bytes = 10000\n");
    let mut client = login(&server, ALICE, Some("big"));
    // Just under the limit: accepted, and bounced as any message to an
    // unknown user is.
    let body = "x".repeat(9_000);
    client.send(&format!(
        "<message to='nobody@localhost' id='fits'><body>{body}</body></message>"
    ));
    let reply = client.element();
    assert_stanza_error(
        &reply,
        "message",
        Some("fits"),
        "service-unavailable",
        "cancel",
    );
    let body = "x".repeat(10_001);
    client.send(&format!(
        "<message to='nobody@localhost' id='too-big'><body>{body}</body></message>"
    ));
    client.expect_stream_error("policy-violation");
}

#[test]
fn header_to_unknown_host_is_host_unknown() {
    let server = server();
    let mut client = Client::connect(server.c2s_addr());
    client.send_header_to("example.net");
    client.header();
    client.expect_stream_error("host-unknown");
}

#[test]
fn header_without_version_is_unsupported_version() {
    let server = server();
    let mut client = Client::connect(server.c2s_addr());
    client.send(&format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' to='localhost'>"
    ));
    client.header();
    client.expect_stream_error("unsupported-version");
}

#[test]
fn wrong_default_namespace_is_invalid_namespace() {
    let server = server();
    let mut client = Client::connect(server.c2s_addr());
    client.send(&format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:wrong' xmlns:stream='{NS_STREAM}' to='localhost' version='1.0'>"
    ));
    client.header();
    client.expect_stream_error("invalid-namespace");
}

#[test]
fn wrong_stream_namespace_is_invalid_namespace() {
    let server = server();
    let mut client = Client::connect(server.c2s_addr());
    client.send(&format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='urn:wrong' to='localhost' version='1.0'>"
    ));
    client.header();
    client.expect_stream_error("invalid-namespace");
}

#[test]
fn message_before_authentication_is_not_authorized() {
    fresh_client_sends(
        b"<message to='bob@localhost'><body>hi</body></message>",
        "not-authorized",
    );
}

#[test]
fn message_before_bind_is_not_authorized() {
    let server = server();
    let mut client = opened(&server);
    assert_eq!(
        client.auth_plain(ALICE.0, ALICE.1),
        Sasl::Success(Vec::new())
    );
    client.restart();
    client.send("<message to='bob@localhost'><body>hi</body></message>");
    client.expect_stream_error("not-authorized");
}

#[test]
fn unknown_top_level_element_after_bind_is_unsupported_stanza_type() {
    bound_client_sends(b"<foo xmlns='jabber:client'/>", "unsupported-stanza-type");
}
