//! Diagnostics while loading: where a problem is (file, line, column) and what it is.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::policy::Diagnostic;
use crate::position::line_col;

/// Collects diagnostics for one file.
pub(super) struct Reporter<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    pub(super) out: &'a mut Vec<Diagnostic>,
}

impl Reporter<'_> {
    pub(super) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.out.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
        });
    }

    /// The choice an optional string field names, from `choices` (the first is the default).
    /// Anything else is reported at the value with `refusal(value)` and the default stands,
    /// so loading goes on to find the file's other errors.
    pub(super) fn one_of<T: Copy>(
        &mut self,
        field: Option<&Spanned<String>>,
        choices: &[(&str, T)],
        refusal: impl FnOnce(&str) -> String,
    ) -> T {
        let default = choices[0].1;
        let Some(field) = field else {
            return default;
        };
        let value = field.get_ref().as_str();
        match choices.iter().find(|(name, _)| *name == value) {
            Some((_, choice)) => *choice,
            None => {
                self.at(field.span(), refusal(value));
                default
            }
        }
    }
}

pub(super) fn whole_file(path: &Path, message: &str) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        message: message.to_string(),
    }
}

pub(super) fn at(file: &Path, text: &str, span: Range<usize>, message: String) -> Diagnostic {
    let (line, column) = line_col(text, span.start);
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column,
        message,
    }
}

/// Warnings of one file, by span, turned into diagnostics once the file is done.
pub(super) type Warnings = Vec<(Range<usize>, String)>;
