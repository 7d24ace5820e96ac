//! `auto_approve` on a quorum rule against the real daemon: inside its window in a named time
//! zone (the host's zoneinfo) a request is granted at once and real sudo works; outside the
//! window, or past the daily cap, it waits for people and says why. The daemon's fake wall
//! clock puts "now" where each case needs it. Run by `tests/run` inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes, reads the real clock

use jitd_tests::approvals::*;
use jitd_tests::*;

/// Tokyo has no summer time: 09:00-10:00 there is 00:00-01:00 UTC every day of the year.
const WINDOW: &str = r#"
[privilege.whoami]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "window"
users = ["alice"]
privileges = ["whoami"]
max_duration = "1h"
default_duration = "10m"
reason_min_chars = 8
approval = "quorum"
approvers = ["%appr"]
auto_approve = { days = ["mon-sun"], hours = "09:00-10:00", time_zone = "Asia/Tokyo", per_user_per_day = 1 }
"#;

const DAY: i64 = 24 * 60 * MIN;

/// The offset that puts the daemon's clock at `minutes` past the next 00:00 UTC (always
/// ahead of the real clock, so sudo's NOTAFTER stays in the future).
fn offset_to(minutes: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now.div_euclid(DAY) * DAY + DAY + minutes * MIN - now
}

fn elevate() -> std::process::Output {
    jitctl(
        "alice",
        &["elevate", "whoami", "--reason", "routine restart window"],
    )
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn inside_the_window_and_under_the_cap_a_request_is_granted_at_once() {
    let sb = setup();
    let d = Daemon::start(&sb, "window", WINDOW);

    // 09:30 in Tokyo: at once.
    d.set_wall_offset_ms(offset_to(30));
    let o = elevate();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(alice_may_sudo());
    let o = jitctl("alice", &["requests"]);
    assert!(
        stdout(&o).contains("approved")
            && stdout(&o).contains(
                "auto-approve window (mon,tue,wed,thu,fri,sat,sun 09:00-10:00 Asia/Tokyo)"
            ),
        "{}",
        stdout(&o)
    );
    let grant = live_grant("whoami")["id"].as_str().unwrap().to_string();
    assert!(jitctl("alice", &["drop", &grant]).status.success());

    // 09:40, the same day: the cap of one is used up, so people decide.
    d.set_wall_offset_ms(offset_to(40));
    let o = elevate();
    assert_eq!(o.status.code(), Some(12), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("at most 1 request(s) a day at once, and you had 1 today"),
        "{}",
        stdout(&o)
    );
    assert!(!alice_may_sudo());
    let id = stdout(&o).split_whitespace().nth(1).unwrap().to_string();
    assert!(jitctl("alice", &["cancel", &id]).status.success());

    // 10:30: outside the window.
    d.set_wall_offset_ms(offset_to(90));
    let o = elevate();
    assert_eq!(o.status.code(), Some(12), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("outside the rule's auto-approve window"),
        "{}",
        stdout(&o)
    );
    let id = stdout(&o).split_whitespace().nth(1).unwrap().to_string();
    assert!(jitctl("alice", &["cancel", &id]).status.success());

    // 09:30 the next day: a new day, a new allowance.
    d.set_wall_offset_ms(offset_to(24 * 60 + 30));
    let o = elevate();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        d.log().contains("state=approved by=auto_approve"),
        "{}",
        d.log()
    );

    // A zone the host does not have is an error where it is written.
    let path = sb.dir.join("mars.toml");
    std::fs::write(&path, WINDOW.replace("Asia/Tokyo", "Mars/Olympus")).unwrap();
    let o = run(std::process::Command::new("jitctl")
        .args(["policy", "check"])
        .arg(&path));
    assert!(!o.status.success());
    let out = stdout(&o) + &stderr(&o);
    assert!(
        out.contains("mars.toml:16:73:")
            && out.contains("time zone \"Mars/Olympus\" is not in this host's /usr/share/zoneinfo"),
        "{out}"
    );
}
