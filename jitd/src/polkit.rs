//! Asking polkit whether a bus caller may manage every grant (`org.jitd.Jitd1.manage`).
//!
//! Root and members of `admin_group` are admins without asking. For anyone else jitd asks
//! polkit, so a fleet can delegate with the rules it already writes for other services. The
//! subject is the caller's unique bus name, which polkit resolves through the bus daemon itself:
//! no pid or uid from the caller is trusted (the race of CVE-2013-4288 needs a pid subject).
//! jitd never asks polkit to authenticate anyone: only an explicit "yes" authorizes. Any error
//! (polkit absent, the caller gone, a malformed answer, no answer in time) is a "no".

#![forbid(unsafe_code)]

use std::collections::HashMap;

use zbus::Connection;
use zbus::Variant;

/// The polkit action for the admin methods, shipped in `org.jitd.Jitd1.policy`.
pub const MANAGE: &str = "org.jitd.Jitd1.manage";

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
