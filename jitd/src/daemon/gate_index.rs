//! What pam_jit's checks read: the live grants by uid, in memory. Written by the core under its
//! lock, read without it, so a `CheckAccess` never waits for a grant being written.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;

use crate::client::GateDecision;
use crate::clock::{Deadline, Now};
use crate::grant::GrantRecord;
use crate::names::GrantId;
use crate::policy::{Accounts, Policy};

/// A live grant as the gate sees it: enough to answer a PAM check from memory.
#[derive(Debug, Clone)]
struct GateEntry {
    id: GrantId,
    /// The account the grant was made for, by name: with the uid, who it belongs to.
    user: String,
    privilege: String,
    services: Vec<String>,
    deadline: Deadline,
}

pub struct GateIndex {
    by_uid: HashMap<u32, Vec<GateEntry>>,
    policy: Arc<Policy>,
    hostname: String,
    accounts: Arc<dyn Accounts + Send + Sync>,
}

impl GateIndex {
    pub fn new(
        policy: Arc<Policy>,
        hostname: String,
        accounts: Arc<dyn Accounts + Send + Sync>,
    ) -> Self {
        Self {
            by_uid: HashMap::new(),
            policy,
            hostname,
            accounts,
        }
    }

    /// Whether `uid` holds a live grant covering PAM service `service` at `now`.
    pub fn check(&self, uid: u32, service: &str, now: &Now) -> GateDecision {
        let entries = self.by_uid.get(&uid);
        // A grant opens the gate only for the account it was made for: a uid that now names
        // another account (deleted and reused, renamed) is refused at once, before the
        // integrity check ends the grant. Looked up only when the uid holds a grant.
        let account = entries.and_then(|_| self.accounts.user_name(uid));
        let live = entries.into_iter().flatten().find(|e| {
            account.as_deref() == Some(e.user.as_str())
                && !e.deadline.is_due(now)
                && e.services.iter().any(|s| s == service)
        });
        if let Some(e) = live {
            return GateDecision {
                allowed: true,
                grant_id: e.id.to_string(),
                privilege: e.privilege.clone(),
                expires_ms: e.deadline.wall_ms,
                message: String::new(),
            };
        }
        GateDecision {
            allowed: false,
            grant_id: String::new(),
            privilege: String::new(),
            expires_ms: 0,
            message: super::hints::refusal(
                &self.policy,
                self.accounts.as_ref(),
                &self.hostname,
                uid,
                service,
            ),
        }
    }

    /// Puts a live grant in the index. A grant whose privilege left the policy opens nothing:
    /// its commands are no longer routed to a service of its own, and every other door is
    /// another privilege's.
    pub fn insert(&mut self, g: &GrantRecord) {
        let services = self
            .policy
            .privilege(&g.privilege)
            .map(|p| p.pam_services.clone())
            .unwrap_or_default();
        self.by_uid.entry(g.uid).or_default().push(GateEntry {
            id: g.id.clone(),
            user: g.user.clone(),
            privilege: g.privilege.clone(),
            services,
            deadline: g.deadline(),
        });
    }

    /// Forgets a grant: from now on no check is answered from it.
    pub fn remove(&mut self, id: &GrantId) {
        for entries in self.by_uid.values_mut() {
            entries.retain(|e| &e.id != id);
        }
        self.by_uid.retain(|_, v| !v.is_empty());
    }

    /// The policy the refusal hints are computed from.
    pub fn set_policy(&mut self, policy: Arc<Policy>) {
        self.policy = policy;
    }
}
