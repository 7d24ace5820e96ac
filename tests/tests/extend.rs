//! Extending a live grant in place, against the real components: the extension is approved
//! like the grant by real users through jitctl, and real sudo lists the new NOTAFTER of the
//! same drop-in. Run by `tests/run` inside `tests/sandbox`; each test starts its own daemon.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use jitd_tests::approvals::*;
use jitd_tests::*;

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn an_extension_is_approved_like_the_grant_and_moves_notafter_in_place() {
    let sb = setup();
    // alice makes some thirty calls in under two seconds here, past the per-uid burst; the
    // limits have tests of their own.
    let d = Daemon::start_with(&sb, "extend", POLICY, "calls_burst = 100\n");
    let id = ask(&["--for", "1h"]);
    assert!(approve("bob", &id, &[]).status.success());
    assert!(approve("carol", &id, &[]).status.success());
    let g = live_grant("whoami");
    let grant = g["id"].as_str().unwrap().to_string();
    let before = notafter();

    // Within the rule's 2h: a request on the grant, approved by two others.
    let o = jitctl(
        "alice",
        &[
            "--json",
            "extend",
            &grant,
            "--for",
            "30m",
            "--reason",
            "the restore takes longer",
        ],
    );
    assert_eq!(o.status.code(), Some(12), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ext = v["request_id"].as_str().unwrap().to_string();
    let o = jitctl("bob", &["requests", "--pending"]);
    assert!(
        stdout(&o).contains(&format!("Extends:  grant {grant}")),
        "{}",
        stdout(&o)
    );
    assert!(approve("bob", &ext, &[]).status.success());
    let o = approve("carol", &ext, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("is extended"), "{}", stdout(&o));
    let after = live_grant("whoami");
    assert_eq!(after["id"], grant.as_str(), "the same grant");
    assert_eq!(
        after["expires_ms"].as_i64().unwrap() - g["expires_ms"].as_i64().unwrap(),
        30 * MIN
    );
    assert_eq!(drop_ins().len(), 1, "no second grant: {:?}", drop_ins());
    assert!(sudoers_valid());
    let moved = notafter();
    assert_ne!(moved, before, "sudo sees the new NOTAFTER");
    let want = after["expires_ms"].as_i64().unwrap() / 1000;
    assert!(
        moved.iter().any(|s| stamp_secs(s) == Some(want)),
        "NOTAFTER {moved:?} is the new deadline {want}"
    );
    assert!(alice_may_sudo(), "no gap");
    assert!(d.log().contains("event=grant.extended"), "{}", d.log());

    // Beyond the maximum: 1h30 held, 1h more would be 2h30 of a 2h rule.
    let o = jitctl(
        "alice",
        &[
            "extend",
            &grant,
            "--for",
            "1h",
            "--reason",
            "the restore takes longer",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("above the maximum 2h of rule \"dba\"; ask for 30m or less"),
        "{}",
        stderr(&o)
    );
    // An extension waiting when its grant ends is withdrawn at once.
    let o = jitctl(
        "alice",
        &[
            "--json",
            "extend",
            &grant,
            "--for",
            "10m",
            "--reason",
            "a little more time",
        ],
    );
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let late = v["request_id"].as_str().unwrap().to_string();
    assert!(jitctl("alice", &["drop", &grant]).status.success());
    wait_for(
        std::time::Duration::from_secs(3),
        "the extension to be withdrawn",
        || request(&late)["state"] == "withdrawn",
    );
    assert!(
        request(&late)["note"]
            .as_str()
            .unwrap()
            .contains("there is nothing to extend")
    );
    // Someone else's grant reads like an unknown one.
    let o = jitctl(
        "bob",
        &[
            "extend",
            &grant,
            "--for",
            "10m",
            "--reason",
            "not mine to extend",
        ],
    );
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));

    // Under an automatic rule the extension is made at once.
    let o = jitctl(
        "alice",
        &[
            "elevate",
            "selfserve",
            "--for",
            "10m",
            "--reason",
            "check the groups",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = live_grant("selfserve");
    let sid = s["id"].as_str().unwrap().to_string();
    let o = jitctl(
        "alice",
        &["extend", &sid, "--for", "20m", "--reason", "still checking"],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("extended by 20m"), "{}", stdout(&o));
    assert_eq!(
        live_grant("selfserve")["expires_ms"].as_i64().unwrap() - s["expires_ms"].as_i64().unwrap(),
        20 * MIN
    );
    // An ended grant cannot be extended.
    assert!(jitctl("alice", &["drop", &sid]).status.success());
    let o = jitctl(
        "alice",
        &["extend", &sid, "--for", "5m", "--reason", "one more look"],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("has ended (dropped)"), "{}", stderr(&o));
}
