//! The `audit` table: every audit record, hash-chained ([`crate::audit::chain`]).

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, insert_row};
use crate::audit::chain::{ChainReport, ChainRow};

/// Rows read per query when walking the whole chain: bounded memory on a long history.
const VERIFY_PAGE: u32 = 1000;

/// The newest record of the chain: its seq and hash, which go to syslog with the record so a
/// database whose newest records were deleted can be told from one that never had them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// One audit row as stored is the chain's record: the same fields, checked by the same code.
/// `host` is "" for rows from before schema version 2.
pub type AuditRow = ChainRow;

impl Store {
    /// Appends one audit line, written on `host`, to the hash chain; returns its seq.
    pub fn append_audit(&self, at_ms: i64, host: &str, line: &str) -> Result<i64, StoreError> {
        self.append_audit_head(at_ms, host, line)
            .map(|head| head.seq)
    }

    /// The hash of record `seq`, if there is such a record.
    pub fn audit_hash(&self, seq: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT hash FROM audit WHERE seq = ?1")?
            .query_row([seq], |r| r.get("hash"))
            .optional()?)
    }

    /// The newest record's seq (0 when there is none).
    pub fn last_audit_seq(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))?)
    }

    /// Like [`Store::append_audit`]; returns the new head of the chain.
    pub fn append_audit_head(
        &self,
        at_ms: i64,
        host: &str,
        line: &str,
    ) -> Result<ChainHead, StoreError> {
        self.in_write_transaction("audit_append", || {
            let last: Option<(i64, String)> = self
                .conn
                .query_row(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get("seq")?, r.get("hash")?)),
                )
                .optional()?;
            let (last_seq, prev_hash) = last.unwrap_or_default();
            // The seq is chosen here rather than by AUTOINCREMENT because the hash covers it.
            let row = ChainRow::seal(last_seq + 1, at_ms, host, line, &prev_hash);
            insert_row(
                &self.conn,
                "audit",
                &[
                    (":seq", &row.seq),
                    (":at_ms", &row.at_ms),
                    (":host", &row.host),
                    (":line", &row.line),
                    (":prev_hash", &row.prev_hash),
                    (":hash", &row.hash),
                    (":format", &row.format),
                ],
            )?;
            Ok(ChainHead {
                seq: row.seq,
                hash: row.hash,
            })
        })
    }

    /// Audit rows with `seq > after`, oldest first, at most `limit`.
    pub fn audit_rows(&self, after: i64, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT * FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt.query_map(params![after, limit], read_audit)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Walks the whole chain in pages and reports the first broken link, if any.
    pub fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        // After a retention purge the walk starts at the kept checkpoint.
        let (mut verifier, mut after) = self.verifier()?;
        loop {
            let rows = self.audit_rows(after, VERIFY_PAGE)?;
            let Some(last) = rows.last() else {
                return Ok(verifier.report());
            };
            after = last.seq;
            for row in rows {
                if !verifier.push(&row) {
                    return Ok(verifier.report());
                }
            }
        }
    }
}

fn read_audit(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: r.get("seq")?,
        at_ms: r.get("at_ms")?,
        host: r.get("host")?,
        line: r.get("line")?,
        prev_hash: r.get("prev_hash")?,
        hash: r.get("hash")?,
        format: r.get("format")?,
    })
}

#[cfg(test)]
mod tests {
    use crate::audit::chain::{self, Break, Problem};
    use crate::store::Store;
    use crate::store::tests::{TempDir, temp_db};

    /// A store with `n` records, seq 1..=n.
    fn chained(n: i64) -> (TempDir, Store) {
        let (dir, store) = temp_db();
        for i in 1..=n {
            let seq = store
                .append_audit(i * 10, "host-a", &format!("event=test n={i}"))
                .unwrap();
            assert_eq!(seq, i);
        }
        (dir, store)
    }

