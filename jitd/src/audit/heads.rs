//! The chain heads in syslog, and the check of a database against them.
//!
//! The hash chain shows a record edited, removed or moved, but not the newest records deleted:
//! what is left is still a valid chain. So every record that reaches the chain also goes to
//! syslog with the chain's new head after its key=value line, ` seq=N head=<first 16 hex of
//! its hash>`, and syslog is usually copied off the host or kept where jitd's database is not.
//! `jitd audit verify --against-syslog FILE` reads those heads back from a text export of the
//! log and checks each against the database: the newest head must be there, and every head
//! must be the record the database holds at that seq.

#![forbid(unsafe_code)]

use std::fmt;

use crate::store::ChainHead;

/// Hex digits of the hash that go to syslog: enough that a forged record cannot match by
/// chance, short enough for a log line.
pub const HEAD_HEX: usize = 16;

/// The syslog line of a record: its key=value line, unchanged, then the chain's head.
pub fn with_head(line: &str, head: &ChainHead) -> String {
    let hex = head.hash.get(..HEAD_HEX).unwrap_or(&head.hash);
    format!("{line} seq={} head={hex}", head.seq)
}

/// One head read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenHead {
    pub seq: i64,
    pub head: String,
}

/// Every head in a syslog or journal text export: lines that carry a jitd record (`event=`)
/// and end in ` seq=N head=<16 hex>`, whatever the log put before it. A value inside a record
/// cannot end a line this way (values with spaces or `=` are quoted).
pub fn heads_in(text: &str) -> Vec<SeenHead> {
    text.lines().filter_map(head_of).collect()
}

fn head_of(line: &str) -> Option<SeenHead> {
    let line = line.trim_end();
    if !line.contains("event=") {
        return None;
    }
    let (rest, head) = line.rsplit_once(" head=")?;
    let (_, seq) = rest.rsplit_once(" seq=")?;
    let plain_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if head.len() != HEAD_HEX || !plain_hex(head) || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(SeenHead {
        seq: seq.parse().ok()?,
        head: head.to_string(),
    })
}

/// What the log shows that the database does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadProblem {
    /// Syslog saw a record past the database's end: the newest records were deleted (or the
    /// database replaced by an older copy).
    Truncated { seen: SeenHead, db_last: i64 },
    /// The database holds another record at a seq syslog saw (or none there).
    Different { seen: SeenHead, found: String },
}

/// The outcome of checking a database against the heads in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadCheck {
    pub checked: usize,
    pub newest: i64,
    pub db_last: i64,
    pub problem: Option<HeadProblem>,
}

impl HeadCheck {
    pub fn agrees(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for HeadCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => write!(
                f,
                "syslog agrees: {} chain heads checked, the newest (seq {}) is in the database, \
                 which ends at seq {}",
                self.checked, self.newest, self.db_last
            ),
            Some(HeadProblem::Truncated { seen, db_last }) => write!(
                f,
                "audit tail truncated: syslog saw seq {} (head {}) but the database ends at seq \
                 {db_last}: records {}..{} were deleted, or the database was replaced",
                seen.seq,
                seen.head,
                db_last + 1,
                seen.seq
            ),
            Some(HeadProblem::Different { seen, found }) => write!(
                f,
                "audit record seq {} is not the one syslog saw (head {}, the database has {}): \
                 the chain was rewritten from there, or the database replaced",
                seen.seq,
                seen.head,
                if found.is_empty() { "none" } else { found }
            ),
        }
    }
}

/// Checks `seen` against a database whose newest record is `db_last` and whose hash at a seq
/// `hash_of` gives. The newest head first (a truncation is what only this check can show),
/// then every head, oldest first.
pub fn check<E>(
    seen: &[SeenHead],
    db_last: i64,
    mut hash_of: impl FnMut(i64) -> Result<Option<String>, E>,
) -> Result<HeadCheck, E> {
    let newest = seen.iter().max_by_key(|h| h.seq);
    let mut out = HeadCheck {
        checked: seen.len(),
        newest: newest.map_or(0, |h| h.seq),
        db_last,
        problem: None,
    };
    if let Some(h) = newest
        && h.seq > db_last
    {
        out.problem = Some(HeadProblem::Truncated {
            seen: h.clone(),
            db_last,
        });
        return Ok(out);
    }
    let mut sorted: Vec<&SeenHead> = seen.iter().collect();
    sorted.sort_by_key(|h| h.seq);
    for h in sorted {
        let found = hash_of(h.seq)?.unwrap_or_default();
        if !found.starts_with(&h.head) {
            out.problem = Some(HeadProblem::Different {
                seen: h.clone(),
                found: found.get(..HEAD_HEX).unwrap_or(&found).to_string(),
            });
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_head_follows_the_unchanged_line_and_reads_back_from_any_log_format() {
        let line = "event=grant.applied grant=g0123456789ab uid=1001";
        let shown = with_head(
            line,
            &ChainHead {
                seq: 42,
                hash: HASH.into(),
            },
        );
        assert_eq!(shown, format!("{line} seq=42 head=0123456789abcdef"));
        let log = format!(
            "Jan  2 03:04:05 host jitd[77]: {shown}\n\
             2026-01-02T03:04:05+00:00 host jitd[77]: {shown}  \n\
             jitd: event=daemon.log msg=\"x seq=1 head=0123456789abcdef\"\n\
             jitd: event=x reason=\"a\" seq=5 head=0123456789ABCDEF\n\
             unrelated seq=3 head=0123456789abcdef\n"
        );
        let seen = heads_in(&log);
        assert_eq!(
            seen,
            vec![
                SeenHead {
                    seq: 42,
                    head: "0123456789abcdef".into()
                };
                2
            ],
            "quoted values, upper-case hex and lines without a record are not heads"
        );
    }

    fn db(n: i64) -> impl FnMut(i64) -> Result<Option<String>, ()> {
        move |seq| Ok((1..=n).contains(&seq).then(|| format!("{seq:016x}{HASH}")))
    }

    fn seen(seq: i64) -> SeenHead {
        SeenHead {
            seq,
            head: format!("{seq:016x}"),
        }
    }

    #[test]
    fn a_deleted_tail_a_rewritten_record_and_an_intact_log_are_told_apart() {
        let heads = [seen(1), seen(2), seen(3)];
        let ok = check(&heads, 3, db(3)).unwrap();
        assert!(ok.agrees(), "{ok}");
        assert!(ok.to_string().starts_with("syslog agrees: 3 chain heads"));

        let cut = check(&heads, 1, db(1)).unwrap();
        assert_eq!(
            cut.to_string(),
            "audit tail truncated: syslog saw seq 3 (head 0000000000000003) but the database \
             ends at seq 1: records 2..3 were deleted, or the database was replaced"
        );

        let mut forged = heads.clone();
        forged[1].head = "ffffffffffffffff".into();
        let other = check(&forged, 3, db(3)).unwrap();
        assert!(
            matches!(&other.problem, Some(HeadProblem::Different { seen, .. }) if seen.seq == 2),
            "{other}"
        );
    }
}
