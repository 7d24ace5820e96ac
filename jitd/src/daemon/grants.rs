//! The grant state machine. A grant moves `applying → active → removing → expired | revoked |
//! dropped`, or `applying → failed` (see [`GrantState::may_become`]); every move goes through
//! [`Core::transition`], which keeps the store, the live set and the gate index in step. The
//! system changes (enforcer) and the audit events sit around it in the order the invariants
//! need: intent before change on the way in, gate first and database last on the way out.

#![forbid(unsafe_code)]

use super::{Caller, Core, hints, info};
use crate::audit::AuditEvent;
use crate::client::{Error, GrantInfo};
use crate::clock::utc;
use crate::effects::enforce::Presence;
use crate::grant::{GrantRecord, GrantSpec, GrantState};
use crate::names::GrantId;
use crate::store::StoreError;

/// How a live grant ends.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    /// The final state.
    pub state: GrantState,
    pub why: &'a str,
    /// End the processes still holding it whatever the privilege's `on_end` says
    /// (`jitctl revoke --terminate`).
    pub terminate: bool,
}

impl<'a> Ending<'a> {
    pub fn new(state: GrantState, why: &'a str) -> Self {
        Self {
            state,
            why,
            terminate: false,
        }
    }
}

impl Core {
    /// Moves `g` to `to`: the store first, then the live set and the gate index. Entering
    /// `active` needs the durable record (no grant without one), committed with its
    /// `grant.applied` audit record; leaving the live states does
    /// not wait for the database: the move happens in memory whatever the store says, and the
    /// store's error is returned for the caller to audit. `end` is the final state a grant
    /// entering `removing` is headed for.
    fn transition(
        &mut self,
        g: &mut GrantRecord,
        to: GrantState,
        end: GrantState,
        why: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now().wall_ms;
        let recorded = match to {
            GrantState::Applying => Ok(()),
            // With its audit record, in one commit.
            GrantState::Active => self.store.together(|| {
                self.store.mark_active(&g.id)?;
                self.record(AuditEvent::GrantApplied {
                    grant: g.id.clone(),
                    uid: g.uid,
                    user: g.user.clone(),
                    privilege: g.privilege.clone(),
                    kind: g.kind(),
                    expires: utc(g.expires_ms),
                });
                Ok(())
            }),
            GrantState::Removing => self.store.mark_removing(&g.id, end, now, why),
            state => self.store.mark_ended(&g.id, state, now, why),
        };
        if to == GrantState::Active && recorded.is_err() {
            return recorded;
        }
        if to != GrantState::Active {
            g.ended_ms = now;
            g.end_reason = why.to_string();
        }
        g.state = to;
        match to {
            GrantState::Applying => {}
            GrantState::Active => {
                self.write_gate().insert(g);
                self.live.insert(Box::new(g.clone()));
            }
            GrantState::Removing => {
                self.write_gate().remove(g);
                self.live.insert(Box::new(g.clone()));
            }
            _ => {
                self.write_gate().remove(g);
                self.live.remove(&g.id);
            }
        }
        recorded
    }

    /// A live grant found at start-up (or by the sweep): into the live set and the gate.
    pub(super) fn track(&mut self, mut g: GrantRecord) {
        // Read from the database, its longer strings are copies of its own: share the ones the
        // system's record and the clock already hold (ten thousand grants on a busy host).
        if let Some(text) = self.enforcer.shared_rule(&g) {
            g.drop_in = text;
        }
        let boot_id = self.clock.now().boot_id;
        if g.boot_id == boot_id {
            g.boot_id = boot_id;
        }
        if g.state == GrantState::Active {
            self.write_gate().insert(&g);
        }
        self.live.insert(Box::new(g));
    }

