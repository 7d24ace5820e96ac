//! `jitctl policy check`: the policy judged as the daemon will judge it, without the daemon,
//! like `visudo -c`. Every finding of every file in one run, each as
//! `file:line:column: error|warning: message` on stderr (what editors and CI annotators read);
//! the verdict on stdout; with `--json`, one document with every finding.

use std::path::{Path, PathBuf};

use jitd::policy::{Checked, Diagnostic, OnUntrusted, Policy, PolicySource, SystemAccounts, trust};
use serde::Serialize;

use crate::Failure;
use crate::output::Out;

/// The daemon's configuration file, read for its `admin_group` and checked like the policy.
const CONFIG_PATH: &str = "/etc/jitd/jitd.toml";
const POLICY_FILE: &str = "/etc/jitd/policy.toml";
const POLICY_DIR: &str = "/etc/jitd/policy.d";

#[derive(Serialize)]
struct Finding {
    file: String,
    line: usize,
    column: usize,
    severity: &'static str,
    message: String,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    strict: bool,
    files: Vec<String>,
    privileges: usize,
    rules: usize,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<Finding>,
}

pub fn run(paths: &[PathBuf], strict: bool, out: &Out) -> Result<(), Failure> {
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
    let mut sources = Vec::new();
    if paths.is_empty() {
        sources.push(PolicySource {
            file: Some(PathBuf::from(POLICY_FILE)),
            dir: Some(PathBuf::from(POLICY_DIR)),
            ..base.clone()
        });
    }
    for p in paths {
        if p.is_dir() {
            sources.push(PolicySource {
                dir: Some(p.clone()),
                ..base.clone()
            });
        } else if p.exists() {
            sources.push(PolicySource {
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
    let mut report = Report {
        ok: true,
        strict,
        files: Vec::new(),
        privileges: 0,
        rules: 0,
        errors: 0,
        warnings: 0,
        diagnostics: Vec::new(),
    };
    for src in &sources {
        let checked: Checked = Policy::check(src, &SystemAccounts);
        if let Some(policy) = &checked.policy {
            report.privileges += policy.privileges().count();
            report.rules += policy.rules().len();
        }
        report
            .files
            .extend(checked.files.iter().map(|f| f.display().to_string()));
        for d in &checked.errors {
            add(&mut report, d, "error");
        }
        for d in &checked.warnings {
            add(&mut report, d, if strict { "error" } else { "warning" });
        }
    }
    // The installed configuration is part of what the daemon trusts.
    if paths.is_empty()
        && let Some(complaint) = config_complaint
    {
        let d = Diagnostic {
            file: config,
            line: 1,
            column: 1,
            message: complaint,
        };
        let refuse = untrusted == OnUntrusted::Refuse || strict;
        add(&mut report, &d, if refuse { "error" } else { "warning" });
    }
    report.ok = report.errors == 0;
    // In the order an editor walks them, errors and warnings together.
    report
        .diagnostics
        .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    for d in &report.diagnostics {
        eprintln!(
            "{}:{}:{}: {}: {}",
            d.file, d.line, d.column, d.severity, d.message
        );
    }
    if out.json {
        out.json(&report);
    } else if report.ok {
        println!(
            "policy OK: {} privileges, {} rules, {} warnings ({})",
            report.privileges,
            report.rules,
            report.warnings,
            files_label(&report.files)
        );
    }
    if report.ok {
        return Ok(());
    }
    let message = format!(
        "{} error{}{}: the daemon would refuse this policy and keep the one it has",
        report.errors,
        if report.errors == 1 { "" } else { "s" },
        if strict {
            " (warnings count as errors with --strict)"
        } else {
            ""
        }
    );
    Err(Failure::Invalid(message))
}

fn add(report: &mut Report, d: &Diagnostic, severity: &'static str) {
    if severity == "error" {
        report.errors += 1;
    } else {
        report.warnings += 1;
    }
    report.diagnostics.push(Finding {
        file: d.file.display().to_string(),
        line: d.line,
        column: d.column,
        severity,
        message: d.message.clone(),
    });
}

fn files_label(files: &[String]) -> String {
    match files {
        [] => "no file read".into(),
        [one] => Path::new(one).display().to_string(),
        many => format!("{} files", many.len()),
    }
}
