use super::*;
use crate::stream::sm;
use crate::stream::{StreamCondition, StreamError};
use crate::xml::{FrameEvent, Framer, Limits};

/// The stream header exactly as `C2sStream::write_header` writes it.
const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' id='abc123' from='example.com' \
     version='1.0' xml:lang='en'>";
const OPEN_PAYLOAD: &str = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='abc123' \
     from='example.com' version='1.0' xml:lang='en'/>";
const FEATURES: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
     <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
const SUCCESS: &str = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
const TRICKY: &str = "<message id='a>b' to=\"c'd/>\" x='/>' type=\"chat\"><body>x &lt; y &amp; \
     z &gt; w</body><thread>/&gt;</thread></message>";
const NESTED: &str = "<message to='juliet@example.com/phone'><received xmlns='urn:xmpp:carbons:2'>\
     <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' \
     from='romeo@example.net/a' type='chat'><body>hi</body></message></forwarded></received></message>";

/// Every piece `splitter` has, as (piece, payload as text).
fn drain(splitter: &mut OutputSplitter, into: &mut Vec<(OutPiece, String)>) {
    let mut payload = Vec::new();
    while let Some(piece) = splitter.next_piece(&mut payload) {
        into.push((piece, String::from_utf8(payload.clone()).expect("UTF-8")));
    }
}

fn split(out: &str) -> Vec<(OutPiece, String)> {
    let mut splitter = OutputSplitter::new();
    splitter.push(out.as_bytes());
    let mut pieces = Vec::new();
    drain(&mut splitter, &mut pieces);
    assert!(
        splitter.is_idle() || pieces.is_empty(),
        "bytes left over from {out:?}"
    );
    pieces
}

/// The pieces of `out` delivered in `chunks`.
fn split_chunks<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Vec<(OutPiece, String)> {
    let mut splitter = OutputSplitter::new();
    let mut pieces = Vec::new();
    for chunk in chunks {
        splitter.push(chunk);
        drain(&mut splitter, &mut pieces);
    }
    pieces
}

/// Adjacent keepalives merged: a whitespace run split across pushes is
/// reported as soon as it is seen, so once per push.
fn merged(pieces: Vec<(OutPiece, String)>) -> Vec<(OutPiece, String)> {
    let mut out: Vec<(OutPiece, String)> = Vec::new();
    for p in pieces {
        let repeat = p.0 == OutPiece::Keepalive
            && out.last().is_some_and(|last| last.0 == OutPiece::Keepalive);
        if !repeat {
            out.push(p);
        }
    }
    out
}

fn element(payload: &str) -> (OutPiece, String) {
    (OutPiece::Element, payload.to_owned())
}

fn keepalive() -> (OutPiece, String) {
    (OutPiece::Keepalive, String::new())
}

fn close() -> (OutPiece, String) {
    (
        OutPiece::Close,
        String::from_utf8_lossy(CLOSE_FRAME).into_owned(),
    )
}

fn open_attrs() -> OpenAttrs {
    OpenAttrs {
        id: Some("abc123".into()),
        from: Some("example.com".into()),
        version: Some("1.0".into()),
        lang: Some("en".into()),
    }
}

fn stream_error() -> String {
    let mut out = Vec::new();
    StreamError::with_text(StreamCondition::HostUnknown, "no <such> host").write_to(&mut out);
    String::from_utf8(out).expect("UTF-8")
}

/// A whole session as c2s writes it: header, features, SASL, restart,
/// stanzas, keepalives, a stream error and the close.
fn session() -> String {
    let mut ack = Vec::new();
    sm::write_ack(&mut ack, 4);
    [
        HEADER,
        FEATURES,
        SUCCESS,
        HEADER,
        "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
        "<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>juliet@example.com/balcony</jid></bind></iq>",
        " ",
        TRICKY,
        NESTED,
        "\n\t ",
        "<presence/>",
        std::str::from_utf8(&ack).expect("UTF-8"),
        "<message><body><![CDATA[</message> <x/> ]]></body></message>",
        &stream_error(),
        "</stream:stream>",
    ]
    .concat()
}

