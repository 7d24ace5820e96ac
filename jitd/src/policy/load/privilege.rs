//! One `[privilege.NAME]` table: what it gives and to which PAM services.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::diagnostics::{Reporter, Warnings};
use crate::names::{GroupName, PrivilegeName, SudoCommand, UserName};
use crate::policy::routes::SERVICE_PREFIX;
use crate::policy::{Accounts, OnEnd, Privilege, PrivilegeKind, Record};

/// Groups whose membership is as good as root, or close enough, with why; granting one needs
/// `allow_sensitive_group = true` on the privilege.
const SENSITIVE_GROUPS: &[(&str, &str)] = &[
    ("root", "root's own group"),
    ("sudo", "sudoers gives it root"),
    ("wheel", "sudoers gives it root"),
    ("admin", "sudoers gives it root"),
    ("adm", "it reads the system logs, which hold secrets"),
    ("shadow", "it reads every password hash"),
    ("disk", "it reads and writes every disk directly"),
    ("kmem", "it reads kernel memory"),
    (
        "docker",
        "the Docker socket starts root containers with the host mounted",
    ),
    ("lxd", "it drives LXD, which runs as root"),
    ("incus-admin", "it drives Incus, which runs as root"),
    (
        "libvirt",
        "it drives libvirt, which can give a VM the host's disks",
    ),
    ("staff", "it writes /usr/local, which is in root's PATH"),
];

/// What a group privilege may name only with an explicit yes: the groups above and jitd's own
/// admin group by name, and by gid every group that is another name for gid 0 or for one of
/// them on this host (a second group line with the same gid gives the same access).
pub(super) struct Sensitive {
    names: Vec<(String, String)>,
    gids: Vec<(u32, String)>,
}

impl Sensitive {
    pub(super) fn new(admin_group: &str, accounts: &dyn Accounts) -> Self {
        let mut names: Vec<(String, String)> = SENSITIVE_GROUPS
            .iter()
            .map(|(n, why)| (n.to_string(), why.to_string()))
            .collect();
        names.push((
            admin_group.to_string(),
            "it is jitd's admin_group, which may revoke every grant and reload the policy"
                .to_string(),
        ));
        let mut gids = vec![(0, "gid 0 is root's group".to_string())];
        for (name, _) in &names {
            if let Some(gid) = accounts.group_gid(name) {
                gids.push((gid, format!("it shares gid {gid} with {name}")));
            }
        }
        Self { names, gids }
    }

