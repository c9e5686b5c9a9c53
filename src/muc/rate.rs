//! A token bucket per occupant: a client that floods a room is slowed down
//! (its excess stanzas are refused with a `wait` error) while the room and
//! everyone else carry on.

use std::time::Instant;

#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket: a client may start with a burst.
    pub fn new(now: Instant, burst: u32) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes one token if there is one, refilling `per_second` tokens a
    /// second up to `burst` first.
    pub fn take(&mut self, now: Instant, per_second: f64, burst: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0, 3);
        assert!((0..3).all(|_| b.take(t0, 2.0, 3)));
        assert!(!b.take(t0, 2.0, 3), "burst used up");
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.take(t1, 2.0, 3), "one token after half a second at 2/s");
        assert!(!b.take(t1, 2.0, 3));
        let t2 = t1 + Duration::from_secs(60);
        assert!(
            (0..3).all(|_| b.take(t2, 2.0, 3)),
            "refills to the burst only"
        );
        assert!(!b.take(t2, 2.0, 3));
    }
}
