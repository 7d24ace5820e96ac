//! The scale benchmark's report and the host set-up it needs: figures with their baselines,
//! ratios and targets printed as a Markdown table and as JSON; a thousand users made in one
//! write; process-level probes of the daemon (RSS, CPU time); the gate socket as pam_jit asks it.
//! The measuring itself is in `bench_scale_load` (grants over the bus, expiry) and the binary
//! `jitd-bench-scale`.

#![allow(clippy::disallowed_methods)] // a benchmark runs real processes and times them

use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Instant;

use crate::bench_sudo::{Summary, summary};
use crate::{run, stdout};

/// Sizes of one run: the full run the issue asks for, or `BENCH_QUICK=1`'s tiny one (CI: proves
/// it runs, in well under a minute).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub quick: bool,
    /// Users holding the mass grants.
    pub users: usize,
    /// sudo grants each of them holds (one per privilege `s0`..).
    pub sudo_per_user: usize,
    /// Interleaved runs of each paired figure.
    pub runs: usize,
    /// Grants expiring together in the "1,000" and "10,000" figures, and group grants.
    pub expire_small: usize,
    pub expire_large: usize,
    pub expire_groups: usize,
    /// Seconds the integrity check's cost is watched for (with it, and without it).
    pub integrity_window_s: u64,
    pub restarts: usize,
}

impl Sizes {
    pub fn from_env() -> Sizes {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
        let runs = std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 5 } else { 30 });
        // BENCH_SCALE_USERS: another number of users (each holding `sudo_per_user` grants).
        let users = std::env::var("BENCH_SCALE_USERS")
            .ok()
            .and_then(|v| v.parse().ok());
        if quick {
            Sizes {
                quick,
                users: users.unwrap_or(10),
                sudo_per_user: 5,
                runs,
                expire_small: 20,
                expire_large: 50,
                expire_groups: 10,
                integrity_window_s: 1,
                restarts: 1,
            }
        } else {
            Sizes {
                quick,
                users: users.unwrap_or(1000),
                sudo_per_user: 10,
                runs,
                expire_small: 1000,
                expire_large: 10_000,
                expire_groups: 500,
                integrity_window_s: 10,
                restarts: 5,
            }
        }
    }
}

/// One figure: a sample, and optionally the baseline it is compared with (measured in the same
/// run) and the issue's target for the ratio or the value.
#[derive(Debug, Clone)]
pub struct Figure {
    pub id: String,
    pub what: String,
    pub unit: &'static str,
    pub s: Summary,
    pub baseline: Option<(String, Summary)>,
    /// Which statistic the target is about: "p50 ratio", "p99 ratio", "max", "value"...
    pub target: Option<String>,
}

impl Figure {
    pub fn new(id: &str, what: impl Into<String>, unit: &'static str, sample: Vec<f64>) -> Self {
        Figure {
            id: id.into(),
            what: what.into(),
            unit,
            s: summary(sample),
            baseline: None,
            target: None,
        }
    }

    pub fn vs(mut self, baseline: &Figure) -> Self {
        self.baseline = Some((baseline.what.clone(), baseline.s));
        self
    }

    pub fn target(mut self, t: &str) -> Self {
        self.target = Some(t.into());
        self
    }

    /// Ratios of medians and of p99s to the baseline.
    pub fn ratios(&self) -> Option<(f64, f64)> {
        self.baseline
            .as_ref()
            .map(|(_, b)| (self.s.0 / b.0, self.s.1 / b.1))
    }
}

/// Everything a run prints: the machine, the figures, free-form notes and how long each phase
/// took (on a shared machine that is worth knowing).
#[derive(Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
    pub phases: Vec<(String, f64)>,
    started: Option<Instant>,
}

