//! `jitctl doctor`: the host's whole jitd setup checked the way `visudo -c` checks sudoers.
//! Each check gives one finding: ok, a warning (works, but deserves a look), a failure (jitd
//! cannot keep its promises until it is fixed) or skipped (nothing to check here), each with
//! a one-line fix. Exit 0 when nothing failed, 1 otherwise.
//!
//! Read-only: it changes nothing on the host. Root only, because what it reads (the state
//! database, the configuration it trusts) is root's.

mod files;
mod pam;
mod service;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Failure;
use crate::output::Out;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

/// What one check found.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub message: String,
    /// One line that fixes it (empty when nothing needs fixing).
    pub fix: String,
}

impl Finding {
    fn new(check: &'static str, status: Status, message: impl Into<String>) -> Self {
        Self {
            check,
            status,
            message: message.into(),
            fix: String::new(),
        }
    }

    pub fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, message)
    }

    pub fn skip(check: &'static str, message: impl Into<String>) -> Self {
        Self::new(check, Status::Skip, message)
    }

    pub fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            fix: fix.into(),
            ..Self::new(check, Status::Warn, message)
        }
    }

    pub fn fail(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            fix: fix.into(),
            ..Self::new(check, Status::Fail, message)
        }
    }
}

/// The settings of jitd.toml the checks need, with the daemon's defaults.
pub struct Setup {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub policy_file: PathBuf,
    pub policy_dir: PathBuf,
    pub sudoers_dir: PathBuf,
    pub sudo_path: PathBuf,
    pub admin_group: String,
}

impl Setup {
    fn read(config: &Path) -> Result<Self, String> {
        let text = match std::fs::read_to_string(config) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", config.display())),
        };
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| format!("{}: {}", config.display(), e.message()))?;
        let path = |key: &str, default: &str| {
            PathBuf::from(table.get(key).and_then(|v| v.as_str()).unwrap_or(default))
        };
        Ok(Self {
            config: config.to_path_buf(),
            state_dir: path("state_dir", "/var/lib/jitd"),
            policy_file: path("policy_file", "/etc/jitd/policy.toml"),
            policy_dir: path("policy_dir", "/etc/jitd/policy.d"),
            sudoers_dir: path("sudoers_dir", "/etc/sudoers.d"),
            sudo_path: path("sudo_path", "/usr/bin/sudo"),
            admin_group: jitd::policy::admin_group_in(&text),
        })
    }
}

/// Whether the PAM stack of `service` consults pam_jit for it (a gate grant's warning).
pub fn pam_consults(service: &str) -> bool {
    pam::consults(Path::new("/etc/pam.d"), service, service, 0)
}

pub fn run(config: &Path, out: &Out) -> Result<(), Failure> {
    if !jitd::policy::trust::running_as_root() {
        return Err(Failure::Bus(jitd::client::Error::NotAllowed(
            "jitctl doctor reads root's files (the state database, the trusted configuration): \
             run it as root, e.g. `sudo jitctl doctor`"
                .into(),
        )));
    }
    let setup = Setup::read(config).map_err(Failure::Other)?;
    let (policy_finding, gates) = files::policy(&setup);
    let mut findings = vec![service::daemon(), files::config(&setup)];
    findings.extend(files::bus_files());
    findings.push(service::sudo(&setup));
    findings.push(files::sudoers_dir(&setup));
    findings.push(files::timer());
    findings.push(pam::stacks(&gates));
    findings.push(policy_finding);
    findings.push(service::clock());
    findings.push(files::database(&setup));
    findings.push(service::audit_chain());
    findings.push(files::disk(&setup));
    let failed = findings.iter().any(|f| f.status == Status::Fail);
    if out.json {
        out.json(&serde_json::json!({ "ok": !failed, "checks": findings }));
    } else {
        for f in &findings {
            let mark = match f.status {
                Status::Ok => "ok  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            println!("{mark}  {:<14} {}", f.check, f.message);
            if !f.fix.is_empty() {
                println!("      {:<14} fix: {}", "", f.fix);
            }
        }
        let (fails, warns) = (
            findings.iter().filter(|f| f.status == Status::Fail).count(),
            findings.iter().filter(|f| f.status == Status::Warn).count(),
        );
        println!(
            "{}",
            if failed {
                format!("{fails} check(s) failed, {warns} warning(s)")
            } else {
                format!("all checks passed ({warns} warning(s))")
            }
        );
    }
    if failed {
        return Err(Failure::Doctor);
    }
    Ok(())
}
