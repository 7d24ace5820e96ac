//! Audit export for a SIEM or an auditor, and the check of an export file.
//!
//! Each record is exported whole: host, seq, time (RFC 3339 UTC), kind, the typed fields, and
//! what the chain seals (the line, `at_ms`, `prev_hash`, `hash`, `format`), so the file can be
//! verified without the database: `jitctl audit verify --file` re-computes every hash and
//! link, and checks that the readable columns (time, kind, fields) say what the sealed line
//! says. Two formats:
//! - JSON lines: one object per record.
//! - CSV (RFC 4180) with a header. No cell jitd writes starts with `=`, `+`, `-`, `@`, tab or
//!   carriage return (the line starts with `event=`, the fields are a JSON object); any cell
//!   that would is written with a leading `'`, so a spreadsheet never runs it as a formula.

#![forbid(unsafe_code)]

use serde_json::{Map, Value};

use super::chain::{ChainReport, ChainRow, Verifier};
use super::event::AuditEvent;

/// The CSV header, in column order.
pub const CSV_HEADER: &[&str] = &[
    "host",
    "seq",
    "time",
    "at_ms",
    "kind",
    "uid",
    "privilege",
    "grant",
    "fields",
    "line",
    "prev_hash",
    "hash",
    "format",
];

/// `2026-11-29T02:34:00.123Z`.
pub use crate::clock::rfc3339_ms as rfc3339;

/// The record's kind and typed fields, read from its sealed line. A line this build cannot
/// read (a kind from a newer jitd) keeps its kind and an empty field set.
pub fn kind_and_fields(line: &str) -> (String, Map<String, Value>) {
    let parsed = AuditEvent::from_line(line)
        .ok()
        .and_then(|e| serde_json::from_str::<Map<String, Value>>(&e.to_json()).ok());
    match parsed {
        Some(mut fields) => {
            let kind = match fields.remove("event") {
                Some(Value::String(k)) => k,
                _ => String::new(),
            };
            (kind, fields)
        }
        None => {
            let kind = line
                .strip_prefix("event=")
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or("")
                .to_string();
            (kind, Map::new())
        }
    }
}

/// One exported record as a JSON object.
pub fn to_json(row: &ChainRow) -> Value {
    let (kind, fields) = kind_and_fields(&row.line);
    serde_json::json!({
        "host": row.host,
        "seq": row.seq,
        "time": rfc3339(row.at_ms),
        "at_ms": row.at_ms,
        "kind": kind,
        "fields": fields,
        "line": row.line,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "format": row.format,
    })
}

/// One exported record as a JSON line (no newline).
pub fn to_json_line(row: &ChainRow) -> String {
    to_json(row).to_string()
}

/// One exported record as a CSV row (no newline), from its JSON form.
pub fn json_to_csv(record: &Value) -> String {
    let text = |k: &str| match record.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let fields = record.get("fields");
    let field = |k: &str| match fields.and_then(|f| f.get(k)) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let cells = [
        text("host"),
        text("seq"),
        text("time"),
        text("at_ms"),
        text("kind"),
        field("uid"),
        field("privilege"),
        field("grant"),
        fields.map(Value::to_string).unwrap_or_default(),
        text("line"),
        text("prev_hash"),
        text("hash"),
        text("format"),
    ];
    cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",")
}

/// A cell a spreadsheet shows as text: formula starters defused, quoted when needed.
pub fn csv_cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// Splits CSV text into rows of cells (RFC 4180: quoted cells may hold commas, quotes and
/// newlines). A guarded cell's `'` is taken off again.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                line += usize::from(c == '\n');
                cell.push(c);
            }
            (false, '"') if cell.is_empty() => quoted = true,
            (false, '"') => return Err(format!("line {line}: a quote inside an unquoted cell")),
            (false, ',') => row.push(unguard(std::mem::take(&mut cell))),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(unguard(std::mem::take(&mut cell)));
                rows.push(std::mem::take(&mut row));
                line += 1;
            }
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err(format!("line {line}: a quoted cell is not closed"));
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(unguard(cell));
        rows.push(row);
    }
    Ok(rows)
}

fn unguard(cell: String) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_string(),
        _ => cell,
    }
}

/// An export file read back: its records as JSON objects, whichever format it is in.
pub fn read_export(text: &str) -> Result<Vec<Value>, String> {
    if text.starts_with("host,seq,") {
        let rows = parse_csv(text)?;
        let mut out = Vec::new();
        for (i, cells) in rows.iter().enumerate().skip(1) {
            if cells.len() != CSV_HEADER.len() {
                return Err(format!(
                    "row {}: {} cells, expected {}",
                    i + 1,
                    cells.len(),
                    CSV_HEADER.len()
                ));
            }
            let num = |j: usize| {
                cells[j]
                    .parse::<i64>()
                    .map_err(|_| format!("row {}: {} is not a number", i + 1, CSV_HEADER[j]))
            };
            let fields: Value = serde_json::from_str(&cells[8])
                .map_err(|e| format!("row {}: fields: {e}", i + 1))?;
            out.push(serde_json::json!({
                "host": cells[0], "seq": num(1)?, "time": cells[2], "at_ms": num(3)?,
                "kind": cells[4], "fields": fields, "line": cells[9], "prev_hash": cells[10],
                "hash": cells[11], "format": num(12)?,
            }));
        }
        return Ok(out);
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// What the check of an export file found.
#[derive(Debug, Clone)]
pub struct ExportCheck {
    pub chain: ChainReport,
    /// A record whose readable columns disagree with its sealed line: (seq, what).
    pub mismatch: Option<(i64, String)>,
    /// The first record does not start the chain: its link to the one before is not checked.
    pub starts_after: Option<i64>,
}

impl ExportCheck {
    pub fn is_intact(&self) -> bool {
        self.chain.is_intact() && self.mismatch.is_none()
    }
}

impl std::fmt::Display for ExportCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((seq, what)) = &self.mismatch {
            return write!(f, "export altered at seq {seq}: {what}");
        }
        write!(f, "{}", self.chain)?;
        if let (true, Some(before)) = (self.chain.is_intact(), self.starts_after) {
            write!(
                f,
                " (the export starts after seq {before}: the first record's link to it is \
                 taken as given)"
            )?;
        }
        Ok(())
    }
}

