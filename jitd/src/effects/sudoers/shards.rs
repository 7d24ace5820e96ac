//! The per-privilege sudoers files (`/etc/sudoers.d/jitd_grants_<privilege>`) and their
//! records, kept together.
//!
//! A privilege's file is rendered ([`super::consolidate`]) from its *record*,
//! `<state_dir>/sudo/<privilege>.jsonl`: one line per grant on the system, with its id, uid,
//! deadline and its own drop-in text. The record is the marker that lets the sweep and safe
//! mode end a grant at its deadline without the database, and what the integrity check compares
//! the file with. Both the daemon and the one-shot sweep change these files, so every change
//! is made under an exclusive `flock` on `<state_dir>/sudo/lock`, from the record on disk.
//!
//! Order: a grant is added to the record before the file (a crash between leaves a record the
//! next change or the integrity check renders), and taken out of the file before the record (a
//! crash between leaves the grant in the record, so its removal is retried; never a user in the
//! file that no record explains). Every file write is the drop-in directory's checked path:
//! temp file, fsync, `visudo -cf`, rename, directory fsync.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::consolidate::{self, USERS_FILE, USERS_MARKER, defaults};
use super::record_file::RecordFiles;
use super::users::{Counts, FileChange, Users};
use super::{DropInStatus, SudoersDir};
use crate::clock::Clock;
use crate::effects::GrantError;
use crate::names::{GrantId, PrivilegeName};

/// One grant in a privilege's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub grant: GrantId,
    pub uid: u32,
    /// The grant's deadline by the wall clock, in ms.
    pub until_ms: i64,
    /// The grant's own drop-in text, as the database keeps it.
    pub text: Arc<str>,
}

/// A privilege's record: its grants by id.
pub(super) type Record = BTreeMap<GrantId, Entry>;

/// The per-privilege files and their records.
pub struct Shards {
    sudoers: SudoersDir,
    records: PathBuf,
    /// What the last look at each privilege found, by the two files' identities: the integrity
    /// check asks about every grant, and thousands of grants share a few files.
    seen: Mutex<HashMap<PrivilegeName, Arc<Seen>>>,
    /// Files found not as their record said when a change came to rewrite them (deleted or
    /// edited behind jitd's back): the change puts them right, and the core audits it.
    drift: Mutex<Vec<(PrivilegeName, String)>>,
    /// The records on disk, and this process's parsed copies ([`super::record_file`]).
    files: RecordFiles,
    /// Each privilege's file as this process last wrote it ([`Self::shown_stands`]).
    shown: Mutex<HashMap<PrivilegeName, (Stamp, u64)>>,
    /// The users file's last look, by the identities of its counts and itself.
    users_seen: Mutex<Option<((Stamp, Stamp), DropInStatus)>>,
    /// How long a user's settings line outlives their last grant ([`super::users::LINGER_MS`]).
    linger_ms: i64,
    /// When a line's last grant went, and whether its linger is over.
    clock: Arc<dyn Clock>,
    /// `users.json` as last read or written.
    users_known: Mutex<Option<super::users::Known>>,
}

struct Seen {
    stamps: (Stamp, Stamp),
    /// Each grant's text, shared with the record's entry (not a copy).
    texts: HashMap<GrantId, Arc<str>>,
    file: DropInStatus,
}

/// A file's identity and change time: equal stamps mean an unchanged file (`ctime` cannot be
/// set back from user space).
pub(super) type Stamp = Option<(u64, u64, i64, i64, u64)>;

pub(super) fn stamp(path: &Path) -> Stamp {
    fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), m.len()))
}

impl Shards {
    pub fn new(sudoers: SudoersDir, records: PathBuf, clock: Arc<dyn Clock>) -> Self {
        Self {
            sudoers,
            records: records.clone(),
            seen: Mutex::new(HashMap::new()),
            drift: Mutex::new(Vec::new()),
            users_seen: Mutex::new(None),
            files: RecordFiles::new(records),
            shown: Mutex::new(HashMap::new()),
            linger_ms: super::users::LINGER_MS,
            clock,
            users_known: Mutex::new(None),
        }
    }

    fn record_path(&self, p: &PrivilegeName) -> PathBuf {
        self.files.path(p)
    }

    fn file_path(&self, p: &PrivilegeName) -> PathBuf {
        self.sudoers.dir().join(consolidate::file_name(p))
    }

