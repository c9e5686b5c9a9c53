//! Server Dialback (XEP-0220) as both directions of a server-to-server
//! stream need it: the dialback keys of XEP-0185, their constant-time
//! comparison, and the wire format of the `db:` elements and of the s2s
//! stream header that declares the `db` prefix.
//!
//! The stream state machines (`s2s_in`, `s2s_out`) decide when to send
//! what; this module only knows how keys are made and how the elements look.

use ring::{digest, hmac};

use crate::jid::Jid;
use crate::stanza::{NS_STANZAS, StanzaError};
use crate::xml::{Element, NS_SERVER, NS_STREAM, escape_attr_into, escape_text_into};

use super::NS_DIALBACK;

/// The secret behind this server's dialback keys. Whoever knows it can
/// vouch for our domains, so it never leaves the process; a random one per
/// start is enough for a single server (XEP-0185 §2 note 3: keys only need
/// to survive as long as the streams they authenticate).
pub struct DialbackSecret([u8; 32]);

impl DialbackSecret {
    pub fn new(secret: [u8; 32]) -> Self {
        DialbackSecret(secret)
    }

    /// A fresh secret from the OS random generator.
    pub fn random() -> Result<Self, ring::error::Unspecified> {
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)?;
        Ok(DialbackSecret(secret))
    }

    /// The key the originating domain presents to the receiving one on the
    /// stream `stream_id` (the id of the receiving server's header).
    pub fn key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        key_from_secret(&self.0, receiving, originating, stream_id)
    }

    /// Whether `key` (surrounding white space ignored) is the one this
    /// secret makes for the triple; the comparison takes the same time
    /// whatever the key, so a peer cannot guess it byte by byte.
    pub fn verify(&self, receiving: &str, originating: &str, stream_id: &str, key: &str) -> bool {
        keys_match(&self.key(receiving, originating, stream_id), key.trim())
    }
}

/// The secret stays out of logs and panic messages.
impl std::fmt::Debug for DialbackSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DialbackSecret(…)")
    }
}

/// XEP-0185 §2: `hex(HMAC-SHA256(hex(SHA256(secret)), "R O id"))`. The
/// HMAC key is the *hex text* of the secret's digest, as the worked example
/// shows ('a7136e…' is used as the key, not the 32 raw bytes): keys made
/// another way would not verify against other servers sharing a secret.
pub fn key_from_secret(
    secret: &[u8],
    receiving: &str,
    originating: &str,
    stream_id: &str,
) -> String {
    let hashed = crate::ids::hex(digest::digest(&digest::SHA256, secret).as_ref());
    let key = hmac::Key::new(hmac::HMAC_SHA256, hashed.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    // Space-separated so that "a.b c" and "a b.c" give different keys.
    for (i, part) in [receiving, originating, stream_id].into_iter().enumerate() {
        if i > 0 {
            context.update(b" ");
        }
        context.update(part.as_bytes());
    }
    crate::ids::hex(context.sign().as_ref())
}

/// Compares two keys in time that depends only on their lengths (which are
/// public: every key is 64 hex digits).
pub fn keys_match(expected: &str, received: &str) -> bool {
    let (a, b) = (expected.as_bytes(), received.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Which dialback element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialbackKind {
    /// `db:result`: a key from the originating server, or the receiving
    /// server's answer to one.
    Result,
    /// `db:verify`: a question to the authoritative server, or its answer.
    Verify,
}

impl DialbackKind {
    fn name(self) -> &'static str {
        match self {
            DialbackKind::Result => "result",
            DialbackKind::Verify => "verify",
        }
    }
}

/// The `type` of an answer; requests carry none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialbackAnswer {
    Valid,
    Invalid,
    /// `type='error'` with the stanza error condition it names (empty if it
    /// names none) and its text, if any.
    Error {
        condition: String,
        text: Option<String>,
    },
}

/// A received `db:result` or `db:verify`, its domains normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialbackElement {
    pub kind: DialbackKind,
    pub from: String,
    pub to: String,
    /// The stream id (`db:verify` only).
    pub id: Option<String>,
    pub answer: Option<DialbackAnswer>,
    /// The key, white space around it removed (requests only).
    pub key: String,
}

