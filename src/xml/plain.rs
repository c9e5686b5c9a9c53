//! A fast path for the shape almost every stanza has: unprefixed element
//! names, plain attributes (plus `xml:lang`-style ones), `xmlns`
//! declarations, text with the five predefined entities, nothing else.
//!
//! Parsing each stanza with `roxmltree` builds a whole document (node,
//! attribute and namespace tables) only to copy it into an [`Element`];
//! for a chat message that was about 40 % of the server's CPU. This parser
//! builds the `Element` directly in one pass. It is deliberately partial:
//! whenever the input leaves the subset it handles, or might not be
//! well-formed, it answers `None` and the caller parses with `roxmltree`
//! as before, so errors and every unusual construct (prefixes, character
//! references, CDATA, line-end and attribute-value normalization, XML
//! characters outside the allowed ranges) keep their exact treatment.
//! The contract, checked by the tests against `roxmltree` on generated
//! inputs: `Some(el)` only where `roxmltree` yields that same `el`.

use std::borrow::Cow;

use super::NS_XML;
use super::element::{Element, Node};
use super::name::{Name, intern};

/// Namespace URI reserved for `xmlns` itself; declaring it is an error.
const NS_XMLNS: &str = "http://www.w3.org/2000/xmlns/";

/// Parses `input`, which must be exactly one element, in a scope whose
/// default namespace is `default_ns` (`""` for none). `None`: not in the
/// subset, use the full parser (which also reports any error). A nesting
/// deeper than `max_depth` is also left to it, to produce its error.
pub(super) fn parse(input: &str, default_ns: &str, max_depth: usize) -> Option<Element> {
    let mut p = Parser {
        src: input,
        s: input.as_bytes(),
        pos: 0,
        max_depth,
    };
    let el = p.element(&intern(default_ns), 1)?;
    (p.pos == p.s.len()).then_some(el)
}

