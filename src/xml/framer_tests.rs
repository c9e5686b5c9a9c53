//! The framer's tests: split independence at every byte, hostile XML,
//! limits, and random and mutated sessions.

#[cfg(test)]
mod tests_support {
    use crate::xml::framer::*;

    /// Feeds `chunks` one push at a time, draining events after each; stops
    /// at the first error.
    pub(super) fn run(limits: Limits, chunks: &[&[u8]]) -> (Vec<FrameEvent>, Option<XmlError>) {
        let mut f = Framer::new(limits);
        let mut events = Vec::new();
        for chunk in chunks {
            f.push(chunk);
            loop {
                match f.next_event() {
                    Ok(Some(ev)) => events.push(ev),
                    Ok(None) => break,
                    Err(e) => return (events, Some(e)),
                }
            }
        }
        (events, None)
    }

    pub(super) const SESSION: &str = "<?xml version='1.0'?>\
        <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
        to='example.com' version='1.0' xml:lang='en'>\n\
        <iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>h\u{e9}llo \u{2603} \u{1F600}</resource></bind></iq> \
        <message to='r\u{e9}mi@example.com/\u{1F600}' type=\"chat\" id='m&amp;1'>\
        <body>h\u{e9}llo \u{2603} \u{1F600} &lt;3 &#x1F600;&#233;<![CDATA[<raw> & ]] ]>]]></body>\
        <x:y xmlns:x='urn:x' x:a='1'/><stream:error/></message>\r\n\t \
        <presence/>\n\n<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>\
        <iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>\n\
        </stream:stream>trailing garbage & <";
}

#[cfg(test)]
mod cases {

    /// XML Names §3: a header declaring the `xmlns` prefix is refused (it
    /// would be declared again around every stanza).
    #[test]
    fn a_header_declaring_the_xmlns_prefix_is_not_well_formed() {
        let header = "<stream:stream xmlns:xmlns='urn:x' xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
        let (events, error) =
            super::tests_support::run(crate::xml::framer::Limits::default(), &[header.as_bytes()]);
        assert!(events.is_empty(), "{events:?}");
        assert!(
            matches!(error, Some(crate::xml::XmlError::NotWellFormed(_))),
            "{error:?}"
        );
    }

    /// A second stream header in the stream, and the stream's end tag
    /// inside a stanza, are refused when they arrive (they used to leave an
    /// element open until the stanza time limit), however the bytes are
    /// split; the stream's name below the top level is still fine.
    #[test]
    fn a_header_or_close_inside_the_stream_is_refused_at_once() {
        let open = "<stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
        let header = format!("<?xml version='1.0'?>{open}");
        let outcome = |input: &str, piece: usize| {
            let pieces: Vec<&[u8]> = input.as_bytes().chunks(piece).collect();
            let (events, error) = run(Limits::default(), &pieces);
            (events.len(), error)
        };
        for piece in [1, 7, 4096] {
            let again = format!("{header}<presence/>{open}");
            let (events, error) = outcome(&again, piece);
            assert_eq!(events, 2);
            assert!(matches!(error, Some(XmlError::BadFormat(_))), "{error:?}");
            let cut = format!("{header}<message><body>hi</stream:stream  >");
            let (events, error) = outcome(&cut, piece);
            assert_eq!(events, 1);
            assert!(
                matches!(&error, Some(XmlError::NotWellFormed(t)) if t.contains("end tag")),
                "{error:?}"
            );
            let nested = format!(
                "{header}<message><stream:stream><stream:error/></stream:stream>\
                 <stream:streams/></message></stream:stream>"
            );
            let (events, error) = outcome(&nested, piece);
            assert_eq!((events, error), (3, None));
        }
    }

