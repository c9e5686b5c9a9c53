use super::*;

fn el(xml: &str) -> Element {
    Element::parse(xml).expect("test XML parses")
}

const UA: &str = "D4565FA7-4D72-4749-B3D3-740EDBF87770";

#[test]
fn reads_everything_an_authenticate_may_carry() {
    let xml = format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'>\
         <initial-response>biwsbj11c2VyLHI9YWJj</initial-response>\
         <user-agent id='{UA}'><software>AwesomeXMPP</software><device>Kiva's Phone</device></user-agent>\
         <bind xmlns='urn:xmpp:bind:0'><tag>Awesome</tag></bind>\
         <resume xmlns='urn:xmpp:sm:3' previd='abc' h='7'/>\
         <request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>\
         </authenticate>"
    );
    let auth = parse_authenticate(&el(&xml)).expect("valid");
    assert_eq!(auth.mechanism, "SCRAM-SHA-256");
    assert_eq!(
        auth.initial_response.as_deref(),
        Some(&b"n,,n=user,r=abc"[..])
    );
    let ua = auth.user_agent.expect("user agent");
    assert_eq!(ua.id.as_deref(), Some(UA.to_ascii_lowercase().as_str()));
    assert_eq!(ua.software.as_deref(), Some("AwesomeXMPP"));
    assert_eq!(ua.device.as_deref(), Some("Kiva's Phone"));
    assert_eq!(
        auth.inline.bind.and_then(|b| b.tag).as_deref(),
        Some("Awesome")
    );
    assert_eq!(auth.inline.resume, Some(("abc".to_string(), 7)));
    assert_eq!(
        auth.inline.request_token.as_deref(),
        Some("HT-SHA-256-NONE")
    );
    // An empty initial response is empty data; none is `None`.
    let empty = parse_authenticate(&el(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response/></authenticate>",
    ))
    .expect("valid");
    assert_eq!(empty.initial_response, Some(Vec::new()));
    let none = parse_authenticate(&el(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'/>",
    ))
    .expect("valid");
    assert_eq!(none.initial_response, None);
    let fast = parse_authenticate(&el(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>\
         <fast xmlns='urn:xmpp:fast:0' count='3' invalidate='true'/></authenticate>",
    ))
    .expect("valid");
    assert_eq!(
        fast.inline.fast,
        Some(FastUse {
            count: Some(3),
            invalidate: true
        })
    );
}

#[test]
fn refuses_malformed_and_unoffered_requests_with_a_reason() {
    let cases = [
        (
            "<authenticate xmlns='urn:xmpp:sasl:2'/>",
            SaslFailure::MalformedRequest,
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>%%%</initial-response></authenticate>",
            SaslFailure::IncorrectEncoding,
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><user-agent id='12345'/></authenticate>",
            SaslFailure::MalformedRequest,
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><x xmlns='urn:example'/></authenticate>",
            SaslFailure::MalformedRequest,
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><enable xmlns='urn:xmpp:sm:3'/></authenticate>",
            SaslFailure::MalformedRequest,
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><resume xmlns='urn:xmpp:sm:3' previd='a' h='x'/></authenticate>",
            SaslFailure::MalformedRequest,
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><fast xmlns='urn:xmpp:fast:0' count='0'/></authenticate>",
            SaslFailure::MalformedRequest,
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response/><initial-response/></authenticate>",
            SaslFailure::MalformedRequest,
        ),
    ];
    for (xml, failure) in cases {
        let refused = parse_authenticate(&el(xml)).expect_err(xml);
        assert_eq!(refused.failure, failure, "{xml}");
        assert!(!refused.text.is_empty(), "{xml}");
    }
}

#[test]
fn uuids_are_checked_and_lowered() {
    assert_eq!(
        uuid(UA).as_deref(),
        Some("d4565fa7-4d72-4749-b3d3-740edbf87770")
    );
    for bad in [
        "",
        "d4565fa7",
        "d4565fa7-4d72-4749-b3d3-740edbf8777g",
        "d4565fa7x4d72-4749-b3d3-740edbf87770",
    ] {
        assert_eq!(uuid(bad), None, "{bad}");
    }
}

#[test]
fn the_server_elements_parse_as_what_they_say() {
    let mut out = Vec::new();
    write_feature(
        &mut out,
        &[Mechanism::ScramSha256, Mechanism::Plain],
        &[HtMechanism::Sha256None],
    );
    let feature = el(std::str::from_utf8(&out).expect("UTF-8"));
    assert!(feature.is("authentication", NS_SASL2));
    let mechanisms: Vec<String> = feature
        .children()
        .filter(|c| c.name.as_ref() == "mechanism")
        .map(|c| c.text())
        .collect();
    assert_eq!(mechanisms, ["SCRAM-SHA-256", "PLAIN"]);
    let inline = feature.get_child("inline", NS_SASL2).expect("inline");
    assert!(inline.get_child("bind", NS_BIND2).is_some());
    assert!(inline.get_child("sm", NS_SM).is_some());
    let fast = inline.get_child("fast", NS_FAST).expect("fast");
    assert_eq!(
        fast.first_child().map(|m| m.text()).as_deref(),
        Some("HT-SHA-256-NONE")
    );

    let mut out = Vec::new();
    write_success(
        &mut out,
        &Success {
            additional_data: b"v=abc",
            authorization_identifier: "a@b/c<d",
            token: Some(("tok'en", "2026-01-01T00:00:00Z")),
            results: b"<bound xmlns='urn:xmpp:bind:0'/>",
        },
    );
    let success = el(std::str::from_utf8(&out).expect("UTF-8"));
    assert_eq!(
        success
            .get_child("additional-data", NS_SASL2)
            .map(|d| d.text())
            .as_deref(),
        Some("dj1hYmM=")
    );
    assert_eq!(
        success
            .get_child("authorization-identifier", NS_SASL2)
            .map(|d| d.text())
            .as_deref(),
        Some("a@b/c<d")
    );
    let token = success.get_child("token", NS_FAST).expect("token");
    assert_eq!(token.attr("token"), Some("tok'en"));
    assert_eq!(token.attr("expiry"), Some("2026-01-01T00:00:00Z"));
    assert!(success.get_child("bound", NS_BIND2).is_some());

    let mut out = Vec::new();
    write_challenge(&mut out, b"r=x");
    assert_eq!(out, b"<challenge xmlns='urn:xmpp:sasl:2'>cj14</challenge>");
    let mut out = Vec::new();
    write_bound_features(&mut out, true);
    let features = String::from_utf8(out).expect("UTF-8");
    assert!(
        !features.contains("urn:xmpp:sm:3") && !features.contains("xmpp-bind"),
        "{features}"
    );
}
