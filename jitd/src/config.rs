//! The daemon's own settings: `/etc/jitd/jitd.toml`. Every key has a default, so a missing file
//! is a valid configuration; an unreadable or malformed file is an error with its position,
//! because running on guessed settings could point jitd at the wrong sudoers directory.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::position::line_col;

/// Largest configuration file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/jitd/jitd.toml";

/// Which sudo implementation writes the rules' fate: classic sudo honours `NOTAFTER`, sudo-rs
/// rejects the option, so the emitter must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SudoChoice {
    Auto,
    Classic,
    SudoRs,
}

/// Where the command ledger reads sudo's events: sudo's JSON event log (classic sudo), or its
/// syslog lines in the journal (sudo-rs, which has no JSON log; no exit status there).
/// `auto` picks the event log for classic sudo and the journal for sudo-rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedgerSource {
    Auto,
    SudoLog,
    Journal,
}

impl LedgerSource {
    /// `auto` made definite, once the sudo on the host is known.
    pub fn resolve(self, classic_sudo: bool) -> Self {
        match self {
            Self::Auto if classic_sudo => Self::SudoLog,
            Self::Auto => Self::Journal,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// D-Bus address to serve on; `None` = the system bus.
    pub bus_address: Option<String>,
    pub state_dir: PathBuf,
    pub policy_file: PathBuf,
    pub policy_dir: PathBuf,
    pub sudoers_dir: PathBuf,
    pub sudo: SudoChoice,
    pub sudo_path: PathBuf,
    pub visudo: PathBuf,
    pub gpasswd: PathBuf,
    /// Members of this group (and root) may list and revoke every grant and reload policy.
    pub admin_group: String,
    /// Host name shown in messages and audit; empty = the kernel's node name.
    pub hostname: String,
    /// How long the daemon waits for a locked database before refusing a grant, in ms.
    pub db_busy_timeout_ms: u64,
    /// How often the daemon re-checks every live grant on the system and repairs tampering.
    pub integrity_check_secs: u64,
    /// Where pam_jit's checks are answered (a root-only socket; pam_jit's `socket=`).
    pub gate_socket: PathBuf,
    /// Per-uid limits on the bus API (root is not limited): sustained calls per second, the
    /// burst allowed after a quiet spell, and calls in progress at once.
    pub calls_per_sec: f64,
    pub calls_burst: u32,
    pub calls_in_flight: u32,
    /// How long recalled processes get between SIGTERM and SIGKILL, in ms.
    pub recall_grace_ms: u64,
    /// Where, besides `/home`, `/tmp`, `/var/tmp`, `/dev/shm` and `/run/user/<uid>`, the end
    /// of a group grant looks for setgid files its holder made (file systems users can write).
    pub setgid_scan_paths: Vec<PathBuf>,
    /// Bounds of that look, per grant: entries looked at, and seconds.
    pub setgid_scan_max_files: u64,
    pub setgid_scan_secs: u64,
    /// The command ledger: sudo's JSON event log for each grant's user, read into the audit
    /// trail (privileges with `record = "none"` are left out).
    pub ledger: bool,
    /// How often the ledger looks for new sudo events, in ms.
    pub ledger_poll_ms: u64,
    /// sudo's `log_subcmds` in the ledger's line: each program a granted command runs is
    /// logged too (sudo traces the command with ptrace), for `shell-escape`.
    pub ledger_subcmds: bool,
    /// Where the ledger reads sudo's events (see [`LedgerSource`]).
    pub ledger_source: LedgerSource,
    /// The journalctl that reads sudo's lines when the source is the journal.
    pub journalctl: PathBuf,
    /// The alert rules in force (each an `alert.raised` record); see `crate::ledger::alerts`.
    pub alerts: Vec<String>,
    /// `denial-burst`: this many refusals (requests or commands) of one user within
    /// `alert_denial_window_secs`.
    pub alert_denials: u32,
    pub alert_denial_window_secs: u64,
    /// Audit records older than this many days are purged (0: never), after the chain's head
    /// before them is kept as a checkpoint so the rest still verifies.
    pub audit_retention_days: u64,
    /// The site name in signature namespaces (`jitd-approve-v1@SITE`): the same on every host
    /// whose approvers share keys. Empty: signed approvals are off.
    pub site: String,
    /// Approvers' SSH keys for signed approvals (ssh-keygen's allowed_signers format).
    pub approvers_allowed_signers: PathBuf,
    /// Users' own SSH keys for MFA proofs (`mfa = "ssh-sk"` rules), same format.
    pub users_allowed_signers: PathBuf,
    /// Revoked approver (and user) keys (a KRL from `ssh-keygen -k`, or public keys one a line); used
    /// when it exists.
    pub approvers_revoked: PathBuf,
    /// The ssh-keygen that verifies signatures.
    pub ssh_keygen: PathBuf,
    /// The account `jitd-notify` runs as: the only one that may fetch and acknowledge
    /// notifications (`org.jitd.Jitd1.Notifier`).
    pub notifier_user: String,
    /// Remind the admin group at the start of each quarter that the access review of the
    /// quarter just ended is due (`review.due`, with the `jitctl report` line).
    pub access_review_reminder: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bus_address: None,
            state_dir: PathBuf::from("/var/lib/jitd"),
            policy_file: PathBuf::from("/etc/jitd/policy.toml"),
            policy_dir: PathBuf::from("/etc/jitd/policy.d"),
            sudoers_dir: PathBuf::from("/etc/sudoers.d"),
            sudo: SudoChoice::Auto,
            sudo_path: PathBuf::from("/usr/bin/sudo"),
            visudo: PathBuf::from("/usr/sbin/visudo"),
            gpasswd: PathBuf::from("/usr/bin/gpasswd"),
            admin_group: crate::policy::DEFAULT_ADMIN_GROUP.to_string(),
            hostname: String::new(),
            db_busy_timeout_ms: 2000,
            integrity_check_secs: 10,
            gate_socket: PathBuf::from(crate::gate_proto::DEFAULT_SOCKET),
            calls_per_sec: 5.0,
            calls_burst: 20,
            calls_in_flight: 4,
            recall_grace_ms: 5000,
            setgid_scan_paths: Vec::new(),
            setgid_scan_max_files: 2_000_000,
            setgid_scan_secs: 15,
            ledger: true,
            ledger_poll_ms: 250,
            ledger_subcmds: true,
            ledger_source: LedgerSource::Auto,
            journalctl: PathBuf::from("/usr/bin/journalctl"),
            alerts: crate::ledger::alerts::RULES
                .iter()
                .map(|r| (*r).to_string())
                .collect(),
            alert_denials: 5,
            alert_denial_window_secs: 60,
            audit_retention_days: 400,
            site: String::new(),
            approvers_allowed_signers: PathBuf::from("/etc/jitd/approvers.allowed_signers"),
            users_allowed_signers: PathBuf::from("/etc/jitd/users.allowed_signers"),
            approvers_revoked: PathBuf::from("/etc/jitd/approvers.revoked"),
            ssh_keygen: PathBuf::from("/usr/bin/ssh-keygen"),
            notifier_user: "jitd-notify".to_string(),
            access_review_reminder: false,
        }
    }
}

