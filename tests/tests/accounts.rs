//! Grants stay with the person who asked. A grant is bound to the account (uid and name) that
//! existed when it was granted: when that account is deleted (`userdel`) or renamed
//! (`usermod -l`), the grant ends at the next integrity check and says why, and an account that
//! later gets the uid or the name never inherits it — sudo, group and gate kinds alike.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::process::Command;
use std::time::Duration;

use jitd_tests::*;

/// The accounts of this suite get uids of their own, far from the ones `useradd` hands out:
/// `userdel` and `usermod -l` refuse while any process runs with the uid, and other sandboxes
/// on the host (their own /etc, the same process table) run processes under the usual uids.
fn user(name: &str, uid: u32) -> u32 {
    ensure_user_with(name, &["-u", &uid.to_string()])
}

fn tool(args: &[&str]) {
    let o = run(Command::new(args[0]).args(&args[1..]));
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

/// A new account with exactly this uid (the old owner of the uid must be gone).
fn useradd_with_uid(name: &str, uid: u32) {
    tool(&[
        "useradd",
        "-M",
        "-l",
        "-s",
        "/bin/sh",
        "-u",
        &uid.to_string(),
        name,
    ]);
}

fn elevate(user: &str, privilege: &str, duration: &str) -> String {
    let o = as_user(
        user,
        &[
            "jitctl",
            "--json",
            "elevate",
            privilege,
            "--for",
            duration,
            "--reason",
            "account change test",
        ],
    );
    assert!(o.status.success(), "elevate: {}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["grant"]["id"].as_str().unwrap().to_string()
}

/// The audit line saying grant `id` ended because its account changed.
fn account_change_recorded(d: &Daemon, id: &str) -> bool {
    d.log()
        .lines()
        .any(|l| l.contains("event=grant.account_changed") && l.contains(id))
}

fn gshadow_members(group: &str) -> String {
    std::fs::read_to_string("/etc/gshadow")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{group}:")))
        .unwrap_or_default()
        .to_string()
}

/// alice's sudo grant is `#uid` in sudoers. alice is deleted and the next account created gets
/// her uid: it must not run alice's commands. The grant ends at the next integrity check,
/// revoked with the reason in the audit trail, and its drop-in is gone.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_deleted_users_sudo_grant_does_not_pass_to_the_next_owner_of_the_uid() {
    let sb = sandbox();
    let uid = user("jitdleaver", 42101);
    let d = Daemon::start(
        &sb,
        "account-uid-reuse",
        r#"
[privilege.whoami]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "leaver"
users = ["jitdleaver"]
privileges = ["whoami"]
max_duration = "1d"
"#,
    );
    let id = elevate("jitdleaver", "whoami", "1h");
    assert!(sudo_as("jitdleaver", "/usr/bin/id -u").status.success());

    tool(&["userdel", "jitdleaver"]);
    useradd_with_uid("jitdheir", uid);
    wait_for(
        Duration::from_secs(5),
        "the integrity check to end the grant of the deleted account",
        || account_change_recorded(&d, &id),
    );
    assert!(
        !sudo_as("jitdheir", "/usr/bin/id -u").status.success(),
        "the new owner of uid {uid} must not inherit the grant"
    );
    assert!(drop_ins().is_empty(), "drop-in left: {:?}", drop_ins());
    assert_eq!(d.state_of(&id), "revoked");
    let log = d.log();
    let ended = log
        .lines()
        .find(|l| l.contains("event=grant.revoked") && l.contains(&id))
        .unwrap_or_else(|| panic!("no end record:\n{log}"));
    assert!(ended.contains("account"), "the end says why: {ended}");
    assert!(sudoers_valid());
}

/// `usermod -l` renames the membership entries too. The grant ends at the next integrity check,
/// and the membership goes although it is now listed under the new name; with the integrity
/// check far away, the grant's own deadline removes it under the new name as well.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_renamed_users_group_grant_ends_and_the_membership_goes_under_the_new_name() {
    let sb = sandbox();
    ensure_group("jitdrename");
    user("jitdrnold", 42102);
    user("jitdrnold2", 42103);
    let mut d = Daemon::start(
        &sb,
        "account-rename",
        r#"
[privilege.rename]
kind = "group"
group = "jitdrename"

[[rule]]
name = "renamed"
users = ["jitdrnold", "jitdrnold2"]
privileges = ["rename"]
max_duration = "1d"
reason_required = false
"#,
    );

    // Renamed during a long grant: the integrity check ends it.
    let id = elevate("jitdrnold", "rename", "1h");
    assert!(groups_of("jitdrnold").contains(&"jitdrename".to_string()));
    tool(&["usermod", "-l", "jitdrnnew", "jitdrnold"]);
    assert!(
        groups_of("jitdrnnew").contains(&"jitdrename".to_string()),
        "usermod -l carried the membership to the new name"
    );
    wait_for(
        Duration::from_secs(5),
        "the integrity check to end the renamed account's grant",
        || account_change_recorded(&d, &id),
    );
    wait_for(Duration::from_secs(5), "the grant to be revoked", || {
        d.state_of(&id) == "revoked"
    });
    assert!(
        !groups_of("jitdrnnew").contains(&"jitdrename".to_string()),
        "the membership is gone under the new name"
    );
    let line = gshadow_members("jitdrename");
    assert!(
        !line.contains("jitdrnnew") && !line.contains("jitdrnold"),
        "gshadow: {line}"
    );

    // Renamed during a short grant, with no integrity check before its deadline: expiry removes
    // the membership under the name it now has.
    d.set_config("integrity_check_secs", "3600");
    d.restart();
    let id = elevate("jitdrnold2", "rename", "3s");
    tool(&["usermod", "-l", "jitdrnnew2", "jitdrnold2"]);
    // gpasswd writes /etc/group, then /etc/gshadow: wait for both.
    wait_for(
        Duration::from_secs(8),
        "the membership to end at the deadline",
        || {
            !groups_of("jitdrnnew2").contains(&"jitdrename".to_string())
                && !gshadow_members("jitdrename").contains("jitdrnnew2")
        },
    );
    wait_for(
        Duration::from_secs(5),
        "the grant to be recorded ended",
        || d.state_of(&id) != "active",
    );
}

