//! Suggestions and report figures over the generated history, each checked against a value
//! computed here from the generated records themselves (raw JSON), not by the model.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::generate::{Config, generate};
use super::input::{Exports, parse_rfc3339};
use super::period::{Period, build};
use super::policy_view::PolicyView;
use super::suggest::{Change, Suggestion, Thresholds, suggest};
use super::{gather, html, render};
use crate::testutil::TempDir;

pub(super) struct Fixture {
    _dir: TempDir,
    raw: Vec<Value>,
    pub(super) suggestions: Vec<Suggestion>,
    report: super::period::Report,
}

pub(super) fn fixture() -> Fixture {
    let dir = TempDir::new();
    let history = generate(&Config::default());
    history.write_dir(&dir).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&*dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let raw: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let (facts, hosts) = gather(&Exports(files)).unwrap();
    let policy = PolicyView::read(&dir.join("policy.toml")).unwrap();
    let end = hosts.iter().map(|h| h.last_ms).max().unwrap();
    let suggestions = suggest(&facts, &policy, &Thresholds::default(), end);
    let period = Period::parse("2026Q4", end).unwrap();
    let report = build(&facts, &hosts, &policy, &period, suggestions.clone());
    Fixture {
        _dir: dir,
        raw,
        suggestions,
        report,
    }
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v["fields"][key].as_str().unwrap_or("")
}

fn ms(v: &Value) -> i64 {
    parse_rfc3339(v["time"].as_str().unwrap()).unwrap()
}

/// The suggestions' window: 90 days back from the newest record.
fn in_window(f: &Fixture, v: &Value) -> bool {
    let end = f.raw.iter().map(ms).max().unwrap();
    ms(v) >= end - 90 * 86_400_000
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap()
}

pub(super) fn one<'a>(list: &'a [Suggestion], kind: &str, subject: &str) -> &'a Suggestion {
    list.iter()
        .find(|s| s.kind == kind && s.subject == subject)
        .unwrap_or_else(|| panic!("no {kind} for {subject}: {list:#?}"))
}

/// Nearest rank, written again here.
fn p95(mut v: Vec<i64>) -> i64 {
    v.sort();
    let rank = ((v.len() as f64) * 0.95).ceil() as usize;
    v[rank - 1]
}

#[test]
fn shorten_max_duration_is_one_and_a_half_times_the_p95_of_used_time() {
    let f = fixture();
    // Used time of each grant under rule web: its applied record to its session's close.
    let mut rule_of = BTreeMap::new();
    let mut applied = BTreeMap::new();
    let mut used = Vec::new();
    for v in &f.raw {
        match kind(v) {
            "request.allowed" if in_window(&f, v) => {
                rule_of.insert(field(v, "grant").to_string(), field(v, "rule").to_string());
            }
            "grant.applied" => {
                applied.insert(field(v, "grant").to_string(), ms(v));
            }
            "session.closed" if rule_of.get(field(v, "grant")).is_some_and(|r| r == "web") => {
                used.push(ms(v) - applied[field(v, "grant")]);
            }
            _ => {}
        }
    }
    assert!(used.len() >= 10);
    let p = p95(used.clone());
    let s = one(&f.suggestions, "shorten-max-duration", "rule web");
    // 1.5 x p95, rounded up to whole minutes (<= 15 min) or quarter hours.
    let target = (p as f64 * 1.5 / 1000.0).ceil() as u64;
    let step = if target <= 900 { 60 } else { 900 };
    let expect = target.div_ceil(step) * step;
    assert_eq!(
        s.change,
        Change::SetRuleDuration {
            rule: "web".into(),
            // The rule's default (1h) is above the new maximum: it comes down too.
            set: vec![
                ("max_duration".into(), crate::duration::format(expect)),
                ("default_duration".into(), crate::duration::format(expect)),
            ]
        }
    );
    assert_eq!(s.evidence.count, used.len() as u64);
    assert!(
        s.evidence.detail.contains(&format!("p95_used_ms={p}")),
        "{}",
        s.evidence.detail
    );
    assert!(s.toml.contains(&format!(
        "max_duration = \"{}\"",
        crate::duration::format(expect)
    )));
}

