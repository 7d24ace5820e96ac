//! The `history` table: an index over the audit records a person asks about (requests,
//! grants, sessions, commands, alerts), by user, privilege, grant and time, so `jitctl history`
//! and `jitctl show` answer from an index instead of reading every record of a long chain.
//!
//! The index is derived: the record itself stays in `audit`, sealed by the chain; a row here
//! only says where to find it. It is written in the same transaction as the record.

use rusqlite::{Connection, ToSql, params};

use super::{Store, StoreError};
use crate::audit::chain::ChainRow;
use crate::audit::index::{HistoryKey, history_key_of_line};

/// Schema version 6: the history index, the ledger's reading positions and open commands,
/// and the chain checkpoint that survives purging old records. Nothing here reads or needs
/// version 4's `requests` table.
const V6_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    uid INTEGER,
    privilege TEXT,
    grant_id TEXT
);
CREATE INDEX IF NOT EXISTS history_uid ON history(uid, seq);
CREATE INDEX IF NOT EXISTS history_privilege ON history(privilege, seq);
CREATE INDEX IF NOT EXISTS history_grant ON history(grant_id, seq);
CREATE INDEX IF NOT EXISTS history_at ON history(at_ms, seq);
CREATE INDEX IF NOT EXISTS history_kind ON history(kind, seq);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at_ms);
CREATE TABLE IF NOT EXISTS ledger_files (
    uid INTEGER PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_runs (
    uuid TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    uid INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    format INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    purged_ms INTEGER NOT NULL
);
";

/// Creates the version 6 tables and indexes the records already in the chain.
pub(super) fn migrate_v6(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(V6_SCHEMA)?;
    let mut read = conn.prepare("SELECT seq, at_ms, line FROM audit ORDER BY seq")?;
    let rows = read.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (seq, at_ms, line) = row?;
        if let Some(key) = history_key_of_line(&line) {
            insert_key(conn, seq, at_ms, &key)?;
        }
    }
    Ok(())
}

fn insert_key(conn: &Connection, seq: i64, at_ms: i64, key: &HistoryKey) -> rusqlite::Result<()> {
    // Sessions and commands name their grant, not its privilege: the grant row knows it.
    conn.prepare_cached(
        "INSERT OR REPLACE INTO history (seq, at_ms, kind, uid, privilege, grant_id) VALUES \
         (?1, ?2, ?3, ?4, coalesce(?5, (SELECT privilege FROM grants WHERE id = ?6)), ?6)",
    )?
    .execute(params![
        seq,
        at_ms,
        key.kind,
        key.uid,
        key.privilege,
        key.grant
    ])?;
    Ok(())
}

/// What `jitctl history` asks for. Newest first; `before_seq` is the cursor of the next page.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub uid: Option<u32>,
    pub privilege: Option<String>,
    pub grant: Option<String>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub before_seq: Option<i64>,
    /// Oldest first instead (a grant's story reads forwards); `before_seq` is then ignored
    /// and `after_seq` pages.
    pub oldest_first: bool,
    pub after_seq: Option<i64>,
    pub limit: u32,
}

/// One record the index points at, with the record itself.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub row: ChainRow,
    pub kind: String,
    pub uid: Option<u32>,
    pub privilege: Option<String>,
    pub grant: Option<String>,
}

impl Store {
    /// Appends `line` to the chain and, when `key` says a person asks about it, indexes it,
    /// in one transaction.
    pub fn append_audit_indexed(
        &self,
        at_ms: i64,
        host: &str,
        line: &str,
        key: Option<&HistoryKey>,
    ) -> Result<super::ChainHead, StoreError> {
        self.in_write_transaction("audit_indexed", || {
            let head = self.append_audit_head(at_ms, host, line)?;
            if let Some(key) = key {
                insert_key(&self.conn, head.seq, at_ms, key)?;
            }
            Ok(head)
        })
    }

