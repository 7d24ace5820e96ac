//! Decisions and explanations over a loaded policy.

use super::*;
use crate::terms::Via;

fn decide(
    p: &Policy,
    user: &str,
    privilege: &str,
    secs: Option<u64>,
    reason: &str,
    ticket: &str,
    active: u32,
) -> Decision {
    let w = who(user);
    super::decide(
        p,
        &Facts {
            who: &w,
            privilege,
            duration_secs: secs,
            reason,
            ticket,
            via: Via::Bus,
            active_under: &|_| active,
            held: None,
        },
    )
}

#[test]
fn decisions_follow_the_first_matching_rule() {
    let p = good();
    let ok = |d: Decision| match d {
        Decision::Allow {
            duration_secs,
            clamped,
            rule,
        } => (rule, duration_secs, clamped),
        other => panic!("not allowed: {other:?}"),
    };
    let denied = |d: Decision| match d {
        Decision::Deny { why } => why,
        other => panic!("allowed: {other:?}"),
    };
    assert_eq!(
        ok(decide(
            &p,
            "alice",
            "nginx-admin",
            None,
            "restart after config",
            "OPS-1",
            0
        )),
        ("web team".into(), 900, false)
    );
    assert_eq!(
        ok(decide(
            &p,
            "bob",
            "docker",
            Some(60),
            "by group membership",
            "OPS-22",
            1
        ))
        .1,
        60
    );
    assert!(
        denied(decide(&p, "alice", "nosuch", None, "x", "", 0))
            .starts_with("no privilege named nosuch")
    );
    assert_eq!(
        denied(decide(
            &p,
            "carol",
            "docker",
            None,
            "long enough reason",
            "OPS-1",
            0
        )),
        "no rule lets carol request docker"
    );
    assert!(
        denied(decide(
            &p,
            "alice",
            "docker",
            Some(7200),
            "long enough reason",
            "OPS-1",
            0
        ))
        .contains("above the maximum 1h")
    );
    assert_eq!(
        ok(decide(&p, "root", "nginx-admin", Some(7200), "", "", 0)),
        ("clampers".into(), 1800, true)
    );
    assert!(
        denied(decide(&p, "alice", "docker", None, "", "OPS-1", 0)).contains("requires a reason")
    );
    assert!(
        denied(decide(&p, "alice", "docker", None, "too short", "OPS-1", 0))
            .contains("at least 10 characters")
    );
    assert!(
        denied(decide(
            &p,
            "alice",
            "docker",
            None,
            "long enough reason",
            "",
            0
        ))
        .contains("requires a ticket")
    );
    assert!(
        denied(decide(
            &p,
            "alice",
            "docker",
            None,
            "long enough reason",
            "OPS-1x",
            0
        ))
        .contains("does not match")
    );
    assert!(
        denied(decide(
            &p,
            "alice",
            "docker",
            None,
            "long enough reason",
            "OPS-1",
            2
        ))
        .contains("already 2 live grant(s)")
    );
}

/// Added to [`GOOD`] for the decision table: a rule that takes requests from the sudo prompt,
/// with a sudo and a group privilege.
const AT_THE_PROMPT: &str = r#"
[privilege.logs]
kind = "sudo"
commands = ["/usr/bin/journalctl"]

[privilege.web-group]
kind = "group"
group = "webops"

[[rule]]
name = "at the prompt"
users = ["alice"]
groups = ["webops"]
privileges = ["logs", "web-group"]
max_duration = "1h"
reason_required = false
interactive = true
"#;

/// A decision as a table cell: the whole message, so a reworded refusal shows up here.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Allow(String, u64, bool),
    Deny(String),
}

impl From<Decision> for Want {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Allow {
                rule,
                duration_secs,
                clamped,
            } => Want::Allow(rule, duration_secs, clamped),
            Decision::Deny { why } => Want::Deny(why),
            pending @ Decision::Pending { .. } => panic!("no rule asks for approval: {pending:?}"),
        }
    }
}

