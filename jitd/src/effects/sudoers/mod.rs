//! sudoers drop-ins. Each grant's rule is rendered here ([`render`]) and kept in the database;
//! on the system, the grants of one privilege share one file ([`shards`], [`consolidate`]).
//! One file per grant, `/etc/sudoers.d/jitd-<grant id>`, is what earlier jitd wrote: those
//! are still recognised, and removed as their grants move or end.
//!
//! Invariants:
//! - The text is produced only by [`render`] from validated types: exactly one user
//!   specification, for `#<uid>` (never a name: no alias confusion with `ALL` or upper-case
//!   names), run-as `(#<uid>)`, the admin's exact commands, `NOTAFTER=<UTC>Z` on classic sudo.
//!   uid 4294967295 (-1, CVE-2019-14287) is refused.
//! - The first line is jitd's marker. jitd only ever replaces or deletes a regular file that
//!   carries it; anything else at its path (symlink, FIFO, directory, someone's file) is
//!   reported and left alone.
//! - Install is: temp file `.jitd-<id>.tmp` (a name with a dot, which sudo never reads) opened
//!   `O_EXCL|O_NOFOLLOW`, root 0440, written, fsynced, checked by `visudo -cf`, renamed over
//!   the final name, directory fsynced. Every failure removes the temp file, so a broken
//!   drop-in can never become visible to sudo.

#![forbid(unsafe_code)]

mod checked_write;
pub mod consolidate;
mod record_cache;
mod record_file;
pub(crate) use record_file::write_synced;
pub mod shards;
pub mod users;

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{GrantError, run_tool};
use crate::clock::sudoers_stamp;
use crate::names::{GrantId, PrivilegeName, SudoCommand};

/// Which sudo reads the drop-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SudoFlavor {
    /// The original sudo; `notafter` when it is 1.8.20 or later.
    Classic { version: String, notafter: bool },
    /// sudo-rs, which rejects `NOTAFTER`.
    SudoRs { version: String },
}

/// Reads the implementation and version from `sudo --version`.
pub fn detect(sudo: &Path) -> Result<SudoFlavor, GrantError> {
    let out = run_tool(sudo, &[OsStr::new("--version")])?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| GrantError::ToolMissing {
        tool: sudo.to_path_buf(),
        why: format!(
            "unrecognised `sudo --version` output: {:?}",
            text.lines().next()
        ),
    })
}

/// Parses the first line of `sudo --version`.
pub fn parse_version(stdout: &str) -> Option<SudoFlavor> {
    let first = stdout.lines().next()?.trim();
    if let Some(rest) = first.strip_prefix("sudo-rs ") {
        return Some(SudoFlavor::SudoRs {
            version: rest.trim().to_string(),
        });
    }
    let version = first.strip_prefix("Sudo version ")?.trim().to_string();
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    let patch: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let notafter = (major, minor, patch) >= (1, 8, 20);
    Some(SudoFlavor::Classic { version, notafter })
}

/// One grant's sudo rule.
#[derive(Debug, Clone)]
pub struct DropIn<'a> {
    pub grant: &'a GrantId,
    pub uid: u32,
    pub privilege: &'a PrivilegeName,
    pub run_as_uid: u32,
    pub commands: &'a [SudoCommand],
    pub password_each_time: bool,
    pub not_after_unix_secs: i64,
}

/// The first line of every jitd drop-in.
pub fn marker(id: &GrantId) -> String {
    format!("# jitd grant {id}: managed by jitd, do not edit")
}

