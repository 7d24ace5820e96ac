//! A suggestion's change carried out on a policy file's text: the one key, list or block it
//! names, every other line as it was (comments included). Single-line arrays only: a list
//! written over several lines is refused rather than guessed at.

use super::suggest::{Change, Suggestion};

/// The lines of the table that starts with the line `header` matches, as a range of indices.
fn block(lines: &[String], is_header: impl Fn(usize) -> bool) -> Option<(usize, usize)> {
    let start = (0..lines.len()).find(|&i| is_header(i))?;
    let end = (start + 1..lines.len())
        .find(|&i| lines[i].trim_start().starts_with('['))
        .unwrap_or(lines.len());
    Some((start, end))
}

fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    Some(key.trim())
}

/// The rule named `name`: from its `[[rule]]` line to the next table.
fn rule_block(lines: &[String], name: &str) -> Option<(usize, usize)> {
    let mut at = 0;
    while let Some((start, end)) = block(&lines[at..], |i| lines[at + i].trim() == "[[rule]]") {
        let (start, end) = (at + start, at + end);
        let named = lines[start..end].iter().any(|l| {
            key_of(l) == Some("name")
                && l.split_once('=')
                    .is_some_and(|(_, v)| v.trim() == format!("\"{name}\""))
        });
        if named {
            return Some((start, end));
        }
        at = end;
    }
    None
}

fn set_key(
    lines: &mut Vec<String>,
    (start, end): (usize, usize),
    key: &str,
    value: &str,
) -> Result<(), String> {
    let line = format!("{key} = {value}");
    match (start + 1..end).find(|&i| key_of(&lines[i]) == Some(key)) {
        Some(i) if lines[i].contains('[') && !lines[i].trim_end().ends_with(']') => Err(format!(
            "{key} is written over several lines: edit it by hand"
        )),
        Some(i) => {
            lines[i] = line;
            Ok(())
        }
        None => {
            lines.insert(start + 1, line);
            Ok(())
        }
    }
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The file's text with the change made. `current` is what the suggestion's lists were
/// computed from (the policy as read), so the list written is that list with one item less or
/// more.
pub fn apply(
    text: &str,
    s: &Suggestion,
    current: &super::policy_view::PolicyView,
) -> Result<String, String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let missing_rule =
        |rule: &str| format!("rule {rule:?} is not in this file: --to the file that has it");
    match &s.change {
        Change::Review => {
            return Err(format!(
                "{} proposes no policy change: it is for review",
                s.id
            ));
        }
        Change::AddRule { toml } => {
            // Before the file's first rule: the first rule that matches decides, so a rule
            // added after one that already matches the same user and privilege would never
            // be reached.
            let mut block = vec![format!("# {} {}", s.id, s.kind)];
            block.extend(toml.lines().map(str::to_string));
            match lines.iter().position(|l| l.trim() == "[[rule]]") {
                Some(at) => {
                    block.push(String::new());
                    lines.splice(at..at, block);
                }
                None => {
                    if !lines.is_empty() {
                        lines.push(String::new());
                    }
                    lines.extend(block);
                }
            }
        }
        Change::SetRuleDuration { rule, set } => {
            for (key, value) in set {
                let at = rule_block(&lines, rule).ok_or_else(|| missing_rule(rule))?;
                set_key(&mut lines, at, key, &format!("\"{value}\""))?;
            }
        }
        Change::RemoveRuleUser { rule, user } => {
            let at = rule_block(&lines, rule).ok_or_else(|| missing_rule(rule))?;
            let users: Vec<String> = current
                .rule(rule)
                .map(|r| r.users.iter().filter(|u| *u != user).cloned().collect())
                .unwrap_or_default();
            set_key(&mut lines, at, "users", &list(&users))?;
        }
        Change::RemoveCommand { privilege, command }
        | Change::AddCommand { privilege, command } => {
            let header = format!("[privilege.{privilege}]");
            let at = block(&lines, |i| lines[i].trim() == header).ok_or_else(|| {
                format!("privilege {privilege:?} is not in this file: --to the file that has it")
            })?;
            let mut commands: Vec<String> = current
                .privilege(privilege)
                .map(|p| p.commands.clone())
                .unwrap_or_default();
            if matches!(s.change, Change::AddCommand { .. }) {
                commands.push(command.clone());
            } else {
                commands.retain(|c| c != command);
            }
            set_key(&mut lines, at, "commands", &list(&commands))?;
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    Ok(out)
}
