//! The policy: admin-defined privileges and the rules that say who may request them, for how
//! long and on what conditions. Default deny: no rule, no grant.
//!
//! Files: one optional `policy.toml` plus every `*.toml` in `policy.d/` (name order; names
//! starting with `.` skipped), read together as one policy. The schema is strict: unknown keys,
//! wrong types, duplicate keys, dangling references and unsafe values are errors, each reported
//! with file, line and column, all of them at once. Loading is all-or-nothing: a policy with
//! any error is not used.
//!
//! Everything the system is asked during loading (users, groups, paths) goes through
//! [`Accounts`], so tests run without real accounts.

#![forbid(unsafe_code)]

mod decide;
pub mod escalation;
mod load;
mod quorum;
pub mod routes;
pub mod trust;
pub mod window;

use std::fmt;
use std::path::PathBuf;

use regex::Regex;

use crate::names::{GroupName, PrivilegeName, SudoCommand, UserName};
use crate::terms::ApprovalMode;

pub use crate::accounts::SystemAccounts;
pub use decide::{Decision, Facts, Held, decide};
pub use load::Checked;
pub use quorum::{BREAKGLASS_MAX_SECS, Breakglass, Quorum, SamePerson};
pub use trust::OnUntrusted;

/// The questions loading and deciding ask of the system.
pub trait Accounts {
    fn user_uid(&self, name: &str) -> Option<u32>;
    /// The name of the account `uid`, if it has one.
    fn user_name(&self, uid: u32) -> Option<String>;
    fn group_gid(&self, name: &str) -> Option<u32>;
    /// Names of every group `name` belongs to, primary and supplementary.
    fn user_groups(&self, name: &str) -> Vec<String>;
    fn path_exists(&self, path: &std::path::Path) -> bool;
    /// The members of group `name` the group database lists (supplementary members), or
    /// `None` when that cannot be told (the policy then cannot count a rule's approvers).
    fn group_members(&self, _name: &str) -> Option<Vec<String>> {
        None
    }
}

/// `admin_group` when jitd.toml names none.
pub const DEFAULT_ADMIN_GROUP: &str = "jitd-admins";

/// Where the policy comes from, and what it is judged against.
#[derive(Debug, Clone)]
pub struct PolicySource {
    pub file: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    /// jitd's `admin_group`: as good as root over jitd, so a group privilege may name it only
    /// with `allow_sensitive_group = true`.
    pub admin_group: String,
    /// What a file or directory that root does not own, or others may write, is.
    pub untrusted: OnUntrusted,
}

/// The `admin_group` a jitd.toml text names, or the default: for checking a policy without the
/// daemon (a malformed file is the daemon's to report).
pub fn admin_group_in(config_text: &str) -> String {
    toml::from_str::<toml::Table>(config_text)
        .ok()
        .and_then(|t| t.get("admin_group")?.as_str().map(str::to_string))
        .unwrap_or_else(|| DEFAULT_ADMIN_GROUP.to_string())
}

impl Default for PolicySource {
    fn default() -> Self {
        Self {
            file: None,
            dir: None,
            admin_group: DEFAULT_ADMIN_GROUP.to_string(),
            untrusted: OnUntrusted::Refuse,
        }
    }
}

