//! Review reminders end to end: a break-glass grant's reviewers hear that its review is due
//! before the deadline (`review.due`, with the exact `jitctl review` line), and the security
//! route that it is overdue after it (`review.overdue`); a reviewed grant gets no reminder.
//! The clock is jitd's injected one: no waiting for hours.

#![allow(clippy::disallowed_methods)] // an end-to-end suite runs real processes and waits

use std::time::Duration;

use jitd_tests::approvals::{self, MIN};
use jitd_tests::notify::*;
use jitd_tests::*;

/// The break-glass rule with a review due in 10 hours and no wait between break-glass grants.
fn glass() -> String {
    format!("{GLASS}review_within = \"10h\"\nbreakglass_every = \"1s\"\n")
}

fn kinds(out: &std::path::Path, kind: &str) -> Vec<serde_json::Value> {
    lines(out)
        .into_iter()
        .filter(|n| n["kind"] == kind)
        .collect()
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn reviewers_are_reminded_before_a_break_glass_review_is_due_and_told_when_overdue() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-review");
    let out = dir.join("notes");
    recording_sink(
        &dir,
        &out,
        r#"["review.due", "review.overdue", "breakglass.used"]"#,
    );
    let d = Daemon::start(&sb, "notify-review-d", &glass());
    let mut n = start_notifier(&sb, &dir);
    let glass = |reason: &str| {
        let o = approvals::jitctl("alice", &["--json", "elevate", "glass", "--reason", reason]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        v["grant"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no grant id in {v}"))
            .to_string()
    };
    let first = glass("primary database is down");
    let o = approvals::jitctl("alice", &["drop", &first]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    std::thread::sleep(Duration::from_millis(1100));
    let second = glass("replica is down as well");
    wait_for(Duration::from_secs(10), "the break-glass notes", || {
        kinds(&out, "breakglass.used").len() >= 2
    });
    // The second is reviewed at once; the first is not.
    let o = approvals::jitctl(
        "bob",
        &[
            "review",
            &second,
            "--outcome",
            "drill",
            "--comment",
            "planned drill",
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    std::thread::sleep(Duration::from_millis(500));
    assert!(kinds(&out, "review.due").is_empty(), "reminded at once");

    // 10h to review: reminded max(1h, 10%) = 1h before the deadline, once.
    d.set_wall_offset_ms(9 * 60 * MIN + MIN);
    wait_for(Duration::from_secs(10), "the review reminder", || {
        !kinds(&out, "review.due").is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    let due = kinds(&out, "review.due");
    assert_eq!(
        due.len(),
        1,
        "one reminder, for the unreviewed grant only: {due:?}"
    );
    let r = &due[0];
    assert_eq!(r["grant"], first.as_str());
    assert_eq!(r["to"]["groups"][0], "appr", "{r}");
    assert_eq!(r["user"], "alice");
    assert_eq!(r["reason"], "primary database is down");
    assert!(
        r["command"]
            .as_str()
            .unwrap()
            .starts_with(&format!("jitctl review {first} --outcome")),
        "{r}"
    );
    assert!(r["why"].as_str().unwrap().contains("review by"), "{r}");

    // Past the deadline: overdue, on the security route.
    d.set_wall_offset_ms(10 * 60 * MIN + MIN);
    wait_for(Duration::from_secs(10), "the overdue notice", || {
        !kinds(&out, "review.overdue").is_empty()
    });
    let over = kinds(&out, "review.overdue");
    assert_eq!(over.len(), 1, "{over:?}");
    assert_eq!(over[0]["grant"], first.as_str());
    assert_eq!(over[0]["routes"][0], "security");
    assert_eq!(kinds(&out, "review.due").len(), 1, "reminded once");
    let _ = n.kill();
    let _ = n.wait();
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn with_access_review_reminder_the_admins_hear_at_the_next_quarter_that_its_review_is_due() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-access");
    let out = dir.join("notes");
    recording_sink(&dir, &out, r#"["review.due"]"#);
    // The next quarter's start and this quarter's label, from the machine's date.
    let o = run(std::process::Command::new("bash").arg("-c").arg(
        "m=$(date -u +%m); y=$(date -u +%Y); q=$(( (10#$m - 1) / 3 )); \
         echo \"$(date -u -d \"$y-$(printf %02d $((q * 3 + 1)))-01 +3 months\" +%s) ${y}Q$((q + 1))\"",
    ));
    let text = stdout(&o);
    let (next, label) = text.trim().split_once(' ').unwrap();
    let next_ms: i64 = next.parse::<i64>().unwrap() * 1000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let d = Daemon::start_with(
        &sb,
        "notify-access-d",
        &glass(),
        "access_review_reminder = true\n",
    );
    let mut n = start_notifier(&sb, &dir);
    let ours = || -> Vec<serde_json::Value> {
        kinds(&out, "review.due")
            .into_iter()
            .filter(|r| r["why"].as_str().unwrap_or("").contains(label))
            .collect()
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(ours().is_empty(), "reminded of {label} before it ended");
    d.set_wall_offset_ms(next_ms - now_ms + 60 * MIN);
    wait_for(
        Duration::from_secs(10),
        "the access review reminder",
        || !ours().is_empty(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = ours();
    assert_eq!(got.len(), 1, "once: {got:?}");
    assert_eq!(got[0]["to"]["groups"][0], "jitd-admins", "{}", got[0]);
    assert_eq!(
        got[0]["command"],
        format!("jitctl report --period {label} --format html > access-{label}.html")
    );
    let _ = n.kill();
    let _ = n.wait();
}
