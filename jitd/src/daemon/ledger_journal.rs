//! The command ledger's journal source in the core: sudo's syslog lines, read by
//! [`crate::ledger::journal`] without the lock, attributed like the JSON log's events, and
//! stored with the journal's cursor in one transaction (a restart neither loses nor repeats a
//! line). The journal holds every sudo use on the host: only lines of a user with a grant live
//! then (or ended within the after-expiry window) are recorded; standing sudo use is not
//! jitd's story.

#![forbid(unsafe_code)]

use super::Core;
use crate::audit::AuditEvent;
use crate::ledger::journal::JournalBatch;

/// The record's `path` for the journal's problems.
pub const JOURNAL_PATH: &str = "journal";

impl Core {
    /// Where reading the journal stopped (`None` inside: never read) and the time now (where
    /// a first look starts from); `None`: the database cannot say now (the reader must not
    /// start from a guess).
    pub fn journal_start(&self) -> Option<(Option<String>, i64)> {
        let cursor = self.store.journal_cursor().ok()?;
        Some((cursor, self.clock.now().wall_ms))
    }

    /// Records what the journal gave and the cursor after it, atomically; false when nothing
    /// was kept (the same lines are read again).
    pub fn ingest_journal(&mut self, batch: &JournalBatch) -> bool {
        self.briefly(|core| core.ingest_journal_now(batch))
    }

    fn ingest_journal_now(&mut self, batch: &JournalBatch) -> bool {
        if self.in_safe_mode() || self.store.begin_batch().is_err() {
            return false;
        }
        for (problem, action) in &batch.problems {
            self.record(AuditEvent::LedgerProblem {
                uid: 0,
                path: JOURNAL_PATH.into(),
                problem: problem.clone(),
                action: action.clone(),
            });
        }
        for (uid, e) in &batch.events {
            self.ingest_attributed(*uid, e);
        }
        let kept = batch
            .cursor
            .as_deref()
            .is_none_or(|c| self.store.set_journal_cursor(c).is_ok());
        if !kept {
            self.store.rollback_batch();
            return false;
        }
        self.store.commit_batch().is_ok()
    }
}
