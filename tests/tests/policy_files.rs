//! What jitd trusts in its own files: a group privilege that is as good as root needs an
//! explicit yes in the policy, and the policy and configuration files count only when root owns
//! them and nobody else may write them (as sudo treats sudoers).

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jitd_tests::*;

fn tool(args: &[&str]) -> Output {
    let o = run(Command::new(args[0]).args(&args[1..]));
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}

fn policy_check(file: &Path) -> Output {
    run(Command::new("jitctl").arg("policy").arg("check").arg(file))
}

fn group_privilege(group: &str, extra: &str) -> String {
    format!(
        "[privilege.p]\nkind = \"group\"\ngroup = \"{group}\"\n{extra}\n\
         [[rule]]\nname = \"r\"\nusers = [\"root\"]\nprivileges = [\"p\"]\nmax_duration = \"1h\"\n"
    )
}

fn gid_of(group: &str) -> String {
    let o = tool(&["getent", "group", group]);
    stdout(&o).split(':').nth(2).unwrap().to_string()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(0)).unwrap();
}

/// docker, lxd, incus-admin, libvirt, disk, kmem, shadow, sudo, wheel, admin, staff, adm, the
/// configured admin group, and any group sharing gid 0 or the gid of one of those: refused as a
/// group privilege, at the group's position, unless the privilege says
/// `allow_sensitive_group = true`.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn root_equivalent_groups_need_an_explicit_yes() {
    let sb = sandbox();
    let dir = sb.dir.join("sensitive");
    std::fs::create_dir_all(&dir).unwrap();
    let named = [
        "docker",
        "lxd",
        "incus-admin",
        "libvirt",
        "disk",
        "kmem",
        "shadow",
        "sudo",
        "wheel",
        "admin",
        "staff",
        "adm",
        "jitd-admins",
    ];
    for g in named {
        ensure_group(g);
    }
    if !run(Command::new("getent").args(["group", "jitdgidzero"]))
        .status
        .success()
    {
        tool(&["groupadd", "-o", "-g", "0", "jitdgidzero"]);
        tool(&["groupadd", "-o", "-g", &gid_of("docker"), "jitddockeralias"]);
    }
    for g in named
        .iter()
        .chain(&["jitdgidzero", "jitddockeralias"])
        .copied()
    {
        let file = dir.join(format!("{g}.toml"));
        std::fs::write(&file, group_privilege(g, "")).unwrap();
        let o = policy_check(&file);
        let out = stderr(&o);
        assert!(!o.status.success(), "{g} must be refused: {out}");
        assert!(
            out.contains(&format!("{}:3:9: error: ", file.display()))
                && out.contains("allow_sensitive_group = true"),
            "{g}: the refusal names the position and the way out: {out}"
        );
        std::fs::write(&file, group_privilege(g, "allow_sensitive_group = true\n")).unwrap();
        let o = policy_check(&file);
        assert!(
            o.status.success(),
            "{g} with the explicit yes: {}",
            stdout(&o)
        );
    }
    ensure_group("jitdplain");
    let file = dir.join("plain.toml");
    std::fs::write(&file, group_privilege("jitdplain", "")).unwrap();
    let o = policy_check(&file);
    assert!(o.status.success(), "an ordinary group: {}", stdout(&o));

    // The daemon's own admin group, whatever jitd.toml names it.
    ensure_group("jitdops");
    ensure_user("alice");
    let mut d = Daemon::start(
        &sb,
        "sensitive-admin-group",
        &group_privilege("jitdplain", ""),
    );
    d.set_config("admin_group", "\"jitdops\"");
    d.restart();
    d.set_policy(&group_privilege("jitdops", ""));
    let o = run(Command::new("jitctl").arg("reload"));
    assert!(
        !o.status.success(),
        "the admin group is as good as root: {}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("policy.toml:3:9: ") && stderr(&o).contains("jitdops"),
        "{}",
        stderr(&o)
    );
}

