//! `jitctl doctor` on a host set up right, then on hosts broken for real inside the sandbox,
//! one way per check: each broken host fails (or warns) on exactly that check, with its fix.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jitd_tests::*;

const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "doctor"
users = ["alice"]
privileges = ["whoami"]
max_duration = "1h"
reason_required = false
"#;

const BUS_POLICY: &str = "/usr/share/dbus-1/system.d/org.jitd.Jitd1.conf";
const BUS_ACTIVATION: &str = "/usr/share/dbus-1/system-services/org.jitd.Jitd1.service";
const TIMER_LINK: &str = "/etc/systemd/system/timers.target.wants/jitd-sweep.timer";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn install(from: &str, to: &str) {
    std::fs::create_dir_all(Path::new(to).parent().unwrap()).unwrap();
    std::fs::copy(repo().join(from), to).unwrap();
}

/// A host set up as the packages set it up: jitd running, its bus files, the timer enabled.
fn good_host(name: &str) -> (Sandbox, Daemon) {
    let sb = sandbox();
    ensure_user("alice");
    install("packaging/dbus/org.jitd.Jitd1.conf", BUS_POLICY);
    install("packaging/dbus/org.jitd.Jitd1.service", BUS_ACTIVATION);
    std::fs::create_dir_all(Path::new(TIMER_LINK).parent().unwrap()).unwrap();
    let _ = std::os::unix::fs::symlink("/usr/lib/systemd/system/jitd-sweep.timer", TIMER_LINK);
    let d = Daemon::start(&sb, name, POLICY);
    (sb, d)
}

fn doctor(d: &Daemon) -> Output {
    run(Command::new("jitctl")
        .args(["--json", "doctor", "--config"])
        .arg(&d.config))
}

/// The status of every check, by name, and the whole report.
fn checks(o: &Output) -> (Vec<(String, String)>, serde_json::Value) {
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(o), stderr(o)));
    let list = doc["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (list, doc)
}

