//! The command ledger in the core: sudo's events, read by the tailer (`crate::ledger`) without
//! the lock, are attributed here to grants and written to the audit trail, with the position
//! reached, in one transaction, so a restart neither loses nor repeats an event. Also the
//! count of refusals behind the `denial-burst` alert.
//!
//! Attribution: an accept or reject of user `uid` at time `t` belongs to the grant of `uid`
//! live at `t` (of two, the one whose commands hold the argv, else the newest); with none, to
//! the grant of `uid` that ended last within [`AFTER_EXPIRY_MS`] before `t`, flagged
//! `after_expiry`. An exit belongs to the accept it ends (by sudo's uuid).

#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::Core;
use crate::audit::AuditEvent;
use crate::grant::GrantSpec;
use crate::ledger::Batch;
use crate::ledger::alerts::{self, Context};
use crate::ledger::parse::{SudoEvent, SudoKind};
use crate::store::LedgerPosition;

/// How long after a grant's end a sudo attempt of its user is still its story.
pub const AFTER_EXPIRY_MS: i64 = 10 * 60 * 1000;

/// How long the ledger's work waits for a database another process holds, under the core's
/// lock: short, so expiry and requests never queue behind the ledger; the work is tried again
/// on the next look.
const LEDGER_BUSY: std::time::Duration = std::time::Duration::from_millis(50);

/// Recent refusals per uid, for `denial-burst`.
#[derive(Default)]
pub struct Refusals(Mutex<HashMap<u32, VecDeque<i64>>>);

impl Refusals {
    /// Notes a refusal of `uid` at `at_ms`; true when it makes `limit` within `window_ms`
    /// (then the count starts again, so a flood raises one alert per `limit` refusals).
    fn note(&self, uid: u32, at_ms: i64, limit: u32, window_ms: i64) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let q = map.entry(uid).or_default();
        q.push_back(at_ms);
        while q.front().is_some_and(|&t| t <= at_ms - window_ms) {
            q.pop_front();
        }
        if limit > 0 && q.len() >= limit as usize {
            q.clear();
            return true;
        }
        false
    }
}

/// Which grant an event belongs to.
struct Owner {
    grant: String,
    live: bool,
    after_expiry: bool,
}

impl Core {
    /// What a sudo grant's drop-in adds for the ledger: sudo's event log for `uid`, when the
    /// privilege records commands and sudo is the classic one (sudo-rs has no `logfile`).
    pub(super) fn ledger_defaults(&self, uid: u32, p: &crate::policy::Privilege) -> String {
        let classic = matches!(
            self.flavor,
            crate::effects::sudoers::SudoFlavor::Classic { .. }
        );
        use crate::policy::Record;
        if p.record == Record::None || !classic {
            return String::new();
        }
        crate::ledger::ensure_dir(&self.cfg);
        crate::ledger::defaults(&self.cfg, uid, p.record == Record::Io).unwrap_or_default()
    }

    /// Purges one chunk of audit records older than `audit_retention_days`; true when there
    /// may be more to purge.
    pub fn purge_old_audit(&mut self, chunk: i64) -> bool {
        let days = i64::try_from(self.cfg.audit_retention_days).unwrap_or(i64::MAX);
        if days == 0 || self.in_safe_mode() {
            return false;
        }
        let now = self.clock.now().wall_ms;
        let cutoff = now.saturating_sub(days.saturating_mul(86_400_000));
        match self.store.purge_audit_before(cutoff, chunk, now) {
            Ok(Some((cp, records))) => {
                self.record(AuditEvent::AuditPurged {
                    upto_seq: u64::try_from(cp.seq).unwrap_or(0),
                    records: u64::try_from(records).unwrap_or(0),
                    checkpoint: cp.hash,
                    older_than: crate::clock::utc(cutoff),
                });
                records >= chunk
            }
            Ok(None) => false,
            Err(e) => {
                self.audit.log(
                    crate::audit::Level::Warning,
                    &format!("audit retention: {e}"),
                );
                false
            }
        }
    }

