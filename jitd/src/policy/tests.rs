use std::path::{Path, PathBuf};

use super::*;
use crate::terms::Via;

/// A host with users alice (1001), bob (1002), root; groups webops, docker, root, sudo.
struct FakeHost;

impl Accounts for FakeHost {
    fn user_uid(&self, name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "alice" => Some(1001),
            "bob" => Some(1002),
            _ => None,
        }
    }
    fn group_gid(&self, name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "sudo" => Some(27),
            "docker" => Some(999),
            "webops" => Some(2000),
            _ => None,
        }
    }
    fn user_groups(&self, name: &str) -> Vec<String> {
        match name {
            "bob" => vec!["bob".into(), "webops".into()],
            other => vec![other.into()],
        }
    }
    fn path_exists(&self, p: &Path) -> bool {
        p.starts_with("/usr/bin")
    }
}

const GOOD: &str = r#"
[privilege.nginx-admin]
kind = "sudo"
description = "Restart or reload nginx"
commands = ["/usr/bin/systemctl restart nginx", "/usr/bin/systemctl reload nginx"]

[privilege.docker]
kind = "group"
group = "docker"
on_end = "terminate"

[[rule]]
name = "web team"
users = ["alice"]
groups = ["webops"]
privileges = ["nginx-admin", "docker"]
max_duration = "1h"
default_duration = "15m"
reason_min_chars = 10
ticket_pattern = "OPS-[0-9]+"
max_active = 2

[[rule]]
name = "clampers"
users = ["root"]
privileges = ["nginx-admin"]
max_duration = "30m"
over_max = "clamp"
reason_required = false
"#;

fn parse(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    Policy::parse_str(Path::new("p.toml"), text, &FakeHost)
}

fn good() -> Policy {
    parse(GOOD).unwrap().policy
}

/// The single error of `text`, as "line:col: message".
fn error(text: &str) -> String {
    let errors = parse(text).expect_err("must be refused");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    format!("{}:{}: {}", e.line, e.column, e.message)
}

