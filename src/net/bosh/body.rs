//! The BOSH `<body/>` wrapper (XEP-0124 §6, XEP-0206 §3): reading a
//! client's request and writing the connection manager's responses.
//!
//! A request is parsed whole with roxmltree (it is one small document, not a
//! stream). Its attributes become a [`RequestBody`] and its child elements
//! become one payload of self-contained elements for the c2s stream's
//! framer, whose default namespace is `jabber:client`: a child that relies
//! on a namespace declared on `<body>` gets that declaration copied into its
//! own start tag, so it means the same thing outside the wrapper.
//!
//! Why the httpbind default maps to `jabber:client`: XEP-0206 §3 notes that
//! many clients send `<message/>` without a namespace inside
//! `<body xmlns='http://jabber.org/protocol/httpbind'>`, assuming
//! `jabber:client` is "a subset of" the httpbind namespace. Stanzas are
//! `jabber:client` whatever the wrapper says, so a child in the httpbind
//! namespace (or in none) is declared `jabber:client`.

use std::fmt;

use crate::xml::{NS_CLIENT, NS_STREAM, NS_XML, escape_attr_into};

/// Namespace of the `<body/>` wrapper (XEP-0124 §6).
pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// Namespace of XEP-0206's `xmpp:version`, `xmpp:restart` and
/// `xmpp:restartlogic` attributes.
pub const NS_XBOSH: &str = "urn:xmpp:xbosh";
/// The largest request ID a client may use (XEP-0124 §14.1: 2^53 - 1, so
/// that clients with IEEE doubles for numbers count exactly).
pub const MAX_RID: u64 = (1 << 53) - 1;
/// The highest BOSH version this connection manager speaks (XEP-0124 §7.2).
pub const VERSION: (u32, u32) = (1, 11);

/// A client's `<body/>`, its attributes read and range-checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestBody {
    /// The request ID (§14), at most [`MAX_RID`].
    pub rid: u64,
    /// The session ID; absent only on a session creation request (§7.1).
    pub sid: Option<String>,
    /// The target domain of the stream (§7.1).
    pub to: Option<String>,
    /// The originator of the stream (§7.1, XEP-0206 §5 with SASL EXTERNAL).
    pub from: Option<String>,
    /// `xml:lang`: the default language of the session (§7.1).
    pub lang: Option<String>,
    /// `ver`: the highest BOSH version the client supports, as
    /// (major, minor) (§7.1).
    pub ver: Option<(u32, u32)>,
    /// `wait`: the longest a request may be held, in seconds (§7.1).
    pub wait: Option<u32>,
    /// `hold`: how many requests the client lets the server hold (§7.1).
    pub hold: Option<u32>,
    /// `ack`: '1' on a creation request (acknowledgements on), later the
    /// highest rid whose response (and every earlier one) arrived (§9.2).
    pub ack: Option<u64>,
    /// `pause`: a temporary inactivity period, in seconds (§10).
    pub pause: Option<u32>,
    /// `type='terminate'`: the client ends the session (§13).
    pub terminate: bool,
    /// `content`: the Content-Type the client wants on responses (§7.1).
    pub content: Option<String>,
    /// `route` (§7.1); Perch serves only its own domains and ignores it.
    pub route: Option<String>,
    /// `key` and `newkey` (§15): read, but Perch does not check key
    /// sequences (they protect unencrypted HTTP, which it does not serve).
    pub key: Option<String>,
    pub newkey: Option<String>,
    /// `xmpp:version` (XEP-0206 §4).
    pub xmpp_version: Option<String>,
    /// `xmpp:restart='true'`: restart the stream (XEP-0206 §5).
    pub restart: bool,
    /// The child elements, each self-contained, in document order.
    pub payload: Vec<u8>,
}

impl RequestBody {
    /// Whether this request carries nothing: no payload, no restart, pause
    /// or terminate (what XEP-0124 §11 and §12 call an empty request).
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty() && !self.restart && !self.terminate && self.pause.is_none()
    }
}

