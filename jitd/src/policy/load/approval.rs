//! A rule's approval terms (`approval`, `approvers`, `approvals`, `denials`, `request_ttl`)
//! and the policy's `same_person` sets, each wrong value reported where it is written.

use toml::Spanned;

use super::diagnostics::{Reporter, Warnings};
use super::rule::RawRule;
use crate::names::{GroupName, UserName};
use crate::policy::{Accounts, Approval, Quorum};

/// `same_person` as written: sets of account names, each with its position.
pub(super) type RawSamePerson = Spanned<Vec<Spanned<Vec<Spanned<String>>>>>;

/// How long a request waits for its quorum when the rule does not say.
pub(super) const DEFAULT_REQUEST_TTL_SECS: u64 = 3600;
/// The longest a request may wait: a week-old question is no longer the same question.
const MAX_REQUEST_TTL_SECS: u64 = 7 * 86_400;

/// The rule's approval mode and, for `quorum`, its terms.
pub(super) fn approval(
    r: &mut Reporter<'_>,
    w: &mut Warnings,
    raw: &RawRule,
    accounts: &dyn Accounts,
) -> (Approval, Option<Quorum>) {
    let mode = r.one_of(
        raw.approval.as_ref(),
        &[("auto", Approval::Auto), ("quorum", Approval::Quorum)],
        |other| format!("approval must be \"auto\" or \"quorum\", not {other:?}"),
    );
    if mode == Approval::Auto {
        // Terms of a quorum on an automatic rule are a mistake that would look like safety.
        let stray: [(&str, Option<std::ops::Range<usize>>); 4] = [
            ("approvers", raw.approvers.as_ref().map(Spanned::span)),
            ("approvals", raw.approvals.as_ref().map(Spanned::span)),
            ("denials", raw.denials.as_ref().map(Spanned::span)),
            ("request_ttl", raw.request_ttl.as_ref().map(Spanned::span)),
        ];
        for (key, span) in stray {
            if let Some(span) = span {
                r.at(
                    span,
                    format!("{key} applies only to approval = \"quorum\" (this rule approves automatically)"),
                );
            }
        }
        return (mode, None);
    }
    let before = r.out.len();
    let mut users = Vec::new();
    let mut groups = Vec::new();
    // Who could approve as the group database lists them now (for the count check only).
    let mut possible: Vec<String> = Vec::new();
    let mut countable = true;
    match &raw.approvers {
        None => r.at(
            raw.name.span(),
            "approval = \"quorum\" needs approvers = [\"user\", \"%group\", ...]",
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
                if possible.is_empty() { "none".to_string() } else { possible.join(", ") }
            ),
        );
    }
    let request_ttl_secs = match &raw.request_ttl {
        None => DEFAULT_REQUEST_TTL_SECS,
        Some(t) => match crate::duration::parse(t.get_ref()) {
            Ok(secs) if secs <= MAX_REQUEST_TTL_SECS => secs,
            Ok(_) => {
                r.at(t.span(), "request_ttl: at most 7d");
                DEFAULT_REQUEST_TTL_SECS
            }
            Err(e) => {
                r.at(t.span(), format!("request_ttl: {e}"));
                DEFAULT_REQUEST_TTL_SECS
            }
        },
    };
    (
        mode,
        Some(Quorum {
            users,
            groups,
            approvals,
            denials,
            request_ttl_secs,
        }),
    )
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