impl DialbackElement {
    /// Reads a `db:` element; the error says what is malformed (for a
    /// `bad-format` stream error: without valid domains there is no one to
    /// address a dialback error to).
    pub fn parse(el: &Element) -> Result<DialbackElement, String> {
        let kind = match el.name.as_ref() {
            "result" if el.ns == NS_DIALBACK => DialbackKind::Result,
            "verify" if el.ns == NS_DIALBACK => DialbackKind::Verify,
            other => return Err(format!("<{other}/> is not a dialback element")),
        };
        let domain = |attr: &str| {
            let raw = el
                .attr(attr)
                .ok_or_else(|| format!("<db:{}/> without '{attr}'", kind.name()))?;
            normalize_domain(raw)
                .ok_or_else(|| format!("'{raw}' in <db:{}/> is not a domain", kind.name()))
        };
        let from = domain("from")?;
        let to = domain("to")?;
        let answer = match el.attr("type") {
            None => None,
            Some("valid") => Some(DialbackAnswer::Valid),
            Some("invalid") => Some(DialbackAnswer::Invalid),
            Some("error") => {
                let error = el.get_child("error", NS_SERVER);
                let condition = error
                    .and_then(|e| {
                        e.children()
                            .find(|c| c.ns == NS_STANZAS && c.name != "text")
                    })
                    .map(|c| c.name.to_string())
                    .unwrap_or_default();
                let text = error
                    .and_then(|e| e.get_child("text", NS_STANZAS))
                    .map(|t| t.text());
                Some(DialbackAnswer::Error { condition, text })
            }
            Some(other) => return Err(format!("unknown dialback type '{other}'")),
        };
        let id = el.attr("id").map(str::to_string);
        if kind == DialbackKind::Verify && id.is_none() {
            return Err("<db:verify/> without 'id'".to_string());
        }
        Ok(DialbackElement {
            kind,
            from,
            to,
            id,
            answer,
            key: el.text().trim().to_string(),
        })
    }
}

