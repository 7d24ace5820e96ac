//! Grants in bulk for the scale benchmark: client processes that ask over the bus as their own
//! user (the daemon knows a caller only by its bus credentials), the cost of one grant (over the
//! bus and through `jitctl`), and grants made to end in the same second and watched go.
//!
//! Deadlines "in the same second" come from computed durations, not a fake clock (the release
//! build has none): each grant asks for the whole seconds left until one instant, so every
//! deadline falls within the second after it.

#![allow(clippy::disallowed_methods)] // a benchmark runs real processes, threads and waits

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench_scale::{Figure, Report, User, as_uid, socket_check, timed, wall_ms};
use crate::{Daemon, stderr, stdout};

/// What the bench binary does when started as a client (`jitd-bench-scale grant|cycle ...`);
/// false if `args` are not a client's.
pub fn client_main(args: &[String]) -> bool {
    match args.get(1).map(String::as_str) {
        Some("grant") if args.len() >= 4 => {
            let until_ms: i64 = args[2].parse().expect("UNTIL_MS");
            let secs: u64 = args[3].parse().expect("SECS");
            grant_client(until_ms, secs, &args[4..]);
            true
        }
        Some("cycle") if args.len() == 4 => {
            cycle_client(args[2].parse().expect("N"), &args[3]);
            true
        }
        _ => false,
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Asks for each privilege in turn on one connection; prints `ok MS EXPIRES_MS UID` per grant
/// (`PRIVILEGE` after it) or `error ...`. With `until_ms` > 0 each asks for the whole seconds left until then.
fn grant_client(until_ms: i64, secs: u64, privileges: &[String]) {
    use jitd::client::ManagerProxy;
    // SAFETY: getuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    let out = zbus::block_on(async {
        let conn = jitd::client::connect(None).await.expect("the bus");
        let manager = ManagerProxy::new(&conn).await.expect("the manager");
        let mut out = String::new();
        for p in privileges {
            let secs = if until_ms > 0 {
                ((until_ms - wall_ms()).max(1000) as u64).div_ceil(1000)
            } else {
                secs
            };
            let t = Instant::now();
            match manager.request(p, secs, "", "").await {
                Ok(o) => out.push_str(&format!(
                    "ok {} {} {uid} {p}\n",
                    ms_since(t),
                    o.grant.expires_ms
                )),
                Err(e) => out.push_str(&format!("error {p}: {e}\n")),
            }
        }
        out
    });
    print!("{out}");
}

/// `n` times: asks for `privilege` (timed) and drops it again (not timed), so the live set stays
/// what it was. Prints `ok MS` per request.
fn cycle_client(n: usize, privilege: &str) {
    use jitd::client::ManagerProxy;
    let out = zbus::block_on(async {
        let conn = jitd::client::connect(None).await.expect("the bus");
        let manager = ManagerProxy::new(&conn).await.expect("the manager");
        let mut out = String::new();
        for _ in 0..n {
            let t = Instant::now();
            match manager.request(privilege, 600, "", "").await {
                Ok(o) => {
                    out.push_str(&format!("ok {}\n", ms_since(t)));
                    if let Err(e) = manager.revoke(&o.grant.id, "", false).await {
                        out.push_str(&format!("error drop: {e}\n"));
                    }
                }
                Err(e) => out.push_str(&format!("error {privilege}: {e}\n")),
            }
        }
        out
    });
    print!("{out}");
}

/// What a batch of clients reported.
#[derive(Default)]
pub struct Batch {
    /// Round trip of each `Manager.Request`, ms.
    pub latencies: Vec<f64>,
    /// (uid, wall deadline ms, privilege) of each grant made.
    pub grants: Vec<(u32, i64, String)>,
    pub errors: Vec<String>,
    /// Wall time of the whole batch, s.
    pub secs: f64,
}