/// Why a request body was refused. The glue answers any of them with a
/// `bad-request` terminal condition (XEP-0124 §17.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// More bytes than allowed.
    TooLarge { len: usize, max: usize },
    /// The bytes are not UTF-8.
    NotUtf8,
    /// Not well-formed XML (or over the parser's node limit).
    Xml(String),
    /// A comment, processing instruction or DTD (XEP-0124 §6).
    Restricted(&'static str),
    /// The root is not `body` in the httpbind namespace; holds what it is.
    NotBody(String),
    /// No `rid` attribute.
    MissingRid,
    /// An attribute with a value out of range or of the wrong form.
    BadAttribute { name: &'static str, value: String },
    /// Character data directly inside `<body>` (XEP-0124 §6).
    Text,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge { len, max } => {
                write!(f, "request body of {len} bytes, more than {max}")
            }
            BodyError::NotUtf8 => f.write_str("request body is not UTF-8"),
            BodyError::Xml(e) => write!(f, "request body is not well-formed XML: {e}"),
            BodyError::Restricted(what) => write!(f, "request body contains a {what}"),
            BodyError::NotBody(name) => {
                write!(f, "root element {name} is not <body xmlns='{NS_HTTPBIND}'>")
            }
            BodyError::MissingRid => f.write_str("request body has no rid"),
            BodyError::BadAttribute { name, value } => {
                write!(f, "bad value for attribute {name}: {:?}", shorten(value))
            }
            BodyError::Text => f.write_str("character data directly inside <body>"),
        }
    }
}

impl std::error::Error for BodyError {}

/// At most 64 characters of a client's value, for a log line.
fn shorten(s: &str) -> &str {
    s.char_indices().nth(64).map_or(s, |(i, _)| &s[..i])
}

/// Reads a client's request: `bytes` is the HTTP request body, at most
/// `max_bytes` long.
pub fn parse(bytes: &[u8], max_bytes: usize) -> Result<RequestBody, BodyError> {
    if bytes.len() > max_bytes {
        return Err(BodyError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| BodyError::NotUtf8)?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: nodes_limit(max_bytes),
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => BodyError::Restricted("DTD"),
        e => BodyError::Xml(e.to_string()),
    })?;
    for node in doc.root().descendants() {
        match node.node_type() {
            roxmltree::NodeType::Comment => return Err(BodyError::Restricted("comment")),
            roxmltree::NodeType::PI => return Err(BodyError::Restricted("processing instruction")),
            _ => {}
        }
    }
    let root = doc.root_element();
    if root.tag_name().name() != "body" || root.tag_name().namespace() != Some(NS_HTTPBIND) {
        return Err(BodyError::NotBody(format!(
            "{{{}}}{}",
            root.tag_name().namespace().unwrap_or(""),
            shorten(root.tag_name().name())
        )));
    }
    let mut body = read_attributes(root)?;
    body.payload = payload(text, root)?;
    Ok(body)
}

/// The parser's node limit for a body of at most `max_bytes`: a real
/// stanza averages well over 8 bytes a node, and the cap keeps one parse
/// within a few MiB of nodes whatever the byte limit.
fn nodes_limit(max_bytes: usize) -> u32 {
    u32::try_from(max_bytes / 8)
        .unwrap_or(u32::MAX)
        .clamp(1024, 1 << 16)
}

/// The `<body/>` attributes Perch reads; others are ignored.
fn read_attributes(root: roxmltree::Node<'_, '_>) -> Result<RequestBody, BodyError> {
    let mut body = RequestBody::default();
    let mut rid = None;
    for a in root.attributes() {
        let v = a.value();
        let owned = || Some(v.to_owned());
        match (a.namespace(), a.name()) {
            (None, "rid") => rid = Some(number(v, "rid", MAX_RID)?),
            (None, "sid") => body.sid = owned(),
            (None, "to") => body.to = owned(),
            (None, "from") => body.from = owned(),
            (None, "ver") => body.ver = Some(version(v)?),
            (None, "wait") => body.wait = Some(small(v, "wait")?),
            (None, "hold") => body.hold = Some(small(v, "hold")?),
            (None, "ack") => body.ack = Some(number(v, "ack", MAX_RID)?),
            (None, "pause") => body.pause = Some(small(v, "pause")?),
            (None, "type") => body.terminate = body_type(v)?,
            (None, "content") => body.content = owned(),
            (None, "route") => body.route = owned(),
            (None, "key") => body.key = owned(),
            (None, "newkey") => body.newkey = owned(),
            (Some(NS_XML), "lang") => body.lang = owned(),
            (Some(NS_XBOSH), "version") => body.xmpp_version = owned(),
            (Some(NS_XBOSH), "restart") => body.restart = boolean(v, "xmpp:restart")?,
            _ => {}
        }
    }
    body.rid = rid.ok_or(BodyError::MissingRid)?;
    Ok(body)
}