/// What a written dialback element carries.
pub enum DialbackBody<'a> {
    Empty,
    Key(&'a str),
    Error(&'a StanzaError),
}

/// Appends `<db:result/>` or `<db:verify/>`. Written by hand because the
/// serializer gives every namespace as a default-namespace declaration, and
/// XEP-0220 §2 requires the `db` prefix declared on our stream header (some
/// servers accept nothing else).
pub fn write_dialback(
    out: &mut Vec<u8>,
    kind: DialbackKind,
    from: &str,
    to: &str,
    id: Option<&str>,
    answer: Option<&str>,
    body: DialbackBody<'_>,
) {
    out.extend_from_slice(b"<db:");
    out.extend_from_slice(kind.name().as_bytes());
    for (name, value) in [
        ("from", Some(from)),
        ("to", Some(to)),
        ("id", id),
        ("type", answer),
    ] {
        if let Some(value) = value {
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr_into(value, out);
            out.push(b'\'');
        }
    }
    match body {
        DialbackBody::Empty => {
            out.extend_from_slice(b"/>");
            return;
        }
        DialbackBody::Key(key) => {
            out.push(b'>');
            escape_text_into(key, out);
        }
        DialbackBody::Error(error) => {
            out.push(b'>');
            // §2.4.2: `<error/>` is qualified by jabber:server, which is
            // still the default namespace inside the prefixed element.
            let mut element = error.to_element();
            element.ns = NS_SERVER.into();
            element.write_to(out, NS_SERVER);
        }
    }
    out.extend_from_slice(b"</db:");
    out.extend_from_slice(kind.name().as_bytes());
    out.push(b'>');
}

/// Appends the opening of a server-to-server stream (with the XML
/// declaration): `jabber:server` as default namespace and the dialback
/// prefix declared, which also advertises traditional dialback (XEP-0220
/// §2.4.1). `version` is left out for a peer that sent none (RFC 6120
/// §4.7.5: answer with the lower of the two versions).
pub fn write_stream_header(
    out: &mut Vec<u8>,
    id: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    version: bool,
) {
    out.extend_from_slice(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='",
    );
    out.extend_from_slice(NS_STREAM.as_bytes());
    out.extend_from_slice(b"' xmlns:db='");
    out.extend_from_slice(NS_DIALBACK.as_bytes());
    out.push(b'\'');
    for (name, value) in [("id", id), ("from", from), ("to", to)] {
        if let Some(value) = value {
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr_into(value, out);
            out.push(b'\'');
        }
    }
    if version {
        out.extend_from_slice(b" version='1.0'");
    }
    out.push(b'>');
}

/// `raw` as a normalized domain, if it is one (no localpart, no resource).
pub fn normalize_domain(raw: &str) -> Option<String> {
    match Jid::parse(raw) {
        Ok(j) if j.local().is_none() && j.resource().is_none() => Some(j.domain().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::Condition;

    /// XEP-0185 §3, the worked example, step by step.
    #[test]
    fn xep_0185_example() {
        let hashed =
            crate::ids::hex(digest::digest(&digest::SHA256, b"s3cr3tf0rd14lb4ck").as_ref());
        assert_eq!(
            hashed,
            "a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc"
        );
        assert_eq!(
            key_from_secret(
                b"s3cr3tf0rd14lb4ck",
                "xmpp.example.com",
                "example.org",
                "D60000229F"
            ),
            "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"
        );
    }

    /// XEP-0220 §2.1.1 and §2.2.2 examples.
    #[test]
    fn xep_0220_examples() {
        assert_eq!(
            key_from_secret(
                b"s3cr3tf0rd14lb4ck",
                "montague.example",
                "capulet.example",
                "D60000229F"
            ),
            "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"
        );
        assert_eq!(
            key_from_secret(
                b"d14lb4ck43v3r",
                "capulet.example",
                "montague.example",
                "417GAF25"
            ),
            "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d"
        );
    }

    #[test]
    fn secret_keys_verify() {
        let secret = DialbackSecret::new([7; 32]);
        let other = DialbackSecret::new([8; 32]);
        let key = secret.key("b.example", "a.example", "id1");
        assert_eq!(key.len(), 64);
        assert!(secret.verify("b.example", "a.example", "id1", &key));
        assert!(secret.verify("b.example", "a.example", "id1", &format!("\n  {key}\n")));
        assert!(!secret.verify("b.example", "a.example", "id2", &key));
        assert!(!secret.verify("a.example", "b.example", "id1", &key));
        assert!(!other.verify("b.example", "a.example", "id1", &key));
        assert!(!secret.verify("b.example", "a.example", "id1", ""));
        assert!(!secret.verify("b.example", "a.example", "id1", &key[..63]));
        assert_eq!(format!("{secret:?}"), "DialbackSecret(…)");
        assert!(DialbackSecret::random().is_ok());
    }

    #[test]
    fn keys_match_compares_exactly() {
        assert!(keys_match("abc", "abc"));
        assert!(!keys_match("abc", "abd"));
        assert!(!keys_match("abc", "ABC"));
        assert!(!keys_match("abc", "abcd"));
        assert!(keys_match("", ""));
    }

    fn written(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn writes_dialback_elements() {
        assert_eq!(
            written(|o| write_dialback(
                o,
                DialbackKind::Result,
                "a.example",
                "b.example",
                None,
                None,
                DialbackBody::Key("k<1")
            )),
            "<db:result from='a.example' to='b.example'>k&lt;1</db:result>"
        );
        assert_eq!(
            written(|o| write_dialback(
                o,
                DialbackKind::Verify,
                "b.example",
                "a.example",
                Some("s'1"),
                Some("valid"),
                DialbackBody::Empty
            )),
            "<db:verify from='b.example' to='a.example' id='s&apos;1' type='valid'/>"
        );
        let error = StanzaError::new(Condition::ItemNotFound);
        assert_eq!(
            written(|o| write_dialback(
                o,
                DialbackKind::Result,
                "b.example",
                "a.example",
                None,
                Some("error"),
                DialbackBody::Error(&error)
            )),
            "<db:result from='b.example' to='a.example' type='error'><error type='cancel'>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"
        );
    }

    #[test]
    fn writes_stream_headers() {
        assert_eq!(
            written(|o| write_stream_header(o, Some("i1"), Some("b.example"), None, false)),
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
             xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
             id='i1' from='b.example'>"
        );
        assert!(
            written(|o| write_stream_header(o, None, Some("a"), Some("b"), true))
                .ends_with(" from='a' to='b' version='1.0'>")
        );
    }

    fn parse(xml: &str) -> Result<DialbackElement, String> {
        let el = Element::parse(xml).map_err(|e| e.to_string())?;
        DialbackElement::parse(&el)
    }

    #[test]
    fn parses_dialback_elements() {
        let db = "xmlns:db='jabber:server:dialback'";
        let request = parse(&format!(
            "<db:result {db} from='A.example' to='b.example'>\n  key \n</db:result>"
        ))
        .expect("request");
        assert_eq!(request.kind, DialbackKind::Result);
        assert_eq!(request.from, "a.example");
        assert_eq!(request.key, "key");
        assert_eq!(request.answer, None);

        let answer = parse(&format!(
            "<db:verify {db} xmlns='jabber:server' from='a' to='b' id='x' type='error'>\
             <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></error></db:verify>"
        ))
        .expect("answer");
        assert_eq!(
            answer.answer,
            Some(DialbackAnswer::Error {
                condition: "item-not-found".to_string(),
                text: Some("gone".to_string())
            })
        );
        assert_eq!(answer.id.as_deref(), Some("x"));

        for bad in [
            format!("<db:result {db} to='b'>k</db:result>"),
            format!("<db:result {db} from='a@b' to='b'>k</db:result>"),
            format!("<db:result {db} from='a' to='b' type='maybe'/>"),
            format!("<db:verify {db} from='a' to='b'>k</db:verify>"),
            "<result xmlns='urn:other' from='a' to='b'/>".to_string(),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
