//! Everything jitctl prints: text for people (times in local time, "in 14m"), or exactly one
//! JSON document on stdout with `--json`.

use jitd::client::{ChainCheck, Explanation, GrantInfo, PrivilegeInfo, RequestOutcome};
use jitd::terms::{GrantKind, Verdict};
use serde::Serialize;

pub struct Out {
    pub json: bool,
    /// Whether a JSON document went out already: one run prints exactly one.
    printed: std::cell::Cell<bool>,
}

// The CLI shows times relative to the real clock: this is its one reading.
#[allow(clippy::disallowed_methods)]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// "in 15m", "2m ago", "now", rounded the way people say it (to the minute from two minutes
/// on, so a fresh 15m grant reads "in 15m", not "in 14m59s"): pure, for tests.
pub fn relative(now_ms: i64, then_ms: i64) -> String {
    let secs = (then_ms - now_ms) / 1000;
    let abs = secs.unsigned_abs();
    let abs = if abs >= 120 {
        (abs + 30) / 60 * 60
    } else {
        abs
    };
    let span = jitd::duration::format(abs);
    match secs {
        0 => "now".into(),
        s if s > 0 => format!("in {span}"),
        _ => format!("{span} ago"),
    }
}

/// Local time with its zone: "15:42 CET" today, "Tue 15:42 CET" within a week, else
/// "2026-11-30 15:42 CET".
pub fn local_time(now_ms: i64, then_ms: i64) -> String {
    let (Some(then), Some(now)) = (local(then_ms), local(now_ms)) else {
        return format!("{}s since the epoch", then_ms / 1000);
    };
    let hm = format!("{:02}:{:02} {}", then.tm_hour, then.tm_min, zone(&then));
    if (then.tm_year, then.tm_yday) == (now.tm_year, now.tm_yday) {
        hm
    } else if (then_ms - now_ms).abs() < 6 * 86_400_000 {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        format!(
            "{} {hm}",
            DAYS[usize::try_from(then.tm_wday).unwrap_or(0) % 7]
        )
    } else {
        format!(
            "{:04}-{:02}-{:02} {hm}",
            then.tm_year + 1900,
            then.tm_mon + 1,
            then.tm_mday
        )
    }
}

fn local(ms: i64) -> Option<libc::tm> {
    let secs: libc::time_t = ms.div_euclid(1000);
    // SAFETY: all-zero is a valid `tm`; localtime_r fills it from `secs`, both valid pointers
    // for the duration of the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: see above; localtime_r is the thread-safe variant and keeps no pointer.
    let r = unsafe { libc::localtime_r(&secs, &mut tm) };
    (!r.is_null()).then_some(tm)
}

/// The zone abbreviation localtime_r set ("CET", "UTC"), or the offset when it set none.
fn zone(tm: &libc::tm) -> String {
    if !tm.tm_zone.is_null() {
        // SAFETY: localtime_r points tm_zone at the time zone's static name, a NUL-terminated
        // string that lives as long as the process's time zone setting, which jitctl never
        // changes.
        let name = unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) };
        if let Ok(name) = name.to_str()
            && !name.is_empty()
        {
            return name.to_string();
        }
    }
    let off = tm.tm_gmtoff / 60;
    format!(
        "{}{:02}{:02}",
        if off < 0 { '-' } else { '+' },
        off.abs() / 60,
        off.abs() % 60
    )
}

/// Rows under a header, each column as wide as its widest cell (the last one is not padded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        // A short row's last cell runs on (a note under a row), widening nothing.
        let counted = if row.len() < header.len() {
            row.len().saturating_sub(1)
        } else {
            row.len()
        };
        for (w, cell) in widths.iter_mut().zip(&row[..counted]) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = w.saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// At most `max` characters, with "…" where it was cut, so nothing is shortened silently.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// The PAM services a gate grant opens, from jitd's description ("pam_jit opens sudo, su").
fn gate_services(grants: &str) -> Vec<String> {
    grants
        .strip_prefix("pam_jit opens ")
        .map(|s| s.split(", ").map(str::to_string).collect())
        .unwrap_or_default()
}

/// What a gate grant opens, in words a user knows.
fn gate_words(grants: &str) -> String {
    let services = gate_services(grants);
    if services.is_empty() {
        return grants.to_string();
    }
    format!(
        "your own rule for {} works while it lasts",
        services.join(", ")
    )
}

/// The first command of a sudo grant's description ("as root: /usr/bin/x a, /usr/bin/y").
fn first_command(grants: &str) -> Option<&str> {
    grants
        .split_once(": ")
        .map(|(_, cmds)| cmds.split(", ").next().unwrap_or(cmds))
}

