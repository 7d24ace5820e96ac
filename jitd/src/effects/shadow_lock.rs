//! shadow-utils' locks on the account files, taken the way gpasswd, groupmems and useradd take
//! them (shadow-utils' lib/commonio.c with glibc's lckpwdf()), so an edit by jitd and an edit by
//! any of those tools never interleave and neither loses the other's change:
//!
//! 1. `/etc/.pwd.lock`: lckpwdf() opens it (created 0600) and holds a write lock (fcntl) on the
//!    whole file. Taken first, released last. jitd takes an open-file-description lock
//!    (`F_OFD_SETLK`) instead of a per-process one: the kernel makes the two kinds exclude each
//!    other, so gpasswd still waits for jitd and jitd for gpasswd, and unlike a per-process lock
//!    it is not dropped when some other part of the daemon closes a descriptor of the same file.
//! 2. For each file, in gpasswd's order (/etc/group, then /etc/gshadow): `<file>.lock`, made by
//!    writing our pid and a NUL to `<file>.<pid>`, syncing it, and `link()`ing it to
//!    `<file>.lock` (atomic: link fails when the name exists), then checking that the temporary
//!    has exactly two links. A lock naming a pid that no longer runs is stale: it is unlinked and
//!    the link tried once more, as commonio.c's do_lock_file() does.
//!
//! Release is in reverse: the lock files are unlinked, then the lckpwdf lock is let go. gpasswd
//! waits up to 15 s in lckpwdf(); jitd polls instead (a daemon thread cannot use lckpwdf()'s
//! SIGALRM), letting everything go between attempts so it never sits on `/etc/.pwd.lock` while
//! waiting for a `<file>.lock`, and gives up with an error at its deadline. Every way out of
//! here, error or not, removes the lock files jitd made.

#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::GrantError;

/// How long to wait for the locks: glibc's lckpwdf() gives up after 15 s, so does jitd.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(15);

/// Between two attempts: short, since edits under these locks take milliseconds.
const POLL: Duration = Duration::from_millis(5);

/// `<file>.<pid>` is one name per process: two threads of the daemon making it at once would
/// truncate and unlink each other's. One edit at a time inside the daemon.
static IN_PROCESS: Mutex<()> = Mutex::new(());

/// The locks held; dropping it releases them in reverse order.
pub struct ShadowLock {
    /// `<file>.lock` names we made, in the order taken.
    lock_files: Vec<PathBuf>,
    /// The lckpwdf() lock: closing the file releases it.
    pwd: Option<File>,
    _in_process: MutexGuard<'static, ()>,
}

impl Drop for ShadowLock {
    fn drop(&mut self) {
        for lock in self.lock_files.iter().rev() {
            let _ = std::fs::remove_file(lock);
        }
        self.pwd.take();
    }
}

/// Why one attempt did not get the locks.
enum Attempt {
    /// Someone else holds a lock: worth another try until the deadline.
    Busy(String),
    /// Another thread of this process is editing: the same, said differently.
    OurTurnLater(String),
    /// Something is wrong that waiting will not fix.
    Failed(GrantError),
}

fn failed(path: &Path, e: std::io::Error) -> Attempt {
    Attempt::Failed(GrantError::io(path, e))
}

/// Takes `/etc/.pwd.lock` (`pwd_lock`) and then `<file>.lock` for each of `files` in order,
/// waiting up to `timeout` for whoever holds them.
pub fn acquire(
    pwd_lock: &Path,
    files: &[&Path],
    timeout: Duration,
) -> Result<ShadowLock, GrantError> {
    let deadline = Instant::now() + timeout;
    // What another process holds says more than our own threads taking turns: keep that.
    let mut holder: Option<String> = None;
    loop {
        let why = match try_once(pwd_lock, files) {
            Ok(lock) => return Ok(lock),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Busy(why)) => why,
            Err(Attempt::OurTurnLater(why)) => holder.take().unwrap_or(why),
        };
        if Instant::now() >= deadline {
            return Err(GrantError::io(
                pwd_lock,
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "{why}; gave up after {} ms, nothing was changed",
                        timeout.as_millis()
                    ),
                ),
            ));
        }
        holder = Some(why);
        pause();
    }
}

#[allow(clippy::disallowed_methods)] // the edge: a worker thread waits for another process's lock
fn pause() {
    std::thread::sleep(POLL);
}

