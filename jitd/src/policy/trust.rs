//! Which of its own files jitd believes. The policy says who may become root and `jitd.toml`
//! names the tools jitd runs as root, so, as sudo does with sudoers, a file (or the policy
//! directory) counts only when root owns it and neither its group nor others may write it.
//! Anyone else who could write it could write themselves a rule.
//!
//! Files are checked on the handle they are read from, so what was checked is what is read.

#![forbid(unsafe_code)]

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What to do with a file that fails the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUntrusted {
    /// The daemon, the sweep, and `jitctl policy check` as root: the file is an error.
    Refuse,
    /// `jitctl policy check` run by someone else, who is likely checking a draft of their own:
    /// a warning that says the daemon will refuse it.
    Warn,
}

/// Why `path` (with `meta`, the status of the handle it is read from) must not be believed,
/// naming the file and the commands that fix it; `None` when root owns it and only root may
/// write it.
pub fn check(path: &Path, meta: &Metadata) -> Option<String> {
    let mode = meta.mode() & 0o7777;
    let mut wrong = Vec::new();
    if meta.uid() != 0 {
        wrong.push(format!("it is owned by uid {}, not root", meta.uid()));
    }
    match mode & 0o022 {
        0 => {}
        0o020 => wrong.push(format!("its group may write it (mode {mode:04o})")),
        0o002 => wrong.push(format!("anyone may write it (mode {mode:04o})")),
        _ => wrong.push(format!(
            "its group and anyone may write it (mode {mode:04o})"
        )),
    }
    if wrong.is_empty() {
        return None;
    }
    let what = if meta.is_dir() { "directory" } else { "file" };
    let p = path.display();
    Some(format!(
        "not trusted: {}; jitd reads a {what} only when root owns it and nobody else may write \
         it. Fix: chown root:root {p}; chmod {:o} {p}",
        wrong.join(" and "),
        mode & !0o022,
    ))
}

/// The text of `path`, read from the handle whose owner and mode were checked, with the check's
/// complaint if any (the caller decides whether it refuses or warns). Errors say what failed,
/// without the path (callers add it).
pub fn read(path: &Path, max_bytes: u64) -> Result<(String, Option<String>), String> {
    let file = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max_bytes {
        const MIB: u64 = 1024 * 1024;
        let limit = if max_bytes.is_multiple_of(MIB) {
            format!("{} MiB", max_bytes / MIB)
        } else {
            format!("{max_bytes} bytes")
        };
        return Err(format!(
            "file is {} bytes; jitd reads at most {limit}",
            meta.len()
        ));
    }
    let complaint = check(path, &meta);
    let mut bytes = Vec::new();
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()))?;
    Ok((text, complaint))
}

/// Whether this process runs as root (then `jitctl policy check` judges as the daemon does).
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_root_owned_files_nobody_else_may_write_are_trusted() {
        let dir = std::env::temp_dir().join(format!("jitd-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.toml");
        std::fs::write(&file, "x = 1\n").unwrap();
        let root = nix::unistd::geteuid().is_root();
        for (mode, writable) in [
            (0o644, None),
            (0o600, None),
            (0o664, Some("its group may write it (mode 0664)")),
            (0o646, Some("anyone may write it (mode 0646)")),
            (0o666, Some("its group and anyone may write it (mode 0666)")),
        ] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let (text, complaint) = read(&file, 100).unwrap();
            assert_eq!(text, "x = 1\n");
            match (writable, complaint) {
                (None, None) => assert!(root, "trusted only when root owns it"),
                (None, Some(c)) => assert!(!root && c.contains("not root"), "{c}"),
                (Some(why), Some(c)) => {
                    assert!(c.contains(why), "{c}");
                    let fixed = mode & !0o022;
                    assert!(
                        c.ends_with(&format!(
                            "Fix: chown root:root {p}; chmod {fixed:o} {p}",
                            p = file.display()
                        )),
                        "{c}"
                    );
                }
                (Some(why), None) => panic!("mode {mode:o} must be refused: {why}"),
            }
        }
        assert!(read(&dir, 100).unwrap_err().contains("not a regular file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
