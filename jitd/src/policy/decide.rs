//! The decision on one request, from facts the caller gathered: nothing here asks the system,
//! the store or the clock, so every outcome can be tested as a row of a table.

#![forbid(unsafe_code)]

use super::{Approval, OverMax, Policy, PrivilegeKind, Requester};
use crate::names::UserName;
use crate::terms::Via;

/// Everything the decision depends on.
pub struct Facts<'a> {
    pub who: &'a Requester,
    pub privilege: &'a str,
    /// `None`: the rule's default.
    pub duration_secs: Option<u64>,
    pub reason: &'a str,
    pub ticket: &'a str,
    /// The door the request came through: pam_jit's requests need an `interactive` rule.
    pub via: Via,
    /// Live grants of this user under the named rule (for `max_active_rule`).
    pub active_under: &'a dyn Fn(&str) -> u32,
    /// The live grant of this privilege the user already holds, if any.
    pub held: Option<Held<'a>>,
}

/// A live grant the requester already holds, as the refusal names it.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub grant: &'a str,
    /// When it ends, as UTC text (the caller owns the clock and its format).
    pub until: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        rule: String,
        duration_secs: u64,
        clamped: bool,
    },
    /// Allowed by a rule that asks for human approval first (`approval = "quorum"`).
    Pending {
        rule: String,
        duration_secs: u64,
        clamped: bool,
        approvals: u32,
    },
    Deny {
        why: String,
    },
}

/// Decides a request. Default deny; the first rule that covers the privilege and matches the
/// requester decides, and every condition of that rule must hold. The checks run in a fixed
/// order and the first that fails is the answer, so a user always sees the same reason for
/// the same request.
pub fn decide(policy: &Policy, facts: &Facts<'_>) -> Decision {
    let deny = |why: String| Decision::Deny { why };
    let Some(privilege) = policy.privilege(facts.privilege) else {
        return deny(format!(
            "no privilege named {}; `jitctl explain` on a name from the policy shows what you may request",
            facts.privilege
        ));
    };
    let Some(rule) = policy.first_rule(facts.who, facts.privilege) else {
        return deny(format!(
            "no rule lets {} request {}",
            facts.who.name, facts.privilege
        ));
    };
    let mut clamped = false;
    let secs = match facts.duration_secs {
        None => rule.default_secs,
        Some(s) if s > rule.max_secs => match rule.over_max {
            OverMax::Refuse => {
                return deny(format!(
                    "{} is above the maximum {} of rule \"{}\"; ask for {} or less",
                    crate::duration::format(s),
                    crate::duration::format(rule.max_secs),
                    rule.name,
                    crate::duration::format(rule.max_secs)
                ));
            }
            OverMax::Clamp => {
                clamped = true;
                rule.max_secs
            }
        },
        Some(0) => return deny("a duration must be at least 1s".into()),
        Some(s) => s,
    };
    let chars = facts.reason.trim().chars().count();
    if rule.reason_required && chars == 0 {
        return deny(format!(
            "rule \"{}\" requires a reason (--reason \"...\")",
            rule.name
        ));
    }
    if (chars as u64) < u64::from(rule.reason_min_chars) && (rule.reason_required || chars > 0) {
        return deny(format!(
            "the reason must be at least {} characters under rule \"{}\" (it has {chars})",
            rule.reason_min_chars, rule.name
        ));
    }
    if let Some(pattern) = &rule.ticket_pattern {
        if facts.ticket.is_empty() {
            return deny(format!(
                "rule \"{}\" requires a ticket matching {} (--ticket ID)",
                rule.name,
                rule.ticket_pattern_text.as_deref().unwrap_or("")
            ));
        }
        if !pattern.is_match(facts.ticket) {
            return deny(format!(
                "ticket {:?} does not match {} required by rule \"{}\"",
                facts.ticket.chars().take(64).collect::<String>(),
                rule.ticket_pattern_text.as_deref().unwrap_or(""),
                rule.name
            ));
        }
    }
    // Each privilege is held once at a time (the `held` check below); a rule may also set a
    // budget its privileges share.
    if let Some(budget) = rule.max_active_rule {
        let active = (facts.active_under)(&rule.name);
        if active >= budget {
            return deny(format!(
                "already {active} live grant(s) under rule \"{}\" (max_active_rule = {budget}, shared by its privileges); drop one first (jitctl status, jitctl drop ID)",
                rule.name
            ));
        }
    }
    // A request typed at the sudo prompt skips the reasoned `jitctl elevate`; the rule must
    // say that is acceptable.
    if facts.via == Via::Pam && !rule.interactive {
        return deny(format!(
            "rule \"{}\" does not take requests from the sudo prompt (interactive = false): run `jitctl elevate {} --for ... --reason ...`",
            rule.name, facts.privilege
        ));
    }
    // A second grant of what is already held would only stack deadlines.
    if let Some(held) = facts.held {
        return deny(format!(
            "you already hold {} (grant {}) until {}: use it, or drop it first with `jitctl drop {}`",
            facts.privilege, held.grant, held.until, held.grant
        ));
    }
    // Group membership is changed by name with gpasswd, which must not misread the name.
    if matches!(privilege.kind, PrivilegeKind::Group { .. })
        && let Err(e) = UserName::parse(&facts.who.name)
    {
        return deny(format!("group privileges need a portable user name: {e}"));
    }
    match (rule.approval, &rule.quorum) {
        (Approval::Quorum, Some(q)) => Decision::Pending {
            rule: rule.name.clone(),
            duration_secs: secs,
            clamped,
            approvals: q.approvals,
        },
        // A quorum rule without its terms cannot be loaded; should one appear, nobody decides.
        (Approval::Quorum, None) => deny(format!(
            "rule \"{}\" asks for approval but names no approvers",
            rule.name
        )),
        (Approval::Auto, _) => Decision::Allow {
            rule: rule.name.clone(),
            duration_secs: secs,
            clamped,
        },
    }
}
