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
//! - Gate under load: `CheckAccess` on an idle daemon, then while other users' clients loop
//!   `Manager.Request` + drop of a sudo privilege (visudo, fsync), and while one client floods
//!   `Manager.Request` with an invalid privilege name; with the clients' own round trips. The
//!   clients are this binary again (`jitd-bench load MODE STOP_FILE`), each run as its own user,
//!   since the daemon knows a caller only by its bus credentials.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jitd_tests::bench_sudo::{Summary, sudo_arms, summary};
use jitd_tests::*;

const POLICY: &str = r#"
[privilege.bench]
kind = "sudo"
commands = ["/usr/bin/true"]

[[rule]]
name = "bench"
groups = ["jitdbench"]
privileges = ["bench"]
max_duration = "1h"
reason_required = false
max_active = 1
"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "load" {
        load_client(&args[2], Path::new(&args[3]));
        return;
    }
    let sb = sandbox();
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    ensure_group("jitdbench");
    ensure_user("benchuser");
    ensure_user("benchappr");
    add_to_group("benchuser", "jitdbench");
    // BENCH_ONLY=signed: only the signed-token row, with a daemon of its own.
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "signed") {
        let (p50, p99, max, n) = summary(jitd_tests::bench_signed::verify_times(&sb, runs));
        println!(
            "| signed token: `jitctl submit` → verified answer (2× `ssh-keygen -Y`, start-ups included) | {p50:.1} ms | {p99:.1} ms | {max:.1} ms | {n} |"
        );
        return;
    }
    // BENCH_ONLY=approve: only the approval row (the rest takes minutes).
    let only_approve = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "approve");
    // The bench's own loops call as fast as they can; the per-uid limits would throttle them,
    // so they are lifted here. The flood rows then show the gate without the limits' help.
    let d = Daemon::start_with(
        &sb,
        "bench",
        &format!(
            "{POLICY}{}",
            jitd_tests::bench_approve::policy("benchuser", "benchappr")
        ),
        "calls_per_sec = 1000000.0\ncalls_burst = 1000000\ncalls_in_flight = 1000\n",
    );
    let mut rows: Vec<(String, Summary, &str)> = Vec::new();

    // BENCH_ONLY=notify: a pending request → the approvers' webhook receiver has its note.
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "notify") {
        let t = jitd_tests::bench_notify::pending_to_receiver(&sb, runs, "benchuser");
        rows.push((
            "pending request (`jitctl elevate` start) → signed note at the local webhook receiver (poll_ms = 250)".into(),
            summary(t),
            "ms",
        ));
        print_rows(&rows);
        return;
    }

    // BENCH_ONLY=sudo: only sudo's own rows and the gate socket's check, idle (a minute).
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "sudo") {
        let o = as_user(
            "benchuser",
            &[
                "jitctl", "elevate", "bench", "--for", "1h", "--reason", "bench",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let uid = uid_of("benchuser").unwrap();
        let mut socket = Vec::new();
        for _ in 0..runs * 20 {
            let t = Instant::now();
            socket_check(uid);
            socket.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        rows.push((
            "gate socket: connect + Check (what pam_jit pays), idle daemon".into(),
            summary(socket),
            "ms",
        ));
        let m = sudo_arms(&sb, &d, &mut rows, runs);
        print_rows(&rows);
        println!(
            "\nratio of medians, sudo with pam_jit (live grant) / without: {:.3} (module loaded, \
             not consulted / without: {:.3}); the naive pam_exec + sqlite3 gate / pam_jit: {:.2}",
            m[1] / m[0],
            m[4] / m[3],
            m[2] / m[1]
        );
        return;
    }

    let approved = jitd_tests::bench_approve::approve_to_usable(runs, "benchuser", "benchappr");

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
    rows.push((
        "approve → sudo usable (approver's `jitctl approve` + `su` + `sudo`, start-ups included)"
            .into(),
        summary(approved),
        "ms",
    ));
    if only_approve {
        for (what, (p50, p99, max, n), unit) in &rows {
            println!("| {what} | {p50:.1} {unit} | {p99:.1} {unit} | {max:.1} {unit} | {n} |");
        }
        return;
    }

    // From here on benchuser holds a live grant: the gate's checks below are answered yes, as
    // for a sudo of a user who holds one.
    let o = as_user(
        "benchuser",
        &[
            "jitctl", "elevate", "bench", "--for", "1h", "--reason", "bench",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

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
            let _ = gate.check_access(uid, "jitd-bench", "", "").await.unwrap();
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

    let load_notes = gate_under_load(&sb, &mut rows, uid, runs * 20);

    // Expiry lateness with the daemon alive (another user: benchuser holds its grant).
    ensure_user("benchlate");
    add_to_group("benchlate", "jitdbench");
    let mut late = Vec::new();
    for _ in 0..runs.min(20) {
        let o = as_user(
            "benchlate",
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

    let medians = sudo_arms(&sb, &d, &mut rows, runs);
    print_rows(&rows);
    println!(
        "\nratio of medians, sudo with pam_jit (live grant) / without: {:.3} \
         (loaded, not consulted / without: {:.3})",
        medians[1] / medians[0],
        medians[4] / medians[3]
    );
    println!(
        "ratio of medians, the naive pam_exec + sqlite3 gate / pam_jit: {:.2} \
         (naive / without: {:.3})",
        medians[2] / medians[1],
        medians[2] / medians[0]
    );
    println!("\nGate CheckAccess under load, loaded / idle:");
    for note in &load_notes {
        println!("- {note}");
    }
}

const CLIENTS: usize = 4;

/// `CheckAccess` latency on the idle daemon, then while load clients run; pushes the rows and
/// returns the loaded/idle ratios and the clients' mean round trips as lines of text.
fn gate_under_load(
    sb: &Sandbox,
    rows: &mut Vec<(String, Summary, &str)>,
    uid: u32,
    calls: usize,
) -> Vec<String> {
    let clients: usize = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CLIENTS);
    // The clients run as other users: the binary must be where they can reach it.
    let exe = sb.bin.join("jitd-bench");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let users: Vec<String> = (1..=clients).map(|i| format!("benchload{i}")).collect();
    for user in &users {
        ensure_user(user);
        add_to_group(user, "jitdbench");
    }

    let (idle, idle_bus, idle_socket) = check_access_calls(uid, calls);
    let (idle, idle_bus, idle_socket) = (summary(idle), summary(idle_bus), summary(idle_socket));
    rows.push((
        "gate socket: connect + Check (what pam_jit pays), idle daemon".into(),
        idle_socket,
        "ms",
    ));
    rows.push((
        "Gate CheckAccess, idle daemon (baseline of the rows below)".into(),
        idle,
        "ms",
    ));
    rows.push((
        "control: bus daemon GetId, idle, interleaved with the above".into(),
        idle_bus,
        "ms",
    ));
    let mut notes = Vec::new();
    let loads: [(&str, usize, String); 4] = [
        (
            "cycle",
            1,
            "1 client loops Request + drop (sudo: visudo, fsync)".into(),
        ),
        (
            "cycle",
            clients,
            format!("{clients} clients loop Request + drop (sudo: visudo, fsync)"),
        ),
        (
            "invalid",
            1,
            "1 client floods Request with an invalid privilege name".into(),
        ),
        (
            "flood",
            1,
            "1 user floods Request on 32 connections, 100 calls in flight each".into(),
        ),
    ];
    for (mode, n, what) in loads {
        let stop = sb.dir.join("bench-load-stop");
        let _ = std::fs::remove_file(&stop);
        let children: Vec<_> = users[..n]
            .iter()
            .map(|user| {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]);
                if mode == "flood" {
                    cmd.arg(sb.bin.join("jitd-flood")).args(["32", "100"]);
                } else {
                    cmd.arg(&exe).args(["load", mode]);
                }
                cmd.arg(&stop)
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("start a load client")
            })
            .collect();
        // Let every client connect and reach its loop.
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let bus_calls = if mode == "flood" { 20 } else { calls };
        let (loaded, bus, socket) = check_access_calls_with(uid, calls, bus_calls);
        let (loaded, bus, socket) = (summary(loaded), summary(bus), summary(socket));
        let window = t.elapsed().as_secs_f64();
        std::fs::write(&stop, "").unwrap();
        let mut samples: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for child in children {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "load client failed: {}", stderr(&o));
            for line in stdout(&o).lines() {
                let (kind, value) = line.split_once(' ').unwrap_or((line, ""));
                match value.parse::<f64>() {
                    Ok(ms) => samples.entry(kind.to_string()).or_default().push(ms),
                    Err(_) => eprintln!("load client: {line}"),
                }
            }
        }
        let _ = std::fs::remove_file(&stop);
        if mode == "flood" {
            // What the flood queued is still being answered: wait until jitd is idle again, so
            // the rows after this one measure a quiet daemon.
            wait_idle(uid);
        }
        rows.push((
            format!("gate socket: connect + Check while {what}"),
            socket,
            "ms",
        ));
        rows.push((format!("Gate CheckAccess while {what}"), loaded, "ms"));
        rows.push((format!("control: bus daemon GetId while {what}"), bus, "ms"));
        let mut note = format!(
            "{what}: gate socket p50 x{:.1} ({:.2} ms), p99 x{:.1} ({:.2} ms); \
             bus CheckAccess p50 x{:.1} ({:.2} ms), p99 x{:.1} ({:.2} ms); \
             control GetId p50 x{:.1}, p99 x{:.1}",
            socket.0 / idle_socket.0,
            socket.0,
            socket.1 / idle_socket.1,
            socket.1,
            loaded.0 / idle.0,
            loaded.0,
            loaded.1 / idle.1,
            loaded.1,
            bus.0 / idle_bus.0,
            bus.1 / idle_bus.1,
        );
        for (kind, v) in samples {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let label = match kind.as_str() {
                "request" => "Manager.Request (granted sudo)",
                "drop" => "Manager.Revoke (owner's drop)",
                "invalid" => "Manager.Request (invalid name, refused)",
                _ => "other",
            };
            let _ = write!(
                note,
                "; {label} mean {mean:.2} ms, {:.0}/s",
                v.len() as f64 / window
            );
            rows.push((format!("{label} round trip, {what}"), summary(v), "ms"));
        }
        notes.push(note);
    }
    notes
}

/// `calls` CheckAccess round trips on one connection, as root, in ms; and as a control, as many
/// `GetId` round trips to the bus daemon alone, interleaved with them (what load costs the bus
/// and the CPUs, without jitd).
/// `bus_calls` of the bus ones: under the flood they queue behind it for seconds each, so there
/// they are few, each given up after pam_jit's 2 s timeout (counted as 2000 ms).
fn check_access_calls(uid: u32, calls: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    check_access_calls_with(uid, calls, calls)
}

fn check_access_calls_with(
    uid: u32,
    calls: usize,
    bus_calls: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut socket = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        socket_check(uid);
        socket.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let timeout = Duration::from_secs(2);
    let (checks, bus) = zbus::block_on(async {
        let conn = zbus::connection::Builder::system()
            .method_timeout(timeout)
            .build()
            .await
            .unwrap();
        let gate = jitd::client::GateProxy::new(&conn).await.unwrap();
        let mut checks = Vec::with_capacity(bus_calls);
        let mut bus = Vec::with_capacity(bus_calls);
        for _ in 0..bus_calls {
            let t = Instant::now();
            let _ = gate.check_access(uid, "jitd-bench", "", "").await;
            checks.push(t.elapsed().min(timeout).as_secs_f64() * 1000.0);
            let t = Instant::now();
            let _ = conn
                .call_method(
                    Some("org.freedesktop.DBus"),
                    "/org/freedesktop/DBus",
                    Some("org.freedesktop.DBus"),
                    "GetId",
                    &(),
                )
                .await;
            bus.push(t.elapsed().min(timeout).as_secs_f64() * 1000.0);
        }
        (checks, bus)
    });
    (checks, bus, socket)
}

/// Waits (at most 5 minutes) until a bus `CheckAccess` is answered within 5 ms again.
fn wait_idle(uid: u32) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(300) {
        let (checks, _, _) = check_access_calls_with(uid, 1, 1);
        if checks[0] < 5.0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("jitd still busy 5 minutes after the flood");
}

/// One check over the gate socket, connection included: what pam_jit pays per sudo.
fn socket_check(uid: u32) {
    use jitd::gate_proto::{self, GateCall, GateReply};
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(gate_proto::DEFAULT_SOCKET)
        .expect("the gate socket");
    let call = GateCall::Check {
        uid,
        service: "jitd-bench".into(),
        tty: String::new(),
        rhost: String::new(),
    };
    s.write_all(&gate_proto::encode(&call)).unwrap();
    let mut line = Vec::new();
    BufReader::new(&s).read_until(b'\n', &mut line).unwrap();
    assert!(matches!(
        gate_proto::decode::<GateReply>(&line),
        Ok(GateReply::Decision { .. })
    ));
}

/// A load client: until `stop` exists, either asks for `bench` and drops it again (`cycle`),
/// or asks for a privilege whose name is invalid (`invalid`). Prints one `KIND MS` line per
/// call at the end (`request`, `drop`, `invalid`), and `error ...` for anything unexpected.
fn load_client(mode: &str, stop: &Path) {
    use jitd::client::{Error, ManagerProxy};
    let out = zbus::block_on(async {
        let conn = jitd::client::connect(None).await.expect("the bus");
        let manager = ManagerProxy::new(&conn).await.unwrap();
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        let mut out = String::new();
        while !stop.exists() {
            let t = Instant::now();
            match mode {
                "cycle" => match manager.request("bench", 600, "", "").await {
                    Ok(outcome) => {
                        let _ = writeln!(out, "request {}", ms(t));
                        let t = Instant::now();
                        match manager.revoke(&outcome.grant.id, "", false).await {
                            Ok(_) => writeln!(out, "drop {}", ms(t)),
                            Err(e) => writeln!(out, "error drop: {e}"),
                        }
                    }
                    Err(e) => writeln!(out, "error request: {e}"),
                },
                _ => match manager.request("no such privilege!", 60, "", "").await {
                    Err(Error::InvalidArgument(_)) => writeln!(out, "invalid {}", ms(t)),
                    other => writeln!(out, "error invalid: {other:?}"),
                },
            }
            .unwrap();
        }
        out
    });
    print!("{out}");
}

fn print_rows(rows: &[(String, Summary, &str)]) {
    println!("\n| measure | p50 | p99 | max | n |\n|---|---|---|---|---|");
    for (name, (p50, p99, max, n), unit) in rows {
        println!("| {name} | {p50:.2} {unit} | {p99:.2} {unit} | {max:.2} {unit} | {n} |");
    }
}
