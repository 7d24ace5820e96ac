//! `jitctl replay`: the sessions sudo recorded for a `record = "io"` grant, played back by
//! the real `sudoreplay` (root only: the logs are root's). Run by `tests/run` inside
//! `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

mod ledger_common;

use std::process::Command;

use jitd_tests::*;
use ledger_common::*;

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn replay_lists_a_grants_recorded_sessions_and_root_plays_one_back() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    let _d = start(&sb, "replay");
    let r = elevate("alice", "recorded");
    let o = sudo_as("alice", "/usr/bin/id -un");
    assert!(o.status.success(), "{}", stderr(&o));
    let cs = wait_commands("alice", &r, 1);
    let io = cs[0]["iolog"].as_str().unwrap().to_string();

    // The holder sees the list; playing is root's.
    let o = jitctl("alice", &["replay", &r]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&o);
    assert!(
        list.contains("  1  ") && list.contains("/usr/bin/id -un") && list.contains(&io),
        "{list}"
    );
    let o = jitctl("alice", &["replay", &r, "1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("root's alone"), "{}", stderr(&o));

    // Root plays it: what the command printed, through sudoreplay.
    let o = run(Command::new("jitctl").args(["replay", &r, "1", "--speed", "100"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let played = stdout(&o);
    assert!(
        played.contains("Replaying sudo session: /usr/bin/id -un")
            && played.trim_end().ends_with("root"),
        "{played}{}",
        stderr(&o)
    );
    let o = run(Command::new("jitctl").args(["replay", &r, "2"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no session 2"), "{}", stderr(&o));

    // Someone else's grant is no grant at all to bob.
    let o = jitctl("bob", &["replay", &r]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    // A grant without recorded output says so.
    let w = elevate("alice", "whoami");
    let o = jitctl("alice", &["replay", &w]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("no recorded output"), "{}", stdout(&o));
    let o = json_of(&jitctl("alice", &["--json", "replay", &r]));
    assert_eq!(o["sessions"].as_array().unwrap().len(), 1, "{o}");
}
