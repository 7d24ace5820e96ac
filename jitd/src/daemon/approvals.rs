//! Requests that wait for people: made pending when the rule says `approval = "quorum"`,
//! approved by a quorum of approvers counted at decision time, denied, cancelled by their
//! owner, expired by the rule's `request_ttl` on the daemon's clock, or withdrawn when the
//! policy no longer allows them. The access clock starts at the final approval: the grant is
//! built then, as an automatic one is built at request time. Every move is an audit record
//! with who, when and why, and a `RequestChanged` signal for whoever waits. What people see of
//! requests is in `request_views`, expiry and withdrawal in `request_upkeep`.

#![forbid(unsafe_code)]

use std::sync::Arc;

use super::Core;
use crate::audit::AuditEvent;
use crate::client::{Error, RequestInfo, RequestOutcome};
use crate::clock::utc;
use crate::grant::GrantRecord;
use crate::names::{GrantId, RequestId};
use crate::policy::{Quorum, Requester};
use crate::store::{RequestRecord, VoteRecord};
use crate::terms::{ApprovalMode, RequestState, RequestStatus, Vote};

/// Tells listeners that a request changed (the bus signal `RequestChanged`).
pub type RequestSignal = Arc<dyn Fn(&str, RequestState) + Send + Sync>;

/// What a pending request is for, as the request path decided it.
pub(super) struct NewRequest<'a> {
    pub who: &'a Requester,
    pub privilege: &'a str,
    pub rule: &'a str,
    pub secs: u64,
    pub reason: &'a str,
    pub ticket: &'a str,
    pub via: crate::terms::Via,
    /// The live grant it would extend.
    pub extends: Option<&'a GrantId>,
}

impl Core {
    pub fn set_request_signal(&mut self, signal: RequestSignal) {
        self.request_signal = Some(signal);
    }

    pub(super) fn signal(&self, id: &RequestId, state: RequestState) {
        if let Some(signal) = &self.request_signal {
            signal(id.as_str(), state);
        }
    }

    /// Records a request that waits for approval and tells the requester how to follow it.
    pub(super) fn make_pending(&mut self, n: &NewRequest<'_>) -> Result<RequestOutcome, Error> {
        let quorum = self.quorum_of(n.rule)?;
        let pending = self
            .store
            .pending_requests()
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        if let Some(q) = pending
            .iter()
            .find(|q| q.uid == n.who.uid && q.privilege == n.privilege)
        {
            return Err(Error::PolicyDenied(format!(
                "you already asked for {} (request {}, pending until {}): wait with `jitctl wait {}`, or withdraw it with `jitctl cancel {}`",
                n.privilege,
                q.id,
                utc(q.expires_ms),
                q.id,
                q.id
            )));
        }
        let id = RequestId::from_random(
            crate::sys::random_bits()
                .map_err(|e| Error::Unavailable(format!("no random id: {e}")))?,
        );
        let now = self.clock.now().wall_ms;
        let grants = self
            .policy
            .privilege(n.privilege)
            .map(crate::policy::Privilege::describe)
            .unwrap_or_default();
        let q = RequestRecord {
            id: id.clone(),
            uid: n.who.uid,
            user: n.who.name.clone(),
            privilege: n.privilege.to_string(),
            rule: n.rule.to_string(),
            grants,
            duration_secs: n.secs,
            reason: n.reason.to_string(),
            ticket: n.ticket.to_string(),
            via: n.via,
            state: RequestState::Pending,
            requested_ms: now,
            expires_ms: now.saturating_add((quorum.request_ttl_secs as i64).saturating_mul(1000)),
            extends: n.extends.map(ToString::to_string).unwrap_or_default(),
            decided_ms: 0,
            decided_by: String::new(),
            note: String::new(),
            grant: String::new(),
            votes: Vec::new(),
        };
        if let Err(e) = self.store.insert_request(&q) {
            return Err(Error::Unavailable(format!(
                "cannot record the request ({e}); nothing was asked"
            )));
        }
        self.bind_for_signing(&q);
        self.record(AuditEvent::RequestPending {
            request: id.to_string(),
            uid: q.uid,
            user: q.user.clone(),
            via: q.via,
            privilege: q.privilege.clone(),
            rule: q.rule.clone(),
            duration: q.duration_secs,
            reason: q.reason.clone(),
            ticket: q.ticket.clone(),
            expires: utc(q.expires_ms),
            extends: q.extends.clone(),
        });
        let not_at_once = match self.auto_approve(&q, &quorum)? {
            Ok(granted) => return Ok(granted),
            Err(why) if why.is_empty() => String::new(),
            Err(why) => format!(" ({why})"),
        };
        self.signal(&id, RequestState::Pending);
        let what = if q.extends.is_empty() {
            format!(
                "{} for {}",
                q.privilege,
                crate::duration::format(q.duration_secs)
            )
        } else {
            format!(
                "{} more on grant {}",
                crate::duration::format(q.duration_secs),
                q.extends
            )
        };
        Ok(RequestOutcome {
            status: RequestStatus::Pending,
            message: format!(
                "request {id} ({what}) is pending{not_at_once}: {} of {} must approve it by {}. \
                 Wait for the decision with `jitctl wait {id}`; see it with `jitctl requests`",
                quorum.approvals,
                quorum.approvers_text(),
                utc(q.expires_ms)
            ),
            grant: empty_grant(),
            clamped: false,
            request_id: id.to_string(),
            request_expires_ms: q.expires_ms,
        })
    }

