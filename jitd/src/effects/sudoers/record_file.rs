//! Each privilege's record on disk, `<state_dir>/sudo/<privilege>.jsonl`, and the parsed copy
//! a process keeps of it.
//!
//! The record is a journal: a line per grant put on the system (its [`Entry`]) and a line per
//! grant taken off (`{"take":"<id>"}`), appended and synced, so a grant writes a few hundred
//! bytes whatever its privilege's live count (rewriting a record of a thousand grants was
//! 330 KB, and most of a grant's cost at that scale). Read back, the lines replay in order.
//! Once the journal has grown past twice its live entries (and 64 lines), the next change
//! writes it whole again: temp file, fsync, rename, directory fsync.
//!
//! A last line without its newline is an append a crash cut short. Its change never took
//! effect: a put's sudoers file is written after its record line, and a take that could not
//! record itself fails, leaving the grant in the record for its removal to be retried. So it
//! is dropped, and the next change writes the journal whole. Any other line that does not read
//! back is an error naming its place.
//!
//! Every jitd process that writes records (the daemon, the sweep) first counts the write in
//! the lock file's first eight bytes, under the lock. A process that finds the count where its
//! own last write left it knows that no other process has written since, so the records it
//! keeps parsed stand without being read again, however recent their stamps (a change within
//! one tick of the file system's clock can leave a stamp as it was). Otherwise each is read
//! again and its hash compared.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::hash::Hasher;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::record_cache::{Known, settled, text_hasher};
use super::shards::{Entry, Record, Stamp};
use super::sync_dir;
use crate::effects::GrantError;
use crate::names::{GrantId, PrivilegeName};

/// An [`Entry`] as a line of the record (written from the entry's own strings).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    grant: Cow<'a, str>,
    uid: u32,
    until_ms: i64,
    text: Cow<'a, str>,
}

/// A grant taken off, as a line of the record.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Take<'a> {
    take: Cow<'a, str>,
}

/// Lines a journal may hold beyond twice its live entries before it is written whole again.
const SLACK_LINES: usize = 64;

/// The records of every privilege, and what this process knows of them.
pub(super) struct RecordFiles {
    dir: PathBuf,
    /// Each record as last read or written: a grant changes one entry, and parsing its
    /// privilege's whole record again for each would make granting slower as the live set
    /// grows. Kept with its file's stamp and its text's hash, not its text.
    parsed: Mutex<HashMap<PrivilegeName, Known>>,
    /// The lock file's count of writes as this process last left or saw it.
    generation: Mutex<u64>,
    /// How many times another process's writes were found (under the lock): what was known
    /// before the last of them is known no more ([`RecordFiles::quiet_since`]).
    others_found: std::sync::atomic::AtomicU64,
}

/// Replaces `dir/name` with `text` durably: a temp file (dot name, root's alone), synced,
/// renamed over it, the directory synced. The state directory's markers and records.
pub(crate) fn write_synced(dir: &Path, name: &str, text: &str) -> Result<(), GrantError> {
    let (path, temp) = (dir.join(name), dir.join(format!(".{name}.tmp")));
    let io = |e| GrantError::io(&temp, e);
    let _ = fs::remove_file(&temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temp)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    if let Err(e) = fs::rename(&temp, &path) {
        let _ = fs::remove_file(&temp);
        return Err(GrantError::io(&path, e));
    }
    sync_dir(dir)
}

/// The count of writes in the lock file's first eight bytes (0 in an empty file: before the
/// first write); an error for anything else.
fn count_in(lock: &File) -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    match lock.read_at(&mut bytes, 0)? {
        8 => Ok(u64::from_le_bytes(bytes)),
        0 => Ok(0),
        n => Err(std::io::Error::other(format!("{n} bytes, not a count"))),
    }
}

fn stamp_of(file: &File) -> Stamp {
    file.metadata()
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), m.len()))
}