impl Report {
    pub fn push(&mut self, f: Figure) -> Figure {
        let (p50, p99, max, n) = f.s;
        eprintln!(
            "[bench-scale] {}: p50 {p50:.2} {u}, p99 {p99:.2} {u}, max {max:.2} {u}, n {n}",
            f.what,
            u = f.unit
        );
        self.figures.push(f.clone());
        f
    }

    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("[bench-scale] note: {text}");
        self.notes.push(text);
    }

    /// Marks the end of a phase: records the seconds since the previous mark.
    pub fn phase(&mut self, name: &str) {
        let now = Instant::now();
        let secs = self
            .started
            .map(|t| now.duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        eprintln!("[bench-scale] phase {name}: {secs:.1} s");
        self.phases.push((name.into(), secs));
        self.started = Some(now);
    }

    pub fn start(&mut self) {
        self.started = Some(Instant::now());
    }

    pub fn markdown(&self, machine: &serde_json::Value) -> String {
        let mut out = format!(
            "machine: {} cores, kernel {}, {}, {}, {} build, {}, load average at start {}\n\n\
             | # | figure | p50 | p99 | max | n | vs baseline (p50 ×, p99 ×) | target |\n\
             |---|---|---|---|---|---|---|---|\n",
            machine["cores"],
            machine["kernel"].as_str().unwrap_or(""),
            machine["sudo"].as_str().unwrap_or(""),
            machine["date"].as_str().unwrap_or(""),
            machine["build"].as_str().unwrap_or(""),
            machine["mode"].as_str().unwrap_or(""),
            machine["loadavg_at_start"].as_str().unwrap_or(""),
        );
        for f in &self.figures {
            let (p50, p99, max, n) = f.s;
            let u = f.unit;
            let ratio = match f.ratios() {
                Some((a, b)) => format!("×{a:.2}, ×{b:.2}"),
                None => String::new(),
            };
            out.push_str(&format!(
                "| {} | {} | {p50:.2} {u} | {p99:.2} {u} | {max:.2} {u} | {n} | {ratio} | {} |\n",
                f.id,
                f.what,
                f.target.as_deref().unwrap_or("")
            ));
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n");
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out.push_str("\nPhases (wall time): ");
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(n, s)| format!("{n} {s:.0} s"))
            .collect();
        out.push_str(&phases.join(", "));
        out.push('\n');
        out
    }

    pub fn json(&self, machine: &serde_json::Value) -> serde_json::Value {
        let num = |v: f64| {
            if v.is_finite() {
                serde_json::json!((v * 1000.0).round() / 1000.0)
            } else {
                serde_json::Value::Null
            }
        };
        let figures: Vec<serde_json::Value> = self
            .figures
            .iter()
            .map(|f| {
                let (p50, p99, max, n) = f.s;
                let mut v = serde_json::json!({
                    "id": f.id, "what": f.what, "unit": f.unit,
                    "median": num(p50), "p99": num(p99), "max": num(max), "n": n,
                    "target": f.target,
                });
                if let (Some((name, b)), Some((r50, r99))) = (&f.baseline, f.ratios()) {
                    v["baseline"] = serde_json::json!({
                        "what": name, "median": num(b.0), "p99": num(b.1), "max": num(b.2), "n": b.3,
                    });
                    v["ratio_median"] = num(r50);
                    v["ratio_p99"] = num(r99);
                }
                v
            })
            .collect();
        let phases: serde_json::Map<String, serde_json::Value> = self
            .phases
            .iter()
            .map(|(n, s)| (n.clone(), num(*s)))
            .collect();
        serde_json::json!({
            "machine": machine, "figures": figures, "notes": self.notes, "phases_s": phases,
        })
    }
}

/// The machine the figures were measured on.
pub fn machine(sizes: &Sizes) -> serde_json::Value {
    let line = |cmd: &mut Command| {
        stdout(&run(cmd))
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let build = if std::env::var("JITD_PROFILE").is_ok_and(|p| p == "release") {
        "release"
    } else {
        "debug"
    };
    serde_json::json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": line(Command::new("uname").arg("-r")),
        "sudo": line(Command::new("sudo").arg("--version")),
        "date": line(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])),
        "build": build,
        "mode": if sizes.quick { "quick (BENCH_QUICK=1)" } else { "full" },
        "loadavg_at_start": loadavg(),
    })
}

/// /proc/loadavg's first three fields: on a shared machine, what else was running.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A user of the bench: name, uid and primary gid.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// First uid and the gid of the scale users' group `jitdscale`.
const SCALE_BASE: u32 = 41000;

/// Makes `n` users `jsc0000`.. in group `jitdscale` (their primary group, and listed as members)
/// by appending to /etc/passwd, /etc/shadow, /etc/group and /etc/gshadow in one write each:
/// useradd takes ~10 ms a user. Only ever inside the sandbox's throw-away /etc.
pub fn make_users(n: usize) -> Vec<User> {
    assert!(
        std::env::var_os("JITD_SANDBOX").is_some(),
        "make_users edits /etc: only inside tests/sandbox"
    );
    let users: Vec<User> = (0..n)
        .map(|i| User {
            name: format!("jsc{i:04}"),
            uid: SCALE_BASE + 1 + i as u32,
            gid: SCALE_BASE,
        })
        .collect();
    if crate::uid_of("jsc0000").is_some() {
        return users;
    }
    let append = |path: &str, text: String| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        f.write_all(text.as_bytes()).unwrap();
    };
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    append(
        "/etc/group",
        format!("jitdscale:x:{SCALE_BASE}:{}\n", names.join(",")),
    );
    append(
        "/etc/gshadow",
        format!("jitdscale:!::{}\n", names.join(",")),
    );
    let mut passwd = String::new();
    let mut shadow = String::new();
    for u in &users {
        passwd.push_str(&format!(
            "{}:x:{}:{}::/nonexistent:/bin/sh\n",
            u.name, u.uid, u.gid
        ));
        shadow.push_str(&format!("{}:!:20000:0:99999:7:::\n", u.name));
    }
    append("/etc/passwd", passwd);
    append("/etc/shadow", shadow);
    users
}

