//! The daemon's core: the request lifecycle and the grant state machine, behind one lock.
//!
//! Invariants:
//! - No grant without a durable record: the `applying` row is committed before the system
//!   changes, and a grant whose `active` row cannot be committed is taken off again.
//! - Revocation never waits on the database: the gate forgets a grant first, the system change
//!   follows, and a failing DB write is audited, not fatal. Removal that fails is retried on every
//!   tick until it succeeds.
//! - One writer: the core lives behind one mutex; the gate index is a separate read-mostly
//!   structure so pam_jit's checks never wait for a grant being written.
//! - Everything the core knows about time comes from its [`Clock`], about accounts from its
//!   [`Accounts`], about the system from its [`Enforcer`].
//!
//! Where things are: `requests` (validate → decide → grant), `grants` (the grant state
//! machine: apply, end, finish removal), `schedule` (what is due when), `reconcile` (start-up
//! and the periodic integrity check), `sessions` (elevated sessions), `recall` (what an ended
//! grant left running or on disk), `gate_index` (what pam_jit's checks read), `hints` (texts
//! for people), `ended` (ends the database could not record, rows it cannot read),
//! `safe_mode` (revocation from the markers when the database is unusable). This file is the
//! façade the bus and the runtime call.

#![forbid(unsafe_code)]

mod approvals;
mod auto_approve;
mod breakglass;
mod ended;
mod extend;
mod gate_index;
mod grants;
mod hints;
mod ledger;
mod ledger_journal;
mod live;
mod mfa;
mod notify_due;
mod reauth;
mod recall;
mod reconcile;
mod request_upkeep;
mod request_views;
mod requests;
mod review_due;
mod routes;
mod safe_mode;
mod schedule;
mod sessions;
mod signed;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockWriteGuard};

pub use approvals::RequestSignal;
pub use gate_index::GateIndex;
pub use hints::not_admin;
pub use ledger::AFTER_EXPIRY_MS;
pub use requests::{Ask, check_text};

use crate::audit::{Audit, AuditEvent, PolkitAnswer};
use crate::client::{Error, Explanation, GrantInfo};
use crate::clock::Clock;
use crate::config::Config;
use crate::effects::enforce::Enforcer;
use crate::effects::recall::Recaller;
use crate::effects::sudoers::SudoFlavor;
use crate::grant::GrantRecord;
use crate::names::GrantId;
use crate::names::SessionId;
use crate::policy::{Accounts, Diagnostic, Policy, PolicySource, Requester};
use crate::session::Session;
use crate::store::tombstones::Tombstones;
use crate::store::{Store, StoreError};
use crate::terms::Verdict;

/// Who asks, as the bus layer resolved it: the uid from the bus credentials (never from an
/// argument) and whether the caller may act on everyone's grants (root, `admin_group`, or
/// polkit's explicit yes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub admin: bool,
}

/// Most rows a listing returns.
const LIST_LIMIT: u32 = 500;

pub struct Core {
    cfg: Config,
    clock: Arc<dyn Clock>,
    store: Store,
    audit: Arc<Audit>,
    policy: Arc<Policy>,
    enforcer: Box<dyn Enforcer>,
    accounts: Arc<dyn Accounts + Send + Sync>,
    flavor: SudoFlavor,
    hostname: String,
    /// Every grant something of which may be on the system.
    live: live::LiveSet,
    gate: Arc<RwLock<GateIndex>>,
    sessions: HashMap<SessionId, Session>,
    recaller: Recaller,
    /// Ends the database could not record.
    ended: Tombstones,
    /// Safe mode: why the state database cannot be used, as requests are told.
    unusable: Option<String>,
    /// Tells the bus that a request waiting for approval changed.
    request_signal: Option<RequestSignal>,
    /// Recent refusals per user, for the `denial-burst` alert.
    refusals: ledger::Refusals,
    /// Grants (by id and deadline) whose expiry warning is known queued: a tick looks at every
    /// live grant, and asking the database for each would cost every tick a query per grant in
    /// its warning window (10,000 grants ending together: 10,000 queries a tick).
    warned: std::cell::RefCell<std::collections::HashSet<(GrantId, i64)>>,
}