/// Doctor's answer on a host broken in one way: exit `code`, `check` has `status` with a
/// fix mentioning `fix`, and every other check is as on a good host.
fn expect(d: &Daemon, check: &str, status: &str, fix: &str) {
    let o = doctor(d);
    let (list, doc) = checks(&o);
    let code = if status == "fail" { 1 } else { 0 };
    assert_eq!(o.status.code(), Some(code), "{doc:#}");
    for (name, got) in &list {
        if name == check {
            assert_eq!(got, status, "{check}: {doc:#}");
        } else {
            // The clock is the host's own (not namespaced): whatever it is, never a failure.
            assert!(
                got == "ok" || (name == "clock" && got != "fail"),
                "only {check} is wrong, not {name}: {doc:#}"
            );
        }
    }
    let finding = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap();
    assert!(
        finding["fix"].as_str().unwrap().contains(fix),
        "{check}: the fix says {fix:?}: {finding}"
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_good_host_passes_every_check() {
    let (_sb, d) = good_host("doctor-good");
    let o = doctor(&d);
    let (list, doc) = checks(&o);
    assert_eq!(o.status.code(), Some(0), "{doc:#}");
    assert_eq!(list.len(), 13, "{doc:#}");
    for (name, status) in &list {
        assert!(
            status == "ok" || (name == "clock" && status != "fail"),
            "{name}: {doc:#}"
        );
    }
    // People read the same checks as text, and only root may run it.
    let o = run(Command::new("jitctl")
        .args(["doctor", "--config"])
        .arg(&d.config));
    assert!(stdout(&o).contains("all checks passed"), "{}", stdout(&o));
    let o = as_user("alice", &["jitctl", "doctor"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn jitd_not_running_fails_the_daemon_check() {
    let (_sb, mut d) = good_host("doctor-daemon");
    d.stop();
    let o = doctor(&d);
    let (_, doc) = checks(&o);
    assert_eq!(o.status.code(), Some(1), "{doc:#}");
    assert_eq!(doc["checks"][0]["check"], "daemon");
    assert_eq!(doc["checks"][0]["status"], "fail", "{doc:#}");
    assert!(
        doc["checks"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("systemctl enable --now jitd")
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_missing_bus_policy_fails_and_a_missing_activation_file_warns() {
    let (_sb, d) = good_host("doctor-bus");
    std::fs::remove_file(BUS_ACTIVATION).unwrap();
    expect(&d, "bus-activation", "warn", "org.jitd.Jitd1.service");
    install("packaging/dbus/org.jitd.Jitd1.service", BUS_ACTIVATION);
    std::fs::remove_file(BUS_POLICY).unwrap();
    expect(&d, "bus-policy", "fail", "org.jitd.Jitd1.conf");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_config_others_may_write_fails() {
    let (_sb, d) = good_host("doctor-config");
    chmod(&d.config, 0o666);
    expect(&d, "config", "fail", "chmod 644");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn sudo_rs_warns_and_no_sudo_fails() {
    let (sb, d) = good_host("doctor-sudo");
    let fake = sb.dir.join("doctor-sudo/sudo-rs");
    std::fs::write(&fake, "#!/bin/sh\necho 'sudo-rs 0.2.5'\n").unwrap();
    chmod(&fake, 0o755);
    d.set_config("sudo_path", &format!("{fake:?}"));
    expect(&d, "sudo", "warn", "jitd-sweep.timer");
    d.set_config("sudo_path", "\"/nonexistent/sudo\"");
    expect(&d, "sudo", "fail", "install sudo");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_writable_or_unincluded_sudoers_dir_fails() {
    let (_sb, d) = good_host("doctor-sudoers");
    let dir = Path::new("/etc/sudoers.d");
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    chmod(dir, 0o777);
    expect(&d, "sudoers.d", "fail", "chmod 750 /etc/sudoers.d");
    chmod(dir, mode);
    let sudoers = std::fs::read_to_string("/etc/sudoers").unwrap();
    let without: String = sudoers
        .lines()
        .filter(|l| !l.contains("includedir"))
        .map(|l| format!("{l}\n"))
        .collect();
    let _restore = Replaced::new("/etc/sudoers", &without, 0o440);
    expect(&d, "sudoers.d", "fail", "@includedir /etc/sudoers.d");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_disabled_sweep_timer_fails() {
    let (_sb, d) = good_host("doctor-timer");
    std::fs::remove_file(TIMER_LINK).unwrap();
    expect(
        &d,
        "sweep-timer",
        "fail",
        "systemctl enable --now jitd-sweep.timer",
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn pam_jit_as_auth_sufficient_or_missing_under_a_gate_fails() {
    let (_sb, d) = good_host("doctor-pam");
    {
        let _bad = Replaced::new(
            "/etc/pam.d/doctor-login",
            &format!("auth sufficient {}\n", module()),
            0o644,
        );
        expect(&d, "pam", "fail", "account requisite pam_jit.so");
    }
    d.set_policy(&format!(
        "{POLICY}\n[privilege.gated]\nkind = \"gate\"\npam_services = [\"doctor-gated\"]\n\n\
         [[rule]]\nname = \"gated\"\nusers = [\"alice\"]\nprivileges = [\"gated\"]\n\
         max_duration = \"1h\"\nreason_required = false\n"
    ));
    expect(&d, "pam", "fail", "services=doctor-gated");
    let _stack = Replaced::new(
        "/etc/pam.d/doctor-gated",
        &format!("account requisite {} services=doctor-gated\n", module()),
        0o644,
    );
    let (list, doc) = checks(&doctor(&d));
    assert!(list.contains(&("pam".into(), "ok".into())), "{doc:#}");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_broken_policy_fails() {
    let (_sb, d) = good_host("doctor-policy");
    d.set_policy(&POLICY.replace("max_duration = \"1h\"", "max_duration = 3600"));
    expect(&d, "policy", "fail", "jitctl policy check");
    let o = doctor(&d);
    assert!(
        stdout(&o).contains("write max_duration = \\\"1h\\\""),
        "the first error is quoted: {}",
        stdout(&o)
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_database_others_may_write_fails() {
    let (_sb, d) = good_host("doctor-db");
    chmod(&d.state_db(), 0o666);
    expect(&d, "database", "fail", "chmod 600");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_tampered_audit_trail_fails() {
    let (_sb, d) = good_host("doctor-chain");
    let o = as_user(
        "alice",
        &[
            "jitctl", "elevate", "whoami", "--for", "1m", "--reason", "doctor",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_user("alice", &["jitctl", "elevate", "nosuch"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let o = run(Command::new("sqlite3")
        .arg(d.state_db())
        .arg("UPDATE audit SET line = replace(line, 'user=alice', 'user=mallory') WHERE seq = 3"));
    assert!(o.status.success(), "{}", stderr(&o));
    expect(&d, "audit-chain", "fail", "jitctl audit verify");
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_full_disk_fails() {
    let (_sb, mut d) = good_host("doctor-disk");
    let state = d.restart_on_tmpfs("8m");
    expect(&d, "disk", "fail", &state.display().to_string());
    d.stop();
    let _ = run(Command::new("umount").arg(&state));
}
