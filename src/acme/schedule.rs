//! When to renew a certificate, and how long to wait after a failure.

use std::time::Duration;

const DAY_SECS: u64 = 24 * 60 * 60;
/// The first wait after a failed issuance; it doubles with each further
/// failure, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60 * 60);
pub const MAX_BACKOFF: Duration = Duration::from_secs(DAY_SECS);
/// The first wait when the CA could not be reached at all (no connection,
/// no answer): nothing reached it, so no rate limit is at stake, and the
/// likely cause passes soon (a Pi whose network is not up yet at boot).
/// It doubles with each further such failure, up to [`FIRST_BACKOFF`].
pub const FIRST_UNREACHABLE_BACKOFF: Duration = Duration::from_secs(60);

/// The Unix time at which a certificate valid from `not_before` to
/// `not_after` is renewed: `renew_days` before it expires, but never
/// earlier than two thirds into its lifetime, so that short-lived
/// certificates (Let's Encrypt's six-day ones, a test CA's minutes) are not
/// renewed again as soon as they arrive.
pub fn renew_at(not_before: u64, not_after: u64, renew_days: u32) -> u64 {
    let lifetime = not_after.saturating_sub(not_before);
    let ahead = (u64::from(renew_days) * DAY_SECS).min(lifetime / 3);
    not_after.saturating_sub(ahead)
}

/// The wait after the `failures`-th failure in a row (1 h, 2 h, 4 h, …, 1
/// day), or longer if the CA asked for it (`Retry-After`).
pub fn backoff(failures: u32, retry_after: Option<Duration>) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let wait = FIRST_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF);
    wait.max(retry_after.unwrap_or_default())
}

/// The wait after the `attempts`-th attempt in a row that could not reach
/// the CA (1 min, 2 min, 4 min, …, 1 h).
pub fn unreachable_backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_UNREACHABLE_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(FIRST_BACKOFF)
}

/// "3 h", "1 day", "45 s": for log lines.
pub fn describe(wait: Duration) -> String {
    let secs = wait.as_secs();
    match secs {
        s if s >= DAY_SECS && s % DAY_SECS == 0 => {
            let days = s / DAY_SECS;
            format!("{days} day{}", if days == 1 { "" } else { "s" })
        }
        s if s >= 3600 => format!("{} h", s.div_ceil(3600)),
        s if s >= 60 => format!("{} min", s.div_ceil(60)),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninety_day_certificates_renew_thirty_days_ahead() {
        let issued = 1_700_000_000;
        let expires = issued + 90 * DAY_SECS;
        assert_eq!(renew_at(issued, expires, 30), expires - 30 * DAY_SECS);
        assert_eq!(renew_at(issued, expires, 10), expires - 10 * DAY_SECS);
    }

    #[test]
    fn short_certificates_renew_at_two_thirds_of_their_life() {
        let issued = 1_700_000_000;
        // Six days: renewed after four, not at once.
        assert_eq!(
            renew_at(issued, issued + 6 * DAY_SECS, 30),
            issued + 4 * DAY_SECS
        );
        assert_eq!(renew_at(issued, issued + 45, 30), issued + 30);
        // Nonsense dates renew now rather than never.
        assert_eq!(renew_at(issued, issued - 5, 30), issued - 5);
        assert_eq!(renew_at(0, 0, 30), 0);
    }

    #[test]
    fn backoff_doubles_from_an_hour_to_a_day() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert_eq!(backoff(1, None), hours(1));
        assert_eq!(backoff(2, None), hours(2));
        assert_eq!(backoff(5, None), hours(16));
        assert_eq!(backoff(6, None), hours(24));
        assert_eq!(backoff(u32::MAX, None), hours(24));
        assert_eq!(backoff(0, None), hours(1));
        // The CA's Retry-After wins when it is longer.
        assert_eq!(backoff(1, Some(hours(3))), hours(3));
        assert_eq!(backoff(3, Some(Duration::from_secs(5))), hours(4));
    }

    #[test]
    fn an_unreachable_ca_is_tried_again_within_minutes() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(unreachable_backoff(0), minutes(1));
        assert_eq!(unreachable_backoff(1), minutes(1));
        assert_eq!(unreachable_backoff(2), minutes(2));
        assert_eq!(unreachable_backoff(6), minutes(32));
        assert_eq!(unreachable_backoff(7), minutes(60));
        assert_eq!(unreachable_backoff(u32::MAX), minutes(60));
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(describe(Duration::from_secs(3600)), "1 h");
        assert_eq!(describe(Duration::from_secs(DAY_SECS)), "1 day");
        assert_eq!(describe(Duration::from_secs(2 * DAY_SECS)), "2 days");
        assert_eq!(describe(Duration::from_secs(90)), "2 min");
        assert_eq!(describe(Duration::from_secs(7)), "7 s");
    }
}
