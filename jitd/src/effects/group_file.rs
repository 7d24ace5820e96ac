//! Many memberships taken out of /etc/group and /etc/gshadow in one locked edit, for the grants
//! that end together (a shift change): `gpasswd -d` per membership costs a process, a full read
//! and two fsynced rewrites of both files each time, so 500 of them take seconds.
//!
//! The edit is the one gpasswd makes (shadow-utils' lib/commonio.c): the locks of
//! [`super::shadow_lock`]; then, for each file that changes, a backup `<file>-` holding the
//! previous text (same owner and mode, and its times), the new text written to a temporary in
//! the same directory created with `O_EXCL`, given the original's owner and mode (masked with
//! 0664 as shadow-utils does), fsynced, renamed over the file (/etc/group first, then
//! /etc/gshadow, as gpasswd closes them), then the directory fsynced. Only the member list (the
//! fourth field of both files; gshadow's third field, the administrators, is left alone) of the
//! lines naming a group changes; every other byte stays as it was, comments and order included.
//! Afterwards both files are read again and every membership is checked to be gone.
//!
//! Where that edit would not be the one shadow-utils makes, jitd does not make it and the
//! caller falls back to `gpasswd -d` per membership ([`Outcome::Fallback`]): NIS `+`/`-` lines
//! (their semantics belong to the name service), a file that is not a plain file (a symlink
//! into another file system), no /etc/gshadow, or SELinux (new files must get the labels that
//! shadow-utils sets through libselinux, which jitd does not link).

#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::fs::{File, FileTimes, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::GrantError;
use super::shadow_lock;
use crate::names::{GroupName, UserName};

/// Where the group files and shadow-utils' lock are (the system's, or a test's copies).
#[derive(Debug, Clone)]
pub struct GroupFiles {
    pub group: PathBuf,
    pub gshadow: PathBuf,
    pub pwd_lock: PathBuf,
    pub lock_timeout: Duration,
}

/// What one batch did.
#[derive(Debug)]
pub enum Outcome {
    /// Edited (or nothing to do): one result per membership, in order; `changed` when a file
    /// was rewritten.
    Edited {
        results: Vec<Result<(), GrantError>>,
        changed: bool,
    },
    /// This host's files are not for a direct edit (the reason says why): use gpasswd.
    Fallback(String),
}

/// Member names to take out, by group name.
type Removals<'a> = HashMap<&'a [u8], HashSet<&'a [u8]>>;

impl GroupFiles {
    pub fn system() -> Self {
        Self {
            group: PathBuf::from("/etc/group"),
            gshadow: PathBuf::from("/etc/gshadow"),
            pwd_lock: PathBuf::from("/etc/.pwd.lock"),
            lock_timeout: shadow_lock::LOCK_TIMEOUT,
        }
    }

    /// Takes every `(user, group)` membership out of both files in one locked edit.
    pub fn remove_members(&self, members: &[(UserName, GroupName)]) -> Result<Outcome, GrantError> {
        self.remove_members_observed(members, &mut || {})
    }

    /// [`Self::remove_members`], running `while_locked` once the locks are held and before the
    /// files are read, so a test can show that other tools wait for the edit.
    pub fn remove_members_observed(
        &self,
        members: &[(UserName, GroupName)],
        while_locked: &mut dyn FnMut(),
    ) -> Result<Outcome, GrantError> {
        if members.is_empty() {
            return Ok(Outcome::Edited {
                results: Vec::new(),
                changed: false,
            });
        }
        if let Some(why) = self.not_for_direct_edit()? {
            return Ok(Outcome::Fallback(why));
        }
        let mut removals: Removals = HashMap::new();
        for (user, group) in members {
            removals
                .entry(group.as_str().as_bytes())
                .or_default()
                .insert(user.as_str().as_bytes());
        }
        let lock = shadow_lock::acquire(
            &self.pwd_lock,
            &[&self.group, &self.gshadow],
            self.lock_timeout,
        )?;
        while_locked();
        for file in [&self.group, &self.gshadow] {
            remove_stale_temps(file);
        }
        let group = Snapshot::read(&self.group)?;
        let gshadow = Snapshot::read(&self.gshadow)?;
        for file in [&group, &gshadow] {
            if has_nis_lines(&file.text) {
                return Ok(Outcome::Fallback(format!(
                    "{} has NIS +/- lines",
                    file.path.display()
                )));
            }
        }
        let new_group = strip_members(&group.text, &removals);
        let new_gshadow = strip_members(&gshadow.text, &removals);
        let changed = new_group.is_some() || new_gshadow.is_some();
        if changed {
            replace_both(
                &group,
                new_group.as_deref(),
                &gshadow,
                new_gshadow.as_deref(),
            )?;
        }
        let results = self.verify(members)?;
        drop(lock);
        Ok(Outcome::Edited { results, changed })
    }

