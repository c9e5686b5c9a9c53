//! The owned element tree that the rest of the server works with.

use super::name::{Name, intern};
use super::{NS_XML, XmlError};

/// Nesting limit for [`Element::parse`]. Conversion, serialization, `Clone`,
/// `Drop` and `PartialEq` all recurse, so untrusted input must never produce
/// an arbitrarily deep tree; the framer applies its own, lower limit.
pub const PARSE_MAX_DEPTH: usize = 256;

/// An owned XML element.
///
/// `ns` is the resolved namespace URI (`""` when the element is in no
/// namespace). Attribute names are stored as follows: an attribute without a
/// namespace by its local name, one in the `xml` namespace as `xml:local`
/// (e.g. `"xml:lang"`), any other namespaced attribute as `{uri}local`.
/// Namespace declarations are not attributes: they are implied by `ns` and
/// regenerated when the element is serialized. Names and namespaces are
/// [`Name`]s: well-known ones (and any string literal) cost no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub name: Name,
    pub ns: Name,
    pub attrs: Vec<(Name, String)>,
    pub children: Vec<Node>,
}

/// A child of an [`Element`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// An element with no attributes and no children.
    pub fn new(name: impl Into<Name>, ns: impl Into<Name>) -> Element {
        Element {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Moves this element, and every descendant in namespace `from`, into
    /// namespace `to`: a stanza received in `jabber:server` or
    /// `jabber:component:accept` becomes the `jabber:client` stanza the
    /// router handles (children without a namespace of their own, such as
    /// `<body/>`, inherited the stream's).
    pub fn move_namespace(&mut self, from: &str, to: &'static str) {
        if &*self.ns == from {
            self.ns = to.into();
        }
        for child in &mut self.children {
            if let Node::Element(el) = child {
                el.move_namespace(from, to);
            }
        }
    }

    /// Builder form of [`Element::set_attr`].
    pub fn with_attr(mut self, name: impl Into<Name>, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder form of [`Element::push_child`].
    pub fn with_child(mut self, child: Element) -> Self {
        self.push_child(child);
        self
    }

    /// Builder form of [`Element::push_text`].
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.push_text(text);
        self
    }

    /// The value of the attribute `name` (see the type docs for how
    /// namespaced attributes are named).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces the value of `name`, or appends the attribute if absent.
    pub fn set_attr(&mut self, name: impl Into<Name>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
    }

    /// Removes the attribute `name`, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let idx = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(idx).1)
    }

    /// Whether this element has the given local name and namespace.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The element children, skipping text.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The element children, mutably, skipping text.
    pub fn children_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this name and namespace.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|e| e.is(name, ns))
    }

    /// The first child element with this name and namespace, mutably.
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children_mut().find(|e| e.is(name, ns))
    }

    /// The first child element, whatever its name; XMPP payloads such as an
    /// IQ's query are usually found this way.
    pub fn first_child(&self) -> Option<&Element> {
        self.children().next()
    }

    /// Appends a child element.
    pub fn push_child(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// Appends text. Adjacent text is merged into one node so that a built
    /// tree compares equal to the same tree parsed back, where the parser
    /// always produces merged text; empty text adds nothing for the same
    /// reason.
    pub fn push_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        match self.children.last_mut() {
            Some(Node::Text(last)) => last.push_str(&text),
            _ => self.children.push(Node::Text(text)),
        }
    }

    /// Removes and returns the first child element with this name and
    /// namespace.
    pub fn remove_child(&mut self, name: &str, ns: &str) -> Option<Element> {
        let idx = self
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if e.is(name, ns)))?;
        match self.children.remove(idx) {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        }
    }

    /// Removes every child element for which `drop` says true.
    pub fn remove_children_where(&mut self, drop: impl Fn(&Element) -> bool) {
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if drop(e)));
    }

    /// The concatenated direct text children (not descendants').
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    /// Parses one standalone element, e.g. in tests. The same XMPP
    /// restrictions as on a stream apply (no comments, processing
    /// instructions, DTDs or custom entities); an element without a namespace
    /// gets `ns == ""`. Nesting is limited to [`PARSE_MAX_DEPTH`].
    pub fn parse(s: &str) -> Result<Element, XmlError> {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: false,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(s, opts)?;
        for n in doc.root().children() {
            check_restricted(n)?;
        }
        from_node(doc.root_element(), PARSE_MAX_DEPTH)
    }
}

