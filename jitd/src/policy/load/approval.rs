//! A rule's approval terms (`approval`, `approvers`, `approvals`, `denials`, `request_ttl`)
//! and the policy's `same_person` sets, each wrong value reported where it is written.

use serde::Deserialize;
use toml::Spanned;

use super::diagnostics::{Reporter, Warnings};
use super::rule::RawRule;
use crate::names::{GroupName, UserName};
use crate::policy::window::{self, AutoApprove};
use crate::policy::{Accounts, Approval, Breakglass, Quorum};

/// `auto_approve = { days = ["mon-fri"], hours = "08:00-18:00", time_zone = "Europe/Berlin",
/// per_user_per_day = 3 }` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAutoApprove {
    days: Option<Vec<Spanned<String>>>,
    hours: Spanned<String>,
    time_zone: Spanned<String>,
    per_user_per_day: Option<Spanned<i64>>,
}

/// `same_person` as written: sets of account names, each with its position.
pub(super) type RawSamePerson = Spanned<Vec<Spanned<Vec<Spanned<String>>>>>;

/// How long a request waits for its quorum when the rule does not say.
pub(super) const DEFAULT_REQUEST_TTL_SECS: u64 = 3600;
/// A user may break the glass once in this long unless the rule says otherwise.
const DEFAULT_BREAKGLASS_EVERY_SECS: u64 = 86_400;
/// How soon an approver must review a break-glass grant unless the rule says otherwise.
const DEFAULT_REVIEW_WITHIN_SECS: u64 = 72 * 3600;
/// The longest a request may wait: a week-old question is no longer the same question.
const MAX_REQUEST_TTL_SECS: u64 = 7 * 86_400;

/// The rule's approval mode and, for `quorum`, its terms.
pub(super) fn approval(
    r: &mut Reporter<'_>,
    w: &mut Warnings,
    raw: &RawRule,
    accounts: &dyn Accounts,
) -> (Approval, Option<Quorum>, Option<Breakglass>) {
    // `hook` is a quorum in which the notifier's account (the hook's voice) is an approver
    // without being named; the daemon adds it (`Policy::hook_votes_as`), knowing the account.
    let mode = r.one_of(
        raw.approval.as_ref(),
        &[
            ("auto", Approval::Auto),
            ("quorum", Approval::Quorum),
            ("hook", Approval::Quorum),
        ],
        |other| format!("approval must be \"auto\", \"quorum\" or \"hook\", not {other:?}"),
    );
    let hook_mode = super::hook::hook_mode(raw);
    let breakglass = raw.breakglass.as_ref().is_some_and(|b| *b.get_ref());
    if !breakglass {
        stray(
            r,
            &[
                (
                    "breakglass_every",
                    raw.breakglass_every.as_ref().map(Spanned::span),
                ),
                (
                    "review_within",
                    raw.review_within.as_ref().map(Spanned::span),
                ),
            ],
            "applies only to breakglass = true",
        );
    }
    if mode == Approval::Auto {
        // Terms of a quorum on an automatic rule are a mistake that would look like safety.
        let mut keys = vec![
            ("auto_approve", raw.auto_approve.as_ref().map(Spanned::span)),
            ("approvals", raw.approvals.as_ref().map(Spanned::span)),
            ("denials", raw.denials.as_ref().map(Spanned::span)),
            ("request_ttl", raw.request_ttl.as_ref().map(Spanned::span)),
        ];
        if !breakglass {
            keys.push(("approvers", raw.approvers.as_ref().map(Spanned::span)));
        }
        stray(
            r,
            &keys,
            "applies only to approval = \"quorum\" (this rule approves automatically)",
        );
        if !breakglass {
            return (mode, None, None);
        }
        return (mode, None, Some(breakglass_terms(r, w, raw, accounts)));
    }
    if breakglass && let Some(b) = &raw.breakglass {
        r.at(
            b.span(),
            "a break-glass rule is granted at once: it cannot also ask for a quorum",
        );
    }
    let before = r.out.len();
    let (users, groups, mut possible, countable) = if hook_mode && raw.approvers.is_none() {
        (Vec::new(), Vec::new(), Vec::new(), true)
    } else {
        approvers(r, w, raw, accounts, "approval = \"quorum\"")
    };
    if hook_mode {
        possible.insert(0, "the decision hook".to_string());
    }
    let count =
        |r: &mut Reporter<'_>, field: &Option<Spanned<i64>>, key: &str, default: u32| match field {
            None => default,
            Some(n) => match u32::try_from(*n.get_ref()) {
                Ok(v) if (1..=100).contains(&v) => v,
                _ => {
                    r.at(n.span(), format!("{key} must be between 1 and 100"));
                    default
                }
            },
        };
    let approvals = count(r, &raw.approvals, "approvals", 1);
    let denials = count(r, &raw.denials, "denials", 1);
    if countable
        && r.out.len() == before
        && let Some(n) = &raw.approvals
        && approvals as usize > possible.len()
    {
        r.at(
            n.span(),
            format!(
                "approvals = {approvals} but only {} account(s) can approve ({}): no request could ever be granted",
                possible.len(),
                if possible.is_empty() {
                    "none".to_string()
                } else {
                    possible.join(", ")
                }
            ),
        );
    }
    let request_ttl_secs = span_duration(
        r,
        raw.request_ttl.as_ref(),
        "request_ttl",
        DEFAULT_REQUEST_TTL_SECS,
        MAX_REQUEST_TTL_SECS,
    );
    let auto = raw
        .auto_approve
        .as_ref()
        .and_then(|a| auto_approve(r, a.get_ref()));
    (
        mode,
        Some(Quorum {
            users,
            groups,
            approvals,
            denials,
            request_ttl_secs,
            auto,
        }),
        None,
    )
}