/// The drop-in text for `d`.
pub fn render(d: &DropIn<'_>, flavor: &SudoFlavor) -> Result<String, GrantError> {
    if d.uid == u32::MAX || d.run_as_uid == u32::MAX {
        return Err(GrantError::Verify {
            what: "uid 4294967295 (-1) is never granted".into(),
        });
    }
    if d.commands.is_empty() {
        return Err(GrantError::Verify {
            what: "a sudo grant needs at least one command".into(),
        });
    }
    let stamp = sudoers_stamp(d.not_after_unix_secs);
    let notafter = match flavor {
        SudoFlavor::Classic { notafter: true, .. } => format!(" NOTAFTER={stamp}"),
        _ => String::new(),
    };
    let tag = if d.password_each_time {
        "PASSWD:"
    } else {
        "NOPASSWD:"
    };
    let specs: Vec<String> = d
        .commands
        .iter()
        .map(|c| format!("(#{}){notafter} {tag} {}", d.run_as_uid, c.to_sudoers()))
        .collect();
    let mut text = format!(
        "{}\n# privilege {} for uid {} until {stamp} (UTC)\n",
        marker(d.grant),
        d.privilege,
        d.uid
    );
    if d.password_each_time {
        // Ask for the password on every use while the grant lasts, not once per 15 minutes.
        text.push_str(&format!("Defaults:#{} timestamp_timeout=0\n", d.uid));
    }
    text.push_str(&format!("#{} ALL={}\n", d.uid, specs.join(", ")));
    Ok(text)
}

/// What a drop-in jitd rendered grants, read back from its text: the run-as uid, the exact
/// commands and whether the password is asked each time. The inverse of [`render`] (a property
/// test holds them together); `None` for text jitd did not render. Grants recorded before the
/// typed [`crate::grant::GrantSpec`] existed are read this way.
pub fn parse_rule(text: &str, uid: u32) -> Option<(u32, Vec<SudoCommand>, bool)> {
    let prefix = format!("#{uid} ALL=");
    let rule = text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))?;
    let mut run_as = None;
    let mut password_each_time = None;
    let mut commands = Vec::new();
    // Specs are joined by ", (#"; a comma inside an argument is always escaped as "\,", and
    // arguments cannot hold "(", so the split is exact.
    for (i, spec) in rule.split(", (#").enumerate() {
        let spec = if i == 0 {
            spec.strip_prefix("(#")?
        } else {
            spec
        };
        let (runas, rest) = spec.split_once(')')?;
        let runas: u32 = runas.parse().ok()?;
        if *run_as.get_or_insert(runas) != runas {
            return None;
        }
        let (each_time, command) = if let Some((_, c)) = rest.split_once(" NOPASSWD: ") {
            (false, c)
        } else {
            (true, rest.split_once(" PASSWD: ")?.1)
        };
        if *password_each_time.get_or_insert(each_time) != each_time {
            return None;
        }
        let command = command.strip_suffix(" \"\"").unwrap_or(command);
        let command = command
            .replace("\\,", ",")
            .replace("\\:", ":")
            .replace("\\=", "=");
        commands.push(SudoCommand::parse(&command).ok()?);
    }
    Some((run_as?, commands, password_each_time?))
}

/// Whether a drop-in is on disk as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropInStatus {
    Missing,
    Intact,
    Tampered(String),
}

/// The sudoers drop-in directory.
pub struct SudoersDir {
    dir: PathBuf,
    visudo: PathBuf,
}

impl SudoersDir {
    pub fn new(dir: PathBuf, visudo: PathBuf) -> Self {
        Self { dir, visudo }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_for(&self, id: &GrantId) -> PathBuf {
        self.dir.join(format!("jitd-{id}"))
    }

    fn temp_for(&self, id: &GrantId) -> PathBuf {
        self.dir.join(format!(".jitd-{id}.tmp"))
    }

    /// The directory must be a real directory, owned by root, writable by nobody else:
    /// otherwise someone else could swap files under sudo, and jitd refuses to take part.
    pub fn check_dir(&self) -> Result<(), GrantError> {
        let meta = fs::symlink_metadata(&self.dir).map_err(|e| GrantError::io(&self.dir, e))?;
        let unsafe_dir = |why: &str| GrantError::UnsafeDir {
            path: self.dir.clone(),
            why: why.into(),
        };
        if !meta.file_type().is_dir() {
            return Err(unsafe_dir("not a directory (or a symlink)"));
        }
        if meta.uid() != 0 {
            return Err(unsafe_dir("not owned by root"));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_dir(
                "writable by group or others; run: chmod go-w on it",
            ));
        }
        Ok(())
    }

    /// Puts `text` at the grant's path. Idempotent: the same text already there is success.
    pub fn install(&self, id: &GrantId, text: &str) -> Result<(), GrantError> {
        self.install_file(&self.path_for(id), &self.temp_for(id), &marker(id), text)
    }

