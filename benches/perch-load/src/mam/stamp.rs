//! XEP-0082 date-times: the delay stamps of archived messages read, and the
//! `start` of a query written, as microseconds since the Unix epoch (UTC).

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `2026-12-06T09:30:00.123456Z` from microseconds since the epoch.
pub fn format(micros: u64) -> String {
    let secs = (micros / 1_000_000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        t / 3600,
        t % 3600 / 60,
        t % 60,
        micros % 1_000_000
    )
}

/// Microseconds since the epoch of a date-time with a `Z` or `±hh:mm`
/// offset and optional fraction; `None` if it is not one.
pub fn parse(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut at = 19;
    let mut frac_us = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let digits = s.get(start..at)?;
        let six: String = digits.chars().chain("000000".chars()).take(6).collect();
        frac_us = six.parse().ok()?;
    }
    let offset_s = match b.get(at) {
        Some(b'Z') if at + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() => {
            let off = num(at + 1, 2)? * 3600 + num(at + 4, 2)? * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    u64::try_from(secs * 1_000_000 + frac_us).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_offsets() {
        let t = 1_796_549_400_123_456; // 2026-12-06T09:30:00.123456Z
        assert_eq!(format(t), "2026-12-06T09:30:00.123456Z");
        assert_eq!(parse(&format(t)), Some(t));
        assert_eq!(parse("2026-12-06T09:30:00Z"), Some(t - 123_456));
        assert_eq!(parse("2026-12-06T10:30:00.1+01:00"), Some(t - 23_456));
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(format(0), "1970-01-01T00:00:00.000000Z");
        for bad in [
            "",
            "2026-12-06",
            "2026-12-06T09:30:00",
            "2026-12-06T09:30:00Q",
            "x026-12-06T09:30:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
