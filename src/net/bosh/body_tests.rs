use super::*;

const MAX: usize = 64 * 1024;

fn ok(s: &str) -> RequestBody {
    match parse(s.as_bytes(), MAX) {
        Ok(b) => b,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn err(s: &str) -> BodyError {
    match parse(s.as_bytes(), MAX) {
        Ok(b) => panic!("{s:?} should be refused, got {b:?}"),
        Err(e) => e,
    }
}

fn payload(s: &str) -> String {
    String::from_utf8(ok(s).payload).expect("UTF-8")
}

#[test]
fn session_creation_request_of_xep_0124_and_0206() {
    // XEP-0124 §7.1 and XEP-0206 §4, the examples merged.
    let b = ok(
        "<body content='text/xml; charset=utf-8' from='user@example.com' hold='1' \
                rid='1573741820' to='example.com' route='xmpp:example.com:9999' ver='1.6' \
                wait='60' ack='1' xml:lang='en' xmpp:version='1.0' \
                xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>",
    );
    assert_eq!(b.rid, 1_573_741_820);
    assert_eq!(b.sid, None);
    assert_eq!(b.to.as_deref(), Some("example.com"));
    assert_eq!(b.from.as_deref(), Some("user@example.com"));
    assert_eq!(b.lang.as_deref(), Some("en"));
    assert_eq!(b.ver, Some((1, 6)));
    assert_eq!(b.wait, Some(60));
    assert_eq!(b.hold, Some(1));
    assert_eq!(b.ack, Some(1));
    assert_eq!(b.content.as_deref(), Some("text/xml; charset=utf-8"));
    assert_eq!(b.route.as_deref(), Some("xmpp:example.com:9999"));
    assert_eq!(b.xmpp_version.as_deref(), Some("1.0"));
    assert!(!b.restart && !b.terminate);
    assert_eq!(b.pause, None);
    assert!(b.payload.is_empty());
    assert!(b.is_empty());
}

#[test]
fn restart_pause_terminate_and_keys() {
    let b = ok(
        "<body rid='5' sid='S' to='example.com' xml:lang='en' xmpp:restart='true' \
                xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>",
    );
    assert!(b.restart);
    assert!(!b.is_empty());
    assert_eq!(b.sid.as_deref(), Some("S"));
    let b = ok("<body rid='6' sid='S' pause='60' xmlns='http://jabber.org/protocol/httpbind'/>");
    assert_eq!(b.pause, Some(60));
    assert!(!b.is_empty());
    let b = ok("<body rid='7' sid='S' type='terminate' key='k' newkey='n' \
                xmlns='http://jabber.org/protocol/httpbind'/>");
    assert!(b.terminate);
    assert_eq!(b.key.as_deref(), Some("k"));
    assert_eq!(b.newkey.as_deref(), Some("n"));
}

#[test]
fn xbosh_attributes_are_matched_by_namespace_not_prefix() {
    let b = ok("<body rid='1' x:restart='1' x:version='1.0' \
                xmlns='http://jabber.org/protocol/httpbind' xmlns:x='urn:xmpp:xbosh'/>");
    assert!(b.restart);
    assert_eq!(b.xmpp_version.as_deref(), Some("1.0"));
    // The `xmpp` prefix bound elsewhere means nothing.
    let b = ok("<body rid='1' xmpp:restart='true' \
                xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:other'/>");
    assert!(!b.restart);
    let b = ok("<body rid='1' xmpp:restart='false' \
                xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>");
    assert!(!b.restart);
}

#[test]
fn the_root_must_be_body_in_httpbind() {
    assert_eq!(
        err("<body rid='1'/>"),
        BodyError::NotBody("{}body".to_owned())
    );
    assert!(matches!(
        err("<body rid='1' xmlns='jabber:client'/>"),
        BodyError::NotBody(_)
    ));
    assert!(matches!(
        err("<bodyx rid='1' xmlns='http://jabber.org/protocol/httpbind'/>"),
        BodyError::NotBody(_)
    ));
    // A prefix is fine.
    let b = ok("<b:body rid='1' xmlns:b='http://jabber.org/protocol/httpbind'/>");
    assert_eq!(b.rid, 1);
}

#[test]
fn rid_is_required_and_at_most_2_to_the_53_minus_1() {
    assert_eq!(
        err("<body xmlns='http://jabber.org/protocol/httpbind'/>"),
        BodyError::MissingRid
    );
    assert_eq!(
        ok("<body rid='9007199254740991' xmlns='http://jabber.org/protocol/httpbind'/>").rid,
        MAX_RID
    );
    for bad in [
        "9007199254740992",
        "18446744073709551616",
        "-1",
        "+1",
        "1.0",
        "",
        "0x10",
        "1 2",
    ] {
        let s = format!("<body rid='{bad}' xmlns='http://jabber.org/protocol/httpbind'/>");
        assert_eq!(
            err(&s),
            BodyError::BadAttribute {
                name: "rid",
                value: bad.to_owned()
            },
            "{bad}"
        );
    }
    // Surrounding whitespace is tolerated.
    assert_eq!(
        ok("<body rid=' 42 ' xmlns='http://jabber.org/protocol/httpbind'/>").rid,
        42
    );
}

#[test]
fn numbers_are_range_checked() {
    let attr = |name: &str, value: &str| {
        format!("<body rid='1' {name}='{value}' xmlns='http://jabber.org/protocol/httpbind'/>")
    };
    assert_eq!(ok(&attr("wait", "4294967295")).wait, Some(u32::MAX));
    for name in ["wait", "hold", "pause"] {
        assert!(matches!(
            err(&attr(name, "4294967296")),
            BodyError::BadAttribute { .. }
        ));
        assert!(matches!(
            err(&attr(name, "soon")),
            BodyError::BadAttribute { .. }
        ));
    }
    assert!(matches!(
        err(&attr("ack", "9007199254740992")),
        BodyError::BadAttribute { name: "ack", .. }
    ));
    assert_eq!(ok(&attr("ver", "1.11")).ver, Some((1, 11)));
    for bad in ["1", "1.", ".1", "a.b", "1.2.3", "1.-1"] {
        assert!(
            matches!(
                err(&attr("ver", bad)),
                BodyError::BadAttribute { name: "ver", .. }
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        err(&attr("type", "error")),
        BodyError::BadAttribute { name: "type", .. }
    ));
    assert!(matches!(
        err(
            "<body rid='1' xmpp:restart='yes' xmlns='http://jabber.org/protocol/httpbind' \
             xmlns:xmpp='urn:xmpp:xbosh'/>"
        ),
        BodyError::BadAttribute {
            name: "xmpp:restart",
            ..
        }
    ));
}

#[test]
fn size_utf8_and_restricted_xml_are_refused() {
    let s = "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>";
    assert_eq!(
        parse(s.as_bytes(), s.len() - 1),
        Err(BodyError::TooLarge {
            len: s.len(),
            max: s.len() - 1
        })
    );
    assert!(parse(s.as_bytes(), s.len()).is_ok());
    assert_eq!(
        parse(
            b"<body rid='1' to='\xff' xmlns='http://jabber.org/protocol/httpbind'/>",
            MAX
        ),
        Err(BodyError::NotUtf8)
    );
    assert!(matches!(
        err("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message>"),
        BodyError::Xml(_)
    ));
    assert_eq!(
        err("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><!-- x --></body>"),
        BodyError::Restricted("comment")
    );
    assert_eq!(
        err("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><m><?pi x?></m></body>"),
        BodyError::Restricted("processing instruction")
    );
    assert_eq!(
        err("<!DOCTYPE body [<!ENTITY a 'b'>]><body rid='1' \
             xmlns='http://jabber.org/protocol/httpbind'/>"),
        BodyError::Restricted("DTD")
    );
    assert!(matches!(
        err("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>&foo;</body>"),
        BodyError::Xml(_)
    ));
    // An XML declaration is part of a document, not a processing instruction.
    assert_eq!(
        ok("<?xml version='1.0' encoding='UTF-8'?><body rid='1' \
            xmlns='http://jabber.org/protocol/httpbind'/>")
        .rid,
        1
    );
}

#[test]
fn the_node_limit_refuses_node_floods() {
    let mut s = String::from("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><m>");
    for _ in 0..20_000 {
        s.push_str("<a/>");
    }
    s.push_str("</m></body>");
    // 80 KB of nodes: within 1 MiB of bytes, over 1024 nodes for 8 KiB.
    assert!(parse(s.as_bytes(), 1 << 20).is_ok());
    assert!(matches!(
        parse(s.as_bytes(), 90_000),
        Err(BodyError::Xml(_))
    ));
}

#[test]
fn text_directly_inside_body_is_refused_but_whitespace_is_dropped() {
    assert_eq!(
        err("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>hello</body>"),
        BodyError::Text
    );
    assert_eq!(
        err("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><a/>x<b/></body>"),
        BodyError::Text
    );
    assert_eq!(
        payload(
            "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>\n  \
             <presence xmlns='jabber:client'/>\r\n\t<iq xmlns='jabber:client' id='1'/>\n</body>"
        ),
        "<presence xmlns='jabber:client'/><iq xmlns='jabber:client' id='1'/>"
    );
}

#[test]
fn children_are_copied_as_written() {
    // XEP-0124 §8, with entities, a CDATA section and nested namespaces.
    let p = payload(
        "<body rid='1249243562' sid='SomeSID' xmlns='http://jabber.org/protocol/httpbind'>\
         <message to='contact@example.com' xmlns='jabber:client'>\
         <body>Hey, what&apos;s up? &#x263A; <![CDATA[<b>]]></body>\
         <x xmlns='urn:x' a=\"it's\"><y/></x></message></body>",
    );
    assert_eq!(
        p,
        "<message to='contact@example.com' xmlns='jabber:client'>\
         <body>Hey, what&apos;s up? &#x263A; <![CDATA[<b>]]></body>\
         <x xmlns='urn:x' a=\"it's\"><y/></x></message>"
    );
}

#[test]
fn children_without_a_namespace_get_jabber_client() {
    // XEP-0206 §3: many clients omit it; httpbind's default means
    // jabber:client for a stanza.
    assert_eq!(
        payload(
            "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>\
             <message to='a@b'><body>hi</body></message><presence/></body>"
        ),
        "<message xmlns='jabber:client' to='a@b'><body>hi</body></message>\
         <presence xmlns='jabber:client'/>"
    );
    // Declared on <body>, as some clients do.
    assert_eq!(
        payload(
            "<b:body rid='1' xmlns:b='http://jabber.org/protocol/httpbind' xmlns='jabber:client'>\
             <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq></b:body>"
        ),
        "<iq xmlns='jabber:client' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"
    );
    // No default namespace at all.
    assert_eq!(
        payload(
            "<b:body rid='1' xmlns:b='http://jabber.org/protocol/httpbind'><presence/></b:body>"
        ),
        "<presence xmlns='jabber:client'/>"
    );
    // Another default on <body> is kept.
    assert_eq!(
        payload(
            "<b:body rid='1' xmlns:b='http://jabber.org/protocol/httpbind' xmlns='urn:x'>\
             <thing/></b:body>"
        ),
        "<thing xmlns='urn:x'/>"
    );
}

#[test]
fn an_own_declaration_is_never_duplicated() {
    // The same URI as inherited: inserting another xmlns= would be an error.
    let p = payload(
        "<b:body rid='1' xmlns:b='http://jabber.org/protocol/httpbind' xmlns='jabber:client'>\
         <message xmlns='jabber:client'/><auth xmlns = \"urn:ietf:params:xml:ns:xmpp-sasl\" \
         mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth></b:body>",
    );
    assert_eq!(
        p,
        "<message xmlns='jabber:client'/><auth xmlns = \"urn:ietf:params:xml:ns:xmpp-sasl\" \
         mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>"
    );
    // Whitespace after the name and an attribute value holding `>`.
    assert_eq!(
        payload(
            "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>\
             <message\n to='a>b' xmlns:x='urn:x'\n/></body>"
        ),
        "<message xmlns='jabber:client'\n to='a>b' xmlns:x='urn:x'\n/>"
    );
}

#[test]
fn prefixes_declared_on_body_are_copied_where_used() {
    let p = payload(
        "<body rid='1' xmlns='http://jabber.org/protocol/httpbind' \
         xmlns:stream='http://etherx.jabber.org/streams' xmlns:j='urn:j' \
         xmlns:unused='urn:unused' xmlns:xmpp='urn:xmpp:xbosh'>\
         <message><j:x j:a='1'/></message>\
         <stream:features/>\
         <presence xmlns:j='urn:other'><j:y/></presence></body>",
    );
    assert_eq!(
        p,
        "<message xmlns='jabber:client' xmlns:j='urn:j'><j:x j:a='1'/></message>\
         <stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>\
         <presence xmlns='jabber:client' xmlns:j='urn:other'><j:y/></presence>"
    );
}

#[test]
fn every_payload_parses_on_its_own() {
    for s in [
        "<body rid='1' xmlns='http://jabber.org/protocol/httpbind' xmlns:p='urn:p'>\
         <message><p:x p:a='&amp;&apos;'/></message><iq/></body>",
        "<h:body rid='1' xmlns:h='http://jabber.org/protocol/httpbind' xmlns:p=\"urn:'p'\">\
         <p:x/><y xmlns='urn:y'><p:z/></y></h:body>",
    ] {
        let p = String::from_utf8(ok(s).payload).expect("UTF-8");
        let doc = format!("<r xmlns='jabber:client'>{p}</r>");
        roxmltree::Document::parse(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
    }
}

#[test]
fn errors_say_what_is_wrong() {
    let e = err("<body rid='x' xmlns='http://jabber.org/protocol/httpbind'/>").to_string();
    assert_eq!(e, "bad value for attribute rid: \"x\"");
    let long = "9".repeat(200);
    let e = err(&format!(
        "<body rid='{long}' xmlns='http://jabber.org/protocol/httpbind'/>"
    ))
    .to_string();
    assert!(e.len() < 120, "{e}");
    assert_eq!(
        BodyError::TooLarge { len: 10, max: 5 }.to_string(),
        "request body of 10 bytes, more than 5"
    );
    assert!(err("<x/>").to_string().contains("is not <body xmlns="));
    assert_eq!(
        BodyError::Text.to_string(),
        "character data directly inside <body>"
    );
}

#[test]
fn empty_response_and_response_with_payload() {
    let mut out = Vec::new();
    write_response(&mut out, &ResponseAttrs::default(), &[]);
    assert_eq!(out, b"<body xmlns='http://jabber.org/protocol/httpbind'/>");
    out.clear();
    let attrs = ResponseAttrs {
        ack: Some(1_249_243_564),
        ..ResponseAttrs::default()
    };
    write_response(
        &mut out,
        &attrs,
        &[b"<message xmlns='jabber:client'/>", b"<iq/>"],
    );
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "<body xmlns='http://jabber.org/protocol/httpbind' ack='1249243564'>\
         <message xmlns='jabber:client'/><iq/></body>"
    );
}

#[test]
fn session_creation_response() {
    let creation = Creation {
        sid: "Some'SID".to_owned(),
        wait: 60,
        requests: 2,
        hold: 1,
        inactivity: 30,
        polling: 5,
        maxpause: 120,
        ver: (1, 11),
        from: Some("example.com".to_owned()),
        secure: Some(true),
        authid: Some("ServerStreamID".to_owned()),
    };
    let attrs = ResponseAttrs {
        kind: ResponseKind::Normal,
        ack: Some(1_573_741_820),
        creation: Some(creation),
    };
    let mut out = Vec::new();
    write_response(&mut out, &attrs, &[b"<stream:features/>"]);
    let text = std::str::from_utf8(&out).unwrap();
    assert_eq!(
        text,
        "<body xmlns='http://jabber.org/protocol/httpbind' ack='1573741820' sid='Some&apos;SID' \
         wait='60' requests='2' hold='1' inactivity='30' polling='5' maxpause='120' ver='1.11' \
         from='example.com' secure='true' authid='ServerStreamID' xmlns:xmpp='urn:xmpp:xbosh' \
         xmpp:version='1.0' xmpp:restartlogic='true' \
         xmlns:stream='http://etherx.jabber.org/streams'><stream:features/></body>"
    );
    let doc = roxmltree::Document::parse(text).unwrap();
    let root = doc.root_element();
    assert_eq!(root.attribute("sid"), Some("Some'SID"));
    assert_eq!(root.attribute((NS_XBOSH, "restartlogic")), Some("true"));
    assert_eq!(
        root.first_element_child().unwrap().tag_name().namespace(),
        Some(NS_STREAM)
    );
}

#[test]
fn terminate_and_recoverable_error_responses() {
    let mut out = Vec::new();
    write_terminate(&mut out, None);
    assert_eq!(
        out,
        b"<body xmlns='http://jabber.org/protocol/httpbind' type='terminate'/>"
    );
    out.clear();
    write_terminate(&mut out, Some(Condition::PolicyViolation));
    assert_eq!(
        out,
        b"<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' \
          condition='policy-violation'/>"
    );
    out.clear();
    write_recoverable_error(&mut out);
    assert_eq!(
        out,
        b"<body xmlns='http://jabber.org/protocol/httpbind' type='error'/>"
    );
}

#[test]
fn every_condition_of_section_17_2() {
    let names: Vec<&str> = Condition::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "bad-request",
            "host-gone",
            "host-unknown",
            "improper-addressing",
            "internal-server-error",
            "item-not-found",
            "other-request",
            "policy-violation",
            "remote-connection-failed",
            "remote-stream-error",
            "see-other-uri",
            "system-shutdown",
            "undefined-condition",
        ]
    );
    assert_eq!(Condition::SeeOtherUri.to_string(), "see-other-uri");
}

#[test]
fn a_written_response_parses_back() {
    for c in Condition::ALL {
        let mut out = Vec::new();
        write_terminate(&mut out, Some(c));
        let text = std::str::from_utf8(&out).unwrap();
        let doc = roxmltree::Document::parse(text).unwrap();
        assert_eq!(doc.root_element().attribute("condition"), Some(c.as_str()));
        assert_eq!(doc.root_element().tag_name().namespace(), Some(NS_HTTPBIND));
    }
}
