//! An elevated session pam_jit reported: which grant it runs under, and what identifies its
//! process for good — the boot and the process's start time, since a pid alone is reused.

#![forbid(unsafe_code)]

use crate::names::{GrantId, SessionId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub grant: GrantId,
    pub uid: u32,
    pub pid: u32,
    /// The PAM service (`sudo`, `su`, ...), terminal and remote host pam_jit reported.
    pub service: String,
    pub tty: String,
    pub rhost: String,
    pub boot_id: String,
    /// `/proc/<pid>/stat` start time; 0 when it could not be read (never matches).
    pub start_ticks: u64,
    pub opened_ms: i64,
}
