//! What the audit records say about each grant, request and exception, folded record by record
//! (the input is streamed: memory grows with grants, not with records).
//!
//! Kinds this build writes are read as the codec types them. Kinds from the approvals and
//! activity work are read by name when present; their absence means "no data", never zero:
//!
//! - `request.pending {request uid user privilege rule duration reason ticket}`
//! - `request.approved {request grant approvers}` (approvers comma-joined),
//!   `request.expired {request}`
//! - `breakglass.used {grant user privilege}`, `breakglass.reviewed {grant reviewer outcome}`
//! - `command.finished {grant uid argv exit}`, `command.refused {grant uid argv}`
//! - `gate.fail_open {uid service}`, `notify.sent {request delay_ms}`,
//!   `request.escalated {request delay_ms}`

use std::collections::{BTreeMap, BTreeSet};

use super::input::Event;

/// One grant, as its records tell it.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    pub host: String,
    pub id: String,
    pub user: String,
    pub privilege: String,
    pub rule: String,
    pub reason: String,
    pub ticket: String,
    /// `auto`, `human` (approved by people), `breakglass`.
    pub approval: String,
    pub approvers: Vec<String>,
    /// When it was asked for: the pending record if it waited, else the allow.
    pub requested_ms: i64,
    pub allowed_ms: i64,
    /// Seconds granted.
    pub granted_secs: u64,
    pub clamped: bool,
    pub applied_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// `expired`, `revoked`, `dropped`, `rolled_back`.
    pub end: String,
    pub late_ms: Option<i64>,
    pub commands: u32,
    pub argvs: BTreeSet<String>,
    pub refusals: u32,
    pub sessions: u32,
    /// Time of the last use seen (a command's end, a session's close).
    pub last_use_ms: Option<i64>,
    pub apply_failed: bool,
    pub remove_failed: u32,
    pub repaired: u32,
    pub recalled: bool,
    pub review: Option<String>,
}

impl Grant {
    /// Time actually used: from the grant's start to its last use. `None` when no use was
    /// recorded, or when the holder gave it back (then the end is the last use).
    pub fn used_ms(&self) -> Option<i64> {
        let start = self.applied_ms?;
        let last = match (self.last_use_ms, self.end.as_str(), self.ended_ms) {
            (Some(at), _, _) => at,
            (None, "dropped", Some(at)) => at,
            _ => return None,
        };
        Some((last - start).max(0))
    }
}

#[derive(Debug, Clone)]
pub struct Denial {
    pub host: String,
    pub at_ms: i64,
    pub user: String,
    pub privilege: String,
    pub reason: String,
    pub why: String,
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub host: String,
    pub at_ms: i64,
    pub grant: String,
    pub user: String,
    pub privilege: String,
    pub argv: String,
}

/// A record an auditor looks at on its own: clock changes, policy rejects, failures.
#[derive(Debug, Clone)]
pub struct Exception {
    pub host: String,
    pub at_ms: i64,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
struct Pending {
    at_ms: i64,
}

/// Everything the reports and suggestions need, keyed so iteration order is fixed.
#[derive(Debug, Default)]
pub struct Facts {
    /// By host, then grant id: records name a grant by its id, on the host that wrote them.
    pub grants: BTreeMap<String, BTreeMap<String, Grant>>,
    pub denials: Vec<Denial>,
    pub refusals: Vec<Refusal>,
    pub exceptions: Vec<Exception>,
    pub policy_loads: Vec<Exception>,
    /// Approval latency of each approved request, in ms.
    pub approval_latency_ms: Vec<i64>,
    pub expired_requests: u64,
    pub notify_delay_ms: Vec<i64>,
    pub escalation_delay_ms: Vec<i64>,
    /// Whether any record of the approvals / activity work was seen.
    pub has_approvals: bool,
    pub has_commands: bool,
    pub counts: BTreeMap<String, u64>,
    pending: BTreeMap<(String, String), Pending>,
    /// Approvals recorded before their grant's allow: when asked, and by whom.
    approved: BTreeMap<String, (Option<i64>, Vec<String>)>,
}

impl Facts {
    fn grant(&mut self, host: &str, id: &str) -> Option<&mut Grant> {
        self.grants.get_mut(host)?.get_mut(id)
    }

    /// Every grant, by host and id.
    pub fn all(&self) -> impl Iterator<Item = &Grant> {
        self.grants.values().flat_map(BTreeMap::values)
    }

