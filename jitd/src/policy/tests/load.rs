//! Loading: the schema, where errors and warnings are reported, and the parser on any input.

use super::*;

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
        got[4].starts_with("17:12: approval must be \"auto\" or \"quorum\", not \"two-approvers\""),
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