    /// Removes the sudo logs nobody writes any more: read to their end, of users with no
    /// live grant and no trail (the shared log: when nobody has either). Under the core's
    /// lock, so no grant can start logging to one in between; a sudo started before and still
    /// running writes its exit to a new file, read from its start. Empties the shared log
    /// when it is large and read to its end. Also forgets commands whose exit is a day overdue.
    pub fn ledger_cleanup(
        &self,
        positions: &HashMap<u32, LedgerPosition>,
    ) -> crate::ledger::Cleaned {
        let mut cleaned = crate::ledger::Cleaned::default();
        let Some(trail) = self.ledger_trail_uids() else {
            return cleaned;
        };
        let dir = crate::ledger::dir(&self.cfg);
        for (uid, p) in positions {
            let shared = *uid == crate::ledger::SHARED;
            let path = if shared {
                dir.join(crate::ledger::SHARED_LOG)
            } else {
                dir.join(format!("{uid}.json"))
            };
            let followed = if shared {
                !trail.is_empty() || !self.live.is_empty()
            } else {
                trail.contains(uid) || self.live.of_uid(*uid).next().is_some()
            };
            if followed {
                if shared
                    && let Some(p) = crate::ledger::empty_if_read(&path, p)
                    && self.store.set_ledger_position(*uid, p).is_ok()
                {
                    cleaned.emptied.push((*uid, p));
                }
                continue;
            }
            if !crate::ledger::read_to_end(&path, p) {
                continue;
            }
            if std::fs::remove_file(&path).is_ok()
                && self.store.forget_ledger_position(*uid).is_ok()
            {
                cleaned.removed.push(*uid);
            }
        }
        let day_ago = self.clock.now().wall_ms - 86_400_000;
        let _ = self.store.forget_ledger_runs_before(day_ago);
        cleaned
    }

    /// Users whose sudo events are still followed after their grant's end (the trail).
    /// `None` when the database cannot say now (locked): the trail is left as it is.
    pub fn ledger_trail_uids(&self) -> Option<std::collections::BTreeSet<u32>> {
        let since = self.clock.now().wall_ms - AFTER_EXPIRY_MS;
        self.store
            .recently_ended_ledger_uids(since)
            .ok()
            .map(|v| v.into_iter().collect())
    }

    /// Where each sudo log was read to, by uid.
    /// `None` when the database cannot say now: the tailer must not start from guesses.
    pub fn ledger_positions(&self) -> Option<HashMap<u32, LedgerPosition>> {
        self.store
            .ledger_positions()
            .ok()
            .map(|v| v.into_iter().collect())
    }

    /// Runs the ledger's `work` with the short wait for a locked database ([`LEDGER_BUSY`]).
    pub fn briefly<T>(&mut self, work: impl FnOnce(&mut Self) -> T) -> T {
        let _ = self.store.set_busy_timeout(LEDGER_BUSY);
        let out = work(self);
        let normal = std::time::Duration::from_millis(self.cfg.db_busy_timeout_ms);
        let _ = self.store.set_busy_timeout(normal);
        out
    }

    /// Records what the tailer read and how far, atomically; false when nothing was kept (the
    /// tailer then reads the same bytes again).
    pub fn ingest_ledger(&mut self, batches: &[Batch]) -> bool {
        self.briefly(|core| core.ingest_batches(batches))
    }

