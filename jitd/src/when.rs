//! Points in time as people write them on a command line: a span back from now (`90d`, `12h`,
//! as [`crate::duration`] reads it) or a UTC date (`2026-07-01`) or date and time
//! (`2026-07-01T08:00:00Z`). Pure arithmetic: no time zone or locale changes the answer.

#![forbid(unsafe_code)]

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn number(s: &str, digits: usize, lo: i64, hi: i64) -> Option<i64> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| (lo..=hi).contains(n))
}

/// Milliseconds since the epoch for `text`, relative spans counted back from `now_ms`.
pub fn parse(text: &str, now_ms: i64) -> Result<i64, String> {
    let bad = || {
        format!(
            "{text:?} is not a time: write a span back from now (90d, 12h) or a UTC date \
             (2026-07-01 or 2026-07-01T08:00:00Z)"
        )
    };
    if let Ok(secs) = crate::duration::parse(text) {
        return Ok(
            now_ms.saturating_sub(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000))
        );
    }
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let y = number(y, 4, 1970, 9999).ok_or_else(bad)?;
    let m = number(m, 2, 1, 12).ok_or_else(bad)?;
    let d = number(d, 2, 1, 31).ok_or_else(bad)?;
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(t) = time {
        let mut hms = t.split(':');
        let (Some(h), Some(mi), Some(s), None) = (hms.next(), hms.next(), hms.next(), hms.next())
        else {
            return Err(bad());
        };
        secs += number(h, 2, 0, 23).ok_or_else(bad)? * 3600
            + number(mi, 2, 0, 59).ok_or_else(bad)? * 60
            + number(s, 2, 0, 59).ok_or_else(bad)?;
    }
    Ok(secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_dates_and_times() {
        assert_eq!(parse("90d", 100 * 86_400_000), Ok(10 * 86_400_000));
        assert_eq!(parse("1970-01-02", 0), Ok(86_400_000));
        assert_eq!(parse("2026-11-29T02:34:00Z", 0), Ok(1_795_919_640_000));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-1-1",
            "2026-11-29T02:34:00",
            "-5d",
        ] {
            assert!(parse(bad, 0).is_err(), "{bad}");
        }
    }
}
