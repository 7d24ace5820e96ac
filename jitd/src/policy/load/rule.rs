//! One `[[rule]]`: who may request which privileges, for how long, on what conditions.

use std::collections::BTreeSet;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::diagnostics::{Reporter, Warnings, did_you_mean};
use crate::names::{GroupName, UserName};
use crate::policy::{Accounts, OverMax, Policy, Rule};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) name: Spanned<String>,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    privileges: Spanned<Vec<Spanned<String>>>,
    pub(super) max_duration: Spanned<String>,
    default_duration: Option<Spanned<String>>,
    over_max: Option<Spanned<String>>,
    pub(super) reason_required: Option<bool>,
    reason_min_chars: Option<Spanned<i64>>,
    ticket_pattern: Option<Spanned<String>>,
    pub(super) approval: Option<Spanned<String>>,
    pub(super) approvers: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) approvals: Option<Spanned<i64>>,
    pub(super) denials: Option<Spanned<i64>>,
    pub(super) request_ttl: Option<Spanned<String>>,
    pub(super) breakglass: Option<Spanned<bool>>,
    pub(super) auto_approve: Option<Spanned<super::approval::RawAutoApprove>>,
    pub(super) breakglass_every: Option<Spanned<String>>,
    pub(super) review_within: Option<Spanned<String>>,
    max_active: Option<Spanned<i64>>,
    max_active_rule: Option<Spanned<i64>>,
    interactive: Option<bool>,
    reauth: Option<bool>,
    mfa: Option<Spanned<String>>,
    pub(super) escalate_after: Option<Spanned<String>>,
    pub(super) escalate_to: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) hook: Option<Spanned<String>>,
}