    /// Intent, apply, outcome — with rollback at each step that can fail. `allowed` (the
    /// request's audit record) is committed with the intent; the system's change is prepared
    /// and checked while that commit syncs ([`crate::effects::enforce::Enforcer::stage`]).
    pub(super) fn apply_new(
        &mut self,
        mut g: GrantRecord,
        allowed: AuditEvent,
    ) -> Result<GrantRecord, Error> {
        if let GrantSpec::Group { group } = &g.spec
            && matches!(self.enforcer.presence(&g), Ok(Presence::Intact))
        {
            self.record(allowed);
            return Err(Error::PolicyDenied(format!(
                "{} is already a member of {group} outside jitd; nothing to grant",
                g.user
            )));
        }
        // Never inside a batch: `together` must be a real commit before anything is put in
        // place (no caller of this one opens a batch).
        let applied = match self.store.together(|| {
            self.store.insert(&g)?;
            self.record(allowed.clone());
            Ok(self.enforcer.stage(&g))
        }) {
            Ok(staged) => {
                crate::failpoint::hit("after-intent");
                staged.and_then(|finish| finish())
            }
            Err(e) => {
                // Rolled back with the intent (syslog has had it): written again on its own.
                self.record(allowed);
                let why = hints::not_recorded(e.is_busy(), &e);
                self.record(AuditEvent::GrantNotRecorded { error: why.clone() });
                return Err(Error::Unavailable(why));
            }
        };
        if let Err(e) = applied {
            let rolled_back = self.abandon(g.clone(), &e.to_string());
            self.apply_failed(&g.id, &e, rolled_back);
            return Err(Error::Unavailable(format!(
                "could not apply the grant: {e}"
            )));
        }
        crate::failpoint::hit("after-apply");
        if let Err(e) = self.transition(&mut g, GrantState::Active, GrantState::Active, "") {
            let rolled_back = self.abandon(g.clone(), &e.to_string());
            self.apply_failed(&g.id, &e, rolled_back);
            return Err(Error::Unavailable(format!(
                "cannot record the grant ({e}); {}",
                if rolled_back {
                    "it was rolled back"
                } else {
                    "it is being taken off"
                }
            )));
        }
        Ok(g)
    }

    fn apply_failed(&self, id: &GrantId, error: &dyn std::fmt::Display, rolled_back: bool) {
        self.record(AuditEvent::GrantApplyFailed {
            grant: id.clone(),
            error: error.to_string(),
            rolled_back,
        });
    }

    /// Takes off a grant that could not be put in place. If that fails too (a tool that died
    /// half-way), the grant stays in `removing`, never in the gate, and every tick retries
    /// until nothing of it is left. Returns whether it is off the system now.
    fn abandon(&mut self, mut g: GrantRecord, why: &str) -> bool {
        let undone = self.enforcer.remove(&g).is_ok();
        let to = if undone {
            GrantState::Failed
        } else {
            GrantState::Removing
        };
        if let Err(e) = self.transition(&mut g, to, GrantState::Failed, why) {
            self.db_write_failed(&g.id, &e);
        }
        undone
    }

