//! What requesters and approvers see of requests, and who counts: a vote counts when its
//! voter is still an approver of the rule with their groups as they are now and is not the
//! requester under any of their names.

#![forbid(unsafe_code)]

use super::{Caller, Core, info};
use crate::client::{Error, RequestInfo, VoteInfo};
use crate::policy::{Quorum, Requester};
use crate::store::{RequestRecord, VoteRecord};
use crate::terms::{RequestScope, Vote};

/// Most requests a listing returns.
const LIST_LIMIT: u32 = 200;
/// Grants of the requester an approver sees with a pending request.
const HISTORY: u32 = 5;

impl Core {
    // ---- listing ----------------------------------------------------------------------------

    pub fn list_requests(
        &self,
        by: Caller,
        scope: RequestScope,
    ) -> Result<Vec<RequestInfo>, Error> {
        self.usable()?;
        let unavailable = |e: crate::store::StoreError| Error::Unavailable(e.to_string());
        let rows = match scope {
            RequestScope::Mine => self
                .store
                .list_requests(Some(by.uid), LIST_LIMIT)
                .map_err(unavailable)?,
            RequestScope::All if by.admin => self
                .store
                .list_requests(None, LIST_LIMIT)
                .map_err(unavailable)?,
            RequestScope::All => {
                return Err(Error::NotAllowed(super::not_admin(
                    "listing every request",
                    &self.cfg.admin_group,
                )));
            }
            RequestScope::Pending => {
                let Some(me) = self.requester(by.uid) else {
                    return Ok(Vec::new());
                };
                let mut rows = self.store.pending_requests().map_err(unavailable)?;
                rows.retain(|q| self.may_decide(&me, q).is_ok());
                rows
            }
        };
        let history = scope == RequestScope::Pending;
        Ok(rows.iter().map(|q| self.request_info(q, history)).collect())
    }

    pub(super) fn request_info(&self, q: &RequestRecord, history: bool) -> RequestInfo {
        let quorum = self.policy.rule(&q.rule).and_then(|r| r.quorum.as_ref());
        let votes: Vec<VoteInfo> = q
            .votes
            .iter()
            .map(|v| VoteInfo {
                user: v.user.clone(),
                vote: v.vote,
                comment: v.comment.clone(),
                shorten_to_secs: v.shorten_to_secs,
                at_ms: v.at_ms,
                counts: quorum.is_some_and(|quorum| self.counts(v, q, quorum)),
            })
            .collect();
        let history = if history {
            self.store
                .list(Some(q.uid), true, HISTORY)
                .map(|rows| rows.iter().map(info).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        RequestInfo {
            id: q.id.to_string(),
            uid: q.uid,
            user: q.user.clone(),
            host: self.hostname.clone(),
            privilege: q.privilege.clone(),
            grants: q.grants.clone(),
            rule: q.rule.clone(),
            duration_secs: q.duration_secs,
            reason: q.reason.clone(),
            ticket: q.ticket.clone(),
            state: q.state,
            requested_ms: q.requested_ms,
            expires_ms: q.expires_ms,
            extends: q.extends.clone(),
            approvals: votes
                .iter()
                .filter(|v| v.counts && v.vote == Vote::Approve)
                .count() as u32,
            approvals_needed: quorum.map_or(0, |quorum| quorum.approvals),
            votes,
            decided_ms: q.decided_ms,
            decided_by: q.decided_by.clone(),
            note: q.note.clone(),
            grant_id: q.grant.clone(),
            history,
        }
    }

    /// Whether `v` counts now: its voter still has the account it voted with, is not the
    /// requester under any of their names, and is an approver of the rule with their groups
    /// as they are now.
    pub(super) fn counts(&self, v: &VoteRecord, q: &RequestRecord, quorum: &Quorum) -> bool {
        if v.uid == q.uid || self.policy.same_person().same(&v.user, &q.user) {
            return false;
        }
        match self.accounts.user_name(v.uid) {
            Some(name) if name == v.user => {
                let groups = self.own_groups(v.uid, &name);
                quorum.is_approver(&name, &groups)
            }
            _ => false,
        }
    }

    /// Whether `me` may vote on `q` now; the refusal says why.
    pub(super) fn may_decide(&self, me: &Requester, q: &RequestRecord) -> Result<Quorum, String> {
        if me.uid == q.uid {
            return Err("it is your own request: someone else must decide it".into());
        }
        if self.policy.same_person().same(&me.name, &q.user) {
            return Err(format!(
                "you and {} are one person (same_person in the policy): someone else must decide it",
                q.user
            ));
        }
        let Some(quorum) = self.policy.rule(&q.rule).and_then(|r| r.quorum.clone()) else {
            return Err(format!("rule \"{}\" no longer asks for approval", q.rule));
        };
        if !quorum.is_approver(&me.name, &me.groups) {
            return Err(format!(
                "you are not an approver of rule \"{}\" (approvers: {})",
                q.rule,
                quorum.approvers_text()
            ));
        }
        Ok(quorum)
    }
}
