//! The daemon's heap (glibc malloc): how many arenas it keeps, and giving its free pages
//! back. Without glibc (another libc) both do nothing.

/// Keeps the daemon's heap in few arenas: glibc gives each thread that allocates an arena of
/// its own (up to eight per core), and memory freed in one serves only the threads on it, so a
/// daemon whose threads come and go (the gate's, the ledger's, offloaded work) would hold the
/// high-water mark of each. Called once, before any thread starts.
pub fn limit_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt(3) only changes a malloc tunable; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Gives the heap's free pages back to the system: after loading thousands of grants at
/// start-up or ending thousands at once, the memory their working copies used stays with the
/// process otherwise (glibc returns only the top of the heap by itself).
pub fn give_back_free() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim(3) releases free memory of malloc's own; it touches no live
    // allocation and may be called from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
