//! The command ledger: what ran under each grant, from sudo's own log rather than logging of
//! jitd's making.
//!
//! Each sudo grant's drop-in (privileges with `record = "commands"`, the default) carries
//! `Defaults:#<uid> log_format=json, logfile=<state_dir>/ledger/<uid>.json, log_exit_status`
//! ([`defaults_line`]). The scope is the user, not the command: sudo applies the last matching
//! command-scoped `Defaults!` whoever runs it, so per-grant files by command would mix users
//! (verified on sudo 1.9.13). One file per uid keeps each user's events apart; the core
//! attributes each to the grant live at the time.
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
pub mod trail;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::bus::Shared;
use crate::config::Config;
use crate::store::LedgerPosition;
use parse::SudoEvent;

/// Most events handed to the core at once.
pub const MAX_EVENTS_PER_BATCH: usize = 500;
/// Most bytes read from one file per look.
const MAX_READ: u64 = 8 << 20;

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
    let log = plain(&dir(cfg).join(format!("{uid}.json")))?;
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

/// Whether the log at `path` is the file `p` was read from and holds nothing after it but
/// the end of sudo's object (`\n}\n`).
pub fn read_to_end(path: &Path, p: &LedgerPosition) -> bool {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    if !meta.is_file() || (meta.dev(), meta.ino()) != (p.dev, p.ino) || meta.len() < p.offset {
        return false;
    }
    let rest = meta.len() - p.offset;
    if rest > 64 {
        return false;
    }
    let mut buf = vec![0; usize::try_from(rest).unwrap_or(0)];
    read_at(&file, &mut buf, p.offset) == buf.len()
        && buf.iter().all(|b| b.is_ascii_whitespace() || *b == b'}')
}

/// What one look at one user's log found.
#[derive(Debug, Clone)]
pub struct Batch {
    pub uid: u32,
    pub path: String,
    /// Where the next look starts once this batch is stored (`None`: where it was).
    pub position: Option<LedgerPosition>,
    pub events: Vec<SudoEvent>,
    /// (what was wrong, what was done), each reported once until the file is fine again.
    pub problems: Vec<(String, String)>,
}

/// Reads the users' sudo logs from where they were last read.
pub struct Tailer {
    dir: PathBuf,
    positions: HashMap<u32, LedgerPosition>,
    reported: HashSet<(u32, String)>,
}

impl Tailer {
    pub fn new(dir: PathBuf, positions: HashMap<u32, LedgerPosition>) -> Self {
        Self {
            dir,
            positions,
            reported: HashSet::new(),
        }
    }

    /// What is new in every log, without the core.
    pub fn read(&mut self) -> Vec<Batch> {
        let mut out = Vec::new();
        if let Some(problem) = self.check_dir() {
            self.report(
                &mut out,
                0,
                &self.dir.clone(),
                problem,
                "nothing is read from it",
            );
            return out;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(uid) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            self.read_one(uid, &entry.path(), &mut out);
        }
        out
    }

    /// The positions reached, for [`crate::daemon::Core::ledger_cleanup`].
    pub fn positions(&self) -> &HashMap<u32, LedgerPosition> {
        &self.positions
    }

    /// Forgets the positions of logs that were removed.
    pub fn forget(&mut self, uids: &[u32]) {
        for uid in uids {
            self.positions.remove(uid);
        }
    }

    /// Marks `batches` stored: the next look starts after them.
    pub fn stored(&mut self, batches: &[Batch]) {
        for b in batches {
            if let Some(p) = b.position {
                self.positions.insert(b.uid, p);
            }
        }
    }

