//! Ends the database could not record, rows it cannot read, and markers of grants applied
//! before jitd kept them.
//!
//! - A grant whose move to `removing` could not be committed (the database locked by another
//!   process, a full disk) gets a tombstone ([`crate::store::tombstones`]) before it comes off
//!   the system. At start-up, at every integrity check and in the sweep, each tombstoned grant
//!   whose row still says live is taken off again (idempotently) and its end recorded once the
//!   database takes writes. A tombstoned grant is never put back, whatever its row says.
//! - A live row that does not read back as a grant is set aside and audited, and the others
//!   carry on. Its grant is not tracked, so what it put on the system carries jitd's marker
//!   but no live grant: the start-up check removes it as unknown, and the sweep removes it at
//!   the deadline its marker carries.

#![forbid(unsafe_code)]

use std::collections::HashSet;

use super::Core;
use super::grants::Ending;
use crate::audit::AuditEvent;
use crate::clock::utc;
use crate::grant::GrantRecord;
use crate::names::GrantId;
use crate::store::StoreError;
use crate::store::tombstones::Tombstone;

impl Core {
    /// Keeps the end of `g` where a restart finds it without the database: called when the
    /// intent to end it could not be committed, before it comes off the system.
    pub(super) fn tombstone(&self, g: &GrantRecord, how: &Ending<'_>) {
        let stone = Tombstone {
            id: g.id.clone(),
            state: how.state,
            at_ms: g.ended_ms,
            why: how.why.to_string(),
        };
        let written = self.ended.add(&stone);
        self.record(AuditEvent::GrantTombstoned {
            grant: g.id.clone(),
            state: how.state.as_str().to_string(),
            ok: written.is_ok(),
            error: written.err().map(|e| e.to_string()).unwrap_or_default(),
        });
    }

    /// Reserves the tombstone file's room while there is room (start-up).
    pub(super) fn reserve_tombstones(&self) {
        if let Err(e) = self.ended.reserve() {
            self.record(AuditEvent::TombstonesFailed {
                error: format!("{}: {e}", self.ended.path().display()),
            });
        }
    }

    /// Finishes every tombstoned grant as ended: off the system, and on record when the
    /// database takes the write; the file is cleared once all are on record. Returns the ids
    /// tombstoned, which must not be treated as live whatever their rows say.
    pub fn settle_ended(&mut self) -> HashSet<GrantId> {
        let stones = match self.ended.read() {
            Ok(stones) => stones,
            Err(e) => {
                self.record(AuditEvent::TombstonesFailed {
                    error: format!("{}: {e}", self.ended.path().display()),
                });
                return HashSet::new();
            }
        };
        let mut all_recorded = true;
        for t in &stones {
            if self.live.contains_key(&t.id) {
                // Still coming off in this process: its removal is retried every tick, and
                // recorded when it is off.
                all_recorded = false;
                continue;
            }
            match self.store.get(&t.id) {
                Ok(Some(row)) if row.state.is_live() => {
                    all_recorded &= self.finish_tombstoned(row, t);
                }
                // On record already, or no row at all (a lost database): nothing to do.
                Ok(_) => {}
                Err(_) => all_recorded = false,
            }
        }
        if all_recorded
            && !stones.is_empty()
            && let Err(e) = self.ended.clear(&stones)
        {
            self.record(AuditEvent::TombstonesFailed {
                error: format!("{}: {e}", self.ended.path().display()),
            });
        }
        stones.into_iter().map(|t| t.id).collect()
    }

    /// Takes a tombstoned grant off (again: a crash may have come between the tombstone and the
    /// removal) and records its end; true when it is on record.
    fn finish_tombstoned(&mut self, row: GrantRecord, t: &Tombstone) -> bool {
        self.write_gate().remove(&row);
        if self.enforcer.remove(&row).is_err() {
            // Kept live in `removing`, out of the gate: every tick retries until it is off.
            self.end(row, Ending::new(t.state, &t.why));
            return false;
        }
        // While the database still refuses, the tombstone stays and this is tried again at
        // the next integrity check; only the success is worth a record.
        let recorded = self
            .store
            .mark_ended(&t.id, t.state, t.at_ms, &t.why)
            .is_ok();
        if recorded {
            self.record(AuditEvent::GrantEndRecorded {
                grant: t.id.clone(),
                state: t.state.as_str().to_string(),
                ended: utc(t.at_ms),
            });
        }
        recorded
    }

    /// The live grants in the database that can be trusted: rows that read back, less the
    /// tombstoned (settled first). Unreadable rows are audited and skipped.
    pub(super) fn live_rows(&mut self) -> Result<Vec<GrantRecord>, StoreError> {
        let tombstoned = self.settle_ended();
        let (rows, unreadable) = self.store.live_checked()?;
        for u in unreadable {
            self.record(AuditEvent::StoreRowUnreadable {
                grant: u.id,
                error: u.why,
                action: "skipped; what it put on the system is removed as unknown at start-up, \
                         or by the sweep at the deadline its marker carries"
                    .into(),
            });
        }
        Ok(rows
            .into_iter()
            .filter(|g| !tombstoned.contains(&g.id))
            .collect())
    }

    /// Writes the marker of a live grant applied before jitd kept one, so that it too ends
    /// without the database.
    pub(super) fn keep_marker(&self, g: &GrantRecord) {
        match self.enforcer.keep_marker(g) {
            Ok(true) => self.record(AuditEvent::GrantMarkerWritten {
                grant: g.id.clone(),
                what: "membership manifest".into(),
            }),
            Ok(false) => {}
            Err(e) => self.record(AuditEvent::GrantCheckFailed {
                error: format!("{}: cannot write its marker: {e}", g.id),
            }),
        }
    }
}
