//! Extending a live grant in place: a request on the grant with a reason, checked against the
//! rule's maximum total, approved like the original (at once under an automatic rule); on
//! approval the deadline moves and the drop-in is rendered again with the new `NOTAFTER` —
//! the same grant, no gap, no second one.
//!
//! Order: the database first (a longer deadline recorded but not yet on the system only means
//! sudo's `NOTAFTER` ends access early, the safe side), then the system, and the database is
//! put back if the system cannot follow.

#![forbid(unsafe_code)]

use super::approvals::NewRequest;
use super::{Core, info};
use crate::audit::AuditEvent;
use crate::client::{Error, RequestOutcome};
use crate::clock::utc;
use crate::effects::sudoers::{self, DropIn};
use crate::grant::{GrantRecord, GrantSpec, GrantState};
use crate::names::{GrantId, PrivilegeName};
use crate::store::RequestRecord;
use crate::terms::{RequestStatus, Via};

impl Core {
    /// `uid` asks for `secs` more on its live grant `grant_id`, for `reason` (having
    /// `reauthenticated` through polkit when the bus layer asked it to).
    pub fn extend(
        &mut self,
        uid: u32,
        grant_id: &str,
        secs: u64,
        reason: &str,
        reauthenticated: bool,
    ) -> Result<RequestOutcome, Error> {
        self.usable()?;
        let id = GrantId::parse(grant_id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        super::check_text("reason", reason, crate::client::MAX_REASON_CHARS)
            .map_err(Error::InvalidArgument)?;
        if secs == 0 || secs > crate::duration::MAX_SECS {
            return Err(Error::InvalidArgument(format!(
                "an extension is 1s to {}",
                crate::duration::format(crate::duration::MAX_SECS)
            )));
        }
        let g = self.own_live_grant(uid, &id)?;
        let Some(who) = self.requester(uid) else {
            return Err(Error::NotAllowed(format!(
                "uid {uid} has no account on this host"
            )));
        };
        // The rule that decides the privilege for this user now must be the grant's own.
        let rule = match self.policy.rule_for(&who, &g.privilege) {
            Some(rule) if rule.name == g.rule => rule.clone(),
            _ => {
                return Err(Error::PolicyDenied(format!(
                    "the policy no longer lets you request {} under rule \"{}\": it cannot be extended",
                    g.privilege, g.rule
                )));
            }
        };
        if rule.reauth && !reauthenticated {
            return Err(Error::PolicyDenied(super::reauth::needed(&rule.name)));
        }
        let chars = reason.trim().chars().count() as u64;
        if chars == 0 || chars < u64::from(rule.reason_min_chars) {
            return Err(Error::PolicyDenied(format!(
                "an extension needs a reason of at least {} characters (--reason \"...\")",
                rule.reason_min_chars.max(1)
            )));
        }
        check_total(&g, secs, rule.max_secs, &rule.name)?;
        if rule.quorum.is_some() {
            return self.make_pending(&NewRequest {
                who: &who,
                privilege: &g.privilege,
                rule: &rule.name,
                secs,
                reason,
                ticket: &g.ticket,
                via: Via::Bus,
                extends: Some(&g.id),
            });
        }
        let g = self.move_deadline(g, secs, "automatic", reason)?;
        Ok(RequestOutcome {
            status: RequestStatus::Active,
            message: format!(
                "grant {} of {} extended by {}: it now ends at {}",
                g.id,
                g.privilege,
                crate::duration::format(secs),
                utc(g.expires_ms)
            ),
            grant: info(&g),
            clamped: false,
            request_id: String::new(),
            request_expires_ms: 0,
        })
    }

    /// The live, active grant `id` of `uid`; the refusal says what it is instead.
    fn own_live_grant(&self, uid: u32, id: &GrantId) -> Result<GrantRecord, Error> {
        match self.live.get(id) {
            Some(g) if g.uid == uid && g.state == GrantState::Active => Ok((**g).clone()),
            Some(g) if g.uid == uid => Err(Error::InvalidArgument(format!(
                "grant {id} is {}: only an active grant can be extended",
                g.state
            ))),
            // Another user's grant reads like an unknown one.
            Some(_) => Err(Error::NotFound(format!("no live grant {id} of yours"))),
            None => match self.store.get(id) {
                Ok(Some(g)) if g.uid == uid => Err(Error::InvalidArgument(format!(
                    "grant {id} has ended ({}): ask for a new one with `jitctl elevate {}`",
                    g.state, g.privilege
                ))),
                _ => Err(Error::NotFound(format!("no live grant {id} of yours"))),
            },
        }
    }

    /// An approved extension: checked again (the grant may have ended or been extended since
    /// the request), then made.
    pub(super) fn extend_approved(
        &mut self,
        q: &RequestRecord,
        secs: u64,
    ) -> Result<GrantRecord, Error> {
        let id = GrantId::parse(&q.extends).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let g = self.own_live_grant(q.uid, &id)?;
        let max = self.policy.rule(&g.rule).map_or(0, |r| r.max_secs);
        check_total(&g, secs, max, &g.rule)?;
        let by = q
            .votes
            .iter()
            .filter(|v| v.vote == crate::terms::Vote::Approve)
            .map(|v| v.user.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let by = if by.is_empty() {
            super::auto_approve::AUTO.to_string()
        } else {
            by
        };
        self.move_deadline(g, secs, &by, &q.reason)
    }

    /// Moves the deadline of `g` by `secs`: the record, the drop-in's `NOTAFTER` (or the
    /// membership's manifest), the gate index and the live set.
    fn move_deadline(
        &mut self,
        g: GrantRecord,
        secs: u64,
        by: &str,
        reason: &str,
    ) -> Result<GrantRecord, Error> {
        let ms = (secs as i64).saturating_mul(1000);
        let mut longer = g.clone();
        longer.expires_ms = g.expires_ms.saturating_add(ms);
        longer.expires_boot_ms = g.expires_boot_ms.saturating_add(ms);
        if let GrantSpec::Sudo {
            run_as_uid,
            commands,
            password_each_time,
        } = &g.spec
        {
            let privilege = PrivilegeName::parse(&g.privilege)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            longer.drop_in = sudoers::render(
                &DropIn {
                    grant: &g.id,
                    uid: g.uid,
                    privilege: &privilege,
                    run_as_uid: *run_as_uid,
                    commands,
                    password_each_time: *password_each_time,
                    not_after_unix_secs: longer.expires_ms.div_euclid(1000),
                },
                &self.flavor,
            )
            .map_err(|e| Error::InvalidArgument(e.to_string()))?
            .into();
        }
        self.store
            .set_deadline(&longer)
            .map_err(|e| Error::Unavailable(format!("cannot record the extension: {e}")))?;
        if let Err(e) = self.enforcer.apply(&longer) {
            // Back to the deadline the system still has; what was there stays as it was.
            if let Err(db) = self.store.set_deadline(&g) {
                self.db_write_failed(&g.id, &db);
            }
            return Err(Error::Unavailable(format!(
                "could not extend the grant on the system ({e}); it keeps its deadline {}",
                utc(g.expires_ms)
            )));
        }
        {
            // One guard: no check in between sees the grant missing.
            let mut gate = self.write_gate();
            gate.remove(&g);
            gate.insert(&longer);
        }
        self.live.insert(Box::new(longer.clone()));
        self.record(AuditEvent::GrantExtended {
            grant: longer.id.clone(),
            uid: longer.uid,
            user: longer.user.clone(),
            privilege: longer.privilege.clone(),
            by: by.to_string(),
            reason: reason.to_string(),
            seconds: secs,
            expires: utc(longer.expires_ms),
        });
        Ok(longer)
    }
}

/// Refuses an extension that would make the grant longer in total than the rule allows.
fn check_total(g: &GrantRecord, secs: u64, max_secs: u64, rule: &str) -> Result<(), Error> {
    let held = u64::try_from((g.expires_ms - g.starts_ms).max(0) / 1000).unwrap_or(0);
    if held.saturating_add(secs) > max_secs {
        let left = max_secs.saturating_sub(held);
        return Err(Error::PolicyDenied(format!(
            "{} more would make grant {} {} long, above the maximum {} of rule \"{rule}\"; {}",
            crate::duration::format(secs),
            g.id,
            crate::duration::format(held.saturating_add(secs)),
            crate::duration::format(max_secs),
            if left == 0 {
                "it cannot be extended further".to_string()
            } else {
                format!("ask for {} or less", crate::duration::format(left))
            }
        )));
    }
    Ok(())
}
