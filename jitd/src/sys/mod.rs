//! Small facts about the host the daemon needs: the host name, random ids, and telling
//! systemd we are ready. Who a uid is: [`crate::accounts`].

pub mod clockwatch;
pub mod heap;

/// Runs `work` on a thread of its own and waits for it without blocking the caller's
/// executor (the bus thread must keep dispatching). `None` if the thread could not start or
/// panicked.
#[allow(clippy::disallowed_methods)] // the edge where threads start
pub async fn offload<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("jitd-offload".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .ok()?;
    rx.await.ok()
}

/// Sets the calling thread's nice value (Linux keeps one per thread; threads it starts inherit
/// it). Lowering it needs CAP_SYS_NICE or an `RLIMIT_NICE` that allows it (`LimitNICE=` in the
/// unit).
pub fn set_thread_nice(nice: i32) -> Result<(), String> {
    // SAFETY: setpriority(2) with PRIO_PROCESS and who = 0 changes only the calling thread's
    // nice value; it reads and writes no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

/// Takes a write lock on the whole of `file` without waiting: an open-file-description lock,
/// which conflicts with the `fcntl` and `lockf` locks other programs take (lckpwdf, sudo's
/// log) and is not dropped when another descriptor of the same file closes.
pub fn try_lock_whole_file(file: &impl std::os::fd::AsFd) -> nix::Result<()> {
    let whole_file = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_OFD_SETLK(&whole_file)).map(|_| ())
}

/// The kernel's node name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// 64 bits from the kernel's random source, for new ids.
pub fn random_bits() -> std::io::Result<u64> {
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
    Ok(u64::from_le_bytes(bytes))
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
    use crate::names::GrantId;

    #[test]
    fn grant_ids_are_random_and_valid() {
        let a = GrantId::from_random(random_bits().unwrap());
        let b = GrantId::from_random(random_bits().unwrap());
        assert_ne!(a, b);
        assert_eq!(GrantId::parse(a.as_str()), Ok(a));
    }
}