/// A gate grant lives only in jitd's index, keyed by uid. A new account with the deleted
/// user's uid, or with her name, is refused at once (before any integrity check); at the next
/// start the grant is revoked, with the reason in the audit trail.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_gate_grant_is_not_inherited_through_the_uid_or_the_name() {
    let sb = sandbox();
    let uid = user("jitdgater", 42104);
    let module = sb.bin.join("pam_jit.so");
    std::fs::write(
        "/etc/pam.d/jit-accounts",
        format!("account required {}\n", module.display()),
    )
    .unwrap();
    let mut d = Daemon::start(
        &sb,
        "account-gate",
        r#"
[privilege.gated]
kind = "gate"
pam_services = ["jit-accounts"]

[[rule]]
name = "gate"
users = ["jitdgater"]
privileges = ["gated"]
max_duration = "1d"
"#,
    );
    // No integrity check during the test: the gate itself must refuse.
    d.set_config("integrity_check_secs", "3600");
    d.restart();
    let pamtester = |user: &str| {
        run(Command::new("pamtester").args([
            "-I",
            &format!("ruser={user}"),
            "jit-accounts",
            user,
            "acct_mgmt",
        ]))
    };
    let id = elevate("jitdgater", "gated", "1h");
    let o = pamtester("jitdgater");
    assert!(o.status.success(), "the grant opens the gate: {o:?}");

    tool(&["userdel", "jitdgater"]);
    useradd_with_uid("jitdgateheir", uid);
    let o = pamtester("jitdgateheir");
    assert!(
        !o.status.success(),
        "the new owner of uid {uid} must not pass the gate: {}",
        stdout(&o)
    );
    user("jitdgater", 42105);
    let o = pamtester("jitdgater");
    assert!(
        !o.status.success(),
        "a new account with the old name must not pass the gate: {}",
        stdout(&o)
    );

    d.restart();
    wait_for(
        Duration::from_secs(5),
        "the start-up check to end the grant",
        || account_change_recorded(&d, &id),
    );
    assert_eq!(d.state_of(&id), "revoked");
    assert!(!pamtester("jitdgateheir").status.success());
    std::fs::remove_file("/etc/pam.d/jit-accounts").unwrap();
}
