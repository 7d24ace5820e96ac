//! The report over the records jitd itself writes, and suggestions applied to a policy jitd
//! loads.

use std::path::Path;

use super::gather;
use super::generate::Config;
use super::policy_view::PolicyView;
use super::tests::{fixture, one};

/// The records jitd itself writes (not the generator's names): a quorum decision is
/// `request.decided state=approved by="bob, carol"` after the `request.allowed`, a human
/// denial and an expiry are `request.decided` too, and a command under a grant is
/// `command.run`.
#[test]
fn the_daemon_s_own_record_names_count() {
    use super::input::{AuditSource, Event, HostSummary};
    struct Records(Vec<Event>);
    impl AuditSource for Records {
        fn read(&self, each: &mut dyn FnMut(&Event)) -> Result<Vec<HostSummary>, String> {
            self.0.iter().for_each(each);
            Ok(Vec::new())
        }
    }
    let ev = |seq: i64, at_ms: i64, kind: &str, fields: &[(&str, &str)]| Event {
        host: "db-7".into(),
        seq,
        at_ms,
        kind: kind.into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let grant = [("grant", "g0123456789ab")];
    let records = Records(vec![
        ev(
            1,
            1_000,
            "request.pending",
            &[("request", "r1"), ("user", "alice")],
        ),
        ev(
            2,
            61_000,
            "request.allowed",
            &[
                ("grant", "g0123456789ab"),
                ("user", "alice"),
                ("privilege", "db"),
                ("rule", "dba"),
                ("duration", "600"),
                ("approval", "quorum"),
            ],
        ),
        ev(
            3,
            61_000,
            "request.decided",
            &[
                ("request", "r1"),
                ("state", "approved"),
                ("by", "bob, carol"),
                ("grant", "g0123456789ab"),
            ],
        ),
        ev(
            4,
            70_000,
            "command.run",
            &[grant[0], ("argv", "/usr/bin/id -u")],
        ),
        ev(
            5,
            80_000,
            "request.decided",
            &[("request", "r2"), ("state", "expired")],
        ),
        ev(
            6,
            90_000,
            "request.decided",
            &[
                ("request", "r3"),
                ("state", "denied"),
                ("by", "bob"),
                ("why", "no ticket"),
            ],
        ),
    ]);
    let (facts, _) = gather(&records).unwrap();
    let g = facts.all().next().unwrap();
    assert_eq!(g.approvers, vec!["bob".to_string(), "carol".to_string()]);
    assert_eq!(g.approval, "human");
    assert_eq!(g.commands, 1);
    assert_eq!(facts.approval_latency_ms, vec![60_000]);
    assert_eq!(facts.expired_requests, 1);
    assert!(
        facts
            .denials
            .iter()
            .any(|d| d.why == "denied by bob: no ticket")
    );
}

/// An auto-approve suggestion, applied, is a policy jitd loads: a quorum rule with the people
/// who approved so far and a daily cap, placed before the rule it takes over from so it is
/// the one that decides.
#[test]
fn an_applied_auto_approve_suggestion_loads_and_comes_first() {
    struct Everyone;
    impl crate::policy::Accounts for Everyone {
        fn user_uid(&self, name: &str) -> Option<u32> {
            Some(1000 + name.len() as u32)
        }
        fn user_name(&self, _uid: u32) -> Option<String> {
            None
        }
        fn group_gid(&self, name: &str) -> Option<u32> {
            Some(2000 + name.len() as u32)
        }
        fn user_groups(&self, name: &str) -> Vec<String> {
            vec![name.into()]
        }
        fn path_exists(&self, _path: &Path) -> bool {
            true
        }
    }
    let f = fixture();
    let s = one(&f.suggestions, "auto-approve-candidate", "bob/db-restore");
    let text = super::generate::generate(&Config::default()).policy;
    let view = PolicyView::default();
    let applied = super::apply::apply(&text, s, &view).unwrap();
    let checked = crate::policy::Policy::check_texts(
        &[(std::path::PathBuf::from("policy.toml"), applied.clone())],
        &Everyone,
    );
    assert!(checked.errors.is_empty(), "{:?}\n{applied}", checked.errors);
    let policy = checked.policy.unwrap();
    assert_eq!(policy.rules()[0].name, "auto-bob-db-restore", "{applied}");
    assert!(policy.rules()[0].quorum.is_some());
}