/// Checks every record of an export: each hash, each link, and that its time, kind and
/// fields are those its sealed line and time say.
pub fn verify_export(records: &[Value]) -> Result<ExportCheck, String> {
    let mut rows = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let s = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("record {}: no {k}", i + 1))
        };
        let n = |k: &str| {
            r.get(k)
                .and_then(Value::as_i64)
                .ok_or_else(|| format!("record {}: no {k}", i + 1))
        };
        let row = ChainRow {
            seq: n("seq")?,
            at_ms: n("at_ms")?,
            host: s("host")?,
            line: s("line")?,
            prev_hash: s("prev_hash")?,
            hash: s("hash")?,
            format: u32::try_from(n("format")?).map_err(|_| format!("record {}: format", i + 1))?,
        };
        let (kind, fields) = kind_and_fields(&row.line);
        let what = if s("time")? != rfc3339(row.at_ms) {
            Some("its time is not the sealed time")
        } else if s("kind")? != kind {
            Some("its kind is not the sealed line's")
        } else if r.get("fields") != Some(&Value::Object(fields)) {
            Some("its fields are not the sealed line's")
        } else {
            None
        };
        if let Some(what) = what {
            return Ok(ExportCheck {
                chain: ChainReport::default(),
                mismatch: Some((row.seq, what.to_string())),
                starts_after: None,
            });
        }
        rows.push(row);
    }
    let (mut verifier, starts_after) = match rows.first() {
        Some(first) if first.seq > 1 => (
            Verifier::resume(first.seq - 1, &first.prev_hash, first.format),
            Some(first.seq - 1),
        ),
        _ => (Verifier::new(), None),
    };
    for row in &rows {
        if !verifier.push(row) {
            break;
        }
    }
    Ok(ExportCheck {
        chain: verifier.report(),
        mismatch: None,
        starts_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainRow> {
        let mut prev = String::new();
        (1..=n)
            .map(|seq| {
                let line = format!(
                    "event=request.invalid uid=1001 via=bus privilege=\"=cmd|' /c calc'!A1\" why=n{seq}"
                );
                let row = ChainRow::seal(seq, seq * 1000, "host-a", &line, &prev);
                prev = row.hash.clone();
                row
            })
            .collect()
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_919_640_616), "2026-11-29T02:34:00.616Z");
    }

    #[test]
    fn jsonl_and_csv_round_trip_and_verify() {
        let rows = chain(5);
        let jsonl: String = rows.iter().map(|r| to_json_line(r) + "\n").collect();
        let back = read_export(&jsonl).unwrap();
        let check = verify_export(&back).unwrap();
        assert!(check.is_intact(), "{check}");
        assert_eq!(check.to_string(), "audit chain intact: 5 records, seq 1..5");

        let mut csv = CSV_HEADER.join(",") + "\n";
        for r in &back {
            csv.push_str(&json_to_csv(r));
            csv.push('\n');
        }
        // The hostile privilege has a column of its own: defused there.
        assert!(csv.contains(",'=cmd|' /c calc'!A1,"), "{csv}");
        assert!(!csv.contains(",=") && !csv.contains("\n="), "{csv}");
        let back_csv = read_export(&csv).unwrap();
        assert_eq!(back_csv, back);
        assert!(verify_export(&back_csv).unwrap().is_intact());
    }

    #[test]
    fn a_part_of_the_chain_verifies_and_says_where_it_starts() {
        let rows = chain(5);
        let part: Vec<Value> = rows[2..].iter().map(to_json).collect();
        let check = verify_export(&part).unwrap();
        assert!(check.is_intact());
        assert!(check.to_string().contains("starts after seq 2"), "{check}");
    }

    #[test]
    fn edits_deletions_and_lying_columns_are_named() {
        let rows = chain(5);
        let mut recs: Vec<Value> = rows.iter().map(to_json).collect();
        recs.remove(2);
        let check = verify_export(&recs).unwrap();
        assert_eq!(check.chain.broken.map(|b| b.seq), Some(4));

        let mut recs: Vec<Value> = rows.iter().map(to_json).collect();
        recs[1]["line"] = Value::String(rows[1].line.replace("n2", "n9"));
        recs[1]["fields"]["why"] = Value::String("n9".into());
        assert!(!verify_export(&recs).unwrap().is_intact());

        let mut recs: Vec<Value> = rows.iter().map(to_json).collect();
        recs[3]["fields"]["uid"] = Value::from(0);
        let check = verify_export(&recs).unwrap();
        assert_eq!(
            check.to_string(),
            "export altered at seq 4: its fields are not the sealed line's"
        );
    }

    #[test]
    fn formula_starters_are_defused_and_read_back() {
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("-x,y"), "\"'-x,y\"");
        assert_eq!(
            parse_csv("'=1+1,\"'-x,y\"\n").unwrap(),
            vec![vec!["=1+1".to_string(), "-x,y".to_string()]]
        );
    }
}
