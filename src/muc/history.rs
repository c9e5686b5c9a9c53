//! Discussion history (XEP-0045 §7.2.14–§7.2.15): the last messages of a
//! room, bounded in count and bytes, and the choice of what a joining
//! occupant gets (`maxchars`, `maxstanzas`, `seconds`, `since`), stamped
//! with XEP-0203 delays.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::xml::{Element, NS_CLIENT};

use super::NS_MUC;
use super::record::StoredMessage;

pub const NS_DELAY: &str = "urn:xmpp:delay";

pub struct Entry {
    /// The message as reflected (from the occupant JID, without `to`).
    pub stanza: Element,
    pub stamp: SystemTime,
    /// Serialized size, which `maxchars` counts.
    pub chars: usize,
    /// Its stamp in the room's archive (XEP-0313), 0 if not archived.
    pub key: u64,
}

#[derive(Default)]
pub struct History {
    entries: VecDeque<Entry>,
    bytes: usize,
}

/// What a joining client asked for in `<history/>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub max_chars: Option<usize>,
    pub max_stanzas: Option<usize>,
    pub seconds: Option<u64>,
    pub since: Option<SystemTime>,
}

impl Request {
    /// Reads the `<history/>` child of a join's `<x xmlns='…muc'/>`.
    /// Attributes that do not parse are ignored, as if absent: the client
    /// still gets the room's default history rather than an error.
    pub fn from_join(muc_x: Option<&Element>) -> Request {
        let Some(h) = muc_x.and_then(|x| x.get_child("history", NS_MUC)) else {
            return Request::default();
        };
        let number = |name: &str| h.attr(name).and_then(|v| v.trim().parse::<u64>().ok());
        Request {
            max_chars: number("maxchars").map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_stanzas: number("maxstanzas").map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            seconds: number("seconds"),
            since: h.attr("since").and_then(crate::datetime::parse_utc),
        }
    }
}

