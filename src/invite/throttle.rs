//! How fast invitation tokens may be guessed: wrong tokens are counted per
//! client address (IPv6 by /64, as `login_throttle` groups them); past
//! [`FREE_FAILURES`] each further attempt from the address waits twice as
//! long as the one before, up to [`MAX_WAIT`], and attempts that come too
//! early are refused without looking at the token. So 1 000 guesses from
//! one address take days, while a relative who mistypes twice waits
//! nothing. Counts are forgotten [`FORGET_AFTER`] after an address's last
//! failure, and at most [`MAX_ADDRESSES`] are kept.
//!
//! Sans-I/O: the caller passes the time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::login_throttle::AddressGroup;

/// Wrong tokens from one address before any attempt waits.
pub const FREE_FAILURES: u32 = 5;
/// The first wait; each further failure doubles it.
pub const FIRST_WAIT: Duration = Duration::from_secs(2);
/// The longest wait between two attempts from one address.
pub const MAX_WAIT: Duration = Duration::from_secs(3_600);
/// An address that has not failed for this long starts afresh.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3_600);
/// Addresses remembered at once; the oldest go first.
pub const MAX_ADDRESSES: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Record {
    failures: u32,
    last_failure: Instant,
    /// No attempt is looked at before this.
    next: Instant,
}

/// Wrong tokens per address, for every way a token is presented (c2s,
/// the landing page).
#[derive(Debug, Default)]
pub struct TokenGuesses {
    addresses: RefCell<HashMap<AddressGroup, Record>>,
}

impl TokenGuesses {
    /// Whether an attempt from `ip` may be looked at now; otherwise how
    /// long the address must wait.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let group = AddressGroup::of(ip);
        let addresses = self.addresses.borrow();
        match addresses.get(&group) {
            Some(r) if r.next > now && now.duration_since(r.last_failure) < FORGET_AFTER => {
                Err(r.next - now)
            }
            _ => Ok(()),
        }
    }

    /// A wrong (unknown, expired, used-up, malformed) token from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let group = AddressGroup::of(ip);
        let mut addresses = self.addresses.borrow_mut();
        if addresses.len() >= MAX_ADDRESSES && !addresses.contains_key(&group) {
            addresses.retain(|_, r| now.duration_since(r.last_failure) < FORGET_AFTER);
            if addresses.len() >= MAX_ADDRESSES {
                // Still full: forget the address that failed longest ago.
                let oldest = addresses
                    .iter()
                    .min_by_key(|(_, r)| r.last_failure)
                    .map(|(g, _)| *g);
                if let Some(g) = oldest {
                    addresses.remove(&g);
                }
            }
        }
        let record = addresses.entry(group).or_insert(Record {
            failures: 0,
            last_failure: now,
            next: now,
        });
        if now.duration_since(record.last_failure) >= FORGET_AFTER {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        if record.failures >= FREE_FAILURES {
            let doublings = (record.failures - FREE_FAILURES).min(20);
            let wait = FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT);
            record.next = now + wait;
        }
    }

    /// Addresses remembered (for tests and limits).
    pub fn len(&self) -> usize {
        self.addresses.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_guesses_take_days() {
        let guesses = TokenGuesses::default();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let start = Instant::now();
        let mut now = start;
        let mut tried = 0;
        while tried < 1_000 {
            match guesses.admit(ip, now) {
                Ok(()) => {
                    guesses.failed(ip, now);
                    tried += 1;
                }
                Err(wait) => now += wait,
            }
        }
        // Past the first dozen, one guess an hour.
        assert!(
            now - start > Duration::from_secs(900 * 3_600),
            "{:?}",
            now - start
        );
    }

    #[test]
    fn a_few_mistakes_cost_nothing_and_addresses_are_apart() {
        let guesses = TokenGuesses::default();
        let ip: IpAddr = "2001:db8::1".parse().expect("ip");
        let same_net: IpAddr = "2001:db8::2".parse().expect("ip");
        let other: IpAddr = "198.51.100.1".parse().expect("ip");
        let now = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            assert_eq!(guesses.admit(ip, now), Ok(()));
            guesses.failed(ip, now);
        }
        assert_eq!(guesses.admit(ip, now), Ok(()));
        guesses.failed(ip, now);
        assert_eq!(guesses.admit(same_net, now), Err(FIRST_WAIT));
        assert_eq!(guesses.admit(other, now), Ok(()));
        assert_eq!(guesses.admit(ip, now + FIRST_WAIT), Ok(()));
        // A day later the address starts afresh.
        assert_eq!(guesses.admit(ip, now + FORGET_AFTER), Ok(()));
        guesses.failed(ip, now + FORGET_AFTER);
        assert_eq!(guesses.admit(ip, now + FORGET_AFTER), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let guesses = TokenGuesses::default();
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            guesses.failed(ip, now + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(guesses.len(), MAX_ADDRESSES);
    }
}
