//! What jitd tells people, and whom: each audit event that someone must hear about becomes a
//! [`Note`] in the outbox, written in the same transaction as the record ([`Store::append_audit_noting`]).
//! jitd never delivers anything itself (it has no network); `jitd-notify` fetches the notes over
//! the bus and delivers them to the sinks its own routing selects.
//!
//! A note's body is one JSON object with the same keys for every kind (empty when unknown), so
//! a receiver needs one parser: `id` (the dedupe id, stable across redeliveries), `kind`,
//! `severity`, `host`, `at` (UTC), `user`, `uid`, `privilege`, `rule`, `reason`, `ticket`,
//! `request`, `grant`, `request_expires`, `access_expires`, `by`, `why`, `command` (the exact
//! `jitctl` line the recipient runs), `to` (`users` and `%groups` as the policy names them) and
//! `routes` (extra named routes, e.g. `security` for break-glass), `hook`, and `blob` (a pending
//! request's signable blob when signed approvals are on).
//!
//! [`Store::append_audit_noting`]: crate::store::Store::append_audit_noting

#![forbid(unsafe_code)]

use serde_json::{Value, json};

use crate::audit::AuditEvent;
use crate::clock::utc;
use crate::policy::Policy;
use crate::store::outbox::Note;

/// Common facts of every note.
#[derive(Default)]
pub struct Body<'a> {
    pub kind: &'a str,
    pub severity: &'a str,
    pub user: &'a str,
    pub uid: u32,
    pub privilege: &'a str,
    pub rule: &'a str,
    pub reason: &'a str,
    pub ticket: &'a str,
    pub request: &'a str,
    pub grant: &'a str,
    pub request_expires: &'a str,
    pub access_expires: &'a str,
    pub by: &'a str,
    pub why: &'a str,
    pub command: &'a str,
    pub to: Vec<String>,
    pub routes: &'a [&'a str],
    /// The rule's decision hook, for `jitd-notify` to run ("" when none).
    pub hook: &'a str,
    /// For a pending request with signed approvals on: the blob an approver elsewhere signs
    /// (`jitctl approve --sign`), as `jitctl requests --blob` prints it.
    pub blob: &'a str,
}

impl Body<'_> {
    /// The note, with `dedupe` as its id.
    pub fn note(&self, dedupe: String, host: &str, at_ms: i64) -> Note {
        let (users, groups): (Vec<&String>, Vec<&String>) =
            self.to.iter().partition(|t| !t.starts_with('%'));
        let groups: Vec<&str> = groups.iter().map(|g| &g[1..]).collect();
        let body: Value = json!({
            "id": dedupe,
            "kind": self.kind,
            "severity": self.severity,
            "host": host,
            "at": utc(at_ms),
            "user": self.user,
            "uid": self.uid,
            "privilege": self.privilege,
            "rule": self.rule,
            "reason": self.reason,
            "ticket": self.ticket,
            "request": self.request,
            "grant": self.grant,
            "request_expires": self.request_expires,
            "access_expires": self.access_expires,
            "by": self.by,
            "why": self.why,
            "command": self.command,
            "to": {"users": users, "groups": groups},
            "routes": self.routes,
            "hook": self.hook,
            "blob": self.blob,
        });
        Note {
            dedupe,
            kind: self.kind.to_string(),
            body: body.to_string(),
        }
    }
}

/// The approvers of `rule` as the policy names them (`bob`, `%dba-leads`).
pub fn approvers(policy: &Policy, rule: &str) -> Vec<String> {
    let Some(r) = policy.rule(rule) else {
        return Vec::new();
    };
    let q = r
        .quorum
        .as_ref()
        .or(r.breakglass.as_ref().map(|b| &b.reviewers));
    q.map(|q| {
        q.users
            .iter()
            .map(ToString::to_string)
            .chain(q.groups.iter().map(|g| format!("%{g}")))
            .collect()
    })
    .unwrap_or_default()
}

