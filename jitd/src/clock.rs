//! Time, injected. Every grant carries two deadlines: a wall-clock one (what users and sudo's
//! `NOTAFTER` see) and a CLOCK_BOOTTIME one for the boot it was granted in. Boot time cannot be
//! set by anyone and keeps counting through suspend, so moving the wall clock back does not
//! extend a grant; moving it forward ends grants early, which is the safe direction.
//! After a reboot the boot deadline no longer applies (another boot id) and the wall clock rules.
//!
//! Nothing else in the daemon reads a clock: it asks a [`Clock`], so tests use [`FakeClock`].

#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex};

/// A reading of every clock at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds since the Unix epoch.
    pub wall_ms: i64,
    /// Milliseconds of CLOCK_BOOTTIME.
    pub boot_ms: i64,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: Arc<str>,
}

/// When a grant ends: whichever of its deadlines comes first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub wall_ms: i64,
    pub boot_id: Arc<str>,
    pub boot_ms: i64,
}

/// Records further in the future than this are treated as tampering or a wild clock.
pub const FUTURE_TOLERANCE_MS: i64 = 5 * 60 * 1000;

impl Deadline {
    /// The deadline `duration_ms` from `now`, on both clocks.
    pub fn after(now: &Now, duration_ms: i64) -> Self {
        Self {
            wall_ms: now.wall_ms.saturating_add(duration_ms),
            boot_id: now.boot_id.clone(),
            boot_ms: now.boot_ms.saturating_add(duration_ms),
        }
    }

    /// Milliseconds left, by the earlier of the two clocks; `<= 0` means due.
    pub fn remaining_ms(&self, now: &Now) -> i64 {
        let by_wall = self.wall_ms.saturating_sub(now.wall_ms);
        if self.boot_id == now.boot_id {
            by_wall.min(self.boot_ms.saturating_sub(now.boot_ms))
        } else {
            by_wall
        }
    }

    pub fn is_due(&self, now: &Now) -> bool {
        self.remaining_ms(now) <= 0
    }
}

/// Whether a record that says it started at `started_ms` is believable now: a start far in the
/// future means the record or the clock was tampered with, and the grant must end.
pub fn started_in_future(started_ms: i64, now: &Now) -> bool {
    started_ms > now.wall_ms.saturating_add(FUTURE_TOLERANCE_MS)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) — Howard Hinnant's
/// `civil_from_days`. Pure arithmetic: no time zone, no locale, no TZ variable can change it.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Epoch milliseconds as RFC 3339 UTC, second precision: `2026-11-29T02:20:21Z`.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Epoch milliseconds as RFC 3339 UTC with milliseconds: `2026-11-29T02:34:00.123Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    let text = rfc3339(ms);
    format!(
        "{}.{:03}Z",
        text.strip_suffix('Z').unwrap_or(&text),
        ms.rem_euclid(1000)
    )
}

fn utc_parts(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A UTC timestamp for messages: `2026-11-22 15:42:07Z`.
pub fn utc(ms: i64) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(ms.div_euclid(1000));
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}Z")
}

/// sudoers' generalized time in UTC, as `NOTAFTER` wants it: `20261122154207Z`.
pub fn sudoers_stamp(secs: i64) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(secs);
    format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z")
}

