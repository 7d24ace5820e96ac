//! sudo's syslog lines read from the journal: the ledger's source for sudo-rs (which has no
//! JSON event log, only the classic line `user : TTY=… ; PWD=… ; USER=… ; COMMAND=…`) and for
//! classic sudo when `ledger_source = "journal"`. Such a line has no exit status (the ledger
//! says "exit unknown"), no uuid and the command as one string: the words are split on spaces,
//! so an argument that held a space reads as two. Lines sudo split because they were too long
//! (`(command continued)`) are not joined. Classic sudo does not send a `-n` refusal ("a
//! password is required") to syslog at all (seen on 1.9.13); interactive refusals carry their
//! reason (`command not allowed`).
//!
//! Anyone can log with the tag `sudo` (`logger -t sudo`), so a line counts only when the
//! kernel's credentials of its sender (journald's `_UID`, never missing) are root's or those of
//! the user the line names (classic sudo logs with the user's real uid), and journald's `_EXE`,
//! when it has one, is the sudo binary. `_EXE` is read from /proc after the fact and is missing
//! when sudo had already exited, so it cannot be required: a user can add lines about
//! themselves (noise in their own record, never a line hidden or one about someone else).
//! Lines that fail are ignored and reported.
//!
//! `journalctl -o json` runs every few looks from the cursor after the last line stored; the
//! cursor is stored with the records (schema 9), so a restart neither loses nor repeats a
//! line. Without journald (its socket missing) or without journalctl, the gap is reported once
//! and the reading tried again on every look; nothing else stops.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use super::parse::{SudoEvent, SudoKind};

/// journald's native socket: it exists while journald runs.
pub const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";
/// Most lines taken in one look (the rest on the next): the core's lock is held per batch.
pub const MAX_LINES: usize = super::MAX_EVENTS_PER_BATCH;
/// How far back the very first look reaches (no cursor yet): nowhere. Lines from before are
/// not read, so switching the source from sudo's JSON log (whose commands also reached syslog)
/// records nothing twice.
pub const FIRST_LOOK_MS: i64 = 0;

/// One sudo line, read and trusted, with the cursor after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub user: String,
    pub event: SudoEvent,
    /// The sender's uid by the kernel's credentials (journald's `_UID`).
    pub sender: Option<u32>,
}

/// Whether a line naming the user `uid`, sent by `sender`, may be sudo's.
pub fn trusted(sender: Option<u32>, uid: u32) -> bool {
    sender.is_some_and(|s| s == 0 || s == uid)
}

/// What a line of `journalctl -o json` is to the ledger.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// A command line of sudo's.
    Sudo(Box<Line>),
    /// A line tagged `sudo` that sudo did not send (`_EXE`, `_UID`).
    Forged { exe: String, uid: String },
    /// sudo's other lines (PAM, errors), and what is not sudo's at all.
    Other,
}

/// A field as text: journald writes a string, or an array of bytes for what is not valid
/// UTF-8 or holds control characters, or an array of those when the field repeats (the first
/// is taken).
fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = a
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some(Value::Array(a)) => a.first().map_or_else(String::new, |first| {
            field(&serde_json::json!({ "f": first }), "f")
        }),
        _ => String::new(),
    }
}

/// A synthetic id for a line (it has no sudo uuid): the journal's sequence number, unique per
/// journal file set.
fn line_id(cursor: &str) -> String {
    let part = |k: &str| {
        cursor
            .split(';')
            .find_map(|p| p.strip_prefix(k))
            .unwrap_or("")
            .to_string()
    };
    let s = part("s=");
    format!("journal-{}-{}", s.get(..8).unwrap_or(&s), part("i="))
}

/// Reads one line of `journalctl -o json`; `sudo_exes` are the paths sudo's `_EXE` may have.
pub fn entry(line: &str, sudo_exes: &[String]) -> Entry {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return Entry::Other;
    };
    if field(&v, "SYSLOG_IDENTIFIER") != "sudo" {
        return Entry::Other;
    }
    let message = field(&v, "MESSAGE");
    let Some((user, mut event)) = message_event(message.trim_start()) else {
        return Entry::Other;
    };
    let (exe, uid) = (field(&v, "_EXE"), field(&v, "_UID"));
    if !exe.is_empty() && !sudo_exes.contains(&exe) && uid != "0" {
        return Entry::Forged { exe, uid };
    }
    let micros = |k: &str| field(&v, k).parse::<i64>().ok();
    event.at_ms = micros("_SOURCE_REALTIME_TIMESTAMP")
        .or_else(|| micros("__REALTIME_TIMESTAMP"))
        .unwrap_or(0)
        / 1000;
    if event.uuid.is_empty() {
        event.uuid = line_id(&field(&v, "__CURSOR"));
    }
    Entry::Sudo(Box::new(Line {
        user,
        event,
        sender: uid.parse().ok(),
    }))
}

