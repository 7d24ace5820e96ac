//! The audit trail as an auditor relies on it: every step of the loop is a record in the
//! hash-chained table, sealed with the host and a sequence number; `jitctl audit verify`
//! (admins, through the daemon) and `jitd audit verify` (root, read-only, no daemon needed)
//! say it is intact, and name the first broken link when a record was edited, deleted or
//! moved. Run by `tests/run` inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::Path;
use std::process::{Command, Output};

use jitd_tests::*;

const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "auditors test"
users = ["alice"]
privileges = ["whoami"]
max_duration = "1h"
reason_required = false
"#;

fn jitctl(user: &str, args: &[&str]) -> Output {
    let mut full = vec!["jitctl"];
    full.extend_from_slice(args);
    as_user(user, &full)
}

/// alice asks for `whoami` and gives it back, `times` times.
fn elevate_and_drop(times: usize) {
    for _ in 0..times {
        let o = jitctl("alice", &["elevate", "whoami", "--for", "10m"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let list: serde_json::Value =
            serde_json::from_str(&stdout(&jitctl("alice", &["--json", "status"]))).unwrap();
        let id = list["grants"][0]["id"].as_str().unwrap().to_string();
        assert!(jitctl("alice", &["drop", &id]).status.success());
    }
}

fn jitd_verify(d: &Daemon) -> Output {
    run(Command::new(d.dir.join("../bin/jitd"))
        .arg("--config")
        .arg(&d.config)
        .args(["audit", "verify"]))
}

fn sql(db: &Path, statement: &str) -> String {
    let o = run(Command::new("sqlite3").arg(db).arg(statement));
    assert!(o.status.success(), "{statement}: {}", stderr(&o));
    stdout(&o)
}

/// The loop leaves a chain of typed records, each with the host and a gapless sequence, that
/// both verifiers call intact; only admins may ask the daemon.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_loop_leaves_an_intact_chain_that_both_verifiers_accept() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = Daemon::start(&sb, "audit-intact", POLICY);
    elevate_and_drop(3);
    let refused = jitctl("alice", &["elevate", "nothing-here"]);
    assert_eq!(refused.status.code(), Some(7), "{}", stderr(&refused));

    let o = run(Command::new("jitctl").args(["audit", "verify"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("intact"), "{}", stdout(&o));
    let o = run(Command::new("jitctl").args(["--json", "audit", "verify"]));
    let check: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(check["intact"], true, "{check}");
    assert!(check["records"].as_u64().unwrap() >= 10, "{check}");

    let o = jitctl("alice", &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(4), "admins only: {}", stderr(&o));

    d.stop();
    let db = d.state_db();
    let kinds = sql(&db, "SELECT line FROM audit ORDER BY seq");
    for kind in [
        "event=daemon.reconciled",
        "event=request.allowed",
        "event=grant.applied",
        "event=grant.dropped",
        "event=request.denied",
    ] {
        assert!(kinds.contains(kind), "{kind} is in the chain:\n{kinds}");
    }
    assert_eq!(
        sql(
            &db,
            "SELECT count(*) FROM audit WHERE host != 'sandbox' OR format != 2"
        )
        .trim(),
        "0",
        "every record carries the host and the current seal"
    );
    assert_eq!(
        sql(
            &db,
            "SELECT max(seq) = count(*) AND min(seq) = 1 FROM audit"
        )
        .trim(),
        "1",
        "sequence numbers without gaps"
    );
    let o = jitd_verify(&d);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("intact"), "{}", stdout(&o));
    assert!(
        !Path::new(&format!("{}-journal", db.display())).exists(),
        "the read-only check wrote nothing"
    );
}

/// A record edited, deleted or moved is found, by its sequence number, by both verifiers.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn an_edited_deleted_or_reordered_record_is_named_by_its_sequence_number() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = Daemon::start(&sb, "audit-tamper", POLICY);
    elevate_and_drop(2);
    d.stop();
    let db = d.state_db();
    sql(&db, "PRAGMA wal_checkpoint(TRUNCATE)");
    let pristine = d.dir.join("pristine.db");
    std::fs::copy(&db, &pristine).unwrap();
    let cases = [
        (
            "edited",
            "UPDATE audit SET line = replace(line, 'user=alice', 'user=mallory') WHERE seq = 3",
            "broken at seq 3",
        ),
        (
            "deleted",
            "DELETE FROM audit WHERE seq = 4",
            "broken at seq 5",
        ),
        (
            "reordered",
            "UPDATE audit SET seq = -seq WHERE seq IN (3, 4); \
             UPDATE audit SET seq = 4 WHERE seq = -3; UPDATE audit SET seq = 3 WHERE seq = -4",
            "broken at seq 3",
        ),
    ];
    for (what, tamper, expected) in cases {
        std::fs::copy(&pristine, &db).unwrap();
        let o = jitd_verify(&d);
        assert!(o.status.success(), "pristine copy verifies: {}", stdout(&o));
        sql(&db, tamper);
        let o = jitd_verify(&d);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stdout(&o));
        assert!(stdout(&o).contains(expected), "{what}: {}", stdout(&o));
    }
    // The daemon's verifier sees the last tampering too, and says so with its own exit code.
    d.restart();
    let o = run(Command::new("jitctl").args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(9), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("broken at seq 3"), "{}", stdout(&o));
}

/// Deleting the newest records leaves a chain that still verifies on its own; the heads jitd
/// sent to syslog with every record (here its journal: the daemon's output, where syslog
/// lines go without a syslog socket) show the truncation, named by sequence number.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn deleting_the_newest_records_is_detected_against_syslog() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = Daemon::start(&sb, "audit-truncate", POLICY);
    elevate_and_drop(2);
    d.stop();
    let log = d.dir.join("jitd.log");
    let against = |d: &Daemon| {
        run(Command::new(d.dir.join("../bin/jitd"))
            .arg("--config")
            .arg(&d.config)
            .args(["audit", "verify", "--against-syslog"])
            .arg(&log))
    };
    let text = std::fs::read_to_string(&log).unwrap();
    let applied = text
        .lines()
        .find(|l| l.contains("event=grant.applied "))
        .unwrap_or_else(|| panic!("no grant.applied record:\n{text}"));
    let (_, tail) = applied
        .rsplit_once(" seq=")
        .unwrap_or_else(|| panic!("the syslog line carries the chain head: {applied}"));
    let (seq, head) = tail.split_once(" head=").unwrap();
    assert!(seq.parse::<u64>().is_ok(), "{applied}");
    assert!(
        head.len() == 16 && head.chars().all(|c| c.is_ascii_hexdigit()),
        "{applied}"
    );
    let o = against(&d);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("syslog"), "{}", stdout(&o));

    let db = d.state_db();
    let last: i64 = sql(&db, "SELECT max(seq) FROM audit")
        .trim()
        .parse()
        .unwrap();
    sql(&db, &format!("DELETE FROM audit WHERE seq > {}", last - 3));
    let o = jitd_verify(&d);
    assert!(
        o.status.success(),
        "the chain alone cannot tell: {}",
        stdout(&o)
    );
    let o = against(&d);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("truncated") && stdout(&o).contains(&format!("seq {last}")),
        "{}",
        stdout(&o)
    );
}
