//! One value of every audit event, for the table tests in `tests.rs` (the ledger's in
//! `ledger_samples.rs`).

use super::*;

pub(super) fn gid(s: &str) -> GrantId {
    GrantId::parse(s).unwrap()
}

/// One value of every variant, with text that needs quoting where the field is free text.
pub(super) fn samples() -> Vec<AuditEvent> {
    use AuditEvent::*;
    let g = || gid("g0123456789ab");
    let mut all = vec![
        ReconcileTempRemoved { count: 3 },
        ReconcileTempFailed {
            error: "Permission denied (os error 13)".into(),
        },
        ReconcileForeignFile {
            path: "/etc/sudoers.d/jitd-g0123456789ab.bak".into(),
            action: "left untouched".into(),
        },
        ReconcileOrphanRemoved {
            grant: g(),
            ok: true,
        },
        ReconcileScanFailed {
            error: "read_dir: No such file".into(),
        },
        ReconcileSessionsFailed {
            error: "database is locked".into(),
        },
        DaemonReconciled { live: 2 },
        GrantRepaired {
            grant: g(),
            found: "tampered: mode 0644".into(),
            ok: true,
            error: String::new(),
        },
        GrantCheckFailed {
            error: "g0123456789ab: stat failed".into(),
        },
        GrantMarkerWritten {
            grant: g(),
            what: "membership manifest".into(),
        },
        StoreRowUnreadable {
            grant: "g0123456789ab".into(),
            error: "state database: corrupt row: grant g0123456789ab: bad".into(),
            action: "skipped".into(),
        },
        DaemonSafeMode {
            error: "state database /var/lib/jitd/jitd.db: file is not a database".into(),
            action: "no new grants".into(),
        },
        MarkerExpired {
            grant: g(),
            what: "membership of alice in docker".into(),
            until: "2026-01-02 03:04:05Z".into(),
            ok: true,
            error: String::new(),
        },
        MarkerUnreadable {
            error: "/var/lib/jitd/memberships/g0123456789ab: no uid=".into(),
        },
        GrantAccountChanged {
            grant: g(),
            uid: 1001,
            user: "alice".into(),
            found: "uid 1001 is now the account \"carol\"; no account is named \"alice\"".into(),
        },
        RequestInvalid {
            uid: 1001,
            via: Via::Bus,
            privilege: "Bad Name\n".into(),
            why: "invalid privilege name".into(),
        },
        RequestDenied {
            uid: 1001,
            user: "alice".into(),
            via: Via::Pam,
            privilege: "restart-web".into(),
            duration: 3600,
            reason: "need \"it\"\\now".into(),
            ticket: String::new(),
            why: "no rule allows alice".into(),
        },
        RequestAllowed {
            grant: g(),
            uid: 1001,
            user: "alice".into(),
            via: Via::Bus,
            privilege: "restart-web".into(),
            rule: "oncall".into(),
            duration: 1800,
            clamped: true,
            reason: "restart after config change".into(),
            ticket: "OPS-42".into(),
            approval: ApprovalMode::Auto,
        },
        GrantNotRecorded {
            error: "the state database is locked by another process".into(),
        },
        GrantApplyFailed {
            grant: g(),
            error: "visudo rejected the drop-in".into(),
            rolled_back: false,
        },
        GrantApplied {
            grant: g(),
            uid: 1001,
            user: "alice".into(),
            privilege: "restart-web".into(),
            kind: GrantKind::Group,
            expires: "2026-01-02 03:04:05Z".into(),
        },
        GrantDbWriteFailed {
            error: "ending grants together: disk full".into(),
        },
        RevokeDenied {
            grant: g(),
            caller: 1002,
        },
        GrantRemoveFailed {
            grant: g(),
            error: "gpasswd exited 1".into(),
            retry: "next tick".into(),
        },
        GrantExpired {
            grant: g(),
            uid: 1001,
            user: "alice".into(),
            privilege: "restart-web".into(),
            why: "expired".into(),
            late_ms: -12,
        },
        GrantDropped {
            grant: g(),
            uid: 1001,
            user: "alice".into(),
            privilege: "restart-web".into(),
            why: "dropped by owner".into(),
        },
        GrantRevoked {
            grant: g(),
            uid: 1001,
            user: "alice".into(),
            privilege: "restart-web".into(),
            why: "revoked by bob: incident 7".into(),
        },
        GrantRolledBack {
            grant: g(),
            uid: 1001,
            user: "alice".into(),
            privilege: "restart-web".into(),
            why: "interrupted before it took effect".into(),
        },
        RecallStarted {
            grant: g(),
            uid: 1001,
            pids: vec![812, 9001],
        },
        RecallFinished {
            grant: g(),
            terminated: vec![812],
            killed: vec![],
        },
        RecallIncomplete {
            grant: g(),
            survivors: vec![9002],
        },
        RecallBlind {
            grant: g(),
            uid: 1001,
            why: "/proc is mounted hidepid=invisible,gid=4".into(),
        },
        RecallSetgidStripped {
            grant: g(),
            uid: 1001,
            gid: 998,
            path: "/home/alice/my sh".into(),
            mode: "2755".into(),
        },
        RecallSetgidFailed {
            grant: g(),
            path: "/home/alice/x".into(),
            error: "EROFS: Read-only file system".into(),
        },
        RecallFilesChecked {
            grant: g(),
            gid: 998,
            checked: 1200,
            stripped: 1,
            failed: 0,
            cut_short: String::new(),
            skipped: "/dev/shm (nosuid)".into(),
        },
        AdminPolkit {
            caller: 1002,
            method: "Revoke".into(),
            action: "org.jitd.manage".into(),
            answer: PolkitAnswer::Error("no reply".into()),
        },
        PolicyLoaded {
            summary: "policy loaded: 3 privileges, 2 rules".into(),
        },
        SuggestionAccepted {
            id: "s-352471acff".into(),
            kind: "shorten-max-duration".into(),
            file: "/etc/jitd/policy.d/90-suggested.toml".into(),
            diff_hash: "ae295723d657f15db674dc43ca8f6cb093b6b113065058956600e64d382b4fe7".into(),
        },
        PolicyRejected {
            errors: "policy.toml:3:1: unknown key\npolicy.toml:9:2: bad".into(),
            action: "previous policy stays in force".into(),
        },
        PolicyRouted {
            services: "jitd-db-restart, jitd-nginx".into(),
        },
        PolicyRouteFailed {
            error: "visudo -cf /etc/sudoers.d/.jitd_routes.tmp: syntax error".into(),
        },
        PolicyRouteRepaired {
            damage: "/etc/pam.d/jitd-db-restart is missing".into(),
        },
        SessionOpened {
            session: "s0123456789ab".into(),
            grant: String::new(),
            uid: 1001,
            pid: 4242,
            service: "sudo".into(),
            tty: "/dev/pts/3".into(),
            rhost: String::new(),
        },
        SessionClosed {
            session: "s0123456789ab".into(),
            grant: "g0123456789ab".into(),
            uid: 1001,
            seconds: 95,
            how: "ended while jitd was down".into(),
        },
        SessionRecordClosed {
            session: "s0123456789ab".into(),
        },
        SessionDbWriteFailed {
            error: "s0123456789ab: disk I/O error".into(),
        },
        SweepDone {
            removed: 1,
            live: 0,
        },
        CallsThrottled {
            uid: 1001,
            refused: 9412,
            window_secs: 10,
        },
        ClockChanged {},
        RequestPending {
            request: "r0123456789ab".into(),
            uid: 1001,
            user: "alice".into(),
            via: Via::Bus,
            privilege: "db".into(),
            rule: "dba".into(),
            duration: 600,
            reason: "restore \"orders\" table".into(),
            ticket: String::new(),
            expires: "2026-01-02 03:04:05Z".into(),
            extends: String::new(),
        },
        RequestVoted {
            request: "r0123456789ab".into(),
            by: "bob".into(),
            vote: "approve".into(),
            comment: "looks right".into(),
            shorten_to: 0,
            counted: 1,
            needed: 2,
        },
        RequestSigned {
            request: "r0123456789ab".into(),
            kind: "approve".into(),
            principal: "carol".into(),
            by: "carol".into(),
            key: "Good \"jitd-approve-v1@example.org\" signature for carol".into(),
            token: "-----BEGIN JITD TOKEN-----\nam10ZA==\n-----END JITD TOKEN-----\n".into(),
        },
        MfaProven {
            uid: 1001,
            user: "alice".into(),
            key: "SHA256:abc".into(),
        },
        RequestActionRefused {
            request: "r0123456789ab".into(),
            caller: 1001,
            action: "approve".into(),
            why: "own request".into(),
        },
        RequestReauth {
            uid: 1001,
            privilege: "db".into(),
            answer: PolkitAnswer::Yes,
        },
        BreakglassUsed {
            grant: g(),
            uid: 1001,
            user: "alice".into(),
            privilege: "db".into(),
            rule: "glass".into(),
            reason: "database down".into(),
            duration: 1800,
            review_by: "2026-01-02 03:04:05Z".into(),
        },
        BreakglassReviewed {
            grant: g(),
            user: "alice".into(),
            reviewer: "bob".into(),
            outcome: "drill".into(),
            comment: "quarterly drill".into(),
            late: false,
        },
        BreakglassReviewOverdue {
            grant: g(),
            user: "alice".into(),
            review_by: "2026-01-02 03:04:05Z".into(),
        },
        GrantExtended {
            grant: g(),
            uid: 1001,
            user: "alice".into(),
            privilege: "db".into(),
            by: "bob, carol".into(),
            reason: "the restore takes longer".into(),
            seconds: 1800,
            expires: "2026-01-02 03:04:05Z".into(),
        },
        RequestDecided {
            request: "r0123456789ab".into(),
            uid: 1001,
            user: "alice".into(),
            privilege: "db".into(),
            state: "approved".into(),
            by: "bob, carol".into(),
            why: "quorum of 2".into(),
            grant: "g0123456789ab".into(),
        },
        GrantTombstoned {
            grant: g(),
            state: "revoked".into(),
            ok: true,
            error: String::new(),
        },
        GrantEndRecorded {
            grant: g(),
            state: "dropped".into(),
            ended: "2026-01-02 03:04:05Z".into(),
        },
        TombstonesFailed {
            error: "/var/lib/jitd/ended-grants: No space left on device".into(),
        },
        AuditDbWriteFailed {
            error: "database is locked".into(),
            lost: "event=grant.applied grant=g0123456789ab uid=1001".into(),
        },
        NotifyFailed {
            note: "request.pending:r0123456789ab".into(),
            kind: "request.pending".into(),
            sink: "webhook ops".into(),
            attempts: 5,
            error: "connection refused".into(),
        },
    ];
    all.extend(super::ledger_samples::samples());
    all
}
