//! A slot request (XEP-0363 §4) parsed and judged, and the answers to it,
//! without I/O: a fuzz target can feed it any element.
//!
//! The error texts are Prosody's (`mod_http_file_share`), which clients
//! and the shared test scripts know.

use crate::config::UploadConfig;
use crate::stanza::{Condition, ErrorType, StanzaError};
use crate::xml::Element;

use super::NS_UPLOAD;

/// Longest file name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Longest media type (with its parameters), in bytes.
pub const MAX_TYPE_BYTES: usize = 255;

/// The type a file sent without one is served as, and checked against
/// `[upload] allowed_types` as.
pub const DEFAULT_TYPE: &str = "application/octet-stream";

/// What a client asked a slot for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRequest {
    /// The file name, checked: 1 to 255 bytes, no separator or control
    /// character, not `.` or `..`.
    pub name: String,
    /// The announced size in bytes, at least 1.
    pub size: u64,
    /// The announced media type, if it was a usable one: `type/subtype` in
    /// lower case, then any parameters as sent.
    pub content_type: Option<String>,
}

impl SlotRequest {
    /// The `type/subtype` the file counts as.
    pub fn essence(&self) -> &str {
        self.content_type
            .as_deref()
            .map_or(DEFAULT_TYPE, essence_of)
    }
}

/// Why a slot request was refused (before the quotas, which the store
/// judges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// No `filename`, or one that cannot be a file name.
    BadName,
    /// No `size`, or not a positive integer.
    BadSize,
    /// Larger than `[upload] max_file_bytes` (which is `max`).
    TooLarge { max: u64 },
    /// A media type `[upload] allowed_types` leaves out.
    TypeNotAllowed,
}

impl RequestError {
    /// The stanza error (§6); [`RequestError::TooLarge`] also carries the
    /// `<file-too-large/>` element of [`RequestError::app_element`].
    pub fn stanza_error(&self) -> StanzaError {
        match self {
            RequestError::BadName => {
                StanzaError::new(Condition::BadRequest).with_text("Invalid filename")
            }
            RequestError::BadSize => StanzaError::new(Condition::BadRequest)
                .with_text("File size must be positive integer"),
            RequestError::TooLarge { .. } => {
                StanzaError::new(Condition::NotAcceptable).with_text("File too large")
            }
            RequestError::TypeNotAllowed => {
                StanzaError::new(Condition::NotAcceptable).with_text("File type not allowed")
            }
        }
        .with_type(ErrorType::Modify)
    }

    /// The application-specific element inside `<error/>`, if any.
    pub fn app_element(&self) -> Option<Element> {
        match self {
            RequestError::TooLarge { max } => {
                Some(Element::new("file-too-large", NS_UPLOAD).with_child(
                    Element::new("max-file-size", NS_UPLOAD).with_text(max.to_string()),
                ))
            }
            _ => None,
        }
    }
}

/// Reads a `<request xmlns='urn:xmpp:http:upload:0'/>` (attributes
/// `filename`, `size`, optional `content-type`).
pub fn parse(request: &Element) -> Result<SlotRequest, RequestError> {
    let name = request
        .attr("filename")
        .filter(|name| is_file_name(name))
        .ok_or(RequestError::BadName)?;
    let size = parse_size(request.attr("size"))?;
    let content_type = request.attr("content-type").and_then(content_type);
    Ok(SlotRequest {
        name: name.to_string(),
        size,
        content_type,
    })
}

/// Judges `request` against the configured limits (size and type).
pub fn check(request: &SlotRequest, config: &UploadConfig) -> Result<(), RequestError> {
    if request.size > config.max_file_bytes {
        return Err(RequestError::TooLarge {
            max: config.max_file_bytes,
        });
    }
    if !config.allows(request.essence()) {
        return Err(RequestError::TypeNotAllowed);
    }
    Ok(())
}

/// A usable file name: 1 to [`MAX_NAME_BYTES`] bytes, no `/`, `\`, NUL or
/// other control character, and not `.` or `..` (which a URL path would
/// take for a step).
pub fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// A positive integer of digits only. One too large for 64 bits is still a
/// size (too large for any limit), not a malformed one.
fn parse_size(size: Option<&str>) -> Result<u64, RequestError> {
    let digits = size.ok_or(RequestError::BadSize)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequestError::BadSize);
    }
    match digits.parse::<u64>() {
        Ok(0) => Err(RequestError::BadSize),
        Ok(n) => Ok(n),
        Err(_) => Ok(u64::MAX),
    }
}

/// A media type as announced, if it looks like one: `type/subtype`
/// (RFC 9110 tokens) optionally followed by `;` parameters, printable
/// ASCII only, at most [`MAX_TYPE_BYTES`]. The type and subtype are
/// lower-cased; anything else is ignored (the file then counts as
/// [`DEFAULT_TYPE`]).
pub fn content_type(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty()
        || raw.len() > MAX_TYPE_BYTES
        || !raw.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return None;
    }
    let (essence, params) = match raw.split_once(';') {
        Some((essence, params)) => (essence.trim(), Some(params.trim())),
        None => (raw, None),
    };
    let (major, minor) = essence.split_once('/')?;
    if !crate::config::is_media_token(major) || !crate::config::is_media_token(minor) {
        return None;
    }
    let mut out = essence.to_ascii_lowercase();
    if let Some(params) = params.filter(|p| !p.is_empty()) {
        out.push_str("; ");
        out.push_str(params);
    }
    Some(out)
}

/// The `type/subtype` of a media type [`content_type`] accepted.
pub fn essence_of(content_type: &str) -> &str {
    content_type
        .split(';')
        .next()
        .unwrap_or(content_type)
        .trim()
}

