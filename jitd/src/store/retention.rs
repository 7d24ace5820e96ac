//! Audit retention: records older than `audit_retention_days` go, oldest first, in chunks.
//! Before a chunk goes, the hash of its newest record is kept as the chain's checkpoint
//! (`audit_checkpoint`), so the records that remain still verify: the walk starts from the
//! checkpoint instead of the chain's first record. The newest record always stays, so the
//! chain goes on from it.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::audit::chain::Verifier;

/// Where the chain starts after a purge: the last purged record's seq, hash and format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub format: u32,
    pub at_ms: i64,
    /// When the purge that set it ran.
    pub purged_ms: i64,
}

impl Store {
    pub fn audit_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT seq, hash, format, at_ms, purged_ms FROM audit_checkpoint")?
            .query_row([], |r| {
                Ok(Checkpoint {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                    format: r.get(2)?,
                    at_ms: r.get(3)?,
                    purged_ms: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// Purges at most `chunk` records written before `cutoff_ms` (never the newest), after
    /// moving the checkpoint to the last of them; returns the checkpoint and how many went,
    /// or `None` when nothing was due.
    pub fn purge_audit_before(
        &self,
        cutoff_ms: i64,
        chunk: i64,
        now_ms: i64,
    ) -> Result<Option<(Checkpoint, i64)>, StoreError> {
        self.in_write_transaction("audit_purge", || {
            let (first, last): (Option<i64>, Option<i64>) =
                self.conn
                    .query_row("SELECT min(seq), max(seq) FROM audit", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(None);
            };
            // The first record still within retention; records after a clock set back stay.
            let keep_from: i64 = self.conn.query_row(
                "SELECT coalesce(min(seq), ?2) FROM audit WHERE at_ms >= ?1",
                params![cutoff_ms, last],
                |r| r.get(0),
            )?;
            let upto = (keep_from - 1).min(last - 1).min(first + chunk - 1);
            if upto < first {
                return Ok(None);
            }
            let (hash, format, at_ms): (String, u32, i64) = self.conn.query_row(
                "SELECT hash, format, at_ms FROM audit WHERE seq = ?1",
                [upto],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let cp = Checkpoint {
                seq: upto,
                hash,
                format,
                at_ms,
                purged_ms: now_ms,
            };
            self.conn.execute(
                "INSERT OR REPLACE INTO audit_checkpoint (id, seq, hash, format, at_ms, purged_ms) \
                 VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                params![cp.seq, cp.hash, cp.format, cp.at_ms, cp.purged_ms],
            )?;
            let gone = self
                .conn
                .execute("DELETE FROM audit WHERE seq <= ?1", [upto])?;
            self.conn
                .execute("DELETE FROM history WHERE seq <= ?1", [upto])?;
            Ok(Some((cp, gone as i64)))
        })
    }

    /// The verifier for this database: from the chain's start, or from its checkpoint.
    pub(super) fn verifier(&self) -> Result<(Verifier, i64), StoreError> {
        Ok(match self.audit_checkpoint()? {
            Some(cp) => (Verifier::resume(cp.seq, &cp.hash, cp.format), cp.seq),
            None => (Verifier::new(), 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::temp_db;

    #[test]
    fn purged_chains_still_verify_and_keep_their_newest_record() {
        let (_dir, store) = temp_db();
        for i in 1..=10i64 {
            store.append_audit(i * 1000, "h", "event=x").unwrap();
        }
        // A chunk at a time, oldest first.
        let (cp, gone) = store.purge_audit_before(7500, 3, 99).unwrap().unwrap();
        assert_eq!((cp.seq, gone), (3, 3));
        let (cp, gone) = store.purge_audit_before(7500, 100, 99).unwrap().unwrap();
        assert_eq!((cp.seq, gone), (7, 4));
        assert_eq!(store.purge_audit_before(7500, 100, 99).unwrap(), None);
        let report = store.verify_chain().unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!((report.first_seq, report.last_seq), (Some(8), Some(10)));
        // Everything due: the newest stays, and the chain goes on.
        store.purge_audit_before(i64::MAX, 100, 99).unwrap();
        let seq = store.append_audit(11_000, "h", "event=y").unwrap();
        assert_eq!(seq, 11);
        assert!(store.verify_chain().unwrap().is_intact());
        // A forged checkpoint shows.
        store
            .conn
            .execute("UPDATE audit_checkpoint SET hash = 'x'", [])
            .unwrap();
        assert!(!store.verify_chain().unwrap().is_intact());
    }
}
