//! Requests: validate what the caller sent, ask the policy, and on an allow hand a new grant
//! to the grant state machine. Every refusal is audited with what was asked.

#![forbid(unsafe_code)]

use super::{Core, hints, info};
use crate::audit::AuditEvent;
use crate::client::{self, Error, RequestOutcome};
use crate::clock::{Deadline, utc};
use crate::effects::sudoers::{self, DropIn};
use crate::grant::{EndTerms, GrantRecord, GrantSpec, GrantState};
use crate::names::GrantId;
use crate::policy::{self, Decision, Facts, Held, PrivilegeKind};
use crate::terms::{ApprovalMode, RequestStatus, Via};

/// What was asked, as it came in.
pub struct Ask<'a> {
    pub privilege: &'a str,
    /// 0: the rule's default.
    pub duration_secs: u64,
    pub reason: &'a str,
    pub ticket: &'a str,
    pub via: Via,
}

impl Core {
    /// Handles a request from `uid` (taken from bus credentials, or from PAM via the root-only
    /// Gate).
    pub fn request(&mut self, uid: u32, ask: &Ask<'_>) -> Result<RequestOutcome, Error> {
        self.request_with(uid, ask, false)
    }

    /// [`Core::request`] for a caller that `reauthenticated` through polkit just now (the bus
    /// layer asked); a `reauth = true` rule grants nothing without it.
    pub fn request_with(
        &mut self,
        uid: u32,
        ask: &Ask<'_>,
        reauthenticated: bool,
    ) -> Result<RequestOutcome, Error> {
        let Ask {
            privilege,
            duration_secs,
            reason,
            ticket,
            via,
        } = *ask;
        self.usable()?;
        let invalid = |core: &Self, why: &str| {
            core.record(AuditEvent::RequestInvalid {
                uid,
                via,
                privilege: privilege.to_string(),
                why: why.to_string(),
            });
        };
        if let Err(why) = validate(ask) {
            invalid(self, &why);
            return Err(Error::InvalidArgument(why));
        }
        let Some(who) = self.requester(uid) else {
            invalid(self, "no account");
            return Err(Error::NotAllowed(format!(
                "uid {uid} has no account on this host"
            )));
        };
        let live_by_rule =
            |rule: &str| self.live.of_uid(uid).filter(|g| g.rule == rule).count() as u32;
        let held = self
            .live
            .of_uid(uid)
            .find(|g| g.privilege == privilege)
            .map(|g| (g.id.to_string(), utc(g.expires_ms)));
        let decision = policy::decide(
            &self.policy,
            &Facts {
                who: &who,
                privilege,
                duration_secs: (duration_secs > 0).then_some(duration_secs),
                reason,
                ticket,
                via,
                active_under: &live_by_rule,
                held: held.as_ref().map(|(grant, until)| Held { grant, until }),
            },
        );
        let denied = |core: &Self, why: String| {
            core.record(AuditEvent::RequestDenied {
                uid,
                user: who.name.clone(),
                via,
                privilege: privilege.to_string(),
                duration: duration_secs,
                reason: reason.to_string(),
                ticket: ticket.to_string(),
                why: why.clone(),
            });
            Err(Error::PolicyDenied(why))
        };
        if let Decision::Allow { rule, .. } | Decision::Pending { rule, .. } = &decision
            && !reauthenticated
            && self.policy.rule(rule).is_some_and(|r| r.reauth)
        {
            return denied(self, super::reauth::needed(rule));
        }
        if let Decision::Allow { rule, .. } | Decision::Pending { rule, .. } = &decision
            && self.policy.rule(rule).is_some_and(|r| r.mfa)
            && !self.take_mfa(uid)
        {
            return denied(self, super::mfa::needed(rule));
        }
        let (rule, secs, clamped) = match decision {
            Decision::Allow {
                rule,
                duration_secs,
                clamped,
            } => (rule, duration_secs, clamped),
            // Nothing is granted yet: the request waits for its approvers.
            Decision::Pending {
                rule,
                duration_secs: secs,
                ..
            } => {
                return self.make_pending(&super::approvals::NewRequest {
                    who: &who,
                    privilege,
                    rule: &rule,
                    secs,
                    reason,
                    ticket,
                    via,
                    extends: None,
                });
            }
            Decision::Deny { why } => {
                // A name the policy does not define is "no such privilege" (exit 7 in
                // jitctl), not a refusal of a real one; it is audited as a denial all the same.
                let unknown = self.policy.privilege(privilege).is_none();
                let refused = denied(self, why);
                return if unknown {
                    refused.map_err(|e| Error::NotFound(e.message()))
                } else {
                    refused
                };
            }
        };
        let breakglass = self.breakglass_of(&rule);
        if let Some(b) = &breakglass
            && let Err(why) = self.breakglass_allowed(uid, b)
        {
            return denied(self, why);
        }
        let record = self.build_record(&who.name, uid, privilege, &rule, secs, reason, ticket)?;
        let allowed = AuditEvent::RequestAllowed {
            grant: record.id.clone(),
            uid,
            user: who.name.clone(),
            via,
            privilege: privilege.to_string(),
            rule,
            duration: secs,
            clamped,
            reason: reason.to_string(),
            ticket: ticket.to_string(),
            approval: ApprovalMode::Auto,
        };
        let grant = self.apply_new(record, allowed)?;
        if let Some(b) = &breakglass {
            self.breakglass_granted(&grant, b);
        }
        Ok(RequestOutcome {
            status: RequestStatus::Active,
            message: hints::granted(&grant, secs),
            grant: info(&grant),
            clamped,
            request_id: String::new(),
            request_expires_ms: 0,
        })
    }

