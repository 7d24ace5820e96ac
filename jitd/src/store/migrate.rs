//! The schema version (`PRAGMA user_version`) and the ordered migrations that reach it.
//!
//! Each migration runs in its own IMMEDIATE transaction together with the bump of
//! `user_version`, so a crash leaves the database at one version or the next, never between.
//! The version is read again under the write lock because the daemon and the sweep may open an
//! old database at the same time: the second one then finds the work done. A released
//! migration is never edited; a change to the schema is a new migration at the end.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::StoreError;

/// One step: what brings a database at `version - 1` to `version`.
pub(super) struct Migration {
    pub version: u32,
    /// SQL migrations are closures calling `execute_batch`; data migrations are plain code.
    pub apply: fn(&Connection) -> rusqlite::Result<()>,
}

/// The schema of the first release, which did not set `user_version` (see [`version`]).
pub(super) const V1_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY,
    uid INTEGER NOT NULL,
    user TEXT NOT NULL,
    privilege TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    grants TEXT NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    ticket TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_ms INTEGER NOT NULL,
    starts_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    expires_boot_ms INTEGER NOT NULL,
    ended_ms INTEGER NOT NULL DEFAULT 0,
    end_reason TEXT NOT NULL DEFAULT '',
    end_state TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS grants_state ON grants(state);
CREATE INDEX IF NOT EXISTS grants_uid ON grants(uid);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    uid INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    service TEXT NOT NULL,
    tty TEXT NOT NULL,
    rhost TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    start_ticks INTEGER NOT NULL,
    opened_ms INTEGER NOT NULL,
    closed_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_open ON sessions(closed_ms);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    line TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
";

/// Audit rows record the host they were written on and the hash formula that seals them
/// ([`crate::audit::chain`]). Rows already there keep formula 1 (their hash does not cover the
/// new fields), hence the default. The connection pragma `foreign_keys=ON` was dropped with
/// this version: no table declares a foreign key.
const V2_AUDIT_HOST_FORMAT: &str = "
ALTER TABLE audit ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
";

/// What a grant's end does beyond its removal, as granted: the group's gid (NULL: not a group
/// grant, or recorded before this version) and the privilege's `on_end` ('' when unknown).
const V3_GRANT_END_TERMS: &str = "
ALTER TABLE grants ADD COLUMN gid INTEGER;
ALTER TABLE grants ADD COLUMN on_end TEXT NOT NULL DEFAULT '';
";

/// Requests waiting for approval, and every approver's vote on them. A request row is
/// written when it is made and changed once, when it is decided (`state` leaves `pending`);
/// the primary key of `request_votes` keeps one vote per approver.
const V4_REQUESTS: &str = "
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    uid INTEGER NOT NULL,
    user TEXT NOT NULL,
    privilege TEXT NOT NULL,
    rule TEXT NOT NULL,
    grants TEXT NOT NULL,
    duration_secs INTEGER NOT NULL,
    reason TEXT NOT NULL,
    ticket TEXT NOT NULL,
    via TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    extends TEXT NOT NULL DEFAULT '',
    decided_ms INTEGER NOT NULL DEFAULT 0,
    decided_by TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    grant_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX requests_state ON requests(state);
CREATE INDEX requests_uid ON requests(uid);
CREATE TABLE request_votes (
    request_id TEXT NOT NULL,
    uid INTEGER NOT NULL,
    user TEXT NOT NULL,
    vote TEXT NOT NULL,
    comment TEXT NOT NULL,
    shorten_to_secs INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (request_id, uid)
);
";

