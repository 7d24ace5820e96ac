//! Durable state in SQLite: grants and the audit chain.
//!
//! Invariants:
//! - WAL, `synchronous=FULL`: a committed row survives a power cut.
//! - Intent first: a grant row is committed in state `applying` before anything on the system
//!   changes, and in state `removing` before it is taken off. Start-up reconciliation finishes or
//!   undoes whatever a crash interrupted, so the DB and the system cannot disagree for long.
//! - One writer per process (the daemon keeps its connection behind a mutex); the sweep is a
//!   second process and waits on SQLite's lock with a bounded busy timeout.
//! - Audit rows form a hash chain: each row's hash covers the previous row's hash, so editing or
//!   deleting a row in the middle is detected by [`Store::verify_chain`].

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use sha2::{Digest, Sha256};

use crate::client::SessionInfo;
use crate::effects::sudoers;
use crate::grant::{GrantKind, GrantRecord, GrantSpec, GrantState};
use crate::names::{GrantId, GroupName};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database: corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the failure is the database being locked by someone else (after the busy wait).
    pub fn is_busy(&self) -> bool {
        let code = match self {
            Self::Open { source, .. } | Self::Sql(source) => source.sqlite_error_code(),
            Self::Corrupt(_) => None,
        };
        matches!(
            code,
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub at_ms: i64,
    pub line: String,
    pub prev_hash: String,
    pub hash: String,
}

const SCHEMA: &str = "
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

const GRANT_COLUMNS: &str = "id, uid, user, privilege, kind, rule, grants, payload, reason, ticket, \
    state, requested_ms, starts_ms, expires_ms, boot_id, expires_boot_ms, ended_ms, end_reason";

/// An elevated session pam_jit reported, with what identifies its process for good: the
/// boot and the process's start time (a pid alone is reused).
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub info: SessionInfo,
    pub boot_id: String,
    /// `/proc/<pid>/stat` start time; 0 when it could not be read (never matches).
    pub start_ticks: u64,
    pub opened_ms: i64,
}

