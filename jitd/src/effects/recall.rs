//! Recall: at the end of a grant, find what still runs with the privilege and end it (when the
//! grant says `on_end = "terminate"`), and for a group grant, strip the setgid bit from the
//! files its holder made setgid to the group ([`super::setgid`]).
//!
//! - A group grant lives on in every process of the user that was started while the user was a
//!   member: the kernel keeps the gid in the process's supplementary groups. Those processes are
//!   found in `/proc/<pid>/status` and ended.
//! - A sudo grant lives on in the elevated sessions pam_jit reported (the sudo process) and
//!   everything they started; each session's process tree is ended.
//!
//! Ending is not one snapshot: SIGTERM to everything that matches, and during the grace period
//! SIGTERM to whatever matches on each new look (a child forked by a SIGTERM handler); then
//! SIGKILL to what is left and to whatever appears, look after look, until a look finds nothing
//! new and everything held is gone (bounded; what remains is reported as surviving). A group
//! grant's processes are matched by uid and gid, so a child that outlives its parent is still
//! found; a session's tree is followed through parents, process groups and sessions.
//! Processes are not stopped first: a stopped child makes `su` and `sudo` stop themselves, and
//! they would stay stopped.
//!
//! A process is signalled only through a pidfd opened *before* it is checked: once the pidfd
//! pins the process, the check reads that process and no other, so a pid reused in the meantime
//! is never signalled.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::procs::{ProcFs, ProcInfo, ProcView};
use super::setgid::{self, FileSweep, SweepReport};
use crate::names::GrantId;

/// Looks at the process list at most this many times while killing.
const MAX_ROUNDS: usize = 400;
/// Between two looks during the grace period (each reads every process's status).
const POLL: Duration = Duration::from_millis(50);
/// How long killed processes get to disappear before they are reported as survivors.
const KILL_WAIT: Duration = Duration::from_secs(2);
/// Between two looks while killing: short, so a fork that just happened is caught quickly.
const KILL_POLL: Duration = Duration::from_millis(5);

/// What to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every process of `uid` still carrying `gid`.
    Group { uid: u32, gid: u32 },
    /// The process trees of these sessions: (pid, start time) as recorded when they opened.
    Trees { roots: Vec<(u32, u64)> },
}

/// What [`terminate`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Holding the privilege when recall began, before any signal.
    pub found: Vec<u32>,
    /// Ended within the grace period (including those that appeared during it).
    pub terminated: Vec<u32>,
    /// Needed SIGKILL.
    pub killed: Vec<u32>,
    /// Still there when recall gave up.
    pub survivors: Vec<u32>,
    /// Why recall could not see every process, if it could not.
    pub blind: Option<String>,
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

/// Whether the process behind `fd` has exited (a zombie counts: it runs nothing).
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

/// One process recall has a hold on.
struct Held {
    pid: u32,
    fd: OwnedFd,
    killed: bool,
}

/// The processes found so far for one target, each pinned by its pidfd.
struct Hunt<'a, V: ProcView> {
    view: &'a V,
    target: &'a Target,
    own_pid: u32,
    held: Vec<Held>,
    /// Index in `held` of the latest process with each pid.
    by_pid: BTreeMap<u32, usize>,
    /// Every pid held at some time: a process group or session named after one of them was
    /// started inside a tree (the id is not reused while the group or session exists).
    ever: HashSet<u32>,
    denied: usize,
}

impl<'a, V: ProcView> Hunt<'a, V> {
    fn new(view: &'a V, target: &'a Target, own_pid: u32) -> Self {
        Self {
            view,
            target,
            own_pid,
            held: Vec::new(),
            by_pid: BTreeMap::new(),
            ever: HashSet::new(),
            denied: 0,
        }
    }

    fn live(&self, pid: u32) -> bool {
        self.by_pid
            .get(&pid)
            .is_some_and(|&i| !exited(&self.held[i].fd))
    }

    fn candidate(&self, p: &ProcInfo) -> bool {
        if p.exited || p.pid <= 1 || p.pid == self.own_pid {
            return false;
        }
        match self.target {
            Target::Group { uid, gid } => p.holds(*uid, *gid),
            Target::Trees { roots } => {
                roots
                    .iter()
                    .any(|&(pid, ticks)| pid == p.pid && self.view.start_ticks(pid) == Some(ticks))
                    || self.live(p.ppid)
                    || (p.pgid > 1 && self.ever.contains(&p.pgid))
                    || (p.sid > 1 && self.ever.contains(&p.sid))
            }
        }
    }

    /// One look at every process: each new match is pinned, checked again and sent `signal`
    /// (none in the first look, which only finds). Returns how many were new.
    fn round(&mut self, signal: Option<i32>) -> usize {
        let snapshot = self.view.snapshot();
        self.denied = self.denied.max(snapshot.denied);
        let mut new = 0;
        for p in &snapshot.procs {
            if self.live(p.pid) || !self.candidate(p) {
                continue;
            }
            let Some(fd) = pidfd_open(p.pid) else {
                continue;
            };
            // The pidfd pins the process: read it again through its pid. If that pid changed
            // hands since the snapshot, this is the new process, and it must match on its own.
            // If the pinned process exited meanwhile, the read may be of a successor: skip.
            let Some(now) = self.view.read(p.pid) else {
                continue;
            };
            if !self.candidate(&now) || exited(&fd) {
                continue;
            }
            let killed = match signal {
                Some(signal) => pidfd_signal(&fd, signal) && signal == libc::SIGKILL,
                None => false,
            };
            self.by_pid.insert(p.pid, self.held.len());
            self.ever.insert(p.pid);
            self.held.push(Held {
                pid: p.pid,
                fd,
                killed,
            });
            new += 1;
        }
        new
    }

