//! The command ledger's own state: how far each sudo log was read (`ledger_files`, kept in the
//! same transaction as the records read from it, so a restart neither loses nor repeats an
//! event) and the commands still running (`ledger_runs`, so an exit finds its grant).

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// Where reading a sudo log stopped: the file (device and inode) and the byte after the last
/// whole event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerPosition {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

/// Schema 9: where reading sudo's lines from the journal stopped (journald's cursor), kept in
/// the same transaction as the records read, like `ledger_files`' offsets.
pub const V9_JOURNAL_CURSOR: &str = "
CREATE TABLE ledger_journal (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cursor TEXT NOT NULL
);
";

impl Store {
    /// The journal's cursor after the last sudo line stored (`None`: never read).
    pub fn journal_cursor(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT cursor FROM ledger_journal WHERE id = 1")?
            .query_row([], |r| r.get(0))
            .optional()?)
    }

    pub fn set_journal_cursor(&self, cursor: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO ledger_journal (id, cursor) VALUES (1, ?1)")?
            .execute([cursor])?;
        Ok(())
    }

    /// How long this connection waits for another process's lock from now on.
    pub fn set_busy_timeout(&self, wait: std::time::Duration) -> Result<(), StoreError> {
        Ok(self.conn.busy_timeout(wait)?)
    }

    /// Abandons a batch ([`Store::begin_batch`]): nothing of it is kept.
    pub fn rollback_batch(&self) {
        self.in_batch.set(false);
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Every position kept, by uid.
    pub fn ledger_positions(&self) -> Result<Vec<(u32, LedgerPosition)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT uid, dev, ino, offset FROM ledger_files")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                LedgerPosition {
                    dev: r.get::<_, i64>(1)? as u64,
                    ino: r.get::<_, i64>(2)? as u64,
                    offset: r.get::<_, i64>(3)? as u64,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_ledger_position(&self, uid: u32, p: LedgerPosition) -> Result<(), StoreError> {
        // SQLite integers are signed: device and inode numbers are stored by their bits.
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO ledger_files (uid, dev, ino, offset) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                uid,
                p.dev as i64,
                p.ino as i64,
                i64::try_from(p.offset).unwrap_or(i64::MAX)
            ])?;
        Ok(())
    }

    /// Forgets the position of `uid`'s log (the file is gone).
    pub fn forget_ledger_position(&self, uid: u32) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM ledger_files WHERE uid = ?1")?
            .execute([uid])?;
        Ok(())
    }

    /// Forgets commands whose exit never came (sudo killed, a log lost) older than `before_ms`.
    pub fn forget_ledger_runs_before(&self, before_ms: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM ledger_runs WHERE at_ms < ?1")?
            .execute([before_ms])?)
    }

    /// A command sudo started under `grant`, until its exit is read.
    pub fn ledger_run_started(
        &self,
        uuid: &str,
        grant: &str,
        uid: u32,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO ledger_runs (uuid, grant_id, uid, at_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![uuid, grant, uid, at_ms])?;
        Ok(())
    }

    /// Whether a command of `uid` that sudo was asked for at `at_ms` is still running: a
    /// program it runs (`log_subcmds`) carries its submit time, and no exit of its own.
    pub fn ledger_run_at(&self, uid: u32, at_ms: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM ledger_runs WHERE uid = ?1 AND at_ms = ?2 LIMIT 1")?
            .query_row(params![uid, at_ms], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The grant and uid of the command `uuid`, forgotten as it is read.
    pub fn ledger_run_ended(&self, uuid: &str) -> Result<Option<(String, u32)>, StoreError> {
        let found = self
            .conn
            .prepare_cached("SELECT grant_id, uid FROM ledger_runs WHERE uuid = ?1")?
            .query_row([uuid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        self.conn
            .prepare_cached("DELETE FROM ledger_runs WHERE uuid = ?1")?
            .execute([uuid])?;
        Ok(found)
    }

    /// Users whose sudo grant that recorded commands ended after `since_ms`.
    pub fn recently_ended_ledger_uids(&self, since_ms: i64) -> Result<Vec<u32>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT uid FROM grants WHERE ended_ms > ?1 AND kind = 'sudo' \
             AND payload LIKE '%log_format=json%'",
        )?;
        let rows = stmt.query_map([since_ms], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The grant of `uid` that ended last, at or before `at_ms` and after `since_ms`: the one
    /// a sudo attempt just after an end belongs to.
    pub fn last_ended_grant(
        &self,
        uid: u32,
        since_ms: i64,
        at_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM grants WHERE uid = ?1 AND ended_ms > ?2 AND ended_ms <= ?3 \
                 ORDER BY ended_ms DESC LIMIT 1",
            )?
            .query_row(params![uid, since_ms, at_ms], |r| r.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_db;

    #[test]
    fn positions_and_runs_persist() {
        let (_dir, store) = temp_db();
        let p = LedgerPosition {
            dev: u64::MAX - 1,
            ino: 42,
            offset: 9767,
        };
        store.set_ledger_position(1001, p).unwrap();
        assert_eq!(store.ledger_positions().unwrap(), vec![(1001, p)]);
        store
            .ledger_run_started("u1", "g0123456789ab", 1001, 5)
            .unwrap();
        assert_eq!(
            store.ledger_run_ended("u1").unwrap(),
            Some(("g0123456789ab".to_string(), 1001))
        );
        assert_eq!(store.ledger_run_ended("u1").unwrap(), None);
        assert_eq!(store.journal_cursor().unwrap(), None);
        store.set_journal_cursor("s=1;i=2").unwrap();
        store.set_journal_cursor("s=1;i=3").unwrap();
        assert_eq!(store.journal_cursor().unwrap().as_deref(), Some("s=1;i=3"));
    }
}
