//! The daemon's decisions and their order: request → policy → durable intent → system change →
//! durable outcome; revoke and expire the same way in reverse; reconcile after a crash.
//!
//! Invariants:
//! - No grant without a durable record: the `applying` row is committed before the system
//!   changes, and a grant whose `active` row cannot be committed is taken off again.
//! - Revocation never waits on the database: the gate forgets a grant first, the system change
//!   follows, and a failing DB write is audited, not fatal. Removal that fails is retried on every
//!   tick until it succeeds.
//! - One writer: the engine lives behind one mutex; the gate index is a separate read-mostly
//!   structure so pam_jit's checks never wait for a grant being written.
//! - Everything the engine knows about time comes from its [`Clock`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::audit::{Audit, Event, Level};
use crate::client::{
    self, Error, Explanation, GateDecision, GrantInfo, RequestOutcome, SessionInfo,
};
use crate::clock::{Clock, Deadline, Now, started_in_future, utc};
use crate::config::Config;
use crate::effects::enforce::{Enforcer, Presence};
use crate::effects::recall;
use crate::effects::sudoers::{self, DropIn, SudoFlavor};
use crate::grant::{GrantKind, GrantRecord, GrantSpec, GrantState};
use crate::names::GrantId;
use crate::policy::{
    Accounts, Decision, Facts, Held, OnEnd, Policy, PolicySource, PrivilegeKind, Requester,
};
use crate::store::{SessionRow, Store};
use crate::terms::Via;

/// Most rows a listing returns.
const LIST_LIMIT: u32 = 500;
/// How long recalled processes get between SIGTERM and SIGKILL.
const RECALL_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

fn join(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A live grant as the gate sees it: enough to answer a PAM check from memory.
#[derive(Debug, Clone)]
struct GateEntry {
    id: GrantId,
    privilege: String,
    services: Vec<String>,
    deadline: Deadline,
}

/// What pam_jit's checks read. Written by the engine under its lock, read without it.
pub struct GateIndex {
    by_uid: HashMap<u32, Vec<GateEntry>>,
    policy: Arc<Policy>,
    hostname: String,
}

impl GateIndex {
    /// Whether `uid` holds a live grant covering PAM service `service` at `now`.
    pub fn check(&self, uid: u32, service: &str, now: &Now) -> GateDecision {
        let live = self
            .by_uid
            .get(&uid)
            .into_iter()
            .flatten()
            .find(|e| !e.deadline.is_due(now) && e.services.iter().any(|s| s == service));
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
            message: self.refusal(uid, service),
        }
    }

    /// The one line a refused user sees: what they could ask for, and how.
    fn refusal(&self, uid: u32, service: &str) -> String {
        let Some(account) = crate::accounts::account_by_uid(uid) else {
            return format!("no active elevation for uid {uid} on {}", self.hostname);
        };
        let who = Requester {
            uid,
            groups: crate::policy::SystemAccounts.user_groups(&account.name),
            name: account.name.clone(),
        };
        let eligible: Vec<String> = self
            .policy
            .privileges()
            .filter(|p| p.pam_services.iter().any(|s| s == service))
            .filter(|p| self.policy.explain(&who, p.name.as_str()).allowed)
            .map(|p| p.name.to_string())
            .collect();
        match eligible.first() {
            Some(first) => format!(
                "no active elevation for {} on {}: run `jitctl elevate {first} --for 15m --reason ...`{}",
                account.name,
                self.hostname,
                if eligible.len() > 1 {
                    format!(" (also eligible: {})", eligible[1..].join(", "))
                } else {
                    String::new()
                }
            ),
            None => format!(
                "no active elevation for {} on {}, and no privilege you may request covers {service}",
                account.name, self.hostname
            ),
        }
    }
}

pub struct Engine {
    cfg: Config,
    clock: Arc<dyn Clock>,
    store: Store,
    audit: Arc<Audit>,
    policy: Arc<Policy>,
    enforcer: Box<dyn Enforcer>,
    accounts: Box<dyn Accounts + Send + Sync>,
    flavor: SudoFlavor,
    hostname: String,
    live: BTreeMap<GrantId, GrantRecord>,
    gate: Arc<RwLock<GateIndex>>,
    sessions: HashMap<String, SessionRow>,
    /// Grants whose end must also end their processes whatever `on_end` says
    /// (`jitctl revoke --terminate`).
    terminate_on_end: std::collections::HashSet<GrantId>,
}

/// Everything an engine is built from; the daemon passes the real ones, tests fakes.
pub struct Parts {
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub audit: Arc<Audit>,
    pub enforcer: Box<dyn Enforcer>,
    pub accounts: Box<dyn Accounts + Send + Sync>,
    pub flavor: SudoFlavor,
    pub policy: Policy,
}

impl Engine {
    pub fn open(parts: Parts) -> Result<Self, String> {
        let Parts {
            cfg,
            clock,
            audit,
            enforcer,
            accounts,
            flavor,
            policy,
        } = parts;
        let busy = std::time::Duration::from_millis(cfg.db_busy_timeout_ms);
        let store = Store::open(&cfg.db_path(), busy).map_err(|e| e.to_string())?;
        let hostname = if cfg.hostname.is_empty() {
            crate::sys::hostname()
        } else {
            cfg.hostname.clone()
        };
        let policy = Arc::new(policy);
        let gate = Arc::new(RwLock::new(GateIndex {
            by_uid: HashMap::new(),
            policy: policy.clone(),
            hostname: hostname.clone(),
        }));
        Ok(Self {
            cfg,
            clock,
            store,
            audit,
            policy,
            enforcer,
            accounts,
            flavor,
            hostname,
            live: BTreeMap::new(),
            gate,
            sessions: HashMap::new(),
            terminate_on_end: Default::default(),
        })
    }

