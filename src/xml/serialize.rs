//! Writing elements as bytes, straight into the caller's buffer.
//!
//! Namespaces: an element carries `xmlns='…'` only when its namespace differs
//! from the default namespace in scope (`parent_ns`). Elements in the stream
//! namespace are the exception: they are written with the `stream:` prefix
//! (`<stream:features>`, `<stream:error>`), as RFC 6120 shows them and as some
//! clients match them, and their children stay in the outer default
//! namespace. The prefix is declared on the outermost such element unless
//! `parent_ns` passed to [`Element::write_to`] is `jabber:client` or
//! `jabber:server`: that means writing into a stream whose header declares
//! it, as the one from [`StreamHeader::write_to`] does.
//!
//! Attributes named `{uri}local` get a generated prefix (`ns0`, `ns1`, …)
//! declared on the same element; such a prefix is never used on element
//! names, so shadowing one declared by an ancestor is harmless.

use std::fmt;

use super::element::{Element, Node};
use super::framer::StreamHeader;
use super::{NS_CLIENT, NS_SERVER, NS_STREAM, NS_XML};

/// An element serialized once for many recipients: only `to` differs per
/// copy (a MUC message, a presence broadcast).
///
/// The copy written by [`Prepared::write_with_to`] has `to` as its *first*
/// attribute, wherever it stood in the element, and any `to` the element had
/// is left out; otherwise it is byte-for-byte what [`Element::write_to`]
/// writes. Attribute order carries no meaning in XML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// Everything but the `to` attribute: `<name[ xmlns='…']` then the rest.
    bytes: Vec<u8>,
    /// Where ` to='…'` goes.
    split: usize,
}

impl Prepared {
    /// Appends the element with this `to` to `out`.
    pub fn write_with_to(&self, to: &str, out: &mut Vec<u8>) {
        let (head, tail) = self
            .bytes
            .split_at_checked(self.split)
            .unwrap_or((&self.bytes, &[]));
        out.reserve(self.bytes.len() + to.len() + 6);
        out.extend_from_slice(head);
        out.extend_from_slice(b" to='");
        escape_attr_into(to, out);
        out.push(b'\'');
        out.extend_from_slice(tail);
    }

    /// The element with this `to`, in a new buffer.
    /// The serialized length without a `to` attribute: what
    /// [`Element::to_bytes`] gives for an element that has none.
    pub fn len_without_to(&self) -> usize {
        self.bytes.len()
    }

    /// The serialized element without a `to` attribute.
    pub fn bytes_without_to(&self) -> &[u8] {
        &self.bytes
    }

    pub fn to_bytes_with_to(&self, to: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + to.len() + 6);
        self.write_with_to(to, &mut out);
        out
    }
}

impl Element {
    /// Appends the serialized element to `out`. `parent_ns` is the default
    /// namespace in scope where the element is written: `jabber:client` for
    /// a stanza on a client stream, `""` for a standalone document.
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        write_element(self, out, parent_ns, is_stream_context(parent_ns));
    }

    /// The serialized element in a new buffer (see [`Element::write_to`]).
    pub fn to_bytes(&self, parent_ns: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_to(&mut out, parent_ns);
        out
    }

    /// Serializes the element without its `to` attribute, ready to be
    /// written once per recipient (see [`Prepared`]).
    pub fn prepare_with_to(&self, parent_ns: &str) -> Prepared {
        let mut bytes = Vec::with_capacity(128);
        let scope = write_name(self, &mut bytes, parent_ns, is_stream_context(parent_ns));
        let split = bytes.len();
        write_attrs(self, &mut bytes, true);
        write_content(self, &mut bytes, scope);
        Prepared { bytes, split }
    }
}

/// Writes with no namespace in scope, so the root always carries `xmlns`.
impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes("");
        f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
}

impl StreamHeader {
    /// Appends the opening stream tag (no XML declaration, which is
    /// optional): `<stream:stream xmlns='…' xmlns:stream='…' …>`, with the
    /// `stream` prefix whatever [`StreamHeader::stream_prefix`] says, since
    /// that is what the serializer's `stream:` elements rely on. The default
    /// namespace declaration is left out when `default_ns` is empty.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<stream:stream");
        if !self.default_ns.is_empty() {
            write_attr_raw(out, b"xmlns", &self.default_ns);
        }
        write_attr_raw(out, b"xmlns:stream", NS_STREAM);
        let optional = [
            (&b"to"[..], &self.to),
            (b"from", &self.from),
            (b"id", &self.id),
            (b"version", &self.version),
            (b"xml:lang", &self.lang),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                write_attr_raw(out, name, v);
            }
        }
        out.push(b'>');
    }
}

fn is_stream_context(ns: &str) -> bool {
    ns == NS_CLIENT || ns == NS_SERVER
}

