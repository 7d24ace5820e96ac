#![allow(clippy::disallowed_methods)] // temp dirs and the real visudo in tests

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::clock::{FakeClock, sudoers_stamp};
use crate::effects::sudoers::consolidate::USERS_FILE;
use crate::effects::sudoers::users::LINGER_MS;
use crate::effects::sudoers::{DropIn, SudoFlavor, render};
use crate::names::SudoCommand;
use crate::testutil::TempDir;

/// The drop-in directory and the records' directory, in a temp dir removed after the test.
pub(super) fn temp_dirs() -> (PathBuf, PathBuf, TempDir) {
    let root = TempDir::new();
    let (sudoers, records) = (root.join("sudoers.d"), root.join("sudo"));
    fs::create_dir_all(&sudoers).unwrap();
    fs::set_permissions(&sudoers, fs::Permissions::from_mode(0o750)).unwrap();
    (sudoers, records, root)
}

pub(super) fn shards(dirs: &(PathBuf, PathBuf, TempDir)) -> Shards {
    shards_at(dirs, Arc::new(FakeClock::new(1_795_000_000_000)))
}

fn shards_at(dirs: &(PathBuf, PathBuf, TempDir), clock: Arc<FakeClock>) -> Shards {
    Shards::new(
        SudoersDir::new(dirs.0.clone(), PathBuf::from("/usr/sbin/visudo")),
        dirs.1.clone(),
        clock,
    )
}

pub(super) fn p() -> PrivilegeName {
    PrivilegeName::parse("nginx-admin").unwrap()
}

pub(super) fn entry(n: u8, uid: u32, until_secs: i64) -> Entry {
    let grant = GrantId::parse(&format!("g0123456789{n:02x}")).unwrap();
    let commands = [SudoCommand::parse("/usr/bin/systemctl restart nginx").unwrap()];
    let flavor = SudoFlavor::Classic {
        version: String::new(),
        notafter: true,
    };
    let text = render(
        &DropIn {
            grant: &grant,
            uid,
            privilege: &p(),
            run_as_uid: 0,
            commands: &commands,
            password_each_time: false,
            not_after_unix_secs: until_secs,
        },
        &flavor,
    )
    .unwrap();
    Entry {
        grant,
        uid,
        until_ms: until_secs * 1000,
        text: text.into(),
    }
}

pub(super) fn file(dirs: &(PathBuf, PathBuf, TempDir)) -> PathBuf {
    dirs.0.join(consolidate::file_name(&p()))
}

#[test]
fn grants_are_added_and_taken_off_one_file_that_visudo_accepts() {
    let dirs = temp_dirs();
    let s = shards(&dirs);
    let (a, b) = (entry(1, 1001, 1_795_000_000), entry(2, 1002, 1_795_000_000));
    s.put(&p(), a.clone()).unwrap();
    s.put(&p(), b.clone()).unwrap();
    let text = fs::read_to_string(file(&dirs)).unwrap();
    let stamp = sudoers_stamp(1_795_000_000);
    assert!(
        text.contains(&format!(
            "\n#1001, #1002 ALL=(#0) NOTAFTER={stamp} NOPASSWD: "
        )),
        "{text}"
    );
    let meta = fs::metadata(file(&dirs)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o440);
    assert_eq!(
        s.status(&p(), &a.grant, &a.text).unwrap(),
        DropInStatus::Intact
    );

    s.take(&p(), &[&a.grant]).unwrap();
    let text = fs::read_to_string(file(&dirs)).unwrap();
    assert!(!text.contains("#1001"), "{text}");
    assert!(text.contains("\n#1002 ALL="), "{text}");
    assert_eq!(
        s.status(&p(), &a.grant, &a.text).unwrap(),
        DropInStatus::Missing
    );
    assert_eq!(s.entries().0.len(), 1);

    s.take(&p(), &[&b.grant]).unwrap();
    assert!(!file(&dirs).exists(), "no grants, no file");
    assert!(s.entries().0.is_empty(), "the record holds no grant");
}

