//! The typed values of audit fields that are more than text: what a field renders as, and
//! polkit's answer (whose level a record's level follows).

#![forbid(unsafe_code)]

use std::fmt::{self, Display};

use crate::audit::Level;

/// One field's value as the renderers see it: the key=value line writes each as text, JSON
/// keeps numbers, booleans and pid lists typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Bool(bool),
    /// Process ids; a comma-joined list on the line, an array in JSON.
    Pids(Vec<u32>),
}

impl Display for FieldValue {
    /// The value's text on the key=value line, before escaping.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Unsigned(n) => write!(f, "{n}"),
            Self::Signed(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Pids(pids) => {
                for (i, pid) in pids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{pid}")?;
                }
                Ok(())
            }
        }
    }
}

/// What polkit answered when a caller asked to act as an admin. Typed because the record's
/// level follows from it: a yes is worth an auditor's look, a failure to ask is a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolkitAnswer {
    Yes,
    No,
    /// polkit could not be asked; the text says why.
    Error(String),
}

impl PolkitAnswer {
    pub fn level(&self) -> Level {
        match self {
            Self::Yes => Level::Notice,
            Self::No => Level::Info,
            Self::Error(_) => Level::Warning,
        }
    }

    /// Reads the text written by [`Display`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "yes" => Some(Self::Yes),
            "no" => Some(Self::No),
            _ => s
                .strip_prefix("error: ")
                .map(|e| Self::Error(e.to_string())),
        }
    }
}

impl Display for PolkitAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Yes => f.write_str("yes"),
            Self::No => f.write_str("no"),
            Self::Error(e) => write!(f, "error: {e}"),
        }
    }
}

impl From<&Result<bool, String>> for PolkitAnswer {
    fn from(answer: &Result<bool, String>) -> Self {
        match answer {
            Ok(true) => Self::Yes,
            Ok(false) => Self::No,
            Err(e) => Self::Error(e.clone()),
        }
    }
}
