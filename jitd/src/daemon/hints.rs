//! The one-line texts that tell a person what to do next. Kept apart from the decisions so the
//! wording can change without touching what is decided.

#![forbid(unsafe_code)]

use crate::clock::utc;
use crate::grant::GrantRecord;
use crate::policy::{Accounts, Policy, Requester};

/// What a refused PAM check shows: what the user could ask for, and how.
pub fn refusal(
    policy: &Policy,
    accounts: &dyn Accounts,
    hostname: &str,
    uid: u32,
    service: &str,
) -> String {
    let Some(name) = accounts.user_name(uid) else {
        return format!("no active elevation for uid {uid} on {hostname}");
    };
    let who = Requester {
        uid,
        groups: accounts.user_groups(&name),
        name: name.clone(),
    };
    let eligible: Vec<String> = policy
        .privileges()
        .filter(|p| p.pam_services.iter().any(|s| s == service))
        .filter(|p| policy.explain(&who, p.name.as_str()).allowed)
        .map(|p| p.name.to_string())
        .collect();
    match eligible.first() {
        Some(first) => format!(
            "no active elevation for {name} on {hostname}: run `{}`{}",
            elevate_line(policy, &who, first),
            if eligible.len() > 1 {
                format!(" (also eligible: {})", eligible[1..].join(", "))
            } else {
                String::new()
            }
        ),
        None => format!(
            "no active elevation for {name} on {hostname}, and no privilege you may request covers {service}"
        ),
    }
}

/// The `jitctl elevate` line that works when pasted: the rule's own default duration (never
/// above its maximum), and the reason and ticket options only when the rule wants them.
fn elevate_line(policy: &Policy, who: &Requester, privilege: &str) -> String {
    let e = policy.explain(who, privilege);
    let mut line = format!(
        "jitctl elevate {privilege} --for {}",
        crate::duration::format(e.default_secs.min(e.max_secs))
    );
    if e.reason_required {
        line.push_str(" --reason \"...\"");
    }
    if e.ticket_pattern.is_some() {
        line.push_str(" --ticket ID");
    }
    line
}

/// The answer to a request that was granted.
pub fn granted(g: &GrantRecord, secs: u64) -> String {
    format!(
        "granted {} until {} ({})",
        g.privilege,
        utc(g.expires_ms),
        crate::duration::format(secs)
    )
}

/// Why a grant could not be recorded, for the requester.
pub fn not_recorded(busy: bool, error: &dyn std::fmt::Display) -> String {
    if busy {
        "the state database is locked by another process; try again in a moment".into()
    } else {
        format!("cannot record the grant ({error}); nothing was changed")
    }
}

/// The end reason of a grant ended by someone other than its owner.
pub fn revoked_by(by: &str, reason: &str) -> String {
    if reason.is_empty() {
        format!("revoked by {by}")
    } else {
        format!("revoked by {by}: {reason}")
    }
}

/// What a caller who is not an admin is told.
pub fn not_admin(what: &str, admin_group: &str) -> String {
    format!(
        "{what} needs root, membership of {admin_group} or a polkit rule granting {}",
        crate::polkit::MANAGE
    )
}

/// How a grant its owner gave back ended, with the owner's reason when they gave one.
pub fn dropped_by_owner(reason: &str) -> String {
    if reason.trim().is_empty() {
        "dropped by owner".to_string()
    } else {
        format!("dropped by owner: {}", reason.trim())
    }
}
