//! The command ledger: what ran under each grant, from sudo's own log rather than logging of
//! jitd's making.
//!
//! Each sudo grant (privileges with `record = "commands"`, the default) carries
//! `Defaults:#<uid> log_format=json, logfile=<state_dir>/ledger/sudo.json, log_exit_status`
//! ([`defaults_line`]). The scope is the user, not the command: sudo applies the last matching
//! command-scoped `Defaults!` whoever runs it, so logging by command would also log users who
//! hold no grant (verified on sudo 1.9.13). The users' lines are written as one alias and one
//! `Defaults` line ([`crate::effects::sudoers::consolidate::grouped_defaults`]): every sudo on
//! the host parses them, and a line per user cost each sudo 2.7 ms at 1,000 users. So all
//! users log to one file, [`SHARED_LOG`], and each event is the user's sudo names
//! (`submituser`), looked up here; the core attributes it to the grant live at the time. Logs
//! of one file per uid, written before, are still read to their end.
//!
//! The [`Tailer`] reads the files without the core's lock, on a blocking thread, every
//! `ledger_poll_ms`, from the byte after the last whole event it stored. It refuses what it
//! must not trust: a symlink (never followed), a file not root's or writable by others (anyone
//! could forge events), a directory that is not root's alone. A file cut short or replaced is
//! reported and read from its start. What it reads goes to the core in batches of at most
//! [`MAX_EVENTS_PER_BATCH`] events, so the core's lock (expiry, requests) never waits long.
//! sudo keeps working whatever happens here (`ignore_logfile_errors` is sudo's default).

#![forbid(unsafe_code)]

pub mod alerts;
pub mod journal;
pub mod parse;
mod tailer;
#[cfg(test)]
mod tests;
pub mod trail;

pub use tailer::{Batch, Cleaned, Tailer, empty_if_read, read_to_end};

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::bus::Shared;
use crate::config::Config;

/// The one log every user's sudo events go to, in [`dir`].
pub const SHARED_LOG: &str = "sudo.json";
/// The key [`SHARED_LOG`]'s position is kept under: (uid_t)-1 is no user's uid (setuid(2)
/// reads it as "unchanged").
pub const SHARED: u32 = u32::MAX;
/// A shared log read to its end is emptied (under sudo's own lock) once it is this large.
pub(crate) const EMPTY_AT: u64 = 8 << 20;

/// Most events handed to the core at once.
pub const MAX_EVENTS_PER_BATCH: usize = 500;
/// Most bytes read from one file per look.
pub(crate) const MAX_READ: u64 = 8 << 20;

/// Where the per-user sudo logs live.
pub fn dir(cfg: &Config) -> PathBuf {
    cfg.state_dir.join("ledger")
}

/// The sudoers line that turns on sudo's event log for `uid`, or `None` when the ledger is
/// off or the path cannot be written in sudoers without quoting (then nothing is logged, and
/// the daemon said so at start).
pub fn defaults_line(cfg: &Config, uid: u32) -> Option<String> {
    defaults(cfg, uid, false)
}

/// Like [`defaults_line`], with sudo's I/O log of the commands' output when `io`
/// (`log_output`, `iolog_dir=<state_dir>/iolog`; root-only, replayed with `sudoreplay`).
pub fn defaults(cfg: &Config, uid: u32, io: bool) -> Option<String> {
    // The uid only scopes the line: the log is the same for every user.
    // With the journal as the source, sudo's own syslog line is the record: turning on its
    // JSON log would also turn that line into `@cee:` JSON.
    if !cfg.ledger || cfg.ledger_source == crate::config::LedgerSource::Journal {
        return None;
    }
    let plain = |p: &Path| {
        p.to_str()
            .filter(|s| {
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            })
            .map(str::to_string)
    };
    let log = plain(&dir(cfg).join(SHARED_LOG))?;
    let output = if io {
        format!(", log_output, iolog_dir={}", plain(&iolog_dir(cfg))?)
    } else {
        String::new()
    };
    // log_subcmds: sudo logs each program the command runs (through ptrace), so a shell
    // started by a granted command is seen (`shell-escape`).
    let subcmds = if cfg.ledger_subcmds {
        ", log_subcmds"
    } else {
        ""
    };
    Some(format!(
        "Defaults:#{uid} log_format=json, logfile={log}, log_exit_status{subcmds}{output}\n"
    ))
}

/// Where sudo keeps the I/O logs of `record = "io"` privileges.
pub fn iolog_dir(cfg: &Config) -> PathBuf {
    cfg.state_dir.join("iolog")
}

/// Makes the ledger's directory (root's, 0700) if it is missing: sudo does not make the
/// directory of its `logfile`, and logs nothing (the command still runs) without it.
pub fn ensure_dir(cfg: &Config) {
    let _ = std::fs::DirBuilder::new().mode(0o700).create(dir(cfg));
}

/// How often old audit records are purged, and how many go per hold of the core's lock.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
const RETENTION_CHUNK: i64 = 10_000;

/// How many looks between two checks of the after-expiry trail.
const TRAIL_EVERY: u32 = 4;
/// How many looks between two reads of the journal (each runs journalctl).
const JOURNAL_EVERY: u32 = 2;