fn bad(name: &'static str, value: &str) -> BodyError {
    BodyError::BadAttribute {
        name,
        value: value.to_owned(),
    }
}

/// A non-negative decimal integer of at most `max` (surrounding XML
/// whitespace allowed; no sign).
fn number(value: &str, name: &'static str, max: u64) -> Result<u64, BodyError> {
    let digits = value.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(name, value));
    }
    match digits.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(bad(name, value)),
    }
}

/// A number of seconds or requests: any u32 (the session clamps it).
fn small(value: &str, name: &'static str) -> Result<u32, BodyError> {
    let n = number(value, name, u64::from(u32::MAX))?;
    u32::try_from(n).map_err(|_| bad(name, value))
}

/// `major.minor`, each a separate integer (§7.1: "1.11" is above "1.6").
fn version(value: &str) -> Result<(u32, u32), BodyError> {
    let (major, minor) = value.split_once('.').ok_or_else(|| bad("ver", value))?;
    Ok((small(major, "ver")?, small(minor, "ver")?))
}

/// `type`: a client sends only `terminate` (§13).
fn body_type(value: &str) -> Result<bool, BodyError> {
    match value {
        "terminate" => Ok(true),
        _ => Err(bad("type", value)),
    }
}

/// An XML Schema boolean.
fn boolean(value: &str, name: &'static str) -> Result<bool, BodyError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(name, value)),
    }
}

/// The child elements of `body`, each copied as written with the
/// namespace declarations it takes from `<body>` inserted into its start
/// tag. Whitespace between them is dropped; other text is refused.
fn payload(text: &str, body: roxmltree::Node<'_, '_>) -> Result<Vec<u8>, BodyError> {
    let default_ns = match body.lookup_namespace_uri(None) {
        None | Some("") | Some(NS_HTTPBIND) => NS_CLIENT,
        Some(ns) => ns,
    };
    // Prefixes declared on <body> (`xml` is implicit everywhere).
    let prefixed: Vec<(&str, &str)> = body
        .namespaces()
        .filter_map(|ns| Some((ns.name()?, ns.uri())))
        .filter(|(prefix, _)| *prefix != "xml")
        .collect();
    let mut out = Vec::new();
    for child in body.children() {
        if child.is_text() {
            let blank = child.text().unwrap_or("").chars().all(is_xml_space);
            if !blank {
                return Err(BodyError::Text);
            }
        } else if child.is_element() {
            write_child(text, child, default_ns, &prefixed, &mut out)?;
        }
    }
    Ok(out)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Appends one child of `<body>`, made self-contained.
fn write_child(
    text: &str,
    child: roxmltree::Node<'_, '_>,
    default_ns: &str,
    prefixed: &[(&str, &str)],
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    let src = text.get(child.range()).ok_or_else(not_well_formed)?;
    let tag = StartTag::scan(src.as_bytes()).ok_or_else(not_well_formed)?;
    let name_end = 1 + tag.name.len();
    out.push(b'<');
    out.extend_from_slice(tag.name);
    if !tag.declares(None) {
        insert_declaration(out, None, default_ns);
    }
    if !prefixed.is_empty() {
        let used = prefixes_used(text, child);
        for &(prefix, uri) in prefixed {
            if used.contains(&prefix) && !tag.declares(Some(prefix)) {
                insert_declaration(out, Some(prefix), uri);
            }
        }
    }
    out.extend_from_slice(&src.as_bytes()[name_end..]);
    Ok(())
}

fn not_well_formed() -> BodyError {
    BodyError::Xml("unexpected element markup".to_owned())
}

/// ` xmlns='uri'` or ` xmlns:prefix='uri'`.
fn insert_declaration(out: &mut Vec<u8>, prefix: Option<&str>, uri: &str) {
    out.extend_from_slice(b" xmlns");
    if let Some(prefix) = prefix {
        out.push(b':');
        out.extend_from_slice(prefix.as_bytes());
    }
    out.extend_from_slice(b"='");
    escape_attr_into(uri, out);
    out.push(b'\'');
}

/// Every namespace prefix used by an element or attribute name in the
/// subtree of `el`, once each.
fn prefixes_used<'t>(text: &'t str, el: roxmltree::Node<'_, '_>) -> Vec<&'t str> {
    let mut used: Vec<&'t str> = Vec::new();
    let mut note = |qname: &'t str| {
        if let Some((prefix, _)) = qname.split_once(':')
            && !used.contains(&prefix)
        {
            used.push(prefix);
        }
    };
    for node in el.descendants().filter(|n| n.is_element()) {
        let start = node.range().start;
        if let Some(src) = text.get(start..) {
            let name_len = StartTag::name_len(src.as_bytes());
            if let Some(name) = src.get(1..1 + name_len) {
                note(name);
            }
        }
        for a in node.attributes() {
            if let Some(qname) = text.get(a.range_qname()) {
                note(qname);
            }
        }
    }
    used
}

