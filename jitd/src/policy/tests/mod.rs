//! Test helpers shared by the policy's tests: a fake host, a policy that loads, and who asks.

#![allow(clippy::disallowed_methods)] // temp dirs and real tools in tests

mod decide;
mod escalation;
mod files;
mod hook;
mod load;
mod quorum;

use std::path::Path;

use super::*;

/// A host with users alice (1001), bob (1002), root; groups webops, docker, root, sudo,
/// jitd-admins, and rootalias and dockeralias (second names for gids 0 and 999).
struct FakeHost;

impl Accounts for FakeHost {
    fn user_name(&self, _uid: u32) -> Option<String> {
        None
    }
    fn user_uid(&self, name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "alice" => Some(1001),
            "bob" => Some(1002),
            _ => None,
        }
    }
    fn group_gid(&self, name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "sudo" => Some(27),
            "docker" => Some(999),
            "webops" => Some(2000),
            "jitd-admins" => Some(3000),
            "rootalias" => Some(0),
            "dockeralias" => Some(999),
            _ => None,
        }
    }
    fn user_groups(&self, name: &str) -> Vec<String> {
        match name {
            "bob" => vec!["bob".into(), "webops".into()],
            other => vec![other.into()],
        }
    }
    fn path_exists(&self, p: &Path) -> bool {
        p.starts_with("/usr/bin")
    }
    fn group_members(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "webops" => Some(vec!["bob".into()]),
            _ => Some(Vec::new()),
        }
    }
}

const GOOD: &str = r#"
[privilege.nginx-admin]
kind = "sudo"
description = "Restart or reload nginx"
commands = ["/usr/bin/systemctl restart nginx", "/usr/bin/systemctl reload nginx"]

[privilege.docker]
kind = "group"
group = "docker"
allow_sensitive_group = true
on_end = "terminate"

[[rule]]
name = "web team"
users = ["alice"]
groups = ["webops"]
privileges = ["nginx-admin", "docker"]
max_duration = "1h"
default_duration = "15m"
reason_min_chars = 10
ticket_pattern = "OPS-[0-9]+"
max_active_rule = 2

[[rule]]
name = "clampers"
users = ["root"]
privileges = ["nginx-admin"]
max_duration = "30m"
over_max = "clamp"
reason_required = false
"#;

fn parse(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    Policy::parse_str(Path::new("p.toml"), text, &FakeHost)
}

fn good() -> Policy {
    parse(GOOD).unwrap().policy
}

/// The single error of `text`, as "line:col: message".
fn error(text: &str) -> String {
    let errors = parse(text).expect_err("must be refused");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    format!("{}:{}: {}", e.line, e.column, e.message)
}

fn who(name: &str) -> Requester {
    Requester {
        uid: FakeHost.user_uid(name).unwrap_or(5000),
        name: name.into(),
        groups: FakeHost.user_groups(name),
    }
}