    /// Folds one record in.
    pub fn add(&mut self, e: &Event) {
        match self.counts.get_mut(&e.kind) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(e.kind.clone(), 1);
            }
        }
        let host = e.host.clone();
        match e.kind.as_str() {
            "request.pending" => {
                self.has_approvals = true;
                self.pending.insert(
                    (host, e.get("request").to_string()),
                    Pending { at_ms: e.at_ms },
                );
            }
            // jitd writes `request.decided` with the state and `by` ("bob, carol"); exports
            // of the generator write `request.approved` with `approvers`.
            "request.approved" | "request.decided"
                if e.kind == "request.approved" || e.get("state") == "approved" =>
            {
                self.has_approvals = true;
                let asked = self
                    .pending
                    .get(&(host, e.get("request").to_string()))
                    .map(|p| p.at_ms);
                if let Some(at) = asked {
                    self.approval_latency_ms.push(e.at_ms - at);
                }
                let listed = if e.kind == "request.decided" {
                    e.get("by")
                } else {
                    e.get("approvers")
                };
                let approvers: Vec<String> = listed
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.approvers = approvers;
                    g.approval = "human".into();
                    g.requested_ms = asked.unwrap_or(g.requested_ms);
                } else {
                    // The allow comes after the approval: kept for then.
                    self.approved
                        .insert(e.get("grant").to_string(), (asked, approvers));
                }
            }
            "request.expired" => {
                self.has_approvals = true;
                self.expired_requests += 1;
            }
            "request.decided" if e.get("state") == "expired" => {
                self.has_approvals = true;
                self.expired_requests += 1;
            }
            "request.decided" if e.get("state") == "denied" => {
                self.has_approvals = true;
                self.denials.push(Denial {
                    host,
                    at_ms: e.at_ms,
                    user: e.get("user").into(),
                    privilege: e.get("privilege").into(),
                    reason: String::new(),
                    why: format!("denied by {}: {}", e.get("by"), e.get("why")),
                });
            }
            "request.denied" => self.denials.push(Denial {
                host,
                at_ms: e.at_ms,
                user: e.get("user").into(),
                privilege: e.get("privilege").into(),
                reason: e.get("reason").into(),
                why: e.get("why").into(),
            }),
            "request.allowed" => {
                let id = e.get("grant").to_string();
                let mut g = Grant {
                    host: host.clone(),
                    id: id.clone(),
                    user: e.get("user").into(),
                    privilege: e.get("privilege").into(),
                    rule: e.get("rule").into(),
                    reason: e.get("reason").into(),
                    ticket: e.get("ticket").into(),
                    approval: e.get("approval").into(),
                    requested_ms: e.at_ms,
                    allowed_ms: e.at_ms,
                    granted_secs: e.num("duration").max(0).unsigned_abs(),
                    clamped: e.get("clamped") == "true",
                    ..Grant::default()
                };
                if let Some((asked, approvers)) = self.approved.remove(&id) {
                    g.requested_ms = asked.unwrap_or(g.requested_ms);
                    g.approvers = approvers;
                    g.approval = "human".into();
                }
                self.grants.entry(host).or_default().insert(id, g);
            }
            "breakglass.used" => {
                self.has_approvals = true;
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.approval = "breakglass".into();
                }
            }
            "breakglass.reviewed" => {
                let outcome = format!("{} by {}", e.get("outcome"), e.get("reviewer"));
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.review = Some(outcome);
                }
            }
            "grant.applied" => {
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.applied_ms = Some(e.at_ms);
                }
            }
            "grant.apply_failed" => {
                let detail = format!("{}: {}", e.get("grant"), e.get("error"));
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.apply_failed = true;
                }
                self.exception(e, detail);
            }
            "grant.expired" | "grant.revoked" | "grant.dropped" | "grant.rolled_back" => {
                let late = (e.kind == "grant.expired").then(|| e.num("late_ms"));
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.ended_ms = Some(e.at_ms);
                    g.end = e.kind.trim_start_matches("grant.").into();
                    g.late_ms = late;
                }
            }
            "grant.remove_failed" => {
                let detail = format!("{}: {}", e.get("grant"), e.get("error"));
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.remove_failed += 1;
                }
                self.exception(e, detail);
            }
            "grant.repaired" => {
                let detail = format!("{}: found {}", e.get("grant"), e.get("found"));
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.repaired += 1;
                }
                self.exception(e, detail);
            }
            "recall.finished" | "recall.incomplete" => {
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.recalled = true;
                }
            }
            "session.opened" => {
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.sessions += 1;
                }
            }
            "session.closed" => {
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.last_use_ms = Some(g.last_use_ms.unwrap_or(0).max(e.at_ms));
                }
            }
            // jitd's ledger writes `command.run`; the generator `command.finished`.
            "command.finished" | "command.run" => {
                self.has_commands = true;
                let argv = e.get("argv").to_string();
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.commands += 1;
                    g.argvs.insert(argv);
                    g.last_use_ms = Some(g.last_use_ms.unwrap_or(0).max(e.at_ms));
                }
            }
            "command.refused" => {
                self.has_commands = true;
                let (mut user, mut privilege) = (String::new(), String::new());
                if let Some(g) = self.grant(&e.host, e.get("grant")) {
                    g.refusals += 1;
                    user.clone_from(&g.user);
                    privilege.clone_from(&g.privilege);
                }
                self.refusals.push(Refusal {
                    host,
                    at_ms: e.at_ms,
                    grant: e.get("grant").into(),
                    user,
                    privilege,
                    argv: e.get("argv").into(),
                });
            }
            "notify.sent" => self.notify_delay_ms.push(e.num("delay_ms")),
            "request.escalated" => self.escalation_delay_ms.push(e.num("delay_ms")),
            "clock.changed" => self.exception(e, String::new()),
            "gate.fail_open" => {
                let detail = format!("uid {} via {}", e.get("uid"), e.get("service"));
                self.exception(e, detail);
            }
            "policy.rejected" => {
                let detail = e.get("errors").to_string();
                self.exception(e, detail);
            }
            "policy.loaded" => self.policy_loads.push(Exception {
                host,
                at_ms: e.at_ms,
                kind: e.kind.clone(),
                detail: e.get("summary").into(),
            }),
            _ => {}
        }
    }

    fn exception(&mut self, e: &Event, detail: String) {
        self.exceptions.push(Exception {
            host: e.host.clone(),
            at_ms: e.at_ms,
            kind: e.kind.clone(),
            detail,
        });
    }
}