    /// Why the files must be left to gpasswd, if they must.
    fn not_for_direct_edit(&self) -> Result<Option<String>, GrantError> {
        if Path::new("/sys/fs/selinux/enforce").exists() {
            return Ok(Some("SELinux is enabled".into()));
        }
        for path in [&self.group, &self.gshadow] {
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_file() => {}
                Ok(_) => return Ok(Some(format!("{} is not a plain file", path.display()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == &self.gshadow => {
                    return Ok(Some(format!("{} does not exist", path.display())));
                }
                Err(e) => return Err(GrantError::io(path, e)),
            }
        }
        Ok(None)
    }

    /// Reads both files again: each membership is either gone from both or its own error.
    fn verify(
        &self,
        members: &[(UserName, GroupName)],
    ) -> Result<Vec<Result<(), GrantError>>, GrantError> {
        let mut left: HashMap<(Vec<u8>, Vec<u8>), &Path> = HashMap::new();
        for path in [&self.group, &self.gshadow] {
            let text = std::fs::read(path).map_err(|e| GrantError::io(path, e))?;
            for (group, users) in member_lists(&text) {
                for user in users {
                    left.insert((group.to_vec(), user.to_vec()), path);
                }
            }
        }
        Ok(members
            .iter()
            .map(|(user, group)| {
                let key = (
                    group.as_str().as_bytes().to_vec(),
                    user.as_str().as_bytes().to_vec(),
                );
                match left.get(&key) {
                    None => Ok(()),
                    Some(path) => Err(GrantError::Verify {
                        what: format!(
                            "{user} is still a member of {group} in {} after the edit",
                            path.display()
                        ),
                    }),
                }
            })
            .collect())
    }
}

/// Whether any line is a NIS inclusion (`+name`, `-name`, `+`).
pub fn has_nis_lines(text: &[u8]) -> bool {
    text.split(|b| *b == b'\n')
        .any(|line| matches!(line.first(), Some(b'+' | b'-')))
}

/// Each line's group name and explicit members (fourth field, trimmed, empty ones skipped).
fn member_lists(text: &[u8]) -> impl Iterator<Item = (&[u8], Vec<&[u8]>)> {
    text.split(|b| *b == b'\n').filter_map(|line| {
        let (name, field) = member_field(line)?;
        let members = field
            .split(|b| *b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|m| !m.is_empty())
            .collect();
        Some((name, members))
    })
}

/// A line's group name and the byte range of its member list (the fourth field, up to a fifth
/// colon or the end of the line without its `\r`); `None` for lines with fewer fields.
fn member_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let range = member_range(line)?;
    let name_end = line.iter().position(|b| *b == b':')?;
    Some((&line[..name_end], &line[range]))
}

fn member_range(line: &[u8]) -> Option<std::ops::Range<usize>> {
    let body = line.strip_suffix(b"\r").unwrap_or(line);
    let mut colons = body
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b':')
        .map(|(i, _)| i);
    let start = colons.nth(2)? + 1;
    let end = colons.next().unwrap_or(body.len());
    Some(start..end)
}

/// `text` with each listed user taken out of the member lists of the lines naming its group
/// (every such line: a duplicate line would still give the group at login); `None` when
/// nothing is listed. The other members keep their exact bytes and order.
fn strip_members(text: &[u8], removals: &Removals) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut changed = false;
    for line in text.split_inclusive(|b| *b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let stripped = member_field(body).and_then(|(name, field)| {
            let users = removals.get(name)?;
            let kept: Vec<&[u8]> = field
                .split(|b| *b == b',')
                .filter(|m| !users.contains(m.trim_ascii()))
                .collect();
            let before = field.split(|b| *b == b',').count();
            (kept.len() != before).then_some(kept)
        });
        match (stripped, member_range(body)) {
            (Some(kept), Some(range)) => {
                changed = true;
                out.extend_from_slice(&line[..range.start]);
                out.extend_from_slice(&kept.join(&b","[..]));
                out.extend_from_slice(&line[range.end..]);
            }
            _ => out.extend_from_slice(line),
        }
    }
    changed.then_some(out)
}

/// A file as read under the locks: its bytes and what the new one must keep.
struct Snapshot {
    path: PathBuf,
    text: Vec<u8>,
    meta: Metadata,
}