    fn ingest_batches(&mut self, batches: &[Batch]) -> bool {
        if self.in_safe_mode() || self.store.begin_batch().is_err() {
            return false;
        }
        for b in batches {
            for (problem, action) in &b.problems {
                self.record(AuditEvent::LedgerProblem {
                    // The shared log is no one user's.
                    uid: if b.uid == crate::ledger::SHARED {
                        0
                    } else {
                        b.uid
                    },
                    path: b.path.clone(),
                    problem: problem.clone(),
                    action: action.clone(),
                });
            }
            for (uid, e) in &b.events {
                self.ingest_one(*uid, e);
            }
            let kept = b
                .position
                .is_none_or(|p| self.store.set_ledger_position(b.uid, p).is_ok());
            if !kept {
                self.store.rollback_batch();
                return false;
            }
        }
        self.store.commit_batch().is_ok()
    }

    /// Records an event of a source that also sees sudo use outside grants (the journal):
    /// kept only when it belongs to a grant; it has no exit to wait for.
    pub(super) fn ingest_attributed(&self, uid: u32, e: &SudoEvent) {
        if matches!(e.kind, SudoKind::Accept | SudoKind::Reject) {
            let owner = self.owner(uid, e);
            if !owner.grant.is_empty() {
                self.ingest_command(uid, e, &owner, false);
            }
        }
    }

    fn ingest_one(&self, uid: u32, e: &SudoEvent) {
        match e.kind {
            SudoKind::Accept | SudoKind::Reject => {
                let owner = self.owner(uid, e);
                self.ingest_command(uid, e, &owner, true);
            }
            SudoKind::Exit => self.ingest_exit(uid, e),
            SudoKind::Other => {}
        }
    }

    /// An accept or reject of `uid`, under `owner`; `exit_follows` when sudo will log the
    /// command's exit (the JSON log), which then finds its grant by sudo's uuid.
    fn ingest_command(&self, uid: u32, e: &SudoEvent, owner: &Owner, exit_follows: bool) {
        let user = self.name_of(uid);
        let argv = serde_json::to_string(&e.argv).unwrap_or_default();
        if e.kind == SudoKind::Accept {
            // A program a running command started (log_subcmds) has no exit of its own to
            // wait for.
            let child = self.store.ledger_run_at(uid, e.at_ms).unwrap_or(false);
            if exit_follows && !child {
                let _ = self
                    .store
                    .ledger_run_started(&e.uuid, &owner.grant, uid, e.at_ms);
            }
            self.record(AuditEvent::CommandRun {
                grant: owner.grant.clone(),
                uid,
                user: user.clone(),
                uuid: e.uuid.clone(),
                sudo_time: crate::history::sudo_time(e.at_ms),
                runas: e.runuser.clone(),
                cwd: e.cwd.clone(),
                tty: e.tty.clone(),
                argv,
                after_expiry: owner.after_expiry,
                iolog: e.iolog.clone(),
            });
        } else {
            self.record(AuditEvent::CommandRefused {
                grant: owner.grant.clone(),
                uid,
                user: user.clone(),
                uuid: e.uuid.clone(),
                sudo_time: crate::history::sudo_time(e.at_ms),
                runas: e.runuser.clone(),
                cwd: e.cwd.clone(),
                tty: e.tty.clone(),
                argv,
                why: e.reason.clone(),
                after_expiry: owner.after_expiry,
            });
        }
        let granted = self.commands_unless_shell(&owner.grant);
        let cx = Context {
            live: owner.live,
            after_expiry: owner.after_expiry,
            breakglass: self.is_breakglass(&owner.grant),
            state_dir: self.cfg.state_dir.to_str().unwrap_or(""),
            not_shell: granted.as_deref(),
        };
        for (rule, detail) in alerts::check(e, &cx, &self.cfg.alerts) {
            self.record(AuditEvent::AlertRaised {
                rule: rule.to_string(),
                grant: owner.grant.clone(),
                uid,
                user: user.clone(),
                detail,
            });
        }
    }