/// Reads back a [`sudoers_stamp`]: seconds since the epoch, or `None` for anything else.
pub fn parse_sudoers_stamp(stamp: &str) -> Option<i64> {
    let digits = stamp.strip_suffix('Z')?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |from: usize, to: usize| digits[from..to].parse::<i64>().ok();
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (hh, mm, ss) = (num(8, 10)?, num(10, 12)?, num(12, 14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Howard Hinnant's `days_from_civil`, the inverse of [`civil_from_days`].
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    // A day that does not exist (31 April) does not read back as itself.
    (sudoers_stamp(secs) == stamp).then_some(secs)
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Now;
}

/// The real clocks of this host.
pub struct SystemClock {
    /// Shared by every deadline made in this boot.
    boot_id: Arc<str>,
}

impl SystemClock {
    pub fn new() -> Self {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            // Without a boot id only the wall clock protects grants; "unknown" never matches a
            // real id, so boot deadlines from any other boot are ignored as they should be.
            .unwrap_or_else(|_| "unknown".to_string());
        Self {
            boot_id: boot_id.into(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    // The one place the real wall clock is read.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Now {
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            // A clock before 1970 is broken; the far future makes every deadline due, the safe reading.
            .unwrap_or(i64::MAX);
        let boot_ms = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
            .map(|ts| ts.tv_sec() * 1000 + ts.tv_nsec() / 1_000_000)
            .unwrap_or(0);
        Now {
            wall_ms: wall_ms.saturating_add(test_wall_offset_ms()),
            boot_ms,
            boot_id: self.boot_id.clone(),
        }
    }
}

/// Debug builds only: the end-to-end suites move the daemon's wall clock (not the host's) by
/// writing an offset in milliseconds to the file named by `JITD_TEST_WALL_OFFSET_FILE`.
#[cfg(debug_assertions)]
fn test_wall_offset_ms() -> i64 {
    std::env::var_os("JITD_TEST_WALL_OFFSET_FILE")
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(not(debug_assertions))]
fn test_wall_offset_ms() -> i64 {
    0
}

/// A clock for tests: both clocks move only when told.
pub struct FakeClock(Mutex<Now>);

impl FakeClock {
    pub fn new(wall_ms: i64) -> Self {
        Self(Mutex::new(Now {
            wall_ms,
            boot_ms: 1_000,
            boot_id: "boot-a".into(),
        }))
    }

    /// Both clocks advance, as in real life.
    pub fn advance_ms(&self, ms: i64) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        now.wall_ms += ms;
        now.boot_ms += ms;
    }

    /// Only the wall clock moves (someone set the time).
    pub fn set_wall_ms(&self, wall_ms: i64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).wall_ms = wall_ms;
    }

    /// A new boot: boot time restarts, a new boot id.
    pub fn reboot(&self, boot_id: &str) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        now.boot_ms = 1_000;
        now.boot_id = boot_id.into();
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Now {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn deadline_is_due_when_the_wall_clock_passes_it() {
        let clock = FakeClock::new(T0);
        let d = Deadline::after(&clock.now(), 60_000);
        clock.advance_ms(59_999);
        assert!(!d.is_due(&clock.now()));
        clock.advance_ms(1);
        assert!(d.is_due(&clock.now()));
    }

    #[test]
    fn moving_the_wall_clock_back_does_not_extend_a_grant() {
        let clock = FakeClock::new(T0);
        let d = Deadline::after(&clock.now(), 60_000);
        clock.set_wall_ms(T0 - 86_400_000);
        assert_eq!(d.remaining_ms(&clock.now()), 60_000);
        clock.advance_ms(60_000);
        assert!(d.is_due(&clock.now()), "boot time still ends it on time");
    }

    #[test]
    fn moving_the_wall_clock_forward_ends_a_grant_early() {
        let clock = FakeClock::new(T0);
        let d = Deadline::after(&clock.now(), 3_600_000);
        clock.set_wall_ms(T0 + 86_400_000);
        assert!(d.is_due(&clock.now()));
    }

    #[test]
    fn after_a_reboot_only_the_wall_clock_counts() {
        let clock = FakeClock::new(T0);
        let d = Deadline::after(&clock.now(), 60_000);
        clock.reboot("boot-b");
        // Boot time restarted at 1 s: the old boot deadline would say "59 s left" forever
        // if it were compared across boots; the wall clock is what counts now.
        clock.set_wall_ms(T0 + 60_000);
        assert!(d.is_due(&clock.now()));
    }

    #[test]
    fn utc_stamps_are_calendar_correct_without_any_time_zone() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(utc(4_102_444_799_000), "2099-12-31 23:59:59Z");
        assert_eq!(sudoers_stamp(2_147_483_648), "20380119031408Z");
        assert_eq!(sudoers_stamp(1_704_067_199), "20231231235959Z");
        assert_eq!(sudoers_stamp(1_709_164_800), "20240229000000Z");
    }

    #[test]
    fn sudoers_stamps_read_back_exactly_and_nothing_else_does() {
        for secs in [0, 951_782_400, 1_704_067_199, 1_709_164_800, 2_147_483_648] {
            assert_eq!(parse_sudoers_stamp(&sudoers_stamp(secs)), Some(secs));
        }
        for bad in [
            "",
            "20240229000000",
            "2024022900000Z",
            "20240230000000Z",
            "20240431000000Z",
            "20241301000000Z",
            "20240101240000Z",
            "2024010100000aZ",
            "+2024010100000Z",
        ] {
            assert_eq!(parse_sudoers_stamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_start_far_in_the_future_is_not_believed() {
        let now = FakeClock::new(T0).now();
        assert!(!started_in_future(T0 + FUTURE_TOLERANCE_MS, &now));
        assert!(started_in_future(T0 + FUTURE_TOLERANCE_MS + 1, &now));
    }
}
