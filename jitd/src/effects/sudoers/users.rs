//! `/etc/sudoers.d/jitd_users`: the per-user settings (`Defaults:#uid …`) of users holding live
//! sudo grants, each line once however many grants and privileges carry it.
//!
//! A line is in the file while at least one grant on the system carries it. The counts are kept
//! in `<state_dir>/sudo/users.json`, changed under the lock of [`super::shards`] together with
//! the privilege's record; [`Users::recount`] rebuilds them from the records at start-up, so a
//! crash between the two writes costs at most one integrity check's worth of a stale count. The
//! file grants nothing (no rule), so a line left a moment too long only logs more.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use super::consolidate::{USERS_FILE, USERS_MARKER, users_file};
use super::{DropInStatus, SudoersDir};
use crate::effects::GrantError;

/// How many grants carry each line.
pub type Counts = BTreeMap<String, u32>;

/// A change to the users file.
pub enum FileChange {
    Install(String),
    Remove,
}

pub struct Users<'a> {
    pub sudoers: &'a SudoersDir,
    pub records: &'a PathBuf,
}

impl Users<'_> {
    fn path(&self) -> PathBuf {
        self.records.join("users.json")
    }

    pub fn read(&self) -> Result<Counts, GrantError> {
        let path = self.path();
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| GrantError::Verify {
                what: format!("{}: {e}", path.display()),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Counts::new()),
            Err(e) => Err(GrantError::io(&path, e)),
        }
    }

    pub fn write(&self, counts: &Counts) -> Result<(), GrantError> {
        let text = serde_json::to_string(counts).map_err(|e| GrantError::Verify {
            what: e.to_string(),
        })?;
        // Not synced: the counts are derived (recounted from the records at start-up) and the
        // file grants nothing, so a grant does not wait on another flush for them.
        let (path, temp) = (self.path(), self.records.join(".users.json.tmp"));
        fs::write(&temp, text).map_err(|e| GrantError::io(&temp, e))?;
        fs::rename(&temp, &path).map_err(|e| GrantError::io(&path, e))
    }

    /// Makes the file say exactly the lines of `counts`.
    fn show(&self, counts: &Counts) -> Result<(), GrantError> {
        if counts.is_empty() {
            return self
                .sudoers
                .remove_named(USERS_FILE, USERS_MARKER)
                .map(|_| ());
        }
        let text = users_file(counts.keys().map(String::as_str));
        self.sudoers.install_named(USERS_FILE, USERS_MARKER, &text)
    }

    /// Counts `added` in and `removed` out; the file is rewritten only when a line appears or
    /// goes. Called under the shards' lock.
    pub fn adjust(&self, added: &[&str], removed: &[&str]) -> Result<(), GrantError> {
        let (after, file) = self.plan(added, removed)?;
        match file {
            Some(FileChange::Install(text)) => {
                self.sudoers
                    .install_named(USERS_FILE, USERS_MARKER, &text)?;
            }
            Some(FileChange::Remove) => {
                self.sudoers.remove_named(USERS_FILE, USERS_MARKER)?;
            }
            None => {}
        }
        if !added.is_empty() || !removed.is_empty() {
            self.write(&after)?;
        }
        Ok(())
    }

    /// What [`Self::adjust`] would do, without doing it: the counts after, and the change to
    /// the file when a line appears or goes.
    pub fn plan(
        &self,
        added: &[&str],
        removed: &[&str],
    ) -> Result<(Counts, Option<FileChange>), GrantError> {
        let before = self.read()?;
        if added.is_empty() && removed.is_empty() {
            return Ok((before, None));
        }
        let mut after = before.clone();
        for line in added {
            *after.entry((*line).to_string()).or_default() += 1;
        }
        for line in removed {
            if let Some(n) = after.get_mut(*line) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    after.remove(*line);
                }
            }
        }
        let change = if after.keys().eq(before.keys()) {
            None
        } else if after.is_empty() {
            Some(FileChange::Remove)
        } else {
            Some(FileChange::Install(users_file(
                after.keys().map(String::as_str),
            )))
        };
        Ok((after, change))
    }

    /// Sets the counts to `counts` (recounted from the records) and the file to match.
    pub fn recount(&self, counts: &Counts) -> Result<(), GrantError> {
        self.show(counts)?;
        self.write(counts)
    }

    /// Whether the file on disk says what the counts say.
    pub fn status(&self) -> Result<DropInStatus, GrantError> {
        let counts = self.read()?;
        if counts.is_empty() {
            return Ok(DropInStatus::Intact);
        }
        let text = users_file(counts.keys().map(String::as_str));
        self.sudoers.status_named(USERS_FILE, &text)
    }
}
