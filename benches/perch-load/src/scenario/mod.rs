//! The scenarios, one file each, and the message body they share.
//!
//! Benchmark messages carry `B <sender> <seq> <sent-ns>` as their body; the
//! receiver (same process, same clock) computes the latency from it.

pub mod chat;
pub mod churn;
pub mod guess;
pub mod idle;
pub mod login;
pub mod muc;
pub mod offline;
pub mod register;
pub mod upload;

use crate::xml;

/// A benchmark message found in a delivered stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub sender: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

/// The mark in a `<message>` that is not an error bounce (a bounce echoes
/// the body, and must not count as a delivery).
pub fn mark(el: &[u8]) -> Option<Mark> {
    if xml::local_name(el) != b"message" || xml::start_tag_attr(el, "type") == Some(b"error") {
        return None;
    }
    let at = xml::find_seq(b"<body", el, 0)?;
    let gt = xml::find_byte(b'>', el, at)?;
    let rest = el.get(gt + 1..)?.strip_prefix(b"B ")?;
    let end = rest.iter().position(|&b| b == b'<')?;
    let mut parts = rest[..end].split(|&b| b == b' ');
    let mut num = || -> Option<u64> { std::str::from_utf8(parts.next()?).ok()?.parse().ok() };
    Some(Mark {
        sender: u32::try_from(num()?).ok()?,
        seq: num()?,
        sent_ns: num()?,
    })
}

pub fn body(sender: u32, seq: u64, sent_ns: u64) -> String {
    format!("<body>B {sender} {seq} {sent_ns}</body>")
}

/// Is this a message bounced with an error (the server refused it)?
pub fn is_error_message(el: &[u8]) -> bool {
    xml::local_name(el) == b"message" && xml::start_tag_attr(el, "type") == Some(b"error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_bounces_do_not_count() {
        let el = format!(
            "<message from='a@b/c' to='d@e/f' type='chat'>{}<stanza-id/></message>",
            body(7, 42, 123_456_789)
        );
        assert_eq!(
            mark(el.as_bytes()),
            Some(Mark {
                sender: 7,
                seq: 42,
                sent_ns: 123_456_789
            })
        );
        let bounce = el.replace("type='chat'", "type='error'");
        assert_eq!(mark(bounce.as_bytes()), None);
        assert!(is_error_message(bounce.as_bytes()));
        assert_eq!(mark(b"<message><body>hello</body></message>"), None);
        assert_eq!(mark(b"<presence><body>B 1 2 3</body></presence>"), None);
        assert_eq!(
            mark(b"<message><body xml:lang='en'>B 1 2 3</body></message>"),
            Some(Mark {
                sender: 1,
                seq: 2,
                sent_ns: 3
            })
        );
    }
}
