//! What pam_jit's checks read: the live grants by uid, in memory. Written by the core under its
//! lock, read without it, so a `CheckAccess` never waits for a grant being written.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::GateDecision;
use crate::clock::{Deadline, Now};
use crate::grant::GrantRecord;
use crate::names::GrantId;
use crate::policy::{Accounts, Policy};

/// A live grant as the gate sees it: enough to answer a PAM check from memory.
#[derive(Debug, Clone)]
struct GateEntry {
    id: GrantId,
    /// The account the grant was made for, by name: with the uid, who it belongs to. Shared
    /// by the uid's grants made for the same name.
    user: Arc<str>,
    /// Shared by all grants of the privilege (10,000 grants hold a handful of privileges).
    privilege: Arc<str>,
    services: Arc<[String]>,
    deadline: Deadline,
}

pub struct GateIndex {
    by_uid: HashMap<u32, Vec<GateEntry>>,
    /// Each privilege's name and PAM services as its grants share them, from the policy the
    /// first of them was indexed under.
    shared: HashMap<String, (Arc<str>, Arc<[String]>)>,
    policy: Arc<Policy>,
    hostname: String,
    accounts: Arc<dyn Accounts + Send + Sync>,
    names: Names,
}

/// The file whose change means an account may have been deleted, renamed or its uid reused.
const PASSWD: &str = "/etc/passwd";
/// How long a name looked up stands while /etc/passwd stays the same file.
const NAME_TTL: Duration = Duration::from_secs(5);
/// Most names kept; beyond it the cache starts over.
const MAX_NAMES: usize = 100_000;

/// The account name of each uid as the gate last looked it up. A check asks NSS (which reads
/// /etc/passwd from its start, tens of microseconds per check) only when /etc/passwd is no
/// longer the file it was, or the name is older than [`NAME_TTL`]: useradd, userdel and usermod
/// replace the file, so a uid deleted and reused or renamed there is seen by the next check;
/// other NSS sources (LDAP through sssd, which itself caches for far longer) within the TTL.
#[derive(Default)]
struct Names {
    seen: Mutex<HashMap<u32, Seen>>,
}

struct Seen {
    name: Option<String>,
    passwd: Option<(u64, u64, i64, i64, u64)>,
    at: Instant,
}

fn passwd_stamp() -> Option<(u64, u64, i64, i64, u64)> {
    let m = std::fs::metadata(PASSWD).ok()?;
    // The change time: unlike the modification time, nothing in user space can set it back.
    Some((m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), m.size()))
}

impl Names {
    fn name(&self, uid: u32, accounts: &dyn Accounts) -> Option<String> {
        let passwd = passwd_stamp();
        let lock = || self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = lock().get(&uid)
            && passwd.is_some()
            && s.passwd == passwd
            && s.at.elapsed() < NAME_TTL
        {
            return s.name.clone();
        }
        // Looked up without the lock: a slow NSS source holds up only this check.
        let at = Instant::now();
        let name = accounts.user_name(uid);
        let mut seen = lock();
        if seen.len() >= MAX_NAMES {
            seen.clear();
        }
        let kept = name.clone();
        seen.insert(
            uid,
            Seen {
                name: kept,
                passwd,
                at,
            },
        );
        name
    }
}

impl GateIndex {
    pub fn new(
        policy: Arc<Policy>,
        hostname: String,
        accounts: Arc<dyn Accounts + Send + Sync>,
    ) -> Self {
        Self {
            by_uid: HashMap::new(),
            shared: HashMap::new(),
            policy,
            hostname,
            accounts,
            names: Names::default(),
        }
    }

    /// Whether `uid` holds a live grant covering PAM service `service` at `now`.
    pub fn check(&self, uid: u32, service: &str, now: &Now) -> GateDecision {
        let entries = self.by_uid.get(&uid);
        // A grant opens the gate only for the account it was made for: a uid that now names
        // another account (deleted and reused, renamed) is refused at once, before the
        // integrity check ends the grant. Looked up only when the uid holds a grant.
        let account = entries.and_then(|_| self.names.name(uid, self.accounts.as_ref()));
        let live = entries.into_iter().flatten().find(|e| {
            account.as_deref() == Some(&*e.user)
                && !e.deadline.is_due(now)
                && e.services.iter().any(|s| s == service)
        });
        if let Some(e) = live {
            return GateDecision {
                allowed: true,
                grant_id: e.id.to_string(),
                privilege: e.privilege.to_string(),
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
        let policy = &self.policy;
        let (privilege, services) = self
            .shared
            .entry(g.privilege.clone())
            .or_insert_with(|| {
                let services = policy
                    .privilege(&g.privilege)
                    .map(|p| p.pam_services.clone())
                    .unwrap_or_default();
                (Arc::from(g.privilege.as_str()), Arc::from(services))
            })
            .clone();
        let entries = self.by_uid.entry(g.uid).or_default();
        let user = entries
            .iter()
            .find(|e| *e.user == *g.user)
            .map_or_else(|| Arc::from(g.user.as_str()), |e| Arc::clone(&e.user));
        entries.push(GateEntry {
            id: g.id.clone(),
            user,
            privilege,
            services,
            deadline: g.deadline(),
        });
    }

    /// Forgets a grant: from now on no check is answered from it. Only its uid's entries are
    /// looked at (a grant's uid never changes), so ending thousands together stays linear.
    pub fn remove(&mut self, g: &GrantRecord) {
        if let Some(entries) = self.by_uid.get_mut(&g.uid) {
            entries.retain(|e| e.id != g.id);
            if entries.is_empty() {
                self.by_uid.remove(&g.uid);
            }
        }
    }

    /// The policy the refusal hints are computed from.
    pub fn set_policy(&mut self, policy: Arc<Policy>) {
        self.policy = policy;
        // Grants indexed from now on take the new policy's services; those indexed before keep
        // the ones they were granted with.
        self.shared.clear();
    }
}
