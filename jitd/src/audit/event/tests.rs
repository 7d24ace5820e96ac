use std::collections::BTreeSet;

use super::samples::{gid, samples};
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
