//! The audit hash chain: how a record is sealed, and the walk that checks a run of records.
//!
//! Each record's hash covers the previous record's hash, so a record cannot be edited, removed
//! or moved without breaking every link after it, short of rewriting the rest of the chain.
//! Records carry the number of the formula that sealed them:
//! - format 1 (the first release): `sha256(prev "\n" at_ms "\n" line)`
//! - format 2: `sha256(prev "\n" seq "\n" at_ms "\n" host "\n" line)`, so the position and
//!   the host are sealed too.
//!
//! A chain only ever moves to newer formats; a record in an older format after a newer one is
//! treated as forged (rewriting a record in format 1 would drop its seq and host from the hash).
//!
//! No SQLite here: the same check runs on the database and on exported records.

#![forbid(unsafe_code)]

use std::fmt;

use sha2::{Digest, Sha256};

/// The formula new records are sealed with.
pub const CURRENT_FORMAT: u32 = 2;

/// One audit record as the chain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRow {
    pub seq: i64,
    pub at_ms: i64,
    pub host: String,
    pub line: String,
    pub prev_hash: String,
    pub hash: String,
    pub format: u32,
}

impl ChainRow {
    /// A new record after the one whose hash is `prev_hash`, sealed in [`CURRENT_FORMAT`].
    pub fn seal(seq: i64, at_ms: i64, host: &str, line: &str, prev_hash: &str) -> Self {
        Self {
            seq,
            at_ms,
            host: host.to_string(),
            line: line.to_string(),
            prev_hash: prev_hash.to_string(),
            hash: hash_v2(prev_hash, seq, at_ms, host, line),
            format: CURRENT_FORMAT,
        }
    }

    /// The hash the record should carry by its own format; `None` for a format this build
    /// does not know.
    pub fn expected_hash(&self) -> Option<String> {
        match self.format {
            1 => Some(hash_v1(&self.prev_hash, self.at_ms, &self.line)),
            2 => Some(hash_v2(
                &self.prev_hash,
                self.seq,
                self.at_ms,
                &self.host,
                &self.line,
            )),
            _ => None,
        }
    }
}

/// Format 1: `sha256(prev "\n" at_ms "\n" line)`, hex.
pub fn hash_v1(prev_hash: &str, at_ms: i64, line: &str) -> String {
    digest(&[prev_hash, &at_ms.to_string(), line])
}

/// Format 2: `sha256(prev "\n" seq "\n" at_ms "\n" host "\n" line)`, hex.
pub fn hash_v2(prev_hash: &str, seq: i64, at_ms: i64, host: &str, line: &str) -> String {
    digest(&[prev_hash, &seq.to_string(), &at_ms.to_string(), host, line])
}

fn digest(fields: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(field.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What is wrong with the first broken link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The record's hash is not the hash of its own fields.
    Edited,
    /// Its `prev_hash` is not the previous record's hash: a record before it was deleted,
    /// replaced or moved.
    Unlinked,
    /// Its seq is not the previous one plus one (or 1 for the first record).
    Seq { expected: i64 },
    /// Sealed in an older format than the record before it.
    Downgrade { from: u32, to: u32 },
    /// Sealed in a format this build does not know.
    UnknownFormat(u32),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Edited => f.write_str("the record was edited (its hash does not match)"),
            Self::Unlinked => f.write_str(
                "it does not follow the record before it (its prev_hash does not match: a \
                 record before it was deleted, replaced or reordered)",
            ),
            Self::Seq { expected } => write!(
                f,
                "expected seq {expected} here (a record was deleted or the records reordered)"
            ),
            Self::Downgrade { from, to } => write!(
                f,
                "its hash format went back from {from} to {to} (a forged downgrade)"
            ),
            Self::UnknownFormat(n) => write!(f, "unknown hash format {n}"),
        }
    }
}

/// The first broken link: the seq of the record where the chain stops holding, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: i64,
    pub problem: Problem,
}

/// The result of a walk over the chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainReport {
    /// Records found intact: all of them when [`broken`](Self::broken) is `None`, else those
    /// before the break.
    pub count: u64,
    /// Seq of the first and last intact record (`None` when there are none).
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub broken: Option<Break>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

impl fmt::Display for ChainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.broken, self.first_seq, self.last_seq) {
            (Some(b), _, _) => write!(f, "audit chain broken at seq {}: {}", b.seq, b.problem),
            (None, Some(first), Some(last)) => write!(
                f,
                "audit chain intact: {} records, seq {first}..{last}",
                self.count
            ),
            (None, _, _) => write!(f, "audit chain intact: {} records", self.count),
        }
    }
}

/// Walks a chain one record at a time, for callers that read it in pages.
#[derive(Debug, Default)]
pub struct Verifier {
    report: ChainReport,
    /// Hash and format of the last intact record.
    last: Option<(String, u32)>,
    /// The seq of the record before the first one pushed (0: the chain's start).
    after: i64,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// A walk that starts after record `after_seq`, whose hash and format are taken as given:
    /// an export that starts mid-chain, or a chain whose older records were purged after a
    /// checkpoint of their head.
    pub fn resume(after_seq: i64, hash: &str, format: u32) -> Self {
        Self {
            report: ChainReport::default(),
            last: Some((hash.to_string(), format)),
            after: after_seq,
        }
    }

