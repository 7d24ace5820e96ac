//! Alerts an auditor hears about as they happen: a shell started under a grant whose commands
//! are not one (sudo's `log_subcmds` sees each program the command runs), and every alert
//! reaching the notifier's outbox as `alert.<rule>`, routed to `security`, delivered by a real
//! `jitd-notify` to an exec sink. Real sudo throughout. Run by `tests/run` inside
//! `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

mod ledger_common;

use std::time::Duration;

use jitd_tests::notify::*;
use jitd_tests::*;
use ledger_common::{elevate, jitctl};

const POLICY: &str = r#"
[privilege.env]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/env sh -c /usr/bin/id", "/usr/bin/id -u"]

[privilege.shell]
kind = "sudo"
run_as = "root"
commands = ["/bin/sh -c /usr/bin/id"]

[[rule]]
name = "ops"
users = ["alice"]
privileges = ["env", "shell"]
max_duration = "1h"
max_active = 5
reason_required = false
"#;

/// A shell started by a granted command that is not one raises `shell-escape`; a granted
/// shell does not; each alert reaches the notifier as `alert.<rule>` on the security route.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_shell_under_a_grant_that_is_not_one_alerts_and_every_alert_reaches_the_notifier() {
    let sb = sandbox();
    ensure_user("alice");
    let dir = notifier_setup(&sb, "ledger-alerts-notify");
    let out = dir.join("notes");
    recording_sink(
        &dir,
        &out,
        r#"["alert.shell-escape", "alert.out-of-scope"]"#,
    );
    let d = Daemon::start_with(
        &sb,
        "ledger-alerts-shell",
        POLICY,
        "calls_per_sec = 1000.0\ncalls_burst = 1000\n",
    );
    let _kids = Kids(vec![start_notifier(&sb, &dir)]);

    // A granted shell runs a command: no alert.
    let s = elevate("alice", "shell");
    let o = sudo_as("alice", "/bin/sh -c /usr/bin/id");
    assert!(o.status.success(), "{}", stderr(&o));
    // env is granted; the shell it starts is not.
    let e = elevate("alice", "env");
    let o = sudo_as("alice", "/usr/bin/env sh -c /usr/bin/id");
    assert!(o.status.success(), "{}", stderr(&o));
    let line = wait_alert(&d, "shell-escape", "sh -c /usr/bin/id");
    assert!(line.contains(&format!("grant={e}")), "{line}");
    assert!(!line.contains(&format!("grant={s}")), "{line}");
    assert_eq!(
        alerts(&d)
            .iter()
            .filter(|l| l.contains("shell-escape"))
            .count(),
        1,
        "{:?}",
        alerts(&d)
    );

    // Refused under the grant: out-of-scope.
    assert!(!sudo_as("alice", "/usr/bin/id -un").status.success());
    wait_alert(&d, "out-of-scope", "/usr/bin/id -un");

    let notes = || lines(&out);
    wait_for(Duration::from_secs(10), "both alerts delivered", || {
        notes().len() >= 2
    });
    let got = notes();
    let kinds: Vec<&str> = got.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["alert.shell-escape", "alert.out-of-scope"],
        "{got:?}"
    );
    let shell = &got[0];
    assert_eq!(shell["grant"], e.as_str());
    assert_eq!(shell["user"], "alice");
    assert_eq!(shell["severity"], "critical");
    assert_eq!(shell["routes"][0], "security");
    assert!(
        shell["why"].as_str().unwrap().contains("/usr/bin/env"),
        "{shell}"
    );
    assert_eq!(got[1]["severity"], "warning");
    let _ = jitctl("alice", &["list"]);
}
