//! Upgrade: today's jitd started over a state database the 0.1.0 daemon wrote
//! (`tests/fixtures/jitd-0.1.0.db`, made by `tests/fixtures/make-0.1.0-db` with the policy
//! `tests/fixtures/jitd-0.1.0.policy.toml`). What a user relies on across the upgrade: every
//! grant is still there in its state, the live ones work again on a fresh /etc, the audit chain
//! goes on from where it stopped, and the live grants can still be ended.
//! Run by `tests/run` inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::Path;
use std::process::Command;

use jitd_tests::*;

const FIXTURE_DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/jitd-0.1.0.db");
const POLICY: &str = include_str!("../fixtures/jitd-0.1.0.policy.toml");

/// fixalice's fix-id (sudo, `/usr/bin/id -u` as root), live until 2027-11-29.
const LIVE_SUDO: &str = "g3520c54f1b18";
/// fixbob's fix-group (member of fixgroup), live until 2027-11-29.
const LIVE_GROUP: &str = "g47f0c7340843";

/// Every grant of the fixture: id, user, privilege, state after the upgrade.
const GRANTS: &[(&str, &str, &str, &str)] = &[
    ("gbebadefa1dde", "fixalice", "fix-id", "expired"),
    ("g262a22b5c7a2", "fixalice", "fix-id", "dropped"),
    (LIVE_SUDO, "fixalice", "fix-id", "active"),
    (LIVE_GROUP, "fixbob", "fix-group", "active"),
    // Asked for in place at the sudo prompt (kind gate: nothing on the system to restore).
    ("gf5dbd858b74f", "fixbob", "fix-gate", "active"),
];

/// Audit rows the 0.1.0 daemon wrote into the fixture.
const FIXTURE_AUDIT_ROWS: usize = 18;

fn sqlite(db: &Path, sql: &str) -> String {
    let o = run(Command::new("sqlite3").arg(db).arg(sql));
    assert!(o.status.success(), "sqlite3 {sql}: {}", stderr(&o));
    stdout(&o)
}

/// `seq prev_hash hash` of every audit row, in order.
fn chain(db: &Path) -> Vec<Vec<String>> {
    sqlite(
        db,
        "SELECT seq || ' ' || prev_hash || ' ' || hash FROM audit ORDER BY seq",
    )
    .lines()
    .map(|l| l.split(' ').map(str::to_string).collect())
    .collect()
}

