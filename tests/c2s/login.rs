//! PLAIN and resource binding, STARTTLS and direct TLS with SCRAM (with and
//! without channel binding), and failed logins.

use super::*;

// ---------------------------------------------------------------------------
// 1. PLAIN and resource binding.

#[test]
fn plain_login_over_plaintext_binds_the_requested_resource() {
    let server = server();
    let mut client = Client::connect(server.c2s_addr());
    let features = client.open();
    assert!(
        features.get_child("starttls", NS_TLS).is_some(),
        "STARTTLS must be offered: {features}"
    );
    assert!(
        mechanisms(&features).iter().any(|m| m == "PLAIN"),
        "the test configuration allows PLAIN without TLS: {features}"
    );
    assert_eq!(
        client.auth_plain(ALICE.0, ALICE.1),
        Sasl::Success(Vec::new())
    );
    let features = client.restart();
    assert!(features.get_child("bind", NS_BIND).is_some(), "{features}");
    assert!(
        features.get_child("mechanisms", NS_SASL).is_none(),
        "no SASL after authentication: {features}"
    );
    assert_eq!(client.bind(Some("balcony")), "alice@localhost/balcony");
}

#[test]
fn bind_without_resource_gets_a_server_generated_one() {
    let server = server();
    let client = login(&server, ALICE, None);
    let resource = client
        .jid
        .strip_prefix("alice@localhost/")
        .unwrap_or_else(|| panic!("bound JID {:?} is not alice's", client.jid));
    assert!(!resource.is_empty(), "empty generated resource");
}

// ---------------------------------------------------------------------------
// 2. TLS and SCRAM.

#[test]
fn starttls_then_scram_sha_256_verifies_the_server() {
    let server = server();
    let mut client = opened(&server);
    let features = client.starttls(TLS13);
    scram_login(
        &mut client,
        &features,
        scram(ScramHash::Sha256, ALICE, None),
    );
}

