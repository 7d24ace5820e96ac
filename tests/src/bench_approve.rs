//! The bench row for approvals: from the start of the approver's `jitctl approve` to the
//! requester's first `sudo -n` that succeeds (process start-ups included, as in the elevate
//! row), the request having been made beforehand.

#![allow(clippy::disallowed_methods)] // a benchmark runs real processes and times them

use std::time::Instant;

use crate::*;

/// Policy lines for the row: `requester` asks for `/usr/bin/id -u`, `approver` approves.
pub fn policy(requester: &str, approver: &str) -> String {
    format!(
        r#"
[privilege.bench-approved]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "bench approved"
users = ["{requester}"]
privileges = ["bench-approved"]
max_duration = "1h"
reason_required = false
approval = "quorum"
approvers = ["{approver}"]
"#
    )
}

/// `runs` samples, in ms.
pub fn approve_to_usable(runs: usize, requester: &str, approver: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..runs {
        let o = as_user(
            requester,
            &[
                "jitctl",
                "--json",
                "elevate",
                "bench-approved",
                "--for",
                "10m",
            ],
        );
        assert_eq!(o.status.code(), Some(12), "pending: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let id = v["request_id"].as_str().unwrap().to_string();
        let start = Instant::now();
        let o = as_user(approver, &["jitctl", "--json", "approve", &id]);
        assert!(o.status.success(), "{}", stderr(&o));
        while !sudo_as(requester, "/usr/bin/id -u").status.success() {
            assert!(start.elapsed().as_secs() < 5, "sudo never became usable");
        }
        out.push(start.elapsed().as_secs_f64() * 1000.0);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let grant = v["grant_id"].as_str().unwrap().to_string();
        let o = as_user(requester, &["jitctl", "drop", &grant]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    out
}
