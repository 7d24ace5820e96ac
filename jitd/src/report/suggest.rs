//! Policy suggestions from history: deterministic (no randomness, no clock: the window ends at
//! the newest record), each with an id, its evidence and a ready-to-paste policy change.
//! Suggestions only remove, shorten or narrow; the two that add (an exact argv, an automatic
//! approval) name exact commands, never a wildcard, and none applies itself.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::model::{Facts, Grant};
use super::policy_view::{PolicyView, escalation_capable};
use crate::duration;

mod text;

pub use text::{covers, render_change, to_text, to_toml};

/// Thresholds, each with its default from the issue.
#[derive(Debug, Clone)]
pub struct Thresholds {
    pub window_ms: i64,
    pub auto_approve_min: usize,
    pub shorten_min_grants: usize,
    /// p95 of used time below this share of the maximum (percent).
    pub shorten_below_pct: u64,
    pub narrow_min_grants: usize,
    pub frequent_per_day: usize,
    pub out_of_scope_min: usize,
    pub weak_min_requests: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            window_ms: 90 * 86_400_000,
            auto_approve_min: 10,
            shorten_min_grants: 10,
            shorten_below_pct: 25,
            narrow_min_grants: 5,
            frequent_per_day: 5,
            out_of_scope_min: 3,
            weak_min_requests: 5,
        }
    }
}