fn collect(child: Child, batch: &mut Batch) {
    let o = child.wait_with_output().expect("a client");
    if !o.status.success() {
        batch.errors.push(format!("client failed: {}", stderr(&o)));
    }
    for line in stdout(&o).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["ok", ms, rest @ ..] => {
                batch.latencies.push(ms.parse().unwrap_or(f64::NAN));
                if let [expires, uid, privilege] = rest {
                    batch.grants.push((
                        uid.parse().unwrap_or(0),
                        expires.parse().unwrap_or(0),
                        privilege.to_string(),
                    ));
                }
            }
            _ => batch.errors.push(line.to_string()),
        }
    }
}

/// Each user asks for every privilege of `privileges` from a client process of its own,
/// `parallel` clients at a time; `until_ms` > 0 makes every grant end in the second after it,
/// else each lasts `secs`.
pub fn populate(
    exe: &Path,
    users: &[User],
    privileges: &[String],
    until_ms: i64,
    secs: u64,
    parallel: usize,
) -> Batch {
    let mut batch = Batch::default();
    let start = Instant::now();
    let mut running: VecDeque<Child> = VecDeque::new();
    for u in users {
        if running.len() >= parallel
            && let Some(c) = running.pop_front()
        {
            collect(c, &mut batch);
        }
        let child = as_uid(&mut Command::new(exe), u)
            .arg("grant")
            .arg(until_ms.to_string())
            .arg(secs.to_string())
            .args(privileges)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a client");
        running.push_back(child);
    }
    for c in running {
        collect(c, &mut batch);
    }
    batch.secs = start.elapsed().as_secs_f64();
    batch
}

/// `n` grants of `privilege` to `u` over the bus, each dropped again: the round trips, ms.
pub fn cycle_bus(exe: &Path, u: &User, n: usize, privilege: &str) -> Vec<f64> {
    let o = crate::run(
        as_uid(&mut Command::new(exe), u)
            .arg("cycle")
            .arg(n.to_string())
            .arg(privilege),
    );
    let mut v = Vec::new();
    for line in stdout(&o).lines() {
        match line.strip_prefix("ok ").and_then(|ms| ms.parse().ok()) {
            Some(ms) => v.push(ms),
            None => eprintln!("[bench-scale] cycle client: {line}"),
        }
    }
    v
}

/// `n` times `jitctl elevate PRIVILEGE` as `u` (process start-up included; timed), then
/// `jitctl drop` (not timed).
pub fn cycle_jitctl(u: &User, n: usize, privilege: &str) -> Vec<f64> {
    let mut v = Vec::new();
    for _ in 0..n {
        let (o, ms) = timed(
            as_uid(&mut Command::new("jitctl"), u)
                .args(["--json", "elevate", privilege, "--for", "10m"])
                .args(["--reason", "bench"]),
        );
        if !o.status.success() {
            eprintln!("[bench-scale] jitctl elevate: {}", stderr(&o));
            continue;
        }
        v.push(ms);
        let id: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let id = id["grant"]["id"].as_str().unwrap_or_default().to_string();
        let o = crate::run(as_uid(&mut Command::new("jitctl"), u).args(["drop", &id]));
        if !o.status.success() {
            eprintln!("[bench-scale] jitctl drop: {}", stderr(&o));
        }
    }
    v
}

/// `late_ms` of every `grant.expired` record in the daemon's log.
fn expired_lateness(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("event=grant.expired"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix("late_ms="))
                .and_then(|v| v.trim_matches('"').parse().ok())
        })
        .collect()
}

/// Counts the lines of a growing log that contain a pattern, reading only what was added since
/// the last call: the whole log of 10,000 expiries read every 20 ms would take the CPU the
/// daemon needs for them.
struct Counter {
    offset: u64,
    count: usize,
    pattern: &'static str,
}

impl Counter {
    fn new(path: &Path, pattern: &'static str) -> Counter {
        let mut c = Counter {
            offset: 0,
            count: 0,
            pattern,
        };
        c.count(path);
        c
    }