#[test]
fn auto_approve_candidate_counts_human_approvals_and_caps_per_day() {
    let f = fixture();
    let approved: Vec<&Value> = f
        .raw
        .iter()
        .filter(|v| {
            kind(v) == "request.allowed"
                && field(v, "user") == "bob"
                && field(v, "approval") == "human"
                && in_window(&f, v)
        })
        .collect();
    let s = one(&f.suggestions, "auto-approve-candidate", "bob/db-restore");
    assert_eq!(s.evidence.count, approved.len() as u64);
    assert!(approved.len() >= 10);
    let mut per_day: BTreeMap<i64, i64> = BTreeMap::new();
    for v in &approved {
        *per_day.entry(ms(v) / 86_400_000).or_default() += 1;
    }
    let cap = p95(per_day.values().copied().collect());
    assert!(
        s.toml.contains(&format!("per_user_per_day = {cap} }}")),
        "{}",
        s.toml
    );
    assert!(s.toml.contains("users = [\"bob\"]") && !s.toml.contains('*'));
    // erin was refused once: never a candidate, however many approvals.
    assert!(
        !f.suggestions
            .iter()
            .any(|s| s.kind == "auto-approve-candidate" && s.subject.starts_with("erin"))
    );
    // The logs privilege runs a pager: never a candidate.
    assert!(
        !f.suggestions
            .iter()
            .any(|s| s.kind == "auto-approve-candidate" && s.subject.ends_with("/logs"))
    );
}

#[test]
fn out_of_scope_attempts_name_exact_argv_and_never_bare_tee() {
    let f = fixture();
    let mut refused: BTreeMap<&str, u64> = BTreeMap::new();
    for v in f
        .raw
        .iter()
        .filter(|v| kind(v) == "command.refused" && in_window(&f, v))
    {
        *refused.entry(field(v, "argv")).or_default() += 1;
    }
    for (argv, n) in &refused {
        let s = one(
            &f.suggestions,
            "out-of-scope-attempts",
            &format!("nginx-restart {argv}"),
        );
        assert_eq!(s.evidence.count, *n);
        if argv.contains("tee") {
            assert_eq!(s.change, Change::Review, "tee can write any file");
        } else {
            assert_eq!(
                s.change,
                Change::AddCommand {
                    privilege: "nginx-restart".into(),
                    command: argv.to_string()
                }
            );
        }
    }
    for s in &f.suggestions {
        assert!(
            !s.toml.contains("\"/usr/bin/tee\"") && !s.toml.contains('*'),
            "{}",
            s.toml
        );
    }
}

#[test]
fn narrow_remove_frequent_and_weak() {
    let f = fixture();
    let ran: Vec<&str> = f
        .raw
        .iter()
        .filter(|v| kind(v) == "command.finished")
        .map(|v| field(v, "argv"))
        .collect();
    assert!(!ran.contains(&"/usr/bin/systemctl stop nginx"));
    one(
        &f.suggestions,
        "narrow-privilege",
        "nginx-restart /usr/bin/systemctl stop nginx",
    );
    for used in ["/usr/bin/systemctl restart nginx", "/usr/sbin/nginx -t"] {
        assert!(ran.contains(&used));
        assert!(
            !f.suggestions
                .iter()
                .any(|s| s.subject == format!("nginx-restart {used}"))
        );
    }
    // grace is in rule web and never asked.
    assert!(!f.raw.iter().any(|v| field(v, "user") == "grace"));
    let s = one(&f.suggestions, "remove-eligibility", "grace in rule web");
    assert_eq!(s.evidence.last_seen, "never");
    assert!(s.toml.contains("users = [\"alice\", \"carol\"]"));
    // frank's busiest 24 hours.
    let mut times: Vec<i64> = f
        .raw
        .iter()
        .filter(|v| kind(v) == "request.allowed" && field(v, "user") == "frank" && in_window(&f, v))
        .map(ms)
        .collect();
    times.sort();
    let best = (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t - times[i] < 86_400_000)
                .count()
        })
        .max()
        .unwrap();
    let s = one(&f.suggestions, "too-frequent", "frank/deploy");
    assert!(s.evidence.detail.contains(&format!("max_in_24h={best}")));
    assert!(best >= 5);
    let s = one(&f.suggestions, "weak-justification", "frank");
    assert!(s.summary.contains("\"deploy release\""));
}