pub struct Store {
    conn: Connection,
    /// Inside [`Store::begin_batch`] .. [`Store::commit_batch`].
    in_batch: std::cell::Cell<bool>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, which must be in a root-only directory.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(busy_timeout).map_err(open_err)?;
        // WAL lets the sweep read while the daemon writes; FULL makes each commit durable.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(Self {
            conn,
            in_batch: std::cell::Cell::new(false),
        })
    }

    /// Commits the intent to grant: the row in state `applying`.
    pub fn insert(&self, g: &GrantRecord) -> Result<(), StoreError> {
        self.conn.execute(
            &format!(
                "INSERT INTO grants ({GRANT_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
            ),
            params![
                g.id.as_str(),
                g.uid,
                g.user,
                g.privilege,
                g.kind().as_str(),
                g.rule,
                g.grants,
                payload(g),
                g.reason,
                g.ticket,
                g.state.as_str(),
                g.requested_ms,
                g.starts_ms,
                g.expires_ms,
                g.boot_id,
                g.expires_boot_ms,
                g.ended_ms,
                g.end_reason
            ],
        )?;
        Ok(())
    }

    /// The grant is on the system.
    pub fn mark_active(&self, id: &GrantId) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE grants SET state = 'active' WHERE id = ?1",
            params![id.as_str()],
        )
    }

    /// Commits the intent to take the grant off the system, and what it will be once off.
    pub fn mark_removing(
        &self,
        id: &GrantId,
        end_state: GrantState,
        at_ms: i64,
        why: &str,
    ) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE grants SET state = 'removing', end_state = ?2, ended_ms = ?3, end_reason = ?4 \
             WHERE id = ?1",
            params![id.as_str(), end_state.as_str(), at_ms, why],
        )
    }

    /// The grant is off the system for good, in final `state`.
    pub fn mark_ended(
        &self,
        id: &GrantId,
        state: GrantState,
        at_ms: i64,
        why: &str,
    ) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE grants SET state = ?2, ended_ms = ?3, end_reason = ?4 WHERE id = ?1",
            params![id.as_str(), state.as_str(), at_ms, why],
        )
    }

    /// The final state a grant in `removing` was headed for (`revoked` when unknown).
    pub fn end_state(&self, id: &GrantId) -> Result<GrantState, StoreError> {
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT end_state FROM grants WHERE id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(s.as_deref()
            .and_then(GrantState::parse)
            .unwrap_or(GrantState::Revoked))
    }

    fn update<P: rusqlite::Params>(&self, id: &GrantId, sql: &str, p: P) -> Result<(), StoreError> {
        match self.conn.execute(sql, p)? {
            1 => Ok(()),
            _ => Err(StoreError::Corrupt(format!("grant {id} has no row"))),
        }
    }

    pub fn get(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = ?1");
        let row = self
            .conn
            .query_row(&sql, [id.as_str()], read_grant)
            .optional()?;
        row.transpose()
    }

    /// Every grant something of which may be on the system.
    pub fn live(&self) -> Result<Vec<GrantRecord>, StoreError> {
        self.query(
            &format!(
                "SELECT {GRANT_COLUMNS} FROM grants \
                 WHERE state IN ('applying', 'active', 'removing') ORDER BY expires_ms"
            ),
            [],
        )
    }

    /// Grants of `uid` (or everyone's), newest first; ended ones only when asked.
    pub fn list(
        &self,
        uid: Option<u32>,
        include_ended: bool,
        limit: u32,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let live = if include_ended {
            ""
        } else {
            "AND state IN ('applying', 'active', 'removing')"
        };
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE (?1 IS NULL OR uid = ?1) {live} \
             ORDER BY requested_ms DESC LIMIT ?2"
        );
        self.query(&sql, params![uid, limit])
    }

    fn query<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(params, read_grant)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Appends one audit line to the hash chain and returns its hash.
    /// Records an elevated session pam_jit opened.
    pub fn insert_session(&self, id: &str, s: &SessionRow) -> Result<(), StoreError> {
        let i = &s.info;
        self.conn.execute(
            "INSERT INTO sessions (id, grant_id, uid, pid, service, tty, rhost, boot_id, \
             start_ticks, opened_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                id,
                i.grant_id,
                i.uid,
                i.pid,
                i.service,
                i.tty,
                i.rhost,
                s.boot_id,
                s.start_ticks,
                s.opened_ms
            ],
        )?;
        Ok(())
    }

    /// Marks an open session closed; `false` when no open session has that id.
    pub fn close_session(&self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE sessions SET closed_ms = ?2 WHERE id = ?1 AND closed_ms = 0",
            params![id, at_ms],
        )?;
        Ok(n == 1)
    }

    /// Sessions not closed yet, oldest first.
    pub fn open_sessions(&self) -> Result<Vec<(String, SessionRow)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, grant_id, uid, pid, service, tty, rhost, boot_id, start_ticks, opened_ms \
             FROM sessions WHERE closed_ms = 0 ORDER BY opened_ms",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                SessionRow {
                    info: SessionInfo {
                        grant_id: r.get(1)?,
                        uid: r.get(2)?,
                        pid: r.get(3)?,
                        service: r.get(4)?,
                        tty: r.get(5)?,
                        rhost: r.get(6)?,
                    },
                    boot_id: r.get(7)?,
                    start_ticks: r.get(8)?,
                    opened_ms: r.get(9)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn append_audit(&self, at_ms: i64, line: &str) -> Result<String, StoreError> {
        self.in_savepoint("audit_append", || {
            let prev: String = self
                .conn
                .query_row(
                    "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or_default();
            let hash = chain_hash(&prev, at_ms, line);
            self.conn.execute(
                "INSERT INTO audit (at_ms, line, prev_hash, hash) VALUES (?1, ?2, ?3, ?4)",
                params![at_ms, line, prev, hash],
            )?;
            Ok(hash)
        })
    }

    /// Starts a batch: the writes until [`Store::commit_batch`] are committed together, with
    /// one sync instead of one each. Only for writes whose loss in a crash is repaired from
    /// what is already durable (grants ending at their recorded deadline).
    pub fn begin_batch(&self) -> Result<(), StoreError> {
        // IMMEDIATE: the write lock is taken now, so a sweep committing in between cannot
        // make the batch's later writes fail on a stale snapshot.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.in_batch.set(true);
        Ok(())
    }

    /// Commits the batch. If that fails (disk full, SQLite already rolled it back), the batch
    /// is abandoned and the connection is left outside any transaction.
    pub fn commit_batch(&self) -> Result<(), StoreError> {
        self.in_batch.set(false);
        let out = self.conn.execute_batch("COMMIT");
        if out.is_err() {
            self.leave_no_open_transaction();
        }
        Ok(out?)
    }

    /// Runs `f` in savepoint `name`, which nests inside a batch: its writes stay when it
    /// succeeds and are undone when it fails. Outside a batch, releasing the savepoint is the
    /// commit; when that fails, everything is rolled back, so no later write is left in an
    /// open transaction that would never be committed.
    fn in_savepoint<T>(
        &self,
        name: &str,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch(&format!("SAVEPOINT {name}"))?;
        let out = f().and_then(|v| {
            self.conn.execute_batch(&format!("RELEASE {name}"))?;
            Ok(v)
        });
        if out.is_err() {
            let _ = self
                .conn
                .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"));
            self.leave_no_open_transaction();
        }
        out
    }

    fn leave_no_open_transaction(&self) {
        if !self.in_batch.get() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Audit rows with `seq > after`, oldest first, at most `limit`.
    pub fn audit_rows(&self, after: i64, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at_ms, line, prev_hash, hash FROM audit WHERE seq > ?1 \
             ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit], |r| {
            Ok(AuditRow {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                line: r.get(2)?,
                prev_hash: r.get(3)?,
                hash: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Checks the whole chain; returns the number of rows, or the seq of the first bad row.
    pub fn verify_chain(&self) -> Result<Result<usize, i64>, StoreError> {
        let mut prev = String::new();
        let mut count = 0;
        let mut after = 0;
        loop {
            let rows = self.audit_rows(after, 1000)?;
            if rows.is_empty() {
                return Ok(Ok(count));
            }
            for row in rows {
                if row.prev_hash != prev || row.hash != chain_hash(&prev, row.at_ms, &row.line) {
                    return Ok(Err(row.seq));
                }
                prev = row.hash;
                after = row.seq;
                count += 1;
            }
        }
    }
}

fn chain_hash(prev: &str, at_ms: i64, line: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(at_ms.to_string().as_bytes());
    h.update(b"\n");
    h.update(line.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What the `payload` column holds: the drop-in text of a sudo grant, the group of a group
/// grant, nothing for a gate grant. The typed spec is read back from it ([`spec_of`]).
fn payload(g: &GrantRecord) -> &str {
    match &g.spec {
        GrantSpec::Sudo { .. } => &g.drop_in,
        GrantSpec::Group { group } => group.as_str(),
        GrantSpec::Gate => "",
    }
}

/// The spec and drop-in text of a stored grant, re-validated.
fn spec_of(kind: GrantKind, uid: u32, payload: String) -> Result<(GrantSpec, String), String> {
    match kind {
        GrantKind::Sudo => {
            let (run_as_uid, commands, password_each_time) = sudoers::parse_rule(&payload, uid)
                .ok_or_else(|| "its drop-in text is not one jitd rendered".to_string())?;
            let spec = GrantSpec::Sudo {
                run_as_uid,
                commands,
                password_each_time,
            };
            Ok((spec, payload))
        }
        GrantKind::Group => {
            let group = GroupName::parse(&payload).map_err(|e| e.to_string())?;
            Ok((GrantSpec::Group { group }, String::new()))
        }
        GrantKind::Gate => Ok((GrantSpec::Gate, String::new())),
    }
}

fn read_grant(r: &Row<'_>) -> rusqlite::Result<Result<GrantRecord, StoreError>> {
    let id: String = r.get("id")?;
    let state: String = r.get("state")?;
    let kind: String = r.get("kind")?;
    let uid: u32 = r.get("uid")?;
    let (Ok(id), Some(state), Some(kind)) = (
        GrantId::parse(&id),
        GrantState::parse(&state),
        GrantKind::parse(&kind),
    ) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "grant {id:?} of kind {kind:?} in state {state:?}"
        ))));
    };
    let (spec, drop_in) = match spec_of(kind, uid, r.get("payload")?) {
        Ok(found) => found,
        Err(why) => return Ok(Err(StoreError::Corrupt(format!("grant {id}: {why}")))),
    };
    Ok(Ok(GrantRecord {
        id,
        uid,
        user: r.get("user")?,
        privilege: r.get("privilege")?,
        spec,
        drop_in,
        rule: r.get("rule")?,
        grants: r.get("grants")?,
        reason: r.get("reason")?,
        ticket: r.get("ticket")?,
        state,
        requested_ms: r.get("requested_ms")?,
        starts_ms: r.get("starts_ms")?,
        expires_ms: r.get("expires_ms")?,
        boot_id: r.get("boot_id")?,
        expires_boot_ms: r.get("expires_boot_ms")?,
        ended_ms: r.get("ended_ms")?,
        end_reason: r.get("end_reason")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (std::path::PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!(
            "jitd-store-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("jitd.db"), Duration::from_millis(100)).unwrap();
        (dir, store)
    }

    pub(crate) fn record(id: u64, state: GrantState) -> GrantRecord {
        GrantRecord {
            id: GrantId::from_random(id),
            uid: 1001,
            user: "alice".into(),
            privilege: "nginx-admin".into(),
            spec: GrantSpec::Group {
                group: GroupName::parse("docker").unwrap(),
            },
            drop_in: String::new(),
            rule: "web".into(),
            grants: "member of group docker".into(),
            reason: "because".into(),
            ticket: String::new(),
            state,
            requested_ms: 1,
            starts_ms: 1,
            expires_ms: 100,
            boot_id: "b".into(),
            expires_boot_ms: 100,
            ended_ms: 0,
            end_reason: String::new(),
        }
    }

    #[test]
    fn a_grant_moves_through_its_states_and_leaves_the_live_set() {
        let (_dir, store) = temp_db();
        let g = record(1, GrantState::Applying);
        store.insert(&g).unwrap();
        assert_eq!(store.live().unwrap(), vec![g.clone()]);
        store.mark_active(&g.id).unwrap();
        store
            .mark_removing(&g.id, GrantState::Expired, 200, "expired")
            .unwrap();
        assert_eq!(store.live().unwrap().len(), 1, "removing is still live");
        assert_eq!(store.end_state(&g.id).unwrap(), GrantState::Expired);
        store
            .mark_ended(&g.id, GrantState::Expired, 200, "expired")
            .unwrap();
        assert!(store.live().unwrap().is_empty());
        let back = store.get(&g.id).unwrap().unwrap();
        assert_eq!(
            (back.state, back.ended_ms, back.end_reason.as_str()),
            (GrantState::Expired, 200, "expired")
        );
        assert_eq!(store.list(Some(1001), true, 10).unwrap().len(), 1);
        assert!(store.list(Some(1001), false, 10).unwrap().is_empty());
        assert!(store.list(Some(1002), true, 10).unwrap().is_empty());
    }

    #[test]
    fn duplicate_grant_id_is_refused() {
        let (_dir, store) = temp_db();
        store.insert(&record(7, GrantState::Applying)).unwrap();
        assert!(store.insert(&record(7, GrantState::Applying)).is_err());
    }

    #[test]
    fn the_audit_chain_detects_an_edited_row() {
        let (_dir, store) = temp_db();
        for i in 0..5 {
            store.append_audit(i, &format!("event=test n={i}")).unwrap();
        }
        assert_eq!(store.verify_chain().unwrap(), Ok(5));
        store
            .conn
            .execute("UPDATE audit SET line = 'event=forged' WHERE seq = 3", [])
            .unwrap();
        assert_eq!(store.verify_chain().unwrap(), Err(3));
    }

    #[test]
    fn a_locked_database_is_reported_as_busy() {
        let (dir, store) = temp_db();
        let other = Connection::open(dir.join("jitd.db")).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let err = store.insert(&record(9, GrantState::Applying)).unwrap_err();
        assert!(err.is_busy(), "{err}");
    }

    /// Writes in a batch are invisible to another reader until committed, then all there, with
    /// the audit chain intact across them.
    #[test]
    fn a_batch_commits_its_writes_together() {
        let (dir, store) = temp_db();
        for i in 1..=3 {
            store.insert(&record(i, GrantState::Active)).unwrap();
        }
        let reader = Connection::open(dir.join("jitd.db")).unwrap();
        let ended = || -> i64 {
            reader
                .query_row(
                    "SELECT count(*) FROM grants WHERE state = 'expired'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        store.begin_batch().unwrap();
        for i in 1..=3 {
            let id = GrantId::from_random(i);
            store
                .mark_removing(&id, GrantState::Expired, 5, "expired")
                .unwrap();
            store
                .mark_ended(&id, GrantState::Expired, 5, "expired")
                .unwrap();
            store
                .append_audit(5, &format!("event=grant.expired n={i}"))
                .unwrap();
        }
        assert_eq!(ended(), 0, "nothing visible before the commit");
        store.commit_batch().unwrap();
        assert_eq!(ended(), 3);
        assert_eq!(store.verify_chain().unwrap(), Ok(3));
        assert!(store.live().unwrap().is_empty());
    }
}