    fn count(&mut self, path: &Path) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(path) else {
            return self.count;
        };
        let mut added = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_ok() && f.read_to_end(&mut added).is_ok() {
            // Only whole lines: a line being written is read again next time.
            let end = added.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let text = String::from_utf8_lossy(&added[..end]);
            self.count += text.matches(self.pattern).count();
            self.offset += end as u64;
        }
        self.count
    }
}

/// What watching the gate around the deadlines found.
#[derive(Default)]
struct GateWatch {
    /// For each sampled grant: ms from its deadline to the first refusal received.
    refused_after: Vec<f64>,
    /// Answers "allowed" to checks sent at or after the grant's deadline.
    allowed_late: usize,
    /// Answers "allowed" to checks sent before it (the grant must be live then).
    allowed_before: usize,
    checks: usize,
}

/// Asks the gate socket about each sampled grant until each is refused after its deadline.
fn watch_gate(samples: Vec<(u32, String, i64)>, give_up_ms: i64) -> GateWatch {
    let mut w = GateWatch::default();
    let mut open: Vec<(u32, String, i64)> = samples;
    while !open.is_empty() && wall_ms() < give_up_ms {
        open.retain(|(uid, service, deadline)| {
            let sent = wall_ms();
            if sent < deadline - 300 {
                return true;
            }
            let allowed = socket_check(*uid, service);
            w.checks += 1;
            if sent < *deadline {
                w.allowed_before += usize::from(allowed);
                return true;
            }
            if allowed {
                w.allowed_late += 1;
                return true;
            }
            w.refused_after.push((wall_ms() - deadline) as f64);
            false
        });
        std::thread::sleep(Duration::from_millis(1));
    }
    w
}

