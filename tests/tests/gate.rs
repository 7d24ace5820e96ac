//! The gate under attack, through real PAM, sudo, pamtester and the real bus: a flood of the
//! bus API by one user stalls nobody's sudo and leaves a bounded trace; an impostor at the gate
//! socket is never believed; the auth phase neither authenticates nor takes requests for a
//! name typed at a prompt. Run by `tests/run` inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jitd_tests::*;

const POLICY: &str = r#"
[privilege.gated-id]
kind = "gate"
pam_services = ["sudo", "jit-auth"]

[[rule]]
name = "on call"
users = ["alice"]
privileges = ["gated-id"]
max_duration = "1h"
reason_required = false
interactive = true
"#;

const STATIC_SUDOERS: &str = "alice ALL=(root) NOPASSWD: /usr/bin/id\n";

fn setup() -> (Sandbox, Replaced) {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("mallory");
    let sudoers = Replaced::new("/etc/sudoers.d/static-gate", STATIC_SUDOERS, 0o440);
    assert!(sudoers_valid());
    (sb, sudoers)
}

fn elevate(user: &str) {
    let o = as_user(user, &["jitctl", "elevate", "gated-id", "--for", "10m"]);
    assert!(o.status.success(), "elevate: {}{}", stdout(&o), stderr(&o));
}

/// `sudo -n /usr/bin/id -u` as `user`; whether it ran as root.
fn sudo_ok(user: &str) -> bool {
    let o = sudo_as(user, "/usr/bin/id -u");
    o.status.success() && stdout(&o).trim() == "0"
}

fn audit_count(d: &Daemon, kind: &str) -> u64 {
    let o = run(Command::new("sqlite3").arg(d.state_db()).arg(format!(
        "SELECT count(*) FROM audit WHERE line LIKE 'event={kind} %'"
    )));
    stdout(&o).trim().parse().unwrap_or(0)
}

/// Finding 1: one user's flood of the bus API (32 connections, calls sent 100 at a time
/// without waiting) must not make anyone else's sudo wait or fail, and leaves at most the
/// allowed rate of records plus one summary per window.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_flood_of_the_bus_api_stalls_no_one_s_sudo_and_its_trace_is_bounded() {
    let (sb, _sudoers) = setup();
    let _pam = sudo_stack("");
    let d = Daemon::start(&sb, "gate-flood", POLICY);
    elevate("alice");
    assert!(sudo_ok("alice"));
    let invalid_before = audit_count(&d, "request.invalid");

    let stop = sb.dir.join("flood-stop");
    let flood = Command::new("runuser")
        .args(["-u", "mallory", "--"])
        .arg(sb.bin.join("jitd-flood"))
        .args(["32", "100"])
        .arg(&stop)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let t = Instant::now();
        assert!(sudo_ok("alice"), "sudo {i} during the flood was refused");
        slowest = slowest.max(t.elapsed());
    }
    std::fs::write(&stop, "").unwrap();
    let out = flood.wait_with_output().unwrap();
    let secs = started.elapsed().as_secs() + 1;
    let sent: u64 = stdout(&out).trim().parse().unwrap_or(0);
    eprintln!("{sent} calls flooded in {secs} s; slowest sudo meanwhile {slowest:?}");
    assert!(sent >= 3200, "the flood ran: {sent} calls");
    // su + sudo with their own PAM stacks: well under pam_jit's 2 s timeout.
    assert!(
        slowest < Duration::from_millis(1500),
        "a sudo took {slowest:?}"
    );
    // Bounded trace: the burst and the sustained rate of recorded refusals, plus one summary
    // per 10 s window (and one at the start).
    let invalid = audit_count(&d, "request.invalid") - invalid_before;
    let summaries = audit_count(&d, "calls.throttled");
    assert!(
        invalid <= 20 + 5 * secs,
        "{invalid} request.invalid rows in {secs} s"
    );
    assert!(
        (1..=secs / 10 + 2).contains(&summaries),
        "{summaries} calls.throttled rows in {secs} s"
    );
}

fn audit_rows(d: &Daemon) -> u64 {
    let o = run(Command::new("sqlite3")
        .arg(d.state_db())
        .arg("SELECT count(*) FROM audit"));
    stdout(&o).trim().parse().unwrap_or(0)
}

