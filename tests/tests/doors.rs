//! A grant opens exactly its own door: through real sudo with pam_jit in its stack, a cheap
//! `kind = "sudo"` grant runs its own command and opens no static rule; a `kind = "gate"`
//! privilege's commands open only for its own grant, and the sudo session is recorded under
//! that grant (so `session_bound` uses it up). The routes that make this work follow the policy
//! and are put back when someone removes them. Run by `tests/run` inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use jitd_tests::*;

/// `cheap` is what the review used: a harmless sudo privilege. `db-restart` guards the static
/// rule below (`/usr/bin/id -G` stands in for a real restart command).
const POLICY: &str = r#"
[privilege.cheap]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[privilege.db-restart]
kind = "gate"
description = "Restart the database through the admin's sudoers rule"
commands = ["/usr/bin/id -G"]
session_bound = true

[[rule]]
name = "on call"
users = ["alice"]
privileges = ["cheap", "db-restart"]
max_duration = "1h"
default_duration = "10m"
reason_required = false
max_active = 2
"#;

const STATIC_SUDOERS: &str = "alice ALL=(root) NOPASSWD: /usr/bin/id -G\n";

fn setup() -> (Sandbox, Replaced, Replaced) {
    let sb = sandbox();
    ensure_user("alice");
    let sudoers = Replaced::new("/etc/sudoers.d/static-db", STATIC_SUDOERS, 0o440);
    assert!(sudoers_valid());
    let pam = sudo_stack("");
    (sb, sudoers, pam)
}

fn sudo(user: &str, command: &str) -> Output {
    run(Command::new("su")
        .args([user, "-s", "/bin/sh", "-c", &format!("sudo -S {command}")])
        .stdin(Stdio::null()))
}

/// Whether `command` ran as root (`id -u` and `id -G` print 0 then).
fn ran(o: &Output) -> bool {
    o.status.success() && stdout(o).trim() == "0"
}

