//! A rule's escalation: who else hears of a request nobody decided in time
//! (`escalate_after = "15m"`, `escalate_to = ["%oncall-leads", "%directors"]`). Tier `k`
//! (1-based, at most three) is told `k × escalate_after` after the request was made, once.
//! Escalation only tells people: whoever must approve is still the rule's `approvers`.

#![forbid(unsafe_code)]

/// Most tiers a rule may name.
pub const MAX_TIERS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub after_secs: u64,
    /// Each tier: a user name or `%group`, as the policy writes it.
    pub tiers: Vec<String>,
}

impl Escalation {
    /// When tier `k` (1-based) is due for a request made at `requested_ms`.
    pub fn due_ms(&self, requested_ms: i64, k: usize) -> i64 {
        let step = i64::try_from(self.after_secs)
            .unwrap_or(i64::MAX / 4)
            .saturating_mul(1000);
        requested_ms.saturating_add(step.saturating_mul(k as i64))
    }
}