    fn quorum_of(&self, rule: &str) -> Result<Quorum, Error> {
        self.policy
            .rule(rule)
            .and_then(|r| r.quorum.clone())
            .ok_or_else(|| {
                Error::PolicyDenied(format!("rule \"{rule}\" no longer asks for approval"))
            })
    }

    // ---- decisions --------------------------------------------------------------------------

    /// A pending request by id, expired first when its time ran out; the refusal names what
    /// became of it.
    pub(super) fn pending_request(
        &mut self,
        id: &str,
        caller: u32,
        action: &str,
    ) -> Result<RequestRecord, Error> {
        self.usable()?;
        let id = RequestId::parse(id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let q = self
            .store
            .get_request(&id)
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let Some(mut q) = q else {
            self.refused(&id, caller, action, "no such request");
            return Err(Error::NotFound(format!(
                "no request {id}; `jitctl requests --pending` lists those you may decide"
            )));
        };
        if q.state == RequestState::Pending && self.clock.now().wall_ms >= q.expires_ms {
            self.expire(&q);
            q.state = RequestState::Expired;
            q.decided_ms = self.clock.now().wall_ms;
        }
        if q.state != RequestState::Pending {
            let why = format!(
                "request {id} is no longer pending: it was {} at {}{}",
                q.state,
                utc(q.decided_ms),
                if q.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", q.note)
                }
            );
            self.refused(&id, caller, action, &why);
            return Err(Error::InvalidArgument(why));
        }
        Ok(q)
    }

    pub(super) fn refused(&self, id: &RequestId, caller: u32, action: &str, why: &str) {
        self.record(AuditEvent::RequestActionRefused {
            request: id.to_string(),
            caller,
            action: action.to_string(),
            why: why.to_string(),
        });
    }

    /// A vote by `by` on a pending request, checked: the voter's identity is the bus's.
    fn vote(
        &mut self,
        by: u32,
        id: &str,
        vote: Vote,
        comment: &str,
        shorten_to_secs: u64,
    ) -> Result<(RequestRecord, Quorum), Error> {
        let action = vote.as_str();
        super::check_text("comment", comment, crate::client::MAX_REASON_CHARS)
            .map_err(Error::InvalidArgument)?;
        let q = self.pending_request(id, by, action)?;
        let Some(me) = self.requester(by) else {
            return Err(Error::NotAllowed(format!(
                "uid {by} has no account on this host"
            )));
        };
        let quorum = match self.may_decide(&me, &q) {
            Ok(quorum) => quorum,
            Err(why) => {
                self.refused(&q.id, by, action, &why);
                return Err(Error::NotAllowed(why));
            }
        };
        if vote == Vote::Deny && comment.trim().is_empty() {
            return Err(Error::InvalidArgument(format!(
                "a denial needs a comment, so {} knows why: jitctl deny {} --comment \"...\"",
                q.user, q.id
            )));
        }
        if shorten_to_secs > q.duration_secs {
            return Err(Error::InvalidArgument(format!(
                "{} is longer than the {} requested: an approver may shorten a request, never lengthen it",
                crate::duration::format(shorten_to_secs),
                crate::duration::format(q.duration_secs)
            )));
        }
        let v = VoteRecord {
            uid: by,
            user: me.name.clone(),
            vote,
            comment: comment.to_string(),
            shorten_to_secs,
            at_ms: self.clock.now().wall_ms,
        };
        match self.store.add_vote(&q.id, &v) {
            Ok(true) => {}
            Ok(false) => {
                let why = format!("you already voted on request {}", q.id);
                self.refused(&q.id, by, action, &why);
                return Err(Error::InvalidArgument(why));
            }
            Err(e) => return Err(Error::Unavailable(format!("cannot record the vote: {e}"))),
        }
        let mut q = q;
        q.votes.push(v);
        let (approvals, _) = self.tally(&q, &quorum);
        self.record(AuditEvent::RequestVoted {
            request: q.id.to_string(),
            by: me.name,
            vote: vote.as_str().to_string(),
            comment: comment.to_string(),
            shorten_to: shorten_to_secs,
            counted: approvals.len() as u64,
            needed: u64::from(quorum.approvals),
        });
        Ok((q, quorum))
    }

