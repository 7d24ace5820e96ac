//! Loading: the schema, where errors and warnings are reported, and the parser on any input.

use super::*;

#[test]
fn a_valid_policy_with_both_kinds_loads() {
    let loaded = parse(GOOD).unwrap();
    let p = &loaded.policy;
    let nginx = p.privilege("nginx-admin").unwrap();
    // A sudo privilege opens its own commands only: the service sudo routes them to.
    assert_eq!(nginx.pam_services, vec!["jitd-nginx-admin"]);
    assert_eq!(p.routes().len(), 1);
    assert_eq!(p.routes()[0].commands.len(), 2);
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
        error("[privilege.x]\nkind = \"group\"\nkind = \"group\"\ngroup = \"webops\"\n")
            .split(':')
            .take(2)
            .collect::<Vec<_>>(),
        ["3", "1"]
    );
    let e = error(
        "[privilege.a]\nkind = \"group\"\ngroup = \"webops\"\n\
         [[rule]]\nname = \"r\"\nuserz = [\"alice\"]\nusers = [\"alice\"]\n\
         privileges = [\"a\"]\nmax_duration = \"1h\"\n",
    );
    assert!(
        e.starts_with("6:1: unknown key `userz` in rule \"r\"; did you mean `users`?"),
        "{e}"
    );
    let e = error("[privilege.x]\nkind = \"sudo\"\ncommands = \"/usr/bin/id\"\n");
    assert_eq!(
        e,
        "3:12: commands is a list: write commands = [\"/usr/bin/id\"]"
    );
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
        "[privilege.s]\nkind = \"group\"\ngroup = \"webops\"\ncommands = [\"/usr/bin/id\"]\n",
    );
    assert!(
        e.starts_with("4:12: commands is only for kind = \"sudo\""),
        "{e}"
    );
}

#[test]
fn root_equivalent_groups_are_found_by_name_and_by_gid() {
    let group = |g: &str| format!("[privilege.g]\nkind = \"group\"\ngroup = \"{g}\"\n");
    for (g, why) in [
        ("docker", "the Docker socket"),
        ("jitd-admins", "jitd's admin_group"),
        ("rootalias", "gid 0 is root's group"),
        ("dockeralias", "it shares gid 999 with docker"),
    ] {
        let e = error(&group(g));
        assert!(
            e.starts_with(&format!("3:9: group {g} is as good as root ("))
                && e.contains(why)
                && e.ends_with(
                    "set allow_sensitive_group = true on this privilege if that is intended"
                ),
            "{e}"
        );
        assert!(parse(&format!("{}allow_sensitive_group = true\n", group(g))).is_ok());
    }
    assert!(parse(&group("webops")).is_ok(), "an ordinary group");
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
group = "webops"

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
        got[0].starts_with("9:20: no privilege named \"missing\"; defined: a"),
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
        got[4].starts_with(
            "17:12: approval must be \"auto\", \"quorum\" or \"hook\", not \"two-approvers\""
        ),
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
    assert_eq!((errors[0].line, errors[0].column), (21, 18));
    assert!(errors[0].message.contains("not a valid regular expression"));
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

const GATE_RULES: &str = r#"
[privilege.cheap]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[privilege.db-restart]
kind = "gate"
commands = ["/usr/bin/systemctl restart db"]
session_bound = true

[privilege.su-gate]
kind = "gate"
pam_services = ["su"]

[[rule]]
name = "ops"
users = ["alice"]
privileges = ["cheap", "db-restart", "su-gate"]
max_duration = "1h"
reason_required = false
"#;

#[test]
fn a_gate_privilege_opens_its_own_commands_and_nothing_else_does() {
    let p = parse(GATE_RULES).unwrap().policy;
    assert_eq!(
        p.privilege("db-restart").unwrap().pam_services,
        vec!["jitd-db-restart"]
    );
    assert_eq!(
        p.privilege("cheap").unwrap().pam_services,
        vec!["jitd-cheap"]
    );
    assert_eq!(p.privilege("su-gate").unwrap().pam_services, vec!["su"]);
    assert_eq!(
        p.privilege("db-restart").unwrap().describe(),
        "pam_jit opens the sudoers rule for: /usr/bin/systemctl restart db"
    );
}

#[test]
fn privileges_the_gate_cannot_tell_apart_are_refused_where_written() {
    // A gate command also in a sudo privilege: the cheap grant would open the guarded rule.
    let shared_cmd = GATE_RULES.replace(
        "commands = [\"/usr/bin/id -u\"]",
        "commands = [\"/usr/bin/id -u\", \"/usr/bin/systemctl restart db\"]",
    );
    let e = error(&shared_cmd);
    assert!(
        e.starts_with(
            "8:13: command /usr/bin/systemctl restart db is already named by privilege cheap"
        ),
        "{e}"
    );
    assert!(
        e.contains("give each command of a gate privilege to that privilege alone"),
        "{e}"
    );
    // Two gate privileges on one service.
    let shared_service = GATE_RULES.replace(
        "commands = [\"/usr/bin/systemctl restart db\"]",
        "commands = [\"/usr/bin/systemctl restart db\"]\npam_services = [\"su\"]",
    );
    let e = error(&shared_service);
    assert!(
        e.contains("PAM service su is already named by privilege db-restart"),
        "{e}"
    );
    // A sudo privilege naming services, and a service in jitd's own namespace.
    let e = parse(&GATE_RULES.replace(
        "commands = [\"/usr/bin/id -u\"]",
        "commands = [\"/usr/bin/id -u\"]\npam_services = [\"sudo\"]",
    ))
    .expect_err("refused");
    assert!(
        e[0].message
            .contains("pam_services is only for kind = \"gate\""),
        "{e:?}"
    );
    let e = parse(&GATE_RULES.replace("[\"su\"]", "[\"jitd-cheap\"]")).expect_err("refused");
    assert!(e[0].message.contains("are jitd's own"), "{e:?}");
    // Sudo privileges may share commands: each grant's drop-in still says what it runs.
    let two_sudo = GATE_RULES.replace(
        "[privilege.su-gate]",
        "[privilege.cheap2]\nkind = \"sudo\"\ncommands = [\"/usr/bin/id -u\"]\n\n[privilege.su-gate]",
    );
    let p = parse(&two_sudo).unwrap().policy;
    let s = &p.privilege("cheap").unwrap().pam_services;
    assert_eq!(s, &p.privilege("cheap2").unwrap().pam_services);
    assert!(s[0].starts_with("jitd-shared-"), "{s:?}");
}

/// One run names every mistake of a file, each once, where it is written, and nothing else.
#[test]
fn six_mistakes_are_six_diagnostics_with_no_cascade() {
    let text = r#"[privilege.web]
kind = "sudo"
commands = ["systemctl restart nginx"]

[privilege.ops]
kind = "group"
group = "nosuchgroup"

[[rule]]
name = "on-call"
users = ["alcie"]
privileges = ["web", "ops", "dbb"]
max_duration = "1 hour"
colour = "blue"
"#;
    let checked = Policy::check_str(Path::new("p.toml"), text, &FakeHost);
    assert!(checked.policy.is_none());
    let warnings: Vec<String> = checked
        .warnings
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("11:10: user alcie does not exist"),
        "{warnings:?}"
    );
    let got: Vec<String> = checked
        .errors
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
        .collect();
    assert_eq!(got.len(), 5, "{got:#?}");
    assert!(got[0].starts_with("3:13: invalid command"), "{got:?}");
    assert!(
        got[1].starts_with("7:9: group nosuchgroup does not exist"),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("12:29: no privilege named \"dbb\"; did you mean \"db\"")
            || got[2].starts_with("12:29: no privilege named \"dbb\""),
        "{got:?}"
    );
    assert!(got[3].starts_with("13:16: max_duration:"), "{got:?}");
    assert!(
        got[4].starts_with("14:1: unknown key `colour` in rule \"on-call\""),
        "{got:?}"
    );
}

