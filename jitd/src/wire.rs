//! Wire types of the bus API and the gate socket (the `client` feature adds their D-Bus
//! signatures). Times are milliseconds since the Unix epoch (UTC); 0 means "not
//! set". Strings are UTF-8; "" means "none".

use crate::terms::{
    ApprovalMode, GrantKind, GrantState, RequestState, RequestStatus, Verdict, Vote,
};
use serde::{Deserialize, Serialize};

/// One grant, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct GrantInfo {
    /// Grant id, e.g. `g3f9a0c12d4e5`.
    pub id: String,
    /// Numeric uid the grant is bound to.
    pub uid: u32,
    /// The user name at the time of the request (display only; enforcement uses `uid`).
    pub user: String,
    /// Privilege name from the policy.
    pub privilege: String,
    pub kind: GrantKind,
    pub state: GrantState,
    /// The policy rule that allowed it.
    pub rule: String,
    /// What the grant gives, in words: "as root: /usr/bin/systemctl restart nginx" or
    /// "member of docker".
    pub grants: String,
    pub reason: String,
    pub ticket: String,
    pub requested_ms: i64,
    pub starts_ms: i64,
    pub expires_ms: i64,
    /// When it ended (0 while live).
    pub ended_ms: i64,
    /// Why it ended: `expired`, `revoked by root: ...`, `dropped by owner`, ...
    pub end_reason: String,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct RequestOutcome {
    /// What became of the request (`active`: the grant is in force on return).
    pub status: RequestStatus,
    /// A one-line summary for a human.
    pub message: String,
    /// Set when a grant exists.
    pub grant: GrantInfo,
    /// True when the requested duration was above the rule's maximum and was cut to it.
    pub clamped: bool,
    /// The request waiting for approval (`pending`; "" otherwise), e.g. `r3f9a0c12d4e5`.
    pub request_id: String,
    /// When a pending request expires undecided (0 when not pending).
    pub request_expires_ms: i64,
}

/// A request that waits (or waited) for approval, as requesters and approvers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct RequestInfo {
    pub id: String,
    pub uid: u32,
    pub user: String,
    /// The host it was made on (every request is local; the name is for the approver's eyes).
    pub host: String,
    pub privilege: String,
    /// Exactly what it gives: "as root: /usr/bin/systemctl restart nginx".
    pub grants: String,
    pub rule: String,
    pub duration_secs: u64,
    pub reason: String,
    pub ticket: String,
    pub state: RequestState,
    pub requested_ms: i64,
    pub expires_ms: i64,
    /// The live grant it extends ("" for a new grant).
    pub extends: String,
    /// Approvals that count now, and how many the rule needs.
    pub approvals: u32,
    pub approvals_needed: u32,
    pub votes: Vec<VoteInfo>,
    pub decided_ms: i64,
    pub decided_by: String,
    /// Why it ended as it did ("" while pending).
    pub note: String,
    /// The grant it made or extended ("" when none).
    pub grant_id: String,
    /// The requester's recent grants (approvers' listing only).
    pub history: Vec<GrantInfo>,
}

/// A break-glass grant and its review, as approvers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct ReviewInfo {
    pub grant_id: String,
    pub uid: u32,
    pub user: String,
    pub host: String,
    pub privilege: String,
    pub rule: String,
    pub reason: String,
    pub granted_ms: i64,
    /// When an approver must have reviewed it.
    pub review_by_ms: i64,
    /// 0 while unreviewed.
    pub reviewed_ms: i64,
    pub reviewer: String,
    /// `drill`, `emergency`, `misuse`, or "" while unreviewed.
    pub outcome: String,
    pub comment: String,
}

/// One approver's vote on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct VoteInfo {
    pub user: String,
    pub vote: Vote,
    pub comment: String,
    /// 0: as requested.
    pub shorten_to_secs: u64,
    pub at_ms: i64,
    /// Whether it counts now (the voter is still an approver and not the requester).
    pub counts: bool,
}

/// What the policy would decide for the caller and one privilege.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct Explanation {
    pub privilege: String,
    pub decision: Verdict,
    /// The first rule that matches the caller and the privilege ("" when none).
    pub rule: String,
    /// One line per consideration, in the order they were checked.
    pub reasons: Vec<String>,
    pub default_secs: u64,
    pub max_secs: u64,
    pub reason_required: bool,
    pub reason_min_chars: u32,
    /// Ticket pattern the request must match ("" = no ticket required).
    pub ticket_pattern: String,
    /// How the matching rule approves; none when no rule matches.
    pub approval: RuleApproval,
    /// What the privilege gives, in words.
    pub grants: String,
}

/// The Gate's answer for one PAM check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct GateDecision {
    pub allowed: bool,
    /// The grant that allows it ("" when refused).
    pub grant_id: String,
    pub privilege: String,
    pub expires_ms: i64,
    /// For the user's terminal when refused: what to run to get access.
    pub message: String,
}

/// An elevated session as pam_jit reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct SessionInfo {
    pub grant_id: String,
    pub uid: u32,
    pub pid: u32,
    pub service: String,
    pub tty: String,
    pub rhost: String,
}

/// A privilege the caller may request, as `jitctl privileges` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct PrivilegeInfo {
    pub name: String,
    pub description: String,
    pub kind: GrantKind,
    /// What it gives, in words: "as root: /usr/bin/systemctl restart nginx", "member of group
    /// docker", "pam_jit opens sudo".
    pub grants: String,
    /// The rule that lets the caller request it.
    pub rule: String,
    pub default_secs: u64,
    pub max_secs: u64,
    pub reason_required: bool,
    pub reason_min_chars: u32,
    /// Ticket pattern the request must match ("" = none needed).
    pub ticket_pattern: String,
    pub approval: RuleApproval,
    /// Whether it may be requested at the sudo prompt (pam_jit `interactive`).
    pub interactive: bool,
    /// The caller's live grant of it ("" when none), and when that ends.
    pub held_grant: String,
    pub held_until_ms: i64,
}

/// The result of walking the audit hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "client", derive(zbus::Type))]
pub struct ChainCheck {
    /// Whether every record is linked and unaltered.
    pub intact: bool,
    /// Records found intact (before the break, when there is one).
    pub records: u64,
    /// Sequence numbers of the first and last intact record (0 when there are none).
    pub first_seq: i64,
    pub last_seq: i64,
    /// Sequence number of the first broken link (0 when intact).
    pub broken_seq: i64,
    /// One line for a human: what was found.
    pub summary: String,
}

/// How a rule approves, or nothing when no rule matches: the mode's name on the wire, "" for
/// none (a D-Bus string; the bus has no optional values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "client", derive(zbus::Type), zbus(signature = "s"))]
pub struct RuleApproval(pub Option<ApprovalMode>);

impl Serialize for RuleApproval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.map_or("", ApprovalMode::as_str))
    }
}

impl<'de> Deserialize<'de> for RuleApproval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(Self(None));
        }
        ApprovalMode::parse(&text)
            .map(|m| Self(Some(m)))
            .ok_or_else(|| serde::de::Error::custom(format!("unknown approval mode {text:?}")))
    }
}
