//! The URLs of an upload slot (XEP-0363 §5), built and checked without
//! I/O.
//!
//! A file is named by an id of 128 random bits (32 hex digits). The GET
//! URL, `{base}/upload/{id}/{name}`, carries nothing else: whoever knows
//! the id may download the file, so the id is the secret, as in every
//! other XEP-0363 service (the URL travels in messages to the recipients).
//!
//! The PUT URL adds `?expires={unix}&sig={hmac}`: an HMAC-SHA256, keyed by
//! a secret kept in the database, over the id, the file name, the size,
//! the media type and the expiry. It stops anyone who only saw the GET URL
//! (a recipient of a message sent before the upload finished) from putting
//! other content under it, and it bounds how long the URL may be used.
//! The same signature is also given as an `Authorization: Bearer` header
//! (the XEP's way, and what Prosody does); the PUT handler takes either.

use ring::hmac;

/// Hex digits of a file id: 128 bits.
pub const ID_LEN: usize = 32;

/// Separates the signed fields from anything else ever signed with the
/// key.
const CONTEXT: &[u8] = b"perch upload put v1";

/// A new file id from 16 random bytes (ring's `SystemRandom`, through
/// [`crate::ids::Ids`]).
pub fn new_id(random: [u8; 16]) -> String {
    crate::ids::hex(&random)
}

/// Whether `s` has the shape of a file id: 32 lower-case hex digits. It is
/// checked before any lookup, so nothing else reaches the store or the
/// file system.
pub fn is_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a PUT URL is signed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PutGrant<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub size: u64,
    pub content_type: Option<&'a str>,
    /// Unix seconds after which the URL is refused.
    pub expires: u64,
}

impl PutGrant<'_> {
    /// The signed bytes: every variable field length-prefixed, so that no
    /// two grants sign the same bytes.
    fn message(&self) -> Vec<u8> {
        let content_type = self.content_type.unwrap_or_default();
        let mut out = Vec::with_capacity(
            CONTEXT.len() + 40 + self.id.len() + self.name.len() + content_type.len(),
        );
        out.extend_from_slice(CONTEXT);
        for field in [self.id, self.name, content_type] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        out
    }

    /// The signature, as 64 lower-case hex digits.
    pub fn sign(&self, key: &hmac::Key) -> String {
        crate::ids::hex(hmac::sign(key, &self.message()).as_ref())
    }

    /// Whether `sig` (hex) is this grant's signature, compared in constant
    /// time (`ring::hmac::verify`).
    pub fn verify(&self, key: &hmac::Key, sig: &str) -> bool {
        match decode_hex::<32>(sig) {
            Some(tag) => hmac::verify(key, &self.message(), &tag).is_ok(),
            None => false,
        }
    }
}

/// `N` bytes from exactly `2N` hex digits (either case).
fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *byte = (nibble(*high)? << 4) | nibble(*low)?;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Percent-encodes a path segment: everything but RFC 3986's unreserved
/// characters, so the URL is plain ASCII (XEP-0363 §5) and no character of
/// the name can end the segment or start a query.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 15)]));
        }
    }
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// `{base}/upload/{id}/{name}`: where the file is downloaded.
pub fn get_url(base: &str, id: &str, name: &str) -> String {
    format!(
        "{}/upload/{id}/{}",
        base.trim_end_matches('/'),
        encode_segment(name)
    )
}

/// The GET URL plus the expiry and the signature: where it is uploaded.
pub fn put_url(base: &str, grant: &PutGrant<'_>, sig: &str) -> String {
    format!(
        "{}?expires={}&sig={sig}",
        get_url(base, grant.id, grant.name),
        grant.expires
    )
}

/// The `expires` and `sig` parameters of a PUT URL's query, when present
/// and well-formed (a repeated parameter makes it unusable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PutQuery<'a> {
    pub expires: Option<u64>,
    pub sig: Option<&'a str>,
}

