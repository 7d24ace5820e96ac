//! Benchmarks of the figures users feel, against the real daemon, bus and sudo, inside the
//! sandbox. Prints a Markdown table; never fails on speed. Run with `bench/run`.
//!
//! - elevate→usable: from the start of `jitctl elevate` to the first `sudo -n` that succeeds.
//! - Gate round trip: one `CheckAccess` call over the bus, as pam_jit makes it.
//! - expiry lateness: how long after its deadline a grant is gone, from the audit `late_ms`.
//!
//! The time to remove 1,000 grants expiring in the same second needs the debug build's wall-clock
//! offset to make them expire together; the revocation suite measures and prints it
//! (`a_thousand_grants_expiring_in_the_same_second_are_all_removed`, with `--nocapture`).
//! - sudo with pam_jit vs without: interleaved runs of `sudo -n true`, median ratio.

use std::process::Command;
use std::time::{Duration, Instant};

use jitd_tests::*;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// p50, p99, max and count of a sample.
type Summary = (f64, f64, f64, usize);

fn summary(mut v: Vec<f64>) -> Summary {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    (
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN),
        v.len(),
    )
}

const POLICY: &str = r#"
[privilege.bench]
kind = "sudo"
commands = ["/usr/bin/true"]
pam_services = ["sudo", "sudo-i"]

[[rule]]
name = "bench"
groups = ["jitdbench"]
privileges = ["bench"]
max_duration = "1h"
reason_required = false
max_active = 1
"#;