/// The notes `event` causes (none for most events). `expiry` says when a live grant ends (ms),
/// for the approved requester's notice; `blob` gives a pending request's signable blob.
pub fn notes_for(
    policy: &Policy,
    host: &str,
    at_ms: i64,
    event: &AuditEvent,
    expiry: &dyn Fn(&str) -> Option<i64>,
    blob: &dyn Fn(&str) -> Option<String>,
) -> Vec<Note> {
    match event {
        AuditEvent::RequestPending {
            request,
            uid,
            user,
            privilege,
            rule,
            reason,
            ticket,
            expires,
            duration,
            ..
        } => {
            let command = format!("jitctl approve {request}");
            let access = format!("{} after approval", crate::duration::format(*duration));
            let blob = blob(request).unwrap_or_default();
            let b = Body {
                kind: "request.pending",
                severity: "info",
                user,
                uid: *uid,
                privilege,
                rule,
                reason,
                ticket,
                request,
                request_expires: expires,
                access_expires: &access,
                command: &command,
                to: approvers(policy, rule),
                hook: policy
                    .rule(rule)
                    .and_then(|r| r.hook.as_deref())
                    .unwrap_or(""),
                blob: &blob,
                ..Body::default()
            };
            vec![b.note(format!("request.pending:{request}"), host, at_ms)]
        }
        AuditEvent::RequestDecided {
            request,
            uid,
            user,
            privilege,
            state,
            by,
            why,
            grant,
        } => {
            let kind = format!("request.{state}");
            let access = expiry(grant).map(utc).unwrap_or_default();
            let b = Body {
                kind: &kind,
                severity: "info",
                user,
                uid: *uid,
                privilege,
                request,
                grant,
                access_expires: &access,
                by,
                why,
                to: vec![user.clone()],
                ..Body::default()
            };
            vec![b.note(format!("request.decided:{request}"), host, at_ms)]
        }
        AuditEvent::BreakglassUsed {
            grant,
            uid,
            user,
            privilege,
            rule,
            reason,
            review_by,
            ..
        } => {
            let command =
                format!("jitctl review {grant} --outcome drill|emergency|misuse --comment ...");
            let why = format!("break-glass: review by {review_by}");
            let b = Body {
                kind: "breakglass.used",
                severity: "critical",
                user,
                uid: *uid,
                privilege,
                rule,
                reason,
                grant: grant.as_str(),
                why: &why,
                command: &command,
                to: approvers(policy, rule),
                routes: &["security"],
                ..Body::default()
            };
            vec![b.note(format!("breakglass.used:{grant}"), host, at_ms)]
        }
        AuditEvent::GrantExpired {
            grant,
            uid,
            user,
            privilege,
            why,
            ..
        }
        | AuditEvent::GrantRevoked {
            grant,
            uid,
            user,
            privilege,
            why,
        } => {
            let b = Body {
                kind: "grant.ended",
                severity: "info",
                user,
                uid: *uid,
                privilege,
                grant: grant.as_str(),
                why,
                to: vec![user.clone()],
                ..Body::default()
            };
            vec![b.note(format!("grant.ended:{grant}"), host, at_ms)]
        }
        AuditEvent::BreakglassReviewOverdue {
            grant,
            user,
            review_by,
        } => {
            // The record names no rule: the security route hears of it, whoever is on it.
            let why = format!("break-glass grant not reviewed by {review_by}");
            let command =
                format!("jitctl review {grant} --outcome drill|emergency|misuse --comment ...");
            let b = Body {
                kind: "review.overdue",
                severity: "warning",
                user,
                grant: grant.as_str(),
                why: &why,
                command: &command,
                routes: &["security"],
                ..Body::default()
            };
            vec![b.note(format!("review.overdue:{grant}"), host, at_ms)]
        }
        AuditEvent::AlertRaised {
            rule,
            grant,
            uid,
            user,
            detail,
        } => {
            // Each alert kind is its own note kind, so sinks route them one by one
            // (`events = ["alert.shell-escape"]`); all go to the security route.
            let kind = format!("alert.{rule}");
            let command = if grant.is_empty() {
                format!("jitctl history --all --user {user}")
            } else {
                format!("jitctl show {grant}")
            };
            let b = Body {
                kind: &kind,
                severity: alert_severity(rule),
                user,
                uid: *uid,
                grant,
                why: detail,
                command: &command,
                routes: &["security"],
                ..Body::default()
            };
            let dedupe = format!("{kind}:{grant}:{uid}:{at_ms}:{:016x}", fnv(detail));
            vec![b.note(dedupe, host, at_ms)]
        }
        _ => Vec::new(),
    }
}

/// How loud an alert is: what undoes the record or escapes the grant is critical.
fn alert_severity(rule: &str) -> &'static str {
    use crate::ledger::alerts::{BREAKGLASS, LOG_TAMPER, SHELL_ESCAPE};
    if [LOG_TAMPER, SHELL_ESCAPE, BREAKGLASS].contains(&rule) {
        "critical"
    } else {
        "warning"
    }
}

/// A stable short hash (FNV-1a) of an alert's detail, for its dedupe id: two alerts of one
/// rule in the same millisecond stay two notes.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// When the holder of a grant from `starts_ms` to `expires_ms` is warned:
/// `T − max(5 min, 10 %)`; `None` for a grant no longer than that lead (5 minutes or less),
/// whose end is at hand from its start.
pub fn warn_at(starts_ms: i64, expires_ms: i64) -> Option<i64> {
    let lead = ((expires_ms - starts_ms) / 10).max(5 * 60_000);
    let at = expires_ms - lead;
    (at > starts_ms).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_rule_becomes_a_note_of_its_own_kind_on_the_security_route() {
        let policy = Policy::empty();
        for rule in crate::ledger::alerts::RULES {
            let e = AuditEvent::AlertRaised {
                rule: (*rule).to_string(),
                grant: "g0123456789ab".into(),
                uid: 1001,
                user: "alice".into(),
                detail: "refused: /usr/bin/id".into(),
            };
            let notes = notes_for(&policy, "h", 5, &e, &|_| None, &|_| None);
            assert_eq!(notes.len(), 1, "{rule}");
            assert_eq!(notes[0].kind, format!("alert.{rule}"));
            let body: Value = serde_json::from_str(&notes[0].body).unwrap();
            assert_eq!(body["routes"][0], "security");
            assert_eq!(body["grant"], "g0123456789ab");
            assert_eq!(body["why"], "refused: /usr/bin/id");
            assert_eq!(body["command"], "jitctl show g0123456789ab");
        }
    }

    #[test]
    fn warnings_come_five_minutes_or_a_tenth_before_the_end() {
        let h = 3_600_000;
        assert_eq!(warn_at(0, 8 * h), Some(8 * h - 48 * 60_000));
        assert_eq!(warn_at(0, h), Some(h - 6 * 60_000));
        assert_eq!(warn_at(0, 20 * 60_000), Some(15 * 60_000));
        assert_eq!(
            warn_at(0, 5 * 60_000),
            None,
            "a 5 minute grant is not warned"
        );
        assert_eq!(warn_at(0, 3000), None);
    }
}
