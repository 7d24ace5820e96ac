//! jitctl as people and scripts meet it, each command run as a real user against the real
//! daemon: what `privileges` shows, what `policy check` finds, that `--json` is always exactly
//! one document, that a closed pipe ends jitctl quietly, and the exit codes scripts rely on.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::Path;
use std::process::{Command, Output};

use jitd_tests::*;

const POLICY: &str = r#"
[privilege.web]
kind = "sudo"
description = "Restart the web server"
commands = ["/usr/bin/id -u"]

[privilege.ops]
kind = "group"
description = "Operations group"
group = "jitdcliops"

[[rule]]
name = "web team"
users = ["alice"]
privileges = ["web"]
max_duration = "1h"
default_duration = "10m"
reason_min_chars = 8

[[rule]]
name = "on-call"
groups = ["jitdclioncall"]
privileges = ["ops"]
max_duration = "30m"
reason_required = false
"#;

fn jitctl(user: &str, args: &[&str]) -> Output {
    let mut full = vec!["jitctl"];
    full.extend_from_slice(args);
    as_user(user, &full)
}

fn setup() -> Sandbox {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    ensure_group("jitdcliops");
    ensure_group("jitdclioncall");
    add_to_group("alice", "jitdclioncall");
    sb
}

/// The one JSON document on stdout, or a failure naming what was printed.
fn one_document(o: &Output, what: &str) -> serde_json::Value {
    let text = stdout(o);
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}):\n{text}{}", stderr(o)));
    assert_eq!(docs.len(), 1, "{what}: exactly one document:\n{text}");
    let doc = docs.into_iter().next().unwrap_or_default();
    assert_eq!(doc["schema"], 1, "{what}: a schema field: {doc}");
    doc
}

/// A user in two rules sees both privileges, each with its rule's terms, and nothing else.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn privileges_shows_a_user_in_two_rules_everything_they_may_request() {
    let sb = setup();
    let _d = Daemon::start(&sb, "cli-privileges", POLICY);
    let o = jitctl("alice", &["privileges"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for needle in [
        "web (sudo)",
        "Restart the web server",
        "as root: /usr/bin/id -u",
        "rule \"web team\": default 10m, at most 1h; a reason of at least 8 characters",
        "ops (group)",
        "member of group jitdcliops",
        "rule \"on-call\": default 15m, at most 30m",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    let doc = one_document(&jitctl("alice", &["--json", "privileges"]), "privileges");
    let list = doc["privileges"].as_array().unwrap();
    let rules: Vec<(&str, &str)> = list
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(rules, [("ops", "on-call"), ("web", "web team")]);
    assert_eq!(list[1]["gives"]["run_as"], "root");
    assert_eq!(list[1]["gives"]["commands"][0], "/usr/bin/id -u");
    assert_eq!(list[0]["gives"]["group"], "jitdcliops");
    // bob is in neither rule.
    let o = jitctl("bob", &["privileges"]);
    assert!(
        stdout(&o).contains("No privilege you may request"),
        "{}",
        stdout(&o)
    );
}

/// A file with six mistakes: all six in one run, each at its position, nothing else.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn policy_check_names_all_six_mistakes_where_they_are_and_nothing_else() {
    let sb = setup();
    let dir = sb.dir.join("cli-check");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("six.toml");
    std::fs::write(
        &file,
        r#"[privilege.web]
kind = "sudo"
commands = ["systemctl restart nginx"]

[privilege.ops]
kind = "group"
group = "jitdnosuchgroup"

[[rule]]
name = "on-call"
users = ["alcie"]
privileges = ["web", "ops", "dbadmin"]
max_duration = "1 hour"
colour = "blue"
"#,
    )
    .unwrap();
    let o = run(Command::new("jitctl").args(["policy", "check"]).arg(&file));
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    let f = file.display().to_string();
    let found: Vec<String> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with(&f))
        .map(|l| l[f.len()..].to_string())
        .collect();
    let expected = [
        ":3:13: error: invalid command \"systemctl restart nginx\": must start with an absolute path",
        ":7:9: error: group jitdnosuchgroup does not exist on this host",
        ":11:10: warning: user alcie does not exist on this host",
        ":12:29: error: no privilege named \"dbadmin\"",
        ":13:16: error: max_duration:",
        ":14:1: error: unknown key `colour` in rule \"on-call\"",
    ];
    assert_eq!(found.len(), 6, "six findings:\n{}", stderr(&o));
    for (got, want) in found.iter().zip(expected) {
        assert!(got.starts_with(want), "{want:?}, got {got:?}");
    }
    assert!(
        stdout(&o).is_empty(),
        "findings go to stderr: {}",
        stdout(&o)
    );

    // The same file as JSON: one document with the six findings.
    let doc = one_document(
        &run(Command::new("jitctl")
            .args(["--json", "policy", "check"])
            .arg(&file)),
        "policy check",
    );
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["diagnostics"].as_array().unwrap().len(), 6, "{doc}");

    // Warnings alone pass, unless --strict; a file the directory skips is named.
    let warn = dir.join("warn");
    std::fs::create_dir_all(&warn).unwrap();
    std::fs::write(
        warn.join("site.toml"),
        POLICY.replace("users = [\"alice\"]", "users = [\"alcie\"]"),
    )
    .unwrap();
    std::fs::write(warn.join("old.conf"), POLICY).unwrap();
    let o = run(Command::new("jitctl").args(["policy", "check"]).arg(&warn));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}: warning: skipped",
            warn.join("old.conf:1:1").display()
        )),
        "{err}"
    );
    assert!(err.contains("user alcie does not exist"), "{err}");
    let o = run(Command::new("jitctl")
        .args(["policy", "check", "--strict"])
        .arg(&warn));
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(stderr(&o).contains("error: user alcie"), "{}", stderr(&o));
}

