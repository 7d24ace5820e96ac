//! Reading policy files: TOML to raw structs with spans, then one validation pass over all
//! files together that turns raw values into the validated types or into diagnostics.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::{
    Accounts, Approval, Diagnostic, Loaded, OnEnd, OverMax, Policy, PolicySource, Privilege,
    PrivilegeKind, Rule,
};
use crate::names::{GroupName, PrivilegeName, SudoCommand, UserName};
use crate::position::line_col;

/// Largest policy file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Groups whose membership is as good as root; granting them needs an explicit opt-in.
const SENSITIVE_GROUPS: &[&str] = &["root", "sudo", "wheel", "adm", "shadow", "disk", "admin"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    privilege: BTreeMap<Spanned<String>, Spanned<RawPrivilege>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivilege {
    kind: Spanned<String>,
    #[serde(default)]
    description: String,
    run_as: Option<Spanned<String>>,
    commands: Option<Spanned<Vec<Spanned<String>>>>,
    password_each_time: Option<Spanned<bool>>,
    group: Option<Spanned<String>>,
    allow_sensitive_group: Option<bool>,
    pam_services: Option<Vec<Spanned<String>>>,
    on_end: Option<Spanned<String>>,
    session_bound: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    privileges: Spanned<Vec<Spanned<String>>>,
    max_duration: Spanned<String>,
    default_duration: Option<Spanned<String>>,
    over_max: Option<Spanned<String>>,
    reason_required: Option<bool>,
    reason_min_chars: Option<Spanned<i64>>,
    ticket_pattern: Option<Spanned<String>>,
    approval: Option<Spanned<String>>,
    max_active: Option<Spanned<i64>>,
    interactive: Option<bool>,
}

/// Collects diagnostics for one file.
struct Reporter<'a> {
    file: &'a Path,
    text: &'a str,
    out: &'a mut Vec<Diagnostic>,
}

impl Reporter<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.out.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
        });
    }
}

pub(super) fn load(src: &PolicySource, accounts: &dyn Accounts) -> Result<Loaded, Vec<Diagnostic>> {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
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
        match read_limited(&path) {
            Ok(text) => texts.push((path, text)),
            Err(message) => errors.push(whole_file(&path, &message)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    from_texts(&texts, accounts, warnings)
}

fn whole_file(path: &Path, message: &str) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        message: message.to_string(),
    }
}

fn read_limited(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "file is {} bytes; policy files may be at most 1 MiB",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()))
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
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut errors = Vec::new();
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
            if let Some(p) = privilege(&mut r, &mut w, name, body, accounts) {
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

fn at(file: &Path, text: &str, span: Range<usize>, message: String) -> Diagnostic {
    let (line, column) = line_col(text, span.start);
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column,
        message,
    }
}

type Warnings = Vec<(Range<usize>, String)>;

