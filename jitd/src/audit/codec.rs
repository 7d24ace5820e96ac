//! The two written forms of an [`AuditEvent`] and the parsers back from both.
//!
//! The key=value line is what syslog and the hash chain hold; it is written with the escaping
//! of [`Escaped`], so it is byte-identical to what `Event::line` wrote for the same values, and
//! its parser inverts that escaping exactly. The JSON form keeps numbers, booleans and pid
//! lists typed and is not cut. Both are pure ASCII: whatever a reason holds, a record stays
//! one line and cannot move a terminal's cursor or reorder the text around it.
//!
//! Parsing is strict: every field of the kind, once, with a value of its type (numbers in
//! canonical decimal, so a record reads back to the same text), and nothing else.

#![forbid(unsafe_code)]

use std::fmt::{self, Display, Write as _};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::event::{AuditEvent, FieldValue};
use super::field::{Field, expected, shorten};
use super::{Escaped, is_plain};

#[cfg(test)]
mod tests;

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the input where the problem is: always known for a key=value line; for
    /// JSON only when the text is not JSON at all.
    pub offset: Option<usize>,
    pub message: String,
}

impl Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(at) => write!(f, "at byte {at}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

fn error(offset: Option<usize>, message: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        message: message.into(),
    }
}

impl AuditEvent {
    /// The record as one escaped line: `event=grant.applied grant=g... reason="..."`.
    pub fn to_line(&self) -> String {
        let mut out = format!("event={}", self.kind());
        for (key, value) in self.fields() {
            let _ = write!(out, " {key}={}", Escaped(&value.to_string()));
        }
        out
    }

    /// The record as one JSON object, `event` first, then the fields in order.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        json_string(&mut out, "event");
        out.push(':');
        json_string(&mut out, self.kind());
        for (key, value) in self.fields() {
            out.push(',');
            json_string(&mut out, key);
            out.push(':');
            match value {
                FieldValue::Text(s) => json_string(&mut out, &s),
                FieldValue::Unsigned(n) => {
                    let _ = write!(out, "{n}");
                }
                FieldValue::Signed(n) => {
                    let _ = write!(out, "{n}");
                }
                FieldValue::Bool(b) => {
                    let _ = write!(out, "{b}");
                }
                FieldValue::Pids(pids) => {
                    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                    let _ = write!(out, "[{}]", list.join(","));
                }
            }
        }
        out.push('}');
        out
    }

    /// Reads a line written by [`AuditEvent::to_line`] (or by jitd before the typed events).
    /// A value that was cut reads back as the cut text, marker included.
    pub fn from_line(line: &str) -> Result<Self, ParseError> {
        Self::from_fields(&parse_line(line)?)
    }

    /// Reads an object written by [`AuditEvent::to_json`]; the order of its members is free.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        Self::from_fields(&parse_json(text)?)
    }
}

/// A JSON string with everything but printable ASCII as `\uXXXX`, for the reasons the line
/// escapes it: no raw control, escape or bidi character reaches a log or a terminal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

// ---- a parsed record, before its kind gives the fields types --------------------------------

/// A value as read: line values are text until the kind says what they are; JSON values come
/// with a type that must match.
enum Raw {
    Text(String),
    Json(Value),
}

struct Entry {
    key: String,
    value: Raw,
    /// Where the value starts (line only).
    at: Option<usize>,
}

/// A record read from either form: its kind and its fields, in input order.
pub(super) struct Record {
    kind: String,
    kind_at: Option<usize>,
    /// The input's length, where a missing field is reported (line only).
    end: Option<usize>,
    fields: Vec<Entry>,
}

impl Record {
    pub(super) fn kind(&self) -> &str {
        &self.kind
    }

    /// Builds an event from the fields with `build`, then checks none was left over.
    pub(super) fn read<T>(
        &self,
        build: impl FnOnce(&mut Fields<'_>) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        let mut fields = Fields {
            record: self,
            used: vec![false; self.fields.len()],
        };
        let event = build(&mut fields)?;
        if let Some(i) = fields.used.iter().position(|used| !used) {
            let entry = &self.fields[i];
            return Err(error(
                entry.at.map(|at| at - entry.key.len() - 1),
                format!("{} has no field {:?}", self.kind, entry.key),
            ));
        }
        Ok(event)
    }

    pub(super) fn unknown_kind(&self) -> ParseError {
        error(
            self.kind_at,
            format!("unknown event kind {:?}", shorten(&self.kind)),
        )
    }

    /// Adds a field; a key given twice is refused, since either value could be the forgery.
    fn push(&mut self, key: &str, value: Raw, at: Option<usize>) -> Result<(), ParseError> {
        if self.fields.iter().any(|e| e.key == key) {
            return Err(error(
                at.map(|at| at - key.len() - 1),
                format!("field {:?} given twice", shorten(key)),
            ));
        }
        self.fields.push(Entry {
            key: key.to_string(),
            value,
            at,
        });
        Ok(())
    }
}

/// The fields of a record being read into one variant: each is taken once by name.
pub(super) struct Fields<'a> {
    record: &'a Record,
    used: Vec<bool>,
}

impl Fields<'_> {
    pub(super) fn take<T: Field>(&mut self, key: &'static str) -> Result<T, ParseError> {
        let record = self.record;
        let Some(i) = record.fields.iter().position(|e| e.key == key) else {
            return Err(error(
                record.end,
                format!("{} needs a field {key:?}", record.kind),
            ));
        };
        self.used[i] = true;
        let entry = &record.fields[i];
        match &entry.value {
            Raw::Text(s) => T::from_text(s),
            Raw::Json(v) => T::from_json(v),
        }
        .map_err(|why| error(entry.at, format!("field {key:?}: {why}")))
    }
}

