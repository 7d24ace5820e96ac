//! Elevated sessions pam_jit reports, and recall: what still runs with a grant that ended.
//! Which processes to end is planned here from a process snapshot; ending them is the
//! recaller's job, on its own thread.

#![forbid(unsafe_code)]

use super::Core;
use super::grants::Ending;
use crate::audit::AuditEvent;
use crate::client::{Error, SessionInfo};
use crate::effects::recall::{self, Job, ProcInfo};
use crate::grant::{GrantRecord, GrantState};
use crate::names::{GrantId, SessionId};
use crate::policy::{OnEnd, PrivilegeKind};
use crate::session::Session;

/// The processes to end for a grant of `uid`: for a group grant every process of the user that
/// still carries `gid`; otherwise the process trees of the grant's live sessions. Never pid 1
/// or jitd itself.
pub fn plan_recall(
    procs: &[ProcInfo],
    uid: u32,
    group: Option<u32>,
    session_roots: &[u32],
    own_pid: u32,
) -> Vec<u32> {
    let mut pids: Vec<u32> = match group {
        Some(gid) => recall::holding_group(procs, uid, gid),
        None => session_roots
            .iter()
            .flat_map(|&root| recall::tree(procs, root))
            .collect(),
    };
    pids.retain(|&pid| pid > 1 && pid != own_pid);
    pids.sort_unstable();
    pids.dedup();
    pids
}

impl Core {
    /// Ends what still runs with an ended grant's privilege, when the privilege (or an admin's
    /// `--terminate`) says so. The signals go out on the recaller's thread.
    pub(super) fn recall(&mut self, g: &GrantRecord, terminate: bool) {
        let Some(p) = self.policy.privilege(&g.privilege) else {
            return;
        };
        if !matches!(p.on_end, OnEnd::Terminate) && !terminate {
            return;
        }
        let group = match &p.kind {
            PrivilegeKind::Group { gid, .. } => Some(*gid),
            PrivilegeKind::Sudo { .. } | PrivilegeKind::Gate => None,
        };
        let roots: Vec<u32> = self
            .sessions
            .values()
            .filter(|s| s.grant == g.id && self.still_running(s))
            .map(|s| s.pid)
            .collect();
        let pids = plan_recall(
            &self.recaller.scan(),
            g.uid,
            group,
            &roots,
            std::process::id(),
        );
        if pids.is_empty() {
            return;
        }
        self.record(AuditEvent::RecallStarted {
            grant: g.id.clone(),
            uid: g.uid,
            pids: pids.clone(),
        });
        self.recaller.submit(Job {
            grant: g.id.clone(),
            pids,
        });
    }

    /// Records the recalls the recaller finished since the last look.
    pub(super) fn record_recalls(&mut self) {
        for done in self.recaller.finished() {
            self.recall_finished(&done);
        }
    }

    fn recall_finished(&self, done: &recall::Finished) {
        self.record(AuditEvent::RecallFinished {
            grant: done.grant.clone(),
            terminated: done.outcome.terminated.clone(),
            killed: done.outcome.killed.clone(),
        });
    }

    /// Waits for every recall in flight and records it (the one-shot sweep, before it exits).
    pub fn settle(&mut self) {
        for done in self.recaller.wait() {
            self.recall_finished(&done);
        }
    }

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
            boot_id: now.boot_id,
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
            .values()
            .find(|g| g.id == s.grant)
            .filter(|g| {
                self.policy
                    .privilege(&g.privilege)
                    .is_some_and(|p| p.session_bound)
            })
            .cloned();
        if let Some(g) = bound {
            let why = format!("session {id} {how} (session-bound privilege)");
            self.end(g, Ending::new(GrantState::Revoked, &why));
        }
    }

    /// Whether the session's process is the one pam_jit reported: same boot, same pid, same
    /// start time. A pid alone may have been given to an unrelated process since.
    fn still_running(&self, s: &Session) -> bool {
        s.pid > 1
            && s.start_ticks != 0
            && s.boot_id == self.clock.now().boot_id
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

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, ppid: u32, uid: u32, groups: &[u32]) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            uids: [uid; 4],
            gids: [uid; 4],
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn recall_plans_the_group_holders_or_the_session_trees_and_never_init_or_jitd() {
        let procs = [
            proc(1, 0, 0, &[]),
            proc(100, 1, 1001, &[998]),
            proc(101, 100, 1001, &[]),
            proc(200, 1, 1002, &[998]),
            proc(300, 1, 0, &[]),
            proc(301, 300, 0, &[]),
            proc(302, 301, 0, &[]),
        ];
        assert_eq!(plan_recall(&procs, 1001, Some(998), &[], 42), vec![100]);
        assert_eq!(
            plan_recall(&procs, 1001, None, &[300], 42),
            vec![300, 301, 302]
        );
        assert_eq!(plan_recall(&procs, 1001, None, &[300], 301), vec![300, 302]);
        assert!(
            plan_recall(&procs, 1001, None, &[1], 42)
                .iter()
                .all(|&p| p != 1)
        );
        assert!(plan_recall(&procs, 1001, None, &[], 42).is_empty());
    }
}
