//! Group membership through `gpasswd`, which takes shadow-utils' locks on /etc/group and
//! /etc/gshadow and writes both; the files are read back after every change, and the change
//! only counts when the read-back agrees. Name-service caches are flushed where present so the
//! next login sees the change.
//!
//! Many memberships ending together ([`Groups::remove_members`]) are taken out in one edit of
//! both files under the same locks ([`super::group_file`]), not by one gpasswd each. A single
//! removal stays with gpasswd: for one membership the edit costs the same either way, and
//! gpasswd also logs the change to syslog itself, as an administrator reading the host's logs
//! expects.
//!
//! Only explicit members (the fourth field) are touched; a user whose primary group is the
//! target is a member by other means, and jitd neither grants nor removes that.

#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::group_file::{GroupFiles, Outcome, again};
use super::{GrantError, run_tool};
use crate::names::{GroupName, UserName};

pub struct Groups {
    gpasswd: PathBuf,
    group_file: PathBuf,
    gshadow_file: PathBuf,
    files: GroupFiles,
}

/// Explicit members of `group` in the text of a group(5) or gshadow(5) file; `None` when the
/// group has no line. Both files keep the member list in the fourth field.
pub fn members(text: &str, group: &str) -> Option<Vec<String>> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == group).then(|| {
            fields
                .nth(2)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect()
        })
    })
}

impl Groups {
    pub fn new(gpasswd: PathBuf) -> Self {
        Self::with_files(gpasswd, GroupFiles::system())
    }

    /// Over other copies of the files (tests).
    pub fn with_files(gpasswd: PathBuf, files: GroupFiles) -> Self {
        Self {
            gpasswd,
            group_file: files.group.clone(),
            gshadow_file: files.gshadow.clone(),
            files,
        }
    }

    fn read(path: &Path) -> Result<String, GrantError> {
        std::fs::read_to_string(path).map_err(|e| GrantError::io(path, e))
    }

    /// Whether `user` is an explicit member of `group` in /etc/group.
    pub fn is_member(&self, user: &UserName, group: &GroupName) -> Result<bool, GrantError> {
        let text = Self::read(&self.group_file)?;
        let Some(list) = members(&text, group.as_str()) else {
            return Err(GrantError::Verify {
                what: format!("group {group} does not exist"),
            });
        };
        Ok(list.iter().any(|m| m == user.as_str()))
    }

    /// Whether `user` is listed in /etc/gshadow for `group` (absent file or line = no).
    fn in_gshadow(&self, user: &UserName, group: &GroupName) -> bool {
        std::fs::read_to_string(&self.gshadow_file)
            .ok()
            .and_then(|t| members(&t, group.as_str()))
            .is_some_and(|l| l.iter().any(|m| m == user.as_str()))
    }

