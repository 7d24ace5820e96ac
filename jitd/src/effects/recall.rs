//! Recall: at the end of a grant, find what still runs with the privilege and end it, when the
//! privilege says `on_end = "terminate"`.
//!
//! - A group grant lives on in every process of the user that was started while the user was a
//!   member: the kernel keeps the gid in the process's supplementary groups. Those processes are
//!   found in `/proc/<pid>/status` (`Groups:`) and ended.
//! - A sudo grant lives on in the elevated sessions pam_jit reported (the sudo process) and
//!   everything they started; each session's process tree is ended.
//!
//! Ending is SIGTERM, a grace period, then SIGKILL for survivors. Processes are addressed
//! through pidfds, so a pid reused by an unrelated process in the meantime is never signalled.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::names::GrantId;

/// What recall needs to know about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Real, effective, saved, filesystem uids.
    pub uids: [u32; 4],
    /// Real, effective, saved, filesystem gids.
    pub gids: [u32; 4],
    pub groups: Vec<u32>,
}

/// Parses the text of `/proc/<pid>/status`; `None` if a needed line is missing or malformed.
pub fn parse_status(pid: u32, text: &str) -> Option<ProcInfo> {
    let mut ppid = None;
    let mut uids = None;
    let mut gids = None;
    let mut groups = Some(Vec::new());
    let four = |rest: &str| -> Option<[u32; 4]> {
        let v: Vec<u32> = rest
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        v.try_into().ok()
    };
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        match key {
            "PPid" => ppid = rest.trim().parse().ok(),
            "Uid" => uids = four(rest),
            "Gid" => gids = four(rest),
            "Groups" => {
                groups = rest
                    .split_whitespace()
                    .map(|n| n.parse().ok())
                    .collect::<Option<Vec<u32>>>()
            }
            _ => {}
        }
    }
    Some(ProcInfo {
        pid,
        ppid: ppid?,
        uids: uids?,
        gids: gids?,
        groups: groups?,
    })
}

/// When the process started, in clock ticks after boot: field 22 of `/proc/<pid>/stat`. With
/// the boot id it tells a process from a later one that was given the same pid.
pub fn parse_start_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces and ')': the fields
    // that follow start after the last ')'; field 3 is the first of them.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// [`parse_start_ticks`] of process `pid` under `proc_root`; `None` if it is gone.
pub fn start_ticks(proc_root: &Path, pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    parse_start_ticks(&text)
}

/// Every process readable under `proc_root` (normally `/proc`).
pub fn scan(proc_root: &Path) -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|pid| {
            let text =
                std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).ok()?;
            parse_status(pid, &text)
        })
        .collect()
}

/// Processes of `uid` (any of its uids) that still hold `gid` (as a supplementary group or any
/// of their gids).
pub fn holding_group(procs: &[ProcInfo], uid: u32, gid: u32) -> Vec<u32> {
    procs
        .iter()
        .filter(|p| p.uids.contains(&uid))
        .filter(|p| p.groups.contains(&gid) || p.gids.contains(&gid))
        .map(|p| p.pid)
        .collect()
}

/// `root` and every process descended from it.
pub fn tree(procs: &[ProcInfo], root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if procs.iter().any(|p| p.pid == pid) {
            out.push(pid);
        }
        stack.extend(children.get(&pid).into_iter().flatten());
    }
    out
}

/// What [`terminate`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Ended by SIGTERM within the grace period.
    pub terminated: Vec<u32>,
    /// Needed SIGKILL.
    pub killed: Vec<u32>,
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_signal(fd: &OwnedFd, signal: i32) -> bool {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags: the documented form.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<u8>(),
            0,
        )
    };
    rc == 0
}

fn exited(fd: &OwnedFd) -> bool {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, timeout 0: poll only reads and writes that struct.
    let rc = unsafe { libc::poll(&mut poll, 1, 0) };
    rc > 0
}

