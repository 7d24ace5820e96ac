//! Durable state in SQLite: grants, elevated sessions and the audit chain.
//!
//! Invariants:
//! - WAL, `synchronous=FULL`: a committed row survives a power cut.
//! - Intent first: a grant row is committed in state `applying` before anything on the system
//!   changes, and in state `removing` before it is taken off. Start-up reconciliation finishes or
//!   undoes whatever a crash interrupted, so the DB and the system cannot disagree for long.
//! - One writer per process (the daemon keeps its connection behind a mutex); the sweep is a
//!   second process and waits on SQLite's lock with a bounded busy timeout.
//! - The schema is versioned ([`migrate`]): a writable open brings an older database up to date,
//!   and no open ever touches a database newer than this build.
//! - Audit rows form a hash chain ([`crate::audit::chain`]): each row's hash covers the previous
//!   row's hash, so editing, deleting or reordering rows is detected by [`Store::verify_chain`].
//!
//! One `impl Store` block per table: [`grants`](self::grants), [`sessions`](self::sessions),
//! [`audit_log`](self::audit_log). Beside the database, [`tombstones`] keeps the ends of
//! grants that the database could not record, without SQLite.

#![forbid(unsafe_code)]

mod audit_log;
mod breakglass;
mod grants;
mod history;
mod ledger;
mod migrate;
pub mod outbox;
mod requests;
mod retention;
mod sessions;
mod signed;
pub mod tombstones;

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, ToSql};

pub use audit_log::{AuditRow, ChainHead};
pub use breakglass::BreakglassRecord;
pub use grants::Unreadable;
pub use history::{HistoryFilter, HistoryRow};
pub use ledger::LedgerPosition;
pub use migrate::SCHEMA_VERSION;
pub use requests::{RequestRecord, VoteRecord};
pub use retention::Checkpoint;
pub use signed::{Binding, MfaChallenge};