#[test]
fn two_writers_from_the_same_records_never_lose_or_revive_a_grant() {
    // The daemon and the sweep: each change starts from the record on disk.
    let dirs = temp_dirs();
    let (daemon, sweep) = (shards(&dirs), shards(&dirs));
    let (a, b, c) = (
        entry(1, 1001, 1_795_000_000),
        entry(2, 1002, 1_795_000_100),
        entry(3, 1003, 1_795_000_200),
    );
    daemon.put(&p(), a.clone()).unwrap();
    daemon.put(&p(), b.clone()).unwrap();
    sweep.take(&p(), &[&a.grant]).unwrap();
    daemon.put(&p(), c.clone()).unwrap();
    let text = fs::read_to_string(file(&dirs)).unwrap();
    assert!(
        !text.contains("#1001 "),
        "the sweep's removal stands: {text}"
    );
    assert!(text.contains("#1002 ") && text.contains("#1003 "), "{text}");
}

#[test]
fn a_file_deleted_or_edited_behind_jitds_back_is_seen_and_put_right_by_the_next_change() {
    let dirs = temp_dirs();
    let s = shards(&dirs);
    let (a, b) = (entry(1, 1001, 1_795_000_000), entry(2, 1002, 1_795_000_000));
    s.put(&p(), a.clone()).unwrap();
    let good = fs::read_to_string(file(&dirs)).unwrap();
    fs::set_permissions(file(&dirs), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(
        file(&dirs),
        format!("{good}#1002 ALL=(ALL) NOPASSWD: ALL\n"),
    )
    .unwrap();
    assert!(matches!(
        s.status(&p(), &a.grant, &a.text).unwrap(),
        DropInStatus::Tampered(_)
    ));
    s.put(&p(), b.clone()).unwrap();
    let text = fs::read_to_string(file(&dirs)).unwrap();
    assert!(!text.contains("(ALL) NOPASSWD: ALL"), "{text}");
    assert_eq!(s.take_drift().len(), 1);
    fs::remove_file(file(&dirs)).unwrap();
    assert_eq!(
        s.status(&p(), &a.grant, &a.text).unwrap(),
        DropInStatus::Missing
    );
    s.take(&p(), &[&b.grant]).unwrap();
    assert!(
        fs::read_to_string(file(&dirs))
            .unwrap()
            .contains("\n#1001 ALL=")
    );
    assert_eq!(s.take_drift(), vec![(p(), "missing".to_string())]);
}

#[test]
fn a_rule_visudo_refuses_changes_neither_the_file_nor_the_record() {
    let dirs = temp_dirs();
    let s = Shards::new(
        SudoersDir::new(dirs.0.clone(), PathBuf::from("/bin/false")),
        dirs.1.clone(),
        Arc::new(FakeClock::new(1_795_000_000_000)),
    );
    assert!(s.put(&p(), entry(1, 1001, 1_795_000_000)).is_err());
    assert!(!file(&dirs).exists());
    assert!(s.entries().0.is_empty(), "the record went back");
}

#[test]
fn a_record_line_that_does_not_read_back_is_an_error_naming_its_place() {
    let dirs = temp_dirs();
    let s = shards(&dirs);
    s.put(&p(), entry(1, 1001, 1_795_000_000)).unwrap();
    let path = dirs.1.join("nginx-admin.jsonl");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("{\"grant\":\"../../x\",\"uid\":1,\"until_ms\":0,\"text\":\"\"}\n");
    fs::write(&path, text).unwrap();
    let (_, errors) = s.entries();
    assert!(
        errors[0].to_string().contains("nginx-admin.jsonl:2"),
        "{}",
        errors[0]
    );
}

pub(super) fn logged(mut e: Entry, privilege_uid: u32) -> Entry {
    e.text = format!(
        "{}Defaults:#{privilege_uid} log_format=json, logfile=/var/lib/jitd/ledger/{privilege_uid}.json, log_exit_status\n",
        e.text
    )
    .into();
    e
}

#[test]
fn a_users_settings_are_written_once_while_any_of_their_grants_lives() {
    let dirs = temp_dirs();
    // Lines go with their last grant here; lingering has a test of its own.
    let s = shards(&dirs).lingering(0);
    let other = PrivilegeName::parse("docker-admin").unwrap();
    let users = dirs.0.join(USERS_FILE);
    let (a, b) = (
        logged(entry(1, 1001, 1_795_000_000), 1001),
        logged(entry(2, 1001, 1_795_000_500), 1001),
    );
    s.put(&p(), a.clone()).unwrap();
    s.put(&other, b.clone()).unwrap();
    let text = fs::read_to_string(&users).unwrap();
    assert_eq!(text.matches("#1001").count(), 1, "{text}");
    assert!(
        text.contains("User_Alias JITD_USERS_1 = #1001\nDefaults:JITD_USERS_1 log_format=json"),
        "{text}"
    );
    assert!(
        !fs::read_to_string(file(&dirs))
            .unwrap()
            .contains("Defaults")
    );
    assert!(
        std::process::Command::new("/usr/sbin/visudo")
            .args(["-cf"])
            .arg(&users)
            .output()
            .unwrap()
            .status
            .success()
    );
    s.take(&p(), &[&a.grant]).unwrap();
    assert!(users.exists(), "b still carries the line");
    // Deleted behind jitd's back: the grant reads as tampered, and putting it back restores it.
    fs::remove_file(&users).unwrap();
    assert!(matches!(
        s.status(&other, &b.grant, &b.text).unwrap(),
        DropInStatus::Tampered(_)
    ));
    s.put(&other, b.clone()).unwrap();
    assert!(fs::read_to_string(&users).unwrap().contains("= #1001\n"));
    s.take(&other, &[&b.grant]).unwrap();
    assert!(!users.exists(), "nobody left to log");
    // Counts lost in a crash are rebuilt from the records.
    s.put(&p(), a.clone()).unwrap();
    fs::remove_file(dirs.1.join("users.json")).unwrap();
    s.recount_users().unwrap();
    s.take(&p(), &[&a.grant]).unwrap();
    assert!(!users.exists());
}

fn visudo_accepts(path: &Path) -> bool {
    std::process::Command::new("/usr/sbin/visudo")
        .arg("-cf")
        .arg(path)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_users_line_outlives_their_last_grant_for_a_while_then_goes() {
    use std::os::unix::fs::MetadataExt;
    let dirs = temp_dirs();
    let clock = Arc::new(FakeClock::new(1_795_000_000_000));
    let s = shards_at(&dirs, clock.clone());
    let users = dirs.0.join(USERS_FILE);
    let inode = || fs::metadata(&users).unwrap().ino();
    let (a, b) = (
        logged(entry(1, 1001, 1_795_000_000), 1001),
        logged(entry(2, 1002, 1_795_000_000), 1002),
    );
    s.put(&p(), a.clone()).unwrap();
    s.take(&p(), &[&a.grant]).unwrap();
    let text = fs::read_to_string(&users).unwrap();
    assert!(text.contains("= #1001\n"), "gone with the grant: {text}");
    assert!(!file(&dirs).exists(), "the rule goes at once");
    assert!(visudo_accepts(&users));
    // Asked again while it lingers: the users file is neither rewritten nor checked again.
    let kept = inode();
    s.put(&p(), a.clone()).unwrap();
    assert_eq!(inode(), kept, "the users file was written again");
    assert_eq!(
        s.status(&p(), &a.grant, &a.text).unwrap(),
        DropInStatus::Intact
    );
    s.take(&p(), &[&a.grant]).unwrap();
    // The integrity check keeps it until its time is up, then lets it go.
    clock.advance_ms(LINGER_MS - 1);
    s.tidy_users().unwrap();
    assert_eq!(inode(), kept, "tidied before its time");
    clock.advance_ms(1);
    s.tidy_users().unwrap();
    assert!(!users.exists(), "still there after its time");
    // Or the next write of the file lets it go: another user's first grant.
    s.put(&p(), a.clone()).unwrap();
    s.take(&p(), &[&a.grant]).unwrap();
    clock.advance_ms(LINGER_MS);
    s.put(&p(), b.clone()).unwrap();
    let text = fs::read_to_string(&users).unwrap();
    assert!(
        !text.contains("#1001") && text.contains("= #1002\n"),
        "{text}"
    );
    assert_eq!(
        s.status(&p(), &b.grant, &b.text).unwrap(),
        DropInStatus::Intact
    );
    // A start-up's recount keeps only what live grants carry (the settings may have changed).
    s.take(&p(), &[&b.grant]).unwrap();
    assert!(users.exists(), "b lingers");
    s.recount_users().unwrap();
    assert!(!users.exists(), "a recount kept a lingering line");
    // The clock set back past when a line went: it goes rather than stay for good.
    s.put(&p(), a.clone()).unwrap();
    s.take(&p(), &[&a.grant]).unwrap();
    clock.set_wall_ms(1_000_000_000_000);
    s.tidy_users().unwrap();
    assert!(!users.exists(), "a line that went in the future stayed");
}

#[test]
fn counts_written_by_an_earlier_version_still_read() {
    let dirs = temp_dirs();
    let s = shards(&dirs).lingering(0);
    let a = logged(entry(1, 1001, 1_795_000_000), 1001);
    s.put(&p(), a.clone()).unwrap();
    // The bare map of lines to counts that earlier versions kept.
    let line = defaults(&a.text)[0].to_string();
    fs::write(
        dirs.1.join("users.json"),
        serde_json::json!({ line: 1 }).to_string(),
    )
    .unwrap();
    assert_eq!(
        s.status(&p(), &a.grant, &a.text).unwrap(),
        DropInStatus::Intact
    );
    s.take(&p(), &[&a.grant]).unwrap();
    assert!(!dirs.0.join(USERS_FILE).exists());
}

#[test]
fn a_users_file_of_thousands_of_lines_reads_back_as_intact() {
    // A thousand users' logging lines are over 64 KiB: the file must still compare equal.
    let dirs = temp_dirs();
    let s = shards(&dirs);
    let mut e = entry(1, 1001, 1_795_000_000);
    for uid in 20_000..21_000u32 {
        e = logged(e, uid);
    }
    s.put(&p(), e.clone()).unwrap();
    assert!(fs::metadata(dirs.0.join(USERS_FILE)).unwrap().len() > 64 * 1024);
    assert_eq!(
        s.status(&p(), &e.grant, &e.text).unwrap(),
        DropInStatus::Intact
    );
}

#[test]
fn a_record_changed_by_another_writer_is_read_again_however_soon() {
    // The daemon and the sweep are two processes: two `Shards` on the same directories.
    let dirs = temp_dirs();
    let (daemon, sweep) = (shards(&dirs), shards(&dirs));
    let (a, b, c) = (
        entry(1, 1001, 1_795_000_000),
        entry(2, 1002, 1_795_000_000),
        entry(3, 1003, 1_795_000_000),
    );
    daemon.put(&p(), a.clone()).unwrap();
    daemon.put(&p(), b.clone()).unwrap();
    // The sweep ends b within the same clock tick as the daemon's last look.
    sweep.take(&p(), &[&b.grant]).unwrap();
    daemon.put(&p(), c.clone()).unwrap();
    let text = fs::read_to_string(file(&dirs)).unwrap();
    assert!(text.contains("#1001") && text.contains("#1003"), "{text}");
    assert!(
        !text.contains("#1002"),
        "the sweep's removal was undone: {text}"
    );
    // And later, once the stamps are settled: still seen.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sweep.take(&p(), &[&a.grant]).unwrap();
    daemon.put(&p(), b.clone()).unwrap();
    let text = fs::read_to_string(file(&dirs)).unwrap();
    assert!(!text.contains("#1001"), "{text}");
    assert!(text.contains("#1002") && text.contains("#1003"), "{text}");
}

#[test]
fn a_grant_checked_against_its_record_shares_the_records_copy_of_its_rule() {
    let dirs = temp_dirs();
    let a = entry(1, 1001, 1_795_000_000);
    shards(&dirs).put(&p(), a.clone()).unwrap();
    // A new start: the grant's rule read from the database is a copy of its own.
    let s = shards(&dirs);
    let from_db: Arc<str> = Arc::from(&*a.text);
    assert_eq!(
        s.shared_text(&p(), &a.grant, &from_db),
        None,
        "not checked yet"
    );
    assert_eq!(
        s.status(&p(), &a.grant, &from_db).unwrap(),
        DropInStatus::Intact
    );
    let shared = s.shared_text(&p(), &a.grant, &from_db).unwrap();
    assert_eq!(*shared, *from_db);
    assert!(!Arc::ptr_eq(&shared, &from_db));
    assert!(
        Arc::ptr_eq(&shared, &s.shared_text(&p(), &a.grant, &from_db).unwrap()),
        "one copy, whoever asks"
    );
    // A text the record does not hold is never swapped in for it.
    let other = format!("{}# changed\n", a.text);
    assert_eq!(s.shared_text(&p(), &a.grant, &other), None);
    let b = entry(2, 1002, 1_795_000_000);
    assert_eq!(s.shared_text(&p(), &b.grant, &b.text), None);
}

/// A grant of uid `2000 + i` with its own id, like the daemon writes.
fn numbered(i: u64) -> Entry {
    let mut e = entry(0, 2000 + i as u32, 1_795_000_000 + i as i64);
    e.grant = GrantId::from_random(i + 1);
    e
}

fn record_lines(dirs: &(PathBuf, PathBuf, TempDir)) -> Vec<String> {
    fs::read_to_string(dirs.1.join("nginx-admin.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_grant_adds_a_line_to_its_record_not_the_whole_record_again() {
    let dirs = temp_dirs();
    let s = shards(&dirs);
    for i in 0..100 {
        s.put(&p(), numbered(i)).unwrap();
    }
    let size = fs::metadata(dirs.1.join("nginx-admin.jsonl"))
        .unwrap()
        .len();
    let a = numbered(500);
    s.put(&p(), a.clone()).unwrap();
    s.take(&p(), &[&a.grant]).unwrap();
    let lines = record_lines(&dirs);
    let grown = fs::metadata(dirs.1.join("nginx-admin.jsonl"))
        .unwrap()
        .len()
        - size;
    assert!(grown < 1024, "{grown} bytes for one grant and its end");
    assert!(
        lines
            .last()
            .unwrap()
            .contains(&format!("\"take\":\"{}\"", a.grant)),
        "{:?}",
        lines.last()
    );
    // Read back by another process: the lines replay to the grants on the system.
    let again = shards(&dirs);
    let (found, errors) = again.entries();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(found.len(), 100);
    assert!(found.iter().all(|(_, e)| e.grant != a.grant));
    let text = fs::read_to_string(file(&dirs)).unwrap();
    assert!(text.contains("#2099") && !text.contains("#2500"), "{text}");
}

#[test]
fn a_record_grown_past_twice_its_grants_is_written_whole_again() {
    let dirs = temp_dirs();
    let s = shards(&dirs);
    for i in 0..10 {
        s.put(&p(), numbered(i)).unwrap();
    }
    let a = numbered(500);
    let mut longest = 0;
    for _ in 0..100 {
        s.put(&p(), a.clone()).unwrap();
        s.take(&p(), &[&a.grant]).unwrap();
        longest = longest.max(record_lines(&dirs).len());
    }
    assert!(longest <= 2 * 11 + 64 + 2, "{longest} lines for 10 grants");
    assert!(longest > 20, "never appended: {longest}");
    let (found, errors) = shards(&dirs).entries();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(found.len(), 10);
}

#[test]
fn a_last_line_a_crash_cut_short_is_dropped_and_the_record_then_written_whole() {
    let dirs = temp_dirs();
    let s = shards(&dirs);
    let (a, b) = (numbered(1), numbered(2));
    s.put(&p(), a.clone()).unwrap();
    // The crash: half of b's line, no newline.
    let path = dirs.1.join("nginx-admin.jsonl");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(r#"{"grant":"g0000000000ff","uid":99"#);
    fs::write(&path, &text).unwrap();
    let after = shards(&dirs);
    let (found, errors) = after.entries();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(found.len(), 1);
    after.put(&p(), b.clone()).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.ends_with('\n') && !text.contains("g0000000000ff"),
        "{text}"
    );
    assert_eq!(shards(&dirs).entries().0.len(), 2);
    // A broken line anywhere else is an error naming it, never skipped.
    fs::write(&path, format!("not json\n{text}")).unwrap();
    let (_, errors) = shards(&dirs).entries();
    assert!(
        errors[0].to_string().contains("nginx-admin.jsonl:1"),
        "{errors:?}"
    );
}

/// The daemon does not read back the users' counts it wrote itself, but the sweep (another
/// process: another `Shards` here) changes them too: its writes are read however soon.
#[test]
fn users_counts_another_writer_changed_are_read_again_however_soon() {
    let dirs = temp_dirs();
    let (daemon, sweep) = (shards(&dirs).lingering(0), shards(&dirs).lingering(0));
    let other = PrivilegeName::parse("docker-admin").unwrap();
    let users = dirs.0.join(USERS_FILE);
    let t = 1_795_000_000;
    let a = logged(entry(1, 1001, t), 1001);
    let b = logged(entry(2, 1002, t), 1002);
    let c = logged(entry(3, 1001, t + 500), 1001);
    daemon.put(&p(), a.clone()).unwrap();
    sweep.put(&other, b.clone()).unwrap();
    daemon.put(&other, c.clone()).unwrap();
    daemon.take(&p(), &[&a.grant]).unwrap();
    let text = fs::read_to_string(&users).unwrap();
    assert!(text.contains("#1001") && text.contains("#1002"), "{text}");
    sweep.take(&other, &[&b.grant]).unwrap();
    daemon.take(&other, &[&c.grant]).unwrap();
    assert!(!users.exists(), "nobody left to log");
}