/// Finding 1, every kind of call from several users at once: invalid and valid names, the
/// admin's `ListAll` (a polkit question each), `Revoke` of a grant that is not theirs, and
/// `Explain`, from two users with 32 connections each. Every sudo of another user goes
/// through, and the whole audit trail grows by at most each flooding user's allowed rate
/// (burst 20, then 5 calls a second, at most 2 records a call) plus one summary per window.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_flood_of_every_call_from_several_users_stalls_no_one_and_its_trace_is_bounded() {
    let (sb, _sudoers) = setup();
    ensure_user("eve");
    let _pam = sudo_stack("");
    let d = Daemon::start(&sb, "gate-flood-mix", POLICY);
    elevate("alice");
    assert!(sudo_ok("alice"));
    let rows_before = audit_rows(&d);
    let stop = sb.dir.join("flood-mix-stop");
    let floods: Vec<_> = ["mallory", "eve"]
        .iter()
        .map(|user| {
            Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(sb.bin.join("jitd-flood"))
                .args(["32", "100"])
                .arg(&stop)
                .arg("mix")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let t = Instant::now();
        assert!(sudo_ok("alice"), "sudo {i} during the flood was refused");
        slowest = slowest.max(t.elapsed());
    }
    std::fs::write(&stop, "").unwrap();
    let sent: u64 = floods
        .into_iter()
        .map(|f| {
            stdout(&f.wait_with_output().unwrap())
                .trim()
                .parse()
                .unwrap_or(0)
        })
        .sum();
    let secs = started.elapsed().as_secs() + 1;
    eprintln!("{sent} mixed calls from 2 users in {secs} s; slowest sudo meanwhile {slowest:?}");
    assert!(sent >= 6400, "the floods ran: {sent} calls");
    // A check not answered within pam_jit's 2 s would have refused the sudo above; the whole
    // su + sudo stays near that on a machine whose cores the floods keep busy.
    assert!(
        slowest < Duration::from_millis(3000),
        "a sudo took {slowest:?}"
    );
    // 10 sudo sessions (opened, closed) and per flooding user the admitted calls and summaries.
    let grown = audit_rows(&d) - rows_before;
    let bound = 2 * 10 + 2 * (2 * (20 + 5 * secs) + secs / 10 + 2);
    assert!(
        grown <= bound,
        "{grown} audit rows in {secs} s (bound {bound})"
    );
    // Nobody's grant was touched and nothing was granted to the floods.
    let list = stdout(&as_user("alice", &["jitctl", "--json", "status"]));
    assert!(list.contains("gated-id"), "{list}");
    assert_eq!(audit_count(&d, "grant.revoked"), 0);
    assert_eq!(audit_count(&d, "request.allowed"), 1);
}

/// The gate socket is believed only when jitd is behind it: a symlink to a user's listener, or
/// a PAM line pointed at a directory a user owns, gets nothing — even from a listener that
/// answers "allowed".
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn an_impostor_at_the_gate_socket_is_never_believed() {
    let (sb, _sudoers) = setup();
    let mut d = Daemon::start(&sb, "gate-impostor", POLICY);
    elevate("alice");
    let evil = Path::new("/tmp/mallory-gate");
    let _ = std::fs::remove_dir_all(evil);
    std::fs::create_dir_all(evil).unwrap();
    assert!(
        run(Command::new("chown").args(["mallory", evil.to_str().unwrap()]))
            .status
            .success()
    );
    // A listener of mallory's that says yes to anything.
    let yes = r#"{"reply":"decision","decision":{"allowed":true,"grant_id":"g000000000001","privilege":"gated-id","expires_ms":0,"message":""}}"#;
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_UNIX)\ns.bind('{}/gate')\ns.listen(64)\n\
         while True:\n c,_=s.accept()\n c.recv(65536)\n c.sendall(b'{yes}\\n')\n c.close()\n",
        evil.display()
    );
    // Run as mallory directly (not through runuser, whose child would outlive a kill).
    use std::os::unix::process::CommandExt;
    let uid = uid_of("mallory").unwrap();
    let gid: u32 = stdout(&run(Command::new("id").args(["-g", "mallory"])))
        .trim()
        .parse()
        .unwrap();
    let mut listener = Command::new("python3")
        .args(["-c", &script])
        .uid(uid)
        .gid(gid)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(5), "mallory's listener", || {
        evil.join("gate").exists()
    });

    // 1. The PAM line names a socket in mallory's directory.
    {
        let _pam = sudo_stack(&format!("socket={}/gate", evil.display()));
        assert!(!sudo_ok("alice"), "a user's socket was believed");
    }
    // 2. jitd's own path replaced by a symlink to mallory's socket.
    d.stop();
    let gate = Path::new("/run/jitd/gate");
    let _ = std::fs::remove_file(gate);
    std::os::unix::fs::symlink(evil.join("gate"), gate).unwrap();
    {
        let _pam = sudo_stack("");
        assert!(
            !sudo_ok("alice"),
            "a symlink to a user's socket was believed"
        );
    }
    let _ = std::fs::remove_file(gate);
    let _ = listener.kill();
    let _ = listener.wait();
    let _ = std::fs::remove_dir_all(evil);
}

