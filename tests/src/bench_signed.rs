//! The bench row for signed approvals: `jitctl submit` of a token whose signature verifies
//! (`ssh-keygen -Y find-principals` and `-Y verify`, each a process) and is then refused — the
//! requester's own key — so the same token can be sent again and nothing is consumed. jitctl's
//! start-up and the bus are included.

#![allow(clippy::disallowed_methods)] // a benchmark runs real processes and times them

use std::time::Instant;

use crate::signed::*;
use crate::*;

const POLICY: &str = r#"
[privilege.bench-signed]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "bench signed"
users = ["benchuser"]
privileges = ["bench-signed"]
max_duration = "1h"
reason_required = false
approval = "quorum"
approvers = ["benchappr"]
"#;

/// `runs` samples, in ms.
pub fn verify_times(sb: &Sandbox, runs: usize) -> Vec<f64> {
    let dir = sb.dir.join("bench-signed");
    std::fs::create_dir_all(&dir).unwrap();
    let key = keygen(&sb.dir.join("bench-signed-keys"), "benchuser");
    trust(&dir, &[signer("benchuser", &key, "")]);
    let limits = "calls_per_sec = 1000000.0\ncalls_burst = 1000000\ncalls_in_flight = 1000\n";
    let _d = Daemon::start_with(sb, "bench-signed", POLICY, &(config(&dir) + limits));
    let o = as_user(
        "benchuser",
        &[
            "jitctl",
            "--json",
            "elevate",
            "bench-signed",
            "--for",
            "10m",
        ],
    );
    assert_eq!(o.status.code(), Some(12), "pending: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v["request_id"].as_str().unwrap().to_string();
    let o = as_user("benchuser", &["jitctl", "requests", "--blob", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = token(&stdout(&o), &key, &[]);
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let o = submit("benchappr", t.as_bytes());
            let took = start.elapsed().as_secs_f64() * 1000.0;
            assert!(
                stderr(&o).contains("is the requester"),
                "verified, then refused: {}",
                stderr(&o)
            );
            took
        })
        .collect()
}
