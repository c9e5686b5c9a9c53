//! Bytes against the stream: RFC 6120 stream errors (§4.9.3), restricted
//! XML (§11.1), the XML and namespace well-formedness rules (§11.2, and
//! XML 1.0's `Char` production), and the framer's size and depth limits.
//! One table, one server; after every row the server must still serve
//! others ([`assert_healthy`]).

use super::*;

/// The table's server: the smallest stanza limit RFC 6120 §13.12 allows
/// (so over-limit rows are quick), the framer's default depth of 32.
const MAX_STANZA: usize = 10_000;
const MAX_DEPTH: usize = 32;

/// The XML declaration and the stream header a client normally sends.
const DECL: &str = "<?xml version='1.0'?>";
const HEADER: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

/// Where the client is when it sends the row's bytes.
#[derive(Clone, Copy, Debug)]
enum At {
    /// Connected, nothing sent: the bytes include the header, if any.
    Connected,
    /// Its stream is open (header and features exchanged).
    Opened,
    /// Authenticated and restarted, but no resource bound.
    Authenticated,
    /// Logged in as Alice with a bound resource.
    Bound,
}

enum Expect {
    /// The stream ends with this condition; the error's text must contain
    /// the second string (the limit's value, for a limit).
    Stream(&'static str, &'static str),
    /// This stanza error comes back and the stream goes on:
    /// (stanza, id, condition, type).
    Stanza(&'static str, &'static str, &'static str, &'static str),
    /// The iq with this id is answered with a result; the stream goes on.
    Result(&'static str),
}

struct Case {
    name: &'static str,
    at: At,
    bytes: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, at: At, bytes: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        at,
        bytes: bytes.into(),
        expect,
    }
}

/// A message to Bob whose body is the given raw bytes.
fn body(raw: &[u8]) -> Vec<u8> {
    let mut out = b"<message to='bob@localhost' type='chat'><body>".to_vec();
    out.extend_from_slice(raw);
    out.extend_from_slice(b"</body></message>");
    out
}

fn stream(condition: &'static str) -> Expect {
    Expect::Stream(condition, "")
}

/// `<message>` to `to` with `levels` nested elements in all (the message
/// itself is level 1).
fn nested(to: &str, id: &str, levels: usize) -> String {
    let inner = levels - 1;
    format!(
        "<message to='{to}' id='{id}'>{}{}</message>",
        "<a>".repeat(inner),
        "</a>".repeat(inner)
    )
}

/// An iq ping carrying `n` attributes.
fn many_attributes(id: &str, n: usize) -> String {
    let attrs: String = (0..n).map(|i| format!(" a{i}=''")).collect();
    format!("<iq type='get' id='{id}' to='localhost'{attrs}><ping xmlns='{NS_PING}'/></iq>")
}

/// Nine levels of ten-fold entity expansion ("billion laughs").
fn billion_laughs() -> String {
    let mut dtd = String::from("<!DOCTYPE message [<!ENTITY lol0 'lol'>");
    for i in 1..10 {
        let refs = format!("&lol{};", i - 1).repeat(10);
        dtd.push_str(&format!("<!ENTITY lol{i} '{refs}'>"));
    }
    dtd.push_str("]><message to='bob@localhost'><body>&lol9;</body></message>");
    dtd
}

