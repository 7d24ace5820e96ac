//! Everything jitctl prints: text for people (times in local time, "in 14m"), or exactly one
//! JSON document on stdout with `--json`.

use jitd::client::{ChainCheck, Explanation, GrantInfo, PrivilegeInfo, RequestOutcome};
use jitd::policy::{Diagnostic, Loaded};
use jitd::terms::{GrantKind, Verdict};
use serde::Serialize;

pub struct Out {
    pub json: bool,
}

// The CLI shows times relative to the real clock: this is its one reading.
#[allow(clippy::disallowed_methods)]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// "in 14m", "2m ago", "now": pure, for tests.
pub fn relative(now_ms: i64, then_ms: i64) -> String {
    let secs = (then_ms - now_ms) / 1000;
    let span = jitd::duration::format(secs.unsigned_abs());
    match secs {
        0 => "now".into(),
        s if s > 0 => format!("in {span}"),
        _ => format!("{span} ago"),
    }
}

/// Local time: "15:42" today, "Tue 15:42" within a week, else "2026-11-30 15:42".
pub fn local_time(now_ms: i64, then_ms: i64) -> String {
    let (Some(then), Some(now)) = (local(then_ms), local(now_ms)) else {
        return format!("{}s since the epoch", then_ms / 1000);
    };
    let hm = format!("{:02}:{:02}", then.tm_hour, then.tm_min);
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

/// The first command of a sudo grant's description ("as root: /usr/bin/x a, /usr/bin/y").
fn first_command(grants: &str) -> Option<&str> {
    grants
        .split_once(": ")
        .map(|(_, cmds)| cmds.split(", ").next().unwrap_or(cmds))
}

#[derive(Serialize)]
pub struct CheckReport {
    ok: bool,
    files: Vec<String>,
    privileges: usize,
    rules: usize,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl CheckReport {
    pub fn ok(loaded: &Loaded) -> Self {
        Self {
            ok: true,
            files: loaded
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect(),
            privileges: loaded.policy.privileges().count(),
            rules: loaded.policy.rules().len(),
            errors: Vec::new(),
            warnings: loaded.warnings.iter().map(ToString::to_string).collect(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// Adds a finding about a file the policy depends on: an error fails the report.
    pub fn add(&mut self, d: &Diagnostic, error: bool) {
        if error {
            self.ok = false;
            self.errors.push(d.to_string());
        } else {
            self.warnings.push(d.to_string());
        }
    }

    pub fn failed(errors: &[Diagnostic]) -> Self {
        Self {
            ok: false,
            files: Vec::new(),
            privileges: 0,
            rules: 0,
            errors: errors.iter().map(ToString::to_string).collect(),
            warnings: Vec::new(),
        }
    }
}

impl Out {
    /// One JSON document on stdout.
    pub fn json_value<T: Serialize + ?Sized>(&self, value: &T) {
        self.json(value);
    }

    fn json<T: Serialize + ?Sized>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("jitctl: cannot encode JSON: {e}"),
        }
    }

    pub fn failure(&self, name: &str, message: &str) {
        if self.json {
            self.json(&serde_json::json!({ "error": name, "message": message }));
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
        println!(
            "Granted {} ({}) until {} ({}): {}",
            g.privilege,
            g.id,
            local_time(now, g.expires_ms),
            relative(now, g.expires_ms),
            g.grants
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
            return self.json(grants);
        }
        if grants.is_empty() {
            println!("No active grants.");
            return;
        }
        for g in grants {
            println!(
                "{}  {}  until {} ({})  {}",
                g.id,
                g.privilege,
                local_time(now, g.expires_ms),
                relative(now, g.expires_ms),
                g.grants
            );
        }
    }

    pub fn list(&self, grants: &[GrantInfo], now: i64) {
        if self.json {
            return self.json(grants);
        }
        if grants.is_empty() {
            println!("No grants.");
            return;
        }
        println!(
            "{:<13}  {:<12}  {:<16}  {:<8}  {:<24}  REASON",
            "ID", "USER", "PRIVILEGE", "STATE", "ENDS"
        );
        for g in grants {
            let end_ms = if g.ended_ms > 0 {
                g.ended_ms
            } else {
                g.expires_ms
            };
            let ends = format!("{} ({})", local_time(now, end_ms), relative(now, end_ms));
            let reason: String = g.reason.chars().take(40).collect();
            println!(
                "{:<13}  {:<12}  {:<16}  {:<8}  {:<24}  {}",
                g.id, g.user, g.privilege, g.state, ends, reason
            );
            // How it ended, with what its end found (setgid files stripped, processes recall
            // could not see or end): worth a line of its own.
            if g.ended_ms > 0 && !g.end_reason.is_empty() {
                println!("{:<13}  ended: {}", "", g.end_reason);
            }
        }
    }

    /// `jitctl privileges`: what the caller may request, on what terms, and what they hold.
    pub fn privileges(&self, list: &[PrivilegeInfo], now: i64) {
        if self.json {
            return self.json(list);
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
            println!("    gives: {}", p.grants);
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

    pub fn ended(&self, g: &GrantInfo, verb: &str) {
        if self.json {
            return self.json(g);
        }
        println!("{verb} {} ({}): {}", g.id, g.privilege, g.end_reason);
    }

    pub fn explanation(&self, e: &Explanation) {
        if self.json {
            return self.json(e);
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

    pub fn policy_check(&self, reports: &[CheckReport]) {
        if self.json {
            return self.json(reports);
        }
        for r in reports {
            for e in &r.errors {
                println!("{}", insert_severity(e, "error"));
            }
            for w in &r.warnings {
                println!("{}", insert_severity(w, "warning"));
            }
            if r.ok {
                println!(
                    "policy OK: {} privileges, {} rules ({} warnings)",
                    r.privileges,
                    r.rules,
                    r.warnings.len()
                );
            }
        }
    }
}

/// "path:1:2: message" → "path:1:2: warning: message".
fn insert_severity(diag: &str, severity: &str) -> String {
    // Positions are "path:line:col", with no space; the message follows the first ": ".
    match diag.match_indices(": ").next() {
        Some((i, _)) => format!("{}: {severity}: {}", &diag[..i], &diag[i + 2..]),
        None => format!("{severity}: {diag}"),
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
    fn the_first_command_is_offered_as_the_next_step() {
        assert_eq!(
            first_command("as root: /usr/bin/systemctl restart nginx, /usr/bin/id"),
            Some("/usr/bin/systemctl restart nginx")
        );
        assert_eq!(first_command("member of group docker"), None);
    }

    #[test]
    fn diagnostics_get_their_severity_after_the_position() {
        assert_eq!(
            insert_severity("/p.toml:3:1: bad", "warning"),
            "/p.toml:3:1: warning: bad"
        );
    }
}
