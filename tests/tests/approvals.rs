//! Requests that wait for people, against the real components: real users approving from their
//! own shells through jitctl on the real bus, real sudo before and after, the state database
//! across a restart, the daemon's fake wall clock for the 30 minutes an approver takes and for
//! the request's TTL. Run by `tests/run` inside `tests/sandbox`; each test starts its own
//! daemon.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::process::{Command, Stdio};
use std::time::Duration;

use jitd_tests::approvals::*;
use jitd_tests::*;

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn two_approvers_grant_and_the_clock_starts_at_the_final_approval() {
    let sb = setup();
    let d = Daemon::start(&sb, "quorum", POLICY);
    let id = ask(&["--for", "1h"]);
    assert!(!alice_may_sudo(), "nothing granted while pending");
    assert!(drop_ins().is_empty());

    // bob sees exactly what he is asked to approve.
    let o = jitctl("bob", &["requests", "--pending"]);
    let text = stdout(&o);
    for want in [
        id.as_str(),
        "alice",
        "sandbox",
        "whoami",
        "as root: /usr/bin/id -u",
        "restore the orders table",
        "dba (0 of 2 approvals so far)",
        "no earlier grants of alice",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let o = jitctl("bob", &["status"]);
    assert!(
        stdout(&o).contains("1 request(s) wait for your decision"),
        "{}",
        stdout(&o)
    );
    // alice is not asked to decide her own request.
    let o = jitctl("alice", &["requests", "--pending"]);
    assert!(stdout(&o).contains("No requests wait"), "{}", stdout(&o));

    // Half an hour passes before the approvers act.
    d.set_wall_offset_ms(30 * MIN);
    let o = approve("bob", &id, &["--comment", "ok by me"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1 of 2 approvals"), "{}", stdout(&o));
    assert!(!alice_may_sudo(), "one approval is not a quorum");

    let o = approve("carol", &id, &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("approved"), "{}", stdout(&o));
    assert!(
        alice_may_sudo(),
        "the grant is live at once after the quorum"
    );

    let q = request(&id);
    assert_eq!(q["state"], "approved");
    assert_eq!(q["decided_by"], "bob, carol");
    let grant = q["grant_id"].as_str().unwrap();
    let list = jitctl("alice", &["--json", "status"]);
    let grants: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let g = &grants["grants"][0];
    assert_eq!(g["id"], grant);
    let requested = q["requested_ms"].as_i64().unwrap();
    let starts = g["starts_ms"].as_i64().unwrap();
    let expires = g["expires_ms"].as_i64().unwrap();
    assert!(
        starts - requested >= 30 * MIN,
        "the clock starts at the approval"
    );
    assert_eq!(
        expires - starts,
        60 * MIN,
        "the full hour from the approval"
    );

    let log = d.log();
    for want in [
        "event=request.pending",
        "event=request.voted",
        "by=bob vote=approve comment=\"ok by me\"",
        "counted=2 needed=2",
        "event=request.decided",
        "state=approved by=\"bob, carol\"",
        "approval=quorum",
        "event=grant.applied",
    ] {
        assert!(log.contains(want), "{want:?} in the audit:\n{log}");
    }
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn self_approval_bad_votes_and_cancel_are_refused_clearly_and_change_nothing() {
    let sb = setup();
    let d = Daemon::start(&sb, "refusals", POLICY);
    let id = ask(&["--for", "30m"]);
    let refused = |user: &str, args: &[&str], code: i32, says: &str| {
        let o = jitctl(user, args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{user} {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(says),
            "{user} {args:?}: {says:?} in {}",
            stderr(&o)
        );
    };
    refused("alice", &["approve", &id], 4, "your own request");
    refused("aliceadm", &["approve", &id], 4, "one person (same_person");
    refused(
        "eve",
        &["approve", &id],
        4,
        "not an approver of rule \"dba\"",
    );
    refused(
        "bob",
        &["approve", "r000000000000"],
        7,
        "no request r000000000000",
    );
    refused("bob", &["approve", "nonsense"], 6, "request id");
    refused(
        "bob",
        &["deny", &id, "--comment", ""],
        6,
        "a denial needs a comment",
    );
    refused("bob", &["approve", &id, "--for", "2h"], 6, "never lengthen");
    refused("bob", &["cancel", &id], 7, "no request");
    assert_eq!(request(&id)["state"], "pending", "nothing changed");
    assert_eq!(request(&id)["votes"].as_array().unwrap().len(), 0);

    let o = approve("bob", &id, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    refused("bob", &["approve", &id], 6, "already voted");
    // aliceadm's vote, had it been taken, would not count either.
    assert_eq!(request(&id)["approvals"], 1);

    let o = jitctl("alice", &["cancel", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("cancelled"), "{}", stdout(&o));
    refused(
        "carol",
        &["approve", &id],
        6,
        "no longer pending: it was cancelled",
    );
    assert!(!alice_may_sudo());
    let log = d.log();
    assert!(log.contains("event=request.refused"), "{log}");
    assert!(log.contains("state=cancelled by=alice"), "{log}");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn an_approver_taken_out_of_the_group_does_not_count_and_the_shortest_duration_wins() {
    let sb = setup();
    let _d = Daemon::start(&sb, "removed", POLICY);
    let id = ask(&["--for", "1h"]);
    let o = approve("dave", &id, &["--for", "10m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(Command::new("gpasswd").args(["-d", "dave", "appr"]));
    assert!(o.status.success());
    let o = approve("bob", &id, &["--for", "20m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("1 of 2 approvals"),
        "dave no longer counts: {}",
        stdout(&o)
    );
    let q = request(&id);
    let dave = q["votes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["user"] == "dave")
        .cloned()
        .unwrap();
    assert_eq!(dave["counts"], false, "{q}");
    assert!(!alice_may_sudo());

    let o = approve("carol", &id, &["--for", "30m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(alice_may_sudo());
    let grants: serde_json::Value =
        serde_json::from_slice(&jitctl("alice", &["--json", "status"]).stdout).unwrap();
    let g = &grants["grants"][0];
    assert_eq!(
        g["expires_ms"].as_i64().unwrap() - g["starts_ms"].as_i64().unwrap(),
        20 * MIN,
        "bob's 20m is the shortest that counts (dave's 10m does not)"
    );
    add_to_group("dave", "appr");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_pending_request_survives_a_restart_and_expires_after_its_ttl() {
    let sb = setup();
    let mut d = Daemon::start(&sb, "ttl", POLICY);
    let id = ask(&[]);
    let o = approve("bob", &id, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    d.restart();
    let q = request(&id);
    assert_eq!(q["state"], "pending", "durable across a restart: {q}");
    assert_eq!(q["approvals"], 1, "with its vote");

    d.set_wall_offset_ms(61 * MIN);
    wait_for(Duration::from_secs(5), "the request to expire", || {
        request(&id)["state"] == "expired"
    });
    let o = approve("carol", &id, &[]);
    assert_eq!(o.status.code(), Some(6));
    assert!(
        stderr(&o).contains("no longer pending: it was expired"),
        "{}",
        stderr(&o)
    );
    assert!(!alice_may_sudo());
    assert!(d.log().contains("state=expired by=jitd"), "{}", d.log());

    // A request that waited while jitd was down is expired at start-up.
    d.set_wall_offset_ms(0);
    let id = ask(&[]);
    d.kill9();
    d.set_wall_offset_ms(61 * MIN);
    d.restart();
    assert_eq!(request(&id)["state"], "expired");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn elevate_wait_returns_with_the_decision() {
    let sb = setup();
    let _d = Daemon::start(&sb, "wait", POLICY);
    let waiter = |reason: &str| {
        Command::new("runuser")
            .args([
                "-u", "alice", "--", "jitctl", "elevate", "whoami", "--wait", "--reason", reason,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let pending_id = || {
        let o = jitctl("bob", &["--json", "requests", "--pending"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["requests"]
            .as_array()
            .and_then(|a| a.first())
            .map(|q| q["id"].as_str().unwrap().to_string())
    };
    let child = waiter("restore the orders table");
    let mut id = None;
    wait_for(Duration::from_secs(5), "the request", || {
        id = pending_id();
        id.is_some()
    });
    let id = id.unwrap();
    assert!(approve("bob", &id, &[]).status.success());
    assert!(approve("carol", &id, &[]).status.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("Request {id} approved")),
        "{}",
        stdout(&o)
    );
    assert!(alice_may_sudo());
    let o = jitctl(
        "alice",
        &["drop", request(&id)["grant_id"].as_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let child = waiter("restore the orders table again");
    let mut id = None;
    wait_for(Duration::from_secs(5), "the second request", || {
        id = pending_id();
        id.is_some()
    });
    let id = id.unwrap();
    let o = jitctl("carol", &["deny", &id, "--comment", "use the replica"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(13), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("denied: use the replica"),
        "{}",
        stdout(&o)
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_policy_reload_that_removes_the_rule_withdraws_its_pending_requests() {
    let sb = setup();
    let d = Daemon::start(&sb, "reload", POLICY);
    let id = ask(&[]);
    d.set_policy(&POLICY.replace("users = [\"alice\"]", "users = [\"bob\"]"));
    let o = jitctl("root", &["reload"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let q = request(&id);
    assert_eq!(q["state"], "withdrawn", "{q}");
    assert!(
        q["note"]
            .as_str()
            .unwrap()
            .contains("no longer lets alice request whoami"),
        "{q}"
    );
    assert!(d.log().contains("state=withdrawn by=policy"));
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn pam_jit_says_the_request_is_pending_and_the_next_sudo_after_approval_works() {
    let sb = setup();
    let _sudoers = Replaced::new(
        "/etc/sudoers.d/static-eligible",
        "alice ALL=(root) NOPASSWD: /usr/bin/id\n",
        0o440,
    );
    let _pam = sudo_stack("interactive privilege=gated-id");
    let _d = Daemon::start(&sb, "pam-pending", POLICY);
    let mut child = Command::new("su")
        .args(["alice", "-s", "/bin/sh", "-c", "sudo -S /usr/bin/id -G"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"15m\nrestore the orders table\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success(), "refused while pending: {}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("is pending"), "{err}");
    assert!(err.contains("jitctl wait r"), "{err}");
    let id = err
        .split_whitespace()
        .find(|w| w.starts_with('r') && w.len() == 13)
        .unwrap_or_else(|| panic!("a request id in {err}"))
        .to_string();
    assert!(approve("bob", &id, &[]).status.success());
    assert!(approve("carol", &id, &[]).status.success());
    // (id -G: a command no privilege names, so the static rule under gated-id runs it.)
    let o = sudo_as("alice", "/usr/bin/id -G");
    assert!(o.status.success(), "the next sudo works: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "0");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn ctrl_c_stops_waiting_and_leaves_the_request_pending() {
    let sb = setup();
    let _d = Daemon::start(&sb, "ctrl-c", POLICY);
    let id = ask(&[]);
    let child = Command::new("runuser")
        .args(["-u", "alice", "--", "jitctl", "wait", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The jitctl that runuser started (its only child), once it listens for the decision.
    let children = format!("/proc/{}/task/{}/children", child.id(), child.id());
    let mut jitctl_pid = 0;
    wait_for(Duration::from_secs(5), "jitctl to start", || {
        jitctl_pid = std::fs::read_to_string(&children)
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0);
        jitctl_pid != 0
    });
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the jitctl process this test started (through runuser).
    unsafe { libc::kill(jitctl_pid, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(12), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("request {id} is still pending"))
            && stdout(&o).contains(&format!("jitctl cancel {id}")),
        "{}",
        stdout(&o)
    );
    assert_eq!(request(&id)["state"], "pending");
}
