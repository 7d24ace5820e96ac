//! A whole team's grants ending in the same second (a shift change): 250 group memberships
//! across 50 users and five groups, and 50 sudo grants of one privilege, all due at once
//! (`bench/run` measures 500 memberships).
//! jitd takes them off together — one edit of /etc/group and /etc/gshadow under shadow-utils'
//! locks, one write of the privilege's sudoers file — and audits each grant's end.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::process::Command;
use std::time::{Duration, Instant};

use jitd_tests::*;

const GROUPS: [&str; 5] = ["jme_a", "jme_b", "jme_c", "jme_d", "jme_e"];
const USERS: u32 = 50;
/// Far from the uids `useradd` and the other suites hand out.
const FIRST_UID: u32 = 48000;

fn user(i: u32) -> String {
    format!("jme{i:03}")
}

/// The accounts, written straight into the sandbox's /etc/passwd and /etc/shadow (useradd
/// takes tens of milliseconds each), all in the group the rule names.
fn ensure_accounts() {
    if uid_of(&user(0)).is_some() {
        return;
    }
    let accounts: Vec<(String, u32)> = (0..USERS).map(|i| (user(i), FIRST_UID + i)).collect();
    add_accounts(&accounts, "/bin/sh");
    for g in GROUPS.iter().chain(&["jme_team"]) {
        ensure_group(g);
    }
    let all: Vec<String> = (0..USERS).map(user).collect();
    let o = run(Command::new("gpasswd").args(["-M", &all.join(","), "jme_team"]));
    assert!(o.status.success(), "{}", stderr(&o));
}

fn policy() -> String {
    let mut p =
        String::from("[privilege.shift-sudo]\nkind = \"sudo\"\ncommands = [\"/usr/bin/id -u\"]\n");
    for g in GROUPS {
        p.push_str(&format!(
            "[privilege.{}]\nkind = \"group\"\ngroup = \"{g}\"\n",
            g.replace('_', "-")
        ));
    }
    let names: Vec<String> = GROUPS
        .iter()
        .map(|g| format!("\"{}\"", g.replace('_', "-")))
        .chain(["\"shift-sudo\"".to_string()])
        .collect();
    p.push_str(&format!(
        "[[rule]]\nname = \"shift\"\ngroups = [\"jme_team\"]\nprivileges = [{}]\n\
         max_duration = \"8h\"\nreason_required = false\nmax_active = 6\n",
        names.join(", ")
    ));
    p
}

fn members_left() -> usize {
    let group = std::fs::read_to_string("/etc/group").unwrap();
    let gshadow = std::fs::read_to_string("/etc/gshadow").unwrap();
    group
        .lines()
        .chain(gshadow.lines())
        .filter(|l| GROUPS.iter().any(|g| l.starts_with(&format!("{g}:"))))
        .map(|l| {
            l.rsplit(':')
                .next()
                .unwrap()
                .split(',')
                .filter(|m| !m.is_empty())
                .count()
        })
        .sum()
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_shifts_grants_ending_in_the_same_second_are_all_taken_off_together() {
    let sb = sandbox();
    ensure_accounts();
    let d = Daemon::start(&sb, "mass-expiry", &policy());
    let start = Instant::now();
    for i in 0..USERS {
        let script: String = GROUPS
            .iter()
            .map(|g| g.replace('_', "-"))
            .chain(["shift-sudo".to_string()])
            .map(|p| format!("jitctl elevate {p} --for 8h >/dev/null || echo FAIL {p}\n"))
            .collect();
        let o = run(Command::new("su").args([&user(i), "-s", "/bin/sh", "-c", &script]));
        assert!(
            o.status.success() && !stdout(&o).contains("FAIL"),
            "{}: {}{}",
            user(i),
            stdout(&o),
            stderr(&o)
        );
    }
    eprintln!("{} grants applied in {:?}", 6 * USERS, start.elapsed());
    assert_eq!(members_left(), 2 * 5 * USERS as usize, "group and gshadow");
    assert_eq!(uids_with_rules().len(), USERS as usize);
    assert!(sudo_as(&user(7), "/usr/bin/id -u").status.success());

    // Nine hours on: every grant is due in the same tick.
    let group_before = std::fs::read_to_string("/etc/group").unwrap();
    d.set_wall_offset_ms(9 * 3_600_000);
    let due = Instant::now();
    wait_for(
        Duration::from_secs(60),
        "every grant to be taken off",
        || members_left() == 0 && drop_ins().is_empty(),
    );
    eprintln!(
        "{} memberships and {USERS} sudo rules, due together, gone in {:?}",
        5 * USERS,
        due.elapsed()
    );
    wait_for(Duration::from_secs(10), "every end audited", || {
        d.log().matches("event=grant.expired").count() == 6 * USERS as usize
    });
    assert!(!sudo_as(&user(7), "/usr/bin/id -u").status.success());
    assert!(sudoers_valid());
    let o = run(Command::new("grpck").arg("-r"));
    assert!(o.status.success(), "grpck: {}{}", stdout(&o), stderr(&o));
    // One edit for the whole batch, not one gpasswd per membership: shadow-utils' backup holds
    // the file as it was before the batch.
    assert_eq!(
        std::fs::read_to_string("/etc/group-").unwrap(),
        group_before,
        "one edit took every membership out"
    );
}