/// How long a read-only open waits on a lock: readers only meet one while a writer
/// checkpoints or recovers the WAL, which is short.
const READ_ONLY_BUSY: Duration = Duration::from_secs(5);

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
    #[error(
        "state database {path}: schema version {found} is newer than this jitd knows \
         ({known}); refusing to open it (a database is never downgraded)"
    )]
    TooNew {
        path: String,
        found: u32,
        known: u32,
    },
    #[error(
        "state database {path}: database at schema version {found} needs jitd to start once \
         to migrate (this jitd uses version {known})"
    )]
    NeedsMigration {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("state database {path}: migration to schema version {version} failed: {source}")]
    Migrate {
        path: String,
        version: u32,
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Whether the failure is the database being locked by someone else (after the busy wait).
    pub fn is_busy(&self) -> bool {
        let code = match self {
            Self::Open { source, .. } | Self::Sql(source) | Self::Migrate { source, .. } => {
                source.sqlite_error_code()
            }
            Self::Corrupt(_) | Self::TooNew { .. } | Self::NeedsMigration { .. } => None,
        };
        matches!(
            code,
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

pub struct Store {
    conn: Connection,
    /// Inside [`Store::begin_batch`] .. [`Store::commit_batch`].
    in_batch: Cell<bool>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, which must be in a root-only
    /// directory, and migrates it to [`SCHEMA_VERSION`].
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(busy_timeout).map_err(open_err)?;
        // WAL lets the sweep and read-only tools read while the daemon writes; FULL makes each
        // commit durable.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        // The daemon reads a few rows at a time by key (the live set is in its memory), and
        // the kernel keeps the file cached: 512 KiB of pages (SQLite's default is 2 MiB) keeps
        // its index pages at hand.
        conn.pragma_update(None, "cache_size", -512)
            .map_err(open_err)?;
        migrate::upgrade(&mut conn, path)?;
        Ok(Self {
            conn,
            in_batch: Cell::new(false),
        })
    }

    /// A database in memory, for a daemon whose state database is unusable (safe mode): the
    /// core runs on it without grants, and nothing is kept.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        migrate::upgrade(&mut conn, path)?;
        Ok(Self {
            conn,
            in_batch: Cell::new(false),
        })
    }

    /// Opens an existing database for reading only, so a tool can read while the daemon runs:
    /// a missing database is an error, not created, and nothing is migrated or written. (On a
    /// WAL database no writer has open, SQLite itself makes the `-wal` and `-shm` files that
    /// readers and writers coordinate through, with the database's owner and mode; the
    /// database file is never written.) A database at any version other than
    /// [`SCHEMA_VERSION`] is refused: an older one needs the daemon to migrate it first, a
    /// newer one belongs to a newer jitd.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        // Without SQLITE_OPEN_CREATE a missing file is an error rather than a new empty
        // database; NO_MUTEX because the connection is used by one thread at a time.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(READ_ONLY_BUSY).map_err(open_err)?;
        let found = migrate::version(&conn, path)?;
        migrate::refuse_newer(found, path)?;
        if found < SCHEMA_VERSION {
            return Err(StoreError::NeedsMigration {
                path: path.display().to_string(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(Self {
            conn,
            in_batch: Cell::new(false),
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

    /// Runs `f`'s writes as one transaction (a savepoint inside a batch): committed together
    /// with one sync, or not at all. An audit record written in `f` goes with them.
    pub fn together<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.in_write_transaction("together", f)
    }

    /// Runs `f`, which reads and then writes, atomically: in a savepoint named `name` inside
    /// a batch (its writes stay when it succeeds, are undone when it fails), else in its own
    /// IMMEDIATE transaction. IMMEDIATE takes the write lock before the read, so another
    /// process committing in between makes us wait instead of failing the write on a stale
    /// snapshot. When the commit fails everything is rolled back, so no later write is left in
    /// an open transaction that would never be committed.
    fn in_write_transaction<T>(
        &self,
        name: &str,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let nested = self.in_batch.get() || !self.conn.is_autocommit();
        let (begin, commit, rollback) = if nested {
            (
                format!("SAVEPOINT {name}"),
                format!("RELEASE {name}"),
                format!("ROLLBACK TO {name}; RELEASE {name}"),
            )
        } else {
            ("BEGIN IMMEDIATE".into(), "COMMIT".into(), "ROLLBACK".into())
        };
        self.conn.execute_batch(&begin)?;
        let out = f().and_then(|v| {
            self.conn.execute_batch(&commit)?;
            Ok(v)
        });
        if out.is_err() {
            // Best effort: SQLite may already have rolled back (then this fails harmlessly).
            let _ = self.conn.execute_batch(&rollback);
            // A savepoint's failure is its own: the transaction around it goes on (an audit
            // record that could not be written does not undo the grant it records).
            if !nested {
                self.leave_no_open_transaction();
            }
        }
        out
    }

    fn leave_no_open_transaction(&self) {
        if !self.in_batch.get() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Inserts one row given as `(":column", value)` pairs: each column is named once, next to
/// its value, and the statement is built from that list.
fn insert_row(conn: &Connection, table: &str, row: &[(&str, &dyn ToSql)]) -> rusqlite::Result<()> {
    let params: Vec<&str> = row.iter().map(|(p, _)| *p).collect();
    let columns: Vec<&str> = params.iter().map(|p| p.trim_start_matches(':')).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        params.join(", ")
    );
    conn.prepare_cached(&sql)?.execute(row)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // temp dirs in tests
pub(crate) mod tests {

    use super::*;
    use crate::grant::{GrantRecord, GrantSpec, GrantState};
    use crate::names::{GrantId, GroupName};

    /// A fresh directory, removed with everything in it when dropped.
    pub(crate) use crate::testutil::TempDir;

    pub(crate) fn temp_db() -> (TempDir, Store) {
        let dir = TempDir::new();
        let store = Store::open(&dir.db(), Duration::from_millis(100)).unwrap();
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
            drop_in: "".into(),
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
            end_terms: Default::default(),
        }
    }

    #[test]
    fn a_locked_database_is_reported_as_busy() {
        let (dir, store) = temp_db();
        let other = Connection::open(dir.db()).unwrap();
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
        let reader = Connection::open(dir.db()).unwrap();
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
                .append_audit(5, "h", &format!("event=grant.expired n={i}"))
                .unwrap();
        }
        assert_eq!(ended(), 0, "nothing visible before the commit");
        store.commit_batch().unwrap();
        assert_eq!(ended(), 3);
        let report = store.verify_chain().unwrap();
        assert!(report.is_intact() && report.count == 3, "{report}");
        assert!(store.live().unwrap().is_empty());
    }

    /// The read-only connection sees what the writer commits (through the WAL, while the
    /// writer is still open), and cannot write.
    #[test]
    fn read_only_sees_committed_rows_and_cannot_write() {
        let (dir, writer) = temp_db();
        writer.insert(&record(1, GrantState::Active)).unwrap();
        assert!(
            dir.0.join("jitd.db-wal").exists(),
            "the test needs a live WAL"
        );
        let reader = Store::open_read_only(&dir.db()).unwrap();
        assert_eq!(reader.live().unwrap().len(), 1);
        writer.insert(&record(2, GrantState::Active)).unwrap();
        writer.append_audit(7, "h", "event=x").unwrap();
        assert_eq!(
            reader.live().unwrap().len(),
            2,
            "later commits are seen too"
        );
        assert_eq!(reader.audit_rows(0, 10).unwrap().len(), 1);
        let err = reader.insert(&record(3, GrantState::Active)).unwrap_err();
        assert!(
            matches!(&err, StoreError::Sql(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)),
            "{err}"
        );
        assert!(reader.append_audit(8, "h", "event=y").is_err());
        assert!(
            reader
                .close_session(&crate::names::SessionId::from_random(1), 9)
                .is_err()
        );
        assert_eq!(writer.live().unwrap().len(), 2);
    }

    /// A writer that died leaves its commits in the WAL only (and no shared-memory index):
    /// the reader still sees them.
    #[test]
    fn read_only_reads_the_wal_a_dead_writer_left() {
        let (dir, writer) = temp_db();
        writer.insert(&record(1, GrantState::Active)).unwrap();
        let copy = TempDir::new();
        for file in ["jitd.db", "jitd.db-wal"] {
            std::fs::copy(dir.0.join(file), copy.0.join(file)).unwrap();
        }
        let main_len = std::fs::metadata(copy.db()).unwrap().len();
        let reader = Store::open_read_only(&copy.db()).unwrap();
        assert_eq!(reader.live().unwrap().len(), 1);
        drop(reader);
        assert_eq!(std::fs::metadata(copy.db()).unwrap().len(), main_len);
    }

    #[test]
    fn read_only_never_creates_a_database() {
        let dir = TempDir::new();
        let err = Store::open_read_only(&dir.db()).err().unwrap();
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            0,
            "no file made"
        );
    }
}
