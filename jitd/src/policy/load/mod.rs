//! Reading policy files: TOML to raw structs with spans, then one validation pass over all
//! files together that turns raw values into the validated types or into diagnostics.

mod approval;
mod diagnostics;
mod escalation;
mod hook;
mod lint;
mod privilege;
mod routes;
mod rule;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::trust::{self, OnUntrusted};
use super::{Accounts, Diagnostic, Loaded, Policy, PolicySource};
use crate::names::PrivilegeName;
use crate::position::line_col;
use diagnostics::{Reporter, at, whole_file};
use privilege::{Sensitive, privilege};
use rule::rule;
use schema::{ParsedFile, parse_file};

/// Largest policy file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The daemon's view: the whole policy, or every error and nothing of it.
pub(super) fn load(src: &PolicySource, accounts: &dyn Accounts) -> Result<Loaded, Vec<Diagnostic>> {
    check(src, accounts).into_result()
}

/// The checker's view: every error and every warning of every file, whether or not the
/// policy loads.
pub(super) fn check(src: &PolicySource, accounts: &dyn Accounts) -> Checked {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    // A file or directory in the wrong hands: an error for the daemon, a warning for a user
    // checking a draft.
    let mut untrusted = Vec::new();
    let mut paths = Vec::new();
    if let Some(file) = &src.file {
        if file.exists() {
            paths.push(file.clone());
        } else {
            warnings.push(whole_file(
                file,
                "policy file does not exist (nothing from it is allowed)",
            ));
        }
    }
    if let Some(dir) = &src.dir {
        if let Ok(meta) = std::fs::metadata(dir)
            && let Some(complaint) = trust::check(dir, &meta)
        {
            untrusted.push(whole_file(dir, &complaint));
        }
        match std::fs::read_dir(dir) {
            Ok(rd) => {
                let mut found: Vec<PathBuf> = Vec::new();
                for path in rd.filter_map(Result::ok).map(|e| e.path()) {
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.starts_with('.') {
                        continue;
                    }
                    if name.ends_with(".toml") {
                        found.push(path);
                    } else {
                        // A policy saved as site.conf or site.toml.bak would otherwise be
                        // silently absent from what the daemon allows.
                        warnings.push(whole_file(
                            &path,
                            "skipped: only files named *.toml in the policy directory are read",
                        ));
                    }
                }
                found.sort();
                paths.extend(found);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                warnings.push(whole_file(dir, "policy directory does not exist"));
            }
            Err(e) => errors.push(whole_file(dir, &format!("cannot read the directory: {e}"))),
        }
    }
    for path in paths {
        match trust::read(&path, MAX_FILE_BYTES) {
            Ok((text, complaint)) => {
                if let Some(complaint) = complaint {
                    untrusted.push(whole_file(&path, &complaint));
                }
                texts.push((path, text));
            }
            Err(message) => errors.push(whole_file(&path, &message)),
        }
    }
    let mut refused = match src.untrusted {
        OnUntrusted::Refuse => untrusted,
        OnUntrusted::Warn => {
            warnings.extend(untrusted);
            Vec::new()
        }
    };
    if !errors.is_empty() {
        errors.extend(refused);
        return Checked {
            policy: None,
            errors,
            warnings,
            files: texts.iter().map(|(f, _)| f.clone()).collect(),
        };
    }
    if texts.is_empty()
        && let Some(place) = src.dir.as_ref().or(src.file.as_ref())
    {
        warnings.push(whole_file(
            place,
            "no policy file was read: every request is denied",
        ));
    }
    // Untrusted files are still read for their other errors, so one run names them all.
    let mut checked = from_texts(&texts, accounts, warnings, &src.admin_group);
    if !refused.is_empty() {
        refused.append(&mut checked.errors);
        checked.errors = refused;
    }
    checked
}

/// Everything a check found.
#[derive(Debug)]
pub struct Checked {
    /// The policy, when it has no error.
    pub policy: Option<Policy>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub files: Vec<PathBuf>,
}

impl Checked {
    /// All or nothing: a policy with any error is not used.
    pub fn into_result(self) -> Result<Loaded, Vec<Diagnostic>> {
        match self.policy {
            Some(policy) if self.errors.is_empty() => Ok(Loaded {
                policy,
                warnings: self.warnings,
                files: self.files,
            }),
            _ => Err(self.errors),
        }
    }
}

/// Where a privilege was first defined, for duplicate reports.
struct Defined {
    file: PathBuf,
    line: usize,
}