/// The answer (§5): where to upload, with the header to send, and where
/// the file will be.
pub fn slot_element(put_url: &str, authorization: &str, get_url: &str) -> Element {
    Element::new("slot", NS_UPLOAD)
        .with_child(
            Element::new("put", NS_UPLOAD)
                .with_attr("url", put_url)
                .with_child(
                    Element::new("header", NS_UPLOAD)
                        .with_attr("name", "Authorization")
                        .with_text(authorization),
                ),
        )
        .with_child(Element::new("get", NS_UPLOAD).with_attr("url", get_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(attrs: &[(&'static str, &str)]) -> Element {
        let mut el = Element::new("request", NS_UPLOAD);
        for (name, value) in attrs {
            el.set_attr(*name, *value);
        }
        el
    }

    fn parsed(attrs: &[(&'static str, &str)]) -> Result<SlotRequest, RequestError> {
        parse(&request(attrs))
    }

    #[test]
    fn a_full_request() {
        let r = parsed(&[
            ("filename", "très cool.jpg"),
            ("size", "23456"),
            ("content-type", "Image/JPEG"),
        ])
        .expect("valid");
        assert_eq!(
            r,
            SlotRequest {
                name: "très cool.jpg".into(),
                size: 23_456,
                content_type: Some("image/jpeg".into()),
            }
        );
        assert_eq!(r.essence(), "image/jpeg");
    }

    #[test]
    fn file_names() {
        let long = "é".repeat(127) + "a";
        assert_eq!(long.len(), 255);
        for good in [
            "a",
            ".hidden",
            "a..b",
            "...",
            " spaced ",
            long.as_str(),
            "a%2Fb",
            "日本.txt",
        ] {
            assert!(
                parsed(&[("filename", good), ("size", "1")]).is_ok(),
                "{good:?}"
            );
        }
        let too_long = long.clone() + "b";
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "a\u{0}b",
            "a\nb",
            "a\tb",
            "a\u{7f}",
            "a\u{85}",
            too_long.as_str(),
        ] {
            assert_eq!(
                parsed(&[("filename", bad), ("size", "1")]),
                Err(RequestError::BadName),
                "{bad:?}"
            );
        }
        assert_eq!(parsed(&[("size", "1")]), Err(RequestError::BadName));
    }

    #[test]
    fn sizes() {
        let size = |s: &str| parsed(&[("filename", "a"), ("size", s)]).map(|r| r.size);
        assert_eq!(size("1"), Ok(1));
        assert_eq!(size("007"), Ok(7));
        assert_eq!(size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(size("99999999999999999999999"), Ok(u64::MAX));
        for bad in ["0", "-1000", "+5", " 5", "5 ", "1e3", "", "0x10", "five"] {
            assert_eq!(size(bad), Err(RequestError::BadSize), "{bad:?}");
        }
        assert_eq!(parsed(&[("filename", "a")]), Err(RequestError::BadSize));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("text/plain").as_deref(), Some("text/plain"));
        assert_eq!(
            content_type(" Text/Plain ;charset=UTF-8 ").as_deref(),
            Some("text/plain; charset=UTF-8")
        );
        assert_eq!(content_type("text/plain;").as_deref(), Some("text/plain"));
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "text/plain\r\nX: y",
            "te xt/plain",
            "tëxt/plain",
            "a/b/c",
        ] {
            assert_eq!(content_type(bad), None, "{bad:?}");
        }
        assert_eq!(content_type(&format!("a/{}", "b".repeat(254))), None);
        let r = parsed(&[
            ("filename", "a"),
            ("size", "1"),
            ("content-type", "nonsense"),
        ])
        .expect("an unusable type is ignored");
        assert_eq!(r.content_type, None);
        assert_eq!(r.essence(), DEFAULT_TYPE);
        assert_eq!(essence_of("text/plain; charset=utf-8"), "text/plain");
    }

    #[test]
    fn limits() {
        let config = UploadConfig {
            max_file_bytes: 100,
            allowed_types: vec!["text/plain".into(), "image/*".into()],
            ..UploadConfig::default()
        };
        let req = |size: u64, ty: Option<&str>| SlotRequest {
            name: "a".into(),
            size,
            content_type: ty.map(str::to_string),
        };
        assert_eq!(check(&req(100, Some("text/plain")), &config), Ok(()));
        assert_eq!(check(&req(1, Some("image/png")), &config), Ok(()));
        assert_eq!(
            check(&req(101, Some("text/plain")), &config),
            Err(RequestError::TooLarge { max: 100 })
        );
        assert_eq!(
            check(&req(1, Some("application/x-executable")), &config),
            Err(RequestError::TypeNotAllowed)
        );
        assert_eq!(
            check(&req(1, None), &config),
            Err(RequestError::TypeNotAllowed)
        );
    }

    #[test]
    fn errors_are_the_xeps() {
        let too_large = RequestError::TooLarge { max: 10_000_000 };
        let e = too_large.stanza_error();
        assert_eq!(
            (e.condition, e.kind),
            (Condition::NotAcceptable, ErrorType::Modify)
        );
        assert_eq!(e.text.as_deref(), Some("File too large"));
        let app = too_large.app_element().expect("file-too-large");
        assert_eq!(
            app.to_string(),
            "<file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>10000000</max-file-size></file-too-large>"
        );
        assert_eq!(
            RequestError::BadSize.stanza_error().condition,
            Condition::BadRequest
        );
        assert!(RequestError::BadName.app_element().is_none());
    }

    #[test]
    fn the_slot() {
        let slot = slot_element("https://p", "Bearer x", "https://g");
        assert_eq!(
            slot.to_string(),
            "<slot xmlns='urn:xmpp:http:upload:0'><put url='https://p'><header name='Authorization'>Bearer x</header></put><get url='https://g'/></slot>"
        );
    }
}