impl History {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Puts `stanza` in place of the message archived under `key` (a
    /// moderated message's tombstone), if it is still kept.
    pub fn replace(&mut self, key: u64, stanza: Element) {
        if key == 0 {
            return;
        }
        if let Some(entry) = self.entries.iter_mut().find(|e| e.key == key) {
            let chars = stanza.to_bytes(NS_CLIENT).len();
            self.bytes = self.bytes - entry.chars + chars;
            entry.chars = chars;
            entry.stanza = stanza;
        }
    }

    /// The archive stamp of the oldest message kept (0: not archived).
    pub fn oldest_key(&self) -> Option<u64> {
        self.entries.front().map(|e| e.key)
    }

    /// Records a message, dropping the oldest ones beyond `max_len`
    /// messages or `max_bytes` bytes.
    pub fn push(&mut self, stanza: Element, stamp: SystemTime, max_len: usize, max_bytes: usize) {
        let chars = stanza.to_bytes(NS_CLIENT).len();
        self.push_sized(stanza, chars, stamp, 0, max_len, max_bytes);
    }

    /// [`History::push`] for a stanza whose serialized length (`chars`,
    /// on a client stream) the caller already knows.
    pub fn push_sized(
        &mut self,
        stanza: Element,
        chars: usize,
        stamp: SystemTime,
        key: u64,
        max_len: usize,
        max_bytes: usize,
    ) {
        if max_len == 0 {
            self.clear();
            return;
        }
        if chars > max_bytes {
            return;
        }
        self.bytes += chars;
        self.entries.push_back(Entry {
            stanza,
            stamp,
            chars,
            key,
        });
        self.trim(max_len, max_bytes);
    }

    /// Applies (possibly lowered) limits.
    pub fn trim(&mut self, max_len: usize, max_bytes: usize) {
        while self.entries.len() > max_len || self.bytes > max_bytes {
            match self.entries.pop_front() {
                Some(e) => self.bytes -= e.chars,
                None => break,
            }
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The messages a joining occupant gets, oldest first: at most
    /// `room_limit`, narrowed by every criterion of the request (§7.2.15:
    /// the smallest amount that meets all of them; whole stanzas only).
    pub fn select(&self, request: &Request, now: SystemTime, room_limit: usize) -> Vec<&Entry> {
        let mut limit = room_limit;
        if let Some(n) = request.max_stanzas {
            limit = limit.min(n);
        }
        let mut earliest = request.since;
        if let Some(secs) = request.seconds {
            let cutoff = now
                .checked_sub(Duration::from_secs(secs))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            earliest = Some(earliest.map_or(cutoff, |e| e.max(cutoff)));
        }
        let mut chars_left = request.max_chars;
        let mut picked: Vec<&Entry> = Vec::new();
        for entry in self.entries.iter().rev() {
            if picked.len() >= limit {
                break;
            }
            if earliest.is_some_and(|e| entry.stamp < e) {
                break;
            }
            if let Some(left) = chars_left.as_mut() {
                if entry.chars > *left {
                    break;
                }
                *left -= entry.chars;
            }
            picked.push(entry);
        }
        picked.reverse();
        picked
    }

    pub fn to_stored(&self) -> Vec<StoredMessage> {
        self.entries
            .iter()
            .map(|e| StoredMessage {
                stamp: e.stamp,
                xml: e.stanza.to_string(),
            })
            .collect()
    }

    /// Rebuilds the history from storage, skipping entries that no longer
    /// parse (a damaged entry costs that message, not the room).
    pub fn from_stored(stored: Vec<StoredMessage>, max_len: usize, max_bytes: usize) -> History {
        let mut h = History::default();
        for m in stored {
            match Element::parse(&m.xml) {
                Ok(stanza) => h.push(stanza, m.stamp, max_len, max_bytes),
                Err(e) => log::warn!("dropping a stored history message: {e}"),
            }
        }
        h
    }
}

/// The XEP-0203 stamp a delayed message carries; `from` is the room.
pub fn delay(room: &str, stamp: SystemTime) -> Element {
    Element::new("delay", NS_DELAY)
        .with_attr("from", room)
        .with_attr("stamp", crate::datetime::format_utc(stamp, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn msg(n: usize) -> Element {
        Element::new("message", NS_CLIENT)
            .with_attr("from", "room@muc/nick")
            .with_child(Element::new("body", NS_CLIENT).with_text(format!("message {n}")))
    }

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn bodies(entries: &[&Entry]) -> Vec<String> {
        entries
            .iter()
            .filter_map(|e| e.stanza.get_child("body", NS_CLIENT).map(|b| b.text()))
            .collect()
    }

    fn history(n: usize) -> History {
        let mut h = History::default();
        for i in 0..n {
            h.push(msg(i), at(1000 + i as u64 * 10), 100, 1 << 20);
        }
        h
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let mut h = history(30);
        assert_eq!(h.len(), 30);
        h.trim(20, 1 << 20);
        assert_eq!(h.len(), 20);
        let one = msg(10).to_bytes(NS_CLIENT).len();
        h.trim(100, one * 5);
        assert_eq!(h.len(), 5);
        assert!(h.bytes() <= one * 5);
        h.push(msg(99), at(5), 0, 1 << 20);
        assert!(h.is_empty(), "a zero-length history keeps nothing");
    }

    #[test]
    fn selection_criteria() {
        let h = history(10);
        let now = at(1100);
        let all = h.select(&Request::default(), now, 20);
        assert_eq!(all.len(), 10);
        assert_eq!(bodies(&all).first().map(String::as_str), Some("message 0"));
        assert_eq!(h.select(&Request::default(), now, 3).len(), 3);
        let stanzas = Request {
            max_stanzas: Some(2),
            ..Request::default()
        };
        assert_eq!(
            bodies(&h.select(&stanzas, now, 20)),
            ["message 8", "message 9"]
        );
        let none = Request {
            max_chars: Some(0),
            ..Request::default()
        };
        assert!(h.select(&none, now, 20).is_empty());
        let one = msg(0).to_bytes(NS_CLIENT).len();
        let chars = Request {
            max_chars: Some(one * 3 + 1),
            ..Request::default()
        };
        assert_eq!(h.select(&chars, now, 20).len(), 3);
        // Messages at 1000, 1010, ... 1090; now is 1100.
        let recent = Request {
            seconds: Some(25),
            ..Request::default()
        };
        assert_eq!(
            bodies(&h.select(&recent, now, 20)),
            ["message 8", "message 9"]
        );
        let since = Request {
            since: Some(at(1070)),
            ..Request::default()
        };
        assert_eq!(h.select(&since, now, 20).len(), 3);
        let both = Request {
            since: Some(at(1000)),
            max_stanzas: Some(1),
            ..Request::default()
        };
        assert_eq!(bodies(&h.select(&both, now, 20)), ["message 9"]);
    }

    #[test]
    fn request_parsing() {
        let x = Element::parse(
            "<x xmlns='http://jabber.org/protocol/muc'><history maxchars='10' maxstanzas='x' \
             seconds='60' since='1970-01-01T00:00:10Z'/></x>",
        )
        .expect("xml");
        let r = Request::from_join(Some(&x));
        assert_eq!(r.max_chars, Some(10));
        assert_eq!(r.max_stanzas, None);
        assert_eq!(r.seconds, Some(60));
        assert_eq!(r.since, Some(at(10)));
        assert_eq!(Request::from_join(None), Request::default());
    }

    #[test]
    fn stored_round_trip() {
        let h = history(3);
        let back = History::from_stored(h.to_stored(), 100, 1 << 20);
        assert_eq!(back.len(), 3);
        assert_eq!(
            bodies(&back.select(&Request::default(), at(0), 10)),
            ["message 0", "message 1", "message 2"]
        );
    }
}
