//! The audit trail: one record per decision or state change, to syslog (`LOG_AUTHPRIV`) and to
//! the hash-chained table in the state database.
//!
//! A record is one line of `key=value` pairs. Values that are not plain words are quoted, and
//! every character that is not printable ASCII is written as `\u{..}`, so no input (a reason full
//! of newlines, terminal escapes, bidi controls) can split a record or forge another one.
//! Long values are cut, with the number of characters dropped.
//!
//! Each kind of record is one variant of [`AuditEvent`] (`event.rs`), written as that line or
//! as JSON and read back from either (`codec.rs`).
//!
//! Each record that reaches the chain goes to syslog with the chain's new head after it
//! (` seq=N head=<16 hex>`), so a copy of the log kept elsewhere shows records deleted from the
//! end of the chain, which the chain alone cannot ([`heads`]).
//!
//! Losing the syslog socket never stops the daemon: records then go to stderr (the journal,
//! under systemd) and the logger reconnects on the next record.

#![forbid(unsafe_code)]

pub mod chain;
pub mod export;
pub mod heads;
pub mod index;

use std::fmt::{self, Display, Write as _};
use std::sync::Mutex;

use crate::store::Store;

mod codec;
pub mod event;
mod field;

pub use codec::{ParseError, loose_fields};
pub use event::{AuditEvent, FieldValue, PolkitAnswer};

/// Longest value kept in a record, in characters: above the longest reason a request may carry
/// (`client::MAX_REASON_CHARS`), so a reason is always on record whole.
const MAX_VALUE_CHARS: usize = 1100;
const _: () = assert!(MAX_VALUE_CHARS >= crate::client::MAX_REASON_CHARS);

/// Severity of a record, mapped to syslog priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal decisions and state changes.
    Info,
    /// Refusals and anything an auditor should look at.
    Notice,
    /// Failures and tampering.
    Warning,
    /// Someone broke the glass, or a review found misuse: for whoever is on call now.
    Alert,
}

/// Whether `c` may appear in a value written bare, without quotes.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._/@:+-,#()".contains(c)
}

/// Display adapter that writes a value safely for a single-line record.
pub struct Escaped<'a>(pub &'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.chars().count();
        if total > 0 && total <= MAX_VALUE_CHARS && self.0.chars().all(is_plain) {
            return f.write_str(self.0);
        }
        f.write_char('"')?;
        for c in self.0.chars().take(MAX_VALUE_CHARS) {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                ' '..='~' => f.write_char(c)?,
                _ => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
        }
        if total > MAX_VALUE_CHARS {
            write!(f, "...(+{} chars)", total - MAX_VALUE_CHARS)?;
        }
        f.write_char('"')
    }
}

type Logger = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// Where records go.
pub struct Audit {
    syslog: Mutex<Option<Logger>>,
    use_syslog: bool,
}

impl Audit {
    /// `use_syslog = false` writes to stderr only (tests, or hosts without a syslog socket).
    pub fn new(use_syslog: bool) -> Self {
        Self {
            syslog: Mutex::new(None),
            use_syslog,
        }
    }

    /// Writes `event` to the audit table, when a store is given, sealed with the host name
    /// that comes with it, and to syslog with the chain's new head appended ([`heads`]). Never
    /// fails: an audit sink that is down must not block a revocation. DB failures are reported
    /// to syslog/stderr so the gap itself is on record.
    pub fn record(&self, store: Option<(&Store, &str)>, at_ms: i64, event: &AuditEvent) {
        self.record_noting(store, at_ms, event, &[]);
    }

    /// Like [`Audit::record`], and queues `notes` for the notifier in the same transaction as
    /// the record (none without a store: safe mode has no outbox).
    pub fn record_noting(
        &self,
        store: Option<(&Store, &str)>,
        at_ms: i64,
        event: &AuditEvent,
        notes: &[crate::store::outbox::Note],
    ) {
        let line = event.to_line();
        let key = index::history_key(event);
        let appended = store.map(|(store, host)| {
            store.append_audit_noting(at_ms, host, &line, key.as_ref(), notes)
        });
        match appended {
            Some(Ok(head)) => self.to_syslog(event.level(), &heads::with_head(&line, &head)),
            Some(Err(e)) => {
                self.to_syslog(event.level(), &line);
                let gap = AuditEvent::AuditDbWriteFailed {
                    error: e.to_string(),
                    lost: line,
                };
                self.to_syslog(gap.level(), &gap.to_line());
            }
            None => self.to_syslog(event.level(), &line),
        }
    }

    /// A diagnostic for the operator (not an audit record): syslog and stderr.
    pub fn log(&self, level: Level, message: &str) {
        self.to_syslog(level, &format!("event=daemon.log msg={}", Escaped(message)));
    }

    fn to_syslog(&self, level: Level, line: &str) {
        if self.use_syslog {
            let mut guard = self.syslog.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = connect_syslog();
            }
            if let Some(logger) = guard.as_mut() {
                let sent = match level {
                    Level::Info => logger.info(line),
                    Level::Notice => logger.notice(line),
                    Level::Warning => logger.warning(line),
                    Level::Alert => logger.alert(line),
                };
                if sent.is_ok() {
                    return;
                }
                // Socket gone (syslog restarted): reconnect on the next record.
                *guard = None;
            }
        }
        eprintln!("jitd: {line}");
    }
}

fn connect_syslog() -> Option<Logger> {
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "jitd".into(),
        pid: std::process::id(),
    };
    syslog::unix(formatter).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record line written field by field, the way the escaping is specified.
    struct Line(String);

    impl Line {
        fn new(kind: &str) -> Self {
            Self(format!("event={kind}"))
        }
        fn field(mut self, key: &str, value: impl Display) -> Self {
            let _ = write!(self.0, " {key}={}", Escaped(&value.to_string()));
            self
        }
        fn line(self) -> String {
            self.0
        }
    }

    #[test]
    fn plain_values_stay_bare_and_others_are_quoted() {
        let line = Line::new("grant.applied")
            .field("grant", "g0123456789ab")
            .field("uid", 1001)
            .field("reason", "restart after config change")
            .line();
        assert_eq!(
            line,
            "event=grant.applied grant=g0123456789ab uid=1001 reason=\"restart after config change\""
        );
    }

    #[test]
    fn hostile_reasons_stay_on_one_line_and_cannot_forge_fields() {
        let reason = "ok\nevent=grant.revoked uid=0 \"x\\\u{1b}[2J\u{202e}%n";
        let line = Line::new("request.denied").field("reason", reason).line();
        assert!(!line.contains('\n') && !line.contains('\u{1b}') && !line.contains('\u{202e}'));
        assert_eq!(
            line,
            "event=request.denied reason=\"ok\\u{a}event=grant.revoked uid=0 \\\"x\\\\\\u{1b}[2J\\u{202e}%n\""
        );
    }

    #[test]
    fn huge_values_are_cut_and_say_so() {
        let reason = "a".repeat(1 << 20);
        let line = Line::new("request.denied").field("reason", &reason).line();
        assert!(line.len() < MAX_VALUE_CHARS + 100, "{}", line.len());
        assert!(line.ends_with(&format!("...(+{} chars)\"", (1 << 20) - MAX_VALUE_CHARS)));
    }

    #[test]
    fn empty_values_are_visible() {
        assert_eq!(
            Line::new("x").field("ticket", "").line(),
            "event=x ticket=\"\""
        );
    }
}
