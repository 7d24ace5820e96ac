//! Harness for the end-to-end suites. They run inside `tests/sandbox` (a private mount
//! namespace with an overlay /etc and a private system bus), as root, against the real jitd
//! binary, real sudo, visudo, gpasswd, useradd and dbus-daemon.
//!
//! Every end-to-end test is `#[ignore]`d, so a plain `cargo test` lists it as not run;
//! `tests/run` runs them in the sandbox with `--include-ignored`. Run outside the sandbox, a
//! test fails: it never passes without running.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

pub mod approvals;
pub mod bench_approve;
pub mod bench_notify;
pub mod bench_scale;
pub mod bench_scale_load;
pub mod bench_scale_pair;
pub mod bench_scale_peers;
pub mod bench_signed;
pub mod bench_sudo;
mod daemon;
pub mod notify;
pub mod signed;

pub use daemon::{Daemon, bus_name_owned, start_bus, stop_bus};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The sandbox the suite runs in.
pub struct Sandbox {
    pub dir: PathBuf,
    pub bin: PathBuf,
}

/// The sandbox the test runs in. The end-to-end tests are `#[ignore]`d so a plain
/// `cargo test` reports them as not run; `tests/run` runs them inside the sandbox with
/// `--include-ignored`. Outside it they fail loudly rather than pass without running.
pub fn sandbox() -> Sandbox {
    match std::env::var_os("JITD_SANDBOX") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let bin = dir.join("bin");
            Sandbox { dir, bin }
        }
        None => panic!(
            "this end-to-end test needs root and the throw-away sandbox: run `tests/run` as root \
             (or `tests/sandbox cargo test -p jitd-tests -- --include-ignored`)"
        ),
    }
}

/// Runs a command, capturing everything.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Creates a local user (no home) if missing; returns its uid.
pub fn ensure_user(name: &str) -> u32 {
    ensure_user_with(name, &[])
}

/// Like [`ensure_user`], with extra `useradd` flags (e.g. `--badname`).
pub fn ensure_user_with(name: &str, flags: &[&str]) -> u32 {
    if uid_of(name).is_none() {
        let o = run(Command::new("useradd")
            .args(["-M", "-l", "-s", "/bin/sh"])
            .args(flags)
            .arg(name));
        assert!(o.status.success(), "useradd {name}: {}", stderr(&o));
    }
    uid_of(name).unwrap_or_else(|| panic!("user {name} missing after useradd"))
}

pub fn uid_of(name: &str) -> Option<u32> {
    let o = run(Command::new("id").args(["-u", name]));
    o.status
        .success()
        .then(|| stdout(&o).trim().parse().ok())
        .flatten()
}

pub fn ensure_group(name: &str) {
    let o = run(Command::new("getent").args(["group", name]));
    if !o.status.success() {
        let o = run(Command::new("groupadd").arg(name));
        assert!(o.status.success(), "groupadd {name}: {}", stderr(&o));
    }
}

/// Adds `user` to `group` permanently (test set-up, not through jitd).
pub fn add_to_group(user: &str, group: &str) {
    let o = run(Command::new("gpasswd").args(["-a", user, group]));
    assert!(
        o.status.success(),
        "gpasswd -a {user} {group}: {}",
        stderr(&o)
    );
}

/// Runs `args` as `user` through `runuser` (a real login-less switch of all ids).
pub fn as_user(user: &str, args: &[&str]) -> Output {
    run(Command::new("runuser").args(["-u", user, "--"]).args(args))
}

/// `sudo -n ARGS` as `user`, started through `su` like a user at a shell would.
pub fn sudo_as(user: &str, args: &str) -> Output {
    run(Command::new("su").args([user, "-s", "/bin/sh", "-c", &format!("sudo -n {args}")]))
}

