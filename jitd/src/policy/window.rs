//! `auto_approve` on a quorum rule: inside a weekly time window in a named time zone (read
//! from the host's zoneinfo), and under a cap per user per local day, a request is granted
//! without waiting for people; outside, the rule asks its approvers as usual.

#![forbid(unsafe_code)]

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

/// Day names as the policy writes them, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApprove {
    /// Which days (Monday first) the window is open.
    pub days: [bool; 7],
    /// Minutes after local midnight the window opens and closes (`until` excluded).
    pub from_min: u32,
    pub until_min: u32,
    pub zone: String,
    pub tz: TimeZone,
    /// Auto-approvals per user per local day (None: no cap).
    pub per_user_per_day: Option<u32>,
}

impl AutoApprove {
    fn local(&self, wall_ms: i64) -> Option<jiff::Zoned> {
        Timestamp::from_millisecond(wall_ms)
            .ok()
            .map(|t| t.to_zoned(self.tz.clone()))
    }

    /// Whether the window is open at `wall_ms`.
    pub fn contains(&self, wall_ms: i64) -> bool {
        let Some(z) = self.local(wall_ms) else {
            return false;
        };
        let day = match z.weekday() {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        };
        let minute = u32::try_from(i32::from(z.hour()) * 60 + i32::from(z.minute())).unwrap_or(0);
        self.days[day] && minute >= self.from_min && minute < self.until_min
    }

    /// The start of the local day of `wall_ms`, in ms since the epoch (for the cap).
    pub fn day_start_ms(&self, wall_ms: i64) -> i64 {
        self.local(wall_ms)
            .and_then(|z| z.start_of_day().ok())
            .map_or(wall_ms, |z| z.timestamp().as_millisecond())
    }

    /// `mon-fri 08:00-18:00 Europe/Berlin`.
    pub fn describe(&self) -> String {
        let days: Vec<&str> = DAYS
            .iter()
            .zip(self.days)
            .filter(|(_, on)| *on)
            .map(|(d, _)| *d)
            .collect();
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        format!(
            "{} {}-{} {}",
            days.join(","),
            hm(self.from_min),
            hm(self.until_min),
            self.zone
        )
    }
}

/// `"08:00-18:00"` to minutes after midnight; the end may be `24:00`.
pub fn parse_hours(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("hours {text:?}: write e.g. \"08:00-18:00\"");
    let (from, until) = text.split_once('-').ok_or_else(bad)?;
    let minutes = |hm: &str| -> Option<u32> {
        let (h, m) = hm.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    };
    let (from, until) = (
        minutes(from).ok_or_else(bad)?,
        minutes(until).ok_or_else(bad)?,
    );
    if from >= until {
        return Err(format!(
            "hours {text:?}: the window must end after it starts"
        ));
    }
    Ok((from, until))
}

/// `["mon-fri", "sun"]` to the days they name.
pub fn parse_days(items: &[&str]) -> Result<[bool; 7], String> {
    let index = |d: &str| {
        DAYS.iter()
            .position(|x| *x == d.trim())
            .ok_or_else(|| format!("day {d:?}: one of {}", DAYS.join(", ")))
    };
    let mut days = [false; 7];
    for item in items {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                if a > b {
                    return Err(format!("days {item:?}: write the earlier day first"));
                }
                for d in &mut days[a..=b] {
                    *d = true;
                }
            }
            None => days[index(item)?] = true,
        }
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> AutoApprove {
        let (from_min, until_min) = parse_hours("08:00-18:00").unwrap();
        AutoApprove {
            days: parse_days(&["mon-fri"]).unwrap(),
            from_min,
            until_min,
            zone: "Europe/Berlin".into(),
            tz: TimeZone::get("Europe/Berlin").unwrap(),
            per_user_per_day: Some(2),
        }
    }

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn the_window_is_local_time_in_its_zone_across_summer_time() {
        let w = window();
        // Monday 2026-03-30 is summer time in Berlin (UTC+2): 06:00Z is 08:00 there.
        assert!(w.contains(ms("2026-03-30T06:00:00Z")));
        assert!(!w.contains(ms("2026-03-30T05:59:00Z")));
        assert!(!w.contains(ms("2026-03-30T16:00:00Z")), "18:00 is closed");
        // Monday 2026-11-30 is winter time (UTC+1): 07:00Z is 08:00.
        assert!(!w.contains(ms("2026-11-30T06:30:00Z")));
        assert!(w.contains(ms("2026-11-30T07:00:00Z")));
        // Saturday.
        assert!(!w.contains(ms("2026-11-28T10:00:00Z")));
        assert_eq!(
            w.day_start_ms(ms("2026-11-30T10:00:00Z")),
            ms("2026-11-29T23:00:00Z")
        );
        assert_eq!(
            w.describe(),
            "mon,tue,wed,thu,fri 08:00-18:00 Europe/Berlin"
        );
    }

    #[test]
    fn hours_and_days_are_checked() {
        assert_eq!(parse_hours("00:00-24:00"), Ok((0, 1440)));
        assert!(parse_hours("18:00-08:00").is_err());
        assert!(parse_hours("8-18").is_err());
        assert!(parse_hours("25:00-26:00").is_err());
        assert_eq!(
            parse_days(&["sat", "mon-tue"]).unwrap(),
            [true, true, false, false, false, true, false]
        );
        assert!(parse_days(&["fri-mon"]).is_err());
        assert!(parse_days(&["monday"]).is_err());
    }
}
