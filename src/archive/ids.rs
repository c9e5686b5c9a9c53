//! Stanza ids (XEP-0359) of archived messages, and the clock that orders
//! them.
//!
//! An archived message is keyed by its stamp: microseconds since the Unix
//! epoch, from one server-wide clock that never repeats or goes back
//! (`max(now, last + 1)`), so a stamp is unique in every archive and key
//! order is arrival order. A Raspberry Pi has no battery-backed clock and
//! may start with the wall clock behind the last stamp stored: the clock
//! then goes on from that stamp until the wall clock catches up.
//!
//! The id a client sees is the stamp with a tag: base64 of the stamp (8
//! bytes, big endian) and the first 8 bytes of HMAC-SHA256 over the owner
//! and the stamp, keyed by a server secret. Nobody can make up an id that
//! names a message (XEP-0359 §4: ids must be unguessable), an id of one
//! archive says nothing in another, and the server turns an id back into
//! its key without an index: "the page after id Y" is one range scan.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

/// Bytes of a decoded id: the stamp and the tag.
const ID_BYTES: usize = 16;
/// Characters of an encoded id (base64 of 16 bytes, padded).
const ID_CHARS: usize = 24;

/// The archive's clock and the key that tags its ids.
pub struct ArchiveIds {
    key: hmac::Key,
    last: Cell<u64>,
}

impl ArchiveIds {
    /// `secret` is kept in the database: ids stay valid across restarts.
    /// `last` is the newest stamp stored anywhere.
    pub fn new(secret: &[u8], last: u64) -> ArchiveIds {
        ArchiveIds {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            last: Cell::new(last),
        }
    }

    /// Makes the clock go on after `stamp` (the newest found on disk).
    pub fn observe(&self, stamp: u64) {
        self.last.set(self.last.get().max(stamp));
    }

    /// The next stamp: now, or just after the last one if that is later.
    pub fn next_stamp(&self, now: SystemTime) -> u64 {
        let stamp = micros(now).max(self.last.get().saturating_add(1));
        self.last.set(stamp);
        stamp
    }

    /// The id of `owner`'s message stamped `stamp`.
    pub fn id(&self, owner: &str, stamp: u64) -> String {
        let mut bytes = [0u8; ID_BYTES];
        bytes[..8].copy_from_slice(&stamp.to_be_bytes());
        bytes[8..].copy_from_slice(&self.tag(owner, stamp));
        crate::sasl::base64::encode(&bytes)
    }

    /// The stamp `id` names in `owner`'s archive; `None` for anything that
    /// is not an id this server gave out for that archive.
    pub fn stamp(&self, owner: &str, id: &str) -> Option<u64> {
        if id.len() != ID_CHARS {
            return None;
        }
        let bytes = crate::sasl::base64::decode(id).ok()?;
        let bytes: [u8; ID_BYTES] = bytes.try_into().ok()?;
        let stamp = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let tag = self.tag(owner, stamp);
        // Compared without an early exit: the tag is a secret's output.
        let diff = bytes[8..]
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0).then_some(stamp)
    }

    fn tag(&self, owner: &str, stamp: u64) -> [u8; 8] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(owner.as_bytes());
        ctx.update(&[0]);
        ctx.update(&stamp.to_be_bytes());
        let full = ctx.sign();
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&full.as_ref()[..8]);
        tag
    }
}

/// Microseconds since the epoch (0 before it).
pub fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The time a stamp stands for.
pub fn time_of(stamp: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_never_repeat_or_go_back() {
        let ids = ArchiveIds::new(b"secret", 0);
        let t = UNIX_EPOCH + Duration::from_secs(1_000);
        let a = ids.next_stamp(t);
        let b = ids.next_stamp(t);
        let c = ids.next_stamp(t - Duration::from_secs(10));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a, 1_000_000_000);
        // A clock behind what is stored goes on from there.
        let ids = ArchiveIds::new(b"secret", 5_000_000_000);
        assert_eq!(ids.next_stamp(t), 5_000_000_001);
        ids.observe(9);
        assert_eq!(ids.next_stamp(t), 5_000_000_002);
    }

    #[test]
    fn ids_round_trip_only_for_their_archive_and_key() {
        let ids = ArchiveIds::new(b"secret", 0);
        let id = ids.id("romeo@example.org", 1234);
        assert_eq!(id.len(), ID_CHARS);
        assert_eq!(ids.stamp("romeo@example.org", &id), Some(1234));
        assert_eq!(ids.stamp("juliet@example.org", &id), None);
        let other = ArchiveIds::new(b"other", 0);
        assert_eq!(other.stamp("romeo@example.org", &id), None);
        assert_ne!(ids.id("romeo@example.org", 1235), id);
    }

    #[test]
    fn made_up_ids_are_refused() {
        let ids = ArchiveIds::new(b"secret", 0);
        for bad in [
            "",
            "x",
            "AAAAAAAAAAAAAAAAAAAAAA==",
            "!!!!!!!!!!!!!!!!!!!!!!!!",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "ééééééééééé",
        ] {
            assert_eq!(ids.stamp("a@b", bad), None, "{bad}");
        }
        // A real id with one character changed.
        let mut id = ids.id("a@b", 99).into_bytes();
        id[3] = if id[3] == b'A' { b'B' } else { b'A' };
        let id = String::from_utf8(id).expect("ascii");
        assert_eq!(ids.stamp("a@b", &id), None);
    }
}