#[test]
fn starttls_scram_sha_256_plus_binds_to_tls_exporter() {
    let server = server();
    let mut client = opened(&server);
    let features = client.starttls(TLS13);
    assert_eq!(client.tls_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(
        channel_binding_types(&features),
        ["tls-exporter"],
        "{features}"
    );
    let cb = client.channel_binding();
    scram_login(
        &mut client,
        &features,
        scram(ScramHash::Sha256, ALICE, Some(cb)),
    );
}

#[test]
fn direct_tls_scram_sha_256_plus_binds_to_tls_exporter() {
    let server = server();
    let addr = server.c2s_tls_addr().expect("a direct TLS listener");
    let mut client = Client::connect_tls(addr, TLS13);
    assert_eq!(client.tls_version(), Some(ProtocolVersion::TLSv1_3));
    let features = client.open();
    assert!(
        features.get_child("starttls", NS_TLS).is_none(),
        "no STARTTLS on a TLS stream: {features}"
    );
    assert_eq!(
        channel_binding_types(&features),
        ["tls-exporter"],
        "{features}"
    );
    let cb = client.channel_binding();
    scram_login(
        &mut client,
        &features,
        scram(ScramHash::Sha256, ALICE, Some(cb)),
    );
}

#[test]
fn scram_sha_1_verifies_the_server() {
    let server = server();
    let mut client = opened(&server);
    let features = client.starttls(TLS13);
    scram_login(&mut client, &features, scram(ScramHash::Sha1, ALICE, None));
}

#[test]
fn scram_sha_1_plus_over_direct_tls() {
    let server = server();
    let addr = server.c2s_tls_addr().expect("a direct TLS listener");
    let mut client = Client::connect_tls(addr, TLS13);
    let features = client.open();
    let cb = client.channel_binding();
    scram_login(
        &mut client,
        &features,
        scram(ScramHash::Sha1, ALICE, Some(cb)),
    );
}

#[test]
fn scram_plus_with_wrong_channel_binding_is_not_authorized() {
    let server = server();
    let addr = server.c2s_tls_addr().expect("a direct TLS listener");
    let mut client = Client::connect_tls(addr, TLS13);
    client.open();
    let mut real = client.channel_binding();
    real.data.iter_mut().for_each(|b| *b ^= 0x5a);
    let mut scram = scram(ScramHash::Sha256, ALICE, Some(real));
    match client.auth_scram(&mut scram) {
        (_, Sasl::Failure { condition, .. }) => assert_eq!(condition, "not-authorized"),
        other => panic!("a forged channel binding was accepted: {other:?}"),
    }
}

/// Sends a SCRAM-SHA-256 client-first message with the gs2 flag `y`
/// ("I support channel binding but think you do not") and returns the
/// server's answer.
fn scram_with_y_flag(client: &mut Client) -> Element {
    let first = base64::encode(b"y,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL");
    client.iq(&format!(
        "<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>"
    ))
}

#[test]
fn scram_y_flag_is_refused_when_plus_was_offered() {
    let server = server();
    let addr = server.c2s_tls_addr().expect("a direct TLS listener");
    let mut client = Client::connect_tls(addr, TLS13);
    let features = client.open();
    assert!(
        mechanisms(&features)
            .iter()
            .any(|m| m == "SCRAM-SHA-256-PLUS"),
        "{features}"
    );
    // RFC 5802 §6: the client did not see -PLUS, so someone stripped it.
    let answer = scram_with_y_flag(&mut client);
    assert!(
        answer.is("failure", NS_SASL),
        "a downgraded SCRAM exchange must fail: {answer}"
    );
    assert_eq!(failure_condition(&answer), "not-authorized", "{answer}");
}

#[test]
fn scram_y_flag_is_accepted_when_plus_was_not_offered() {
    let server = server();
    let addr = server.c2s_tls_addr().expect("a direct TLS listener");
    let mut client = Client::connect_tls(addr, TLS12);
    client.open();
    let answer = scram_with_y_flag(&mut client);
    assert!(answer.is("challenge", NS_SASL), "{answer}");
    let abort = client.iq(&format!("<abort xmlns='{NS_SASL}'/>"));
    assert!(abort.is("failure", NS_SASL), "{abort}");
    assert_eq!(failure_condition(&abort), "aborted", "{abort}");
}

#[test]
fn mechanism_not_offered_is_invalid_mechanism() {
    let server = server();
    let mut client = opened(&server);
    let first = base64::encode(b"p=tls-exporter,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL");
    let answer = client.iq(&format!(
        "<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256-PLUS'>{first}</auth>"
    ));
    assert!(answer.is("failure", NS_SASL), "{answer}");
    assert_eq!(failure_condition(&answer), "invalid-mechanism", "{answer}");
}

#[test]
fn plaintext_sent_after_starttls_is_not_read_into_the_tls_stream() {
    let server = server();
    let mut client = opened(&server);
    // An attacker on the path appends a stream and a login to the client's
    // <starttls/> (CVE-2011-1431 style); none of it may count once TLS is up.
    client.send(&format!(
        "<starttls xmlns='{NS_TLS}'/><?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' \
         xmlns:stream='{NS_STREAM}' to='localhost' version='1.0'>\
         <auth xmlns='{NS_SASL}' mechanism='PLAIN'>{}</auth>",
        base64::encode(format!("\0{}\0{}", ALICE.0, ALICE.1).as_bytes())
    ));
    let proceed = client.element();
    assert!(proceed.is("proceed", NS_TLS), "{proceed}");
    let tcp = match std::mem::replace(&mut client.io, Transport::Upgrading) {
        Transport::Plain(tcp) => tcp,
        _ => panic!("the stream was not plaintext"),
    };
    client.io = Transport::Tls(Box::new(tls_handshake(tcp, TLS13, &[])));
    let features = client.restart();
    assert!(
        features.get_child("mechanisms", NS_SASL).is_some()
            && features.get_child("bind", NS_BIND).is_none(),
        "the stream after STARTTLS must start unauthenticated: {features}"
    );
}

fn assert_no_plus(features: &Element) {
    let offered = mechanisms(features);
    assert!(
        offered.iter().any(|m| m == "SCRAM-SHA-256") && offered.iter().any(|m| m == "SCRAM-SHA-1"),
        "SCRAM must be offered over TLS 1.2: {features}"
    );
    assert!(
        !offered.iter().any(|m| m.ends_with("-PLUS")),
        "-PLUS needs tls-exporter, which TLS 1.2 here cannot give: {features}"
    );
    assert!(
        channel_binding_types(features).is_empty(),
        "no channel binding types over TLS 1.2: {features}"
    );
}

#[test]
fn plus_is_not_offered_over_tls_1_2_starttls() {
    let server = server();
    let mut client = opened(&server);
    let features = client.starttls(TLS12);
    assert_eq!(client.tls_version(), Some(ProtocolVersion::TLSv1_2));
    assert_no_plus(&features);
    scram_login(
        &mut client,
        &features,
        scram(ScramHash::Sha256, ALICE, None),
    );
}

#[test]
fn plus_is_not_offered_over_tls_1_2_direct_tls() {
    let server = server();
    let addr = server.c2s_tls_addr().expect("a direct TLS listener");
    let mut client = Client::connect_tls(addr, TLS12);
    assert_eq!(client.tls_version(), Some(ProtocolVersion::TLSv1_2));
    let features = client.open();
    assert_no_plus(&features);
}

// ---------------------------------------------------------------------------
// 3. Failed logins.

/// Sends a wrong PLAIN password; returns the failure.
fn failed_plain(client: &mut Client, user: &str) -> Sasl {
    client.auth_plain(user, "not-the-password")
}

#[test]
fn wrong_password_fails_and_the_stream_stays_usable() {
    let server = server();
    let mut client = opened(&server);
    for attempt in 1..=3 {
        match failed_plain(&mut client, ALICE.0) {
            Sasl::Failure { condition, .. } => {
                assert_eq!(condition, "not-authorized", "attempt {attempt}")
            }
            other => panic!("attempt {attempt}: a wrong password was accepted: {other:?}"),
        }
    }
    assert_eq!(
        client.auth_plain(ALICE.0, ALICE.1),
        Sasl::Success(Vec::new())
    );
    client.restart();
    assert_eq!(client.bind(Some("late")), "alice@localhost/late");
}

#[test]
fn unknown_user_gets_the_same_failure_as_a_wrong_password() {
    let server = server();
    let mut client = opened(&server);
    let wrong_password = failed_plain(&mut client, ALICE.0);
    let unknown_user = failed_plain(&mut client, "mallory");
    assert!(
        matches!(&wrong_password, Sasl::Failure { condition, .. } if condition == "not-authorized"),
        "{wrong_password:?}"
    );
    assert_eq!(
        unknown_user, wrong_password,
        "failures must not tell users apart"
    );
}

fn server_first_field<'a>(server_first: &'a [u8], name: &str) -> &'a str {
    std::str::from_utf8(server_first)
        .expect("server-first is UTF-8")
        .split(',')
        .find_map(|f| f.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in the server-first message"))
}