    /// The indexed records that match `f`, at most `f.limit`.
    pub fn history(&self, f: &HistoryFilter) -> Result<Vec<HistoryRow>, StoreError> {
        let mut conds: Vec<&str> = Vec::new();
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        if let Some(uid) = f.uid {
            conds.push("h.uid = ?");
            args.push(Box::new(uid));
        }
        if let Some(p) = &f.privilege {
            conds.push("h.privilege = ?");
            args.push(Box::new(p.clone()));
        }
        if let Some(g) = &f.grant {
            conds.push("h.grant_id = ?");
            args.push(Box::new(g.clone()));
        }
        let in_kinds;
        if !f.kinds.is_empty() {
            in_kinds = format!("h.kind IN ({})", vec!["?"; f.kinds.len()].join(", "));
            conds.push(&in_kinds);
            for k in &f.kinds {
                args.push(Box::new(k.clone()));
            }
        }
        if let Some(t) = f.since_ms {
            conds.push("h.at_ms >= ?");
            args.push(Box::new(t));
        }
        if let Some(t) = f.until_ms {
            conds.push("h.at_ms < ?");
            args.push(Box::new(t));
        }
        let order = if f.oldest_first {
            if let Some(s) = f.after_seq {
                conds.push("h.seq > ?");
                args.push(Box::new(s));
            }
            "ASC"
        } else {
            if let Some(s) = f.before_seq {
                conds.push("h.seq < ?");
                args.push(Box::new(s));
            }
            "DESC"
        };
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT h.kind, h.uid, h.privilege, h.grant_id, a.seq, a.at_ms, a.host, a.line, \
             a.prev_hash, a.hash, a.format FROM history h JOIN audit a ON a.seq = h.seq \
             {filter} ORDER BY h.seq {order} LIMIT ?"
        );
        args.push(Box::new(f.limit));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let params: Vec<&dyn ToSql> = args.iter().map(AsRef::as_ref).collect();
        let rows = stmt.query_map(params.as_slice(), |r| {
            Ok(HistoryRow {
                kind: r.get(0)?,
                uid: r.get(1)?,
                privilege: r.get(2)?,
                grant: r.get(3)?,
                row: ChainRow {
                    seq: r.get(4)?,
                    at_ms: r.get(5)?,
                    host: r.get(6)?,
                    line: r.get(7)?,
                    prev_hash: r.get(8)?,
                    hash: r.get(9)?,
                    format: r.get(10)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Audit records with `seq > after` written at or after `since_ms`, oldest first.
    pub fn audit_rows_since(
        &self,
        after: i64,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<super::AuditRow>, StoreError> {
        // Records are in time order but for clock changes: find the first one of the window
        // by its time (indexed), then read the chain from there in seq order.
        let start = if after > 0 || since_ms <= 0 {
            after
        } else {
            self.conn
                .prepare_cached(
                    "SELECT coalesce(min(seq), (SELECT coalesce(max(seq), 0) + 1 FROM audit)) - 1 \
                     FROM audit WHERE at_ms >= ?1",
                )?
                .query_row([since_ms], |r| r.get(0))?
        };
        self.audit_rows(start, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_db;

    fn key(kind: &str, uid: u32, privilege: &str) -> HistoryKey {
        HistoryKey {
            kind: kind.into(),
            uid: Some(uid),
            privilege: Some(privilege.into()),
            grant: None,
        }
    }

    #[test]
    fn history_pages_newest_first_by_user_and_privilege() {
        let (_dir, store) = temp_db();
        for i in 0..10i64 {
            let uid = 1000 + (i % 2) as u32;
            let k = key("request.denied", uid, if i < 5 { "a" } else { "b" });
            store
                .append_audit_indexed(i * 1000, "h", &format!("event=x n={i}"), Some(&k))
                .unwrap();
            // Records nobody asks about are not indexed.
            store
                .append_audit_indexed(i * 1000, "h", "event=daemon.reconciled live=0", None)
                .unwrap();
        }
        let f = HistoryFilter {
            uid: Some(1001),
            limit: 2,
            ..Default::default()
        };
        let page = store.history(&f).unwrap();
        let seqs: Vec<i64> = page.iter().map(|r| r.row.seq).collect();
        assert_eq!(seqs, vec![19, 15]);
        let next = store
            .history(&HistoryFilter {
                before_seq: Some(15),
                ..f.clone()
            })
            .unwrap();
        assert_eq!(
            next.iter().map(|r| r.row.seq).collect::<Vec<_>>(),
            vec![11, 7]
        );
        let b_since = store
            .history(&HistoryFilter {
                privilege: Some("b".into()),
                since_ms: Some(7000),
                until_ms: Some(9000),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            b_since.iter().map(|r| r.row.seq).collect::<Vec<_>>(),
            vec![17, 15]
        );
        assert!(store.verify_chain().unwrap().is_intact());
    }

    #[test]
    fn rows_since_start_at_the_window() {
        let (_dir, store) = temp_db();
        for i in 1..=5i64 {
            store.append_audit(i * 100, "h", "event=x").unwrap();
        }
        let rows = store.audit_rows_since(0, 300, 10).unwrap();
        assert_eq!(rows.first().map(|r| r.seq), Some(3));
        assert!(store.audit_rows_since(0, 999, 10).unwrap().is_empty());
    }
}
