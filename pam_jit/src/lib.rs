//! pam_jit: the PAM module that makes a live jitd grant the only door to sudo and su.
//!
//! The exported `pam_sm_*` functions are a thin FFI layer ([`ffi`]): they turn the PAM handle
//! into a [`core::Pam`] implementation, parse the module arguments ([`args`]), open a
//! connection to jitd's root-only gate socket ([`gate`]) and call the pure-Rust core
//! ([`core`]), which holds every decision and is unit-tested with scripted fakes.
//!
//! Invariants the host process relies on:
//! - no panic crosses the FFI boundary: every entry point runs inside `catch_unwind` and turns
//!   a panic into `PAM_SERVICE_ERR`;
//! - no thread is started: one blocking exchange on the calling thread, bounded by the
//!   timeout, and the socket is closed before the entry point returns;
//! - the environment is never read: the socket is `/run/jitd/gate`, or the `socket=` argument
//!   of the root-owned PAM file;
//! - nothing is printed: messages go through the PAM conversation, logs to syslog
//!   (`LOG_AUTHPRIV`, via `pam_syslog`).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod args;
pub mod core;
mod ffi;
pub mod gate;

pub use ffi::{
    pam_sm_acct_mgmt, pam_sm_authenticate, pam_sm_close_session, pam_sm_open_session,
    pam_sm_setcred,
};