    fn signal_live(&self, signal: i32) {
        for h in self.held.iter().filter(|h| !exited(&h.fd)) {
            pidfd_signal(&h.fd, signal);
        }
    }

    fn all_exited(&self) -> bool {
        self.held.iter().all(|h| exited(&h.fd))
    }

    fn blind(&self) -> Option<String> {
        self.view.blind().or_else(|| {
            (self.denied > 0).then(|| {
                format!(
                    "the status of {} processes could not be read (/proc hidepid=noaccess?)",
                    self.denied
                )
            })
        })
    }
}

/// Ends every process `target` names, as described in the module documentation. `started` is
/// called with the processes found before any is signalled. Never pid 1 or `own_pid`.
#[allow(clippy::disallowed_methods)] // runs on the recaller's thread: the grace period is a wait
pub fn terminate<V: ProcView>(
    view: &V,
    target: &Target,
    grace: Duration,
    own_pid: u32,
    started: impl FnOnce(&[u32]),
) -> Outcome {
    let mut hunt = Hunt::new(view, target, own_pid);
    hunt.round(None);
    let mut out = Outcome {
        found: hunt.held.iter().map(|h| h.pid).collect(),
        ..Outcome::default()
    };
    if hunt.held.is_empty() {
        out.blind = hunt.blind();
        return out;
    }
    started(&out.found);
    hunt.signal_live(libc::SIGTERM);
    // Whatever appears during the grace period (a child forked by a SIGTERM handler, a process
    // started just before the look) is told too.
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        std::thread::sleep(POLL);
        let new = hunt.round(Some(libc::SIGTERM));
        if new == 0 && hunt.all_exited() {
            break;
        }
    }
    // Then SIGKILL to everything left and to whatever appears, until a look finds nothing new
    // and everything held is gone. A killed process cannot fork any more; a child it made
    // just before is found by the next look.
    for h in hunt.held.iter_mut().filter(|h| !exited(&h.fd)) {
        h.killed = pidfd_signal(&h.fd, libc::SIGKILL);
    }
    let kill_deadline = Instant::now() + KILL_WAIT;
    for _ in 0..MAX_ROUNDS {
        let new = hunt.round(Some(libc::SIGKILL));
        if (new == 0 && hunt.all_exited()) || Instant::now() >= kill_deadline {
            break;
        }
        std::thread::sleep(KILL_POLL);
    }
    for h in &hunt.held {
        match (exited(&h.fd), h.killed) {
            (true, false) => out.terminated.push(h.pid),
            (true, true) => out.killed.push(h.pid),
            (false, _) => out.survivors.push(h.pid),
        }
    }
    // A last look: anything that still matches was not reached.
    let last = hunt.view.snapshot();
    for p in last.procs.iter().filter(|p| hunt.candidate(p)) {
        if !out.survivors.contains(&p.pid) {
            out.survivors.push(p.pid);
        }
    }
    out.blind = hunt.blind();
    out
}

/// One recall to carry out for an ended grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub grant: GrantId,
    pub uid: u32,
    /// The processes to end, when the grant says so.
    pub processes: Option<Target>,
    /// Where to look for setgid files, for a group grant.
    pub files: Option<FileSweep>,
}

/// What the recaller reports, in order, for each job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The processes found, about to get SIGTERM.
    Started {
        grant: GrantId,
        uid: u32,
        pids: Vec<u32>,
    },
    /// The processes are dealt with; `last` when the job has no file sweep.
    Processes {
        grant: GrantId,
        uid: u32,
        outcome: Outcome,
        last: bool,
    },
    /// The file sweep is done; always the job's last report.
    Files {
        grant: GrantId,
        uid: u32,
        gid: u32,
        report: SweepReport,
    },
}

impl Report {
    fn last(&self) -> bool {
        match self {
            Self::Started { .. } => false,
            Self::Processes { last, .. } => *last,
            Self::Files { .. } => true,
        }
    }
}

fn sweep_files(grant: GrantId, uid: u32, files: &FileSweep, done: &Reporter) {
    let report = setgid::sweep(files);
    done.send(Report::Files {
        grant,
        uid,
        gid: files.gid,
        report,
    });
}