#[test]
fn same_history_same_output_byte_for_byte_and_golden() {
    let a = fixture();
    let b = fixture();
    let text_a = super::suggest::to_text(&a.suggestions);
    assert_eq!(text_a, super::suggest::to_text(&b.suggestions));
    assert_eq!(render::json(&a.report), render::json(&b.report));
    assert_eq!(html::html(&a.report), html::html(&b.report));
    golden("suggest.txt", &text_a);
    golden("report.txt", &render::text(&a.report));
    golden("report.json", &render::json(&a.report));
    golden("report.csv", &render::csv(&a.report));
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/report/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{name} differs from the golden file (UPDATE_GOLDEN=1 to rewrite, then review the diff)"
    );
}

#[test]
fn report_figures_match_the_records() {
    let f = fixture();
    let r = &f.report;
    let allowed = f
        .raw
        .iter()
        .filter(|v| kind(v) == "request.allowed")
        .count();
    assert_eq!(r.population.len(), allowed);
    let denied = f.raw.iter().filter(|v| kind(v) == "request.denied").count();
    assert_eq!(r.denials, denied);
    let late: Vec<i64> = f
        .raw
        .iter()
        .filter(|v| kind(v) == "grant.expired")
        .map(|v| v["fields"]["late_ms"].as_i64().unwrap())
        .collect();
    let spread = r.lateness_ms.as_ref().unwrap();
    assert_eq!(spread.max, *late.iter().max().unwrap());
    assert_eq!(spread.count, late.len());
    let commands = f
        .raw
        .iter()
        .filter(|v| kind(v) == "command.finished")
        .count() as u64;
    assert_eq!(r.commands, Some(commands));
    let clock = f.raw.iter().filter(|v| kind(v) == "clock.changed").count();
    assert_eq!(
        r.exceptions
            .iter()
            .filter(|e| e.kind == "clock.changed")
            .count(),
        clock
    );
    let bg: Vec<_> = f
        .raw
        .iter()
        .filter(|v| kind(v) == "breakglass.used")
        .collect();
    assert_eq!(r.breakglass.len(), bg.len());
    let reviewed = f
        .raw
        .iter()
        .filter(|v| kind(v) == "breakglass.reviewed")
        .count();
    assert_eq!(
        r.breakglass
            .iter()
            .filter(|b| b.detail != "NOT REVIEWED")
            .count(),
        reviewed
    );
    // No hashes in these exports: the report says so rather than "verified".
    assert!(
        r.integrity
            .iter()
            .all(|i| i.kind == "not carried by the export")
    );
    // Sections whose data is absent say so.
    assert!(render::text(r).contains("escalation delay: no data"));
}

#[test]
fn csv_cells_cannot_be_formulas() {
    assert_eq!(render::csv_cell("=cmd|'/c calc'!A1"), "'=cmd|'/c calc'!A1");
    assert_eq!(render::csv_cell("a,b"), "\"a,b\"");
}

#[test]
fn html_is_self_contained() {
    let f = fixture();
    let page = html::html(&f.report);
    assert!(!page.contains("src=") && !page.contains("http://www.w3.org/1999/xlink"));
    assert_eq!(page.matches("<svg").count(), 5);
    assert!(!page.contains("<script"));
    assert!(!page.contains("https://"));
}

#[test]
fn applying_a_suggestion_changes_only_what_it_names() {
    let f = fixture();
    let policy_text = super::generate::policy(0);
    let mut view = PolicyView::default();
    view.add_text(Path::new("policy.toml"), &policy_text)
        .unwrap();
    let s = one(&f.suggestions, "shorten-max-duration", "rule web");
    let after = super::apply::apply(&policy_text, s, &view).unwrap();
    let changed: Vec<(&str, &str)> = policy_text
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        [
            ("max_duration = \"4h\"", "max_duration = \"30m\""),
            ("default_duration = \"1h\"", "default_duration = \"30m\"")
        ]
    );
    // The other rules keep their maximum.
    assert!(after.contains("max_duration = \"2h\"") && after.contains("max_duration = \"1h\""));
    let s = one(&f.suggestions, "remove-eligibility", "grace in rule web");
    let after = super::apply::apply(&policy_text, s, &view).unwrap();
    assert!(after.contains("users = [\"alice\", \"carol\"]") && !after.contains("grace"));
    let s = one(
        &f.suggestions,
        "narrow-privilege",
        "nginx-restart /usr/bin/systemctl stop nginx",
    );
    let after = super::apply::apply(&policy_text, s, &view).unwrap();
    assert!(!after.contains("systemctl stop nginx") && after.contains("/usr/sbin/nginx -t"));
    // A review has nothing to apply.
    let s = f
        .suggestions
        .iter()
        .find(|s| s.change == Change::Review)
        .unwrap();
    assert!(super::apply::apply(&policy_text, s, &view).is_err());
}

