use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use super::*;
use crate::effects::procs::Snapshot;

fn procfs() -> ProcFs {
    ProcFs {
        root: PathBuf::from("/proc"),
    }
}

fn root_of(child: &Child) -> (u32, u64) {
    (child.id(), procfs().start_ticks(child.id()).unwrap())
}

fn running(pid: u32) -> bool {
    procfs().read(pid).is_some_and(|p| !p.exited)
}

/// This test process is the "jitd" recall must never touch.
fn own() -> u32 {
    std::process::id()
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_and_a_polite_one_terminated() {
    let mut stubborn = Command::new("sh")
        .args(["-c", "trap '' TERM; exec sleep 30"])
        .spawn()
        .unwrap();
    let mut polite = Command::new("sleep").arg("30").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let target = Target::Trees {
        roots: vec![root_of(&stubborn), root_of(&polite)],
    };
    let mut seen = Vec::new();
    let out = terminate(&procfs(), &target, Duration::from_millis(300), own(), |p| {
        seen = p.to_vec()
    });
    let _ = polite.wait();
    let _ = stubborn.wait();
    assert_eq!(out.killed, vec![stubborn.id()]);
    assert_eq!(out.terminated, vec![polite.id()]);
    assert!(out.survivors.is_empty());
    let mut expected = vec![stubborn.id(), polite.id()];
    expected.sort_unstable();
    seen.sort_unstable();
    assert_eq!(seen, expected, "reported before SIGTERM");
}

#[test]
fn a_child_forked_by_a_sigterm_handler_is_found_and_ended() {
    use std::os::unix::process::CommandExt;
    let marker = format!("sleep {}", 7000 + std::process::id() % 1000);
    let script = format!("trap '{marker} & exit 0' TERM; while :; do sleep 0.05; done");
    // Its own process group: the forked child keeps it after its parent is gone.
    let mut forker = Command::new("sh")
        .args(["-c", &script])
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let target = Target::Trees {
        roots: vec![root_of(&forker)],
    };
    let out = terminate(
        &procfs(),
        &target,
        Duration::from_millis(500),
        own(),
        |_| {},
    );
    let _ = forker.wait();
    let escaped: Vec<u32> = procfs()
        .snapshot()
        .procs
        .iter()
        .filter(|p| !p.exited)
        .filter(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == marker)
        })
        .map(|p| p.pid)
        .collect();
    for pid in &escaped {
        // SAFETY: kill(2) on a stray test child found by its unique command line.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    assert!(escaped.is_empty(), "escaped: {escaped:?}, {out:?}");
    assert!(out.survivors.is_empty(), "{out:?}");
    assert!(
        out.terminated.len() + out.killed.len() > out.found.len(),
        "the forked child was found after recall began: {out:?}"
    );
}

/// A view that reports `pid` holding uid/gid 4242 in the snapshot and answers `read` with
/// `then`: the process the pid belongs to by the time recall has pinned it.
struct Reused {
    pid: u32,
    then: Option<ProcInfo>,
}

fn fake(pid: u32) -> ProcInfo {
    ProcInfo {
        pid,
        ppid: 1,
        pgid: 0,
        sid: 0,
        uids: [4242; 4],
        gids: [4242; 4],
        groups: vec![],
        exited: false,
    }
}

impl ProcView for Reused {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            procs: vec![fake(self.pid)],
            denied: 0,
        }
    }
    fn read(&self, _pid: u32) -> Option<ProcInfo> {
        self.then.clone()
    }
    fn start_ticks(&self, pid: u32) -> Option<u64> {
        procfs().start_ticks(pid)
    }
    fn blind(&self) -> Option<String> {
        None
    }
}

#[test]
fn a_pid_that_changed_hands_before_it_was_pinned_is_never_signalled() {
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    let target = Target::Group {
        uid: 4242,
        gid: 4242,
    };
    // The snapshot saw a match at this pid; pinned and read again, it is someone else.
    let view = Reused {
        pid: other.id(),
        then: procfs().read(other.id()),
    };
    let out = terminate(&view, &target, Duration::from_millis(100), own(), |_| {});
    assert!(out.found.is_empty(), "{out:?}");
    assert!(
        running(other.id()),
        "the unrelated process was not signalled"
    );
    // The same process, still the match when read again: ended.
    let view = Reused {
        pid: other.id(),
        then: Some(fake(other.id())),
    };
    let out = terminate(&view, &target, Duration::from_millis(300), own(), |_| {});
    let _ = other.wait();
    assert_eq!(out.found, vec![other.id()]);
}

#[test]
fn recall_never_aims_at_init_or_at_jitd_itself() {
    let view = procfs();
    let target = Target::Group {
        uid: 4242,
        gid: 4242,
    };
    let hunt = Hunt::new(&view, &target, 777);
    assert!(hunt.candidate(&fake(100)));
    assert!(!hunt.candidate(&fake(1)));
    assert!(!hunt.candidate(&fake(777)));
    let mut zombie = fake(100);
    zombie.exited = true;
    assert!(!hunt.candidate(&zombie));
    let mut other_gid = fake(100);
    other_gid.gids = [1; 4];
    assert!(!hunt.candidate(&other_gid));
}

#[test]
fn a_job_with_nothing_to_do_is_not_queued_and_wait_returns_every_report() {
    let mut recaller = Recaller::new(PathBuf::from("/proc"), Duration::from_millis(100));
    let grant = GrantId::from_random(7);
    recaller.submit(Job {
        grant: grant.clone(),
        uid: 4242,
        processes: None,
        files: None,
    });
    assert!(recaller.wait().is_empty());
    recaller.submit(Job {
        grant: grant.clone(),
        uid: 4242,
        processes: Some(Target::Group {
            uid: 4242,
            gid: 4242,
        }),
        files: Some(FileSweep {
            uid: 4242,
            gid: 4242,
            since_ms: 0,
            roots: vec![],
            max_files: 10,
            max_time: Duration::from_secs(1),
            mounts: PathBuf::from("/nonexistent"),
        }),
    });
    let reports = recaller.wait();
    assert!(
        matches!(
            reports.as_slice(),
            [Report::Processes { last: false, .. }, Report::Files { .. }]
        ),
        "{reports:?}"
    );
}