fn privilege(
    r: &mut Reporter<'_>,
    w: &mut Warnings,
    name: PrivilegeName,
    body: &Spanned<RawPrivilege>,
    accounts: &dyn Accounts,
) -> Option<Privilege> {
    let raw = body.get_ref();
    let before = r.out.len();
    let only_for =
        |r: &mut Reporter<'_>, present: Option<Range<usize>>, field: &str, kind: &str| {
            if let Some(span) = present {
                r.at(span, format!("{field} is only for kind = \"{kind}\""));
            }
        };
    let kind = match raw.kind.get_ref().as_str() {
        "sudo" => {
            only_for(r, raw.group.as_ref().map(Spanned::span), "group", "group");
            let run_as_text = raw.run_as.as_ref().map_or("root", |s| s.get_ref().as_str());
            let run_as_span = raw.run_as.as_ref().map_or(body.span(), Spanned::span);
            let run_as = match UserName::parse(run_as_text) {
                Ok(u) => Some(u),
                Err(e) => {
                    r.at(run_as_span.clone(), e.to_string());
                    None
                }
            };
            let run_as_uid = run_as.as_ref().and_then(|u| {
                let uid = accounts.user_uid(u.as_str());
                if uid.is_none() {
                    r.at(
                        run_as_span.clone(),
                        format!("run_as user {u} does not exist on this host"),
                    );
                }
                uid
            });
            let mut commands = Vec::new();
            match &raw.commands {
                None => r.at(body.span(), format!("privilege {name}: kind = \"sudo\" needs commands = [\"/absolute/path args\", ...]")),
                Some(list) if list.get_ref().is_empty() => r.at(list.span(), "commands must not be empty"),
                Some(list) => {
                    for c in list.get_ref() {
                        match SudoCommand::parse(c.get_ref()) {
                            Ok(cmd) if commands.contains(&cmd) => r.at(c.span(), format!("command {cmd} is listed twice")),
                            Ok(cmd) => {
                                if !accounts.path_exists(Path::new(cmd.path())) {
                                    w.push((c.span(), format!("{} does not exist on this host", cmd.path())));
                                }
                                commands.push(cmd);
                            }
                            Err(e) => r.at(c.span(), e.to_string()),
                        }
                    }
                }
            }
            match (run_as, run_as_uid) {
                (Some(run_as), Some(run_as_uid)) => Some(PrivilegeKind::Sudo {
                    run_as,
                    run_as_uid,
                    commands,
                    password_each_time: raw
                        .password_each_time
                        .as_ref()
                        .is_some_and(|b| *b.get_ref()),
                }),
                _ => None,
            }
        }
        "group" => {
            only_for(r, raw.run_as.as_ref().map(Spanned::span), "run_as", "sudo");
            only_for(
                r,
                raw.commands.as_ref().map(Spanned::span),
                "commands",
                "sudo",
            );
            only_for(
                r,
                raw.password_each_time.as_ref().map(Spanned::span),
                "password_each_time",
                "sudo",
            );
            match &raw.group {
                None => {
                    r.at(
                        body.span(),
                        format!("privilege {name}: kind = \"group\" needs group = \"name\""),
                    );
                    None
                }
                Some(g) => match GroupName::parse(g.get_ref()) {
                    Err(e) => {
                        r.at(g.span(), e.to_string());
                        None
                    }
                    Ok(group)
                        if SENSITIVE_GROUPS.contains(&group.as_str())
                            && raw.allow_sensitive_group != Some(true) =>
                    {
                        r.at(g.span(), format!("group {group} is as good as root; set allow_sensitive_group = true if that is intended"));
                        None
                    }
                    Ok(group) => match accounts.group_gid(group.as_str()) {
                        Some(gid) => Some(PrivilegeKind::Group { group, gid }),
                        None => {
                            r.at(
                                g.span(),
                                format!("group {group} does not exist on this host"),
                            );
                            None
                        }
                    },
                },
            }
        }
        "gate" => {
            for (span, field) in [
                (raw.run_as.as_ref().map(Spanned::span), "run_as"),
                (raw.commands.as_ref().map(Spanned::span), "commands"),
                (
                    raw.password_each_time.as_ref().map(Spanned::span),
                    "password_each_time",
                ),
                (raw.group.as_ref().map(Spanned::span), "group"),
            ] {
                if let Some(span) = span {
                    r.at(span, format!("{field} has no meaning for kind = \"gate\": the admin's own sudoers rule says what may be run"));
                }
            }
            if raw.pam_services.is_none() {
                r.at(
                    raw.kind.span(),
                    format!("privilege {name}: kind = \"gate\" needs pam_services = [\"sudo\", ...]: the services whose pam_jit gate it opens"),
                );
            }
            Some(PrivilegeKind::Gate)
        }
        other => {
            r.at(
                raw.kind.span(),
                format!("kind must be \"sudo\", \"group\" or \"gate\", not {other:?}"),
            );
            None
        }
    };
    let default_services: &[&str] = match kind {
        Some(PrivilegeKind::Sudo { .. }) => &["sudo", "sudo-i"],
        _ => &[],
    };
    let mut pam_services: Vec<String> = default_services.iter().map(ToString::to_string).collect();
    if let Some(list) = &raw.pam_services {
        pam_services.clear();
        for s in list {
            let ok = !s.get_ref().is_empty()
                && s.get_ref().len() <= 64
                && s.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if ok {
                pam_services.push(s.get_ref().clone());
            } else {
                r.at(
                    s.span(),
                    "a PAM service name is letters, digits, '_', '.', '-'",
                );
            }
        }
    }
    let on_end = match raw
        .on_end
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("keep", _)) => OnEnd::Keep,
        Some(("terminate", _)) => OnEnd::Terminate,
        Some((other, span)) => {
            r.at(
                span,
                format!("on_end must be \"keep\" or \"terminate\", not {other:?}"),
            );
            OnEnd::Keep
        }
    };
    if matches!(kind, Some(PrivilegeKind::Gate))
        && pam_services.is_empty()
        && raw.pam_services.is_some()
    {
        r.at(
            raw.kind.span(),
            format!("privilege {name}: pam_services must not be empty for kind = \"gate\""),
        );
    }
    if r.out.len() > before {
        return None;
    }
    Some(Privilege {
        name,
        description: raw.description.clone(),
        kind: kind?,
        pam_services,
        on_end,
        session_bound: raw.session_bound.unwrap_or(false),
    })
}