pub(super) fn from_texts(
    texts: &[(PathBuf, String)],
    accounts: &dyn Accounts,
    mut warnings: Vec<Diagnostic>,
    admin_group: &str,
) -> Checked {
    let mut errors = Vec::new();
    let sensitive = Sensitive::new(admin_group, accounts);
    // The shape of every file first; what was muted there stays muted for the meaning.
    let mut parsed: Vec<(&Path, &str, ParsedFile, Vec<Range<usize>>)> = Vec::new();
    for (file, text) in texts {
        let mut r = Reporter::new(file, text, &mut errors);
        let raw = parse_file(&mut r);
        let muted = r.muted();
        parsed.push((file, text, raw, muted));
    }

    // Privileges first, from every file, so rules may name privileges of other files. A
    // privilege with an error is still known by name, so a rule naming it is not also wrong.
    let mut policy = Policy::default();
    let mut defined: BTreeMap<String, Defined> = BTreeMap::new();
    let mut claims = routes::Claims::default();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    for (file, text, raw, muted) in &parsed {
        let mut r = Reporter::new(file, text, &mut errors);
        r.mute_all(muted.clone());
        let mut w = Vec::new();
        for (key, body) in &raw.privileges {
            let name = match PrivilegeName::parse(key.get_ref()) {
                Ok(name) => name,
                Err(e) => {
                    r.at(key.span(), e.to_string());
                    broken.insert(key.get_ref().clone());
                    continue;
                }
            };
            let (line, _) = line_col(text, key.span().start);
            if let Some(first) = defined.get(name.as_str()) {
                r.at(
                    key.span(),
                    format!(
                        "privilege {name} is already defined at {}:{}",
                        first.file.display(),
                        first.line
                    ),
                );
                continue;
            }
            defined.insert(
                name.to_string(),
                Defined {
                    file: file.to_path_buf(),
                    line,
                },
            );
            if let Some(body) = body.as_ref() {
                claims.add(&mut r, name.as_str(), body.get_ref());
            }
            let built = body.as_ref().and_then(|body| {
                privilege(&mut r, &mut w, name.clone(), body, accounts, &sensitive)
            });
            match built {
                Some(p) => policy.privileges.push(p),
                None => {
                    broken.insert(name.to_string());
                }
            }
        }
        warnings.extend(w.into_iter().map(|(span, m)| at(file, text, span, m)));
    }

    let mut rule_names: BTreeMap<String, ()> = BTreeMap::new();
    // Where each loaded rule's name is written, for warnings about the rule as a whole.
    let mut rule_at: Vec<(&Path, &str, Range<usize>)> = Vec::new();
    for (file, text, raw, muted) in &parsed {
        let mut r = Reporter::new(file, text, &mut errors);
        r.mute_all(muted.clone());
        let mut w = Vec::new();
        if let Some(sets) = &raw.same_person {
            policy
                .same_person
                .0
                .extend(approval::same_person(&mut r, sets));
        }
        for body in &raw.rules {
            let body = body.get_ref();
            if let Some(rule) = rule(&mut r, &mut w, body, &policy, &broken, accounts) {
                if rule_names.insert(rule.name.clone(), ()).is_some() {
                    r.at(
                        body.name.span(),
                        format!("rule name \"{}\" is used twice", rule.name),
                    );
                    continue;
                }
                rule_at.push((file, text, body.name.span()));
                policy.rules.push(rule);
            }
        }
        warnings.extend(w.into_iter().map(|(span, m)| at(file, text, span, m)));
    }
    let files: Vec<PathBuf> = texts.iter().map(|(f, _)| f.clone()).collect();
    if !errors.is_empty() {
        // What follows judges the policy as a whole, which a policy with errors is not: its
        // findings would be echoes of the errors (a privilege "used by no rule" because the
        // rule naming it did not load).
        sort(&mut errors);
        sort(&mut warnings);
        return Checked {
            policy: None,
            errors,
            warnings,
            files,
        };
    }
    routes::route(&mut policy);

    for (later, (file, text, span)) in rule_at.iter().enumerate() {
        for message in lint::shadowed(&policy.rules, later) {
            warnings.push(at(file, text, span.clone(), message));
        }
    }
    for (file, text, raw, _) in &parsed {
        for (key, _) in &raw.privileges {
            let used = policy
                .rules
                .iter()
                .any(|r| r.privileges.iter().any(|p| p.as_str() == key.get_ref()));
            if !used {
                warnings.push(at(
                    file,
                    text,
                    key.span(),
                    format!(
                        "privilege {} is not named by any rule: nobody can request it",
                        key.get_ref()
                    ),
                ));
            }
        }
    }
    if policy.rules.is_empty()
        && let Some((file, _)) = texts.first()
    {
        warnings.push(whole_file(
            file,
            "the policy has no rules: every request is denied",
        ));
    }
    sort(&mut warnings);
    Checked {
        policy: Some(policy),
        errors,
        warnings,
        files,
    }
}

/// In the order of the files, then of the text: the order an editor walks them.
fn sort(list: &mut [Diagnostic]) {
    list.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
}