    /// The directory exists, is a directory and is root's alone; made if missing.
    fn check_dir(&self) -> Option<String> {
        let meta = match std::fs::symlink_metadata(&self.dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&self.dir)
                    .err()
                    .map(|e| format!("cannot be made: {e}"));
            }
            Err(e) => return Some(e.to_string()),
            Ok(m) => m,
        };
        if !meta.is_dir() {
            Some("is not a directory (a symlink is never followed)".into())
        } else if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            Some(format!(
                "is owned by uid {} with mode {:o}: others could forge or remove events",
                meta.uid(),
                meta.mode() & 0o7777
            ))
        } else {
            None
        }
    }

    fn report(
        &mut self,
        out: &mut Vec<Batch>,
        uid: u32,
        path: &Path,
        problem: String,
        action: &str,
    ) {
        if !self.reported.insert((uid, problem.clone())) {
            return;
        }
        out.push(Batch {
            uid,
            path: path.display().to_string(),
            position: None,
            events: Vec::new(),
            problems: vec![(problem, action.to_string())],
        });
    }

    fn read_one(&mut self, uid: u32, path: &Path, out: &mut Vec<Batch>) {
        const SKIP: &str = "not read: sudo's events for this user are not recorded until it is \
                            a regular file of root's again";
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path);
        let file = match file {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                let to = std::fs::read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return self.report(out, uid, path, format!("is a symlink (to {to})"), SKIP);
            }
            Err(e) => return self.report(out, uid, path, format!("cannot be opened: {e}"), SKIP),
        };
        let Ok(meta) = file.metadata() else {
            return;
        };
        let ft = meta.file_type();
        if !ft.is_file() || ft.is_fifo() {
            return self.report(out, uid, path, "is not a regular file".into(), SKIP);
        }
        if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            let problem = format!(
                "is owned by uid {} with mode {:o}: others could forge events",
                meta.uid(),
                meta.mode() & 0o7777
            );
            return self.report(out, uid, path, problem, SKIP);
        }
        // Fine again: the same trouble later is reported again.
        self.reported.retain(|(u, _)| *u != uid);
        let mut problems = Vec::new();
        let (dev, ino, size) = (meta.dev(), meta.ino(), meta.len());
        let start = match self.positions.get(&uid) {
            Some(p) if (p.dev, p.ino) != (dev, ino) => {
                problems.push((
                    format!(
                        "was replaced (rotated, moved or recreated) after {} bytes were read",
                        p.offset
                    ),
                    "the new file is read from its start".to_string(),
                ));
                0
            }
            Some(p) if size < p.offset => {
                problems.push((
                    format!("was truncated from {} to {size} bytes", p.offset),
                    "read from its start; events written in between may be lost".to_string(),
                ));
                0
            }
            Some(p) => p.offset,
            None => 0,
        };
        if size == start && problems.is_empty() {
            return;
        }
        let want = (size - start).min(MAX_READ);
        let mut buf = vec![0; usize::try_from(want).unwrap_or(0)];
        let n = read_at(&file, &mut buf, start);
        buf.truncate(n);
        let mut parsed = parse::members(&buf, start);
        if parsed.events.len() > MAX_EVENTS_PER_BATCH {
            parsed.consumed = parsed.ends[MAX_EVENTS_PER_BATCH - 1];
            parsed.events.truncate(MAX_EVENTS_PER_BATCH);
            parsed.skipped.retain(|(at, _)| *at < parsed.consumed);
        }
        for (at, len) in &parsed.skipped {
            problems.push((
                format!("held {len} unreadable bytes at byte {}", start + *at as u64),
                "skipped to the next event".to_string(),
            ));
        }
        out.push(Batch {
            uid,
            path: path.display().to_string(),
            position: Some(LedgerPosition {
                dev,
                ino,
                offset: start + parsed.consumed as u64,
            }),
            events: parsed.events,
            problems,
        });
    }
}

fn read_at(file: &File, buf: &mut [u8], at: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => done += n,
        }
    }
    done
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
pub async fn tail(shared: Shared) {
    let cfg = shared.engine().config().clone();
    let poll = Duration::from_millis(cfg.ledger_poll_ms.max(50));
    let engine = Arc::clone(&shared.engine);
    let mut state = Some(Loop::new(cfg.clone()));
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
            Err(_) => Loop::new(cfg.clone()),
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
}

impl Loop {
    fn new(cfg: Config) -> Self {
        Self {
            tailer: None,
            journal: None,
            trail: None,
            trail_error: None,
            retention: None,
            looks: 0,
            cfg,
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
                now,
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
                let removed = lock().briefly(|core| core.ledger_cleanup(positions));
                tailer.forget(&removed);
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
