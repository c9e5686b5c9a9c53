//! SASL2 (XEP-0388), Bind 2 (XEP-0386) and FAST (XEP-0484) against an
//! in-process server, with the shared test client: what the feature
//! offers, logins with everything inline, a resumption inline, tokens
//! issued, used, rotated and refused after rotation, and the refusals of
//! what was not offered.

mod common;

use common::sasl2::*;
use common::*;
use perch::sasl::ScramHash;
use perch::testing::{TestOptions, TestServer};
use perch::xml::Element;

const ALICE: (&str, &str) = ("alice", "alice-secret");

fn server() -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![("alice@localhost".to_string(), ALICE.1.to_string())],
        ..TestOptions::default()
    })
    .expect("the test server starts")
}

fn connect(server: &TestServer) -> (Client, Element) {
    let mut client = Client::connect(server.c2s_addr());
    let features = client.open();
    (client, features)
}

const BIND_ALL: &str = "<bind xmlns='urn:xmpp:bind:0'><tag>perch-test</tag>\
    <enable xmlns='urn:xmpp:carbons:2'/><inactive xmlns='urn:xmpp:csi:0'/>\
    <enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>";

#[test]
fn the_feature_offers_mechanisms_bind2_sm_and_fast() {
    let server = server();
    let (_client, features) = connect(&server);
    let auth = features
        .get_child("authentication", NS_SASL2)
        .unwrap_or_else(|| panic!("no SASL2 feature: {features}"));
    let mechanisms: Vec<String> = auth
        .children()
        .filter(|c| c.is("mechanism", NS_SASL2))
        .map(|c| c.text())
        .collect();
    assert_eq!(mechanisms, common::mechanisms(&features), "same as SASL1");
    let inline = auth.get_child("inline", NS_SASL2).expect("<inline/>");
    let bind = inline.get_child("bind", NS_BIND2).expect("Bind 2");
    let vars: Vec<&str> = bind
        .get_child("inline", NS_BIND2)
        .expect("Bind 2 features")
        .children()
        .filter_map(|f| f.attr("var"))
        .collect();
    assert_eq!(
        vars,
        ["urn:xmpp:carbons:2", "urn:xmpp:csi:0", "urn:xmpp:sm:3"]
    );
    assert!(inline.get_child("sm", NS_SM).is_some(), "{features}");
    let fast: Vec<String> = inline
        .get_child("fast", NS_FAST)
        .expect("FAST")
        .children()
        .map(|m| m.text())
        .collect();
    assert_eq!(fast, ["HT-SHA-256-NONE"], "no channel binding on plaintext");
}

#[test]
fn scram_login_binds_with_carbons_csi_and_sm_in_one_round_trip() {
    let server = server();
    let (mut client, _) = connect(&server);
    let mut first = scram(ScramHash::Sha256, ALICE, None);
    let inline = format!("{}{BIND_ALL}", user_agent(AGENT));
    let success = authenticate_scram(&mut client, &mut first, &inline);
    assert!(success.is("success", NS_SASL2), "{success}");
    let jid = child_text(&success, "authorization-identifier").expect("the JID");
    let resource = jid
        .strip_prefix("alice@localhost/perch-test/")
        .unwrap_or_else(|| panic!("tag/id resource expected, got {jid}"));
    assert_eq!(resource.len(), 8, "{jid}");
    assert!(!jid.contains(AGENT), "the user-agent id must not show");
    let enabled = success
        .get_child("bound", NS_BIND2)
        .and_then(|b| b.get_child("enabled", NS_SM))
        .unwrap_or_else(|| panic!("<enabled/> inside <bound/>: {success}"));
    assert!(
        enabled.attr("id").is_some_and(|id| !id.is_empty()),
        "{enabled}"
    );
    // No restart: the features of a bound stream follow, without bind.
    let features = client.element();
    assert!(features.is("features", NS_STREAM), "{features}");
    assert!(features.get_child("bind", NS_BIND).is_none(), "{features}");
    // The session works and counts for stream management.
    client.jid = jid.clone();
    let pong = client.ping("p1");
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
    client.send("<r xmlns='urn:xmpp:sm:3'/>");
    let ack = client.element_matching("an ack", |el| el.is("a", NS_SM));
    assert_eq!(ack.attr("h"), Some("1"), "{ack}");

    // The same client again gets the same resource, replacing the session.
    let (mut again, _) = connect(&server);
    let mut second = scram(ScramHash::Sha256, ALICE, None);
    let success = authenticate_scram(&mut again, &mut second, &inline);
    assert_eq!(
        child_text(&success, "authorization-identifier").as_deref(),
        Some(jid.as_str())
    );
    client.expect_stream_error("conflict");
}

