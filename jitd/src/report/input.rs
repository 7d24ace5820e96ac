//! Where the history comes from: one host's state database, read-only, or JSON-lines exports
//! of any number of hosts (`jitctl audit export --format jsonl`: one object per audit record
//! with `host`, `seq`, `time`, `kind` and `fields`). Both are streamed, record by record, so a
//! million records never sit in memory at once.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::audit::chain::{ChainRow, Verifier};
use crate::audit::{AuditEvent, loose_fields};
use crate::store::Store;

/// One audit record as the reports read it: every field as text.
#[derive(Debug, Clone)]
pub struct Event {
    pub host: String,
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// The field's text, "" when the record has no such field.
    pub fn get(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn num(&self, key: &str) -> i64 {
        self.get(key).parse().unwrap_or(0)
    }

    /// Reads a stored line: with the typed codec when this build knows the kind (which checks
    /// every field), else loosely, for kinds written by a newer jitd.
    pub fn from_line(host: &str, seq: i64, at_ms: i64, line: &str) -> Result<Self, String> {
        let (kind, fields) = match AuditEvent::from_line(line) {
            Ok(event) => (
                event.kind().to_string(),
                event
                    .fields()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            Err(_) => loose_fields(line).map_err(|e| e.to_string())?,
        };
        Ok(Self {
            host: host.to_string(),
            seq,
            at_ms,
            kind,
            fields,
        })
    }
}

/// What the hash chain of one host's records says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chain {
    /// Every link checked: the first and last record hashes.
    Verified {
        records: u64,
        first_hash: String,
        last_hash: String,
    },
    /// The first broken link.
    Broken(String),
    /// The input carries no hashes (an export without them).
    NotCarried,
}

/// One host's part of the input, after it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSummary {
    pub host: String,
    pub records: u64,
    pub unreadable: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub chain: Chain,
}

/// A history to report on.
pub trait AuditSource {
    /// Hands every record to `each`, in each host's seq order; returns what was read of
    /// each host, sorted by host name.
    fn read(&self, each: &mut dyn FnMut(&Event)) -> Result<Vec<HostSummary>, String>;
}

#[derive(Default)]
struct Tally {
    records: u64,
    unreadable: u64,
    first_ms: i64,
    last_ms: i64,
    verifier: Option<Verifier>,
    broken: Option<String>,
    first_hash: String,
    last_hash: String,
    hashes: bool,
}

impl Tally {
    fn time(&mut self, at_ms: i64) {
        if self.records == 0 || at_ms < self.first_ms {
            self.first_ms = at_ms;
        }
        self.last_ms = self.last_ms.max(at_ms);
        self.records += 1;
    }

    fn link(&mut self, row: &ChainRow) {
        self.hashes = true;
        let verifier = self.verifier.get_or_insert_with(Verifier::new);
        if self.first_hash.is_empty() {
            self.first_hash = row.hash.clone();
        }
        self.last_hash = row.hash.clone();
        if !verifier.push(row) && self.broken.is_none() {
            self.broken = Some(format!("record {} does not verify", row.seq));
        }
    }

    fn summary(self, host: String) -> HostSummary {
        let chain = match (self.hashes, self.broken) {
            (false, _) => Chain::NotCarried,
            (true, Some(why)) => Chain::Broken(why),
            (true, None) => Chain::Verified {
                records: self.records,
                first_hash: self.first_hash,
                last_hash: self.last_hash,
            },
        };
        HostSummary {
            host,
            records: self.records,
            unreadable: self.unreadable,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            chain,
        }
    }
}

/// The `audit` table of a state database, opened read-only; the chain is verified on the way.
pub struct Database(pub PathBuf);

impl AuditSource for Database {
    fn read(&self, each: &mut dyn FnMut(&Event)) -> Result<Vec<HostSummary>, String> {
        let store =
            Store::open_read_only(&self.0).map_err(|e| format!("{}: {e}", self.0.display()))?;
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        let mut whole = Tally::default();
        let mut after = 0;
        loop {
            let rows = store
                .audit_rows(after, 2000)
                .map_err(|e| format!("{}: {e}", self.0.display()))?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for row in &rows {
                // One chain covers the database whatever host wrote each row.
                whole.link(row);
                let tally = tallies.entry(row.host.clone()).or_default();
                tally.time(row.at_ms);
                match Event::from_line(&row.host, row.seq, row.at_ms, &row.line) {
                    Ok(event) => each(&event),
                    Err(_) => tally.unreadable += 1,
                }
            }
        }
        let chain = whole.summary(String::new()).chain;
        Ok(tallies
            .into_iter()
            .map(|(host, tally)| {
                let mut summary = tally.summary(host);
                summary.chain = chain.clone();
                summary
            })
            .collect())
    }
}

