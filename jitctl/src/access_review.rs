//! `jitctl access-review start|apply`: the periodic review of who may elevate to what, with no
//! server. `start` writes a review file of every (user, rule, privilege) eligibility with its
//! last use and a recommendation; the reviewer marks each `keep` or `remove` with a
//! justification and signs the file with `ssh-keygen -Y sign -n jitd-review-v1@SITE`;
//! `apply` verifies the signature against the reviewers' allowed-signers file, refuses a
//! reviewer who reviews their own access, an unjustified or undecided line, or a file whose
//! eligibility snapshot is no longer the current one, then prints the policy change for the
//! removals and keeps the signed file as evidence.
//!
//! (`jitctl review GRANT` is the approvals' break-glass review: a different thing.)

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use jitd::report::{period, policy_view::PolicyView, suggest};
use sha2::{Digest, Sha256};

use crate::Failure;
use crate::output::Out;

const NAMESPACE: &str = "jitd-review-v1";
const DEFAULT_SIGNERS: &str = "/etc/jitd/reviewers";
const DEFAULT_EVIDENCE: &str = "/var/lib/jitd/reviews";

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Write the review file for a period to stdout.
    Start {
        #[command(flatten)]
        source: crate::report::Source,
        /// The quarter under review (2026Q4).
        #[arg(long)]
        period: String,
        /// The site name in the signature namespace (jitd-review-v1@SITE).
        #[arg(long, default_value = "localhost")]
        site: String,
    },
    /// Verify a signed review file (FILE and FILE.sig), print the policy change and keep the
    /// signed file as evidence.
    Apply {
        file: PathBuf,
        #[command(flatten)]
        source: crate::report::Source,
        /// The reviewers: an ssh allowed-signers file (principal, then key).
        #[arg(long, default_value = DEFAULT_SIGNERS)]
        signers: PathBuf,
        /// Where the signed file is kept.
        #[arg(long, default_value = DEFAULT_EVIDENCE)]
        evidence: PathBuf,
    },
}

#[derive(Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub command: ReviewCommand,
}

/// The eligibility rows at the period's end and the hash that pins them.
fn snapshot(
    source: &crate::report::Source,
    which: &str,
) -> Result<(period::Report, String, PolicyView), Failure> {
    let (facts, hosts, policy) = crate::report::load(source)?;
    let newest = hosts.iter().map(|h| h.last_ms).max().unwrap_or(0);
    let p = period::Period::parse(which, newest).map_err(Failure::Other)?;
    let r = period::build(&facts, &hosts, &policy, &p, Vec::new());
    let mut digest = Sha256::new();
    for e in &r.eligibility {
        digest.update(format!("{}\0{}\0{}\n", e.user, e.rule, e.privilege).as_bytes());
    }
    let hash: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((r, hash, policy))
}

fn q(s: &str) -> String {
    // A JSON string is a valid TOML basic string.
    serde_json::Value::String(s.to_string()).to_string()
}

pub fn run(args: &ReviewArgs, out: &Out) -> Result<(), Failure> {
    match &args.command {
        ReviewCommand::Start {
            source,
            period,
            site,
        } => {
            let (r, hash, _) = snapshot(source, period)?;
            let mut text = format!(
                "# jitd access review {}. For each item set decision = \"keep\" or \"remove\" and a\n# justification, set reviewer to your user name, then sign:\n#   ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n {NAMESPACE}@{site} THIS-FILE\n# and run: jitctl access-review apply THIS-FILE (THIS-FILE.sig beside it)\nschema = \"{NAMESPACE}\"\nsite = {}\nperiod = {}\nsnapshot = \"{hash}\"\nreviewer = \"\"\n",
                r.period,
                q(site),
                q(&r.period)
            );
            for e in &r.eligibility {
                let suggested = if e.recommendation.starts_with("remove") {
                    "remove"
                } else {
                    "keep"
                };
                text.push_str(&format!(
                    "\n[[item]]\nuser = {}\nrule = {}\nprivilege = {}\nlast_use = {}\nrecommendation = {}\n# suggested: {suggested}\ndecision = \"\"\njustification = \"\"\n",
                    q(&e.user), q(&e.rule), q(&e.privilege), q(&e.last_use), q(&e.recommendation)
                ));
            }
            print!("{text}");
            Ok(())
        }
        ReviewCommand::Apply {
            file,
            source,
            signers,
            evidence,
        } => apply(file, source, signers, evidence, out),
    }
}

fn field<'a>(t: &'a toml::Table, key: &str) -> &'a str {
    t.get(key).and_then(toml::Value::as_str).unwrap_or("")
}

