//! What a grant leaves behind when it ends, and whether recall gets all of it: setgid copies
//! made during a group grant, processes that fork when told to end, recall that cannot see
//! processes, recall cut short by the sweep, purge or a daemon stop, recall after the policy
//! changed, and group memberships jitd granted used to reach further privileges.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use jitd_tests::*;

fn group_policy(privilege: &str, group: &str, on_end: &str) -> String {
    format!(
        r#"
[privilege.{privilege}]
kind = "group"
group = "{group}"
on_end = "{on_end}"

[[rule]]
name = "{privilege}"
users = ["alice"]
privileges = ["{privilege}"]
max_duration = "1h"
reason_required = false
"#
    )
}

fn gid_of(group: &str) -> u32 {
    let o = run(Command::new("getent").args(["group", group]));
    stdout(&o)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .unwrap_or_else(|| panic!("no gid for {group}: {}", stdout(&o)))
}

/// `jitctl elevate` as alice; returns the grant id.
fn elevate(privilege: &str, secs: &str) -> String {
    let o = as_user(
        "alice",
        &["jitctl", "--json", "elevate", privilege, "--for", secs],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["grant"]["id"].as_str().unwrap().to_string()
}

/// Ends the grant now, as root: alice's own `jitctl drop` would carry the group itself, and
/// be recalled with the rest.
fn end_grant(id: &str) {
    let o = run(Command::new("jitctl").args(["revoke", id, "--reason", "test"]));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The grant's row as root lists it.
fn grant_json(id: &str) -> serde_json::Value {
    let o = run(Command::new("jitctl").args(["--json", "list", "--all", "--ended"]));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    list["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("grant {id} not listed: {list}"))
}

/// `script` run by alice's shell in a new login (`su`), so it carries alice's groups as the
/// group database has them now.
fn spawn_as_alice(script: &str) -> Child {
    Command::new("su")
        .args(["alice", "-s", "/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Pids of alice's processes whose command line is exactly `cmdline` (words joined by spaces).
fn alice_running(cmdline: &str) -> Vec<u32> {
    let alice = uid_of("alice").unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(e.path()) else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if meta.uid() == alice && cmd.trim_end() == cmdline {
            out.push(pid);
        }
    }
    out
}

/// Whether process `pid` carries `gid` among its groups.
fn holds(pid: u32, gid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .is_some_and(|g| g.split_whitespace().any(|g| g == gid.to_string()))
}

fn kill_alice(cmdline: &str) {
    for pid in alice_running(cmdline) {
        // SAFETY: kill(2) on a test process found by uid and command line.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

fn reap(mut children: Vec<Child>) {
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A group grant's holder makes a setgid-to-the-group copy of `id` and of the shell while a
/// member. When the grant ends, jitd finds both (owned by the holder, group = the granted gid,
/// changed during the grant), strips the bit, audits each file and counts them in the grant's
/// end record; the copy then gives nothing. A setgid file an admin made before the grant and
/// the holder's setgid file to another group are left alone.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_setgid_copy_made_during_a_group_grant_is_stripped_at_the_end() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_group("jitdsgid");
    let d = Daemon::start(&sb, "setgid", &group_policy("data", "jitdsgid", "keep"));
    let home = sb.dir.join("setgid-home");
    std::fs::create_dir_all(&home).unwrap();
    let o = run(Command::new("chown").arg("alice:").arg(&home));
    assert!(o.status.success());
    let p = |name: &str| home.join(name).display().to_string();
    let admin_made = p("admin-made");
    for cmd in [
        format!("cp /usr/bin/id {admin_made}"),
        format!("chown alice:jitdsgid {admin_made}"),
        format!("chmod 2755 {admin_made}"),
    ] {
        assert!(run(Command::new("sh").args(["-c", &cmd])).status.success());
    }
    sleep(Duration::from_millis(20));

    let id = elevate("data", "1h");
    let (copy_id, copy_sh, own) = (p("id"), p("sh"), p("own-group"));
    let make = format!(
        "set -e; cp /usr/bin/id {copy_id}; chgrp jitdsgid {copy_id}; chmod 2755 {copy_id}; \
         cp /bin/sh {copy_sh}; chgrp jitdsgid {copy_sh}; chmod g+s {copy_sh}; \
         cp /usr/bin/id {own}; chmod 2755 {own}"
    );
    let o = run(Command::new("su").args(["alice", "-s", "/bin/sh", "-c", &make]));
    assert!(o.status.success(), "{}", stderr(&o));
    let gid = gid_of("jitdsgid");
    let setgid = |path: &str| std::fs::metadata(path).unwrap().permissions().mode() & 0o2000 != 0;
    let meta = std::fs::metadata(&copy_id).unwrap();
    assert!(setgid(&copy_id) && meta.gid() == gid, "the copy is set up");

    end_grant(&id);
    wait_for(Duration::from_secs(10), "the setgid scan", || {
        d.log().contains("event=recall.files_checked")
    });
    assert!(!setgid(&copy_id), "the bit is gone from the copy of id");
    assert!(!setgid(&copy_sh), "and from the copy of the shell");
    assert!(
        setgid(&admin_made),
        "made by an admin before the grant: kept"
    );
    assert!(setgid(&own), "setgid to alice's own group: kept");
    let o = as_user("alice", &[&copy_id]);
    assert!(
        !stdout(&o).contains("jitdsgid"),
        "the copy gives nothing now: {}",
        stdout(&o)
    );
    let log = d.log();
    for path in [&copy_id, &copy_sh] {
        assert!(
            log.lines()
                .any(|l| l.contains("event=recall.setgid_stripped") && l.contains(path.as_str())),
            "{path} audited:\n{log}"
        );
    }
    let end = grant_json(&id)["end_reason"].as_str().unwrap().to_string();
    assert!(end.contains("setgid bit stripped from 2 files"), "{end}");
}

/// A process that forks a new child when it gets SIGTERM, during a terminating group grant:
/// recall keeps looking until nothing of the user holds the group, so the child that was not
/// there when recall began is ended too.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_process_that_forks_on_sigterm_leaves_nothing_holding_the_group() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_group("jitdfork");
    let d = Daemon::start_with(
        &sb,
        "fork",
        &group_policy("fork", "jitdfork", "terminate"),
        "recall_grace_ms = 1000",
    );
    let gid = gid_of("jitdfork");
    let id = elevate("fork", "1h");
    let forker = spawn_as_alice(
        "trap 'sleep 3017 & sleep 3018 & exit 0' TERM; while :; do sleep 0.05; done",
    );
    wait_for(Duration::from_secs(5), "the loop to run", || {
        alice_running("sleep 0.05").iter().any(|&p| holds(p, gid))
    });
    end_grant(&id);
    wait_for(Duration::from_secs(10), "the recall to finish", || {
        d.log().contains("event=recall.finished")
    });
    let escaped: Vec<u32> = ["sleep 3017", "sleep 3018"]
        .iter()
        .flat_map(|c| alice_running(c))
        .collect();
    kill_alice("sleep 3017");
    kill_alice("sleep 3018");
    reap(vec![forker]);
    assert!(
        escaped.is_empty(),
        "children forked on SIGTERM still run with the group: {escaped:?}\n{}",
        d.log()
    );
}

/// Recall with /proc mounted `hidepid=invisible,gid=<a group jitd is not in>`: jitd cannot
/// see alice's processes, and says so (`recall.blind`, and in the grant's end record) instead
/// of reporting a recall that found nothing.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn recall_that_cannot_see_processes_says_so() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_group("jitdblind");
    ensure_group("jitdproc");
    let d = Daemon::start_with(
        &sb,
        "blind",
        &group_policy("blind", "jitdblind", "terminate"),
        "recall_grace_ms = 300",
    );
    let id = elevate("blind", "1h");
    let sleeper = spawn_as_alice("exec sleep 3019");
    let gid = gid_of("jitdblind");
    wait_for(Duration::from_secs(5), "the sleeper", || {
        alice_running("sleep 3019").iter().any(|&p| holds(p, gid))
    });
    let hidden = HiddenProc::mount(gid_of("jitdproc"));
    end_grant(&id);
    let seen = (0..100).any(|_| {
        sleep(Duration::from_millis(50));
        d.log().contains("event=recall.blind")
    });
    let end = grant_json(&id)["end_reason"].as_str().unwrap().to_string();
    let listed = stdout(&run(
        Command::new("jitctl").args(["list", "--all", "--ended"])
    ));
    drop(hidden);
    kill_alice("sleep 3019");
    reap(vec![sleeper]);
    assert!(seen, "no recall.blind in the audit:\n{}", d.log());
    assert!(end.contains("could not see"), "{end}");
    assert!(
        listed.contains("ended: revoked by root: test; recall could not see"),
        "jitctl list says so too:\n{listed}"
    );
}

/// A proc mounted over /proc with `hidepid`, for as long as it lives (in the sandbox's own
/// mount namespace).
struct HiddenProc;

impl HiddenProc {
    fn mount(gid: u32) -> HiddenProc {
        let o = run(Command::new("mount").args([
            "-t",
            "proc",
            "-o",
            &format!("hidepid=invisible,gid={gid}"),
            "proc",
            "/proc",
        ]));
        assert!(o.status.success(), "mount proc: {}", stderr(&o));
        HiddenProc
    }
}

impl Drop for HiddenProc {
    fn drop(&mut self) {
        let _ = run(Command::new("umount").arg("/proc"));
    }
}

/// A process that ignores SIGTERM holds a terminating group grant that ends (1) right before
/// the daemon is stopped, (2) in the sweep while the daemon is dead, (3) in `jitd purge`. Each
/// time the SIGKILL stage has happened by the time the daemon or the command has exited.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_sweep_purge_and_a_stop_finish_the_recall_with_sigkill() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_group("jitdstub");
    let policy = group_policy("stub", "jitdstub", "terminate");
    let gid = gid_of("jitdstub");
    let stubborn = || {
        let child = spawn_as_alice("trap '' TERM; exec sleep 3021");
        wait_for(Duration::from_secs(5), "the stubborn process", || {
            alice_running("sleep 3021").iter().any(|&p| holds(p, gid))
        });
        child
    };
    let mut failures = Vec::new();
    for how in ["stop", "sweep", "purge"] {
        let mut d = Daemon::start_with(
            &sb,
            &format!("settle-{how}"),
            &policy,
            "recall_grace_ms = 1500",
        );
        let id = elevate("stub", "1h");
        let child = stubborn();
        match how {
            "stop" => {
                end_grant(&id);
                wait_for(Duration::from_secs(5), "the recall to start", || {
                    d.log().contains("event=recall.started")
                });
                d.stop();
            }
            "sweep" => {
                d.kill9();
                d.set_wall_offset_ms(2 * 3_600_000);
                let o = d.oneshot("sweep");
                assert!(o.status.success(), "{}", stderr(&o));
            }
            _ => {
                d.kill9();
                let o = d.oneshot("purge");
                assert!(o.status.success(), "{}", stderr(&o));
            }
        }
        sleep(Duration::from_millis(100));
        let left = alice_running("sleep 3021");
        if !left.is_empty() {
            failures.push(format!("{how}: still running {left:?}"));
        }
        kill_alice("sleep 3021");
        reap(vec![child]);
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// The policy changes while a terminating grant of group A is live: the privilege now names
/// group B and says `keep`. At its end, recall still ends what holds A (what was granted, as it
/// was granted), and leaves alone a process holding B, which alice has in her own right.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn recall_follows_the_grant_not_the_policy_of_the_day() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_group("jitdwas");
    ensure_group("jitdnow");
    add_to_group("alice", "jitdnow");
    let d = Daemon::start_with(
        &sb,
        "granted-terms",
        &group_policy("moving", "jitdwas", "terminate"),
        "recall_grace_ms = 300",
    );
    let was = gid_of("jitdwas");
    let id = elevate("moving", "1h");
    let holder = spawn_as_alice("exec sleep 3023");
    wait_for(Duration::from_secs(5), "the holder", || {
        alice_running("sleep 3023").iter().any(|&p| holds(p, was))
    });
    d.set_policy(&group_policy("moving", "jitdnow", "keep"));
    let o = run(Command::new("jitctl").arg("reload"));
    assert!(o.status.success(), "{}", stderr(&o));
    end_grant(&id);
    let ended = (0..60).any(|_| {
        sleep(Duration::from_millis(50));
        alice_running("sleep 3023").is_empty()
    });
    kill_alice("sleep 3023");
    reap(vec![holder]);
    let _ = run(Command::new("gpasswd").args(["-d", "alice", "jitdnow"]));
    assert!(
        ended,
        "the process holding the granted group still runs:\n{}",
        d.log()
    );
}

/// A group jitd granted opens nothing else: a rule whose `groups` names a group that is itself
/// a jitd group privilege does not count alice's granted membership, and neither does
/// `admin_group`. Someone who is a member in their own right is still eligible.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn memberships_jitd_granted_open_no_further_privilege() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    ensure_group("jitdteam");
    ensure_group("jitd-admins");
    add_to_group("bob", "jitdteam");
    let policy = r#"
[privilege.team]
kind = "group"
group = "jitdteam"

[privilege.admins]
kind = "group"
group = "jitd-admins"
allow_sensitive_group = true

[privilege.deploy]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "join"
users = ["alice"]
privileges = ["team", "admins"]
max_duration = "1h"
reason_required = false
max_active = 2

[[rule]]
name = "team deploys"
groups = ["jitdteam"]
privileges = ["deploy"]
max_duration = "1h"
reason_required = false
"#;
    let _d = Daemon::start(&sb, "chaining", policy);
    elevate("team", "1h");
    assert!(groups_of("alice").contains(&"jitdteam".to_string()));
    let o = as_user("alice", &["jitctl", "elevate", "deploy", "--for", "5m"]);
    assert!(
        !o.status.success(),
        "a jitd-granted membership made alice eligible: {}",
        stdout(&o)
    );
    let o = as_user(
        "bob",
        &["jitctl", "--json", "elevate", "deploy", "--for", "5m"],
    );
    assert!(
        o.status.success(),
        "bob is a member in his own right: {}",
        stderr(&o)
    );
    let bobs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let bobs = bobs["grant"]["id"].as_str().unwrap().to_string();

    elevate("admins", "1h");
    assert!(groups_of("alice").contains(&"jitd-admins".to_string()));
    let o = as_user("alice", &["jitctl", "list", "--all"]);
    assert!(
        !o.status.success(),
        "alice lists everyone's grants: {}",
        stdout(&o)
    );
    let o = as_user("alice", &["jitctl", "revoke", &bobs, "--reason", "chained"]);
    assert!(
        !o.status.success(),
        "alice revoked bob's grant: {}",
        stdout(&o)
    );
}
