//! What happened under each grant, as an auditor reads it: the command ledger fed by sudo's
//! own JSON event log (real sudo), `jitctl show GRANT`, and the alerts. Run by `tests/run`
//! inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

mod ledger_common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jitd_tests::*;
use ledger_common::*;
use serde_json::Value;

/// Real sudo logs each command of two users whose grants overlap; each command lands under
/// the right grant with its argv, run-as, cwd and exit status, and `show` tells the story.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn commands_of_two_users_with_overlapping_grants_land_under_the_right_grant() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    let d = start(&sb, "ledger-two");
    let a = elevate("alice", "whoami");
    let b = elevate("bob", "whoami");
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    assert!(!sudo_as("bob", "/usr/bin/false").status.success());
    assert!(sudo_as("bob", "/usr/bin/id -u").status.success());

    let ac = wait_commands("alice", &a, 1);
    assert_eq!(ac.len(), 1, "{ac:?}");
    assert_eq!(argv_of(&ac[0]), "/usr/bin/id -u");
    assert_eq!(ac[0]["runas"], "root");
    assert_eq!(ac[0]["exit"], 0);
    let bc = wait_commands("bob", &b, 2);
    assert_eq!(
        bc.iter().map(argv_of).collect::<Vec<_>>(),
        ["/usr/bin/false", "/usr/bin/id -u"]
    );
    assert_eq!(bc[0]["exit"], 1);
    // The users' logging goes to one file, jitd's, 0600; sudoers names them in one alias.
    let ledger = ledger_dir(&d);
    let meta = std::fs::metadata(ledger.join("sudo.json")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.mode() & 0o077, 0, "{:o}", meta.mode());

    // The human story.
    let text = stdout(&jitctl("alice", &["show", &a]));
    assert!(
        text.contains("/usr/bin/id -u") && text.contains("exit 0"),
        "{text}"
    );
    assert!(
        text.contains("request.allowed") && text.contains("grant.applied"),
        "{text}"
    );
    // Bob may not read alice's grant: to him it is no grant at all, like an unknown id.
    let o = jitctl("bob", &["show", &a]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).replace(&a, "ID"),
        stderr(&jitctl("bob", &["show", "g000000000000"])).replace("g000000000000", "ID")
    );
    // History has the commands too.
    let h = json_of(&jitctl("bob", &["--json", "history"]));
    assert!(kinds(&h).contains(&"command.exited".to_string()), "{h}");
}

/// jitd killed mid-grant and started again reads on from where it stopped: no command lost,
/// none counted twice; a log cut short or replaced is reported and read from its start.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_restart_mid_grant_loses_and_repeats_nothing_and_a_truncated_log_is_reported() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = start(&sb, "ledger-restart");
    let a = elevate("alice", "whoami");
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    wait_commands("alice", &a, 1);
    d.kill9();
    assert!(!sudo_as("alice", "/usr/bin/false").status.success());
    d.restart();
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    let cs = wait_commands("alice", &a, 3);
    assert_eq!(
        cs.iter().map(argv_of).collect::<Vec<_>>(),
        ["/usr/bin/id -u", "/usr/bin/false", "/usr/bin/id -u"],
        "{cs:?}"
    );
    let uuids: std::collections::HashSet<_> = cs.iter().map(|c| c["uuid"].clone()).collect();
    assert_eq!(uuids.len(), 3);

    // Someone empties the log: reported, and what sudo writes next is still read.
    let file = ledger_dir(&d).join("sudo.json");
    std::fs::write(&file, "").unwrap();
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    wait_commands("alice", &a, 4);
    wait_for(Duration::from_secs(5), "the truncation on record", || {
        d.log().contains("event=ledger.problem") && d.log().contains("truncated")
    });

    // Rotated (moved away, sudo starts a new file): reported, and the new file is read.
    std::fs::rename(&file, file.with_extension("json.1")).unwrap();
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    let cs = wait_commands("alice", &a, 5);
    assert_eq!(cs.len(), 5, "{cs:?}");
    wait_for(Duration::from_secs(5), "the rotation on record", || {
        d.log().contains("was replaced")
    });

    // A symlink in its place is refused, not followed.
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &file).unwrap();
    wait_for(Duration::from_secs(5), "the symlink refused", || {
        d.log().contains("symlink")
    });
    let h = json_of(&jitctl("alice", &["--json", "history", "--limit", "1000"]));
    assert!(
        !h.to_string().contains("root:"),
        "nothing of /etc/shadow read: {h}"
    );
    // A file others may write could hold forged events: refused.
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, "{\n    \"accept\": {\"uuid\": \"forged\"}\n}\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    wait_for(Duration::from_secs(5), "the writable file refused", || {
        d.log().contains("others could forge events")
    });
    assert!(!d.log().contains("forged"), "{}", d.log());
    let _ = std::fs::remove_file(&file);
}