fn try_once(pwd_lock: &Path, files: &[&Path]) -> Result<ShadowLock, Attempt> {
    let guard = match IN_PROCESS.try_lock() {
        Ok(g) => g,
        // A thread that panicked mid-edit still released its files (Drop ran while unwinding).
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            return Err(Attempt::OurTurnLater(
                "another edit of the group files by jitd is under way".into(),
            ));
        }
    };
    let pwd = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(pwd_lock)
        .map_err(|e| failed(pwd_lock, e))?;
    match crate::sys::try_lock_whole_file(&pwd) {
        Ok(_) => {}
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => {
            return Err(Attempt::Busy(format!(
                "{} is held by another process (lckpwdf)",
                pwd_lock.display()
            )));
        }
        Err(e) => return Err(failed(pwd_lock, e.into())),
    }
    let mut lock = ShadowLock {
        lock_files: Vec::with_capacity(files.len()),
        pwd: Some(pwd),
        _in_process: guard,
    };
    for file in files {
        // On failure `lock` drops here and lets go of what was already taken.
        lock.lock_files.push(lock_file(file)?);
    }
    Ok(lock)
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// commonio.c's do_lock_file() for `file`: returns the `<file>.lock` path now ours.
fn lock_file(file: &Path) -> Result<PathBuf, Attempt> {
    let pid = std::process::id();
    let ours = with_suffix(file, &format!(".{pid}"));
    let lock = with_suffix(file, ".lock");
    write_pid_file(&ours, pid).inspect_err(|_| {
        let _ = std::fs::remove_file(&ours);
    })?;
    let taken = link_lock(&ours, &lock);
    let _ = std::fs::remove_file(&ours);
    taken.map(|()| lock)
}

fn write_pid_file(ours: &Path, pid: u32) -> Result<(), Attempt> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(ours)
        .map_err(|e| failed(ours, e))?;
    // The pid and its terminating NUL, as shadow-utils writes it.
    f.write_all(format!("{pid}\0").as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| failed(ours, e))
}

/// Links `ours` to `lock`; when `lock` exists, takes it over only if its pid is gone.
fn link_lock(ours: &Path, lock: &Path) -> Result<(), Attempt> {
    if std::fs::hard_link(ours, lock).is_ok() {
        return check_links(ours, lock);
    }
    let holder = read_pid(lock)?;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(holder), None) {
        // Running. EPERM means running too: shadow-utils only tests for success, but it runs
        // with CAP_KILL; a daemon without it must not take a live process's lock for stale.
        Ok(()) | Err(nix::errno::Errno::EPERM) => {
            return Err(Attempt::Busy(format!(
                "{} is held by pid {holder}, which is running",
                lock.display()
            )));
        }
        Err(_) => {}
    }
    // Stale: the holder died without cleaning up. Take it over as shadow-utils does.
    match std::fs::remove_file(lock) {
        Ok(()) => {}
        // Someone else took it over first; the next attempt sees theirs.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(lock, e)),
    }
    match std::fs::hard_link(ours, lock) {
        Ok(()) => check_links(ours, lock),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Attempt::Busy(format!(
            "{} was taken over by another process",
            lock.display()
        ))),
        Err(e) => Err(failed(lock, e)),
    }
}

/// The pid in a lock file (digits, NUL-terminated by shadow-utils).
fn read_pid(lock: &Path) -> Result<i32, Attempt> {
    let mut buf = Vec::with_capacity(32);
    match File::open(lock) {
        Ok(f) => {
            f.take(31)
                .read_to_end(&mut buf)
                .map_err(|e| failed(lock, e))?;
        }
        // Released between our link and our open: try again.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Attempt::Busy(format!("{} changed hands", lock.display())));
        }
        Err(e) => return Err(failed(lock, e)),
    }
    let text = buf.split(|b| *b == 0).next().unwrap_or_default();
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 0)
        .ok_or_else(|| {
            // shadow-utils refuses such a lock too and leaves it for an administrator.
            Attempt::Busy(format!(
                "{} holds no valid pid ({:?}); remove it if no tool is editing the file",
                lock.display(),
                String::from_utf8_lossy(&buf)
            ))
        })
}

/// The link only counts if `ours` now has exactly two names (commonio.c's check_link_count);
/// otherwise the lock we made is undone.
fn check_links(ours: &Path, lock: &Path) -> Result<(), Attempt> {
    match std::fs::metadata(ours) {
        Ok(m) if m.nlink() == 2 => Ok(()),
        Ok(m) => {
            let _ = std::fs::remove_file(lock);
            Err(Attempt::Busy(format!(
                "{}: lock file already used (nlink: {})",
                ours.display(),
                m.nlink()
            )))
        }
        Err(e) => {
            let _ = std::fs::remove_file(lock);
            Err(failed(ours, e))
        }
    }
}
