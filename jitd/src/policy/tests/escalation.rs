//! `escalate_after` / `escalate_to`: loaded when whole, every wrong value an error at its place.

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

const QUORUM: &str = "approval = \"quorum\"\napprovers = [\"bob\"]\n";

#[test]
fn escalation_tiers_load_and_are_due_a_step_apart() {
    let p = parse(&with_rule(&format!(
        "{QUORUM}escalate_after = \"15m\"\nescalate_to = [\"%webops\", \"bob\"]\n"
    )))
    .unwrap();
    let e = p.policy.rule("dba").unwrap().escalation.clone().unwrap();
    assert_eq!(e.tiers, ["%webops", "bob"]);
    assert_eq!(e.due_ms(1000, 2), 1000 + 30 * 60_000);
}

#[test]
fn bad_escalation_is_an_error_at_its_position() {
    let got = messages(&with_rule(&format!("{QUORUM}escalate_after = \"15m\"\n")));
    assert_eq!(
        got,
        ["12:18: escalate_after needs escalate_to = [\"%group\", ...]"]
    );
    let got = messages(&with_rule(
        "escalate_after = \"15m\"\nescalate_to = [\"bob\"]\n",
    ));
    assert!(
        got[0].starts_with("10:18: escalate_after applies only to approval = \"quorum\""),
        "{got:?}"
    );
    let got = messages(&with_rule(&format!(
        "{QUORUM}escalate_after = \"10s\"\nescalate_to = [\"a\", \"b\", \"c\", \"d\"]\n"
    )));
    assert_eq!(got, ["12:18: escalate_after: at least 1m"]);
    let got = messages(&with_rule(&format!(
        "{QUORUM}escalate_after = \"1m\"\nescalate_to = [\"a\", \"b\", \"c\", \"d\"]\n"
    )));
    assert!(
        got[0].starts_with("13:15: escalate_to names 1 to 3 tiers"),
        "{got:?}"
    );
}
