#![allow(clippy::disallowed_methods)] // temp dirs and real tools in tests

use std::os::unix::fs::{PermissionsExt, symlink};

use proptest::prelude::*;

use super::*;

const CLASSIC: SudoFlavor = SudoFlavor::Classic {
    version: String::new(),
    notafter: true,
};

fn id() -> GrantId {
    GrantId::parse("g0123456789ab").unwrap()
}

fn priv_name() -> PrivilegeName {
    PrivilegeName::parse("nginx-admin").unwrap()
}

fn cmds(list: &[&str]) -> Vec<SudoCommand> {
    list.iter()
        .map(|c| SudoCommand::parse(c).unwrap())
        .collect()
}

fn text_for(uid: u32, commands: &[SudoCommand], flavor: &SudoFlavor, pw: bool) -> String {
    let id = id();
    let name = priv_name();
    render(
        &DropIn {
            grant: &id,
            uid,
            privilege: &name,
            run_as_uid: 0,
            commands,
            password_each_time: pw,
            not_after_unix_secs: 1_795_000_000,
        },
        flavor,
    )
    .unwrap()
}

/// A root-owned temp dir that stands in for /etc/sudoers.d.
fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "jitd-sudoers-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
    dir
}

fn visudo_ok(text: &str) -> (bool, String) {
    let dir = temp_dir();
    let path = dir.join("check");
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o440)).unwrap();
    let out = std::process::Command::new("/usr/sbin/visudo")
        .arg("-cf")
        .arg(&path)
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn versions_of_both_implementations_are_recognised() {
    assert_eq!(
        parse_version("Sudo version 1.9.13p3\nSudoers policy plugin version 1.9.13p3\n"),
        Some(SudoFlavor::Classic {
            version: "1.9.13p3".into(),
            notafter: true
        })
    );
    assert_eq!(
        parse_version("Sudo version 1.8.19p2\n"),
        Some(SudoFlavor::Classic {
            version: "1.8.19p2".into(),
            notafter: false
        })
    );
    assert_eq!(
        parse_version("Sudo version 1.8.20\n"),
        Some(SudoFlavor::Classic {
            version: "1.8.20".into(),
            notafter: true
        })
    );
    assert_eq!(
        parse_version("sudo-rs 0.2.5\n"),
        Some(SudoFlavor::SudoRs {
            version: "0.2.5".into()
        })
    );
    assert_eq!(parse_version(""), None);
    assert_eq!(parse_version("Sudo version banana"), None);
}

#[test]
fn the_rule_names_the_uid_the_exact_commands_and_the_utc_deadline() {
    let text = text_for(
        1001,
        &cmds(&["/usr/bin/systemctl restart nginx", "/usr/bin/id"]),
        &CLASSIC,
        false,
    );
    assert_eq!(
        text,
        "# jitd grant g0123456789ab: managed by jitd, do not edit\n\
         # privilege nginx-admin for uid 1001 until 20261118110640Z (UTC)\n\
         #1001 ALL=(#0) NOTAFTER=20261118110640Z NOPASSWD: /usr/bin/systemctl restart nginx, \
         (#0) NOTAFTER=20261118110640Z NOPASSWD: /usr/bin/id \"\"\n"
    );
    let (ok, err) = visudo_ok(&text);
    assert!(ok, "{err}");
}

#[test]
fn sudo_rs_rules_carry_no_notafter_and_password_each_time_is_honoured() {
    let rs = SudoFlavor::SudoRs {
        version: "0.2".into(),
    };
    let text = text_for(1001, &cmds(&["/usr/bin/id"]), &rs, true);
    assert!(!text.contains("NOTAFTER"));
    assert!(text.contains("PASSWD: /usr/bin/id"));
    assert!(text.contains("Defaults:#1001 timestamp_timeout=0\n"));
    let (ok, err) = visudo_ok(&text);
    assert!(ok, "{err}");
}

#[test]
fn uid_minus_one_is_never_rendered() {
    let id = id();
    let name = priv_name();
    let c = cmds(&["/usr/bin/id"]);
    for (uid, run_as) in [(u32::MAX, 0), (1000, u32::MAX)] {
        let d = DropIn {
            grant: &id,
            uid,
            privilege: &name,
            run_as_uid: run_as,
            commands: &c,
            password_each_time: false,
            not_after_unix_secs: 0,
        };
        assert!(render(&d, &CLASSIC).is_err());
    }
}

