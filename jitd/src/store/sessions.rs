//! The `sessions` table: elevated sessions pam_jit reported, open until it reports them closed
//! or the daemon finds their process gone.

use rusqlite::{Row, params};

use super::{Store, StoreError, insert_row};
use crate::names::{GrantId, SessionId};
use crate::session::Session;

impl Store {
    /// Records an elevated session pam_jit opened.
    pub fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        insert_row(
            &self.conn,
            "sessions",
            &[
                (":id", &s.id.as_str()),
                (":grant_id", &s.grant.as_str()),
                (":uid", &s.uid),
                (":pid", &s.pid),
                (":service", &s.service),
                (":tty", &s.tty),
                (":rhost", &s.rhost),
                (":boot_id", &s.boot_id),
                (":start_ticks", &s.start_ticks),
                (":opened_ms", &s.opened_ms),
            ],
        )?;
        Ok(())
    }

    /// Marks an open session closed; `false` when no open session has that id.
    pub fn close_session(&self, id: &SessionId, at_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE sessions SET closed_ms = ?2 WHERE id = ?1 AND closed_ms = 0",
            params![id.as_str(), at_ms],
        )?;
        Ok(n == 1)
    }

    /// Sessions not closed yet, oldest first.
    pub fn open_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM sessions WHERE closed_ms = 0 ORDER BY opened_ms")?;
        let rows = stmt.query_map([], read_session)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }
}

fn read_session(r: &Row<'_>) -> rusqlite::Result<Result<Session, StoreError>> {
    let id: String = r.get("id")?;
    let grant: String = r.get("grant_id")?;
    let (Ok(id), Ok(grant)) = (SessionId::parse(&id), GrantId::parse(&grant)) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "session {id:?} of grant {grant:?}"
        ))));
    };
    Ok(Ok(Session {
        id,
        grant,
        uid: r.get("uid")?,
        pid: r.get("pid")?,
        service: r.get("service")?,
        tty: r.get("tty")?,
        rhost: r.get("rhost")?,
        boot_id: r.get("boot_id")?,
        start_ticks: r.get("start_ticks")?,
        opened_ms: r.get("opened_ms")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_db;

    fn session(id: u64, pid: u32, opened_ms: i64) -> Session {
        Session {
            id: SessionId::from_random(id),
            grant: GrantId::from_random(1),
            uid: 1001,
            pid,
            service: "sudo".into(),
            tty: "pts/1".into(),
            rhost: "10.0.0.1".into(),
            boot_id: "b".into(),
            start_ticks: 99,
            opened_ms,
        }
    }

    #[test]
    fn sessions_stay_open_until_closed_once() {
        let (_dir, store) = temp_db();
        let (s2, s1) = (session(2, 20, 2), session(1, 10, 1));
        store.insert_session(&s2).unwrap();
        store.insert_session(&s1).unwrap();
        let open = store.open_sessions().unwrap();
        assert_eq!(open, vec![s1.clone(), s2], "oldest first, every field back");
        assert!(store.close_session(&s1.id, 5).unwrap());
        assert!(!store.close_session(&s1.id, 6).unwrap(), "already closed");
        assert!(!store.close_session(&SessionId::from_random(9), 6).unwrap());
        assert_eq!(store.open_sessions().unwrap().len(), 1);
    }
}