/// The ledger's loop: look, hand what was found to the core, again every `ledger_poll_ms`;
/// keep the after-expiry trail up to date; purge audit records past their retention (hourly,
/// also with the ledger off). Reading, storing and writing the trail run on a
/// blocking thread, so none of it holds up the runtime, and the core's lock is held only to
/// store one batch.
///
/// `started_ms`: when the daemon started, before it took requests. With no cursor stored, the
/// journal is read from there: a first look taken later (the loop's first turns, a busy host)
/// would miss the lines of a grant's first commands.
pub async fn tail(shared: Shared, started_ms: i64) {
    let cfg = shared.engine().config().clone();
    let poll = Duration::from_millis(cfg.ledger_poll_ms.max(50));
    let engine = Arc::clone(&shared.engine);
    let mut state = Some(Loop::new(cfg.clone(), started_ms));
    loop {
        tokio::time::sleep(poll).await;
        let Some(mut s) = state.take() else {
            return;
        };
        let engine = Arc::clone(&engine);
        let step = tokio::task::spawn_blocking(move || {
            s.step(&engine);
            s
        });
        state = Some(match step.await {
            Ok(s) => s,
            // A panic in one look must not end the ledger: start again from what is stored.
            Err(_) => Loop::new(cfg.clone(), started_ms),
        });
    }
}

struct Loop {
    /// `None` until the positions are read from the database (on the first look it answers).
    tailer: Option<Tailer>,
    /// sudo's lines in the journal (`ledger_source = "journal"`), once its cursor is read.
    journal: Option<journal::Journal>,
    /// The users the trail file follows now (`None`: not written yet by this process).
    trail: Option<std::collections::BTreeSet<u32>>,
    /// The last failure to write it, reported once.
    trail_error: Option<String>,
    /// When old audit records were last purged (`None`: not yet by this process).
    retention: Option<std::time::Instant>,
    looks: u32,
    cfg: Config,
    /// When the daemon started: where a journal never read before is read from.
    started_ms: i64,
}

impl Loop {
    fn new(cfg: Config, started_ms: i64) -> Self {
        Self {
            tailer: None,
            journal: None,
            trail: None,
            trail_error: None,
            retention: None,
            looks: 0,
            cfg,
            started_ms,
        }
    }

    /// One look at the journal: what it gave is stored with its cursor, or read again.
    fn read_journal(&mut self, engine: &std::sync::Mutex<crate::daemon::Core>) {
        let lock = || engine.lock().unwrap_or_else(|p| p.into_inner());
        if self.journal.is_none() {
            let Some((cursor, now)) = lock().briefly(|core| core.journal_start()) else {
                return;
            };
            self.journal = Some(journal::Journal::new(
                self.cfg.journalctl.clone(),
                &self.cfg.sudo_path,
                cursor,
                now.min(self.started_ms),
            ));
        }
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        let batch = j.read();
        let found = !batch.events.is_empty() || !batch.problems.is_empty();
        if (found || batch.cursor.is_some()) && lock().ingest_journal(&batch) {
            j.stored(&batch);
        }
    }

    fn step(&mut self, engine: &std::sync::Mutex<crate::daemon::Core>) {
        let lock = || engine.lock().unwrap_or_else(|p| p.into_inner());
        if self.tailer.is_none() {
            match lock().briefly(|core| core.ledger_positions()) {
                Some(positions) => self.tailer = Some(Tailer::new(dir(&self.cfg), positions)),
                None => return,
            }
        }
        let Some(tailer) = self.tailer.as_mut() else {
            return;
        };
        if self
            .retention
            .is_none_or(|t| t.elapsed() >= RETENTION_EVERY)
        {
            self.retention = Some(std::time::Instant::now());
            // A chunk per lock, so a first purge of years of records never holds the core.
            while lock().briefly(|core| core.purge_old_audit(RETENTION_CHUNK)) {}
            if self.cfg.ledger {
                let positions = tailer.positions();
                let cleaned = lock().briefly(|core| core.ledger_cleanup(positions));
                tailer.cleaned(&cleaned);
            }
        }
        if !self.cfg.ledger {
            return;
        }
        if self.cfg.ledger_source == crate::config::LedgerSource::Journal
            && self.looks.is_multiple_of(JOURNAL_EVERY)
        {
            self.read_journal(engine);
        }
        let Some(tailer) = self.tailer.as_mut() else {
            return;
        };
        let batches = tailer.read();
        if !batches.is_empty() && lock().ingest_ledger(&batches) {
            tailer.stored(&batches);
        }
        self.looks = self.looks.wrapping_add(1);
        if self.looks % TRAIL_EVERY != 1 {
            return;
        }
        let Some(want) = lock().briefly(|core| core.ledger_trail_uids()) else {
            return;
        };
        if self.trail.as_ref() != Some(&want) {
            match trail::write(&self.cfg, &want) {
                Ok(()) => {
                    self.trail = Some(want);
                    self.trail_error = None;
                }
                Err(e) if self.trail_error.as_ref() == Some(&e) => {}
                Err(e) => {
                    self.trail_error = Some(e.clone());
                    let problem = format!("the after-expiry trail cannot be written: {e}");
                    let batch = Batch {
                        uid: 0,
                        path: self.cfg.sudoers_dir.join(trail::NAME).display().to_string(),
                        position: None,
                        events: Vec::new(),
                        problems: vec![(problem, "tried again in a moment".into())],
                    };
                    lock().ingest_ledger(&[batch]);
                }
            }
        }
    }
}
