//! What is due, and when the core must look again. Pure: it reads the live set and a clock
//! reading and says what to do; `Core::tick` does it, and expires requests whose TTL ran out.

#![forbid(unsafe_code)]

use super::Core;
use super::grants::Ending;
use crate::clock::{Now, started_in_future};
use crate::grant::{GrantRecord, GrantState};

/// A removal that failed is retried this often, not in a tight loop.
const REMOVAL_RETRY_MS: i64 = 1000;
/// Grants ending in one tick past which the heap's free pages are given back to the system.
const GIVE_BACK_AFTER: usize = 256;

/// Work that is due now for one grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Its deadline passed (by the wall clock or the boot clock).
    Expire,
    /// It says it started in the future: the record or the clock was tampered with.
    FutureDated,
    /// A removal that failed before; try again.
    RetryRemoval,
}

/// What is due for `g` at `now`, if anything.
pub fn due(g: &GrantRecord, now: &Now) -> Option<Due> {
    if g.state == GrantState::Removing {
        Some(Due::RetryRemoval)
    } else if started_in_future(g.starts_ms, now) {
        Some(Due::FutureDated)
    } else if g.deadline().is_due(now) {
        Some(Due::Expire)
    } else {
        None
    }
}

/// Milliseconds until something in `live` is due (None when nothing is live).
pub fn next_in<'a>(live: impl Iterator<Item = &'a GrantRecord>, now: &Now) -> Option<i64> {
    live.map(|g| match g.state {
        GrantState::Removing => REMOVAL_RETRY_MS,
        _ => g.deadline().remaining_ms(now),
    })
    .min()
}

impl Core {
    /// Ends every grant that is due, retries failed removals, records finished recalls;
    /// returns ms until the next deadline (None when nothing is live).
    pub fn tick(&mut self) -> Option<i64> {
        self.record_recalls();
        let now = self.clock.now();
        let due: Vec<(GrantRecord, Due)> = self
            .live
            .values()
            .filter_map(|g| due(g, &now).map(|d| ((**g).clone(), d)))
            .collect();
        // Many grants ending together (a policy's whole shift at 18:00, a thousand at once)
        // share one commit instead of three each: access ends as fast as the files go. A crash
        // before the commit loses nothing that matters: each grant's deadline is durable, so the
        // next start or sweep removes it again (idempotently) and records it.
        let batch = due.len() > 1 && self.store.begin_batch().is_ok();
        let mut expired = Vec::new();
        for (g, what) in due {
            match what {
                Due::RetryRemoval => {
                    let end = self.store.end_state(&g.id).unwrap_or(GrantState::Revoked);
                    let why = g.end_reason.clone();
                    self.finish_removal(g, Ending::new(end, &why));
                }
                Due::FutureDated => {
                    self.end(
                        g,
                        Ending::new(
                            GrantState::Revoked,
                            "record dated in the future: clock or state tampered with",
                        ),
                    );
                }
                Due::Expire => expired.push(g),
            }
        }
        // Expired together, removed together: each privilege's sudoers file is written once.
        let many = expired.len() >= GIVE_BACK_AFTER;
        if !expired.is_empty() {
            self.end_all(expired, Ending::new(GrantState::Expired, "expired"));
            self.audit_drift();
        }
        if batch && let Err(e) = self.store.commit_batch() {
            self.record(crate::audit::AuditEvent::GrantDbWriteFailed {
                error: format!("ending grants together: {e}; the next start or sweep records them"),
            });
        }
        if many {
            // Thousands of grants ended: the memory they held goes back to the system.
            crate::sys::heap::give_back_free();
        }
        let requests = self.expire_requests();
        self.note_overdue_reviews();
        let warn = [
            self.warn_expiring(),
            self.escalate_requests(),
            self.remind_reviews(),
            self.remind_access_review(),
        ]
        .into_iter()
        .flatten()
        .min();
        let grants = next_in(self.live.values().map(|g| &**g), &self.clock.now());
        let grants = match (grants, warn) {
            (Some(g), Some(w)) => Some(g.min(w)),
            (g, w) => g.or(w),
        };
        match (grants, requests) {
            (Some(g), Some(r)) => Some(g.min(r)),
            (g, r) => g.or(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::GrantSpec;
    use crate::names::GrantId;

    fn grant(state: GrantState, starts_ms: i64, expires_ms: i64) -> GrantRecord {
        GrantRecord {
            id: GrantId::from_random(1),
            uid: 1001,
            user: "alice".into(),
            privilege: "p".into(),
            spec: GrantSpec::Gate,
            drop_in: "".into(),
            rule: "r".into(),
            grants: String::new(),
            reason: String::new(),
            ticket: String::new(),
            state,
            requested_ms: starts_ms,
            starts_ms,
            expires_ms,
            boot_id: "b1".into(),
            expires_boot_ms: expires_ms,
            ended_ms: 0,
            end_reason: String::new(),
            end_terms: Default::default(),
        }
    }

    fn at(wall_ms: i64, boot_ms: i64, boot_id: &str) -> Now {
        Now {
            wall_ms,
            boot_ms,
            boot_id: boot_id.into(),
        }
    }

    #[test]
    fn what_is_due_as_a_table() {
        let min = 60_000;
        let rows = [
            // (state, starts, expires, now, due)
            (GrantState::Active, 0, min, at(min - 1, min - 1, "b1"), None),
            (
                GrantState::Active,
                0,
                min,
                at(min, min, "b1"),
                Some(Due::Expire),
            ),
            // The wall clock set back: the boot clock still ends it.
            (
                GrantState::Active,
                0,
                min,
                at(0, min, "b1"),
                Some(Due::Expire),
            ),
            // After a reboot only the wall clock counts.
            (
                GrantState::Active,
                0,
                min,
                at(min - 1, 10 * min, "b2"),
                None,
            ),
            (
                GrantState::Active,
                100 * min,
                101 * min,
                at(0, 0, "b1"),
                Some(Due::FutureDated),
            ),
            (
                GrantState::Removing,
                0,
                100 * min,
                at(0, 0, "b1"),
                Some(Due::RetryRemoval),
            ),
        ];
        for (i, (state, starts, expires, now, want)) in rows.into_iter().enumerate() {
            assert_eq!(due(&grant(state, starts, expires), &now), want, "row {i}");
        }
    }

    #[test]
    fn the_next_wake_is_the_nearest_deadline_and_a_failed_removal_is_retried_in_a_second() {
        let now = at(0, 0, "b1");
        let a = grant(GrantState::Active, 0, 5_000);
        let b = grant(GrantState::Active, 0, 3_000);
        assert_eq!(next_in([&a, &b].into_iter(), &now), Some(3_000));
        let r = grant(GrantState::Removing, 0, 9_000);
        assert_eq!(next_in([&a, &r].into_iter(), &now), Some(1_000));
        assert_eq!(next_in(std::iter::empty(), &now), None);
    }
}