fn check_restricted(n: roxmltree::Node<'_, '_>) -> Result<(), XmlError> {
    match n.node_type() {
        roxmltree::NodeType::Comment => Err(XmlError::RestrictedXml("comment".into())),
        roxmltree::NodeType::PI => Err(XmlError::RestrictedXml("processing instruction".into())),
        _ => Ok(()),
    }
}

/// Converts a parsed element into an owned one, refusing nesting deeper than
/// `max_depth` (the element itself is level 1).
pub(super) fn from_node(
    node: roxmltree::Node<'_, '_>,
    max_depth: usize,
) -> Result<Element, XmlError> {
    convert(node, 1, max_depth)
}

fn convert(
    node: roxmltree::Node<'_, '_>,
    depth: usize,
    max_depth: usize,
) -> Result<Element, XmlError> {
    if depth > max_depth {
        return Err(XmlError::PolicyViolation(format!(
            "elements nested deeper than {max_depth} levels"
        )));
    }
    // XML Names §3: the `xmlns` prefix must never be declared. roxmltree
    // takes `xmlns:xmlns='…'` as an ordinary declaration; RFC 6120 §11.2
    // forbids accepting XML that is not namespace-well-formed.
    if node.namespaces().any(|ns| ns.name() == Some("xmlns")) {
        return Err(XmlError::NotWellFormed(
            "the 'xmlns' prefix is declared".into(),
        ));
    }
    let tag = node.tag_name();
    let mut el = Element {
        name: intern(tag.name()),
        ns: intern(tag.namespace().unwrap_or("")),
        attrs: Vec::with_capacity(node.attributes().len()),
        children: Vec::new(),
    };
    for a in node.attributes() {
        let key = match a.namespace() {
            None => intern(a.name()),
            Some(NS_XML) => match a.name() {
                "lang" => Name::Borrowed("xml:lang"),
                local => Name::Owned(format!("xml:{local}")),
            },
            Some(uri) => Name::Owned(format!("{{{uri}}}{}", a.name())),
        };
        el.attrs.push((key, a.value().to_owned()));
    }
    for child in node.children() {
        if child.is_element() {
            el.children
                .push(Node::Element(convert(child, depth + 1, max_depth)?));
        } else if child.is_text() {
            if let Some(t) = child.text() {
                el.push_text(t);
            }
        } else {
            check_restricted(child)?;
        }
    }
    Ok(el)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{NS_CLIENT, NS_STREAM};

    #[test]
    fn builders_and_accessors() {
        let mut m = Element::new("message", NS_CLIENT)
            .with_attr("to", "a@b")
            .with_attr("type", "chat")
            .with_child(Element::new("body", NS_CLIENT).with_text("hi"))
            .with_child(Element::new("x", "urn:x"));
        assert!(m.is("message", NS_CLIENT));
        assert!(!m.is("message", "urn:x"));
        assert_eq!(m.attr("to"), Some("a@b"));
        m.set_attr("to", "c@d");
        assert_eq!(m.attr("to"), Some("c@d"));
        assert_eq!(m.attrs.len(), 2);
        assert_eq!(m.remove_attr("type").as_deref(), Some("chat"));
        assert_eq!(m.remove_attr("type"), None);
        assert_eq!(m.attr("type"), None);
        assert_eq!(
            m.get_child("body", NS_CLIENT).map(|b| b.text()),
            Some("hi".into())
        );
        assert!(m.get_child("body", "urn:x").is_none());
        assert_eq!(m.first_child().map(|e| e.name.as_ref()), Some("body"));
        if let Some(b) = m.get_child_mut("body", NS_CLIENT) {
            b.push_text(" there");
        }
        assert_eq!(
            m.get_child("body", NS_CLIENT).map(|b| b.text()),
            Some("hi there".into())
        );
        for c in m.children_mut() {
            c.set_attr("seen", "1");
        }
        assert!(m.children().all(|c| c.attr("seen") == Some("1")));
        let x = m.remove_child("x", "urn:x");
        assert!(x.is_some());
        assert!(m.remove_child("x", "urn:x").is_none());
        assert_eq!(m.children().count(), 1);
        m.push_child(Element::new("y", ""));
        assert_eq!(m.children().count(), 2);
    }

    #[test]
    fn text_merging() {
        let e = Element::new("a", "")
            .with_text("x")
            .with_text("")
            .with_text("y")
            .with_child(Element::new("b", "").with_text("inner"))
            .with_text("z");
        assert_eq!(e.children.len(), 3);
        assert_eq!(e.text(), "xyz");
    }

    #[test]
    fn parse_namespaces_and_attrs() {
        let e = Element::parse(
            "<iq xmlns='jabber:client' type='get' xml:lang='en' \
             xmlns:foo='urn:x' foo:a='1'><query xmlns='jabber:iq:roster'/>\
             <foo:x/><stream:features xmlns:stream='http://etherx.jabber.org/streams'/></iq>",
        );
        let e = match e {
            Ok(e) => e,
            Err(err) => panic!("{err}"),
        };
        assert!(e.is("iq", NS_CLIENT));
        assert_eq!(e.attr("type"), Some("get"));
        assert_eq!(e.attr("xml:lang"), Some("en"));
        assert_eq!(e.attr("{urn:x}a"), Some("1"));
        assert_eq!(
            e.attrs.len(),
            3,
            "namespace declarations are not attributes"
        );
        assert!(e.get_child("query", "jabber:iq:roster").is_some());
        assert!(e.get_child("x", "urn:x").is_some());
        assert!(e.get_child("features", NS_STREAM).is_some());
        let plain = Element::parse("<a><b/></a>");
        assert_eq!(
            plain,
            Ok(Element::new("a", "").with_child(Element::new("b", "")))
        );
    }

    #[test]
    fn parse_text_cdata_entities() {
        let e = Element::parse("<a>x &lt;&amp;&#x263A;&#65;<![CDATA[<b>&amp;]]>\r\ny</a>");
        assert_eq!(
            e.map(|e| e.text()),
            Ok("x <&\u{263A}A<b>&amp;\ny".to_string())
        );
    }

    #[test]
    fn parse_refuses_restricted() {
        for s in [
            "<a><!-- hi --></a>",
            "<!-- hi --><a/>",
            "<a><?pi x?></a>",
            "<?pi x?><a/>",
            "<!DOCTYPE a><a/>",
            "<a>&foo;</a>",
        ] {
            let r = Element::parse(s);
            assert!(matches!(r, Err(XmlError::RestrictedXml(_))), "{s}: {r:?}");
        }
        for s in [
            "<a>",
            "<a></b>",
            "<x:a/>",
            "<a b=1/>",
            "<a b='1' b='2'/>",
            "",
            "text",
            // Namespace well-formedness (XML Names §3).
            "<a xmlns:xmlns='urn:x'/>",
            "<a><b xmlns:xmlns='urn:x'/></a>",
            "<a xmlns:xml='urn:x'/>",
        ] {
            let r = Element::parse(s);
            assert!(matches!(r, Err(XmlError::NotWellFormed(_))), "{s}: {r:?}");
        }
    }

    #[test]
    fn parse_depth_limit() {
        let n = 10_000;
        let s = "<a>".repeat(n) + &"</a>".repeat(n);
        assert!(matches!(
            Element::parse(&s),
            Err(XmlError::PolicyViolation(_))
        ));
        let n = PARSE_MAX_DEPTH;
        let s = "<a>".repeat(n) + &"</a>".repeat(n);
        assert!(Element::parse(&s).is_ok());
    }
}