fn who(name: &str) -> Requester {
    Requester {
        uid: FakeHost.user_uid(name).unwrap_or(5000),
        name: name.into(),
        groups: FakeHost.user_groups(name),
    }
}

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
fn a_valid_policy_with_both_kinds_loads() {
    let loaded = parse(GOOD).unwrap();
    let p = &loaded.policy;
    let nginx = p.privilege("nginx-admin").unwrap();
    assert_eq!(nginx.pam_services, vec!["sudo", "sudo-i"]);
    assert_eq!(
        nginx.describe(),
        "as root: /usr/bin/systemctl restart nginx, /usr/bin/systemctl reload nginx"
    );
    match &nginx.kind {
        PrivilegeKind::Sudo {
            run_as_uid,
            commands,
            password_each_time,
            ..
        } => {
            assert_eq!(
                (*run_as_uid, commands.len(), *password_each_time),
                (0, 2, false)
            );
        }
        other => panic!("{other:?}"),
    }
    let docker = p.privilege("docker").unwrap();
    assert_eq!(
        docker.kind,
        PrivilegeKind::Group {
            group: GroupName::parse("docker").unwrap(),
            gid: 999
        }
    );
    assert_eq!(docker.on_end, OnEnd::Terminate);
    assert!(docker.pam_services.is_empty());
    assert_eq!(p.rules().len(), 2);
    assert_eq!(p.rules()[0].default_secs, 900);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn syntax_errors_have_line_and_column() {
    assert_eq!(
        error("[privilege.x]\nkind = \"sudo\"\nkind = \"group\"\n")
            .split(':')
            .take(2)
            .collect::<Vec<_>>(),
        ["3", "1"]
    );
    let e = error("[[rule]]\nname = \"r\"\nuserz = [\"alice\"]\n");
    assert!(e.starts_with("3:1: unknown field `userz`"), "{e}");
    let e = error("[privilege.x]\nkind = \"sudo\"\ncommands = \"/usr/bin/id\"\n");
    assert!(e.starts_with("3:12: invalid type"), "{e}");
}

#[test]
fn unsafe_commands_are_refused_where_they_are_written() {
    for (cmd, why) in [
        ("systemctl restart nginx", "absolute path"),
        ("/usr/bin/*", "wildcards"),
        ("ALL", "absolute path"),
        ("/usr/bin/vim /etc/*", "wildcards"),
        ("/usr/bin/../bin/sh", "normalised"),
    ] {
        let text = format!("[privilege.p]\nkind = \"sudo\"\ncommands = [\n  \"{cmd}\",\n]\n");
        let e = error(&text);
        assert!(e.starts_with("4:3: invalid command"), "{cmd}: {e}");
        assert!(e.contains(why), "{cmd}: {e}");
    }
}

#[test]
fn missing_groups_users_and_sensitive_groups_are_errors() {
    let e = error("[privilege.g]\nkind = \"group\"\ngroup = \"nosuch\"\n");
    assert_eq!(e, "3:9: group nosuch does not exist on this host");
    let e = error("[privilege.g]\nkind = \"group\"\ngroup = \"sudo\"\n");
    assert!(e.starts_with("3:9: group sudo is as good as root"), "{e}");
    assert!(
        parse("[privilege.g]\nkind = \"group\"\ngroup = \"sudo\"\nallow_sensitive_group = true\n")
            .is_ok()
    );
    let e =
        error("[privilege.s]\nkind = \"sudo\"\nrun_as = \"ghost\"\ncommands = [\"/usr/bin/id\"]\n");
    assert_eq!(e, "3:10: run_as user ghost does not exist on this host");
    let e = error(
        "[privilege.s]\nkind = \"group\"\ngroup = \"docker\"\ncommands = [\"/usr/bin/id\"]\n",
    );
    assert!(
        e.starts_with("4:12: commands is only for kind = \"sudo\""),
        "{e}"
    );
}

#[test]
fn names_sudoers_would_misread_are_refused() {
    let rule = |users: &str| {
        format!(
            "{GOOD}\n[[rule]]\nname = \"x\"\nusers = [{users}]\nprivileges = [\"docker\"]\nmax_duration = \"1h\"\n"
        )
    };
    for bad in ["\"ALL\"", "\"Alice\"", "\"%admin\"", "\"#0\"", "\"a,b\""] {
        let errors = parse(&rule(bad)).expect_err(bad);
        assert!(
            errors[0].message.starts_with("invalid user name"),
            "{bad}: {errors:?}"
        );
    }
    let e = error("[privilege.Bad_Name]\nkind = \"group\"\ngroup = \"docker\"\n");
    assert!(e.starts_with("1:12: invalid privilege name"), "{e}");
}

#[test]
fn dangling_and_inconsistent_rules_are_reported_together() {
    let text = r#"
[privilege.a]
kind = "group"
group = "docker"

[[rule]]
name = "r1"
users = ["alice"]
privileges = ["a", "missing"]
max_duration = "1h"
default_duration = "2h"

[[rule]]
name = "r2"
privileges = ["a"]
max_duration = "10y"
approval = "two-approvers"
"#;
    let errors = parse(text).expect_err("refused");
    let got: Vec<String> = errors
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
        .collect();
    assert_eq!(got.len(), 5, "{got:#?}");
    assert!(
        got[0].starts_with("9:20: no privilege named \"missing\" (defined: a)"),
        "{got:?}"
    );
    assert_eq!(
        got[1],
        "11:20: default_duration is longer than max_duration"
    );
    assert_eq!(got[2], "14:8: rule \"r2\" names no users and no groups");
    assert!(
        got[3].starts_with("16:16: max_duration: unexpected 'y'"),
        "{got:?}"
    );
    assert!(
        got[4].starts_with("17:12: approval mode \"two-approvers\" is not supported yet"),
        "{got:?}"
    );
}

#[test]
fn a_bad_ticket_pattern_is_an_error_at_its_position() {
    let text = GOOD.replace(
        "ticket_pattern = \"OPS-[0-9]+\"",
        "ticket_pattern = \"OPS-[0-9\"",
    );
    let errors = parse(&text).expect_err("refused");
    assert_eq!((errors[0].line, errors[0].column), (20, 18));
    assert!(errors[0].message.contains("not a valid regular expression"));
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
            deny("already 2 live grant(s) under rule \"web team\" (at most 2); drop one first (jitctl status, jitctl drop ID)"),
            deny("already 2 live grant(s) under rule \"web team\" (at most 2); drop one first (jitctl status, jitctl drop ID)")),
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
        vec!["no privilege named nope (defined: docker, nginx-admin)".to_string()]
    );
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "jitd-policy-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn files_of_a_directory_form_one_policy_in_name_order() {
    let dir = temp_dir();
    std::fs::write(dir.join("20-rules.toml"), "[[rule]]\nname = \"r\"\nusers = [\"alice\"]\nprivileges = [\"p\"]\nmax_duration = \"1h\"\n").unwrap();
    std::fs::write(
        dir.join("10-privs.toml"),
        "[privilege.p]\nkind = \"group\"\ngroup = \"docker\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("README"), "not toml").unwrap();
    std::fs::write(dir.join(".hidden.toml"), "garbage = ").unwrap();
    let src = PolicySource {
        file: Some(dir.join("absent.toml")),
        dir: Some(dir.clone()),
    };
    let loaded = Policy::load(&src, &FakeHost).unwrap();
    assert_eq!(
        loaded.files,
        vec![dir.join("10-privs.toml"), dir.join("20-rules.toml")]
    );
    assert_eq!(loaded.policy.rules().len(), 1);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("does not exist")),
        "{:?}",
        loaded.warnings
    );

    std::fs::write(
        dir.join("30-dup.toml"),
        "\n[privilege.p]\nkind = \"group\"\ngroup = \"docker\"\n",
    )
    .unwrap();
    let errors = Policy::load(&src, &FakeHost).unwrap_err();
    assert_eq!(errors[0].file, dir.join("30-dup.toml"));
    assert_eq!((errors[0].line, errors[0].column), (2, 12));
    assert!(
        errors[0].message.contains("already defined at"),
        "{errors:?}"
    );
    std::fs::remove_file(dir.join("30-dup.toml")).unwrap();

    std::fs::write(dir.join("40-huge.toml"), "#".repeat(1024 * 1024 + 1)).unwrap();
    let errors = Policy::load(&src, &FakeHost).unwrap_err();
    assert!(errors[0].message.contains("at most 1 MiB"), "{errors:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_directory_is_an_empty_policy_with_a_warning() {
    let src = PolicySource {
        file: None,
        dir: Some(PathBuf::from("/nonexistent/policy.d")),
    };
    let loaded = Policy::load(&src, &FakeHost).unwrap();
    assert!(loaded.policy.rules().is_empty());
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("no rules"))
    );
}

#[test]
fn unreferenced_privileges_and_missing_commands_are_warnings() {
    let loaded = parse("[privilege.p]\nkind = \"sudo\"\ncommands = [\"/opt/tool/run\"]\n").unwrap();
    let msgs: Vec<&str> = loaded.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("/opt/tool/run does not exist")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("not named by any rule")),
        "{msgs:?}"
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics_the_parser(text in ".{0,400}") {
        let _ = parse(&text);
    }

    #[test]
    fn arbitrary_toml_like_text_never_panics_the_parser(
        text in "(\\[privilege\\.[a-z]{1,4}\\]\n|\\[\\[rule\\]\\]\n|[a-z_]{1,12} = (\"[^\"\n]{0,20}\"|[0-9]{1,4}|true|\\[\"[^\"\n]{0,10}\"\\])\n){0,12}"
    ) {
        let _ = parse(&text);
    }
}
