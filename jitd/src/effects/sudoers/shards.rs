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

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::consolidate::{self, USERS_FILE, USERS_MARKER, defaults};
use super::record_cache::{Known, settled, text_hash};
use super::users::{Counts, FileChange, Users};
use super::{DropInStatus, SudoersDir, sync_dir};
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

/// An [`Entry`] as a line of the record (written from the entry's own strings).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    grant: Cow<'a, str>,
    uid: u32,
    until_ms: i64,
    text: Cow<'a, str>,
}

/// Replaces `dir/name` with `text` durably: a temp file (dot name), synced, renamed over it,
/// the directory synced. The records' directory is root's alone.
pub(super) fn write_synced(dir: &Path, name: &str, text: &str) -> Result<(), GrantError> {
    let (path, temp) = (dir.join(name), dir.join(format!(".{name}.tmp")));
    let io = |e| GrantError::io(&temp, e);
    let _ = fs::remove_file(&temp);
    let mut file: File = super::create_exclusive(&temp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&temp, &path).map_err(|e| GrantError::io(&path, e))?;
    sync_dir(dir)
}

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
    /// Each record as last read or written: a grant changes one entry, and parsing a
    /// privilege's whole record again for each would make granting slower as the live set
    /// grows. Kept with its file's stamp and its text's hash, not its text (a second copy of
    /// every record: 4 MB at 10,000 grants). A record whose stamp is unchanged and over a
    /// second old is not even read; one changed within the last second (when a change in the
    /// same clock tick would leave the stamp as it was) is read and its hash compared, so
    /// another writer's change (the sweep's) is never missed.
    parsed: Mutex<HashMap<PrivilegeName, Known>>,
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

fn stamp(path: &Path) -> Stamp {
    fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), m.len()))
}

impl Shards {
    pub fn new(sudoers: SudoersDir, records: PathBuf, clock: Arc<dyn Clock>) -> Self {
        Self {
            sudoers,
            records,
            seen: Mutex::new(HashMap::new()),
            drift: Mutex::new(Vec::new()),
            users_seen: Mutex::new(None),
            parsed: Mutex::new(HashMap::new()),
            linger_ms: super::users::LINGER_MS,
            clock,
            users_known: Mutex::new(None),
        }
    }

    fn record_path(&self, p: &PrivilegeName) -> PathBuf {
        self.records.join(format!("{p}.jsonl"))
    }

    fn file_path(&self, p: &PrivilegeName) -> PathBuf {
        self.sudoers.dir().join(consolidate::file_name(p))
    }