    /// Puts `text`, whose first line is `marker`, at `name` in the directory, the way a grant's
    /// drop-in is installed (for jitd's other sudoers file, the routes).
    pub fn install_named(&self, name: &str, marker: &str, text: &str) -> Result<(), GrantError> {
        let (path, temp) = (self.dir.join(name), self.dir.join(format!(".{name}.tmp")));
        self.install_file(&path, &temp, marker, text)
    }

    /// Removes `name` if it carries `marker`; missing is success.
    pub fn remove_named(&self, name: &str, marker: &str) -> Result<bool, GrantError> {
        let path = self.dir.join(name);
        let _ = remove_if_ours_temp(&self.dir.join(format!(".{name}.tmp")));
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(GrantError::io(&path, e)),
            Ok(meta) if meta.file_type().is_file() && carries(&path, marker) => {
                fs::remove_file(&path).map_err(|e| GrantError::io(&path, e))?;
                sync_dir(&self.dir)?;
                Ok(true)
            }
            Ok(_) => Err(GrantError::Foreign { path }),
        }
    }

    /// Compares the file `name` on disk with `expected`.
    pub fn status_named(&self, name: &str, expected: &str) -> Result<DropInStatus, GrantError> {
        file_status(&self.dir.join(name), expected, 0o440)
    }

    fn install_file(
        &self,
        path: &Path,
        temp: &Path,
        marker: &str,
        text: &str,
    ) -> Result<(), GrantError> {
        self.stage(&[(path.to_path_buf(), temp.to_path_buf(), marker, text)])?
            .commit()
    }

    /// Removes the grant's drop-in. Missing is success (`Ok(false)`); a file jitd did not write
    /// is never removed.
    pub fn remove(&self, id: &GrantId) -> Result<bool, GrantError> {
        let path = self.path_for(id);
        let _ = remove_if_ours_temp(&self.temp_for(id));
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(GrantError::io(&path, e)),
            Ok(meta) if meta.file_type().is_file() && self.carries_marker(&path, id) => {
                fs::remove_file(&path).map_err(|e| GrantError::io(&path, e))?;
                sync_dir(&self.dir)?;
                Ok(true)
            }
            Ok(_) => Err(GrantError::Foreign { path }),
        }
    }

    /// Compares the file on disk with `expected`.
    pub fn status(&self, id: &GrantId, expected: &str) -> Result<DropInStatus, GrantError> {
        file_status(&self.path_for(id), expected, 0o440)
    }

    /// The deadline written in the drop-in of grant `id` (its second line, `# privilege … until
    /// <stamp> (UTC)`), in ms; `None` when the file is not jitd's or says no deadline. This is
    /// what ends a grant when the database cannot: the file carries its own end.
    pub fn until_ms(&self, id: &GrantId) -> Option<i64> {
        let path = self.path_for(id);
        if !self.carries_marker(&path, id) {
            return None;
        }
        let text = read_small(&path)?;
        let line = text.lines().nth(1)?.strip_prefix("# privilege ")?;
        let stamp = line.rsplit_once(" until ")?.1.strip_suffix(" (UTC)")?;
        crate::clock::parse_sudoers_stamp(stamp).map(|secs| secs.saturating_mul(1000))
    }

    /// Grant ids of the drop-ins in the directory that carry jitd's marker.
    pub fn owned(&self) -> Result<Vec<GrantId>, GrantError> {
        let mut ids = Vec::new();
        for (name, path) in self.entries()? {
            if let Some(id) = name
                .strip_prefix("jitd-")
                .and_then(|s| GrantId::parse(s).ok())
                && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file())
                && self.carries_marker(&path, &id)
            {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Files named like jitd drop-ins that are not jitd's: reported, never touched.
    pub fn foreign_lookalikes(&self) -> Result<Vec<PathBuf>, GrantError> {
        let owned = self.owned()?;
        let mut out: Vec<PathBuf> = self
            .entries()?
            .into_iter()
            .filter(|(name, _)| name.starts_with("jitd-"))
            .filter(|(name, _)| {
                !name
                    .strip_prefix("jitd-")
                    .and_then(|s| GrantId::parse(s).ok())
                    .is_some_and(|id| owned.contains(&id))
            })
            .map(|(_, path)| path)
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes jitd temp files a crash left behind (sudo ignores them, but they are litter).
    pub fn remove_stale_temp(&self) -> Result<usize, GrantError> {
        self.remove_temps(|name| {
            name.strip_prefix(".jitd-")
                .and_then(|s| s.strip_suffix(".tmp"))
                .is_some_and(|id| GrantId::parse(id).is_ok())
        })
    }

    /// Removes jitd's temporary files of named files (`.jitd_<name>.tmp`, see
    /// [`Self::stage_named`]) left by a crash; the caller holds the records' lock.
    pub fn remove_named_temps(&self) -> Result<usize, GrantError> {
        self.remove_temps(|name| {
            name.strip_prefix(".jitd_")
                .and_then(|s| s.strip_suffix(".tmp"))
                .is_some_and(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
                })
        })
    }

    /// Removes the plain files whose names `is_temp` picks; returns how many.
    fn remove_temps(&self, is_temp: impl Fn(&str) -> bool) -> Result<usize, GrantError> {
        let mut n = 0;
        for (name, path) in self.entries()? {
            if is_temp(&name) && remove_if_ours_temp(&path)? {
                n += 1;
            }
        }
        Ok(n)
    }

    fn entries(&self) -> Result<Vec<(String, PathBuf)>, GrantError> {
        let rd = fs::read_dir(&self.dir).map_err(|e| GrantError::io(&self.dir, e))?;
        Ok(rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok().map(|n| (n, e.path())))
            .collect())
    }

    /// Whether `path` (already known to be a regular file) starts with `id`'s marker line.
    fn carries_marker(&self, path: &Path, id: &GrantId) -> bool {
        carries(path, &marker(id))
    }
}

