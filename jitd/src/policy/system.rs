//! [`Accounts`] answered by this host's name service (passwd, group; NSS modules included).

use std::ffi::{CStr, CString};
use std::path::Path;

use super::Accounts;

/// The host's real user and group database.
pub struct SystemAccounts;

/// Buffer size for the reentrant lookups; large enough for groups with thousands of members.
const BUF: usize = 64 * 1024;

fn passwd(name: &str) -> Option<(u32, u32)> {
    let c_name = CString::new(name).ok()?;
    let mut buf = vec![0u8; BUF];
    // SAFETY: all-zero is a valid `passwd` value; it is read only after getpwnam_r filled it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf.len()` is the buffer's size, and the
    // strings getpwnam_r stores point into `buf`, which outlives their use (none here).
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

fn group_by_name(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    let mut buf = vec![0u8; BUF];
    // SAFETY: all-zero is a valid `group` value; it is read only after getgrnam_r filled it.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as for getpwnam_r: valid pointers, the real buffer length.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
}

fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; BUF];
    // SAFETY: all-zero is a valid `group` value; it is read only after getgrgid_r filled it.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: valid pointers and the real buffer length.
    let rc = unsafe {
        libc::getgrgid_r(
            gid,
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || grp.gr_name.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points to a NUL-terminated string inside `buf`.
    unsafe { CStr::from_ptr(grp.gr_name) }
        .to_str()
        .ok()
        .map(str::to_string)
}

impl Accounts for SystemAccounts {
    fn user_name(&self, uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    }

    fn user_uid(&self, name: &str) -> Option<u32> {
        passwd(name).map(|(uid, _)| uid)
    }

    fn group_gid(&self, name: &str) -> Option<u32> {
        group_by_name(name)
    }

    fn user_groups(&self, name: &str) -> Vec<String> {
        let Some((_, primary)) = passwd(name) else {
            return Vec::new();
        };
        let Ok(c_name) = CString::new(name) else {
            return Vec::new();
        };
        let mut count: libc::c_int = 64;
        loop {
            let mut gids: Vec<libc::gid_t> = vec![0; usize::try_from(count).unwrap_or(64)];
            let mut n = count;
            // SAFETY: `gids` has room for `n` entries; getgrouplist writes at most `n` and sets
            // `n` to the number it needs when that is more (returning -1).
            let rc =
                unsafe { libc::getgrouplist(c_name.as_ptr(), primary, gids.as_mut_ptr(), &mut n) };
            if rc >= 0 {
                gids.truncate(usize::try_from(n).unwrap_or(0));
                return gids.into_iter().filter_map(group_name).collect();
            }
            if n <= count || n > 65_536 {
                return Vec::new();
            }
            count = n;
        }
    }

    fn path_exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
