//! XEP-0082 date-time strings (UTC), without a calendar crate: the civil
//! date comes from the day count with Howard Hinnant's well-known algorithm.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-21T09:30:00Z` (or with `.123Z` milliseconds when `millis`).
pub fn format_utc(t: SystemTime, millis: bool) -> String {
    let (secs, ms) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(_) => (0, 0),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    if millis {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(format_utc(at(0), false), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(at(951_782_400), false), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(at(1_700_000_000), false), "2023-11-14T22:13:20Z");
        assert_eq!(format_utc(at(4_102_444_799), false), "2099-12-31T23:59:59Z");
        assert_eq!(
            format_utc(UNIX_EPOCH + Duration::from_millis(1_500), true),
            "1970-01-01T00:00:01.500Z"
        );
    }
}