    /// The record of a new grant, in state `applying`, with its drop-in rendered for the
    /// sudo implementation on this host.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build_record(
        &self,
        user: &str,
        uid: u32,
        privilege: &str,
        rule: &str,
        secs: u64,
        reason: &str,
        ticket: &str,
    ) -> Result<GrantRecord, Error> {
        let Some(p) = self.policy.privilege(privilege) else {
            return Err(Error::NotFound(format!("no privilege named {privilege}")));
        };
        let id = GrantId::from_random(
            crate::sys::random_bits()
                .map_err(|e| Error::Unavailable(format!("no random id: {e}")))?,
        );
        let now = self.clock.now();
        let deadline = Deadline::after(&now, (secs as i64).saturating_mul(1000));
        let spec = match &p.kind {
            PrivilegeKind::Sudo {
                run_as_uid,
                commands,
                password_each_time,
                ..
            } => GrantSpec::Sudo {
                run_as_uid: *run_as_uid,
                commands: commands.clone(),
                password_each_time: *password_each_time,
            },
            // The policy checked the user name is portable before allowing a group privilege.
            PrivilegeKind::Group { group, .. } => GrantSpec::Group {
                group: group.clone(),
            },
            PrivilegeKind::Gate { .. } => GrantSpec::Gate,
        };
        let drop_in = match &spec {
            GrantSpec::Sudo {
                run_as_uid,
                commands,
                password_each_time,
            } => sudoers::render(
                &DropIn {
                    grant: &id,
                    uid,
                    privilege: &p.name,
                    run_as_uid: *run_as_uid,
                    commands,
                    password_each_time: *password_each_time,
                    // Floor to the second: sudo may refuse up to a second early, never late.
                    not_after_unix_secs: deadline.wall_ms.div_euclid(1000),
                },
                &self.flavor,
            )
            .map_err(|e| Error::InvalidArgument(e.to_string()))?,
            GrantSpec::Group { .. } | GrantSpec::Gate => String::new(),
        };
        // The command ledger: sudo's own event log for the grant's user (`crate::ledger`).
        let drop_in = match &spec {
            GrantSpec::Sudo { .. } => drop_in + &self.ledger_defaults(uid, p),
            GrantSpec::Group { .. } | GrantSpec::Gate => drop_in,
        };
        Ok(GrantRecord {
            id,
            uid,
            user: user.to_string(),
            privilege: privilege.to_string(),
            spec,
            drop_in: drop_in.into(),
            rule: rule.to_string(),
            grants: p.describe(),
            reason: reason.to_string(),
            ticket: ticket.to_string(),
            state: GrantState::Applying,
            requested_ms: now.wall_ms,
            starts_ms: now.wall_ms,
            expires_ms: deadline.wall_ms,
            boot_id: deadline.boot_id,
            expires_boot_ms: deadline.boot_ms,
            ended_ms: 0,
            end_reason: String::new(),
            end_terms: EndTerms {
                // Resolved now: recall at the end ends what this gid gives, whatever the group
                // database or the policy say by then.
                gid: match &p.kind {
                    PrivilegeKind::Group { group, gid } => {
                        Some(self.accounts.group_gid(group.as_str()).unwrap_or(*gid))
                    }
                    PrivilegeKind::Sudo { .. } | PrivilegeKind::Gate { .. } => None,
                },
                on_end: Some(p.on_end),
            },
        })
    }
}

/// Checks what the caller sent before anything else looks at it.
fn validate(ask: &Ask<'_>) -> Result<(), String> {
    crate::names::PrivilegeName::parse(ask.privilege).map_err(|e| e.to_string())?;
    check_text("reason", ask.reason, client::MAX_REASON_CHARS)?;
    check_text("ticket", ask.ticket, client::MAX_TICKET_CHARS)?;
    if ask.duration_secs > crate::duration::MAX_SECS {
        return Err(format!(
            "duration {}s is above the longest jitd accepts ({})",
            ask.duration_secs,
            crate::duration::format(crate::duration::MAX_SECS)
        ));
    }
    Ok(())
}

/// Reasons and tickets: bounded, and free of anything that could break a log line or a
/// terminal (control characters, bidi overrides, zero-width characters).
pub fn check_text(what: &str, text: &str, max_chars: usize) -> Result<(), String> {
    let n = text.chars().count();
    if n > max_chars {
        return Err(format!(
            "{what} is {n} characters long; at most {max_chars} are allowed"
        ));
    }
    let hostile = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if let Some(c) = text.chars().find(|&c| hostile(c)) {
        return Err(format!(
            "{what} contains the control character U+{:04X}; use plain text on one line",
            u32::from(c)
        ));
    }
    Ok(())
}
