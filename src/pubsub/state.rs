//! What the pubsub services keep in memory: the verified entity
//! capabilities (XEP-0115) every PEP service consults, and how fast each
//! publisher may publish. Nodes and items live in the store.

use std::cell::RefCell;
use std::time::Instant;

use crate::fasthash::FastMap;
use crate::im::caps::CapsCache;
use crate::jid::Jid;

/// Publishers tracked at once before full buckets are dropped.
const MAX_TRACKED_PUBLISHERS: usize = 10_000;

pub struct PubsubState {
    /// Verified capabilities by `ver`, shared by every session that
    /// claims them.
    pub caps: CapsCache,
    /// Publish budget per local account, or per remote domain.
    buckets: RefCell<FastMap<Box<str>, Bucket>>,
}

/// A token bucket: `tokens` publications left at `at`, refilling evenly
/// to the per-minute budget.
#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl PubsubState {
    pub fn new(caps_capacity: usize) -> PubsubState {
        PubsubState {
            caps: CapsCache::new(caps_capacity),
            buckets: RefCell::new(FastMap::default()),
        }
    }

    /// Takes one publication from `who`'s budget; false if it is spent.
    pub fn allow_publish(&self, who: &Jid, per_minute: u32, now: Instant) -> bool {
        let key = match who.local() {
            Some(_) => who.bare_str(),
            None => who.domain(),
        };
        let budget = f64::from(per_minute.max(1));
        let mut buckets = self.buckets.borrow_mut();
        if buckets.len() >= MAX_TRACKED_PUBLISHERS && !buckets.contains_key(key) {
            // A full bucket is the same as none: forget those.
            buckets.retain(|_, b| refilled(*b, budget, now) < budget);
        }
        let bucket = buckets.entry(key.into()).or_insert(Bucket {
            tokens: budget,
            at: now,
        });
        let tokens = refilled(*bucket, budget, now);
        if tokens < 1.0 {
            return false;
        }
        *bucket = Bucket {
            tokens: tokens - 1.0,
            at: now,
        };
        true
    }
}

fn refilled(bucket: Bucket, budget: f64, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * budget / 60.0).min(budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_budget_refills_evenly() {
        let state = PubsubState::new(16);
        let who = Jid::parse("juliet@example.org/balcony").unwrap();
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(state.allow_publish(&who, 60, t0));
        }
        assert!(!state.allow_publish(&who, 60, t0), "spent");
        // Another resource of the same account shares the budget.
        let other = Jid::parse("juliet@example.org/garden").unwrap();
        assert!(!state.allow_publish(&other, 60, t0));
        assert!(state.allow_publish(&who, 60, t0 + Duration::from_secs(1)));
        assert!(!state.allow_publish(&who, 60, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn tracked_publishers_are_bounded() {
        let state = PubsubState::new(16);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED_PUBLISHERS + 10) {
            let who = Jid::parse(&format!("u{i}@example.org")).unwrap();
            assert!(state.allow_publish(&who, 60, t0));
        }
        let later = t0 + Duration::from_secs(120);
        let who = Jid::parse("late@example.org").unwrap();
        assert!(state.allow_publish(&who, 60, later));
        assert!(state.buckets.borrow().len() <= MAX_TRACKED_PUBLISHERS + 1);
    }
}