impl Out {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            printed: std::cell::Cell::new(false),
        }
    }

    /// `value` as the run's JSON document (see `json.rs` for the shape).
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) {
        self.emit(&crate::json::document(value));
    }

    /// One JSON document on stdout (the same envelope as [`Out::json`]).
    pub fn json_value<T: Serialize + ?Sized>(&self, value: &T) {
        self.json(value);
    }

    /// A list under `name`, wrapped (see `json.rs`).
    pub fn json_list<T: Serialize>(&self, name: &str, items: &[T]) {
        self.emit(&crate::json::list(name, items));
    }

    fn emit(&self, doc: &serde_json::Value) {
        if self.printed.replace(true) {
            return;
        }
        match serde_json::to_string_pretty(doc) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("jitctl: cannot encode JSON: {e}"),
        }
    }

    /// The failure, on stderr for people and, with `--json`, as the run's one document unless
    /// the command already printed one that says it failed (`policy check`).
    pub fn failure(&self, code: &str, exit: u8, message: &str) {
        if self.json {
            self.emit(&crate::json::error(code, exit, message));
        }
        eprintln!("jitctl: {message}");
    }

    pub fn message(&self, text: &str) {
        if self.json {
            self.json(&serde_json::json!({ "message": text }));
        } else {
            println!("{text}");
        }
    }

    pub fn outcome(&self, o: &RequestOutcome, now: i64) {
        if self.json {
            return self.json(o);
        }
        let g = &o.grant;
        let gives = match g.kind {
            GrantKind::Gate => gate_words(&g.grants),
            _ => g.grants.clone(),
        };
        println!(
            "Granted {} ({}) until {} ({}): {gives}",
            g.privilege,
            g.id,
            local_time(now, g.expires_ms),
            relative(now, g.expires_ms),
        );
        if o.clamped {
            println!("The duration was cut to the rule's maximum.");
        }
        match (g.kind, first_command(&g.grants)) {
            (GrantKind::Sudo, Some(cmd)) => println!("Use it: sudo {cmd}"),
            (GrantKind::Group, _) => {
                let group = g.grants.rsplit(' ').next().unwrap_or("");
                println!("Use it: open a new login shell, or run `newgrp {group}`");
            }
            (GrantKind::Gate, _) => {
                println!("Use it: run what your sudo rule allows, e.g. `sudo -l` to see it");
                for service in gate_services(&g.grants) {
                    if !crate::doctor::pam_consults(&service) {
                        eprintln!(
                            "jitctl: warning: /etc/pam.d/{service} does not load pam_jit, so \
                             this grant changes nothing there; tell an admin (`jitctl doctor`)"
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// `jitctl audit verify`: the summary line, or the whole check as JSON.
    pub fn chain_check(&self, c: &ChainCheck) {
        if self.json {
            return self.json(c);
        }
        println!("{}", c.summary);
    }

    pub fn status(&self, grants: &[GrantInfo], now: i64) {
        if self.json {
            return self.json_list("grants", grants);
        }
        if grants.is_empty() {
            println!("No active grants.");
            return;
        }
        let rows: Vec<Vec<String>> = grants
            .iter()
            .map(|g| {
                vec![
                    g.id.clone(),
                    g.privilege.clone(),
                    local_time(now, g.expires_ms),
                    relative(now, g.expires_ms),
                    g.grants.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            table(&["ID", "PRIVILEGE", "UNTIL", "LEFT", "GIVES"], &rows)
        );
    }

    pub fn list(&self, grants: &[GrantInfo], now: i64) {
        if self.json {
            return self.json_list("grants", grants);
        }
        if grants.is_empty() {
            println!("No grants.");
            return;
        }
        let mut rows = Vec::new();
        for g in grants {
            let end_ms = if g.ended_ms > 0 {
                g.ended_ms
            } else {
                g.expires_ms
            };
            let ends = format!("{} ({})", local_time(now, end_ms), relative(now, end_ms));
            let mut why = cut(&g.reason, 40);
            if !g.ticket.is_empty() {
                why = format!("[{}] {why}", cut(&g.ticket, 24));
            }
            rows.push(vec![
                g.id.clone(),
                g.user.clone(),
                g.privilege.clone(),
                g.state.to_string(),
                ends,
                g.rule.clone(),
                why,
            ]);
            // How it ended, with what its end found (setgid files stripped, processes recall
            // could not see or end): worth a line of its own.
            if g.ended_ms > 0 && !g.end_reason.is_empty() {
                rows.push(vec![String::new(), format!("ended: {}", g.end_reason)]);
            }
        }
        print!(
            "{}",
            table(
                &["ID", "USER", "PRIVILEGE", "STATE", "ENDS", "RULE", "REASON"],
                &rows
            )
        );
    }

    /// `jitctl privileges`: what the caller may request, on what terms, and what they hold.
    pub fn privileges(&self, list: &[PrivilegeInfo], now: i64) {
        if self.json {
            return self.json_list("privileges", list);
        }
        if list.is_empty() {
            println!("No privilege you may request on this host.");
            return;
        }
        for p in list {
            let held = if p.held_grant.is_empty() {
                String::new()
            } else {
                format!(
                    "  [held: {} until {} ({})]",
                    p.held_grant,
                    local_time(now, p.held_until_ms),
                    relative(now, p.held_until_ms)
                )
            };
            println!("{} ({}){held}", p.name, p.kind);
            if !p.description.is_empty() {
                println!("    {}", p.description);
            }
            let gives = match p.kind {
                GrantKind::Gate => gate_words(&p.grants),
                _ => p.grants.clone(),
            };
            println!("    gives: {gives}");
            let mut needs = vec![format!(
                "default {}, at most {}",
                jitd::duration::format(p.default_secs),
                jitd::duration::format(p.max_secs)
            )];
            if p.reason_required {
                needs.push(format!(
                    "a reason of at least {} characters",
                    p.reason_min_chars
                ));
            }
            if !p.ticket_pattern.is_empty() {
                needs.push(format!("a ticket matching {}", p.ticket_pattern));
            }
            if let Some(mode) = p.approval.0 {
                needs.push(format!("approval: {mode}"));
            }
            if p.interactive {
                needs.push("may be asked for at the sudo prompt".into());
            }
            println!("    rule \"{}\": {}", p.rule, needs.join("; "));
        }
    }

    /// A revoke or drop; `already` when the grant had ended before it was asked (the command
    /// is idempotent: ending an ended grant is not an error, and the answer says so).
    pub fn ended(&self, g: &GrantInfo, verb: &str, already: bool, now: i64) {
        if self.json {
            let mut doc = serde_json::to_value(g).unwrap_or_default();
            if let Some(map) = doc.as_object_mut() {
                map.insert("already_ended".into(), already.into());
            }
            return self.json(&doc);
        }
        if already {
            println!(
                "{} ({}) had already ended {}: {}; nothing to do",
                g.id,
                g.privilege,
                relative(now, g.ended_ms),
                g.end_reason
            );
        } else {
            println!("{verb} {} ({}): {}", g.id, g.privilege, g.end_reason);
        }
    }

    pub fn explanation(&self, e: &Explanation) {
        if self.json {
            let mut doc = serde_json::to_value(e).unwrap_or_default();
            // A "no" has no terms: null, not zeros a script could take for a rule's limits.
            if e.decision != Verdict::Allow
                && let Some(map) = doc.as_object_mut()
            {
                for key in [
                    "rule",
                    "default_secs",
                    "max_secs",
                    "reason_required",
                    "reason_min_chars",
                    "ticket_pattern",
                    "approval",
                ] {
                    map.insert(key.into(), serde_json::Value::Null);
                }
            }
            return self.json(&doc);
        }
        let verdict = if e.decision == Verdict::Allow {
            "you may request it"
        } else {
            "you may not request it"
        };
        println!("{}: {verdict}", e.privilege);
        for r in &e.reasons {
            println!("  - {r}");
        }
        if e.decision == Verdict::Allow {
            println!(
                "Request it: jitctl elevate {} --for {} --reason \"...\"{}",
                e.privilege,
                jitd::duration::format(e.default_secs),
                if e.ticket_pattern.is_empty() {
                    ""
                } else {
                    " --ticket ID"
                }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(0, 14 * 60_000), "in 14m");
        assert_eq!(relative(0, 65 * 60_000), "in 1h5m");
        assert_eq!(relative(120_000, 0), "2m ago");
        assert_eq!(relative(5, 500), "now");
    }

    #[test]
    fn tables_align_and_notes_run_on() {
        let rows = vec![
            vec!["g1".to_string(), "whoami".to_string(), "x".to_string()],
            vec!["g22".to_string(), "ended: a long note here".to_string()],
        ];
        assert_eq!(
            table(&["ID", "PRIVILEGE", "REASON"], &rows),
            "ID   PRIVILEGE  REASON\ng1   whoami     x\ng22  ended: a long note here\n"
        );
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(relative(0, 899_000), "in 15m");
        assert_eq!(relative(0, 95_000), "in 1m35s");
    }

    #[test]
    fn the_first_command_is_offered_as_the_next_step() {
        assert_eq!(
            first_command("as root: /usr/bin/systemctl restart nginx, /usr/bin/id"),
            Some("/usr/bin/systemctl restart nginx")
        );
        assert_eq!(first_command("member of group docker"), None);
    }
}
