//! `approval = "hook"`: a rule decided by the external decision hook, whose answer is one
//! approver's vote; a hook path missing or misplaced is an error at its position, and the
//! older form (`approval = "quorum"` naming the notifier, plus `hook`) still loads.

use super::*;

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
fn approval_hook_makes_the_notifier_one_approver_beside_the_people_named() {
    let mut p = parse(&with_rule(
        "approval = \"hook\"\nhook = \"/usr/local/libexec/jitd-ticket-check\"\n",
    ))
    .unwrap()
    .policy;
    p.hook_votes_as("jitd-notify");
    let rule = p.rule("dba").unwrap();
    assert_eq!(
        rule.hook.as_deref(),
        Some("/usr/local/libexec/jitd-ticket-check")
    );
    let q = rule.quorum.as_ref().unwrap();
    assert_eq!((q.approvals, q.denials), (1, 1));
    assert!(q.is_approver("jitd-notify", &[]));
    assert!(!q.is_approver("bob", &[]));

    // With people too: the hook and one person, when approvals = 2.
    let mut p = parse(&with_rule(
        "approval = \"hook\"\nhook = \"/x/check\"\napprovers = [\"bob\"]\napprovals = 2\n",
    ))
    .unwrap()
    .policy;
    p.hook_votes_as("jitd-notify");
    let q = p.rule("dba").unwrap().quorum.as_ref().unwrap();
    assert!(q.is_approver("jitd-notify", &[]) && q.is_approver("bob", &[]));
    assert_eq!(q.approvals, 2);
    assert_eq!(
        messages(&with_rule(
            "approval = \"hook\"\nhook = \"/x/check\"\napprovers = [\"bob\"]\napprovals = 3\n"
        )),
        [
            "13:13: approvals = 3 but only 2 account(s) can approve (the decision hook, bob): no request could ever be granted"
        ]
    );
}

#[test]
fn approval_hook_without_its_path_is_an_error_at_the_key() {
    assert_eq!(
        messages(&with_rule("approval = \"hook\"\n")),
        [
            "10:12: approval = \"hook\" needs hook = \"/path/to/program\" (run by jitd-notify; its answer is one approver's vote)"
        ]
    );
    assert_eq!(
        messages(&with_rule("approval = \"hook\"\nhook = \"check\"\n")),
        ["11:8: hook must be an absolute path"]
    );
    let got = messages(&with_rule("approval = \"auto\"\nhook = \"/x/check\"\n"));
    assert!(
        got[0].starts_with("11:8: hook applies only to approval = \"hook\" or \"quorum\""),
        "{got:?}"
    );
    let got = messages(&with_rule("approval = \"vote\"\n"));
    assert!(
        got[0].contains("approval must be \"auto\", \"quorum\" or \"hook\""),
        "{got:?}"
    );
}

#[test]
fn the_quorum_form_with_a_hook_still_loads_and_adds_no_approver() {
    let mut p = parse(&with_rule(
        "approval = \"quorum\"\napprovers = [\"bob\"]\nhook = \"/x/check\"\n",
    ))
    .unwrap()
    .policy;
    p.hook_votes_as("jitd-notify");
    let q = p.rule("dba").unwrap().quorum.as_ref().unwrap();
    assert!(!q.is_approver("jitd-notify", &[]), "only when named");
    assert_eq!(p.rule("dba").unwrap().hook.as_deref(), Some("/x/check"));
}
