//! Crash points for the test suites, compiled into debug builds only (packages are release
//! builds): `JITD_FAILPOINT=<name>` makes the process exit abruptly there, as a `kill -9`
//! would, so recovery can be tested at every step of apply and remove.

/// Exits at once when `JITD_FAILPOINT` names this point (debug builds only).
#[cfg(debug_assertions)]
pub fn hit(name: &str) {
    if std::env::var("JITD_FAILPOINT").is_ok_and(|v| v == name) {
        // SAFETY: _exit ends the process at once without running destructors, which is exactly
        // the crash being simulated; it has no memory-safety preconditions.
        unsafe { libc::_exit(137) };
    }
}

/// Release builds carry no crash points.
#[cfg(not(debug_assertions))]
pub fn hit(_name: &str) {}
