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

/// The uid of the account named `name`, or `None` when there is none.
pub fn uid_by_name(name: &str) -> Option<u32> {
    User::from_name(name)
        .ok()
        .flatten()
        .filter(|u| intact(&u.name))
        .map(|u| u.uid.as_raw())
}

/// Whether the account a grant was made for — uid `uid`, named `name` at the time — is still
/// that account: `None` when the uid still names it and the name still resolves to the uid,
/// otherwise what changed, in words. A rename (`usermod -l`) and a deletion (`userdel`, perhaps
/// followed by a new account with the uid or the name) both count: the grant was given to a
/// person, and nothing here can tell that the account now on the uid or the name is the same
/// person. A name service that cannot answer reads as "no account": the grant then ends, which
/// is the safe way to be wrong.
pub fn binding_change(accounts: &dyn Accounts, uid: u32, name: &str) -> Option<String> {
    let now_named = accounts.user_name(uid);
    let name_is = accounts.user_uid(name);
    if now_named.as_deref() == Some(name) && name_is == Some(uid) {
        return None;
    }
    let of_uid = match &now_named {
        Some(other) if other != name => format!("uid {uid} is now the account {other:?}"),
        Some(_) => format!("uid {uid} is still {name:?}"),
        None => format!("uid {uid} has no account"),
    };
    let of_name = match name_is {
        Some(other) if other != uid => format!("the name {name:?} is now uid {other}"),
        Some(_) => format!("the name {name:?} is still uid {uid}"),
        None => format!("no account is named {name:?}"),
    };
    Some(format!("{of_uid}; {of_name}"))
}

/// Accounts looked up once per pass: the start-up reconcile and the integrity check ask about
/// the account of every live grant, and each lookup in the files database reads /etc/passwd
/// from its start (thousands of grants, a thousand users: about a second). Made for one pass
/// and dropped after it, so a change to the database is seen by the next pass.
pub struct AccountsOnce<'a> {
    inner: &'a dyn Accounts,
    names: std::cell::RefCell<std::collections::HashMap<u32, Option<String>>>,
    uids: std::cell::RefCell<std::collections::HashMap<String, Option<u32>>>,
}

impl<'a> AccountsOnce<'a> {
    pub fn new(inner: &'a dyn Accounts) -> Self {
        Self {
            inner,
            names: Default::default(),
            uids: Default::default(),
        }
    }

    /// [`binding_change`] through this pass's lookups.
    pub fn binding_change(&self, uid: u32, name: &str) -> Option<String> {
        binding_change(self, uid, name)
    }
}

impl Accounts for AccountsOnce<'_> {
    fn user_uid(&self, name: &str) -> Option<u32> {
        if let Some(uid) = self.uids.borrow().get(name) {
            return *uid;
        }
        let uid = self.inner.user_uid(name);
        self.uids.borrow_mut().insert(name.to_string(), uid);
        uid
    }
    fn user_name(&self, uid: u32) -> Option<String> {
        if let Some(name) = self.names.borrow().get(&uid) {
            return name.clone();
        }
        let name = self.inner.user_name(uid);
        self.names.borrow_mut().insert(uid, name.clone());
        name
    }
    fn group_gid(&self, name: &str) -> Option<u32> {
        self.inner.group_gid(name)
    }
    fn user_groups(&self, name: &str) -> Vec<String> {
        self.inner.user_groups(name)
    }
    fn path_exists(&self, path: &std::path::Path) -> bool {
        self.inner.path_exists(path)
    }
    fn group_members(&self, name: &str) -> Option<Vec<String>> {
        self.inner.group_members(name)
    }
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

    fn group_members(&self, name: &str) -> Option<Vec<String>> {
        Group::from_name(name).ok().flatten().map(|g| g.mem)
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

    /// Two accounts at most: enough to rename, delete and reuse.
    struct Host(Vec<(u32, &'static str)>);

    impl Accounts for Host {
        fn user_name(&self, uid: u32) -> Option<String> {
            self.0.iter().find(|a| a.0 == uid).map(|a| a.1.to_string())
        }
        fn user_uid(&self, name: &str) -> Option<u32> {
            self.0.iter().find(|a| a.1 == name).map(|a| a.0)
        }
        fn group_gid(&self, _: &str) -> Option<u32> {
            None
        }
        fn user_groups(&self, _: &str) -> Vec<String> {
            Vec::new()
        }
        fn path_exists(&self, _: &Path) -> bool {
            false
        }
    }

    #[test]
    fn a_grant_is_bound_to_the_uid_and_the_name_together() {
        // (the accounts on the host, what changed for alice's grant on uid 1001)
        type Row = (&'static [(u32, &'static str)], Option<&'static str>);
        let rows: [Row; 5] = [
            (&[(1001, "alice")], None),
            (
                &[(1001, "alice2")],
                Some("uid 1001 is now the account \"alice2\"; no account is named \"alice\""),
            ),
            (
                &[],
                Some("uid 1001 has no account; no account is named \"alice\""),
            ),
            (
                &[(1001, "carol")],
                Some("uid 1001 is now the account \"carol\"; no account is named \"alice\""),
            ),
            (
                &[(1002, "alice")],
                Some("uid 1001 has no account; the name \"alice\" is now uid 1002"),
            ),
        ];
        for (i, (host, want)) in rows.into_iter().enumerate() {
            assert_eq!(
                binding_change(&Host(host.to_vec()), 1001, "alice").as_deref(),
                want,
                "row {i}"
            );
        }
    }

    #[test]
    fn a_name_that_was_not_utf8_is_absent() {
        assert!(intact("alice"));
        assert!(!intact("al\u{fffd}ce"));
    }
}