/// JSON-lines exports, one or more files, each of any number of hosts.
pub struct Exports(pub Vec<PathBuf>);

/// One exported record: the shape of `jitctl audit export --format jsonl`. `line`, `hash` and
/// `prev_hash` are read when present, so an export that carries them has its chain checked.
/// The fields are read straight into text, without a JSON tree for the whole line.
#[derive(serde::Deserialize)]
struct ExportLine {
    #[serde(default)]
    host: String,
    seq: i64,
    time: Value,
    #[serde(default)]
    kind: String,
    #[serde(default, deserialize_with = "text_fields")]
    fields: Vec<(String, String)>,
    line: Option<String>,
    hash: Option<String>,
    prev_hash: Option<String>,
    format: Option<u32>,
}

/// The `fields` object as (key, text) pairs in written order: strings as they are, numbers and
/// booleans as written, arrays comma-joined (pid lists), as the codec's loose reader does.
fn text_fields<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct Fields;
    impl<'de> serde::de::Visitor<'de> for Fields {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of fields")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, Value>()? {
                out.push((key, json_text(&value)));
            }
            Ok(out)
        }
    }
    d.deserialize_map(Fields)
}

fn export_record(text: &str) -> Result<(Event, Option<ChainRow>), String> {
    let rec: ExportLine = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let at_ms = time_ms(&rec.time).ok_or("no time")?;
    let row = match (&rec.hash, &rec.prev_hash, &rec.line) {
        (Some(hash), Some(prev), Some(line)) => Some(ChainRow {
            seq: rec.seq,
            at_ms,
            host: rec.host.clone(),
            line: line.clone(),
            prev_hash: prev.clone(),
            hash: hash.clone(),
            format: rec.format.unwrap_or(2),
        }),
        _ => None,
    };
    let event = match &rec.line {
        Some(line) => Event::from_line(&rec.host, rec.seq, at_ms, line)?,
        None if rec.kind.is_empty() => return Err("no kind".into()),
        None => Event {
            host: rec.host,
            seq: rec.seq,
            at_ms,
            kind: rec.kind,
            fields: rec.fields,
        },
    };
    Ok((event, row))
}

/// A JSON value's text as a record field: strings as they are, numbers and booleans as
/// written, arrays comma-joined (pid lists).
fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(json_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A time as milliseconds since the epoch, or RFC 3339 UTC text (`2026-10-01T08:00:00Z`,
/// fractions allowed).
pub fn time_ms(value: &Value) -> Option<i64> {
    if let Some(ms) = value.as_i64() {
        return Some(ms);
    }
    parse_rfc3339(value.as_str()?)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` to milliseconds; `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !text.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?);
    let secs = days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?;
    let frac = text.get(19..text.len() - 1)?;
    let ms = match frac.strip_prefix('.') {
        Some(digits) if !digits.is_empty() => {
            let padded = format!("{digits:0<3}");
            padded.get(..3)?.parse::<i64>().ok()?
        }
        _ if frac.is_empty() => 0,
        _ => return None,
    };
    Some(secs * 1000 + ms)
}

/// Inverse of [`crate::clock::civil_from_days`].
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl AuditSource for Exports {
    fn read(&self, each: &mut dyn FnMut(&Event)) -> Result<Vec<HostSummary>, String> {
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        for path in &self.0 {
            let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                let (event, row) = export_record(&line)
                    .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
                let tally = tallies.entry(event.host.clone()).or_default();
                tally.time(event.at_ms);
                if let Some(row) = row {
                    tally.link(&row);
                }
                each(&event);
            }
        }
        Ok(tallies
            .into_iter()
            .map(|(host, tally)| tally.summary(host))
            .collect())
    }
}

/// The source for a list of paths: a database when the one path is one, else exports.
pub fn open(paths: &[PathBuf]) -> Box<dyn AuditSource> {
    match paths {
        [one] if is_database(one) => Box::new(Database(one.clone())),
        _ => Box::new(Exports(paths.to_vec())),
    }
}

fn is_database(path: &Path) -> bool {
    let mut magic = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| &magic == b"SQLite format 3\0")
}
