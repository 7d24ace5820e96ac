//! Checks of files on the host: the bus files, /etc/sudoers.d, the sweep timer, the policy,
//! the state database and the disk it lives on.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use jitd::policy::{OnUntrusted, Policy, PolicySource, PrivilegeKind, SystemAccounts};

use super::{Finding, Setup};

/// Where packages put the bus policy and the activation file, and where an admin may.
const BUS_POLICY: &[&str] = &[
    "/usr/share/dbus-1/system.d/org.jitd.Jitd1.conf",
    "/etc/dbus-1/system.d/org.jitd.Jitd1.conf",
];
const BUS_ACTIVATION: &[&str] = &[
    "/usr/share/dbus-1/system-services/org.jitd.Jitd1.service",
    "/usr/local/share/dbus-1/system-services/org.jitd.Jitd1.service",
];
/// What `systemctl enable jitd-sweep.timer` creates.
const TIMER_LINKS: &[&str] = &[
    "/etc/systemd/system/timers.target.wants/jitd-sweep.timer",
    "/usr/lib/systemd/system/timers.target.wants/jitd-sweep.timer",
    "/lib/systemd/system/timers.target.wants/jitd-sweep.timer",
];

fn first_present(paths: &[&str]) -> Option<String> {
    paths
        .iter()
        // A link counts as present even when dangling: that is what `systemctl enable` leaves
        // when the unit lives elsewhere.
        .find(|p| std::fs::symlink_metadata(p).is_ok())
        .map(|p| (*p).to_string())
}

pub fn bus_files() -> Vec<Finding> {
    let policy = match first_present(BUS_POLICY) {
        Some(p) => Finding::ok(
            "bus-policy",
            format!("{p} lets only root own org.jitd.Jitd1"),
        ),
        None => Finding::fail(
            "bus-policy",
            "no bus policy for org.jitd.Jitd1: the bus refuses jitd its name, or (on a bus \
             without a default deny) lets anyone pose as jitd",
            format!(
                "reinstall the jitd package, or install packaging/dbus/org.jitd.Jitd1.conf as {}",
                BUS_POLICY[0]
            ),
        ),
    };
    let activation = match first_present(BUS_ACTIVATION) {
        Some(p) => Finding::ok("bus-activation", format!("{p} starts jitd on first use")),
        None => Finding::warn(
            "bus-activation",
            "no activation file: jitctl cannot start jitd when it is not running",
            format!(
                "reinstall the jitd package, or install packaging/dbus/org.jitd.Jitd1.service as {}",
                BUS_ACTIVATION[0]
            ),
        ),
    };
    vec![policy, activation]
}

/// jitd.toml names the tools jitd runs as root: the daemon reads it only when it is root's.
pub fn config(setup: &Setup) -> Finding {
    const CHECK: &str = "config";
    let p = setup.config.display();
    if !setup.config.exists() {
        return Finding::ok(CHECK, format!("{p} does not exist: jitd uses its defaults"));
    }
    match jitd::policy::trust::read(&setup.config, 1024 * 1024) {
        Ok((_, None)) => Finding::ok(CHECK, format!("{p} is root's alone")),
        Ok((_, Some(complaint))) => Finding::fail(
            CHECK,
            format!("{p}: {complaint}"),
            format!("chown root:root {p}; chmod 644 {p}"),
        ),
        Err(e) => Finding::fail(CHECK, format!("{p}: {e}"), format!("ls -l {p}")),
    }
}

pub fn sudoers_dir(setup: &Setup) -> Finding {
    const CHECK: &str = "sudoers.d";
    let dir = &setup.sudoers_dir;
    let d = dir.display();
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => {
            return Finding::fail(
                CHECK,
                format!("{d}: {e}: jitd has nowhere to put sudo grants"),
                format!("mkdir -m 750 {d}"),
            );
        }
    };
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Finding::fail(
            CHECK,
            format!(
                "{d} is owned by uid {} with mode {:04o}: whoever else may write it may give \
                 themselves root, and sudo ignores it",
                meta.uid(),
                meta.mode() & 0o7777
            ),
            format!("chown root:root {d}; chmod 750 {d}"),
        );
    }
    let sudoers = std::fs::read_to_string("/etc/sudoers").unwrap_or_default();
    let included = sudoers.lines().any(|l| {
        let mut words = l.split_whitespace();
        matches!(words.next(), Some("@includedir" | "#includedir"))
            && words.next().map(Path::new) == Some(dir.as_path())
    });
    if !included {
        return Finding::fail(
            CHECK,
            format!("/etc/sudoers does not include {d}: sudo grants would do nothing"),
            format!("add `@includedir {d}` to /etc/sudoers with visudo"),
        );
    }
    Finding::ok(
        CHECK,
        format!("{d} is root's alone and /etc/sudoers includes it"),
    )
}

