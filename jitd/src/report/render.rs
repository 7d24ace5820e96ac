//! The report as text, JSON and CSV. Sections without data say "no data" rather than zero.

use std::fmt::Write as _;

use super::period::{CONTROLS, Report, Spread};
use super::suggest;

fn spread(s: Option<&Spread>, unit_ms: bool) -> String {
    match s {
        None => "no data".into(),
        Some(s) if unit_ms => format!(
            "{} values, median {} ms, p99 {} ms, max {} ms",
            s.count, s.p50, s.p99, s.max
        ),
        Some(s) => format!(
            "{} values, median {} s, p99 {} s, max {} s",
            s.count,
            s.p50 / 1000,
            s.p99 / 1000,
            s.max / 1000
        ),
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "jitd access report {} ({} .. {})",
        r.period, r.start, r.end
    );
    let _ = writeln!(o, "hosts: {}", r.hosts.join(", "));
    let _ = writeln!(o, "\nControl mapping:");
    for (control, where_) in CONTROLS {
        let _ = writeln!(o, "  {control:<18} -> {where_}");
    }
    let _ = writeln!(
        o,
        "\n1 Population: {} grants, {} denied requests",
        r.population.len(),
        r.denials
    );
    let _ = writeln!(
        o,
        "  {:<8} {:<18} {:<8} {:<14} {:<9} {:<10} {:>8} {:>6} {:<10} reason",
        "host", "grant", "user", "privilege", "ticket", "approval", "granted", "used", "approvers",
    );
    for g in &r.population {
        let _ = writeln!(
            o,
            "  {:<8} {:<18} {:<8} {:<14} {:<9} {:<10} {:>7}s {:>5}s {:<10} {}",
            g.host,
            g.grant,
            g.user,
            g.privilege,
            if g.ticket.is_empty() { "-" } else { &g.ticket },
            g.approval,
            g.granted_secs,
            opt(g.used_secs),
            if g.approvers.is_empty() {
                "-"
            } else {
                &g.approvers
            },
            g.reason
        );
    }
    let _ = writeln!(
        o,
        "\n2 Use: {} commands, {} refused commands under grants, {} sessions",
        r.commands.map_or("no data".into(), |n| n.to_string()),
        r.refusals.map_or("no data".into(), |n| n.to_string()),
        r.sessions
    );
    let _ = writeln!(o, "\n3 Revocation:");
    for (end, n) in &r.ended {
        let _ = writeln!(o, "  {end}: {n}");
    }
    let _ = writeln!(
        o,
        "  lateness after the deadline (daemon clock): {}",
        spread(r.lateness_ms.as_ref(), true)
    );
    let _ = writeln!(
        o,
        "  remove failures: {}, repairs: {}, recalls: {}",
        r.remove_failures, r.repairs, r.recalls
    );
    let _ = writeln!(o, "\n4 Exceptions:");
    let _ = writeln!(
        o,
        "  break-glass: {}",
        if r.breakglass.is_empty() {
            "none".to_string()
        } else {
            r.breakglass.len().to_string()
        }
    );
    for b in &r.breakglass {
        let _ = writeln!(
            o,
            "    {} {} {} review: {}",
            b.host, b.time, b.kind, b.detail
        );
    }
    if r.exceptions.is_empty() {
        let _ = writeln!(o, "  no other exceptions");
    }
    for e in &r.exceptions {
        let _ = writeln!(o, "  {} {} {} {}", e.host, e.time, e.kind, e.detail);
    }
    let _ = writeln!(o, "\n5 Eligibility at the period's end:");
    for e in &r.eligibility {
        let _ = writeln!(
            o,
            "  {:<10} {:<10} {:<14} last use {:<21} {}",
            e.user, e.rule, e.privilege, e.last_use, e.recommendation
        );
    }
    let _ = writeln!(
        o,
        "\n6 Policy changes (jitd cannot know who edited a file: see config management; file hashes: no data):"
    );
    for p in &r.policy_changes {
        let _ = writeln!(o, "  {} {} {}", p.host, p.time, p.detail);
    }
    let _ = writeln!(o, "\n7 Integrity:");
    for i in &r.integrity {
        let _ = writeln!(o, "  {} {}: {} ({})", i.host, i.time, i.kind, i.detail);
    }
    let _ = writeln!(o, "\n8 Approval, notification and escalation delays:");
    let _ = writeln!(
        o,
        "  approval latency: {}",
        spread(r.approval_latency_ms.as_ref(), false)
    );
    let _ = writeln!(
        o,
        "  notification delay: {}",
        spread(r.notify_delay_ms.as_ref(), true)
    );
    let _ = writeln!(
        o,
        "  escalation delay: {}",
        spread(r.escalation_delay_ms.as_ref(), true)
    );
    let _ = writeln!(o, "\n9 Suggestions ({}):", r.suggestions.len());
    for s in &r.suggestions {
        let _ = writeln!(o, "  {} {}: {}", s.id, s.kind, s.summary);
    }
    o
}

#[derive(serde::Serialize)]
struct Doc<'a> {
    schema: &'static str,
    controls: &'static [(&'static str, &'static str)],
    #[serde(flatten)]
    report: &'a Report,
}

/// The report as one JSON document, written straight from the rows (no tree in between: a
/// million records' report stays within its memory bound).
pub fn json(r: &Report) -> String {
    let doc = Doc {
        schema: "jitd-report-v1",
        controls: CONTROLS,
        report: r,
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// A cell that a spreadsheet will not run as a formula (CSV injection), quoted when needed.
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The population, one grant a row: what auditors sample.
pub fn csv(r: &Report) -> String {
    let mut o = String::from(
        "host,grant,user,privilege,rule,reason,ticket,requested,granted_secs,used_secs,approval,approvers,approval_latency_secs,commands,refusals,ended,late_ms\n",
    );
    for g in &r.population {
        let cells = [
            g.host.clone(),
            g.grant.clone(),
            g.user.clone(),
            g.privilege.clone(),
            g.rule.clone(),
            g.reason.clone(),
            g.ticket.clone(),
            g.requested.clone(),
            g.granted_secs.to_string(),
            opt(g.used_secs),
            g.approval.clone(),
            g.approvers.clone(),
            opt(g.approval_latency_secs),
            g.commands.to_string(),
            g.refusals.to_string(),
            g.ended.clone(),
            opt(g.late_ms),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        o.push_str(&line.join(","));
        o.push('\n');
    }
    o
}

/// The suggestions section alone, as `jitctl suggest` prints it.
pub fn suggestions_text(r: &Report) -> String {
    suggest::to_text(&r.suggestions)
}
