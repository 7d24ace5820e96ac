//! Every kind of audit record as one typed variant. The table at the bottom is the only place
//! a record's name, level, field names, field order and field types are written; the enum,
//! `kind`, `level`, `fields` and the parser's `from_fields` are generated from it, so the
//! renderers and the parser cannot disagree about a record.
//!
//! The field names and order are those of the records jitd has always written: operators and
//! tests grep for `event=reconcile.orphan_removed grant=g...`, and the hash chain in existing
//! databases holds those lines.

#![forbid(unsafe_code)]

use super::Level;
use super::codec::{ParseError, Record};
use super::field::Field;
use crate::names::GrantId;
use crate::terms::{ApprovalMode, GrantKind, Via};

#[macro_use]
mod table;
mod values;

pub use values::{FieldValue, PolkitAnswer};

#[cfg(test)]
mod ledger_samples;
#[cfg(test)]
mod samples;
#[cfg(test)]
mod tests;

audit_events! {
    // ---- start-up and integrity -------------------------------------------------------------

    /// Leftover temporary drop-ins from an interrupted write were removed.
    ReconcileTempRemoved = "reconcile.temp_removed" [Level::Info] { count: u64 }
    ReconcileTempFailed = "reconcile.temp_failed" [Level::Warning] { error: String }
    /// A file that looks like a jitd drop-in but does not carry its marker.
    ReconcileForeignFile = "reconcile.foreign_file" [Level::Warning] {
        path: String,
        action: String,
    }
    /// A drop-in carrying jitd's marker whose grant is not live.
    ReconcileOrphanRemoved = "reconcile.orphan_removed" [Level::Warning] {
        grant: GrantId,
        ok: bool,
    }
    ReconcileScanFailed = "reconcile.scan_failed" [Level::Warning] { error: String }
    ReconcileSessionsFailed = "reconcile.sessions_failed" [Level::Warning] { error: String }
    DaemonReconciled = "daemon.reconciled" [Level::Info] { live: u64 }
    /// A live grant was missing from the system or altered, and was put back (`error` is empty
    /// when that worked).
    GrantRepaired = "grant.repaired" [Level::Warning] {
        grant: GrantId,
        found: String,
        ok: bool,
        error: String,
    }
    GrantCheckFailed = "grant.check_failed" [Level::Warning] { error: String }
    /// A live grant had no marker on the system (applied before jitd kept one); `what` was
    /// written.
    GrantMarkerWritten = "grant.marker_written" [Level::Info] { grant: GrantId, what: String }
    /// A grant row that does not read back; `grant` is its id as stored. The others go on.
    StoreRowUnreadable = "store.row_unreadable" [Level::Warning] {
        grant: String,
        error: String,
        action: String,
    }
    /// The state database cannot be used: the daemon refuses new grants and ends the ones on
    /// the system by the deadlines their markers carry.
    DaemonSafeMode = "daemon.safe_mode" [Level::Warning] { error: String, action: String }
    /// Something on the system whose marker's deadline passed, taken off without the database
    /// (`what`: the drop-in or the membership).
    MarkerExpired = "marker.expired" [Level::Notice] {
        grant: GrantId,
        what: String,
        until: String,
        ok: bool,
        error: String,
    }
    /// A marker that cannot be read (no deadline in it): left as it is.
    MarkerUnreadable = "marker.unreadable" [Level::Warning] { error: String }
    /// The account a live grant was made for was renamed or deleted, so its uid or name may now
    /// be someone else's: the grant is taken back. `found` says what the uid and the name are
    /// now.
    GrantAccountChanged = "grant.account_changed" [Level::Warning] {
        grant: GrantId,
        uid: u32,
        user: String,
        found: String,
    }

    // ---- requests ---------------------------------------------------------------------------

    /// A request refused before the policy was asked. `privilege` is the text as sent: it may be
    /// the invalid name that is the reason.
    RequestInvalid = "request.invalid" [Level::Notice] {
        uid: u32,
        via: Via,
        privilege: String,
        why: String,
    }
    RequestDenied = "request.denied" [Level::Notice] {
        uid: u32,
        user: String,
        via: Via,
        privilege: String,
        duration: u64,
        reason: String,
        ticket: String,
        why: String,
    }
    /// The policy allowed a request. Written as `request.approved` before; that name is kept
    /// for a human approval, and old records still read as this.
    RequestAllowed = "request.allowed" | "request.approved" [Level::Info] {
        grant: GrantId,
        uid: u32,
        user: String,
        via: Via,
        privilege: String,
        rule: String,
        duration: u64,
        clamped: bool,
        reason: String,
        ticket: String,
        approval: ApprovalMode,
    }

    /// A request needs approval: it waits, nothing is granted yet. `expires` is UTC text;
    /// `extends` names the live grant it would extend ("" for a new grant).
    RequestPending = "request.pending" [Level::Notice] {
        request: String,
        uid: u32,
        user: String,
        via: Via,
        privilege: String,
        rule: String,
        duration: u64,
        reason: String,
        ticket: String,
        expires: String,
        extends: String,
    }
    /// An approver voted; `counted` of `needed` approvals count now.
    RequestVoted = "request.voted" [Level::Notice] {
        request: String,
        by: String,
        vote: String,
        comment: String,
        shorten_to: u64,
        counted: u64,
        needed: u64,
    }
    /// A signed approval or denial was verified and cast as `by`'s vote: `principal` of
    /// approvers.allowed_signers, the key ssh-keygen named, and the whole token, so anyone can
    /// check it again offline with `ssh-keygen -Y verify`.
    RequestSigned = "request.signed" [Level::Notice] {
        request: String,
        kind: String,
        principal: String,
        by: String,
        key: String,
        token: String,
    }
    /// A requester proved presence for an `mfa = "ssh-sk"` rule: their key signed jitd's
    /// nonce (`key` as ssh-keygen named it).
    MfaProven = "mfa.proven" [Level::Notice] {
        uid: u32,
        user: String,
        key: String,
    }
    /// A vote, cancellation or listing refused: what was tried, by whom, and why.
    RequestActionRefused = "request.refused" [Level::Notice] {
        request: String,
        caller: u32,
        action: String,
        why: String,
    }
    /// A request left `pending`: approved, denied, expired, cancelled, withdrawn or failed;
    /// `by` is who or what decided, `grant` the grant it made or extended.
    RequestDecided = "request.decided" [Level::Notice] {
        request: String,
        uid: u32,
        user: String,
        privilege: String,
        state: String,
        by: String,
        why: String,
        grant: String,
    }

    /// What polkit said when a `reauth = true` rule had the requester prove presence.
    RequestReauth = "request.reauth" [answer.level()] {
        uid: u32,
        privilege: String,
        answer: PolkitAnswer,
    }

    // ---- the grant's life -------------------------------------------------------------------

    /// A grant under a `breakglass` rule: granted at once, to be reviewed by `review_by`.
    BreakglassUsed = "breakglass.used" [Level::Alert] {
        grant: GrantId,
        uid: u32,
        user: String,
        privilege: String,
        rule: String,
        reason: String,
        duration: u64,
        review_by: String,
    }
    /// An approver reviewed a break-glass grant; `late` when after its review deadline.
    BreakglassReviewed = "breakglass.reviewed" [
        if outcome == "misuse" { Level::Alert } else { Level::Notice }
    ] {
        grant: GrantId,
        user: String,
        reviewer: String,
        outcome: String,
        comment: String,
        late: bool,
    }
    /// Nobody reviewed a break-glass grant by its deadline (recorded once per grant).
    BreakglassReviewOverdue = "breakglass.review_overdue" [Level::Warning] {
        grant: GrantId,
        user: String,
        review_by: String,
    }

    /// A live grant's deadline moved: `by` approved it ("automatic" under an automatic rule),
    /// `expires` is the new end as UTC text.
    GrantExtended = "grant.extended" [Level::Notice] {
        grant: GrantId,
        uid: u32,
        user: String,
        privilege: String,
        by: String,
        reason: String,
        seconds: u64,
        expires: String,
    }

    /// The intent could not be written, so nothing was changed.
    GrantNotRecorded = "grant.not_recorded" [Level::Warning] { error: String }
    GrantApplyFailed = "grant.apply_failed" [Level::Warning] {
        grant: GrantId,
        error: String,
        rolled_back: bool,
    }
    /// `expires` is UTC text (`2026-01-02 03:04:05Z`), as operators read it.
    GrantApplied = "grant.applied" [Level::Info] {
        grant: GrantId,
        uid: u32,
        user: String,
        privilege: String,
        kind: GrantKind,
        expires: String,
    }
    GrantDbWriteFailed = "grant.db_write_failed" [Level::Warning] { error: String }
    /// The database could not record that a grant is ending, so its end went to the tombstone
    /// file before the grant came off (`ok`), to keep a restart from putting it back.
    GrantTombstoned = "grant.tombstoned" [Level::Warning] {
        grant: GrantId,
        state: String,
        ok: bool,
        error: String,
    }
    /// An end kept in the tombstone file is in the database now.
    GrantEndRecorded = "grant.end_recorded" [Level::Notice] {
        grant: GrantId,
        state: String,
        ended: String,
    }
    /// The tombstone file cannot be read, reserved or cleared.
    TombstonesFailed = "tombstones.failed" [Level::Warning] { error: String }
    /// A caller who is neither the owner nor an admin tried to end a grant.
    RevokeDenied = "revoke.denied" [Level::Notice] { grant: GrantId, caller: u32 }
    GrantRemoveFailed = "grant.remove_failed" [Level::Warning] {
        grant: GrantId,
        error: String,
        retry: String,
    }
    /// `late_ms` is how long after its deadline the grant came off (negative if early).
    GrantExpired = "grant.expired" [Level::Info] {
        grant: GrantId,
        uid: u32,
        user: String,
        privilege: String,
        why: String,
        late_ms: i64,
    }
    GrantDropped = "grant.dropped" [Level::Info] {
        grant: GrantId,
        uid: u32,
        user: String,
        privilege: String,
        why: String,
    }
    GrantRevoked = "grant.revoked" [Level::Info] {
        grant: GrantId,
        uid: u32,
        user: String,
        privilege: String,
        why: String,
    }
    /// A grant that never took effect was taken off again.
    GrantRolledBack = "grant.rolled_back" [Level::Info] {
        grant: GrantId,
        uid: u32,
        user: String,
        privilege: String,
        why: String,
    }
    /// SIGTERM went to the processes still running with an ended grant.
    RecallStarted = "recall.started" [Level::Notice] { grant: GrantId, uid: u32, pids: Vec<u32> }
    /// Which of them ended on SIGTERM and which needed SIGKILL after the grace period.
    RecallFinished = "recall.finished" [Level::Notice] {
        grant: GrantId,
        terminated: Vec<u32>,
        killed: Vec<u32>,
    }
    /// Processes that still held the grant when recall gave up.
    RecallIncomplete = "recall.incomplete" [Level::Warning] { grant: GrantId, survivors: Vec<u32> }
    /// Recall could not see every process (`/proc` mounted with `hidepid`): finding none
    /// proves nothing.
    RecallBlind = "recall.blind" [Level::Warning] { grant: GrantId, uid: u32, why: String }
    /// The setgid bit cleared from a file the holder of a group grant made setgid to the group
    /// during the grant; `mode` is the file's mode before, in octal.
    RecallSetgidStripped = "recall.setgid_stripped" [Level::Notice] {
        grant: GrantId,
        uid: u32,
        gid: u32,
        path: String,
        mode: String,
    }
    RecallSetgidFailed = "recall.setgid_failed" [Level::Warning] {
        grant: GrantId,
        path: String,
        error: String,
    }
    /// The look for setgid files at the end of a group grant: how many entries it saw, what it
    /// stripped, what it could not, whether it finished within its bounds (`cut_short` says
    /// why not) and where it did not look.
    RecallFilesChecked = "recall.files_checked" [
        if !cut_short.is_empty() || *failed > 0 {
            Level::Warning
        } else if *stripped > 0 {
            Level::Notice
        } else {
            Level::Info
        }
    ] {
        grant: GrantId,
        gid: u32,
        checked: u64,
        stripped: u64,
        failed: u64,
        cut_short: String,
        skipped: String,
    }

    // ---- admins and policy ------------------------------------------------------------------

    AdminPolkit = "admin.polkit" [answer.level()] {
        caller: u32,
        method: String,
        action: String,
        answer: PolkitAnswer,
    }
    PolicyLoaded = "policy.loaded" [Level::Info] { summary: String }
    /// Root applied a policy suggestion to a file (`jitctl suggest --apply`); `diff_hash` is
    /// the SHA-256 of the file's text before and after, so the change can be matched to it.
    SuggestionAccepted = "suggestion.accepted" [Level::Notice] {
        id: String,
        kind: String,
        file: String,
        diff_hash: String,
    }
    PolicyRejected = "policy.rejected" [Level::Warning] { errors: String, action: String }
    /// The PAM services sudo runs each privilege's commands under are on the system.
    PolicyRouted = "policy.routed" [Level::Info] { services: String }
    /// They could not be written.
    PolicyRouteFailed = "policy.route_failed" [Level::Warning] { error: String }
    /// They were found altered or missing and are put back.
    PolicyRouteRepaired = "policy.route_repaired" [Level::Warning] { damage: String }

    // ---- sessions ---------------------------------------------------------------------------
    // `grant` is a String here: pam_jit reports it, and a session may have none (empty).

    SessionOpened = "session.opened" [Level::Info] {
        session: String,
        grant: String,
        uid: u32,
        pid: u32,
        service: String,
        tty: String,
        rhost: String,
    }
    /// `seconds` is signed: the wall clock may have been set back while the session ran.
    SessionClosed = "session.closed" [Level::Info] {
        session: String,
        grant: String,
        uid: u32,
        seconds: i64,
        how: String,
    }
    /// A session whose grant ended while it ran: only its record was left to close.
    SessionRecordClosed = "session.closed" [Level::Info] { session: String }
    SessionDbWriteFailed = "session.db_write_failed" [Level::Warning] { error: String }

    // ---- the command ledger (sudo's own event log, attributed to grants) --------------------
    // `grant` is the grant live for the uid when sudo was asked, or the last one that ended
    // within the after-expiry window (`after_expiry`); `argv` is a JSON array of strings;
    // `sudo_time` is sudo's own time of the event (UTC), the record's being when jitd read it;
    // `iolog` is sudo's I/O log of a command of a `record = "io"` privilege (for
    // `sudoreplay`), empty for the others.

    CommandRun = "command.run" [if *after_expiry { Level::Notice } else { Level::Info }] {
        grant: String,
        uid: u32,
        user: String,
        uuid: String,
        sudo_time: String,
        runas: String,
        cwd: String,
        tty: String,
        argv: String,
        after_expiry: bool,
        iolog: String,
    }
    CommandRefused = "command.refused" [Level::Notice] {
        grant: String,
        uid: u32,
        user: String,
        uuid: String,
        sudo_time: String,
        runas: String,
        cwd: String,
        tty: String,
        argv: String,
        why: String,
        after_expiry: bool,
    }
    /// `exit` is the status, or 128+N for signal N (`signal` names it); `run_ms` how long the
    /// command ran.
    CommandExited = "command.exited" [Level::Info] {
        grant: String,
        uid: u32,
        uuid: String,
        sudo_time: String,
        exit: i64,
        signal: String,
        run_ms: u64,
    }
    /// sudo's log for `uid` could not be read as it should: what was wrong and what jitd did
    /// (the gap is on record; sudo itself keeps working).
    LedgerProblem = "ledger.problem" [Level::Warning] {
        uid: u32,
        path: String,
        problem: String,
        action: String,
    }
    /// Something under a grant an auditor should look at now; `rule` names the check.
    AlertRaised = "alert.raised" [Level::Warning] {
        rule: String,
        grant: String,
        uid: u32,
        user: String,
        detail: String,
    }

    // ---- the daemon -------------------------------------------------------------------------

    /// The one-shot sweep (the systemd timer) ran.
    SweepDone = "sweep.done" [Level::Info] { removed: u64, live: u64 }
    /// Calls of `uid` refused by the per-uid limits since the last such record (one per
    /// window, however many calls a flood makes).
    CallsThrottled = "calls.throttled" [Level::Notice] { uid: u32, refused: u64, window_secs: u64 }
    /// The wall clock was set; deadlines are checked again at once.
    ClockChanged = "clock.changed" [Level::Notice] {}
    /// Records older than `audit_retention_days` were purged: `records` of them, up to
    /// `upto_seq`, whose hash is kept as the `checkpoint` the rest of the chain verifies from.
    AuditPurged = "audit.purged" [Level::Notice] {
        upto_seq: u64,
        records: u64,
        checkpoint: String,
        older_than: String,
    }
    /// A record reached syslog but not the database; `lost` is the record's line.
    AuditDbWriteFailed = "audit.db_write_failed" [Level::Warning] { error: String, lost: String }
    /// `jitd-notify` gave up on a notification after `attempts` tries; `note` is its dedupe id.
    NotifyFailed = "notify.failed" [Level::Warning] {
        note: String,
        kind: String,
        sink: String,
        attempts: u64,
        error: String,
    }
}