#[test]
fn a_database_reads_as_its_exports_do_and_a_forged_row_breaks_the_chain() {
    let dir = TempDir::new();
    let history = generate(&Config::default());
    history.write_dir(&dir).unwrap();
    history.write_db(&dir.db()).unwrap();
    let policy = PolicyView::read(&dir.join("policy.toml")).unwrap();
    let run = |source: &dyn super::input::AuditSource| {
        let (facts, hosts) = gather(source).unwrap();
        let end = hosts.iter().map(|h| h.last_ms).max().unwrap();
        (
            super::suggest::to_text(&suggest(&facts, &policy, &Thresholds::default(), end)),
            hosts,
        )
    };
    let mut files: Vec<_> = std::fs::read_dir(&*dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let (from_exports, _) = run(&Exports(files));
    let (from_db, hosts) = run(&super::input::Database(dir.db()));
    assert_eq!(from_db, from_exports);
    assert!(
        hosts
            .iter()
            .all(|h| matches!(h.chain, super::input::Chain::Verified { .. })),
        "{hosts:?}"
    );
    let records: u64 = hosts.iter().map(|h| h.records).sum();
    assert_eq!(
        records,
        history
            .hosts
            .iter()
            .map(|h| h.records.len() as u64)
            .sum::<u64>()
    );
    // One reason changed in place, as someone with the file might.
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let changed = conn
        .execute("UPDATE audit SET line = replace(line, 'deploy release', 'deploy hotfix') WHERE seq = (SELECT min(seq) FROM audit WHERE line LIKE '%deploy release%')", [])
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let (_, hosts) = run(&super::input::Database(dir.db()));
    assert!(
        hosts
            .iter()
            .all(|h| matches!(h.chain, super::input::Chain::Broken(_))),
        "{hosts:?}"
    );
}

#[test]
fn locked_and_expired_accounts_lose_their_eligibility() {
    let shadow = "alice:$y$j9T$abc:20000:0:99999:7:::\n\
                  carol:!$y$j9T$def:20000:0:99999:7:::\n\
                  grace:$y$j9T$ghi:20000:0:99999:7::20400:\n\
                  bob:!:20000:0:99999:7:::\n";
    let got =
        super::policy_view::unusable_accounts(shadow, &["alice", "carol", "grace", "bob"], 20_420);
    assert_eq!(got.get("carol").map(String::as_str), Some("locked"));
    assert_eq!(
        got.get("grace").map(String::as_str),
        Some("expired on 2025-11-08")
    );
    // A bare "!" never had a password (key-only logins): not locked. alice is fine.
    assert_eq!(got.len(), 2, "{got:?}");
    let dir = TempDir::new();
    let history = generate(&Config::default());
    history.write_dir(&dir).unwrap();
    let mut policy = PolicyView::read(&dir.join("policy.toml")).unwrap();
    policy.unusable = got;
    let (facts, hosts) = gather(&Exports(vec![dir.join("web-01.jsonl")])).unwrap();
    let end = hosts.iter().map(|h| h.last_ms).max().unwrap();
    let list = suggest(&facts, &policy, &Thresholds::default(), end);
    // carol uses rule web every few days, and is locked: the lock wins.
    let s = one(&list, "remove-eligibility", "carol in rule web");
    assert_eq!(s.evidence.detail, "account=locked");
    let s = one(&list, "remove-eligibility", "grace in rule web");
    assert!(s.summary.contains("expired on 2025-11-08"));
    assert_eq!(
        list.iter()
            .filter(|s| s.subject == "grace in rule web")
            .count(),
        1
    );
}
