//! Bringing the system and the database into agreement: at start-up (after a crash, a reboot,
//! an upgrade) and periodically while running (someone edited, deleted or copied a drop-in, or
//! removed a membership behind jitd's back).

#![forbid(unsafe_code)]

use super::Core;
use super::grants::Ending;
use std::sync::Arc;

use crate::accounts::AccountsOnce;
use crate::audit::AuditEvent;
use crate::clock::started_in_future;
use crate::effects::enforce::Presence;
use crate::grant::{GrantRecord, GrantState};
use crate::store::StoreError;

impl Core {
    /// Brings the system and the database into agreement before the daemon serves anyone:
    /// interrupted applies are undone, interrupted removals finished, expired grants removed,
    /// live grants missing from the system put back, tampered ones rewritten, and drop-ins
    /// carrying jitd's marker that the database does not know removed. Files jitd did not
    /// write are reported and left alone.
    pub fn reconcile(&mut self) -> Result<(), StoreError> {
        match self.enforcer.remove_stale_temp() {
            Ok(0) => {}
            Ok(n) => self.record(AuditEvent::ReconcileTempRemoved { count: n as u64 }),
            Err(e) => self.record(AuditEvent::ReconcileTempFailed {
                error: e.to_string(),
            }),
        }
        if let Err(e) = self.enforcer.recount() {
            self.record(AuditEvent::GrantCheckFailed {
                error: format!("per-user sudo settings: {e}"),
            });
        }
        self.reserve_tombstones();
        let gone = self.load_sessions();
        let records = self.live_rows()?;
        let now = self.clock.now();
        let accounts = Arc::clone(&self.accounts);
        let once = AccountsOnce::new(accounts.as_ref());
        for g in records {
            match g.state {
                GrantState::Applying => {
                    // The requester never got a success reply: undo rather than complete.
                    self.finish_removal(
                        g,
                        Ending::new(GrantState::Failed, "interrupted before it took effect"),
                    );
                }
                GrantState::Removing => {
                    let end = self.store.end_state(&g.id).unwrap_or(GrantState::Revoked);
                    let why = if g.end_reason.is_empty() {
                        "removal interrupted".to_string()
                    } else {
                        g.end_reason.clone()
                    };
                    self.finish_removal(g, Ending::new(end, &why));
                }
                _ if g.deadline().is_due(&now) || started_in_future(g.starts_ms, &now) => {
                    self.end(g, Ending::new(GrantState::Expired, "expired"));
                }
                _ if self.end_if_account_changed(&g, once.binding_change(g.uid, &g.user)) => {}
                _ => {
                    self.check_on_system(&g);
                    self.track(g);
                }
            }
        }
        self.remove_orphans();
        self.audit_drift();
        if let Ok(paths) = self.enforcer.foreign_lookalikes() {
            for path in paths {
                self.record(AuditEvent::ReconcileForeignFile {
                    path: path.display().to_string(),
                    action: "left untouched".into(),
                });
            }
        }
        self.finish_sessions(gone);
        // Requests that waited while jitd was down: expired by the clock, withdrawn when the
        // policy no longer allows them; the rest wait on.
        self.expire_requests();
        self.recheck_requests();
        self.record(AuditEvent::DaemonReconciled {
            live: self.live.len() as u64,
        });
        Ok(())
    }

    /// Whether `g` is on the system exactly as jitd wrote it; if someone else deleted, edited or
    /// re-permissioned it, or removed the membership, it is put back and the finding audited.
    fn check_on_system(&self, g: &GrantRecord) {
        self.keep_marker(g);
        match self.enforcer.presence(g) {
            Ok(Presence::Intact) => {}
            Ok(state) => {
                let what = match &state {
                    Presence::Missing => "missing".to_string(),
                    Presence::Tampered(why) => format!("tampered: {why}"),
                    Presence::Intact => String::new(),
                };
                let outcome = self.enforcer.apply(g);
                self.record(AuditEvent::GrantRepaired {
                    grant: g.id.clone(),
                    found: what,
                    ok: outcome.is_ok(),
                    error: outcome.err().map(|e| e.to_string()).unwrap_or_default(),
                });
            }
            Err(e) => self.record(AuditEvent::GrantCheckFailed {
                error: format!("{}: {e}", g.id),
            }),
        }
    }