fn session_pieces() -> Vec<(OutPiece, String)> {
    vec![
        (OutPiece::Open(open_attrs()), OPEN_PAYLOAD.into()),
        element(&FEATURES.replacen(
            "<stream:features>",
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>",
            1,
        )),
        element(SUCCESS),
        (OutPiece::Open(open_attrs()), OPEN_PAYLOAD.into()),
        element(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
             <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
        ),
        element(
            "<iq xmlns='jabber:client' type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <jid>juliet@example.com/balcony</jid></bind></iq>",
        ),
        keepalive(),
        element(&TRICKY.replacen("<message", "<message xmlns='jabber:client'", 1)),
        element(&NESTED.replacen("<message", "<message xmlns='jabber:client'", 1)),
        keepalive(),
        element("<presence xmlns='jabber:client'/>"),
        element("<a xmlns='urn:xmpp:sm:3' h='4'/>"),
        element(
            "<message xmlns='jabber:client'><body><![CDATA[</message> <x/> ]]></body></message>",
        ),
        element(&stream_error().replacen(
            "<stream:error>",
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>",
            1,
        )),
        close(),
    ]
}

// ---------------------------------------------------------------------------
// Output

#[test]
fn the_header_becomes_open_and_the_declaration_is_dropped() {
    assert_eq!(
        split(HEADER),
        vec![(OutPiece::Open(open_attrs()), OPEN_PAYLOAD.into())]
    );
}

#[test]
fn header_values_are_unescaped_and_escaped_again() {
    let header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
                  id='x&amp;y' version='1.0' xml:lang='e&apos;n&#65;&#x42;&lt;'>";
    let pieces = split(header);
    let attrs = OpenAttrs {
        id: Some("x&y".into()),
        from: None,
        version: Some("1.0".into()),
        lang: Some("e'nAB<".into()),
    };
    let payload = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='x&amp;y' version='1.0' \
                   xml:lang='e&apos;nAB&lt;'/>";
    assert_eq!(pieces, vec![(OutPiece::Open(attrs), payload.into())]);
}

#[test]
fn a_whole_session_splits_into_its_pieces() {
    assert_eq!(split(&session()), session_pieces());
}

#[test]
fn stream_errors_and_features_declare_the_stream_prefix() {
    let pieces = split(&stream_error());
    assert_eq!(pieces.len(), 1);
    assert!(
        pieces[0].1.starts_with(
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns="
        ),
        "{pieces:?}"
    );
    // Already declared: unchanged.
    let declared = "<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>";
    assert_eq!(split(declared), vec![element(declared)]);
}

#[test]
fn namespaced_elements_are_copied_unchanged() {
    let mut ack = Vec::new();
    sm::write_ack(&mut ack, 4);
    let ack = String::from_utf8(ack).expect("UTF-8");
    for el in [
        SUCCESS,
        &ack,
        "<iq xmlns=\"jabber:client\" id='1'/>",
        "<db:result xmlns:db='jabber:server:dialback'/>",
    ] {
        assert_eq!(split(el), vec![element(el)], "{el}");
    }
}

#[test]
fn stanzas_get_the_client_namespace_on_the_top_element_only() {
    assert_eq!(
        split("<presence/>"),
        vec![element("<presence xmlns='jabber:client'/>")]
    );
    assert_eq!(
        split("<iq\ttype='get'/>"),
        vec![element("<iq xmlns='jabber:client'\ttype='get'/>")]
    );
    assert_eq!(
        split("<message><body>a</body><x><y/></x></message>"),
        vec![element(
            "<message xmlns='jabber:client'><body>a</body><x><y/></x></message>"
        )]
    );
    // An attribute merely named like xmlns is not a declaration.
    assert_eq!(
        split("<iq xmlns:foo='bar' id='1'/>"),
        vec![element(
            "<iq xmlns='jabber:client' xmlns:foo='bar' id='1'/>"
        )]
    );
}