fn arb_command() -> impl Strategy<Value = SudoCommand> {
    let word = "[A-Za-z0-9_.+@-]{1,12}";
    let arg = "[A-Za-z0-9_.+/@=:,%-]{1,12}";
    (
        proptest::collection::vec(word, 1..4),
        proptest::collection::vec(arg, 0..4),
    )
        .prop_filter_map("valid command", |(parts, args)| {
            let path = format!("/{}", parts.join("/"));
            let line = if args.is_empty() {
                path
            } else {
                format!("{path} {}", args.join(" "))
            };
            SudoCommand::parse(&line).ok()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn every_rendered_drop_in_passes_visudo_and_holds_exactly_one_rule_for_the_uid(
        uid in prop_oneof![Just(0u32), Just(u32::MAX - 1), 1u32..70000, any::<u32>().prop_filter("not -1", |u| *u != u32::MAX)],
        commands in proptest::collection::vec(arb_command(), 1..4),
        classic in any::<bool>(),
        pw in any::<bool>(),
    ) {
        let flavor = if classic { CLASSIC } else { SudoFlavor::SudoRs { version: String::new() } };
        let text = text_for(uid, &commands, &flavor, pw);
        let rules: Vec<&str> = text.lines().filter(|l| !l.starts_with("# ") && !l.starts_with("Defaults:")).collect();
        prop_assert_eq!(rules.len(), 1, "{}", text);
        let prefix = format!("#{uid} ALL=(#0)");
        prop_assert!(rules[0].starts_with(&prefix), "{}", text);
        let (ok, err) = visudo_ok(&text);
        prop_assert!(ok, "visudo refused:\n{}\n{}", text, err);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn a_rendered_drop_in_reads_back_as_what_it_grants(
        uid in 0u32..70000,
        commands in proptest::collection::vec(arb_command(), 1..4),
        classic in any::<bool>(),
        pw in any::<bool>(),
    ) {
        let flavor = if classic { CLASSIC } else { SudoFlavor::SudoRs { version: String::new() } };
        let text = text_for(uid, &commands, &flavor, pw);
        prop_assert_eq!(parse_rule(&text, uid), Some((0, commands, pw)), "{}", text);
    }
}

#[test]
fn text_jitd_did_not_render_reads_back_as_nothing() {
    assert_eq!(parse_rule("#1001 ALL=(ALL) ALL\n", 1001), None);
    assert_eq!(parse_rule("", 1001), None);
    let text = text_for(1001, &cmds(&["/usr/bin/id"]), &CLASSIC, false);
    assert_eq!(parse_rule(&text, 1002), None, "another uid's rule");
}

fn installed(dir: &Path) -> SudoersDir {
    SudoersDir::new(dir.to_path_buf(), PathBuf::from("/usr/sbin/visudo"))
}

#[test]
fn install_writes_a_root_0440_file_and_is_idempotent() {
    let dir = temp_dir();
    let sd = installed(&dir);
    let text = text_for(1001, &cmds(&["/usr/bin/id"]), &CLASSIC, false);
    sd.install(&id(), &text).unwrap();
    sd.install(&id(), &text).unwrap();
    let meta = fs::metadata(sd.path_for(&id())).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 0, 0o440)
    );
    assert_eq!(sd.status(&id(), &text).unwrap(), DropInStatus::Intact);
    assert_eq!(sd.owned().unwrap(), vec![id()]);
    assert_eq!(
        sd.until_ms(&id()),
        Some(1_795_000_000_000),
        "the deadline reads back from the file alone"
    );
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
    assert!(sd.remove(&id()).unwrap());
    assert_eq!(sd.until_ms(&id()), None);
    assert!(!sd.remove(&id()).unwrap(), "removing twice is fine");
    assert_eq!(sd.status(&id(), &text).unwrap(), DropInStatus::Missing);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tampering_is_detected_and_repaired_by_reinstall() {
    let dir = temp_dir();
    let sd = installed(&dir);
    let text = text_for(1001, &cmds(&["/usr/bin/id"]), &CLASSIC, false);
    sd.install(&id(), &text).unwrap();
    let path = sd.path_for(&id());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        sd.status(&id(), &text).unwrap(),
        DropInStatus::Tampered(_)
    ));
    fs::write(&path, format!("{text}#1001 ALL=(ALL) NOPASSWD: ALL\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o440)).unwrap();
    assert_eq!(
        sd.status(&id(), &text).unwrap(),
        DropInStatus::Tampered("content changed".into())
    );
    sd.install(&id(), &text).unwrap();
    assert_eq!(sd.status(&id(), &text).unwrap(), DropInStatus::Intact);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_symlink_fifo_or_directory_at_our_paths_is_never_followed_or_removed() {
    let dir = temp_dir();
    let sd = installed(&dir);
    let text = text_for(1001, &cmds(&["/usr/bin/id"]), &CLASSIC, false);
    let target = dir.join("victim");
    fs::write(&target, "precious\n").unwrap();
    symlink(&target, sd.path_for(&id())).unwrap();
    assert!(matches!(
        sd.install(&id(), &text),
        Err(GrantError::Foreign { .. })
    ));
    assert!(matches!(sd.remove(&id()), Err(GrantError::Foreign { .. })));
    assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");
    fs::remove_file(sd.path_for(&id())).unwrap();

    nix::unistd::mkfifo(
        &sd.temp_for(&id()),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    assert!(
        matches!(sd.install(&id(), &text), Err(GrantError::Foreign { .. })),
        "no blocking on a FIFO"
    );
    fs::remove_file(sd.temp_for(&id())).unwrap();

    fs::create_dir(sd.path_for(&id())).unwrap();
    assert!(matches!(
        sd.install(&id(), &text),
        Err(GrantError::Foreign { .. })
    ));
    assert_eq!(sd.foreign_lookalikes().unwrap(), vec![sd.path_for(&id())]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_foreign_file_with_our_name_is_reported_and_kept() {
    let dir = temp_dir();
    let sd = installed(&dir);
    fs::write(sd.path_for(&id()), "alice ALL=(ALL) ALL\n").unwrap();
    assert!(sd.owned().unwrap().is_empty());
    assert_eq!(sd.foreign_lookalikes().unwrap(), vec![sd.path_for(&id())]);
    assert!(matches!(sd.remove(&id()), Err(GrantError::Foreign { .. })));
    assert!(sd.path_for(&id()).exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_group_writable_directory_is_refused() {
    let dir = temp_dir();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
    let sd = installed(&dir);
    let text = text_for(1001, &cmds(&["/usr/bin/id"]), &CLASSIC, false);
    assert!(matches!(
        sd.install(&id(), &text),
        Err(GrantError::UnsafeDir { .. })
    ));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_visudo_failure_installs_nothing_and_leaves_no_temp_file() {
    let dir = temp_dir();
    let sd = SudoersDir::new(dir.clone(), PathBuf::from("/bin/false"));
    let text = text_for(1001, &cmds(&["/usr/bin/id"]), &CLASSIC, false);
    assert!(matches!(
        sd.install(&id(), &text),
        Err(GrantError::Visudo { .. })
    ));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    let missing = SudoersDir::new(dir.clone(), PathBuf::from("/nonexistent/visudo"));
    assert!(matches!(
        missing.install(&id(), &text),
        Err(GrantError::ToolMissing { .. })
    ));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stale_temp_files_are_cleaned() {
    let dir = temp_dir();
    let sd = installed(&dir);
    fs::write(sd.temp_for(&id()), "half written").unwrap();
    fs::write(dir.join(".unrelated"), "keep").unwrap();
    assert_eq!(sd.remove_stale_temp().unwrap(), 1);
    assert!(dir.join(".unrelated").exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_installed_together_are_checked_in_one_visudo_run_and_go_in_all_or_none() {
    let dir = temp_dir();
    let sd = installed(&dir);
    let users = "# jitd m-users\nUser_Alias JITD_USERS_1 = #1001\nDefaults:JITD_USERS_1 timestamp_timeout=0\n";
    let rule = "# jitd m-rule\n#1001 ALL=(#0) NOPASSWD: /usr/bin/id\n";
    sd.install_named_together(&[
        ("jitd_users", "# jitd m-users", users),
        ("jitd_grants_x", "# jitd m-rule", rule),
    ])
    .unwrap();
    assert_eq!(fs::read_to_string(dir.join("jitd_users")).unwrap(), users);
    assert_eq!(fs::read_to_string(dir.join("jitd_grants_x")).unwrap(), rule);
    // One file sudo would refuse: neither changes, and nothing is left behind.
    let users2 = users.replace("#1001", "#1001, #1002");
    let bad = "# jitd m-rule\n#1001 ALL=(#0) NOPASSWD /usr/bin/id\n";
    let e = sd
        .install_named_together(&[
            ("jitd_users", "# jitd m-users", &users2),
            ("jitd_grants_x", "# jitd m-rule", bad),
        ])
        .unwrap_err();
    assert!(matches!(e, GrantError::Visudo { .. }), "{e}");
    assert_eq!(fs::read_to_string(dir.join("jitd_users")).unwrap(), users);
    assert_eq!(fs::read_to_string(dir.join("jitd_grants_x")).unwrap(), rule);
    let mut left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["jitd_grants_x", "jitd_users"]);
    let _ = fs::remove_dir_all(dir);
}