#[test]
fn a_number_for_a_duration_says_what_to_write_once() {
    let text = "[privilege.a]\nkind = \"group\"\ngroup = \"webops\"\n\
                [[rule]]\nname = \"r\"\nusers = [\"alice\"]\nprivileges = [\"a\"]\n\
                max_duration = 3600\n";
    assert_eq!(
        error(text),
        "8:16: max_duration is a duration in quotes with a unit: write max_duration = \"1h\""
    );
    let e = error("[privilege.a]\ngroup = \"webops\"\n");
    assert_eq!(
        e,
        "1:12: privilege a needs kind = \"sudo\", \"group\" or \"gate\""
    );
    let e = error("[privilege.a]\nkind = \"sudo\"\ncommands = [\"sudoedit /etc/hosts\"]\n");
    assert!(e.contains("sudoedit is not supported"), "{e}");
}

#[test]
fn warnings_say_why_a_policy_that_loads_is_still_wrong() {
    let text = r#"[privilege.shell]
kind = "sudo"
commands = ["/usr/bin/bash"]

[[rule]]
name = "first"
users = ["alice"]
privileges = ["shell"]
max_duration = "1h"

[[rule]]
name = "second"
users = ["alice"]
privileges = ["shell"]
max_duration = "1h"
reason_required = false
reason_min_chars = 20
interactive = true
ticket_pattern = "INC-[0-9]+"
"#;
    let loaded = parse(text).unwrap();
    let got: Vec<String> = loaded
        .warnings
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
        .collect();
    // (interactive = true with a ticket_pattern is fine: pam_jit's prompt asks for the ticket.)
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got[0].starts_with("3:13: /usr/bin/bash is a shell"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("12:8: rule \"second\" is never used for shell: rule \"first\""),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("17:20: reason_min_chars has no effect"),
        "{got:?}"
    );
}