fn cases() -> Vec<Case> {
    use At::*;
    use Expect::*;
    let header = format!("{DECL}{HEADER}");
    let over = MAX_STANZA + 1;
    let limit_text: &'static str = "10000 bytes";
    vec![
        // ---- Before and in the stream header.
        case(
            "DTD before the stream header",
            Connected,
            format!("{DECL}<!DOCTYPE stream:stream [<!ENTITY x 'y'>]>{HEADER}"),
            stream("restricted-xml"),
        ),
        case(
            "processing instruction after the XML declaration",
            Connected,
            format!("{DECL}<?xml-stylesheet href='evil.xsl'?>{HEADER}"),
            stream("restricted-xml"),
        ),
        case(
            "second XML declaration",
            Connected,
            format!("{DECL}{DECL}{HEADER}"),
            stream("restricted-xml"),
        ),
        case(
            "comment before the stream header",
            Connected,
            format!("{DECL}<!-- hello -->{HEADER}"),
            stream("restricted-xml"),
        ),
        case(
            "XML declaration of another encoding",
            Connected,
            format!("<?xml version='1.0' encoding='ISO-8859-1'?>{HEADER}"),
            stream("unsupported-encoding"),
        ),
        case(
            "text before the stream header",
            Connected,
            format!("hello{header}"),
            stream("not-well-formed"),
        ),
        case(
            "stream header over its size limit",
            Connected,
            format!(
                "{DECL}<stream:stream xmlns='jabber:client' \
                 xmlns:stream='http://etherx.jabber.org/streams' to='localhost' \
                 version='1.0' junk='{}'>",
                "x".repeat(9_000)
            ),
            Stream("policy-violation", "8192 bytes"),
        ),
        case(
            "stream header with an unbound prefix",
            Connected,
            format!("{DECL}<s:stream xmlns='jabber:client' to='localhost' version='1.0'>"),
            stream("not-well-formed"),
        ),
        case(
            "stream header to an unknown host",
            Connected,
            header.replace("to='localhost'", "to='example.net'"),
            stream("host-unknown"),
        ),
        case(
            "stream header without a version",
            Connected,
            format!("{DECL}{}", HEADER.replace(" version='1.0'", "")),
            stream("unsupported-version"),
        ),
        case(
            "stream header with a wrong default namespace",
            Connected,
            header.replace("xmlns='jabber:client'", "xmlns='jabber:wrong'"),
            stream("invalid-namespace"),
        ),
        case(
            "stream header in a wrong stream namespace",
            Connected,
            header.replace("http://etherx.jabber.org/streams", "urn:wrong"),
            stream("invalid-namespace"),
        ),
        // ---- Before authentication.
        case(
            "message before authentication",
            Opened,
            "<message to='bob@localhost'><body>hi</body></message>",
            stream("not-authorized"),
        ),
        case(
            "mismatched end tag",
            Opened,
            "<message to='bob@localhost'><body>hi</bdy></message>",
            stream("not-well-formed"),
        ),
        case("second stream header", Opened, HEADER, stream("bad-format")),
        case(
            "stream closed with another name",
            Opened,
            "</stream:foo>",
            stream("not-well-formed"),
        ),
        case(
            "message before resource binding",
            Authenticated,
            "<message to='bob@localhost'><body>hi</body></message>",
            stream("not-authorized"),
        ),
        // ---- Restricted XML (RFC 6120 §11.1) in the stream.
        case(
            "DTD with an internal entity",
            Bound,
            "<!DOCTYPE message [<!ENTITY x 'y'>]>",
            stream("restricted-xml"),
        ),
        case(
            "entity expansion (billion laughs)",
            Bound,
            billion_laughs(),
            stream("restricted-xml"),
        ),
        case(
            "external entity",
            Bound,
            "<!DOCTYPE message [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>\
             <message to='bob@localhost'><body>&xxe;</body></message>",
            stream("restricted-xml"),
        ),
        case(
            "undeclared entity in text",
            Bound,
            body(b"&lol9;"),
            stream("restricted-xml"),
        ),
        case(
            "undeclared entity in an attribute",
            Bound,
            "<message to='&xxe;'><body>hi</body></message>",
            stream("restricted-xml"),
        ),
        case(
            "processing instruction between stanzas",
            Bound,
            "<?evil instruction?>",
            stream("restricted-xml"),
        ),
        case(
            "processing instruction inside a stanza",
            Bound,
            "<message to='bob@localhost'><?evil instruction?><body>hi</body></message>",
            stream("restricted-xml"),
        ),
        case(
            "comment between stanzas",
            Bound,
            "<!-- hello -->",
            stream("restricted-xml"),
        ),
        case(
            "comment inside a stanza",
            Bound,
            "<message to='bob@localhost'><!-- hello --><body>hi</body></message>",
            stream("restricted-xml"),
        ),
        // ---- Limits.
        case(
            "nesting at the depth limit",
            Bound,
            nested("nobody@localhost", "deep-ok", MAX_DEPTH),
            Stanza("message", "deep-ok", "service-unavailable", "cancel"),
        ),
        case(
            "nesting beyond the depth limit",
            Bound,
            nested("bob@localhost", "too-deep", MAX_DEPTH + 1),
            Stream("policy-violation", "32 levels"),
        ),
        case(
            "stanza just under the size limit",
            Bound,
            format!(
                "<message to='nobody@localhost' id='fits'><body>{}</body></message>",
                "x".repeat(9_000)
            ),
            Stanza("message", "fits", "service-unavailable", "cancel"),
        ),
        case(
            "huge text",
            Bound,
            body("x".repeat(over).as_bytes()),
            Stream("policy-violation", limit_text),
        ),
        case(
            "huge attribute value",
            Bound,
            format!("<message to='bob@localhost' id='{}'/>", "x".repeat(over)),
            Stream("policy-violation", limit_text),
        ),
        case(
            "many attributes within the size limit",
            Bound,
            many_attributes("attrs", 1_000),
            Result("attrs"),
        ),
        case(
            "many attributes beyond the size limit",
            Bound,
            many_attributes("attrs", 2_000),
            Stream("policy-violation", limit_text),
        ),
        case(
            "element name beyond the size limit",
            Bound,
            format!("<{} to='bob@localhost'/>", "m".repeat(over)),
            Stream("policy-violation", limit_text),
        ),
        case(
            "long unknown element name",
            Bound,
            format!("<{} xmlns='jabber:client'/>", "m".repeat(9_000)),
            stream("unsupported-stanza-type"),
        ),
        // ---- Well-formedness.
        case(
            "duplicate attribute",
            Bound,
            "<message to='bob@localhost' to='carol@localhost'><body>hi</body></message>",
            stream("not-well-formed"),
        ),
        case(
            "duplicate attribute through two prefixes",
            Bound,
            "<message to='bob@localhost' xmlns:a='urn:x' xmlns:b='urn:x' a:y='1' b:y='2'/>",
            stream("not-well-formed"),
        ),
        case(
            "invalid UTF-8",
            Bound,
            body(b"\xff\xfe\xc3"),
            stream("not-well-formed"),
        ),
        case(
            "overlong UTF-8",
            Bound,
            body(b"\xc0\xbc"),
            stream("not-well-formed"),
        ),
        case(
            "UTF-8 encoded surrogate",
            Bound,
            body(b"\xed\xa0\x80"),
            stream("not-well-formed"),
        ),
        case(
            "NUL byte in text",
            Bound,
            body(b"a\0b"),
            stream("not-well-formed"),
        ),
        case(
            "NUL byte in an attribute value",
            Bound,
            "<message to='bob@localhost' id='a\0b'/>",
            stream("not-well-formed"),
        ),
        case(
            "control character in text",
            Bound,
            body(b"a\x01b"),
            stream("not-well-formed"),
        ),
        case(
            "escape character in an attribute value",
            Bound,
            "<message to='bob@localhost' id='a\x1bb'/>",
            stream("not-well-formed"),
        ),
        case(
            "U+FFFE in text",
            Bound,
            body("a\u{FFFE}b".as_bytes()),
            stream("not-well-formed"),
        ),
        case(
            "U+FFFF in an attribute value",
            Bound,
            "<message to='bob@localhost' id='a\u{FFFF}b'/>",
            stream("not-well-formed"),
        ),
        case(
            "character reference to NUL",
            Bound,
            body(b"&#0;"),
            stream("not-well-formed"),
        ),
        case(
            "character reference to a control character in an attribute",
            Bound,
            "<message to='bob@localhost' id='&#x1;'/>",
            stream("not-well-formed"),
        ),
        case(
            "character reference to U+FFFE",
            Bound,
            body(b"&#xFFFE;"),
            stream("not-well-formed"),
        ),
        case(
            "character reference to a surrogate",
            Bound,
            body(b"&#xD800;"),
            stream("not-well-formed"),
        ),
        case(
            "character reference beyond Unicode",
            Bound,
            body(b"&#1114112;"),
            stream("not-well-formed"),
        ),
        case(
            "text between stanzas",
            Bound,
            "hello",
            stream("not-well-formed"),
        ),
        case(
            "CDATA section between stanzas",
            Bound,
            "<![CDATA[hello]]>",
            stream("not-well-formed"),
        ),
        case(
            "end tag without a start tag",
            Bound,
            "</message>",
            stream("not-well-formed"),
        ),
        case(
            "stream closed inside a stanza",
            Bound,
            "<message to='bob@localhost'><body>hi</stream:stream>",
            stream("not-well-formed"),
        ),
        case(
            "second stream header after binding",
            Bound,
            format!("{DECL}{HEADER}"),
            stream("restricted-xml"),
        ),
        // ---- Namespaces (XML Names, RFC 6120 §4.8, §11.2).
        case(
            "unbound prefix on a child",
            Bound,
            "<message to='bob@localhost'><x:y/></message>",
            stream("not-well-formed"),
        ),
        case(
            "unbound prefix on a stanza",
            Bound,
            "<foo:message to='bob@localhost'/>",
            stream("not-well-formed"),
        ),
        case(
            "unbound prefix on an attribute",
            Bound,
            "<message to='bob@localhost' x:y='1'/>",
            stream("not-well-formed"),
        ),
        case(
            "stanza in the stream namespace",
            Bound,
            "<stream:message to='bob@localhost'><body>hi</body></message>",
            stream("not-well-formed"),
        ),
        case(
            "stanza in the stream namespace, well-formed",
            Bound,
            "<stream:message to='bob@localhost'><body>hi</body></stream:message>",
            stream("invalid-namespace"),
        ),
        case(
            "prefix bound to the stream namespace inside a stanza",
            Bound,
            "<message to='nobody@localhost' id='s-ns' \
             xmlns:s='http://etherx.jabber.org/streams'><s:error/><body>hi</body></message>",
            Stanza("message", "s-ns", "service-unavailable", "cancel"),
        ),
        case(
            "stream error from the client inside a stanza",
            Bound,
            "<message to='nobody@localhost' id='s-err'><stream:error>\
             <conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></message>",
            Stanza("message", "s-err", "service-unavailable", "cancel"),
        ),
        case(
            "the xml prefix redefined",
            Bound,
            "<message to='bob@localhost' xmlns:xml='urn:evil'/>",
            stream("not-well-formed"),
        ),
        case(
            "xmlns bound as a prefix",
            Bound,
            "<message to='bob@localhost' xmlns:xmlns='urn:evil'/>",
            stream("not-well-formed"),
        ),
        case(
            "a prefix bound to the XML namespace",
            Bound,
            "<message to='bob@localhost' xmlns:x='http://www.w3.org/XML/1998/namespace'/>",
            stream("not-well-formed"),
        ),
        case(
            "the xmlns namespace as default namespace",
            Bound,
            "<message to='bob@localhost' xmlns='http://www.w3.org/2000/xmlns/'/>",
            stream("not-well-formed"),
        ),
        case(
            "message in the jabber:server namespace",
            Bound,
            "<message xmlns='jabber:server' to='bob@localhost'><body>hi</body></message>",
            stream("invalid-namespace"),
        ),
        case(
            "iq in an unknown namespace",
            Bound,
            format!(
                "<iq xmlns='urn:evil' type='get' id='ns' to='localhost'>\
                 <ping xmlns='{NS_PING}'/></iq>"
            ),
            stream("invalid-namespace"),
        ),
        case(
            "unknown top-level element",
            Bound,
            "<foo xmlns='jabber:client'/>",
            stream("unsupported-stanza-type"),
        ),
    ]
}

