//! The `outbox` table: notifications waiting for `jitd-notify`. The root daemon stays off the
//! network; it only writes here, in the same transaction as the audit record that caused the
//! notification, so a record is never on the chain without its notification or the reverse.
//!
//! Bounded: about [`MAX_ROWS`] rows are kept (never more than [`MAX_ROWS`] + [`TRIM_EVERY`]).
//! When the notifier is down long enough to fill it, the oldest rows (delivered ones first, then
//! undelivered) make room for new ones: a notification about a request from yesterday matters
//! less than one about a request now. The rows are counted every [`TRIM_EVERY`] notes, not at
//! each: counting is a walk over the table, and 10,000 grants ending together queue 10,000
//! notes in one tick.

use rusqlite::{Row, params};

use super::audit_log::ChainHead;
use super::{Store, StoreError};

/// Most rows kept (delivered and not) after a trim.
pub const MAX_ROWS: i64 = 10_000;
/// The table is trimmed when a note's id is a multiple of this.
pub const TRIM_EVERY: i64 = 64;

/// A notification to queue: `dedupe` is unique across the outbox (a second note with the same
/// id is dropped), `kind` the event kind (`request.pending`…), `body` its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub dedupe: String,
    pub kind: String,
    pub body: String,
}

/// One queued notification as the notifier fetches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub dedupe: String,
    pub at_ms: i64,
    pub kind: String,
    pub body: String,
}

impl Store {
    /// Appends the audit line and queues `notes` in one transaction.
    pub fn append_audit_noting(
        &self,
        at_ms: i64,
        host: &str,
        line: &str,
        key: Option<&crate::audit::index::HistoryKey>,
        notes: &[Note],
    ) -> Result<ChainHead, StoreError> {
        self.in_write_transaction("audit_noting", || {
            // The history index row too: one transaction for the record and all it implies.
            let head = self.append_audit_indexed(at_ms, host, line, key)?;
            self.queue_notes(at_ms, notes)?;
            Ok(head)
        })
    }

    /// Queues `notes` (no audit record of their own: e.g. an expiry warning).
    pub fn queue_notes(&self, at_ms: i64, notes: &[Note]) -> Result<usize, StoreError> {
        self.in_write_transaction("outbox_queue", || {
            let mut added = 0;
            let mut trim = false;
            for n in notes {
                let inserted = self
                    .conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO outbox (dedupe, at_ms, kind, body) \
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![n.dedupe, at_ms, n.kind, n.body])?;
                added += inserted;
                trim |= inserted > 0 && self.conn.last_insert_rowid() % TRIM_EVERY == 0;
            }
            if trim {
                self.trim_outbox()?;
            }
            Ok(added)
        })
    }

    /// Whether a note with this dedupe id was ever queued (and not trimmed away).
    pub fn note_queued(&self, dedupe: &str) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM outbox WHERE dedupe = ?1",
            [dedupe],
            |r| r.get::<_, i64>(0),
        )? > 0)
    }

    fn trim_outbox(&self) -> Result<(), StoreError> {
        let total: i64 = self
            .conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        let excess = total - MAX_ROWS;
        if excess > 0 {
            // `acked_ms = 0` is 0 for delivered rows: they go first, then the oldest.
            self.conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
                 ORDER BY (acked_ms = 0), id LIMIT ?1)",
                [excess],
            )?;
        }
        Ok(())
    }

    /// Undelivered notifications with `id > after`, oldest first, at most `limit`.
    pub fn outbox_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM outbox WHERE acked_ms = 0 AND id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit], read)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks `id` delivered; returns whether it was undelivered.
    pub fn ack_outbox(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE outbox SET acked_ms = ?2 WHERE id = ?1 AND acked_ms = 0",
            params![id, now_ms.max(1)],
        )?;
        Ok(n > 0)
    }

    /// The undelivered row `id`, if any.
    pub fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row("SELECT * FROM outbox WHERE id = ?1", [id], read)
            .optional()?)
    }
}

fn read(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get("id")?,
        dedupe: r.get("dedupe")?,
        at_ms: r.get("at_ms")?,
        kind: r.get("kind")?,
        body: r.get("body")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn note(d: &str) -> Note {
        Note {
            dedupe: d.into(),
            kind: "request.pending".into(),
            body: "{}".into(),
        }
    }

    #[test]
    fn notes_queue_once_in_order_and_ack_removes_them_from_the_fetch() {
        let dir = TempDir::new();
        let store = Store::open(&dir.db(), std::time::Duration::from_secs(1)).unwrap();
        store
            .append_audit_noting(1, "h", "event=x", None, &[note("a"), note("b")])
            .unwrap();
        store.queue_notes(2, &[note("a"), note("c")]).unwrap();
        let rows = store.outbox_after(0, 10).unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.dedupe.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(store.ack_outbox(rows[0].id, 5).unwrap());
        assert!(!store.ack_outbox(rows[0].id, 6).unwrap(), "acked once");
        assert_eq!(store.outbox_after(0, 10).unwrap().len(), 2);
        assert_eq!(store.last_audit_seq().unwrap(), 1);
    }

    #[test]
    fn a_full_outbox_makes_room_delivered_notes_first_then_the_oldest() {
        let dir = TempDir::new();
        let store = Store::open(&dir.db(), std::time::Duration::from_secs(1)).unwrap();
        let count = || -> i64 {
            store
                .conn
                .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
                .unwrap()
        };
        store.begin_batch().unwrap();
        for i in 0..MAX_ROWS {
            store.queue_notes(i, &[note(&format!("n{i}"))]).unwrap();
        }
        store.commit_batch().unwrap();
        assert_eq!(count(), MAX_ROWS);
        // Three delivered in the middle (ids count from 1): they go before any undelivered.
        for id in [500, 501, 502] {
            assert!(store.ack_outbox(id, 1).unwrap());
        }
        store.begin_batch().unwrap();
        for i in 0..2 * TRIM_EVERY {
            store.queue_notes(i, &[note(&format!("m{i}"))]).unwrap();
            assert!(count() <= MAX_ROWS + TRIM_EVERY, "unbounded at {}", count());
        }
        store.commit_batch().unwrap();
        let kept = |d: &str| store.note_queued(d).unwrap();
        assert!(!kept("n499") && !kept("n500") && !kept("n501"));
        assert!(kept("n498") && kept("n502") && kept(&format!("m{}", 2 * TRIM_EVERY - 1)));
        assert!(!kept("n0"), "the oldest undelivered made room");
    }
}