pub fn parse_query(query: Option<&str>) -> PutQuery<'_> {
    let mut expires: Option<Option<u64>> = None;
    let mut sig: Option<Option<&str>> = None;
    for pair in query.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "expires" => {
                let parsed = (!value.is_empty()
                    && value.len() <= 20
                    && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<u64>().ok())
                .flatten();
                expires = Some(if expires.is_some() { None } else { parsed });
            }
            "sig" => sig = Some(if sig.is_some() { None } else { Some(value) }),
            _ => {}
        }
    }
    PutQuery {
        expires: expires.flatten(),
        sig: sig.flatten(),
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let header = header?.trim();
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[byte; 32])
    }

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn grant() -> PutGrant<'static> {
        PutGrant {
            id: ID,
            name: "très cool.jpg",
            size: 23_456,
            content_type: Some("image/jpeg"),
            expires: 1_800_000_300,
        }
    }

    #[test]
    fn ids_have_one_shape() {
        assert!(is_id(ID));
        assert!(is_id(&new_id([0xab; 16])));
        assert_eq!(new_id([0; 16]).len(), ID_LEN);
        for bad in [
            "",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789abcdef0123456789abcdeg",
            "..",
            "%2e%2e",
        ] {
            assert!(!is_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_signature_covers_every_field() {
        let k = key(1);
        let sig = grant().sign(&k);
        assert_eq!(sig.len(), 64);
        assert!(grant().verify(&k, &sig));
        assert!(grant().verify(&k, &sig.to_uppercase()));
        assert!(!grant().verify(&key(2), &sig));
        let changed = [
            PutGrant {
                id: "1123456789abcdef0123456789abcdef",
                ..grant()
            },
            PutGrant {
                name: "tres cool.jpg",
                ..grant()
            },
            PutGrant {
                size: 23_457,
                ..grant()
            },
            PutGrant {
                content_type: None,
                ..grant()
            },
            PutGrant {
                content_type: Some("image/png"),
                ..grant()
            },
            PutGrant {
                expires: 1_800_000_301,
                ..grant()
            },
        ];
        for other in changed {
            assert!(!other.verify(&k, &sig), "{other:?}");
        }
        // Field boundaries cannot be moved: the lengths are signed too.
        let a = PutGrant {
            name: "ab",
            content_type: Some("c"),
            ..grant()
        };
        let b = PutGrant {
            name: "a",
            content_type: Some("bc"),
            ..grant()
        };
        assert_ne!(a.sign(&k), b.sign(&k));
        for bad in [
            "",
            "zz",
            &sig[..63],
            &format!("{sig}0"),
            &sig.replace(|_| true, "g"),
        ] {
            assert!(!grant().verify(&k, bad), "{bad}");
        }
    }

    #[test]
    fn urls_are_ascii_and_keep_the_name() {
        let base = "https://example.org:5281/";
        assert_eq!(
            get_url(base, ID, "très cool.jpg"),
            format!("https://example.org:5281/upload/{ID}/tr%C3%A8s%20cool.jpg")
        );
        assert_eq!(
            put_url(base, &grant(), "ab"),
            format!(
                "https://example.org:5281/upload/{ID}/tr%C3%A8s%20cool.jpg?expires=1800000300&sig=ab"
            )
        );
        assert_eq!(encode_segment("a?b#c/d%e&f"), "a%3Fb%23c%2Fd%25e%26f");
        assert_eq!(encode_segment("A-Z.a_z~09"), "A-Z.a_z~09");
        let decoded = crate::http::request::decode_segment(&encode_segment("très cool.jpg"));
        assert_eq!(decoded.as_deref(), Some("très cool.jpg"));
    }

    #[test]
    fn queries() {
        assert_eq!(
            parse_query(Some("expires=17&sig=abc")),
            PutQuery {
                expires: Some(17),
                sig: Some("abc")
            }
        );
        assert_eq!(
            parse_query(Some("sig=abc&x=1&expires=17")),
            PutQuery {
                expires: Some(17),
                sig: Some("abc")
            }
        );
        assert_eq!(parse_query(None), PutQuery::default());
        for bad in [
            "expires=-1&sig=a",
            "expires=1e3&sig=a",
            "expires=&sig=a",
            "expires=99999999999999999999999&sig=a",
            "expires=1&expires=2&sig=a",
        ] {
            assert_eq!(parse_query(Some(bad)).expires, None, "{bad}");
        }
        assert_eq!(parse_query(Some("expires=1&sig=a&sig=a")).sig, None);
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer   abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }
}
