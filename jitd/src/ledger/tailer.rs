//! Reading the sudo logs: from where each was last read, trusting only files of root's, and
//! the shared log emptied under sudo's own lock once it is large (see the module above).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::parse::{self, SudoEvent, SudoKind};
use super::{EMPTY_AT, MAX_EVENTS_PER_BATCH, MAX_READ, SHARED, SHARED_LOG};
use crate::store::LedgerPosition;

/// Whether the log at `path` is the file `p` was read from and holds nothing after it but
/// the end of sudo's object (`\n}\n`).
pub fn read_to_end(path: &Path, p: &LedgerPosition) -> bool {
    open_log(path, false).is_some_and(|f| rest_is_end(&f, p))
}

fn open_log(path: &Path, write: bool) -> Option<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()
}

fn rest_is_end(file: &File, p: &LedgerPosition) -> bool {
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
    read_at(file, &mut buf, p.offset) == buf.len()
        && buf.iter().all(|b| b.is_ascii_whitespace() || *b == b'}')
}

/// Empties the shared log once it is [`EMPTY_AT`] large and read to its end, so it does not
/// grow forever on a host that always has someone holding a grant. Done under sudo's own
/// lock (a write lock on the whole file, which sudo takes before it writes an event and keeps
/// until it is written), so no event comes in between the check and the emptying; when sudo
/// holds it, the next clean-up tries again. Returns where reading starts now.
pub fn empty_if_read(path: &Path, p: &LedgerPosition) -> Option<LedgerPosition> {
    let file = open_log(path, true)?;
    let meta = file.metadata().ok()?;
    if meta.len() < EMPTY_AT {
        return None;
    }
    crate::sys::try_lock_whole_file(&file).ok()?;
    if !rest_is_end(&file, p) {
        return None;
    }
    file.set_len(0).ok()?;
    file.sync_all().ok()?;
    Some(LedgerPosition {
        dev: p.dev,
        ino: p.ino,
        offset: 0,
    })
}

/// What a clean-up did to the logs: removed (by key), emptied (with the new position).
#[derive(Debug, Default)]
pub struct Cleaned {
    pub removed: Vec<u32>,
    pub emptied: Vec<(u32, LedgerPosition)>,
}

/// What one look at one user's log found.
#[derive(Debug, Clone)]
pub struct Batch {
    pub uid: u32,
    pub path: String,
    /// Where the next look starts once this batch is stored (`None`: where it was).
    pub position: Option<LedgerPosition>,
    /// Each event with the uid of the user whose sudo logged it.
    pub events: Vec<(u32, SudoEvent)>,
    /// (what was wrong, what was done), each reported once until the file is fine again.
    pub problems: Vec<(String, String)>,
}

/// Reads the users' sudo logs from where they were last read.
pub struct Tailer {
    dir: PathBuf,
    positions: HashMap<u32, LedgerPosition>,
    reported: HashSet<(u32, String)>,
    /// The uid of each user name seen in the shared log, looked up once per look.
    uids: HashMap<String, Option<u32>>,
    /// The uid of each command seen accepted in the shared log, by sudo's uuid.
    runs: HashMap<String, u32>,
}

impl Tailer {
    pub fn new(dir: PathBuf, positions: HashMap<u32, LedgerPosition>) -> Self {
        Self {
            dir,
            positions,
            reported: HashSet::new(),
            uids: HashMap::new(),
            runs: HashMap::new(),
        }
    }

    /// What is new in every log, without the core.
    pub fn read(&mut self) -> Vec<Batch> {
        // Names are looked up afresh each look: an account deleted and made again is seen.
        self.uids.clear();
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
            let Some(uid) = name.to_str().and_then(|n| {
                if n == SHARED_LOG {
                    return Some(SHARED);
                }
                n.strip_suffix(".json")?.parse::<u32>().ok()
            }) else {
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

    /// Forgets the positions of logs that were removed, and takes those of logs emptied.
    pub fn cleaned(&mut self, c: &Cleaned) {
        for uid in &c.removed {
            self.positions.remove(uid);
        }
        for (uid, p) in &c.emptied {
            self.positions.insert(*uid, *p);
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
        let events = if uid == SHARED {
            self.attribute(parsed.events, &mut problems)
        } else {
            parsed.events.into_iter().map(|e| (uid, e)).collect()
        };
        out.push(Batch {
            uid,
            path: path.display().to_string(),
            position: Some(LedgerPosition {
                dev,
                ino,
                offset: start + parsed.consumed as u64,
            }),
            events,
            problems,
        });
    }

    /// The uid of each event of the shared log: from the user name sudo logged with an accept
    /// or a reject, and for a command's exit (which names no user) from its accept, by sudo's
    /// uuid (the core finds a stored command by its uuid anyway). An accept or reject of a
    /// name that is no account (deleted since) is reported and left out.
    fn attribute(
        &mut self,
        events: Vec<SudoEvent>,
        problems: &mut Vec<(String, String)>,
    ) -> Vec<(u32, SudoEvent)> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            if !matches!(e.kind, SudoKind::Accept | SudoKind::Reject) {
                let uid = self.runs.get(&e.uuid).copied().unwrap_or(0);
                out.push((uid, e));
                continue;
            }
            let uid = *self.uids.entry(e.submituser.clone()).or_insert_with(|| {
                use crate::policy::Accounts as _;
                crate::accounts::SystemAccounts.user_uid(&e.submituser)
            });
            match uid {
                Some(uid) => {
                    if self.runs.len() >= 10_000 {
                        self.runs.clear();
                    }
                    self.runs.insert(e.uuid.clone(), uid);
                    out.push((uid, e));
                }
                None => problems.push((
                    format!(
                        "holds an event of {:?}, which is no account",
                        e.submituser.escape_debug().to_string()
                    ),
                    "that event is not recorded".to_string(),
                )),
            }
        }
        out
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