/// A command line with terminal escapes, control characters and 100 KB of arguments is
/// recorded inert and bounded; the ledger goes on.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn hostile_command_lines_are_recorded_inert_and_bounded() {
    let sb = sandbox();
    ensure_user("alice");
    let d = start(&sb, "ledger-hostile");
    let a = elevate("alice", "whoami");
    let o = sudo_as(
        "alice",
        "/usr/bin/echo \"$(printf '\\033[2J\\001\\nevent=grant.revoked')\" \"$(head -c 100000 /dev/zero | tr '\\0' a)\"",
    );
    assert!(!o.status.success());
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    let cs = wait_commands("alice", &a, 2);
    assert_eq!(argv_of(&cs[1]), "/usr/bin/id -u");
    let refused = &cs[0];
    assert_eq!(refused["refused"], true);
    let line = d
        .log()
        .lines()
        .find(|l| l.contains("event=command.refused"))
        .unwrap()
        .to_string();
    assert!(
        !line.contains('\u{1b}') && line.len() < 4000,
        "{}",
        line.len()
    );
    assert!(line.contains("chars)"), "cut, and says so: {line}");
    // The forged record stays inside a quoted value: no line of its own.
    assert!(
        !d.log().lines().any(|l| l
            .trim_start_matches("jitd: ")
            .starts_with("event=grant.revoked")),
        "{}",
        d.log()
    );
}

/// A privilege with `record = "none"` logs nothing through jitd's drop-in.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn record_none_leaves_commands_unlogged() {
    let sb = sandbox();
    ensure_user("alice");
    let d = start(&sb, "ledger-none");
    let q = elevate("alice", "quiet");
    assert!(d.sudo_grants_on_system().contains(&q));
    let text = std::fs::read_to_string(grants_file("quiet")).unwrap();
    assert!(!text.contains("logfile="), "{text}");
    assert!(sudo_as("alice", "/usr/bin/true").status.success());
    std::thread::sleep(Duration::from_millis(600));
    assert!(commands(&story("alice", &q)).is_empty());
    drop(d);
}

/// Each alert rule is set off by a real action, as an audit record an auditor (and a SIEM)
/// sees: a command refused under a live grant, a command touching /etc/shadow, stopping the
/// syslog daemon, sudo after the grant was given back, a burst of refused requests.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn each_alert_rule_is_set_off_by_a_real_action() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    let d = start(&sb, "ledger-alerts");
    let a = elevate("alice", "whoami");
    assert!(alerts(&d).is_empty());

    // Out of scope: not one of the grant's commands.
    assert!(
        !sudo_as("alice", "/usr/bin/cat /etc/hostname")
            .status
            .success()
    );
    let line = wait_alert(&d, "out-of-scope", "/usr/bin/cat /etc/hostname");
    assert!(line.contains(&format!("grant={a}")), "{line}");

    // Sensitive files, and the logs.
    let _ = sudo_as("alice", "/usr/bin/cat /etc/shadow");
    wait_alert(&d, "sensitive-touch", "/etc/shadow");
    let _ = sudo_as("alice", "/usr/bin/systemctl stop rsyslog");
    wait_alert(&d, "log-tamper", "systemctl stop rsyslog");

    // After the end: the trail keeps sudo's log on for the user, and the attempt is hers.
    assert!(jitctl("alice", &["drop", &a]).status.success());
    wait_for(Duration::from_secs(5), "the after-expiry trail", || {
        Path::new("/etc/sudoers.d/jitd_ledger").exists()
    });
    let trail = std::fs::read_to_string("/etc/sudoers.d/jitd_ledger").unwrap();
    assert!(!trail.contains("ALL="), "logging only: {trail}");
    assert!(sudoers_valid());
    assert!(!sudo_as("alice", "/usr/bin/id -u").status.success());
    let line = wait_alert(&d, "use-after-expiry", "/usr/bin/id -u");
    assert!(line.contains(&format!("grant={a}")), "{line}");
    let story = story("alice", &a);
    let late: Vec<Value> = commands(&story)
        .into_iter()
        .filter(|c| c["after_expiry"] == true)
        .collect();
    assert_eq!(late.len(), 1, "{story}");
    assert_eq!(late[0]["refused"], true);
    let text = stdout(&jitctl("alice", &["show", &a]));
    assert!(text.contains("AFTER EXPIRY"), "{text}");

    // A burst of refused requests from one user.
    for _ in 0..5 {
        let _ = jitctl("bob", &["elevate", "nothing-here", "--reason", "x"]);
    }
    wait_alert(&d, "denial-burst", "user=bob");
    // Alerts are history too.
    let h = json_of(&jitctl("alice", &["--json", "history", "--limit", "1000"]));
    assert!(kinds(&h).contains(&"alert.raised".to_string()), "{h}");
}

/// Rules switched off in jitd.toml stay quiet.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn alerts_switched_off_stay_quiet() {
    let sb = sandbox();
    ensure_user("alice");
    let d = Daemon::start_with(
        &sb,
        "ledger-quiet-alerts",
        POLICY,
        "calls_per_sec = 1000.0\ncalls_burst = 1000\nalerts = [\"log-tamper\"]\n",
    );
    let a = elevate("alice", "whoami");
    let _ = sudo_as("alice", "/usr/bin/cat /etc/shadow");
    let _ = sudo_as("alice", "/usr/bin/cat /etc/hostname");
    wait_commands("alice", &a, 2);
    assert!(alerts(&d).is_empty(), "{:?}", alerts(&d));
    let _ = sudo_as("alice", "/usr/bin/systemctl stop rsyslog");
    wait_alert(&d, "log-tamper", "rsyslog");
}