    /// Runs `f` under the exclusive lock shared with the sweep.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, GrantError>) -> Result<T, GrantError> {
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
        let out = f();
        drop(lock);
        out
    }

    /// The record of `p` as on disk (empty when there is none).
    fn read(&self, p: &PrivilegeName) -> Result<BTreeMap<GrantId, Entry>, GrantError> {
        let path = self.record_path(p);
        let mut file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(GrantError::io(&path, e)),
        };
        // The stamp of what is read, from the open file itself.
        let now = file
            .metadata()
            .ok()
            .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), m.len()));
        if let Ok(parsed) = self.parsed.lock()
            && let Some(known) = parsed.get(p)
            && known.stamp == now
            && settled(&now)
        {
            return Ok(known.entries.clone());
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text)
            .map_err(|e| GrantError::io(&path, e))?;
        let hash = text_hash(&text);
        if let Ok(mut parsed) = self.parsed.lock()
            && let Some(known) = parsed.get_mut(p)
            && known.hash == hash
        {
            known.stamp = now;
            return Ok(known.entries.clone());
        }
        let entries = Self::parse(&path, &text)?;
        if let Ok(mut parsed) = self.parsed.lock() {
            let entries = entries.clone();
            parsed.insert(
                p.clone(),
                Known {
                    stamp: now,
                    hash,
                    entries,
                },
            );
        }
        Ok(entries)
    }

    fn parse(path: &Path, text: &str) -> Result<BTreeMap<GrantId, Entry>, GrantError> {
        let mut out = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let bad = |e: String| GrantError::Verify {
                what: format!("{}:{}: {e}", path.display(), n + 1),
            };
            let line: Line = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            let entry = Entry {
                grant: GrantId::parse(&line.grant).map_err(|e| bad(e.to_string()))?,
                uid: line.uid,
                until_ms: line.until_ms,
                text: Arc::from(line.text),
            };
            out.insert(entry.grant.clone(), entry);
        }
        Ok(out)
    }

    fn write(
        &self,
        p: &PrivilegeName,
        entries: &BTreeMap<GrantId, Entry>,
    ) -> Result<(), GrantError> {
        let path = self.record_path(p);
        if entries.is_empty() {
            return match fs::remove_file(&path) {
                Ok(()) => sync_dir(&self.records),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(GrantError::io(&path, e)),
            };
        }
        let mut text = String::new();
        for e in entries.values() {
            let line = Line {
                grant: Cow::Borrowed(e.grant.as_str()),
                uid: e.uid,
                until_ms: e.until_ms,
                text: Cow::Borrowed(&e.text),
            };
            let line = serde_json::to_string(&line).map_err(|e| GrantError::Verify {
                what: e.to_string(),
            })?;
            text.push_str(&line);
            text.push('\n');
        }
        write_synced(&self.records, &format!("{p}.jsonl"), &text)?;
        // Written under the lock every writer takes: the stamp is of this text.
        if let Ok(mut parsed) = self.parsed.lock() {
            let known = Known {
                stamp: stamp(&path),
                hash: text_hash(&text),
                entries: entries.clone(),
            };
            parsed.insert(p.clone(), known);
        }
        Ok(())
    }

    /// The file's text for `entries`.
    fn render(p: &PrivilegeName, entries: &BTreeMap<GrantId, Entry>) -> Result<String, GrantError> {
        consolidate::render(p, entries.values().map(|e| &*e.text))
            .map_err(|what| GrantError::Verify { what })
    }

    /// Notes when the file of `p` is not what `entries` (its record) renders.
    fn note_drift(&self, p: &PrivilegeName, entries: &BTreeMap<GrantId, Entry>) {
        if entries.is_empty() {
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

    /// The files after a grant's entry changed in `p`'s record: when the user's settings line
    /// appears (a user's first grant), the users file and the privilege's file are written
    /// with one `visudo` run, the settings (the ledger's logging) renamed in before the rule;
    /// otherwise as [`Users::adjust`] and [`Self::show`] do. The counts follow the files.
    fn put_files(
        &self,
        p: &PrivilegeName,
        after: &Record,
        added: &[&str],
        removed: &[&str],
    ) -> Result<(), GrantError> {
        let users = self.users();
        match users.plan(added, removed)? {
            (tally, Some(FileChange::Install(users_text))) => {
                let (name, marker) = (consolidate::file_name(p), consolidate::marker(p));
                let rule = Self::render(p, after)?;
                self.sudoers.install_named_together(&[
                    (USERS_FILE, USERS_MARKER, &users_text),
                    (&name, &marker, &rule),
                ])?;
                users.write(&tally)
            }
            planned => {
                users.carry_out(planned, !added.is_empty() || !removed.is_empty())?;
                self.show(p, after).inspect_err(|_| {
                    let _ = users.adjust(removed, added);
                })
            }
        }
    }

    /// Puts (or replaces) `entry` in the file of `p`; idempotent.
    pub fn put(&self, p: &PrivilegeName, entry: Entry) -> Result<(), GrantError> {
        // Refused before anything is written: a text the file could not hold.
        consolidate::render(p, [&*entry.text]).map_err(|what| GrantError::Verify { what })?;
        self.locked(|| {
            let before = self.read(p)?;
            self.note_drift(p, &before);
            let old: Vec<String> = before
                .get(&entry.grant)
                .map(|e| defaults(&e.text).into_iter().map(str::to_string).collect())
                .unwrap_or_default();
            let old: Vec<&str> = old.iter().map(String::as_str).collect();
            let new: Vec<String> = defaults(&entry.text)
                .into_iter()
                .map(str::to_string)
                .collect();
            let new: Vec<&str> = new.iter().map(String::as_str).collect();
            let mut after = before.clone();
            after.insert(entry.grant.clone(), entry);
            if after == before {
                // Nothing new: the file is put right if it was changed behind jitd's back.
                self.show(p, &after)?;
            } else {
                // Record, then the files, then the counts.
                self.write(p, &after)?;
                self.put_files(p, &after, &new, &old).inspect_err(|_| {
                    // The rule was not put in place: the record goes back to what it says.
                    let _ = self.write(p, &before);
                })?;
            }
            // The users file deleted or edited behind jitd's back: counted again and rewritten.
            if self.users_status()? != DropInStatus::Intact {
                self.recount_locked()?;
            }
            Ok(())
        })
    }

    /// Takes the grants `ids` out of the file of `p`: one file write for all of them.
    pub fn take(&self, p: &PrivilegeName, ids: &[&GrantId]) -> Result<(), GrantError> {
        self.locked(|| {
            let before = self.read(p)?;
            self.note_drift(p, &before);
            let mut after = before.clone();
            for id in ids {
                after.remove(*id);
            }
            self.show(p, &after)?;
            if after != before {
                self.write(p, &after)?;
                let gone: Vec<&str> = before
                    .iter()
                    .filter(|(id, _)| !after.contains_key(*id))
                    .flat_map(|(_, e)| defaults(&e.text))
                    .collect();
                self.users().adjust(&[], &gone)?;
            }
            Ok(())
        })
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
                Ok(p) if known.contains(&p) => {}
                Ok(p) => {
                    // jitd's own, with nothing left in it: gone, under the lock.
                    if self.locked(|| self.show(&p, &self.read(&p)?)).is_err() {
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

#[cfg(test)]
#[path = "shards_tests.rs"]
mod tests;