/// The event in a sudo syslog message: the classic line, or `@cee:` JSON (classic sudo with
/// `log_format=json`).
fn message_event(message: &str) -> Option<(String, SudoEvent)> {
    if let Some(json) = message.strip_prefix("@cee:") {
        let v: Value = serde_json::from_str(json).ok()?;
        let (key, inner) = v.get("sudo")?.as_object()?.iter().next()?;
        let e = super::parse::event(key, inner);
        return (e.kind != SudoKind::Other).then(|| (e.submituser.clone(), e));
    }
    let (user, rest) = message.split_once(" : ")?;
    if user.is_empty() || user.contains(char::is_whitespace) {
        return None;
    }
    let mut reason = Vec::new();
    let (mut tty, mut cwd, mut runas, mut command) = (String::new(), "", "", None);
    let mut rest = rest;
    while !rest.is_empty() {
        if let Some(c) = rest.strip_prefix("COMMAND=") {
            // Last, and may itself hold " ; ".
            command = Some(c);
            break;
        }
        let (part, next) = rest.split_once(" ; ").unwrap_or((rest, ""));
        match part.split_once('=') {
            Some(("TTY", v)) => tty = v.to_string(),
            Some(("PWD", v)) => cwd = v,
            Some(("USER", v)) => runas = v,
            Some(("HOST" | "GROUP" | "TSID" | "ENV", _)) => {}
            _ if command.is_none() && tty.is_empty() && cwd.is_empty() => reason.push(part),
            _ => {}
        }
        rest = next;
    }
    let command = command?;
    if command.is_empty() || reason.iter().any(|r| r.contains("command continued")) {
        return None;
    }
    let reason = reason.join("; ");
    Some((
        user.to_string(),
        SudoEvent {
            kind: if reason.is_empty() {
                SudoKind::Accept
            } else {
                SudoKind::Reject
            },
            uuid: String::new(),
            submituser: user.to_string(),
            runuser: runas.to_string(),
            argv: command.split(' ').map(str::to_string).collect(),
            cwd: cwd.to_string(),
            tty: if tty == "unknown" { String::new() } else { tty },
            at_ms: 0,
            reason,
            exit_value: None,
            signal: String::new(),
            run_ms: 0,
            iolog: String::new(),
        },
    ))
}

/// What one look at the journal found.
#[derive(Debug, Default, Clone)]
pub struct JournalBatch {
    /// Each trusted line's user (by uid; users with no account are left out) and event.
    pub events: Vec<(u32, SudoEvent)>,
    /// Where the next look starts once this batch is stored (`None`: where it was).
    pub cursor: Option<String>,
    /// (what was wrong, what was done), each reported once until the journal reads again.
    pub problems: Vec<(String, String)>,
}

/// Reads sudo's lines from the journal with `journalctl`.
pub struct Journal {
    journalctl: PathBuf,
    socket: PathBuf,
    sudo_exes: Vec<String>,
    cursor: Option<String>,
    /// Where a look without a cursor starts (ms): the reader's start, less [`FIRST_LOOK_MS`].
    since_ms: i64,
    reported: Option<String>,
}

impl Journal {
    pub fn new(journalctl: PathBuf, sudo_path: &Path, cursor: Option<String>, now_ms: i64) -> Self {
        let mut sudo_exes = vec![sudo_path.display().to_string()];
        if let Ok(real) = std::fs::canonicalize(sudo_path) {
            sudo_exes.push(real.display().to_string());
        }
        Self {
            journalctl,
            socket: PathBuf::from(JOURNALD_SOCKET),
            sudo_exes,
            cursor,
            since_ms: (now_ms - FIRST_LOOK_MS).max(0),
            reported: None,
        }
    }

    /// Marks `batch` stored: the next look starts after it.
    pub fn stored(&mut self, batch: &JournalBatch) {
        if let Some(c) = &batch.cursor {
            self.cursor = Some(c.clone());
        }
    }

    fn problem(&mut self, out: &mut JournalBatch, problem: String) {
        if self.reported.as_ref() != Some(&problem) {
            out.problems.push((
                problem.clone(),
                "sudo's commands are not recorded until it reads again (tried on every look)"
                    .into(),
            ));
            self.reported = Some(problem);
        }
    }

