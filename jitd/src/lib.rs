//! jitd: just-in-time privilege elevation for Linux.
//!
//! The crate is the daemon and, with only the `client` feature, the library that jitctl and
//! pam_jit use to speak to it. Module map:
//!
//! - `duration`, `names`, `position`: parsed, validated values shared by every part
//! - `client`: bus names, proxies, wire types, errors (feature `client`)
//! - `policy`: the policy files and the decisions they make (feature `policy`)
//! - `accounts`: users and groups from the host's name service (feature `policy`)
//! - the daemon (feature `daemon`):
//!   - `daemon`: the request lifecycle and the grant state machine behind one lock
//!   - `bus`: the two bus interfaces and who the caller is
//!   - `store`: SQLite (grants, sessions, the audit chain) with migrations
//!   - `audit`: the typed audit events, the chain, and where records go
//!   - `effects`: what changes the system: sudoers drop-ins, group membership, recall
//!   - `sys`: everything else that asks the OS: ids, capabilities, clock changes
//!   - `config`, `clock`, `polkit`

pub mod duration;
#[cfg(feature = "gate")]
pub mod gate_proto;
pub mod names;
pub mod position;
pub mod signed_request;
#[cfg(any(feature = "wire", feature = "policy"))]
pub mod terms;
pub mod when;
#[cfg(feature = "wire")]
pub mod wire;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "policy")]
pub mod accounts;
#[cfg(feature = "policy")]
pub mod policy;

#[cfg(feature = "daemon")]
pub mod audit;
#[cfg(feature = "daemon")]
pub mod bus;
#[cfg(feature = "daemon")]
pub mod clock;
#[cfg(feature = "daemon")]
pub mod config;
#[cfg(feature = "daemon")]
pub mod daemon;
#[cfg(feature = "daemon")]
pub mod effects;
#[cfg(feature = "daemon")]
pub mod failpoint;
#[cfg(feature = "daemon")]
pub mod gate_socket;
#[cfg(feature = "daemon")]
pub mod grant;
#[cfg(feature = "daemon")]
pub mod history;
#[cfg(feature = "daemon")]
pub mod ledger;
#[cfg(feature = "daemon")]
pub mod notify;
#[cfg(feature = "daemon")]
pub mod polkit;
#[cfg(feature = "report")]
pub mod report;
#[cfg(feature = "daemon")]
pub mod runtime;
#[cfg(feature = "daemon")]
pub mod session;
#[cfg(feature = "daemon")]
pub mod sshsig;
#[cfg(feature = "daemon")]
pub mod store;
#[cfg(feature = "daemon")]
pub mod sys;

#[cfg(test)]
mod testutil;
