//! A policy read from a file and a directory of files.

use std::path::PathBuf;

use super::*;

fn temp_dir() -> crate::testutil::TempDir {
    crate::testutil::TempDir::new()
}

#[test]
fn files_of_a_directory_form_one_policy_in_name_order() {
    let dir = temp_dir();
    std::fs::write(dir.join("20-rules.toml"), "[[rule]]\nname = \"r\"\nusers = [\"alice\"]\nprivileges = [\"p\"]\nmax_duration = \"1h\"\n").unwrap();
    std::fs::write(
        dir.join("10-privs.toml"),
        "[privilege.p]\nkind = \"group\"\ngroup = \"webops\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("README"), "not toml").unwrap();
    std::fs::write(dir.join(".hidden.toml"), "garbage = ").unwrap();
    // Warn: the files belong to whoever runs the tests (trust has its own test below).
    let src = PolicySource {
        file: Some(dir.join("absent.toml")),
        dir: Some(dir.to_path_buf()),
        untrusted: OnUntrusted::Warn,
        ..PolicySource::default()
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
        "\n[privilege.p]\nkind = \"group\"\ngroup = \"webops\"\n",
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
        ..PolicySource::default()
    };
    let loaded = Policy::load(&src, &FakeHost).unwrap();
    assert!(loaded.policy.rules().is_empty());
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("every request is denied")
                && w.file == Path::new("/nonexistent/policy.d"))
    );
}

#[test]
fn a_file_others_may_write_is_refused_for_the_daemon_and_reported_for_a_draft() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let file = dir.join("10-open.toml");
    std::fs::write(
        &file,
        "[privilege.p]\nkind = \"group\"\ngroup = \"webops\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut src = PolicySource {
        dir: Some(dir.to_path_buf()),
        ..PolicySource::default()
    };
    let errors = Policy::load(&src, &FakeHost).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.file == file && e.message.contains("chmod 644")),
        "{errors:?}"
    );
    src.untrusted = OnUntrusted::Warn;
    let loaded = Policy::load(&src, &FakeHost).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.file == file && w.message.contains("anyone may write it")),
        "{:?}",
        loaded.warnings
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