/// The start tag at the beginning of an element's source text. The text
/// was parsed already, so only well-formed markup needs reading.
struct StartTag<'a> {
    name: &'a [u8],
    /// The qualified names of its attributes, `xmlns` declarations too.
    attrs: Vec<&'a [u8]>,
}

impl<'a> StartTag<'a> {
    /// Reads `<name attr='v' …` from `src`; None if it is not a start tag.
    fn scan(src: &'a [u8]) -> Option<StartTag<'a>> {
        if src.first() != Some(&b'<') {
            return None;
        }
        let name_len = Self::name_len(src);
        let name = src.get(1..1 + name_len).filter(|n| !n.is_empty())?;
        let mut attrs = Vec::new();
        let mut i = 1 + name_len;
        loop {
            i += count(src.get(i..)?, |b| b.is_ascii_whitespace());
            match *src.get(i)? {
                b'/' | b'>' => return Some(StartTag { name, attrs }),
                _ => {}
            }
            let qname_len = count(src.get(i..)?, |b| !b.is_ascii_whitespace() && b != b'=');
            attrs.push(src.get(i..i + qname_len)?);
            i += qname_len;
            i += count(src.get(i..)?, |b| b.is_ascii_whitespace() || b == b'=');
            let quote = *src.get(i)?;
            let value_len = src.get(i + 1..)?.iter().position(|&b| b == quote)?;
            i += value_len + 2;
        }
    }

    /// The length of the name after `<` in `src`.
    fn name_len(src: &[u8]) -> usize {
        src.get(1..).map_or(0, |rest| {
            count(rest, |b| !b.is_ascii_whitespace() && b != b'/' && b != b'>')
        })
    }

    /// Whether the tag itself declares the default namespace (None) or
    /// `prefix`.
    fn declares(&self, prefix: Option<&str>) -> bool {
        self.attrs.iter().any(|a| match prefix {
            None => *a == b"xmlns",
            Some(p) => a.strip_prefix(b"xmlns:") == Some(p.as_bytes()),
        })
    }
}

/// How many leading bytes of `s` satisfy `f`.
fn count(s: &[u8], f: impl Fn(u8) -> bool) -> usize {
    s.iter().take_while(|&&b| f(b)).count()
}

// ---------------------------------------------------------------------------
// Responses.

/// The terminal binding conditions of XEP-0124 §17.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    BadRequest,
    HostGone,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    ItemNotFound,
    OtherRequest,
    PolicyViolation,
    RemoteConnectionFailed,
    RemoteStreamError,
    SeeOtherUri,
    SystemShutdown,
    UndefinedCondition,
}

impl Condition {
    /// Every condition, in the order of §17.2's table.
    pub const ALL: [Condition; 13] = [
        Condition::BadRequest,
        Condition::HostGone,
        Condition::HostUnknown,
        Condition::ImproperAddressing,
        Condition::InternalServerError,
        Condition::ItemNotFound,
        Condition::OtherRequest,
        Condition::PolicyViolation,
        Condition::RemoteConnectionFailed,
        Condition::RemoteStreamError,
        Condition::SeeOtherUri,
        Condition::SystemShutdown,
        Condition::UndefinedCondition,
    ];