    fn gpasswd(&self, flag: &str, user: &UserName, group: &GroupName) -> Result<(), GrantError> {
        let args = [
            OsStr::new(flag),
            OsStr::new(user.as_str()),
            OsStr::new(group.as_str()),
        ];
        let out = run_tool(&self.gpasswd, &args)?;
        if !out.status.success() {
            return Err(GrantError::Gpasswd {
                args: format!("{flag} {user} {group}"),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Adds `user` to `group`. Idempotent.
    pub fn add(&self, user: &UserName, group: &GroupName) -> Result<(), GrantError> {
        if self.is_member(user, group)? {
            return Ok(());
        }
        self.gpasswd("-a", user, group)?;
        flush_caches();
        if !self.is_member(user, group)? {
            return Err(GrantError::Verify {
                what: format!("{user} is not in {group} after gpasswd -a"),
            });
        }
        Ok(())
    }

    /// Removes `user` from `group` in /etc/group and /etc/gshadow. Idempotent.
    pub fn remove(&self, user: &UserName, group: &GroupName) -> Result<(), GrantError> {
        let changed = self.remove_one(user, group)?;
        if changed {
            flush_caches();
        }
        Ok(())
    }

    /// [`Self::remove`] without the cache flush; whether gpasswd changed anything.
    fn remove_one(&self, user: &UserName, group: &GroupName) -> Result<bool, GrantError> {
        let in_group = match self.is_member(user, group) {
            Ok(b) => b,
            // The group itself is gone: so is the membership.
            Err(GrantError::Verify { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        if !in_group && !self.in_gshadow(user, group) {
            return Ok(false);
        }
        self.gpasswd("-d", user, group)?;
        if self.is_member(user, group)? || self.in_gshadow(user, group) {
            return Err(GrantError::Verify {
                what: format!("{user} is still in {group} after gpasswd -d"),
            });
        }
        Ok(true)
    }

    /// Removes every `(user, group)` membership, one result per pair in the same order; each
    /// is idempotent like [`Self::remove`]. One locked edit of /etc/group and /etc/gshadow
    /// takes them all out; where the files are not for a direct edit (NIS lines, no gshadow,
    /// SELinux, symlinks: see [`super::group_file`]) it is gpasswd per membership. Caches are
    /// flushed once, after the batch.
    pub fn remove_members(&self, members: &[(UserName, GroupName)]) -> Vec<Result<(), GrantError>> {
        self.remove_members_observed(members, &mut || {})
    }

    /// [`Self::remove_members`], running `while_locked` while the edit holds shadow-utils'
    /// locks (tests show with it that gpasswd waits; never called on the gpasswd fallback).
    pub fn remove_members_observed(
        &self,
        members: &[(UserName, GroupName)],
        while_locked: &mut dyn FnMut(),
    ) -> Vec<Result<(), GrantError>> {
        let (results, changed) = match self.files.remove_members_observed(members, while_locked) {
            Ok(Outcome::Edited { results, changed }) => (results, changed),
            // The reason is the same on every call on this host; tests read it from GroupFiles.
            Ok(Outcome::Fallback(_why)) => {
                let mut changed = false;
                let results = members
                    .iter()
                    .map(|(u, g)| {
                        self.remove_one(u, g).map(|c| {
                            changed |= c;
                        })
                    })
                    .collect();
                (results, changed)
            }
            // A failed edit may have left /etc/group changed (its error says): flush anyway.
            Err(e) => (members.iter().map(|_| Err(again(&e))).collect(), true),
        };
        if changed {
            flush_caches();
        }
        results
    }
}

/// Tells nscd and sssd to forget cached group data, when they are installed.
fn flush_caches() {
    for (tool, args) in [
        ("/usr/sbin/nscd", ["-i", "group"]),
        ("/usr/sbin/sss_cache", ["-G", ""]),
    ] {
        if Path::new(tool).exists() {
            let args: Vec<&OsStr> = args
                .iter()
                .filter(|a| !a.is_empty())
                .map(OsStr::new)
                .collect();
            let _ = run_tool(Path::new(tool), &args);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str =
        "root:x:0:\ndocker:x:999:alice,bob\nempty:x:1000:\nweird:x:1001: carol , ,dave\n";

    #[test]
    fn explicit_members_are_read_exactly() {
        assert_eq!(
            members(GROUP, "docker"),
            Some(vec!["alice".into(), "bob".into()])
        );
        assert_eq!(members(GROUP, "empty"), Some(vec![]));
        assert_eq!(
            members(GROUP, "weird"),
            Some(vec!["carol".into(), "dave".into()])
        );
        assert_eq!(members(GROUP, "nosuch"), None);
        assert_eq!(members(GROUP, "dock"), None, "no prefix matches");
        assert_eq!(
            members("docker:x:999", "docker"),
            Some(vec![]),
            "short line"
        );
    }

    #[test]
    fn gshadow_lines_have_members_in_the_same_field() {
        let gshadow = "docker:!::alice\nadm:*:root:syslog\n";
        assert_eq!(members(gshadow, "docker"), Some(vec!["alice".into()]));
        assert_eq!(members(gshadow, "adm"), Some(vec!["syslog".into()]));
    }
}