/// Everything a core is built from; the daemon passes the real ones, tests fakes.
pub struct Parts {
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub audit: Arc<Audit>,
    pub enforcer: Box<dyn Enforcer>,
    pub accounts: Arc<dyn Accounts + Send + Sync>,
    pub flavor: SudoFlavor,
    pub policy: Policy,
    pub recaller: Recaller,
}

impl Core {
    pub fn open(parts: Parts) -> Result<Self, StoreError> {
        let busy = std::time::Duration::from_millis(parts.cfg.db_busy_timeout_ms);
        let store = Store::open(&parts.cfg.db_path(), busy)?;
        Ok(Self::with_store(parts, store, None))
    }

    fn with_store(parts: Parts, store: Store, unusable: Option<String>) -> Self {
        let Parts {
            cfg,
            clock,
            audit,
            enforcer,
            accounts,
            flavor,
            policy,
            recaller,
        } = parts;
        let hostname = if cfg.hostname.is_empty() {
            crate::sys::hostname()
        } else {
            cfg.hostname.clone()
        };
        let policy = Arc::new(policy);
        let gate = GateIndex::new(policy.clone(), hostname.clone(), accounts.clone());
        let ended = Tombstones::new(&cfg.state_dir);
        Self {
            cfg,
            clock,
            store,
            audit,
            policy,
            enforcer,
            accounts,
            flavor,
            hostname,
            live: live::LiveSet::default(),
            warned: Default::default(),
            gate: Arc::new(RwLock::new(gate)),
            sessions: HashMap::new(),
            recaller,
            ended,
            unusable,
            request_signal: None,
            refusals: ledger::Refusals::default(),
        }
    }

