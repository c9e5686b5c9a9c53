//! The XML layer: an incremental framer for XMPP streams, an owned element
//! tree and a serializer.
//!
//! An XMPP stream is one endless XML document, which no tree parser can read
//! whole. [`Framer`] therefore splits the incoming bytes into the stream
//! header, complete top-level elements and the stream close, and only each
//! complete element is handed to `roxmltree`, wrapped in a synthetic root that
//! re-declares the namespaces of the stream header so prefixes and the default
//! namespace resolve as they would in the real document.
//!
//! Restricted XML (RFC 6120 §11.1): comments, processing instructions (other
//! than one XML declaration before the stream header), DTDs and entity
//! references other than the five predefined ones are refused with
//! [`XmlError::RestrictedXml`]. CDATA sections are *not* on the RFC's list, so
//! they are accepted inside elements and arrive as ordinary text; a CDATA
//! section directly inside the stream element is character data at top level
//! and so refused as not well-formed.

mod element;
mod framer;
mod name;
mod plain;
mod serialize;
mod stream_header;

pub use element::{Element, Node};
pub use framer::{FrameEvent, Framer, Limits, StreamHeader};
pub use name::{Name, intern};
pub use serialize::{Prepared, escape_attr_into, escape_text_into};

use std::fmt;

/// Content namespace of client-to-server streams.
pub const NS_CLIENT: &str = "jabber:client";
/// Content namespace of server-to-server streams.
pub const NS_SERVER: &str = "jabber:server";
/// Namespace of the stream element and its `features`/`error` children.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// Namespace bound to the `xml` prefix by the XML specification itself.
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Bytes that close a stream this crate opened with
/// [`StreamHeader::write_to`].
pub const STREAM_CLOSE: &[u8] = b"</stream:stream>";

/// Why incoming XML was refused. Every variant maps to the stream error the
/// peer should receive (see [`XmlError::stream_condition`]); the text is for
/// logs and stays out of what is sent to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlError {
    /// Not well-formed XML, invalid UTF-8 or not namespace-well-formed.
    NotWellFormed(String),
    /// XML features that RFC 6120 §11.1 forbids in XMPP.
    RestrictedXml(String),
    /// A configured limit (stanza size, nesting depth) was exceeded.
    PolicyViolation(String),
    /// The stream header is not `stream` in the stream namespace.
    InvalidNamespace(String),
    /// A namespace prefix the receiver does not accept (for callers that
    /// insist on the `stream` prefix, see [`StreamHeader::stream_prefix`]).
    BadNamespacePrefix(String),
    /// The XML declaration names an encoding other than UTF-8.
    UnsupportedEncoding(String),
    /// Well-formed XML that does not have the shape XMPP requires.
    BadFormat(String),
}

impl XmlError {
    /// The RFC 6120 §4.9.3 defined-condition element name for this error.
    pub fn stream_condition(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(_) => "not-well-formed",
            XmlError::RestrictedXml(_) => "restricted-xml",
            XmlError::PolicyViolation(_) => "policy-violation",
            XmlError::InvalidNamespace(_) => "invalid-namespace",
            XmlError::BadNamespacePrefix(_) => "bad-namespace-prefix",
            XmlError::UnsupportedEncoding(_) => "unsupported-encoding",
            XmlError::BadFormat(_) => "bad-format",
        }
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        match self {
            XmlError::NotWellFormed(s)
            | XmlError::RestrictedXml(s)
            | XmlError::PolicyViolation(s)
            | XmlError::InvalidNamespace(s)
            | XmlError::BadNamespacePrefix(s)
            | XmlError::UnsupportedEncoding(s)
            | XmlError::BadFormat(s) => s,
        }
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.stream_condition(), self.detail())
    }
}

impl std::error::Error for XmlError {}

impl From<roxmltree::Error> for XmlError {
    fn from(e: roxmltree::Error) -> Self {
        use roxmltree::Error as E;
        match e {
            // The framer normally catches these first; roxmltree is the
            // second line for `Element::parse` and anything the byte scanner
            // lets through.
            E::UnknownEntityReference(..)
            | E::EntityReferenceLoop(..)
            | E::DtdDetected
            | E::UnexpectedEntityCloseTag(..)
            | E::EntityResolver(..) => XmlError::RestrictedXml(e.to_string()),
            E::NodesLimitReached | E::AttributesLimitReached | E::NamespacesLimitReached => {
                XmlError::PolicyViolation(e.to_string())
            }
            _ => XmlError::NotWellFormed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        assert_eq!(
            XmlError::NotWellFormed(String::new()).stream_condition(),
            "not-well-formed"
        );
        assert_eq!(
            XmlError::RestrictedXml(String::new()).stream_condition(),
            "restricted-xml"
        );
        assert_eq!(
            XmlError::PolicyViolation(String::new()).stream_condition(),
            "policy-violation"
        );
        assert_eq!(
            XmlError::InvalidNamespace(String::new()).stream_condition(),
            "invalid-namespace"
        );
        assert_eq!(
            XmlError::UnsupportedEncoding(String::new()).stream_condition(),
            "unsupported-encoding"
        );
        assert_eq!(
            XmlError::BadFormat(String::new()).stream_condition(),
            "bad-format"
        );
        let e = XmlError::PolicyViolation("too big".into());
        assert_eq!(e.to_string(), "policy-violation: too big");
        let _: &dyn std::error::Error = &e;
    }
}
