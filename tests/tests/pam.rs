//! pam_jit through real PAM: real sudo and su with the freshly built module in their stacks,
//! pamtester, and an in-process PAM application that counts the threads the module leaves.
//! Run by `tests/run` inside `tests/sandbox`; each test starts its own daemon.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jitd_tests::*;

/// `kind = "gate"` privileges: the admin's static sudoers line below says what alice may run;
/// a grant only opens pam_jit's gate. `gated-id` opens the whole `sudo` service (every static
/// rule not named by another privilege); `once-id` and `recall-id` open only their own commands,
/// which sudo runs under their own PAM services. `once-id` ends with its first sudo session.
const POLICY: &str = r#"
[privilege.gated-id]
kind = "gate"
description = "Run id as root through the static sudoers rule"
pam_services = ["sudo", "su", "jit-test"]

[privilege.once-id]
kind = "gate"
commands = ["/usr/bin/id -G", "/usr/bin/sleep 301"]
session_bound = true

[privilege.other-service]
kind = "gate"
pam_services = ["cron"]

[privilege.recall-id]
kind = "gate"
commands = ["/usr/bin/sleep 302"]
on_end = "terminate"

[[rule]]
name = "on call"
users = ["alice"]
privileges = ["gated-id", "once-id", "other-service", "recall-id"]
max_duration = "1h"
default_duration = "10m"
reason_min_chars = 5
max_active = 3
interactive = true

[[rule]]
name = "cli only"
users = ["carol"]
privileges = ["gated-id"]
max_duration = "1h"
"#;

/// The static eligibility rule the admin writes while pam_jit is the gate.
const STATIC_SUDOERS: &str = "alice ALL=(root) NOPASSWD: /usr/bin/id, /usr/bin/sleep\ncarol ALL=(root) NOPASSWD: /usr/bin/id\n";

struct Setup {
    sb: Sandbox,
    _sudoers: Replaced,
}

fn setup() -> Setup {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("carol");
    let sudoers = Replaced::new("/etc/sudoers.d/static-eligible", STATIC_SUDOERS, 0o440);
    assert!(sudoers_valid());
    Setup {
        sb,
        _sudoers: sudoers,
    }
}

fn jitctl(user: &str, args: &[&str]) -> Output {
    let mut full = vec!["jitctl"];
    full.extend_from_slice(args);
    as_user(user, &full)
}

fn elevate(user: &str, privilege: &str, secs: u32) {
    let o = jitctl(
        user,
        &[
            "elevate",
            privilege,
            "--for",
            &format!("{secs}s"),
            "--reason",
            "pam end-to-end test",
        ],
    );
    assert!(o.status.success(), "elevate: {}{}", stdout(&o), stderr(&o));
}

/// `sudo -S` with nothing on stdin: like a user at a terminal who types nothing. (`sudo -n`
/// would hide pam_jit's message: sudo runs no conversation at all then.)
fn sudo_id(user: &str) -> Output {
    sudo_cmd(user, "/usr/bin/id -u")
}

fn sudo_cmd(user: &str, command: &str) -> Output {
    run(Command::new("su")
        .args([user, "-s", "/bin/sh", "-c", &format!("sudo -S {command}")])
        .stdin(Stdio::null()))
}