/// Carries out a job's process part; hands its file part to `files` (or does it here).
fn carry_out(
    job: Job,
    view: &ProcFs,
    grace: Duration,
    done: &Reporter,
    files: Option<&mpsc::Sender<Job>>,
) {
    if let Some(target) = &job.processes {
        let outcome = terminate(view, target, grace, std::process::id(), |pids| {
            done.send(Report::Started {
                grant: job.grant.clone(),
                uid: job.uid,
                pids: pids.to_vec(),
            });
        });
        done.send(Report::Processes {
            grant: job.grant.clone(),
            uid: job.uid,
            outcome,
            last: job.files.is_none(),
        });
    }
    if let Some(sweep) = &job.files {
        match files {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job.clone()) {
                    sweep_files(job.grant, job.uid, sweep, done);
                }
            }
            None => sweep_files(job.grant.clone(), job.uid, sweep, done),
        }
    }
}

/// Carries out recalls on worker threads, so the grace period and the file walk never hold up
/// the core: one thread ends processes, one walks file systems (after the job's processes are
/// gone, so none can make a new setgid file behind the walk). The core collects the reports
/// ([`Recaller::reports`]) and records them.
pub struct Recaller {
    view: ProcFs,
    grace: Duration,
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Report>,
    done_tx: mpsc::Sender<Report>,
    /// Jobs whose last report has not come in.
    pending: usize,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// Called after each report, so the core records it at once rather than at its next tick.
    wake: Waker,
}

/// Tells the core a report is waiting.
pub type Waker = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Sends reports to the core and wakes it.
#[derive(Clone)]
struct Reporter {
    tx: mpsc::Sender<Report>,
    wake: Waker,
}

impl Reporter {
    fn send(&self, report: Report) {
        let _ = self.tx.send(report);
        (self.wake)();
    }
}

impl Recaller {
    pub fn new(proc_root: PathBuf, grace: Duration) -> Self {
        let (done_tx, done) = mpsc::channel();
        Self {
            view: ProcFs { root: proc_root },
            grace,
            jobs: None,
            done,
            done_tx,
            pending: 0,
            workers: Vec::new(),
            wake: std::sync::Arc::new(|| {}),
        }
    }

    /// What to call when a report is waiting (before the workers start).
    pub fn set_waker(&mut self, wake: Waker) {
        self.wake = wake;
    }

    fn reporter(&self) -> Reporter {
        Reporter {
            tx: self.done_tx.clone(),
            wake: self.wake.clone(),
        }
    }

    /// The start time of `pid`, `None` if it is gone.
    pub fn start_ticks(&self, pid: u32) -> Option<u64> {
        self.view.start_ticks(pid)
    }

    /// Why recall cannot see other users' processes, if it cannot.
    pub fn blind(&self) -> Option<String> {
        self.view.blind()
    }

    /// Starts the two workers; `None` if no thread could be started.
    #[allow(clippy::disallowed_methods)] // the recaller's worker threads
    fn start(&mut self) -> Option<mpsc::Sender<Job>> {
        let (files_tx, files_rx) = mpsc::channel::<Job>();
        let done = self.reporter();
        let files = std::thread::Builder::new()
            .name("jitd-setgid".into())
            .spawn(move || {
                for job in files_rx {
                    if let Some(sweep) = &job.files {
                        sweep_files(job.grant.clone(), job.uid, sweep, &done);
                    }
                }
            })
            .ok()
            .map(|handle| {
                self.workers.push(handle);
                files_tx
            });
        let (tx, rx) = mpsc::channel::<Job>();
        let (done, view, grace) = (self.reporter(), self.view.clone(), self.grace);
        let handle = std::thread::Builder::new()
            .name("jitd-recall".into())
            .spawn(move || {
                for job in rx {
                    carry_out(job, &view, grace, &done, files.as_ref());
                }
            })
            .ok()?;
        self.workers.push(handle);
        Some(tx)
    }

    /// Hands a recall to the workers (started on first use).
    pub fn submit(&mut self, job: Job) {
        if job.processes.is_none() && job.files.is_none() {
            return;
        }
        if self.jobs.is_none() {
            self.jobs = self.start();
        }
        self.pending += 1;
        let job = match &self.jobs {
            Some(jobs) => match jobs.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        // No thread to spare: carry it out here rather than not at all.
        carry_out(job, &self.view, self.grace, &self.reporter(), None);
    }

    /// Reports that came in since the last call.
    pub fn reports(&mut self) -> Vec<Report> {
        let out: Vec<Report> = self.done.try_iter().collect();
        self.pending = self
            .pending
            .saturating_sub(out.iter().filter(|r| r.last()).count());
        out
    }

    /// Waits until every submitted job has finished (the SIGKILL stage and the file walk
    /// included), and returns their reports: the sweep, purge and stop, before jitd exits.
    /// Every job is bounded (the grace period, the kill stage, the walk's own bounds); a
    /// worker that died cannot report, and is not waited for.
    pub fn wait(&mut self) -> Vec<Report> {
        let mut out = Vec::new();
        while self.pending > 0 {
            match self.done.recv_timeout(Duration::from_millis(200)) {
                Ok(r) => {
                    if r.last() {
                        self.pending -= 1;
                    }
                    out.push(r);
                }
                Err(mpsc::RecvTimeoutError::Timeout)
                    if self.workers.iter().any(|w| !w.is_finished()) => {}
                Err(_) => break,
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // child processes and waits in tests
#[path = "recall_tests.rs"]
mod tests;
