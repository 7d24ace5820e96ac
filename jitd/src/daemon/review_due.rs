//! Review reminders: the reviewers of a break-glass grant still unreviewed are told, once,
//! `max(1 h, 10 %)` of the review window before its deadline (`review.due`, with the exact
//! `jitctl review` line). Past the deadline, `breakglass.review_overdue` (in `breakglass.rs`)
//! tells the security route. Like expiry warnings, a reminder is a note and no audit record:
//! what happened (the grant, its review or its lateness) is on record already.

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

impl Core {
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
    use super::remind_at;

    #[test]
    fn reminders_come_an_hour_or_a_tenth_before_the_deadline() {
        let h = 3_600_000;
        assert_eq!(remind_at(0, 10 * h), Some(9 * h));
        assert_eq!(remind_at(0, 7 * 24 * h), Some(7 * 24 * h - 7 * 24 * h / 10));
        assert_eq!(remind_at(0, h), None, "a one-hour window: no reminder");
    }
}