/// A user made with useradd (the few the bench needs by hand).
pub fn user(name: &str) -> User {
    let uid = crate::ensure_user(name);
    let gid = stdout(&run(Command::new("id").args(["-g", name])))
        .trim()
        .parse()
        .unwrap();
    User {
        name: name.into(),
        uid,
        gid,
    }
}

/// A command run directly as `u` (fork, setgroups(0), setgid, setuid, exec): no su or runuser
/// PAM stack in the figure.
pub fn as_uid<'a>(cmd: &'a mut Command, u: &User) -> &'a mut Command {
    cmd.uid(u.uid)
        .gid(u.gid)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir()))
}

pub fn bin_dir() -> String {
    format!("{}/bin", std::env::var("JITD_SANDBOX").unwrap_or_default())
}

/// Runs `cmd` and returns its output and its wall time in ms.
pub fn timed(cmd: &mut Command) -> (Output, f64) {
    let t = Instant::now();
    let o = run(cmd);
    (o, t.elapsed().as_secs_f64() * 1000.0)
}

/// The daemon's resident set, from /proc/<pid>/status, in MB.
pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU time (user + system) the process `pid` has used, in ms (/proc/<pid>/stat, clock ticks).
pub fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf(3) reads a constant of the system; no memory is shared.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the name and state.
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) if hz > 0.0 => (u + s) * 1000.0 / hz,
        _ => f64::NAN,
    }
}

/// One check over the gate socket, connection included: what pam_jit pays per sudo. Returns
/// whether the gate let `uid` through for `service`.
pub fn socket_check(uid: u32, service: &str) -> bool {
    socket_check_at(
        std::path::Path::new(jitd::gate_proto::DEFAULT_SOCKET),
        uid,
        service,
    )
}

/// One check of `uid` for `service` over the gate socket at `path`, connection included.
pub fn socket_check_at(path: &std::path::Path, uid: u32, service: &str) -> bool {
    use jitd::gate_proto::{self, GateCall, GateReply};
    use std::io::{BufRead, BufReader};
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("the gate socket");
    let call = GateCall::Check {
        uid,
        service: service.into(),
        tty: String::new(),
        rhost: String::new(),
    };
    s.write_all(&gate_proto::encode(&call)).unwrap();
    let mut line = Vec::new();
    BufReader::new(&s).read_until(b'\n', &mut line).unwrap();
    match gate_proto::decode::<GateReply>(&line) {
        Ok(GateReply::Decision { decision }) => decision.allowed,
        other => panic!("the gate answered {other:?}"),
    }
}

/// Milliseconds since the Unix epoch, by this process's clock (the daemon reads the same).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A copy of the sudoers configuration as it is now (/etc/sudoers and every file of
/// /etc/sudoers.d) under `dir`, with the include pointing at the copy; returns the copy of
/// /etc/sudoers. sudo reads it when /etc/sudo.conf names it (`sudoers_file=`), so two states of
/// the host can be timed interleaved, whatever shape jitd gives its files.
pub fn snapshot_sudoers(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = dir.join("sudoers.d");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for e in std::fs::read_dir("/etc/sudoers.d").unwrap().flatten() {
        if e.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
    }
    let main = std::fs::read_to_string("/etc/sudoers").unwrap();
    let main: String = main
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if (t.starts_with("@includedir") || t.starts_with("#includedir"))
                && t.contains("/etc/sudoers.d")
            {
                format!("@includedir {}", d.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let file = dir.join("sudoers");
    std::fs::write(&file, main).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o440)).unwrap();
    file
}

/// /etc/sudo.conf naming `sudoers` as the policy file.
pub fn sudo_conf_for(sudoers: &std::path::Path) -> String {
    format!(
        "Plugin sudoers_policy sudoers.so sudoers_file={} sudoers_mode=0440\n\
         Plugin sudoers_io sudoers.so\n",
        sudoers.display()
    )
}
