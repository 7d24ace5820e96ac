//! `jitd`: the daemon (`jitd` / `jitd serve`), the one-shot revocation sweep (`jitd sweep`) the
//! systemd timer runs even when the daemon is dead, `jitd purge` for package removal, and
//! `jitd reload` for `systemctl reload`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use jitd::audit::Audit;
use jitd::config::{self, Config};
use jitd::runtime::{one_shot, serve};
use jitd::store::Store;

#[derive(Parser)]
#[command(
    name = "jitd",
    version,
    about = "Just-in-time privilege elevation daemon"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve on the bus (the default).
    Serve,
    /// Remove every expired grant now, then exit. Safe while the daemon runs; works without it.
    Sweep,
    /// Remove every grant and every jitd drop-in from the system (package removal).
    Purge,
    /// Ask the running daemon to re-read the policy; fails, with the positions of the errors,
    /// when the new policy is broken (the old one then stays in force). For `systemctl reload`.
    Reload,
    /// The audit trail in the state database, read directly (root; the daemon need not run).
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and report the first broken link (exit 1), read-only.
    Verify {
        /// Also check the database against the chain heads jitd sent to syslog (a text export
        /// of the log, e.g. `journalctl -t jitd -o short` or /var/log/auth.log): newest records
        /// deleted from the database show here (exit 1).
        #[arg(long, value_name = "FILE")]
        against_syslog: Option<PathBuf>,
        /// Check an export file (`jitd audit export`, `jitctl audit export`) instead of the
        /// database: every hash and link, and that its readable columns match what is sealed.
        #[arg(long, value_name = "EXPORT", conflicts_with = "against_syslog")]
        file: Option<PathBuf>,
    },
    /// Every record (from --since on) with host, seq, time, kind, fields and its seal, for a
    /// SIEM or an auditor; read-only, the daemon need not run.
    Export {
        /// A span back from now (90d) or a UTC date (2026-07-01); default: everything.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: jitd::history::ExportFormat,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let explicit = cli.config.is_some();
    let path = cli
        .config
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let cfg = match Config::load(&path, explicit) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("jitd: configuration: {e}");
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    let audit = Arc::new(Audit::new(true));
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cfg, audit),
        Command::Sweep => one_shot(cfg, audit, false),
        Command::Purge => one_shot(cfg, audit, true),
        Command::Reload => reload(&cfg).map_err(jitd::runtime::RunError::Bus),
        Command::Audit(AuditCommand::Verify {
            file: Some(file), ..
        }) => return jitd::history::verify_file_cli("jitd audit verify", &file),
        Command::Audit(AuditCommand::Verify { against_syslog, .. }) => {
            return verify(&cfg, against_syslog.as_deref());
        }
        Command::Audit(AuditCommand::Export { since, format }) => {
            return jitd::history::export_cli(&cfg.db_path(), since.as_deref(), format);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jitd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `jitd audit verify`: exit 0 when the chain is intact (and agrees with the syslog heads when
/// asked), 1 when a link is broken or syslog saw records the database lacks, 2 when the
/// database or the log cannot be read.
fn verify(cfg: &Config, against_syslog: Option<&std::path::Path>) -> ExitCode {
    let store = match Store::open_read_only(&cfg.db_path()) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("jitd audit verify: {e}");
            return ExitCode::from(2);
        }
    };
    let intact = match store.verify_chain() {
        Ok(report) => {
            println!("{report}");
            if let Ok(Some(cp)) = store.audit_checkpoint() {
                println!(
                    "records up to seq {} were purged by audit_retention; the chain is checked \
                     from the checkpoint kept then (head {})",
                    cp.seq, cp.hash
                );
            }
            report.is_intact()
        }
        Err(e) => {
            eprintln!("jitd audit verify: {e}");
            return ExitCode::from(2);
        }
    };
    let agrees = match against_syslog.map(|log| against(&store, log)) {
        None => true,
        Some(Ok(check)) => {
            println!("{check}");
            check.agrees()
        }
        Some(Err(e)) => {
            eprintln!("jitd audit verify: {e}");
            return ExitCode::from(2);
        }
    };
    if intact && agrees {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Checks the database against the chain heads in the log at `path`.
fn against(store: &Store, path: &std::path::Path) -> Result<jitd::audit::heads::HeadCheck, String> {
    use jitd::audit::heads;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut seen = heads::heads_in(&String::from_utf8_lossy(&bytes));
    // Heads of records purged by retention cannot be compared any more.
    if let Ok(Some(cp)) = store.audit_checkpoint() {
        seen.retain(|h| h.seq > cp.seq);
    }
    if seen.is_empty() {
        return Err(format!(
            "{}: no chain heads (no jitd record ending in seq=N head=...); is it jitd's log?",
            path.display()
        ));
    }
    let last = store.last_audit_seq().map_err(|e| e.to_string())?;
    heads::check(&seen, last, |seq| store.audit_hash(seq)).map_err(|e| e.to_string())
}

/// Calls `ReloadPolicy` on the running daemon, as root, over the configured bus.
fn reload(cfg: &Config) -> Result<(), String> {
    zbus::block_on(async {
        let conn = jitd::client::connect(cfg.bus_address.as_deref())
            .await
            .map_err(|e| format!("cannot connect to the bus: {e}"))?;
        jitd::client::verify_owner(&conn).await?;
        let manager = jitd::client::ManagerProxy::new(&conn)
            .await
            .map_err(|e| e.to_string())?;
        let summary = manager.reload_policy().await.map_err(|e| e.message())?;
        println!("jitd reload: {summary}");
        Ok(())
    })
}
