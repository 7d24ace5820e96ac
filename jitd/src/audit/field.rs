//! The types an audit event's fields may have: how each is written, and how each is read back
//! from a line's text or a JSON value. Reading is strict (numbers in canonical decimal, closed
//! sets by their exact names) so a record that reads back writes out as the same text.

#![forbid(unsafe_code)]

use std::fmt::Display;

use serde_json::Value;

use super::event::{FieldValue, PolkitAnswer};
use crate::names::GrantId;
use crate::terms::{ApprovalMode, GrantKind, Via};

/// Hostile input is echoed in messages only in part.
pub(super) fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A type an event field may have: how it is written, and how it is read from either form.
pub(super) trait Field: Sized {
    fn to_value(&self) -> FieldValue;
    /// From the unescaped text of a line's value.
    fn from_text(s: &str) -> Result<Self, String>;
    fn from_json(v: &Value) -> Result<Self, String>;
}

pub(super) fn expected(what: &str, v: &Value) -> String {
    let found = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("expected {what}, found {found}")
}

fn one_of<T: Display>(s: &str, all: &[T]) -> String {
    let names: Vec<String> = all.iter().map(ToString::to_string).collect();
    format!("{:?} is not one of {}", shorten(s), names.join(", "))
}

/// Fields written as JSON strings, read by `$parse` from their text.
macro_rules! text_field {
    ($ty:ty, |$s:ident| $parse:expr) => {
        impl Field for $ty {
            fn to_value(&self) -> FieldValue {
                FieldValue::Text(self.to_string())
            }

            fn from_text($s: &str) -> Result<Self, String> {
                $parse
            }

            fn from_json(v: &Value) -> Result<Self, String> {
                v.as_str()
                    .ok_or_else(|| expected("a string", v))
                    .and_then(Self::from_text)
            }
        }
    };
}

text_field!(String, |s| Ok(s.to_string()));
text_field!(GrantId, |s| GrantId::parse(s).map_err(|e| e.to_string()));
text_field!(Via, |s| Via::parse(s).ok_or_else(|| one_of(s, Via::ALL)));
text_field!(GrantKind, |s| GrantKind::parse(s)
    .ok_or_else(|| one_of(s, GrantKind::ALL)));
text_field!(ApprovalMode, |s| ApprovalMode::parse(s)
    .ok_or_else(|| one_of(s, ApprovalMode::ALL)));
text_field!(PolkitAnswer, |s| PolkitAnswer::parse(s)
    .ok_or_else(|| one_of(s, &["yes", "no", "error: ..."])));

/// Reads a number only as jitd writes it (no sign, no leading zero), so that reading a line
/// and writing it again gives the same text.
fn unsigned(s: &str) -> Result<u64, String> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(format!("{:?} is not a whole number", shorten(s)));
    }
    s.parse().map_err(|_| format!("{s} is out of range"))
}

impl Field for u64 {
    fn to_value(&self) -> FieldValue {
        FieldValue::Unsigned(*self)
    }

    fn from_text(s: &str) -> Result<Self, String> {
        unsigned(s)
    }

    fn from_json(v: &Value) -> Result<Self, String> {
        v.as_u64()
            .ok_or_else(|| expected("a whole number up to 2^64-1", v))
    }
}

impl Field for u32 {
    fn to_value(&self) -> FieldValue {
        FieldValue::Unsigned(u64::from(*self))
    }

    fn from_text(s: &str) -> Result<Self, String> {
        Self::try_from(unsigned(s)?).map_err(|_| format!("{s} is out of range"))
    }

    fn from_json(v: &Value) -> Result<Self, String> {
        v.as_u64()
            .and_then(|n| Self::try_from(n).ok())
            .ok_or_else(|| expected("a whole number up to 2^32-1", v))
    }
}

impl Field for i64 {
    fn to_value(&self) -> FieldValue {
        FieldValue::Signed(*self)
    }

    fn from_text(s: &str) -> Result<Self, String> {
        let magnitude = s.strip_prefix('-').unwrap_or(s);
        unsigned(magnitude)?;
        if s == "-0" {
            return Err("\"-0\" is not how 0 is written".into());
        }
        s.parse().map_err(|_| format!("{s} is out of range"))
    }

    fn from_json(v: &Value) -> Result<Self, String> {
        v.as_i64().ok_or_else(|| expected("a 64-bit integer", v))
    }
}

impl Field for bool {
    fn to_value(&self) -> FieldValue {
        FieldValue::Bool(*self)
    }

    fn from_text(s: &str) -> Result<Self, String> {
        match s {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{:?} is neither true nor false", shorten(s))),
        }
    }

    fn from_json(v: &Value) -> Result<Self, String> {
        v.as_bool().ok_or_else(|| expected("true or false", v))
    }
}

impl Field for Vec<u32> {
    fn to_value(&self) -> FieldValue {
        FieldValue::Pids(self.clone())
    }

    /// `""` is the empty list; otherwise pids joined by commas.
    fn from_text(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(Vec::new());
        }
        s.split(',').map(u32::from_text).collect()
    }

    fn from_json(v: &Value) -> Result<Self, String> {
        v.as_array()
            .ok_or_else(|| expected("an array of pids", v))?
            .iter()
            .map(u32::from_json)
            .collect()
    }
}