fn main() {
    let sb = sandbox();
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    ensure_group("jitdbench");
    ensure_user("benchuser");
    add_to_group("benchuser", "jitdbench");
    let d = Daemon::start(&sb, "bench", POLICY);
    let mut rows: Vec<(String, Summary, &str)> = Vec::new();

    // elevate → usable
    let mut usable = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let o = as_user(
            "benchuser",
            &[
                "jitctl", "--json", "elevate", "bench", "--for", "10m", "--reason", "bench",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let ok = sudo_as("benchuser", "/usr/bin/true");
        assert!(ok.status.success(), "{}", stderr(&ok));
        usable.push(start.elapsed().as_secs_f64() * 1000.0);
        let id: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let id = id["grant"]["id"].as_str().unwrap().to_string();
        let o = as_user("benchuser", &["jitctl", "drop", &id]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    rows.push((
        "elevate → sudo usable (jitctl + su + sudo, process start-ups included)".into(),
        summary(usable),
        "ms",
    ));

    // Gate round trip, over the real bus as root (what pam_jit does minus connection set-up).
    let uid = uid_of("benchuser").unwrap();
    let gate_runs = runs * 100;
    let (connect, calls) = zbus::block_on(async {
        let mut connect = Vec::new();
        let mut calls = Vec::new();
        for i in 0..gate_runs {
            let t = Instant::now();
            let conn = jitd::client::connect(None).await.unwrap();
            let gate = jitd::client::GateProxy::new(&conn).await.unwrap();
            let t_call = Instant::now();
            let _ = gate.check_access(uid, "sudo", "", "").await.unwrap();
            calls.push(t_call.elapsed().as_secs_f64() * 1000.0);
            if i % 10 == 0 {
                connect.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        (connect, calls)
    });
    rows.push((
        "Gate CheckAccess round trip (connected)".into(),
        summary(calls),
        "ms",
    ));
    // Baselines for the round trip: the bus daemon alone, and jitd answering without work.
    let (bus_only, peer_ping) = zbus::block_on(async {
        let conn = jitd::client::connect(None).await.unwrap();
        let mut bus_only = Vec::new();
        let mut peer_ping = Vec::new();
        for _ in 0..gate_runs {
            let t = Instant::now();
            conn.call_method(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                Some("org.freedesktop.DBus"),
                "GetId",
                &(),
            )
            .await
            .unwrap();
            bus_only.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            conn.call_method(
                Some(jitd::client::BUS_NAME),
                jitd::client::OBJECT_PATH,
                Some("org.freedesktop.DBus.Peer"),
                "Ping",
                &(),
            )
            .await
            .unwrap();
            peer_ping.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        (bus_only, peer_ping)
    });
    rows.push((
        "baseline: bus daemon GetId round trip".into(),
        summary(bus_only),
        "ms",
    ));
    rows.push((
        "baseline: jitd Peer.Ping round trip (no work, no credentials)".into(),
        summary(peer_ping),
        "ms",
    ));
    rows.push((
        "Gate connect + CheckAccess (what one sudo pays)".into(),
        summary(connect),
        "ms",
    ));

    // Expiry lateness with the daemon alive.
    let mut late = Vec::new();
    for _ in 0..runs.min(20) {
        let o = as_user(
            "benchuser",
            &[
                "jitctl", "--json", "elevate", "bench", "--for", "1s", "--reason", "bench",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let id: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let id = id["grant"]["id"].as_str().unwrap().to_string();
        let path = std::path::Path::new("/etc/sudoers.d").join(format!("jitd-{id}"));
        wait_gone(&path, Duration::from_secs(10));
        // The audit record is written just after the file is removed.
        let expired = |log: &str| {
            log.lines()
                .find(|l| l.contains("event=grant.expired") && l.contains(&id))
                .map(str::to_string)
        };
        wait_for(Duration::from_secs(5), "the expiry audit record", || {
            expired(&d.log()).is_some()
        });
        let line = expired(&d.log()).unwrap_or_default();
        let ms: f64 = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("late_ms="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        late.push(ms);
    }
    rows.push((
        "expiry lateness, daemon alive (audit late_ms)".into(),
        summary(late),
        "ms",
    ));

    // sudo without pam_jit, with pam_jit loaded but leaving sudo alone (`services=` names
    // another service: the cost of loading the module), and with pam_jit asking jitd over the
    // bus (live grant). Interleaved, so drift hits all three alike.
    let module = format!("{}/pam_jit.so", sb.bin.display());
    let plain = std::fs::read_to_string("/etc/pam.d/sudo").unwrap();
    let arms = [
        ("sudo -n true without pam_jit", plain.clone()),
        (
            "sudo -n true with pam_jit loaded, not consulted",
            format!("{plain}account required {module} services=other\n"),
        ),
        (
            "sudo -n true with pam_jit (live grant)",
            format!("{plain}account required {module}\n"),
        ),
    ];
    let o = as_user(
        "benchuser",
        &[
            "jitctl", "elevate", "bench", "--for", "30m", "--reason", "bench",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); arms.len()];
    for i in 0..runs * arms.len() {
        let arm = i % arms.len();
        std::fs::write("/etc/pam.d/sudo", &arms[arm].1).unwrap();
        let t = Instant::now();
        let o = run(Command::new("runuser").args([
            "-u",
            "benchuser",
            "--",
            "sudo",
            "-n",
            "/usr/bin/true",
        ]));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !o.status.success() {
            eprintln!("{} failed: {}", arms[arm].0, stderr(&o));
            continue;
        }
        samples[arm].push(ms);
    }
    std::fs::write("/etc/pam.d/sudo", &plain).unwrap();
    let medians: Vec<f64> = samples
        .into_iter()
        .zip(arms.iter())
        .map(|(v, (name, _))| {
            let (p50, p99, _, n) = summary(v);
            rows.push(((*name).into(), (p50, p99, f64::NAN, n), "ms"));
            p50
        })
        .collect();

    println!("\n| measure | p50 | p99 | max | n |\n|---|---|---|---|---|");
    for (name, (p50, p99, max, n), unit) in &rows {
        println!("| {name} | {p50:.2} {unit} | {p99:.2} {unit} | {max:.2} {unit} | {n} |");
    }
    println!(
        "\nratio of medians, sudo with pam_jit (live grant) / without: {:.3} \
         (loaded, not consulted / without: {:.3})",
        medians[2] / medians[0],
        medians[1] / medians[0]
    );
}
