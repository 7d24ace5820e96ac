use std::collections::BTreeSet;

use super::*;
use std::fmt::{Display, Write as _};

use crate::audit::Escaped;

/// A record written field by field the way the daemon's call sites wrote them before the
/// typed events: the reference the lines must stay byte-identical to.
struct OldRecord(String);

impl OldRecord {
    fn new(kind: &str) -> Self {
        Self(format!("event={kind}"))
    }
    fn field(mut self, key: &str, value: impl Display) -> Self {
        let _ = write!(self.0, " {key}={}", Escaped(&value.to_string()));
        self
    }
    fn line(&self) -> String {
        self.0.clone()
    }
}

fn gid(s: &str) -> GrantId {
    GrantId::parse(s).unwrap()
}

/// One value of every variant, with text that needs quoting where the field is free text.
fn samples() -> Vec<AuditEvent> {
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

#[test]
fn the_samples_cover_every_variant_once() {
    let samples = samples();
    let seen: BTreeSet<&str> = samples.iter().map(AuditEvent::variant).collect();
    let all: BTreeSet<&str> = AuditEvent::VARIANTS.iter().copied().collect();
    assert_eq!(seen, all);
    assert_eq!(samples.len(), AuditEvent::VARIANTS.len(), "one sample each");
    for e in &samples {
        let i = AuditEvent::VARIANTS.iter().position(|v| *v == e.variant());
        assert_eq!(AuditEvent::KINDS[i.unwrap()], e.kind());
    }
}

#[test]
fn every_sample_round_trips_through_both_forms() {
    for e in samples() {
        let line = e.to_line();
        assert_eq!(AuditEvent::from_line(&line).as_ref(), Ok(&e), "{line}");
        let json = e.to_json();
        assert_eq!(AuditEvent::from_json(&json).as_ref(), Ok(&e), "{json}");
        let via_json = AuditEvent::from_line(&line).unwrap().to_json();
        let back = AuditEvent::from_json(&via_json).unwrap().to_line();
        assert_eq!(back, line);
        assert!(line.is_ascii() && json.is_ascii(), "{line}\n{json}");
    }
}

#[test]
fn lines_are_what_the_field_builder_writes() {
    for e in samples() {
        let mut old = OldRecord::new(e.kind());
        for (key, value) in e.fields() {
            old = old.field(key, value);
        }
        assert_eq!(e.to_line(), old.line());
    }
}

/// The records as the daemon's call sites build them today, with the same values.
#[test]
fn lines_are_byte_identical_to_todays_records() {
    let g = gid("g0123456789ab");
    let applied = OldRecord::new("grant.applied")
        .field("grant", &g)
        .field("uid", 1001u32)
        .field("user", "alice")
        .field("privilege", "restart-web")
        .field("kind", GrantKind::Sudo)
        .field("expires", crate::clock::utc(1_767_323_045_000));
    let typed = AuditEvent::GrantApplied {
        grant: g.clone(),
        uid: 1001,
        user: "alice".into(),
        privilege: "restart-web".into(),
        kind: GrantKind::Sudo,
        expires: crate::clock::utc(1_767_323_045_000),
    };
    assert_eq!(typed.to_line(), applied.line());
    assert_eq!(
        typed.to_line(),
        "event=grant.applied grant=g0123456789ab uid=1001 user=alice privilege=restart-web \
         kind=sudo expires=\"2026-01-02 03:04:05Z\""
    );

    let orphan = AuditEvent::ReconcileOrphanRemoved {
        grant: g.clone(),
        ok: false,
    };
    assert_eq!(
        orphan.to_line(),
        "event=reconcile.orphan_removed grant=g0123456789ab ok=false"
    );

    let recall = AuditEvent::RecallFinished {
        grant: g.clone(),
        terminated: vec![3, 17],
        killed: vec![],
    };
    assert_eq!(
        recall.to_line(),
        "event=recall.finished grant=g0123456789ab terminated=3,17 killed=\"\""
    );

    let expired = OldRecord::new("grant.expired")
        .field("grant", &g)
        .field("uid", 7u32)
        .field("user", "bob")
        .field("privilege", "db")
        .field("why", "expired")
        .field("late_ms", -3i64);
    let typed = AuditEvent::GrantExpired {
        grant: g.clone(),
        uid: 7,
        user: "bob".into(),
        privilege: "db".into(),
        why: "expired".into(),
        late_ms: -3,
    };
    assert_eq!(typed.to_line(), expired.line());

    let denied = OldRecord::new("request.denied")
        .field("uid", 1001u32)
        .field("user", "alice")
        .field("via", "pam")
        .field("privilege", "db")
        .field("duration", 0u64)
        .field("reason", "")
        .field("ticket", "")
        .field("why", "no rule");
    let typed = AuditEvent::RequestDenied {
        uid: 1001,
        user: "alice".into(),
        via: Via::Pam,
        privilege: "db".into(),
        duration: 0,
        reason: String::new(),
        ticket: String::new(),
        why: "no rule".into(),
    };
    assert_eq!(typed.to_line(), denied.line());
    assert!(typed.to_line().contains(" via=pam "));

    let polkit = OldRecord::new("admin.polkit")
        .field("caller", 1002u32)
        .field("method", "Revoke")
        .field("action", crate::polkit::MANAGE)
        .field("answer", "error: timed out");
    let typed = AuditEvent::AdminPolkit {
        caller: 1002,
        method: "Revoke".into(),
        action: crate::polkit::MANAGE.into(),
        answer: PolkitAnswer::from(&Err("timed out".to_string())),
    };
    assert_eq!(typed.to_line(), polkit.line());

    let warn = OldRecord::new("grant.db_write_failed").field("error", "g0123456789ab: full");
    let typed = AuditEvent::GrantDbWriteFailed {
        error: "g0123456789ab: full".into(),
    };
    assert_eq!(typed.to_line(), warn.line());

    assert_eq!(AuditEvent::ClockChanged {}.to_line(), "event=clock.changed");
    assert_eq!(
        AuditEvent::SessionRecordClosed {
            session: "s0123456789ab".into()
        }
        .to_line(),
        "event=session.closed session=s0123456789ab"
    );
}

#[test]
fn json_keeps_order_and_types() {
    let e = AuditEvent::RecallStarted {
        grant: gid("g0123456789ab"),
        uid: 1001,
        pids: vec![5, 6],
    };
    assert_eq!(
        e.to_json(),
        r#"{"event":"recall.started","grant":"g0123456789ab","uid":1001,"pids":[5,6]}"#
    );
    let e = AuditEvent::GrantApplyFailed {
        grant: gid("g0123456789ab"),
        error: "x".into(),
        rolled_back: true,
    };
    assert!(e.to_json().ends_with(r#""error":"x","rolled_back":true}"#));
    let members_in_another_order =
        r#"{"pids":[5,6],"uid":1001,"event":"recall.started","grant":"g0123456789ab"}"#;
    assert_eq!(
        AuditEvent::from_json(members_in_another_order)
            .unwrap()
            .variant(),
        "RecallStarted"
    );
}

#[test]
fn levels_are_todays() {
    use AuditEvent::*;
    for e in samples() {
        let want = match &e {
            ReconcileTempRemoved { .. }
            | DaemonReconciled { .. }
            | RequestAllowed { .. }
            | GrantApplied { .. }
            | GrantExpired { .. }
            | GrantDropped { .. }
            | GrantRevoked { .. }
            | GrantRolledBack { .. }
            | PolicyLoaded { .. }
            | PolicyRouted { .. }
            | SessionOpened { .. }
            | SessionClosed { .. }
            | SessionRecordClosed { .. }
            | SweepDone { .. }
            | CommandExited { .. }
            | GrantMarkerWritten { .. } => Level::Info,
            CommandRun { after_expiry, .. } if !after_expiry => Level::Info,
            CommandRun { .. } | CommandRefused { .. } => Level::Notice,
            RequestInvalid { .. }
            | MarkerExpired { .. }
            | GrantEndRecorded { .. }
            | RequestDenied { .. }
            | RevokeDenied { .. }
            | RecallStarted { .. }
            | RecallFinished { .. }
            | CallsThrottled { .. }
            | RecallSetgidStripped { .. }
            | RequestPending { .. }
            | RequestVoted { .. }
            | RequestSigned { .. }
            | MfaProven { .. }
            | RequestActionRefused { .. }
            | RequestDecided { .. }
            | GrantExtended { .. }
            | AuditPurged { .. }
            | SuggestionAccepted { .. }
            | ClockChanged {} => Level::Notice,
            BreakglassUsed { .. } => Level::Alert,
            BreakglassReviewed { outcome, .. } if outcome == "misuse" => Level::Alert,
            BreakglassReviewed { .. } => Level::Notice,
            RecallFilesChecked {
                cut_short, failed, ..
            } if cut_short.is_empty() && *failed == 0 => Level::Notice,
            AdminPolkit { answer, .. } | RequestReauth { answer, .. } => answer.level(),
            _ => Level::Warning,
        };
        assert_eq!(e.level(), want, "{}", e.kind());
        if e.fields().iter().map(|(k, _)| *k).eq(["error"]) {
            assert_eq!(e.level(), Level::Warning, "{}", e.kind());
        }
    }
    let polkit = |answer| AdminPolkit {
        caller: 0,
        method: "List".into(),
        action: "a".into(),
        answer,
    };
    assert_eq!(polkit(PolkitAnswer::Yes).level(), Level::Notice);
    assert_eq!(polkit(PolkitAnswer::No).level(), Level::Info);
    assert_eq!(
        polkit(PolkitAnswer::Error(String::new())).level(),
        Level::Warning
    );
}

#[test]
fn old_approved_records_read_as_allowed() {
    let old = "event=request.approved grant=g0123456789ab uid=1001 user=alice via=pam \
               privilege=restart-web rule=oncall duration=1800 clamped=false \
               reason=\"restart after config change\" ticket=\"\" approval=auto";
    let e = AuditEvent::from_line(old).unwrap();
    assert_eq!(e.variant(), "RequestAllowed");
    assert_eq!(e.kind(), "request.allowed");
    assert_eq!(
        e.to_line(),
        old.replacen("request.approved", "request.allowed", 1)
    );
    let json = e
        .to_json()
        .replacen("request.allowed", "request.approved", 1);
    assert_eq!(AuditEvent::from_json(&json), Ok(e));
}

#[test]
fn both_shapes_of_session_closed_read_back() {
    let short = AuditEvent::from_line("event=session.closed session=s0123456789ab").unwrap();
    assert_eq!(short.variant(), "SessionRecordClosed");
    let full = "event=session.closed session=s0123456789ab grant=g0123456789ab uid=1 \
                seconds=-4 how=closed";
    assert_eq!(
        AuditEvent::from_line(full).unwrap().variant(),
        "SessionClosed"
    );
    let err = AuditEvent::from_line(&full.replace("uid=1", "uid=x")).unwrap_err();
    assert!(err.message.contains("\"uid\""), "{err}");
}