/// A client at `at`, ready to send the row's bytes.
fn client_at(server: &TestServer, at: At) -> Client {
    match at {
        At::Connected => Client::connect(server.c2s_addr()),
        At::Opened => opened(server),
        At::Authenticated => {
            let mut client = opened(server);
            assert_eq!(
                client.auth_plain(ALICE.0, ALICE.1),
                Sasl::Success(Vec::new())
            );
            client.restart();
            client
        }
        At::Bound => login(server, ALICE, Some("hostile")),
    }
}

/// Plays one row; `Err` describes how the answer was wrong.
fn play(server: &TestServer, case: &Case) -> Result<(), String> {
    let mut client = client_at(server, case.at);
    client.send_bytes(&case.bytes);
    match case.expect {
        Expect::Stream(condition, text) => {
            let error = stream_error(&mut client, case.name);
            let got = stream_condition(&error);
            if got != condition {
                return Err(format!("expected <{condition}/>, got {error}"));
            }
            if !error_text(&error).contains(text) {
                return Err(format!("the error's text does not name {text:?}: {error}"));
            }
        }
        Expect::Stanza(name, id, condition, error_type) => {
            let reply = client.non_presence();
            assert_stanza_error(&reply, name, Some(id), condition, error_type);
            let answer = client.ping("after");
            assert_result(&answer, "after");
        }
        Expect::Result(id) => {
            assert_result(&client.non_presence(), id);
            let answer = client.ping("after");
            assert_result(&answer, "after");
        }
    }
    Ok(())
}

#[test]
fn every_row_gets_its_error_and_the_server_serves_others() {
    let server = server_with(&format!("[limits]\nmax_stanza_bytes = {MAX_STANZA}\n"), &[]);
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        // A panic (a missing answer, a wrong stanza error) is one row's
        // failure too; the rest still run.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| play(&server, case)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{}: {e}", case.name)),
            Err(panic) => failures.push(format!("{}: {}", case.name, panic_text(&panic))),
        }
        assert_healthy(&server, case.name);
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string())
}
