//! One sudoers file per privilege, listing every live grant's user on shared lines.
//!
//! sudo parses every file of `/etc/sudoers.d` on every run, whoever runs it: one drop-in per
//! grant made each sudo on a host pay about 20 µs per live grant (200 ms at 10,000 grants, for
//! users who hold nothing). A rule line costs about 2 µs and a `#uid` in a user list about
//! 0.3 µs, so the grants of one privilege are rendered as few lines as possible:
//! `#1001, #1002 ALL=(#0) NOTAFTER=… NOPASSWD: <commands>`.
//!
//! Each grant's own drop-in text (what [`super::render`] makes and the database keeps) stays the
//! unit of record; this module only projects a set of them into one file, as a pure function.
//! Per-user settings (`Defaults:#uid …`: the ledger's log, a password each time) are the same
//! for every grant of a user, so they go once per user into one file for the host
//! ([`users_file`], [`defaults`]) rather than into each privilege's file.
//!
//! `NOTAFTER` is per line, so grants of one privilege share a line only when they share a
//! deadline. While a privilege has at most [`MAX_DEADLINES`] different deadlines live, every
//! line carries its grants' exact deadline. Beyond that, deadlines are rounded *up* to the
//! minute, then 5, 15 and 60 minutes, until they fit: sudo's own clock then ends such a grant up
//! to that much late, while the daemon's clock (and the sweep, when the daemon is down) still
//! removes each user from the line at their own deadline, and pam_jit's gate refuses at it.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};

use crate::clock::{parse_sudoers_stamp, sudoers_stamp};
use crate::names::PrivilegeName;

/// Most different `NOTAFTER` values per privilege and command set before they are rounded.
pub const MAX_DEADLINES: usize = 16;
/// The roundings tried, in seconds, finest first.
const GRAINS: [i64; 5] = [1, 60, 300, 900, 3600];

/// The first line of a privilege's file.
pub fn marker(privilege: &PrivilegeName) -> String {
    format!("# jitd grants of privilege {privilege}: managed by jitd, do not edit")
}

/// The file's name in the drop-in directory (no dot: sudo skips names with one).
pub fn file_name(privilege: &PrivilegeName) -> String {
    format!("jitd_grants_{privilege}")
}

/// The host's file of per-user settings of users with live sudo grants.
pub const USERS_FILE: &str = "jitd_users";
/// Its first line.
pub const USERS_MARKER: &str =
    "# jitd per-user settings of live grants: managed by jitd, do not edit";

/// The per-user settings lines (`Defaults:#uid …`) of a grant's drop-in text.
pub fn defaults(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("Defaults:#"))
        .collect()
}

/// The users file for `lines` (each once, in order).
pub fn users_file<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = format!(
        "{USERS_MARKER}\n# what sudo does for each user holding a live grant, or whose last ended within \
         minutes (no rule: settings only)\n"
    );
    out.push_str(&grouped_defaults(lines, "JITD_USERS"));
    out
}

