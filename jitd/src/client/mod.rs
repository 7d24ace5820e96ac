//! What jitctl and pam_jit share with the daemon: the bus names, the two interfaces as proxies,
//! the wire types and the error names. The daemon owns this API; clients import it.
//!
//! Compiled with the `client` feature alone: no tokio, no SQLite. The daemon implements the
//! interfaces in `bus`; the method signatures there must match the proxies here, which the
//! end-to-end suites check by calling every method through these proxies.

#![forbid(unsafe_code)]

pub use crate::duration;

pub use crate::wire::{
    ChainCheck, Explanation, GateDecision, GrantInfo, PrivilegeInfo, RequestInfo, RequestOutcome,
    ReviewInfo, RuleApproval, SessionInfo, VoteInfo,
};

pub use crate::terms::{RequestScope, RequestState};

/// The one well-known name of the service. The `1` is the API version: an incompatible change
/// gets a new name, so old and new clients can coexist on one bus.
pub const BUS_NAME: &str = "org.jitd.Jitd1";
/// The object that carries both interfaces.
pub const OBJECT_PATH: &str = "/org/jitd/Jitd1";
/// Interface for every local user (authorised per call from the caller's bus credentials).
pub const MANAGER_INTERFACE: &str = "org.jitd.Jitd1.Manager";
/// Interface for pam_jit only (uid 0; enforced by the bus policy and in the daemon).
pub const GATE_INTERFACE: &str = "org.jitd.Jitd1.Gate";
/// Prefix of every error name the daemon returns.
pub const ERROR_PREFIX: &str = "org.jitd.Jitd1.Error";
/// The system bus socket. pam_jit uses this path unless its root-owned PAM line says otherwise;
/// it never consults the environment.
pub const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
/// The system bus address built from [`SYSTEM_BUS_SOCKET`].
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";
/// Longest reason the daemon accepts, in characters.
pub const MAX_REASON_CHARS: usize = 1024;
/// Longest ticket reference the daemon accepts, in characters.
pub const MAX_TICKET_CHARS: usize = 128;

/// The errors of the bus API. The variant names are the last element of the D-Bus error name
/// (`org.jitd.Jitd1.Error.PolicyDenied`, ...); the string is a message for a human.
#[derive(Debug, zbus::DBusError, PartialEq)]
#[zbus(prefix = "org.jitd.Jitd1.Error")]
pub enum Error {
    /// The caller may not call this method or act on this object.
    NotAllowed(String),
    /// An argument is malformed: bad duration, reason with control characters, unknown id format.
    InvalidArgument(String),
    /// The policy refuses this request; the message says which rule and why.
    PolicyDenied(String),
    /// No such grant or privilege.
    NotFound(String),
    /// The daemon cannot grant right now (state not writable, database locked, sudoers check
    /// failed); nothing was changed. Revocation is not affected.
    Unavailable(String),
    /// Transport or protocol failure.
    #[zbus(error)]
    ZBus(zbus::Error),
}

impl Error {
    /// The last element of the D-Bus error name (`PolicyDenied`, ...); `Failed` for a
    /// transport failure. (Not `name`: that is the bus error trait's full name, which the
    /// replies are sent under.)
    pub fn short_name(&self) -> &'static str {
        match self {
            Self::NotAllowed(_) => "NotAllowed",
            Self::InvalidArgument(_) => "InvalidArgument",
            Self::PolicyDenied(_) => "PolicyDenied",
            Self::NotFound(_) => "NotFound",
            Self::Unavailable(_) => "Unavailable",
            Self::ZBus(_) => "Failed",
        }
    }

    /// The message for a human.
    pub fn message(&self) -> String {
        match self {
            Self::NotAllowed(m)
            | Self::InvalidArgument(m)
            | Self::PolicyDenied(m)
            | Self::NotFound(m)
            | Self::Unavailable(m) => m.clone(),
            Self::ZBus(e) => e.to_string(),
        }
    }

    /// Whether jitd answered (a refusal with a message), as opposed to no usable answer.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::ZBus(_))
    }
}

/// Requests, listings, revocation and explanations, for any local user.
#[zbus::proxy(
    interface = "org.jitd.Jitd1.Manager",
    default_service = "org.jitd.Jitd1",
    default_path = "/org/jitd/Jitd1"
)]
pub trait Manager {
    /// Asks for `privilege` for `duration_secs` (0 = the rule's default) with a reason and an
    /// optional ticket reference ("" = none). On auto-approval the grant is active on return.
    fn request(
        &self,
        privilege: &str,
        duration_secs: u64,
        reason: &str,
        ticket: &str,
    ) -> Result<RequestOutcome, Error>;

