//! What recall reads about processes: `/proc/<pid>/status` and `stat`, and whether jitd can
//! see other users' processes at all (`hidepid`).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// What recall needs to know about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Process group and session, as seen from jitd's pid namespace (0 when not shown).
    pub pgid: u32,
    pub sid: u32,
    /// Real, effective, saved, filesystem uids.
    pub uids: [u32; 4],
    /// Real, effective, saved, filesystem gids.
    pub gids: [u32; 4],
    pub groups: Vec<u32>,
    /// A zombie (or dead) process: it has exited and holds nothing but its entry.
    pub exited: bool,
}

impl ProcInfo {
    /// Whether the process runs as `uid` (any of its uids) and carries `gid` (any of its gids
    /// or a supplementary group).
    pub fn holds(&self, uid: u32, gid: u32) -> bool {
        self.uids.contains(&uid) && (self.groups.contains(&gid) || self.gids.contains(&gid))
    }
}

/// Parses the text of `/proc/<pid>/status`; `None` if a needed line is missing or malformed.
pub fn parse_status(pid: u32, text: &str) -> Option<ProcInfo> {
    let mut ppid = None;
    let mut uids = None;
    let mut gids = None;
    let mut groups = Some(Vec::new());
    let (mut pgid, mut sid, mut exited) = (0, 0, false);
    let four = |rest: &str| -> Option<[u32; 4]> {
        let v: Vec<u32> = rest
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        v.try_into().ok()
    };
    // NSpgid/NSsid list the id in each nested pid namespace; the first is jitd's own view.
    let first = |rest: &str| -> u32 {
        rest.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        match key {
            "PPid" => ppid = rest.trim().parse().ok(),
            "Uid" => uids = four(rest),
            "Gid" => gids = four(rest),
            "NSpgid" => pgid = first(rest),
            "NSsid" => sid = first(rest),
            "State" => exited = matches!(rest.trim_start().chars().next(), Some('Z' | 'X')),
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
        pgid,
        sid,
        uids: uids?,
        gids: gids?,
        groups: groups?,
        exited,
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

/// One look at every process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub procs: Vec<ProcInfo>,
    /// Processes listed whose status jitd may not read (`hidepid=noaccess`).
    pub denied: usize,
}

/// Where recall reads processes from: [`ProcFs`] on the host; tests substitute their own to
/// show what happens when a pid changes hands between two reads.
pub trait ProcView {
    fn snapshot(&self) -> Snapshot;
    /// Process `pid` as it is now, `None` if it is gone or unreadable.
    fn read(&self, pid: u32) -> Option<ProcInfo>;
    fn start_ticks(&self, pid: u32) -> Option<u64>;
    /// Why jitd cannot see every process, if it cannot.
    fn blind(&self) -> Option<String>;
}

/// The real `/proc` (or another mount of it, at `root`).
#[derive(Debug, Clone)]
pub struct ProcFs {
    pub root: PathBuf,
}

impl ProcView for ProcFs {
    fn snapshot(&self) -> Snapshot {
        let mut out = Snapshot::default();
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return out;
        };
        let pids = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()));
        for pid in pids {
            match std::fs::read_to_string(self.root.join(pid.to_string()).join("status")) {
                Ok(text) => out.procs.extend(parse_status(pid, &text)),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => out.denied += 1,
                Err(_) => {}
            }
        }
        out
    }

    fn read(&self, pid: u32) -> Option<ProcInfo> {
        let text = std::fs::read_to_string(self.root.join(pid.to_string()).join("status")).ok()?;
        parse_status(pid, &text)
    }

    fn start_ticks(&self, pid: u32) -> Option<u64> {
        let text = std::fs::read_to_string(self.root.join(pid.to_string()).join("stat")).ok()?;
        parse_start_ticks(&text)
    }

    fn blind(&self) -> Option<String> {
        let mountinfo = std::fs::read_to_string(self.root.join("self/mountinfo")).ok()?;
        let (hidepid, gid) = hidepid(&mountinfo, &self.root)?;
        let ptrace = caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_PTRACE,
        )
        .unwrap_or(false);
        let in_gid = gid.is_some_and(|gid| {
            nix::unistd::getegid().as_raw() == gid
                || nix::unistd::getgroups()
                    .is_ok_and(|groups| groups.iter().any(|g| g.as_raw() == gid))
        });
        if ptrace || in_gid {
            return None;
        }
        Some(format!(
            "{} is mounted hidepid={hidepid}{}: jitd cannot see other users' processes \
             (add jitd to that group with SupplementaryGroups=, or mount /proc without hidepid)",
            self.root.display(),
            gid.map(|g| format!(",gid={g}")).unwrap_or_default()
        ))
    }
}

