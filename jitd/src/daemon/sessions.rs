//! Elevated sessions pam_jit reports: what runs with a grant, so that its end can recall it
//! (`recall`).

#![forbid(unsafe_code)]

use super::Core;
use super::grants::Ending;
use crate::audit::AuditEvent;
use crate::client::{Error, SessionInfo};
use crate::grant::GrantState;
use crate::names::{GrantId, SessionId};
use crate::session::Session;

impl Core {
    pub fn session_opened(&mut self, s: SessionInfo) -> Result<String, Error> {
        let grant =
            GrantId::parse(&s.grant_id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let id = SessionId::from_random(
            crate::sys::random_bits().map_err(|e| Error::Unavailable(e.to_string()))?,
        );
        self.record(AuditEvent::SessionOpened {
            session: id.to_string(),
            grant: s.grant_id.clone(),
            uid: s.uid,
            pid: s.pid,
            service: s.service.clone(),
            tty: s.tty.clone(),
            rhost: s.rhost.clone(),
        });
        let now = self.clock.now();
        let session = Session {
            id: id.clone(),
            grant,
            uid: s.uid,
            pid: s.pid,
            service: s.service,
            tty: s.tty,
            rhost: s.rhost,
            start_ticks: self.recaller.start_ticks(s.pid).unwrap_or(0),
            boot_id: now.boot_id.to_string(),
            opened_ms: now.wall_ms,
        };
        // Kept in the database so a restart (an upgrade, a crash) still knows what runs with
        // a grant. Without it the session still works; only that memory is lost.
        if let Err(e) = self.store.insert_session(&session) {
            self.record(AuditEvent::SessionDbWriteFailed {
                error: format!("{id}: {e}"),
            });
        }
        self.sessions.insert(id.clone(), session);
        Ok(id.to_string())
    }

    pub fn session_closed(&mut self, id: &str) -> Result<(), Error> {
        let Ok(id) = SessionId::parse(id) else {
            return Err(Error::NotFound(format!("no open session {id:?}")));
        };
        let id = &id;
        let recorded = self.store.close_session(id, self.clock.now().wall_ms);
        match (self.sessions.remove(id), recorded) {
            (Some(s), recorded) => {
                if let Err(e) = recorded {
                    self.record(AuditEvent::SessionDbWriteFailed {
                        error: format!("{id}: {e}"),
                    });
                }
                self.close_session(id, s, "closed");
                Ok(())
            }
            // Its grant ended while it ran: only the record is left to close.
            (None, Ok(true)) => {
                self.record(AuditEvent::SessionRecordClosed {
                    session: id.to_string(),
                });
                Ok(())
            }
            (None, _) => Err(Error::NotFound(format!("no open session \"{id}\""))),
        }
    }

    /// Audits the end of a session and ends its grant if the privilege is session-bound.
    fn close_session(&mut self, id: &SessionId, s: Session, how: &str) {
        let secs = (self.clock.now().wall_ms - s.opened_ms) / 1000;
        self.record(AuditEvent::SessionClosed {
            session: id.to_string(),
            grant: s.grant.to_string(),
            uid: s.uid,
            seconds: secs,
            how: how.to_string(),
        });
        let bound = self
            .live
            .get(&s.grant)
            .filter(|g| {
                self.policy
                    .privilege(&g.privilege)
                    .is_some_and(|p| p.session_bound)
            })
            .map(|g| (**g).clone());
        if let Some(g) = bound {
            let why = format!("session {id} {how} (session-bound privilege)");
            self.end(g, Ending::new(GrantState::Revoked, &why));
        }
    }

    /// Whether the session's process is the one pam_jit reported: same boot, same pid, same
    /// start time. A pid alone may have been given to an unrelated process since.
    pub(super) fn still_running(&self, s: &Session) -> bool {
        s.pid > 1
            && s.start_ticks != 0
            && *s.boot_id == *self.clock.now().boot_id
            && self.recaller.start_ticks(s.pid) == Some(s.start_ticks)
    }

    /// At start-up, before grants are reconciled: sessions recorded as open whose process still
    /// runs are watched again, so the grants that end now can recall them. Returns those whose
    /// process is gone: they closed while jitd could not hear it (pam_jit's close never fails
    /// the session), to be closed by [`Core::finish_sessions`].
    pub(super) fn load_sessions(&mut self) -> Vec<Session> {
        let open = match self.store.open_sessions() {
            Ok(open) => open,
            Err(e) => {
                self.record(AuditEvent::ReconcileSessionsFailed {
                    error: e.to_string(),
                });
                return Vec::new();
            }
        };
        let mut gone = Vec::new();
        for s in open {
            if self.still_running(&s) {
                self.sessions.insert(s.id.clone(), s);
            } else {
                gone.push(s);
            }
        }
        gone
    }

    /// At start-up, after grants are reconciled: sessions that ended while jitd was down are
    /// closed (ending a session-bound grant); sessions still running whose grant ended while
    /// jitd was down (by the sweep) are recalled now if the privilege says so.
    pub(super) fn finish_sessions(&mut self, gone: Vec<Session>) {
        let now = self.clock.now().wall_ms;
        for s in gone {
            let id = s.id.clone();
            if let Err(e) = self.store.close_session(&id, now) {
                self.record(AuditEvent::SessionDbWriteFailed {
                    error: format!("{id}: {e}"),
                });
            }
            self.close_session(&id, s, "ended while jitd was down");
        }
        let orphaned: Vec<GrantId> = self
            .sessions
            .values()
            .map(|s| s.grant.clone())
            .filter(|grant| !self.live.contains_key(grant))
            .collect();
        for grant in orphaned {
            if let Ok(Some(g)) = self.store.get(&grant) {
                self.recall(&g, false);
            }
            self.sessions.retain(|_, s| s.grant != grant);
        }
    }
}