/// SIGTERM to every pid, then SIGKILL to whatever is still alive after `grace`.
#[allow(clippy::disallowed_methods)] // runs on the recaller's thread: the grace period is a wait
pub fn terminate(pids: &[u32], grace: Duration) -> Outcome {
    let fds: Vec<(u32, OwnedFd)> = pids
        .iter()
        .filter_map(|&pid| pidfd_open(pid).map(|fd| (pid, fd)))
        .collect();
    for (_, fd) in &fds {
        pidfd_signal(fd, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !fds.iter().all(|(_, fd)| exited(fd)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = Outcome::default();
    for (pid, fd) in &fds {
        if exited(fd) {
            out.terminated.push(*pid);
        } else {
            pidfd_signal(fd, libc::SIGKILL);
            out.killed.push(*pid);
        }
    }
    out
}

/// One recall to carry out: the processes still holding an ended grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub grant: GrantId,
    pub pids: Vec<u32>,
}

/// A recall carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub grant: GrantId,
    pub outcome: Outcome,
}

/// Carries out recalls on one worker thread, so the grace period between SIGTERM and SIGKILL
/// never holds up the core; the core collects what finished ([`Recaller::finished`]) and
/// records it. Reads processes under `proc_root` (normally `/proc`).
pub struct Recaller {
    proc_root: PathBuf,
    grace: Duration,
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Finished>,
    done_tx: mpsc::Sender<Finished>,
    worker: Option<std::thread::JoinHandle<()>>,
    pending: usize,
}

impl Recaller {
    pub fn new(proc_root: PathBuf, grace: Duration) -> Self {
        let (done_tx, done) = mpsc::channel();
        Self {
            proc_root,
            grace,
            jobs: None,
            done,
            done_tx,
            worker: None,
            pending: 0,
        }
    }

    /// Every process readable now.
    pub fn scan(&self) -> Vec<ProcInfo> {
        scan(&self.proc_root)
    }

    /// The start time of `pid`, `None` if it is gone.
    pub fn start_ticks(&self, pid: u32) -> Option<u64> {
        start_ticks(&self.proc_root, pid)
    }

    /// Hands a recall to the worker (started on first use).
    #[allow(clippy::disallowed_methods)] // the recaller's one worker thread
    pub fn submit(&mut self, job: Job) {
        if self.jobs.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            let done = self.done_tx.clone();
            let grace = self.grace;
            let spawned = std::thread::Builder::new()
                .name("jitd-recall".into())
                .spawn(move || {
                    for job in rx {
                        let outcome = terminate(&job.pids, grace);
                        let _ = done.send(Finished {
                            grant: job.grant,
                            outcome,
                        });
                    }
                });
            match spawned {
                Ok(handle) => {
                    self.worker = Some(handle);
                    self.jobs = Some(tx);
                }
                // No thread to spare: carry it out here rather than not at all.
                Err(_) => {
                    let outcome = terminate(&job.pids, self.grace);
                    let _ = self.done_tx.send(Finished {
                        grant: job.grant,
                        outcome,
                    });
                    self.pending += 1;
                    return;
                }
            }
        }
        if let Some(jobs) = &self.jobs
            && jobs.send(job).is_ok()
        {
            self.pending += 1;
        }
    }

    /// Recalls finished since the last call.
    pub fn finished(&mut self) -> Vec<Finished> {
        let out: Vec<Finished> = self.done.try_iter().collect();
        self.pending = self.pending.saturating_sub(out.len());
        out
    }

    /// Waits until every submitted recall has finished, and returns them (the one-shot sweep,
    /// which exits right after).
    pub fn wait(&mut self) -> Vec<Finished> {
        let mut out = Vec::new();
        while self.pending > 0 {
            match self.done.recv() {
                Ok(f) => {
                    self.pending -= 1;
                    out.push(f);
                }
                Err(_) => break,
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // temp dirs and concurrency in tests
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\n\
        PPid:\t100\nTracerPid:\t0\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\n\
        FDSize:\t256\nGroups:\t27 1001 2000 \n";

    fn proc(pid: u32, ppid: u32, uid: u32, groups: &[u32]) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            uids: [uid; 4],
            gids: [uid; 4],
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn status_files_are_parsed() {
        let p = parse_status(4242, STATUS).unwrap();
        assert_eq!(p.ppid, 100);
        assert_eq!(p.uids, [1001; 4]);
        assert_eq!(p.groups, vec![27, 1001, 2000]);
        assert_eq!(parse_status(1, "Name:\tx\n"), None);
        assert_eq!(
            parse_status(1, &STATUS.replace("Uid:\t1001\t", "Uid:\tx\t")),
            None
        );
        let no_groups = STATUS.replace("Groups:\t27 1001 2000 \n", "Groups:\t\n");
        assert_eq!(
            parse_status(4242, &no_groups).unwrap().groups,
            Vec::<u32>::new()
        );
    }

    #[test]
    fn only_the_users_processes_holding_the_gid_are_found() {
        let procs = [
            proc(10, 1, 1001, &[2000]),
            proc(11, 1, 1001, &[]),
            proc(12, 1, 1002, &[2000]),
            proc(13, 10, 1001, &[27, 2000]),
        ];
        assert_eq!(holding_group(&procs, 1001, 2000), vec![10, 13]);
    }

    #[test]
    fn a_session_tree_is_every_descendant_and_nothing_else() {
        let procs = [
            proc(50, 1, 0, &[]),
            proc(51, 50, 0, &[]),
            proc(52, 51, 0, &[]),
            proc(60, 1, 0, &[]),
        ];
        let mut t = tree(&procs, 50);
        t.sort();
        assert_eq!(t, vec![50, 51, 52]);
        assert!(tree(&procs, 99).is_empty());
    }

    #[test]
    fn terminate_ends_a_process_that_ignores_sigterm_with_sigkill() {
        let mut stubborn = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; exec sleep 30"])
            .spawn()
            .unwrap();
        let mut polite = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let out = terminate(&[stubborn.id(), polite.id()], Duration::from_millis(300));
        // Reap both: an unreaped child counts as not exited for the pidfd.
        let _ = polite.wait();
        let _ = stubborn.wait();
        assert_eq!(out.killed, vec![stubborn.id()]);
        assert_eq!(out.terminated, vec![polite.id()]);
    }

    #[test]
    fn start_time_is_read_after_a_hostile_command_name() {
        let stat = "4242 (a) b) 0 0) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 100";
        assert_eq!(parse_start_ticks(stat), Some(987654));
        assert_eq!(parse_start_ticks("4242 (x) S 1"), None);
        assert_eq!(parse_start_ticks("no parenthesis"), None);
        let own = start_ticks(Path::new("/proc"), std::process::id());
        assert!(own.is_some_and(|t| t > 0), "this process's own start time");
    }
}
