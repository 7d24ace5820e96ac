//! Requests leaving `pending` for good, and the upkeep that moves them without a person:
//! expiry by the rule's `request_ttl` on the daemon's clock, and withdrawal when the policy no
//! longer allows them.

#![forbid(unsafe_code)]

use super::Core;
use crate::audit::AuditEvent;
use crate::clock::utc;
use crate::store::RequestRecord;
use crate::terms::RequestState;

impl Core {
    /// Moves `q` out of `pending` for good: the store (only if still pending), the audit, the
    /// signal.
    pub(super) fn decide(
        &self,
        q: &RequestRecord,
        state: RequestState,
        by: &str,
        why: &str,
        grant: &str,
        now: i64,
    ) {
        if let Err(e) = self.store.finish_request(&q.id, state, now, by, why, grant) {
            self.record(AuditEvent::GrantDbWriteFailed {
                error: format!("request {}: {e}", q.id),
            });
        }
        self.record(AuditEvent::RequestDecided {
            request: q.id.to_string(),
            uid: q.uid,
            user: q.user.clone(),
            privilege: q.privilege.clone(),
            state: state.as_str().to_string(),
            by: by.to_string(),
            why: why.to_string(),
            grant: grant.to_string(),
        });
        self.signal(&q.id, state);
    }

    pub(super) fn expire(&self, q: &RequestRecord) {
        let why = format!(
            "nobody decided within the rule's request_ttl (by {})",
            utc(q.expires_ms)
        );
        self.decide(
            q,
            RequestState::Expired,
            "jitd",
            &why,
            "",
            self.clock.now().wall_ms,
        );
    }

    /// Whether the grant extension request `q` names is still live.
    fn extends_live(&self, q: &RequestRecord) -> bool {
        crate::names::GrantId::parse(&q.extends)
            .is_ok_and(|id| self.live.get(&id).is_some_and(|g| g.uid == q.uid))
    }

    /// Expires the requests whose time ran out, and withdraws extensions of grants that ended;
    /// returns ms until the next request expires.
    pub(super) fn expire_requests(&mut self) -> Option<i64> {
        if self.unusable.is_some() {
            return None;
        }
        let pending = self.store.pending_requests().ok()?;
        let now = self.clock.now().wall_ms;
        let mut next: Option<i64> = None;
        for q in &pending {
            if now >= q.expires_ms {
                self.expire(q);
            } else if !q.extends.is_empty() && !self.extends_live(q) {
                // Nothing left to extend: the requester is told now, not at the approval.
                let why = format!("grant {} has ended: there is nothing to extend", q.extends);
                self.decide(q, RequestState::Withdrawn, "jitd", &why, "", now);
            } else {
                let left = q.expires_ms - now;
                next = Some(next.map_or(left, |n| n.min(left)));
            }
        }
        next
    }

    /// After a policy change (reload, start-up): a pending request whose rule is gone, no
    /// longer asks for approval, or no longer lets its requester ask for its privilege is
    /// withdrawn, audited with the reason. Approvers taken out need nothing here: votes are
    /// counted when a decision is made.
    pub fn recheck_requests(&mut self) {
        if self.unusable.is_some() {
            return;
        }
        let Ok(pending) = self.store.pending_requests() else {
            return;
        };
        for q in pending {
            let why = match self.requester(q.uid) {
                None => Some("the requester's account is gone".to_string()),
                Some(who) if who.name != q.user => {
                    Some("the requester's account was renamed".to_string())
                }
                Some(who) => match self.policy.rule_for(&who, &q.privilege) {
                    None => Some(format!(
                        "the policy no longer lets {} request {}",
                        q.user, q.privilege
                    )),
                    Some(rule) if rule.name != q.rule => Some(format!(
                        "the policy now decides {} by rule \"{}\", not \"{}\": ask again",
                        q.privilege, rule.name, q.rule
                    )),
                    Some(rule) if rule.quorum.is_none() => Some(format!(
                        "rule \"{}\" no longer asks for approval: ask again",
                        q.rule
                    )),
                    Some(_) => None,
                },
            };
            if let Some(why) = why {
                let now = self.clock.now().wall_ms;
                self.decide(&q, RequestState::Withdrawn, "policy", &why, "", now);
            }
        }
    }
}
