//! Human durations: `90s`, `15m`, `1h30m`, `2d`. One parser for the CLI, the policy and the
//! daemon, so "15m" means the same everywhere.
//!
//! Only whole seconds; at least 1 s; at most [`MAX_SECS`] (a year), which keeps every
//! deadline computed from it far inside `i64` milliseconds.

#![forbid(unsafe_code)]

use std::fmt;

/// The longest duration any part of jitd accepts: 366 days.
pub const MAX_SECS: u64 = 366 * 24 * 3600;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    Empty,
    /// A character that is neither a digit nor a unit, with its byte offset.
    Unexpected {
        at: usize,
        found: char,
    },
    /// A number with no unit after it ("15").
    MissingUnit,
    /// The same unit twice or units out of order ("5m1h").
    UnitOrder,
    Zero,
    TooLong,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty duration; write e.g. 15m, 1h30m or 2d"),
            Self::Unexpected { at, found } => write!(
                f,
                "unexpected {found:?} at position {}; write e.g. 15m, 1h30m or 2d",
                at + 1
            ),
            Self::MissingUnit => write!(f, "a number needs a unit (s, m, h or d), e.g. 15m"),
            Self::UnitOrder => write!(f, "units must each appear once, largest first (1h30m)"),
            Self::Zero => write!(f, "a duration must be at least 1s"),
            Self::TooLong => write!(f, "a duration may be at most 366d"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration into whole seconds.
pub fn parse(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    // Rank of the last unit seen: d=4, h=3, m=2, s=1. Units must strictly decrease.
    let mut last_rank = u8::MAX;
    for (at, c) in text.char_indices() {
        if let Some(digit) = c.to_digit(10) {
            let n = number.unwrap_or(0);
            // Any number beyond MAX_SECS is refused anyway; saturating keeps this overflow-free.
            number = Some(n.saturating_mul(10).saturating_add(u64::from(digit)));
            continue;
        }
        let (unit, rank) = match c {
            'd' => (86_400, 4),
            'h' => (3_600, 3),
            'm' => (60, 2),
            's' => (1, 1),
            _ => return Err(DurationError::Unexpected { at, found: c }),
        };
        let Some(n) = number.take() else {
            return Err(DurationError::Unexpected { at, found: c });
        };
        if rank >= last_rank {
            return Err(DurationError::UnitOrder);
        }
        last_rank = rank;
        total = total.saturating_add(n.saturating_mul(unit));
    }
    if number.is_some() {
        return Err(DurationError::MissingUnit);
    }
    if total == 0 {
        return Err(DurationError::Zero);
    }
    if total > MAX_SECS {
        return Err(DurationError::TooLong);
    }
    Ok(total)
}

/// Formats seconds the way [`parse`] reads them, largest units first: `1h30m`, `45s`, `2d`.
pub fn format(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, suffix) in [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')] {
        if rest >= unit {
            out.push_str(&(rest / unit).to_string());
            out.push(suffix);
            rest %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_users_type() {
        assert_eq!(parse("90s"), Ok(90));
        assert_eq!(parse("15m"), Ok(900));
        assert_eq!(parse("1h30m"), Ok(5400));
        assert_eq!(parse("2d"), Ok(172_800));
        assert_eq!(parse(" 1h "), Ok(3600));
        assert_eq!(parse("366d"), Ok(MAX_SECS));
    }

    #[test]
    fn refuses_zero_negative_and_garbage() {
        assert_eq!(parse("0s"), Err(DurationError::Zero));
        assert_eq!(parse("0m0s"), Err(DurationError::Zero));
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("15"), Err(DurationError::MissingUnit));
        assert!(matches!(
            parse("-5m"),
            Err(DurationError::Unexpected { at: 0, found: '-' })
        ));
        assert!(matches!(
            parse("1ns"),
            Err(DurationError::Unexpected { .. })
        ));
        assert!(matches!(
            parse("10y"),
            Err(DurationError::Unexpected { .. })
        ));
        assert!(matches!(parse("m"), Err(DurationError::Unexpected { .. })));
        assert_eq!(parse("5m1h"), Err(DurationError::UnitOrder));
        assert_eq!(parse("1m1m"), Err(DurationError::UnitOrder));
    }

    #[test]
    fn refuses_huge_values_without_overflow() {
        assert_eq!(parse("367d"), Err(DurationError::TooLong));
        assert_eq!(parse("18446744073709551615s"), Err(DurationError::TooLong));
        assert_eq!(
            parse("99999999999999999999999999999d"),
            Err(DurationError::TooLong)
        );
        assert!(matches!(
            parse("-9223372036854775808s"),
            Err(DurationError::Unexpected { .. })
        ));
    }

    #[test]
    fn format_round_trips() {
        for secs in [1, 59, 60, 61, 3599, 3600, 5400, 86_399, 86_400, MAX_SECS] {
            assert_eq!(parse(&format(secs)), Ok(secs), "{secs}");
        }
        assert_eq!(format(5400), "1h30m");
    }
}
