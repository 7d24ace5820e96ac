//! Who an account is, from this host's name service (passwd, group; NSS modules included).
//! The one place jitd asks it: the daemon resolves callers here, and loading a policy checks
//! its users and groups through [`SystemAccounts`].
//!
//! nix does the reentrant calls and their buffer growth. It turns names into `String` lossily,
//! so a name that was not UTF-8 comes back with U+FFFD in it; such a name is treated as absent,
//! because no name jitd acts on (sudoers, gpasswd, policy) could be written that way.

#![forbid(unsafe_code)]

use std::ffi::CString;
use std::path::Path;

use nix::unistd::{Gid, Group, Uid, User, getgrouplist};

use crate::policy::Accounts;

/// A local account, looked up by uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

/// Whether `name` came back from the name service intact (see the module note on U+FFFD).
fn intact(name: &str) -> bool {
    !name.contains(char::REPLACEMENT_CHARACTER)
}

/// The account of `uid` from the name service, or `None` when there is none (or its name is
/// not UTF-8, which no name we act on could be).
pub fn account_by_uid(uid: u32) -> Option<Account> {
    let user = User::from_uid(Uid::from_raw(uid)).ok().flatten()?;
    intact(&user.name).then(|| Account {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        name: user.name,
    })
}

/// The name of group `gid`, when it has one that is UTF-8.
fn group_name(gid: Gid) -> Option<String> {
    let group = Group::from_gid(gid).ok().flatten()?;
    intact(&group.name).then_some(group.name)
}

/// The host's real user and group database.
pub struct SystemAccounts;

impl Accounts for SystemAccounts {
    fn user_name(&self, uid: u32) -> Option<String> {
        account_by_uid(uid).map(|a| a.name)
    }

    fn user_uid(&self, name: &str) -> Option<u32> {
        // A name with NUL is no account: nix answers `None` without asking libc.
        User::from_name(name).ok().flatten().map(|u| u.uid.as_raw())
    }

    fn group_gid(&self, name: &str) -> Option<u32> {
        Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    }

    fn user_groups(&self, name: &str) -> Vec<String> {
        // getgrouplist adds the primary group it is given to the supplementary ones.
        let Some(user) = User::from_name(name).ok().flatten() else {
            return Vec::new();
        };
        let Ok(c_name) = CString::new(name) else {
            return Vec::new();
        };
        getgrouplist(&c_name, user.gid)
            .map(|gids| gids.into_iter().filter_map(group_name).collect())
            .unwrap_or_default()
    }

    fn path_exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_by_uid() {
        let root = account_by_uid(0).expect("uid 0 exists");
        assert_eq!((root.name.as_str(), root.gid), ("root", 0));
    }

    #[test]
    fn an_unused_uid_has_no_account() {
        assert_eq!(account_by_uid(3_999_999_999), None);
    }

    #[test]
    fn root_is_found_with_its_groups() {
        assert_eq!(SystemAccounts.user_uid("root"), Some(0));
        assert_eq!(SystemAccounts.group_gid("root"), Some(0));
        assert!(
            SystemAccounts
                .user_groups("root")
                .contains(&"root".to_string())
        );
        assert_eq!(SystemAccounts.user_uid("no-such-user-jitd"), None);
        assert!(SystemAccounts.user_groups("no-such-user-jitd").is_empty());
        assert_eq!(
            SystemAccounts.user_uid("a\0b"),
            None,
            "NUL never reaches libc"
        );
    }

    #[test]
    fn a_name_that_was_not_utf8_is_absent() {
        assert!(intact("alice"));
        assert!(!intact("al\u{fffd}ce"));
    }
}
