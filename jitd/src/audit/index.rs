//! Which audit records a person asks about later (`jitctl history`, `jitctl show`), and the
//! keys they are found by: the user, the privilege and the grant, read from the record's own
//! fields so no kind needs code of its own.

#![forbid(unsafe_code)]

use super::event::{AuditEvent, FieldValue};

/// Where an indexed record is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryKey {
    pub kind: String,
    pub uid: Option<u32>,
    pub privilege: Option<String>,
    pub grant: Option<String>,
}

/// The grant's life as history shows it; the daemon's own housekeeping is left out.
const GRANT_KINDS: &[&str] = &[
    "grant.applied",
    "grant.apply_failed",
    "grant.expired",
    "grant.dropped",
    "grant.revoked",
    "grant.rolled_back",
    "grant.account_changed",
    "recall.started",
    "recall.finished",
    "recall.incomplete",
];

/// Whether records of `kind` belong in a person's history.
pub fn is_history(kind: &str) -> bool {
    ["request.", "session.", "command.", "alert."]
        .iter()
        .any(|p| kind.starts_with(p))
        || GRANT_KINDS.contains(&kind)
}

/// The key `event` is indexed under, or `None` when it is not history.
pub fn history_key(event: &AuditEvent) -> Option<HistoryKey> {
    let kind = event.kind();
    if !is_history(kind) {
        return None;
    }
    let mut key = HistoryKey {
        kind: kind.to_string(),
        uid: None,
        privilege: None,
        grant: None,
    };
    for (name, value) in event.fields() {
        match (name, value) {
            ("uid", FieldValue::Unsigned(n)) => key.uid = u32::try_from(n).ok(),
            ("privilege", FieldValue::Text(p)) if !p.is_empty() => key.privilege = Some(p),
            ("grant", FieldValue::Text(g)) if !g.is_empty() => key.grant = Some(g),
            _ => {}
        }
    }
    Some(key)
}

/// The key of a stored record's line; `None` for lines that are not history or do not read.
pub fn history_key_of_line(line: &str) -> Option<HistoryKey> {
    AuditEvent::from_line(line)
        .ok()
        .and_then(|e| history_key(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::Via;

    #[test]
    fn requests_are_keyed_by_user_and_privilege_and_housekeeping_is_not_history() {
        let e = AuditEvent::RequestInvalid {
            uid: 1001,
            via: Via::Bus,
            privilege: "bad name".into(),
            why: "no".into(),
        };
        assert_eq!(
            history_key(&e),
            Some(HistoryKey {
                kind: "request.invalid".into(),
                uid: Some(1001),
                privilege: Some("bad name".into()),
                grant: None,
            })
        );
        assert_eq!(history_key(&AuditEvent::ClockChanged {}), None);
        assert_eq!(history_key_of_line(&e.to_line()), history_key(&e));
    }
}
