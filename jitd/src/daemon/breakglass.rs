//! Break-glass: a rule with `breakglass = true` grants at once (with its mandatory reason and
//! its hour at most), at most once per user per `breakglass_every`, loudly (an alert-level
//! audit record), and every such grant waits for an approver's review within
//! `review_within`: drill, emergency or misuse, with a comment. A review that does not come
//! in time is recorded once as overdue.

#![forbid(unsafe_code)]

use super::{Caller, Core};
use crate::audit::AuditEvent;
use crate::client::{Error, ReviewInfo};
use crate::clock::utc;
use crate::grant::GrantRecord;
use crate::names::GrantId;
use crate::policy::Breakglass;
use crate::store::BreakglassRecord;
use crate::terms::ReviewOutcome;

impl Core {
    /// The break-glass terms of `rule`, if it has them.
    pub(super) fn breakglass_of(&self, rule: &str) -> Option<Breakglass> {
        self.policy.rule(rule).and_then(|r| r.breakglass.clone())
    }

    /// Whether `uid` may break the glass now; the refusal says when it may again.
    pub(super) fn breakglass_allowed(&self, uid: u32, b: &Breakglass) -> Result<(), String> {
        let now = self.clock.now().wall_ms;
        let since = now.saturating_sub((b.every_secs as i64).saturating_mul(1000));
        match self.store.breakglass_since(uid, since) {
            Ok(None) => Ok(()),
            Ok(Some(last)) => Err(format!(
                "break-glass is for emergencies: at most once per {} per user, and you used it at {} (grant {}); next possible at {}. Ask an approver instead",
                crate::duration::format(b.every_secs),
                utc(last.granted_ms),
                last.grant,
                utc(last
                    .granted_ms
                    .saturating_add((b.every_secs as i64).saturating_mul(1000)))
            )),
            // Without the count the limit cannot be kept: no break-glass grant.
            Err(e) => Err(format!("cannot check the break-glass limit: {e}")),
        }
    }

    /// Records a break-glass grant for its review, loudly.
    pub(super) fn breakglass_granted(&self, g: &GrantRecord, b: &Breakglass) {
        let review_by = g
            .starts_ms
            .saturating_add((b.review_within_secs as i64).saturating_mul(1000));
        let row = BreakglassRecord {
            grant: g.id.clone(),
            uid: g.uid,
            user: g.user.clone(),
            privilege: g.privilege.clone(),
            rule: g.rule.clone(),
            reason: g.reason.clone(),
            granted_ms: g.starts_ms,
            review_by_ms: review_by,
            reviewed_ms: 0,
            reviewer: String::new(),
            outcome: None,
            comment: String::new(),
        };
        if let Err(e) = self.store.insert_breakglass(&row) {
            self.db_write_failed(&g.id, &e);
        }
        self.record(AuditEvent::BreakglassUsed {
            grant: g.id.clone(),
            uid: g.uid,
            user: g.user.clone(),
            privilege: g.privilege.clone(),
            rule: g.rule.clone(),
            reason: g.reason.clone(),
            duration: u64::try_from((g.expires_ms - g.starts_ms) / 1000).unwrap_or(0),
            review_by: utc(review_by),
        });
    }

    /// Break-glass grants waiting for `by`'s review: those of rules `by` approves for, not
    /// their own (an admin who is no approver sees them in the audit trail, and cannot review).
    pub fn list_reviews(&self, by: Caller) -> Result<Vec<ReviewInfo>, Error> {
        self.usable()?;
        let rows = self
            .store
            .unreviewed_breakglass()
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let me = self.requester(by.uid);
        Ok(rows
            .iter()
            .filter(|b| me.as_ref().is_some_and(|me| self.may_review(me, b).is_ok()))
            .map(|b| self.review_info(b))
            .collect())
    }

    fn may_review(
        &self,
        me: &crate::policy::Requester,
        b: &BreakglassRecord,
    ) -> Result<(), String> {
        if me.uid == b.uid || self.policy.same_person().same(&me.name, &b.user) {
            return Err("it is your own break-glass grant: an approver must review it".into());
        }
        let Some(terms) = self.breakglass_of(&b.rule) else {
            return Err(format!(
                "rule \"{}\" is no longer a break-glass rule: an admin reviews it",
                b.rule
            ));
        };
        if !terms.reviewers.is_approver(&me.name, &me.groups) {
            return Err(format!(
                "you are not an approver of rule \"{}\" (approvers: {})",
                b.rule,
                terms.reviewers.approvers_text()
            ));
        }
        Ok(())
    }

