//! How jitd's sudoers files are written: a temporary file created exclusively, root's and
//! 0440, synced, checked by `visudo -cf` and renamed over the file, then the directory synced.
//! Several files can share one `visudo` run, and the caller may do other work while `visudo`
//! runs ([`Staged`]): a grant's database commit and record write wait for no process start.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{SudoersDir, carries, create_exclusive, read_small, remove_if_ours_temp, sync_dir};
use crate::effects::{GrantError, RunningTool, TOOL_TIMEOUT, start_tool};

/// Files written aside and being checked by `visudo`, not in place yet: [`Staged::commit`]
/// renames them in, in the order given, and syncs the directory. Dropped uncommitted, the
/// check is stopped and the temporary files removed: nothing changed.
#[must_use = "nothing is in place until it is committed"]
pub struct Staged<'a> {
    dir: &'a SudoersDir,
    /// Each file with its temporary file.
    pending: Vec<(PathBuf, PathBuf)>,
    check: Option<Check>,
}

/// A `visudo -cf` run under way over `target`, with the include file made for it, if any.
struct Check {
    tool: Option<RunningTool>,
    target: PathBuf,
    includes: Option<PathBuf>,
}

impl Staged<'_> {
    /// Waits for `visudo`'s verdict; on a yes, renames the files in and syncs the directory.
    pub fn commit(mut self) -> Result<(), GrantError> {
        let checked = match self.check.take() {
            Some(check) => check.verdict(),
            None => Ok(()),
        };
        checked?;
        for (path, temp) in &self.pending {
            // On a failure, the temporary files not renamed yet go with `self`.
            fs::rename(temp, path).map_err(|e| GrantError::io(path, e))?;
        }
        self.pending.clear();
        sync_dir(&self.dir.dir)
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        // Not committed, or failed part-way: the check (if still running) stops with it.
        drop(self.check.take());
        for (_, temp) in &self.pending {
            let _ = remove_if_ours_temp(temp);
        }
    }
}

impl Check {
    fn verdict(mut self) -> Result<(), GrantError> {
        let Some(tool) = self.tool.take() else {
            return Ok(());
        };
        let out = tool.wait(TOOL_TIMEOUT);
        if let Some(includes) = self.includes.take() {
            let _ = remove_if_ours_temp(&includes);
        }
        let out = out?;
        if !out.status.success() {
            let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
            output.push_str(&String::from_utf8_lossy(&out.stdout));
            return Err(GrantError::Visudo {
                path: std::mem::take(&mut self.target),
                output: output.trim().replace('\n', " | "),
            });
        }
        Ok(())
    }
}

impl Drop for Check {
    fn drop(&mut self) {
        if let Some(includes) = &self.includes {
            let _ = remove_if_ours_temp(includes);
        }
    }
}

impl SudoersDir {
    /// Puts several files (`name`, `marker`, `text`) in place with one `visudo` run for all
    /// of them, renamed in the order given: a user's first grant changes the users file and
    /// its privilege's file, and each `visudo` is a process start and a parse of its own.
    pub fn install_named_together(&self, files: &[(&str, &str, &str)]) -> Result<(), GrantError> {
        self.stage_named(files)?.commit()
    }

    /// Writes and starts checking the files (`name`, `marker`, `text`) that need it, without
    /// putting them in place: see [`Staged`].
    pub fn stage_named(&self, files: &[(&str, &str, &str)]) -> Result<Staged<'_>, GrantError> {
        let files: Vec<(PathBuf, PathBuf, &str, &str)> = files
            .iter()
            .map(|(name, marker, text)| {
                let (path, temp) = (self.dir.join(name), self.dir.join(format!(".{name}.tmp")));
                (path, temp, *marker, *text)
            })
            .collect();
        self.stage(&files)
    }

    /// [`Self::stage_named`] for files given by path, each with its temporary file.
    pub(super) fn stage(
        &self,
        files: &[(PathBuf, PathBuf, &str, &str)],
    ) -> Result<Staged<'_>, GrantError> {
        let mut staged = Staged {
            dir: self,
            pending: Vec::new(),
            check: None,
        };
        for (path, temp, marker, text) in files {
            if self.needs_write(path, marker, text)? {
                // Listed first: a temporary file half-written is removed with the rest.
                staged.pending.push((path.clone(), temp.clone()));
                self.write_temp(temp, text)?;
            }
        }
        let temps: Vec<&Path> = staged.pending.iter().map(|(_, t)| t.as_path()).collect();
        staged.check = self.start_check(&temps)?;
        Ok(staged)
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

    /// Starts one `visudo -cf` over `temps`: the file itself for one, else a check file in the
    /// same directory that includes each (visudo checks what a file includes). `None` when
    /// there is nothing to check, or it was checked already (paths `@include` cannot take
    /// as they are: one run each, waited for).
    fn start_check(&self, temps: &[&Path]) -> Result<Option<Check>, GrantError> {
        let includes = self.dir.join(".jitd_check.tmp");
        // `@include` takes a path as it is only when nothing in it needs quoting.
        let plain = |p: &&Path| {
            p.to_str().is_some_and(|s| {
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            })
        };
        if temps.len() > 1 && !temps.iter().all(plain) {
            for t in temps {
                if let Some(check) = self.start_check(&[t])? {
                    check.verdict()?;
                }
            }
            return Ok(None);
        }
        let (target, includes) = match temps {
            [] => return Ok(None),
            [one] => (one.to_path_buf(), None),
            many => {
                let text: String = many
                    .iter()
                    .map(|t| format!("@include {}\n", t.display()))
                    .collect();
                // Read once by visudo and removed: never needs to reach the disk.
                self.write_temp_as(&includes, &text, false)?;
                (includes.clone(), Some(includes))
            }
        };
        let started = start_tool(
            &self.visudo,
            &[OsStr::new("-c"), OsStr::new("-f"), target.as_os_str()],
            None,
        );
        let tool = match started {
            Ok(tool) => tool,
            Err(e) => {
                if let Some(includes) = &includes {
                    let _ = remove_if_ours_temp(includes);
                }
                return Err(e);
            }
        };
        Ok(Some(Check {
            tool: Some(tool),
            target,
            includes,
        }))
    }
}