/// Grants for `users` × `privileges`, made to end in the same second, then watched go: pushes the
/// lateness of each removal (audit `late_ms`) and, with `gate_watched` (sudo grants), what the
/// gate answered around each sampled deadline. `gone(uids)` says whether the system shows
/// nothing of them any more. `rate` (grants/s, measured earlier)
/// sets how far ahead the common deadline must be for every grant to be made before it.
#[allow(clippy::too_many_arguments)] // one figure's set-up, named at the call
pub fn expire_together(
    report: &mut Report,
    d: &Daemon,
    exe: &Path,
    users: &[User],
    privileges: &[String],
    rate: f64,
    id: &str,
    what: &str,
    target: &str,
    gate_watched: bool,
    gone: &dyn Fn(&[u32]) -> bool,
) {
    let n = users.len() * privileges.len();
    let lead_ms = (n as f64 / rate.max(1.0) * 1000.0 * 2.0) as i64 + 1500 + n as i64;
    let until = wall_ms() + lead_ms;
    let batch = populate(exe, users, privileges, until, 0, 4);
    if !batch.errors.is_empty() {
        report.note(format!(
            "{id}: {} of {n} grants failed, e.g. {}",
            batch.errors.len(),
            batch.errors[0]
        ));
    }
    let made = batch.grants.len();
    let first = batch.grants.iter().map(|g| g.1).min().unwrap_or(until);
    let last = batch.grants.iter().map(|g| g.1).max().unwrap_or(until);
    if wall_ms() >= first {
        report.note(format!(
            "{id}: making the grants took longer than the lead ({lead_ms} ms): some were due \
             before the last was made"
        ));
    }
    // The gate, for a sample of the sudo grants, on a thread of its own around the deadlines.
    let watcher = gate_watched.then(|| {
        let step = (made / 20).max(1);
        let samples: Vec<(u32, String, i64)> = batch
            .grants
            .iter()
            .step_by(step)
            .map(|(uid, dl, p)| (*uid, format!("jitd-{p}"), *dl))
            .collect();
        let give_up = last + 10_000;
        std::thread::spawn(move || watch_gate(samples, give_up))
    });
    let uids: Vec<u32> = users.iter().map(|u| u.uid).collect();
    // Every removal audited, or a generous limit.
    let limit = Duration::from_millis((last - wall_ms()).max(0) as u64)
        + Duration::from_secs(60 + n as u64 / 100);
    let start = Instant::now();
    let log_path = d.dir.join("jitd.log");
    let mut expired = Counter::new(&log_path, "event=grant.expired");
    let mut all_gone_at: Option<i64> = None;
    let mut audited_at: Option<i64> = None;
    while start.elapsed() < limit && (all_gone_at.is_none() || audited_at.is_none()) {
        if wall_ms() > first {
            if all_gone_at.is_none() && gone(&uids) {
                all_gone_at = Some(wall_ms());
            }
            if audited_at.is_none() && expired.count(&log_path) >= made {
                audited_at = Some(wall_ms());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let late = expired_lateness(&d.log());
    if late.len() < made {
        report.note(format!(
            "{id}: only {} of {made} expiries were audited within {limit:?}",
            late.len()
        ));
    }
    report.push(
        Figure::new(
            id,
            format!("{what}: each removal after its deadline (audit late_ms; max = the last)"),
            "ms",
            late,
        )
        .target(target),
    );
    let spread = last - first;
    match (all_gone_at, audited_at) {
        (Some(g), Some(a)) => report.note(format!(
            "{id}: {made} deadlines within {spread} ms; after the last deadline, the system \
             showed none of them {} ms later and every expiry was audited {} ms later \
             (polled every 20 ms)",
            g - last,
            a - last
        )),
        _ => report.note(format!(
            "{id}: not all gone within {limit:?} (gone from the system: {}, audited: {}); \
             sudoers.d still naming them: {:?}",
            all_gone_at.is_some(),
            audited_at.is_some(),
            sudo_leftovers(&uids)
        )),
    }
    if let Some(w) = watcher {
        let w = w.join().unwrap_or_default();
        report.note(format!(
            "{id}: gate socket around {} sampled deadlines: {} checks; allowed before the \
             deadline {} times; allowed at or after it {} times (must be 0)",
            w.refused_after.len(),
            w.checks,
            w.allowed_before,
            w.allowed_late
        ));
        report.push(Figure::new(
            &format!("{id}g"),
            format!("{what}: gate's first refusal after each sampled deadline (polled each ms)"),
            "ms",
            w.refused_after,
        ));
    }
}

/// Whether no jitd file in /etc/sudoers.d names any of `uids` (`#UID`) any more.
pub fn sudo_gone(uids: &[u32]) -> bool {
    sudo_leftovers(uids).is_empty()
}

/// The jitd files in /etc/sudoers.d that still name one of `uids` (`#UID`). While many files
/// are left only their names are read (a listing is cheap; reading 10,000 files every poll
/// would take the CPU the expiry needs).
pub fn sudo_leftovers(uids: &[u32]) -> Vec<String> {
    let files: Vec<std::path::PathBuf> = std::fs::read_dir("/etc/sudoers.d")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| {
                    // Grant files only: one per grant (`jitd-<id>`) or one per privilege
                    // (`jitd_grants_<privilege>`). Per-user settings files (the command ledger's,
                    // which rightly keeps logging a user for a while after a grant) are not grants.
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("jitd-") || name.starts_with("jitd_grants")
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    if files.len() > 50 {
        return vec![format!("{} jitd files", files.len())];
    }
    files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            uids.iter().any(|uid| {
                let tag = format!("#{uid}");
                text.match_indices(&tag).any(|(i, _)| {
                    !text[i + tag.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit())
                })
            })
        })
        .map(|f| f.display().to_string())
        .collect()
}

/// Whether `group` has no members left in the group database.
pub fn group_empty(group: &str) -> bool {
    let o = crate::run(Command::new("getent").args(["group", group]));
    stdout(&o)
        .trim()
        .rsplit(':')
        .next()
        .is_none_or(|m| m.is_empty())
}
