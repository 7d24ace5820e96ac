//! `jitctl`: ask jitd for a privilege, see what you hold, end it, and check policy files.
//!
//! Human output by default, `--json` everywhere (one JSON document on stdout), and exit codes
//! scripts can rely on (see `EXIT CODES` in `--help`).

mod history;
mod output;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jitd::client::{self, Error, GrantInfo, ManagerProxy};

use output::{Out, now_ms};

const EXIT_CODES: &str = "EXIT CODES:
  0  success
  1  other failure
  2  usage error (bad flag, bad duration)
  3  the policy refuses the request
  4  not allowed for this caller
  5  jitd is not reachable on the bus
  6  invalid argument
  7  no such grant or privilege
  8  jitd cannot grant right now (state not writable, database locked)
  9  audit verify found a broken link in the audit trail

ENVIRONMENT:
  JITD_BUS_ADDRESS  D-Bus address to use instead of the system bus (tests)";

#[derive(Parser)]
#[command(
    name = "jitctl",
    version,
    about = "Just-in-time privileges: ask for one, see what you hold, give it back",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask for a privilege now, for a reason and a bounded time.
    Elevate {
        /// Privilege name from the policy (see `jitctl explain NAME`).
        privilege: String,
        /// How long: 90s, 15m, 1h30m, 2d (default: the rule's default).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<u64>,
        /// Why you need it (recorded in the audit trail).
        #[arg(long)]
        reason: Option<String>,
        /// Ticket or incident reference, when the rule requires one.
        #[arg(long)]
        ticket: Option<String>,
    },
    /// Your live grants and the time they have left.
    Status,
    /// Grants: yours, or everyone's with --all (admins).
    List {
        /// Every user's grants (root or the admin group).
        #[arg(long)]
        all: bool,
        /// Include grants that ended.
        #[arg(long)]
        ended: bool,
    },
    /// End a grant now (admins: any grant; owners: their own).
    Revoke {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Also end the processes still holding the privilege (sessions started under it,
        /// or processes carrying the group), whatever the privilege's on_end says.
        #[arg(long)]
        terminate: bool,
    },
    /// Give back one of your own grants before its deadline.
    Drop { id: String },
    /// What you may request on this host: each privilege, what it gives, on what terms, and
    /// what you hold now (the `sudo -l` of jitd).
    Privileges,
    /// What the policy would decide if you asked for PRIVILEGE, and why.
    Explain { privilege: String },
    /// Re-read the policy in the daemon (admins).
    Reload,
    /// Policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The audit trail (admins).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// What happened: requests (also refused and invalid ones), grants, sessions, commands
    /// and alerts, newest first, one page at a time. Yours, or everyone's with --all (admins).
    History {
        /// Every user's history (root or the admin group).
        #[arg(long)]
        all: bool,
        /// One user's history (admins).
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        privilege: Option<String>,
        /// Only these kinds of record, comma-separated (e.g. grant.applied,request.denied).
        #[arg(long)]
        kind: Option<String>,
        /// From: a span back from now (90d) or a UTC date (2026-07-01).
        #[arg(long)]
        since: Option<String>,
        /// Until (exclusive), written like --since.
        #[arg(long)]
        until: Option<String>,
        /// Continue where the page before stopped (it prints the cursor).
        #[arg(long)]
        cursor: Option<i64>,
        /// Entries per page (at most 1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The whole story of one grant: request, decision, apply, sessions, every command with
    /// its exit status, end and recall.
    Show { grant: String },
    /// Print a shell completion script (bash, zsh or fish) built from this CLI's definition.
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Print the jitctl(1) manual page (roff) built from this CLI's definition.
    #[command(hide = true)]
    Manpage,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Check policy files like `visudo -c` checks sudoers: works without the daemon.
    Check {
        /// A policy file, or a directory of *.toml files (default: /etc/jitd/policy.toml and
        /// /etc/jitd/policy.d).
        paths: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash-chained audit trail and name the first broken link (exit 1 if any).
    /// An export file is checked with `jitd audit verify --file EXPORT` (no daemon needed).
    Verify,
    /// Every record with host, seq, time, kind, fields and its seal, for a SIEM or an auditor
    /// (admins); `jitd audit verify --file` checks the file.
    Export {
        /// A span back from now (90d) or a UTC date (2026-07-01); default: everything.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_parser = ["jsonl", "csv"], default_value = "jsonl")]
        format: String,
    },
}

fn parse_duration(text: &str) -> Result<u64, String> {
    jitd::duration::parse(text).map_err(|e| e.to_string())
}

/// Why a command failed, with the exit code it maps to. The one place errors become codes.
#[derive(Debug)]
pub enum Failure {
    Bus(Error),
    Unreachable(String),
    Usage(String),
    Other(String),
    /// The audit chain is broken; what was found is already on stdout.
    Broken,
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Self::Bus(Error::PolicyDenied(_)) => 3,
            Self::Bus(Error::NotAllowed(_)) => 4,
            Self::Unreachable(_) => 5,
            Self::Bus(Error::InvalidArgument(_)) => 6,
            Self::Bus(Error::NotFound(_)) => 7,
            Self::Bus(Error::Unavailable(_)) => 8,
            Self::Usage(_) => 2,
            Self::Bus(Error::ZBus(_)) | Self::Other(_) => 1,
            Self::Broken => 9,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Bus(e) => e.short_name(),
            Self::Unreachable(_) => "Unreachable",
            Self::Usage(_) => "Usage",
            Self::Other(_) => "Failed",
            Self::Broken => "ChainBroken",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Bus(e) => e.message(),
            Self::Unreachable(m) | Self::Usage(m) | Self::Other(m) => m.clone(),
            Self::Broken => "the audit trail is broken".into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            // The name has no owner, or the daemon vanished mid-call.
            Error::ZBus(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown"
                    || name.as_str() == "org.freedesktop.DBus.Error.NoReply"
                    || name.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
            {
                Self::Unreachable(unreachable_message())
            }
            Error::ZBus(zbus::Error::InputOutput(_)) => Self::Unreachable(unreachable_message()),
            other => Self::Bus(other),
        }
    }
}

fn unreachable_message() -> String {
    "jitd is not running or not reachable on the bus: check `systemctl status jitd`".into()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out { json: cli.json };
    match run(cli.command, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Broken) => ExitCode::from(Failure::Broken.code()),
        Err(f) => {
            out.failure(f.name(), &f.message());
            ExitCode::from(f.code())
        }
    }
}

