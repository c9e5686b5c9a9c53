//! The stream header as clients send it, read without building a document.
//!
//! Every connection sends its header twice (before and after SASL), and
//! handing each to `roxmltree` cost more than the rest of the framing of a
//! login. Headers are all alike: a prefixed name, a few plain attributes
//! and namespace declarations. This reads that shape and answers `None`
//! for anything else (entities, unusual whitespace, other prefixes,
//! non-ASCII names, duplicates), which the framer then gives to
//! `roxmltree` as before. The contract, checked by the tests against
//! `roxmltree`: `Some(h)` only where `roxmltree` reads the same header.

use super::NS_XML;

/// Namespace URIs that may not be bound by a declaration (XML Namespaces
/// 1.0 §3); such headers go to `roxmltree` for its error.
const NS_XMLNS: &str = "http://www.w3.org/2000/xmlns/";

/// Attributes beyond this many are left to `roxmltree`.
const MAX_ATTRIBUTES: usize = 12;

/// A header read by [`parse`], borrowing from its text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PlainHeader<'a> {
    /// Namespace of the element (`None` if unqualified).
    pub namespace: Option<&'a str>,
    pub local: &'a str,
    /// Namespace declarations in document order: prefix (`None` for the
    /// default namespace) and URI.
    pub namespaces: Vec<(Option<&'a str>, &'a str)>,
    pub to: Option<&'a str>,
    pub from: Option<&'a str>,
    pub id: Option<&'a str>,
    pub version: Option<&'a str>,
    /// `xml:lang`.
    pub lang: Option<&'a str>,
}

impl<'a> PlainHeader<'a> {
    pub fn default_namespace(&self) -> Option<&'a str> {
        self.namespaces
            .iter()
            .find(|(prefix, _)| prefix.is_none())
            .map(|(_, uri)| *uri)
    }
}

/// Reads `text`, the opening tag made self-closing (`<stream:stream …/>`).
pub fn parse(text: &str) -> Option<PlainHeader<'_>> {
    let inner = text.strip_prefix('<')?.strip_suffix("/>")?;
    let (qname, mut rest) = split_name(inner)?;
    // (prefix, local, value) of every attribute that is not a declaration.
    let mut attrs: Vec<(Option<&str>, &str, &str)> = Vec::new();
    let mut header = PlainHeader::default();
    loop {
        let trimmed = rest.trim_start_matches(is_space);
        if trimmed.is_empty() {
            break;
        }
        if trimmed.len() == rest.len() {
            // Attributes must be separated by white space.
            return None;
        }
        let (name, after) = split_name(trimmed)?;
        let after = after.strip_prefix('=')?;
        let quote = after.chars().next().filter(|&q| q == '\'' || q == '"')?;
        let after = after.get(1..)?;
        let end = after.find(quote)?;
        let value = after.get(..end)?;
        if value
            .bytes()
            .any(|b| matches!(b, b'<' | b'&' | b'\t' | b'\n' | b'\r'))
        {
            return None;
        }
        rest = after.get(end + 1..)?;
        match name {
            (Some("xmlns"), local) => {
                if local == "xml" || local == "xmlns" {
                    return None;
                }
                declare(&mut header.namespaces, Some(local), value)?;
            }
            (None, "xmlns") => declare(&mut header.namespaces, None, value)?,
            (Some("xml"), _) | (None, _) => {
                if attrs.len() >= MAX_ATTRIBUTES || attrs.iter().any(|a| (a.0, a.1) == name) {
                    return None;
                }
                attrs.push((name.0, name.1, value));
            }
            (Some(_), _) => return None,
        }
    }
    header.local = qname.1;
    header.namespace = match qname.0 {
        Some("xml" | "xmlns") => return None,
        Some(prefix) => Some(
            header
                .namespaces
                .iter()
                .find(|(p, _)| *p == Some(prefix))?
                .1,
        ),
        None => header.default_namespace(),
    };
    for (prefix, local, value) in attrs {
        let slot = match (prefix, local) {
            (None, "to") => &mut header.to,
            (None, "from") => &mut header.from,
            (None, "id") => &mut header.id,
            (None, "version") => &mut header.version,
            (Some("xml"), "lang") => &mut header.lang,
            _ => continue,
        };
        *slot = Some(value);
    }
    Some(header)
}

/// The same reading of a header `roxmltree` parsed (the fallback).
pub fn from_node<'a>(root: roxmltree::Node<'a, 'a>) -> PlainHeader<'a> {
    let tag = root.tag_name();
    PlainHeader {
        namespace: tag.namespace(),
        local: tag.name(),
        namespaces: root.namespaces().map(|n| (n.name(), n.uri())).collect(),
        to: root.attribute("to"),
        from: root.attribute("from"),
        id: root.attribute("id"),
        version: root.attribute("version"),
        lang: root.attribute((NS_XML, "lang")),
    }
}