/// The subset accepts only ASCII names, so `Option<Element>` is enough to
/// report "not handled here"; the full parser has the diagnostics.
struct Parser<'a> {
    src: &'a str,
    s: &'a [u8],
    pos: usize,
    max_depth: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// An ASCII name without a prefix; a ':' (or any non-ASCII name
    /// character) ends the subset, not the name.
    fn name(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !is_name_start(self.peek()?) {
            return None;
        }
        self.pos += 1;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        match self.peek()? {
            b':' => None,
            b if b >= 0x80 => None,
            _ => self.str_at(start, self.pos),
        }
    }

    fn element(&mut self, parent_ns: &Name, depth: usize) -> Option<Element> {
        if depth > self.max_depth {
            return None;
        }
        self.eat(b'<')?;
        let name = self.name()?;
        let mut ns: Option<Name> = None;
        let mut attrs: Vec<(Name, String)> = Vec::new();
        let mut seen_xmlns = false;
        let self_closing = loop {
            let had_space = self.peek().is_some_and(is_space);
            self.skip_space();
            match self.peek()? {
                b'/' => {
                    self.pos += 1;
                    self.eat(b'>')?;
                    break true;
                }
                b'>' => {
                    self.pos += 1;
                    break false;
                }
                _ if !had_space => return None,
                _ => {}
            }
            let key = self.attr_name()?;
            self.skip_space();
            self.eat(b'=')?;
            self.skip_space();
            let value_start = self.pos;
            let value = self.attr_value()?;
            if key == "xmlns" {
                let raw = self.s.get(value_start..self.pos)?;
                if seen_xmlns || value == NS_XML || value == NS_XMLNS || raw.contains(&b'&') {
                    return None;
                }
                seen_xmlns = true;
                ns = Some(intern(&value));
            } else {
                if attrs.iter().any(|(k, _)| *k == key) {
                    return None;
                }
                attrs.push((key, value.into_owned()));
            }
        };
        let ns = ns.unwrap_or_else(|| parent_ns.clone());
        let mut el = Element {
            name: intern(name),
            ns,
            attrs,
            children: Vec::new(),
        };
        if self_closing {
            return Some(el);
        }
        loop {
            match self.peek()? {
                b'<' => match self.s.get(self.pos + 1).copied()? {
                    b'/' => {
                        self.pos += 2;
                        if self.name()? != el.name {
                            return None;
                        }
                        self.skip_space();
                        self.eat(b'>')?;
                        return Some(el);
                    }
                    // Comments, CDATA, processing instructions.
                    b'!' | b'?' => return None,
                    _ => {
                        let child = self.element(&el.ns, depth + 1)?;
                        el.children.push(Node::Element(child));
                    }
                },
                _ => {
                    let text = self.text()?;
                    el.push_text(text);
                }
            }
        }
    }

    /// An attribute name: a plain name, `xmlns`, or `xml:local` (stored
    /// as written, which is how [`Element`] names `xml`-namespace
    /// attributes). Any other prefix leaves the subset.
    fn attr_name(&mut self) -> Option<Name> {
        let first = self.name_or_prefix()?;
        if self.peek()? != b':' {
            return Some(intern(first));
        }
        if first != "xml" {
            return None;
        }
        self.pos += 1;
        let local = self.name()?;
        Some(match local {
            "lang" => Name::Borrowed("xml:lang"),
            _ => Name::Owned(format!("xml:{local}")),
        })
    }

    /// Like [`Parser::name`] but stops at a ':' instead of refusing it.
    fn name_or_prefix(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !is_name_start(self.peek()?) {
            return None;
        }
        self.pos += 1;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        if self.peek()? >= 0x80 {
            return None;
        }
        self.str_at(start, self.pos)
    }

    /// The value, borrowed from the input unless it has entities.
    fn attr_value(&mut self) -> Option<Cow<'a, str>> {
        let quote = self.peek()?;
        if quote != b'\'' && quote != b'"' {
            return None;
        }
        self.pos += 1;
        let mut out = String::new();
        let start = self.pos;
        let mut run = self.pos;
        loop {
            let b = self.peek()?;
            if b == quote {
                let value = if run == start {
                    Cow::Borrowed(self.str_at(start, self.pos)?)
                } else {
                    out.push_str(self.str_at(run, self.pos)?);
                    Cow::Owned(out)
                };
                self.pos += 1;
                return Some(value);
            }
            match b {
                // '<' is an error; tab, newline and carriage return are
                // normalized to spaces by the full parser.
                b'<' | b'\t' | b'\n' | b'\r' => return None,
                b'&' => {
                    out.push_str(self.str_at(run, self.pos)?);
                    out.push(self.entity()?);
                    run = self.pos;
                }
                0x20..0x80 => self.pos += 1,
                _ => self.char_ok()?,
            }
        }
    }

    /// Character data up to the next '<'.
    fn text(&mut self) -> Option<String> {
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            let b = self.peek()?;
            match b {
                b'<' => {
                    out.push_str(self.str_at(run, self.pos)?);
                    return Some(out);
                }
                // Line ends are normalized by the full parser.
                b'\r' => return None,
                // "]]>" is not allowed in character data.
                b']' if self.s.get(self.pos..self.pos + 3) == Some(b"]]>") => return None,
                b'&' => {
                    out.push_str(self.str_at(run, self.pos)?);
                    out.push(self.entity()?);
                    run = self.pos;
                }
                // Plain ASCII, the bulk of any text: no call per byte.
                b'\t' | b'\n' | 0x20..0x80 => self.pos += 1,
                _ => self.char_ok()?,
            }
        }
    }

    /// Steps over one byte of an allowed XML character: no control
    /// characters, and not U+FFFE or U+FFFF (EF BF BE/BF in UTF-8); the
    /// input is a `&str`, so the rest of the UTF-8 is valid already.
    fn char_ok(&mut self) -> Option<()> {
        let b = self.peek()?;
        if b < 0x20 {
            return None;
        }
        if b == 0xEF
            && self.s.get(self.pos + 1) == Some(&0xBF)
            && matches!(self.s.get(self.pos + 2), Some(0xBE) | Some(0xBF))
        {
            return None;
        }
        self.pos += 1;
        Some(())
    }

    /// One of the five predefined entities; character references and
    /// anything else leave the subset.
    fn entity(&mut self) -> Option<char> {
        let rest = self.s.get(self.pos..)?;
        let (c, len) = if rest.starts_with(b"&lt;") {
            ('<', 4)
        } else if rest.starts_with(b"&gt;") {
            ('>', 4)
        } else if rest.starts_with(b"&amp;") {
            ('&', 5)
        } else if rest.starts_with(b"&apos;") {
            ('\'', 6)
        } else if rest.starts_with(b"&quot;") {
            ('"', 6)
        } else {
            return None;
        };
        self.pos += len;
        Some(c)
    }

    /// Runs are cut at ASCII bytes only, so they are whole characters.
    fn str_at(&self, start: usize, end: usize) -> Option<&'a str> {
        self.src.get(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::element::from_node;
    use crate::xml::{NS_CLIENT, XmlError};

    /// What the framer does without the fast path.
    fn full(input: &str, default_ns: &str, max_depth: usize) -> Result<Element, XmlError> {
        let doc = format!("<w xmlns='{default_ns}' xmlns:stream='urn:s'>{input}</w>");
        let opts = roxmltree::ParsingOptions {
            allow_dtd: false,
            ..roxmltree::ParsingOptions::default()
        };
        let parsed = roxmltree::Document::parse_with_options(&doc, opts)?;
        let node = parsed
            .root_element()
            .first_element_child()
            .ok_or(XmlError::NotWellFormed("empty".into()))?;
        if node.next_sibling().is_some() {
            return Err(XmlError::NotWellFormed("more than one node".into()));
        }
        from_node(node, max_depth)
    }

    /// The contract: the fast path answers only where the full parser
    /// gives the same element.
    fn check(input: &str) -> bool {
        for ns in [NS_CLIENT, ""] {
            if let Some(fast) = parse(input, ns, 4) {
                match full(input, ns, 4) {
                    Ok(el) => assert_eq!(fast, el, "input {input:?} ns {ns:?}"),
                    Err(e) => panic!("fast path accepted {input:?} (ns {ns:?}): {e}"),
                }
            } else if ns == NS_CLIENT {
                return false;
            }
        }
        true
    }

    #[test]
    fn common_stanzas_take_the_fast_path() {
        for input in [
            "<message to='a@b/c' type='chat' id='x1'><body>B 1 2 3</body></message>",
            "<message to=\"a@b\"><body>a &lt;b&gt; &amp; &apos;c&quot;</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            "<presence/>",
            "<presence xml:lang='en'><show>away</show>\n  <status>back soon</status></presence>",
            "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
            "<message><body>Grüße 🤖 \t x</body></message>",
            "<message ><body >x</body ></message >",
            "<a x = '1' y=\"2\"/>",
            "<a xmlns=''><b/></a>",
        ] {
            assert!(check(input), "{input:?} should take the fast path");
        }
    }

    #[test]
    fn unusual_input_is_left_to_the_full_parser() {
        for input in [
            "<a>&#65;</a>",
            "<a>&foo;</a>",
            "<a><![CDATA[x]]></a>",
            "<a><!-- c --></a>",
            "<a><?pi x?></a>",
            "<a>x\r\ny</a>",
            "<a x='1\n2'/>",
            "<a x='1' x='2'/>",
            "<a xmlns='a' xmlns='b'/>",
            "<p:a xmlns:p='urn:p'/>",
            "<a p:x='1' xmlns:p='urn:p'/>",
            "<stream:error/>",
            "<a>]]></a>",
            "<a>\u{1}</a>",
            "<a>\u{FFFE}</a>",
            "<a x='<'/>",
            "<a></b>",
            "<a>",
            "<a/><b/>",
            "<a/> ",
            "<a x='1'y='2'/>",
            "<é/>",
            "<a xmlns='http://www.w3.org/XML/1998/namespace'/>",
            "<a xmlns='&amp;'/>",
            "<a><b><c><d><e/></d></c></b></a>",
        ] {
            assert!(
                parse(input, NS_CLIENT, 4).is_none(),
                "{input:?} should be left to roxmltree"
            );
        }
    }

    #[test]
    fn depth_limit_is_the_full_parsers() {
        assert!(parse("<a><b><c><d/></c></b></a>", NS_CLIENT, 4).is_some());
        assert!(parse("<a><b><c><d><e/></d></c></b></a>", NS_CLIENT, 4).is_none());
    }

    /// xorshift64*: reproducible without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            let i = (self.next() % items.len() as u64) as usize;
            items.get(i).copied().unwrap_or_default()
        }
    }

    const NAMES: &[&str] = &[
        "a", "b", "message", "x-y", "_z", "a.b", "xmlns", "xml", "p:q", "é", "9",
    ];
    const ATTR_NAMES: &[&str] = &[
        "to",
        "id",
        "type",
        "xmlns",
        "xml:lang",
        "xml:space",
        "xmlns:p",
        "p:x",
        "to",
        "a-b",
        "é",
    ];
    const VALUES: &[&str] = &[
        "",
        "a@b/c",
        "x y",
        "&lt;",
        "&amp;amp;",
        "&#65;",
        "&foo;",
        "&",
        "<",
        ">",
        "\t",
        "\n",
        "\r",
        "urn:x",
        "jabber:client",
        "http://www.w3.org/XML/1998/namespace",
        "http://www.w3.org/2000/xmlns/",
        "ü",
        "\u{FFFF}",
        "\u{7f}",
        "'",
        "\"",
        "]]>",
    ];
    const TEXTS: &[&str] = &[
        "",
        "hi",
        " ",
        "\n",
        "\t",
        "\r\n",
        "&lt;&gt;&amp;&apos;&quot;",
        "&#x41;",
        "&nope;",
        "&",
        "]]>",
        "]]",
        "]",
        "ü🤖",
        "\u{FFFE}",
        "\u{1}",
        "\u{7f}",
        "<![CDATA[c]]>",
        "<!--c-->",
        "<?p?>",
        ">",
    ];
    const SPACES: &[&str] = &["", " ", "  ", "\n", "\t", "\r"];

    fn gen_element(rng: &mut Rng, out: &mut String, depth: u32) {
        let name = rng.pick(NAMES);
        out.push('<');
        out.push_str(name);
        for _ in 0..rng.next() % 4 {
            out.push_str(rng.pick(&[" ", " ", "\n", ""]));
            out.push_str(rng.pick(ATTR_NAMES));
            out.push_str(rng.pick(SPACES));
            out.push('=');
            out.push_str(rng.pick(SPACES));
            let q = rng.pick(&["'", "\"", "'"]);
            out.push_str(q);
            for _ in 0..rng.next() % 3 {
                out.push_str(rng.pick(VALUES));
            }
            out.push_str(rng.pick(&[q, q, q, "'", "\""]));
        }
        out.push_str(rng.pick(SPACES));
        if depth > 5 || rng.next().is_multiple_of(3) {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for _ in 0..rng.next() % 4 {
            if rng.next().is_multiple_of(2) {
                out.push_str(rng.pick(TEXTS));
            } else {
                gen_element(rng, out, depth + 1);
            }
        }
        out.push_str("</");
        out.push_str(if rng.next().is_multiple_of(16) {
            rng.pick(NAMES)
        } else {
            name
        });
        out.push_str(rng.pick(SPACES));
        out.push('>');
    }

    #[test]
    fn random_input_never_differs_from_the_full_parser() {
        let iterations: u64 = std::env::var("PERCH_XML_FUZZ")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut fast = 0;
        for _ in 0..iterations {
            let mut input = String::new();
            gen_element(&mut rng, &mut input, 1);
            // Sometimes cut or splice the input to reach more error paths.
            if rng.next().is_multiple_of(4) && !input.is_empty() {
                let at = (rng.next() % input.len() as u64) as usize;
                if input.is_char_boundary(at) {
                    if rng.next().is_multiple_of(2) {
                        input.truncate(at);
                    } else {
                        input.insert_str(at, rng.pick(&["<", ">", "'", "&", " ", "/", "=", ":"]));
                    }
                }
            }
            if check(&input) {
                fast += 1;
            }
        }
        // The generator must keep exercising the fast path itself.
        assert!(
            fast * 20 > iterations,
            "only {fast} of {iterations} parsed fast"
        );
    }
}