    fn ingest_exit(&self, uid: u32, e: &SudoEvent) {
        let (grant, uid) = self
            .store
            .ledger_run_ended(&e.uuid)
            .ok()
            .flatten()
            .unwrap_or((String::new(), uid));
        self.record(AuditEvent::CommandExited {
            grant,
            uid,
            uuid: e.uuid.clone(),
            sudo_time: crate::history::sudo_time(e.at_ms),
            exit: e.exit_value.unwrap_or(-1),
            signal: e.signal.clone(),
            run_ms: e.run_ms,
        });
    }

    /// The grant `e` (an accept or reject of `uid`) belongs to.
    fn owner(&self, uid: u32, e: &SudoEvent) -> Owner {
        let cmd = e.argv.join(" ");
        let covers = |spec: &GrantSpec| match spec {
            GrantSpec::Sudo { commands, .. } => commands.iter().any(|c| c.to_string() == cmd),
            _ => false,
        };
        let mut live: Vec<_> = self
            .live
            .of_uid(uid)
            .filter(|g| g.starts_ms <= e.at_ms + 1000)
            .collect();
        live.sort_by_key(|g| (covers(&g.spec), g.starts_ms));
        if let Some(g) = live.last() {
            return Owner {
                grant: g.id.to_string(),
                live: e.at_ms <= g.expires_ms,
                after_expiry: e.at_ms > g.expires_ms,
            };
        }
        match self
            .store
            .last_ended_grant(uid, e.at_ms - AFTER_EXPIRY_MS, e.at_ms + 1000)
        {
            Ok(Some(grant)) => Owner {
                grant,
                live: false,
                after_expiry: true,
            },
            _ => Owner {
                grant: String::new(),
                live: false,
                after_expiry: false,
            },
        }
    }

    /// The commands of the live sudo grant `grant`, unless one of them is a shell or an
    /// interpreter (then anything it runs is within the grant).
    fn commands_unless_shell(&self, grant: &str) -> Option<String> {
        let g = self.live.values().find(|g| g.id.to_string() == grant)?;
        let GrantSpec::Sudo { commands, .. } = &g.spec else {
            return None;
        };
        if commands.iter().any(|c| alerts::is_shell(c.path())) {
            return None;
        }
        Some(
            commands
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        )
    }

    /// Whether `grant` is a break-glass grant (recorded as such when it was made): the
    /// `breakglass` alert fires on every command under it. A lookup that fails says no; the
    /// command itself is recorded either way.
    fn is_breakglass(&self, grant: &str) -> bool {
        crate::names::GrantId::parse(grant)
            .ok()
            .and_then(|id| self.store.get_breakglass(&id).ok().flatten())
            .is_some()
    }

    /// Counts refusals for `denial-burst`; called for every record.
    pub(super) fn note_refusal(&self, event: &AuditEvent) {
        let uid = match event {
            AuditEvent::RequestDenied { uid, .. }
            | AuditEvent::RequestInvalid { uid, .. }
            | AuditEvent::CommandRefused { uid, .. } => *uid,
            _ => return,
        };
        if !self.cfg.alerts.iter().any(|r| r == alerts::DENIAL_BURST) {
            return;
        }
        let now = self.clock.now().wall_ms;
        let window = i64::try_from(self.cfg.alert_denial_window_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        if self.refusals.note(uid, now, self.cfg.alert_denials, window) {
            self.record(AuditEvent::AlertRaised {
                rule: alerts::DENIAL_BURST.to_string(),
                grant: String::new(),
                uid,
                user: self.name_of(uid),
                detail: format!(
                    "{} refusals within {}s",
                    self.cfg.alert_denials, self.cfg.alert_denial_window_secs
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_fires_once_per_limit_within_the_window() {
        let r = Refusals::default();
        let fired: Vec<bool> = (0..12).map(|i| r.note(7, i * 1000, 5, 60_000)).collect();
        assert_eq!(fired.iter().filter(|f| **f).count(), 2);
        // Spread out beyond the window: never.
        let r = Refusals::default();
        assert!((0..20).all(|i| !r.note(7, i * 61_000, 5, 60_000)));
    }
}
