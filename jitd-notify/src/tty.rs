//! The terminal sink: like `write(1)`, a short message on the terminals of the people a note
//! names who are logged in on this host — only theirs: a pseudo-terminal is written to only
//! when its owner is one of them, and only when they allow messages (`mesg y`: group `tty`
//! may write), which is why the notifier's account is in group `tty` for this sink.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use nix::unistd::{Group, User};

use crate::note::Note;

/// The uids of the users and the members of the groups the note names, as NSS knows them.
fn recipients(n: &Note) -> BTreeSet<u32> {
    let mut uids = BTreeSet::new();
    for u in &n.users {
        if let Ok(Some(user)) = User::from_name(u) {
            uids.insert(user.uid.as_raw());
        }
    }
    for g in &n.groups {
        if let Ok(Some(group)) = Group::from_name(g) {
            for m in &group.mem {
                if let Ok(Some(user)) = User::from_name(m) {
                    uids.insert(user.uid.as_raw());
                }
            }
        }
    }
    uids
}

/// Printable text only: a reason or a name can never move the cursor or recolour a terminal.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\n' || (' '..='~').contains(&c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Writes the note to every terminal of its recipients; `Err` only when none could be written
/// though some recipient was logged in.
pub fn deliver(n: &Note) -> Result<(), String> {
    let uids = recipients(n);
    let text = clean(&format!("{}\n{}", n.subject(), n.text()));
    let msg = format!(
        "\r\n\x07Message from jitd:\r\n{}\r\n",
        text.trim_end().replace('\n', "\r\n")
    );
    let entries = std::fs::read_dir("/dev/pts").map_err(|e| format!("/dev/pts: {e}"))?;
    let (mut found, mut written) = (0, 0);
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let is_tty = path
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.bytes().all(|b| b.is_ascii_digit()));
        if !is_tty || !uids.contains(&meta.uid()) {
            continue;
        }
        found += 1;
        // O_NOCTTY: writing must never make the terminal ours.
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
            .open(&path);
        if let Ok(mut f) = opened
            && f.write_all(msg.as_bytes()).is_ok()
        {
            written += 1;
        }
    }
    if found > 0 && written == 0 {
        return Err(format!(
            "{found} terminal(s) of the recipients refuse messages (mesg n)"
        ));
    }
    Ok(())
}
