//! What a group grant can leave on disk: while a member, the holder may `chgrp` a file they
//! own to the group and `chmod g+s` it (a copy of a shell, say). After the grant that file
//! still runs with the group. At the end of a group grant jitd walks the file systems the
//! holder can write, finds the regular files the holder owns whose group is the granted gid,
//! with the setgid bit, changed since the grant began, and clears the bit.
//!
//! Every decision is made on the file itself, opened without following symlinks: the path is
//! only how it was found. A file swapped for a symlink or another file between the look and
//! the change is left alone. Mounts with `nosuid` are skipped (the bit does nothing there), and
//! the walk stays on each root's file system and within its bounds in files and time.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::dir::Dir;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat};

/// Directories deeper than this below a root are not entered (each level holds a descriptor).
const MAX_DEPTH: usize = 256;

/// At most this many skipped places are named in the report; the rest are counted.
const MAX_SKIPPED: usize = 32;

/// One look for setgid files left by a group grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSweep {
    pub uid: u32,
    pub gid: u32,
    /// Files whose status changed before this (ms since the epoch) predate the grant.
    pub since_ms: i64,
    pub roots: Vec<PathBuf>,
    pub max_files: u64,
    pub max_time: Duration,
    /// The mount table that says which roots are `nosuid` ([`HOST_MOUNTS`]).
    pub mounts: PathBuf,
}

/// The mount table as users see it. jitd's own mount namespace may show every mount `nosuid`
/// (systemd makes it so for a service with `NoNewPrivileges=`), so whether the setgid bit works
/// for users is read from pid 1's table.
pub const HOST_MOUNTS: &str = "/proc/1/mountinfo";

/// Whether `path` (absolute, symlinks resolved) lies on a mount with `nosuid` in `mountinfo`
/// (the format of `/proc/<pid>/mountinfo`); `None` when no mount there covers it. The longest
/// mount point wins, and of equal ones the last (mounted on top).
pub fn nosuid(mountinfo: &str, path: &Path) -> Option<bool> {
    let mut best: Option<(usize, bool)> = None;
    for line in mountinfo.lines() {
        let mut fields = line.split(' ');
        let (Some(point), Some(options)) = (fields.nth(4), fields.next()) else {
            continue;
        };
        let point = unescape(point);
        if path.starts_with(&point) && best.is_none_or(|(len, _)| point.len() >= len) {
            best = Some((point.len(), options.split(',').any(|o| o == "nosuid")));
        }
    }
    best.map(|(_, nosuid)| nosuid)
}

/// A mount point as `mountinfo` writes it: space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A file whose setgid bit was cleared; `mode` is its permission bits before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    pub path: PathBuf,
    pub mode: u32,
}

/// What a [`FileSweep`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub stripped: Vec<Stripped>,
    /// Files that matched but could not be changed, with why.
    pub failed: Vec<(PathBuf, String)>,
    /// Directory entries looked at.
    pub checked: u64,
    /// Roots and mounts not walked, with why (`nosuid`, another file system, missing).
    pub skipped: Vec<String>,
    /// Set when a bound stopped the walk before it was complete.
    pub cut_short: Option<String>,
}

/// A directory waiting to be walked: opened from its parent by name when its turn comes.
struct Pending {
    parent: Rc<OwnedFd>,
    name: OsString,
    path: PathBuf,
    depth: usize,
}

struct Walk<'a> {
    job: &'a FileSweep,
    deadline: Instant,
    report: SweepReport,
}

