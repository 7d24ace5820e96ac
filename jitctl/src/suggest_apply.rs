//! `jitctl suggest --apply ID --to FILE`: the suggestion's change written to a policy file the
//! way an admin would: a temporary file beside it, the whole policy checked with the new text,
//! then a rename (a reader sees the old file or the new, never half of one), and the acceptance
//! recorded in the audit trail (`suggestion.accepted` with the hash of the text before and
//! after). The daemon takes the new policy on its next reload, as with any edit.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jitd::audit::AuditEvent;
use jitd::policy::{Policy, SystemAccounts};
use jitd::report::{apply, policy_view::PolicyView, suggest::Suggestion};
use jitd::store::Store;
use sha2::{Digest, Sha256};

use crate::Failure;
use crate::output::{Out, now_ms};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn run(
    s: &Suggestion,
    policy: &PolicyView,
    to: &Path,
    db: &Path,
    out: &Out,
) -> Result<(), Failure> {
    let before = match std::fs::read_to_string(to) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Failure::Other(format!("{}: {e}", to.display()))),
    };
    let after = apply::apply(&before, s, policy).map_err(Failure::Other)?;
    // The policy as the daemon will read it: every file it has, this one with its new text.
    let target = std::fs::canonicalize(to).unwrap_or_else(|_| to.to_path_buf());
    let mut texts: Vec<(PathBuf, String)> = policy
        .files
        .iter()
        .filter(|(p, _)| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()) != target)
        .cloned()
        .collect();
    texts.push((to.to_path_buf(), after.clone()));
    let checked = Policy::check_texts(&texts, &SystemAccounts);
    if !checked.errors.is_empty() || checked.policy.is_none() {
        for d in &checked.errors {
            eprintln!(
                "{}:{}:{}: error: {}",
                d.file.display(),
                d.line,
                d.column,
                d.message
            );
        }
        return Err(Failure::Invalid(format!(
            "{} would leave a policy with errors; {} is unchanged",
            s.id,
            to.display()
        )));
    }
    // The audit must be writable before the file changes: an applied change is never unrecorded.
    if !db.exists() {
        return Err(Failure::Other(format!(
            "{}: no state database to record the acceptance in (--db)",
            db.display()
        )));
    }
    let store = Store::open(db, Duration::from_secs(5)).map_err(|e| {
        Failure::Other(format!(
            "cannot record the acceptance in {}: {e} (run as root)",
            db.display()
        ))
    })?;
    let tmp = to.with_extension("toml.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(after.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, to)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Failure::Other(format!("{}: {e}", to.display())));
    }
    let diff_hash = hex(&Sha256::digest(format!("{before}\0{after}").as_bytes()));
    let event = AuditEvent::SuggestionAccepted {
        id: s.id.clone(),
        kind: s.kind.to_string(),
        file: to.display().to_string(),
        diff_hash: diff_hash.clone(),
    };
    store
        .append_audit(now_ms(), &jitd::sys::hostname(), &event.to_line())
        .map_err(|e| {
            Failure::Other(format!(
                "{} was written but the acceptance was not recorded: {e}",
                to.display()
            ))
        })?;
    out.message(&format!(
        "applied {} ({}) to {}; reload jitd to use it (jitctl reload)",
        s.id,
        s.kind,
        to.display()
    ));
    Ok(())
}
