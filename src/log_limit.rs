//! Log lines that a remote party can cause, limited per cause and address:
//! the first is logged as it happens, the rest are counted and summed up in
//! one line per window ("refused 1968 more connections from 192.0.2.40 in
//! the last 60 s"). Without it a flood of connection attempts or failed
//! logins becomes a flood of log lines, which on an SD card and in
//! journald is a way to fill the disk and wear out the card.
//!
//! Sans-I/O: the caller passes the time, logs what it is told to, and
//! calls [`LogLimiter::flush`] once per window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The window after which repeats are summed up.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses followed at once; repeats from further addresses are summed
/// up together, so the table stays small whatever the number of sources.
const MAX_SOURCES: usize = 256;

/// An event a client can cause at will.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Repeated {
    /// A connection refused; the reason says which limit.
    Refused(&'static str),
    /// A login whose password was wrong (or whose account does not exist).
    FailedLogin,
    /// A login refused by the throttle before its password was checked.
    ThrottledLogin,
}

impl Repeated {
    fn summary(self, count: u64, from: &str, window: Duration) -> String {
        let secs = window.as_secs();
        let plural = |one: &'static str, many: &'static str| if count == 1 { one } else { many };
        match self {
            Repeated::Refused(reason) => format!(
                "refused {count} more {} from {from} in the last {secs} s ({reason})",
                plural("connection", "connections")
            ),
            Repeated::FailedLogin => format!(
                "{count} more failed {} from {from} in the last {secs} s",
                plural("login", "logins")
            ),
            Repeated::ThrottledLogin => format!(
                "{count} more {} from {from} in the last {secs} s (too many failed logins)",
                plural("login refused", "logins refused")
            ),
        }
    }
}

#[derive(Debug)]
struct Window {
    started: Instant,
    /// Occurrences not logged since `started`.
    suppressed: u64,
}

#[derive(Debug, Default)]
pub struct LogLimiter {
    sources: HashMap<(Repeated, IpAddr), Window>,
    /// Occurrences from addresses beyond `MAX_SOURCES`, per event.
    others: HashMap<Repeated, u64>,
}

impl LogLimiter {
    /// Whether to log this occurrence now (the first of its cause and
    /// address in a window); if not, it is counted for the summary.
    pub fn should_log(&mut self, now: Instant, event: Repeated, ip: IpAddr) -> bool {
        if let Some(window) = self.sources.get_mut(&(event, ip)) {
            window.suppressed += 1;
            return false;
        }
        if self.sources.len() >= MAX_SOURCES {
            *self.others.entry(event).or_default() += 1;
            return false;
        }
        self.sources.insert(
            (event, ip),
            Window {
                started: now,
                suppressed: 0,
            },
        );
        true
    }

    /// The summary lines of the windows that ended by `now`. A window with
    /// repeats starts over (so a flood keeps being summed up); one without
    /// is forgotten, and the next occurrence is logged again.
    pub fn flush(&mut self, now: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        self.sources.retain(|(event, ip), window| {
            if now.saturating_duration_since(window.started) < WINDOW {
                return true;
            }
            if window.suppressed == 0 {
                return false;
            }
            lines.push(event.summary(window.suppressed, &ip.to_string(), WINDOW));
            window.started = now;
            window.suppressed = 0;
            true
        });
        self.sum_up_others(&mut lines);
        lines
    }

    /// Every pending summary, whatever the age of its window (at shutdown).
    pub fn flush_all(&mut self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .sources
            .drain()
            .filter(|(_, w)| w.suppressed > 0)
            .map(|((event, ip), w)| event.summary(w.suppressed, &ip.to_string(), WINDOW))
            .collect();
        self.sum_up_others(&mut lines);
        lines
    }

    /// Adds the summaries of the addresses not followed, then sorts.
    fn sum_up_others(&mut self, lines: &mut Vec<String>) {
        for (event, count) in self.others.drain() {
            lines.push(event.summary(count, "other addresses", WINDOW));
        }
        lines.sort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 40));
    const REFUSED: Repeated = Repeated::Refused("too many connections from this address");

    #[test]
    fn the_first_is_logged_then_a_summary_per_window() {
        let mut limiter = LogLimiter::default();
        let t0 = Instant::now();
        let logged = (0..2000)
            .filter(|_| limiter.should_log(t0, REFUSED, FLOODER))
            .count();
        assert_eq!(logged, 1);
        assert!(limiter.flush(t0 + Duration::from_secs(30)).is_empty());
        assert_eq!(
            limiter.flush(t0 + WINDOW),
            [
                "refused 1999 more connections from 127.0.0.40 in the last 60 s (too many connections from this address)"
            ]
        );
        // Still flooding: still summed up, not logged one by one.
        assert!(!limiter.should_log(t0 + WINDOW, REFUSED, FLOODER));
        assert_eq!(
            limiter.flush(t0 + WINDOW * 2),
            [
                "refused 1 more connection from 127.0.0.40 in the last 60 s (too many connections from this address)"
            ]
        );
        // A quiet window ends the summaries; the next one is logged again.
        assert!(limiter.flush(t0 + WINDOW * 3).is_empty());
        assert!(limiter.should_log(t0 + WINDOW * 3, REFUSED, FLOODER));
    }

    #[test]
    fn causes_and_addresses_are_counted_apart() {
        let mut limiter = LogLimiter::default();
        let now = Instant::now();
        assert!(limiter.should_log(now, REFUSED, FLOODER));
        assert!(limiter.should_log(now, Repeated::FailedLogin, FLOODER));
        assert!(limiter.should_log(now, REFUSED, IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn many_addresses_share_one_summary() {
        let mut limiter = LogLimiter::default();
        let now = Instant::now();
        let logged = (0..10_000u32)
            .filter(|i| {
                limiter.should_log(now, Repeated::FailedLogin, IpAddr::V4(Ipv4Addr::from(*i)))
            })
            .count();
        assert_eq!(logged, MAX_SOURCES);
        let lines = limiter.flush_all();
        assert_eq!(
            lines,
            [format!(
                "{} more failed logins from other addresses in the last 60 s",
                10_000 - MAX_SOURCES
            )]
        );
    }
}
