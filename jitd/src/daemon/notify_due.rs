//! The notifier's side of the core: expiry warnings queued by the tick, and the outbox as
//! `org.jitd.Jitd1.Notifier` reads it (fetch after a cursor, acknowledge, give up).

use super::Core;
use crate::audit::AuditEvent;
use crate::client::Error;
use crate::notify::{Body, warn_at};
use crate::store::outbox::OutboxRow;
use crate::terms::GrantState;

/// Most notes one fetch returns.
pub const FETCH_LIMIT: u32 = 100;

impl Core {
    /// Queues the expiry warning of every active grant whose warning time has come (once per
    /// grant and deadline: an extended grant is warned again before its new end); returns ms
    /// until the next warning is due.
    pub(super) fn warn_expiring(&self) -> Option<i64> {
        if self.unusable.is_some() {
            return None;
        }
        let now = self.clock.now().wall_ms;
        let mut next: Option<i64> = None;
        let mut warned = self.warned.borrow_mut();
        if warned.len() > self.live.len().saturating_mul(2) + 64 {
            warned.retain(|(id, _)| self.live.contains_key(id));
        }
        for g in self.live.values() {
            if g.state != GrantState::Active || g.expires_ms <= now {
                continue;
            }
            let Some(at) = warn_at(g.starts_ms, g.expires_ms) else {
                continue;
            };
            if at > now {
                next = Some(next.map_or(at - now, |n| n.min(at - now)));
                continue;
            }
            let key = (g.id.clone(), g.expires_ms);
            if warned.contains(&key) {
                continue;
            }
            let dedupe = format!("grant.expiring:{}:{}", g.id, g.expires_ms);
            match self.store.note_queued(&dedupe) {
                // Queued before, by this process or one before it.
                Ok(true) => {
                    warned.insert(key);
                    continue;
                }
                Ok(false) => {}
                // Asked again at the next tick.
                Err(_) => continue,
            }
            // The grant's own length as the suggestion: the holder edits the reason, not flags.
            let length = u64::try_from((g.expires_ms - g.starts_ms) / 1000).unwrap_or(0);
            let command = format!(
                "jitctl extend {} --for {} --reason ...",
                g.id,
                crate::duration::format(length)
            );
            let access = crate::clock::utc(g.expires_ms);
            let why = format!(
                "ends in {}",
                crate::duration::format(u64::try_from((g.expires_ms - now) / 1000).unwrap_or(0))
            );
            let b = Body {
                kind: "grant.expiring",
                severity: "info",
                user: &g.user,
                uid: g.uid,
                privilege: &g.privilege,
                rule: &g.rule,
                reason: &g.reason,
                ticket: &g.ticket,
                grant: g.id.as_str(),
                access_expires: &access,
                why: &why,
                command: &command,
                to: vec![g.user.clone()],
                ..Body::default()
            };
            let note = b.note(dedupe, &self.hostname, now);
            match self.store.queue_notes(now, &[note]) {
                Ok(_) => {
                    warned.insert(key);
                }
                Err(e) => self.audit.log(
                    crate::audit::Level::Warning,
                    &format!("cannot queue the expiry warning of {}: {e}", g.id),
                ),
            }
        }
        next
    }

    /// Tells each escalation tier of a request still pending at its time, once per tier;
    /// returns ms until the next tier is due.
    pub(super) fn escalate_requests(&self) -> Option<i64> {
        if self.unusable.is_some() {
            return None;
        }
        let pending = self.store.pending_requests().ok()?;
        let now = self.clock.now().wall_ms;
        let mut next: Option<i64> = None;
        for q in &pending {
            let Some(esc) = self
                .policy
                .rule(&q.rule)
                .and_then(|r| r.escalation.as_ref())
            else {
                continue;
            };
            for (i, tier) in esc.tiers.iter().enumerate() {
                let due = esc.due_ms(q.requested_ms, i + 1);
                if due >= q.expires_ms {
                    break;
                }
                if due > now {
                    next = Some(next.map_or(due - now, |n| n.min(due - now)));
                    break;
                }
                let dedupe = format!("request.escalated:{}:{}", q.id, i + 1);
                if self.store.note_queued(&dedupe).unwrap_or(true) {
                    continue;
                }
                let command = format!("jitctl approve {}", q.id);
                let expires = crate::clock::utc(q.expires_ms);
                let why = format!(
                    "undecided after {} (escalation tier {} of {})",
                    crate::duration::format(
                        u64::try_from((now - q.requested_ms) / 1000).unwrap_or(0)
                    ),
                    i + 1,
                    esc.tiers.len()
                );
                let b = Body {
                    kind: "request.escalated",
                    severity: "warning",
                    user: &q.user,
                    uid: q.uid,
                    privilege: &q.privilege,
                    rule: &q.rule,
                    reason: &q.reason,
                    ticket: &q.ticket,
                    request: q.id.as_str(),
                    request_expires: &expires,
                    why: &why,
                    command: &command,
                    to: vec![tier.clone()],
                    ..Body::default()
                };
                let note = b.note(dedupe, &self.hostname, now);
                if let Err(e) = self.store.queue_notes(now, &[note]) {
                    self.audit.log(
                        crate::audit::Level::Warning,
                        &format!("cannot queue the escalation of {}: {e}", q.id),
                    );
                }
            }
        }
        next
    }

    /// Undelivered notes after `after`, oldest first.
    pub fn notes_after(&self, after: i64) -> Result<Vec<OutboxRow>, Error> {
        self.store
            .outbox_after(after, FETCH_LIMIT)
            .map_err(|e| Error::Unavailable(format!("reading the outbox: {e}")))
    }

    /// Marks note `id` delivered; acknowledging twice is harmless.
    pub fn note_delivered(&self, id: i64) -> Result<bool, Error> {
        self.store
            .ack_outbox(id, self.clock.now().wall_ms)
            .map_err(|e| Error::Unavailable(format!("acknowledging note {id}: {e}")))
    }

    /// The notifier gave up delivering note `id` to `sink`: on record as `notify.failed`. The
    /// notifier acknowledges the note once every sink is done with it.
    pub fn note_failed(
        &self,
        id: i64,
        sink: &str,
        attempts: u64,
        error: &str,
    ) -> Result<(), Error> {
        let row = self
            .store
            .outbox_row(id)
            .map_err(|e| Error::Unavailable(format!("reading note {id}: {e}")))?
            .ok_or_else(|| Error::NotFound(format!("no note {id}")))?;
        self.record(AuditEvent::NotifyFailed {
            note: row.dedupe,
            kind: row.kind,
            sink: sink.to_string(),
            attempts,
            error: error.to_string(),
        });
        Ok(())
    }

    /// The uid allowed to call the Notifier interface, if its account exists.
    pub fn notifier_uid(&self) -> Option<u32> {
        self.accounts.user_uid(&self.cfg.notifier_user)
    }
}