    /// Revoke (admins) or drop (owner) a live grant; `terminate` also ends the processes that
    /// still hold it (admins only), whatever the privilege's `on_end` says. `admin` is the
    /// caller's standing, decided by the bus layer.
    pub fn revoke(
        &mut self,
        by: Caller,
        id: &str,
        reason: &str,
        terminate: bool,
    ) -> Result<GrantInfo, Error> {
        let Caller { uid: caller, admin } = by;
        self.usable()?;
        let id = GrantId::parse(id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        super::check_text("reason", reason, crate::client::MAX_REASON_CHARS)
            .map_err(Error::InvalidArgument)?;
        let Some(g) = self.live.get(&id).map(|g| (**g).clone()) else {
            return match self.store.get(&id) {
                // Already ended: what the caller wanted is true, so the answer is the grant as
                // it ended (scripts that revoke stay idempotent); nothing changes.
                Ok(Some(g)) if admin || g.uid == caller => Ok(info(&g)),
                _ => Err(Error::NotFound(format!("no grant {id}"))),
            };
        };
        let (state, why) = if g.uid == caller {
            (GrantState::Dropped, hints::dropped_by_owner(reason))
        } else if admin {
            (
                GrantState::Revoked,
                hints::revoked_by(&self.name_of(caller), reason),
            )
        } else {
            self.record(AuditEvent::RevokeDenied { grant: id, caller });
            // Same answer as for an unknown id: do not reveal other users' grant ids.
            return Err(Error::NotFound(format!("no grant {}", g.id)));
        };
        if terminate && !admin {
            return Err(Error::NotAllowed(
                "only admins may end processes with --terminate".into(),
            ));
        }
        let ended = self.end(
            g,
            Ending {
                state,
                why: &why,
                terminate,
            },
        );
        Ok(info(&ended))
    }

    /// Takes a grant back on the daemon's own account (its requester left before the answer),
    /// whoever holds it. Nothing happens if it is no longer live.
    pub fn withdraw(&mut self, id: &str, why: &str) {
        if let Ok(id) = GrantId::parse(id)
            && let Some(g) = self.live.get(&id).map(|g| (**g).clone())
        {
            self.end(g, Ending::new(GrantState::Revoked, why));
        }
    }

    /// Takes a live grant off: gate first, then durable intent, then the system, then the final
    /// record. Returns the record as ended (or still `removing` if the system change failed; the
    /// next tick retries).
    pub(super) fn end(&mut self, mut g: GrantRecord, how: Ending<'_>) -> GrantRecord {
        if let Err(e) = self.transition(&mut g, GrantState::Removing, how.state, how.why) {
            // Revocation proceeds without the database; the tombstone keeps a restart from
            // reading the stale row as live and putting the grant back.
            self.db_write_failed(&g.id, &e);
            self.tombstone(&g, &how);
        }
        self.finish_removal(g, how)
    }

    /// Takes a grant in `removing` (or an interrupted `applying`) off the system and records
    /// its final state; on failure it stays in `removing` and the next tick retries.
    pub(super) fn finish_removal(&mut self, g: GrantRecord, how: Ending<'_>) -> GrantRecord {
        self.write_gate().remove(&g);
        crate::failpoint::hit("before-remove");
        let removed = self.enforcer.remove(&g);
        self.conclude_removal(g, how, removed)
    }

    /// [`Self::end`] for many grants ending the same way at once (a shift's grants at 18:00):
    /// each is marked `removing` and leaves the gate first, then the system's files are each
    /// written once for all of them, then each is recorded as [`Self::end`] would.
    pub(super) fn end_all(&mut self, gs: Vec<GrantRecord>, how: Ending<'_>) {
        let mut marked = Vec::with_capacity(gs.len());
        for mut g in gs {
            if let Err(e) = self.transition(&mut g, GrantState::Removing, how.state, how.why) {
                self.db_write_failed(&g.id, &e);
                self.tombstone(&g, &how);
            }
            self.write_gate().remove(&g);
            marked.push(g);
        }
        crate::failpoint::hit("before-remove");
        let removed = self.enforcer.remove_many(&marked);
        for (g, removed) in marked.into_iter().zip(removed) {
            self.conclude_removal(g, how, removed);
        }
    }

    /// Records the outcome of taking `g` off the system.
    fn conclude_removal(
        &mut self,
        mut g: GrantRecord,
        how: Ending<'_>,
        removed: Result<(), crate::effects::GrantError>,
    ) -> GrantRecord {
        if let Err(e) = removed {
            self.record(AuditEvent::GrantRemoveFailed {
                grant: g.id.clone(),
                error: e.to_string(),
                retry: "next tick".into(),
            });
            if let Err(e) = self.transition(&mut g, GrantState::Removing, how.state, how.why) {
                self.db_write_failed(&g.id, &e);
            }
            return g;
        }
        crate::failpoint::hit("after-remove");
        if let Err(e) = self.transition(&mut g, how.state, how.state, how.why) {
            self.db_write_failed(&g.id, &e);
        }
        let (grant, uid, user, privilege, why) = (
            g.id.clone(),
            g.uid,
            g.user.clone(),
            g.privilege.clone(),
            how.why.to_string(),
        );
        self.record(match how.state {
            GrantState::Expired => AuditEvent::GrantExpired {
                grant,
                uid,
                user,
                privilege,
                why,
                late_ms: g.ended_ms - g.expires_ms,
            },
            GrantState::Dropped => AuditEvent::GrantDropped {
                grant,
                uid,
                user,
                privilege,
                why,
            },
            GrantState::Failed => AuditEvent::GrantRolledBack {
                grant,
                uid,
                user,
                privilege,
                why,
            },
            _ => AuditEvent::GrantRevoked {
                grant,
                uid,
                user,
                privilege,
                why,
            },
        });
        if how.state != GrantState::Failed {
            self.recall(&g, how.terminate);
        }
        self.sessions.retain(|_, s| s.grant != g.id);
        g
    }

    /// A database write that failed while a grant was on its way: audited, never fatal.
    pub(super) fn db_write_failed(&self, id: &GrantId, e: &StoreError) {
        self.record(AuditEvent::GrantDbWriteFailed {
            error: format!("{id}: {e}"),
        });
    }

    /// Removes every grant on the system and every jitd drop-in (package removal).
    pub fn purge(&mut self) -> usize {
        let live: Vec<GrantRecord> = self.live.values().map(|g| (**g).clone()).collect();
        let count = live.len();
        for g in live {
            self.end(g, Ending::new(GrantState::Revoked, "jitd purged"));
        }
        if let Ok(ids) = self.enforcer.owned_drop_ins() {
            for id in ids {
                let _ = self.enforcer.remove_orphan(&id);
            }
        }
        // Counted again from the records, now empty: the users' settings lines that outlive
        // their last grant a while go too.
        if let Err(e) = self.enforcer.recount() {
            self.record(AuditEvent::GrantCheckFailed {
                error: format!("per-user sudo settings at purge: {e}"),
            });
        }
        self.unroute();
        crate::ledger::trail::remove(&self.cfg);
        count
    }
}
