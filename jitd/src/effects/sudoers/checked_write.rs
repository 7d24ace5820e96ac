//! How jitd's sudoers files are written: a temporary file created exclusively, root's and
//! 0440, synced, checked by `visudo -cf` and renamed over the file, then the directory synced.
//! Several files can share one `visudo` run.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{SudoersDir, carries, create_exclusive, read_small, remove_if_ours_temp, sync_dir};
use crate::effects::{GrantError, run_tool};

impl SudoersDir {
    /// Puts several files (`name`, `marker`, `text`) in place with one `visudo` run for all
    /// of them, renamed in the order given: a user's first grant changes the users file and
    /// its privilege's file, and each `visudo` is a process start and a parse of its own.
    pub fn install_named_together(&self, files: &[(&str, &str, &str)]) -> Result<(), GrantError> {
        let mut pending = Vec::new();
        for (name, marker, text) in files {
            let (path, temp) = (self.dir.join(name), self.dir.join(format!(".{name}.tmp")));
            if self.needs_write(&path, marker, text)? {
                pending.push((path, temp, *text));
            }
        }
        let temps: Vec<&Path> = pending.iter().map(|(_, t, _)| t.as_path()).collect();
        let result = pending
            .iter()
            .try_for_each(|(_, temp, text)| self.write_temp(temp, text))
            .and_then(|()| self.visudo_check(&temps))
            .and_then(|()| {
                for (path, temp, _) in &pending {
                    fs::rename(temp, path).map_err(|e| GrantError::io(path, e))?;
                }
                sync_dir(&self.dir)
            });
        if result.is_err() {
            for temp in &temps {
                let _ = remove_if_ours_temp(temp);
            }
        }
        result
    }

    /// Whether `path` must be written to say `text`: `Ok(false)` when it already does, as
    /// root's 0440 file; an error when something not jitd's is in the way.
    pub(super) fn needs_write(
        &self,
        path: &Path,
        marker: &str,
        text: &str,
    ) -> Result<bool, GrantError> {
        if !text.starts_with(marker) {
            return Err(GrantError::Verify {
                what: "drop-in text lacks its marker".into(),
            });
        }
        self.check_dir()?;
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_file() && carries(path, marker) => {
                // Ours but altered: replaced by the same safe path as a new file.
                Ok(!(meta.uid() == 0
                    && meta.gid() == 0
                    && meta.mode() & 0o7777 == 0o440
                    && read_small(path).as_deref() == Some(text)))
            }
            Ok(_) => Err(GrantError::Foreign {
                path: path.to_path_buf(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(GrantError::io(path, e)),
        }
    }

    /// Writes `text` to the temporary file `temp`: created exclusively, root's, 0440, synced.
    pub(super) fn write_temp(&self, temp: &Path, text: &str) -> Result<(), GrantError> {
        self.write_temp_as(temp, text, true)
    }

    fn write_temp_as(&self, temp: &Path, text: &str, sync: bool) -> Result<(), GrantError> {
        let mut file = match create_exclusive(temp) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // A leftover from a crash: ours if it is a plain file; else refuse.
                if !remove_if_ours_temp(temp)? {
                    return Err(GrantError::Foreign {
                        path: temp.to_path_buf(),
                    });
                }
                create_exclusive(temp).map_err(|e| GrantError::io(temp, e))?
            }
            Err(_) if fs::symlink_metadata(temp).is_ok() => {
                return Err(GrantError::Foreign {
                    path: temp.to_path_buf(),
                });
            }
            Err(e) => return Err(GrantError::io(temp, e)),
        };
        let io = |e| GrantError::io(temp, e);
        std::os::unix::fs::fchown(&file, Some(0), Some(0)).map_err(io)?;
        file.set_permissions(fs::Permissions::from_mode(0o440))
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        if sync {
            file.sync_all().map_err(io)?;
        }
        Ok(())
    }

    /// One `visudo -cf` over `temps`: the file itself for one, else a check file in the same
    /// directory that includes each (visudo checks what a file includes).
    pub(super) fn visudo_check(&self, temps: &[&Path]) -> Result<(), GrantError> {
        let check = self.dir.join(".jitd_check.tmp");
        // `@include` takes a path as it is only when nothing in it needs quoting.
        let plain = |p: &&Path| {
            p.to_str().is_some_and(|s| {
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            })
        };
        if temps.len() > 1 && !temps.iter().all(plain) {
            return temps.iter().try_for_each(|t| self.visudo_check(&[t]));
        }
        let target = match temps {
            [] => return Ok(()),
            [one] => one.to_path_buf(),
            many => {
                let text: String = many
                    .iter()
                    .map(|t| format!("@include {}\n", t.display()))
                    .collect();
                // Read once by visudo and removed: never needs to reach the disk.
                self.write_temp_as(&check, &text, false)?;
                check.clone()
            }
        };
        let out = run_tool(
            &self.visudo,
            &[OsStr::new("-c"), OsStr::new("-f"), target.as_os_str()],
        );
        if temps.len() > 1 {
            let _ = remove_if_ours_temp(&check);
        }
        let out = out?;
        if !out.status.success() {
            let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
            output.push_str(&String::from_utf8_lossy(&out.stdout));
            return Err(GrantError::Visudo {
                path: target,
                output: output.trim().replace('\n', " | "),
            });
        }
        Ok(())
    }
}
