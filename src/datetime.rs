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

/// Parses a XEP-0082 DateTime (`CCYY-MM-DDThh:mm:ss[.sss](Z|±hh:mm)`) into
/// an instant; `None` for anything else, or a time before 1970.
pub fn parse_utc(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = b.get(19..)?;
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, c) in frac.iter().take(3).take(n).enumerate() {
            millis += i64::from(c - b'0') * [100, 10, 1][i];
        }
        rest = frac.get(n..)?;
    }
    let offset_secs = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let num = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (oh, om) = (num(*h1, *h2)?, num(*m1, *m2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let total = oh * 3600 + om * 60;
            if *sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    let ms = u64::try_from(secs.checked_mul(1000)?.checked_add(millis)?).ok()?;
    UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms))
}

/// The inverse of `civil_from_days` (same algorithm, run backwards).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn parses_what_it_formats_and_offsets() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        for secs in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse_utc(&format_utc(at(secs), false)), Some(at(secs)));
        }
        assert_eq!(
            parse_utc("1970-01-01T00:00:01.5Z"),
            Some(UNIX_EPOCH + Duration::from_millis(1_500))
        );
        assert_eq!(parse_utc("1970-01-01T01:00:00+01:00"), Some(at(0)));
        assert_eq!(parse_utc("1969-12-31T23:00:00-01:00"), Some(at(0)));
        for bad in [
            "",
            "1970-01-01",
            "1970-01-01T00:00:00",
            "1970-13-01T00:00:00Z",
            "1970-01-01T24:00:00Z",
            "1970-01-01T00:00:00.Z",
            "1970-01-01T00:00:00+0100",
            "1969-12-31T23:59:59Z",
            "197a-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