pub fn timer() -> Finding {
    match first_present(TIMER_LINKS) {
        Some(_) => Finding::ok(
            "sweep-timer",
            "jitd-sweep.timer is enabled: grants end on time even if jitd dies",
        ),
        None => Finding::fail(
            "sweep-timer",
            "jitd-sweep.timer is not enabled: if jitd dies, nothing but sudo's NOTAFTER ends \
             grants (and nothing ends group grants)",
            "systemctl enable --now jitd-sweep.timer",
        ),
    }
}

/// The policy as the daemon judges it, and the gate privileges' PAM services (what the PAM
/// check needs: a gate grant opens only stacks that load pam_jit).
pub fn policy(setup: &Setup) -> (Finding, Vec<(String, Vec<String>)>) {
    const CHECK: &str = "policy";
    let src = PolicySource {
        file: Some(setup.policy_file.clone()),
        dir: Some(setup.policy_dir.clone()),
        admin_group: setup.admin_group.clone(),
        untrusted: OnUntrusted::Refuse,
    };
    let checked = Policy::check(&src, &SystemAccounts);
    let fix = format!(
        "jitctl policy check {} {}",
        setup.policy_file.display(),
        setup.policy_dir.display()
    );
    let Some(policy) = checked.policy.filter(|_| checked.errors.is_empty()) else {
        let first = checked
            .errors
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        let n = checked.errors.len();
        return (
            Finding::fail(
                CHECK,
                format!("{n} error(s), the daemon refuses this policy; first: {first}"),
                fix,
            ),
            Vec::new(),
        );
    };
    let gates = policy
        .privileges()
        .filter(|p| matches!(p.kind, PrivilegeKind::Gate { .. }))
        .map(|p| (p.name.to_string(), p.pam_services.clone()))
        .collect();
    let summary = format!(
        "{} privilege(s), {} rule(s), files root's alone",
        policy.privileges().count(),
        policy.rules().len()
    );
    let finding = if checked.warnings.is_empty() {
        Finding::ok(CHECK, summary)
    } else {
        Finding::warn(
            CHECK,
            format!("{summary}; {} warning(s)", checked.warnings.len()),
            fix,
        )
    };
    (finding, gates)
}

pub fn database(setup: &Setup) -> Finding {
    const CHECK: &str = "database";
    let db = setup.state_dir.join("jitd.db");
    let p = db.display();
    match std::fs::metadata(&db) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Finding::warn(
            CHECK,
            format!("{p} does not exist yet: jitd has never run here"),
            "systemctl start jitd",
        ),
        Err(e) => Finding::fail(CHECK, format!("{p}: {e}"), format!("ls -l {p}")),
        // Others reading it is the state directory's to prevent (0700 under systemd); others
        // writing it could rewrite grants and the audit trail.
        Ok(m) if m.uid() != 0 || m.mode() & 0o022 != 0 => Finding::fail(
            CHECK,
            format!(
                "{p} is owned by uid {} with mode {:04o}: grants and the audit trail must be \
                 root's alone",
                m.uid(),
                m.mode() & 0o7777
            ),
            format!("chown root:root {p}; chmod 600 {p}"),
        ),
        Ok(_) => match std::fs::File::open(&db) {
            Ok(_) => Finding::ok(CHECK, format!("{p} is readable and root's alone")),
            Err(e) => Finding::fail(CHECK, format!("cannot read {p}: {e}"), format!("ls -l {p}")),
        },
    }
}

pub fn disk(setup: &Setup) -> Finding {
    const CHECK: &str = "disk";
    let dir = &setup.state_dir;
    let Some((free, total)) = crate::doctor::service::free_bytes(dir) else {
        return Finding::skip(CHECK, format!("{} does not exist", dir.display()));
    };
    const MIB: u64 = 1024 * 1024;
    let said = format!(
        "{} MiB free of {} MiB under {}",
        free / MIB,
        total / MIB,
        dir.display()
    );
    if free < 16 * MIB {
        Finding::fail(
            CHECK,
            format!("{said}: jitd refuses new grants when it cannot write its database"),
            format!("free space on the file system of {}", dir.display()),
        )
    } else if free < 128 * MIB {
        Finding::warn(
            CHECK,
            format!("{said}: little room left"),
            format!("free space on the file system of {}", dir.display()),
        )
    } else {
        Finding::ok(CHECK, said)
    }
}