/// What the children of an element inherit from it.
#[derive(Clone, Copy)]
struct Scope<'a> {
    default_ns: &'a str,
    /// Whether the `stream` prefix is declared.
    stream_prefix: bool,
}

fn write_element(el: &Element, out: &mut Vec<u8>, default_ns: &str, stream_prefix: bool) {
    let scope = write_name(el, out, default_ns, stream_prefix);
    write_attrs(el, out, false);
    write_content(el, out, scope);
}

/// Writes `<name` and any namespace declaration the element needs.
fn write_name<'a>(
    el: &'a Element,
    out: &mut Vec<u8>,
    default_ns: &'a str,
    stream_prefix: bool,
) -> Scope<'a> {
    out.push(b'<');
    if el.ns == NS_STREAM {
        out.extend_from_slice(b"stream:");
        out.extend_from_slice(el.name.as_bytes());
        if !stream_prefix {
            write_attr_raw(out, b"xmlns:stream", NS_STREAM);
        }
        Scope {
            default_ns,
            stream_prefix: true,
        }
    } else {
        out.extend_from_slice(el.name.as_bytes());
        if el.ns != default_ns {
            write_attr_raw(out, b"xmlns", &el.ns);
        }
        Scope {
            default_ns: &el.ns,
            stream_prefix,
        }
    }
}

fn write_attr_raw(out: &mut Vec<u8>, name: &[u8], value: &str) {
    out.push(b' ');
    out.extend_from_slice(name);
    out.extend_from_slice(b"='");
    escape_attr_into(value, out);
    out.push(b'\'');
}

/// `{uri}local` → `(uri, local)`.
fn split_expanded(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix('{')?.split_once('}')
}

fn write_attrs(el: &Element, out: &mut Vec<u8>, skip_to: bool) {
    for (i, (name, value)) in el.attrs.iter().enumerate() {
        if skip_to && name == "to" {
            continue;
        }
        out.push(b' ');
        match split_expanded(name) {
            Some((NS_XML, local)) => {
                out.extend_from_slice(b"xml:");
                out.extend_from_slice(local.as_bytes());
            }
            Some((uri, local)) => {
                // The prefix is named after the first attribute with this
                // URI, which makes it unique per URI without a lookup table.
                let first = el
                    .attrs
                    .iter()
                    .position(|(k, _)| split_expanded(k).is_some_and(|(u, _)| u == uri))
                    .unwrap_or(i);
                if first == i {
                    out.extend_from_slice(b"xmlns:");
                    write_prefix(out, first);
                    out.extend_from_slice(b"='");
                    escape_attr_into(uri, out);
                    out.extend_from_slice(b"' ");
                }
                write_prefix(out, first);
                out.push(b':');
                out.extend_from_slice(local.as_bytes());
            }
            None => out.extend_from_slice(name.as_bytes()),
        }
        out.extend_from_slice(b"='");
        escape_attr_into(value, out);
        out.push(b'\'');
    }
}

fn write_prefix(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(b"ns");
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut n = n;
    loop {
        if let Some(d) = digits.get_mut(len) {
            *d = b'0' + (n % 10) as u8;
        }
        len += 1;
        n /= 10;
        if n == 0 || len >= digits.len() {
            break;
        }
    }
    for d in digits.iter().take(len).rev() {
        out.push(*d);
    }
}

/// Writes `>children</name>`, or `/>` when there are no children.
fn write_content(el: &Element, out: &mut Vec<u8>, scope: Scope<'_>) {
    if el.children.is_empty() {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    for child in &el.children {
        match child {
            Node::Element(e) => write_element(e, out, scope.default_ns, scope.stream_prefix),
            Node::Text(t) => escape_text_into(t, out),
        }
    }
    out.extend_from_slice(b"</");
    if el.ns == NS_STREAM {
        out.extend_from_slice(b"stream:");
    }
    out.extend_from_slice(el.name.as_bytes());
    out.push(b'>');
}

/// Appends `s` escaped as character data. `>` is escaped too so that `]]>`
/// can never appear; `\r` becomes a character reference because a parser
/// turns a raw one into `\n`.
pub fn escape_text_into(s: &str, out: &mut Vec<u8>) {
    escape(s.as_bytes(), out, false);
}

/// Appends `s` escaped for an attribute value between single (or double)
/// quotes. Tab, newline and carriage return become character references
/// because attribute-value normalization would otherwise turn them into
/// spaces.
pub fn escape_attr_into(s: &str, out: &mut Vec<u8>) {
    escape(s.as_bytes(), out, true);
}

/// Bytes that need escaping in character data.
const IN_TEXT: u8 = 1;
/// Bytes that need escaping in an attribute value.
const IN_ATTR: u8 = 2;

/// For each byte, which of [`IN_TEXT`] and [`IN_ATTR`] it needs escaping
/// in: one load and test per byte when scanning for them.
static SPECIAL: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = if b == b'\n' as usize || b == b'\t' as usize {
            IN_ATTR
        } else {
            IN_TEXT | IN_ATTR
        };
        b += 1;
    }
    table[b'&' as usize] = IN_TEXT | IN_ATTR;
    table[b'<' as usize] = IN_TEXT | IN_ATTR;
    table[b'>' as usize] = IN_TEXT | IN_ATTR;
    table[b'\'' as usize] = IN_ATTR;
    table[b'"' as usize] = IN_ATTR;
    table
};

