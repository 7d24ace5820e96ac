//! The `sessions` table: elevated sessions pam_jit reported, open until it reports them closed
//! or the daemon finds their process gone.

use rusqlite::{Row, params};

use super::{Store, StoreError, insert_row};
use crate::client::SessionInfo;

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

impl Store {
    /// Records an elevated session pam_jit opened.
    pub fn insert_session(&self, id: &str, s: &SessionRow) -> Result<(), StoreError> {
        let i = &s.info;
        insert_row(
            &self.conn,
            "sessions",
            &[
                (":id", &id),
                (":grant_id", &i.grant_id),
                (":uid", &i.uid),
                (":pid", &i.pid),
                (":service", &i.service),
                (":tty", &i.tty),
                (":rhost", &i.rhost),
                (":boot_id", &s.boot_id),
                (":start_ticks", &s.start_ticks),
                (":opened_ms", &s.opened_ms),
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
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM sessions WHERE closed_ms = 0 ORDER BY opened_ms")?;
        let rows = stmt.query_map([], |r| Ok((r.get("id")?, read_session(r)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

fn read_session(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        info: SessionInfo {
            grant_id: r.get("grant_id")?,
            uid: r.get("uid")?,
            pid: r.get("pid")?,
            service: r.get("service")?,
            tty: r.get("tty")?,
            rhost: r.get("rhost")?,
        },
        boot_id: r.get("boot_id")?,
        start_ticks: r.get("start_ticks")?,
        opened_ms: r.get("opened_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_db;

    fn session(pid: u32, opened_ms: i64) -> SessionRow {
        SessionRow {
            info: SessionInfo {
                grant_id: "g1".into(),
                uid: 1001,
                pid,
                service: "sudo".into(),
                tty: "pts/1".into(),
                rhost: "10.0.0.1".into(),
            },
            boot_id: "b".into(),
            start_ticks: 99,
            opened_ms,
        }
    }

    #[test]
    fn sessions_stay_open_until_closed_once() {
        let (_dir, store) = temp_db();
        store.insert_session("s2", &session(20, 2)).unwrap();
        store.insert_session("s1", &session(10, 1)).unwrap();
        let open = store.open_sessions().unwrap();
        let ids: Vec<&str> = open.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["s1", "s2"], "oldest first");
        let s = &open[0].1;
        assert_eq!(
            (
                s.info.pid,
                s.info.rhost.as_str(),
                s.start_ticks,
                s.opened_ms
            ),
            (10, "10.0.0.1", 99, 1)
        );
        assert!(store.close_session("s1", 5).unwrap());
        assert!(!store.close_session("s1", 6).unwrap(), "already closed");
        assert!(!store.close_session("nope", 6).unwrap());
        assert_eq!(store.open_sessions().unwrap().len(), 1);
    }
}