    /// Runs `f` under the exclusive lock shared with the sweep.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, GrantError>) -> Result<T, GrantError> {
        let lock = self.lock()?;
        let out = f();
        drop(lock);
        out
    }

    /// Takes the exclusive lock shared with the sweep, held until the file is dropped.
    fn lock(&self) -> Result<fs::File, GrantError> {
        let io = |e| GrantError::io(&self.records, e);
        match fs::DirBuilder::new().mode(0o700).create(&self.records) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(io(e)),
            _ => {}
        }
        let lock_path = self.records.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| GrantError::io(&lock_path, e))?;
        lock.lock().map_err(|e| GrantError::io(&lock_path, e))?;
        Ok(lock)
    }

    /// The record of `p` as on disk (empty when there is none).
    fn read(&self, p: &PrivilegeName) -> Result<Record, GrantError> {
        self.files.read(p, false)
    }

    /// Like [`Self::read`], by a caller holding the records' lock ([`Self::locked`]).
    pub(super) fn read_locked(&self, p: &PrivilegeName) -> Result<Record, GrantError> {
        self.files.read(p, true)
    }

    /// The file's text for `entries`.
    fn render(p: &PrivilegeName, entries: &BTreeMap<GrantId, Entry>) -> Result<String, GrantError> {
        consolidate::render(p, entries.values().map(|e| &*e.text))
            .map_err(|what| GrantError::Verify { what })
    }

    /// Notes when the file of `p` is not what `entries` (its record) renders.
    fn note_drift(&self, p: &PrivilegeName, entries: &BTreeMap<GrantId, Entry>) {
        if entries.is_empty() || self.shown_stands(p) {
            return;
        }
        let name = consolidate::file_name(p);
        let found = match Self::render(p, entries)
            .and_then(|text| self.sudoers.status_named(&name, &text))
        {
            Ok(DropInStatus::Intact) => return,
            Ok(DropInStatus::Missing) => "missing".to_string(),
            Ok(DropInStatus::Tampered(why)) => format!("tampered: {why}"),
            Err(e) => e.to_string(),
        };
        if let Ok(mut d) = self.drift.lock() {
            d.push((p.clone(), found));
        }
    }

    /// The files found altered since the last call, with what was found.
    pub fn take_drift(&self) -> Vec<(PrivilegeName, String)> {
        self.drift
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }

    /// Makes the file of `p` say exactly `entries` (removes it when there are none).
    fn show(
        &self,
        p: &PrivilegeName,
        entries: &BTreeMap<GrantId, Entry>,
    ) -> Result<(), GrantError> {
        let name = consolidate::file_name(p);
        if entries.is_empty() {
            return self
                .sudoers
                .remove_named(&name, &consolidate::marker(p))
                .map(|_| ());
        }
        let text = Self::render(p, entries)?;
        self.sudoers
            .install_named(&name, &consolidate::marker(p), &text)
    }

    /// Takes the grants `ids` out of the file of `p`: one file write for all of them.
    pub fn take(&self, p: &PrivilegeName, ids: &[&GrantId]) -> Result<(), GrantError> {
        self.locked(|| {
            let before = self.read_locked(p)?;
            self.note_drift(p, &before);
            let mut after = before.clone();
            for id in ids {
                after.remove(*id);
            }
            self.show(p, &after)?;
            if after != before {
                self.files.write(p, &before, &after)?;
                let gone: Vec<&str> = before
                    .iter()
                    .filter(|(id, _)| !after.contains_key(*id))
                    .flat_map(|(_, e)| defaults(&e.text))
                    .collect();
                self.users().adjust(&[], &gone)?;
            }
            self.note_shown(p);
            Ok(())
        })
    }

    /// The stamp of `p`'s file with the records' generation: what [`Self::note_shown`] keeps.
    fn shown_now(&self, p: &PrivilegeName) -> (Stamp, u64) {
        (stamp(&self.file_path(p)), self.files.generation())
    }

    /// Keeps what `p`'s file is now: just written from its record, under the lock.
    fn note_shown(&self, p: &PrivilegeName) {
        let now = self.shown_now(p);
        if let Ok(mut shown) = self.shown.lock() {
            shown.insert(p.clone(), now);
        }
    }

    /// Whether `p`'s file is still the one this process last wrote from its record, and no
    /// other process has written records since: then it says what the record renders, and
    /// a change need not render the record again to look for drift (a thousand grants'
    /// rules). The integrity check looks at the file itself whatever this says.
    fn shown_stands(&self, p: &PrivilegeName) -> bool {
        let now = self.shown_now(p);
        now.0.is_some()
            && self
                .shown
                .lock()
                .is_ok_and(|shown| shown.get(p) == Some(&now))
    }

    /// Where `id` stands: in the record with `text` and the file as the record says (intact),
    /// not in the record (missing), or otherwise (tampered, with why).
    pub fn status(
        &self,
        p: &PrivilegeName,
        id: &GrantId,
        text: &str,
    ) -> Result<DropInStatus, GrantError> {
        let stamps = (stamp(&self.record_path(p)), stamp(&self.file_path(p)));
        let cached = self
            .seen
            .lock()
            .ok()
            .and_then(|s| s.get(p).filter(|s| s.stamps == stamps).map(Arc::clone));
        let seen = match cached {
            Some(seen) => seen,
            None => {
                let entries = self.read(p)?;
                let file = if entries.is_empty() {
                    DropInStatus::Missing
                } else {
                    let name = consolidate::file_name(p);
                    self.sudoers
                        .status_named(&name, &Self::render(p, &entries)?)?
                };
                let seen = Arc::new(Seen {
                    stamps,
                    texts: entries
                        .values()
                        .map(|e| (e.grant.clone(), Arc::clone(&e.text)))
                        .collect(),
                    file,
                });
                if let Ok(mut s) = self.seen.lock() {
                    s.insert(p.clone(), Arc::clone(&seen));
                }
                seen
            }
        };
        Ok(match seen.texts.get(id) {
            None => DropInStatus::Missing,
            Some(t) if **t != *text => DropInStatus::Tampered("its record changed".into()),
            Some(_) if seen.file != DropInStatus::Intact => seen.file.clone(),
            Some(_) if defaults(text).is_empty() => DropInStatus::Intact,
            Some(_) => match self.users_status()? {
                DropInStatus::Intact => DropInStatus::Intact,
                DropInStatus::Missing => DropInStatus::Tampered(format!("{USERS_FILE} missing")),
                DropInStatus::Tampered(why) => {
                    DropInStatus::Tampered(format!("{USERS_FILE}: {why}"))
                }
            },
        })
    }

    /// The text `p`'s record had for `id` when last checked, shared (not copied), if it is
    /// `text`: a live grant then keeps the one copy.
    pub fn shared_text(&self, p: &PrivilegeName, id: &GrantId, text: &str) -> Option<Arc<str>> {
        let seen = self.seen.lock().ok()?;
        seen.get(p)?
            .texts
            .get(id)
            .filter(|t| ***t == *text)
            .cloned()
    }

    /// Every privilege with a record.
    pub fn privileges(&self) -> Result<Vec<PrivilegeName>, GrantError> {
        let rd = match fs::read_dir(&self.records) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(GrantError::io(&self.records, e)),
        };
        let mut out: Vec<PrivilegeName> = rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| {
                n.strip_suffix(".jsonl")
                    .and_then(|p| PrivilegeName::parse(p).ok())
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every grant in every record, with its privilege.
    pub fn entries(&self) -> (Vec<(PrivilegeName, Entry)>, Vec<GrantError>) {
        let (mut found, mut errors) = (Vec::new(), Vec::new());
        match self.privileges() {
            Ok(ps) => {
                for p in ps {
                    match self.read(&p) {
                        Ok(entries) => found.extend(entries.into_values().map(|e| (p.clone(), e))),
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
        (found, errors)
    }

    /// The privilege whose record holds `id`.
    pub fn find(&self, id: &GrantId) -> Option<PrivilegeName> {
        self.entries()
            .0
            .into_iter()
            .find(|(_, e)| &e.grant == id)
            .map(|(p, _)| p)
    }

    /// Files `jitd_grants_*` that carry no record of jitd's (a privilege's file left behind by
    /// a crash after its record went, or one that is not jitd's): removed when jitd's, else
    /// reported.
    pub fn stray_files(&self) -> Result<Vec<PathBuf>, GrantError> {
        let known = self.privileges()?;
        let mut out = Vec::new();
        let rd =
            fs::read_dir(self.sudoers.dir()).map_err(|e| GrantError::io(self.sudoers.dir(), e))?;
        for entry in rd.filter_map(Result::ok) {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some(p) = name.strip_prefix("jitd_grants_") else {
                continue;
            };
            match PrivilegeName::parse(p) {
                // A record that says no grant (a journal whose grants all went) explains no file.
                Ok(p) if known.contains(&p) && self.read(&p).map_or(true, |r| !r.is_empty()) => {}
                Ok(p) => {
                    // jitd's own, with nothing left in it: gone, under the lock.
                    if self
                        .locked(|| self.show(&p, &self.read_locked(&p)?))
                        .is_err()
                    {
                        out.push(entry.path());
                    }
                }
                Err(_) => out.push(entry.path()),
            }
        }
        out.sort();
        Ok(out)
    }
}

#[path = "shards_users.rs"]
mod users_side;

#[path = "shards_put.rs"]
mod put;
pub use put::StagedPut;

#[cfg(test)]
#[path = "shards_tests.rs"]
mod tests;
