//! `jitctl`: ask jitd for a privilege, see what you hold, end it, and check policy files.
//!
//! Human output by default, `--json` everywhere (one JSON document on stdout), and exit codes
//! scripts can rely on (see `EXIT CODES` in `--help`).

mod access_review;
mod agent;
mod doctor;
mod failure;
mod history;
mod json;
mod manpages;
mod output;
mod policy_check;
mod replay;
mod report;
mod requests;
mod sign;
mod suggest_apply;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jitd::client::{self, Error, GrantInfo, ManagerProxy};

use failure::EXIT_CODES;
pub use failure::Failure;
use output::{Out, now_ms};

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
        /// When the rule needs approval, wait for the decision (a countdown of the request's
        /// time on a terminal; Ctrl-C stops waiting and leaves the request pending).
        #[arg(long)]
        wait: bool,
        /// Prove it is you with this SSH key first (rules with mfa = "ssh-sk"): signs jitd's
        /// challenge; a FIDO key asks for a touch.
        #[arg(long, value_name = "FILE")]
        mfa_key: Option<std::path::PathBuf>,
    },
    #[command(flatten)]
    Approvals(requests::ApprovalCommand),
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
        /// The grant's id (from `jitctl list --all`).
        id: String,
        /// Why (recorded with how it ended and in the audit trail).
        #[arg(long, default_value = "", hide_default_value = true)]
        reason: String,
        /// Also end the processes still holding the privilege (sessions started under it,
        /// or processes carrying the group), whatever the privilege's on_end says.
        #[arg(long)]
        terminate: bool,
    },
    /// Give back one of your own grants before its deadline.
    Drop {
        /// The grant's id (from `jitctl status`).
        id: String,
        /// Why you give it back (recorded with how it ended).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// What you may request on this host: each privilege, what it gives, on what terms, and
    /// what you hold now (the `sudo -l` of jitd).
    Privileges,
    /// What the policy would decide if you asked for PRIVILEGE, and why.
    Explain { privilege: String },
    /// Re-read the policy in the daemon (admins).
    Reload,
    /// Check this host's whole jitd setup, each finding with its fix (root; exit 1 if any
    /// check fails).
    Doctor {
        /// jitd's configuration file.
        #[arg(long, default_value = "/etc/jitd/jitd.toml")]
        config: PathBuf,
    },
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
    /// The recorded sessions of a `record = "io"` grant; `N` plays one with sudoreplay (root).
    Replay(replay::ReplayArgs),
    /// Policy suggestions from the audit history (no daemon needed).
    Suggest(report::SuggestArgs),
    /// The period's access report for auditors (no daemon needed).
    Report(report::ReportArgs),
    /// Periodic access review without a server: a review file to decide and sign, then applied.
    AccessReview(access_review::ReviewArgs),
    /// Write a seeded, generated history (exports and policy) for trying report and suggest.
    #[command(hide = true)]
    GenerateHistory(report::GenerateArgs),
    /// Print a shell completion script (bash, zsh or fish) built from this CLI's definition.
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Print the jitctl(1) manual page (roff) built from this CLI's definition, or with
    /// --dir write it and one page per subcommand (jitctl-elevate.1, ...) there.
    #[command(hide = true)]
    Manpage {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Check policy files like `visudo -c` checks sudoers: works without the daemon.
    Check {
        /// A policy file, or a directory of *.toml files (default: /etc/jitd/policy.toml and
        /// /etc/jitd/policy.d).
        paths: Vec<PathBuf>,
        /// Warnings are errors too (for CI).
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash-chained audit trail and name the first broken link (exit 1 if any).
    /// With `--file EXPORT`, checks an export file instead, offline (no daemon needed): each
    /// hash, each link, and that no record was altered; a bad record is named with its line.
    Verify {
        /// An export from `jitctl audit export` or `jitd audit export` (JSON lines or CSV).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Every record with host, seq, time, kind, fields and its seal, for a SIEM or an auditor
    /// (admins); `jitctl audit verify --file` checks the file.
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

fn main() -> ExitCode {
    restore_sigpipe();
    // Read before parsing, so a usage error can still answer in JSON.
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if json && e.use_stderr() => {
            let out = Out::new(true);
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("usage error");
            let message = first.strip_prefix("error: ").unwrap_or(first);
            out.failure("Usage", 2, message);
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let out = Out::new(cli.json);
    match run(cli.command, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.said() => ExitCode::from(f.code()),
        Err(f) => {
            out.failure(f.name(), f.code(), &f.message());
            ExitCode::from(f.code())
        }
    }
}

/// A reader that stops reading (`jitctl list | head`) ends jitctl quietly, as it ends `ls`:
/// Rust ignores SIGPIPE, which turns every later write into a panic.
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to the default is async-signal-safe and done
    // before any thread exists; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
        Command::Manpage { dir } => {
            use clap::CommandFactory;
            let failed =
                |e: std::io::Error| Failure::Other(format!("cannot write the manual pages: {e}"));
            return match dir {
                Some(dir) => manpages::write_all(Cli::command(), &dir)
                    .map(|pages| out.message(&format!("wrote {}", pages.join(" "))))
                    .map_err(failed),
                None => {
                    let mut cli = Cli::command().disable_help_subcommand(true);
                    cli.build();
                    manpages::render(&cli, "jitctl", &mut std::io::stdout()).map_err(failed)
                }
            };
        }
        _ => {}
    }
    if let Command::Policy {
        command: PolicyCommand::Check { paths, strict },
    } = command
    {
        return policy_check::run(&paths, strict, out);
    }
    match &command {
        Command::Suggest(args) => return report::run_suggest(args, out),
        Command::Report(args) => return report::run_report(args, out),
        Command::GenerateHistory(args) => return report::run_generate(args),
        Command::AccessReview(args) => return access_review::run(args, out),
        _ => {}
    }
    // An export is checked where it is, offline: the auditor's machine has no jitd.
    if let Command::Audit {
        command: AuditCommand::Verify { file: Some(file) },
    } = &command
    {
        return history::verify_file(file, out);
    }
    if let Command::Doctor { config } = &command {
        return doctor::run(config, out);
    }
    // Signing happens on the approver's machine, where there may be no jitd at all.
    if let Command::Approvals(requests::ApprovalCommand::Approve {
        id,
        sign: true,
        key,
        deny,
        yes,
        ..
    }) = &command
    {
        return sign::run(&sign::SignArgs {
            blob: id.clone(),
            key: key.clone(),
            deny: *deny,
            yes: *yes,
        });
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
                wait,
                mfa_key,
            } => {
                let (reason, ticket) = ask_missing(&jitd, &privilege, reason, ticket).await?;
                if let Some(key) = mfa_key {
                    sign::prove(&jitd, &key).await?;
                }
                // Answers polkit when the rule wants a proof of presence (reauth = true).
                let _agent = agent::start();
                let outcome = jitd
                    .request(&privilege, duration.unwrap_or(0), &reason, &ticket)
                    .await?;
                if outcome.status == jitd::terms::RequestStatus::Pending {
                    return requests::pending(&jitd, &outcome, wait, out).await;
                }
                out.outcome(&outcome, now_ms());
            }
            Command::Approvals(cmd) => return requests::run(&jitd, cmd, out).await,
            Command::Status => {
                let grants = jitd.list_mine(false).await?;
                out.status(&grants, now_ms());
                requests::reviews_waiting(&jitd, out).await;
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
                let live = was_live(&jitd, &id, true).await;
                let g = jitd.revoke(&id, &reason, terminate).await?;
                out.ended(&g, "Revoked", !live, now_ms());
            }
            Command::Drop { id, reason } => {
                let live = was_live(&jitd, &id, false).await;
                let g = jitd.revoke(&id, &reason, false).await?;
                out.ended(&g, "Dropped", !live, now_ms());
            }
            Command::Privileges => {
                let list = jitd.list_privileges().await?;
                out.privileges(&list, now_ms());
            }
            Command::Explain { privilege } => {
                let e = jitd.explain(&privilege).await?;
                out.explanation(&e);
                // Like `kubectl auth can-i`: scripts ask with the exit code.
                if e.decision != jitd::terms::Verdict::Allow {
                    return Err(Failure::No);
                }
            }
            Command::Reload => {
                let summary = jitd.reload_policy().await.map_err(|e| match e {
                    // The daemon refuses a policy with errors and keeps the one it has.
                    Error::InvalidArgument(m) => Failure::Invalid(m),
                    other => Failure::from(other),
                })?;
                out.message(&summary);
            }
            Command::Audit {
                command: AuditCommand::Verify { .. },
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
            Command::Replay(args) => replay::run(&jitd, &args, out).await?,
            Command::Policy { .. }
            | Command::Doctor { .. }
            | Command::Completions { .. }
            | Command::Manpage { .. }
            | Command::Suggest(_)
            | Command::Report(_)
            | Command::GenerateHistory(_)
            | Command::AccessReview(_) => {}
        }
        Ok(())
    })
}

/// Whether grant `id` is live as the caller can see it (their own, and with `others`
/// anyone's, for an admin's revoke): ending an ended grant succeeds and changes nothing, and
/// the answer should say so.
async fn was_live(jitd: &ManagerProxy<'_>, id: &str, others: bool) -> bool {
    let mine = jitd.list_mine(false).await.unwrap_or_default();
    if mine.iter().any(|g| g.id == id) {
        return true;
    }
    if !others {
        return false;
    }
    let all = jitd.list_all(false).await.unwrap_or_default();
    all.iter().any(|g| g.id == id)
}

/// Asks on the terminal for what the rule wants and the command line did not give: a reason
/// (saying how long it must be) and a ticket (saying what it must match). The daemon says what
/// the rule wants, through Explain; nothing is asked when it wants nothing, so a line typed
/// ahead is never swallowed. With nobody at a terminal nothing is asked: jitd's refusal says
/// what is missing.
async fn ask_missing(
    jitd: &ManagerProxy<'_>,
    privilege: &str,
    reason: Option<String>,
    ticket: Option<String>,
) -> Result<(String, String), Failure> {
    let wants = if std::io::stdin().is_terminal() && (reason.is_none() || ticket.is_none()) {
        match jitd.explain(privilege).await {
            Ok(e) if e.decision == jitd::terms::Verdict::Allow => Some(e),
            // Not allowed or not known: the request says why, without a question first.
            _ => None,
        }
    } else {
        None
    };
    let reason = match (reason, &wants) {
        (Some(r), _) => r,
        (None, Some(e)) if e.reason_required => ask(&format!(
            "Reason (at least {} characters, recorded in the audit trail): ",
            e.reason_min_chars
        ))?,
        (None, _) => String::new(),
    };
    let ticket = match (ticket, &wants) {
        (Some(t), _) => t,
        (None, Some(e)) if !e.ticket_pattern.is_empty() => {
            ask(&format!("Ticket (matching {}): ", e.ticket_pattern))?
        }
        (None, _) => String::new(),
    };
    Ok((reason, ticket))
}

fn ask(prompt: &str) -> Result<String, Failure> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failure::Other(e.to_string()))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
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
            (Failure::Pending, 12),
            (Failure::NotGranted, 13),
            (Failure::Usage(String::new()), 2),
            (Failure::Other(String::new()), 1),
            (Failure::No, 1),
            (Failure::Invalid(String::new()), 10),
        ];
        for (f, code) in cases {
            assert_eq!(f.code(), code, "{f:?}");
            assert!(
                EXIT_CODES.contains(&format!("  {code:<2} ")),
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