fn auto_approve(r: &mut Reporter<'_>, raw: &RawAutoApprove) -> Option<AutoApprove> {
    let before = r.out.len();
    let days = match &raw.days {
        None => [true; 7],
        Some(items) => {
            let mut days = [false; 7];
            for item in items {
                match window::parse_days(&[item.get_ref().as_str()]) {
                    Ok(d) => {
                        for (on, add) in days.iter_mut().zip(d) {
                            *on |= add;
                        }
                    }
                    Err(e) => r.at(item.span(), format!("auto_approve: {e}")),
                }
            }
            days
        }
    };
    let hours = window::parse_hours(raw.hours.get_ref())
        .map_err(|e| r.at(raw.hours.span(), format!("auto_approve: {e}")))
        .ok();
    let zone = raw.time_zone.get_ref().clone();
    let tz = match jiff::tz::TimeZone::get(&zone) {
        Ok(tz) => Some(tz),
        Err(_) => {
            r.at(
                raw.time_zone.span(),
                format!(
                    "auto_approve: time zone {:?} is not in this host's /usr/share/zoneinfo (write e.g. \"Europe/Berlin\" or \"UTC\")",
                    zone.chars().take(64).collect::<String>()
                ),
            );
            None
        }
    };
    let per_user_per_day = match &raw.per_user_per_day {
        None => None,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if (1..=1000).contains(&v) => Some(v),
            _ => {
                r.at(
                    n.span(),
                    "auto_approve: per_user_per_day must be between 1 and 1000",
                );
                None
            }
        },
    };
    let ((from_min, until_min), tz) = (hours?, tz?);
    (r.out.len() == before).then_some(AutoApprove {
        days,
        from_min,
        until_min,
        zone,
        tz,
        per_user_per_day,
    })
}

/// Reports each key of `keys` that is set, with `why` it does not belong.
fn stray(r: &mut Reporter<'_>, keys: &[(&str, Option<std::ops::Range<usize>>)], why: &str) {
    for (key, span) in keys {
        if let Some(span) = span {
            r.at(span.clone(), format!("{key} {why}"));
        }
    }
}

/// A duration field with its default and ceiling.
fn span_duration(
    r: &mut Reporter<'_>,
    field: Option<&Spanned<String>>,
    key: &str,
    default: u64,
    max: u64,
) -> u64 {
    match field {
        None => default,
        Some(t) => match crate::duration::parse(t.get_ref()) {
            Ok(secs) if secs <= max => secs,
            Ok(_) => {
                r.at(
                    t.span(),
                    format!("{key}: at most {}", crate::duration::format(max)),
                );
                default
            }
            Err(e) => {
                r.at(t.span(), format!("{key}: {e}"));
                default
            }
        },
    }
}