/// Every command prints exactly one JSON document with --json: results, refusals, usage
/// errors and answers of "no" alike, errors as {"error": {"code", "exit", "message"}}.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn every_json_output_is_exactly_one_document() {
    let sb = setup();
    let d = Daemon::start(&sb, "cli-json", POLICY);
    let bad = sb.dir.join("cli-json-bad.toml");
    std::fs::write(&bad, "[privilege.x]\nkind = \"sudo\"\ncolour = 1\n").unwrap();
    let good = d.dir.join("policy.toml");
    let (bad, good) = (bad.to_str().unwrap(), good.to_str().unwrap());
    let cases: &[(&str, &[&str], i32)] = &[
        (
            "alice",
            &["elevate", "web", "--for", "5m", "--reason", "json check"],
            0,
        ),
        ("alice", &["status"], 0),
        ("alice", &["list", "--ended"], 0),
        ("alice", &["privileges"], 0),
        ("alice", &["explain", "web"], 0),
        ("bob", &["explain", "web"], 1),
        ("alice", &["elevate", "nosuch"], 7),
        ("alice", &["elevate", "web", "--for", "10y"], 2),
        ("alice", &["drop"], 2),
        ("alice", &["no-such-command"], 2),
        ("alice", &["elevate", "web", "--reason", "short"], 3),
        ("alice", &["list", "--all"], 4),
        ("alice", &["drop", "g000000000000"], 7),
        ("root", &["list", "--all", "--ended"], 0),
        ("root", &["audit", "verify"], 0),
        ("root", &["reload"], 0),
        ("root", &["policy", "check", bad], 10),
        ("root", &["policy", "check", good], 0),
    ];
    for (user, args, code) in cases {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let o = jitctl(user, &full);
        let what = format!("{user}: jitctl {}", full.join(" "));
        assert_eq!(o.status.code(), Some(*code), "{what}: {}", stderr(&o));
        let doc = one_document(&o, &what);
        let answered = doc.get("decision").is_some() || doc.get("ok").is_some();
        if doc["decision"] == "deny" {
            assert!(doc["max_secs"].is_null(), "a no has no terms: {doc}");
        }
        if *code != 0 && !answered {
            assert_eq!(doc["error"]["exit"], *code, "{what}: {doc}");
            assert!(doc["error"]["code"].is_string(), "{what}: {doc}");
            assert!(doc["error"]["message"].is_string(), "{what}: {doc}");
        }
    }
    let doc = one_document(&jitctl("alice", &["--json", "status"]), "status");
    let grant = &doc["grants"][0];
    assert_eq!(doc["truncated"], false);
    let expires = grant["expires"].as_str().unwrap();
    assert!(
        expires.ends_with('Z') && expires.len() == 20,
        "RFC 3339 UTC beside the epoch ms: {grant}"
    );
    assert!(grant["expires_ms"].is_i64());
}

