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
    /// Where a mistake was already reported: whatever else is said about a value there is a
    /// cascade of that mistake, not a second one.
    muted: Vec<Range<usize>>,
}

impl<'a> Reporter<'a> {
    pub(super) fn new(file: &'a Path, text: &'a str, out: &'a mut Vec<Diagnostic>) -> Self {
        Self {
            file,
            text,
            out,
            muted: Vec::new(),
        }
    }

    /// Says nothing more about `span` (its mistake was reported).
    pub(super) fn mute(&mut self, span: Range<usize>) {
        self.muted.push(span);
    }

    /// The ranges muted so far, to carry from the shape pass to the meaning pass.
    pub(super) fn muted(&self) -> Vec<Range<usize>> {
        self.muted.clone()
    }

    pub(super) fn mute_all(&mut self, spans: Vec<Range<usize>>) {
        self.muted.extend(spans);
    }

    pub(super) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        if self.muted.iter().any(|m| m.contains(&span.start)) {
            return;
        }
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

/// The candidate closest to `word` when it is close enough to be a likely typo ("did you
/// mean"): at most a third of the word's letters differ.
pub(super) fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Warnings of one file, by span, turned into diagnostics once the file is done.
pub(super) type Warnings = Vec<(Range<usize>, String)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_words_are_suggested_and_far_ones_are_not() {
        let keys = ["max_duration", "default_duration", "users", "groups"];
        assert_eq!(did_you_mean("max_duraton", &keys), Some("max_duration"));
        assert_eq!(did_you_mean("user", &keys), Some("users"));
        assert_eq!(did_you_mean("colour", &keys), None);
    }
}