/// `breakglass = true`: who reviews, how often it may be used, how soon it is reviewed.
fn breakglass_terms(
    r: &mut Reporter<'_>,
    w: &mut Warnings,
    raw: &RawRule,
    accounts: &dyn Accounts,
) -> Breakglass {
    if raw.reason_required == Some(false) {
        r.at(
            raw.name.span(),
            "a break-glass rule always requires a reason: remove reason_required = false",
        );
    }
    let (users, groups, _, _) = approvers(r, w, raw, accounts, "breakglass = true (they review)");
    Breakglass {
        reviewers: Quorum {
            users,
            groups,
            approvals: 1,
            denials: 1,
            request_ttl_secs: 0,
            auto: None,
        },
        every_secs: span_duration(
            r,
            raw.breakglass_every.as_ref(),
            "breakglass_every",
            DEFAULT_BREAKGLASS_EVERY_SECS,
            30 * 86_400,
        ),
        review_within_secs: span_duration(
            r,
            raw.review_within.as_ref(),
            "review_within",
            DEFAULT_REVIEW_WITHIN_SECS,
            30 * 86_400,
        ),
    }
}

/// The rule's `approvers`: named users, `%groups`, and (for the count check) who could
/// approve as the group database lists them now, and whether that could be told.
fn approvers(
    r: &mut Reporter<'_>,
    w: &mut Warnings,
    raw: &RawRule,
    accounts: &dyn Accounts,
    needed_by: &str,
) -> (Vec<UserName>, Vec<GroupName>, Vec<String>, bool) {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut possible: Vec<String> = Vec::new();
    let mut countable = true;
    match &raw.approvers {
        None => r.at(
            raw.name.span(),
            format!("{needed_by} needs approvers = [\"user\", \"%group\", ...]"),
        ),
        Some(list) if list.get_ref().is_empty() => r.at(
            list.span(),
            "approvers must name at least one user or %group",
        ),
        Some(list) => {
            for a in list.get_ref() {
                let text = a.get_ref().as_str();
                if let Some(group) = text.strip_prefix('%') {
                    match GroupName::parse(group) {
                        Ok(g) => {
                            if accounts.group_gid(g.as_str()).is_none() {
                                w.push((
                                    a.span(),
                                    format!("approver group {g} does not exist on this host"),
                                ));
                            }
                            match accounts.group_members(g.as_str()) {
                                Some(members) => possible.extend(members),
                                None => countable = false,
                            }
                            groups.push(g);
                        }
                        Err(e) => r.at(a.span(), format!("approver group: {e}")),
                    }
                } else {
                    match UserName::parse(text) {
                        Ok(u) => {
                            if accounts.user_uid(u.as_str()).is_none() {
                                w.push((
                                    a.span(),
                                    format!("approver {u} does not exist on this host"),
                                ));
                            }
                            possible.push(u.to_string());
                            users.push(u);
                        }
                        Err(e) => r.at(
                            a.span(),
                            format!("approver: {e} (write a group as \"%name\")"),
                        ),
                    }
                }
            }
        }
    }
    possible.sort();
    possible.dedup();
    (users, groups, possible, countable)
}

/// `same_person = [["alice", "alice-adm"], ...]`: each set at least two accounts.
pub(super) fn same_person(r: &mut Reporter<'_>, raw: &RawSamePerson) -> Vec<Vec<UserName>> {
    let mut out = Vec::new();
    for set in raw.get_ref() {
        if set.get_ref().len() < 2 {
            r.at(set.span(), "a same_person set names at least two accounts");
            continue;
        }
        let mut names = Vec::new();
        for n in set.get_ref() {
            match UserName::parse(n.get_ref()) {
                Ok(u) => names.push(u),
                Err(e) => r.at(n.span(), e.to_string()),
            }
        }
        out.push(names);
    }
    out
}