/// Adds a declaration unless it is one `roxmltree` would reject (or treat
/// specially): a duplicate, an empty or reserved URI.
fn declare<'a>(
    namespaces: &mut Vec<(Option<&'a str>, &'a str)>,
    prefix: Option<&'a str>,
    uri: &'a str,
) -> Option<()> {
    if uri.is_empty()
        || uri == NS_XML
        || uri == NS_XMLNS
        || namespaces.iter().any(|(p, _)| *p == prefix)
    {
        return None;
    }
    namespaces.push((prefix, uri));
    Some(())
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// A name (ASCII only) at the start of `s`, split at its colon, and what
/// follows it.
#[allow(clippy::type_complexity)]
fn split_name(s: &str) -> Option<((Option<&str>, &str), &str)> {
    let len = s
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(len);
    let name = match name.split_once(':') {
        Some((prefix, local)) if is_ncname(prefix) && is_ncname(local) => (Some(prefix), local),
        None if is_ncname(name) => (None, name),
        _ => return None,
    };
    Some((name, rest))
}

fn is_ncname(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && !s.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agrees(text: &str, plain: &PlainHeader<'_>) {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: false,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(text, opts)
            .unwrap_or_else(|e| panic!("{text}: read, but roxmltree says {e}"));
        assert_eq!(plain, &from_node(doc.root_element()), "{text}");
    }

    const CLIENT: &str = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'/>";

    #[test]
    fn reads_the_usual_client_header() {
        let h = parse(CLIENT).expect("plain header");
        assert_eq!(h.namespace, Some("http://etherx.jabber.org/streams"));
        assert_eq!(h.local, "stream");
        assert_eq!(h.to, Some("localhost"));
        assert_eq!(h.version, Some("1.0"));
        assert_eq!(h.lang, Some("en"));
        assert_eq!(h.default_namespace(), Some("jabber:client"));
        agrees(CLIENT, &h);
    }

    /// Every input either is declined or reads exactly as with `roxmltree`.
    #[test]
    fn agrees_with_roxmltree() {
        let cases = [
            CLIENT,
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>",
            "<stream xmlns='http://etherx.jabber.org/streams'/>",
            "<stream:stream\txmlns:stream=\"http://etherx.jabber.org/streams\"\n to=\"a\" />",
            "<s:stream xmlns:s='http://etherx.jabber.org/streams' from='x@y' id='1'/>",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns:other='urn:x' other:a='b'/>",
            "<stream:stream to='a'/>",
            "<stream:stream xmlns:stream='urn:s' to='a' to='b'/>",
            "<stream:stream xmlns:stream='urn:s' xmlns:stream='urn:t'/>",
            "<stream:stream xmlns:stream='urn:s' xmlns='a' xmlns='b'/>",
            "<stream:stream xmlns:stream='urn:s' to='a&amp;b'/>",
            "<stream:stream xmlns:stream='urn:s' to='a\tb'/>",
            "<stream:stream xmlns:stream='urn:s' to = 'a'/>",
            "<stream:stream xmlns:stream='urn:s'to='a'/>",
            "<stream:stream xmlns:stream='urn:s' to='a'",
            "<stream:stream xmlns:stream='' />",
            "<stream:stream xmlns:stream='urn:s' xmlns=''/>",
            "<stream:stream xmlns:stream='http://www.w3.org/XML/1998/namespace'/>",
            "<stream:stream xmlns:xml='http://www.w3.org/XML/1998/namespace' xmlns:stream='urn:s'/>",
            "<xml:stream/>",
            "<stream:stream xmlns:stream='urn:s' xml:lang='de' xml:space='preserve'/>",
            "<stream:stream xmlns:stream='urn:s' to='é' from=\"it's\"/>",
            "<stréam:stream xmlns:stréam='urn:s'/>",
            "<1stream xmlns='urn:s'/>",
            "<stream:stream:x xmlns:stream='urn:s'/>",
            "<stream:stream xmlns:stream='urn:s' to='>'/>",
            "<stream:stream xmlns:stream='urn:s' to='a' />",
            "<stream:stream xmlns:stream='urn:s' to='a'/ >",
        ];
        for text in cases {
            if let Some(h) = parse(text) {
                agrees(text, &h);
            }
        }
        // The shapes clients send are read here, not declined.
        assert!(parse(cases[1]).is_some());
        assert!(parse(cases[3]).is_some());
    }
}