#[test]
fn scram_carries_the_downgrade_protection_hash() {
    let server = server();
    let (mut client, features) = connect(&server);
    let offered: Vec<perch::sasl::Mechanism> = common::mechanisms(&features)
        .iter()
        .filter_map(|m| perch::sasl::Mechanism::from_name(m))
        .collect();
    let scram = scram(ScramHash::Sha256, ALICE, None);
    client.send(&format!(
        "<authenticate xmlns='{NS_SASL2}' mechanism='SCRAM-SHA-256'><initial-response>{}</initial-response></authenticate>",
        perch::sasl::base64::encode(&scram.first())
    ));
    let challenge = client.element();
    let server_first = perch::sasl::base64::decode(challenge.text().trim()).expect("base64");
    let server_first = String::from_utf8(server_first).expect("UTF-8");
    // XEP-0474: no channel binding type is advertised on plaintext.
    let h = perch::sasl::ssdp::hash(ScramHash::Sha256, &offered, &[]);
    assert!(
        server_first.ends_with(&format!(",h={h}")),
        "{server_first} lacks h={h}"
    );
}

#[test]
fn a_session_is_resumed_inline() {
    let server = server();
    let (mut client, _) = connect(&server);
    let inline = format!("{}{BIND_ALL}", user_agent(AGENT));
    let success = authenticate_scram(
        &mut client,
        &mut scram(ScramHash::Sha1, ALICE, None),
        &inline,
    );
    let jid = child_text(&success, "authorization-identifier").expect("the JID");
    let previd = success
        .get_child("bound", NS_BIND2)
        .and_then(|b| b.get_child("enabled", NS_SM))
        .and_then(|e| e.attr("id"))
        .expect("a resumption id")
        .to_string();
    client.element(); // features
    client.jid = jid.clone();
    client.ping("p1");
    client.cut();

    let (mut client, _) = connect(&server);
    let inline = format!(
        "{}<resume xmlns='urn:xmpp:sm:3' previd='{previd}' h='1'/>{BIND_ALL}",
        user_agent(AGENT)
    );
    let success = authenticate_scram(
        &mut client,
        &mut scram(ScramHash::Sha1, ALICE, None),
        &inline,
    );
    let resumed = success
        .get_child("resumed", NS_SM)
        .unwrap_or_else(|| panic!("<resumed/> in <success/>: {success}"));
    assert_eq!(resumed.attr("previd"), Some(previd.as_str()));
    assert_eq!(resumed.attr("h"), Some("1"), "the ping was handled");
    assert_eq!(
        child_text(&success, "authorization-identifier"),
        Some(jid.clone())
    );
    assert!(
        success.get_child("bound", NS_BIND2).is_none(),
        "Bind 2 skipped"
    );

    // A resumption id that is gone: the failure, and Bind 2 instead.
    let (mut other, _) = connect(&server);
    let inline = format!(
        "{}<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/>{BIND_ALL}",
        user_agent("00000000-0000-4000-8000-000000000001")
    );
    let success = authenticate_scram(
        &mut other,
        &mut scram(ScramHash::Sha1, ALICE, None),
        &inline,
    );
    assert!(success.get_child("failed", NS_SM).is_some(), "{success}");
    assert!(success.get_child("bound", NS_BIND2).is_some(), "{success}");
}

#[test]
fn fast_tokens_log_in_rotate_and_are_refused_after_rotation() {
    let server = server();
    let (mut client, _) = connect(&server);
    let inline = format!(
        "{}<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>",
        user_agent(AGENT)
    );
    let success = authenticate_scram(
        &mut client,
        &mut scram(ScramHash::Sha256, ALICE, None),
        &inline,
    );
    let first = token(&success).unwrap_or_else(|| panic!("a token: {success}"));
    let expiry = success
        .get_child("token", NS_FAST)
        .and_then(|t| t.attr("expiry"))
        .expect("an expiry");
    assert!(expiry.ends_with('Z') && expiry.len() == 20, "{expiry}");
    client.disconnect();

    // A FAST login, asking for the next token.
    let (mut client, _) = connect(&server);
    let request = "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>";
    let success = authenticate_fast(&mut client, ALICE.0, &first, request);
    assert!(success.is("success", NS_SASL2), "{success}");
    let second = token(&success).expect("a new token");
    assert_ne!(first, second);
    client.disconnect();

    // The first token works until the second one has been used.
    let (mut client, _) = connect(&server);
    let success = authenticate_fast(&mut client, ALICE.0, &first, "");
    assert!(success.is("success", NS_SASL2), "{success}");
    assert_eq!(token(&success), None, "not asked for, not due");
    client.disconnect();
    let (mut client, _) = connect(&server);
    let success = authenticate_fast(&mut client, ALICE.0, &second, "");
    assert!(success.is("success", NS_SASL2), "{success}");
    client.disconnect();
    // Replayed after rotation: refused.
    let (mut client, _) = connect(&server);
    let failure = authenticate_fast(&mut client, ALICE.0, &first, "");
    assert_eq!(sasl2_condition(&failure), "not-authorized", "{failure}");
    // Another client's id does not get the token either.
    let mut response = format!("{}\0", ALICE.0).into_bytes();
    response.extend_from_slice(&ht(&second, "Initiator"));
    client.send(&format!(
        "<authenticate xmlns='{NS_SASL2}' mechanism='HT-SHA-256-NONE'><initial-response>{}</initial-response>{}<fast xmlns='{NS_FAST}'/></authenticate>",
        perch::sasl::base64::encode(&response),
        user_agent("00000000-0000-4000-8000-000000000002"),
    ));
    let failure = client.element();
    assert_eq!(sasl2_condition(&failure), "not-authorized", "{failure}");
}