fn escape(s: &[u8], out: &mut Vec<u8>, attr: bool) {
    // Most strings need no escaping at all; a branch-light scan for that
    // case is much faster than the general loop below.
    let mask = if attr { IN_ATTR } else { IN_TEXT };
    // A `u8` index is always within the 256 entries.
    let plain = !s.iter().any(|&b| SPECIAL[usize::from(b)] & mask != 0);
    if plain {
        out.extend_from_slice(s);
        return;
    }
    out.reserve(s.len());
    let mut run = 0;
    for (i, &b) in s.iter().enumerate() {
        let replacement: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#13;",
            b'\'' if attr => b"&apos;",
            b'"' if attr => b"&quot;",
            b'\n' if attr => b"&#10;",
            b'\t' if attr => b"&#9;",
            b'\n' | b'\t' => continue,
            // Other C0 controls cannot be represented in XML 1.0 at all,
            // not even as character references; dropping them keeps the
            // output well-formed.
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(s.get(run..i).unwrap_or_default());
        out.extend_from_slice(replacement);
        run = i + 1;
    }
    out.extend_from_slice(s.get(run..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap_or("<invalid utf-8>")
    }

    fn parse(x: &str) -> Element {
        match Element::parse(x) {
            Ok(e) => e,
            Err(e) => panic!("{x}: {e}"),
        }
    }

    #[test]
    fn xmlns_only_when_it_changes() {
        let m = Element::new("message", NS_CLIENT)
            .with_attr("to", "a@b")
            .with_child(Element::new("body", NS_CLIENT).with_text("hi"))
            .with_child(Element::new("x", "urn:x").with_child(Element::new("y", "urn:x")))
            .with_child(Element::new("plain", ""));
        assert_eq!(
            s(&m.to_bytes(NS_CLIENT)),
            "<message to='a@b'><body>hi</body><x xmlns='urn:x'><y/></x><plain xmlns=''/></message>"
        );
        assert_eq!(
            m.to_string(),
            "<message xmlns='jabber:client' to='a@b'><body>hi</body><x xmlns='urn:x'><y/></x><plain xmlns=''/></message>"
        );
        let mut out = b"prefix".to_vec();
        m.write_to(&mut out, NS_CLIENT);
        assert!(out.starts_with(b"prefix<message to="));
    }

    #[test]
    fn stream_namespace_uses_stream_prefix() {
        let f = Element::new("features", NS_STREAM)
            .with_child(Element::new("starttls", "urn:ietf:params:xml:ns:xmpp-tls"))
            .with_child(Element::new("c", ""));
        assert_eq!(
            s(&f.to_bytes(NS_CLIENT)),
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><c xmlns=''/></stream:features>"
        );
        let standalone = f.to_string();
        assert_eq!(
            standalone,
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><c/></stream:features>"
        );
        assert_eq!(parse(&standalone), f);

        // Nested: declared once, on the outermost stream element, when
        // written outside a stream.
        let m = Element::new("message", NS_CLIENT).with_child(
            Element::new("error", NS_STREAM).with_child(Element::new("text", NS_STREAM)),
        );
        assert_eq!(
            m.to_string(),
            "<message xmlns='jabber:client'><stream:error xmlns:stream='http://etherx.jabber.org/streams'>\
             <stream:text/></stream:error></message>"
        );
        assert_eq!(parse(&m.to_string()), m);
        assert_eq!(
            s(&m.to_bytes(NS_SERVER)),
            "<message xmlns='jabber:client'><stream:error><stream:text/></stream:error></message>"
        );
    }

    #[test]
    fn escaping() {
        let e = Element::new("a", "")
            .with_attr("v", "<&>\"' \t\n\r\u{1}é")
            .with_text("<&>\"' \t\n\r\u{1}é]]>");
        let out = e.to_string();
        assert_eq!(
            out,
            "<a v='&lt;&amp;&gt;&quot;&apos; &#9;&#10;&#13;é'>&lt;&amp;&gt;\"' \t\n&#13;é]]&gt;</a>"
        );
        let back = parse(&out);
        assert_eq!(back.attr("v"), Some("<&>\"' \t\n\ré"));
        assert_eq!(back.text(), "<&>\"' \t\n\ré]]>");
    }

    #[test]
    fn namespaced_attributes() {
        let e = Element::new("a", "urn:a")
            .with_attr("{urn:p}x", "1")
            .with_attr("plain", "2")
            .with_attr("{urn:q}y", "3")
            .with_attr("{urn:p}z", "4")
            .with_attr("xml:lang", "en")
            .with_child(Element::new("b", "urn:a").with_attr("{urn:p}x", "5"));
        let out = e.to_string();
        assert_eq!(
            out,
            "<a xmlns='urn:a' xmlns:ns0='urn:p' ns0:x='1' plain='2' xmlns:ns2='urn:q' ns2:y='3' \
             ns0:z='4' xml:lang='en'><b xmlns:ns0='urn:p' ns0:x='5'/></a>"
        );
        assert_eq!(parse(&out), e);
        let mut prefixed = Vec::new();
        write_prefix(&mut prefixed, 1234);
        assert_eq!(prefixed, b"ns1234");
    }

    #[test]
    fn round_trip() {
        for x in [
            "<message xmlns='jabber:client' from='a@b/c' to='d@e' type='chat' xml:lang='fr'>\
             <body>h&#xE9;llo &amp; ☃ 😀 &lt;tag&gt;</body>\n  <active xmlns='http://jabber.org/protocol/chatstates'/>\
             <x xmlns='jabber:x:data' type='submit'><field var='a&apos;b'><value>1</value></field></x></message>",
            "<iq xmlns='jabber:client' xmlns:foo='urn:foo' foo:bar='q' type='get'><foo:query/><q xmlns='urn:foo'/></iq>",
            "<a><![CDATA[<not a tag>]]></a>",
        ] {
            let e = parse(x);
            for ns in ["", NS_CLIENT, "urn:other"] {
                let bytes = e.to_bytes(ns);
                let wrapped = format!(
                    "<w xmlns='{ns}' xmlns:stream='{NS_STREAM}'>{}</w>",
                    s(&bytes)
                );
                let back = parse(&wrapped);
                assert_eq!(back.first_child(), Some(&e), "{}", s(&bytes));
            }
        }
    }

    #[test]
    fn prepared_with_to() {
        let body = Element::new("body", NS_CLIENT).with_text("hi & bye");
        let first = Element::new("message", NS_CLIENT)
            .with_attr("to", "x")
            .with_attr("from", "room@muc/nick")
            .with_attr("type", "groupchat")
            .with_child(body.clone());
        let middle = Element::new("message", NS_CLIENT)
            .with_attr("from", "room@muc/nick")
            .with_attr("to", "x")
            .with_attr("type", "groupchat")
            .with_child(body);
        for to in ["alice@example.com/phone", "o'brien@example.com/x&y", ""] {
            for (el, ns) in [(&first, NS_CLIENT), (&first, ""), (&middle, NS_CLIENT)] {
                let p = el.prepare_with_to(ns);
                let mut expected = el.clone();
                expected.set_attr("to", to);
                let got = p.to_bytes_with_to(to);
                if el == &first {
                    // `to` already first: identical bytes.
                    assert_eq!(s(&got), s(&expected.to_bytes(ns)));
                }
                let wrapped = format!("<w xmlns='{ns}'>{}</w>", s(&got));
                let back = parse(&wrapped);
                let back = back.first_child().cloned();
                let mut back = back.unwrap_or_else(|| Element::new("missing", ""));
                back.attrs.sort();
                expected.attrs.sort();
                assert_eq!(back, expected);
            }
        }
        // Without a `to`, the prepared form is the element itself, byte
        // for byte (a room's history measures messages by it).
        let mut no_to = middle.clone();
        no_to.remove_attr("to");
        for ns in [NS_CLIENT, ""] {
            let p = no_to.prepare_with_to(ns);
            assert_eq!(p.len_without_to(), no_to.to_bytes(ns).len());
        }
        let bare = Element::new("presence", NS_CLIENT);
        let mut out = Vec::new();
        bare.prepare_with_to(NS_CLIENT)
            .write_with_to("a@b", &mut out);
        assert_eq!(s(&out), "<presence to='a@b'/>");
    }

    #[test]
    fn stream_header_written() {
        let h = StreamHeader {
            to: None,
            from: Some("example.com".into()),
            id: Some("abc'1".into()),
            version: Some("1.0".into()),
            lang: Some("en".into()),
            default_ns: NS_CLIENT.into(),
            stream_prefix: "stream".into(),
        };
        let mut out = Vec::new();
        h.write_to(&mut out);
        assert_eq!(
            s(&out),
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
             from='example.com' id='abc&apos;1' version='1.0' xml:lang='en'>"
        );
    }
}