/// The change a suggestion proposes, in a form `--apply` can carry out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Change {
    /// Set durations of a rule: (key, value) pairs, in order.
    SetRuleDuration {
        rule: String,
        set: Vec<(String, String)>,
    },
    RemoveRuleUser {
        rule: String,
        user: String,
    },
    RemoveCommand {
        privilege: String,
        command: String,
    },
    AddCommand {
        privilege: String,
        command: String,
    },
    /// A new rule block.
    AddRule {
        toml: String,
    },
    /// Nothing to paste: a human looks.
    Review,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Evidence {
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub samples: Vec<String>,
    pub detail: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Suggestion {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub subject: String,
    pub summary: String,
    pub evidence: Evidence,
    pub window: String,
    pub change: Change,
    /// The change as policy text, ready to paste.
    pub toml: String,
}

fn id_of(kind: &str, subject: &str) -> String {
    let digest = Sha256::digest(format!("{kind}\0{subject}").as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("s-{hex}")
}

/// Nearest-rank percentile of a non-empty sorted slice.
pub fn percentile(sorted: &[i64], pct: usize) -> i64 {
    let n = sorted.len();
    let rank = (pct * n).div_ceil(100).max(1);
    sorted[rank.min(n) - 1]
}

/// Up to 15 minutes, whole minutes; beyond, quarter hours: how people write durations.
pub fn round_up_duration(ms: i64) -> u64 {
    let secs = u64::try_from(ms.max(1)).unwrap_or(1).div_ceil(1000);
    let step = if secs <= 900 { 60 } else { 900 };
    secs.div_ceil(step) * step
}

fn day(ms: i64) -> String {
    crate::clock::utc(ms).get(..10).unwrap_or("").to_string()
}

fn evidence(grants: &[&Grant], detail: String) -> Evidence {
    let first = grants.iter().map(|g| g.allowed_ms).min().unwrap_or(0);
    let last = grants.iter().map(|g| g.allowed_ms).max().unwrap_or(0);
    Evidence {
        count: grants.len() as u64,
        first_seen: day(first),
        last_seen: day(last),
        samples: grants.iter().take(3).map(|g| g.id.clone()).collect(),
        detail,
    }
}

/// Every suggestion for the history in `facts` under `policy`, the window ending at `end_ms`.
pub fn suggest(facts: &Facts, policy: &PolicyView, t: &Thresholds, end_ms: i64) -> Vec<Suggestion> {
    let start_ms = end_ms - t.window_ms;
    let window = format!("{} .. {}", day(start_ms), day(end_ms));
    let grants: Vec<&Grant> = facts
        .all()
        .filter(|g| g.allowed_ms >= start_ms && g.allowed_ms <= end_ms)
        .collect();
    let mut out = Vec::new();
    let mut add = |kind: &'static str,
                   subject: String,
                   summary: String,
                   evidence: Evidence,
                   change: Change| {
        let toml = render_change(&change, policy);
        out.push(Suggestion {
            id: id_of(kind, &subject),
            kind,
            subject,
            summary,
            evidence,
            window: window.clone(),
            change,
            toml,
        });
    };

    // auto-approve-candidate: per (user, privilege), human approvals only.
    let mut pairs: BTreeMap<(&str, &str), Vec<&Grant>> = BTreeMap::new();
    for g in &grants {
        pairs.entry((&g.user, &g.privilege)).or_default().push(g);
    }
    for ((user, privilege), list) in &pairs {
        let human: Vec<&Grant> = list
            .iter()
            .copied()
            .filter(|g| g.approval == "human")
            .collect();
        let denied = facts.denials.iter().any(|d| {
            d.user == *user && d.privilege == *privilege && d.at_ms >= start_ms && d.at_ms <= end_ms
        });
        let alert = list
            .iter()
            .any(|g| g.refusals > 0 || g.approval == "breakglass");
        let Some(p) = policy.privilege(privilege) else {
            continue;
        };
        let risky = p.commands.iter().any(|c| escalation_capable(c)) || p.kind != "sudo";
        if human.len() < t.auto_approve_min || denied || alert || risky {
            continue;
        }
        let mut per_day: BTreeMap<i64, i64> = BTreeMap::new();
        for g in &human {
            *per_day
                .entry(g.allowed_ms.div_euclid(86_400_000))
                .or_default() += 1;
        }
        let mut counts: Vec<i64> = per_day.values().copied().collect();
        counts.sort_unstable();
        let cap = percentile(&counts, 95);
        let rule = policy
            .rules
            .iter()
            .find(|r| r.privileges.iter().any(|x| x == privilege));
        let max = rule.map_or(3600, |r| r.max_secs);
        // The people who approved so far stay the approvers: past the daily cap a request
        // waits for them again (auto_approve on a quorum rule).
        let mut approvers: Vec<&str> = human
            .iter()
            .flat_map(|g| g.approvers.iter().map(String::as_str))
            .collect();
        approvers.sort_unstable();
        approvers.dedup();
        let approvers: Vec<String> = approvers.iter().map(|a| format!("\"{a}\"")).collect();
        let block = format!(
            "[[rule]]\nname = \"auto-{user}-{privilege}\"\nusers = [\"{user}\"]\nprivileges = [\"{privilege}\"]\nmax_duration = \"{}\"\nreason_min_chars = 10\napproval = \"quorum\"\napprovers = [{}]\nauto_approve = {{ hours = \"00:00-24:00\", time_zone = \"UTC\", per_user_per_day = {cap} }}\n",
            duration::format(max),
            approvers.join(", ")
        );
        add(
            "auto-approve-candidate",
            format!("{user}/{privilege}"),
            format!(
                "{} human approvals of {privilege} for {user}, no denial, no alert: approve automatically, at most {cap} a day",
                human.len()
            ),
            evidence(
                &human,
                format!("approvals={} denials=0 p95_per_day={cap}", human.len()),
            ),
            Change::AddRule { toml: block },
        );
    }

    // shorten-max-duration: per rule, over the grants whose use was recorded.
    let mut by_rule: BTreeMap<&str, Vec<&Grant>> = BTreeMap::new();
    for g in &grants {
        if g.used_ms().is_some() {
            by_rule.entry(&g.rule).or_default().push(g);
        }
    }
    for (rule_name, list) in &by_rule {
        let Some(rule) = policy.rule(rule_name) else {
            continue;
        };
        if list.len() < t.shorten_min_grants || rule.max_secs == 0 {
            continue;
        }
        let mut used: Vec<i64> = list.iter().filter_map(|g| g.used_ms()).collect();
        used.sort_unstable();
        let p95 = percentile(&used, 95);
        let max_ms = i64::try_from(rule.max_secs).unwrap_or(i64::MAX) * 1000;
        if p95.saturating_mul(100)
            >= max_ms.saturating_mul(i64::try_from(t.shorten_below_pct).unwrap_or(25))
        {
            continue;
        }
        let new = round_up_duration(p95 * 3 / 2);
        add(
            "shorten-max-duration",
            format!("rule {rule_name}"),
            format!(
                "95% of {} grants under rule {rule_name} were used for at most {}; max_duration is {}: lower it to {}",
                list.len(),
                duration::format(u64::try_from(p95 / 1000).unwrap_or(0)),
                duration::format(rule.max_secs),
                duration::format(new)
            ),
            evidence(
                list,
                format!(
                    "grants={} p95_used_ms={p95} max_secs={}",
                    list.len(),
                    rule.max_secs
                ),
            ),
            Change::SetRuleDuration {
                rule: rule_name.to_string(),
                // A default above the new maximum would not load: it comes down with it.
                set: std::iter::once(("max_duration".to_string(), duration::format(new)))
                    .chain(
                        (rule.default_secs > new)
                            .then(|| ("default_duration".to_string(), duration::format(new))),
                    )
                    .collect(),
            },
        );
    }

    // remove-eligibility: a user named in a rule who asked for none of its privileges.
    // An account that cannot be used now leaves its eligibility to whoever unlocks it.
    for rule in &policy.rules {
        for user in &rule.users {
            if let Some(state) = policy.unusable.get(user) {
                add(
                    "remove-eligibility",
                    format!("{user} in rule {}", rule.name),
                    format!(
                        "{user}'s account is {state}: remove them from rule {}",
                        rule.name
                    ),
                    Evidence {
                        count: 0,
                        first_seen: String::new(),
                        last_seen: String::new(),
                        samples: Vec::new(),
                        detail: format!("account={state}"),
                    },
                    Change::RemoveRuleUser {
                        rule: rule.name.clone(),
                        user: user.clone(),
                    },
                );
            }
        }
    }
    let covered =
        facts.all().map(|g| g.allowed_ms).min().unwrap_or(end_ms) <= start_ms + 86_400_000;
    if covered {
        let denied: BTreeSet<(&str, &str)> = facts
            .denials
            .iter()
            .filter(|d| d.at_ms >= start_ms && d.at_ms <= end_ms)
            .map(|d| (d.user.as_str(), d.privilege.as_str()))
            .collect();
        let mut ever: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for g in facts.all() {
            let at = ever.entry((&g.user, &g.privilege)).or_insert(g.allowed_ms);
            *at = (*at).max(g.allowed_ms);
        }
        for rule in &policy.rules {
            for user in rule
                .users
                .iter()
                .filter(|u| !policy.unusable.contains_key(*u))
            {
                let asked = rule.privileges.iter().any(|p| {
                    pairs.contains_key(&(user.as_str(), p.as_str()))
                        || denied.contains(&(user.as_str(), p.as_str()))
                });
                if asked {
                    continue;
                }
                let last = rule
                    .privileges
                    .iter()
                    .filter_map(|p| ever.get(&(user.as_str(), p.as_str())).copied())
                    .max();
                add(
                    "remove-eligibility",
                    format!("{user} in rule {}", rule.name),
                    format!(
                        "{user} made no request under rule {} in the window: remove them from it",
                        rule.name
                    ),
                    Evidence {
                        count: 0,
                        first_seen: String::new(),
                        last_seen: last.map(day).unwrap_or_else(|| "never".into()),
                        samples: Vec::new(),
                        detail: format!("requests=0 privileges={}", rule.privileges.join(",")),
                    },
                    Change::RemoveRuleUser {
                        rule: rule.name.clone(),
                        user: user.clone(),
                    },
                );
            }
        }
    }

    // narrow-privilege: a command no grantee ran, over enough grants with commands seen.
    if facts.has_commands {
        for p in &policy.privileges {
            let list: Vec<&Grant> = grants
                .iter()
                .copied()
                .filter(|g| g.privilege == p.name)
                .collect();
            if list.len() < t.narrow_min_grants || p.commands.len() < 2 {
                continue;
            }
            let ran: BTreeSet<&str> = list
                .iter()
                .flat_map(|g| g.argvs.iter().map(String::as_str))
                .collect();
            for command in &p.commands {
                let used = ran.iter().any(|argv| covers(command, argv));
                if !used {
                    add(
                        "narrow-privilege",
                        format!("{} {command}", p.name),
                        format!(
                            "no one ran `{command}` under {} in {} grants: remove it from the privilege",
                            p.name,
                            list.len()
                        ),
                        evidence(&list, format!("grants={} runs_of_command=0", list.len())),
                        Change::RemoveCommand {
                            privilege: p.name.clone(),
                            command: command.clone(),
                        },
                    );
                }
            }
        }
    }

    // too-frequent: grants of one privilege to one user within 24 hours.
    for ((user, privilege), list) in &pairs {
        let mut times: Vec<i64> = list.iter().map(|g| g.allowed_ms).collect();
        times.sort_unstable();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] - times[lo] >= 86_400_000 {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        if best < t.frequent_per_day {
            continue;
        }
        let rule = list.first().and_then(|g| policy.rule(&g.rule));
        let (rule_name, new_default) = rule.map_or((String::new(), 0), |r| {
            (r.name.clone(), (r.default_secs * 2).min(r.max_secs))
        });
        add(
            "too-frequent",
            format!("{user}/{privilege}"),
            format!(
                "{user} was granted {privilege} {best} times within 24 hours: a longer default duration would do, or review why"
            ),
            evidence(list, format!("max_in_24h={best}")),
            Change::SetRuleDuration {
                rule: rule_name,
                set: vec![("default_duration".into(), duration::format(new_default))],
            },
        );
    }

    // out-of-scope-attempts: the same argv refused under live grants.
    let mut refused: BTreeMap<(&str, &str), Vec<&super::model::Refusal>> = BTreeMap::new();
    for r in &facts.refusals {
        if r.at_ms >= start_ms && r.at_ms <= end_ms {
            refused.entry((&r.privilege, &r.argv)).or_default().push(r);
        }
    }
    for ((privilege, argv), list) in &refused {
        if list.len() < t.out_of_scope_min {
            continue;
        }
        let users: BTreeSet<&str> = list.iter().map(|r| r.user.as_str()).collect();
        let ev = Evidence {
            count: list.len() as u64,
            first_seen: day(list.iter().map(|r| r.at_ms).min().unwrap_or(0)),
            last_seen: day(list.iter().map(|r| r.at_ms).max().unwrap_or(0)),
            samples: list.iter().take(3).map(|r| r.grant.clone()).collect(),
            detail: format!("users={}", users.into_iter().collect::<Vec<_>>().join(",")),
        };
        let (summary, change) = if escalation_capable(argv) {
            (
                format!(
                    "`{argv}` was refused {} times under {privilege}; it runs a program that can escalate: review, do not add",
                    list.len()
                ),
                Change::Review,
            )
        } else {
            (
                format!(
                    "`{argv}` was refused {} times under {privilege}: add this exact command, or review",
                    list.len()
                ),
                Change::AddCommand {
                    privilege: privilege.to_string(),
                    command: argv.to_string(),
                },
            )
        };
        add(
            "out-of-scope-attempts",
            format!("{privilege} {argv}"),
            summary,
            ev,
            change,
        );
    }

    // weak-justification: per user, reasons repeated or barely above the minimum.
    let mut reasons: BTreeMap<&str, Vec<&Grant>> = BTreeMap::new();
    for g in &grants {
        reasons.entry(&g.user).or_default().push(g);
    }
    for (user, list) in &reasons {
        if list.len() < t.weak_min_requests {
            continue;
        }
        let mut same: BTreeMap<&str, usize> = BTreeMap::new();
        let mut short = 0;
        for g in list {
            *same.entry(&g.reason).or_default() += 1;
            let min = policy.rule(&g.rule).map_or(0, |r| r.reason_min_chars);
            if (g.reason.chars().count() as u64) < min + 5 {
                short += 1;
            }
        }
        let (top, top_n) = same
            .iter()
            .max_by_key(|(r, n)| (**n, std::cmp::Reverse(**r)))
            .map_or(("", 0), |(r, n)| (*r, *n));
        if top_n * 2 < list.len() && short * 2 < list.len() {
            continue;
        }
        add(
            "weak-justification",
            user.to_string(),
            format!(
                "{top_n} of {} reasons {user} gave are the same (\"{top}\"), {short} barely above the minimum: ask for the change or ticket",
                list.len()
            ),
            evidence(
                list,
                format!("requests={} identical={top_n} short={short}", list.len()),
            ),
            Change::Review,
        );
    }
    out.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
    out
}