    /// Why `group` (with `gid`) is as good as root, or `None` when it is not.
    fn why(&self, group: &str, gid: u32) -> Option<&str> {
        let by_name = self.names.iter().find(|(n, _)| n == group).map(|(_, w)| w);
        let by_gid = || self.gids.iter().find(|(g, _)| *g == gid).map(|(_, w)| w);
        by_name.or_else(by_gid).map(String::as_str)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrivilege {
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
    record: Option<Spanned<String>>,
}

pub(super) fn privilege(
    r: &mut Reporter<'_>,
    w: &mut Warnings,
    name: PrivilegeName,
    body: &Spanned<RawPrivilege>,
    accounts: &dyn Accounts,
    sensitive: &Sensitive,
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
            let commands = commands(r, w, &name, body, accounts);
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
                    Ok(group) => match accounts.group_gid(group.as_str()) {
                        Some(gid) => match sensitive.why(group.as_str(), gid) {
                            Some(why) if raw.allow_sensitive_group != Some(true) => {
                                r.at(g.span(), format!("group {group} is as good as root ({why}); set allow_sensitive_group = true on this privilege if that is intended"));
                                None
                            }
                            _ => Some(PrivilegeKind::Group { group, gid }),
                        },
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
            let commands = match &raw.commands {
                Some(_) => commands(r, w, &name, body, accounts),
                None => Vec::new(),
            };
            if raw.pam_services.is_none() && raw.commands.is_none() {
                r.at(
                    raw.kind.span(),
                    format!("privilege {name}: kind = \"gate\" needs commands = [\"/absolute/path args\", ...] (the commands of the static sudoers rule it opens) or pam_services = [\"su\", ...] (the PAM services it opens)"),
                );
            }
            Some(PrivilegeKind::Gate { commands })
        }
        other => {
            r.at(
                raw.kind.span(),
                format!("kind must be \"sudo\", \"group\" or \"gate\", not {other:?}"),
            );
            None
        }
    };
    // A sudo privilege opens exactly its own commands (their routed service, filled in once
    // every privilege is known); naming services there would open static rules too.
    if let (Some(PrivilegeKind::Sudo { .. }), Some(list)) = (&kind, &raw.pam_services)
        && let Some(first) = list.first()
    {
        r.at(
            first.span(),
            "pam_services is only for kind = \"gate\": a kind = \"sudo\" grant opens exactly its own commands (pam_jit sees them under the service jitd-<privilege>)",
        );
    }
    let mut pam_services: Vec<String> = Vec::new();
    if let Some(list) = &raw.pam_services {
        for s in list {
            let ok = !s.get_ref().is_empty()
                && s.get_ref().len() <= 64
                && s.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if ok && s.get_ref().starts_with(SERVICE_PREFIX) {
                r.at(
                    s.span(),
                    format!("PAM services named {SERVICE_PREFIX}* are jitd's own (the services it routes privileges' commands to); list the commands with commands = [...] instead"),
                );
            } else if ok {
                pam_services.push(s.get_ref().clone());
            } else {
                r.at(
                    s.span(),
                    "a PAM service name is letters, digits, '_', '.', '-'",
                );
            }
        }
    }
    let on_end = r.one_of(
        raw.on_end.as_ref(),
        &[("keep", OnEnd::Keep), ("terminate", OnEnd::Terminate)],
        |other| format!("on_end must be \"keep\" or \"terminate\", not {other:?}"),
    );
    let record = r.one_of(
        raw.record.as_ref(),
        &[
            ("commands", Record::Commands),
            ("io", Record::Io),
            ("none", Record::None),
        ],
        |other| format!("record must be \"commands\", \"io\" or \"none\", not {other:?}"),
    );
    if matches!(kind, Some(PrivilegeKind::Gate { .. }))
        && raw.pam_services.as_ref().is_some_and(Vec::is_empty)
        && raw.commands.is_none()
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
        record,
    })
}

/// The `commands` list of a privilege: exact absolute commands, each once. Errors are reported;
/// the commands that parse are returned.
fn commands(
    r: &mut Reporter<'_>,
    w: &mut Warnings,
    name: &PrivilegeName,
    body: &Spanned<RawPrivilege>,
    accounts: &dyn Accounts,
) -> Vec<SudoCommand> {
    let mut commands = Vec::new();
    match &body.get_ref().commands {
        None => r.at(
            body.span(),
            format!(
                "privilege {name}: kind = \"sudo\" needs commands = [\"/absolute/path args\", ...]"
            ),
        ),
        Some(list) if list.get_ref().is_empty() => r.at(list.span(), "commands must not be empty"),
        Some(list) => {
            for c in list.get_ref() {
                match SudoCommand::parse(c.get_ref()) {
                    Ok(cmd) if commands.contains(&cmd) => {
                        r.at(c.span(), format!("command {cmd} is listed twice"))
                    }
                    Ok(cmd) => {
                        if let Some(why) = super::lint::command_risk(&cmd) {
                            w.push((c.span(), why));
                        }
                        if !accounts.path_exists(Path::new(cmd.path())) {
                            w.push((
                                c.span(),
                                format!("{} does not exist on this host", cmd.path()),
                            ));
                        }
                        commands.push(cmd);
                    }
                    Err(e) => r.at(c.span(), e.to_string()),
                }
            }
        }
    }
    commands
}

/// What a privilege claims for the gate to tell it apart: its commands and its PAM services,
/// with where they are written.
pub(super) enum Claim {
    /// A command, by its sudoers text.
    Command(String),
    Service(String),
}

impl RawPrivilege {
    pub(super) fn is_gate(&self) -> bool {
        self.kind.get_ref() == "gate"
    }

    pub(super) fn claims(&self) -> Vec<(Range<usize>, Claim)> {
        let mut out = Vec::new();
        for c in self.commands.iter().flat_map(|l| l.get_ref()) {
            if let Ok(cmd) = SudoCommand::parse(c.get_ref()) {
                out.push((c.span(), Claim::Command(cmd.to_sudoers())));
            }
        }
        for s in self.pam_services.iter().flatten() {
            out.push((s.span(), Claim::Service(s.get_ref().clone())));
        }
        out
    }
}