impl Snapshot {
    fn read(path: &Path) -> Result<Self, GrantError> {
        let io = |e| GrantError::io(path, e);
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(io)?;
        let meta = f.metadata().map_err(io)?;
        let mut text = Vec::with_capacity(meta.len() as usize);
        f.read_to_end(&mut text).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
            meta,
        })
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// A new file next to this one holding `bytes`, with this one's owner and mode (masked
    /// with 0664, as shadow-utils' fmkstemp_set_perms does), synced; removed again on failure.
    fn write_temp(&self, bytes: &[u8], times: bool) -> Result<PathBuf, GrantError> {
        let bits = crate::sys::random_bits().map_err(|e| GrantError::io(&self.path, e))?;
        let temp = with_suffix(&self.path, &format!(".jitd{bits:016x}"));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temp)?;
            std::os::unix::fs::fchown(&f, Some(self.meta.uid()), Some(self.meta.gid()))?;
            f.set_permissions(std::fs::Permissions::from_mode(self.meta.mode() & 0o664))?;
            f.write_all(bytes)?;
            if times {
                let mut t = FileTimes::new();
                if let Ok(a) = self.meta.accessed() {
                    t = t.set_accessed(a);
                }
                if let Ok(m) = self.meta.modified() {
                    t = t.set_modified(m);
                }
                f.set_times(t)?;
            }
            f.sync_all()
        })();
        result.map(|()| temp.clone()).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            GrantError::io(&temp, e)
        })
    }

    /// The backup `<file>-` with the text as it was (and its times), as shadow-utils keeps it.
    fn backup(&self) -> Result<(), GrantError> {
        let temp = self.write_temp(&self.text, true)?;
        let backup = with_suffix(&self.path, "-");
        std::fs::rename(&temp, &backup).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            GrantError::io(&backup, e)
        })
    }
}

/// Temporaries of an edit that died half-way (`<file>.jitd` and 16 hex digits): under the
/// locks no edit of ours is under way, so whatever has that name is left over.
fn remove_stale_temps(file: &Path) {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let prefix = format!("{name}.jitd");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let leaf = entry.file_name();
        let is_temp = leaf
            .to_str()
            .and_then(|l| l.strip_prefix(&prefix))
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_temp {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn sync_dir(dir: &Path) -> Result<(), GrantError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| GrantError::io(dir, e))
}

/// Puts the new texts in place: backups and temporaries first (a failure there changes
/// nothing), then /etc/group, then /etc/gshadow. If /etc/gshadow cannot be replaced after
/// /etc/group was, /etc/group is put back; the error says exactly what each file holds.
fn replace_both(
    group: &Snapshot,
    new_group: Option<&[u8]>,
    gshadow: &Snapshot,
    new_gshadow: Option<&[u8]>,
) -> Result<(), GrantError> {
    let mut temps: Vec<(PathBuf, &Snapshot)> = Vec::new();
    let prepared = (|| {
        for (snap, text) in [(group, new_group), (gshadow, new_gshadow)] {
            if let Some(text) = text {
                snap.backup()?;
                temps.push((snap.write_temp(text, false)?, snap));
            }
        }
        Ok::<(), GrantError>(())
    })();
    if let Err(e) = prepared {
        for (temp, _) in &temps {
            let _ = std::fs::remove_file(temp);
        }
        return Err(e);
    }
    let mut done: Vec<&Snapshot> = Vec::new();
    for (i, (temp, snap)) in temps.iter().enumerate() {
        if let Err(e) = std::fs::rename(temp, &snap.path) {
            for (t, _) in &temps[i..] {
                let _ = std::fs::remove_file(t);
            }
            return Err(undo(&done, &snap.path, e));
        }
        done.push(snap);
    }
    sync_dir(group.dir())?;
    if gshadow.dir() != group.dir() {
        sync_dir(gshadow.dir())?;
    }
    Ok(())
}

/// After `failed` could not be replaced: puts back every file in `done` as it was.
fn undo(done: &[&Snapshot], failed: &Path, e: std::io::Error) -> GrantError {
    let mut what = format!(
        "{} could not be replaced ({e}); it is unchanged",
        failed.display()
    );
    for snap in done {
        let restored = snap.write_temp(&snap.text, true).and_then(|temp| {
            std::fs::rename(&temp, &snap.path).map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                GrantError::io(&snap.path, e)
            })
        });
        match restored.and_then(|()| sync_dir(snap.dir())) {
            Ok(()) => what.push_str(&format!("; {} was put back as it was", snap.path.display())),
            Err(e2) => what.push_str(&format!(
                "; putting {} back failed ({e2}): it no longer lists these members, {} still does",
                snap.path.display(),
                failed.display()
            )),
        }
    }
    GrantError::Verify { what }
}

/// The same error again, for each membership of a batch that failed as a whole.
pub fn again(e: &GrantError) -> GrantError {
    match e {
        GrantError::Io { path, source } => GrantError::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        GrantError::Verify { what } => GrantError::Verify { what: what.clone() },
        other => GrantError::Verify {
            what: other.to_string(),
        },
    }
}

#[cfg(test)]
#[path = "group_file_tests.rs"]
mod tests;
