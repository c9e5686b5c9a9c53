//! The `xmpp:` URIs of invitations (RFC 5122, XEP-0147 query actions
//! with XEP-0379's `preauth` and XEP-0401's `ibr`), and the expiry syntax
//! of `perch invite --expires` (`7d`, `12h`, `30m`).

use std::fmt::Write;

use crate::store::invites::{Invite, InviteKind};

/// Days, hours or minutes a lifetime may be given in.
pub const MAX_EXPIRY_SECS: u64 = 366 * 86_400;

/// The URI that opens `invite` in a client:
/// `xmpp:DOMAIN?register;preauth=T`, `xmpp:USER@DOMAIN?register;preauth=T`
/// or `xmpp:CREATOR?roster;preauth=T;ibr=y`.
pub fn invite_uri(invite: &Invite) -> String {
    let mut uri = String::from("xmpp:");
    match (invite.kind, &invite.creator, &invite.username) {
        (InviteKind::Contact, Some(creator), None) => {
            push_jid(&mut uri, creator);
            uri.push_str("?roster;preauth=");
            uri.push_str(&invite.token);
            uri.push_str(";ibr=y");
            return uri;
        }
        (_, _, Some(user)) => {
            push_escaped(&mut uri, user);
            uri.push('@');
            push_escaped(&mut uri, &invite.domain);
        }
        _ => push_escaped(&mut uri, &invite.domain),
    }
    uri.push_str("?register;preauth=");
    uri.push_str(&invite.token);
    uri
}

fn push_jid(out: &mut String, jid: &str) {
    match jid.split_once('@') {
        Some((local, domain)) => {
            push_escaped(out, local);
            out.push('@');
            push_escaped(out, domain);
        }
        None => push_escaped(out, jid),
    }
}

/// RFC 5122 §2.2: everything but unreserved characters percent-encoded
/// (UTF-8 bytes), which is always a valid IRI path.
fn push_escaped(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// What an `xmpp:` invitation URI says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUri {
    /// The address before `?` (percent-decoded).
    pub jid: String,
    /// `register` or `roster`.
    pub action: String,
    pub preauth: Option<String>,
    /// `ibr=y` was present.
    pub ibr: bool,
}

/// Reads an `xmpp:` URI with a query (the inverse of [`invite_uri`], and
/// tolerant of other parameters); `None` if it is not one.
pub fn parse_uri(text: &str) -> Option<ParsedUri> {
    let rest = text.strip_prefix("xmpp:")?;
    let (jid, query) = rest.split_once('?')?;
    let jid = percent_decode(jid)?;
    if jid.is_empty() || jid.starts_with("//") {
        return None;
    }
    let mut parts = query.split(';');
    let action = parts.next().filter(|a| !a.is_empty())?.to_string();
    let mut parsed = ParsedUri {
        jid,
        action,
        preauth: None,
        ibr: false,
    };
    for part in parts {
        let (key, value) = part.split_once('=')?;
        let value = percent_decode(value)?;
        match key {
            "preauth" => parsed.preauth = Some(value),
            "ibr" => parsed.ibr = value == "y",
            _ => {}
        }
    }
    Some(parsed)
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not
/// UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `7d`, `12h`, `30m` (a whole number and a unit) as seconds, from one
/// minute up to [`MAX_EXPIRY_SECS`]; otherwise what is wrong, in words.
pub fn parse_expiry(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("--expires {text}: give a unit, e.g. 7d, 12h or 30m"))?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("--expires {text}: expected a whole number, then d, h or m"))?;
    let scale = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        _ => {
            return Err(format!(
                "--expires {text}: the unit must be d (days), h (hours) or m (minutes)"
            ));
        }
    };
    let secs = number.saturating_mul(scale);
    if secs == 0 || secs > MAX_EXPIRY_SECS {
        return Err(format!(
            "--expires {text}: an invite lives from 1 minute up to 366 days"
        ));
    }
    Ok(secs)
}

/// A lifetime in seconds written back as [`parse_expiry`] reads it (the
/// largest unit that divides it).
pub fn format_expiry(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => format!("{}m", s.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(kind: InviteKind, creator: Option<&str>, username: Option<&str>) -> Invite {
        Invite {
            token: "abc234".into(),
            kind,
            domain: "example.org".into(),
            creator: creator.map(str::to_string),
            username: username.map(str::to_string),
            group: None,
            created: 0,
            expires: 10,
            uses_left: 1,
            admin: false,
        }
    }

    #[test]
    fn uris_of_each_kind() {
        assert_eq!(
            invite_uri(&invite(InviteKind::Account, None, None)),
            "xmpp:example.org?register;preauth=abc234"
        );
        assert_eq!(
            invite_uri(&invite(InviteKind::Account, None, Some("juliet"))),
            "xmpp:juliet@example.org?register;preauth=abc234"
        );
        assert_eq!(
            invite_uri(&invite(
                InviteKind::Contact,
                Some("romeo@example.org"),
                None
            )),
            "xmpp:romeo@example.org?roster;preauth=abc234;ibr=y"
        );
        // A fixed username wins: the URI must carry it.
        assert_eq!(
            invite_uri(&invite(
                InviteKind::Contact,
                Some("romeo@example.org"),
                Some("jül ie")
            )),
            "xmpp:j%C3%BCl%20ie@example.org?register;preauth=abc234"
        );
    }

    #[test]
    fn uris_parse_back() {
        for i in [
            invite(InviteKind::Account, None, None),
            invite(InviteKind::Account, None, Some("jül ie")),
            invite(InviteKind::Contact, Some("romeo@example.org"), None),
        ] {
            let parsed = parse_uri(&invite_uri(&i)).expect("parses");
            assert_eq!(parsed.preauth.as_deref(), Some("abc234"));
            assert_eq!(parsed.ibr, i.kind == InviteKind::Contact);
        }
        let p = parse_uri("xmpp:j%C3%BCl%20ie@example.org?register;preauth=x").expect("parses");
        assert_eq!(p.jid, "jül ie@example.org");
        assert_eq!(p.action, "register");
        assert_eq!(parse_uri("https://x?register"), None);
        assert_eq!(parse_uri("xmpp:a@b"), None);
        assert_eq!(parse_uri("xmpp:a@b?roster;preauth"), None);
        assert_eq!(parse_uri("xmpp:%zz?roster"), None);
        assert_eq!(parse_uri("xmpp:%C3?roster"), None);
        assert_eq!(parse_uri("xmpp:?roster"), None);
    }

    #[test]
    fn expiry_syntax() {
        assert_eq!(parse_expiry("7d"), Ok(7 * 86_400));
        assert_eq!(parse_expiry("12h"), Ok(12 * 3_600));
        assert_eq!(parse_expiry("30m"), Ok(1_800));
        for bad in [
            "",
            "7",
            "d",
            "7w",
            "0d",
            "367d",
            "-1d",
            "1.5d",
            "99999999999999999999d",
        ] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
        assert!(parse_expiry("7w").unwrap_err().contains("d (days)"));
        assert_eq!(format_expiry(7 * 86_400), "7d");
        assert_eq!(format_expiry(7_200), "2h");
        assert_eq!(format_expiry(1_800), "30m");
    }
}