/// One problem in a policy file, at a position an editor can jump to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// A policy that loaded, with what deserves a look.
#[derive(Debug)]
pub struct Loaded {
    pub policy: Policy,
    pub warnings: Vec<Diagnostic>,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnEnd {
    /// Processes started during the grant keep running (and are reported).
    Keep,
    /// Processes still holding the privilege are ended at the grant's end.
    Terminate,
}

/// What jitd records of the commands run under a grant of the privilege (sudo grants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Record {
    /// sudo's own event log for the grant's user: every command accepted or refused, and
    /// its exit status, in the command ledger.
    #[default]
    Commands,
    /// Commands, and sudo's own I/O log of what they printed (`log_output`), for
    /// `sudoreplay`.
    Io,
    /// Nothing beyond the grant's own records.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivilegeKind {
    Sudo {
        run_as: UserName,
        run_as_uid: u32,
        commands: Vec<SudoCommand>,
        password_each_time: bool,
    },
    Group {
        group: GroupName,
        gid: u32,
    },
    /// Static eligibility: the admin's own sudoers (or other) rule names what may be run, and
    /// the grant only opens pam_jit's gate: for `commands` (routed to the privilege's own PAM
    /// service, see [`routes`]) and for the privilege's other PAM services. jitd writes no
    /// grant to the system for it.
    Gate {
        commands: Vec<SudoCommand>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privilege {
    pub name: PrivilegeName,
    pub description: String,
    pub kind: PrivilegeKind,
    /// PAM services a live grant opens through pam_jit.
    pub pam_services: Vec<String>,
    pub on_end: OnEnd,
    /// The grant ends when the first elevated session recorded under it closes.
    pub session_bound: bool,
    pub record: Record,
}

impl Privilege {
    /// What the privilege gives, in words.
    pub fn describe(&self) -> String {
        match &self.kind {
            PrivilegeKind::Sudo {
                run_as, commands, ..
            } => {
                let list: Vec<String> = commands.iter().map(ToString::to_string).collect();
                format!("as {run_as}: {}", list.join(", "))
            }
            PrivilegeKind::Group { group, .. } => format!("member of group {group}"),
            PrivilegeKind::Gate { commands } if commands.is_empty() => {
                format!("pam_jit opens {}", self.pam_services.join(", "))
            }
            PrivilegeKind::Gate { commands } => {
                let list: Vec<String> = commands.iter().map(ToString::to_string).collect();
                let others: Vec<&String> = self
                    .pam_services
                    .iter()
                    .filter(|s| !s.starts_with(routes::SERVICE_PREFIX))
                    .collect();
                let mut text = format!("pam_jit opens the sudoers rule for: {}", list.join(", "));
                if !others.is_empty() {
                    let others: Vec<&str> = others.iter().map(|s| s.as_str()).collect();
                    text.push_str(&format!("; and {}", others.join(", ")));
                }
                text
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverMax {
    Refuse,
    Clamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Granted at once when every condition holds.
    Auto,
    /// Granted when the rule's [`Quorum`] says yes.
    Quorum,
}

impl Approval {
    /// The mode's name on the wire (a rule's approval may carry more, such as who approves).
    pub fn mode(self) -> ApprovalMode {
        match self {
            Self::Auto => ApprovalMode::Auto,
            Self::Quorum => ApprovalMode::Quorum,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub users: Vec<UserName>,
    pub groups: Vec<GroupName>,
    pub privileges: Vec<PrivilegeName>,
    pub default_secs: u64,
    pub max_secs: u64,
    pub over_max: OverMax,
    pub reason_required: bool,
    pub reason_min_chars: u32,
    /// Anchored: the whole ticket must match.
    pub ticket_pattern: Option<Regex>,
    /// The pattern as the admin wrote it.
    pub ticket_pattern_text: Option<String>,
    pub approval: Approval,
    /// Live grants of each privilege per user (a privilege is held once at a time).
    /// Who approves and how many must: set exactly when `approval` is `Quorum`.
    pub quorum: Option<Quorum>,
    /// `breakglass = true`: granted at once, rate-limited, reviewed afterwards.
    pub breakglass: Option<Breakglass>,
    pub max_active: u32,
    /// Live grants per user under the rule, all its privileges together (`None`: no budget
    /// beyond each privilege's).
    pub max_active_rule: Option<u32>,
    /// Whether pam_jit may submit requests under this rule from the sudo/su prompt.
    pub interactive: bool,
    /// The requester proves presence through polkit (`org.jitd.Jitd1.elevate`, the host's
    /// own PAM stack) before each request is considered.
    pub reauth: bool,
    /// `mfa = "ssh-sk"`: each request carries a fresh proof, a signature by the requester's
    /// own key (users.allowed_signers) over a nonce of jitd's.
    pub mfa: bool,
    /// Who else hears of a request nobody decided in time (`escalate_after`, `escalate_to`).
    pub escalation: Option<escalation::Escalation>,
    /// A program `jitd-notify` runs for each pending request; its answer is one vote.
    pub hook: Option<String>,
    /// `approval = "hook"`: the notifier's account is an approver without being named
    /// (added by [`Policy::hook_votes_as`], which knows the account).
    pub hook_votes: bool,
}

impl Rule {
    fn matches(&self, who: &Requester) -> bool {
        self.users.iter().any(|u| u.as_str() == who.name)
            || self
                .groups
                .iter()
                .any(|g| who.groups.iter().any(|h| h == g.as_str()))
    }

    fn covers(&self, privilege: &str) -> bool {
        self.privileges.iter().any(|p| p.as_str() == privilege)
    }
}

/// The caller, as the daemon resolved it from bus credentials.
#[derive(Debug, Clone)]
pub struct Requester {
    pub uid: u32,
    pub name: String,
    pub groups: Vec<String>,
}

/// What the policy would decide, and why, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub privilege: String,
    /// Whether some rule lets the requester ask (conditions on the request itself, such as the
    /// reason, still apply).
    pub allowed: bool,
    pub rule: Option<String>,
    pub reasons: Vec<String>,
    pub default_secs: u64,
    pub max_secs: u64,
    pub reason_required: bool,
    pub reason_min_chars: u32,
    pub ticket_pattern: Option<String>,
    /// How the matching rule approves (`None` when no rule matches).
    pub approval: Option<ApprovalMode>,
    pub grants: String,
}

#[derive(Debug, Default)]
pub struct Policy {
    privileges: Vec<Privilege>,
    rules: Vec<Rule>,
    /// The PAM service sudo runs each privilege's commands under.
    routes: Vec<routes::Route>,
    /// Accounts of one person (`same_person`): none approves a request of another.
    same_person: SamePerson,
}

impl Policy {
    /// Makes `account` (jitd's `notifier_user`, whose bus identity casts the hook's answer)
    /// an approver of every `approval = "hook"` rule.
    pub fn hook_votes_as(&mut self, account: &str) {
        let Ok(user) = UserName::parse(account) else {
            return;
        };
        for r in self.rules.iter_mut().filter(|r| r.hook_votes) {
            if let Some(q) = r.quorum.as_mut()
                && !q.users.contains(&user)
            {
                q.users.insert(0, user.clone());
            }
        }
    }

    /// Nothing allowed.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn load(src: &PolicySource, accounts: &dyn Accounts) -> Result<Loaded, Vec<Diagnostic>> {
        load::load(src, accounts)
    }

    /// Every error and warning of the policy at `src`, whether or not it loads
    /// (`jitctl policy check`).
    pub fn check(src: &PolicySource, accounts: &dyn Accounts) -> Checked {
        load::check(src, accounts)
    }

    /// One file's text (tests, fuzzing).
    pub fn parse_str(
        file: &std::path::Path,
        text: &str,
        accounts: &dyn Accounts,
    ) -> Result<Loaded, Vec<Diagnostic>> {
        Self::check_str(file, text, accounts).into_result()
    }

    /// One file's text, every finding.
    pub fn check_str(file: &std::path::Path, text: &str, accounts: &dyn Accounts) -> Checked {
        load::from_texts(
            &[(file.to_path_buf(), text.to_string())],
            accounts,
            Vec::new(),
            DEFAULT_ADMIN_GROUP,
        )
    }

    /// Several files' texts taken as one policy, every finding (`jitctl suggest --apply` checks
    /// the policy it is about to write before writing it).
    pub fn check_texts(texts: &[(std::path::PathBuf, String)], accounts: &dyn Accounts) -> Checked {
        load::from_texts(texts, accounts, Vec::new(), DEFAULT_ADMIN_GROUP)
    }

    pub fn privilege(&self, name: &str) -> Option<&Privilege> {
        self.privileges.iter().find(|p| p.name.as_str() == name)
    }

    pub fn privileges(&self) -> impl Iterator<Item = &Privilege> {
        self.privileges.iter()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Where sudo sends each privilege's commands (see [`routes`]).
    pub fn routes(&self) -> &[routes::Route] {
        &self.routes
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    pub fn same_person(&self) -> &SamePerson {
        &self.same_person
    }

    /// The rule that decides `who`'s request for `privilege` now, if any.
    pub fn rule_for(&self, who: &Requester, privilege: &str) -> Option<&Rule> {
        self.first_rule(who, privilege)
    }

    fn first_rule(&self, who: &Requester, privilege: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.covers(privilege) && r.matches(who))
    }

    /// What [`decide`] would consider for `who` and `privilege`, without a
    /// request: the matching rule and its conditions.
    pub fn explain(&self, who: &Requester, privilege: &str) -> Explanation {
        let mut e = Explanation {
            privilege: privilege.to_string(),
            allowed: false,
            rule: None,
            reasons: Vec::new(),
            default_secs: 0,
            max_secs: 0,
            reason_required: false,
            reason_min_chars: 0,
            ticket_pattern: None,
            approval: None,
            grants: String::new(),
        };
        let Some(p) = self.privilege(privilege) else {
            // Not the list of every privilege: that is the policy's shape, and whoever asks may
            // be eligible for none of it (`jitctl privileges` shows each user their own).
            e.reasons.push(format!(
                "no privilege named {privilege}; `jitctl privileges` lists what you may request"
            ));
            return e;
        };
        e.grants = p.describe();
        e.reasons.push(format!("{privilege} gives: {}", e.grants));
        let covering: Vec<&Rule> = self.rules.iter().filter(|r| r.covers(privilege)).collect();
        if covering.is_empty() {
            e.reasons
                .push(format!("no rule covers {privilege}: nobody may request it"));
            return e;
        }
        let Some(rule) = covering.iter().find(|r| r.matches(who)) else {
            e.reasons.push(format!(
                "rules covering {privilege} ({}) do not include {} or any of their groups ({})",
                covering
                    .iter()
                    .map(|r| format!("\"{}\"", r.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                who.name,
                who.groups.join(", ")
            ));
            return e;
        };
        e.allowed = true;
        e.rule = Some(rule.name.clone());
        e.default_secs = rule.default_secs;
        e.max_secs = rule.max_secs;
        e.reason_required = rule.reason_required;
        e.reason_min_chars = rule.reason_min_chars;
        e.ticket_pattern = rule.ticket_pattern_text.clone();
        e.approval = Some(rule.approval.mode());
        let via = if rule.users.iter().any(|u| u.as_str() == who.name) {
            format!("user {}", who.name)
        } else {
            let g = rule
                .groups
                .iter()
                .find(|g| who.groups.iter().any(|h| h == g.as_str()))
                .map_or(String::new(), ToString::to_string);
            format!("membership of group {g}")
        };
        e.reasons
            .push(format!("rule \"{}\" matches you by {via}", rule.name));
        e.reasons.push(format!(
            "duration: default {}, at most {} ({} above it)",
            crate::duration::format(rule.default_secs),
            crate::duration::format(rule.max_secs),
            match rule.over_max {
                OverMax::Refuse => "refused",
                OverMax::Clamp => "cut to the maximum",
            }
        ));
        e.reasons.push(if rule.reason_required {
            format!(
                "a reason of at least {} characters is required",
                rule.reason_min_chars
            )
        } else {
            "a reason is optional".into()
        });
        if let Some(t) = &rule.ticket_pattern_text {
            e.reasons.push(format!("a ticket matching {t} is required"));
        }
        e.reasons
            .push("at most 1 live grant of each privilege at a time".to_string());
        if let Some(budget) = rule.max_active_rule {
            e.reasons.push(format!(
                "at most {budget} live grant(s) under this rule, shared by {}",
                rule.privileges
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        e.reasons.push(match (&rule.quorum, &rule.breakglass) {
            (Some(q), _) => q.describe(),
            (None, Some(b)) => format!(
                "break-glass: granted at once, at most once per {} per user, reviewed by {} within {}",
                crate::duration::format(b.every_secs),
                b.reviewers.approvers_text(),
                crate::duration::format(b.review_within_secs)
            ),
            (None, None) => "approval: automatic".into(),
        });
        e
    }
}

#[cfg(test)]
mod tests;