    /// The value of the `condition` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::BadRequest => "bad-request",
            Condition::HostGone => "host-gone",
            Condition::HostUnknown => "host-unknown",
            Condition::ImproperAddressing => "improper-addressing",
            Condition::InternalServerError => "internal-server-error",
            Condition::ItemNotFound => "item-not-found",
            Condition::OtherRequest => "other-request",
            Condition::PolicyViolation => "policy-violation",
            Condition::RemoteConnectionFailed => "remote-connection-failed",
            Condition::RemoteStreamError => "remote-stream-error",
            Condition::SeeOtherUri => "see-other-uri",
            Condition::SystemShutdown => "system-shutdown",
            Condition::UndefinedCondition => "undefined-condition",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `type` of a response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseKind {
    /// An ordinary response.
    #[default]
    Normal,
    /// `type='terminate'`, with a condition for an error (§13, §17.2).
    Terminate(Option<Condition>),
    /// `type='error'`: a recoverable binding condition (§17.3); the client
    /// resends the requests that have no response yet.
    RecoverableError,
}

/// The session creation response's own attributes (XEP-0124 §7.2,
/// XEP-0206 §4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creation {
    pub sid: String,
    pub wait: u32,
    pub requests: u32,
    pub hold: u32,
    pub inactivity: u32,
    pub polling: u32,
    pub maxpause: u32,
    /// The lower of [`VERSION`] and the client's `ver`.
    pub ver: (u32, u32),
    /// The domain of the stream (from the stream header).
    pub from: Option<String>,
    /// Whether the connection to the XMPP server is secure (XEP-0124
    /// before 1.7; Perch's stream is in-process).
    pub secure: Option<bool>,
    /// The stream id (XEP-0206 §4, for legacy digest authentication).
    pub authid: Option<String>,
}

/// The attributes of a response `<body/>` besides its namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseAttrs {
    pub kind: ResponseKind,
    /// `ack` (§9.1): on the creation response the creation request's rid;
    /// later the highest rid received with all below it, when that is not
    /// the rid being answered.
    pub ack: Option<u64>,
    /// Only on the session creation response.
    pub creation: Option<Creation>,
}

/// Writes a response `<body/>` with `payload` (complete, self-contained
/// elements) inside; self-closing when there is none.
pub fn write_response(out: &mut Vec<u8>, attrs: &ResponseAttrs, payload: &[&[u8]]) {
    out.extend_from_slice(b"<body xmlns='");
    out.extend_from_slice(NS_HTTPBIND.as_bytes());
    out.push(b'\'');
    match attrs.kind {
        ResponseKind::Normal => {}
        ResponseKind::Terminate(condition) => {
            attr(out, "type", "terminate");
            if let Some(c) = condition {
                attr(out, "condition", c.as_str());
            }
        }
        ResponseKind::RecoverableError => attr(out, "type", "error"),
    }
    if let Some(ack) = attrs.ack {
        attr(out, "ack", &ack.to_string());
    }
    if let Some(c) = &attrs.creation {
        write_creation(out, c);
    }
    if payload.iter().all(|p| p.is_empty()) {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    for p in payload {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"</body>");
}

fn write_creation(out: &mut Vec<u8>, c: &Creation) {
    attr(out, "sid", &c.sid);
    for (name, value) in [
        ("wait", c.wait),
        ("requests", c.requests),
        ("hold", c.hold),
        ("inactivity", c.inactivity),
        ("polling", c.polling),
        ("maxpause", c.maxpause),
    ] {
        attr(out, name, &value.to_string());
    }
    attr(out, "ver", &format!("{}.{}", c.ver.0, c.ver.1));
    if let Some(from) = &c.from {
        attr(out, "from", from);
    }
    if let Some(secure) = c.secure {
        attr(out, "secure", if secure { "true" } else { "false" });
    }
    if let Some(authid) = &c.authid {
        attr(out, "authid", authid);
    }
    attr(out, "xmlns:xmpp", NS_XBOSH);
    attr(out, "xmpp:version", "1.0");
    attr(out, "xmpp:restartlogic", "true");
    attr(out, "xmlns:stream", NS_STREAM);
}

/// ` name='value'`, the value escaped.
fn attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    escape_attr_into(value, out);
    out.push(b'\'');
}

/// `<body type='terminate' condition='…'/>`: the session is over (§13,
/// §17.2).
pub fn write_terminate(out: &mut Vec<u8>, condition: Option<Condition>) {
    let attrs = ResponseAttrs {
        kind: ResponseKind::Terminate(condition),
        ..ResponseAttrs::default()
    };
    write_response(out, &attrs, &[]);
}

/// `<body type='error'/>`: a recoverable binding condition (§17.3), for
/// the earlier HTTP request of a rid the client sent again while it was
/// held (§14.3).
pub fn write_recoverable_error(out: &mut Vec<u8>) {
    let attrs = ResponseAttrs {
        kind: ResponseKind::RecoverableError,
        ..ResponseAttrs::default()
    };
    write_response(out, &attrs, &[]);
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
