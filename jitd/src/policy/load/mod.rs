//! Reading policy files: TOML to raw structs with spans, then one validation pass over all
//! files together that turns raw values into the validated types or into diagnostics.

mod approval;
mod diagnostics;
mod privilege;
mod rule;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::trust::{self, OnUntrusted};
use super::{Accounts, Diagnostic, Loaded, Policy, PolicySource};
use crate::names::PrivilegeName;
use crate::position::line_col;
use diagnostics::{Reporter, at, whole_file};
use privilege::{RawPrivilege, Sensitive, privilege};
use rule::{RawRule, rule};

/// Largest policy file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    privilege: BTreeMap<Spanned<String>, Spanned<RawPrivilege>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    /// Accounts of one person: none approves another's request.
    same_person: Option<approval::RawSamePerson>,
}

pub(super) fn load(src: &PolicySource, accounts: &dyn Accounts) -> Result<Loaded, Vec<Diagnostic>> {
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
                let mut found: Vec<PathBuf> = rd
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        !name.starts_with('.') && name.ends_with(".toml")
                    })
                    .collect();
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
        return Err(errors);
    }
    // Untrusted files are still read for their other errors, so one run names them all.
    match from_texts(&texts, accounts, warnings, &src.admin_group) {
        Ok(loaded) if refused.is_empty() => Ok(loaded),
        Ok(_) => Err(refused),
        Err(mut errors) => {
            refused.append(&mut errors);
            Err(refused)
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
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let sensitive = Sensitive::new(admin_group, accounts);
    let mut parsed: Vec<(&Path, &str, RawFile)> = Vec::new();
    for (file, text) in texts {
        match toml::from_str::<RawFile>(text) {
            Ok(raw) => parsed.push((file, text, raw)),
            Err(e) => {
                let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
                errors.push(Diagnostic {
                    file: file.clone(),
                    line,
                    column,
                    message: e.message().trim().to_string(),
                });
            }
        }
    }

    // Privileges first, from every file, so rules may name privileges of other files.
    let mut policy = Policy::default();
    let mut defined: BTreeMap<String, Defined> = BTreeMap::new();
    for (file, text, raw) in &parsed {
        let mut r = Reporter {
            file,
            text,
            out: &mut errors,
        };
        let mut w = Vec::new();
        for (key, body) in &raw.privilege {
            let Ok(name) = PrivilegeName::parse(key.get_ref()) else {
                let e = PrivilegeName::parse(key.get_ref())
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                r.at(key.span(), e);
                continue;
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
            if let Some(p) = privilege(&mut r, &mut w, name, body, accounts, &sensitive) {
                policy.privileges.push(p);
            }
        }
        warnings.extend(w.into_iter().map(|(span, m)| at(file, text, span, m)));
    }

    let mut rule_names: BTreeMap<String, ()> = BTreeMap::new();
    for (file, text, raw) in &parsed {
        let mut r = Reporter {
            file,
            text,
            out: &mut errors,
        };
        let mut w = Vec::new();
        if let Some(sets) = &raw.same_person {
            policy
                .same_person
                .0
                .extend(approval::same_person(&mut r, sets));
        }
        for body in &raw.rule {
            if let Some(rule) = rule(&mut r, &mut w, body.get_ref(), &policy, accounts) {
                if rule_names.insert(rule.name.clone(), ()).is_some() {
                    r.at(
                        body.get_ref().name.span(),
                        format!("rule name \"{}\" is used twice", rule.name),
                    );
                    continue;
                }
                policy.rules.push(rule);
            }
        }
        warnings.extend(w.into_iter().map(|(span, m)| at(file, text, span, m)));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    for (file, text, raw) in &parsed {
        for key in raw.privilege.keys() {
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
    if policy.rules.is_empty() {
        let file = texts.first().map_or_else(PathBuf::new, |(f, _)| f.clone());
        warnings.push(whole_file(
            &file,
            "the policy has no rules: every request is denied",
        ));
    }
    Ok(Loaded {
        policy,
        warnings,
        files: texts.iter().map(|(f, _)| f.clone()).collect(),
    })
}