// ---- the key=value line ---------------------------------------------------------------------

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consumes the longest run of characters that `ok` accepts.
    fn run(&mut self, ok: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&ok) {
            self.bump();
        }
        &self.s[start..self.pos]
    }

    /// A bare word or a quoted string, unescaped.
    fn value(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        if self.peek() != Some('"') {
            let bare = self.run(is_plain);
            if bare.is_empty() {
                return Err(error(
                    Some(open),
                    "expected a value: a word or a quoted string",
                ));
            }
            return Ok(bare.to_string());
        }
        self.bump();
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(error(Some(open), "quoted value is not closed")),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('u') => out.push(self.unicode_escape(at)?),
                    _ => {
                        return Err(error(
                            Some(at),
                            "unknown escape: only \\\", \\\\ and \\u{..} are written",
                        ));
                    }
                },
                Some(c @ ' '..='~') => out.push(c),
                Some(c) => {
                    return Err(error(
                        Some(at),
                        format!(
                            "raw {c:?} in a quoted value: it is written as \\u{{{:x}}}",
                            u32::from(c)
                        ),
                    ));
                }
            }
        }
    }

    /// The rest of `\u{..}` after the `u`; `at` is where the backslash was.
    fn unicode_escape(&mut self, at: usize) -> Result<char, ParseError> {
        let malformed = || error(Some(at), "malformed \\u{..} escape");
        if self.bump() != Some('{') {
            return Err(malformed());
        }
        let hex = self.run(|c| c.is_ascii_hexdigit());
        if hex.is_empty() || hex.len() > 6 || self.bump() != Some('}') {
            return Err(malformed());
        }
        u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| error(Some(at), format!("\\u{{{hex}}} is not a character")))
    }
}

/// Splits a line into its kind and fields, unescaping the values.
fn parse_line(line: &str) -> Result<Record, ParseError> {
    let mut cursor = Cursor { s: line, pos: 0 };
    if !line.starts_with("event=") {
        return Err(error(Some(0), "a record starts with \"event=\""));
    }
    cursor.pos = "event=".len();
    let kind_at = cursor.pos;
    let kind = cursor.run(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c));
    if kind.is_empty() {
        return Err(error(Some(kind_at), "expected the event kind"));
    }
    let mut record = Record {
        kind: kind.to_string(),
        kind_at: Some(kind_at),
        end: Some(line.len()),
        fields: Vec::new(),
    };
    while let Some(c) = cursor.peek() {
        if c != ' ' {
            return Err(error(
                Some(cursor.pos),
                format!("unexpected {c:?}: fields are separated by one space"),
            ));
        }
        cursor.bump();
        let key_at = cursor.pos;
        let key = cursor.run(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if key.is_empty() {
            return Err(error(Some(key_at), "expected a field name"));
        }
        if cursor.peek() != Some('=') {
            return Err(error(
                Some(cursor.pos),
                format!("expected '=' after {key:?}"),
            ));
        }
        cursor.bump();
        let at = cursor.pos;
        let value = cursor.value()?;
        record.push(key, Raw::Text(value), Some(at))?;
    }
    Ok(record)
}

// ---- JSON -----------------------------------------------------------------------------------

/// A JSON object's members in input order, duplicates kept (a plain map would keep only the
/// last of two `uid`s and hide the forgery).
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;

        impl<'de> Visitor<'de> for Object {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(Object)
    }
}

fn parse_json(text: &str) -> Result<Record, ParseError> {
    let Members(members) = serde_json::from_str(text).map_err(|e| {
        // serde_json counts lines and columns from 1; a record is normally one line.
        let offset = (e.line() > 0).then(|| {
            let before: usize = text
                .split('\n')
                .take(e.line() - 1)
                .map(|l| l.len() + 1)
                .sum();
            (before + e.column().saturating_sub(1)).min(text.len())
        });
        error(offset, format!("not a JSON record: {e}"))
    })?;
    let mut kind = None;
    let mut fields = Vec::new();
    for (key, value) in members {
        if key != "event" {
            fields.push((key, value));
        } else if kind.is_some() {
            return Err(error(None, "field \"event\" given twice"));
        } else {
            let Value::String(name) = value else {
                return Err(error(
                    None,
                    format!("event: {}", expected("a string", &value)),
                ));
            };
            kind = Some(name);
        }
    }
    let Some(kind) = kind else {
        return Err(error(None, "no \"event\" field"));
    };
    let mut record = Record {
        kind,
        kind_at: None,
        end: None,
        fields: Vec::new(),
    };
    for (key, value) in fields {
        record.push(&key, Raw::Json(value), None)?;
    }
    Ok(record)
}

/// A record's kind and its fields as text, in written order, without the check against the
/// table of kinds: for readers of exports written by a newer jitd, whose kinds this build does
/// not know (the reports). Escapes are undone and a value must still be well formed; JSON
/// numbers and booleans become their text, a pid array its comma-joined list.
pub fn loose_fields(line: &str) -> Result<(String, Vec<(String, String)>), ParseError> {
    let record = if line.starts_with('{') {
        parse_json(line)?
    } else {
        parse_line(line)?
    };
    let fields = record
        .fields
        .into_iter()
        .map(|entry| {
            let text = match entry.value {
                Raw::Text(s) => s,
                Raw::Json(Value::String(s)) => s,
                Raw::Json(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                Raw::Json(other) => other.to_string(),
            };
            (entry.key, text)
        })
        .collect();
    Ok((record.kind, fields))
}