    fn broken(store: &Store) -> (Option<Break>, String) {
        let report = store.verify_chain().unwrap();
        (report.broken.clone(), report.to_string())
    }

    #[test]
    fn an_untouched_chain_verifies_across_pages() {
        let (_dir, store) = chained(2);
        let rows = store.audit_rows(0, 10).unwrap();
        assert!(rows.iter().all(|r| r.host == "host-a" && r.format == 2));
        assert_eq!(rows[1].prev_hash, rows[0].hash);
        // More than one page.
        store.begin_batch().unwrap();
        for i in 3..=2500 {
            store.append_audit(i, "host-a", "event=bulk").unwrap();
        }
        store.commit_batch().unwrap();
        assert_eq!(
            store.verify_chain().unwrap().to_string(),
            "audit chain intact: 2500 records, seq 1..2500"
        );
    }

    #[test]
    fn an_edited_line_is_named() {
        let (_dir, store) = chained(5);
        store
            .conn
            .execute("UPDATE audit SET line = 'event=forged' WHERE seq = 3", [])
            .unwrap();
        let (b, text) = broken(&store);
        assert_eq!(b.map(|b| (b.seq, b.problem)), Some((3, Problem::Edited)));
        assert_eq!(
            text,
            "audit chain broken at seq 3: the record was edited (its hash does not match)"
        );
    }

    #[test]
    fn an_edited_time_is_named() {
        let (_dir, store) = chained(5);
        store
            .conn
            .execute("UPDATE audit SET at_ms = at_ms + 1 WHERE seq = 2", [])
            .unwrap();
        let (b, _) = broken(&store);
        assert_eq!(b.map(|b| (b.seq, b.problem)), Some((2, Problem::Edited)));
    }

    #[test]
    fn a_deleted_middle_row_is_named() {
        let (_dir, store) = chained(5);
        store
            .conn
            .execute("DELETE FROM audit WHERE seq = 3", [])
            .unwrap();
        let (b, text) = broken(&store);
        assert_eq!(
            b.map(|b| (b.seq, b.problem)),
            Some((4, Problem::Seq { expected: 3 }))
        );
        assert!(
            text.starts_with("audit chain broken at seq 4: expected seq 3"),
            "{text}"
        );
        // Appending after the gap does not heal it.
        store.append_audit(60, "host-a", "event=later").unwrap();
        assert_eq!(broken(&store).0.map(|b| b.seq), Some(4));
    }

    #[test]
    fn two_swapped_rows_are_named() {
        let (_dir, store) = chained(5);
        store
            .conn
            .execute_batch(
                "UPDATE audit SET seq = -seq WHERE seq IN (3, 4);
                 UPDATE audit SET seq = 4 WHERE seq = -3;
                 UPDATE audit SET seq = 3 WHERE seq = -4;",
            )
            .unwrap();
        let (b, text) = broken(&store);
        assert_eq!(b.map(|b| (b.seq, b.problem)), Some((3, Problem::Unlinked)));
        assert!(
            text.contains("does not follow the record before it"),
            "{text}"
        );
    }

    /// A forger rewrites a record in format 1, whose hash does not cover seq and host, and
    /// makes that hash consistent.
    #[test]
    fn a_format_downgrade_is_named() {
        let (_dir, store) = chained(5);
        let row = &store.audit_rows(2, 1).unwrap()[0];
        let forged = chain::hash_v1(&row.prev_hash, row.at_ms, "event=forged");
        store
            .conn
            .execute(
                "UPDATE audit SET format = 1, line = 'event=forged', hash = ?1 WHERE seq = 3",
                [&forged],
            )
            .unwrap();
        let (b, text) = broken(&store);
        assert_eq!(
            b.map(|b| (b.seq, b.problem)),
            Some((3, Problem::Downgrade { from: 2, to: 1 }))
        );
        assert_eq!(
            text,
            "audit chain broken at seq 3: its hash format went back from 2 to 1 (a forged \
             downgrade)"
        );
    }
}