fn allowed(o: &Output) -> bool {
    o.status.success() && stdout(o).trim() == "0"
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn sudo_is_gated_refused_without_grant_allowed_during_refused_after() {
    let s = setup();
    let _pam = sudo_stack("");
    let d = Daemon::start(&s.sb, "pam-gate", POLICY);

    // The static rule alone is not enough any more.
    let before = sudo_id("alice");
    assert!(!allowed(&before), "no grant, no sudo: {}", stdout(&before));
    let said = stderr(&before);
    assert!(
        said.contains("no active elevation for alice on sandbox")
            && said.contains("jitctl elevate gated-id"),
        "the refusal says what to run: {said}"
    );

    elevate("alice", "gated-id", 3);
    assert!(drop_ins().is_empty(), "a gate grant writes no drop-in");
    let during = sudo_id("alice");
    assert!(
        allowed(&during),
        "sudo during the grant: {}",
        stderr(&during)
    );

    // A grant that opens another service does not open sudo.
    let other = sudo_id("carol");
    assert!(!allowed(&other), "carol has no grant");

    std::thread::sleep(Duration::from_millis(3500));
    let after = sudo_id("alice");
    assert!(!allowed(&after), "sudo after expiry: {}", stdout(&after));
    let log = d.log();
    assert!(log.contains("grant.expired"), "{log}");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_grant_for_another_service_does_not_open_sudo() {
    let s = setup();
    let _pam = sudo_stack("");
    let _d = Daemon::start(&s.sb, "pam-other", POLICY);
    elevate("alice", "other-service", 60);
    assert!(!allowed(&sudo_id("alice")), "a cron-only grant opened sudo");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn jitd_stopped_or_frozen_fails_closed_without_hanging_sudo() {
    let s = setup();
    let _pam = sudo_stack("timeout_ms=700");
    let mut d = Daemon::start(&s.sb, "pam-down", POLICY);
    elevate("alice", "gated-id", 60);
    assert!(allowed(&sudo_id("alice")), "allowed while jitd answers");

    // Frozen: the bus accepts the call, nobody answers.
    // SAFETY: kill(2) on the daemon we started.
    unsafe { libc::kill(d.pid() as i32, libc::SIGSTOP) };
    let start = Instant::now();
    let frozen = sudo_id("alice");
    let waited = start.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(d.pid() as i32, libc::SIGCONT) };
    assert!(!allowed(&frozen), "a frozen jitd must not let sudo through");
    assert!(
        stderr(&frozen).contains("jitd is not answering"),
        "{}",
        stderr(&frozen)
    );
    assert!(
        waited < Duration::from_secs(5),
        "sudo returned after the module's timeout, not hung: {waited:?}"
    );
    assert!(allowed(&sudo_id("alice")), "allowed again once thawed");

    // Gone: nobody owns the name.
    d.kill9();
    let gone = sudo_id("alice");
    assert!(!allowed(&gone), "a stopped jitd must not let sudo through");

    // fail=open is an explicit choice, and it is honoured.
    drop(_pam);
    let _open = sudo_stack("fail=open");
    assert!(
        allowed(&sudo_id("alice")),
        "fail=open lets sudo through with jitd down"
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn su_is_gated_on_the_invoking_users_grant_and_ignores_the_environment() {
    let s = setup();
    ensure_user("target");
    let m = module();
    // Passwordless su for the test (the sandbox's /etc is throw-away); pam_jit is the gate.
    let _pam = Replaced::new(
        "/etc/pam.d/su",
        &format!(
            "#%PAM-1.0\nauth sufficient pam_permit.so\naccount requisite {m}\naccount required pam_permit.so\nsession required pam_permit.so\n"
        ),
        0o644,
    );
    let _d = Daemon::start(&s.sb, "pam-su", POLICY);
    let su = |env: Option<&str>| {
        let mut c = Command::new("runuser");
        c.args([
            "-u", "alice", "--", "su", "target", "-s", "/bin/sh", "-c", "id -un",
        ]);
        if let Some(addr) = env {
            c.env("DBUS_SYSTEM_BUS_ADDRESS", addr);
        }
        run(c.stdin(Stdio::null()))
    };
    let before = su(None);
    assert!(
        !before.status.success(),
        "su without a grant: {}",
        stdout(&before)
    );
    elevate("alice", "gated-id", 60);
    let during = su(None);
    assert!(
        during.status.success() && stdout(&during).trim() == "target",
        "su with a grant: {}{}",
        stdout(&during),
        stderr(&during)
    );
    // Were the environment read, the module would talk to this dead address and fail closed.
    let evil = su(Some("unix:path=/tmp/evil-bus"));
    assert!(
        evil.status.success(),
        "DBUS_SYSTEM_BUS_ADDRESS must be ignored: {}",
        stderr(&evil)
    );
    // And root's own su is never gated: the break-glass path does not depend on jitd.
    let root = run(Command::new("su").args(["target", "-s", "/bin/sh", "-c", "true"]));
    assert!(root.status.success(), "root su: {}", stderr(&root));
}

/// The module sudo loads for everyone needs nothing sudo has not loaded already but libpam
/// and libc: in particular not libgcc_s, whose loading alone was most of the module's cost.
/// (The panic test below proves the unwinder linked in still contains a panic.)
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_module_links_no_library_sudo_does_not_load() {
    let s = setup();
    let o = run(Command::new("readelf").args(["-d", &module()]));
    assert!(o.status.success(), "{}", stderr(&o));
    let needed: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_string))
        .collect();
    for lib in &needed {
        assert!(
            ["libpam.so.0", "libc.so.6"].contains(&lib.as_str()) || lib.starts_with("ld-linux"),
            "pam_jit needs {lib}: {needed:?}"
        );
    }
    drop(s);
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn pamtester_sees_the_gate_and_a_panic_is_contained() {
    let s = setup();
    let m = module();
    let _svc = Replaced::new(
        "/etc/pam.d/jit-test",
        &format!("account required {m}\n"),
        0o644,
    );
    let _panic = Replaced::new(
        "/etc/pam.d/jit-panic",
        &format!("account required {m} test_panic\n"),
        0o644,
    );
    let _bad = Replaced::new(
        "/etc/pam.d/jit-badarg",
        &format!("account required {m} fail=opne\n"),
        0o644,
    );
    let _d = Daemon::start(&s.sb, "pam-tester", POLICY);
    let pamtester = |svc: &str| {
        run(Command::new("pamtester").args(["-I", "ruser=alice", svc, "alice", "acct_mgmt"]))
    };
    let o = pamtester("jit-test");
    assert!(!o.status.success(), "no grant: {}", stdout(&o));
    elevate("alice", "gated-id", 60);
    let o = pamtester("jit-test");
    assert!(
        o.status.success(),
        "with a grant: {}{}",
        stdout(&o),
        stderr(&o)
    );

    let o = pamtester("jit-panic");
    assert_eq!(
        o.status.code(),
        Some(1),
        "the host survives a panic inside the module and gets an error: {o:?}"
    );
    assert!(
        stderr(&o).contains("Error in service module"),
        "PAM_SERVICE_ERR: {}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("panicked"),
        "the module prints nothing: {}",
        stderr(&o)
    );

    let o = pamtester("jit-badarg");
    assert!(
        !o.status.success(),
        "a misspelt fail= denies, it does not fail open"
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_module_leaves_no_thread_and_prints_nothing_in_the_host_process() {
    let s = setup();
    let m = module();
    let _svc = Replaced::new(
        "/etc/pam.d/jit-test",
        &format!("account required {m}\nsession required {m}\n"),
        0o644,
    );
    let _d = Daemon::start(&s.sb, "pam-threads", POLICY);
    elevate("alice", "gated-id", 60);
    let driver = env!("CARGO_BIN_EXE_pam-driver");
    for phase in ["account", "session"] {
        let o = run(Command::new(driver).args(["jit-test", "alice", phase, "alice"]));
        assert_eq!(
            stdout(&o).trim(),
            "rc=0 threads_after=1",
            "{phase}: {}",
            stderr(&o)
        );
        assert_eq!(stderr(&o), "", "{phase}: nothing printed by the module");
    }
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn an_in_place_request_at_the_sudo_prompt_lets_the_command_run() {
    let s = setup();
    let _pam = sudo_stack("interactive privilege=gated-id");
    let d = Daemon::start(&s.sb, "pam-inplace", POLICY);
    // sudo -S reads the answers from stdin: duration, then reason.
    let ask = |user: &str, answers: &str| {
        let mut child = Command::new("su")
            .args([user, "-s", "/bin/sh", "-c", "sudo -S /usr/bin/id -u"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answers.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let o = ask("alice", "15m\nrestart nginx after config change\n");
    assert!(
        allowed(&o),
        "in-place request then sudo: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let list = stdout(&jitctl("alice", &["status", "--json"]));
    assert!(list.contains("gated-id"), "the grant is live: {list}");
    assert!(d.log().contains("via=pam"), "audited as a PAM request");

    // A rule without `interactive = true` refuses requests from the prompt.
    let o = ask("carol", "15m\nrestart nginx after config change\n");
    assert!(!allowed(&o), "carol's rule is CLI only: {}", stdout(&o));
    assert!(
        stderr(&o).contains("interactive"),
        "says why: {}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn elevated_sessions_are_recorded_and_a_session_bound_grant_ends_with_its_session() {
    let s = setup();
    let _pam = sudo_stack("");
    let d = Daemon::start(&s.sb, "pam-session", POLICY);
    elevate("alice", "once-id", 60);
    assert!(allowed(&sudo_cmd("alice", "/usr/bin/id -G")), "first use");
    wait_for(
        Duration::from_secs(5),
        "the session-bound grant to end",
        || d.log().contains("session-bound privilege"),
    );
    let log = d.log();
    assert!(log.contains("session.opened"), "{log}");
    assert!(log.contains("session.closed"), "{log}");
    assert!(
        !allowed(&sudo_cmd("alice", "/usr/bin/id -G")),
        "the grant ended with its session"
    );
}

/// Starts `sudo /usr/bin/sleep <secs>` as alice and waits until pam_jit has recorded its
/// session (the `n`th `session.opened` in the daemon's log). 300 s is opened by `gated-id`,
/// 301 s by `once-id`, 302 s by `recall-id`.
fn long_sudo_session(d: &Daemon, n: usize, secs: u32) -> std::process::Child {
    let mut long = Command::new("su")
        .args([
            "alice",
            "-s",
            "/bin/sh",
            "-c",
            &format!("sudo -S /usr/bin/sleep {secs}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while d.log().matches("event=session.opened").count() < n {
        if let Some(status) = long.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            long.stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("sudo ended early ({status}): {err}\n{}", d.log());
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no session: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    long
}

/// Waits for `child` to end, up to `limit`.
fn wait_exit(
    child: &mut std::process::Child,
    limit: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn live_grant_id(user: &str) -> String {
    let o = jitctl(user, &["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["grants"][0]["id"].as_str().unwrap().to_string()
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn revoke_terminate_ends_the_running_sudo_session_of_the_grant() {
    let s = setup();
    let _pam = sudo_stack("");
    let d = Daemon::start(&s.sb, "pam-terminate", POLICY);
    elevate("alice", "gated-id", 600);
    let id = live_grant_id("alice");
    let mut long = long_sudo_session(&d, 1, 300);
    // on_end is "keep" for gated-id: only --terminate ends the session.
    let o =
        run(Command::new("jitctl").args(["revoke", &id, "--terminate", "--reason", "incident"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let status = wait_exit(
        &mut long,
        Duration::from_secs(15),
        "the elevated session survived revoke --terminate",
    );
    assert!(
        !status.success(),
        "ended by a signal, not finished: {status:?}"
    );
    assert!(d.log().contains("recall.started"), "audited with the pids");
    let o = jitctl("alice", &["revoke", "g000000000000", "--terminate"]);
    assert_ne!(o.status.code(), Some(0));
}

/// Sessions are durable: after a crash and restart jitd still knows the running session (so
/// `--terminate` reaches it), and a session that ended while jitd was down is closed at start,
/// ending its session-bound grant then rather than at the deadline.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn sessions_outlive_a_daemon_restart() {
    let s = setup();
    let _pam = sudo_stack("");
    let mut d = Daemon::start(&s.sb, "pam-restart", POLICY);

    elevate("alice", "gated-id", 600);
    let id = live_grant_id("alice");
    let mut long = long_sudo_session(&d, 1, 300);
    d.restart();
    let o = run(Command::new("jitctl").args([
        "revoke",
        &id,
        "--terminate",
        "--reason",
        "after restart",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let status = wait_exit(
        &mut long,
        Duration::from_secs(15),
        "the session recorded before the restart survived revoke --terminate",
    );
    assert!(!status.success(), "ended by a signal: {status:?}");

    elevate("alice", "once-id", 600);
    let once = live_grant_id("alice");
    let mut long = long_sudo_session(&d, 2, 301);
    d.kill9();
    // The session ends while nobody listens: pam_jit's close cannot reach jitd.
    let o = run(Command::new("pkill").args(["-f", "^/usr/bin/sleep 301"]));
    assert!(o.status.success(), "{}", stderr(&o));
    wait_exit(&mut long, Duration::from_secs(10), "sudo to finish");
    d.restart();
    let log = d.log();
    assert!(
        log.contains("ended while jitd was down (session-bound privilege)") && log.contains(&once),
        "{log}"
    );
    assert_eq!(d.state_of(&once), "revoked");
    assert!(
        !allowed(&sudo_cmd("alice", "/usr/bin/id -G")),
        "the session-bound grant ended at start-up"
    );
}

/// A grant with `on_end = "terminate"` that reaches its deadline while jitd is dead: at the next
/// start jitd ends the grant and the elevated session still running under it.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_session_whose_grant_ended_while_jitd_was_down_is_recalled_at_start() {
    let s = setup();
    let _pam = sudo_stack("");
    let mut d = Daemon::start(&s.sb, "pam-recall-restart", POLICY);
    // A minute's grant whose deadline passes while jitd is dead: the clock is moved past it
    // rather than waited for, so a slow machine cannot end it before jitd is killed.
    elevate("alice", "recall-id", 60);
    let mut long = long_sudo_session(&d, 1, 302);
    d.kill9();
    d.set_wall_offset_ms(120_000);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        long.try_wait().unwrap().is_none(),
        "nothing ended it while jitd was dead"
    );
    d.restart();
    let status = wait_exit(
        &mut long,
        Duration::from_secs(15),
        "the session outlived its grant after the restart",
    );
    assert!(!status.success(), "ended by a signal: {status:?}");
    // The record may land just after the signal: wait for it rather than read once.
    wait_for(Duration::from_secs(5), "the recall's record", || {
        d.log().contains("event=recall.started")
    });
}