    /// The periodic integrity check (every `integrity_check_secs`): each live grant is checked
    /// and repaired as at start-up, and a drop-in carrying jitd's marker that no live grant
    /// owns (copied, or left by someone else) is removed.
    pub fn check_integrity(&mut self) {
        self.settle_ended();
        // A grant at or past its end is left to `tick`: the sweep may be removing it right
        // now, and putting it back would revive it.
        let now = self.clock.now();
        let active: Vec<GrantRecord> = self
            .live
            .values()
            .filter(|g| {
                g.state == GrantState::Active
                    && !g.deadline().is_due(&now)
                    && !started_in_future(g.starts_ms, &now)
            })
            .map(|g| (**g).clone())
            .collect();
        let accounts = Arc::clone(&self.accounts);
        let once = AccountsOnce::new(accounts.as_ref());
        for g in &active {
            if !self.end_if_account_changed(g, once.binding_change(g.uid, &g.user)) {
                self.check_on_system(g);
            }
        }
        self.remove_orphans();
        self.audit_drift();
        self.check_routes();
        if let Err(e) = self.enforcer.tidy() {
            self.record(AuditEvent::GrantCheckFailed {
                error: format!("per-user sudo settings: {e}"),
            });
        }
        // The check's working copy of every live grant is freed: give its pages back.
        crate::sys::heap::give_back_free();
    }

    /// A privilege's shared sudoers file that a change found deleted or edited behind jitd's
    /// back (and rewrote from its record): each live grant in it is reported repaired.
    pub(super) fn audit_drift(&self) {
        for (privilege, found) in self.enforcer.drift() {
            for g in self.live.values().filter(|g| g.privilege == privilege) {
                self.record(AuditEvent::GrantRepaired {
                    grant: g.id.clone(),
                    found: format!("its privilege's sudoers file {found}"),
                    ok: true,
                    error: String::new(),
                });
            }
        }
    }

    /// Ends `g` when the account it was made for is no longer the account of its uid and name
    /// (renamed, deleted, either reused by a new account): a grant is for the person who asked,
    /// and the uid in a drop-in or the gate index must not carry it to someone else. Returns
    /// whether it ended.
    fn end_if_account_changed(&mut self, g: &GrantRecord, found: Option<String>) -> bool {
        let Some(found) = found else {
            return false;
        };
        self.record(AuditEvent::GrantAccountChanged {
            grant: g.id.clone(),
            uid: g.uid,
            user: g.user.clone(),
            found: found.clone(),
        });
        let why = format!("account changed: {found}");
        self.end(g.clone(), Ending::new(GrantState::Revoked, &why));
        true
    }

    /// Removes drop-ins carrying jitd's marker whose grant is not live.
    fn remove_orphans(&self) {
        match self.enforcer.owned_drop_ins() {
            Ok(ids) => {
                for id in ids.into_iter().filter(|id| !self.live.contains_key(id)) {
                    let outcome = self.enforcer.remove_orphan(&id);
                    self.record(AuditEvent::ReconcileOrphanRemoved {
                        grant: id,
                        ok: outcome.is_ok(),
                    });
                }
            }
            Err(e) => self.record(AuditEvent::ReconcileScanFailed {
                error: e.to_string(),
            }),
        }
    }

    /// Loads the live set without touching the system (for the one-shot sweep).
    pub fn load_live(&mut self) -> Result<(), StoreError> {
        for g in self.live_rows()? {
            self.track(g);
        }
        Ok(())
    }
}
