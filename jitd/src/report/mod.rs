//! Reports and policy suggestions from the audit trail, with no daemon: a state database read
//! read-only, or JSON-lines exports of any number of hosts, plus the policy files. Runs on the
//! host and on an auditor's laptop over a fleet's exports.
//!
//! - `input`: the sources (a database, exports) behind one trait, streamed
//! - `model`: what the records say about each grant, request and exception
//! - `policy_view`: the policy's rules and privileges, read without the loader
//! - `suggest`: suggestions with evidence and a ready-to-paste change
//! - `generate`: a seeded generator of realistic history (tests, benchmark, examples)

pub mod apply;
pub mod generate;
pub mod html;
pub mod input;
pub mod model;
pub mod period;
pub mod policy_view;
pub mod render;
pub mod suggest;

use input::{AuditSource, HostSummary};
use model::Facts;

/// Reads a whole source into facts.
pub fn gather(source: &dyn AuditSource) -> Result<(Facts, Vec<HostSummary>), String> {
    let mut facts = Facts::default();
    let hosts = source.read(&mut |e| facts.add(e))?;
    Ok((facts, hosts))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_records;