    /// What is new in the journal.
    pub fn read(&mut self) -> JournalBatch {
        let mut out = JournalBatch::default();
        if !self.socket.exists() {
            let p = format!(
                "journald is not running ({} is missing)",
                self.socket.display()
            );
            self.problem(&mut out, p);
            return out;
        }
        let from = match &self.cursor {
            Some(c) => format!("--after-cursor={c}"),
            None => format!("--since=@{}", self.since_ms / 1000),
        };
        let lines = match self.run(&from) {
            Ok(lines) => lines,
            Err(e) if self.cursor.is_some() && e.contains("cursor") => {
                // A cursor the journal no longer knows (journal files gone): read on from
                // the first look's reach rather than never again.
                self.problem(
                    &mut out,
                    format!("journalctl refused the cursor kept ({e})"),
                );
                self.cursor = None;
                return out;
            }
            Err(e) => {
                self.problem(&mut out, e);
                return out;
            }
        };
        self.reported = None;
        let mut forged = 0;
        for line in &lines {
            let cursor = serde_json::from_str::<Value>(line)
                .ok()
                .map(|v| field(&v, "__CURSOR"))
                .filter(|c| !c.is_empty());
            match entry(line, &self.sudo_exes) {
                Entry::Sudo(l) => match crate::accounts::uid_by_name(&l.user) {
                    Some(uid) if trusted(l.sender, uid) => out.events.push((uid, l.event)),
                    Some(_) => forged += 1,
                    None => {}
                },
                Entry::Forged { .. } => forged += 1,
                Entry::Other => {}
            }
            if cursor.is_some() {
                out.cursor = cursor;
            }
        }
        if forged > 0 {
            out.problems.push((
                format!(
                    "{forged} line(s) tagged sudo were not sent by {} for the user they name",
                    self.sudo_exes[0]
                ),
                "ignored: only sudo's own lines are recorded".into(),
            ));
        }
        out
    }