/// A reader that stops early (`| head`, `| true`) ends jitctl quietly, never with a panic.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_closed_pipe_ends_jitctl_quietly() {
    let sb = setup();
    let _d = Daemon::start(&sb, "cli-pipe", POLICY);
    let o = jitctl(
        "alice",
        &["elevate", "web", "--for", "5m", "--reason", "pipe check"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for command in [
        "jitctl completions bash",
        "jitctl --json list --all --ended",
    ] {
        // The reader is gone before jitctl writes a byte.
        let script = format!("(sleep 0.3; exec {command}) | true; echo ${{PIPESTATUS[0]}}");
        let o = run(Command::new("bash").args(["-c", &script]));
        assert!(
            !stderr(&o).contains("panicked"),
            "{command}: {}",
            stderr(&o)
        );
        assert_eq!(
            stdout(&o).trim(),
            "141",
            "{command} ends by SIGPIPE like other tools: {}",
            stderr(&o)
        );
    }
}

/// The exit codes of `jitctl --help`, as scripts see them.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn exit_codes_follow_the_documented_table() {
    let sb = setup();
    // Nobody owns the bus name yet: 5, and what to do about it.
    let o = jitctl("alice", &["status"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("systemctl start jitd"),
        "{}",
        stderr(&o)
    );
    let d = Daemon::start(&sb, "cli-exit", POLICY);
    let code = |user: &str, args: &[&str]| jitctl(user, args).status.code();
    assert_eq!(
        code("alice", &["elevate", "nosuch", "--reason", "x"]),
        Some(7)
    );
    assert_eq!(code("alice", &["explain", "web"]), Some(0));
    assert_eq!(code("bob", &["explain", "web"]), Some(1));
    assert_eq!(code("alice", &["list", "--all"]), Some(4));
    assert_eq!(code("alice", &["elevate", "web", "--for", "9x"]), Some(2));
    assert_eq!(
        code("alice", &["elevate", "web", "--reason", "short"]),
        Some(3)
    );

    // Dropping twice: the second is a success that says so; the owner's reason is kept.
    let o = jitctl(
        "alice",
        &[
            "--json",
            "elevate",
            "web",
            "--for",
            "5m",
            "--reason",
            "exit codes",
        ],
    );
    let id = one_document(&o, "elevate")["grant"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = jitctl("alice", &["drop", &id, "--reason", "finished early"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("dropped by owner: finished early"),
        "{}",
        stdout(&o)
    );
    let o = jitctl("alice", &["drop", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("had already ended"), "{}", stdout(&o));
    let o = run(Command::new("jitctl").args(["revoke", &id]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(code("bob", &["drop", &id]), Some(7), "not bob's to see");

    // A broken policy on reload: 10, and the policy in force stays.
    d.set_policy(&format!("{POLICY}\n[privilege.broken]\nkind = \"nope\"\n"));
    let o = run(Command::new("jitctl").arg("reload"));
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{}:",
            Path::new(&d.dir).join("policy.toml").display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(code("alice", &["explain", "web"]), Some(0));
}

/// `jitctl elevate` on a terminal, through a real pseudo-terminal (`script`): it asks for a
/// reason only when the rule wants one, and says how long it must be.
fn on_a_terminal(user: &str, command: &str, typed: &str) -> Output {
    let script = format!("printf '{typed}' | script -qec '{command}' /dev/null");
    run(Command::new("su").args([user, "-s", "/bin/sh", "-c", &script]))
}

/// What people read: aligned tables with headers, times with their zone, durations as people
/// say them, nothing cut without a mark, a gate grant in plain words with a warning when
/// pam_jit would not see it, and a reason asked for only when the rule needs one.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn human_output_reads_naturally() {
    let sb = setup();
    let policy = format!(
        "{POLICY}\n[privilege.gated]\nkind = \"gate\"\npam_services = [\"cli-gated\"]\n\n\
         [[rule]]\nname = \"gated\"\nusers = [\"alice\"]\nprivileges = [\"gated\"]\n\
         max_duration = \"1h\"\nreason_required = false\nticket_pattern = \"INC-[0-9]+\"\n"
    );
    let _d = Daemon::start(&sb, "cli-human", &policy);

    // No reason needed: no question (the next line typed is not swallowed).
    let o = on_a_terminal("alice", "jitctl elevate ops --for 15m", "sudo -l\\n");
    let said = stdout(&o);
    assert!(!said.contains("Reason"), "{said}");
    assert!(said.contains("Granted ops"), "{said}");
    // A reason needed: asked, with its minimum length.
    let long = "restart after the config change of ticket OPS-1234 in the evening window";
    let o = on_a_terminal(
        "alice",
        "jitctl elevate web --for 15m",
        &format!("{long}\\n"),
    );
    let said = stdout(&o);
    assert!(said.contains("Reason (at least 8 characters"), "{said}");
    assert!(said.contains("Granted web"), "{said}");
    let zone = stdout(&run(Command::new("date").arg("+%Z")))
        .trim()
        .to_string();
    assert!(
        said.contains(&format!(" {zone} (in 15m)")),
        "the deadline with its zone, rounded: {said}"
    );

    let o = jitctl("alice", &["status"]);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ID"), "a header: {text}");
    let column = |line: &str| line.find("ops").or_else(|| line.find("web"));
    let header_at = lines[0].find("PRIVILEGE");
    assert!(
        lines[1..].iter().all(|l| column(l) == header_at),
        "privileges aligned under their header: {text}"
    );
    let o = run(Command::new("jitctl").args(["list", "--all"]));
    let text = stdout(&o);
    assert!(
        text.contains("restart after the config change of tick…"),
        "a long reason is cut with a mark: {text}"
    );
    assert!(text.contains("web team"), "the rule is shown: {text}");

    // A ticket the rule wants is asked for, saying what it must match; a gate grant says
    // what it opens, and that pam_jit is not there to see it.
    let o = on_a_terminal("alice", "jitctl elevate gated --for 5m", "INC-42\\n");
    let said = stdout(&o);
    assert!(said.contains("Ticket (matching INC-[0-9]+)"), "{said}");
    assert!(!said.contains("Reason"), "{said}");
    assert!(
        said.contains("your own rule for cli-gated works while it lasts"),
        "{said}"
    );
    assert!(
        said.contains("/etc/pam.d/cli-gated does not load pam_jit"),
        "{said}"
    );
}

/// Each privilege is held once at a time, and a rule's privileges do not share a budget unless
/// it sets `max_active_rule` (then explain says so).
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn max_active_is_per_privilege_unless_the_rule_sets_a_budget() {
    let sb = setup();
    let both = r#"
[privilege.uid]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[privilege.gid]
kind = "sudo"
commands = ["/usr/bin/id -g"]

[[rule]]
name = "both"
users = ["alice"]
privileges = ["uid", "gid"]
max_duration = "1h"
reason_required = false
"#;
    let d = Daemon::start(&sb, "cli-budget", both);
    for p in ["uid", "gid"] {
        let o = jitctl("alice", &["elevate", p, "--for", "5m"]);
        assert!(o.status.success(), "{p}: {}", stderr(&o));
    }
    let o = jitctl("alice", &["elevate", "uid", "--for", "5m"]);
    assert_eq!(o.status.code(), Some(3), "held once: {}", stderr(&o));
    for g in jitctl("alice", &["status"])
        .stdout
        .split(|b| *b == b'\n')
        .skip(1)
    {
        let id = String::from_utf8_lossy(g);
        if let Some(id) = id.split_whitespace().next() {
            assert!(jitctl("alice", &["drop", id]).status.success());
        }
    }
    d.set_policy(&format!("{both}max_active_rule = 1\n"));
    assert!(run(Command::new("jitctl").arg("reload")).status.success());
    assert!(
        jitctl("alice", &["elevate", "uid", "--for", "5m"])
            .status
            .success()
    );
    let o = jitctl("alice", &["elevate", "gid", "--for", "5m"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("max_active_rule = 1"), "{}", stderr(&o));
    let o = jitctl("alice", &["explain", "gid"]);
    assert!(
        stdout(&o).contains("at most 1 live grant(s) under this rule, shared by uid, gid"),
        "{}",
        stdout(&o)
    );
}
