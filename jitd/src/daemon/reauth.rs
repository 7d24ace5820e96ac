//! `reauth = true`: before such a rule considers a request, the requester proves presence
//! through polkit (`org.jitd.Jitd1.elevate`, `auth_self`), answered by the host's PAM stack
//! through the requester's own agent. The bus layer asks polkit without the core's lock; the
//! core only says whether a proof is needed and records the answer.

#![forbid(unsafe_code)]

use super::Core;
use crate::audit::{AuditEvent, PolkitAnswer};

/// The refusal of a `reauth` rule's request that came without a proof.
pub(super) fn needed(rule: &str) -> String {
    format!(
        "rule \"{rule}\" requires you to re-authenticate (reauth = true): run `jitctl elevate` \
         on a terminal, where it asks for your password through polkit; requests from the sudo \
         prompt or without a terminal are refused"
    )
}

impl Core {
    /// Whether `uid`'s request for `privilege` (or an extension of its grant) is decided by a
    /// rule that wants a fresh proof of presence.
    pub fn needs_reauth(&self, uid: u32, privilege: &str) -> bool {
        self.requester(uid).is_some_and(|who| {
            self.policy
                .rule_for(&who, privilege)
                .is_some_and(|r| r.reauth)
        })
    }

    /// The privilege of `uid`'s live grant `grant_id` ("" when it has none such).
    pub fn privilege_of(&self, uid: u32, grant_id: &str) -> String {
        crate::names::GrantId::parse(grant_id)
            .ok()
            .and_then(|id| self.live.get(&id))
            .filter(|g| g.uid == uid)
            .map(|g| g.privilege.clone())
            .unwrap_or_default()
    }

    /// Records what polkit answered.
    pub fn audit_reauth(&self, uid: u32, privilege: &str, answer: &Result<bool, String>) {
        self.record(AuditEvent::RequestReauth {
            uid,
            privilege: privilege.to_string(),
            answer: PolkitAnswer::from(answer),
        });
    }
}