    /// Found by the `xml_framer` fuzz target: a wrong end tag holding an
    /// invalid byte was "unexpected end tag" when it came at once and
    /// "invalid UTF-8" when it came in pieces.
    #[test]
    fn the_error_does_not_depend_on_how_the_bytes_arrive() {
        let mut input = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'><presence/></".to_vec();
        input.extend_from_slice(b"\x8cresence>");
        let outcome = |pieces: &[&[u8]]| {
            let mut framer = Framer::new(Limits::default());
            for piece in pieces {
                framer.push(piece);
                loop {
                    match framer.next_event() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => return Some(format!("{e:?}")),
                    }
                }
            }
            None
        };
        let whole = outcome(&[&input]);
        let pieces: Vec<&[u8]> = input.chunks(8).collect();
        assert_eq!(whole, outcome(&pieces));
        assert!(whole.is_some_and(|e| e.contains("UTF-8")));
    }

    use super::tests_support::*;
    use crate::xml::framer::*;
    use crate::xml::{NS_CLIENT, NS_SERVER};

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

    fn events(input: &str) -> Vec<FrameEvent> {
        match run(Limits::default(), &[input.as_bytes()]) {
            (events, None) => events,
            (_, Some(e)) => panic!("unexpected error {e} for {input}"),
        }
    }

    fn error(input: &[u8]) -> XmlError {
        error_with(Limits::default(), input)
    }

    fn error_with(limits: Limits, input: &[u8]) -> XmlError {
        match run(limits, &[input]) {
            (_, Some(e)) => e,
            (events, None) => panic!(
                "no error for {}: {events:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    fn header_of(input: &str) -> StreamHeader {
        match events(input).into_iter().next() {
            Some(FrameEvent::StreamOpen(h)) => h,
            other => panic!("no header in {input}: {other:?}"),
        }
    }

    fn elements(input: &str) -> Vec<Element> {
        events(input)
            .into_iter()
            .filter_map(|e| match e {
                FrameEvent::Element(el) => Some(el),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn header_variants() {
        let h = header_of(HEADER);
        assert_eq!(
            h,
            StreamHeader {
                to: Some("example.com".into()),
                from: None,
                id: None,
                version: Some("1.0".into()),
                lang: None,
                default_ns: NS_CLIENT.into(),
                stream_prefix: "stream".into(),
            }
        );

        let h = header_of(
            "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<stream:stream xmlns=\"jabber:server\" \
             xmlns:stream=\"http://etherx.jabber.org/streams\" from=\"a.example\" \
             id=\"x&amp;y\" xml:lang=\"en\" version=\"1.0\" >",
        );
        assert_eq!(h.from.as_deref(), Some("a.example"));
        assert_eq!(h.id.as_deref(), Some("x&y"));
        assert_eq!(h.lang.as_deref(), Some("en"));
        assert_eq!(h.default_ns, NS_SERVER);
        assert_eq!(h.to, None);

        // No declaration, no version, another prefix for the stream namespace.
        let h = header_of(
            "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>",
        );
        assert_eq!(h.version, None);
        assert_eq!(h.stream_prefix, "s");
        let ev = events(
            "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>\
             <s:features/><presence/></s:stream>",
        );
        assert_eq!(ev.len(), 4);
        assert_eq!(
            ev.get(1),
            Some(&FrameEvent::Element(Element::new("features", NS_STREAM)))
        );
        assert_eq!(
            ev.get(2),
            Some(&FrameEvent::Element(Element::new("presence", NS_CLIENT)))
        );
        assert_eq!(ev.get(3), Some(&FrameEvent::StreamClose));

        // Leading whitespace and a version we don't speak are data, not errors.
        let h = header_of(
            "\r\n  <stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='2.5'>",
        );
        assert_eq!(h.version.as_deref(), Some("2.5"));
        assert_eq!(h.default_ns, "");

        // Self-closing header: open immediately followed by close.
        let ev = events("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev.get(1), Some(&FrameEvent::StreamClose));
    }

    #[test]
    fn header_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "<stream:stream xmlns:stream='urn:wrong'>",
                "invalid-namespace",
            ),
            ("<stream xmlns='jabber:client'>", "invalid-namespace"),
            ("<message xmlns='jabber:client'/>", "invalid-namespace"),
            (
                "<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>",
                "invalid-namespace",
            ),
            ("<stream:stream xmlns='jabber:client'>", "not-well-formed"),
            ("hello", "not-well-formed"),
            ("</stream:stream>", "not-well-formed"),
            (
                "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>",
                "unsupported-encoding",
            ),
            (
                "<?xml version='1.0'?><?xml version='1.0'?>",
                "restricted-xml",
            ),
            ("<?xml-stylesheet href='x'?>", "restricted-xml"),
            ("<?xml encoding='UTF-8'?>", "not-well-formed"),
            ("<?xml version='1.0' foo='bar'?>", "not-well-formed"),
            ("<!DOCTYPE stream>", "restricted-xml"),
            ("<!-- hi -->", "restricted-xml"),
            ("<![CDATA[x]]>", "not-well-formed"),
            (
                "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='&ent;'>",
                "restricted-xml",
            ),
            (
                "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to=x>",
                "not-well-formed",
            ),
        ];
        for (input, condition) in cases {
            let e = error(input.as_bytes());
            assert_eq!(e.stream_condition(), *condition, "{input}: {e}");
        }
        let long = format!(
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='{}'",
            "a".repeat(HEADER_LIMIT)
        );
        assert_eq!(
            error(long.as_bytes()).stream_condition(),
            "policy-violation"
        );
    }

    #[test]
    fn session_transcript() {
        let ev = events(SESSION);
        assert_eq!(ev.len(), 7, "{ev:#?}");
        let Some(FrameEvent::StreamOpen(h)) = ev.first() else {
            panic!("no header: {ev:?}");
        };
        assert_eq!(h.lang.as_deref(), Some("en"));
        let Some(FrameEvent::Element(iq)) = ev.get(1) else {
            panic!("{ev:?}");
        };
        assert!(iq.is("iq", NS_CLIENT));
        let resource = iq
            .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .and_then(|b| b.get_child("resource", "urn:ietf:params:xml:ns:xmpp-bind"))
            .map(|r| r.text());
        assert_eq!(resource.as_deref(), Some("h\u{e9}llo \u{2603} \u{1F600}"));
        let Some(FrameEvent::Element(msg)) = ev.get(2) else {
            panic!("{ev:?}");
        };
        assert_eq!(msg.attr("to"), Some("r\u{e9}mi@example.com/\u{1F600}"));
        assert_eq!(msg.attr("id"), Some("m&1"));
        assert_eq!(
            msg.get_child("body", NS_CLIENT)
                .map(|b| b.text())
                .as_deref(),
            Some("h\u{e9}llo \u{2603} \u{1F600} <3 \u{1F600}\u{e9}<raw> & ]] ]>")
        );
        let y = msg.get_child("y", "urn:x");
        assert_eq!(y.and_then(|y| y.attr("{urn:x}a")), Some("1"));
        assert!(msg.get_child("error", NS_STREAM).is_some());
        assert_eq!(
            ev.get(3),
            Some(&FrameEvent::Element(Element::new("presence", NS_CLIENT)))
        );
        let Some(FrameEvent::Element(features)) = ev.get(4) else {
            panic!("{ev:?}");
        };
        assert!(features.is("features", NS_STREAM));
        assert!(
            features
                .get_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
                .is_some()
        );
        assert_eq!(ev.get(6), Some(&FrameEvent::StreamClose));
    }

    #[test]
    fn every_split_gives_the_same_events() {
        let whole = events(SESSION);
        let bytes = SESSION.as_bytes();
        for i in 0..=bytes.len() {
            let (a, b) = bytes.split_at(i);
            let (ev, err) = run(Limits::default(), &[a, b]);
            assert_eq!(err, None, "split at {i}");
            assert_eq!(ev, whole, "split at {i}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let (ev, err) = run(Limits::default(), &singles);
        assert_eq!(err, None);
        assert_eq!(ev, whole);
        for size in [2, 3, 7, 64] {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(run(Limits::default(), &chunks), (whole.clone(), None));
        }
    }

    #[test]
    fn keepalives_produce_no_events() {
        let input = format!("{HEADER} \n\t\r <presence/>   \n \n<presence/>\n \n");
        let ev = events(&input);
        assert_eq!(ev.len(), 3);
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        for _ in 0..100 {
            f.push(b" ");
            assert_eq!(f.next_event(), Ok(None));
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn namespaces() {
        let els = elements(&format!(
            "{HEADER}<iq type='get'><query xmlns='jabber:iq:roster'><item/></query></iq>\
             <message><foo:x xmlns:foo='urn:x'><foo:y/><z/></foo:x></message>\
             <stream:features/><r xmlns='urn:other'><s/></r>"
        ));
        assert_eq!(els.len(), 4);
        let iq = els.first();
        assert!(iq.is_some_and(|e| e.is("iq", NS_CLIENT)));
        let query = iq.and_then(|iq| iq.get_child("query", "jabber:iq:roster"));
        assert!(
            query
                .and_then(|q| q.get_child("item", "jabber:iq:roster"))
                .is_some()
        );
        let x = els.get(1).and_then(|m| m.get_child("x", "urn:x"));
        assert!(x.and_then(|x| x.get_child("y", "urn:x")).is_some());
        assert!(x.and_then(|x| x.get_child("z", NS_CLIENT)).is_some());
        assert!(els.get(2).is_some_and(|e| e.is("features", NS_STREAM)));
        let r = els.get(3);
        assert!(r.and_then(|r| r.get_child("s", "urn:other")).is_some());

        let server = elements(
            "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' \
             xmlns:stream='http://etherx.jabber.org/streams'><db:result to='a' from='b'>key</db:result>\
             <message/>",
        );
        assert!(
            server
                .first()
                .is_some_and(|e| e.is("result", "jabber:server:dialback") && e.text() == "key")
        );
        assert!(server.get(1).is_some_and(|e| e.is("message", NS_SERVER)));
    }

    #[test]
    fn hostile_inputs() {
        let cases: &[(&str, &str)] = &[
            ("<message><!-- c --></message>", "restricted-xml"),
            ("<!-- c -->", "restricted-xml"),
            ("<?pi?>", "restricted-xml"),
            ("<?xml version='1.0'?>", "restricted-xml"),
            ("<message><?pi x?></message>", "restricted-xml"),
            ("<!DOCTYPE x [<!ENTITY a 'b'>]>", "restricted-xml"),
            ("<message><!ENTITY a 'b'></message>", "restricted-xml"),
            ("<message>&xxe;</message>", "restricted-xml"),
            ("<message a='&xxe;'/>", "restricted-xml"),
            ("<message>&#0;</message>", "not-well-formed"),
            ("<message>&#x0;</message>", "not-well-formed"),
            ("<message>&#1;</message>", "not-well-formed"),
            ("<message>&#xD800;</message>", "not-well-formed"),
            ("<message>&#xFFFE;</message>", "not-well-formed"),
            ("<message>&#x110000;</message>", "not-well-formed"),
            ("<message>&#99999999999999;</message>", "not-well-formed"),
            ("<message>&#;</message>", "not-well-formed"),
            ("<message>&#xZZ;</message>", "not-well-formed"),
            ("<message>&;</message>", "not-well-formed"),
            ("<message>& amp;</message>", "not-well-formed"),
            ("<message>&amp</message>", "not-well-formed"),
            ("<message>\u{1}</message>", "not-well-formed"),
            ("<message></iq>", "not-well-formed"),
            ("<message><body></message></body>", "not-well-formed"),
            ("<message a=b/>", "not-well-formed"),
            ("<message a='1' a='2'/>", "not-well-formed"),
            ("<message a='<'/>", "not-well-formed"),
            ("<message <a/>", "not-well-formed"),
            ("<message></>", "not-well-formed"),
            ("<message><foo:x/></message>", "not-well-formed"),
            ("<foo:message/>", "not-well-formed"),
            ("hello", "not-well-formed"),
            ("<presence/>x<presence/>", "not-well-formed"),
            ("&amp;", "not-well-formed"),
            ("<![CDATA[x]]>", "not-well-formed"),
            ("<message><![CDAT[x]]></message>", "not-well-formed"),
            ("<message><!x></message>", "not-well-formed"),
            ("< message/>", "not-well-formed"),
            ("<1message/>", "not-well-formed"),
            ("</stream>", "not-well-formed"),
            ("</stream:stream x='1'>", "not-well-formed"),
        ];
        for (stanza, condition) in cases {
            let input = format!("{HEADER}{stanza}");
            let e = error(input.as_bytes());
            assert_eq!(e.stream_condition(), *condition, "{stanza}: {e}");
        }
    }

    #[test]
    fn invalid_utf8() {
        for bad in [
            &b"<message>\xff</message>"[..],
            b"<message>\xc3\x28</message>",
            b"<message a='\xed\xa0\x80'/>",
            b"\xff",
            b"<message>\xe2\x82",
        ] {
            let mut input = HEADER.as_bytes().to_vec();
            input.extend_from_slice(bad);
            // Unterminated input must be refused as soon as the bad byte is
            // seen; complete input when the element is parsed.
            input.extend_from_slice(b"x");
            let e = error(&input);
            assert_eq!(e.stream_condition(), "not-well-formed", "{bad:?}: {e}");
        }
        assert_eq!(
            error(b"\xef\xbb\xbf<stream:stream>").stream_condition(),
            "not-well-formed"
        );
        // A character split across pushes is not an error.
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        f.push(b"<message>\xe2\x98");
        assert_eq!(f.next_event(), Ok(None));
        f.push(b"\x83</message>");
        let Ok(Some(FrameEvent::Element(m))) = f.next_event() else {
            panic!("no element");
        };
        assert_eq!(m.text(), "\u{2603}");
    }

    #[test]
    fn errors_are_sticky_and_reset_clears_them() {
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        f.push(b"<!-- x -->");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        let e = f.next_event();
        assert!(matches!(e, Err(XmlError::RestrictedXml(_))));
        f.push(b"<presence/>");
        assert_eq!(f.next_event(), e);
        assert_eq!(f.buffered(), 0);
        f.reset();
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
    }

    #[test]
    fn deep_nesting() {
        let limits = Limits::default();
        let deep = format!("{HEADER}{}", "<a>".repeat(10_000));
        assert_eq!(
            error(deep.as_bytes()).stream_condition(),
            "policy-violation"
        );
        let ok_depth = limits.max_depth;
        let ok = format!(
            "{HEADER}{}{}",
            "<a>".repeat(ok_depth),
            "</a>".repeat(ok_depth)
        );
        assert_eq!(elements(&ok).len(), 1);
        let too_deep = format!(
            "{HEADER}{}<b/>{}",
            "<a>".repeat(ok_depth),
            "</a>".repeat(ok_depth)
        );
        assert_eq!(
            error(too_deep.as_bytes()).stream_condition(),
            "policy-violation"
        );
    }

    #[test]
    fn oversized_stanza_fails_early() {
        let limits = Limits {
            max_stanza_bytes: 1000,
            max_depth: 32,
        };
        let exact = format!("<message>{}</message>", "x".repeat(1000 - 19));
        assert_eq!(exact.len(), 1000);
        let (ev, err) = run(limits, &[HEADER.as_bytes(), exact.as_bytes()]);
        assert_eq!((ev.len(), err), (2, None));

        let mut f = Framer::new(limits);
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        f.push(b"<message><body>");
        let mut failed = false;
        // Never terminated: the error must come from the size alone.
        for _ in 0..2000 {
            f.push(b"y");
            match f.next_event() {
                Ok(None) => {}
                Err(e) => {
                    assert_eq!(e.stream_condition(), "policy-violation");
                    failed = true;
                    break;
                }
                Ok(Some(ev)) => panic!("unexpected {ev:?}"),
            }
            assert!(f.buffered() <= 1000);
        }
        assert!(failed);

        // Unterminated tags, comments-in-waiting and entity references are
        // bounded too.
        for prefix in [
            "<message a='",
            "<message",
            "</stream:stream",
            "<message><![CDATA[",
        ] {
            let input = format!("{HEADER}{prefix}{}", "z".repeat(1100));
            assert_eq!(
                error_with(limits, input.as_bytes()).stream_condition(),
                "policy-violation",
                "{prefix}"
            );
        }
        let pi = format!("<?xml {}", "z".repeat(HEADER_LIMIT));
        assert_eq!(error(pi.as_bytes()).stream_condition(), "policy-violation");
    }

    #[test]
    fn large_stanza_byte_by_byte_is_linear() {
        let piece = "abc\u{e9}&amp;<b x='1'/>";
        let n = 200 * 1024 / piece.len() + 1;
        let body = piece.repeat(n);
        let stanza = format!("<message><body>{body}</body></message>");
        assert!(stanza.len() > 200 * 1024);
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        let mut got = None;
        for b in stanza.as_bytes().chunks(1) {
            f.push(b);
            match f.next_event() {
                Ok(None) => {}
                Ok(Some(FrameEvent::Element(e))) => got = Some(e),
                other => panic!("{other:?}"),
            }
        }
        let body_el = got.as_ref().and_then(|m| m.get_child("body", NS_CLIENT));
        assert_eq!(body_el.map(|b| b.children().count()), Some(n));
        // Idle again: the big buffers were given back.
        assert_eq!(f.next_event(), Ok(None));
        assert_eq!(f.buffered(), 0);
        assert!(f.buf.capacity() <= IDLE_CAPACITY);
        assert!(f.scratch.capacity() <= IDLE_CAPACITY);
    }

    #[test]
    fn release_idle_frees_buffers_and_keeps_parsing() {
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        f.push(b"<presence/><message><body>hi</body></mess");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
        assert_eq!(f.next_event(), Ok(None));
        // Half an element is buffered: it must survive.
        f.release_idle();
        assert!(f.buffered() > 0);
        f.push(b"age>");
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
        assert_eq!(f.next_event(), Ok(None));
        f.release_idle();
        assert_eq!(f.buf.capacity(), 0);
        assert_eq!(f.scratch.capacity(), 0);
        f.push(b"<iq type='get' id='1'/>");
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
    }

    #[test]
    fn close_and_trailing_content() {
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        f.push(b"<presence/></stream:stream  ><presence/>");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
        assert_eq!(f.next_event(), Ok(Some(FrameEvent::StreamClose)));
        assert_eq!(f.next_event(), Ok(None));
        f.push(b"\xff<!-- ignored -->");
        assert_eq!(f.next_event(), Ok(None));
        assert_eq!(f.buffered(), 0);
        assert_eq!(f.buf.capacity(), 0);
    }

    #[test]
    fn reset_restarts_the_stream() {
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        f.push(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><injected/>");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
        f.reset();
        assert_eq!(f.buffered(), 0);
        assert_eq!(f.next_event(), Ok(None));
        f.push(HEADER.as_bytes());
        f.push(b"<presence/>");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        assert_eq!(
            f.next_event(),
            Ok(Some(FrameEvent::Element(Element::new(
                "presence", NS_CLIENT
            ))))
        );
    }

    #[test]
    fn written_header_is_read_back() {
        let h = StreamHeader {
            to: Some("a'b".into()),
            from: Some("example.com".into()),
            id: Some("<id>".into()),
            version: Some("1.0".into()),
            lang: Some("en".into()),
            default_ns: NS_CLIENT.into(),
            stream_prefix: "stream".into(),
        };
        let mut out = Vec::new();
        h.write_to(&mut out);
        let features = Element::new("features", NS_STREAM).with_child(Element::new(
            "mechanisms",
            "urn:ietf:params:xml:ns:xmpp-sasl",
        ));
        features.write_to(&mut out, NS_CLIENT);
        Element::new("message", NS_CLIENT)
            .with_attr("to", "x")
            .write_to(&mut out, NS_CLIENT);
        out.extend_from_slice(crate::xml::STREAM_CLOSE);
        let (ev, err) = run(Limits::default(), &[&out]);
        assert_eq!(err, None);
        assert_eq!(
            ev,
            vec![
                FrameEvent::StreamOpen(h),
                FrameEvent::Element(features),
                FrameEvent::Element(Element::new("message", NS_CLIENT).with_attr("to", "x")),
                FrameEvent::StreamClose,
            ]
        );
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::tests_support::*;
    use crate::xml::framer::*;

    /// Every single-byte corruption of a realistic session must neither
    /// panic nor depend on how the bytes were split.
    #[test]
    fn corrupted_sessions() {
        let original = SESSION.as_bytes();
        let mut mismatches = 0;
        for i in 0..original.len() {
            for replacement in [
                b'<', b'>', b'&', b'\'', b'/', b';', 0xff, b'!', b'?', b'x', 0, b']',
            ] {
                let mut input = original.to_vec();
                if let Some(b) = input.get_mut(i) {
                    *b = replacement;
                }
                let (ev_whole, err_whole) = run(Limits::default(), &[&input]);
                let chunks: Vec<&[u8]> = input.chunks(5).collect();
                let (ev_split, err_split) = run(Limits::default(), &chunks);
                let cw = err_whole.as_ref().map(|e| e.stream_condition());
                let cs = err_split.as_ref().map(|e| e.stream_condition());
                if ev_whole != ev_split || cw != cs {
                    mismatches += 1;
                    eprintln!("byte {i} = {replacement}: {err_whole:?} vs {err_split:?}");
                }
            }
        }
        assert_eq!(mismatches, 0);
    }
}

#[cfg(test)]
mod random_tests {
    use super::tests_support::*;
    use crate::xml::framer::*;

    /// Random streams assembled from XML-ish fragments: no panics, and the
    /// outcome must not depend on how the input is split.
    #[test]
    fn random_fragment_streams() {
        let iterations: u64 = std::env::var("PERCH_XML_FUZZ")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        const FRAGMENTS: &[&[u8]] = &[
            b"<a>",
            b"</a>",
            b"<b/>",
            b"<a x='1'>",
            b"<a x=\"&amp;\">",
            b"</b>",
            b"text",
            b" ",
            b"\n",
            b"&lt;",
            b"&#65;",
            b"&#0;",
            b"&foo;",
            b"&",
            b";",
            b"<![CDATA[",
            b"]]>",
            b"]",
            b"<!--",
            b"-->",
            b"<?",
            b"?>",
            b"<!DOCTYPE",
            b"'",
            b"\"",
            b"=",
            b"<",
            b">",
            b"/",
            b"<p:a xmlns:p='urn:p'>",
            b"</p:a>",
            b"<q:a>",
            b"\xc3\xa9",
            b"\xe2\x98",
            b"\x83",
            b"\xff",
            b"</stream:stream>",
            b"<stream:features>",
            b"</stream:features>",
            b"<message>",
            b"</message>",
            b"<?xml version='1.0'?>",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..iterations {
            let mut input = Vec::new();
            if next() % 8 != 0 {
                input.extend_from_slice(SESSION.as_bytes().get(..180).unwrap_or_default());
            }
            for _ in 0..next() % 40 {
                let idx = (next() % FRAGMENTS.len() as u64) as usize;
                input.extend_from_slice(FRAGMENTS.get(idx).copied().unwrap_or_default());
            }
            let limits = Limits {
                max_stanza_bytes: 64 + (next() % 256) as usize,
                max_depth: 1 + (next() % 4) as usize,
            };
            let (ev_whole, err_whole) = run(limits, &[&input]);
            let size = 1 + (next() % 7) as usize;
            let chunks: Vec<&[u8]> = input.chunks(size).collect();
            let (ev_split, err_split) = run(limits, &chunks);
            assert_eq!(ev_whole, ev_split, "{}", String::from_utf8_lossy(&input));
            assert_eq!(
                err_whole.map(|e| e.stream_condition()),
                err_split.map(|e| e.stream_condition()),
                "{}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}