fn run(command: Command, out: &Out) -> Result<(), Failure> {
    match command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cli = Cli::command();
            clap_complete::generate(shell, &mut cli, "jitctl", &mut std::io::stdout());
            return Ok(());
        }
        Command::Manpage => {
            use clap::CommandFactory;
            return clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| Failure::Other(format!("cannot write the manual page: {e}")));
        }
        _ => {}
    }
    if let Command::Policy {
        command: PolicyCommand::Check { paths },
    } = command
    {
        return policy_check(&paths, out);
    }
    zbus::block_on(async {
        let address = std::env::var("JITD_BUS_ADDRESS").ok();
        let conn = client::connect(address.as_deref()).await.map_err(|e| {
            Failure::Unreachable(format!("cannot connect to the bus ({e}): is dbus running?"))
        })?;
        client::verify_owner(&conn)
            .await
            .map_err(Failure::Unreachable)?;
        let jitd = ManagerProxy::new(&conn)
            .await
            .map_err(|e| Failure::from(Error::ZBus(e)))?;
        match command {
            Command::Elevate {
                privilege,
                duration,
                reason,
                ticket,
            } => {
                let reason = match reason {
                    Some(r) => r,
                    None => ask_reason()?,
                };
                let outcome = jitd
                    .request(
                        &privilege,
                        duration.unwrap_or(0),
                        &reason,
                        ticket.as_deref().unwrap_or(""),
                    )
                    .await?;
                out.outcome(&outcome, now_ms());
            }
            Command::Status => {
                let grants = jitd.list_mine(false).await?;
                out.status(&grants, now_ms());
            }
            Command::List { all, ended } => {
                let grants: Vec<GrantInfo> = if all {
                    jitd.list_all(ended).await?
                } else {
                    jitd.list_mine(ended).await?
                };
                out.list(&grants, now_ms());
            }
            Command::Revoke {
                id,
                reason,
                terminate,
            } => {
                let g = jitd.revoke(&id, &reason, terminate).await?;
                out.ended(&g, "Revoked");
            }
            Command::Drop { id } => {
                let g = jitd.revoke(&id, "", false).await?;
                out.ended(&g, "Dropped");
            }
            Command::Privileges => {
                let list = jitd.list_privileges().await?;
                out.privileges(&list, now_ms());
            }
            Command::Explain { privilege } => {
                let e = jitd.explain(&privilege).await?;
                out.explanation(&e);
            }
            Command::Reload => {
                let summary = jitd.reload_policy().await?;
                out.message(&summary);
            }
            Command::Audit {
                command: AuditCommand::Verify,
            } => {
                let check = jitd.verify_audit().await?;
                out.chain_check(&check);
                if !check.intact {
                    return Err(Failure::Broken);
                }
            }
            Command::Audit {
                command: AuditCommand::Export { since, format },
            } => history::export(&jitd, since.as_deref(), format == "csv").await?,
            Command::History {
                all,
                user,
                privilege,
                kind,
                since,
                until,
                cursor,
                limit,
            } => {
                let args = history::HistoryArgs {
                    all,
                    user,
                    privilege,
                    kind,
                    since,
                    until,
                    cursor,
                    limit,
                };
                history::history(&jitd, args, out).await?;
            }
            Command::Show { grant } => history::show(&jitd, &grant, out).await?,
            Command::Policy { .. } | Command::Completions { .. } | Command::Manpage => {}
        }
        Ok(())
    })
}