    /// The structure pam_jit's checks read.
    pub fn gate(&self) -> Arc<RwLock<GateIndex>> {
        self.gate.clone()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn accounts(&self) -> Arc<dyn Accounts + Send + Sync> {
        self.accounts.clone()
    }

    /// Records `event` in the audit trail: syslog and the hash chain, with the time, this
    /// host's name and the next sequence number.
    pub fn record(&self, event: AuditEvent) {
        // In safe mode the store is a stand-in in memory: its chain is no audit trail.
        let store = self
            .unusable
            .is_none()
            .then_some((&self.store, self.hostname.as_str()));
        let at_ms = self.clock.now().wall_ms;
        let expiry = |id: &str| {
            GrantId::parse(id)
                .ok()
                .and_then(|g| self.live.get(&g))
                .map(|g| g.expires_ms)
        };
        let blob = |id: &str| self.signable_blob(id);
        let notes =
            crate::notify::notes_for(&self.policy, &self.hostname, at_ms, &event, &expiry, &blob);
        self.audit.record_noting(store, at_ms, &event, &notes);
        self.note_refusal(&event);
    }

    fn write_gate(&self) -> RwLockWriteGuard<'_, GateIndex> {
        self.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The caller as the policy sees it, or `None` when the uid has no account here.
    fn requester(&self, uid: u32) -> Option<Requester> {
        let name = self.accounts.user_name(uid)?;
        Some(Requester {
            uid,
            groups: self.own_groups(uid, &name),
            name,
        })
    }

    /// The groups of `uid` (named `name`) in its own right: memberships jitd granted never
    /// open another rule or the admin group, or one grant would lead to the next.
    fn own_groups(&self, uid: u32, name: &str) -> Vec<String> {
        let granted: Vec<&str> = self
            .live
            .of_uid(uid)
            .filter_map(|g| match &g.spec {
                crate::grant::GrantSpec::Group { group } => Some(group.as_str()),
                _ => None,
            })
            .collect();
        let mut groups = self.accounts.user_groups(name);
        groups.retain(|group| !granted.contains(&group.as_str()));
        groups
    }

    // ---- reads ------------------------------------------------------------------------------

    /// Whether `id` names a live grant of `uid`.
    pub fn owns_live(&self, uid: u32, id: &str) -> bool {
        GrantId::parse(id).is_ok_and(|id| self.live.get(&id).is_some_and(|g| g.uid == uid))
    }

    /// Grants of `uid`, or of everyone for `None` (callers check admin first).
    pub fn list(&self, uid: Option<u32>, include_ended: bool) -> Result<Vec<GrantInfo>, Error> {
        self.usable()?;
        if !include_ended {
            let mut out: Vec<GrantInfo> = match uid {
                Some(uid) => self.live.of_uid(uid).map(info).collect(),
                None => self.live.values().map(|g| info(g)).collect(),
            };
            out.sort_by_key(|g| std::cmp::Reverse(g.requested_ms));
            return Ok(out);
        }
        let rows = self
            .store
            .list(uid, true, LIST_LIMIT)
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(rows.iter().map(info).collect())
    }

    pub fn explain(&self, uid: u32, privilege: &str) -> Result<Explanation, Error> {
        crate::names::PrivilegeName::parse(privilege)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let Some(who) = self.requester(uid) else {
            return Err(Error::NotAllowed(format!(
                "uid {uid} has no account on this host"
            )));
        };
        let e = self.policy.explain(&who, privilege);
        Ok(Explanation {
            privilege: e.privilege,
            decision: if e.allowed {
                Verdict::Allow
            } else {
                Verdict::Deny
            },
            rule: e.rule.unwrap_or_default(),
            reasons: e.reasons,
            default_secs: e.default_secs,
            max_secs: e.max_secs,
            reason_required: e.reason_required,
            reason_min_chars: e.reason_min_chars,
            ticket_pattern: e.ticket_pattern.unwrap_or_default(),
            approval: crate::client::RuleApproval(e.approval),
            grants: e.grants,
        })
    }

    /// Every privilege `uid` may request now, with its rule's terms and what `uid` holds.
    /// The privileges `uid` may request at the prompt of PAM service `service` (pam_jit's
    /// in-place request): those its rule lets be asked for in place and whose grant would open
    /// the service.
    pub fn choices(
        &self,
        uid: u32,
        service: &str,
    ) -> Result<Vec<crate::client::PrivilegeInfo>, Error> {
        let mut out = self.privileges(uid)?;
        out.retain(|p| {
            p.interactive
                && self
                    .policy
                    .privilege(&p.name)
                    .is_some_and(|q| q.pam_services.iter().any(|s| s == service))
        });
        Ok(out)
    }

    pub fn privileges(&self, uid: u32) -> Result<Vec<crate::client::PrivilegeInfo>, Error> {
        let Some(who) = self.requester(uid) else {
            return Err(Error::NotAllowed(format!(
                "uid {uid} has no account on this host"
            )));
        };
        let mut out = Vec::new();
        for p in self.policy.privileges() {
            let e = self.policy.explain(&who, p.name.as_str());
            let Some(rule) = e.rule.filter(|_| e.allowed) else {
                continue;
            };
            let held = self
                .live
                .of_uid(uid)
                .find(|g| g.privilege == p.name.as_str());
            out.push(crate::client::PrivilegeInfo {
                name: p.name.to_string(),
                description: p.description.clone(),
                kind: match p.kind {
                    crate::policy::PrivilegeKind::Sudo { .. } => crate::terms::GrantKind::Sudo,
                    crate::policy::PrivilegeKind::Group { .. } => crate::terms::GrantKind::Group,
                    crate::policy::PrivilegeKind::Gate { .. } => crate::terms::GrantKind::Gate,
                },
                grants: e.grants,
                interactive: self
                    .policy
                    .rules()
                    .iter()
                    .any(|r| r.name == rule && r.interactive),
                rule,
                default_secs: e.default_secs,
                max_secs: e.max_secs,
                reason_required: e.reason_required,
                reason_min_chars: e.reason_min_chars,
                ticket_pattern: e.ticket_pattern.unwrap_or_default(),
                approval: crate::client::RuleApproval(e.approval),
                held_grant: held.map(|g| g.id.to_string()).unwrap_or_default(),
                held_until_ms: held.map_or(0, |g| g.expires_ms),
            });
        }
        Ok(out)
    }

    /// Whether `uid` is an admin without asking polkit: root or a member of `admin_group`.
    pub fn is_admin(&self, uid: u32) -> bool {
        uid == 0
            || self
                .accounts
                .user_name(uid)
                .is_some_and(|name| self.own_groups(uid, &name).contains(&self.cfg.admin_group))
    }

    /// The name of `uid` for a record, or the number when it has no account.
    fn name_of(&self, uid: u32) -> String {
        self.accounts
            .user_name(uid)
            .unwrap_or_else(|| uid.to_string())
    }

    /// Records what polkit answered when a caller asked to act as an admin.
    pub fn audit_polkit(&self, uid: u32, method: &str, answer: &Result<bool, String>) {
        self.record(AuditEvent::AdminPolkit {
            caller: uid,
            method: method.to_string(),
            action: crate::polkit::MANAGE.to_string(),
            answer: PolkitAnswer::from(answer),
        });
    }

    // ---- policy -----------------------------------------------------------------------------

    /// Loads the policy files named by `cfg`. Errors carry file, line and column.
    pub fn load_policy(cfg: &Config, accounts: &dyn Accounts) -> Result<Policy, Vec<Diagnostic>> {
        let src = PolicySource {
            file: Some(cfg.policy_file.clone()),
            dir: Some(cfg.policy_dir.clone()),
            admin_group: cfg.admin_group.clone(),
            ..PolicySource::default()
        };
        Policy::load(&src, accounts).map(|l| {
            let mut policy = l.policy;
            policy.hook_votes_as(&cfg.notifier_user);
            policy
        })
    }

    /// Re-reads the policy; on any error the policy in force stays.
    pub fn reload_policy(&mut self) -> Result<String, Error> {
        match Self::load_policy(&self.cfg, self.accounts.as_ref())
            .map_err(|errors| diagnostics_text(&errors))
        {
            Ok(policy) => {
                // The routes first: a policy whose commands sudo cannot place is not put in
                // force, or its grants would open the wrong door (or none).
                if let Err(e) = self.route(&policy) {
                    self.record(AuditEvent::PolicyRejected {
                        errors: e.clone(),
                        action: "previous policy stays in force".into(),
                    });
                    return Err(Error::Unavailable(format!(
                        "policy not reloaded, the previous one stays in force: {e}"
                    )));
                }
                let summary = format!(
                    "policy loaded: {} privileges, {} rules",
                    policy.privileges().count(),
                    policy.rules().len()
                );
                self.policy = Arc::new(policy);
                self.write_gate().set_policy(self.policy.clone());
                self.record(AuditEvent::PolicyLoaded {
                    summary: summary.clone(),
                });
                self.recheck_requests();
                Ok(summary)
            }
            Err(errors) => {
                self.record(AuditEvent::PolicyRejected {
                    errors: errors.clone(),
                    action: "previous policy stays in force".into(),
                });
                Err(Error::InvalidArgument(format!(
                    "policy not reloaded, the previous one stays in force:\n{errors}"
                )))
            }
        }
    }
}

/// Policy errors as the audit and the operator read them: one `file:line:column: message` per
/// line.
pub fn diagnostics_text(errors: &[Diagnostic]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Walks the audit chain of the database at `path` on a read-only connection.
pub fn verify_audit(path: &std::path::Path) -> Result<crate::client::ChainCheck, Error> {
    let store = Store::open_read_only(path).map_err(|e| Error::Unavailable(e.to_string()))?;
    let report = store
        .verify_chain()
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok(crate::client::ChainCheck {
        intact: report.is_intact(),
        records: report.count,
        first_seq: report.first_seq.unwrap_or(0),
        last_seq: report.last_seq.unwrap_or(0),
        broken_seq: report.broken.as_ref().map_or(0, |b| b.seq),
        summary: report.to_string(),
    })
}

/// The wire form of a stored grant.
pub fn info(g: &GrantRecord) -> GrantInfo {
    GrantInfo {
        id: g.id.to_string(),
        uid: g.uid,
        user: g.user.clone(),
        privilege: g.privilege.clone(),
        kind: g.kind(),
        state: g.state,
        rule: g.rule.clone(),
        grants: g.grants.clone(),
        reason: g.reason.clone(),
        ticket: g.ticket.clone(),
        requested_ms: g.requested_ms,
        starts_ms: g.starts_ms,
        expires_ms: g.expires_ms,
        ended_ms: g.ended_ms,
        end_reason: g.end_reason.clone(),
    }
}