impl RecordFiles {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            parsed: Mutex::new(HashMap::new()),
            generation: Mutex::new(0),
            others_found: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn path(&self, p: &PrivilegeName) -> PathBuf {
        self.dir.join(format!("{p}.jsonl"))
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// The lock file's count of writes (0 before the first write, or without a lock file);
    /// `None` when it cannot be read.
    fn count_on_disk(&self) -> Option<u64> {
        match File::open(self.lock_path()) {
            Ok(f) => count_in(&f).ok(),
            Err(e) if e.kind() == ErrorKind::NotFound => Some(0),
            Err(_) => None,
        }
    }

    /// Whether the records are as this process last left or saw them. Under the lock (no
    /// other process is between counting a write and making it), a count that moved is taken
    /// as the new one and every parsed record must be compared again; outside it, nothing is
    /// taken: another process may have counted a write it has not made yet.
    fn others_quiet(&self, under_lock: bool) -> bool {
        let on_disk = self.count_on_disk();
        let mut mine = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        if on_disk == Some(*mine) {
            return true;
        }
        if under_lock {
            *mine = on_disk.unwrap_or(u64::MAX);
            self.others_found
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(mut parsed) = self.parsed.lock() {
                parsed.values_mut().for_each(|k| k.trusted = false);
            }
        }
        false
    }

    /// The records' count of writes as this process last left or saw it.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A mark for what this process knows of the state directory now, when no other process
    /// has written there since this one last did or looked under the lock: something known
    /// under the same mark later is still as it was. `None`: another process wrote since.
    pub fn quiet_since(&self) -> Option<u64> {
        self.others_quiet(false)
            .then(|| self.others_found.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Counts a write of the state directory's files about to be made by a caller holding the
    /// lock: another process's writes are taken note of first (or this write's count would
    /// hide them), then the count moves before the write, so a write is never on disk
    /// uncounted.
    pub fn count_change(&self) -> Result<(), GrantError> {
        self.others_quiet(true);
        self.count_write()
    }

    /// Counts a write about to be made (under the lock): before it, so that a write is never
    /// on disk uncounted.
    fn count_write(&self) -> Result<(), GrantError> {
        let path = self.lock_path();
        let io = |e| GrantError::io(&path, e);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io)?;
        let mut mine = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        // A count that does not read (a damaged lock file) starts again from a random value,
        // never one another process may hold as its own: each then compares its records again.
        let next = count_in(&lock)
            .unwrap_or_else(|_| crate::sys::random_bits().unwrap_or(0))
            .wrapping_add(1);
        lock.write_all_at(&next.to_le_bytes(), 0).map_err(io)?;
        *mine = next;
        Ok(())
    }

    fn forget(&self, p: &PrivilegeName) {
        if let Ok(mut parsed) = self.parsed.lock() {
            parsed.remove(p);
        }
    }

    /// The record of `p` as on disk (empty when there is none). `under_lock`: the caller
    /// holds the records' lock (see [`RecordFiles::others_quiet`]).
    pub fn read(&self, p: &PrivilegeName, under_lock: bool) -> Result<Record, GrantError> {
        let quiet = self.others_quiet(under_lock);
        let path = self.path(p);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(GrantError::io(&path, e)),
        };
        // The stamp of what is read, from the open file itself.
        let now = stamp_of(&file);
        if let Ok(parsed) = self.parsed.lock()
            && let Some(known) = parsed.get(p)
            && known.stamp == now
            && ((quiet && known.trusted) || settled(&now))
        {
            return Ok(known.entries.clone());
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| GrantError::io(&path, e))?;
        let mut hasher = text_hasher();
        hasher.write(&bytes);
        // Bytes that are not text (a torn append's garbage) fail to parse as lines, by number.
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(mut parsed) = self.parsed.lock()
            && let Some(known) = parsed.get_mut(p)
            && known.hasher.finish() == hasher.finish()
        {
            known.stamp = now;
            known.trusted = under_lock;
            return Ok(known.entries.clone());
        }
        let (entries, lines, whole) = parse(&path, &text)?;
        if let Ok(mut parsed) = self.parsed.lock() {
            let known = Known {
                stamp: now,
                hasher,
                entries: entries.clone(),
                lines,
                whole,
                trusted: under_lock,
            };
            parsed.insert(p.clone(), known);
        }
        Ok(entries)
    }

    /// Makes the record of `p` say `after`, from `before` (what [`RecordFiles::read`] gave
    /// under the same lock): the difference appended, or the whole record written when the
    /// journal is due for it (when it says no grant then, it goes).
    pub fn write(
        &self,
        p: &PrivilegeName,
        before: &Record,
        after: &Record,
    ) -> Result<(), GrantError> {
        self.count_write()?;
        let path = self.path(p);
        // A record left with no grant is appended to like any other (its next grant, often the
        // same user's, is then one line); written whole, it goes.
        let mut change = String::new();
        let mut lines = 0;
        for e in after.values().filter(|e| before.get(&e.grant) != Some(*e)) {
            change.push_str(&put_line(e)?);
            lines += 1;
        }
        for id in before.keys().filter(|id| !after.contains_key(*id)) {
            change.push_str(&take_line(id)?);
            lines += 1;
        }
        let appendable = self.parsed.lock().ok().and_then(|parsed| {
            parsed
                .get(p)
                .filter(|k| {
                    k.whole
                        && k.entries == *before
                        && k.lines + lines <= 2 * after.len() + SLACK_LINES
                })
                .map(|k| (k.stamp, k.lines, k.hasher.clone()))
        });
        // Whatever fails from here leaves the record unknown: read again next time.
        self.forget(p);
        if let Some((stamp, known_lines, mut hasher)) = appendable {
            match self.append(&path, stamp, &change) {
                Ok(Some(file)) => {
                    hasher.write(change.as_bytes());
                    self.remember(p, &file, hasher, after, known_lines + lines);
                    return Ok(());
                }
                Ok(None) => {}
                Err(e) => {
                    // Part or all of the change may be in the file, unsynced: the record is
                    // written whole as it was, so it says what the caller is told.
                    let _ = self.write_whole(p, before);
                    return Err(e);
                }
            }
        }
        self.write_whole(p, after)
    }

    fn write_whole(&self, p: &PrivilegeName, entries: &Record) -> Result<(), GrantError> {
        self.forget(p);
        let path = self.path(p);
        if entries.is_empty() {
            return match fs::remove_file(&path) {
                Ok(()) => sync_dir(&self.dir),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(GrantError::io(&path, e)),
            };
        }
        let mut text = String::new();
        for e in entries.values() {
            text.push_str(&put_line(e)?);
        }
        write_synced(&self.dir, &format!("{p}.jsonl"), &text)?;
        let mut hasher = text_hasher();
        hasher.write(text.as_bytes());
        if let Ok(file) = File::open(&path) {
            self.remember(p, &file, hasher, entries, entries.len());
        }
        Ok(())
    }

    /// Appends `change` to the record at `path` and syncs it; `None` (nothing written) when
    /// the file is not the one stamped `stamp` or may not be opened for writing (written by an
    /// earlier jitd, read-only): the record is then written whole.
    fn append(&self, path: &Path, stamp: Stamp, change: &str) -> Result<Option<File>, GrantError> {
        let io = |e| GrantError::io(path, e);
        let mut file = match OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::NotFound) => {
                return Ok(None);
            }
            Err(e) => return Err(io(e)),
        };
        if stamp_of(&file) != stamp || !file.metadata().is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        file.write_all(change.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(Some(file))
    }

