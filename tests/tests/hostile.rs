//! The security suite's end-to-end groups: hostile callers on the real bus, hostile input
//! through jitctl and the bus, and injected faults (locked database, full disk, failing visudo).
//! Each case asserts the error the attacker gets, and that nothing changed on the host.
//! Run by `tests/run` inside `tests/sandbox`; each test starts its own daemon.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use jitd::client::{BUS_NAME, MANAGER_INTERFACE, OBJECT_PATH};
use jitd_tests::*;

const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "hostile"
users = ["alice", "bob"]
privileges = ["whoami"]
max_duration = "1h"
reason_min_chars = 5
max_active = 1
"#;

fn setup() -> Sandbox {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    sb
}

fn jitctl(user: &str, args: &[&str]) -> Output {
    let mut full = vec!["jitctl"];
    full.extend_from_slice(args);
    as_user(user, &full)
}

/// `jitctl elevate whoami` as `user`, whatever the outcome.
fn try_elevate(user: &str, duration: &str, reason: &str) -> Output {
    jitctl(
        user,
        &["elevate", "whoami", "--for", duration, "--reason", reason],
    )
}

fn elevate(user: &str, secs: u32) -> String {
    let duration = format!("{secs}s");
    let o = jitctl(
        user,
        &[
            "--json",
            "elevate",
            "whoami",
            "--for",
            &duration,
            "--reason",
            "hostile suite",
        ],
    );
    assert!(o.status.success(), "elevate: {}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["grant"]["id"].as_str().unwrap().to_string()
}

/// Every grant on the host, as root sees it (live only).
fn live_grants() -> usize {
    let o = run(Command::new("jitctl").args(["--json", "list", "--all"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["grants"].as_array().map_or(0, Vec::len)
}

fn busctl_as(user: &str, args: &[&str]) -> Output {
    let mut full = vec!["busctl", "--system", "call", BUS_NAME, OBJECT_PATH];
    full.extend_from_slice(args);
    as_user(user, &full)
}

fn host_unchanged() {
    assert!(drop_ins().is_empty(), "no drop-in: {:?}", drop_ins());
    assert!(sudoers_valid(), "sudoers still valid");
}

// ---- hostile callers -------------------------------------------------------------------------

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn users_cannot_reach_the_gate_or_the_admin_methods() {
    let sb = setup();
    let _d = Daemon::start(&sb, "h-authz", POLICY);
    let uid = uid_of("alice").unwrap().to_string();
    let gate = "org.jitd.Jitd1.Gate";
    for call in [
        vec![
            gate,
            "RequestFor",
            "ustss",
            &uid,
            "whoami",
            "60",
            "grant myself",
            "",
        ],
        vec![gate, "SessionClosed", "s", "s000000000000"],
        vec![gate, "CheckAccess", "usss", &uid, "sudo", "", ""],
    ] {
        let o = busctl_as("alice", &call);
        assert!(!o.status.success(), "{call:?} reached the gate");
        assert!(
            stderr(&o).contains("Access denied"),
            "{call:?}: refused by the bus policy: {}",
            stderr(&o)
        );
    }
    let o = busctl_as("alice", &[MANAGER_INTERFACE, "ReloadPolicy"]);
    assert!(
        stderr(&o).contains("admins") || stderr(&o).contains("not allowed"),
        "reload is for admins: {}",
        stderr(&o)
    );
    let o = busctl_as("alice", &[MANAGER_INTERFACE, "ListAll", "b", "true"]);
    assert!(!o.status.success(), "list all is for admins");

    // bob's grant is invisible and untouchable for alice: same answer as for an unknown id.
    let id = elevate("bob", 60);
    let o = jitctl("alice", &["revoke", &id, "--reason", "not mine"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("no grant {id}")),
        "{}",
        stderr(&o)
    );
    assert_eq!(live_grants(), 1, "bob's grant survives");
}

/// The admin methods are delegated through polkit only on an explicit yes for
/// `org.jitd.Jitd1.manage`: with polkit absent, with no rule, or with a rule that would want a
/// password (jitd never lets polkit ask), the caller is refused and nothing changes.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn polkit_delegates_the_admin_methods_only_on_an_explicit_yes() {
    let sb = setup();
    ensure_user("carol");
    let d = Daemon::start(&sb, "h-polkit", POLICY);
    let id = elevate("bob", 60);
    let refused = |why: &str| {
        let o = jitctl("carol", &["list", "--all"]);
        assert_eq!(o.status.code(), Some(4), "{why}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("org.jitd.Jitd1.manage"),
            "{}",
            stderr(&o)
        );
        let o = jitctl("carol", &["revoke", &id, "--reason", "not delegated"]);
        assert_eq!(o.status.code(), Some(7), "{why}: {}", stderr(&o));
        assert_eq!(live_grants(), 1, "{why}: bob's grant survives");
    };

    refused("polkit not running");
    {
        let _pk = Polkit::start("");
        refused("no rule");
    }
    {
        let _pk = Polkit::start(
            r#"polkit.addRule(function(action, subject) {
                if (action.id == "org.jitd.Jitd1.manage" && subject.user == "carol")
                    return polkit.Result.AUTH_ADMIN;
            });"#,
        );
        refused("a rule that wants a password");
    }
    let _pk = Polkit::start(
        r#"polkit.addRule(function(action, subject) {
            if (action.id == "org.jitd.Jitd1.manage" && subject.user == "carol")
                return polkit.Result.YES;
        });"#,
    );
    // Someone else is still refused.
    let o = jitctl("alice", &["list", "--all"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let o = jitctl("carol", &["--json", "list", "--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&id),
        "carol sees bob's grant: {}",
        stdout(&o)
    );
    let o = jitctl("carol", &["revoke", &id, "--reason", "delegated by polkit"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(live_grants(), 0);
    host_unchanged();
    let log = d.log();
    assert!(
        log.lines().any(|l| l.contains("event=admin.polkit")
            && l.contains("method=Revoke")
            && l.contains("answer=yes")),
        "the delegated revoke is audited with polkit's answer:\n{log}"
    );
    assert!(
        log.contains("revoked by carol: delegated by polkit"),
        "the audit names the delegate:\n{log}"
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn ended_grant_ids_cannot_be_replayed() {
    let sb = setup();
    let _d = Daemon::start(&sb, "h-replay", POLICY);
    let id = elevate("alice", 60);
    let o = jitctl("alice", &["drop", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Ending an ended grant changes nothing and is not an error (scripts stay idempotent).
    for args in [vec!["drop", id.as_str()], vec!["revoke", id.as_str()]] {
        let o = jitctl("alice", &args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("had already ended"), "{}", stdout(&o));
    }
    let expired = elevate("alice", 1);
    wait_for(Duration::from_secs(5), "expiry", || drop_ins().is_empty());
    let o = jitctl("alice", &["drop", &expired]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("expired"), "{}", stdout(&o));
    assert_eq!(live_grants(), 0);
    host_unchanged();
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn malformed_and_oversized_calls_are_refused_and_the_bus_keeps_serving() {
    let sb = setup();
    let _d = Daemon::start(&sb, "h-malformed", POLICY);
    let cases: &[&[&str]] = &[
        &[MANAGER_INTERFACE, "Request", "s", "whoami"],
        &[
            MANAGER_INTERFACE,
            "Request",
            "ssss",
            "whoami",
            "60",
            "reason here",
            "",
        ],
        &[MANAGER_INTERFACE, "Request", "tttt", "1", "2", "3", "4"],
        &[MANAGER_INTERFACE, "Revoke", "s", "g0000"],
        &[MANAGER_INTERFACE, "Nonexistent"],
        &["org.jitd.Jitd1.Nope", "Request"],
    ];
    for args in cases {
        let o = busctl_as("alice", args);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
    }
    let o = busctl_as(
        "alice",
        &[MANAGER_INTERFACE, "Explain", "s", "../../etc/shadow"],
    );
    assert!(
        stderr(&o).contains("privilege name"),
        "a name that is not a privilege name is refused as such: {}",
        stderr(&o)
    );
    // Huge strings in every argument, straight through the project's own client.
    let huge = "A".repeat(8 << 20);
    let replies = zbus::block_on(async {
        let conn = jitd::client::connect(None).await.unwrap();
        let m = jitd::client::ManagerProxy::new(&conn).await.unwrap();
        vec![
            m.request(&huge, 60, "reason here", "").await.is_err(),
            m.request("whoami", 60, "reason here", &huge).await.is_err(),
            m.explain(&huge).await.is_err(),
            m.revoke(&huge, "", false).await.is_err(),
            m.request("whoami", u64::MAX, "reason here", "")
                .await
                .is_err(),
        ]
    });
    assert!(replies.iter().all(|refused| *refused), "{replies:?}");
    assert!(bus_name_owned(), "still serving");
    assert_eq!(live_grants(), 0);
    host_unchanged();
    // And a proper request still works.
    elevate("alice", 60);
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn callers_that_send_and_vanish_get_no_grant() {
    let sb = setup();
    let d = Daemon::start(&sb, "h-vanish", POLICY);
    // dbus-send without --print-reply sends with NO_REPLY_EXPECTED and exits at once.
    for _ in 0..100 {
        let o = as_user(
            "alice",
            &[
                "dbus-send",
                "--system",
                &format!("--dest={BUS_NAME}"),
                "--type=method_call",
                OBJECT_PATH,
                &format!("{MANAGER_INTERFACE}.Request"),
                "string:whoami",
                "uint64:60",
                "string:fire and forget",
                "string:",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // The project's client: send, then drop the connection without reading the answer.
    for _ in 0..100 {
        zbus::block_on(async {
            let conn = jitd::client::connect(None).await.unwrap();
            let msg = zbus::message::Message::method_call(OBJECT_PATH, "Request")
                .destination(BUS_NAME)
                .interface(MANAGER_INTERFACE)
                .with_flags(zbus::message::Flags::NO_REPLY_EXPECTED)
                .build(&("whoami", 60u64, "fire and forget", ""))
                .unwrap();
            conn.send(&msg).await.unwrap();
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(bus_name_owned(), "still serving");
    // A request can be approved in the instant before its caller leaves; it is then taken back
    // at once. No grant outlives a caller that did not wait for the answer.
    let log = d.log();
    let approved = log
        .lines()
        .filter(|l| l.contains("request.allowed"))
        .count();
    let taken_back = log
        .lines()
        .filter(|l| l.contains("grant.revoked") && l.contains("disconnected before the answer"))
        .count();
    assert_eq!(approved, taken_back, "every approval taken back:\n{log}");
    assert_eq!(live_grants(), 0, "zero grants left");
    host_unchanged();
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_user_process_cannot_take_the_bus_name() {
    let sb = setup();
    drop(sb);
    assert!(!bus_name_owned(), "no daemon in this test");
    let o = as_user(
        "alice",
        &[
            "busctl",
            "--system",
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "RequestName",
            "su",
            BUS_NAME,
            "0",
        ],
    );
    assert!(
        !o.status.success(),
        "alice owned {BUS_NAME}: {}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("Access denied"), "{}", stderr(&o));
    // With no owner, clients say jitd is not running rather than talk to whoever answers.
    let o = jitctl("alice", &["status"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
}

// ---- hostile input ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn hostile_durations_and_reasons_are_refused_or_kept_inert() {
    let sb = setup();
    let d = Daemon::start(&sb, "h-input", POLICY);
    for (duration, code) in [
        ("0", 2),
        ("1ns", 2),
        ("18446744073709551615s", 2),
        ("-9223372036854775808s", 2),
        ("10y", 2),
        ("367d", 2),
        ("1h1h", 2),
    ] {
        let o = try_elevate("alice", duration, "reason here");
        assert_eq!(o.status.code(), Some(code), "{duration}: {}", stderr(&o));
    }
    for reason in ["\u{1b}[31mred\u{1b}[0m", "tab\there", "nul\u{7f}del"] {
        let o = try_elevate("alice", "1m", reason);
        assert_eq!(o.status.code(), Some(6), "{reason:?}: {}", stderr(&o));
    }
    host_unchanged();
    // Printable but format-looking text is kept as data, and audited on one escaped line.
    let o = try_elevate("alice", "1m", "%n%s%x ' \" ; ALL=(ALL) ALL");
    assert!(o.status.success(), "{}", stderr(&o));
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("request.allowed"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("%n%s%x"), "{line}");
    assert!(sudoers_valid());
    let text = std::fs::read_to_string(format!("/etc/sudoers.d/{}", drop_ins()[0])).unwrap();
    assert!(
        !text.contains("%n%s"),
        "the reason never reaches sudoers: {text}"
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn hostile_policy_files_are_refused_with_positions() {
    let _sb = setup();
    let dir = std::env::temp_dir().join("jitd-hostile-policies");
    std::fs::create_dir_all(&dir).unwrap();
    let base = "[privilege.p]\nkind = \"sudo\"\ncommands = [\"/usr/bin/id\"]\n";
    let rule = "[[rule]]\nname = \"r\"\nprivileges = [\"p\"]\nmax_duration = \"1h\"\n";
    let cases = [
        (
            "dup-key",
            format!("{base}kind = \"group\"\n{rule}users = [\"alice\"]\n"),
            "set twice",
        ),
        (
            "unknown-field",
            format!("{base}colour = \"red\"\n{rule}users = [\"alice\"]\n"),
            "unknown key",
        ),
        (
            "missing-ref",
            format!("{base}{rule}users = [\"alice\"]\n")
                .replace("privileges = [\"p\"]", "privileges = [\"q\"]"),
            "q",
        ),
        (
            "wildcard",
            base.replace("/usr/bin/id", "/usr/bin/*") + rule + "users = [\"alice\"]\n",
            "wildcard",
        ),
        (
            "relative",
            base.replace("/usr/bin/id", "bin/id") + rule + "users = [\"alice\"]\n",
            "absolute",
        ),
        (
            "dotdot",
            base.replace("/usr/bin/id", "/usr/bin/../bin/sh") + rule + "users = [\"alice\"]\n",
            "normalised",
        ),
        (
            "user-ALL",
            format!("{base}{rule}users = [\"ALL\"]\n"),
            "ALL",
        ),
        (
            "user-percent",
            format!("{base}{rule}users = [\"%admin\"]\n"),
            "%admin",
        ),
        (
            "user-plus",
            format!("{base}{rule}users = [\"+net\"]\n"),
            "+net",
        ),
        ("user-hash", format!("{base}{rule}users = [\"#0\"]\n"), "#0"),
        (
            "user-comma",
            format!("{base}{rule}users = [\"a,b\"]\n"),
            "a,b",
        ),
        (
            "user-colon",
            format!("{base}{rule}users = [\"a:b\"]\n"),
            "a:b",
        ),
        (
            "user-quote",
            format!("{base}{rule}users = [\"a\\\"b\"]\n"),
            "a\\\"b",
        ),
        (
            "user-path",
            format!("{base}{rule}users = [\"../x\"]\n"),
            "../x",
        ),
        ("user-dot", format!("{base}{rule}users = [\".x\"]\n"), ".x"),
        (
            "user-tilde",
            format!("{base}{rule}users = [\"x~\"]\n"),
            "x~",
        ),
        (
            "user-newline",
            format!("{base}{rule}users = [\"a\\nb\"]\n"),
            "a\\nb",
        ),
        (
            "user-nul",
            format!("{base}{rule}users = [\"a\\u0000b\"]\n"),
            "a\\0b",
        ),
        (
            "group-percent",
            "[privilege.g]\nkind = \"group\"\ngroup = \"%wheel\"\n".to_string(),
            "%wheel",
        ),
        (
            "sensitive-group",
            "[privilege.g]\nkind = \"group\"\ngroup = \"root\"\n".to_string(),
            "as good as root",
        ),
        (
            "sudoedit",
            base.replace("/usr/bin/id", "sudoedit /etc/shadow") + rule + "users = [\"alice\"]\n",
            "sudoedit",
        ),
        (
            "bad-duration",
            format!("{base}{rule}users = [\"alice\"]\n")
                .replace("\"1h\"", "\"9999999999999999999999s\""),
            "max_duration",
        ),
        ("non-utf8", String::new(), "UTF-8"),
    ];
    for (name, text, needle) in &cases {
        let path = dir.join(format!("{name}.toml"));
        if *name == "non-utf8" {
            std::fs::write(&path, b"[privilege.p]\nkind = \"\xff\xfe\"\n").unwrap();
        } else {
            std::fs::write(&path, text).unwrap();
        }
        let o = run(Command::new("jitctl").args(["policy", "check"]).arg(&path));
        let err = stderr(&o) + &stdout(&o);
        assert!(!o.status.success(), "{name} accepted:\n{text}");
        let located = err.contains(&format!("{}:", path.display()));
        assert!(located, "{name}: error names the file and position: {err}");
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{name}: error mentions {needle:?}: {err}"
        );
    }
}

// ---- injected faults -------------------------------------------------------------------------

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_locked_database_refuses_new_grants_in_bounded_time_but_expiry_proceeds() {
    let sb = setup();
    let d = Daemon::start(&sb, "h-locked", POLICY);
    elevate("bob", 3);
    // Another process takes the write lock and holds it.
    let db = d.state_db();
    let mut holder = Command::new("sqlite3")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sqlite3 (tests/deps installs it)");
    {
        use std::io::Write;
        let stdin = holder.stdin.as_mut().unwrap();
        writeln!(stdin, "BEGIN EXCLUSIVE; SELECT 1;").unwrap();
        stdin.flush().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let o = try_elevate("alice", "1m", "while locked");
    let took = start.elapsed();
    assert_eq!(
        o.status.code(),
        Some(8),
        "Unavailable: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(took < Duration::from_secs(10), "bounded wait: {took:?}");
    // bob's grant still goes at its deadline, database or not.
    wait_for(Duration::from_secs(8), "expiry while locked", || {
        drop_ins().is_empty()
    });
    let _ = holder.kill();
    let _ = holder.wait();
    host_unchanged();
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_full_disk_refuses_new_grants_and_revocation_still_works() {
    let sb = setup();
    let mut d = Daemon::start(&sb, "h-full", POLICY);
    let state = d.restart_on_tmpfs("1m");
    let id = elevate("bob", 60);
    // Fill the disk.
    let _ = run(Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", state.join("filler").display())));
    let o = try_elevate("alice", "1m", "disk is full");
    assert_eq!(
        o.status.code(),
        Some(8),
        "Unavailable: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(
        uids_with_rules(),
        vec![uid_of("bob").unwrap()],
        "only bob's grant: {:?}",
        sudo_rules()
    );
    let o = run(Command::new("jitctl").args(["revoke", &id, "--reason", "disk full drill"]));
    assert!(
        o.status.success(),
        "revocation works on a full disk: {}",
        stderr(&o)
    );
    assert!(drop_ins().is_empty(), "{:?}", drop_ins());
    d.kill9();
    let _ = run(Command::new("umount").arg("-l").arg(&state));
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_failing_visudo_installs_nothing() {
    let sb = setup();
    let mut d = Daemon::start(&sb, "h-visudo", POLICY);
    d.stop();
    let cfg = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, format!("{cfg}visudo = \"/bin/false\"\n")).unwrap();
    d.restart();
    let o = try_elevate("alice", "1m", "visudo fails");
    assert!(!o.status.success(), "granted without a checked file");
    assert!(stderr(&o).contains("visudo"), "{}", stderr(&o));
    assert_eq!(live_grants(), 0);
    host_unchanged();
}

/// gpasswd failing half-way (it rewrote /etc/group, then died before /etc/gshadow), on the way
/// in and on the way out: jitd reads both files back, refuses or retries, and leaves neither
/// file holding the membership. A fake gpasswd fails once per marker file, then runs the real one.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn gpasswd_failing_half_way_leaves_no_membership_behind() {
    use std::os::unix::fs::PermissionsExt;
    let sb = setup();
    ensure_group("jitdhalf");
    let policy = r#"
[privilege.half]
kind = "group"
group = "jitdhalf"

[[rule]]
name = "half"
users = ["alice"]
privileges = ["half"]
max_duration = "1h"
reason_required = false
"#;
    let tools = sb.dir.join("half-tools");
    std::fs::create_dir_all(&tools).unwrap();
    let fake = tools.join("gpasswd");
    std::fs::write(
        &fake,
        r#"#!/bin/sh
d=/usr/bin/dirname; d=$($d "$0")
case "$1" in
-a) if [ -e "$d/add-half" ]; then /bin/rm -f "$d/add-half"
      /bin/sed -i "s/^$3:\([^:]*\):\([0-9]*\):\$/$3:\1:\2:$2/" /etc/group; exit 1; fi ;;
-d) if [ -e "$d/del-fail" ]; then /bin/rm -f "$d/del-fail"; exit 1; fi
    if [ -e "$d/del-half" ]; then /bin/rm -f "$d/del-half"
      /bin/sed -i "s/^$3:\([^:]*\):\([0-9]*\):$2\$/$3:\1:\2:/" /etc/group; exit 1; fi ;;
esac
exec /usr/bin/gpasswd "$@"
"#,
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut d = Daemon::start(&sb, "h-gpasswd", policy);
    d.stop();
    let cfg = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, format!("{cfg}gpasswd = {fake:?}\n")).unwrap();
    d.restart();
    let member_anywhere = || {
        ["/etc/group", "/etc/gshadow"].iter().any(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .any(|l| l.starts_with("jitdhalf:") && l.ends_with("alice"))
        })
    };
    let elevate_half = |secs: &str| jitctl("alice", &["--json", "elevate", "half", "--for", secs]);

    // On the way in: half-applied, and the first undo fails too.
    std::fs::write(tools.join("add-half"), "").unwrap();
    std::fs::write(tools.join("del-fail"), "").unwrap();
    let o = elevate_half("10m");
    assert_eq!(
        o.status.code(),
        Some(8),
        "refused: {}{}",
        stdout(&o),
        stderr(&o)
    );
    // The retried undo is audited just after it clears the files.
    wait_for(
        Duration::from_secs(5),
        "the half-applied membership to be undone and the undo audited",
        || !member_anywhere() && d.log().contains("event=grant.rolled_back"),
    );
    assert!(
        !tools.join("add-half").exists() && !tools.join("del-fail").exists(),
        "both failures happened"
    );

    // On the way out: the removal dies after /etc/group; the retry clears /etc/gshadow.
    let o = elevate_half("2s");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(member_anywhere());
    std::fs::write(tools.join("del-half"), "").unwrap();
    // The expiry is recorded just after the retry clears the files.
    wait_for(
        Duration::from_secs(8),
        "the membership to be gone from both files and the expiry recorded",
        || !member_anywhere() && d.log().contains("event=grant.expired"),
    );
    let log = d.log();
    assert!(log.contains("event=grant.remove_failed"), "{log}");
    assert!(
        !tools.join("del-half").exists(),
        "the half-way failure happened"
    );
    assert_eq!(live_grants(), 0);
}

/// The system bus goes away with a grant live: jitd keeps revoking by its own clock, and once
/// the bus is back it serves requests again without being restarted.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_clock_revokes_while_the_bus_is_down_and_jitd_serves_again_after() {
    let sb = setup();
    let d = Daemon::start(&sb, "h-bus", POLICY);
    // A healthy bus is never taken for a lost one (its check runs every 2 s).
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!d.log().contains("lost the bus"), "{}", d.log());
    let id = elevate("alice", 3);
    stop_bus(&sb);
    assert_eq!(d.sudo_grants_on_system(), vec![id]);
    let took = wait_gone(&grants_file("whoami"), Duration::from_secs(8));
    assert!(took < Duration::from_secs(5), "removed on time: {took:?}");
    assert!(
        !sudo_as("alice", "/usr/bin/id -u").status.success(),
        "refused after the deadline"
    );
    start_bus(&sb);
    // The return is logged just after the name is taken.
    wait_for(Duration::from_secs(10), "jitd back on the bus", || {
        bus_name_owned() && d.log().contains("serving org.jitd.Jitd1 again")
    });
    let log = d.log();
    assert_eq!(log.matches("lost the bus").count(), 1, "{log}");
    let again = elevate("bob", 60);
    assert_eq!(d.sudo_grants_on_system(), vec![again]);
    assert_eq!(uids_with_rules(), vec![uid_of("bob").unwrap()]);
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn an_unrelated_broken_drop_in_is_never_made_worse() {
    let sb = setup();
    let broken = "/etc/sudoers.d/zz-someone-elses";
    std::fs::write(broken, "this is not sudoers\n").unwrap();
    let _d = Daemon::start(&sb, "h-broken", POLICY);
    let o = try_elevate("alice", "1m", "broken neighbour");
    // jitd's own file is checked on its own; the neighbour is left exactly as it was.
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(broken).unwrap(),
        "this is not sudoers\n"
    );
    let ours = format!("/etc/sudoers.d/{}", drop_ins()[0]);
    assert!(
        run(Command::new("visudo").args(["-cf", &ours]))
            .status
            .success()
    );
    std::fs::remove_file(broken).unwrap();
    assert!(sudoers_valid(), "valid again without the neighbour");
}