    /// The structure pam_jit's checks read.
    pub fn gate(&self) -> Arc<RwLock<GateIndex>> {
        self.gate.clone()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    fn event(&self, event: Event) {
        self.audit
            .record(Some(&self.store), self.clock.now().wall_ms, &event);
    }

    // ---- start-up ---------------------------------------------------------------------------

    /// Brings the system and the database into agreement before the daemon serves anyone:
    /// interrupted applies are undone, interrupted removals finished, expired grants removed,
    /// live grants missing from the system put back, tampered ones rewritten, and drop-ins
    /// carrying jitd's marker that the database does not know removed. Files jitd did not
    /// write are reported and left alone.
    pub fn reconcile(&mut self) -> Result<(), String> {
        match self.enforcer.remove_stale_temp() {
            Ok(0) => {}
            Ok(n) => self.event(Event::new("reconcile.temp_removed").field("count", n)),
            Err(e) => self.warn("reconcile.temp_failed", &e.to_string()),
        }
        let gone = self.load_sessions();
        let records = self.store.live().map_err(|e| e.to_string())?;
        let now = self.clock.now();
        for g in records {
            match g.state {
                GrantState::Applying => {
                    // The requester never got a success reply: undo rather than complete.
                    self.finish_removal(g, GrantState::Failed, "interrupted before it took effect");
                }
                GrantState::Removing => {
                    let end = self.store.end_state(&g.id).unwrap_or(GrantState::Revoked);
                    let why = if g.end_reason.is_empty() {
                        "removal interrupted".to_string()
                    } else {
                        g.end_reason.clone()
                    };
                    self.finish_removal(g, end, &why);
                }
                _ if self.deadline_of(&g).is_due(&now) || started_in_future(g.starts_ms, &now) => {
                    self.end(g, GrantState::Expired, "expired");
                }
                _ => self.restore(g),
            }
        }
        self.remove_orphans();
        if let Ok(paths) = self.enforcer.foreign_lookalikes() {
            for path in paths {
                self.event(
                    Event::new("reconcile.foreign_file")
                        .level(Level::Warning)
                        .field("path", path.display())
                        .field("action", "left untouched"),
                );
            }
        }
        self.finish_sessions(gone);
        self.event(Event::new("daemon.reconciled").field("live", self.live.len()));
        Ok(())
    }

    /// A live grant found at start-up: check it is on the system as written, repair if not.
    fn restore(&mut self, g: GrantRecord) {
        self.check_on_system(&g);
        self.index(&g);
        self.live.insert(g.id.clone(), g);
    }

    /// Whether `g` is on the system exactly as jitd wrote it; if someone else deleted, edited or
    /// re-permissioned it, or removed the membership, it is put back and the finding audited.
    fn check_on_system(&self, g: &GrantRecord) {
        match self.enforcer.presence(g) {
            Ok(Presence::Intact) => {}
            Ok(state) => {
                let what = match &state {
                    Presence::Missing => "missing".to_string(),
                    Presence::Tampered(why) => format!("tampered: {why}"),
                    Presence::Intact => String::new(),
                };
                let outcome = self.enforcer.apply(g);
                self.event(
                    Event::new("grant.repaired")
                        .level(Level::Warning)
                        .field("grant", &g.id)
                        .field("found", what)
                        .field("ok", outcome.is_ok())
                        .field(
                            "error",
                            outcome.err().map(|e| e.to_string()).unwrap_or_default(),
                        ),
                );
            }
            Err(e) => self.warn("grant.check_failed", &format!("{}: {e}", g.id)),
        }
    }

    /// The periodic integrity check (every `integrity_check_secs`): each live grant is checked
    /// and repaired as at start-up, and a drop-in carrying jitd's marker that no live grant
    /// owns (copied, or left by someone else) is removed.
    pub fn check_integrity(&mut self) {
        // A grant at or past its end is left to `tick`: the sweep may be removing it right
        // now, and putting it back would revive it.
        let now = self.clock.now();
        let active: Vec<GrantRecord> = self
            .live
            .values()
            .filter(|g| {
                g.state == GrantState::Active
                    && !self.deadline_of(g).is_due(&now)
                    && !started_in_future(g.starts_ms, &now)
            })
            .cloned()
            .collect();
        for g in &active {
            self.check_on_system(g);
        }
        self.remove_orphans();
    }

    /// Removes drop-ins carrying jitd's marker whose grant is not live.
    fn remove_orphans(&self) {
        match self.enforcer.owned_drop_ins() {
            Ok(ids) => {
                for id in ids.into_iter().filter(|id| !self.live.contains_key(id)) {
                    let outcome = self.enforcer.remove_orphan(&id);
                    self.event(
                        Event::new("reconcile.orphan_removed")
                            .level(Level::Warning)
                            .field("grant", &id)
                            .field("ok", outcome.is_ok()),
                    );
                }
            }
            Err(e) => self.warn("reconcile.scan_failed", &e.to_string()),
        }
    }

    /// Loads the live set without touching the system (for the one-shot sweep).
    pub fn load_live(&mut self) -> Result<(), String> {
        for g in self.store.live().map_err(|e| e.to_string())? {
            self.index(&g);
            self.live.insert(g.id.clone(), g);
        }
        Ok(())
    }

    // ---- requests ---------------------------------------------------------------------------

    /// Handles a request from `uid` (taken from bus credentials, or from PAM via the root-only
    /// Gate). `via` says which door it came through, for the policy and the audit.
    pub fn request(
        &mut self,
        uid: u32,
        privilege: &str,
        duration_secs: u64,
        reason: &str,
        ticket: &str,
        via: Via,
    ) -> Result<RequestOutcome, Error> {
        let refused = |engine: &Self, why: &str| {
            engine.event(
                Event::new("request.invalid")
                    .level(Level::Notice)
                    .field("uid", uid)
                    .field("via", via)
                    .field("privilege", privilege)
                    .field("why", why),
            );
        };
        if let Err(e) = crate::names::PrivilegeName::parse(privilege) {
            let why = e.to_string();
            refused(self, &why);
            return Err(Error::InvalidArgument(why));
        }
        if let Err(why) = check_text("reason", reason, client::MAX_REASON_CHARS) {
            refused(self, &why);
            return Err(Error::InvalidArgument(why));
        }
        if let Err(why) = check_text("ticket", ticket, client::MAX_TICKET_CHARS) {
            refused(self, &why);
            return Err(Error::InvalidArgument(why));
        }
        if duration_secs > crate::duration::MAX_SECS {
            let why = format!(
                "duration {duration_secs}s is above the longest jitd accepts ({})",
                crate::duration::format(crate::duration::MAX_SECS)
            );
            refused(self, &why);
            return Err(Error::InvalidArgument(why));
        }
        let Some(account) = crate::accounts::account_by_uid(uid) else {
            refused(self, "no account");
            return Err(Error::NotAllowed(format!(
                "uid {uid} has no account on this host"
            )));
        };
        let who = Requester {
            uid,
            groups: self.accounts.user_groups(&account.name),
            name: account.name.clone(),
        };
        let live_by_rule = |rule: &str| {
            self.live
                .values()
                .filter(|g| g.uid == uid && g.rule == rule)
                .count() as u32
        };
        let held = self
            .live
            .values()
            .find(|g| g.uid == uid && g.privilege == privilege)
            .map(|g| (g.id.as_str(), utc(g.expires_ms)));
        let decision = crate::policy::decide(
            &self.policy,
            &Facts {
                who: &who,
                privilege,
                duration_secs: (duration_secs > 0).then_some(duration_secs),
                reason,
                ticket,
                via,
                active_under: &live_by_rule,
                held: held.as_ref().map(|(grant, until)| Held { grant, until }),
            },
        );
        let denied = |engine: &Self, why: String| {
            engine.event(
                Event::new("request.denied")
                    .level(Level::Notice)
                    .field("uid", uid)
                    .field("user", &account.name)
                    .field("via", via)
                    .field("privilege", privilege)
                    .field("duration", duration_secs)
                    .field("reason", reason)
                    .field("ticket", ticket)
                    .field("why", &why),
            );
            Err(Error::PolicyDenied(why))
        };
        let (rule, secs, clamped) = match decision {
            Decision::Allow {
                rule,
                duration_secs,
                clamped,
            } => (rule, duration_secs, clamped),
            // No rule asks for approval yet (the loader refuses every mode but "auto"); should
            // one reach here, nothing is granted without it.
            Decision::Pending { rule, .. } => {
                return denied(
                    self,
                    format!(
                        "rule \"{rule}\" needs an approval, which this jitd cannot collect yet"
                    ),
                );
            }
            Decision::Deny { why } => return denied(self, why),
        };
        let record =
            self.build_record(&account.name, uid, privilege, &rule, secs, reason, ticket)?;
        self.event(
            Event::new("request.approved")
                .field("grant", &record.id)
                .field("uid", uid)
                .field("user", &account.name)
                .field("via", via)
                .field("privilege", privilege)
                .field("rule", &rule)
                .field("duration", secs)
                .field("clamped", clamped)
                .field("reason", reason)
                .field("ticket", ticket)
                .field("approval", "auto"),
        );
        let grant = self.apply_new(record)?;
        let message = format!(
            "granted {privilege} until {} ({})",
            utc(grant.expires_ms),
            crate::duration::format(secs)
        );
        Ok(RequestOutcome {
            status: "active".into(),
            message,
            grant: info(&grant),
            clamped,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn build_record(
        &self,
        user: &str,
        uid: u32,
        privilege: &str,
        rule: &str,
        secs: u64,
        reason: &str,
        ticket: &str,
    ) -> Result<GrantRecord, Error> {
        let Some(p) = self.policy.privilege(privilege) else {
            return Err(Error::NotFound(format!("no privilege named {privilege}")));
        };
        let id = crate::sys::new_grant_id()
            .map_err(|e| Error::Unavailable(format!("no random id: {e}")))?;
        let now = self.clock.now();
        let deadline = Deadline::after(&now, (secs as i64).saturating_mul(1000));
        let (spec, drop_in) = match &p.kind {
            PrivilegeKind::Sudo {
                run_as_uid,
                commands,
                password_each_time,
                ..
            } => {
                let drop_in = DropIn {
                    grant: &id,
                    uid,
                    privilege: &p.name,
                    run_as_uid: *run_as_uid,
                    commands,
                    password_each_time: *password_each_time,
                    // Floor to the second: sudo may refuse up to a second early, never late.
                    not_after_unix_secs: deadline.wall_ms.div_euclid(1000),
                };
                let text = sudoers::render(&drop_in, &self.flavor)
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
                let spec = GrantSpec::Sudo {
                    run_as_uid: *run_as_uid,
                    commands: commands.clone(),
                    password_each_time: *password_each_time,
                };
                (spec, text)
            }
            PrivilegeKind::Group { group, .. } => (
                GrantSpec::Group {
                    group: group.clone(),
                },
                String::new(),
            ),
            PrivilegeKind::Gate => (GrantSpec::Gate, String::new()),
        };
        Ok(GrantRecord {
            id,
            uid,
            user: user.to_string(),
            privilege: privilege.to_string(),
            spec,
            drop_in,
            rule: rule.to_string(),
            grants: p.describe(),
            reason: reason.to_string(),
            ticket: ticket.to_string(),
            state: GrantState::Applying,
            requested_ms: now.wall_ms,
            starts_ms: now.wall_ms,
            expires_ms: deadline.wall_ms,
            boot_id: deadline.boot_id,
            expires_boot_ms: deadline.boot_ms,
            ended_ms: 0,
            end_reason: String::new(),
        })
    }

    /// Intent, apply, outcome — with rollback at each step that can fail.
    fn apply_new(&mut self, mut g: GrantRecord) -> Result<GrantRecord, Error> {
        if let GrantSpec::Group { group } = &g.spec
            && matches!(self.enforcer.presence(&g), Ok(Presence::Intact))
        {
            return Err(Error::PolicyDenied(format!(
                "{} is already a member of {group} outside jitd; nothing to grant",
                g.user
            )));
        }
        if let Err(e) = self.store.insert(&g) {
            let why = if e.is_busy() {
                "the state database is locked by another process; try again in a moment".into()
            } else {
                format!("cannot record the grant ({e}); nothing was changed")
            };
            self.warn("grant.not_recorded", &why);
            return Err(Error::Unavailable(why));
        }
        #[cfg(debug_assertions)]
        failpoint("after-intent");
        if let Err(e) = self.enforcer.apply(&g) {
            let rolled_back = self.abandon(g.clone(), &e.to_string());
            self.event(
                Event::new("grant.apply_failed")
                    .level(Level::Warning)
                    .field("grant", &g.id)
                    .field("error", &e)
                    .field("rolled_back", rolled_back),
            );
            return Err(Error::Unavailable(format!(
                "could not apply the grant: {e}"
            )));
        }
        #[cfg(debug_assertions)]
        failpoint("after-apply");
        if let Err(e) = self.store.mark_active(&g.id) {
            let rolled_back = self.abandon(g.clone(), &e.to_string());
            self.event(
                Event::new("grant.apply_failed")
                    .level(Level::Warning)
                    .field("grant", &g.id)
                    .field("error", &e)
                    .field("rolled_back", rolled_back),
            );
            return Err(Error::Unavailable(format!(
                "cannot record the grant ({e}); {}",
                if rolled_back {
                    "it was rolled back"
                } else {
                    "it is being taken off"
                }
            )));
        }
        g.state = GrantState::Active;
        self.event(
            Event::new("grant.applied")
                .field("grant", &g.id)
                .field("uid", g.uid)
                .field("user", &g.user)
                .field("privilege", &g.privilege)
                .field("kind", g.kind())
                .field("expires", utc(g.expires_ms)),
        );
        self.index(&g);
        self.live.insert(g.id.clone(), g.clone());
        Ok(g)
    }

    // ---- ending grants ----------------------------------------------------------------------

    /// Takes off a grant that could not be put in place. If that fails too (a tool that died
    /// half-way), the grant stays in `removing`, never in the gate, and every tick retries
    /// until nothing of it is left. Returns whether it is off the system now.
    fn abandon(&mut self, mut g: GrantRecord, why: &str) -> bool {
        let undone = self.enforcer.remove(&g).is_ok();
        let now = self.clock.now().wall_ms;
        let recorded = if undone {
            self.store.mark_ended(&g.id, GrantState::Failed, now, why)
        } else {
            g.state = GrantState::Removing;
            g.ended_ms = now;
            g.end_reason = why.to_string();
            self.live.insert(g.id.clone(), g.clone());
            self.store
                .mark_removing(&g.id, GrantState::Failed, now, why)
        };
        if let Err(e) = recorded {
            self.warn("grant.db_write_failed", &format!("{}: {e}", g.id));
        }
        undone
    }

    /// Revoke (admins) or drop (owner) a live grant; `terminate` also ends the processes that
    /// still hold it (admins only), whatever the privilege's `on_end` says. `admin` is the
    /// caller's standing, decided by the bus layer ([`Engine::is_admin`] or polkit).
    pub fn revoke(
        &mut self,
        caller: u32,
        admin: bool,
        id: &str,
        reason: &str,
        terminate: bool,
    ) -> Result<GrantInfo, Error> {
        let id = GrantId::parse(id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        check_text("reason", reason, client::MAX_REASON_CHARS).map_err(Error::InvalidArgument)?;
        let Some(g) = self.live.get(&id).cloned() else {
            return match self.store.get(&id) {
                Ok(Some(g)) if admin || g.uid == caller => Err(Error::NotFound(format!(
                    "grant {id} is not live (it is {})",
                    g.state.as_str()
                ))),
                _ => Err(Error::NotFound(format!("no grant {id}"))),
            };
        };
        let (state, why) = if g.uid == caller {
            (GrantState::Dropped, "dropped by owner".to_string())
        } else if admin {
            let by = crate::accounts::account_by_uid(caller).map_or(caller.to_string(), |a| a.name);
            let why = if reason.is_empty() {
                format!("revoked by {by}")
            } else {
                format!("revoked by {by}: {reason}")
            };
            (GrantState::Revoked, why)
        } else {
            self.event(
                Event::new("revoke.denied")
                    .level(Level::Notice)
                    .field("grant", &id)
                    .field("caller", caller),
            );
            // Same answer as for an unknown id: do not reveal other users' grant ids.
            return Err(Error::NotFound(format!("no grant {id}")));
        };
        if terminate {
            if !admin {
                return Err(Error::NotAllowed(
                    "only admins may end processes with --terminate".into(),
                ));
            }
            self.terminate_on_end.insert(g.id.clone());
        }
        let ended = self.end(g, state, &why);
        self.terminate_on_end.remove(&ended.id);
        Ok(info(&ended))
    }

    /// Takes a live grant off: gate first, then durable intent, then the system, then the final
    /// record. Returns the record as ended (or still `removing` if the system change failed; the
    /// next tick retries).
    fn end(&mut self, g: GrantRecord, state: GrantState, why: &str) -> GrantRecord {
        self.unindex(&g.id);
        let now = self.clock.now().wall_ms;
        if let Err(e) = self.store.mark_removing(&g.id, state, now, why) {
            // Revocation proceeds without the database.
            self.warn("grant.db_write_failed", &format!("{}: {e}", g.id));
        }
        self.finish_removal(g, state, why)
    }

    fn finish_removal(&mut self, mut g: GrantRecord, state: GrantState, why: &str) -> GrantRecord {
        self.unindex(&g.id);
        #[cfg(debug_assertions)]
        failpoint("before-remove");
        let now = self.clock.now().wall_ms;
        if let Err(e) = self.enforcer.remove(&g) {
            self.event(
                Event::new("grant.remove_failed")
                    .level(Level::Warning)
                    .field("grant", &g.id)
                    .field("error", &e)
                    .field("retry", "next tick"),
            );
            g.state = GrantState::Removing;
            g.ended_ms = now;
            g.end_reason = why.to_string();
            self.live.insert(g.id.clone(), g.clone());
            return g;
        }
        #[cfg(debug_assertions)]
        failpoint("after-remove");
        if let Err(e) = self.store.mark_ended(&g.id, state, now, why) {
            self.warn("grant.db_write_failed", &format!("{}: {e}", g.id));
        }
        self.live.remove(&g.id);
        g.state = state;
        g.ended_ms = now;
        g.end_reason = why.to_string();
        let late_ms = now - g.expires_ms;
        let mut event = Event::new(match state {
            GrantState::Expired => "grant.expired",
            GrantState::Dropped => "grant.dropped",
            GrantState::Failed => "grant.rolled_back",
            _ => "grant.revoked",
        })
        .field("grant", &g.id)
        .field("uid", g.uid)
        .field("user", &g.user)
        .field("privilege", &g.privilege)
        .field("why", why);
        if state == GrantState::Expired {
            event = event.field("late_ms", late_ms);
        }
        self.event(event);
        if state != GrantState::Failed {
            self.recall(&g);
        }
        self.sessions
            .retain(|_, s| s.info.grant_id != g.id.as_str());
        g
    }

    /// Ends what still runs with an ended grant's privilege, when the privilege says so.
    /// SIGTERM goes out now; the SIGKILL after the grace period runs on a short-lived thread so
    /// the engine is not held up.
    fn recall(&self, g: &GrantRecord) {
        let Some(p) = self.policy.privilege(&g.privilege) else {
            return;
        };
        if !matches!(p.on_end, OnEnd::Terminate) && !self.terminate_on_end.contains(&g.id) {
            return;
        }
        let procs = recall::scan(Path::new("/proc"));
        let mut pids: Vec<u32> = match &p.kind {
            PrivilegeKind::Group { gid, .. } => recall::holding_group(&procs, g.uid, *gid),
            PrivilegeKind::Sudo { .. } | PrivilegeKind::Gate => self
                .sessions
                .values()
                .filter(|s| s.info.grant_id == g.id.as_str() && self.still_running(s))
                .flat_map(|s| recall::tree(&procs, s.info.pid))
                .collect(),
        };
        let own = std::process::id();
        pids.retain(|&pid| pid > 1 && pid != own);
        pids.sort_unstable();
        pids.dedup();
        if pids.is_empty() {
            return;
        }
        self.event(
            Event::new("recall.started")
                .level(Level::Notice)
                .field("grant", &g.id)
                .field("uid", g.uid)
                .field("pids", join(&pids)),
        );
        let audit = self.audit.clone();
        let id = g.id.clone();
        std::thread::spawn(move || {
            let out = recall::terminate(&pids, RECALL_GRACE);
            let event = Event::new("recall.finished")
                .level(Level::Notice)
                .field("grant", &id)
                .field("terminated", join(&out.terminated))
                .field("killed", join(&out.killed));
            audit.record(None, 0, &event);
        });
    }

    /// Ends every grant that is due, retries failed removals; returns ms until the next
    /// deadline (None when nothing is live).
    pub fn tick(&mut self) -> Option<i64> {
        let now = self.clock.now();
        let due: Vec<GrantRecord> = self
            .live
            .values()
            .filter(|g| {
                g.state == GrantState::Removing
                    || self.deadline_of(g).is_due(&now)
                    || started_in_future(g.starts_ms, &now)
            })
            .cloned()
            .collect();
        // Many grants ending together (a policy's whole shift at 18:00, a thousand at once)
        // share one commit instead of three each: access ends as fast as the files go. A crash
        // before the commit loses nothing that matters: each grant's deadline is durable, so the
        // next start or sweep removes it again (idempotently) and records it.
        let batch = due.len() > 1 && self.store.begin_batch().is_ok();
        for g in due {
            if g.state == GrantState::Removing {
                let end = self.store.end_state(&g.id).unwrap_or(GrantState::Revoked);
                let why = g.end_reason.clone();
                self.finish_removal(g, end, &why);
            } else if started_in_future(g.starts_ms, &now) {
                self.end(
                    g,
                    GrantState::Revoked,
                    "record dated in the future: clock or state tampered with",
                );
            } else {
                self.end(g, GrantState::Expired, "expired");
            }
        }
        if batch && let Err(e) = self.store.commit_batch() {
            self.warn(
                "grant.db_write_failed",
                &format!("ending grants together: {e}; the next start or sweep records them"),
            );
        }
        let now = self.clock.now();
        self.live
            .values()
            .map(|g| match g.state {
                // A removal that failed is retried once a second, not in a tight loop.
                GrantState::Removing => 1000,
                _ => self.deadline_of(g).remaining_ms(&now),
            })
            .min()
    }

    /// Removes every grant on the system and every jitd drop-in (package removal).
    pub fn purge(&mut self) -> usize {
        let live: Vec<GrantRecord> = self.live.values().cloned().collect();
        let count = live.len();
        for g in live {
            self.end(g, GrantState::Revoked, "jitd purged");
        }
        if let Ok(ids) = self.enforcer.owned_drop_ins() {
            for id in ids {
                let _ = self.enforcer.remove_orphan(&id);
            }
        }
        count
    }

    fn deadline_of(&self, g: &GrantRecord) -> Deadline {
        Deadline {
            wall_ms: g.expires_ms,
            boot_id: g.boot_id.clone(),
            boot_ms: g.expires_boot_ms,
        }
    }

    // ---- reads ------------------------------------------------------------------------------

    /// Whether `id` names a live grant of `uid`.
    pub fn owns_live(&self, uid: u32, id: &str) -> bool {
        GrantId::parse(id).is_ok_and(|id| self.live.get(&id).is_some_and(|g| g.uid == uid))
    }

    /// Records what polkit answered when a caller asked to act as an admin.
    pub fn audit_polkit(&self, uid: u32, method: &str, answer: &Result<bool, String>) {
        let (level, verdict) = match answer {
            Ok(true) => (Level::Notice, "yes".to_string()),
            Ok(false) => (Level::Info, "no".to_string()),
            Err(e) => (Level::Warning, format!("error: {e}")),
        };
        self.event(
            Event::new("admin.polkit")
                .level(level)
                .field("caller", uid)
                .field("method", method)
                .field("action", crate::polkit::MANAGE)
                .field("answer", verdict),
        );
    }

    /// Grants of `uid`, or of everyone for `None` (callers check admin first).
    pub fn list(&self, uid: Option<u32>, include_ended: bool) -> Result<Vec<GrantInfo>, Error> {
        if !include_ended {
            let mut out: Vec<GrantInfo> = self
                .live
                .values()
                .filter(|g| uid.is_none_or(|u| g.uid == u))
                .map(info)
                .collect();
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
        let Some(account) = crate::accounts::account_by_uid(uid) else {
            return Err(Error::NotAllowed(format!(
                "uid {uid} has no account on this host"
            )));
        };
        let who = Requester {
            uid,
            groups: self.accounts.user_groups(&account.name),
            name: account.name,
        };
        let e = self.policy.explain(&who, privilege);
        Ok(Explanation {
            privilege: e.privilege,
            decision: if e.allowed { "allow" } else { "deny" }.to_string(),
            rule: e.rule.unwrap_or_default(),
            reasons: e.reasons,
            default_secs: e.default_secs,
            max_secs: e.max_secs,
            reason_required: e.reason_required,
            reason_min_chars: e.reason_min_chars,
            ticket_pattern: e.ticket_pattern.unwrap_or_default(),
            approval: e.approval.map_or(String::new(), |m| m.to_string()),
            grants: e.grants,
        })
    }

    /// Whether `uid` is an admin without asking polkit: root or a member of `admin_group`.
    pub fn is_admin(&self, uid: u32) -> bool {
        if uid == 0 {
            return true;
        }
        crate::accounts::account_by_uid(uid).is_some_and(|a| {
            self.accounts
                .user_groups(&a.name)
                .contains(&self.cfg.admin_group)
        })
    }

    // ---- policy -----------------------------------------------------------------------------

    /// Loads the policy files named by `cfg`. Errors carry file, line and column.
    pub fn load_policy(cfg: &Config, accounts: &dyn Accounts) -> Result<Policy, String> {
        let src = PolicySource {
            file: Some(cfg.policy_file.clone()),
            dir: Some(cfg.policy_dir.clone()),
        };
        Policy::load(&src, accounts)
            .map(|l| l.policy)
            .map_err(|errors| {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
    }

    /// Re-reads the policy; on any error the policy in force stays.
    pub fn reload_policy(&mut self) -> Result<String, Error> {
        match Self::load_policy(&self.cfg, self.accounts.as_ref()) {
            Ok(policy) => {
                let summary = format!(
                    "policy loaded: {} privileges, {} rules",
                    policy.privileges().count(),
                    policy.rules().len()
                );
                self.policy = Arc::new(policy);
                self.write_gate().policy = self.policy.clone();
                self.event(Event::new("policy.loaded").field("summary", &summary));
                Ok(summary)
            }
            Err(errors) => {
                self.event(
                    Event::new("policy.rejected")
                        .level(Level::Warning)
                        .field("errors", &errors)
                        .field("action", "previous policy stays in force"),
                );
                Err(Error::InvalidArgument(format!(
                    "policy not reloaded, the previous one stays in force:\n{errors}"
                )))
            }
        }
    }

    // ---- sessions ---------------------------------------------------------------------------

    pub fn session_opened(&mut self, s: SessionInfo) -> Result<String, Error> {
        let id = crate::sys::new_grant_id()
            .map_err(|e| Error::Unavailable(e.to_string()))?
            .to_string()
            .replacen('g', "s", 1);
        self.event(
            Event::new("session.opened")
                .field("session", &id)
                .field("grant", &s.grant_id)
                .field("uid", s.uid)
                .field("pid", s.pid)
                .field("service", &s.service)
                .field("tty", &s.tty)
                .field("rhost", &s.rhost),
        );
        let now = self.clock.now();
        let row = SessionRow {
            start_ticks: recall::start_ticks(Path::new("/proc"), s.pid).unwrap_or(0),
            boot_id: now.boot_id,
            opened_ms: now.wall_ms,
            info: s,
        };
        // Kept in the database so a restart (an upgrade, a crash) still knows what runs with
        // a grant. Without it the session still works; only that memory is lost.
        if let Err(e) = self.store.insert_session(&id, &row) {
            self.warn("session.db_write_failed", &format!("{id}: {e}"));
        }
        self.sessions.insert(id.clone(), row);
        Ok(id)
    }

    pub fn session_closed(&mut self, id: &str) -> Result<(), Error> {
        let recorded = self.store.close_session(id, self.clock.now().wall_ms);
        match (self.sessions.remove(id), recorded) {
            (Some(s), recorded) => {
                if let Err(e) = recorded {
                    self.warn("session.db_write_failed", &format!("{id}: {e}"));
                }
                self.close_session(id, s, "closed");
                Ok(())
            }
            // Its grant ended while it ran: only the record is left to close.
            (None, Ok(true)) => {
                self.event(Event::new("session.closed").field("session", id));
                Ok(())
            }
            (None, _) => Err(Error::NotFound(format!("no open session {id:?}"))),
        }
    }

    /// Audits the end of a session and ends its grant if the privilege is session-bound.
    fn close_session(&mut self, id: &str, s: SessionRow, how: &str) {
        let secs = (self.clock.now().wall_ms - s.opened_ms) / 1000;
        self.event(
            Event::new("session.closed")
                .field("session", id)
                .field("grant", &s.info.grant_id)
                .field("uid", s.info.uid)
                .field("seconds", secs)
                .field("how", how),
        );
        let bound = self
            .live
            .values()
            .find(|g| g.id.as_str() == s.info.grant_id)
            .filter(|g| {
                self.policy
                    .privilege(&g.privilege)
                    .is_some_and(|p| p.session_bound)
            })
            .cloned();
        if let Some(g) = bound {
            self.end(
                g,
                GrantState::Revoked,
                &format!("session {id} {how} (session-bound privilege)"),
            );
        }
    }

    /// Whether the session's process is the one pam_jit reported: same boot, same pid, same
    /// start time. A pid alone may have been given to an unrelated process since.
    fn still_running(&self, s: &SessionRow) -> bool {
        s.info.pid > 1
            && s.start_ticks != 0
            && s.boot_id == self.clock.now().boot_id
            && recall::start_ticks(Path::new("/proc"), s.info.pid) == Some(s.start_ticks)
    }

    /// At start-up, before grants are reconciled: sessions recorded as open whose process still
    /// runs are watched again, so the grants that end now can recall them. Returns those whose
    /// process is gone: they closed while jitd could not hear it (pam_jit's close never fails
    /// the session), to be closed by [`Engine::finish_sessions`].
    fn load_sessions(&mut self) -> Vec<(String, SessionRow)> {
        let open = match self.store.open_sessions() {
            Ok(open) => open,
            Err(e) => {
                self.warn("reconcile.sessions_failed", &e.to_string());
                return Vec::new();
            }
        };
        let mut gone = Vec::new();
        for (id, s) in open {
            if self.still_running(&s) {
                self.sessions.insert(id, s);
            } else {
                gone.push((id, s));
            }
        }
        gone
    }

    /// At start-up, after grants are reconciled: sessions that ended while jitd was down are
    /// closed (ending a session-bound grant); sessions still running whose grant ended while
    /// jitd was down (by the sweep) are recalled now if the privilege says so.
    fn finish_sessions(&mut self, gone: Vec<(String, SessionRow)>) {
        let now = self.clock.now().wall_ms;
        for (id, s) in gone {
            if let Err(e) = self.store.close_session(&id, now) {
                self.warn("session.db_write_failed", &format!("{id}: {e}"));
            }
            self.close_session(&id, s, "ended while jitd was down");
        }
        let orphaned: Vec<String> = self
            .sessions
            .values()
            .map(|s| s.info.grant_id.clone())
            .filter(|grant| !self.live.keys().any(|g| g.as_str() == grant))
            .collect();
        for grant in orphaned {
            if let Ok(id) = GrantId::parse(&grant)
                && let Ok(Some(g)) = self.store.get(&id)
            {
                self.recall(&g);
            }
            self.sessions.retain(|_, s| s.info.grant_id != grant);
        }
    }

    // ---- helpers ----------------------------------------------------------------------------

    fn index(&self, g: &GrantRecord) {
        let services = self
            .policy
            .privilege(&g.privilege)
            .map(|p| p.pam_services.clone())
            // A grant whose privilege left the policy keeps what sudo grants always cover.
            .unwrap_or_else(|| {
                if g.kind() == GrantKind::Sudo {
                    vec!["sudo".into(), "sudo-i".into()]
                } else {
                    vec![]
                }
            });
        let entry = GateEntry {
            id: g.id.clone(),
            privilege: g.privilege.clone(),
            services,
            deadline: self.deadline_of(g),
        };
        self.write_gate()
            .by_uid
            .entry(g.uid)
            .or_default()
            .push(entry);
    }

    fn unindex(&self, id: &GrantId) {
        let mut gate = self.write_gate();
        for entries in gate.by_uid.values_mut() {
            entries.retain(|e| &e.id != id);
        }
        gate.by_uid.retain(|_, v| !v.is_empty());
    }

    fn write_gate(&self) -> std::sync::RwLockWriteGuard<'_, GateIndex> {
        self.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    fn warn(&self, kind: &'static str, message: &str) {
        self.event(
            Event::new(kind)
                .level(Level::Warning)
                .field("error", message),
        );
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
}

/// Reasons and tickets: bounded, and free of anything that could break a log line or a
/// terminal (control characters, bidi overrides, zero-width characters).
pub fn check_text(what: &str, text: &str, max_chars: usize) -> Result<(), String> {
    let n = text.chars().count();
    if n > max_chars {
        return Err(format!(
            "{what} is {n} characters long; at most {max_chars} are allowed"
        ));
    }
    let hostile = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if let Some(c) = text.chars().find(|&c| hostile(c)) {
        return Err(format!(
            "{what} contains the control character U+{:04X}; use plain text on one line",
            u32::from(c)
        ));
    }
    Ok(())
}

/// The wire form of a stored grant.
pub fn info(g: &GrantRecord) -> GrantInfo {
    GrantInfo {
        id: g.id.to_string(),
        uid: g.uid,
        user: g.user.clone(),
        privilege: g.privilege.clone(),
        kind: g.kind().as_str().to_string(),
        state: g.state.as_str().to_string(),
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

/// Crash points for the test suites, compiled into debug builds only (packages are release
/// builds): `JITD_FAILPOINT=<name>` makes the process exit abruptly there, as a `kill -9`
/// would, so recovery can be tested at every step of apply and remove.
#[cfg(debug_assertions)]
fn failpoint(name: &str) {
    if std::env::var("JITD_FAILPOINT").is_ok_and(|v| v == name) {
        // SAFETY: _exit ends the process at once without running destructors, which is exactly
        // the crash being simulated; it has no memory-safety preconditions.
        unsafe { libc::_exit(137) };
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use super::*;
    use crate::clock::FakeClock;
    use crate::effects::GrantError;

    const T0: i64 = 1_800_000_000_000;

    /// Records what is "on the system"; can be told to fail.
    #[derive(Default)]
    struct FakeSystem {
        on: Mutex<HashSet<String>>,
        fail_apply: Mutex<bool>,
        fail_remove: Mutex<bool>,
        orphans: Mutex<Vec<GrantId>>,
    }

    struct FakeEnforcer(Arc<FakeSystem>);

    fn boom() -> GrantError {
        GrantError::Verify {
            what: "injected failure".into(),
        }
    }

    impl Enforcer for FakeEnforcer {
        fn apply(&self, g: &GrantRecord) -> Result<(), GrantError> {
            if *self.0.fail_apply.lock().unwrap() {
                return Err(boom());
            }
            self.0.on.lock().unwrap().insert(g.id.to_string());
            Ok(())
        }
        fn remove(&self, g: &GrantRecord) -> Result<(), GrantError> {
            if *self.0.fail_remove.lock().unwrap() {
                return Err(boom());
            }
            self.0.on.lock().unwrap().remove(g.id.as_str());
            Ok(())
        }
        fn presence(&self, g: &GrantRecord) -> Result<Presence, GrantError> {
            Ok(if self.0.on.lock().unwrap().contains(g.id.as_str()) {
                Presence::Intact
            } else {
                Presence::Missing
            })
        }
        fn owned_drop_ins(&self) -> Result<Vec<GrantId>, GrantError> {
            let mut ids: Vec<GrantId> = self
                .0
                .on
                .lock()
                .unwrap()
                .iter()
                .map(|s| GrantId::parse(s).unwrap())
                .collect();
            ids.extend(self.0.orphans.lock().unwrap().iter().cloned());
            Ok(ids)
        }
        fn remove_orphan(&self, id: &GrantId) -> Result<(), GrantError> {
            self.0.orphans.lock().unwrap().retain(|o| o != id);
            self.0.on.lock().unwrap().remove(id.as_str());
            Ok(())
        }
        fn foreign_lookalikes(&self) -> Result<Vec<PathBuf>, GrantError> {
            Ok(vec![])
        }
        fn remove_stale_temp(&self) -> Result<usize, GrantError> {
            Ok(0)
        }
    }

    struct RootOnly;

    impl Accounts for RootOnly {
        fn user_uid(&self, name: &str) -> Option<u32> {
            (name == "root").then_some(0)
        }
        fn group_gid(&self, name: &str) -> Option<u32> {
            (name == "root").then_some(0)
        }
        fn user_groups(&self, _name: &str) -> Vec<String> {
            vec!["root".into()]
        }
        fn path_exists(&self, _p: &Path) -> bool {
            true
        }
    }

    const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[privilege.logs]
kind = "sudo"
commands = ["/usr/bin/journalctl"]

[privilege.disk]
kind = "sudo"
commands = ["/usr/bin/df"]

[[rule]]
name = "admins"
users = ["root"]
privileges = ["whoami", "logs", "disk"]
max_duration = "1h"
reason_required = false
max_active = 2
"#;

    struct World {
        engine: Engine,
        clock: Arc<FakeClock>,
        system: Arc<FakeSystem>,
        dir: PathBuf,
    }

    fn world_in(dir: PathBuf, system: Arc<FakeSystem>, clock: Arc<FakeClock>) -> World {
        let cfg = Config {
            state_dir: dir.clone(),
            hostname: "test".into(),
            ..Config::default()
        };
        let policy = Policy::parse_str(Path::new("policy.toml"), POLICY, &RootOnly)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .policy;
        let engine = Engine::open(Parts {
            cfg,
            clock: clock.clone(),
            audit: Arc::new(Audit::new(false)),
            enforcer: Box::new(FakeEnforcer(system.clone())),
            accounts: Box::new(RootOnly),
            flavor: SudoFlavor::Classic {
                version: "1.9.13".into(),
                notafter: true,
            },
            policy,
        })
        .unwrap();
        World {
            engine,
            clock,
            system,
            dir,
        }
    }

    fn world() -> World {
        let dir = std::env::temp_dir().join(format!(
            "jitd-engine-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        world_in(dir, Arc::default(), Arc::new(FakeClock::new(T0)))
    }

    impl World {
        fn grant(&mut self, privilege: &str, secs: u64) -> GrantId {
            let out = self
                .engine
                .request(0, privilege, secs, "", "", Via::Bus)
                .unwrap();
            GrantId::parse(&out.grant.id).unwrap()
        }
        fn on(&self, id: &GrantId) -> bool {
            self.system.on.lock().unwrap().contains(id.as_str())
        }
        fn state(&self, id: &GrantId) -> GrantState {
            self.engine.store.get(id).unwrap().unwrap().state
        }
        fn gate_allows(&self, service: &str) -> bool {
            self.engine
                .gate
                .read()
                .unwrap()
                .check(0, service, &self.clock.now())
                .allowed
        }
        /// A new engine over the same database and system, as after a restart.
        fn restart(self) -> World {
            world_in(self.dir, self.system, self.clock)
        }
    }

    #[test]
    fn a_grant_is_recorded_applied_and_visible_to_the_gate() {
        let mut w = world();
        let id = w.grant("whoami", 600);
        assert!(w.on(&id));
        assert_eq!(w.state(&id), GrantState::Active);
        assert!(w.gate_allows("sudo"));
        assert!(!w.gate_allows("su"), "only the privilege's PAM services");
    }

    #[test]
    fn an_expired_grant_is_removed_by_the_tick_at_its_deadline() {
        let mut w = world();
        let id = w.grant("whoami", 60);
        assert_eq!(w.engine.tick(), Some(60_000));
        w.clock.advance_ms(59_999);
        assert_eq!(w.engine.tick(), Some(1));
        assert!(w.on(&id));
        w.clock.advance_ms(1);
        assert_eq!(w.engine.tick(), None);
        assert!(!w.on(&id));
        assert_eq!(w.state(&id), GrantState::Expired);
        assert!(!w.gate_allows("sudo"));
    }

    #[test]
    fn setting_the_wall_clock_back_does_not_extend_a_grant() {
        let mut w = world();
        let id = w.grant("whoami", 60);
        // Back by less than the tampering tolerance, so only the boot-time deadline can end it.
        w.clock.set_wall_ms(T0 - 240_000);
        w.clock.advance_ms(59_999);
        w.engine.tick();
        assert!(w.on(&id));
        w.clock.advance_ms(1);
        w.engine.tick();
        assert!(!w.on(&id), "boot-time deadline ended it");
        assert_eq!(w.state(&id), GrantState::Expired);
    }

    #[test]
    fn setting_the_wall_clock_forward_ends_grants_early() {
        let mut w = world();
        let id = w.grant("whoami", 3600);
        w.clock.set_wall_ms(T0 + 86_400_000);
        w.engine.tick();
        assert!(!w.on(&id));
    }

    #[test]
    fn the_gate_refuses_a_due_grant_even_before_the_tick_removes_it() {
        let mut w = world();
        w.grant("whoami", 60);
        w.clock.advance_ms(60_000);
        assert!(!w.gate_allows("sudo"));
    }

    #[test]
    fn a_failed_apply_is_rolled_back_and_recorded_as_failed() {
        let mut w = world();
        *w.system.fail_apply.lock().unwrap() = true;
        let err = w
            .engine
            .request(0, "whoami", 60, "", "", Via::Bus)
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(w.system.on.lock().unwrap().is_empty());
        let rows = w.engine.store.list(None, true, 10).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, GrantState::Failed);
        assert!(!w.gate_allows("sudo"));
    }

    #[test]
    fn a_failed_removal_is_retried_and_the_gate_refuses_meanwhile() {
        let mut w = world();
        let id = w.grant("whoami", 60);
        *w.system.fail_remove.lock().unwrap() = true;
        w.clock.advance_ms(60_000);
        w.engine.tick();
        assert!(w.on(&id), "still on the system");
        assert_eq!(w.state(&id), GrantState::Removing);
        assert!(!w.gate_allows("sudo"), "but no longer honoured by the gate");
        *w.system.fail_remove.lock().unwrap() = false;
        w.engine.tick();
        assert!(!w.on(&id));
        assert_eq!(w.state(&id), GrantState::Expired);
    }

    #[test]
    fn limits_refuse_a_second_grant_of_the_same_privilege_and_beyond_max_active() {
        let mut w = world();
        w.grant("whoami", 60);
        let again = w
            .engine
            .request(0, "whoami", 60, "", "", Via::Bus)
            .unwrap_err();
        assert!(matches!(again, Error::PolicyDenied(_)), "{again:?}");
        w.grant("logs", 60);
        let third = w
            .engine
            .request(0, "disk", 60, "", "", Via::Bus)
            .unwrap_err();
        assert!(
            matches!(third, Error::PolicyDenied(_)),
            "max_active = 2: {third:?}"
        );
    }

    #[test]
    fn hostile_reasons_are_refused_before_the_policy_is_asked() {
        let mut w = world();
        for reason in ["a\nb", "\u{1b}[2J", "x\u{202e}y", &"r".repeat(2000)] {
            let e = w
                .engine
                .request(0, "whoami", 60, reason, "", Via::Bus)
                .unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{reason:?}: {e:?}");
        }
        assert!(w.system.on.lock().unwrap().is_empty());
    }

    #[test]
    fn an_owner_drops_and_only_admins_revoke_others() {
        let mut w = world();
        let id = w.grant("whoami", 600);
        let e = w
            .engine
            .revoke(4242, false, id.as_str(), "", false)
            .unwrap_err();
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        assert!(w.on(&id));
        let ended = w.engine.revoke(0, true, id.as_str(), "", false).unwrap();
        assert_eq!(ended.state, "dropped");
        assert!(!w.on(&id));
        let e = w
            .engine
            .revoke(0, true, "g../../etc", "", false)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    }

    #[test]
    fn restart_reconciles_every_interrupted_state() {
        let mut w = world();
        let live = w.grant("whoami", 3600);
        let expiring = w.grant("logs", 60);
        // A crash between intent and apply: the row says applying, the system has it.
        let mut half = w.engine.store.get(&live).unwrap().unwrap();
        half.id = GrantId::from_random(0xabc);
        half.state = GrantState::Applying;
        w.engine.store.insert(&half).unwrap();
        w.system.on.lock().unwrap().insert(half.id.to_string());
        // A live grant deleted behind jitd's back, and an orphan drop-in the DB never knew.
        w.system.on.lock().unwrap().remove(live.as_str());
        w.system
            .orphans
            .lock()
            .unwrap()
            .push(GrantId::from_random(0xdef));
        w.clock.advance_ms(61_000);

        let mut w = w.restart();
        w.engine.reconcile().unwrap();
        assert!(w.on(&live), "live grant re-applied");
        assert_eq!(w.state(&live), GrantState::Active);
        assert!(!w.on(&expiring));
        assert_eq!(w.state(&expiring), GrantState::Expired);
        assert!(!w.on(&half.id), "interrupted apply undone");
        assert_eq!(w.state(&half.id), GrantState::Failed);
        assert!(
            w.system.orphans.lock().unwrap().is_empty(),
            "orphan removed"
        );
        assert!(w.gate_allows("sudo"));
    }

    #[test]
    fn a_record_dated_in_the_future_is_revoked() {
        let mut w = world();
        let id = w.grant("whoami", 3600);
        w.clock.set_wall_ms(T0 - 3_600_000);
        w.engine.tick();
        assert!(!w.on(&id));
        assert_eq!(w.state(&id), GrantState::Revoked);
    }
}