    fn remember(
        &self,
        p: &PrivilegeName,
        file: &File,
        hasher: std::collections::hash_map::DefaultHasher,
        entries: &Record,
        lines: usize,
    ) {
        if let Ok(mut parsed) = self.parsed.lock() {
            let known = Known {
                stamp: stamp_of(file),
                hasher,
                entries: entries.clone(),
                lines,
                whole: true,
                trusted: true,
            };
            parsed.insert(p.clone(), known);
        }
    }
}

fn put_line(e: &Entry) -> Result<String, GrantError> {
    let line = Line {
        grant: Cow::Borrowed(e.grant.as_str()),
        uid: e.uid,
        until_ms: e.until_ms,
        text: Cow::Borrowed(&e.text),
    };
    serialised(&line)
}

fn take_line(id: &GrantId) -> Result<String, GrantError> {
    serialised(&Take {
        take: Cow::Borrowed(id.as_str()),
    })
}

fn serialised(line: &impl Serialize) -> Result<String, GrantError> {
    let mut text = serde_json::to_string(line).map_err(|e| GrantError::Verify {
        what: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}

/// Replays a record's lines: its entries, how many lines it has, and whether it ends whole (a
/// last line cut short is dropped, see the module's documentation).
fn parse(path: &Path, text: &str) -> Result<(Record, usize, bool), GrantError> {
    let mut out = BTreeMap::new();
    let whole = text.is_empty() || text.ends_with('\n');
    let mut lines: Vec<&str> = text.lines().collect();
    if !whole {
        lines.pop();
    }
    for (n, line) in lines.iter().enumerate() {
        let bad = |e: String| GrantError::Verify {
            what: format!("{}:{}: {e}", path.display(), n + 1),
        };
        if let Ok(take) = serde_json::from_str::<Take>(line) {
            out.remove(&GrantId::parse(&take.take).map_err(|e| bad(e.to_string()))?);
            continue;
        }
        let line: Line = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let entry = Entry {
            grant: GrantId::parse(&line.grant).map_err(|e| bad(e.to_string()))?,
            uid: line.uid,
            until_ms: line.until_ms,
            text: Arc::from(line.text),
        };
        out.insert(entry.grant.clone(), entry);
    }
    Ok((out, lines.len(), whole))
}