#[test]
fn tricky_attribute_values_and_content_do_not_end_an_element() {
    let expected = TRICKY.replacen("<message", "<message xmlns='jabber:client'", 1);
    assert_eq!(split(TRICKY), vec![element(&expected)]);
    for el in [
        "<message xmlns='jabber:client'><!-- </message> --><?pi </message>?>\
         <body><![CDATA[<x>]]]]><![CDATA[></message>]]></body></message>",
        "<message xmlns='jabber:client'><message xmlns='jabber:client'><message/></message></message>",
        "<message xmlns='jabber:client' a=\"'>'\" b='\">\"'/>",
    ] {
        assert_eq!(split(el), vec![element(el)], "{el}");
    }
}

#[test]
fn whitespace_between_elements_is_one_keepalive_per_run() {
    assert_eq!(split(" "), vec![keepalive()]);
    assert_eq!(
        split("<a xmlns='x'/> \r\n<b xmlns='y'/>\t\t"),
        vec![
            element("<a xmlns='x'/>"),
            keepalive(),
            element("<b xmlns='y'/>"),
            keepalive()
        ]
    );
    // Whitespace inside an element is content.
    assert_eq!(
        split("<a xmlns='x'> </a>"),
        vec![element("<a xmlns='x'> </a>")]
    );
}

#[test]
fn the_stream_close_becomes_close() {
    assert_eq!(split("</stream:stream>"), vec![close()]);
    assert_eq!(
        split(&format!("{HEADER}</stream:stream>")),
        vec![(OutPiece::Open(open_attrs()), OPEN_PAYLOAD.into()), close()]
    );
}

#[test]
fn every_split_point_gives_the_same_pieces() {
    let out = session();
    let whole = session_pieces();
    let bytes = out.as_bytes();
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        let pieces = split_chunks([a, b].into_iter());
        assert_eq!(merged(pieces), whole, "split at {i}");
    }
    let one_by_one = split_chunks(bytes.chunks(1));
    assert_eq!(merged(one_by_one), whole, "one byte at a time");
    for size in [2, 3, 7, 64] {
        assert_eq!(
            merged(split_chunks(bytes.chunks(size))),
            whole,
            "chunks of {size}"
        );
    }
}

#[test]
fn nothing_comes_out_before_a_piece_is_complete() {
    let mut splitter = OutputSplitter::new();
    let mut payload = vec![1, 2, 3];
    for partial in [
        "<?xml version='1.0'?",
        "><stream:stream xmlns='jabber:client' id='a",
        "'",
    ] {
        splitter.push(partial.as_bytes());
        assert_eq!(splitter.next_piece(&mut payload), None, "{partial}");
        assert!(payload.is_empty(), "payload not cleared");
        assert!(!splitter.is_idle());
    }
    splitter.push(b"><message><body>");
    assert!(matches!(
        splitter.next_piece(&mut payload),
        Some(OutPiece::Open(_))
    ));
    assert_eq!(splitter.next_piece(&mut payload), None);
    splitter.push(b"</body></message>");
    assert_eq!(splitter.next_piece(&mut payload), Some(OutPiece::Element));
    assert_eq!(
        payload,
        b"<message xmlns='jabber:client'><body></body></message>"
    );
    assert!(splitter.is_idle());
}