fn elevate(user: &str, privilege: &str) -> String {
    let o = as_user(
        user,
        &["jitctl", "--json", "elevate", privilege, "--for", "10m"],
    );
    assert!(o.status.success(), "elevate: {}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["grant"]["id"].as_str().unwrap().to_string()
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_cheap_grant_opens_its_own_command_and_no_guarded_static_rule() {
    let (sb, _sudoers, _pam) = setup();
    let d = Daemon::start(&sb, "doors", POLICY);
    assert!(sudoers_valid(), "the routes jitd wrote keep sudoers valid");
    assert!(Path::new("/etc/pam.d/jitd-db-restart").exists());
    assert!(Path::new("/etc/pam.d/jitd-cheap").exists());

    assert!(!ran(&sudo("alice", "/usr/bin/id -u")), "no grant yet");
    let cheap = elevate("alice", "cheap");
    assert!(
        ran(&sudo("alice", "/usr/bin/id -u")),
        "a sudo grant runs its own command through pam_jit"
    );
    // The review's finding: any grant opening the `sudo` service opened every static rule.
    let guarded = sudo("alice", "/usr/bin/id -G");
    assert!(
        !ran(&guarded),
        "the cheap grant opened the rule db-restart guards: {}",
        stdout(&guarded)
    );
    assert!(
        stderr(&guarded).contains("jitctl elevate db-restart"),
        "the refusal names the privilege that covers the command: {}",
        stderr(&guarded)
    );

    // `sudo -n` (no conversation for prompts) still shows the pointer.
    let n =
        run(Command::new("su").args(["alice", "-s", "/bin/sh", "-c", "sudo -n /usr/bin/id -G"]));
    assert!(!ran(&n));
    assert!(
        stderr(&n).contains("run `jitctl elevate db-restart --for 10m`"),
        "{}",
        stderr(&n)
    );

    let db = elevate("alice", "db-restart");
    assert!(
        ran(&sudo("alice", "/usr/bin/id -G")),
        "the gate grant opens it"
    );
    // The session is recorded under the grant that opened the door, and uses it up.
    wait_for(
        Duration::from_secs(5),
        "the session-bound grant to end",
        || d.state_of(&db) != "active",
    );
    let log = d.log();
    let opened: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("event=session.opened"))
        .collect();
    assert!(
        opened.iter().any(|l| l.contains(&format!("grant={db}"))),
        "session under the gate grant: {opened:?}"
    );
    assert!(!ran(&sudo("alice", "/usr/bin/id -G")), "used up");
    assert_eq!(d.state_of(&cheap), "active", "the cheap grant is untouched");
    assert!(ran(&sudo("alice", "/usr/bin/id -u")));
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_routes_follow_the_policy_are_put_back_and_purged() {
    let (sb, _sudoers, _pam) = setup();
    let d = Daemon::start(&sb, "doors-routes", POLICY);
    // Removed behind jitd's back: PAM would fall back to `other` for the service.
    std::fs::remove_file("/etc/pam.d/jitd-db-restart").unwrap();
    wait_for(
        Duration::from_secs(5),
        "the PAM file to be put back",
        || Path::new("/etc/pam.d/jitd-db-restart").exists(),
    );
    assert!(
        d.log().contains("event=policy.route_repaired"),
        "{}",
        d.log()
    );

    // A policy without the gate privilege: its service goes, its command is no longer routed.
    d.set_policy(&POLICY.replace(
        "[privilege.db-restart]\nkind = \"gate\"\ndescription = \"Restart the database through the admin's sudoers rule\"\ncommands = [\"/usr/bin/id -G\"]\nsession_bound = true\n",
        "",
    )
    .replace("[\"cheap\", \"db-restart\"]", "[\"cheap\"]"));
    let o = run(Command::new("jitctl").args(["reload"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(!Path::new("/etc/pam.d/jitd-db-restart").exists());
    let routes = std::fs::read_to_string("/etc/sudoers.d/jitd_routes").unwrap();
    assert!(!routes.contains("/usr/bin/id -G"), "{routes}");
    assert!(sudoers_valid());

    // A policy the gate could not tell apart is refused on reload; the routes stay.
    d.set_policy(&POLICY.replace(
        "commands = [\"/usr/bin/id -G\"]",
        "commands = [\"/usr/bin/id -u\"]",
    ));
    let o = run(Command::new("jitctl").args(["reload"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("command /usr/bin/id -u is already named by privilege cheap"),
        "{}",
        stderr(&o)
    );
    assert!(Path::new("/etc/pam.d/jitd-cheap").exists());

    drop(d); // purges
    assert!(!Path::new("/etc/pam.d/jitd-cheap").exists());
    assert!(!Path::new("/etc/sudoers.d/jitd_routes").exists());
}

/// UX H3 at the prompt: the choices for this command, Enter for the rule's default duration,
/// the reason's minimum, the rule's ticket, and until when on success.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_in_place_prompt_offers_the_privilege_of_this_command_and_asks_for_its_ticket() {
    let sb = sandbox();
    ensure_user("alice");
    let _sudoers = Replaced::new("/etc/sudoers.d/static-db", STATIC_SUDOERS, 0o440);
    let _pam = sudo_stack("interactive");
    let policy = POLICY.replace(
        "reason_required = false\n",
        "reason_min_chars = 5\ninteractive = true\nticket_pattern = \"INC-[0-9]+\"\n",
    );
    let d = Daemon::start(&sb, "doors-prompt", &policy);
    let mut child = Command::new("su")
        .args(["alice", "-s", "/bin/sh", "-c", "sudo -S /usr/bin/id -G"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    // Enter at the duration, a reason, a ticket.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\nfailover drill\nINC-7\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let said = stderr(&o);
    assert!(ran(&o), "in-place request then sudo: {}{said}", stdout(&o));
    assert!(
        said.contains(
            "you may request db-restart: pam_jit opens the sudoers rule for: /usr/bin/id -G"
        ),
        "{said}"
    );
    assert!(
        said.contains("db-restart for how long (Enter: 10m, at most 1h)"),
        "{said}"
    );
    assert!(said.contains("reason (at least 5 characters)"), "{said}");
    assert!(said.contains("ticket (matching INC-[0-9]+)"), "{said}");
    assert!(said.contains("granted db-restart until"), "{said}");
    // (The grant is session-bound: that sudo used it up.)
    let log = d.log();
    assert!(
        log.lines().any(|l| l.contains("event=request.allowed")
            && l.contains("via=pam")
            && l.contains("ticket=INC-7")),
        "the ticket is recorded: {log}"
    );
}
