//! What the ledger and history suites share: the policy, a daemon with the per-uid call limits
//! lifted (the tests poll), and readers of jitctl's JSON.

#![allow(dead_code)] // each suite uses its own part

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use jitd_tests::*;
use serde_json::Value;

pub const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u", "/usr/bin/false", "/usr/bin/cat /etc/shadow", "/usr/bin/systemctl stop rsyslog"]

[privilege.quiet]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/true"]
record = "none"

[privilege.recorded]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -un"]
record = "io"

[[rule]]
name = "ops"
users = ["alice", "bob"]
privileges = ["whoami", "quiet", "recorded"]
max_duration = "1h"
max_active = 5
reason_required = false
"#;

/// A daemon whose per-uid call limits do not slow the tests' polling.
pub fn start(sb: &Sandbox, name: &str) -> Daemon {
    Daemon::start_with(
        sb,
        name,
        POLICY,
        "calls_per_sec = 1000.0\ncalls_burst = 1000\n",
    )
}

pub fn jitctl(user: &str, args: &[&str]) -> Output {
    let mut full = vec!["jitctl"];
    full.extend_from_slice(args);
    as_user(user, &full)
}

pub fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

pub fn elevate(user: &str, privilege: &str) -> String {
    let o = jitctl(
        user,
        &[
            "--json",
            "elevate",
            privilege,
            "--for",
            "10m",
            "--reason",
            "INC-1 disk",
        ],
    );
    json_of(&o)["grant"]["id"].as_str().unwrap().to_string()
}

pub fn jitd(d: &Daemon, args: &[&str]) -> Output {
    run(Command::new(d.dir.join("../bin/jitd"))
        .arg("--config")
        .arg(&d.config)
        .args(args))
}

pub fn kinds(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

pub fn ledger_dir(d: &Daemon) -> PathBuf {
    d.dir.join("state/ledger")
}

pub fn story(user: &str, id: &str) -> Value {
    json_of(&jitctl(user, &["--json", "show", id]))
}

pub fn commands(story: &Value) -> Vec<Value> {
    story["commands"].as_array().cloned().unwrap_or_default()
}

pub fn argv_of(c: &Value) -> String {
    c["argv"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Waits until the grant's story holds `n` commands that have finished (an exit, or refused).
pub fn wait_commands(user: &str, id: &str, n: usize) -> Vec<Value> {
    let mut last = Vec::new();
    wait_for(
        Duration::from_secs(10),
        "the commands in the ledger",
        || {
            last = commands(&story(user, id));
            last.len() >= n
                && last
                    .iter()
                    .all(|c| c["refused"] == true || !c["exit"].is_null())
        },
    );
    last
}
