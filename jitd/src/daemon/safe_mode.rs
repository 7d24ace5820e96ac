//! Revocation without the database. Every grant jitd puts on the system carries a marker with
//! its deadline: the drop-in's second line, the membership's manifest. When the state database
//! is corrupt, unreadable or gone, the sweep and the daemon end grants from those markers
//! alone, by the wall clock.
//!
//! Safe mode: a daemon whose database cannot be opened or read does not exit (systemd would
//! restart it in a loop, and nothing would end grants). It runs on an empty database in
//! memory, refuses every request, listing and revocation with a message that says what is
//! wrong and what to do, keeps nothing, and ends what is on the system at the deadlines its
//! markers carry. Gate grants have no marker; the gate refuses while in safe mode.

#![forbid(unsafe_code)]

use super::{Core, Parts};
use crate::audit::AuditEvent;
use crate::client::Error;
use crate::clock::utc;
use crate::store::{Store, StoreError};

impl Core {
    /// A core for a daemon or sweep whose state database cannot be used (`error` says why):
    /// no grants, nothing written, every request refused.
    pub fn open_unusable(parts: Parts, error: &StoreError) -> Result<Self, StoreError> {
        let db = parts.cfg.db_path().display().to_string();
        let recover = match error {
            // Moving it aside would lose a newer release's records: go forward instead.
            StoreError::TooNew { .. } => {
                "To recover: install the jitd release that wrote it (a database is never \
                 downgraded)."
                    .to_string()
            }
            _ => format!(
                "To recover: stop jitd, move the database aside (mv {db} {db}.broken), start \
                 jitd: it removes every grant the new database does not know."
            ),
        };
        let why = format!(
            "jitd is in safe mode: the state database {db} is unusable ({error}). No grant can \
             be requested, listed or revoked until it is repaired; grants already on the system \
             still end at their deadline. {recover} See jitd(8)."
        );
        Ok(Self::with_store(parts, Store::open_in_memory()?, Some(why)))
    }

    /// Whether this core runs without its database.
    pub fn in_safe_mode(&self) -> bool {
        self.unusable.is_some()
    }

    /// Refuses with the safe mode's message when the database is unusable.
    pub(super) fn usable(&self) -> Result<(), Error> {
        match &self.unusable {
            None => Ok(()),
            Some(why) => Err(Error::Unavailable(why.clone())),
        }
    }

    /// Enters safe mode: says why (syslog), then ends what is past its deadline.
    pub fn start_safe_mode(&mut self, error: &StoreError) {
        self.record(AuditEvent::DaemonSafeMode {
            error: error.to_string(),
            action: "serving no new grants; ending grants by the deadlines their markers carry; \
                     move the database aside and restart jitd to recover"
                .into(),
        });
        self.sweep_markers(true);
    }

    /// Takes off everything carrying jitd's marker whose deadline has passed, except grants
    /// this core tracks (it ends those itself, and records them). `report` audits markers that
    /// cannot be read (once per run, not every second). Returns how many came off.
    pub fn sweep_markers(&mut self, report: bool) -> usize {
        let now = self.clock.now().wall_ms;
        let (marked, unreadable) = self.enforcer.marked();
        if report {
            for e in unreadable {
                self.record(AuditEvent::MarkerUnreadable {
                    error: e.to_string(),
                });
            }
        }
        let mut removed = 0;
        for m in marked
            .iter()
            .filter(|m| m.until_ms <= now && !self.live.contains_key(&m.grant))
        {
            let out = self.enforcer.remove_marked(m);
            removed += usize::from(out.is_ok());
            self.record(AuditEvent::MarkerExpired {
                grant: m.grant.clone(),
                what: m.what.to_string(),
                until: utc(m.until_ms),
                ok: out.is_ok(),
                error: out.err().map(|e| e.to_string()).unwrap_or_default(),
            });
        }
        removed
    }
}