fn apply(
    file: &Path,
    source: &crate::report::Source,
    signers: &Path,
    evidence: &Path,
    out: &Out,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Other(format!("{}: {e}", file.display())))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| Failure::Other(format!("{}: {e}", file.display())))?;
    if field(&doc, "schema") != NAMESPACE {
        return Err(Failure::Other(format!(
            "{}: not a jitd review file",
            file.display()
        )));
    }
    let reviewer = field(&doc, "reviewer");
    if reviewer.is_empty() {
        return Err(Failure::Other("the review names no reviewer".into()));
    }
    let sig = PathBuf::from(format!("{}.sig", file.display()));
    verify(
        file,
        &sig,
        signers,
        reviewer,
        &format!("{NAMESPACE}@{}", field(&doc, "site")),
    )?;
    let (_, hash, policy) = snapshot(source, field(&doc, "period"))?;
    if field(&doc, "snapshot") != hash {
        return Err(Failure::Other(
            "the eligibility changed since this review started: start a new review".into(),
        ));
    }
    let items: Vec<&toml::Table> = doc
        .get("item")
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(toml::Value::as_table).collect())
        .unwrap_or_default();
    let mut removed = 0;
    // (user, rule) -> privileges to remove, privileges kept.
    let mut decided: std::collections::BTreeMap<(&str, &str), (Vec<&str>, usize)> =
        std::collections::BTreeMap::new();
    for item in &items {
        let (user, rule, decision) = (
            field(item, "user"),
            field(item, "rule"),
            field(item, "decision"),
        );
        if user == reviewer {
            return Err(Failure::Other(format!(
                "{reviewer} may not review their own access ({rule})"
            )));
        }
        if field(item, "justification").trim().is_empty() {
            return Err(Failure::Other(format!(
                "{user} in {rule}: no justification"
            )));
        }
        let entry = decided.entry((user, rule)).or_default();
        match decision {
            "keep" => entry.1 += 1,
            "remove" => {
                removed += 1;
                entry.0.push(field(item, "privilege"));
            }
            other => {
                return Err(Failure::Other(format!(
                    "{user} in {rule}: decision {other:?} is not keep or remove"
                )));
            }
        }
    }
    let mut changes = String::new();
    for ((user, rule), (remove, kept)) in &decided {
        if remove.is_empty() {
            continue;
        }
        if *kept > 0 {
            // A rule names users for all its privileges at once: taking one away means a rule
            // of its own for what they keep, which is a person's edit.
            changes.push_str(&format!(
                "# {user} keeps other privileges of rule {rule}: move {user} to a rule without {} by hand\n",
                remove.join(", ")
            ));
            continue;
        }
        let change = suggest::Change::RemoveRuleUser {
            rule: (*rule).into(),
            user: (*user).into(),
        };
        changes.push_str(&suggest::render_change(&change, &policy));
    }
    std::fs::create_dir_all(evidence)
        .map_err(|e| Failure::Other(format!("{}: {e}", evidence.display())))?;
    let name = format!("review-{}-{}", field(&doc, "period"), &hash[..12]);
    for (from, ext) in [(file.to_path_buf(), "toml"), (sig, "toml.sig")] {
        let to = evidence.join(format!("{name}.{ext}"));
        std::fs::copy(&from, &to).map_err(|e| Failure::Other(format!("{}: {e}", to.display())))?;
    }
    print!("{changes}");
    out.message(&format!(
        "review by {reviewer} verified: {} kept, {removed} to remove; signed file kept in {}",
        items.len() - removed,
        evidence.display()
    ));
    Ok(())
}

/// `ssh-keygen -Y verify`: the signature is the reviewer's, by a key the signers file lists
/// for them, in this namespace.
fn verify(
    file: &Path,
    sig: &Path,
    signers: &Path,
    reviewer: &str,
    namespace: &str,
) -> Result<(), Failure> {
    let input = std::fs::File::open(file)
        .map_err(|e| Failure::Other(format!("{}: {e}", file.display())))?;
    // jitctl runs ssh-keygen for this one check, as `doctor` runs systemctl: the edge.
    #[allow(clippy::disallowed_methods)]
    let o = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(signers)
        .args(["-I", reviewer, "-n", namespace, "-s"])
        .arg(sig)
        .stdin(input)
        .output()
        .map_err(|e| Failure::Other(format!("cannot run ssh-keygen: {e}")))?;
    if !o.status.success() {
        return Err(Failure::Other(format!(
            "the signature of {} does not verify as {reviewer}'s: {}",
            file.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}
