//! Stream errors (RFC 6120 §4.9): fatal, sent once, then the stream closes.

use std::fmt;

pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// The defined conditions of RFC 6120 §4.9.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamCondition {
    BadFormat,
    BadNamespacePrefix,
    Conflict,
    ConnectionTimeout,
    HostGone,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    InvalidXml,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    RemoteConnectionFailed,
    Reset,
    ResourceConstraint,
    RestrictedXml,
    SeeOtherHost,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedEncoding,
    UnsupportedFeature,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

const ALL: [StreamCondition; 25] = {
    use StreamCondition::*;
    [
        BadFormat,
        BadNamespacePrefix,
        Conflict,
        ConnectionTimeout,
        HostGone,
        HostUnknown,
        ImproperAddressing,
        InternalServerError,
        InvalidFrom,
        InvalidNamespace,
        InvalidXml,
        NotAuthorized,
        NotWellFormed,
        PolicyViolation,
        RemoteConnectionFailed,
        Reset,
        ResourceConstraint,
        RestrictedXml,
        SeeOtherHost,
        SystemShutdown,
        UndefinedCondition,
        UnsupportedEncoding,
        UnsupportedFeature,
        UnsupportedStanzaType,
        UnsupportedVersion,
    ]
};

impl StreamCondition {
    pub fn name(self) -> &'static str {
        use StreamCondition::*;
        match self {
            BadFormat => "bad-format",
            BadNamespacePrefix => "bad-namespace-prefix",
            Conflict => "conflict",
            ConnectionTimeout => "connection-timeout",
            HostGone => "host-gone",
            HostUnknown => "host-unknown",
            ImproperAddressing => "improper-addressing",
            InternalServerError => "internal-server-error",
            InvalidFrom => "invalid-from",
            InvalidNamespace => "invalid-namespace",
            InvalidXml => "invalid-xml",
            NotAuthorized => "not-authorized",
            NotWellFormed => "not-well-formed",
            PolicyViolation => "policy-violation",
            RemoteConnectionFailed => "remote-connection-failed",
            Reset => "reset",
            ResourceConstraint => "resource-constraint",
            RestrictedXml => "restricted-xml",
            SeeOtherHost => "see-other-host",
            SystemShutdown => "system-shutdown",
            UndefinedCondition => "undefined-condition",
            UnsupportedEncoding => "unsupported-encoding",
            UnsupportedFeature => "unsupported-feature",
            UnsupportedStanzaType => "unsupported-stanza-type",
            UnsupportedVersion => "unsupported-version",
        }
    }

    pub fn from_name(name: &str) -> Option<StreamCondition> {
        ALL.into_iter().find(|c| c.name() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError {
    pub condition: StreamCondition,
    pub text: Option<String>,
    /// An application-specific condition element (RFC 6120 §4.9.4), e.g.
    /// XEP-0198's `<handled-count-too-high/>`, already serialized.
    pub app: Option<Box<str>>,
}

impl StreamError {
    pub fn new(condition: StreamCondition) -> Self {
        StreamError {
            condition,
            text: None,
            app: None,
        }
    }

    pub fn with_text(condition: StreamCondition, text: impl Into<String>) -> Self {
        StreamError {
            condition,
            text: Some(text.into()),
            app: None,
        }
    }

    /// Adds an application-specific condition (serialized, with its own
    /// namespace declared).
    pub fn with_app(mut self, app: impl Into<Box<str>>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// Appends `<stream:error>…</stream:error>` to `out`. The `stream`
    /// prefix is the one Perch declares on every stream header it sends.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<stream:error><");
        out.extend_from_slice(self.condition.name().as_bytes());
        out.extend_from_slice(b" xmlns='");
        out.extend_from_slice(NS_STREAM_ERRORS.as_bytes());
        out.extend_from_slice(b"'/>");
        if let Some(text) = &self.text {
            let el = crate::xml::Element::new("text", NS_STREAM_ERRORS).with_text(text.as_str());
            el.write_to(out, "");
        }
        if let Some(app) = &self.app {
            out.extend_from_slice(app.as_bytes());
        }
        out.extend_from_slice(b"</stream:error>");
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.condition.name())?;
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

impl From<&crate::xml::XmlError> for StreamError {
    fn from(e: &crate::xml::XmlError) -> Self {
        let condition = StreamCondition::from_name(e.stream_condition())
            .unwrap_or(StreamCondition::NotWellFormed);
        StreamError::with_text(condition, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in ALL {
            assert_eq!(StreamCondition::from_name(c.name()), Some(c));
        }
        assert_eq!(StreamCondition::from_name("nonsense"), None);
    }

    #[test]
    fn serializes_with_text() {
        let mut out = Vec::new();
        StreamError::with_text(StreamCondition::HostUnknown, "no <such> host").write_to(&mut out);
        let s = String::from_utf8(out).expect("utf8");
        assert!(s.starts_with(
            "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        ));
        assert!(s.contains("no &lt;such&gt; host"));
        assert!(s.ends_with("</stream:error>"));
    }
}
