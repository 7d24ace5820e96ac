//! Benchmark of reading a long history: a state database with 1,000,000 audit records (made
//! with SQL, spread over 50 users and 20 privileges and a year), then the first page of
//! `jitctl history --all` and its filters, through the real daemon and bus, and the whole
//! export read directly (`jitd audit export`). Prints a Markdown table; never fails on speed.
//! Run with `bench/run` (after the main benchmark) or alone:
//! `JITD_PROFILE=release tests/sandbox target/release/jitd-bench-history`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::process::Command;
use std::time::Instant;

use jitd_tests::*;

const POLICY: &str = r#"
[privilege.bench]
kind = "sudo"
commands = ["/usr/bin/true"]

[[rule]]
name = "bench"
users = ["benchuser"]
privileges = ["bench"]
max_duration = "1h"
reason_required = false
"#;

const RECORDS: i64 = 1_000_000;

fn sql(db: &std::path::Path, text: &str) {
    let o = run(Command::new("sqlite3").arg(db).arg(text));
    assert!(o.status.success(), "{}", stderr(&o));
}

fn timed(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    (v[v.len() / 2], v[(v.len() - 1) * 99 / 100])
}

fn main() {
    let sb = sandbox();
    ensure_user("benchuser");
    let mut d = Daemon::start(&sb, "bench-history", POLICY);
    d.stop();
    let db = d.state_db();
    let year_ago = 1_764_000_000_000_i64;
    let t = Instant::now();
    sql(
        &db,
        &format!(
            "BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {RECORDS})
             INSERT INTO audit (seq, at_ms, host, line, prev_hash, hash, format)
             SELECT 100 + i, {year_ago} + i * 31536, 'sandbox',
                    'event=request.denied uid=' || (2000 + i % 50) || ' user=u' || (i % 50) ||
                    ' via=bus privilege=p' || (i % 20) ||
                    ' duration=600 reason=bench ticket=\"\" why=no',
                    printf('%064x', i - 1), printf('%064x', i), 2 FROM n;
             INSERT INTO history (seq, at_ms, kind, uid, privilege, grant_id)
             SELECT seq, at_ms, 'request.denied', 2000 + (seq - 100) % 50,
                    'p' || ((seq - 100) % 20), NULL FROM audit WHERE seq > 100;
             COMMIT;"
        ),
    );
    eprintln!(
        "made {RECORDS} records in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    d.restart();
    let runs = 20;
    let page = |args: &[&'static str]| {
        let mut full = vec!["--json", "history"];
        full.extend_from_slice(args);
        move || {
            let o = run(Command::new("jitctl").args(&full));
            assert!(o.status.success(), "{}", stderr(&o));
            assert!(o.stdout.len() > 100, "{}", stdout(&o));
        }
    };
    let mut rows = Vec::new();
    for (name, args) in [
        ("history --all, first page (50)", vec!["--all"]),
        ("history --all --user u7", vec!["--all", "--user", "2007"]),
        (
            "history --all --privilege p3",
            vec!["--all", "--privilege", "p3"],
        ),
        (
            "history --all --since/--until a week",
            vec!["--all", "--since", "2026-03-01", "--until", "2026-03-08"],
        ),
        (
            "history --all, a page deep in (cursor)",
            vec!["--all", "--cursor", "500000"],
        ),
    ] {
        let (p50, p99) = timed(runs, page(&args));
        rows.push((name.to_string(), p50, p99, runs));
    }
    let (p50, p99) = timed(3, || {
        let o = run(Command::new(sb.bin.join("jitd"))
            .arg("--config")
            .arg(&d.config)
            .args(["audit", "export"])
            .stdout(std::process::Stdio::null()));
        assert!(o.status.success(), "{}", stderr(&o));
    });
    rows.push((
        format!("jitd audit export of {RECORDS} records (JSON lines)"),
        p50,
        p99,
        3,
    ));
    println!("\n{RECORDS} audit records; whole `jitctl` process (start, bus, answer) timed");
    println!("\n| measure | p50 | p99 | n |\n|---|---|---|---|");
    for (name, p50, p99, n) in rows {
        println!("| {name} | {p50:.1} ms | {p99:.1} ms | {n} |");
    }
}
