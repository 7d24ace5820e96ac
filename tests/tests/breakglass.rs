//! Break-glass against the real components: granted at once with a reason, real sudo works,
//! once per day per user (the daemon's fake clock moves the day), reviewed afterwards by an
//! approver from their own shell, overdue reviews recorded; and the policy checks of such a
//! rule through `jitctl policy check`. Run by `tests/run` inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::time::Duration;

use jitd_tests::approvals::*;
use jitd_tests::*;

const GLASS: &str = r#"
same_person = [["alice", "aliceadm"]]

[privilege.glass]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "glass"
users = ["alice"]
privileges = ["glass"]
max_duration = "1h"
default_duration = "30m"
reason_min_chars = 8
breakglass = true
approvers = ["%appr"]
"#;

fn elevate() -> std::process::Output {
    jitctl(
        "alice",
        &["elevate", "glass", "--reason", "primary database is down"],
    )
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn break_glass_is_granted_at_once_once_a_day_and_reviewed_by_an_approver() {
    let sb = setup();
    let d = Daemon::start(&sb, "glass", GLASS);
    let o = jitctl("alice", &["elevate", "glass", "--reason", ""]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "a reason is mandatory: {}",
        stderr(&o)
    );
    let o = elevate();
    assert!(o.status.success(), "at once: {}{}", stdout(&o), stderr(&o));
    assert!(alice_may_sudo());
    let log = d.log();
    assert!(log.contains("event=breakglass.used"), "{log}");
    assert!(log.contains("reason=\"primary database is down\""), "{log}");
    let grant = live_grant("glass")["id"].as_str().unwrap().to_string();
    // Every command under break-glass is an alert (the command ledger reads sudo's own log).
    wait_for(
        Duration::from_secs(5),
        "the break-glass command alert",
        || {
            d.log().lines().any(|l| {
                l.contains("event=alert.raised")
                    && l.contains("rule=breakglass")
                    && l.contains(&grant)
            })
        },
    );

    // Approvers are told a review waits.
    let o = jitctl("bob", &["status"]);
    assert!(
        stdout(&o).contains("1 break-glass grant(s) wait for your review"),
        "{}",
        stdout(&o)
    );
    let o = jitctl("bob", &["requests", "--pending"]);
    assert!(
        stdout(&o).contains(&format!(
            "Break-glass grant {grant} on sandbox: alice used glass"
        )),
        "{}",
        stdout(&o)
    );

    // Once a day: dropping the grant does not reset the limit.
    assert!(jitctl("alice", &["drop", &grant]).status.success());
    let o = elevate();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("at most once per 1d per user"),
        "{}",
        stderr(&o)
    );

    // The review: never by the holder, always with a comment, once.
    let refused = |user: &str, args: &[&str], code: i32, says: &str| {
        let o = jitctl(user, args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{user} {args:?}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(says),
            "{user}: {says:?} in {}",
            stderr(&o)
        );
    };
    let review = [
        "review",
        grant.as_str(),
        "--outcome",
        "drill",
        "--comment",
        "quarterly drill",
    ];
    refused("alice", &review, 4, "your own break-glass grant");
    refused("aliceadm", &review, 4, "your own break-glass grant");
    refused("eve", &review, 4, "not an approver of rule \"glass\"");
    refused(
        "bob",
        &["review", &grant, "--outcome", "drill", "--comment", " "],
        6,
        "needs a comment",
    );
    let o = jitctl(
        "bob",
        &["review", &grant, "--outcome", "oops", "--comment", "x"],
    );
    assert_eq!(o.status.code(), Some(2), "a usage error");
    let o = jitctl("bob", &review);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("drill"), "{}", stdout(&o));
    refused("carol", &review, 6, "reviewed already by bob");
    assert!(d.log().contains("event=breakglass.reviewed"), "{}", d.log());
    assert!(
        d.log().contains("reviewer=bob outcome=drill"),
        "{}",
        d.log()
    );
    let o = jitctl("bob", &["requests", "--pending"]);
    assert!(
        !stdout(&o).contains("Break-glass"),
        "nothing left to review: {}",
        stdout(&o)
    );

    // A day later it may be used again; nobody reviews it, and that is recorded once.
    d.set_wall_offset_ms(25 * 60 * MIN);
    let o = elevate();
    assert!(o.status.success(), "a day later: {}", stderr(&o));
    d.set_wall_offset_ms((25 + 73) * 60 * MIN);
    wait_for(Duration::from_secs(5), "the overdue review record", || {
        d.log().contains("event=breakglass.review_overdue")
    });
    assert_eq!(
        d.log().matches("event=breakglass.review_overdue").count(),
        1
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn approval_terms_that_cannot_work_are_errors_at_their_position() {
    let sb = setup();
    let check = |name: &str, text: &str| {
        let path = sb.dir.join(name);
        std::fs::write(&path, text).unwrap();
        let o = run(std::process::Command::new("jitctl")
            .args(["policy", "check"])
            .arg(&path));
        assert!(!o.status.success(), "{name} refused");
        format!("{}{}", stdout(&o), stderr(&o))
    };
    let out = check(
        "long-glass.toml",
        &GLASS.replace("max_duration = \"1h\"", "max_duration = \"2h\""),
    );
    assert!(
        out.contains(
            "long-glass.toml:13:16: error: a break-glass rule's max_duration is at most 1h"
        ),
        "{out}"
    );
    let out = check(
        "glass-quorum.toml",
        &GLASS.replace(
            "breakglass = true",
            "breakglass = true\napproval = \"quorum\"",
        ),
    );
    assert!(
        out.contains("a break-glass rule is granted at once: it cannot also ask for a quorum"),
        "{out}"
    );
    let out = check(
        "glass-nobody.toml",
        &GLASS.replace("approvers = [\"%appr\"]", ""),
    );
    assert!(
        out.contains("breakglass = true (they review) needs approvers"),
        "{out}"
    );
    let out = check(
        "too-many.toml",
        &POLICY.replace("approvals = 2", "approvals = 5"),
    );
    assert!(
        out.contains(
            "approvals = 5 but only 4 account(s) can approve (aliceadm, bob, carol, dave)"
        ),
        "{out}"
    );
    let out = check(
        "mode.toml",
        &POLICY.replace("approval = \"quorum\"", "approval = \"two-people\""),
    );
    assert!(
        out.contains("approval must be \"auto\", \"quorum\" or \"hook\", not \"two-people\""),
        "{out}"
    );
}