#[test]
fn what_was_not_offered_is_refused() {
    let server = server();
    let (mut client, _) = connect(&server);
    let cases = [
        (
            format!("<authenticate xmlns='{NS_SASL2}' mechanism='X-UNKNOWN'/>"),
            "invalid-mechanism",
        ),
        (
            format!(
                "<authenticate xmlns='{NS_SASL2}' mechanism='SCRAM-SHA-1'><unknown xmlns='urn:example:x'/></authenticate>"
            ),
            "malformed-request",
        ),
        (
            format!(
                "<authenticate xmlns='{NS_SASL2}' mechanism='SCRAM-SHA-1'>{}<request-token xmlns='{NS_FAST}' mechanism='HT-SHA-256-EXPR'/></authenticate>",
                user_agent(AGENT)
            ),
            "malformed-request",
        ),
        (
            format!(
                "<authenticate xmlns='{NS_SASL2}' mechanism='SCRAM-SHA-1'><bind xmlns='{NS_BIND2}'><enable xmlns='urn:xmpp:mam:2'/></bind></authenticate>"
            ),
            "malformed-request",
        ),
        (
            format!(
                "<authenticate xmlns='{NS_SASL2}' mechanism='SCRAM-SHA-1'><user-agent id='not-a-uuid'/></authenticate>"
            ),
            "malformed-request",
        ),
    ];
    assert_eq!(cases.len(), 5, "a stream tolerates five failures");
    for (request, condition) in &cases {
        client.send(request);
        let failure = client.element();
        assert_eq!(
            &sasl2_condition(&failure),
            condition,
            "{request} -> {failure}"
        );
        assert!(child_text(&failure, "text").is_some(), "{failure}");
    }
    // The fifth failure ended the stream, as with SASL1.
    client.expect_stream_error("policy-violation");
}

#[test]
fn wrong_fast_tokens_are_throttled_like_passwords() {
    let server = TestServer::start(TestOptions {
        accounts: vec![("alice@localhost".to_string(), ALICE.1.to_string())],
        extra_config: "[limits]\nlogin_attempts_per_minute = 2\nlogin_delay_cap_secs = 4\n\
                       login_account_delay_cap_secs = 2\n"
            .to_string(),
        ..TestOptions::default()
    })
    .expect("the test server starts");
    let mut conditions = Vec::new();
    for n in 0..8 {
        let (mut client, _) = connect(&server);
        let failure = authenticate_fast(&mut client, ALICE.0, &format!("{n:0>72}"), "");
        conditions.push(sasl2_condition(&failure));
        if conditions.last().map(String::as_str) == Some("temporary-auth-failure") {
            let text = child_text(&failure, "text").unwrap_or_default();
            assert!(text.contains("try again"), "{failure}");
            return;
        }
    }
    panic!("never throttled: {conditions:?}");
}

#[test]
fn a_password_change_drops_the_tokens() {
    let server = server();
    let (mut client, _) = connect(&server);
    let inline = format!(
        "{}<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>{BIND_ALL}",
        user_agent(AGENT)
    );
    let success = authenticate_scram(
        &mut client,
        &mut scram(ScramHash::Sha256, ALICE, None),
        &inline,
    );
    let token = token(&success).unwrap_or_else(|| panic!("a token: {success}"));
    client.jid = child_text(&success, "authorization-identifier").expect("the JID");
    client.element(); // features
    let changed = client.iq("<iq type='set' id='c1'><query xmlns='jabber:iq:register'>\
         <username>alice</username><password>new-secret</password></query></iq>");
    assert_eq!(changed.attr("type"), Some("result"), "{changed}");
    let (mut other, _) = connect(&server);
    let failure = authenticate_fast(&mut other, ALICE.0, &token, "");
    assert_eq!(sasl2_condition(&failure), "not-authorized", "{failure}");
}