/// Asks for a reason on the terminal. With nobody there to answer, the request goes without
/// one: jitd refuses it, saying so, only if the rule wants a reason.
fn ask_reason() -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Ok(String::new());
    }
    eprint!("Reason (empty if the rule needs none): ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failure::Other(e.to_string()))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The daemon's configuration file, read for its `admin_group` and checked like the policy.
const CONFIG_PATH: &str = "/etc/jitd/jitd.toml";

fn policy_check(paths: &[PathBuf], out: &Out) -> Result<(), Failure> {
    use jitd::policy::{Diagnostic, OnUntrusted, Policy, PolicySource, SystemAccounts, trust};
    // As root the check judges files as the daemon will; anyone else is likely checking a
    // draft of their own, and hears the same complaint as a warning.
    let untrusted = if trust::running_as_root() {
        OnUntrusted::Refuse
    } else {
        OnUntrusted::Warn
    };
    let config = PathBuf::from(CONFIG_PATH);
    let (admin_group, config_complaint) = match trust::read(&config, 1024 * 1024) {
        Ok((text, complaint)) => (jitd::policy::admin_group_in(&text), complaint),
        Err(_) => (jitd::policy::DEFAULT_ADMIN_GROUP.to_string(), None),
    };
    let base = PolicySource {
        admin_group,
        untrusted,
        ..PolicySource::default()
    };
    let sources: Vec<PolicySource> = if paths.is_empty() {
        vec![PolicySource {
            file: Some(PathBuf::from("/etc/jitd/policy.toml")),
            dir: Some(PathBuf::from("/etc/jitd/policy.d")),
            ..base.clone()
        }]
    } else {
        let mut v = Vec::new();
        for p in paths {
            if p.is_dir() {
                v.push(PolicySource {
                    dir: Some(p.clone()),
                    ..base.clone()
                });
            } else if p.exists() {
                v.push(PolicySource {
                    file: Some(p.clone()),
                    ..base.clone()
                });
            } else {
                return Err(Failure::Usage(format!(
                    "{}: no such file or directory",
                    p.display()
                )));
            }
        }
        v
    };
    let mut reports = Vec::new();
    for src in sources {
        match Policy::load(&src, &SystemAccounts) {
            Ok(loaded) => reports.push(output::CheckReport::ok(&loaded)),
            Err(errors) => reports.push(output::CheckReport::failed(&errors)),
        }
    }
    // The installed configuration is part of what the daemon trusts.
    if paths.is_empty()
        && let (Some(complaint), Some(report)) = (config_complaint, reports.first_mut())
    {
        let d = Diagnostic {
            file: config,
            line: 1,
            column: 1,
            message: complaint,
        };
        report.add(&d, untrusted == OnUntrusted::Refuse);
    }
    out.policy_check(&reports);
    if reports.iter().all(output::CheckReport::is_ok) {
        Ok(())
    } else {
        Err(Failure::Other(
            "the policy has errors; nothing was loaded".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_documented_exit_code() {
        let cases: Vec<(Failure, u8)> = vec![
            (Failure::Bus(Error::PolicyDenied(String::new())), 3),
            (Failure::Bus(Error::NotAllowed(String::new())), 4),
            (Failure::Unreachable(String::new()), 5),
            (Failure::Bus(Error::InvalidArgument(String::new())), 6),
            (Failure::Bus(Error::NotFound(String::new())), 7),
            (Failure::Bus(Error::Unavailable(String::new())), 8),
            (Failure::Broken, 9),
            (Failure::Usage(String::new()), 2),
            (Failure::Other(String::new()), 1),
        ];
        for (f, code) in cases {
            assert_eq!(f.code(), code, "{f:?}");
            assert!(
                EXIT_CODES.contains(&format!("  {code}  ")),
                "code {code} documented"
            );
        }
    }

    #[test]
    fn a_bad_duration_is_a_usage_error_that_says_what_to_write() {
        let err = Cli::try_parse_from(["jitctl", "elevate", "x", "--for", "10y", "--reason", "r"])
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("write e.g. 15m"), "{err}");
        assert!(Cli::try_parse_from(["jitctl", "elevate", "x", "--for", "0s"]).is_err());
        let ok =
            Cli::try_parse_from(["jitctl", "--json", "elevate", "x", "--for", "1h30m"]).unwrap();
        assert!(ok.json);
        assert!(matches!(
            ok.command,
            Command::Elevate {
                duration: Some(5400),
                ..
            }
        ));
    }
}
