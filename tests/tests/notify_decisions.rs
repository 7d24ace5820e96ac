//! Decisions around notifications, end to end: escalation tiers of an undecided request with
//! the daemon's fake clock, and a rule's decision hook run by the real `jitd-notify` (allow,
//! deny, hang, garbage), its answer cast over the bus as the notifier's account.

#![allow(clippy::disallowed_methods)] // an end-to-end suite runs real processes and waits

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use jitd_tests::approvals::{self, MIN, alice_may_sudo, approve, ask};
use jitd_tests::notify::*;
use jitd_tests::*;

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn an_undecided_request_escalates_tier_by_tier_once_each_then_expires_with_a_notice() {
    let sb = approvals::setup();
    ensure_group("leads");
    let dir = notifier_setup(&sb, "notify-escalate");
    let out = dir.join("notes");
    recording_sink(
        &dir,
        &out,
        r#"["request.pending", "request.escalated", "request.expired"]"#,
    );
    let policy = approvals::POLICY.replace(
        "request_ttl = \"1h\"\n",
        "request_ttl = \"1h\"\nescalate_after = \"15m\"\nescalate_to = [\"%leads\", \"dave\"]\n",
    );
    let d = Daemon::start(&sb, "notify-escalate-d", &policy);
    let mut n = start_notifier(&sb, &dir);
    let id = ask(&[]);
    let kinds = || -> Vec<String> {
        lines(&out)
            .iter()
            .map(|v| v["kind"].as_str().unwrap().to_string())
            .collect()
    };
    wait_for(Duration::from_secs(10), "the pending note", || {
        kinds().len() == 1
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(kinds(), ["request.pending"], "no tier before 15 minutes");

    d.set_wall_offset_ms(16 * MIN);
    wait_for(Duration::from_secs(10), "tier 1", || kinds().len() == 2);
    let tier1 = &lines(&out)[1];
    assert_eq!(tier1["kind"], "request.escalated");
    assert_eq!(tier1["to"]["groups"][0], "leads");
    assert_eq!(tier1["command"], format!("jitctl approve {id}"));
    assert_eq!(tier1["id"], format!("request.escalated:{id}:1"));

    d.set_wall_offset_ms(31 * MIN);
    wait_for(Duration::from_secs(10), "tier 2", || kinds().len() == 3);
    let tier2 = &lines(&out)[2];
    assert_eq!(tier2["to"]["users"][0], "dave");

    d.set_wall_offset_ms(61 * MIN);
    wait_for(Duration::from_secs(10), "the expiry notice", || {
        kinds().len() == 4
    });
    std::thread::sleep(Duration::from_millis(500));
    let all = lines(&out);
    assert_eq!(
        kinds(),
        [
            "request.pending",
            "request.escalated",
            "request.escalated",
            "request.expired"
        ],
        "each tier once"
    );
    assert_eq!(all[3]["to"]["users"][0], "alice");
    let _ = n.kill();
    let _ = n.wait();
}

/// `approval = "hook"`: the notifier's account votes without being named; bob may too.
const HOOK_FORM: &str = "approval = \"hook\"\napprovers = [\"bob\"]\n";
/// The older form: a quorum naming the notifier's account, plus `hook`.
const QUORUM_FORM: &str = "approval = \"quorum\"\napprovers = [\"jitd-notify\", \"bob\"]\n";

/// A rule decided by a ticket check: the hook's vote is the notifier account's, one approver.
fn hooked(
    sb: &Sandbox,
    name: &str,
    hook_body: &str,
    hook_timeout_ms: u64,
) -> (Daemon, Child, PathBuf) {
    hooked_as(sb, name, hook_body, hook_timeout_ms, HOOK_FORM)
}

fn hooked_as(
    sb: &Sandbox,
    name: &str,
    hook_body: &str,
    hook_timeout_ms: u64,
    form: &str,
) -> (Daemon, Child, PathBuf) {
    let dir = notifier_setup(sb, name);
    let hook = dir.join("ticket-check");
    std::fs::write(
        &hook,
        format!(
            "#!/usr/bin/python3\nimport json, sys, time\nn = json.load(sys.stdin)\n{hook_body}\n"
        ),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&hook));
    let out = dir.join("notes");
    recording_sink(&dir, &out, r#"["request.approved", "request.denied"]"#);
    let toml = std::fs::read_to_string(dir.join("notify.toml")).unwrap();
    std::fs::write(
        dir.join("notify.toml"),
        format!("hook_timeout_ms = {hook_timeout_ms}\n{toml}"),
    )
    .unwrap();
    let policy = format!(
        r#"
[privilege.whoami]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "ticketed"
users = ["alice"]
privileges = ["whoami"]
max_duration = "1h"
default_duration = "10m"
reason_min_chars = 8
{form}approvals = 1
request_ttl = "1h"
hook = {hook:?}
"#
    );
    let d = Daemon::start(sb, &format!("{name}-d"), &policy);
    let n = start_notifier(sb, &dir);
    (d, n, out)
}

const TICKET_CHECK: &str = r#"ok = n["ticket"] == "OPS-42" and n["user"] == "alice"
print(json.dumps({"decision": "approve" if ok else "deny", "message": "ticket " + n["ticket"] + " is open and assigned to " + n["user"]}))"#;

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn the_quorum_form_naming_the_notifier_still_lets_the_hook_approve() {
    let sb = approvals::setup();
    let (_d, mut n, _out) = hooked_as(&sb, "hook-quorum", TICKET_CHECK, 5000, QUORUM_FORM);
    ask(&["--ticket", "OPS-42"]);
    wait_for(
        Duration::from_secs(10),
        "the hook's approval",
        alice_may_sudo,
    );
    let _ = n.kill();
    let _ = n.wait();
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn the_decision_hook_approves_a_request_whose_ticket_checks_out() {
    let sb = approvals::setup();
    let (d, mut n, out) = hooked(&sb, "hook-allow", TICKET_CHECK, 5000);
    assert!(!alice_may_sudo());
    let id = ask(&["--ticket", "OPS-42"]);
    wait_for(
        Duration::from_secs(10),
        "the hook's approval",
        alice_may_sudo,
    );
    let log = d.log();
    let voted = log
        .lines()
        .find(|l| l.contains("event=request.voted"))
        .unwrap();
    assert!(
        voted.contains("by=jitd-notify") && voted.contains("OPS-42 is open"),
        "{voted}"
    );
    wait_for(Duration::from_secs(10), "the requester's notice", || {
        !lines(&out).is_empty()
    });
    let note = &lines(&out)[0];
    assert_eq!(note["kind"], "request.approved");
    assert_eq!(note["request"], id);
    assert!(
        note["by"].as_str().unwrap().contains("jitd-notify"),
        "{note}"
    );
    let _ = n.kill();
    let _ = n.wait();
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn the_decision_hook_denies_a_request_whose_ticket_does_not() {
    let sb = approvals::setup();
    let (d, mut n, out) = hooked(
        &sb,
        "hook-deny",
        r#"print(json.dumps({"decision": "deny", "message": "ticket " + n["ticket"] + " is closed"}))"#,
        5000,
    );
    let id = ask(&["--ticket", "OPS-7"]);
    wait_for(Duration::from_secs(10), "the denial notice", || {
        !lines(&out).is_empty()
    });
    let note = &lines(&out)[0];
    assert_eq!(note["kind"], "request.denied", "{note}");
    assert_eq!(note["request"], id);
    assert!(!alice_may_sudo());
    assert!(d.log().contains("OPS-7 is closed"));
    let _ = n.kill();
    let _ = n.wait();
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn a_hook_that_hangs_or_prints_garbage_casts_no_vote_and_is_on_record() {
    let sb = approvals::setup();
    let (d, mut n, _out) = hooked(
        &sb,
        "hook-hang",
        r#"if n["ticket"] == "HANG":
    time.sleep(30)
print("approve, sure")"#,
        300,
    );
    let hung = ask(&["--ticket", "HANG"]);
    wait_for(
        Duration::from_secs(10),
        "notify.failed for the hang",
        || d.log().contains("no answer within"),
    );
    // Fail closed: it still waits for a person, and nothing was granted.
    assert!(
        !d.log()
            .contains(&format!("event=request.decided request={hung}"))
    );
    assert!(!alice_may_sudo());
    let o = approvals::jitctl("alice", &["cancel", &hung]);
    assert!(o.status.success(), "{}", stderr(&o));
    let garbage = ask(&["--ticket", "OPS-1"]);
    wait_for(
        Duration::from_secs(10),
        "notify.failed for the garbage",
        || d.log().contains("not a decision"),
    );
    assert!(
        !d.log()
            .contains(&format!("event=request.decided request={garbage}"))
    );
    assert!(!alice_may_sudo());
    assert!(!d.log().contains("by=jitd-notify"));
    // A person still decides.
    assert!(approve("bob", &garbage, &[]).status.success());
    assert!(alice_may_sudo());
    let _ = n.kill();
    let _ = n.wait();
}