struct Row {
    what: &'static str,
    who: Requester,
    privilege: &'static str,
    secs: Option<u64>,
    reason: &'static str,
    ticket: &'static str,
    active: u32,
    held: bool,
    bus: Want,
    pam: Want,
}

#[test]
fn the_decision_table() {
    let p = parse(&format!("{GOOD}{AT_THE_PROMPT}")).unwrap().policy;
    // Matches "web team" and "at the prompt" by group, but gpasswd could misread the name.
    let odd = || Requester {
        uid: 1003,
        name: "carol.smith".into(),
        groups: vec!["webops".into()],
    };
    let held = Held {
        grant: "g0123456789ab",
        until: "2030-01-02 03:04:05 UTC",
    };
    let allow = |rule: &str, secs: u64, clamped: bool| Want::Allow(rule.into(), secs, clamped);
    let deny = |why: &str| Want::Deny(why.into());
    let not_at_prompt = |rule: &str, privilege: &str| {
        Want::Deny(format!(
            "rule \"{rule}\" does not take requests from the sudo prompt (interactive = false): run `jitctl elevate {privilege} --for ... --reason ...`"
        ))
    };
    let already = |privilege: &str| {
        Want::Deny(format!(
            "you already hold {privilege} (grant g0123456789ab) until 2030-01-02 03:04:05 UTC: use it, or drop it first with `jitctl drop g0123456789ab`"
        ))
    };
    let portable = || {
        Want::Deny(format!(
            "group privileges need a portable user name: {}",
            UserName::parse("carol.smith").unwrap_err()
        ))
    };
    let long = "long enough reason";
    let row = |what, who, privilege, secs, reason, ticket, active, held, bus, pam| Row {
        what,
        who,
        privilege,
        secs,
        reason,
        ticket,
        active,
        held,
        bus,
        pam,
    };
    #[rustfmt::skip]
    let rows = [
        row("unknown privilege", who("alice"), "nosuch", None, long, "OPS-1", 0, false,
            deny("no privilege named nosuch; `jitctl explain` on a name from the policy shows what you may request"),
            deny("no privilege named nosuch; `jitctl explain` on a name from the policy shows what you may request")),
        row("no rule matches", who("carol"), "docker", None, long, "OPS-1", 0, false,
            deny("no rule lets carol request docker"),
            deny("no rule lets carol request docker")),
        row("above the maximum, refused", who("alice"), "docker", Some(7200), long, "OPS-1", 0, false,
            deny("2h is above the maximum 1h of rule \"web team\"; ask for 1h or less"),
            deny("2h is above the maximum 1h of rule \"web team\"; ask for 1h or less")),
        row("zero duration", who("alice"), "docker", Some(0), long, "OPS-1", 0, false,
            deny("a duration must be at least 1s"),
            deny("a duration must be at least 1s")),
        row("no reason", who("alice"), "docker", None, "  ", "OPS-1", 0, false,
            deny("rule \"web team\" requires a reason (--reason \"...\")"),
            deny("rule \"web team\" requires a reason (--reason \"...\")")),
        row("short reason", who("alice"), "docker", None, "too short", "OPS-1", 0, false,
            deny("the reason must be at least 10 characters under rule \"web team\" (it has 9)"),
            deny("the reason must be at least 10 characters under rule \"web team\" (it has 9)")),
        row("no ticket", who("alice"), "docker", None, long, "", 0, false,
            deny("rule \"web team\" requires a ticket matching OPS-[0-9]+ (--ticket ID)"),
            deny("rule \"web team\" requires a ticket matching OPS-[0-9]+ (--ticket ID)")),
        row("ticket not matching", who("alice"), "docker", None, long, "OPS-1x", 0, false,
            deny("ticket \"OPS-1x\" does not match OPS-[0-9]+ required by rule \"web team\""),
            deny("ticket \"OPS-1x\" does not match OPS-[0-9]+ required by rule \"web team\"")),
        row("max_active reached", who("alice"), "docker", None, long, "OPS-1", 2, false,
            deny("already 2 live grant(s) under rule \"web team\" (max_active_rule = 2, shared by its privileges); drop one first (jitctl status, jitctl drop ID)"),
            deny("already 2 live grant(s) under rule \"web team\" (max_active_rule = 2, shared by its privileges); drop one first (jitctl status, jitctl drop ID)")),
        row("allowed with the default duration", who("alice"), "nginx-admin", None, long, "OPS-1", 1, false,
            allow("web team", 900, false),
            not_at_prompt("web team", "nginx-admin")),
        row("allowed by group membership", who("bob"), "docker", Some(60), long, "OPS-22", 0, false,
            allow("web team", 60, false),
            not_at_prompt("web team", "docker")),
        row("above the maximum, clamped", who("root"), "nginx-admin", Some(7200), "", "", 0, false,
            allow("clampers", 1800, true),
            not_at_prompt("clampers", "nginx-admin")),
        row("an interactive rule", who("alice"), "logs", None, "", "", 0, false,
            allow("at the prompt", 900, false),
            allow("at the prompt", 900, false)),
        row("already held", who("alice"), "logs", Some(600), "", "", 0, true,
            already("logs"),
            already("logs")),
        row("already held, rule not interactive", who("alice"), "nginx-admin", None, long, "OPS-1", 0, true,
            already("nginx-admin"),
            not_at_prompt("web team", "nginx-admin")),
        row("group privilege, portable name", who("bob"), "web-group", None, "", "", 0, false,
            allow("at the prompt", 900, false),
            allow("at the prompt", 900, false)),
        row("group privilege, name not portable", odd(), "web-group", None, "", "", 0, false,
            portable(),
            portable()),
        row("group privilege, name not portable, already held", odd(), "web-group", None, "", "", 0, true,
            already("web-group"),
            already("web-group")),
        row("group privilege, name not portable, rule not interactive", odd(), "docker", None, long, "OPS-1", 0, false,
            portable(),
            not_at_prompt("web team", "docker")),
        row("sudo privilege, name not portable", odd(), "logs", None, "", "", 0, false,
            allow("at the prompt", 900, false),
            allow("at the prompt", 900, false)),
    ];
    for row in &rows {
        for (via, want) in [(Via::Bus, &row.bus), (Via::Pam, &row.pam)] {
            let got = super::decide(
                &p,
                &Facts {
                    who: &row.who,
                    privilege: row.privilege,
                    duration_secs: row.secs,
                    reason: row.reason,
                    ticket: row.ticket,
                    via,
                    active_under: &|_| row.active,
                    held: row.held.then_some(held),
                },
            );
            assert_eq!(&Want::from(got), want, "{} (via {via})", row.what);
        }
    }
}

#[test]
fn explain_says_what_applies_and_why() {
    let p = good();
    let e = p.explain(&who("bob"), "docker");
    assert!(e.allowed);
    assert_eq!(e.rule.as_deref(), Some("web team"));
    assert!(
        e.reasons
            .iter()
            .any(|r| r == "rule \"web team\" matches you by membership of group webops"),
        "{:?}",
        e.reasons
    );
    assert_eq!((e.default_secs, e.max_secs), (900, 3600));
    assert_eq!(e.ticket_pattern.as_deref(), Some("OPS-[0-9]+"));
    assert_eq!(e.approval, Some(ApprovalMode::Auto));
    let e = p.explain(&who("carol"), "docker");
    assert!(!e.allowed);
    assert_eq!(e.approval, None);
    assert!(
        e.reasons.last().unwrap().contains("do not include carol"),
        "{:?}",
        e.reasons
    );
    let e = p.explain(&who("alice"), "nope");
    assert!(!e.allowed);
    assert_eq!(
        e.reasons,
        vec!["no privilege named nope; `jitctl privileges` lists what you may request".to_string()],
        "no list of the policy's privileges for someone who may be eligible for none (finding 20)"
    );
}