impl Config {
    /// Reads `path`. A missing file at the default path means "all defaults"; a missing file
    /// named explicitly is an error (the admin asked for it). The file names the tools jitd
    /// runs as root and where grants go, so it is refused unless root owns it and nobody else
    /// may write it (see `policy::trust`).
    pub fn load(path: &Path, explicit: bool) -> Result<Self, String> {
        let missing =
            matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        if missing && !explicit {
            return Ok(Self::default());
        }
        match crate::policy::trust::read(path, MAX_FILE_BYTES) {
            Ok((text, None)) => Self::parse(path, &text),
            Ok((_, Some(complaint))) | Err(complaint) => {
                Err(format!("{}: {complaint}", path.display()))
            }
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        toml::from_str::<Config>(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
            format!("{}:{line}:{col}: {}", path.display(), e.message())
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir.join("jitd.db")
    }

    /// The places the holder of a group grant (`uid`) can write, where its end looks for
    /// setgid files.
    pub fn setgid_scan_roots(&self, uid: u32) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = ["/home", "/tmp", "/var/tmp", "/dev/shm"]
            .iter()
            .map(PathBuf::from)
            .collect();
        roots.push(PathBuf::from(format!("/run/user/{uid}")));
        roots.extend(self.setgid_scan_paths.iter().cloned());
        roots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults() {
        let c = Config::parse(Path::new("x"), "").unwrap();
        assert_eq!(c.sudoers_dir, PathBuf::from("/etc/sudoers.d"));
        assert_eq!(c.sudo, SudoChoice::Auto);
        assert!(c.bus_address.is_none());
    }

    #[test]
    fn unknown_key_is_refused_with_its_position() {
        let err = Config::parse(
            Path::new("/etc/jitd/jitd.toml"),
            "state_dir = \"/x\"\nsudoers = 1\n",
        )
        .unwrap_err();
        assert!(err.starts_with("/etc/jitd/jitd.toml:2:1: "), "{err}");
        assert!(err.contains("sudoers"), "{err}");
    }

    /// Every key the shipped example shows (commented out) is one jitd reads, with the
    /// default it says.
    #[test]
    fn the_shipped_example_uncommented_parses_to_the_defaults() {
        let example = include_str!("../../packaging/jitd.toml");
        let uncommented: String = example
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| l.contains(" = ") && !l.starts_with(' '))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = Config::parse(Path::new("jitd.toml"), &uncommented).unwrap();
        let d = Config::default();
        assert_eq!(c.recall_grace_ms, d.recall_grace_ms);
        assert_eq!(c.setgid_scan_paths, d.setgid_scan_paths);
        assert_eq!(c.setgid_scan_max_files, d.setgid_scan_max_files);
        assert_eq!(c.setgid_scan_secs, d.setgid_scan_secs);
        assert_eq!(c.integrity_check_secs, d.integrity_check_secs);
        let roots = c.setgid_scan_roots(1001);
        assert!(roots.contains(&PathBuf::from("/run/user/1001")));
        assert!(roots.contains(&PathBuf::from("/home")));
    }

    #[test]
    fn missing_default_file_is_fine_but_missing_explicit_file_is_not() {
        let missing = Path::new("/nonexistent/jitd.toml");
        assert!(Config::load(missing, false).is_ok());
        assert!(Config::load(missing, true).is_err());
    }
}