    /// The caller's own grants; `include_ended` adds finished ones (newest first).
    fn list_mine(&self, include_ended: bool) -> Result<Vec<GrantInfo>, Error>;

    /// Every grant on the host; admins only.
    fn list_all(&self, include_ended: bool) -> Result<Vec<GrantInfo>, Error>;

    /// Ends a grant now. Admins may revoke any grant; the owner may drop their own.
    /// `terminate` (admins only) also ends the processes still holding the privilege.
    fn revoke(&self, grant_id: &str, reason: &str, terminate: bool) -> Result<GrantInfo, Error>;

    /// What the policy would decide if the caller asked for `privilege` now, and why.
    fn explain(&self, privilege: &str) -> Result<Explanation, Error>;

    /// Every privilege the caller may request, with the rule's terms and what the caller holds
    /// now (the `sudo -l` of jitd).
    fn list_privileges(&self) -> Result<Vec<PrivilegeInfo>, Error>;

    /// Re-reads the policy; admins only. On a broken policy the old one stays in force and the
    /// error carries file, line and column.
    fn reload_policy(&self) -> Result<String, Error>;

    /// Walks the audit hash chain in the state database and reports the first broken link;
    /// admins only.
    fn verify_audit(&self) -> Result<ChainCheck, Error>;

    /// Requests waiting for approval: `mine` (the caller's), `pending` (those the caller may
    /// decide, with each requester's recent grants) or `all` (admins).
    fn list_requests(&self, scope: RequestScope) -> Result<Vec<RequestInfo>, Error>;

    /// Approves a pending request as the caller (an approver of its rule, never its
    /// requester); `shorten_to_secs` (0: as requested) may only shorten it. Returns the
    /// request as it is after the vote: approved (the grant is live) or still pending.
    fn approve(
        &self,
        request_id: &str,
        comment: &str,
        shorten_to_secs: u64,
    ) -> Result<RequestInfo, Error>;

    /// Denies a pending request as the caller; the comment is required.
    fn deny(&self, request_id: &str, comment: &str) -> Result<RequestInfo, Error>;

    /// The armored blob an approver on another machine signs for a pending request (its
    /// requester, an approver of it, or an admin).
    fn request_blob(&self, request_id: &str) -> Result<String, Error>;

    /// A signed approval or denial (from `jitctl approve --sign`), cast as its signer's vote
    /// once verified. Anyone on the host may hand one in.
    fn submit_token(&self, token: &[u8]) -> Result<RequestInfo, Error>;

    /// A challenge for the caller to sign with their own SSH key (`mfa = "ssh-sk"` rules):
    /// the exact text, with a nonce of jitd's.
    fn mfa_challenge(&self) -> Result<String, Error>;

    /// The caller's signed challenge (a token of the challenge text and its SSH signature);
    /// the caller's next request under an `mfa` rule, within two minutes, uses it.
    fn prove_mfa(&self, proof: &[u8]) -> Result<(), Error>;

    /// Asks for `secs` more on the caller's live grant `grant_id`, for `reason`: within the
    /// rule's maximum total, approved like the original (active on return under an automatic
    /// rule, else a pending request). On approval the same grant's deadline moves.
    fn extend(&self, grant_id: &str, secs: u64, reason: &str) -> Result<RequestOutcome, Error>;

    /// Reviews a break-glass grant as an approver of its rule (never its holder):
    /// `outcome` is `drill`, `emergency` or `misuse`; the comment is required.
    fn review(&self, grant_id: &str, outcome: &str, comment: &str) -> Result<ReviewInfo, Error>;

    /// Break-glass grants waiting for the caller's review (of rules the caller approves for).
    fn list_reviews(&self) -> Result<Vec<ReviewInfo>, Error>;

    /// Withdraws one of the caller's own pending requests.
    fn cancel(&self, request_id: &str) -> Result<RequestInfo, Error>;