#[test]
fn idle_splitters_hold_no_heap_and_the_buffer_is_compacted() {
    let mut splitter = OutputSplitter::new();
    let mut payload = Vec::new();
    splitter.push(b"<presence/><message><body>partial");
    assert_eq!(splitter.next_piece(&mut payload), Some(OutPiece::Element));
    assert_eq!(splitter.next_piece(&mut payload), None);
    splitter.release();
    assert!(splitter.buf.capacity() > 0, "released a partial element");
    // The consumed presence is dropped at the next push.
    splitter.push(b"</body></message>");
    assert!(splitter.buf.starts_with(b"<message>"), "not compacted");
    assert_eq!(splitter.next_piece(&mut payload), Some(OutPiece::Element));
    assert_eq!(
        payload,
        b"<message xmlns='jabber:client'><body>partial</body></message>"
    );
    assert!(splitter.is_idle());
    splitter.release();
    assert_eq!(splitter.buf.capacity(), 0);
    // And it works as new afterwards.
    splitter.push(b"<r xmlns='urn:xmpp:sm:3'/>");
    assert_eq!(splitter.next_piece(&mut payload), Some(OutPiece::Element));
    assert_eq!(payload, b"<r xmlns='urn:xmpp:sm:3'/>");
}

#[test]
fn malformed_output_never_panics_or_hangs() {
    for bad in [
        "<",
        "<!",
        "<!-",
        "<![CDA",
        "</",
        "text",
        "a<b",
        "<a",
        "<a '",
        "</a>",
        "<a/><",
        ">>>",
        "<!DOCTYPE x [<!ENTITY e 'x>'>]><a/>",
        "<!-->-->",
        "<?>?>",
        "<![CDATA[]]>",
        "<a></a></a>",
        "<'x'/>",
        "< a/>",
        "<a/ >",
        "<stream:stream/>",
        "<stream:stream>",
        "<stream:stream a='\u{e9}&#xFFFFFFFF;&#;&;&unknown;&amp'>",
        "\u{0}<\u{ff}/>",
    ] {
        let mut splitter = OutputSplitter::new();
        splitter.push(bad.as_bytes());
        let mut payload = Vec::new();
        let mut n = 0;
        while splitter.next_piece(&mut payload).is_some() {
            n += 1;
            assert!(n <= bad.len(), "{bad:?} never ends");
            assert!(payload.len() <= 6 * bad.len() + 128, "{bad:?} grew");
        }
    }
    let pieces = split("text<a xmlns='x'/>");
    assert_eq!(
        pieces,
        vec![element("<a xmlns='x'/>")],
        "stray text is dropped"
    );
    assert_eq!(
        split("<!-- c --><a xmlns='x'/>"),
        vec![element("<a xmlns='x'/>")]
    );
    assert_eq!(split("</a>"), vec![close()]);
}

// ---------------------------------------------------------------------------
// Input

const CLIENT_HEADER: &str = "<stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

fn frame(text: &str) -> (Result<FrameKind, FramingError>, String) {
    let mut into = b"before".to_vec();
    let result = InputTranslator::frame(text.as_bytes(), &mut into);
    let appended = into
        .strip_prefix(b"before")
        .expect("kept what was there")
        .to_vec();
    if result.is_err() {
        assert!(appended.is_empty(), "{text:?} appended on error");
    }
    (result, String::from_utf8(appended).expect("UTF-8"))
}

/// What the c2s framer makes of `bytes`: every event, or the error.
fn framer_events(bytes: &[u8]) -> Vec<Result<FrameEvent, String>> {
    let mut framer = Framer::new(Limits::default());
    framer.push(bytes);
    let mut events = Vec::new();
    loop {
        match framer.next_event() {
            Ok(Some(event)) => events.push(Ok(event)),
            Ok(None) => return events,
            Err(e) => {
                events.push(Err(e.stream_condition().to_owned()));
                return events;
            }
        }
    }
}

#[test]
fn open_becomes_a_stream_header_in_either_quote_style_and_order() {
    for open in [
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0' xml:lang='en'/>",
        "<open xml:lang=\"en\" version=\"1.0\" to=\"example.com\" xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\"/>",
        "<?xml version='1.0'?>\n <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' \
         version='1.0' xml:lang='en'></open> \r\n",
        "<f:open xmlns:f='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0' xml:lang='en'/>",
    ] {
        assert_eq!(
            frame(open),
            (Ok(FrameKind::Open), CLIENT_HEADER.into()),
            "{open}"
        );
    }
}

