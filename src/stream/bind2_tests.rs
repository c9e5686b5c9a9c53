use super::*;

fn el(xml: &str) -> Element {
    Element::parse(xml).expect("test XML parses")
}

#[test]
fn reads_tag_and_inline_features() {
    let request = parse(&el("<bind xmlns='urn:xmpp:bind:0'><tag> Dino </tag>\
         <enable xmlns='urn:xmpp:carbons:2'/><inactive xmlns='urn:xmpp:csi:0'/>\
         <enable xmlns='urn:xmpp:sm:3' resume='true' max='60'/></bind>"))
    .expect("valid");
    assert_eq!(
        request,
        BindRequest {
            tag: Some("Dino".into()),
            carbons: true,
            active: Some(false),
            sm_enable: Some((true, Some(60))),
        }
    );
    assert_eq!(
        parse(&el("<bind xmlns='urn:xmpp:bind:0'/>")),
        Ok(BindRequest::default())
    );
}

#[test]
fn refuses_what_is_not_offered_or_twice() {
    for xml in [
        "<bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:mam:2'/></bind>",
        "<bind xmlns='urn:xmpp:bind:0'><tag>a</tag><tag>b</tag></bind>",
        "<bind xmlns='urn:xmpp:bind:0'><active xmlns='urn:xmpp:csi:0'/><inactive xmlns='urn:xmpp:csi:0'/></bind>",
        "<bind xmlns='urn:xmpp:bind:0'><r xmlns='urn:xmpp:sm:3'/></bind>",
    ] {
        assert!(parse(&el(xml)).is_err(), "{xml}");
    }
    let long = format!(
        "<bind xmlns='urn:xmpp:bind:0'><tag>{}</tag></bind>",
        "x".repeat(65)
    );
    assert!(parse(&el(&long)).unwrap_err().contains("64 bytes"));
}

#[test]
fn resources_are_stable_per_client_and_hide_its_id() {
    let ua = "d4565fa7-4d72-4749-b3d3-740edbf87770";
    let fresh = || unreachable!("a stable resource needs no fresh id");
    let one = resource(Some("Dino"), "alice@example.org", Some(ua), fresh);
    assert_eq!(
        one,
        resource(Some("Dino"), "alice@example.org", Some(ua), fresh)
    );
    let (tag, id) = one.split_once('/').expect("tag/id");
    assert_eq!(tag, "Dino");
    assert_eq!(id.len(), 8);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!one.contains("d4565fa7"));
    // Another account or client: another id.
    assert_ne!(
        one,
        resource(Some("Dino"), "bob@example.org", Some(ua), fresh)
    );
    let other = "00000000-0000-4000-8000-000000000000";
    assert_ne!(
        one,
        resource(Some("Dino"), "alice@example.org", Some(other), fresh)
    );
    // No user agent: the fresh id, with or without a tag.
    assert_eq!(
        resource(Some("Dino"), "a@b", None, || "xyz".into()),
        "Dino/xyz"
    );
    assert_eq!(resource(None, "a@b", None, || "xyz".into()), "xyz");
}

#[test]
fn writes_feature_and_bound_as_the_serializer_would() {
    let mut out = Vec::new();
    write_feature(&mut out);
    let feature = el(std::str::from_utf8(&out).expect("UTF-8"));
    let vars: Vec<&str> = feature
        .get_child("inline", NS_BIND2)
        .expect("inline")
        .children()
        .filter_map(|f| f.attr("var"))
        .collect();
    assert_eq!(vars, [NS_CARBONS, NS_CSI, NS_SM]);
    let mut out = Vec::new();
    write_bound(&mut out, b"");
    assert_eq!(out, b"<bound xmlns='urn:xmpp:bind:0'/>");
    let mut out = Vec::new();
    write_bound(&mut out, b"<enabled xmlns='urn:xmpp:sm:3'/>");
    let bound = el(std::str::from_utf8(&out).expect("UTF-8"));
    assert!(bound.get_child("enabled", NS_SM).is_some());
}