/// Per-user settings lines grouped by what they set: `Defaults:#1001 S` and `Defaults:#1002 S`
/// become `User_Alias PREFIX_1 = #1001, #1002` and `Defaults:PREFIX_1 S`. sudo pays about
/// 2.7 µs for each `Defaults` line on every run, whoever runs it, and about a tenth of that for
/// a uid in an alias: 1,000 users' logging lines cost every sudo 2.7 ms, their alias 0.4 ms.
/// `prefix` keeps the alias names of different files apart (sudo refuses a name defined twice).
pub fn grouped_defaults<'a>(lines: impl IntoIterator<Item = &'a str>, prefix: &str) -> String {
    let mut by_settings: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut out = String::new();
    for line in lines {
        let per_uid = line
            .strip_prefix("Defaults:")
            .and_then(|rest| rest.split_once(' '))
            .filter(|(user, _)| {
                user.strip_prefix('#')
                    .is_some_and(|uid| uid.parse::<u32>().is_ok())
            });
        match per_uid {
            Some((user, settings)) => by_settings.entry(settings).or_default().push(user),
            // Not a line of the per-uid form jitd writes: kept as it is.
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (n, (settings, users)) in by_settings.iter().enumerate() {
        let alias = format!("{prefix}_{}", n + 1);
        out.push_str(&format!(
            "User_Alias {alias} = {}\nDefaults:{alias} {settings}\n",
            users.join(", ")
        ));
    }
    out
}

/// One grant's rule as [`super::render`] wrote it, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    uid: u32,
    /// What follows `ALL=`, with the deadline cut out: `(#0)\u{0} NOPASSWD: …` (NUL where the
    /// stamp was, so the template of different deadlines is equal).
    template: String,
    /// The `NOTAFTER` stamp in seconds, when the rule has one.
    not_after: Option<i64>,
}

/// Takes a grant's drop-in text apart: `None` when it holds a line jitd does not write.
fn parse(text: &str) -> Option<Rule> {
    let mut rule = None;
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# ") {
            continue;
        }
        if line.starts_with("Defaults:#") {
            continue;
        }
        let (uid, specs) = line.strip_prefix('#')?.split_once(" ALL=")?;
        let uid: u32 = uid.parse().ok()?;
        if rule.is_some() {
            return None;
        }
        let (template, not_after) = cut_stamps(specs)?;
        rule = Some((uid, template, not_after));
    }
    let (uid, template, not_after) = rule?;
    Some(Rule {
        uid,
        template,
        not_after,
    })
}

/// Cuts every ` NOTAFTER=<stamp>` out of `specs`; all of them must be the same stamp.
fn cut_stamps(specs: &str) -> Option<(String, Option<i64>)> {
    const KEY: &str = " NOTAFTER=";
    let mut out = String::with_capacity(specs.len());
    let mut rest = specs;
    let mut stamp: Option<i64> = None;
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at]);
        out.push('\0');
        let after = &rest[at + KEY.len()..];
        let end = after.find(' ').unwrap_or(after.len());
        let secs = parse_sudoers_stamp(&after[..end])?;
        if *stamp.get_or_insert(secs) != secs {
            return None;
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Some((out, stamp))
}

/// The smallest grain (seconds) that leaves at most [`MAX_DEADLINES`] rounded deadlines.
fn grain_for(deadlines: &BTreeSet<i64>) -> i64 {
    GRAINS
        .iter()
        .copied()
        .find(|g| {
            deadlines
                .iter()
                .map(|d| round_up(*d, *g))
                .collect::<BTreeSet<_>>()
                .len()
                <= MAX_DEADLINES
        })
        .unwrap_or(GRAINS[GRAINS.len() - 1])
}

fn round_up(secs: i64, grain: i64) -> i64 {
    secs.div_euclid(grain)
        .saturating_add(i64::from(secs.rem_euclid(grain) != 0))
        * grain
}

