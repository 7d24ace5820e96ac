//! Asking polkit whether a bus caller may manage every grant (`org.jitd.Jitd1.manage`), and
//! to authenticate a requester under a `reauth = true` rule (`org.jitd.Jitd1.elevate`).
//!
//! Root and members of `admin_group` are admins without asking. For anyone else jitd asks
//! polkit, so a fleet can delegate with the rules it already writes for other services. The
//! subject is the caller's unique bus name, which polkit resolves through the bus daemon itself:
//! no pid or uid from the caller is trusted (the race of CVE-2013-4288 needs a pid subject).
//! For the admin action jitd never asks polkit to authenticate anyone: only an explicit "yes"
//! authorizes. Any error (polkit absent, the caller gone, a malformed answer, no answer in
//! time) is a "no", for both actions.

#![forbid(unsafe_code)]

use std::collections::HashMap;

use zbus::Connection;
use zbus::Variant;

/// The polkit action for the admin methods, shipped in `org.jitd.Jitd1.policy`.
pub const MANAGE: &str = "org.jitd.Jitd1.manage";
/// The polkit action a `reauth = true` rule asks for: `auth_self`, so the requester proves
/// presence through the host's PAM stack (password, OTP, FIDO) with their own agent.
pub const ELEVATE: &str = "org.jitd.Jitd1.elevate";

/// How long a requester has to answer their agent.
const REAUTH_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Asks polkit to authenticate the caller `sender` for [`ELEVATE`], letting it ask through the
/// caller's authentication agent (`jitctl` runs `pkttyagent`). On a connection of its own:
/// the daemon's bounds its calls to 5 s, and a person typing takes longer. The subject is the
/// caller's bus name, as for [`authorized`]: polkit finds the agent jitctl registered for the
/// process behind it. `privilege` goes in the details polkit hands to rules.
pub async fn reauthenticated(
    address: Option<&str>,
    sender: &str,
    privilege: &str,
) -> Result<bool, String> {
    // Bounded by the connection's own method timeout: this runs on the bus's threads, where
    // no tokio timer is.
    let builder = match address {
        Some(address) => zbus::connection::Builder::address(address),
        None => zbus::connection::Builder::system(),
    };
    let conn = builder
        .method_timeout(REAUTH_WAIT)
        .build()
        .await
        .map_err(|e| format!("polkit: cannot connect to the bus: {e}"))?;
    let mut subject_details: HashMap<&str, Variant<'_>> = HashMap::new();
    subject_details.insert("name", Variant::from(sender));
    let subject = ("system-bus-name", subject_details);
    let mut details: HashMap<&str, &str> = HashMap::new();
    details.insert("privilege", privilege);
    // Flags 1: AllowUserInteraction.
    let body = (subject, ELEVATE, details, 1u32, "");
    let call = conn.call_method(
        Some("org.freedesktop.PolicyKit1"),
        "/org/freedesktop/PolicyKit1/Authority",
        Some("org.freedesktop.PolicyKit1.Authority"),
        "CheckAuthorization",
        &body,
    );
    let reply = call.await.map_err(|e| format!("polkit: {e}"))?;
    let (is_authorized, _is_challenge, _details): (bool, bool, HashMap<String, String>) = reply
        .body()
        .deserialize()
        .map_err(|e| format!("polkit answered something unexpected: {e}"))?;
    Ok(is_authorized)
}

/// Whether polkit says yes to `action` for the bus connection `sender`. `Err` says why not,
/// for the audit record; it is never a "yes".
pub async fn authorized(conn: &Connection, sender: &str, action: &str) -> Result<bool, String> {
    let mut subject_details: HashMap<&str, Variant<'_>> = HashMap::new();
    subject_details.insert("name", Variant::from(sender));
    let subject = ("system-bus-name", subject_details);
    let details: HashMap<&str, &str> = HashMap::new();
    // Flags 0: no user interaction. Cancellation id: none.
    let reply = conn
        .call_method(
            Some("org.freedesktop.PolicyKit1"),
            "/org/freedesktop/PolicyKit1/Authority",
            Some("org.freedesktop.PolicyKit1.Authority"),
            "CheckAuthorization",
            &(subject, action, details, 0u32, ""),
        )
        .await
        .map_err(|e| format!("polkit: {e}"))?;
    let (is_authorized, _is_challenge, _details): (bool, bool, HashMap<String, String>) = reply
        .body()
        .deserialize()
        .map_err(|e| format!("polkit answered something unexpected: {e}"))?;
    Ok(is_authorized)
}
