//! Samples of the command ledger's, the alerts' and retention's records, for the table tests
//! in `tests.rs`.

use super::AuditEvent;

pub(super) fn samples() -> Vec<AuditEvent> {
    use AuditEvent::*;
    vec![
        CommandRun {
            grant: "g0123456789ab".into(),
            uid: 1001,
            user: "alice".into(),
            uuid: "ae58fe3c7f-0117-48a7-9d01-49f2946321".into(),
            sudo_time: "2026-11-29 02:34:00Z".into(),
            runas: "root".into(),
            cwd: "/tmp".into(),
            tty: "/dev/pts/1".into(),
            argv: r#"["/usr/bin/id","-u"]"#.into(),
            after_expiry: false,
            iolog: "/var/lib/jitd/iolog/00/00/01".into(),
        },
        CommandRefused {
            grant: "g0123456789ab".into(),
            uid: 1001,
            user: "alice".into(),
            uuid: "797bc71704-8981-44bc-473b-c57440c9a7".into(),
            sudo_time: "2026-11-29 02:34:01Z".into(),
            runas: "root".into(),
            cwd: "/tmp".into(),
            tty: "".into(),
            argv: r#"["/usr/bin/cat","/etc/shadow"]"#.into(),
            why: "command not allowed".into(),
            after_expiry: true,
        },
        CommandExited {
            grant: "g0123456789ab".into(),
            uid: 1001,
            uuid: "ae58fe3c7f-0117-48a7-9d01-49f2946321".into(),
            sudo_time: "2026-11-29 02:34:00Z".into(),
            exit: 130,
            signal: "INT".into(),
            run_ms: 5,
        },
        LedgerProblem {
            uid: 1001,
            path: "/var/lib/jitd/ledger/1001.json".into(),
            problem: "truncated from 9767 to 0 bytes".into(),
            action: "read from the start".into(),
        },
        AlertRaised {
            rule: "sensitive-touch".into(),
            grant: "g0123456789ab".into(),
            uid: 1001,
            user: "alice".into(),
            detail: "/usr/bin/vi /etc/sudoers".into(),
        },
        AuditPurged {
            upto_seq: 1200,
            records: 1200,
            checkpoint: "9f2c".into(),
            older_than: "2025-10-25 03:00:00Z".into(),
        },
    ]
}
