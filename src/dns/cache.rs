//! Answers kept for their time to live, so that a busy federation link does
//! not ask the same question for every connection attempt.
//!
//! A pure structure: every call takes the current `Instant`, so tests can
//! move time by hand. Bounded at [`CAPACITY`] entries; when full, expired
//! entries go first, then the one used least recently.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::RecordType;
use super::message::Record;

/// Most answers kept at once.
pub const CAPACITY: usize = 1_000;
/// Records are kept at least this long, whatever their TTL: a TTL of 0
/// would otherwise send every connection attempt to the network.
pub const MIN_TTL: Duration = Duration::from_secs(30);
/// …and at most this long, so a wrong answer does not stick for weeks.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long "no such name" or "no such records" is kept.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// What is known about a (name, type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    Records(Vec<Record>),
    /// NXDOMAIN or no records of the type.
    Negative,
}

#[derive(Debug)]
struct Entry {
    value: Cached,
    expires: Instant,
    /// A counter value: higher is more recent.
    used: u64,
}

/// Keyed by (name in lower case without trailing dot, type).
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<(String, RecordType), Entry>,
    capacity: usize,
    clock: u64,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::with_capacity(CAPACITY)
    }
}

impl Cache {
    pub fn with_capacity(capacity: usize) -> Cache {
        Cache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            clock: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The answer for (`name`, `qtype`) if it has not expired at `now`.
    pub fn get(&mut self, name: &str, qtype: RecordType, now: Instant) -> Option<Cached> {
        let key = (name.to_owned(), qtype);
        let entry = self.entries.get_mut(&key)?;
        if entry.expires <= now {
            self.entries.remove(&key);
            return None;
        }
        self.clock += 1;
        entry.used = self.clock;
        Some(entry.value.clone())
    }

    /// Keeps records for `ttl_secs` (clamped to [`MIN_TTL`]..=[`MAX_TTL`]).
    pub fn put_records(
        &mut self,
        name: &str,
        qtype: RecordType,
        records: Vec<Record>,
        ttl_secs: u32,
        now: Instant,
    ) {
        let ttl = Duration::from_secs(u64::from(ttl_secs)).clamp(MIN_TTL, MAX_TTL);
        self.put(name, qtype, Cached::Records(records), ttl, now);
    }

    /// Keeps "nothing there" for [`NEGATIVE_TTL`].
    pub fn put_negative(&mut self, name: &str, qtype: RecordType, now: Instant) {
        self.put(name, qtype, Cached::Negative, NEGATIVE_TTL, now);
    }

    fn put(&mut self, name: &str, qtype: RecordType, value: Cached, ttl: Duration, now: Instant) {
        let key = (name.to_owned(), qtype);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, entry| entry.expires > now);
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.used)
                    .map(|(key, _)| key.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.clock += 1;
        let entry = Entry {
            value,
            // An absurd `now` cannot overflow: keep it for the minimum.
            expires: now.checked_add(ttl).unwrap_or(now),
            used: self.clock,
        };
        self.entries.insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(last: u8) -> Vec<Record> {
        vec![Record::A(Ipv4Addr::new(192, 0, 2, last))]
    }

    #[test]
    fn ttls_clamped_and_honoured() {
        let t0 = Instant::now();
        let mut cache = Cache::default();
        cache.put_records("zero.example", RecordType::A, ip(1), 0, t0);
        cache.put_records("hour.example", RecordType::A, ip(2), 3600, t0);
        cache.put_records("year.example", RecordType::A, ip(3), u32::MAX, t0);
        cache.put_negative("none.example", RecordType::A, t0);

        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(
            cache.get("zero.example", RecordType::A, at(29)),
            Some(Cached::Records(ip(1)))
        );
        assert_eq!(cache.get("zero.example", RecordType::A, at(30)), None);
        assert_eq!(
            cache.get("none.example", RecordType::A, at(59)),
            Some(Cached::Negative)
        );
        assert_eq!(cache.get("none.example", RecordType::A, at(60)), None);
        assert!(cache.get("hour.example", RecordType::A, at(3599)).is_some());
        assert_eq!(cache.get("hour.example", RecordType::A, at(3600)), None);
        assert!(
            cache
                .get("year.example", RecordType::A, at(86_399))
                .is_some()
        );
        assert_eq!(cache.get("year.example", RecordType::A, at(86_400)), None);
        // Expired entries were dropped on the way.
        assert!(cache.is_empty());
    }

    #[test]
    fn keyed_by_name_and_type() {
        let t0 = Instant::now();
        let mut cache = Cache::default();
        cache.put_records("host.example", RecordType::A, ip(1), 300, t0);
        assert_eq!(cache.get("host.example", RecordType::Aaaa, t0), None);
        assert_eq!(cache.get("other.example", RecordType::A, t0), None);
        // A new answer replaces the old one without growing the cache.
        cache.put_negative("host.example", RecordType::A, t0);
        assert_eq!(
            cache.get("host.example", RecordType::A, t0),
            Some(Cached::Negative)
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn evicts_least_recently_used() {
        let t0 = Instant::now();
        let mut cache = Cache::with_capacity(3);
        cache.put_records("a", RecordType::A, ip(1), 300, t0);
        cache.put_records("b", RecordType::A, ip(2), 300, t0);
        cache.put_records("c", RecordType::A, ip(3), 300, t0);
        // "a" is used, so "b" is now the least recently used.
        assert!(cache.get("a", RecordType::A, t0).is_some());
        cache.put_records("d", RecordType::A, ip(4), 300, t0);
        assert_eq!(cache.len(), 3);
        assert!(cache.get("b", RecordType::A, t0).is_none());
        assert!(cache.get("a", RecordType::A, t0).is_some());
        assert!(cache.get("c", RecordType::A, t0).is_some());
        assert!(cache.get("d", RecordType::A, t0).is_some());
    }

    #[test]
    fn evicts_expired_entries_first() {
        let t0 = Instant::now();
        let mut cache = Cache::with_capacity(3);
        cache.put_records("long1", RecordType::A, ip(1), 3600, t0);
        cache.put_negative("short", RecordType::A, t0);
        cache.put_records("long2", RecordType::A, ip(2), 3600, t0);
        // "long1" is the least recently used, but "short" has expired.
        let later = t0 + Duration::from_secs(120);
        cache.put_records("new", RecordType::A, ip(3), 3600, later);
        assert_eq!(cache.len(), 3);
        assert!(cache.get("long1", RecordType::A, later).is_some());
        assert!(cache.get("short", RecordType::A, later).is_none());
    }

    #[test]
    fn full_default_cache_stays_bounded() {
        let t0 = Instant::now();
        let mut cache = Cache::default();
        for i in 0..(CAPACITY + 500) {
            cache.put_negative(&format!("n{i}.example"), RecordType::Srv, t0);
        }
        assert_eq!(cache.len(), CAPACITY);
        assert!(cache.get("n0.example", RecordType::Srv, t0).is_none());
        assert!(
            cache
                .get(&format!("n{}.example", CAPACITY + 499), RecordType::Srv, t0)
                .is_some()
        );
    }
}