/// Whether the file at `path` is root's, has `mode` and holds exactly `expected`.
pub(crate) fn file_status(
    path: &Path,
    expected: &str,
    mode: u32,
) -> Result<DropInStatus, GrantError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DropInStatus::Missing),
        Err(e) => return Err(GrantError::io(path, e)),
    };
    let tampered = |why: &str| Ok(DropInStatus::Tampered(why.to_string()));
    if !meta.file_type().is_file() {
        return tampered("not a regular file");
    }
    if meta.uid() != 0 || meta.gid() != 0 {
        return tampered("owner is not root:root");
    }
    if meta.mode() & 0o7777 != mode {
        return tampered(&format!("mode is {:o}, not {mode:o}", meta.mode() & 0o7777));
    }
    if read_small(path).as_deref() != Some(expected) {
        return tampered("content changed");
    }
    Ok(DropInStatus::Intact)
}

/// Whether the regular file at `path` starts with the line `marker`.
pub(crate) fn carries(path: &Path, marker: &str) -> bool {
    let Ok(mut file) = open_nofollow(path) else {
        return false;
    };
    let mut head = [0u8; 128];
    let n = file.read(&mut head).unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]);
    head.lines()
        .next()
        .is_some_and(|l| l.starts_with("# jitd ") && l == marker)
}

pub(crate) fn create_exclusive(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens for reading without following a symlink and without blocking on a FIFO.
fn open_nofollow(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// The largest sudoers file jitd reads back: a privilege's file lists every holder's uid and
/// `jitd_users` a line per user (about 100 bytes), so thousands of grants take hundreds of KiB.
const MAX_READ: u64 = 16 << 20;

/// Reads a file of at most [`MAX_READ`] bytes; `None` if larger or unreadable.
pub(crate) fn read_small(path: &Path) -> Option<String> {
    let mut file = open_nofollow(path).ok()?;
    let mut buf = String::new();
    (&mut file)
        .take(MAX_READ + 1)
        .read_to_string(&mut buf)
        .ok()?;
    (buf.len() as u64 <= MAX_READ).then_some(buf)
}

/// Removes `path` if it is a regular file (jitd's temp names are jitd's); true if removed.
pub(crate) fn remove_if_ours_temp(path: &Path) -> Result<bool, GrantError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => {
            fs::remove_file(path).map_err(|e| GrantError::io(path, e))?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(GrantError::io(path, e)),
    }
}

/// Makes a rename or unlink in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), GrantError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| GrantError::io(dir, e))
}

#[cfg(test)]
mod tests;
