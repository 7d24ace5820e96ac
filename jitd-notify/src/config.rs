//! `/etc/jitd/notify.toml`: the sinks and which notes each receives. Unknown keys are errors
//! with file:line:column, like every jitd file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How often the outbox is polled when it was empty, in ms.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Tries per note and sink before `notify.failed`.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First retry delay in ms; doubled on each retry.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// How long a rule's decision hook may take, in ms; then it casts no vote.
    #[serde(default = "default_hook_timeout_ms")]
    pub hook_timeout_ms: u64,
    #[serde(default, rename = "sink")]
    pub sinks: Vec<Sink>,
}

/// One bus call four times a second when idle: a pending request reaches its approvers well
/// inside the 2 s target without jitd having to signal anyone.
fn default_poll_ms() -> u64 {
    250
}
fn default_attempts() -> u32 {
    5
}
fn default_hook_timeout_ms() -> u64 {
    10_000
}
fn default_backoff_ms() -> u64 {
    1000
}

/// One sink. The keys each kind needs are checked after parsing: `url` and `secret_file` for
/// `webhook`, `command` for `exec`, `relay` and `from` for `smtp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sink {
    pub name: String,
    pub kind: Kind,
    /// Only these event kinds (`request.pending`…); empty = all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Only notes about these privileges; empty = all.
    #[serde(default)]
    pub privileges: Vec<String>,
    /// Only notes under these rules; empty = all.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Only notes carrying one of these routes (`security`); empty = all.
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// webhook, slack, teams: where to POST (`https://`, or `http://` to a local endpoint).
    #[serde(default)]
    pub url: String,
    /// https and STARTTLS: a PEM file of CA certificates trusted for this sink besides the
    /// system's store (a private CA).
    pub ca_file: Option<PathBuf>,
    /// webhook: a file holding `whsec_<base64>` (from `LoadCredential=`).
    pub secret_file: Option<PathBuf>,
    /// exec: the program and its arguments; the note's JSON on stdin.
    #[serde(default)]
    pub command: Vec<String>,
    /// smtp: `smtp` (to `relay`) or `sendmail` (the local `sendmail -t -i` interface).
    #[serde(default)]
    pub transport: Transport,
    /// smtp, transport sendmail: the program.
    #[serde(default = "default_sendmail")]
    pub sendmail: String,
    /// smtp: STARTTLS `required`, `opportunistic` (when the relay offers it) or `off`.
    #[serde(default)]
    pub starttls: StartTls,
    /// smtp: the relay's `host:port`.
    #[serde(default)]
    pub relay: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    /// smtp: also mail each user the note names, at `<user>@<user_domain>`.
    #[serde(default)]
    pub user_domain: String,
}

fn default_timeout_ms() -> u64 {
    5000
}
fn default_sendmail() -> String {
    "/usr/sbin/sendmail".to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Smtp,
    Sendmail,
}

/// A relay that offers STARTTLS is always taken up on it unless `off`; once begun, TLS must
/// succeed (a certificate that does not verify fails the attempt; it never falls back to
/// clear text, which an attacker could force).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    Required,
    #[default]
    Opportunistic,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// POST the note's JSON, signed with the Standard Webhooks headers.
    Webhook,
    /// Run a program with the note's JSON on stdin.
    Exec,
    /// Send a mail through an SMTP relay.
    Smtp,
    /// A message on the terminals of the note's recipients logged in here.
    Tty,
    /// A Slack incoming webhook (Block Kit).
    Slack,
    /// A Microsoft Teams Workflows webhook (Adaptive Card).
    Teams,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            format!("{}:{line}:{col}: {}", path.display(), e.message())
        })?;
        for s in &cfg.sinks {
            let missing = match s.kind {
                Kind::Webhook | Kind::Slack | Kind::Teams
                    if !s.url.starts_with("https://") && !s.url.starts_with("http://") =>
                {
                    Some("url must start with https:// (or http:// for a local endpoint)")
                }
                Kind::Webhook if s.secret_file.is_none() => Some("secret_file is required"),
                Kind::Exec if s.command.is_empty() => Some("command is required"),
                Kind::Smtp if s.from.is_empty() => Some("from is required"),
                Kind::Smtp if s.transport == Transport::Smtp && s.relay.is_empty() => {
                    Some("relay is required (or transport = \"sendmail\")")
                }
                _ => None,
            };
            if let Some(m) = missing {
                return Err(format!("{}: sink {:?}: {m}", path.display(), s.name));
            }
        }
        Ok(cfg)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_reported_with_line_and_column() {
        let text = "poll_ms = 100\n[[sink]]\nname = \"x\"\nkind = \"exec\"\ncommand = [\"/bin/true\"]\ncolour = 1\n";
        let e = Config::parse(Path::new("/etc/jitd/notify.toml"), text).unwrap_err();
        assert!(e.starts_with("/etc/jitd/notify.toml:"), "{e}");
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn the_readme_example_is_a_valid_configuration() {
        let readme = include_str!("../../README.md");
        let block = readme
            .split("```toml notify.toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap();
        let cfg = Config::parse(Path::new("README.md"), block).unwrap();
        let slack = cfg.sinks.iter().find(|s| s.kind == Kind::Slack).unwrap();
        assert!(slack.url.starts_with("https://"));
        let mail = cfg.sinks.iter().find(|s| s.name == "mail").unwrap();
        assert_eq!(mail.starttls, StartTls::Required);
        assert!(cfg.sinks.iter().any(|s| s.transport == Transport::Sendmail));
    }
}
