//! The parts of the policy the suggestions reason about, read from the TOML text without the
//! daemon's loader: it runs on an auditor's laptop, where the policy's users do not exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivilegeView {
    pub name: String,
    pub kind: String,
    /// Commands as written (sudo and gate privileges).
    pub commands: Vec<String>,
    pub file: PathBuf,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleView {
    pub name: String,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub privileges: Vec<String>,
    pub max_secs: u64,
    pub default_secs: u64,
    pub reason_min_chars: u64,
    pub approval: String,
    pub file: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct PolicyView {
    pub privileges: Vec<PrivilegeView>,
    pub rules: Vec<RuleView>,
    /// Each file read and its text, for hashes and edits.
    pub files: Vec<(PathBuf, String)>,
    /// Users named in the policy whose account cannot be used now, and why ("locked",
    /// "expired on 2026-11-30"): known on the host (from /etc/shadow), empty elsewhere.
    pub unusable: BTreeMap<String, String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn secs(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_str)
        .and_then(|s| crate::duration::parse(s).ok())
        .unwrap_or(0)
}

impl PolicyView {
    /// Reads a policy file, or every `*.toml` of a directory in name order (as jitd does).
    pub fn read(path: &Path) -> Result<Self, String> {
        let mut files = Vec::new();
        if path.is_dir() {
            let mut names: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|d| d.ok().map(|d| d.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            names.sort();
            files = names;
        } else {
            files.push(path.to_path_buf());
        }
        let mut view = Self::default();
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            view.add_text(&file, &text)?;
        }
        Ok(view)
    }

    /// Adds one file's text.
    pub fn add_text(&mut self, file: &Path, text: &str) -> Result<(), String> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if let Some(privs) = doc.get("privilege").and_then(Value::as_table) {
            for (name, p) in privs {
                self.privileges.push(PrivilegeView {
                    name: name.clone(),
                    kind: p
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    commands: strings(p.get("commands")),
                    file: file.to_path_buf(),
                });
            }
        }
        if let Some(rules) = doc.get("rule").and_then(Value::as_array) {
            for r in rules {
                self.rules.push(RuleView {
                    name: r.get("name").and_then(Value::as_str).unwrap_or("").into(),
                    users: strings(r.get("users")),
                    groups: strings(r.get("groups")),
                    privileges: strings(r.get("privileges")),
                    max_secs: secs(r.get("max_duration")),
                    default_secs: secs(r.get("default_duration")),
                    reason_min_chars: r
                        .get("reason_min_chars")
                        .and_then(Value::as_integer)
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0),
                    approval: r
                        .get("approval")
                        .and_then(Value::as_str)
                        .unwrap_or("auto")
                        .into(),
                    file: file.to_path_buf(),
                });
            }
        }
        self.files.push((file.to_path_buf(), text.to_string()));
        Ok(())
    }

    pub fn privilege(&self, name: &str) -> Option<&PrivilegeView> {
        self.privileges.iter().find(|p| p.name == name)
    }

    pub fn rule(&self, name: &str) -> Option<&RuleView> {
        self.rules.iter().find(|r| r.name == name)
    }
}

/// The accounts of `users` that are locked (`passwd -l`: a `!` before a password hash) or past
/// their expiry date, from the text of /etc/shadow; `today` in days since 1970-01-01. A bare
/// `!` or `*` is an account that never had a password (key-only logins): not locked.
pub fn unusable_accounts(shadow: &str, users: &[&str], today: i64) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in shadow.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let (Some(name), Some(password)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        if !users.contains(name) {
            continue;
        }
        if password.starts_with('!') && password.len() > 2 && password[1..].starts_with('$') {
            out.insert((*name).to_string(), "locked".to_string());
        } else if let Some(expire) = fields.get(7).and_then(|e| e.parse::<i64>().ok())
            && expire <= today
        {
            let (y, m, d) = crate::clock::civil_from_days(expire);
            out.insert(
                (*name).to_string(),
                format!("expired on {y:04}-{m:02}-{d:02}"),
            );
        }
    }
    out
}

/// Programs that hand out more than they say (a shell, an editor, a pager, an archiver, a
/// finder): a privilege that runs one is as good as root, so it is never proposed for
/// automatic approval, and a refused argv running one is flagged for review, not proposed.
pub const ESCALATION_CAPABLE: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "fish",
    "su",
    "sudo",
    "env",
    "vi",
    "vim",
    "nvim",
    "nano",
    "ed",
    "emacs",
    "less",
    "more",
    "most",
    "man",
    "find",
    "tar",
    "zip",
    "unzip",
    "rsync",
    "scp",
    "cp",
    "mv",
    "dd",
    "tee",
    "awk",
    "gawk",
    "sed",
    "perl",
    "python",
    "python3",
    "ruby",
    "lua",
    "node",
    "php",
    "nmap",
    "git",
    "docker",
    "systemd-run",
    "journalctl",
    "xargs",
    "watch",
    "script",
    "expect",
    "ssh",
    "nsenter",
    "chroot",
    "chmod",
    "chown",
    "install",
    "crontab",
    "at",
    "make",
    "gdb",
    "strace",
    "busybox",
    "openssl",
    "wget",
    "curl",
];

/// Whether a command line runs an escalation-capable program.
pub fn escalation_capable(command: &str) -> bool {
    let program = command.split_whitespace().next().unwrap_or("");
    let base = program.rsplit('/').next().unwrap_or(program);
    ESCALATION_CAPABLE.contains(&base)
}