#[test]
fn the_header_from_open_is_what_the_framer_reads() {
    let (_, header) = frame(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a&amp;b' from='j@example.com' \
         version='1.0' xml:lang='e&apos;n'/>",
    );
    let events = framer_events(header.as_bytes());
    let Some(Ok(FrameEvent::StreamOpen(h))) = events.first() else {
        panic!("{events:?}");
    };
    assert_eq!(h.to.as_deref(), Some("a&b"));
    assert_eq!(h.from.as_deref(), Some("j@example.com"));
    assert_eq!(h.version.as_deref(), Some("1.0"));
    assert_eq!(h.lang.as_deref(), Some("e'n"));
    assert_eq!(h.default_ns, "jabber:client");
    // Absent attributes stay absent.
    let (_, bare) = frame("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    assert_eq!(
        bare,
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    );
}

#[test]
fn an_open_in_another_namespace_is_an_invalid_namespace() {
    let (kind, header) = frame("<open xmlns='urn:wrong' to='example.com'/>");
    assert_eq!(kind, Ok(FrameKind::Open));
    assert_eq!(
        header,
        "<stream:stream xmlns='urn:wrong' xmlns:stream='http://etherx.jabber.org/streams' to='example.com'>"
    );
    let events = framer_events(header.as_bytes());
    assert!(
        matches!(events.first(), Some(Ok(FrameEvent::StreamOpen(h))) if h.default_ns == "urn:wrong"),
        "{events:?}"
    );
    let (_, none) = frame("<open to='example.com'/>");
    assert!(none.starts_with("<stream:stream xmlns='' "), "{none}");
    // jabber:client would pass as a client stream: the framer refuses it.
    let (kind, client) = frame("<open xmlns='jabber:client' to='example.com'/>");
    assert_eq!(kind, Ok(FrameKind::Open));
    let events = framer_events(client.as_bytes());
    assert_eq!(events, vec![Err("invalid-namespace".to_owned())]);
}

#[test]
fn close_becomes_the_stream_end() {
    for close in [
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        " <close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" />\n",
        "<?xml version=\"1.0\"?><close xmlns='urn:ietf:params:xml:ns:xmpp-framing'></close>",
    ] {
        assert_eq!(
            frame(close),
            (Ok(FrameKind::Close), "</stream:stream>".into()),
            "{close}"
        );
    }
    // In another namespace it is just an element, for c2s to refuse.
    let other = "<close xmlns='urn:other'/>";
    assert_eq!(frame(other), (Ok(FrameKind::Element), other.into()));
}

#[test]
fn an_element_is_appended_unchanged() {
    let message = "<message xmlns='jabber:client' to='romeo@example.net' id='a>b'>\
                   <body>x &lt; y <![CDATA[</message>]]></body></message>";
    assert_eq!(frame(message), (Ok(FrameKind::Element), message.into()));
    let padded = format!("<?xml version='1.0'?>\r\n {message} \n");
    assert_eq!(frame(&padded), (Ok(FrameKind::Element), message.into()));
    let empty = "<presence xmlns='jabber:client'/>";
    assert_eq!(frame(empty), (Ok(FrameKind::Element), empty.into()));
    // A comment inside is the framer's to refuse (restricted XML).
    let inner = "<iq xmlns='jabber:client'><!-- x --></iq>";
    assert_eq!(frame(inner), (Ok(FrameKind::Element), inner.into()));
}

#[test]
fn whitespace_frames_are_empty() {
    for empty in ["", " ", "\r\n\t "] {
        assert_eq!(
            frame(empty),
            (Ok(FrameKind::Empty), String::new()),
            "{empty:?}"
        );
    }
}

