//! The scale benchmark's side-by-side figures: elevate → sudo usable against a plain `sudo -n`
//! and against a drop-in written by hand (figure 5 and its floor), and jitd's gate against its
//! peers: the naive pam_exec + sqlite3 gate and polkit's `pkcheck` (figure 6).

#![allow(clippy::disallowed_methods)] // a benchmark runs real processes and times them

use std::process::Command;
use std::time::Instant;

use crate::bench_scale::{Figure, Report, User, as_uid, socket_check};
use crate::{Daemon, Polkit, Sandbox, run, stderr};

/// Figure 5 and the hand-written floor: one round is a plain `sudo -n` under a static rule,
/// `jitctl elevate` + `sudo -n` of the granted command, and a drop-in written by hand
/// (`visudo -cf` + `mv`) + `sudo -n` of its command; the order rotates each round.
pub fn elevate_arms(r: &mut Report, bench: &User, runs: usize) {
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    let tmp = "/etc/sudoers.d/.bench-hand.tmp";
    for round in 0..runs * 2 {
        for k in 0..3 {
            let arm = (round + k) % 3;
            let t = Instant::now();
            let ok = match arm {
                0 => {
                    run(as_uid(&mut Command::new("sudo"), bench).args(["-n", "/usr/bin/echo", "x"]))
                        .status
                        .success()
                }
                1 => {
                    let o = run(as_uid(&mut Command::new("jitctl"), bench).args([
                        "--json", "elevate", "elev", "--for", "10m", "--reason", "bench",
                    ]));
                    let ok =
                        o.status.success()
                            && run(as_uid(&mut Command::new("sudo"), bench)
                                .args(["-n", "/usr/bin/id"]))
                            .status
                            .success();
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    let id: serde_json::Value =
                        serde_json::from_slice(&o.stdout).unwrap_or_default();
                    let id = id["grant"]["id"].as_str().unwrap_or_default().to_string();
                    let _ = run(as_uid(&mut Command::new("jitctl"), bench).args(["drop", &id]));
                    if ok {
                        samples[arm].push(ms);
                    } else {
                        eprintln!("[bench-scale] elevate arm failed: {}", stderr(&o));
                    }
                    continue;
                }
                _ => {
                    std::fs::write(tmp, "benchuser ALL=(root) NOPASSWD: /usr/bin/whoami\n")
                        .unwrap();
                    run(Command::new("chmod").args(["440", tmp]));
                    run(Command::new("visudo").args(["-cqf", tmp]))
                        .status
                        .success()
                        && run(Command::new("mv").args([tmp, "/etc/sudoers.d/bench-hand"]))
                            .status
                            .success()
                        && run(as_uid(&mut Command::new("sudo"), bench)
                            .args(["-n", "/usr/bin/whoami"]))
                        .status
                        .success()
                }
            };
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let _ = std::fs::remove_file("/etc/sudoers.d/bench-hand");
            if ok {
                samples[arm].push(ms);
            } else {
                eprintln!("[bench-scale] arm {arm} failed");
            }
        }
    }
    let [plain, elevate, hand] = samples;
    let plain = r.push(Figure::new(
        "5",
        "plain `sudo -n echo` under a static rule (baseline)",
        "ms",
        plain,
    ));
    r.push(
        Figure::new(
            "5",
            "`jitctl elevate` → `sudo -n` of the granted command works (paired, interleaved)",
            "ms",
            elevate,
        )
        .vs(&plain)
        .target("p50 ≤ ×1.6"),
    );
    r.push(Figure::new("6c", "by hand: write drop-in, `visudo -cf`, `mv`, then `sudo -n` (the floor of a correct grant)", "ms", hand).vs(&plain));
}

/// Figure 6: the naive pam_exec + sqlite3 gate against pam_jit (bench_sudo's interleaved arms),
/// and polkit's `pkcheck` for a decision against one gate socket check and against a bare
/// process start, interleaved.
pub fn peers(r: &mut Report, sb: &Sandbox, d: &Daemon, bench: &User, runs: usize) {
    let o = run(as_uid(&mut Command::new("jitctl"), bench)
        .args(["elevate", "bench", "--for", "1h", "--reason", "bench"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut rows = Vec::new();
    let m = crate::bench_sudo::sudo_arms(sb, d, &mut rows, runs);
    let mut figs: Vec<Figure> = rows
        .into_iter()
        .map(|(what, s, unit)| Figure {
            id: "6a".into(),
            what,
            unit,
            s,
            baseline: None,
            target: None,
        })
        .collect();
    // [without, pam_jit, naive, static without, static with the module loaded]
    let (without, with) = (figs[0].clone(), figs[1].clone());
    figs[1] = figs[1].clone().vs(&without);
    figs[2] = figs[2].clone().vs(&with);
    figs[4] = figs[4].clone().vs(&figs[3].clone());
    for f in figs {
        r.push(f);
    }
    let _ = m;

    let _pk = Polkit::start(
        r#"polkit.addRule(function(action, subject) {
            if (action.id == "org.jitd.Jitd1.elevate" && subject.user == "benchuser")
                return polkit.Result.YES;
        });"#,
    );
    let mut subject = as_uid(&mut Command::new("sleep"), bench)
        .arg("600")
        .spawn()
        .expect("sleep");
    let pid = subject.id().to_string();
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..runs * 6 {
        let arm = i % 3;
        let t = Instant::now();
        let ok = match arm {
            0 => socket_check(bench.uid, "jitd-bench"),
            1 => run(Command::new("pkcheck").args([
                "--action-id",
                "org.jitd.Jitd1.elevate",
                "--process",
                &pid,
            ]))
            .status
            .success(),
            _ => run(&mut Command::new("/usr/bin/true")).status.success(),
        };
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if ok {
            samples[arm].push(ms);
        } else {
            eprintln!("[bench-scale] peers arm {arm} said no");
        }
    }
    let _ = subject.kill();
    let _ = subject.wait();
    let [gate, pk, proc_] = samples;
    let gate = r.push(Figure::new(
        "6b",
        "gate socket: connect + Check (a yes), in-process",
        "ms",
        gate,
    ));
    let proc_ = r.push(Figure::new(
        "6b",
        "a bare process start (`/usr/bin/true`), the floor of any CLI check",
        "ms",
        proc_,
    ));
    r.push(
        Figure::new(
            "6b",
            "polkit `pkcheck --action-id … --process PID` (a yes; vs the gate)",
            "ms",
            pk.clone(),
        )
        .vs(&gate),
    );
    r.push(Figure::new("6b", "polkit `pkcheck` (vs a bare process start)", "ms", pk).vs(&proc_));
}