/// A user's sudo log read to its end, with no grant and no trail left, is removed (so the
/// logs do not grow forever), and the next grant's commands are read from a new one.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn logs_nobody_writes_any_more_are_removed_and_the_next_grant_starts_afresh() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = start(&sb, "ledger-cleanup");
    let a = elevate("alice", "whoami");
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    wait_commands("alice", &a, 1);
    assert!(jitctl("alice", &["drop", &a]).status.success());
    let file = ledger_dir(&d).join("sudo.json");
    // Still followed for 10 minutes after the end: kept across a restart.
    d.restart();
    std::thread::sleep(Duration::from_millis(600));
    assert!(file.exists());
    // Past the trail: gone at the next clean-up (at start, then hourly).
    d.set_wall_offset_ms(11 * 60 * 1000);
    d.restart();
    wait_for(Duration::from_secs(5), "the log removed", || !file.exists());
    wait_for(Duration::from_secs(5), "the trail removed", || {
        !Path::new("/etc/sudoers.d/jitd_ledger").exists()
    });
    // Back to sudo's clock, which the ledger compares grants' times with.
    d.set_wall_offset_ms(0);
    d.restart();
    let b = elevate("alice", "whoami");
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    let cs = wait_commands("alice", &b, 1);
    assert_eq!(argv_of(&cs[0]), "/usr/bin/id -u");
    assert!(!d.log().contains("event=ledger.problem"), "{}", d.log());
}

/// `record = "io"`: sudo also keeps what the command printed, root-only; `show` names the log
/// and `sudoreplay` plays it back.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn record_io_keeps_the_output_for_sudoreplay() {
    let sb = sandbox();
    ensure_user("alice");
    let _d = start(&sb, "ledger-io");
    let r = elevate("alice", "recorded");
    let o = sudo_as("alice", "/usr/bin/id -un");
    assert!(o.status.success(), "{}", stderr(&o));
    let cs = wait_commands("alice", &r, 1);
    let io = cs[0]["iolog"].as_str().unwrap_or("").to_string();
    assert!(!io.is_empty(), "{cs:?}");
    let text = stdout(&jitctl("alice", &["show", &r]));
    assert!(text.contains(&format!("sudoreplay {io}")), "{text}");
    let o = run(Command::new("sudoreplay").arg(&io));
    assert!(stdout(&o).contains("root"), "{}{}", stdout(&o), stderr(&o));
    // Not for the user to read.
    let o = as_user("alice", &["cat", &format!("{io}/log")]);
    assert!(!o.status.success());
}

/// A user's logging line stays in `jitd_users` a few minutes after their last grant (so a
/// grant again soon after does not rewrite the file of every holder), grants nothing while it
/// stays, goes once its time is up, and goes with everything else at purge.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_users_logging_line_outlives_their_grant_a_while_and_grants_nothing() {
    use std::os::unix::fs::MetadataExt;
    let sb = sandbox();
    ensure_user("alice");
    let mut d = start(&sb, "ledger-linger");
    let uid = format!("#{}", uid_of("alice").unwrap());
    let users = Path::new("/etc/sudoers.d/jitd_users");
    let a = elevate("alice", "whoami");
    assert!(jitctl("alice", &["drop", &a]).status.success());
    let text = std::fs::read_to_string(users).unwrap();
    assert!(text.contains(&uid) && !text.contains("ALL="), "{text}");
    assert!(sudoers_valid());
    assert!(
        !sudo_as("alice", "/usr/bin/id -u").status.success(),
        "a lingering line let a dropped grant's command run"
    );
    // Asked again: the file is left as it is, and the new grant's commands are its own.
    let inode = std::fs::metadata(users).unwrap().ino();
    let b = elevate("alice", "whoami");
    assert_eq!(std::fs::metadata(users).unwrap().ino(), inode);
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    let cs = wait_commands("alice", &b, 1);
    assert_eq!(argv_of(cs.last().unwrap()), "/usr/bin/id -u");
    // Past its time (the daemon's clock six minutes on): the integrity check lets it go.
    assert!(jitctl("alice", &["drop", &b]).status.success());
    d.set_wall_offset_ms(6 * 60 * 1000);
    wait_for(Duration::from_secs(5), "the lingering line to go", || {
        !std::fs::read_to_string(users).is_ok_and(|t| t.contains(&uid))
    });
    d.set_wall_offset_ms(0);
    // Purge leaves no file of jitd's, a lingering line included.
    let c = elevate("alice", "whoami");
    assert!(jitctl("alice", &["drop", &c]).status.success());
    assert!(users.exists());
    d.kill9();
    assert!(d.oneshot("purge").status.success());
    let left: Vec<String> = std::fs::read_dir("/etc/sudoers.d")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("jitd"))
        .collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
}