    /// Approvals and denials that count now.
    pub(super) fn tally<'a>(
        &self,
        q: &'a RequestRecord,
        quorum: &Quorum,
    ) -> (Vec<&'a VoteRecord>, Vec<&'a VoteRecord>) {
        let counted = |want: Vote| {
            q.votes
                .iter()
                .filter(|v| v.vote == want && self.counts(v, q, quorum))
                .collect::<Vec<_>>()
        };
        (counted(Vote::Approve), counted(Vote::Deny))
    }

    pub fn approve(
        &mut self,
        by: u32,
        id: &str,
        comment: &str,
        shorten_to_secs: u64,
    ) -> Result<RequestInfo, Error> {
        let (q, quorum) = self.vote(by, id, Vote::Approve, comment, shorten_to_secs)?;
        let (approvals, _) = self.tally(&q, &quorum);
        if (approvals.len() as u32) < quorum.approvals {
            self.signal(&q.id, RequestState::Pending);
            return Ok(self.request_info(&q, false));
        }
        // The shortest duration any counted approver allowed wins.
        let secs = approvals
            .iter()
            .map(|v| v.shorten_to_secs)
            .filter(|s| *s > 0)
            .fold(q.duration_secs, u64::min);
        let approvers: Vec<String> = approvals.iter().map(|v| v.user.clone()).collect();
        let approvers = approvers.join(", ");
        self.grant_approved(q, secs, &approvers)
    }

    /// The quorum is there: grant now (the access clock starts here), or extend.
    fn grant_approved(
        &mut self,
        q: RequestRecord,
        secs: u64,
        approvers: &str,
    ) -> Result<RequestInfo, Error> {
        let applied = if q.extends.is_empty() {
            self.grant_for(&q, secs, ApprovalMode::Quorum)
        } else {
            self.extend_approved(&q, secs).map(|g| (g, false))
        };
        let now = self.clock.now().wall_ms;
        let g = match applied {
            Ok((g, _)) => g,
            Err(e) => {
                let why = format!("approved by {approvers}, but not granted: {}", e.message());
                self.decide(&q, RequestState::Failed, approvers, &why, "", now);
                return Err(e);
            }
        };
        let why = format!(
            "approved by {approvers} for {}",
            crate::duration::format(secs)
        );
        self.decide(
            &q,
            RequestState::Approved,
            approvers,
            &why,
            g.id.as_str(),
            now,
        );
        let mut q = q;
        q.state = RequestState::Approved;
        q.decided_ms = now;
        q.decided_by = approvers.to_string();
        q.note = why;
        q.grant = g.id.to_string();
        Ok(self.request_info(&q, false))
    }

    /// The grant an approved request makes, as an automatic request would have made it at
    /// this moment, for the account that asked (renamed or deleted since: no grant).
    pub(super) fn grant_for(
        &mut self,
        q: &RequestRecord,
        secs: u64,
        mode: ApprovalMode,
    ) -> Result<(GrantRecord, bool), Error> {
        if self.accounts.user_name(q.uid).as_deref() != Some(q.user.as_str()) {
            return Err(Error::NotFound(format!(
                "the account {} (uid {}) changed since the request",
                q.user, q.uid
            )));
        }
        // The requester must still be one the rule lets ask, with room under its max_active:
        // groups and grants change while a request waits.
        let rule = self
            .requester(q.uid)
            .and_then(|who| self.policy.rule_for(&who, &q.privilege).cloned())
            .filter(|r| r.name == q.rule)
            .ok_or_else(|| {
                Error::PolicyDenied(format!(
                    "rule \"{}\" no longer lets {} request {}",
                    q.rule, q.user, q.privilege
                ))
            })?;
        let under = self.live.of_uid(q.uid).filter(|g| g.rule == q.rule).count() as u32;
        if under >= rule.max_active {
            return Err(Error::PolicyDenied(format!(
                "{} already holds {under} live grant(s) under rule \"{}\" (at most {})",
                q.user, q.rule, rule.max_active
            )));
        }
        if let Some(held) = self.live.of_uid(q.uid).find(|g| g.privilege == q.privilege) {
            return Err(Error::PolicyDenied(format!(
                "{} already holds {} (grant {})",
                q.user, q.privilege, held.id
            )));
        }
        let record = self.build_record(
            &q.user,
            q.uid,
            &q.privilege,
            &q.rule,
            secs,
            &q.reason,
            &q.ticket,
        )?;
        let allowed = AuditEvent::RequestAllowed {
            grant: record.id.clone(),
            uid: q.uid,
            user: q.user.clone(),
            via: q.via,
            privilege: q.privilege.clone(),
            rule: q.rule.clone(),
            duration: secs,
            clamped: false,
            reason: q.reason.clone(),
            ticket: q.ticket.clone(),
            approval: mode,
        };
        self.apply_new(record, allowed).map(|g| (g, false))
    }

    pub fn deny(&mut self, by: u32, id: &str, comment: &str) -> Result<RequestInfo, Error> {
        let (mut q, quorum) = self.vote(by, id, Vote::Deny, comment, 0)?;
        let (_, denials) = self.tally(&q, &quorum);
        if (denials.len() as u32) < quorum.denials {
            self.signal(&q.id, RequestState::Pending);
            return Ok(self.request_info(&q, false));
        }
        let who: Vec<String> = denials.iter().map(|v| v.user.clone()).collect();
        let why: Vec<String> = denials.iter().map(|v| v.comment.clone()).collect();
        let (who, why) = (who.join(", "), why.join("; "));
        let now = self.clock.now().wall_ms;
        self.decide(&q, RequestState::Denied, &who, &why, "", now);
        q.state = RequestState::Denied;
        q.decided_ms = now;
        q.decided_by = who;
        q.note = why;
        Ok(self.request_info(&q, false))
    }

    /// The owner withdraws a pending request.
    pub fn cancel(&mut self, by: u32, id: &str) -> Result<RequestInfo, Error> {
        let mut q = self.pending_request(id, by, "cancel")?;
        if q.uid != by {
            self.refused(&q.id, by, "cancel", "not the requester");
            // As for an unknown id: other users' requests are not theirs to probe.
            return Err(Error::NotFound(format!("no request {} of yours", q.id)));
        }
        let now = self.clock.now().wall_ms;
        let who = q.user.clone();
        self.decide(
            &q,
            RequestState::Cancelled,
            &who,
            "cancelled by its requester",
            "",
            now,
        );
        q.state = RequestState::Cancelled;
        q.decided_ms = now;
        q.decided_by = who;
        q.note = "cancelled by its requester".into();
        Ok(self.request_info(&q, false))
    }
}

/// The `grant` of an outcome that has none yet.
fn empty_grant() -> crate::client::GrantInfo {
    crate::client::GrantInfo {
        id: String::new(),
        uid: 0,
        user: String::new(),
        privilege: String::new(),
        kind: crate::terms::GrantKind::Sudo,
        state: crate::terms::GrantState::Applying,
        rule: String::new(),
        grants: String::new(),
        reason: String::new(),
        ticket: String::new(),
        requested_ms: 0,
        starts_ms: 0,
        expires_ms: 0,
        ended_ms: 0,
        end_reason: String::new(),
    }
}
