//! What happened under each grant, as an auditor reads it: `jitctl history` (requests, also
//! refused and invalid ones, grants, sessions, commands), `jitctl show GRANT`, the audit export
//! and its check, the command ledger fed by sudo's own JSON event log (real sudo), and the
//! alerts. Run by `tests/run` inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use jitd_tests::*;
use serde_json::Value;

const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u", "/usr/bin/false", "/usr/bin/cat /etc/shadow", "/usr/bin/systemctl stop rsyslog"]

[privilege.quiet]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/true"]
record = "none"

[[rule]]
name = "ops"
users = ["alice", "bob"]
privileges = ["whoami", "quiet"]
max_duration = "1h"
max_active = 5
reason_required = false
"#;

/// A daemon whose per-uid call limits do not slow the tests' polling.
fn start(sb: &Sandbox, name: &str) -> Daemon {
    Daemon::start_with(
        sb,
        name,
        POLICY,
        "calls_per_sec = 1000.0\ncalls_burst = 1000\n",
    )
}

fn jitctl(user: &str, args: &[&str]) -> Output {
    let mut full = vec!["jitctl"];
    full.extend_from_slice(args);
    as_user(user, &full)
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn elevate(user: &str, privilege: &str) -> String {
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

fn jitd(d: &Daemon, args: &[&str]) -> Output {
    run(Command::new(d.dir.join("../bin/jitd"))
        .arg("--config")
        .arg(&d.config)
        .args(args))
}

fn kinds(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// A user's history holds their refused and invalid requests next to their grants, newest
/// first, and pages with a cursor instead of stopping silently; only admins see everyone's.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn history_shows_refused_and_invalid_requests_and_pages_with_a_cursor() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    let _d = start(&sb, "ledger-history");
    let id = elevate("alice", "whoami");
    assert_eq!(
        jitctl("alice", &["elevate", "nothing-here", "--reason", "x"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        jitctl("alice", &["elevate", "Bad Name!", "--reason", "x"])
            .status
            .code(),
        Some(6)
    );
    assert!(jitctl("alice", &["drop", &id]).status.success());
    elevate("bob", "whoami");

    let page = json_of(&jitctl("alice", &["--json", "history"]));
    let k = kinds(&page);
    assert_eq!(
        &k[..4],
        [
            "grant.dropped",
            "request.invalid",
            "request.denied",
            "grant.applied"
        ],
        "{page}"
    );
    assert!(k.contains(&"request.allowed".to_string()), "{k:?}");
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["user"] == "alice" || e["uid"] == uid_of("alice").unwrap()),
        "only alice's: {page}"
    );
    // Human output names the refusal.
    let text = stdout(&jitctl("alice", &["history"]));
    assert!(
        text.contains("request.denied") && text.contains("refused:"),
        "{text}"
    );

    // Pages: two at a time, the cursor leads on, nothing twice, nothing skipped.
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let mut args = vec!["--json", "history", "--limit", "2"];
        let c = cursor.map(|c| c.to_string());
        if let Some(c) = &c {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = json_of(&jitctl("alice", &args));
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["seq"].as_i64().unwrap());
        }
        match page["next_cursor"].as_i64() {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let all_alice = kinds(&json_of(&jitctl(
        "alice",
        &["--json", "history", "--limit", "1000"],
    )));
    assert_eq!(seen.len(), all_alice.len());
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    assert!(
        text.contains("")
            && stdout(&jitctl("alice", &["history", "--limit", "2"])).contains("--cursor")
    );

    // Others' history: admins only.
    let o = jitctl("alice", &["history", "--all"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let o = jitctl("alice", &["history", "--user", "bob"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let all = json_of(&run(
        Command::new("jitctl").args(["--json", "history", "--all"])
    ));
    let users: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["user"].as_str())
        .collect();
    assert!(users.contains(&"alice") && users.contains(&"bob"), "{all}");
    let bobs = json_of(&run(Command::new("jitctl").args([
        "--json",
        "history",
        "--user",
        "bob",
        "--since",
        "1d",
        "--privilege",
        "whoami",
    ])));
    assert!(!bobs["entries"].as_array().unwrap().is_empty());
    assert!(
        bobs["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["user"] == "bob" && e["privilege"] == "whoami"),
        "{bobs}"
    );
    let grants = json_of(&run(Command::new("jitctl").args([
        "--json",
        "history",
        "--all",
        "--kind",
        "grant.applied,request.denied",
    ])));
    let k = kinds(&grants);
    assert!(k.contains(&"grant.applied".to_string()) && k.contains(&"request.denied".to_string()));
    assert!(
        k.iter()
            .all(|k| k == "grant.applied" || k == "request.denied"),
        "{k:?}"
    );
    let future = json_of(&run(Command::new("jitctl").args([
        "--json",
        "history",
        "--all",
        "--since",
        "2099-01-01",
    ])));
    assert_eq!(future["entries"], Value::Array(vec![]));
    let o = run(Command::new("jitctl").args(["history", "--all", "--since", "last tuesday"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// An export (both formats, through the daemon and read directly) verifies; an edited record,
/// a deleted one, or a readable column that lies, does not.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn export_then_verify_round_trips_and_catches_tampering() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = start(&sb, "ledger-export");
    let id = elevate("alice", "whoami");
    // A reason a spreadsheet would run as a formula.
    let o = jitctl(
        "alice",
        &[
            "elevate",
            "quiet",
            "--for",
            "5m",
            "--reason",
            "=HYPERLINK(\"http://x\")",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(jitctl("alice", &["drop", &id]).status.success());

    let o = jitctl("alice", &["audit", "export"]);
    assert_eq!(o.status.code(), Some(4), "admins only: {}", stderr(&o));

    let dir = d.dir.clone();
    let save = |name: &str, o: &Output| -> PathBuf {
        assert!(o.status.success(), "{}", stderr(o));
        let p = dir.join(name);
        std::fs::write(&p, &o.stdout).unwrap();
        p
    };
    let jsonl = save(
        "export.jsonl",
        &run(Command::new("jitctl").args(["audit", "export", "--since", "1d"])),
    );
    let csv = save(
        "export.csv",
        &run(Command::new("jitctl").args(["audit", "export", "--format", "csv"])),
    );
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for key in [
        "host",
        "seq",
        "time",
        "kind",
        "fields",
        "hash",
        "prev_hash",
        "line",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert_eq!(first["host"], "sandbox");
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");
    assert!(text.contains("\"kind\":\"grant.applied\""), "{text}");
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(csv_text.starts_with("host,seq,time,"), "{csv_text}");
    assert!(
        !csv_text.contains(",=") && !csv_text.contains("\n="),
        "{csv_text}"
    );

    for f in [&jsonl, &csv] {
        let o = jitd(&d, &["audit", "verify", "--file", f.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{}: {}{}",
            f.display(),
            stdout(&o),
            stderr(&o)
        );
        assert!(stdout(&o).contains("intact"), "{}", stdout(&o));
    }

    // Read directly, with the daemon stopped: the same records.
    d.stop();
    let direct = jitd(&d, &["audit", "export"]);
    assert!(direct.status.success(), "{}", stderr(&direct));
    assert_eq!(stdout(&direct), text);

    let tampered = |name: &str, edit: &dyn Fn(&str) -> String| -> Output {
        let p = d.dir.join(name);
        std::fs::write(&p, edit(&text)).unwrap();
        jitd(&d, &["audit", "verify", "--file", p.to_str().unwrap()])
    };
    let o = tampered("edited.jsonl", &|t| {
        t.replacen("INC-1 disk", "INC-1 dusk", 2)
    });
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let o = tampered("deleted.jsonl", &|t| {
        let mut lines: Vec<&str> = t.lines().collect();
        lines.remove(2);
        lines.join("\n")
    });
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("broken at seq"), "{}", stdout(&o));
    let o = tampered("lying.jsonl", &|t| {
        t.replacen(
            "\"kind\":\"grant.applied\"",
            "\"kind\":\"grant.revoked\"",
            1,
        )
    });
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("export altered"), "{}", stdout(&o));
    let o = jitd(&d, &["audit", "verify", "--file", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(2));
}

fn ledger_dir(d: &Daemon) -> PathBuf {
    d.dir.join("state/ledger")
}

fn story(user: &str, id: &str) -> Value {
    json_of(&jitctl(user, &["--json", "show", id]))
}

fn commands(story: &Value) -> Vec<Value> {
    story["commands"].as_array().cloned().unwrap_or_default()
}

fn argv_of(c: &Value) -> String {
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
fn wait_commands(user: &str, id: &str, n: usize) -> Vec<Value> {
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
    // The drop-in carries the per-user logging, and sudo's file is jitd's, 0600.
    let ledger = ledger_dir(&d);
    let meta =
        std::fs::metadata(ledger.join(format!("{}.json", uid_of("alice").unwrap()))).unwrap();
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
    // Bob may not read alice's grant.
    assert_eq!(jitctl("bob", &["show", &a]).status.code(), Some(4));
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
    let file = ledger_dir(&d).join(format!("{}.json", uid_of("alice").unwrap()));
    std::fs::write(&file, "").unwrap();
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    wait_commands("alice", &a, 4);
    wait_for(Duration::from_secs(5), "the truncation on record", || {
        d.log().contains("event=ledger.problem") && d.log().contains("truncated")
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
    let drop_in = drop_ins()
        .into_iter()
        .find(|n| n.contains(&q))
        .expect("the drop-in");
    let text = std::fs::read_to_string(Path::new("/etc/sudoers.d").join(drop_in)).unwrap();
    assert!(!text.contains("logfile="), "{text}");
    assert!(sudo_as("alice", "/usr/bin/true").status.success());
    std::thread::sleep(Duration::from_millis(600));
    assert!(commands(&story("alice", &q)).is_empty());
    drop(d);
}

fn alerts(d: &Daemon) -> Vec<String> {
    d.log()
        .lines()
        .filter(|l| l.contains("event=alert.raised"))
        .map(str::to_string)
        .collect()
}

fn wait_alert(d: &Daemon, rule: &str, what: &str) -> String {
    let mut found = String::new();
    wait_for(
        Duration::from_secs(10),
        &format!("the {rule} alert"),
        || {
            found = alerts(d)
                .into_iter()
                .find(|l| l.contains(&format!("rule={rule} ")) && l.contains(what))
                .unwrap_or_default();
            !found.is_empty()
        },
    );
    found
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

/// Records past `audit_retention_days` are purged, and what remains still verifies from the
/// checkpoint kept (database and export alike); a record deleted after it still shows.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn retention_purges_old_records_and_the_rest_still_verifies() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = Daemon::start_with(
        &sb,
        "ledger-retention",
        POLICY,
        "calls_per_sec = 1000.0\ncalls_burst = 1000\naudit_retention_days = 1\n",
    );
    let a = elevate("alice", "whoami");
    assert!(jitctl("alice", &["drop", &a]).status.success());
    assert!(!d.log().contains("event=audit.purged"));
    // Two days on.
    d.set_wall_offset_ms(2 * 86_400_000);
    d.restart();
    wait_for(Duration::from_secs(5), "the purge", || {
        d.log().contains("event=audit.purged")
    });
    let o = jitd(&d, &["audit", "verify"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("purged by audit_retention"),
        "{}",
        stdout(&o)
    );
    // alice's old grant is gone from history, the purge itself is on record.
    let h = json_of(&jitctl("alice", &["--json", "history"]));
    assert!(!h.to_string().contains(&a), "{h}");
    let export = run(Command::new("jitctl").args(["audit", "export"]));
    let file = d.dir.join("after-purge.jsonl");
    std::fs::write(&file, &export.stdout).unwrap();
    assert!(stdout(&export).contains("\"kind\":\"audit.purged\""));
    let o = jitd(&d, &["audit", "verify", "--file", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // Tampering after the checkpoint is still caught.
    elevate("alice", "whoami");
    d.stop();
    let db = d.state_db();
    let mid: String = stdout(&run(Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT seq FROM audit ORDER BY seq LIMIT 1 OFFSET 1")));
    let o = run(Command::new("sqlite3")
        .arg(&db)
        .arg(format!("DELETE FROM audit WHERE seq = {}", mid.trim())));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = jitd(&d, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
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
    let file = ledger_dir(&d).join(format!("{}.json", uid_of("alice").unwrap()));
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