    /// `by` reviews the break-glass grant `grant_id`.
    pub fn review(
        &mut self,
        by: u32,
        grant_id: &str,
        outcome: &str,
        comment: &str,
    ) -> Result<ReviewInfo, Error> {
        self.usable()?;
        let id = GrantId::parse(grant_id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let Some(outcome) = ReviewOutcome::parse(outcome) else {
            return Err(Error::InvalidArgument(format!(
                "outcome {:?} is not one of drill, emergency, misuse",
                outcome.chars().take(32).collect::<String>()
            )));
        };
        super::check_text("comment", comment, crate::client::MAX_REASON_CHARS)
            .map_err(Error::InvalidArgument)?;
        if comment.trim().is_empty() {
            return Err(Error::InvalidArgument(format!(
                "a review needs a comment: jitctl review {id} --outcome {outcome} --comment \"...\""
            )));
        }
        let Some(b) = self
            .store
            .get_breakglass(&id)
            .map_err(|e| Error::Unavailable(e.to_string()))?
        else {
            return Err(Error::NotFound(format!(
                "no break-glass grant {id}; `jitctl requests --pending` lists those waiting for review"
            )));
        };
        if b.reviewed_ms != 0 {
            return Err(Error::InvalidArgument(format!(
                "grant {id} was reviewed already by {} at {}",
                b.reviewer,
                utc(b.reviewed_ms)
            )));
        }
        let Some(me) = self.requester(by) else {
            return Err(Error::NotAllowed(format!(
                "uid {by} has no account on this host"
            )));
        };
        if let Err(why) = self.may_review(&me, &b) {
            self.record(AuditEvent::RequestActionRefused {
                request: id.to_string(),
                caller: by,
                action: "review".into(),
                why: why.clone(),
            });
            return Err(Error::NotAllowed(why));
        }
        let now = self.clock.now().wall_ms;
        match self
            .store
            .review_breakglass(&id, now, &me.name, outcome, comment)
        {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::InvalidArgument(format!(
                    "grant {id} was reviewed already"
                )));
            }
            Err(e) => return Err(Error::Unavailable(format!("cannot record the review: {e}"))),
        }
        self.record(AuditEvent::BreakglassReviewed {
            grant: id,
            user: b.user.clone(),
            reviewer: me.name.clone(),
            outcome: outcome.as_str().to_string(),
            comment: comment.to_string(),
            late: now > b.review_by_ms,
        });
        let reviewed = BreakglassRecord {
            reviewed_ms: now,
            reviewer: me.name,
            outcome: Some(outcome),
            comment: comment.to_string(),
            ..b
        };
        Ok(self.review_info(&reviewed))
    }

    /// Records, once each, the break-glass grants whose review is overdue.
    pub(super) fn note_overdue_reviews(&self) {
        if self.unusable.is_some() {
            return;
        }
        let Ok(overdue) = self
            .store
            .newly_overdue_breakglass(self.clock.now().wall_ms)
        else {
            return;
        };
        for b in overdue {
            self.record(AuditEvent::BreakglassReviewOverdue {
                grant: b.grant,
                user: b.user,
                review_by: utc(b.review_by_ms),
            });
        }
    }

    fn review_info(&self, b: &BreakglassRecord) -> ReviewInfo {
        ReviewInfo {
            grant_id: b.grant.to_string(),
            uid: b.uid,
            user: b.user.clone(),
            host: self.hostname.clone(),
            privilege: b.privilege.clone(),
            rule: b.rule.clone(),
            reason: b.reason.clone(),
            granted_ms: b.granted_ms,
            review_by_ms: b.review_by_ms,
            reviewed_ms: b.reviewed_ms,
            reviewer: b.reviewer.clone(),
            outcome: b
                .outcome
                .map(|o| o.as_str().to_string())
                .unwrap_or_default(),
            comment: b.comment.clone(),
        }
    }
}
