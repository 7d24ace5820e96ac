//! The shared log emptied under sudo's own lock, against real files and real `fcntl` locks.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::store::LedgerPosition;

fn log_of(dir: &Path, bytes: usize) -> (PathBuf, LedgerPosition) {
    let path = dir.join(SHARED_LOG);
    // What sudo leaves: one object, its members, the closing brace.
    let mut text = String::from("{\n    \"accept\": {\"uuid\": \"");
    text.push_str(&"a".repeat(bytes));
    text.push_str("\"}\n}\n");
    std::fs::write(&path, &text).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let read_to = LedgerPosition {
        dev: meta.dev(),
        ino: meta.ino(),
        offset: meta.len() - 3,
    };
    (path, read_to)
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jitd-ledger-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_large_log_read_to_its_end_is_emptied_in_place() {
    let dir = temp_dir("empty");
    let (path, p) = log_of(&dir, EMPTY_AT as usize);
    let now = empty_if_read(&path, &p).expect("emptied");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 0);
    assert_eq!(
        (now.dev, now.ino, now.offset),
        (p.dev, p.ino, 0),
        "the same file, from its start"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_log_is_left_alone_while_small_unread_or_locked_by_sudo() {
    let dir = temp_dir("keep");
    // Small: kept.
    let (path, p) = log_of(&dir, 1000);
    assert!(empty_if_read(&path, &p).is_none());
    // Large but with an event not read yet: kept.
    let (path, mut p) = log_of(&dir, EMPTY_AT as usize);
    p.offset -= 100;
    assert!(empty_if_read(&path, &p).is_none());
    assert!(std::fs::metadata(&path).unwrap().len() > EMPTY_AT);
    // Large, read, but sudo holds its lock (writing an event): kept, tried again later.
    let (path, p) = log_of(&dir, EMPTY_AT as usize);
    let sudo = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    crate::sys::try_lock_whole_file(&sudo).unwrap();
    assert!(empty_if_read(&path, &p).is_none());
    drop(sudo);
    assert!(empty_if_read(&path, &p).is_some());
    let _ = std::fs::remove_dir_all(dir);
}