/// Accounts written straight into the sandbox's /etc/passwd and /etc/shadow (useradd takes tens
/// of milliseconds each; suites and benchmarks that need hundreds use this): `(name, uid)`,
/// primary group 100, no password.
pub fn add_accounts(accounts: &[(String, u32)], shell: &str) {
    use std::io::Write;
    let open = |p: &str| {
        std::fs::OpenOptions::new()
            .append(true)
            .open(p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let (mut passwd, mut shadow) = (open("/etc/passwd"), open("/etc/shadow"));
    for (name, uid) in accounts {
        writeln!(passwd, "{name}:x:{uid}:100::/nonexistent:{shell}").unwrap();
        writeln!(shadow, "{name}:!:20000:0:99999:7:::").unwrap();
    }
}

/// The `alert.raised` lines of the daemon's log.
pub fn alerts(d: &Daemon) -> Vec<String> {
    d.log()
        .lines()
        .filter(|l| l.contains("event=alert.raised"))
        .map(str::to_string)
        .collect()
}

/// Waits (10 s at most) for an alert of `rule` whose line holds `what`; returns the line.
pub fn wait_alert(d: &Daemon, rule: &str, what: &str) -> String {
    let mut found = String::new();
    wait_for(
        Duration::from_secs(10),
        &format!("the {rule} alert"),
        || {
            found = alerts(d)
                .into_iter()
                .find(|l| l.contains(&format!("rule={rule} ")) && l.contains(what))
                .unwrap_or_default();
            !found.is_empty()
        },
    );
    found
}

/// Secondary group names of `user`, from the group database (what a new login gets).
pub fn groups_of(user: &str) -> Vec<String> {
    let o = run(Command::new("id").args(["-Gn", user]));
    stdout(&o).split_whitespace().map(str::to_string).collect()
}

/// jitd's grant files in /etc/sudoers.d: each privilege's `jitd_grants_<privilege>` (and
/// `jitd-<grant>`, one grant's file as jitd before 0.2 wrote it), with any temp files.
pub fn drop_ins() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/etc/sudoers.d")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    ["jitd-", ".jitd-", "jitd_grants_", ".jitd_grants_"]
                        .iter()
                        .any(|p| n.starts_with(p))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The sudoers file holding the grants of `privilege`.
pub fn grants_file(privilege: &str) -> PathBuf {
    PathBuf::from(format!("/etc/sudoers.d/jitd_grants_{privilege}"))
}

/// The rule lines in jitd's grant files, each `#uid[, #uid…] ALL=…`.
pub fn sudo_rules() -> Vec<String> {
    drop_ins()
        .iter()
        .filter(|n| n.starts_with("jitd"))
        .filter_map(|n| std::fs::read_to_string(Path::new("/etc/sudoers.d").join(n)).ok())
        .flat_map(|t| {
            t.lines()
                .filter(|l| l.starts_with('#') && l.contains(" ALL="))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The uids jitd's grant files give a sudo rule to.
pub fn uids_with_rules() -> Vec<u32> {
    let mut uids: Vec<u32> = sudo_rules()
        .iter()
        .flat_map(|l| {
            let users = l.split(" ALL=").next().unwrap_or_default().to_string();
            users
                .split(", ")
                .filter_map(|u| u.strip_prefix('#')?.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    uids.sort();
    uids.dedup();
    uids
}

/// `visudo -c` over the whole sudoers configuration.
pub fn sudoers_valid() -> bool {
    run(Command::new("visudo").arg("-c")).status.success()
}

/// A real polkitd on the sandbox's bus, with `rules` as the only local rules file. Started as
/// root, it switches to the `polkitd` user itself, as under its unit. The project's action file
/// is in place (tests/sandbox).
pub struct Polkit {
    child: Child,
}

const POLKIT_RULES: &str = "/etc/polkit-1/rules.d/50-jitd-test.rules";

fn polkit_on_bus() -> bool {
    run(Command::new("busctl").args(["--system", "status", "org.freedesktop.PolicyKit1"]))
        .status
        .success()
}

impl Polkit {
    pub fn start(rules: &str) -> Polkit {
        std::fs::write(POLKIT_RULES, rules).unwrap();
        let child = Command::new("/usr/lib/polkit-1/polkitd")
            .arg("--no-debug")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("polkitd (package polkitd)");
        wait_for(Duration::from_secs(10), "polkitd on the bus", polkit_on_bus);
        Polkit { child }
    }
}

impl Drop for Polkit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(POLKIT_RULES);
        // The name must be gone before the next test looks at polkit's absence.
        wait_for(Duration::from_secs(5), "polkitd to leave the bus", || {
            !polkit_on_bus()
        });
    }
}

/// Polls `cond` until true or panics after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        sleep(Duration::from_millis(50));
    }
}

/// Waits until `path` does not exist, up to `limit`; returns how long it took.
pub fn wait_gone(path: &Path, limit: Duration) -> Duration {
    let start = Instant::now();
    wait_for(limit, &format!("{} to disappear", path.display()), || {
        !path.exists()
    });
    start.elapsed()
}

/// Replaces a file for the life of the guard (PAM stacks and sudoers in the sandbox's /etc).
pub struct Replaced {
    path: PathBuf,
    old: Option<Vec<u8>>,
}

impl Replaced {
    pub fn new(path: &str, text: &str, mode: u32) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let path = PathBuf::from(path);
        let old = std::fs::read(&path).ok();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        Self { path, old }
    }
}

impl Drop for Replaced {
    fn drop(&mut self) {
        match &self.old {
            Some(old) => std::fs::write(&self.path, old).unwrap(),
            None => std::fs::remove_file(&self.path).unwrap(),
        }
    }
}

pub fn module() -> String {
    let sb = std::env::var("JITD_SANDBOX").unwrap();
    format!("{sb}/bin/pam_jit.so")
}

/// Debian's sudo stack with pam_jit in front of the account and session stacks.
pub fn sudo_stack(account_args: &str) -> Replaced {
    let m = module();
    Replaced::new(
        "/etc/pam.d/sudo",
        &format!(
            "#%PAM-1.0\n\
             session    required   pam_limits.so\n\
             @include common-auth\n\
             account    requisite  {m} {account_args}\n\
             @include common-account\n\
             session    optional   {m} debug\n\
             @include common-session-noninteractive\n"
        ),
        0o644,
    )
}
