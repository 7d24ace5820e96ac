//! The README's quick start, run as written in the sandbox: what a newcomer copies must work.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::Path;
use std::process::Command;

use jitd_tests::*;

/// The README's quick start, copied verbatim: its `# as root` block on a host where jitd runs
/// with the packaged defaults (an empty policy), then its `# as alice` block, whose `sudo
/// whoami` must say root.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_readme_quick_start_works_as_written() {
    let sb = sandbox();
    ensure_user("alice");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Quick start on one host"))
        .expect("README has a quick start");
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or(""))
        .collect();
    assert_eq!(blocks.len(), 2, "{section}");
    // What the package sets up: jitd running, reading /etc/jitd/policy.d, with nothing in it.
    let d = Daemon::start(&sb, "cli-readme", "");
    d.set_config("policy_file", "\"/etc/jitd/policy.toml\"");
    d.set_config("policy_dir", "\"/etc/jitd/policy.d\"");
    let mut d = d;
    d.restart();
    for block in blocks {
        let user = block
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# as "))
            .expect("each block says who runs it");
        let o = if user == "root" {
            run(Command::new("sh").args(["-ec", block]))
        } else {
            run(Command::new("su").args([user, "-s", "/bin/sh", "-c", &format!("set -e\n{block}")]))
        };
        assert!(
            o.status.success(),
            "the {user} block fails:\n{block}\n{}{}\n{}",
            stdout(&o),
            stderr(&o),
            d.log()
        );
        if user == "alice" {
            assert!(
                stdout(&o).lines().any(|l| l == "root"),
                "sudo whoami says root: {}",
                stdout(&o)
            );
        }
    }
    let _ = std::fs::remove_dir_all("/etc/jitd");
}