#[test]
fn frames_that_are_not_one_element_are_refused() {
    use FramingError::*;
    for (text, error) in [
        ("<message xmlns='jabber:client'><body>hi", Incomplete),
        ("<message xmlns='jabber:client' to='a", Incomplete),
        ("<presence", Incomplete),
        ("<", Incomplete),
        ("<!-- unclosed", Incomplete),
        ("<a xmlns='x'><![CDATA[ ]]", Incomplete),
        (
            "<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>",
            NotOneElement,
        ),
        ("<a xmlns='x'/> <b xmlns='x'/>", NotOneElement),
        ("<?xml version='1.0'?>", NotOneElement),
        ("hello", TextOutside),
        ("hi <presence xmlns='jabber:client'/>", TextOutside),
        ("<presence xmlns='jabber:client'/> bye", TextOutside),
        ("<![CDATA[x]]><a/>", TextOutside),
        ("<!DOCTYPE a><a/>", Doctype),
        ("<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>", Doctype),
        ("<!DOCTYPE a [", Doctype),
        ("<!-- c --><a xmlns='x'/>", Restricted("a comment")),
        (
            "<?pi x?><a xmlns='x'/>",
            Restricted("a processing instruction"),
        ),
        (
            "<?xml-stylesheet x?><a xmlns='x'/>",
            Restricted("a processing instruction"),
        ),
        (
            "<a xmlns='x'/><?xml version='1.0'?>",
            Restricted("a processing instruction"),
        ),
        (
            "<?xml version='1.0'?><?xml version='1.0'?><a/>",
            Restricted("a processing instruction"),
        ),
        ("</stream:stream>", UnexpectedEndTag),
        ("<a></a></a>", UnexpectedEndTag),
    ] {
        assert_eq!(frame(text).0, Err(error), "{text:?}");
    }
    assert!(matches!(frame("<open to='a' to='b'/>").0, Err(BadOpen(_))));
    assert!(matches!(
        frame("<open xmlns:a='x' a:b:c='d'/>").0,
        Err(BadOpen(_))
    ));
    assert!(matches!(frame("<close x='1' x='2'/>").0, Err(BadClose(_))));
}

#[test]
fn errors_say_what_was_wrong() {
    assert_eq!(
        FramingError::Restricted("a comment").to_string(),
        "a comment outside the element of a frame"
    );
    assert!(
        FramingError::BadOpen("why".into())
            .to_string()
            .contains("why")
    );
    assert!(
        FramingError::NotOneElement
            .to_string()
            .contains("one element")
    );
}

/// What the server writes, through the splitter and back through the
/// input side, is what a framer reads as the same stream.
#[test]
fn output_pieces_round_trip_through_the_input_side() {
    let mut splitter = OutputSplitter::new();
    splitter.push(session().as_bytes());
    let mut payload = Vec::new();
    let mut stream = Vec::new();
    let mut elements = 0;
    while let Some(piece) = splitter.next_piece(&mut payload) {
        let kind = InputTranslator::frame(&payload, &mut stream);
        let expected = match piece {
            OutPiece::Open(_) => FrameKind::Open,
            OutPiece::Element => FrameKind::Element,
            OutPiece::Close => FrameKind::Close,
            OutPiece::Keepalive => FrameKind::Empty,
        };
        assert_eq!(
            kind,
            Ok(expected),
            "{:?}",
            String::from_utf8_lossy(&payload)
        );
        if piece == OutPiece::Element {
            elements += 1;
            assert!(stream.ends_with(&payload), "an element was changed");
        }
    }
    // A stream restart needs a fresh framer, as over TCP: read the second
    // stream, from its header on.
    let text = String::from_utf8(stream).expect("UTF-8");
    let second = text.rfind("<stream:stream").expect("two headers");
    let events = framer_events(&text.as_bytes()[second..]);
    assert_eq!(events.len(), 1 + (elements - 2) + 1, "{events:?}");
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    assert_eq!(events.last(), Some(&Ok(FrameEvent::StreamClose)));
    let first = framer_events(&text.as_bytes()[..second]);
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(first.iter().all(Result::is_ok), "{first:?}");
}
