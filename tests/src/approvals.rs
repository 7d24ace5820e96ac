//! What the approval suites share: a policy with a quorum rule, its users, and the steps of
//! asking, approving and looking at what sudo sees.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::process::{Command, Output};

use crate::*;

/// alice asks; two of the approver group `appr` (bob, carol, dave, and aliceadm, who is alice
/// under another name) must say yes within the hour.
pub const POLICY: &str = r#"
same_person = [["alice", "aliceadm"]]

[privilege.whoami]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u"]

[privilege.gated-id]
kind = "gate"
pam_services = ["sudo"]

[privilege.selfserve]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -g"]

[[rule]]
name = "self service"
users = ["alice"]
privileges = ["selfserve"]
max_duration = "1h"
default_duration = "10m"
reason_min_chars = 8

[[rule]]
name = "dba"
users = ["alice"]
privileges = ["whoami", "gated-id"]
max_duration = "2h"
default_duration = "1h"
reason_min_chars = 8
approval = "quorum"
approvers = ["%appr"]
approvals = 2
request_ttl = "1h"
interactive = true
"#;

pub const MIN: i64 = 60_000;

pub fn jitctl(user: &str, args: &[&str]) -> Output {
    let mut full = vec!["jitctl"];
    full.extend_from_slice(args);
    as_user(user, &full)
}

pub fn setup() -> Sandbox {
    let sb = sandbox();
    for u in ["alice", "aliceadm", "bob", "carol", "dave", "eve"] {
        ensure_user(u);
    }
    ensure_group("appr");
    for u in ["aliceadm", "bob", "carol", "dave"] {
        add_to_group(u, "appr");
    }
    sb
}

/// alice asks for `whoami`; returns the request id. The answer says "pending", exit 12.
pub fn ask(args: &[&str]) -> String {
    let mut full = vec![
        "--json",
        "elevate",
        "whoami",
        "--reason",
        "restore the orders table",
    ];
    full.extend_from_slice(args);
    let o = jitctl("alice", &full);
    assert_eq!(
        o.status.code(),
        Some(12),
        "pending: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "pending", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("jitctl wait r"),
        "{v}"
    );
    v["request_id"].as_str().unwrap().to_string()
}

/// One of alice's requests as she lists it.
pub fn request(id: &str) -> serde_json::Value {
    let o = jitctl("alice", &["--json", "requests"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    v["requests"]
        .as_array()
        .unwrap_or_else(|| panic!("no request list: {v}"))
        .iter()
        .find(|q| q["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("request {id} not listed: {v}"))
}

pub fn alice_may_sudo() -> bool {
    sudo_as("alice", "/usr/bin/id -u").status.success()
}

pub fn approve(user: &str, id: &str, extra: &[&str]) -> Output {
    let mut args = vec!["approve", id];
    args.extend_from_slice(extra);
    jitctl(user, &args)
}

/// alice's live grant of `privilege`.
pub fn live_grant(privilege: &str) -> serde_json::Value {
    let o = jitctl("alice", &["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["privilege"] == privilege)
        .cloned()
        .unwrap_or_else(|| panic!("no live {privilege}: {v}"))
}

/// The NOTAFTER stamps `sudo -l` lists for alice.
pub fn notafter() -> Vec<String> {
    let o = run(Command::new("su").args(["alice", "-s", "/bin/sh", "-c", "sudo -n -l"]));
    let text = stdout(&o);
    let stamps: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter_map(|w| w.strip_prefix("NOTAFTER="))
        .map(str::to_string)
        .collect();
    assert!(
        !stamps.is_empty(),
        "sudo -l lists a NOTAFTER: {text}{}",
        stderr(&o)
    );
    stamps
}

/// Seconds since the epoch of sudoers' `YYYYmmddHHMMSSZ`.
pub fn stamp_secs(stamp: &str) -> Option<i64> {
    let o = run(Command::new("date").args([
        "-u",
        "-d",
        &format!(
            "{}-{}-{} {}:{}:{}",
            stamp.get(0..4)?,
            stamp.get(4..6)?,
            stamp.get(6..8)?,
            stamp.get(8..10)?,
            stamp.get(10..12)?,
            stamp.get(12..14)?
        ),
        "+%s",
    ]));
    stdout(&o).trim().parse().ok()
}
