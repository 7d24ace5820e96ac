//! Small facts about the host the daemon needs: who a uid is, the host name, random ids,
//! and telling systemd we are ready.

use std::ffi::CStr;

pub mod clockwatch;

use crate::names::GrantId;

/// A local account, looked up by uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

/// The account of `uid` from the name service, or `None` when there is none (or it cannot be
/// read as UTF-8, which no name we act on could be).
pub fn account_by_uid(uid: u32) -> Option<Account> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: all-zero bytes are a valid `passwd` (null pointers, zero ids); it is only read
    // after getpwuid_r has filled it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: `pwd`, `buf` and `result` are valid for writes for the whole call; `buf.len()` is
    // the buffer's real size. getpwuid_r stores pointers into `buf` only, which outlives
    // every read below.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) }
        .to_str()
        .ok()?
        .to_string();
    Some(Account {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        name,
    })
}

/// The kernel's node name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A fresh grant id from the kernel's random source.
pub fn new_grant_id() -> std::io::Result<GrantId> {
    let mut bytes = [0u8; 8];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `bytes`, valid for writes.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += n as usize;
    }
    Ok(GrantId::from_random(u64::from_le_bytes(bytes)))
}

/// Sends `state` (e.g. `READY=1`) to systemd when run as a `Type=notify` service; does nothing
/// otherwise. Only an absolute socket path or an abstract name is accepted.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let sent = match bytes.first() {
        Some(b'/') => sock.send_to(state.as_bytes(), &path).map(|_| ()),
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..])
                .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
                .map(|_| ())
        }
        _ => return,
    };
    let _ = sent;
}

/// Capabilities the daemon and the tools it runs (visudo, gpasswd, sudo --version) need:
/// owning and replacing root files in /etc and the state dir, and signalling processes for
/// recall. Everything else (CAP_SYS_ADMIN, CAP_NET_*, CAP_SYS_PTRACE, ...) is dropped from the
/// bounding set too, so no child can regain it, setuid binaries included.
const KEPT_CAPABILITIES: &[caps::Capability] = &[
    caps::Capability::CAP_CHOWN,
    caps::Capability::CAP_DAC_OVERRIDE,
    caps::Capability::CAP_DAC_READ_SEARCH,
    caps::Capability::CAP_FOWNER,
    caps::Capability::CAP_FSETID,
    caps::Capability::CAP_KILL,
    caps::Capability::CAP_SETUID,
    caps::Capability::CAP_SETGID,
    caps::Capability::CAP_AUDIT_WRITE,
];

/// Drops every capability not in [`KEPT_CAPABILITIES`]. Does nothing when not root.
pub fn drop_capabilities() -> Result<(), String> {
    use caps::CapSet;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let keep: caps::CapsHashSet = KEPT_CAPABILITIES.iter().copied().collect();
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| format!("bounding {cap}: {e}"))?;
        }
    }
    caps::set(None, CapSet::Inheritable, &caps::CapsHashSet::new()).map_err(|e| e.to_string())?;
    let have = caps::read(None, CapSet::Permitted).map_err(|e| e.to_string())?;
    let keep: caps::CapsHashSet = keep.intersection(&have).copied().collect();
    caps::set(None, CapSet::Effective, &keep).map_err(|e| e.to_string())?;
    caps::set(None, CapSet::Permitted, &keep).map_err(|e| e.to_string())?;
    Ok(())
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
    fn grant_ids_are_random_and_valid() {
        let a = new_grant_id().unwrap();
        let b = new_grant_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(GrantId::parse(a.as_str()), Ok(a));
    }
}