    /// Runs journalctl for sudo's lines from `from`; at most [`MAX_LINES`] lines.
    #[allow(clippy::disallowed_methods)] // the ledger's blocking thread is an edge: it reads the journal through journalctl, whose output can be large (read as it comes, unlike `effects::run_tool`)
    fn run(&self, from: &str) -> Result<Vec<String>, String> {
        let mut child = std::process::Command::new(&self.journalctl)
            .args([
                "-o",
                "json",
                "--no-pager",
                "-q",
                "--output-fields=MESSAGE,SYSLOG_IDENTIFIER,_EXE,_UID,_SOURCE_REALTIME_TIMESTAMP",
                from,
                "SYSLOG_IDENTIFIER=sudo",
            ])
            .env_clear()
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{} cannot run: {e}", self.journalctl.display()))?;
        let mut lines = Vec::new();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                lines.push(line);
                if lines.len() >= MAX_LINES {
                    let _ = child.kill();
                    break;
                }
            }
        }
        let full = lines.len() >= MAX_LINES;
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = (&mut e).take(4096).read_to_string(&mut err);
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() && !full {
            return Err(format!(
                "journalctl failed ({status}): {}",
                err.trim().lines().next().unwrap_or("")
            ));
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from a real journald (systemd 252) receiving classic sudo 1.9.13's own lines
    /// (Debian 12): two commands, sudo's PAM lines in between.
    const RECORDED: &str = include_str!("fixtures/journal-sudo-1.9.13.jsonl");

    fn exes() -> Vec<String> {
        vec!["/usr/bin/sudo".to_string()]
    }

    fn sudo(line: &str) -> Line {
        match entry(line, &exes()) {
            Entry::Sudo(l) => *l,
            other => panic!("{other:?} from {line}"),
        }
    }

    #[test]
    fn recorded_classic_sudo_lines_become_commands_with_exit_unknown() {
        let found: Vec<Line> = RECORDED
            .lines()
            .filter_map(|l| match entry(l, &exes()) {
                Entry::Sudo(l) => Some(*l),
                _ => None,
            })
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        let first = &found[0];
        assert_eq!(first.user, "alice");
        assert_eq!(first.event.kind, SudoKind::Accept);
        assert_eq!(first.event.argv, ["/usr/bin/id", "-u"]);
        assert_eq!(first.event.cwd, "/tmp");
        assert_eq!(first.event.runuser, "root");
        assert_eq!(first.event.tty, "");
        assert_eq!(first.event.exit_value, None);
        assert_eq!(first.event.at_ms, 1_795_929_488_072);
        assert!(
            first.event.uuid.starts_with("journal-9a360faf-18f"),
            "{first:?}"
        );
        // The escape character as sudo wrote it: never raw in the record.
        assert_eq!(found[1].event.argv, ["/usr/bin/id", "-un", "a#033b"]);
    }

    /// sudo-rs's line (`src/sudo/pipeline.rs`: "{user} : TTY={tty} ; PWD={cwd} ; USER={target}
    /// ; COMMAND={cmd}") as journald stores it; sudo-rs is not packaged for Debian 12, so this
    /// is written from its format, with journald's field layout from the recorded lines.
    #[test]
    fn sudo_rs_lines_and_refusals_and_cee_json_are_read() {
        let j = |msg: &str| {
            serde_json::json!({
                "__CURSOR": "s=0123456789abcdef;i=2a;b=x",
                "__REALTIME_TIMESTAMP": "1795929488000000",
                "_UID": "0", "_EXE": "/usr/lib/cargo/bin/sudo",
                "SYSLOG_IDENTIFIER": "sudo", "MESSAGE": msg,
            })
            .to_string()
        };
        let rs = sudo(&j(
            "alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
        ));
        assert_eq!(rs.event.tty, "pts/1");
        assert_eq!(rs.event.argv, ["/usr/bin/systemctl", "restart", "nginx"]);
        assert_eq!(rs.event.uuid, "journal-01234567-2a");
        let refused = sudo(&j(
            "   bob : command not allowed ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow ; x",
        ));
        assert_eq!(refused.event.kind, SudoKind::Reject);
        assert_eq!(refused.event.reason, "command not allowed");
        assert_eq!(
            refused.event.argv,
            ["/usr/bin/cat", "/etc/shadow", ";", "x"]
        );
        let cee = sudo(&j(
            r#"@cee:{"sudo":{"accept":{"uuid":"u1","submituser":"carol","runuser":"root","runargv":["/usr/bin/id"],"runcwd":"/","submit_time":{"seconds":1,"nanoseconds":0}}}}"#,
        ));
        assert_eq!(
            (cee.user.as_str(), cee.event.uuid.as_str()),
            ("carol", "u1")
        );
        // Not commands.
        for msg in [
            "pam_unix(sudo:session): session closed for user root",
            "alice : (command continued) more words",
            " : TTY=x ; COMMAND=/bin/true",
            "alice : TTY=pts/0 ; PWD=/",
        ] {
            assert_eq!(entry(&j(msg), &exes()), Entry::Other, "{msg}");
        }
    }

    #[test]
    fn a_line_sudo_did_not_send_is_refused_and_bytes_are_read_lossily() {
        let forged = serde_json::json!({
            "_UID": "1001", "_EXE": "/usr/bin/logger", "SYSLOG_IDENTIFIER": "sudo",
            "MESSAGE": "mallory : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/true",
        })
        .to_string();
        assert!(matches!(entry(&forged, &exes()), Entry::Forged { .. }));
        // journald lost the exe (sudo had exited): the kernel's uid decides.
        let no_exe = serde_json::json!({
            "_UID": "1001", "SYSLOG_IDENTIFIER": "sudo",
            "MESSAGE": "bob : PWD=/ ; USER=root ; COMMAND=/bin/true",
        })
        .to_string();
        let l = sudo(&no_exe);
        assert_eq!(l.sender, Some(1001));
        assert!(
            !trusted(l.sender, 1002),
            "alice's process writing a line about bob"
        );
        assert!(trusted(l.sender, 1001));
        assert!(trusted(Some(0), 1002));
        assert!(!trusted(None, 1001));
        // MESSAGE as bytes: invalid UTF-8 and a control character.
        let mut bytes: Vec<u8> = b"alice : PWD=/ ; USER=root ; COMMAND=/bin/echo ".to_vec();
        bytes.extend([0xff, 0x1b, b'x']);
        let binary = serde_json::json!({
            "_UID": "1001", "_EXE": "/usr/bin/sudo", "SYSLOG_IDENTIFIER": "sudo",
            "MESSAGE": bytes,
        })
        .to_string();
        let l = sudo(&binary);
        assert_eq!(l.event.argv, ["/bin/echo", "\u{fffd}\u{1b}x"]);
        assert_eq!(entry("not json", &exes()), Entry::Other);
        assert_eq!(entry("{\"MESSAGE\": 3}", &exes()), Entry::Other);
    }
}