pub(super) fn rule(
    r: &mut Reporter<'_>,
    w: &mut Warnings,
    raw: &RawRule,
    policy: &Policy,
    broken: &BTreeSet<String>,
    accounts: &dyn Accounts,
) -> Option<Rule> {
    let before = r.out.len();
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        r.at(
            raw.name.span(),
            "a rule name is 1 to 128 printable characters",
        );
    }
    let mut users = Vec::new();
    for u in &raw.users {
        match UserName::parse(u.get_ref()) {
            Ok(user) => {
                if accounts.user_uid(user.as_str()).is_none() {
                    w.push((
                        u.span(),
                        format!(
                            "user {user} does not exist on this host: the rule matches nobody \
                             by that name (a typo?)"
                        ),
                    ));
                }
                users.push(user);
            }
            Err(e) => r.at(u.span(), e.to_string()),
        }
    }
    let mut groups = Vec::new();
    for g in &raw.groups {
        match GroupName::parse(g.get_ref()) {
            Ok(group) => {
                if accounts.group_gid(group.as_str()).is_none() {
                    w.push((
                        g.span(),
                        format!(
                            "group {group} does not exist on this host: the rule matches \
                             nobody through it (a typo?)"
                        ),
                    ));
                }
                groups.push(group);
            }
            Err(e) => r.at(g.span(), e.to_string()),
        }
    }
    if raw.users.is_empty() && raw.groups.is_empty() {
        r.at(
            raw.name.span(),
            format!("rule \"{name}\" names no users and no groups"),
        );
    }
    let mut privileges = Vec::new();
    if raw.privileges.get_ref().is_empty() {
        r.at(raw.privileges.span(), "privileges must not be empty");
    }
    for p in raw.privileges.get_ref() {
        match policy.privilege(p.get_ref()) {
            Some(found) => privileges.push(found.name.clone()),
            // Its own error is reported where it is defined; saying it again here would be
            // the same mistake twice.
            None if broken.contains(p.get_ref()) => {}
            None => {
                let known: Vec<&str> = policy
                    .privileges()
                    .map(|p| p.name.as_str())
                    .chain(broken.iter().map(String::as_str))
                    .collect();
                let hint = match did_you_mean(p.get_ref(), &known) {
                    Some(s) => format!("; did you mean {s:?}?"),
                    None if known.is_empty() => "; no privilege is defined".into(),
                    None => format!("; defined: {}", known.join(", ")),
                };
                r.at(
                    p.span(),
                    format!("no privilege named {:?}{hint}", p.get_ref()),
                );
            }
        }
    }
    let duration =
        |r: &mut Reporter<'_>, s: &Spanned<String>, field: &str| match crate::duration::parse(
            s.get_ref(),
        ) {
            Ok(secs) => Some(secs),
            Err(e) => {
                r.at(s.span(), format!("{field}: {e}"));
                None
            }
        };
    let max_secs = duration(r, &raw.max_duration, "max_duration");
    let default_secs = match &raw.default_duration {
        Some(d) => {
            let secs = duration(r, d, "default_duration");
            if let (Some(def), Some(max)) = (secs, max_secs)
                && def > max
            {
                r.at(d.span(), "default_duration is longer than max_duration");
            }
            secs
        }
        None => max_secs.map(|m| m.min(15 * 60)),
    };
    let over_max = r.one_of(
        raw.over_max.as_ref(),
        &[("refuse", OverMax::Refuse), ("clamp", OverMax::Clamp)],
        |other| format!("over_max must be \"refuse\" or \"clamp\", not {other:?}"),
    );
    let reason_required = raw.reason_required.unwrap_or(true);
    if let (false, Some(n)) = (reason_required, &raw.reason_min_chars)
        && *n.get_ref() > 0
    {
        w.push((
            n.span(),
            "reason_min_chars has no effect with reason_required = false: a request without \
             a reason is granted; remove one of the two"
                .into(),
        ));
    }
    let reason_min_chars = match &raw.reason_min_chars {
        None => {
            if reason_required {
                10
            } else {
                0
            }
        }
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if v <= 1024 => v,
            _ => {
                r.at(n.span(), "reason_min_chars must be between 0 and 1024");
                0
            }
        },
    };
    let (ticket_pattern, ticket_pattern_text) = match &raw.ticket_pattern {
        None => (None, None),
        Some(t) if t.get_ref().len() > 256 => {
            r.at(t.span(), "ticket_pattern is longer than 256 characters");
            (None, None)
        }
        Some(t) => match Regex::new(&format!("^(?:{})$", t.get_ref())) {
            Ok(re) => (Some(re), Some(t.get_ref().clone())),
            Err(e) => {
                let text = e.to_string();
                let last = text.lines().last().unwrap_or("").trim();
                let first = last.strip_prefix("error: ").unwrap_or(last).to_string();
                r.at(
                    t.span(),
                    format!("ticket_pattern is not a valid regular expression: {first}"),
                );
                (None, None)
            }
        },
    };
    let (approval, quorum, breakglass) = super::approval::approval(r, w, raw, accounts);
    let escalation = super::escalation::escalation(r, raw, quorum.is_some());
    let hook = super::hook::hook(r, raw, quorum.is_some());
    if let (Some(_), Some(max)) = (&breakglass, max_secs)
        && max > crate::policy::BREAKGLASS_MAX_SECS
    {
        r.at(
            raw.max_duration.span(),
            "a break-glass rule's max_duration is at most 1h",
        );
    }
    let max_active = match &raw.max_active {
        None => 1,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if (1..=1000).contains(&v) => {
                if v > 1 {
                    w.push((
                        n.span(),
                        format!(
                            "max_active counts the live grants of each privilege, and a \
                             privilege is held once at a time, so {v} allows no more than 1; \
                             for a budget shared by the rule's privileges write \
                             max_active_rule = {v}"
                        ),
                    ));
                }
                v
            }
            _ => {
                r.at(n.span(), "max_active must be between 1 and 1000");
                1
            }
        },
    };
    // `mfa = "ssh-sk"`: a signature by the requester's own key over a nonce of jitd's.
    let mfa = match &raw.mfa {
        None => false,
        Some(m) if m.get_ref() == "ssh-sk" => true,
        Some(m) => {
            r.at(
                m.span(),
                format!(
                    "mfa is \"ssh-sk\" (the requester signs jitd's nonce with a key from \
                     users.allowed_signers), not \"{}\"",
                    m.get_ref()
                ),
            );
            false
        }
    };
    let max_active_rule = match &raw.max_active_rule {
        None => None,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if (1..=1000).contains(&v) => Some(v),
            _ => {
                r.at(n.span(), "max_active_rule must be between 1 and 1000");
                None
            }
        },
    };
    if r.out.len() > before {
        return None;
    }
    Some(Rule {
        name,
        users,
        groups,
        privileges,
        default_secs: default_secs?,
        max_secs: max_secs?,
        over_max,
        reason_required,
        reason_min_chars,
        ticket_pattern,
        ticket_pattern_text,
        approval,
        quorum,
        breakglass,
        max_active,
        max_active_rule,
        interactive: raw.interactive.unwrap_or(false),
        reauth: raw.reauth.unwrap_or(false),
        mfa,
        escalation,
        hook_votes: super::hook::hook_mode(raw),
        hook,
    })
}