/// Walks every root of `job` and strips what matches.
#[allow(clippy::disallowed_methods)] // a bound on the walk's own duration, on the recaller's thread
pub fn sweep(job: &FileSweep) -> SweepReport {
    let mut walk = Walk {
        job,
        deadline: Instant::now() + job.max_time,
        report: SweepReport::default(),
    };
    let mut seen_roots = Vec::new();
    // Unreadable: every root is walked (a nosuid one costs only time).
    let mounts = std::fs::read_to_string(&job.mounts).ok();
    for root in &job.roots {
        if walk.report.cut_short.is_some() {
            break;
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::open(root.as_path(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => {
                walk.skip(format!("{} ({e})", root.display()));
                continue;
            }
        };
        let real = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
        if mounts
            .as_deref()
            .and_then(|m| nosuid(m, &real))
            .unwrap_or(false)
        {
            walk.skip(format!("{} (nosuid)", root.display()));
            continue;
        }
        let Ok(st) = fstat(&fd) else { continue };
        if seen_roots.contains(&(st.st_dev, st.st_ino)) {
            continue;
        }
        seen_roots.push((st.st_dev, st.st_ino));
        walk.tree(fd, root, st.st_dev);
    }
    walk.report
}

impl Walk<'_> {
    fn skip(&mut self, what: String) {
        let skipped = &mut self.report.skipped;
        match skipped.len() {
            n if n < MAX_SKIPPED => skipped.push(what),
            n if n == MAX_SKIPPED => skipped.push("and more".into()),
            _ => {}
        }
    }

    #[allow(clippy::disallowed_methods)] // a bound on the walk's own duration
    fn out_of_bounds(&mut self) -> bool {
        if self.report.cut_short.is_some() {
            return true;
        }
        if self.report.checked >= self.job.max_files {
            self.report.cut_short = Some(format!("stopped after {} files", self.job.max_files));
        } else if Instant::now() >= self.deadline {
            self.report.cut_short = Some(format!(
                "stopped after {} s ({} files)",
                self.job.max_time.as_secs(),
                self.report.checked
            ));
        }
        self.report.cut_short.is_some()
    }

    /// Depth first, so the descriptors held open are those of one path from the root.
    fn tree(&mut self, root: OwnedFd, root_path: &Path, dev: u64) {
        let mut stack: Vec<Pending> = Vec::new();
        self.directory(Rc::new(root), root_path, 0, dev, &mut stack);
        while let Some(next) = stack.pop() {
            if self.out_of_bounds() {
                return;
            }
            let flags = OFlag::O_RDONLY
                | OFlag::O_DIRECTORY
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC
                | OFlag::O_NONBLOCK;
            // A directory replaced by a symlink since it was listed is not followed.
            let Ok(fd) = openat(
                next.parent.as_fd(),
                next.name.as_os_str(),
                flags,
                Mode::empty(),
            ) else {
                continue;
            };
            match fstat(&fd) {
                Ok(st) if st.st_dev == dev => {}
                _ => continue,
            }
            drop(next.parent);
            self.directory(Rc::new(fd), &next.path, next.depth, dev, &mut stack);
        }
    }

    /// Looks at every entry of one directory: files now, subdirectories onto `stack`.
    fn directory(
        &mut self,
        fd: Rc<OwnedFd>,
        path: &Path,
        depth: usize,
        dev: u64,
        stack: &mut Vec<Pending>,
    ) {
        let names: Vec<OsString> = {
            let Ok(dup) = fd.try_clone() else { return };
            let Ok(mut dir) = Dir::from_fd(dup) else {
                return;
            };
            dir.iter()
                .filter_map(Result::ok)
                .map(|e| std::ffi::OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
                .filter(|n| n != "." && n != "..")
                .collect()
        };
        for name in names {
            if self.out_of_bounds() {
                return;
            }
            self.report.checked += 1;
            let Ok(st) = fstatat(
                fd.as_fd(),
                name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) else {
                continue;
            };
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if kind == SFlag::S_IFDIR {
                let child = path.join(&name);
                if st.st_dev != dev {
                    self.skip(format!("{} (another file system)", child.display()));
                } else if depth + 1 > MAX_DEPTH {
                    self.skip(format!("{} (deeper than {MAX_DEPTH})", child.display()));
                } else {
                    stack.push(Pending {
                        parent: fd.clone(),
                        name,
                        path: child,
                        depth: depth + 1,
                    });
                }
            } else if kind == SFlag::S_IFREG && self.matches(&st) {
                self.strip(&fd, &name, path.join(&name), &st);
            }
        }
    }

    /// Owned by the holder, group = the granted gid, setgid, changed during the grant.
    fn matches(&self, st: &FileStat) -> bool {
        let changed_ms = st.st_ctime * 1000 + st.st_ctime_nsec / 1_000_000;
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
            && st.st_uid == self.job.uid
            && st.st_gid == self.job.gid
            && st.st_mode & libc::S_ISGID != 0
            && changed_ms >= self.job.since_ms
    }

    /// Opens the file itself (never a symlink), checks it is the one looked at and still
    /// matches, and clears the bit on that descriptor.
    fn strip(&mut self, dir: &OwnedFd, name: &OsString, path: PathBuf, seen: &FileStat) {
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let fd = match openat(dir.as_fd(), name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                self.report.failed.push((path, e.to_string()));
                return;
            }
        };
        let Ok(st) = fstat(&fd) else { return };
        if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino) || !self.matches(&st) {
            return;
        }
        let mode = st.st_mode & 0o7777;
        // jitd's unit may not write a mode that carries setuid or setgid (RestrictSUIDSGID=),
        // so a file that is setuid (to its owner, the holder) as well loses both bits.
        let cleared = mode & !(libc::S_ISGID | libc::S_ISUID);
        match fchmod(&fd, Mode::from_bits_truncate(cleared)) {
            Ok(()) => self.report.stripped.push(Stripped { path, mode }),
            Err(e) => self.report.failed.push((path, e.to_string())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // temp dirs in tests
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jitd-setgid-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn job(root: &Path, since_ms: i64) -> FileSweep {
        FileSweep {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            since_ms,
            roots: vec![root.to_path_buf()],
            max_files: 10_000,
            max_time: Duration::from_secs(10),
            mounts: PathBuf::from("/nonexistent"),
        }
    }

    fn setgid_file(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o2755)).unwrap();
    }

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn setgid_files_of_the_holder_lose_the_bit_and_nothing_else_changes() {
        let dir = temp_dir("strip");
        std::fs::create_dir_all(dir.join("a/b/c")).unwrap();
        let deep = dir.join("a/b/c/sh");
        let top = dir.join("sh");
        setgid_file(&deep);
        setgid_file(&top);
        let plain = dir.join("a/plain");
        std::fs::write(&plain, "x").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o4755)).unwrap();
        symlink(&top, dir.join("a/link")).unwrap();
        let report = sweep(&job(&dir, 0));
        assert_eq!(mode(&deep), 0o755);
        assert_eq!(mode(&top), 0o755);
        assert_eq!(
            mode(&plain),
            0o4755,
            "setuid only: not this sweep's business"
        );
        let mut paths: Vec<&Path> = report.stripped.iter().map(|s| s.path.as_path()).collect();
        paths.sort();
        assert_eq!(paths, vec![deep.as_path(), top.as_path()]);
        assert!(report.stripped.iter().all(|s| s.mode == 0o2755));
        assert!(report.cut_short.is_none() && report.failed.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_changed_before_the_grant_and_other_groups_are_left_alone() {
        let dir = temp_dir("before");
        let old = dir.join("old");
        setgid_file(&old);
        let future = i64::MAX / 2;
        let report = sweep(&job(&dir, future));
        assert_eq!(mode(&old), 0o2755, "changed before the grant began");
        assert!(report.stripped.is_empty());
        let mut other_gid = job(&dir, 0);
        other_gid.gid = other_gid.gid.wrapping_add(1);
        assert!(sweep(&other_gid).stripped.is_empty());
        assert_eq!(mode(&old), 0o2755, "another group");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nosuid_is_read_from_the_mount_that_covers_the_path() {
        let table = "22 1 8:1 / / rw,relatime - ext4 /dev/vda rw\n\
                     30 22 0:30 / /home rw,nosuid,nodev - ext4 /dev/vdb rw\n\
                     31 30 0:31 / /home/my\\040stick rw - vfat /dev/sdb1 rw\n\
                     32 22 0:32 / /tmp rw - tmpfs tmpfs rw\n\
                     33 22 0:33 / /tmp rw,nosuid - tmpfs tmpfs rw\n";
        assert_eq!(nosuid(table, Path::new("/home/alice")), Some(true));
        assert_eq!(nosuid(table, Path::new("/home/my stick/x")), Some(false));
        assert_eq!(
            nosuid(table, Path::new("/homework")),
            Some(false),
            "not under /home"
        );
        assert_eq!(
            nosuid(table, Path::new("/tmp")),
            Some(true),
            "the mount on top"
        );
        assert_eq!(nosuid(table, Path::new("/var/tmp")), Some(false));
        assert_eq!(nosuid("", Path::new("/var/tmp")), None);
    }

    #[test]
    fn a_nosuid_root_is_skipped_and_said_so() {
        let dir = temp_dir("nosuid");
        let file = dir.join("sh");
        setgid_file(&file);
        let table = dir.join("mountinfo");
        std::fs::write(
            &table,
            format!("30 22 0:30 / {} rw,nosuid - tmpfs t rw\n", dir.display()),
        )
        .unwrap();
        let mut skip = job(&dir, 0);
        skip.mounts = table;
        let report = sweep(&skip);
        assert!(
            report.stripped.is_empty() && report.checked == 0,
            "{report:?}"
        );
        assert_eq!(report.skipped, vec![format!("{} (nosuid)", dir.display())]);
        assert_eq!(mode(&file), 0o2755);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_walk_stops_at_its_bound_and_says_so() {
        let dir = temp_dir("bound");
        for i in 0..20 {
            std::fs::write(dir.join(format!("f{i}")), "x").unwrap();
        }
        let mut bounded = job(&dir, 0);
        bounded.max_files = 5;
        let report = sweep(&bounded);
        assert_eq!(report.checked, 5);
        assert!(
            report
                .cut_short
                .as_deref()
                .is_some_and(|w| w.contains("5 files")),
            "{report:?}"
        );
        let missing = job(&dir.join("nonexistent"), 0);
        assert_eq!(
            sweep(&missing),
            SweepReport::default(),
            "a missing root is no error"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
