//! Checks that ask something running: jitd on the bus, sudo's version, the kernel's clock and
//! file system, the audit trail through jitd.

use std::path::Path;

use jitd::client::{self, ManagerProxy};

use super::{Finding, Setup};

/// The bus connection and the daemon's proxy, when jitd answers as root.
async fn manager() -> Result<zbus::Connection, String> {
    let address = std::env::var("JITD_BUS_ADDRESS").ok();
    let conn = client::connect(address.as_deref())
        .await
        .map_err(|e| format!("cannot connect to the system bus: {e}"))?;
    client::verify_owner(&conn).await?;
    Ok(conn)
}

pub fn daemon() -> Finding {
    match zbus::block_on(manager()) {
        Ok(_) => Finding::ok("daemon", "jitd runs as root and owns org.jitd.Jitd1"),
        Err(why) => Finding::fail(
            "daemon",
            why,
            "systemctl enable --now jitd; then journalctl -u jitd if it does not stay up",
        ),
    }
}

pub fn audit_chain() -> Finding {
    const CHECK: &str = "audit-chain";
    let check = zbus::block_on(async {
        let conn = manager().await?;
        let jitd = ManagerProxy::new(&conn).await.map_err(|e| e.to_string())?;
        jitd.verify_audit().await.map_err(|e| e.message())
    });
    match check {
        Err(why) => Finding::skip(CHECK, format!("not verified: {why}")),
        Ok(c) if c.intact => Finding::ok(CHECK, c.summary),
        Ok(c) => Finding::fail(
            CHECK,
            c.summary,
            "keep a copy of the database for investigation; `jitctl audit verify` names the \
             first broken record",
        ),
    }
}

pub fn sudo(setup: &Setup) -> Finding {
    const CHECK: &str = "sudo";
    let path = &setup.sudo_path;
    // Doctor asks the installed sudo what it is, as jitd does before writing a drop-in.
    #[allow(clippy::disallowed_methods)]
    let out = std::process::Command::new(path).arg("--version").output();
    let text = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => {
            return Finding::fail(
                CHECK,
                format!("cannot run {} --version: {e}", path.display()),
                "install sudo, or set sudo_path in jitd.toml",
            );
        }
    };
    let first = text.lines().next().unwrap_or("").trim().to_string();
    if let Some(v) = first.strip_prefix("sudo-rs ") {
        return Finding::warn(
            CHECK,
            format!(
                "sudo-rs {v} does not honour NOTAFTER: sudo grants end only when jitd or its \
                 timer removes them"
            ),
            "keep jitd-sweep.timer enabled, or use classic sudo 1.8.20 or later",
        );
    }
    let Some(version) = first.strip_prefix("Sudo version ") else {
        return Finding::fail(
            CHECK,
            format!(
                "{} --version says {first:?}: jitd does not know this sudo",
                path.display()
            ),
            "install sudo (classic sudo 1.8.20 or later)",
        );
    };
    let numbers: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .take(3)
        .collect();
    if numbers.as_slice() >= [1, 8, 20].as_slice() {
        Finding::ok(
            CHECK,
            format!("sudo {version} honours NOTAFTER: sudo ends grants on time by itself too"),
        )
    } else {
        Finding::warn(
            CHECK,
            format!("sudo {version} is older than 1.8.20 and ignores NOTAFTER"),
            "upgrade sudo",
        )
    }
}

/// Whether the kernel says the clock is kept in step (NTP): grants end by the clock.
pub fn clock() -> Finding {
    const CHECK: &str = "clock";
    // SAFETY: all-zero is a valid `timex`; with modes 0 ntp_adjtime only reads the kernel's
    // state into it, through a pointer valid for the call.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    let state = unsafe { libc::ntp_adjtime(&mut tx) };
    if state == -1 {
        return Finding::skip(
            CHECK,
            "the kernel did not say whether the clock is synchronised",
        );
    }
    if state == libc::TIME_ERROR || tx.status & libc::STA_UNSYNC != 0 {
        return Finding::warn(
            CHECK,
            "the clock is not synchronised: grants end by this clock, and sudo's NOTAFTER too",
            "systemctl enable --now systemd-timesyncd (or chrony)",
        );
    }
    Finding::ok(CHECK, "the clock is synchronised")
}

/// Free and total bytes of the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero is a valid `statvfs`; statvfs fills it from a NUL-terminated path, both
    // pointers valid for the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let block = st.f_frsize;
    Some((st.f_bavail * block, st.f_blocks * block))
}
