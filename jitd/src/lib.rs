//! jitd: just-in-time privilege elevation for Linux.
//!
//! The crate is the daemon and, with only the `client` feature, the library that jitctl and
//! pam_jit use to speak to it. Module map:
//!
//! - `client`: bus names, proxies, wire types, errors (feature `client`)
//! - `duration`, `names`: parsed, validated values shared by every part
//! - `policy`: the policy files and the decisions they make (feature `policy`)
//! - `grant`: putting a grant on the system and taking it off: sudoers drop-ins, group membership
//! - the daemon itself: `config`, `store`, `audit`, `clock`, `engine`, `bus`, `polkit`
//!   (feature `daemon`)

pub mod duration;
pub mod names;
pub mod position;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "policy")]
pub mod policy;

#[cfg(feature = "daemon")]
pub mod grant;

#[cfg(feature = "daemon")]
pub mod audit;
#[cfg(feature = "daemon")]
pub mod bus;
#[cfg(feature = "daemon")]
pub mod clock;
#[cfg(feature = "daemon")]
pub mod clockwatch;
#[cfg(feature = "daemon")]
pub mod config;
#[cfg(feature = "daemon")]
pub mod enforce;
#[cfg(feature = "daemon")]
pub mod engine;
#[cfg(feature = "daemon")]
pub mod polkit;
#[cfg(feature = "daemon")]
pub mod recall;
#[cfg(feature = "daemon")]
pub mod store;
#[cfg(feature = "daemon")]
pub mod sys;