fn rule(
    r: &mut Reporter<'_>,
    w: &mut Warnings,
    raw: &RawRule,
    policy: &Policy,
    accounts: &dyn Accounts,
) -> Option<Rule> {
    let before = r.out.len();
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        r.at(
            raw.name.span(),
            "a rule name is 1 to 128 printable characters",
        );
    }
    let mut users = Vec::new();
    for u in &raw.users {
        match UserName::parse(u.get_ref()) {
            Ok(user) => {
                if accounts.user_uid(user.as_str()).is_none() {
                    w.push((u.span(), format!("user {user} does not exist on this host")));
                }
                users.push(user);
            }
            Err(e) => r.at(u.span(), e.to_string()),
        }
    }
    let mut groups = Vec::new();
    for g in &raw.groups {
        match GroupName::parse(g.get_ref()) {
            Ok(group) => {
                if accounts.group_gid(group.as_str()).is_none() {
                    w.push((
                        g.span(),
                        format!("group {group} does not exist on this host"),
                    ));
                }
                groups.push(group);
            }
            Err(e) => r.at(g.span(), e.to_string()),
        }
    }
    if raw.users.is_empty() && raw.groups.is_empty() {
        r.at(
            raw.name.span(),
            format!("rule \"{name}\" names no users and no groups"),
        );
    }
    let mut privileges = Vec::new();
    if raw.privileges.get_ref().is_empty() {
        r.at(raw.privileges.span(), "privileges must not be empty");
    }
    for p in raw.privileges.get_ref() {
        match policy.privilege(p.get_ref()) {
            Some(found) => privileges.push(found.name.clone()),
            None => {
                let known: Vec<&str> = policy.privileges.iter().map(|p| p.name.as_str()).collect();
                r.at(
                    p.span(),
                    format!(
                        "no privilege named {:?} (defined: {})",
                        p.get_ref(),
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
    }
    let duration =
        |r: &mut Reporter<'_>, s: &Spanned<String>, field: &str| match crate::duration::parse(
            s.get_ref(),
        ) {
            Ok(secs) => Some(secs),
            Err(e) => {
                r.at(s.span(), format!("{field}: {e}"));
                None
            }
        };
    let max_secs = duration(r, &raw.max_duration, "max_duration");
    let default_secs = match &raw.default_duration {
        Some(d) => {
            let secs = duration(r, d, "default_duration");
            if let (Some(def), Some(max)) = (secs, max_secs)
                && def > max
            {
                r.at(d.span(), "default_duration is longer than max_duration");
            }
            secs
        }
        None => max_secs.map(|m| m.min(15 * 60)),
    };
    let over_max = match raw
        .over_max
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("refuse", _)) => OverMax::Refuse,
        Some(("clamp", _)) => OverMax::Clamp,
        Some((other, span)) => {
            r.at(
                span,
                format!("over_max must be \"refuse\" or \"clamp\", not {other:?}"),
            );
            OverMax::Refuse
        }
    };
    let reason_required = raw.reason_required.unwrap_or(true);
    let reason_min_chars = match &raw.reason_min_chars {
        None => {
            if reason_required {
                10
            } else {
                0
            }
        }
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if v <= 1024 => v,
            _ => {
                r.at(n.span(), "reason_min_chars must be between 0 and 1024");
                0
            }
        },
    };
    let (ticket_pattern, ticket_pattern_text) = match &raw.ticket_pattern {
        None => (None, None),
        Some(t) if t.get_ref().len() > 256 => {
            r.at(t.span(), "ticket_pattern is longer than 256 characters");
            (None, None)
        }
        Some(t) => match Regex::new(&format!("^(?:{})$", t.get_ref())) {
            Ok(re) => (Some(re), Some(t.get_ref().clone())),
            Err(e) => {
                let first = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                r.at(
                    t.span(),
                    format!("ticket_pattern is not a valid regular expression: {first}"),
                );
                (None, None)
            }
        },
    };
    let approval = match raw
        .approval
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("auto", _)) => Approval::Auto,
        Some((other, span)) => {
            r.at(
                span,
                format!("approval mode {other:?} is not supported yet; use \"auto\""),
            );
            Approval::Auto
        }
    };
    let max_active = match &raw.max_active {
        None => 1,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if (1..=1000).contains(&v) => v,
            _ => {
                r.at(n.span(), "max_active must be between 1 and 1000");
                1
            }
        },
    };
    if r.out.len() > before {
        return None;
    }
    Some(Rule {
        name,
        users,
        groups,
        privileges,
        default_secs: default_secs?,
        max_secs: max_secs?,
        over_max,
        reason_required,
        reason_min_chars,
        ticket_pattern,
        ticket_pattern_text,
        approval,
        max_active,
        interactive: raw.interactive.unwrap_or(false),
    })
}
