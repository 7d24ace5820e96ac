//! Review reminders: the reviewers of a break-glass grant still unreviewed are told, once,
//! `max(1 h, 10 %)` of the review window before its deadline (`review.due`, with the exact
//! `jitctl review` line). Past the deadline, `breakglass.review_overdue` (in `breakglass.rs`)
//! tells the security route. Like expiry warnings, a reminder is a note and no audit record:
//! what happened (the grant, its review or its lateness) is on record already.
//!
//! With `access_review_reminder = true` in jitd.toml, the admin group is also told in the
//! first week of each quarter (UTC) that the access review of the quarter just ended is due,
//! with the `jitctl report` line that makes it.

use super::Core;
use crate::notify::{Body, approvers};

/// The least lead of a reminder; a window shorter than this gets none (the break-glass note
/// itself asked for the review moments before).
const LEAD_MIN_MS: i64 = 3_600_000;

/// When the reviewers of a grant from `granted_ms`, to be reviewed by `review_by_ms`, are
/// reminded; `None` when that would be at or before the grant itself.
pub fn remind_at(granted_ms: i64, review_by_ms: i64) -> Option<i64> {
    let lead = LEAD_MIN_MS.max((review_by_ms - granted_ms) / 10);
    let at = review_by_ms - lead;
    (at > granted_ms).then_some(at)
}

const DAY_MS: i64 = 86_400_000;
/// How long into a quarter its reminder may still go out (a daemon down on the 1st).
const ACCESS_REMINDER_DAYS: i64 = 7;

/// The quarter of day `days` (since 1970-01-01, UTC): (year, 1..=4).
fn quarter(days: i64) -> (i64, i64) {
    let (y, m, _) = crate::clock::civil_from_days(days);
    (y, (m - 1) / 3 + 1)
}

/// At `now_ms`: the label of the quarter whose review is due (`2026Q4`) when `now_ms` is in
/// the first week of the next one, and ms until the next quarter begins.
pub fn access_review_due(now_ms: i64) -> (Option<String>, i64) {
    let today = now_ms.div_euclid(DAY_MS);
    let this = quarter(today);
    let due = (quarter(today - ACCESS_REMINDER_DAYS) != this).then(|| {
        let (y, q) = if this.1 == 1 {
            (this.0 - 1, 4)
        } else {
            (this.0, this.1 - 1)
        };
        format!("{y}Q{q}")
    });
    let next = (1..=93)
        .map(|d| today + d)
        .find(|d| quarter(*d) != this)
        .map_or(DAY_MS, |d| d * DAY_MS - now_ms);
    (due, next)
}

impl Core {
    /// With `access_review_reminder`, queues the quarter's access-review reminder once;
    /// returns ms until the next quarter.
    pub(super) fn remind_access_review(&self) -> Option<i64> {
        if self.unusable.is_some() || !self.cfg.access_review_reminder {
            return None;
        }
        let now = self.clock.now().wall_ms;
        let (due, next) = access_review_due(now);
        if let Some(period) = due {
            let dedupe = format!("review.due:access:{period}");
            if !self.store.note_queued(&dedupe).unwrap_or(true) {
                let why = format!("the quarterly access review of {period} is due");
                let command =
                    format!("jitctl report --period {period} --format html > access-{period}.html");
                let note = Body {
                    kind: "review.due",
                    severity: "info",
                    why: &why,
                    command: &command,
                    to: vec![format!("%{}", self.cfg.admin_group)],
                    routes: &["review"],
                    ..Body::default()
                }
                .note(dedupe, &self.hostname, now);
                if let Err(e) = self.store.queue_notes(now, &[note]) {
                    self.audit.log(
                        crate::audit::Level::Warning,
                        &format!("cannot queue the access review reminder: {e}"),
                    );
                }
            }
        }
        Some(next)
    }

    /// Queues the reminder of each unreviewed break-glass grant whose time has come; returns
    /// ms until the next one is due.
    pub(super) fn remind_reviews(&self) -> Option<i64> {
        if self.unusable.is_some() {
            return None;
        }
        let now = self.clock.now().wall_ms;
        let mut next: Option<i64> = None;
        for b in self.store.unreviewed_breakglass().ok()? {
            let Some(at) = remind_at(b.granted_ms, b.review_by_ms) else {
                continue;
            };
            if now >= b.review_by_ms {
                continue;
            }
            if at > now {
                next = Some(next.map_or(at - now, |n| n.min(at - now)));
                continue;
            }
            let dedupe = format!("review.due:{}", b.grant);
            if self.store.note_queued(&dedupe).unwrap_or(true) {
                continue;
            }
            let review_by = crate::clock::utc(b.review_by_ms);
            let why = format!("break-glass grant to review by {review_by}");
            let command = format!(
                "jitctl review {} --outcome drill|emergency|misuse --comment ...",
                b.grant
            );
            let note = Body {
                kind: "review.due",
                severity: "warning",
                user: &b.user,
                uid: b.uid,
                privilege: &b.privilege,
                rule: &b.rule,
                reason: &b.reason,
                grant: b.grant.as_str(),
                why: &why,
                command: &command,
                to: approvers(&self.policy, &b.rule),
                ..Body::default()
            }
            .note(dedupe, &self.hostname, now);
            if let Err(e) = self.store.queue_notes(now, &[note]) {
                self.audit.log(
                    crate::audit::Level::Warning,
                    &format!("cannot queue the review reminder of {}: {e}", b.grant),
                );
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::{access_review_due, remind_at};

    #[test]
    fn the_access_review_is_due_in_the_first_week_of_the_next_quarter() {
        let day = 86_400_000;
        // 2027-01-01 00:00Z is day 20819; 2026-11-29 is day 20786.
        assert_eq!(crate::clock::utc(20_819 * day), "2027-01-01 00:00:00Z");
        let (due, next) = access_review_due(20_786 * day + 3_600_000);
        assert_eq!(due, None);
        assert_eq!(next, 33 * day - 3_600_000);
        assert_eq!(
            access_review_due(20_819 * day + 60_000).0.as_deref(),
            Some("2026Q4")
        );
        assert_eq!(
            access_review_due((20_819 + 6) * day).0.as_deref(),
            Some("2026Q4")
        );
        assert_eq!(access_review_due((20_819 + 7) * day).0, None);
        // 2027-04-01 (day 20909): Q1 is due.
        assert_eq!(access_review_due(20_909 * day).0.as_deref(), Some("2027Q1"));
    }

    #[test]
    fn reminders_come_an_hour_or_a_tenth_before_the_deadline() {
        let h = 3_600_000;
        assert_eq!(remind_at(0, 10 * h), Some(9 * h));
        assert_eq!(remind_at(0, 7 * 24 * h), Some(7 * 24 * h - 7 * 24 * h / 10));
        assert_eq!(remind_at(0, h), None, "a one-hour window: no reminder");
    }
}
