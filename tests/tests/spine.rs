//! The whole loop against the real components: jitd on a real bus, jitctl as a real user,
//! real sudo reading the drop-in, real gpasswd, restart reconciliation after kill -9.
//! Run by `tests/run` inside `tests/sandbox`; each test starts its own daemon.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use jitd_tests::*;

const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
description = "Show the effective uid as root"
run_as = "root"
commands = ["/usr/bin/id -u"]

[privilege.e2e-group]
kind = "group"
group = "jitde2e"

[[rule]]
name = "e2e users"
users = ["alice", "bob"]
privileges = ["whoami", "e2e-group"]
max_duration = "1h"
default_duration = "10m"
reason_min_chars = 8
max_active = 2
"#;

fn jitctl(user: &str, args: &[&str]) -> std::process::Output {
    let mut full = vec!["jitctl"];
    full.extend_from_slice(args);
    as_user(user, &full)
}

fn setup() -> Sandbox {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    ensure_group("jitde2e");
    sb
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn elevate_gives_exactly_the_privilege_and_expiry_takes_it_away() {
    let sb = setup();
    let d = Daemon::start(&sb, "loop", POLICY);

    let before = sudo_as("alice", "/usr/bin/id -u");
    assert!(
        !before.status.success(),
        "no sudo before a grant: {}",
        stdout(&before)
    );

    let o = jitctl(
        "alice",
        &[
            "elevate",
            "whoami",
            "--for",
            "3s",
            "--reason",
            "end-to-end loop test",
        ],
    );
    assert!(
        o.status.success(),
        "elevate failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let uid = uid_of("alice").unwrap();
    assert_eq!(
        drop_ins(),
        vec!["jitd_grants_whoami".to_string()],
        "the privilege's file"
    );
    assert_eq!(uids_with_rules(), vec![uid], "{:?}", sudo_rules());
    assert!(sudoers_valid(), "sudoers must stay valid");
    let id = d.sudo_grants_on_system().pop().expect("the grant's record");

    let during = sudo_as("alice", "/usr/bin/id -u");
    assert!(
        during.status.success(),
        "sudo during the grant: {}",
        stderr(&during)
    );
    assert_eq!(stdout(&during).trim(), "0", "ran as root");

    let other_args = sudo_as("alice", "/usr/bin/id -g");
    assert!(
        !other_args.status.success(),
        "only the exact command line is granted"
    );
    let other_user = sudo_as("bob", "/usr/bin/id -u");
    assert!(
        !other_user.status.success(),
        "the grant is bound to alice's uid"
    );

    wait_gone(&grants_file("whoami"), Duration::from_secs(5));
    let after = sudo_as("alice", "/usr/bin/id -u");
    assert!(
        !after.status.success(),
        "sudo refused after expiry: {}",
        stdout(&after)
    );

    let status = jitctl("alice", &["--json", "list", "--ended"]);
    let list: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(list["grants"][0]["id"], id.as_str());
    assert_eq!(list["grants"][0]["state"], "expired");
    let log = d.log();
    for event in [
        "event=request.allowed",
        "event=grant.applied",
        "event=grant.expired",
    ] {
        assert!(log.contains(event), "audit has {event}:\n{log}");
    }
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn notafter_is_written_in_utc_for_classic_sudo() {
    let sb = setup();
    let _d = Daemon::start(&sb, "notafter", POLICY);
    let o = jitctl(
        "alice",
        &[
            "elevate",
            "whoami",
            "--for",
            "10m",
            "--reason",
            "check notafter",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let name = &grants_file("whoami");
    let text = std::fs::read_to_string(name).unwrap();
    let uid = uid_of("alice").unwrap();
    let rule: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("# ") && !l.starts_with("Defaults:") && !l.is_empty())
        .collect();
    assert_eq!(rule.len(), 1, "exactly one rule:\n{text}");
    assert!(
        rule[0].starts_with(&format!("#{uid} ALL=(#0) NOTAFTER=")),
        "{text}"
    );
    let stamp = rule[0].split("NOTAFTER=").nth(1).unwrap();
    assert_eq!(&stamp[14..15], "Z", "UTC stamp: {stamp}");
    let meta = std::fs::metadata(name).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777),
        (0, 0, 0o440)
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn group_grant_adds_membership_and_expiry_removes_it() {
    let sb = setup();
    let d = Daemon::start(&sb, "group", POLICY);
    assert!(!groups_of("bob").contains(&"jitde2e".to_string()));
    let o = jitctl(
        "bob",
        &[
            "--json",
            "elevate",
            "e2e-group",
            "--for",
            "2s",
            "--reason",
            "group grant test",
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v["grant"]["id"].as_str().unwrap().to_string();
    assert!(
        groups_of("bob").contains(&"jitde2e".to_string()),
        "member during the grant"
    );
    // Once jitd records the expiry, gpasswd has finished with both files.
    wait_for(Duration::from_secs(5), "the grant to expire", || {
        d.state_of(&id) == "expired"
    });
    assert!(!groups_of("bob").contains(&"jitde2e".to_string()));
    let gshadow = std::fs::read_to_string("/etc/gshadow").unwrap();
    let line = gshadow.lines().find(|l| l.starts_with("jitde2e:")).unwrap();
    assert!(
        !line
            .split(':')
            .nth(3)
            .unwrap_or("")
            .split(',')
            .any(|m| m == "bob"),
        "{line}"
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn standing_membership_is_never_granted_nor_taken_away() {
    let sb = setup();
    ensure_user("carol");
    add_to_group("carol", "jitde2e");
    let _d = Daemon::start(
        &sb,
        "standing",
        &POLICY.replace("[\"alice\", \"bob\"]", "[\"carol\"]"),
    );
    let o = jitctl(
        "carol",
        &[
            "elevate",
            "e2e-group",
            "--for",
            "2s",
            "--reason",
            "already a member",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "policy denial: {}", stderr(&o));
    assert!(stderr(&o).contains("already a member"), "{}", stderr(&o));
    sleep(Duration::from_secs(3));
    assert!(
        groups_of("carol").contains(&"jitde2e".to_string()),
        "standing membership kept"
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn restart_after_kill_removes_expired_keeps_live_and_cleans_orphans() {
    let sb = setup();
    let mut d = Daemon::start(&sb, "restart", POLICY);
    let short = jitctl(
        "alice",
        &[
            "--json",
            "elevate",
            "whoami",
            "--for",
            "2s",
            "--reason",
            "short grant",
        ],
    );
    assert!(short.status.success(), "{}", stderr(&short));
    let long = jitctl(
        "bob",
        &[
            "--json",
            "elevate",
            "whoami",
            "--for",
            "30m",
            "--reason",
            "long grant",
        ],
    );
    assert!(long.status.success(), "{}", stderr(&long));
    let short_id =
        serde_json::from_slice::<serde_json::Value>(&short.stdout).unwrap()["grant"]["id"]
            .as_str()
            .unwrap()
            .to_string();
    let long_id = serde_json::from_slice::<serde_json::Value>(&long.stdout).unwrap()["grant"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    d.kill9();
    // An orphan with jitd's marker (a grant the DB does not know) and a foreign look-alike.
    let orphan = "/etc/sudoers.d/jitd-g0000000000aa";
    std::fs::write(
        orphan,
        "# jitd grant g0000000000aa: managed by jitd, do not edit\n",
    )
    .unwrap();
    let foreign = "/etc/sudoers.d/jitd-g0000000000bb";
    std::fs::write(foreign, "# someone else's file\n").unwrap();
    std::fs::set_permissions(foreign, std::os::unix::fs::PermissionsExt::from_mode(0o440)).unwrap();
    sleep(Duration::from_secs(3));
    // Deleted behind jitd's back while it was down: must come back.
    std::fs::remove_file(grants_file("whoami")).unwrap();

    d.restart();
    let names = d.sudo_grants_on_system();
    assert!(
        !names.contains(&short_id),
        "expired grant removed: {names:?}"
    );
    assert!(names.contains(&long_id), "live grant restored: {names:?}");
    assert_eq!(
        uids_with_rules(),
        vec![uid_of("bob").unwrap()],
        "{:?}",
        sudo_rules()
    );
    assert!(!Path::new(orphan).exists(), "orphan removed");
    assert!(Path::new(foreign).exists(), "foreign file untouched");
    assert!(
        sudo_as("bob", "/usr/bin/id -u").status.success(),
        "live grant works after restart"
    );
    assert!(!sudo_as("alice", "/usr/bin/id -u").status.success());
    let log = d.log();
    assert!(log.contains("event=grant.repaired"), "{log}");
    assert!(log.contains("event=reconcile.foreign_file"), "{log}");
    std::fs::remove_file(foreign).unwrap();
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn drop_and_revoke_end_a_grant_at_once_and_only_for_the_right_caller() {
    let sb = setup();
    let _d = Daemon::start(&sb, "revoke", POLICY);
    let o = jitctl(
        "alice",
        &[
            "--json",
            "elevate",
            "whoami",
            "--for",
            "30m",
            "--reason",
            "drop test one",
        ],
    );
    let id = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["grant"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let bob = jitctl("bob", &["revoke", &id]);
    assert_eq!(
        bob.status.code(),
        Some(7),
        "another user sees no such grant: {}",
        stderr(&bob)
    );
    assert!(
        sudo_as("alice", "/usr/bin/id -u").status.success(),
        "still live"
    );

    let drop = jitctl("alice", &["drop", &id]);
    assert!(drop.status.success(), "{}", stderr(&drop));
    assert!(drop_ins().is_empty(), "{:?}", drop_ins());
    assert!(!sudo_as("alice", "/usr/bin/id -u").status.success());

    let o = jitctl(
        "alice",
        &[
            "--json",
            "elevate",
            "whoami",
            "--for",
            "30m",
            "--reason",
            "revoke test two",
        ],
    );
    let id = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["grant"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let root = run(Command::new("jitctl").args(["revoke", &id, "--reason", "incident over"]));
    assert!(root.status.success(), "{}", stderr(&root));
    assert!(drop_ins().is_empty());
    let all = run(Command::new("jitctl").args(["--json", "list", "--all", "--ended"]));
    let list: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    let row = list["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id.as_str())
        .unwrap();
    assert_eq!(row["state"], "revoked");
    assert!(
        row["end_reason"]
            .as_str()
            .unwrap()
            .contains("incident over")
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn bad_requests_get_clear_errors_and_change_nothing() {
    let sb = setup();
    let _d = Daemon::start(&sb, "badinput", POLICY);
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "elevate",
                "nosuch",
                "--for",
                "5m",
                "--reason",
                "unknown privilege",
            ],
            7,
            "no privilege named nosuch",
        ),
        (
            &[
                "elevate",
                "whoami",
                "--for",
                "2h",
                "--reason",
                "above the maximum",
            ],
            3,
            "maximum",
        ),
        (
            &["elevate", "whoami", "--for", "5m", "--reason", "short"],
            3,
            "reason",
        ),
        // No --reason and no terminal to ask on: the rule's own refusal, saying what to add.
        (
            &["elevate", "whoami", "--for", "5m"],
            3,
            "requires a reason",
        ),
        (
            &[
                "elevate",
                "whoami",
                "--for",
                "0s",
                "--reason",
                "zero duration",
            ],
            2,
            "at least 1s",
        ),
        (
            &[
                "elevate",
                "whoami",
                "--for",
                "10y",
                "--reason",
                "bad unit here",
            ],
            2,
            "unexpected",
        ),
        (
            &[
                "elevate",
                "whoami",
                "--for",
                "-5m",
                "--reason",
                "negative here",
            ],
            2,
            "",
        ),
        (
            &[
                "elevate",
                "whoami",
                "--for",
                "5m",
                "--reason",
                "line one\nline two",
            ],
            6,
            "control character",
        ),
    ];
    for (args, code, needle) in cases {
        let o = jitctl("alice", args);
        assert_eq!(
            o.status.code(),
            Some(*code),
            "{args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    // A 1 MiB reason cannot be one argv string (Linux caps those at 128 KiB): straight to the bus.
    let huge = "x".repeat(1 << 20);
    let reply = zbus::block_on(async {
        let conn = jitd::client::connect(None).await.unwrap();
        let manager = jitd::client::ManagerProxy::new(&conn).await.unwrap();
        manager.request("whoami", 300, &huge, "").await
    });
    match reply {
        Err(jitd::client::Error::InvalidArgument(m)) => assert!(m.contains("at most 1024"), "{m}"),
        other => panic!("1 MiB reason must be refused as invalid: {other:?}"),
    }
    assert!(
        bus_name_owned(),
        "the daemon still serves after a huge call"
    );
    assert!(drop_ins().is_empty(), "nothing applied: {:?}", drop_ins());
    assert!(sudoers_valid());
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn only_root_may_call_the_gate_and_only_admins_may_list_everything() {
    let sb = setup();
    let _d = Daemon::start(&sb, "authz", POLICY);
    let uid = uid_of("alice").unwrap().to_string();
    let gate = as_user(
        "alice",
        &[
            "busctl",
            "--system",
            "call",
            "org.jitd.Jitd1",
            "/org/jitd/Jitd1",
            "org.jitd.Jitd1.Gate",
            "CheckAccess",
            "usss",
            &uid,
            "sudo",
            "",
            "",
        ],
    );
    assert!(
        !gate.status.success(),
        "bus policy refuses the Gate to users"
    );
    assert!(
        stderr(&gate).contains("Access denied") || stderr(&gate).contains("AccessDenied"),
        "{}",
        stderr(&gate)
    );

    let all = jitctl("alice", &["list", "--all"]);
    assert_eq!(all.status.code(), Some(4), "{}", stderr(&all));

    let root_gate = run(Command::new("busctl").args([
        "--system",
        "call",
        "org.jitd.Jitd1",
        "/org/jitd/Jitd1",
        "org.jitd.Jitd1.Gate",
        "CheckAccess",
        "usss",
        &uid,
        // sudo runs the whoami privilege's commands under its own service.
        "jitd-whoami",
        "",
        "",
    ]));
    assert!(root_gate.status.success(), "{}", stderr(&root_gate));
    assert!(
        stdout(&root_gate).contains("false"),
        "no grant yet: {}",
        stdout(&root_gate)
    );
    assert!(
        stdout(&root_gate).contains("jitctl elevate whoami"),
        "refusal says what to do: {}",
        stdout(&root_gate)
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_broken_policy_is_refused_on_reload_and_the_old_one_stays() {
    let sb = setup();
    let d = Daemon::start(&sb, "reload", POLICY);
    d.set_policy(&format!(
        "{POLICY}\n[privilege.broken]\nkind = \"sudo\"\ncommands = [\"relative/path\"]\n"
    ));
    let o = run(Command::new("jitctl").args(["reload"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("policy.toml:"),
        "file:line:col in the error: {}",
        stderr(&o)
    );
    let ok = jitctl(
        "alice",
        &[
            "elevate",
            "whoami",
            "--for",
            "5m",
            "--reason",
            "old policy in force",
        ],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_user_named_all_gets_a_rule_bound_to_the_uid_only() {
    let sb = setup();
    let uid = ensure_user_with("ALL", &["--badname"]);
    // Policy names must be portable, so the rule names ALL's group rather than the user.
    ensure_group("jitdodd");
    add_to_group("ALL", "jitdodd");
    let policy = POLICY.replace("users = [\"alice\", \"bob\"]", "groups = [\"jitdodd\"]");
    let _d = Daemon::start(&sb, "oddname", &policy);
    let o = jitctl(
        "ALL",
        &[
            "elevate",
            "whoami",
            "--for",
            "5m",
            "--reason",
            "hostile user name",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(grants_file("whoami")).unwrap();
    assert!(text.contains(&format!("\n#{uid} ALL=")), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("ALL")),
        "the name never appears as a user: {text}"
    );
    assert!(
        !sudo_as("alice", "/usr/bin/id -u").status.success(),
        "not everyone"
    );
    assert!(sudo_as("ALL", "/usr/bin/id -u").status.success());
}

/// `jitctl privileges` shows each user exactly what they may request, on their rule's terms, and
/// what they hold now; `explain` of a name that is not theirs says nothing of the policy's other
/// privileges (review finding 20).
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn privileges_lists_what_each_user_may_request_and_holds() {
    let sb = setup();
    let policy = format!(
        "{POLICY}\n[privilege.bob-only]\nkind = \"sudo\"\ncommands = [\"/usr/bin/id -g\"]\n\n\
         [[rule]]\nname = \"bob alone\"\nusers = [\"bob\"]\nprivileges = [\"bob-only\"]\n\
         max_duration = \"30m\"\n"
    );
    let _d = Daemon::start(&sb, "privileges", &policy);
    let list = |user: &str| -> serde_json::Value {
        let o = jitctl(user, &["--json", "privileges"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["privileges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let alice = list("alice");
    assert_eq!(names(&alice), ["e2e-group", "whoami"], "by name: {alice:#}");
    let whoami = &alice["privileges"][1];
    assert_eq!(whoami["kind"], "sudo");
    assert_eq!(whoami["grants"], "as root: /usr/bin/id -u");
    assert_eq!(whoami["rule"], "e2e users");
    assert_eq!(
        (whoami["default_secs"].as_u64(), whoami["max_secs"].as_u64()),
        (Some(600), Some(3600))
    );
    assert_eq!(whoami["reason_min_chars"], 8);
    assert_eq!(whoami["held_grant"], "");
    assert!(names(&list("bob")).contains(&"bob-only".to_string()));

    let o = jitctl(
        "alice",
        &[
            "elevate",
            "whoami",
            "--for",
            "5m",
            "--reason",
            "listing test",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let held = list("alice")["privileges"][1]["held_grant"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(held.starts_with('g'), "the live grant is shown: {held:?}");
    let text = stdout(&jitctl("alice", &["privileges"]));
    assert!(
        text.contains("whoami (sudo)") && text.contains(&format!("held: {held}")),
        "{text}"
    );

    let o = jitctl("alice", &["explain", "no-such-thing"]);
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !said.contains("bob-only") && !said.contains("whoami"),
        "explain lists none of the policy's privileges: {said}"
    );
}