#[test]
fn scram_unknown_user_is_challenged_like_a_real_one() {
    let server = server();
    let mut client = opened(&server);
    let attempt = |client: &mut Client, user: &str| {
        let mut scram = scram(ScramHash::Sha256, (user, "not-the-password"), None);
        match client.auth_scram(&mut scram) {
            (Some(server_first), Sasl::Failure { condition, xml }) => {
                assert_eq!(condition, "not-authorized", "{user}");
                (server_first, xml)
            }
            other => panic!("{user}: expected a challenge, then not-authorized; got {other:?}"),
        }
    };
    let (real, real_failure) = attempt(&mut client, ALICE.0);
    let (fake, fake_failure) = attempt(&mut client, "mallory");
    let (fake_again, _) = attempt(&mut client, "mallory");
    assert_eq!(fake_failure, real_failure);
    assert_eq!(
        server_first_field(&fake, "i="),
        server_first_field(&real, "i="),
        "the iteration count must not give unknown users away"
    );
    assert_eq!(
        server_first_field(&fake, "s="),
        server_first_field(&fake_again, "s="),
        "an unknown user's salt must be as stable as a real user's"
    );
}

#[test]
fn too_many_failed_logins_close_the_stream_with_policy_violation() {
    let server = server();
    let mut client = opened(&server);
    for attempt in 1..=MAX_AUTH_FAILURES {
        match failed_plain(&mut client, ALICE.0) {
            Sasl::Failure { condition, .. } => {
                assert_eq!(condition, "not-authorized", "attempt {attempt}")
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    client.expect_stream_error("policy-violation");
}

#[test]
fn a_pipelined_stream_header_and_bind_are_answered_in_order() {
    // A client that sends its new stream header and the bind request in
    // one write, right after <success/>, must read the header and the
    // features before the bind result.
    let server = server();
    let mut client = Client::connect(server.c2s_addr());
    client.open();
    assert_eq!(
        client.auth_plain(ALICE.0, ALICE.1),
        Sasl::Success(Vec::new())
    );
    client.framer = client_framer();
    client.send(&format!(
        "<stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAM}' to='localhost' version='1.0'>\
         <iq type='set' id='pipelined'><bind xmlns='{NS_BIND}'><resource>fast</resource></bind></iq>"
    ));
    client.header();
    let features = client.element();
    assert!(features.is("features", NS_STREAM), "{features}");
    let bound = client.element();
    assert_eq!(bound.attr("id"), Some("pipelined"), "{bound}");
    assert_eq!(bound.attr("type"), Some("result"), "{bound}");
}
