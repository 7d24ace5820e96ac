//! A suggestion's change as policy text, and the lists of suggestions as people and
//! `--format toml` read them.

use super::{Change, Suggestion};
use crate::report::policy_view::PolicyView;

/// Whether a policy command covers a run argv: the same text, or a program given without
/// arguments (sudo's "any arguments").
pub fn covers(command: &str, argv: &str) -> bool {
    command == argv || (!command.contains(' ') && argv.split(' ').next() == Some(command))
}

/// The change as policy text.
pub fn render_change(change: &Change, policy: &PolicyView) -> String {
    match change {
        Change::SetRuleDuration { rule, set } => {
            let mut text = format!("# in [[rule]] name = \"{rule}\"\n");
            for (key, value) in set {
                text.push_str(&format!("{key} = \"{value}\"\n"));
            }
            text
        }
        Change::RemoveRuleUser { rule, user } => {
            let users: Vec<String> = policy
                .rule(rule)
                .map(|r| {
                    r.users
                        .iter()
                        .filter(|u| *u != user)
                        .map(|u| format!("\"{u}\""))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "# in [[rule]] name = \"{rule}\"\nusers = [{}]\n",
                users.join(", ")
            )
        }
        Change::RemoveCommand { privilege, command } => {
            let commands: Vec<String> = policy
                .privilege(privilege)
                .map(|p| {
                    p.commands
                        .iter()
                        .filter(|c| *c != command)
                        .map(|c| format!("{c:?}"))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "[privilege.{privilege}]\ncommands = [{}]\n",
                commands.join(", ")
            )
        }
        Change::AddCommand { privilege, command } => {
            let mut commands: Vec<String> = policy
                .privilege(privilege)
                .map(|p| p.commands.iter().map(|c| format!("{c:?}")).collect())
                .unwrap_or_default();
            commands.push(format!("{command:?}"));
            format!(
                "[privilege.{privilege}]\ncommands = [{}]\n",
                commands.join(", ")
            )
        }
        Change::AddRule { toml } => toml.clone(),
        Change::Review => "# no policy change: review with the people involved\n".into(),
    }
}

/// Text for people.
pub fn to_text(list: &[Suggestion]) -> String {
    let mut out = String::new();
    if list.is_empty() {
        out.push_str("No suggestions.\n");
    }
    for s in list {
        out.push_str(&format!(
            "{} {} ({})\n  {}\n  evidence: {} grants/events, {} .. {}; {}",
            s.id,
            s.kind,
            s.subject,
            s.summary,
            s.evidence.count,
            s.evidence.first_seen,
            s.evidence.last_seen,
            s.evidence.detail
        ));
        if !s.evidence.samples.is_empty() {
            out.push_str(&format!("; e.g. {}", s.evidence.samples.join(", ")));
        }
        out.push_str(&format!("\n  window: {}\n", s.window));
        for line in s.toml.lines() {
            out.push_str(&format!("    {line}\n"));
        }
        out.push('\n');
    }
    out
}

/// The policy changes alone, as one TOML text with each suggestion's id above its change.
pub fn to_toml(list: &[Suggestion]) -> String {
    let mut out = String::new();
    for s in list {
        out.push_str(&format!(
            "# {} {}: {}\n{}\n",
            s.id, s.kind, s.summary, s.toml
        ));
    }
    out
}