/// The `hidepid` value and `gid` of the proc mounted at `root`, from `mountinfo`; `None` when
/// processes are not hidden. The last mount at `root` is the one in use.
pub fn hidepid(mountinfo: &str, root: &Path) -> Option<(String, Option<u32>)> {
    let root = root.to_str()?;
    let mut found = None;
    for line in mountinfo.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let mut after = after.split(' ');
        let (fstype, options) = (after.next(), after.nth(1));
        if before.split(' ').nth(4) == Some(root) && fstype == Some("proc") {
            found = options;
        }
    }
    let mut hide = None;
    let mut gid = None;
    for option in found?.split(',') {
        match option.split_once('=') {
            Some(("hidepid", v)) if !matches!(v, "0" | "off") => hide = Some(v.to_string()),
            Some(("gid", v)) => gid = v.parse().ok(),
            _ => {}
        }
    }
    hide.map(|h| (h, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
        NSpgid:\t4240\t1\nNSsid:\t4000\nPid:\t4242\nPPid:\t100\nTracerPid:\t0\n\
        Uid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\nFDSize:\t256\n\
        Groups:\t27 1001 2000 \n";

    #[test]
    fn status_files_are_parsed() {
        let p = parse_status(4242, STATUS).unwrap();
        assert_eq!((p.ppid, p.pgid, p.sid), (100, 4240, 4000));
        assert_eq!(p.uids, [1001; 4]);
        assert_eq!(p.groups, vec![27, 1001, 2000]);
        assert!(!p.exited);
        assert!(p.holds(1001, 2000) && p.holds(1001, 1001) && !p.holds(1002, 2000));
        let zombie = STATUS.replace("S (sleeping)", "Z (zombie)");
        assert!(parse_status(4242, &zombie).unwrap().exited);
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
    fn start_time_is_read_after_a_hostile_command_name() {
        let stat = "4242 (a) b) 0 0) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 100";
        assert_eq!(parse_start_ticks(stat), Some(987654));
        assert_eq!(parse_start_ticks("4242 (x) S 1"), None);
        assert_eq!(parse_start_ticks("no parenthesis"), None);
        let own = ProcFs {
            root: PathBuf::from("/proc"),
        }
        .start_ticks(std::process::id());
        assert!(own.is_some_and(|t| t > 0), "this process's own start time");
    }

    #[test]
    fn hidepid_is_read_from_the_last_proc_mount_at_the_root() {
        let plain = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n";
        let proc = Path::new("/proc");
        assert_eq!(hidepid(plain, proc), None);
        let hidden = format!(
            "{plain}90 22 0:50 / /proc rw,relatime - proc proc rw,hidepid=invisible,gid=4\n"
        );
        assert_eq!(
            hidepid(&hidden, proc),
            Some(("invisible".to_string(), Some(4)))
        );
        let old_kernel = "22 1 0:21 / /proc rw - proc proc rw,hidepid=2\n";
        assert_eq!(hidepid(old_kernel, proc), Some(("2".to_string(), None)));
        let elsewhere = "22 1 0:21 / /mnt/p rw - proc proc rw,hidepid=2\n";
        assert_eq!(hidepid(elsewhere, proc), None);
        assert_eq!(
            hidepid("22 1 0:21 / /proc rw - proc proc rw,hidepid=off\n", proc),
            None
        );
    }
}