    /// Checks the next record (in seq order); returns whether the chain still holds. After
    /// the first break nothing more is checked: every later link depends on the broken one.
    pub fn push(&mut self, row: &ChainRow) -> bool {
        if self.report.broken.is_some() {
            return false;
        }
        match self.problem(row) {
            Some(problem) => {
                self.report.broken = Some(Break {
                    seq: row.seq,
                    problem,
                });
                false
            }
            None => {
                let r = &mut self.report;
                r.count += 1;
                r.first_seq.get_or_insert(row.seq);
                r.last_seq = Some(row.seq);
                self.last = Some((row.hash.clone(), row.format));
                true
            }
        }
    }

    /// Order matters for naming the cause: position first (a missing record shows as a seq
    /// gap before it shows as a broken link), then the format, then the link, then the record.
    fn problem(&self, row: &ChainRow) -> Option<Problem> {
        let expected = self.report.last_seq.unwrap_or(self.after) + 1;
        if row.seq != expected {
            return Some(Problem::Seq { expected });
        }
        let (prev_hash, prev_format) = match &self.last {
            Some((hash, format)) => (hash.as_str(), *format),
            None => ("", 0),
        };
        if row.format < prev_format {
            return Some(Problem::Downgrade {
                from: prev_format,
                to: row.format,
            });
        }
        let Some(hash) = row.expected_hash() else {
            return Some(Problem::UnknownFormat(row.format));
        };
        if row.prev_hash != prev_hash {
            return Some(Problem::Unlinked);
        }
        (row.hash != hash).then_some(Problem::Edited)
    }

    pub fn report(self) -> ChainReport {
        self.report
    }
}

/// Checks a whole chain given in seq order.
pub fn verify<I>(rows: I) -> ChainReport
where
    I: IntoIterator,
    I::Item: Into<ChainRow>,
{
    let mut v = Verifier::new();
    for row in rows {
        if !v.push(&row.into()) {
            break;
        }
    }
    v.report()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainRow> {
        let mut rows: Vec<ChainRow> = Vec::new();
        for seq in 1..=n {
            let prev = rows.last().map_or("", |r| r.hash.as_str());
            rows.push(ChainRow::seal(
                seq,
                seq * 10,
                "h",
                &format!("n={seq}"),
                prev,
            ));
        }
        rows
    }

    #[test]
    fn the_formulas_are_the_documented_ones() {
        let sha = |s: &str| digest(&[s]);
        assert_eq!(hash_v1("p", 5, "l"), sha("p\n5\nl"));
        assert_eq!(hash_v2("p", 3, 5, "h", "l"), sha("p\n3\n5\nh\nl"));
        assert_eq!(
            sha(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn an_intact_chain_reports_its_span() {
        let report = verify(chain(4));
        assert_eq!(
            report.to_string(),
            "audit chain intact: 4 records, seq 1..4"
        );
        assert_eq!(
            verify(Vec::<ChainRow>::new()).to_string(),
            "audit chain intact: 0 records"
        );
    }

    #[test]
    fn the_host_and_seq_are_sealed_in_format_2() {
        let mut rows = chain(3);
        rows[1].host = "elsewhere".into();
        let report = verify(rows);
        assert_eq!(
            report.to_string(),
            "audit chain broken at seq 2: the record was edited (its hash does not match)"
        );
        assert_eq!(report.count, 1);
    }

    #[test]
    fn format_1_records_may_be_followed_by_format_2_but_not_after() {
        let mut rows = Vec::new();
        let mut prev = String::new();
        for seq in 1..=2 {
            let hash = hash_v1(&prev, seq, "old");
            rows.push(ChainRow {
                seq,
                at_ms: seq,
                host: String::new(),
                line: "old".into(),
                prev_hash: prev.clone(),
                hash: hash.clone(),
                format: 1,
            });
            prev = hash;
        }
        rows.push(ChainRow::seal(3, 3, "h", "new", &prev));
        assert!(verify(rows.clone()).is_intact());
        let mut back = rows[2].clone();
        back.seq = 4;
        back.prev_hash = rows[2].hash.clone();
        back.format = 1;
        back.hash = back.expected_hash().unwrap();
        rows.push(back);
        let report = verify(rows);
        assert_eq!(
            report.broken,
            Some(Break {
                seq: 4,
                problem: Problem::Downgrade { from: 2, to: 1 }
            })
        );
    }

    #[test]
    fn a_missing_first_record_and_an_unknown_format_are_named() {
        let rows = chain(3);
        let report = verify(rows[1..].to_vec());
        assert_eq!(report.broken.unwrap().problem, Problem::Seq { expected: 1 });
        let mut rows = chain(2);
        rows[1].format = 9;
        let report = verify(rows);
        assert_eq!(
            report.to_string(),
            "audit chain broken at seq 2: unknown hash format 9"
        );
    }
}
