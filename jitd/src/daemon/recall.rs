//! Recall, as the core plans and records it: what an ended grant may have left running or on
//! disk, decided from what was granted (not from the policy of the day), carried out by the
//! recaller's threads, and recorded when they report.

#![forbid(unsafe_code)]

use std::time::Duration;

use super::Core;
use crate::audit::AuditEvent;
use crate::clock::Now;
use crate::effects::recall::{Job, Report, Target};
use crate::effects::setgid::{FileSweep, SweepReport};
use crate::grant::{GrantRecord, GrantSpec, OnEnd};
use crate::names::GrantId;
use crate::policy::PrivilegeKind;

/// When the grant began on today's wall clock: the earlier of the recorded start and the start
/// the boot clock implies, so a wall clock set back during the grant does not hide what was
/// changed in it.
pub fn began_ms(g: &GrantRecord, now: &Now) -> i64 {
    if g.boot_id != now.boot_id {
        return g.starts_ms;
    }
    let began_boot = g.expires_boot_ms - (g.expires_ms - g.starts_ms);
    g.starts_ms.min(now.wall_ms - (now.boot_ms - began_boot))
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

impl Core {
    /// Hands an ended grant to the recaller: its processes, when it was granted with
    /// `on_end = "terminate"` (or an admin said `--terminate`), and for a group grant the
    /// setgid files its holder made during it. Grants recorded before jitd kept the gid and
    /// `on_end` fall back to the policy in force.
    pub(super) fn recall(&mut self, g: &GrantRecord, terminate: bool) {
        let policy = self.policy.privilege(&g.privilege);
        let on_end = g.end_terms.on_end.or(policy.map(|p| p.on_end));
        let gid = match &g.spec {
            GrantSpec::Group { .. } => g.end_terms.gid.or(match policy.map(|p| &p.kind) {
                Some(PrivilegeKind::Group { gid, .. }) => Some(*gid),
                _ => None,
            }),
            GrantSpec::Sudo { .. } | GrantSpec::Gate => None,
        };
        let end_processes = terminate || on_end == Some(OnEnd::Terminate);
        let processes = match (&g.spec, gid) {
            _ if !end_processes => None,
            (GrantSpec::Group { .. }, Some(gid)) => Some(Target::Group { uid: g.uid, gid }),
            (GrantSpec::Group { .. }, None) => None,
            (GrantSpec::Sudo { .. } | GrantSpec::Gate, _) => {
                let roots: Vec<(u32, u64)> = self
                    .sessions
                    .values()
                    .filter(|s| s.grant == g.id && self.still_running(s))
                    .map(|s| (s.pid, s.start_ticks))
                    .collect();
                (!roots.is_empty()).then_some(Target::Trees { roots })
            }
        };
        let files = gid.map(|gid| FileSweep {
            uid: g.uid,
            gid,
            since_ms: began_ms(g, &self.clock.now()),
            roots: self.cfg.setgid_scan_roots(g.uid),
            max_files: self.cfg.setgid_scan_max_files,
            max_time: Duration::from_secs(self.cfg.setgid_scan_secs),
            mounts: crate::effects::setgid::HOST_MOUNTS.into(),
        });
        self.recaller.submit(Job {
            grant: g.id.clone(),
            uid: g.uid,
            processes,
            files,
        });
    }

    /// What the recaller calls when it has a report: the runtime wakes its loop, which records
    /// it.
    pub fn set_recall_waker(&mut self, wake: crate::effects::recall::Waker) {
        self.recaller.set_waker(wake);
    }

    /// Records what the recaller reported since the last look.
    pub(super) fn record_recalls(&mut self) {
        for report in self.recaller.reports() {
            self.record_report(report);
        }
    }

    /// Waits for every recall in flight, the SIGKILL stage and the file walk included, and
    /// records it: the sweep, purge and the daemon's stop, before the process exits.
    pub fn settle(&mut self) {
        for report in self.recaller.wait() {
            self.record_report(report);
        }
    }

    fn record_report(&self, report: Report) {
        match report {
            Report::Started { grant, uid, pids } => {
                self.record(AuditEvent::RecallStarted { grant, uid, pids });
            }
            Report::Processes {
                grant,
                uid,
                outcome,
                ..
            } => {
                if !outcome.found.is_empty() {
                    self.record(AuditEvent::RecallFinished {
                        grant: grant.clone(),
                        terminated: outcome.terminated,
                        killed: outcome.killed,
                    });
                }
                if !outcome.survivors.is_empty() {
                    self.note_end(&grant, "; some processes holding it could not be ended");
                    self.record(AuditEvent::RecallIncomplete {
                        grant: grant.clone(),
                        survivors: outcome.survivors,
                    });
                }
                if let Some(why) = outcome.blind {
                    self.note_end(
                        &grant,
                        "; recall could not see other users' processes (/proc hidepid)",
                    );
                    self.record(AuditEvent::RecallBlind { grant, uid, why });
                }
            }
            Report::Files {
                grant,
                uid,
                gid,
                report,
            } => self.record_files(grant, uid, gid, report),
        }
    }

    fn record_files(&self, grant: GrantId, uid: u32, gid: u32, report: SweepReport) {
        for s in &report.stripped {
            self.record(AuditEvent::RecallSetgidStripped {
                grant: grant.clone(),
                uid,
                gid,
                path: s.path.display().to_string(),
                mode: format!("{:o}", s.mode),
            });
        }
        for (path, error) in &report.failed {
            self.record(AuditEvent::RecallSetgidFailed {
                grant: grant.clone(),
                path: path.display().to_string(),
                error: error.clone(),
            });
        }
        let mut note = String::new();
        if !report.stripped.is_empty() {
            note += &format!(
                "; setgid bit stripped from {}",
                plural(report.stripped.len(), "file")
            );
        }
        if !report.failed.is_empty() {
            note += &format!(
                "; {} setgid to the group could not be changed",
                plural(report.failed.len(), "file")
            );
        }
        if let Some(why) = &report.cut_short {
            note += &format!("; the look for setgid files was cut short ({why})");
        }
        if !note.is_empty() {
            self.note_end(&grant, &note);
        }
        self.record(AuditEvent::RecallFilesChecked {
            grant,
            gid,
            checked: report.checked,
            stripped: report.stripped.len() as u64,
            failed: report.failed.len() as u64,
            cut_short: report.cut_short.unwrap_or_default(),
            skipped: report.skipped.join(", "),
        });
    }

    /// Adds what recall found to the ended grant's record, where `jitctl list --ended` shows
    /// it beside the reason it ended.
    fn note_end(&self, grant: &GrantId, note: &str) {
        if let Err(e) = self.store.note_end(grant, note) {
            self.db_write_failed(grant, &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{EndTerms, GrantState};
    use crate::names::GroupName;

    fn grant(starts_ms: i64, expires_ms: i64, expires_boot_ms: i64) -> GrantRecord {
        GrantRecord {
            id: GrantId::from_random(1),
            uid: 1001,
            user: "alice".into(),
            privilege: "p".into(),
            spec: GrantSpec::Group {
                group: GroupName::parse("data").unwrap(),
            },
            drop_in: "".into(),
            rule: "r".into(),
            grants: String::new(),
            reason: String::new(),
            ticket: String::new(),
            state: GrantState::Expired,
            requested_ms: starts_ms,
            starts_ms,
            expires_ms,
            boot_id: "b1".into(),
            expires_boot_ms,
            ended_ms: 0,
            end_reason: String::new(),
            end_terms: EndTerms::default(),
        }
    }

    fn at(wall_ms: i64, boot_ms: i64, boot_id: &str) -> Now {
        Now {
            wall_ms,
            boot_ms,
            boot_id: boot_id.into(),
        }
    }

    #[test]
    fn the_grant_began_when_either_clock_says_whichever_is_earlier() {
        // Granted at wall 1_000_000 (boot 5_000) for 60 s.
        let g = grant(1_000_000, 1_060_000, 65_000);
        assert_eq!(began_ms(&g, &at(1_030_000, 35_000, "b1")), 1_000_000);
        // The wall clock was set back an hour during the grant: files changed in it carry
        // the earlier time, and are still found.
        assert_eq!(
            began_ms(&g, &at(1_030_000 - 3_600_000, 35_000, "b1")),
            1_000_000 - 3_600_000
        );
        // Set forward: the recorded start stands.
        assert_eq!(
            began_ms(&g, &at(1_030_000 + 3_600_000, 35_000, "b1")),
            1_000_000
        );
        // After a reboot the boot clock says nothing about the grant.
        assert_eq!(began_ms(&g, &at(5, 5, "b2")), 1_000_000);
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(plural(1, "file"), "1 file");
        assert_eq!(plural(2, "file"), "2 files");
    }
}
