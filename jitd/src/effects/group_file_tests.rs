#![allow(clippy::disallowed_methods)] // tests start a process to have a live and a dead pid

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

/// A Debian-like /etc/group with what real files carry: a comment, odd spacing, an empty
/// member slot, a CRLF line, a duplicate line, a user (`al`) whose name prefixes another's.
const GROUP: &[u8] = b"root:x:0:\n\
# kept as it is\n\
adm:x:4:syslog,al\n\
docker:x:999:alice,al,bob\n\
dev:x:1001: carol , ,al\n\
crlf:x:1002:al,dave\r\n\
\n\
docker:x:999:al\n\
users:x:100:alice\n\
last:x:1003:al";

const GSHADOW: &[u8] = b"root:*::\n\
adm:*::syslog,al\n\
docker:!:al,alice:alice,al,bob\n\
dev:!::carol,al\n\
crlf:!::al,dave\r\n\
users:*::alice\n\
last:!::al";

struct Dir {
    path: PathBuf,
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn setup(group: &[u8], gshadow: &[u8]) -> (Dir, GroupFiles) {
    let bits = crate::sys::random_bits().unwrap();
    let path = std::env::temp_dir().join(format!("jitd-group-file-{bits:016x}"));
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("group"), group).unwrap();
    std::fs::write(path.join("gshadow"), gshadow).unwrap();
    std::fs::set_permissions(path.join("gshadow"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let files = GroupFiles {
        group: path.join("group"),
        gshadow: path.join("gshadow"),
        pwd_lock: path.join(".pwd.lock"),
        // Generous: the tests run in parallel and one edit at a time goes through.
        lock_timeout: Duration::from_secs(3),
    };
    (Dir { path }, files)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(UserName, GroupName)> {
    list.iter()
        .map(|(u, g)| (UserName::parse(u).unwrap(), GroupName::parse(g).unwrap()))
        .collect()
}

fn edited(outcome: Outcome) -> (Vec<Result<(), GrantError>>, bool) {
    match outcome {
        Outcome::Edited { results, changed } => (results, changed),
        Outcome::Fallback(why) => panic!("fell back: {why}"),
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn only_the_listed_memberships_go_and_every_other_byte_stays() {
    let (dir, files) = setup(GROUP, GSHADOW);
    let (results, changed) = edited(
        files
            .remove_members(&pairs(&[
                ("al", "docker"),
                ("al", "dev"),
                ("al", "crlf"),
                ("al", "last"),
                ("alice", "users"),
                ("nobody", "docker"),
                ("al", "nosuchgroup"),
            ]))
            .unwrap(),
    );
    assert!(changed);
    assert_eq!(results.len(), 7);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // `al` stays in adm (not listed); `alice` stays in docker (only `al` was); both docker
    // lines lose `al`; the blank slot and the spacing of the other members are kept.
    assert_eq!(
        String::from_utf8(std::fs::read(&files.group).unwrap()).unwrap(),
        "root:x:0:\n\
         # kept as it is\n\
         adm:x:4:syslog,al\n\
         docker:x:999:alice,bob\n\
         dev:x:1001: carol , \n\
         crlf:x:1002:dave\r\n\
         \n\
         docker:x:999:\n\
         users:x:100:\n\
         last:x:1003:"
    );
    // gshadow's administrators (third field) are not members: `al` administers docker still.
    assert_eq!(
        String::from_utf8(std::fs::read(&files.gshadow).unwrap()).unwrap(),
        "root:*::\n\
         adm:*::syslog,al\n\
         docker:!:al,alice:alice,bob\n\
         dev:!::carol\n\
         crlf:!::dave\r\n\
         users:*::\n\
         last:!::"
    );
    // The backups hold the files as they were; nothing else is left in the directory.
    assert_eq!(std::fs::read(dir.path.join("group-")).unwrap(), GROUP);
    assert_eq!(std::fs::read(dir.path.join("gshadow-")).unwrap(), GSHADOW);
    assert_eq!(
        names_in(&dir.path),
        [".pwd.lock", "group", "group-", "gshadow", "gshadow-"]
    );
}

#[test]
fn a_name_that_prefixes_another_is_its_own_member() {
    let (_dir, files) = setup(b"g:x:5:alice,al,alicia\n", b"g:!::al,alice,alicia\n");
    edited(files.remove_members(&pairs(&[("al", "g")])).unwrap());
    let text = std::fs::read_to_string(&files.group).unwrap();
    assert_eq!(text, "g:x:5:alice,alicia\n");
    assert_eq!(
        std::fs::read_to_string(&files.gshadow).unwrap(),
        "g:!::alice,alicia\n"
    );
    assert_eq!(
        crate::effects::group::members(&text, "g"),
        Some(vec!["alice".into(), "alicia".into()])
    );
    edited(files.remove_members(&pairs(&[("alice", "g")])).unwrap());
    assert_eq!(
        std::fs::read_to_string(&files.group).unwrap(),
        "g:x:5:alicia\n"
    );
}

#[test]
fn nothing_to_do_rewrites_nothing() {
    let (dir, files) = setup(GROUP, GSHADOW);
    let (results, changed) = edited(
        files
            .remove_members(&pairs(&[("zed", "docker"), ("al", "gone")]))
            .unwrap(),
    );
    assert!(!changed);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(names_in(&dir.path), [".pwd.lock", "group", "gshadow"]);
}

#[test]
fn the_new_files_keep_owner_mode_and_the_backup_keeps_the_old_times() {
    let (dir, files) = setup(GROUP, GSHADOW);
    let old = std::fs::metadata(&files.gshadow).unwrap();
    let old_mtime = std::fs::metadata(&files.group).unwrap().modified().unwrap();
    edited(files.remove_members(&pairs(&[("al", "dev")])).unwrap());
    let new = std::fs::metadata(&files.gshadow).unwrap();
    assert_eq!(
        (new.uid(), new.gid(), new.mode() & 0o7777),
        (old.uid(), old.gid(), 0o640)
    );
    assert_eq!(
        std::fs::metadata(dir.path.join("group-"))
            .unwrap()
            .modified()
            .unwrap(),
        old_mtime
    );
}

/// `sleep` running, to own a lock: a live pid that is not ours.
fn live_process() -> std::process::Child {
    std::process::Command::new("/bin/sleep")
        .arg("30")
        .spawn()
        .unwrap()
}

#[test]
fn a_lock_held_by_a_running_process_is_waited_for_then_an_error() {
    let (dir, mut files) = setup(GROUP, GSHADOW);
    files.lock_timeout = Duration::from_millis(300);
    let mut holder = live_process();
    let lock = dir.path.join("gshadow.lock");
    std::fs::write(&lock, format!("{}\0", holder.id())).unwrap();
    let started = Instant::now();
    let e = files
        .remove_members(&pairs(&[("al", "docker")]))
        .unwrap_err();
    let waited = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("held by pid {}", holder.id()))
            && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // Their lock is theirs still; ours (group.lock, the pid temporaries) are gone; the files
    // are as they were.
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        format!("{}\0", holder.id())
    );
    assert_eq!(
        names_in(&dir.path),
        [".pwd.lock", "group", "gshadow", "gshadow.lock"]
    );
    assert_eq!(std::fs::read(&files.group).unwrap(), GROUP);
    assert_eq!(std::fs::read(&files.gshadow).unwrap(), GSHADOW);
}

#[test]
fn a_lock_left_by_a_process_that_died_is_taken_over() {
    let (dir, files) = setup(GROUP, GSHADOW);
    let mut gone = std::process::Command::new("/bin/true").spawn().unwrap();
    gone.wait().unwrap();
    std::fs::write(dir.path.join("group.lock"), format!("{}\0", gone.id())).unwrap();
    let (results, changed) = edited(files.remove_members(&pairs(&[("al", "docker")])).unwrap());
    assert!(changed && results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        !std::fs::read_to_string(&files.group)
            .unwrap()
            .contains("docker:x:999:alice,al")
    );
    assert_eq!(
        names_in(&dir.path),
        [".pwd.lock", "group", "group-", "gshadow", "gshadow-"]
    );
}

#[test]
fn while_the_edit_holds_the_locks_they_are_there_and_after_it_they_are_gone() {
    let (dir, files) = setup(GROUP, GSHADOW);
    let mut seen = Vec::new();
    edited(
        files
            .remove_members_observed(&pairs(&[("al", "adm")]), &mut || {
                seen = names_in(&dir.path);
                // The lock file holds our pid and a NUL, as shadow-utils writes it.
                seen.push(std::fs::read_to_string(dir.path.join("group.lock")).unwrap());
            })
            .unwrap(),
    );
    assert_eq!(
        seen,
        [
            ".pwd.lock".to_string(),
            "group".into(),
            "group.lock".into(),
            "gshadow".into(),
            "gshadow.lock".into(),
            format!("{}\0", std::process::id()),
        ]
    );
    assert!(!dir.path.join("group.lock").exists());
    assert!(!dir.path.join("gshadow.lock").exists());
}

#[test]
fn lckpwdf_held_elsewhere_is_waited_for_then_an_error() {
    let (dir, mut files) = setup(GROUP, GSHADOW);
    files.lock_timeout = Duration::from_millis(300);
    // Another open file description of .pwd.lock holding the write lock: to the kernel, as
    // good as another process in lckpwdf().
    let other = File::create(&files.pwd_lock).unwrap();
    crate::sys::try_lock_whole_file(&other).unwrap();
    let e = files
        .remove_members(&pairs(&[("al", "docker")]))
        .unwrap_err();
    assert!(e.to_string().contains("lckpwdf"), "{e}");
    assert_eq!(names_in(&dir.path), [".pwd.lock", "group", "gshadow"]);
    drop(other);
    edited(files.remove_members(&pairs(&[("al", "docker")])).unwrap());
}

#[test]
fn files_not_for_a_direct_edit_are_left_to_gpasswd() {
    for (group, gshadow) in [
        (
            &b"root:x:0:\n+@netgroup::::\ng:x:5:al\n"[..],
            &b"g:!::al\n"[..],
        ),
        (&b"g:x:5:al\n"[..], &b"g:!::al\n-baduser\n"[..]),
    ] {
        let (_dir, files) = setup(group, gshadow);
        match files.remove_members(&pairs(&[("al", "g")])).unwrap() {
            Outcome::Fallback(why) => assert!(why.contains("NIS"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&files.group).unwrap(), group);
        assert!(!files.group.with_file_name("group.lock").exists());
    }
    let (dir, files) = setup(GROUP, GSHADOW);
    std::fs::remove_file(&files.gshadow).unwrap();
    match files.remove_members(&pairs(&[("al", "g")])).unwrap() {
        Outcome::Fallback(why) => assert!(why.contains("does not exist"), "{why}"),
        other => panic!("{other:?}"),
    }
    std::fs::rename(&files.group, dir.path.join("real")).unwrap();
    std::os::unix::fs::symlink("real", &files.group).unwrap();
    std::fs::write(&files.gshadow, GSHADOW).unwrap();
    match files.remove_members(&pairs(&[("al", "g")])).unwrap() {
        Outcome::Fallback(why) => assert!(why.contains("not a plain file"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_lock_that_cannot_be_made_is_an_error_at_once_and_leaves_nothing() {
    let (dir, mut files) = setup(GROUP, GSHADOW);
    files.pwd_lock = dir.path.join("no-such-dir/.pwd.lock");
    files.lock_timeout = Duration::from_secs(30);
    let started = Instant::now();
    let e = files
        .remove_members(&pairs(&[("al", "docker")]))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(e, GrantError::Io { .. }), "{e}");
    assert_eq!(names_in(&dir.path), ["group", "gshadow"]);
}

#[test]
fn a_failed_second_rename_puts_the_first_file_back() {
    let (dir, files) = setup(GROUP, GSHADOW);
    let group = Snapshot::read(&files.group).unwrap();
    std::fs::write(&files.group, b"changed\n").unwrap();
    let e = undo(
        &[&group],
        &files.gshadow,
        std::io::Error::other("disk full"),
    );
    let msg = e.to_string();
    assert!(
        msg.contains("disk full") && msg.contains("put back as it was"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&files.group).unwrap(), GROUP);
    assert_eq!(names_in(&dir.path), ["group", "gshadow"]);
}

#[test]
fn a_batch_error_is_repeated_for_each_membership() {
    let e = GrantError::io(
        "/etc/group.lock",
        std::io::Error::new(std::io::ErrorKind::WouldBlock, "held by pid 7"),
    );
    let copy = again(&e);
    assert_eq!(copy.to_string(), e.to_string());
    assert!(
        matches!(copy, GrantError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::WouldBlock)
    );
}

#[test]
fn temporaries_left_by_an_edit_that_died_are_cleared_by_the_next() {
    let (dir, files) = setup(GROUP, GSHADOW);
    std::fs::write(dir.path.join("gshadow.jitd0123456789abcdef"), GSHADOW).unwrap();
    // Not ours: kept.
    std::fs::write(dir.path.join("gshadow.jitd-notes"), b"admin's").unwrap();
    edited(files.remove_members(&pairs(&[("al", "docker")])).unwrap());
    assert_eq!(
        names_in(&dir.path),
        [
            ".pwd.lock",
            "group",
            "group-",
            "gshadow",
            "gshadow-",
            "gshadow.jitd-notes"
        ]
    );
}
