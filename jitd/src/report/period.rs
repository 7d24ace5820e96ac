//! The access report's figures: every section computed from the facts, the policy and the
//! period, with the rows behind each count (auditors sample). No clock is read: the same input
//! gives the same report.

use std::collections::{BTreeMap, BTreeSet};

use super::input::{Chain, HostSummary, days_from_civil};
use super::model::Facts;
use super::policy_view::PolicyView;
use super::suggest::{Suggestion, percentile};

/// A period: `[start, end)` in ms, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub name: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Period {
    /// `2026Q4`, or a year-month-day for `--since` (the end is then `until_ms`).
    pub fn parse(text: &str, until_ms: i64) -> Result<Self, String> {
        if let Some((y, q)) = text.split_once(['Q', 'q']) {
            let year: i64 = y
                .parse()
                .map_err(|_| format!("{text:?}: the year is not a number"))?;
            let q: i64 = q
                .parse()
                .ok()
                .filter(|q| (1..=4).contains(q))
                .ok_or(format!("{text:?}: the quarter is 1 to 4"))?;
            let start = days_from_civil(year, 3 * q - 2, 1) * 86_400_000;
            let end = if q == 4 {
                days_from_civil(year + 1, 1, 1)
            } else {
                days_from_civil(year, 3 * q + 1, 1)
            } * 86_400_000;
            return Ok(Self {
                name: format!("{year}Q{q}"),
                start_ms: start,
                end_ms: end,
            });
        }
        let parts: Vec<i64> = text.split('-').filter_map(|p| p.parse().ok()).collect();
        match parts.as_slice() {
            [y, m, d] if text.len() == 10 && (1..=12).contains(m) && (1..=31).contains(d) => {
                let start = days_from_civil(*y, *m, *d) * 86_400_000;
                Ok(Self {
                    name: format!("since {text}"),
                    start_ms: start,
                    end_ms: until_ms.max(start) + 1,
                })
            }
            _ => Err(format!(
                "{text:?} is not a period: write 2026Q4 or a date like 2026-10-01"
            )),
        }
    }

    pub fn contains(&self, ms: i64) -> bool {
        ms >= self.start_ms && ms < self.end_ms
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GrantRow {
    pub host: String,
    pub grant: String,
    pub user: String,
    pub privilege: String,
    pub rule: String,
    pub reason: String,
    pub ticket: String,
    pub requested: String,
    pub granted_secs: u64,
    pub used_secs: Option<i64>,
    pub approval: String,
    pub approvers: String,
    pub approval_latency_secs: Option<i64>,
    pub commands: u32,
    pub refusals: u32,
    pub ended: String,
    pub late_ms: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub host: String,
    pub time: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EligibilityRow {
    pub user: String,
    pub rule: String,
    pub privilege: String,
    pub last_use: String,
    pub recommendation: String,
}

/// Figures of a list of milliseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Spread {
    pub count: usize,
    pub max: i64,
    pub p50: i64,
    pub p99: i64,
}

impl Spread {
    pub fn of(values: &[i64]) -> Option<Self> {
        let mut v = values.to_vec();
        v.sort_unstable();
        let max = *v.last()?;
        Some(Self {
            count: v.len(),
            max,
            p50: percentile(&v, 50),
            p99: percentile(&v, 99),
        })
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub period: String,
    pub start: String,
    pub end: String,
    pub hosts: Vec<String>,
    pub population: Vec<GrantRow>,
    pub denials: usize,
    pub commands: Option<u64>,
    pub refusals: Option<u64>,
    pub sessions: u64,
    pub ended: BTreeMap<String, u64>,
    pub lateness_ms: Option<Spread>,
    pub remove_failures: u64,
    pub repairs: u64,
    pub recalls: u64,
    pub breakglass: Vec<Row>,
    pub exceptions: Vec<Row>,
    pub eligibility: Vec<EligibilityRow>,
    pub policy_changes: Vec<Row>,
    pub integrity: Vec<Row>,
    pub approval_latency_ms: Option<Spread>,
    pub notify_delay_ms: Option<Spread>,
    pub escalation_delay_ms: Option<Spread>,
    pub suggestions: Vec<Suggestion>,
}

pub fn utc(ms: i64) -> String {
    crate::clock::utc(ms)
}

/// Computes the report.
pub fn build(
    facts: &Facts,
    hosts: &[HostSummary],
    policy: &PolicyView,
    period: &Period,
    suggestions: Vec<Suggestion>,
) -> Report {
    let grants: Vec<_> = facts
        .all()
        .filter(|g| period.contains(g.allowed_ms))
        .collect();
    let population = grants
        .iter()
        .map(|g| GrantRow {
            host: g.host.clone(),
            grant: g.id.clone(),
            user: g.user.clone(),
            privilege: g.privilege.clone(),
            rule: g.rule.clone(),
            reason: g.reason.clone(),
            ticket: g.ticket.clone(),
            requested: utc(g.requested_ms),
            granted_secs: g.granted_secs,
            used_secs: g.used_ms().map(|ms| ms / 1000),
            approval: g.approval.clone(),
            approvers: g.approvers.join(","),
            approval_latency_secs: (g.approval == "human")
                .then(|| (g.allowed_ms - g.requested_ms) / 1000),
            commands: g.commands,
            refusals: g.refusals,
            ended: g.end.clone(),
            late_ms: g.late_ms,
        })
        .collect();
    let mut ended = BTreeMap::new();
    for g in &grants {
        let end = if g.end.is_empty() {
            "live or unknown"
        } else {
            g.end.as_str()
        };
        *ended.entry(end.to_string()).or_default() += 1;
    }
    let late: Vec<i64> = grants.iter().filter_map(|g| g.late_ms).collect();
    let row = |e: &super::model::Exception| Row {
        host: e.host.clone(),
        time: utc(e.at_ms),
        kind: e.kind.clone(),
        detail: e.detail.clone(),
    };
    let breakglass = grants
        .iter()
        .filter(|g| g.approval == "breakglass")
        .map(|g| Row {
            host: g.host.clone(),
            time: utc(g.allowed_ms),
            kind: format!("{} {} {}", g.id, g.user, g.privilege),
            detail: g.review.clone().unwrap_or_else(|| "NOT REVIEWED".into()),
        })
        .collect();
    let exceptions = facts
        .exceptions
        .iter()
        .filter(|e| period.contains(e.at_ms))
        .map(row)
        .collect();
    let policy_changes = facts
        .policy_loads
        .iter()
        .filter(|e| period.contains(e.at_ms))
        .map(row)
        .collect();
    let integrity = hosts
        .iter()
        .map(|h| Row {
            host: h.host.clone(),
            time: format!("{} .. {}", utc(h.first_ms), utc(h.last_ms)),
            kind: match &h.chain {
                Chain::Verified { .. } => "verified".into(),
                Chain::Broken(_) => "BROKEN".into(),
                Chain::NotCarried => "not carried by the export".into(),
            },
            detail: match &h.chain {
                Chain::Verified {
                    records,
                    first_hash,
                    last_hash,
                } => format!("{records} records, first {first_hash}, last {last_hash}"),
                Chain::Broken(why) => why.clone(),
                Chain::NotCarried => format!("{} records, {} unreadable", h.records, h.unreadable),
            },
        })
        .collect();
    // Eligibility at the period's end, from the rules' users (groups are resolved on the host).
    let mut eligibility = Vec::new();
    let mut seen = BTreeSet::new();
    let mut last_use: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for g in facts.all().filter(|g| g.allowed_ms < period.end_ms) {
        let at = last_use
            .entry((&g.user, &g.privilege))
            .or_insert(g.allowed_ms);
        *at = (*at).max(g.allowed_ms);
    }
    for rule in &policy.rules {
        let principals: Vec<String> = rule
            .users
            .iter()
            .cloned()
            .chain(rule.groups.iter().map(|g| format!("group:{g}")))
            .collect();
        for user in principals {
            for privilege in &rule.privileges {
                if !seen.insert((user.clone(), privilege.clone())) {
                    continue;
                }
                let last = last_use.get(&(user.as_str(), privilege.as_str())).copied();
                let idle = last.map(|l| period.end_ms - l);
                let recommendation = match idle {
                    _ if user.starts_with("group:") => "review the group's members",
                    None => "remove: never used",
                    Some(ms) if ms > 90 * 86_400_000 => "remove: unused for 90 days",
                    Some(ms) if ms > 30 * 86_400_000 => "review: unused for 30 days",
                    Some(_) => "keep",
                };
                eligibility.push(EligibilityRow {
                    user: user.clone(),
                    rule: rule.name.clone(),
                    privilege: privilege.clone(),
                    last_use: last.map(utc).unwrap_or_else(|| "never".into()),
                    recommendation: recommendation.into(),
                });
            }
        }
    }
    Report {
        period: period.name.clone(),
        start: utc(period.start_ms),
        end: utc(period.end_ms),
        hosts: hosts.iter().map(|h| h.host.clone()).collect(),
        population,
        denials: facts
            .denials
            .iter()
            .filter(|d| period.contains(d.at_ms))
            .count(),
        commands: facts
            .has_commands
            .then(|| grants.iter().map(|g| u64::from(g.commands)).sum()),
        refusals: facts
            .has_commands
            .then(|| grants.iter().map(|g| u64::from(g.refusals)).sum()),
        sessions: grants.iter().map(|g| u64::from(g.sessions)).sum(),
        ended,
        lateness_ms: Spread::of(&late),
        remove_failures: grants.iter().map(|g| u64::from(g.remove_failed)).sum(),
        repairs: grants.iter().map(|g| u64::from(g.repaired)).sum(),
        recalls: grants.iter().filter(|g| g.recalled).count() as u64,
        breakglass,
        exceptions,
        eligibility,
        policy_changes,
        integrity,
        approval_latency_ms: Spread::of(
            &grants
                .iter()
                .filter(|g| g.approval == "human" && g.requested_ms < g.allowed_ms)
                .map(|g| g.allowed_ms - g.requested_ms)
                .collect::<Vec<_>>(),
        ),
        notify_delay_ms: Spread::of(&facts.notify_delay_ms),
        escalation_delay_ms: Spread::of(&facts.escalation_delay_ms),
        suggestions,
    }
}

/// Where each control's evidence is, for the header.
pub const CONTROLS: &[(&str, &str)] = &[
    ("SOC 2 CC6.1", "1 Population, 5 Eligibility"),
    (
        "SOC 2 CC6.2",
        "1 Population (approval, approvers), 4 Exceptions",
    ),
    ("SOC 2 CC6.3", "3 Revocation, 5 Eligibility"),
    (
        "ISO 27001 A.5.18",
        "1 Population (ticket), 5 Eligibility, 6 Policy changes",
    ),
    ("ISO 27001 A.8.2", "1 Population, 2 Use, 3 Revocation"),
    ("PCI DSS 7.2.4", "5 Eligibility (review), 9 Suggestions"),
    ("PCI DSS 10.2", "2 Use, 7 Integrity"),
];
