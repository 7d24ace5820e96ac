//! The report as one self-contained HTML page: inline SVG charts, inline CSS, no script and
//! nothing fetched, so it reads the same offline, in a mail client or archived as evidence.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::period::{CONTROLS, Report};
use super::render;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
];

/// Vertical bars, one per label, each a stack of (series, value).
fn bars(title: &str, labels: &[String], series: &[String], values: &[Vec<f64>]) -> String {
    let (w, h, pad) = (640.0, 220.0, 30.0);
    let max = values
        .iter()
        .map(|v| v.iter().sum::<f64>())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let n = labels.len().max(1) as f64;
    let bw = (w - 2.0 * pad) / n;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\" role=\"img\">",
        esc(title),
        h + 40.0,
        h + 40.0
    );
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{h}\" x2=\"{}\" y2=\"{h}\" stroke=\"#333\"/>",
        w - pad
    );
    let _ = write!(s, "<text x=\"2\" y=\"12\" font-size=\"10\">{max:.0}</text>");
    for (i, label) in labels.iter().enumerate() {
        let x = pad + i as f64 * bw;
        let mut y = h;
        for (k, v) in values[i].iter().enumerate() {
            let bh = v / max * (h - pad);
            y -= bh;
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {v}</title></rect>",
                x + 1.0,
                (bw - 2.0).max(1.0),
                COLORS[k % COLORS.len()],
                esc(label),
                esc(&series[k])
            );
        }
        if labels.len() <= 16 || i % 2 == 0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
                x + bw / 2.0,
                h + 12.0,
                esc(label)
            );
        }
    }
    for (k, name) in series.iter().enumerate() {
        let x = pad + k as f64 * 130.0;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>",
            h + 22.0,
            COLORS[k % COLORS.len()],
            x + 14.0,
            h + 31.0,
            esc(name)
        );
    }
    s.push_str("</svg></figure>\n");
    s
}

fn histogram(title: &str, values: &[i64], buckets: &[(i64, &str)]) -> String {
    let mut counts = vec![0.0; buckets.len()];
    for v in values {
        let i = buckets
            .iter()
            .position(|(upper, _)| v <= upper)
            .unwrap_or(buckets.len() - 1);
        counts[i] += 1.0;
    }
    let labels: Vec<String> = buckets.iter().map(|(_, l)| (*l).to_string()).collect();
    bars(
        title,
        &labels,
        &["count".into()],
        &counts.into_iter().map(|c| vec![c]).collect::<Vec<_>>(),
    )
}

pub fn html(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>jitd access report {}</title><style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}figure{{display:inline-block;margin:1em}}figcaption{{font-weight:bold}}pre{{background:#f4f4f4;padding:1em;font-size:12px}}</style></head><body>",
        esc(&r.period)
    );
    let _ = writeln!(
        o,
        "<h1>jitd access report {}</h1><p>{} .. {}; hosts: {}</p>",
        esc(&r.period),
        esc(&r.start),
        esc(&r.end),
        esc(&r.hosts.join(", "))
    );
    o.push_str("<table><tr><th>Control</th><th>Sections</th></tr>");
    for (c, w) in CONTROLS {
        let _ = write!(o, "<tr><td>{c}</td><td>{w}</td></tr>");
    }
    o.push_str("</table>\n<h2>Charts</h2>\n");
    // Requests per week by privilege.
    let mut weeks: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut privileges: Vec<String> = r.population.iter().map(|g| g.privilege.clone()).collect();
    privileges.sort();
    privileges.dedup();
    for g in &r.population {
        let day = super::input::parse_rfc3339(&format!(
            "{}T00:00:00Z",
            g.requested.get(..10).unwrap_or("")
        ))
        .unwrap_or(0);
        let start =
            super::input::parse_rfc3339(&format!("{}T00:00:00Z", r.start.get(..10).unwrap_or("")))
                .unwrap_or(0);
        let week = (day - start).div_euclid(7 * 86_400_000) + 1;
        *weeks
            .entry(format!("w{week:02}"))
            .or_default()
            .entry(g.privilege.clone())
            .or_default() += 1.0;
    }
    let labels: Vec<String> = weeks.keys().cloned().collect();
    let values: Vec<Vec<f64>> = weeks
        .values()
        .map(|m| {
            privileges
                .iter()
                .map(|p| m.get(p).copied().unwrap_or(0.0))
                .collect()
        })
        .collect();
    o.push_str(&bars(
        "Requests per week by privilege",
        &labels,
        &privileges,
        &values,
    ));
    // Durations requested vs used, mean minutes per privilege.
    let values: Vec<Vec<f64>> = privileges
        .iter()
        .map(|p| {
            let rows: Vec<_> = r.population.iter().filter(|g| &g.privilege == p).collect();
            let granted = rows.iter().map(|g| g.granted_secs as f64).sum::<f64>()
                / rows.len().max(1) as f64
                / 60.0;
            let used_rows: Vec<i64> = rows.iter().filter_map(|g| g.used_secs).collect();
            let used = used_rows.iter().sum::<i64>() as f64 / used_rows.len().max(1) as f64 / 60.0;
            vec![used, (granted - used).max(0.0)]
        })
        .collect();
    o.push_str(&bars(
        "Mean minutes used, and granted but unused, by privilege",
        &privileges,
        &["used".into(), "unused".into()],
        &values,
    ));
    let latency: Vec<i64> = r
        .population
        .iter()
        .filter_map(|g| g.approval_latency_secs)
        .collect();
    if latency.is_empty() {
        o.push_str("<p>Approval latency: no data.</p>");
    } else {
        o.push_str(&histogram(
            "Approval latency",
            &latency,
            &[
                (300, "≤5m"),
                (900, "≤15m"),
                (1800, "≤30m"),
                (3600, "≤1h"),
                (14_400, "≤4h"),
                (i64::MAX, ">4h"),
            ],
        ));
    }
    let late: Vec<i64> = r.population.iter().filter_map(|g| g.late_ms).collect();
    o.push_str(&histogram(
        "Revocation lateness after the deadline",
        &late,
        &[
            (100, "≤100ms"),
            (250, "≤250ms"),
            (500, "≤500ms"),
            (1000, "≤1s"),
            (i64::MAX, ">1s"),
        ],
    ));
    let mut users: BTreeMap<&str, f64> = BTreeMap::new();
    for g in &r.population {
        *users.entry(&g.user).or_default() += 1.0;
    }
    let mut top: Vec<(&str, f64)> = users.into_iter().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    top.truncate(10);
    o.push_str(&bars(
        "Top users by grants",
        &top.iter()
            .map(|(u, _)| (*u).to_string())
            .collect::<Vec<_>>(),
        &["grants".into()],
        &top.iter().map(|(_, n)| vec![*n]).collect::<Vec<_>>(),
    ));
    let _ = write!(
        o,
        "<h2>Report</h2><pre>{}</pre>\n</body></html>\n",
        esc(&render::text(r))
    );
    o
}
