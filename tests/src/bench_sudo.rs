//! The bench rows for sudo itself: `sudo -n` with and without pam_jit, the module's load cost,
//! and the naive `pam_exec` + `sqlite3` gate an admin would write instead.

#![allow(clippy::disallowed_methods)] // a benchmark runs real processes and times them

use std::process::Command;
use std::time::Instant;

use crate::*;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// p50, p99, max and count of a sample.
pub type Summary = (f64, f64, f64, usize);

pub fn summary(mut v: Vec<f64>) -> Summary {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    (
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN),
        v.len(),
    )
}

/// The naive gate an admin would write: pam_exec runs a script that asks the state database
/// with sqlite3 whether the invoking user holds a live grant.
const NAIVE_GATE: &str = r#"#!/bin/sh
uid=$(id -u "$PAM_RUSER") || exit 1
now=$(date +%s%3N)
live=$(sqlite3 -readonly "$JITD_DB" "SELECT 1 FROM grants WHERE uid = $uid AND state = 'active' AND expires_ms > $now LIMIT 1") || exit 1
[ "$live" = 1 ]
"#;

/// `sudo -n` run directly by the user (the bench forks, takes the user's uid and gid and execs
/// sudo: no su or runuser stack in the figure), interleaved across five arms: the grant's
/// command (sudo runs it under its own service, `jitd-bench`, whose stack is sudo's) without
/// pam_jit, with pam_jit and a live grant, and with the naive pam_exec gate instead; and a
/// static rule's command under `sudo` itself without pam_jit and with pam_jit loaded but
/// leaving it alone (`services=` names another service: the cost of loading the module).
/// Returns the five medians.
pub fn sudo_arms(
    sb: &Sandbox,
    d: &Daemon,
    rows: &mut Vec<(String, Summary, &str)>,
    runs: usize,
) -> Vec<f64> {
    use std::os::unix::process::CommandExt;
    let module = format!("{}/pam_jit.so", sb.bin.display());
    let naive = sb.dir.join("naive-gate");
    std::fs::write(
        &naive,
        NAIVE_GATE.replace("$JITD_DB", &d.state_db().display().to_string()),
    )
    .unwrap();
    let o = run(Command::new("chmod").arg("755").arg(&naive));
    assert!(o.status.success());
    let plain = std::fs::read_to_string("/etc/pam.d/sudo").unwrap();
    // The load cost alone needs a command jitd does not route (routed services are always
    // gated): a static rule for /usr/bin/echo, under sudo's own service.
    let _static_rule = Replaced::new(
        "/etc/sudoers.d/bench-static",
        "benchuser ALL=(root) NOPASSWD: /usr/bin/echo\n",
        0o440,
    );
    let (granted, unrouted) = ("/usr/bin/true", "/usr/bin/echo");
    let arms = [
        ("sudo -n true without pam_jit", plain.clone(), granted),
        (
            "sudo -n true with pam_jit (live grant)",
            format!("{plain}account required {module}\n"),
            granted,
        ),
        (
            "sudo -n true with the naive gate (pam_exec + sqlite3, live grant)",
            format!(
                "{plain}account required pam_exec.so quiet {}\n",
                naive.display()
            ),
            granted,
        ),
        (
            "sudo -n echo (static rule) without pam_jit",
            plain.clone(),
            unrouted,
        ),
        (
            "sudo -n echo (static rule) with pam_jit loaded, not consulted",
            format!("{plain}account required {module} services=other\n"),
            unrouted,
        ),
    ];
    let uid = uid_of("benchuser").unwrap();
    let gid: u32 = stdout(&run(Command::new("id").args(["-g", "benchuser"])))
        .trim()
        .parse()
        .unwrap();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); arms.len()];
    // Twice the runs: the ratios are what is read from these rows.
    for i in 0..runs * 2 * arms.len() {
        let arm = i % arms.len();
        std::fs::write("/etc/pam.d/sudo", &arms[arm].1).unwrap();
        let t = Instant::now();
        let o = run(Command::new("sudo")
            .args(["-n", arms[arm].2])
            .uid(uid)
            .gid(gid)
            .env_clear()
            .env("PATH", "/usr/bin:/bin"));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !o.status.success() {
            eprintln!("{} failed: {}", arms[arm].0, stderr(&o));
            continue;
        }
        samples[arm].push(ms);
    }
    std::fs::write("/etc/pam.d/sudo", &plain).unwrap();
    samples
        .into_iter()
        .zip(arms.iter())
        .map(|(v, (name, _, _))| {
            let (p50, p99, max, n) = summary(v);
            rows.push(((*name).into(), (p50, p99, max, n), "ms"));
            p50
        })
        .collect()
}