    /// A request changed (made, voted on, approved, denied, expired, cancelled, withdrawn).
    /// Every local user may listen, so it carries only the id and the state: the details are
    /// for those `ListRequests` shows them to.
    #[zbus(signal)]
    fn request_changed(&self, request_id: &str, state: RequestState) -> zbus::Result<()>;
    /// One page of history as JSON: the query is `{"all", "user", "privilege", "since_ms",
    /// "until_ms", "cursor", "limit"}` (all optional); the answer `{"entries": [...],
    /// "next_cursor": N | null}`. Others' history for admins only.
    fn history(&self, query: &str) -> Result<String, Error>;

    /// The whole story of one grant as JSON; its owner or an admin.
    fn show_grant(&self, grant_id: &str) -> Result<String, Error>;

    /// One page of the audit export (JSON lines, or CSV rows with the header on the first
    /// page), and the seq to continue after (0: done); admins only.
    fn export_audit(
        &self,
        after_seq: i64,
        since_ms: i64,
        limit: u32,
        csv: bool,
    ) -> Result<(Vec<String>, i64), Error>;
}

/// The root-only interface pam_jit calls from sudo/su.
#[zbus::proxy(
    interface = "org.jitd.Jitd1.Gate",
    default_service = "org.jitd.Jitd1",
    default_path = "/org/jitd/Jitd1"
)]
pub trait Gate {
    /// Whether `uid` holds a live grant that covers PAM service `service`. Answered from memory.
    fn check_access(
        &self,
        uid: u32,
        service: &str,
        tty: &str,
        rhost: &str,
    ) -> Result<GateDecision, Error>;

    /// An in-place request made through pam_jit's conversation, on behalf of `uid` (taken from
    /// the PAM user by the root caller). Same policy as `Manager.Request`.
    fn request_for(
        &self,
        uid: u32,
        privilege: &str,
        duration_secs: u64,
        reason: &str,
        ticket: &str,
    ) -> Result<RequestOutcome, Error>;

    /// Records an elevated session opened under `grant_id`; returns the session id.
    fn session_opened(&self, session: SessionInfo) -> Result<String, Error>;

    /// Records the end of a session previously opened.
    fn session_closed(&self, session_id: &str) -> Result<(), Error>;
}

/// Connects to the bus at `address`, or to the system bus when `None`.
pub async fn connect(address: Option<&str>) -> zbus::Result<zbus::Connection> {
    match address {
        Some(address) => zbus::connection::Builder::address(address).build().await,
        None => zbus::connection::Builder::system().build().await,
    }
}

/// Makes sure the name `org.jitd.Jitd1` is owned by a root process before anything is sent to
/// it. The shipped bus policy lets only root own it; this check keeps a client safe on a bus
/// whose policy was changed or is missing, where a user process could pose as jitd.
pub async fn verify_owner(conn: &zbus::Connection) -> Result<(), String> {
    let dbus = zbus::fdo::DBusProxy::new(conn)
        .await
        .map_err(|e| format!("cannot ask the bus who runs jitd: {e}"))?;
    let name = zbus::names::BusName::try_from(BUS_NAME).map_err(|e| e.to_string())?;
    // Bus activation first: the shipped activation file starts jitd.service when nothing owns
    // the name yet; asking who owns it before that would only find nobody.
    let how_to_start = "start it with `sudo systemctl start jitd`, or ask an admin to";
    if let Ok(well_known) = zbus::names::WellKnownName::try_from(BUS_NAME) {
        match dbus.start_service_by_name(well_known, 0).await {
            Ok(_) | Err(zbus::fdo::Error::ServiceUnknown(_)) => {}
            Err(e) => {
                return Err(format!(
                    "jitd is not running and the bus could not start it ({e}): {how_to_start}"
                ));
            }
        }
    }
    match dbus.get_connection_unix_user(name).await {
        Ok(0) => Ok(()),
        Ok(uid) => Err(format!(
            "{BUS_NAME} is owned by uid {uid}, not root: refusing to talk to an impostor"
        )),
        Err(zbus::fdo::Error::NameHasNoOwner(_)) => Err(format!(
            "jitd is not running ({BUS_NAME} has no owner on the bus): {how_to_start}"
        )),
        Err(e) => Err(format!("cannot ask the bus who runs jitd: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies are sent under the bus error trait's name; nothing may shadow it.
    #[test]
    fn refusals_carry_the_full_bus_error_name() {
        let e = Error::PolicyDenied("no".into());
        assert_eq!(
            zbus::DBusError::name(&e).as_str(),
            "org.jitd.Jitd1.Error.PolicyDenied"
        );
        assert_eq!(e.short_name(), "PolicyDenied");
        assert_eq!(e.message(), "no");
    }
}
