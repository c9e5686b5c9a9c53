//! A small XML element tree shared by the script parser, the matcher and the
//! client: expected stanzas (from scripts) and received stanzas (from the
//! server) are both turned into [`XElem`] so the matcher knows one type only.

use std::fmt::Write as _;

/// The namespace `xml:` prefixed attributes live in.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The default namespace of top-level stanzas, and the stream namespace
/// (`stream:` prefix), as the shared test client spells them.
pub use crate::common::ns::{NS_CLIENT as CLIENT_NS, NS_STREAM as STREAM_NS};
/// The namespace the runner binds the `scansion:` prefix to.
pub const SCANSION_NS: &str = "https://matthewwild.co.uk/projects/scansion";

/// An element with its attributes and mixed content.
///
/// Attribute names are local names for unqualified attributes, `xml:lang`
/// (etc.) for the XML namespace, and `{uri}local` for any other namespace,
/// the same convention as `perch::xml::Element`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XElem {
    pub name: String,
    pub ns: String,
    pub attrs: Vec<(String, String)>,
    pub nodes: Vec<XNode>,
    /// `scansion:strict` of an expected element; always `None` for received ones.
    pub strict: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XNode {
    Elem(XElem),
    Text(String),
}

impl XElem {
    pub fn new(name: &str, ns: &str) -> XElem {
        XElem {
            name: name.to_string(),
            ns: ns.to_string(),
            attrs: Vec::new(),
            nodes: Vec::new(),
            strict: None,
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn children(&self) -> impl Iterator<Item = &XElem> {
        self.nodes.iter().filter_map(|n| match n {
            XNode::Elem(e) => Some(e),
            XNode::Text(_) => None,
        })
    }

    pub fn child(&self, name: &str, ns: &str) -> Option<&XElem> {
        self.children().find(|c| c.name == name && c.ns == ns)
    }

    /// The concatenated direct character data (not trimmed).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            if let XNode::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    /// Serializes the element; `parent_ns` is the default namespace in scope
    /// (so a stanza written into a `jabber:client` stream omits `xmlns`).
    pub fn to_xml(&self, parent_ns: &str) -> String {
        let mut out = String::new();
        self.write_xml(parent_ns, &mut out);
        out
    }

    fn write_xml(&self, parent_ns: &str, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns != parent_ns {
            let _ = write!(out, " xmlns='{}'", escape(&self.ns));
        }
        let mut prefixes = 0usize;
        for (k, v) in &self.attrs {
            if let Some(rest) = k.strip_prefix('{') {
                // `{uri}local`: declare a private prefix for it.
                let (uri, local) = rest.split_once('}').unwrap_or((rest, ""));
                prefixes += 1;
                let _ = write!(
                    out,
                    " xmlns:ns{prefixes}='{}' ns{prefixes}:{local}='{}'",
                    escape(uri),
                    escape(v)
                );
            } else {
                let _ = write!(out, " {k}='{}'", escape(v));
            }
        }
        if self.nodes.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for n in &self.nodes {
            match n {
                XNode::Elem(e) => e.write_xml(&self.ns, out),
                XNode::Text(t) => out.push_str(&escape(t)),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    /// Converts a roxmltree element. `scansion:*` attributes are dropped
    /// (`scansion:strict` is kept in [`XElem::strict`]); namespace
    /// declarations are not attributes in roxmltree and so never appear.
    pub fn from_roxml(node: roxmltree::Node<'_, '_>) -> Result<XElem, String> {
        let tag = node.tag_name();
        let mut elem = XElem::new(tag.name(), tag.namespace().unwrap_or(""));
        for a in node.attributes() {
            match a.namespace() {
                None => elem
                    .attrs
                    .push((a.name().to_string(), a.value().to_string())),
                Some(SCANSION_NS) => {
                    if a.name() == "strict" {
                        elem.strict = match a.value().trim() {
                            "true" => Some(true),
                            "false" => Some(false),
                            other => {
                                return Err(format!(
                                    "scansion:strict must be 'true' or 'false', not {other:?}"
                                ));
                            }
                        };
                    } else {
                        return Err(format!("unknown attribute scansion:{}", a.name()));
                    }
                }
                Some(XML_NS) => elem
                    .attrs
                    .push((format!("xml:{}", a.name()), a.value().to_string())),
                Some(uri) => elem
                    .attrs
                    .push((format!("{{{uri}}}{}", a.name()), a.value().to_string())),
            }
        }
        for child in node.children() {
            if child.is_element() {
                elem.nodes.push(XNode::Elem(XElem::from_roxml(child)?));
            } else if child.is_text() {
                let t = child.text().unwrap_or("");
                if !t.is_empty() {
                    elem.nodes.push(XNode::Text(t.to_string()));
                }
            }
        }
        Ok(elem)
    }

    /// Removes whitespace-only text nodes, recursively (the indentation of
    /// script blocks).
    pub fn drop_whitespace_text(&mut self) {
        self.nodes.retain(|n| match n {
            XNode::Text(t) => !t.trim().is_empty(),
            XNode::Elem(_) => true,
        });
        for n in &mut self.nodes {
            if let XNode::Elem(e) = n {
                e.drop_whitespace_text();
            }
        }
    }
}

impl std::fmt::Display for XElem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_xml(CLIENT_NS))
    }
}

/// Escapes text or an attribute value (both quote kinds, so it is safe in
/// either quoting style).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> XElem {
        let doc = roxmltree::Document::parse(xml).expect("test XML is well-formed");
        XElem::from_roxml(doc.root_element()).expect("test XML converts")
    }

    #[test]
    fn serializes_with_inherited_namespaces() {
        let e = parse(
            "<iq xmlns='jabber:client' type='get' xml:lang='en'><query xmlns='q'><item a=\"x'y\">t&amp;</item></query></iq>",
        );
        assert_eq!(
            e.to_xml(CLIENT_NS),
            "<iq type='get' xml:lang='en'><query xmlns='q'><item a='x&apos;y'>t&amp;</item></query></iq>"
        );
        assert_eq!(
            e.to_xml(""),
            "<iq xmlns='jabber:client' type='get' xml:lang='en'><query xmlns='q'><item a='x&apos;y'>t&amp;</item></query></iq>"
        );
    }

    #[test]
    fn namespaced_attributes_round_trip() {
        let e = parse("<a xmlns='x' xmlns:p='urn:p' p:b='1'/>");
        assert_eq!(e.attr("{urn:p}b"), Some("1"));
        let again = parse(&e.to_xml(""));
        assert_eq!(again, e);
    }

    #[test]
    fn drops_indentation_only() {
        let mut e = parse("<a xmlns='x'>\n\t<b> keep </b>\n</a>");
        e.drop_whitespace_text();
        assert_eq!(e.to_xml("x"), "<a><b> keep </b></a>");
    }

    #[test]
    fn strict_and_unknown_scansion_attributes() {
        let e = parse(
            "<a xmlns='x' xmlns:s='https://matthewwild.co.uk/projects/scansion' s:strict='true'/>",
        );
        assert_eq!(e.strict, Some(true));
        assert!(e.attrs.is_empty());
        let doc = roxmltree::Document::parse(
            "<a xmlns:s='https://matthewwild.co.uk/projects/scansion' s:bogus='1'/>",
        )
        .expect("well-formed");
        assert!(XElem::from_roxml(doc.root_element()).is_err());
    }
}