/// Break-glass grants and their review: one row per grant made under a `breakglass` rule,
/// written with the grant, reviewed once. `overdue_noted` keeps the late-review record to one.
const V5_BREAKGLASS: &str = "
CREATE TABLE breakglass (
    grant_id TEXT PRIMARY KEY,
    uid INTEGER NOT NULL,
    user TEXT NOT NULL,
    privilege TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    granted_ms INTEGER NOT NULL,
    review_by_ms INTEGER NOT NULL,
    reviewed_ms INTEGER NOT NULL DEFAULT 0,
    reviewer TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    overdue_noted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX breakglass_uid ON breakglass(uid, granted_ms);
";

/// What the notifier (`jitd-notify`) must deliver, written in the same transaction as the audit
/// record that caused it (`store/outbox.rs`). `dedupe` is the id a receiver dedupes on; it is
/// unique, so an event noted twice (a retried transaction, an expiry warning computed on every
/// tick) is queued once.
const V8_OUTBOX: &str = "
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    dedupe TEXT NOT NULL UNIQUE,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    acked_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_unacked ON outbox(acked_ms, id);
";

/// Signed approvals: what each pending request binds into a signature (its nonce and the
/// digest of its rule and privilege at request time), and every signature jitd accepted, so a
/// token counts once even after a restart; and the nonces requesters sign as an MFA proof,
/// each proven once and used for one request.
const V7_SIGNED: &str = "
CREATE TABLE request_bindings (
    request_id TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    policy TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE used_tokens (
    signature_sha256 TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE mfa_challenges (
    nonce TEXT PRIMARY KEY,
    uid INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    proven_ms INTEGER NOT NULL DEFAULT 0,
    used_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mfa_challenges_uid ON mfa_challenges(uid, proven_ms);
";

/// In order, without gaps, starting at 1.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        apply: |c| c.execute_batch(V1_SCHEMA),
    },
    Migration {
        version: 2,
        apply: |c| c.execute_batch(V2_AUDIT_HOST_FORMAT),
    },
    Migration {
        version: 3,
        apply: |c| c.execute_batch(V3_GRANT_END_TERMS),
    },
    Migration {
        version: 4,
        apply: |c| c.execute_batch(V4_REQUESTS),
    },
    Migration {
        version: 5,
        apply: |c| c.execute_batch(V5_BREAKGLASS),
    },
    Migration {
        version: 6,
        apply: super::history::migrate_v6,
    },
    Migration {
        version: 7,
        apply: |c| c.execute_batch(V7_SIGNED),
    },
    Migration {
        version: 8,
        apply: |c| c.execute_batch(V8_OUTBOX),
    },
    Migration {
        version: 9,
        apply: |c| c.execute_batch(super::ledger::V9_JOURNAL_CURSOR),
    },
];

/// The newest schema this build knows: what [`upgrade`] leaves and read-only opens require.
pub const SCHEMA_VERSION: u32 = 9;

/// The database's schema version. 0 is a database with no jitd schema (a new, empty file); a
/// database from the first release has `user_version` 0 but holds the `grants` table, and is
/// version 1.
pub(super) fn version(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let raw: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    if raw != 0 {
        return u32::try_from(raw)
            .map_err(|_| StoreError::Corrupt(format!("{}: schema version {raw}", path.display())));
    }
    let has_grants = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'grants'",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(err)?
        .is_some();
    Ok(u32::from(has_grants))
}

/// Refuses a database written by a newer jitd: its meaning is unknown here, and writing it
/// with this build's assumptions could corrupt it.
pub(super) fn refuse_newer(found: u32, path: &Path) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Applies every migration the database has not had yet; returns the version it is now at.
pub(super) fn upgrade(conn: &mut Connection, path: &Path) -> Result<u32, StoreError> {
    let found = version(conn, path)?;
    refuse_newer(found, path)?;
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    let failed = |version: u32| {
        move |source| StoreError::Migrate {
            path: path.display().to_string(),
            version,
            source,
        }
    };
    for m in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed(m.version))?;
        // Under the write lock now: someone else may have migrated since the first look.
        let now = version(&tx, path)?;
        refuse_newer(now, path)?;
        if now >= m.version {
            continue;
        }
        (m.apply)(&tx).map_err(failed(m.version))?;
        tx.pragma_update(None, "user_version", m.version)
            .map_err(failed(m.version))?;
        tx.commit().map_err(failed(m.version))?;
    }
    Ok(SCHEMA_VERSION)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // temp dirs and concurrency in tests
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audit::chain::{self, ChainRow};
    use crate::grant::GrantState;
    use crate::store::tests::{TempDir, record};
    use crate::store::{Store, grants, insert_row};

    fn user_version(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn migrations_are_ordered_without_gaps_and_end_at_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn a_fresh_database_reaches_the_newest_version() {
        let dir = TempDir::new();
        let store = Store::open(&dir.db(), Duration::from_millis(100)).unwrap();
        assert_eq!(user_version(&dir.db()), i64::from(SCHEMA_VERSION));
        let seq = store.append_audit(1, "host-a", "event=first").unwrap();
        assert_eq!(seq, 1);
        drop(store);
        // Opening again changes nothing.
        Store::open(&dir.db(), Duration::from_millis(100)).unwrap();
        assert_eq!(user_version(&dir.db()), i64::from(SCHEMA_VERSION));
    }

    /// A database exactly as the first release left it: user_version 0, the v1 tables, a grant,
    /// an open session and audit rows sealed with hash format 1.
    fn first_release_db(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        let g = record(1, GrantState::Active);
        // The columns the first release had: later ones are added by the migrations.
        grants::with_row(&g, |row| {
            let v1: Vec<_> = row
                .iter()
                .filter(|(column, _)| ![":gid", ":on_end"].contains(column))
                .copied()
                .collect();
            insert_row(&conn, "grants", &v1)
        })
        .unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (id, grant_id, uid, pid, service, tty, rhost, boot_id, \
             start_ticks, opened_ms) VALUES ('s00000000000a', 'g000000000001', 1001, 42, 'sudo', 'pts/0', '', 'b', 7, 3)",
        )
        .unwrap();
        let mut prev = String::new();
        for i in 1..=3_i64 {
            let line = format!("event=old n={i}");
            let hash = chain::hash_v1(&prev, i * 10, &line);
            // Seq from AUTOINCREMENT, as the first release wrote it.
            insert_row(
                &conn,
                "audit",
                &[
                    (":at_ms", &(i * 10)),
                    (":line", &line),
                    (":prev_hash", &prev),
                    (":hash", &hash),
                ],
            )
            .unwrap();
            prev = hash;
        }
    }

    #[test]
    fn a_first_release_database_is_migrated_and_keeps_every_row() {
        let dir = TempDir::new();
        first_release_db(&dir.db());
        assert_eq!(user_version(&dir.db()), 0);
        let store = Store::open(&dir.db(), Duration::from_millis(100)).unwrap();
        assert_eq!(user_version(&dir.db()), i64::from(SCHEMA_VERSION));

        assert_eq!(store.live().unwrap(), vec![record(1, GrantState::Active)]);
        let sessions = store.open_sessions().unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(
            (sessions[0].id.as_str(), sessions[0].pid),
            ("s00000000000a", 42)
        );
        let old = store.audit_rows(0, 10).unwrap();
        assert_eq!(old.len(), 3);
        assert!(old.iter().all(|r| r.format == 1 && r.host.is_empty()));

        assert_eq!(
            store.append_audit(40, "host-a", "event=new n=4").unwrap(),
            4
        );
        assert_eq!(
            store.append_audit(50, "host-a", "event=new n=5").unwrap(),
            5
        );
        let rows = store.audit_rows(0, 10).unwrap();
        let formats: Vec<u32> = rows.iter().map(|r| r.format).collect();
        assert_eq!(formats, [1, 1, 1, 2, 2]);
        let report = store.verify_chain().unwrap();
        assert_eq!(
            report.to_string(),
            "audit chain intact: 5 records, seq 1..5"
        );
        let chained: Vec<ChainRow> = rows;
        assert!(chain::verify(chained).is_intact());
    }

    /// The daemon and the sweep may both find the old database: each migration is applied
    /// once, and both opens succeed.
    #[test]
    fn concurrent_opens_migrate_once() {
        let dir = TempDir::new();
        first_release_db(&dir.db());
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let path = dir.db();
                std::thread::spawn(move || Store::open(&path, Duration::from_secs(10)).map(|_| ()))
            })
            .collect();
        for open in opens {
            open.join().unwrap().unwrap();
        }
        assert_eq!(user_version(&dir.db()), i64::from(SCHEMA_VERSION));
    }

    #[test]
    fn a_database_from_a_newer_jitd_is_refused_and_left_alone() {
        let dir = TempDir::new();
        drop(Store::open(&dir.db(), Duration::from_millis(100)).unwrap());
        let newer = i64::from(SCHEMA_VERSION) + 1;
        Connection::open(dir.db())
            .unwrap()
            .pragma_update(None, "user_version", newer)
            .unwrap();
        for err in [
            Store::open(&dir.db(), Duration::from_millis(100)).err(),
            Store::open_read_only(&dir.db()).err(),
        ] {
            let err = err.unwrap();
            assert!(
                matches!(err, StoreError::TooNew { found, .. } if i64::from(found) == newer),
                "{err}"
            );
            assert!(err.to_string().contains("newer than this jitd"), "{err}");
        }
        assert_eq!(user_version(&dir.db()), newer, "never downgraded");
    }

    #[test]
    fn read_only_refuses_a_database_that_needs_migrating() {
        let dir = TempDir::new();
        first_release_db(&dir.db());
        let err = Store::open_read_only(&dir.db()).err().unwrap();
        assert!(
            err.to_string()
                .contains("database at schema version 1 needs jitd to start once to migrate"),
            "{err}"
        );
        assert_eq!(user_version(&dir.db()), 0, "nothing migrated");
    }
}
