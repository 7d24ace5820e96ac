//! `jitctl suggest` and `jitctl report`: policy suggestions and the period's access report from
//! the audit trail, without the daemon (a database read read-only, or exports of many hosts).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use jitd::report::{self, generate, input, period, policy_view::PolicyView, render, suggest};

use crate::Failure;
use crate::output::Out;

const DEFAULT_DB: &str = "/var/lib/jitd/jitd.db";
const DEFAULT_POLICY: &str = "/etc/jitd/policy.toml";

#[derive(Clone, Copy, ValueEnum)]
pub enum SuggestFormat {
    Text,
    Json,
    Toml,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
    Html,
}

#[derive(Args)]
pub struct Source {
    /// JSON-lines audit exports (any number of hosts), or one state database.
    #[arg(long, num_args = 1.., value_name = "EXPORT")]
    hosts: Vec<PathBuf>,
    /// The policy file (or policy.d directory) the history ran under.
    #[arg(long, default_value = DEFAULT_POLICY)]
    policy: PathBuf,
}

#[derive(Args)]
pub struct SuggestArgs {
    #[command(flatten)]
    source: Source,
    /// How far back to look, ending at the newest record.
    #[arg(long, default_value = "90d")]
    window: String,
    #[arg(long, value_enum, default_value = "text")]
    format: SuggestFormat,
    /// Apply the suggestion with this id to the policy file given with --to (root: the
    /// acceptance goes to the audit trail).
    #[arg(long, value_name = "ID", requires = "to")]
    apply: Option<String>,
    /// The policy file to write (temporary file, policy check, then rename).
    #[arg(long, value_name = "FILE", requires = "apply")]
    to: Option<PathBuf>,
    /// The state database the acceptance is recorded in.
    #[arg(long, default_value = DEFAULT_DB)]
    db: PathBuf,
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    source: Source,
    /// A quarter (2026Q4).
    #[arg(long, conflicts_with = "since", required_unless_present = "since")]
    period: Option<String>,
    /// From this day (2026-10-01) to the newest record.
    #[arg(long)]
    since: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Sign the written report with this SSH key (ssh-keygen -Y sign, namespace
    /// jitd-report-v1): FILE.sig beside it.
    #[arg(long, value_name = "KEY", requires = "output")]
    sign: Option<PathBuf>,
}

#[derive(Args)]
pub struct GenerateArgs {
    #[arg(long, default_value_t = 17)]
    seed: u64,
    #[arg(long, default_value_t = 3)]
    hosts: usize,
    #[arg(long, default_value_t = 92)]
    days: i64,
    #[arg(long, default_value_t = 0)]
    extra_users: usize,
    /// Directory for HOST.jsonl exports and policy.toml.
    #[arg(long)]
    out: PathBuf,
}

pub fn load(
    source: &Source,
) -> Result<(report::model::Facts, Vec<input::HostSummary>, PolicyView), Failure> {
    let paths = if source.hosts.is_empty() {
        vec![PathBuf::from(DEFAULT_DB)]
    } else {
        source.hosts.clone()
    };
    let (facts, hosts) = report::gather(input::open(&paths).as_ref()).map_err(Failure::Other)?;
    // A host whose chain does not verify is refused whole: its records may be forged.
    let broken = hosts.iter().find_map(|h| match &h.chain {
        input::Chain::Broken(why) => Some((h.host.as_str(), why)),
        _ => None,
    });
    if let Some((host, why)) = broken {
        eprintln!("jitctl: {host}: the audit chain does not verify ({why}): refused");
        return Err(Failure::Broken);
    }
    let mut policy = PolicyView::read(&source.policy).map_err(Failure::Other)?;
    // On the host itself (its own database), accounts locked or expired now are known: root
    // reads /etc/shadow. Exports from other hosts say nothing about their accounts.
    if source.hosts.is_empty()
        && let Ok(shadow) = std::fs::read_to_string("/etc/shadow")
    {
        let users: Vec<String> = policy.rules.iter().flat_map(|r| r.users.clone()).collect();
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        let today = crate::output::now_ms().div_euclid(86_400_000);
        policy.unusable = jitd::report::policy_view::unusable_accounts(&shadow, &users, today);
    }
    Ok((facts, hosts, policy))
}

fn newest(hosts: &[input::HostSummary]) -> i64 {
    hosts.iter().map(|h| h.last_ms).max().unwrap_or(0)
}

fn suggestions(
    facts: &report::model::Facts,
    hosts: &[input::HostSummary],
    policy: &PolicyView,
    window: &str,
) -> Result<Vec<suggest::Suggestion>, Failure> {
    let secs = jitd::duration::parse(window)
        .map_err(|e| Failure::Other(format!("--window {window}: {e}")))?;
    let thresholds = suggest::Thresholds {
        window_ms: i64::try_from(secs).unwrap_or(i64::MAX / 2) * 1000,
        ..suggest::Thresholds::default()
    };
    Ok(suggest::suggest(facts, policy, &thresholds, newest(hosts)))
}

pub fn run_suggest(args: &SuggestArgs, out: &Out) -> Result<(), Failure> {
    let (facts, hosts, policy) = load(&args.source)?;
    let list = suggestions(&facts, &hosts, &policy, &args.window)?;
    if let (Some(id), Some(to)) = (&args.apply, &args.to) {
        let chosen = list.iter().find(|s| &s.id == id).ok_or_else(|| {
            Failure::Other(format!("no suggestion {id} for this history and window"))
        })?;
        return crate::suggest_apply::run(chosen, &policy, to, &args.db, out);
    }
    let text = match args.format {
        SuggestFormat::Text => suggest::to_text(&list),
        SuggestFormat::Toml => suggest::to_toml(&list),
        SuggestFormat::Json => {
            let doc = serde_json::json!({"schema": "jitd-suggestions-v1", "suggestions": list});
            format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
        }
    };
    print!("{text}");
    Ok(())
}

pub fn run_report(args: &ReportArgs, _out: &Out) -> Result<(), Failure> {
    let (facts, hosts, policy) = load(&args.source)?;
    let which = args
        .period
        .as_deref()
        .or(args.since.as_deref())
        .unwrap_or("");
    let period = period::Period::parse(which, newest(&hosts)).map_err(Failure::Other)?;
    let list = suggestions(&facts, &hosts, &policy, "90d")?;
    let r = period::build(&facts, &hosts, &policy, &period, list);
    // The report holds every row it shows: the facts are not needed to render it.
    drop(facts);
    let text = match args.format {
        ReportFormat::Text => render::text(&r),
        ReportFormat::Json => render::json(&r),
        ReportFormat::Csv => render::csv(&r),
        ReportFormat::Html => report::html::html(&r),
    };
    let Some(file) = &args.output else {
        print!("{text}");
        return Ok(());
    };
    std::fs::write(file, &text).map_err(|e| Failure::Other(format!("{}: {e}", file.display())))?;
    if let Some(key) = &args.sign {
        let _ = std::fs::remove_file(format!("{}.sig", file.display()));
        // jitctl runs ssh-keygen for the signature, as `doctor` runs systemctl: the edge.
        #[allow(clippy::disallowed_methods)]
        let o = std::process::Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "jitd-report-v1", "-f"])
            .arg(key)
            .arg(file)
            .output()
            .map_err(|e| Failure::Other(format!("cannot run ssh-keygen: {e}")))?;
        if !o.status.success() {
            return Err(Failure::Other(format!(
                "signing {} failed: {}",
                file.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
    }
    Ok(())
}

pub fn run_generate(args: &GenerateArgs) -> Result<(), Failure> {
    let config = generate::Config {
        seed: args.seed,
        hosts: args.hosts,
        days: args.days,
        extra_users: args.extra_users,
        ..generate::Config::default()
    };
    generate::generate(&config)
        .write_dir(&args.out)
        .map_err(|e| Failure::Other(format!("{}: {e}", args.out.display())))
}