/// README's policy examples and the shipped policy's commented example load as they are.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_documented_policy_examples_load() {
    let sb = sandbox();
    ensure_user("alice");
    for g in ["docker", "oncall"] {
        ensure_group(g);
    }
    let dir = sb.dir.join("examples");
    std::fs::create_dir_all(&dir).unwrap();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let mut examples = Vec::new();
    let mut block: Option<String> = None;
    for line in readme.lines() {
        match (&mut block, line) {
            (None, "```toml") => block = Some(String::new()),
            (Some(text), "```") => {
                examples.push(std::mem::take(text));
                block = None;
            }
            (Some(text), l) => {
                text.push_str(l);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(!examples.is_empty(), "README has policy examples");
    let shipped = std::fs::read_to_string(repo.join("packaging/policy.toml")).unwrap();
    let uncommented: String = shipped
        .lines()
        .skip_while(|l| !l.starts_with("# [privilege"))
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
        .collect();
    examples.push(uncommented);
    for (i, text) in examples.iter().enumerate() {
        let file = dir.join(format!("example-{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let o = policy_check(&file);
        assert!(
            o.status.success(),
            "example {i} does not load:\n{text}\n{}",
            stderr(&o)
        );
    }
}

const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "base"
users = ["alice"]
privileges = ["whoami"]
max_duration = "1h"
reason_required = false
max_active = 2
"#;

const EXTRA: &str = r#"
[privilege.extra]
kind = "sudo"
commands = ["/usr/bin/id -g"]

[[rule]]
name = "extra"
users = ["alice"]
privileges = ["extra"]
max_duration = "1h"
reason_required = false
"#;

fn elevate(privilege: &str) -> Output {
    as_user(
        "alice",
        &[
            "jitctl", "elevate", privilege, "--for", "1m", "--reason", "x",
        ],
    )
}

/// `jitctl reload` refuses a policy with `file` in the wrong hands, says which file and how to
/// fix it, and the policy in force stays.
fn refused(d: &Daemon, file: &Path, fix: &str) {
    let o = run(Command::new("jitctl").arg("reload"));
    assert!(
        !o.status.success(),
        "{} must be refused: {}",
        file.display(),
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains(&file.display().to_string()) && err.contains(fix),
        "the refusal names the file and the fix ({fix}): {err}"
    );
    assert!(!elevate("extra").status.success(), "extra is not in force");
    let o = elevate("whoami");
    assert!(
        o.status.success(),
        "the last good policy stays: {}",
        stderr(&o)
    );
    let o = run(Command::new("jitctl").args(["--json", "list", "--all"]));
    for g in serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["grants"]
        .as_array()
        .unwrap()
    {
        let id = g["id"].as_str().unwrap();
        assert!(
            run(Command::new("jitctl").args(["revoke", id]))
                .status
                .success()
        );
    }
    assert!(d.log().contains("event=policy.rejected"));
}

/// A policy file owned by a user, a world-writable policy file, a group-writable policy.d and a
/// jitd.toml that others may write: each is refused, naming the file and the fix, and the last
/// good policy stays in force. `jitctl policy check` says so too: an error for root, a warning
/// for a user checking a draft of their own.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn policy_and_config_files_count_only_when_root_owned_and_not_writable_by_others() {
    let sb = sandbox();
    let alice = ensure_user("alice");
    let d = Daemon::start(&sb, "trust", POLICY);
    let policy = d.dir.join("policy.toml");
    let extra = d.dir.join("policy.d/50-extra.toml");
    let dir = d.dir.join("policy.d");
    std::fs::write(&extra, EXTRA).unwrap();

    chown(&extra, alice);
    refused(&d, &extra, &format!("chown root:root {}", extra.display()));
    chown(&extra, 0);
    chmod(&policy, 0o666);
    refused(&d, &policy, &format!("chmod 644 {}", policy.display()));
    chmod(&policy, 0o644);
    chmod(&dir, 0o775);
    refused(&d, &dir, &format!("chmod 755 {}", dir.display()));
    chmod(&dir, 0o755);
    let o = run(Command::new("jitctl").arg("reload"));
    assert!(o.status.success(), "fixed, it loads: {}", stderr(&o));
    assert!(elevate("extra").status.success());

    // jitd.toml names the tools jitd runs as root: in the wrong hands nothing starts from it.
    for (owner, mode) in [(0, 0o666), (alice, 0o644)] {
        chown(&d.config, owner);
        chmod(&d.config, mode);
        let o = d.oneshot("sweep");
        assert!(!o.status.success(), "sweep from an untrusted jitd.toml");
        let err = stderr(&o);
        assert!(
            err.contains(&d.config.display().to_string())
                && err.contains(&format!("chown root:root {}", d.config.display())),
            "{err}"
        );
    }
    chown(&d.config, 0);
    chmod(&d.config, 0o644);
    assert!(d.oneshot("sweep").status.success());

    // policy check: root gets an error, a user drafting in their own directory a warning.
    chmod(&policy, 0o666);
    let o = policy_check(&policy);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("error: "), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 644"), "{}", stderr(&o));
    chmod(&policy, 0o644);
    let drafts = sb.dir.join("alice-drafts");
    std::fs::create_dir_all(&drafts).unwrap();
    let draft = drafts.join("draft.toml");
    std::fs::write(&draft, POLICY).unwrap();
    chown(&drafts, alice);
    chown(&draft, alice);
    let o = as_user(
        "alice",
        &["jitctl", "policy", "check", draft.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("warning: ") && stderr(&o).contains("chown root:root"),
        "{}",
        stdout(&o)
    );
}