/// Peers at the gate socket that connect and then send nothing, or half a call, for longer
/// than any check takes (a stopped or traced process) hold up nobody's sudo, and a call sent
/// in pieces is still answered.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn silent_peers_at_the_gate_socket_hold_up_no_one() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let (sb, _sudoers) = setup();
    let _d = Daemon::start(&sb, "gate-silent", POLICY);
    elevate("alice");
    let _pam = sudo_stack("");
    let gate = jitd::gate_proto::DEFAULT_SOCKET;
    // More silent peers than the gate has threads accepting connections.
    let mut silent: Vec<UnixStream> = (0..16)
        .map(|_| UnixStream::connect(gate).unwrap())
        .collect();
    let mut half = UnixStream::connect(gate).unwrap();
    half.write_all(br#"{"call":"check","uid":"#).unwrap();
    silent.push(half.try_clone().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let t = Instant::now();
        assert!(sudo_ok("alice"), "a sudo with a live grant was refused");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "a sudo waited {:?} behind silent peers",
            t.elapsed()
        );
    }
    // The rest of the piecemeal call, after the inline wait: answered all the same.
    let uid = uid_of("alice").unwrap();
    half.write_all(format!(r#"{uid},"service":"sudo","tty":"","rhost":""}}"#).as_bytes())
        .unwrap();
    half.write_all(b"\n").unwrap();
    half.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    half.read_to_string(&mut answer).unwrap();
    assert!(answer.contains(r#""allowed":true"#), "{answer}");
    drop(silent);
}

/// A test service whose auth stack is `auth sufficient pam_jit.so` then `pam_deny`, as an admin
/// might write it, and with in-place requests on.
fn auth_service() -> Replaced {
    let m = module();
    Replaced::new(
        "/etc/pam.d/jit-auth",
        &format!(
            "#%PAM-1.0\n\
             auth     sufficient {m} interactive privilege=gated-id\n\
             auth     required   pam_deny.so\n\
             account  required   pam_permit.so\n"
        ),
        0o644,
    )
}

fn pamtester_auth(user: &str, answers: &str) -> Output {
    let mut child = Command::new("pamtester")
        .args(["-v", "jit-auth", user, "authenticate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(answers.as_bytes());
    child.wait_with_output().unwrap()
}

/// Findings 8 and 18: at a login-style prompt (root-run, the subject is the typed PAM_USER)
/// pam_jit takes no request in that name, and with a live grant it still authenticates nobody.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_auth_phase_takes_no_request_for_a_typed_name_and_authenticates_nobody() {
    let (sb, _sudoers) = setup();
    let _svc = auth_service();
    let d = Daemon::start(&sb, "gate-auth", POLICY);

    // Someone at the prompt types alice and answers the in-place questions.
    let o = pamtester_auth("alice", "10m\nattacker was here\n");
    assert!(!o.status.success(), "authenticated: {}", stdout(&o));
    let list = run(Command::new("jitctl").args(["--json", "list", "--all", "--ended"]));
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(
        listed["grants"],
        serde_json::json!([]),
        "no grant in alice's name: {}",
        d.log()
    );
    assert!(!d.log().contains("attacker was here"));

    // With a live grant, `sufficient` must still not let the password be skipped.
    elevate("alice");
    let o = pamtester_auth("alice", "");
    assert!(
        !o.status.success(),
        "pam_jit stood in for the password: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// UX H3: the line a refused user is shown works when pasted, as that user.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_refusal_hint_pasted_as_the_user_works() {
    let (sb, _sudoers) = setup();
    let _pam = sudo_stack("");
    // A rule whose maximum is below the 15 minutes an example line would once have said.
    let policy = POLICY.replace("max_duration = \"1h\"", "max_duration = \"10m\"");
    let _d = Daemon::start(&sb, "gate-hint", &policy);
    let refused = run(Command::new("su")
        .args(["alice", "-s", "/bin/sh", "-c", "sudo -S /usr/bin/id -u"])
        .stdin(Stdio::null()));
    assert!(!refused.status.success());
    let said = stderr(&refused);
    let line = said
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in the refusal: {said}"));
    assert!(line.starts_with("jitctl elevate gated-id --for "), "{line}");
    let o = run(Command::new("su").args(["alice", "-s", "/bin/sh", "-c", line]));
    assert!(
        o.status.success(),
        "`{line}` failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(sudo_ok("alice"), "sudo after pasting `{line}`");
}