/// The file for `privilege` holding `texts` (grants' drop-in texts); `Err` names a text jitd
/// did not write. An empty set renders the marker alone (the caller removes the file instead).
pub fn render<'a>(
    privilege: &PrivilegeName,
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<String, String> {
    // template → deadline → uids
    let mut groups: BTreeMap<String, BTreeMap<Option<i64>, BTreeSet<u32>>> = BTreeMap::new();
    let mut count = 0usize;
    for text in texts {
        let rule = parse(text).ok_or_else(|| {
            format!(
                "a grant's sudoers text is not jitd's: {:?}",
                text.lines().next()
            )
        })?;
        groups
            .entry(rule.template)
            .or_default()
            .entry(rule.not_after)
            .or_default()
            .insert(rule.uid);
        count += 1;
    }
    let mut out = format!(
        "{}\n# {count} live grant(s); each grant's own rule is in jitd's database \
         (`jitctl show <grant>`)\n",
        marker(privilege)
    );
    for (template, by_deadline) in groups {
        let exact: BTreeSet<i64> = by_deadline.keys().flatten().copied().collect();
        let grain = grain_for(&exact);
        let mut lines: BTreeMap<Option<i64>, BTreeSet<u32>> = BTreeMap::new();
        for (deadline, uids) in by_deadline {
            lines
                .entry(deadline.map(|d| round_up(d, grain)))
                .or_default()
                .extend(uids);
        }
        for (deadline, uids) in lines {
            let users: Vec<String> = uids.iter().map(|u| format!("#{u}")).collect();
            let specs = match deadline {
                Some(d) => template.replace('\0', &format!(" NOTAFTER={}", sudoers_stamp(d))),
                None => template.replace('\0', ""),
            };
            out.push_str(&format!("{} ALL={specs}\n", users.join(", ")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PrivilegeName {
        PrivilegeName::parse("nginx-admin").unwrap()
    }

    fn grant(uid: u32, stamp: &str, each_time: bool) -> String {
        let tag = if each_time { "PASSWD:" } else { "NOPASSWD:" };
        let mut t = format!(
            "# jitd grant gx: managed by jitd, do not edit\n# privilege nginx-admin for uid {uid} until {stamp} (UTC)\n"
        );
        if each_time {
            t.push_str(&format!("Defaults:#{uid} timestamp_timeout=0\n"));
        }
        t.push_str(&format!(
            "#{uid} ALL=(#0) NOTAFTER={stamp} {tag} /usr/bin/systemctl restart nginx, (#0) NOTAFTER={stamp} {tag} /usr/bin/systemctl reload nginx\n"
        ));
        t.push_str(&format!(
            "Defaults:#{uid} log_format=json, logfile=/var/lib/jitd/ledger/{uid}.json, log_exit_status\n"
        ));
        t
    }

    #[test]
    fn grants_sharing_a_deadline_share_one_line_and_per_user_settings_stay_out() {
        let a = grant(1001, "20261129120000Z", false);
        let b = grant(1002, "20261129120000Z", false);
        let c = grant(1001, "20261129130000Z", false);
        let text = render(&p(), [a.as_str(), b.as_str(), c.as_str()]).unwrap();
        let rules: Vec<&str> = text.lines().filter(|l| l.contains(" ALL=")).collect();
        assert_eq!(
            rules,
            [
                "#1001, #1002 ALL=(#0) NOTAFTER=20261129120000Z NOPASSWD: /usr/bin/systemctl restart nginx, (#0) NOTAFTER=20261129120000Z NOPASSWD: /usr/bin/systemctl reload nginx",
                "#1001 ALL=(#0) NOTAFTER=20261129130000Z NOPASSWD: /usr/bin/systemctl restart nginx, (#0) NOTAFTER=20261129130000Z NOPASSWD: /usr/bin/systemctl reload nginx",
            ]
        );
        assert!(!text.contains("Defaults"), "{text}");
        assert_eq!(
            defaults(&a),
            [
                "Defaults:#1001 log_format=json, logfile=/var/lib/jitd/ledger/1001.json, log_exit_status"
            ]
        );
        assert!(text.starts_with(&marker(&p())));
    }

    #[test]
    fn few_deadlines_stay_exact_and_many_are_rounded_up_never_down() {
        let stamps: Vec<String> = (0..MAX_DEADLINES)
            .map(|i| sudoers_stamp(1_800_000_007 + i as i64 * 17))
            .collect();
        let texts: Vec<String> = stamps
            .iter()
            .enumerate()
            .map(|(i, s)| grant(2000 + i as u32, s, false))
            .collect();
        let text = render(&p(), texts.iter().map(String::as_str)).unwrap();
        for s in &stamps {
            assert!(text.contains(&format!("NOTAFTER={s} ")), "{s} exact");
        }
        // One more deadline: rounded up to the minute, each user's line never earlier.
        let extra = grant(3000, &sudoers_stamp(1_800_000_007 + 999), false);
        let more: Vec<&str> = texts
            .iter()
            .map(String::as_str)
            .chain([extra.as_str()])
            .collect();
        let text = render(&p(), more.iter().copied()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(" ALL=")).collect();
        assert!(lines.len() <= MAX_DEADLINES);
        for (t, uid) in more.iter().zip((2000..).take(MAX_DEADLINES).chain([3000])) {
            let own = cut_stamps(t.lines().find(|l| l.contains(" ALL=")).unwrap())
                .unwrap()
                .1
                .unwrap();
            let line = lines
                .iter()
                .find(|l| {
                    l.split(" ALL=")
                        .next()
                        .unwrap()
                        .split(", ")
                        .any(|u| u == format!("#{uid}"))
                })
                .unwrap();
            let on_line = cut_stamps(line).unwrap().1.unwrap();
            assert!(
                on_line >= own && on_line - own < 60,
                "uid {uid}: {own} → {on_line}"
            );
            assert_eq!(on_line % 60, 0);
        }
    }

    #[test]
    fn different_commands_or_password_tags_never_share_a_line() {
        let a = grant(1001, "20261129120000Z", false);
        let b = grant(1002, "20261129120000Z", true);
        let text = render(&p(), [a.as_str(), b.as_str()]).unwrap();
        assert!(text.contains("\n#1001 ALL=(#0) NOTAFTER=20261129120000Z NOPASSWD: "));
        assert!(text.contains("\n#1002 ALL=(#0) NOTAFTER=20261129120000Z PASSWD: "));
        assert_eq!(defaults(&b)[0], "Defaults:#1002 timestamp_timeout=0");
    }

    #[test]
    fn rules_without_notafter_group_by_their_commands() {
        let a = "# jitd grant g1\n#1001 ALL=(#0) NOPASSWD: /usr/bin/id\n";
        let b = "# jitd grant g2\n#1002 ALL=(#0) NOPASSWD: /usr/bin/id\n";
        let text = render(&p(), [a, b]).unwrap();
        assert!(text.contains("\n#1001, #1002 ALL=(#0) NOPASSWD: /usr/bin/id\n"));
    }

    #[test]
    fn text_jitd_did_not_write_is_refused() {
        for bad in [
            "ALL ALL=(ALL) ALL\n",
            "#1001 ALL=(#0) NOPASSWD: /bin/a\n#1002 ALL=(#0) NOPASSWD: /bin/b\n",
            "#1001 ALL=(#0) NOTAFTER=2026 NOPASSWD: /bin/a\n",
            "#1001 ALL=(#0) NOTAFTER=20261129120000Z NOPASSWD: /bin/a, (#0) NOTAFTER=20261129120001Z NOPASSWD: /bin/b\n",
            "# only comments\n",
            "Defaults env_reset\n#1001 ALL=(#0) NOPASSWD: /bin/a\n",
        ] {
            assert!(render(&p(), [bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rounding_up_is_exact_on_the_grain() {
        assert_eq!(round_up(120, 60), 120);
        assert_eq!(round_up(121, 60), 180);
        assert_eq!(round_up(-1, 60), 0);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the real visudo reads what sudo would
    fn users_with_the_same_settings_share_one_alias_and_one_defaults_line() {
        let log = "log_format=json, logfile=/var/lib/jitd/ledger/sudo.json, log_exit_status";
        let lines: Vec<String> = (1001..=1003)
            .map(|u| format!("Defaults:#{u} {log}"))
            .chain(["Defaults:#1002 timestamp_timeout=0".to_string()])
            .collect();
        let mut sorted = lines.clone();
        sorted.sort();
        let text = users_file(sorted.iter().map(String::as_str));
        assert!(
            text.contains(&format!(
                "User_Alias JITD_USERS_1 = #1001, #1002, #1003\nDefaults:JITD_USERS_1 {log}\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "User_Alias JITD_USERS_2 = #1002\nDefaults:JITD_USERS_2 timestamp_timeout=0\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("Defaults:").count(), 2, "{text}");
        // What sudo would read: visudo takes it.
        let dir = std::env::temp_dir().join(format!("jitd-users-{}", std::process::id()));
        std::fs::write(&dir, &text).unwrap();
        let o = std::process::Command::new("/usr/sbin/visudo")
            .arg("-cf")
            .arg(&dir)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&dir);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}
