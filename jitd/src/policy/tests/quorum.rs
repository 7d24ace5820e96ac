//! `approval = "quorum"`: the terms load with their defaults, every wrong value is an error
//! at its position, and a quorum rule's decision is "pending".

use super::*;
use crate::terms::Via;

const PRIV: &str = "[privilege.db]\nkind = \"sudo\"\ncommands = [\"/usr/bin/true\"]\n";

fn with_rule(rule: &str) -> String {
    format!(
        "{PRIV}\n[[rule]]\nname = \"dba\"\nusers = [\"alice\"]\nprivileges = [\"db\"]\nmax_duration = \"1h\"\n{rule}"
    )
}

fn messages(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("refused")
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
        .collect()
}

#[test]
fn a_quorum_rule_loads_with_its_defaults_and_decides_pending() {
    let text = format!(
        "same_person = [[\"alice\", \"bob\"]]\n{}",
        with_rule("approval = \"quorum\"\napprovers = [\"root\", \"%webops\"]\napprovals = 2\n")
    );
    let loaded = parse(&text).unwrap();
    let rule = &loaded.policy.rules()[0];
    let q = rule.quorum.as_ref().unwrap();
    assert_eq!((q.approvals, q.denials, q.request_ttl_secs), (2, 1, 3600));
    assert_eq!(q.approvers_text(), "root, %webops");
    assert!(loaded.policy.same_person().same("alice", "bob"));
    let who = Requester {
        uid: 1001,
        name: "alice".into(),
        groups: vec!["alice".into()],
    };
    let none = |_: &str| 0;
    let d = decide(
        &loaded.policy,
        &Facts {
            who: &who,
            privilege: "db",
            duration_secs: Some(600),
            reason: "restore the orders table",
            ticket: "",
            via: Via::Bus,
            active_under: &none,
            held: None,
        },
    );
    assert!(
        matches!(
            d,
            Decision::Pending {
                duration_secs: 600,
                approvals: 2,
                ..
            }
        ),
        "{d:?}"
    );
    let e = loaded.policy.explain(&who, "db");
    assert_eq!(e.approval, Some(crate::terms::ApprovalMode::Quorum));
    assert!(
        e.reasons
            .iter()
            .any(|r| r.contains("2 of root, %webops must approve within 1h")),
        "{:?}",
        e.reasons
    );
}

#[test]
fn bad_approval_terms_are_errors_at_their_position() {
    let got = messages(&with_rule(
        "approval = \"quorum\"\napprovers = [\"root\", \"%webops\"]\napprovals = 3\n",
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("12:13: approvals = 3 but only 2 account(s) can approve (bob, root)"),
        "{got:?}"
    );
    let got = messages(&with_rule("approval = \"quorum\"\n"));
    assert!(
        got[0].contains("approval = \"quorum\" needs approvers"),
        "{got:?}"
    );
    let got = messages(&with_rule(
        "approval = \"quorum\"\napprovers = [\"Bad Name\", \"%\"]\ndenials = 0\nrequest_ttl = \"30d\"\n",
    ));
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got[0].starts_with("11:14: approver: "), "{got:?}");
    assert!(got[1].starts_with("11:26: approver group: "), "{got:?}");
    assert_eq!(got[2], "12:11: denials must be between 1 and 100");
    assert_eq!(got[3], "13:15: request_ttl: at most 7d");
    let got = messages(&with_rule("approvers = [\"root\"]\n"));
    assert_eq!(
        got,
        [
            "10:13: approvers applies only to approval = \"quorum\" (this rule approves automatically)"
        ]
    );
    let got = messages(&format!("same_person = [[\"alice\"]]\n{}", with_rule("")));
    assert_eq!(got, ["1:16: a same_person set names at least two accounts"]);
}

#[test]
fn mfa_is_ssh_sk_or_an_error_at_its_position() {
    let loaded = parse(&with_rule("mfa = \"ssh-sk\"\n")).unwrap();
    assert!(loaded.policy.rules()[0].mfa);
    assert!(!parse(&with_rule("")).unwrap().policy.rules()[0].mfa);
    let m = messages(&with_rule("mfa = \"totp\"\n"));
    assert!(
        m.iter()
            .any(|m| m.starts_with("10:7: ") && m.contains("\"ssh-sk\"")),
        "{m:?}"
    );
}