fn list_all() -> Vec<serde_json::Value> {
    let o = run(Command::new("jitctl").args(["--json", "list", "--all", "--ended"]));
    assert!(o.status.success(), "jitctl list: {}", stderr(&o));
    serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["grants"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_database_written_by_0_1_0_is_served_with_its_grants_working() {
    let sb = sandbox();
    // The same accounts as when the fixture was made: grants are bound to uids.
    for (user, uid) in [("fixalice", 6101), ("fixbob", 6102)] {
        let got = ensure_user_with(user, &["-u", &uid.to_string()]);
        assert_eq!(got, uid, "{user} must have uid {uid}, as in the fixture");
    }
    ensure_group("fixgroup");

    // What an earlier jitd left on the system: the live grant's own drop-in (one per grant).
    let legacy = format!("/etc/sudoers.d/jitd-{LIVE_SUDO}");
    std::fs::write(
        &legacy,
        format!(
            "# jitd grant {LIVE_SUDO}: managed by jitd, do not edit\n#6101 ALL=(#0) NOPASSWD: /usr/bin/id -u\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&legacy, std::os::unix::fs::PermissionsExt::from_mode(0o440)).unwrap();
    let d = Daemon::start_over(&sb, "upgrade", POLICY, Path::new(FIXTURE_DB));
    let log = d.log();
    assert!(log.contains("event=daemon.reconciled live=3"), "{log}");

    // Every grant of the fixture, in its state.
    let list = list_all();
    assert_eq!(list.len(), GRANTS.len(), "{list:#?}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (id, user, privilege, state) in GRANTS {
        let g = list
            .iter()
            .find(|g| g["id"] == *id)
            .unwrap_or_else(|| panic!("grant {id} of the fixture not listed: {list:#?}"));
        if *state == "active" {
            assert!(
                g["expires_ms"].as_i64().unwrap() > now_ms,
                "the fixture's long grants have run out: make it again with \
                 tests/fixtures/make-0.1.0-db"
            );
        }
        assert_eq!(
            (
                g["user"].as_str(),
                g["privilege"].as_str(),
                g["state"].as_str()
            ),
            (Some(*user), Some(*privilege), Some(*state)),
            "{g:#}"
        );
    }

    // Reconcile put the live grants back on this fresh /etc.
    assert!(
        d.sudo_grants_on_system().contains(&LIVE_SUDO.to_string()),
        "{:?}",
        d.sudo_grants_on_system()
    );
    assert!(
        !Path::new(&legacy).exists(),
        "the grant moved into its privilege's file: {:?}",
        drop_ins()
    );
    assert_eq!(uids_with_rules(), vec![6101], "{:?}", sudo_rules());
    assert!(sudoers_valid());
    let o = sudo_as("fixalice", "/usr/bin/id -u");
    assert!(
        o.status.success(),
        "the live sudo grant works: {}",
        stderr(&o)
    );
    assert_eq!(stdout(&o).trim(), "0");
    assert!(
        !sudo_as("fixbob", "/usr/bin/id -u").status.success(),
        "bound to fixalice's uid"
    );
    let group = std::fs::read_to_string("/etc/group").unwrap();
    let line = group.lines().find(|l| l.starts_with("fixgroup:")).unwrap();
    assert!(
        line.rsplit(':')
            .next()
            .unwrap()
            .split(',')
            .any(|m| m == "fixbob"),
        "the group grant's membership is back: {line}"
    );

    // The audit chain goes on from the fixture's last row: old rows kept, every link intact.
    // (immutable: reading the checked-in file must not write a -wal or -shm beside it)
    let fixture = chain(Path::new(&format!("file:{FIXTURE_DB}?immutable=1")));
    assert_eq!(fixture.len(), FIXTURE_AUDIT_ROWS);
    let upgraded = chain(&d.state_db());
    assert!(upgraded.len() > fixture.len(), "start-up is audited");
    assert_eq!(
        &upgraded[..fixture.len()],
        &fixture[..],
        "0.1.0's rows unchanged"
    );
    for pair in upgraded.windows(2) {
        assert_eq!(
            pair[1][1], pair[0][2],
            "row {} links to row {}",
            pair[1][0], pair[0][0]
        );
    }

    // Both verifiers walk the old records (sealed by 0.1.0's formula) into the new ones.
    assert_eq!(
        sqlite(
            &d.state_db(),
            "SELECT group_concat(DISTINCT format) FROM audit ORDER BY seq"
        )
        .trim(),
        "1,2",
        "0.1.0's records keep their seal, new ones get the current one"
    );
    let o = run(Command::new("jitctl").args(["audit", "verify"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("intact"), "{}", stdout(&o));

    // The live grant can still be ended by its owner, and sudo is refused after.
    let o = as_user("fixalice", &["jitctl", "drop", LIVE_SUDO]);
    assert!(o.status.success(), "drop: {}{}", stdout(&o), stderr(&o));
    assert_eq!(d.state_of(LIVE_SUDO), "dropped");
    assert!(!d.sudo_grants_on_system().contains(&LIVE_SUDO.to_string()));
    assert!(
        !sudo_as("fixalice", "/usr/bin/id -u").status.success(),
        "sudo refused after the drop"
    );

    // The store carries a schema version once started (0.1.0 wrote none: user_version 0).
    // Last, so that everything above is checked even where this one fails.
    let version: i64 = sqlite(&d.state_db(), "PRAGMA user_version")
        .trim()
        .parse()
        .unwrap();
    assert!(
        version >= 2,
        "schema version after start: {version}, want >= 2"
    );
}
