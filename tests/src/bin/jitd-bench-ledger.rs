//! Benchmarks of the command ledger and of reading a long history. Prints Markdown tables;
//! never fails on speed.
//!
//! - Ingestion: 2,000 commands (accept + exit, in sudo's own JSON format) appended to a
//!   user's sudo log at 200 commands per second while a grant is live; how far behind the
//!   ledger is when the last one is written, how long until every exit is on record, the
//!   gate's `CheckAccess` round trip meanwhile against idle, and how late a grant expiring
//!   meanwhile is taken off.
//! - History: a state database with 1,000,000 audit records (made with SQL, spread over 50
//!   users and 20 privileges and a year), then the first page of `jitctl history --all` and
//!   its filters, through the real daemon and bus, and the whole export read directly
//!   (`jitd audit export`).
//!
//! Run with `bench/run` (after the main benchmark) or alone:
//! `JITD_PROFILE=release tests/sandbox target/release/jitd-bench-ledger`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::process::Command;
use std::time::{Duration, Instant};

use jitd_tests::*;

const POLICY: &str = r#"
[privilege.bench]
kind = "sudo"
commands = ["/usr/bin/true"]

[[rule]]
name = "bench"
users = ["benchuser", "benchuser2"]
privileges = ["bench"]
max_duration = "1h"
reason_required = false
max_active = 2
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

/// One command in sudo's format: its accept and its exit, as members of the log's object.
fn command(n: usize, first: bool, now_s: u64) -> String {
    let uuid = format!("bench-{n:08}");
    format!(
        "{}\n    \"accept\": {{\"uuid\": \"{uuid}\", \"submit_time\": {{\"seconds\": {now_s}, \
         \"nanoseconds\": 0}}, \"submituser\": \"benchuser\", \"command\": \"/usr/bin/true\", \
         \"runuser\": \"root\", \"runcwd\": \"/\", \"runargv\": [\"/usr/bin/true\"]}},\n    \
         \"exit\": {{\"uuid\": \"{uuid}\", \"exit_time\": {{\"seconds\": {now_s}, \"nanoseconds\": 0}}, \
         \"run_time\": {{\"seconds\": 0, \"nanoseconds\": 1000000}}, \"exit_value\": 0}}",
        if first { "{" } else { "," }
    )
}

fn count(db: &std::path::Path, kind: &str) -> usize {
    let o = run(Command::new("sqlite3").arg(db).arg(format!(
        "SELECT count(*) FROM history WHERE kind = '{kind}'"
    )));
    stdout(&o).trim().parse().unwrap_or(0)
}

fn gate_calls(uid: u32, n: usize) -> Vec<f64> {
    zbus::block_on(async {
        let conn = jitd::client::connect(None).await.unwrap();
        let gate = jitd::client::GateProxy::new(&conn).await.unwrap();
        let mut v = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            let _ = gate.check_access(uid, "sudo", "", "").await.unwrap();
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        v
    })
}

fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    (v[v.len() / 2], v[(v.len() - 1) * 99 / 100])
}

fn ingestion(sb: &Sandbox) {
    use std::io::Write as _;
    const COMMANDS: usize = 2000;
    const PER_SEC: usize = 200;
    let d = Daemon::start_with(
        sb,
        "bench-ingest",
        POLICY,
        "calls_per_sec = 1000000.0\ncalls_burst = 1000000\n",
    );
    let o = as_user(
        "benchuser",
        &[
            "jitctl", "elevate", "bench", "--for", "30m", "--reason", "bench",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let uid = uid_of("benchuser").unwrap();
    let idle = p50_p99(gate_calls(uid, 500));
    let file = d.dir.join("state/ledger/sudo.json");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let db = d.state_db();
    let start = Instant::now();
    let writer = std::thread::spawn(move || {
        for n in 0..COMMANDS {
            let due = Duration::from_secs_f64(n as f64 / PER_SEC as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            f.write_all(command(n, n == 0, now_s).as_bytes()).unwrap();
        }
        f.write_all(b"\n}\n").unwrap();
        start.elapsed()
    });
    // A grant that expires half-way through: how late is it taken off?
    let o = as_user(
        "benchuser2",
        &[
            "jitctl", "elevate", "bench", "--for", "5s", "--reason", "expiry",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut busy = Vec::new();
    while !writer.is_finished() {
        busy.extend(gate_calls(uid, 20));
    }
    let written = writer.join().unwrap();
    let behind = COMMANDS - count(&db, "command.exited").min(COMMANDS);
    while count(&db, "command.exited") < COMMANDS {
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "ingestion stalled"
        );
    }
    let caught_up = start.elapsed() - written;
    let late = d
        .log()
        .lines()
        .find(|l| l.contains("event=grant.expired"))
        .and_then(|l| {
            l.split("late_ms=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<i64>()
                .ok()
        });
    let busy = p50_p99(busy);
    println!(
        "\nLedger ingestion: {COMMANDS} commands at {PER_SEC}/s written in {:.1} s",
        written.as_secs_f64()
    );
    println!("\n| measure | value |\n|---|---|");
    println!("| commands not yet on record when the last was written | {behind} |");
    println!(
        "| from the last written to every exit on record | {:.0} ms |",
        caught_up.as_secs_f64() * 1000.0
    );
    println!(
        "| gate CheckAccess idle, p50 / p99 | {:.2} / {:.2} ms |",
        idle.0, idle.1
    );
    println!(
        "| gate CheckAccess during ingestion, p50 / p99 | {:.2} / {:.2} ms |",
        busy.0, busy.1
    );
    match late {
        Some(ms) => println!("| a grant expiring during ingestion, taken off late by | {ms} ms |"),
        None => println!("| a grant expiring during ingestion | not seen to expire |"),
    }
}

fn main() {
    let sb = sandbox();
    ensure_user("benchuser");
    ensure_user("benchuser2");
    ingestion(&sb);
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
