//! The shape of a policy file, before its meaning: TOML syntax, which tables exist, which keys
//! each table knows and what type each value has. Every mistake of that kind is reported in
//! plain words at its position, and the file goes on being read, so one run names them all:
//! a syntax error does not stop the file, an unknown key is dropped (with "did you mean" when a
//! known key is close), a value of the wrong type is replaced by a neutral one whose own
//! complaints are muted (so `max_duration = 3600` gives one error, not a second "missing" or
//! "empty" one).
//!
//! The keys a table knows are read from its `Raw*` struct's serde definition: a field added
//! there is known here without a second list to keep in step.

use std::ops::Range;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostics::{Reporter, did_you_mean};
use super::privilege::RawPrivilege;
use super::rule::RawRule;

/// The tables a policy file holds at its top level.
const TOP_LEVEL: &[&str] = &["privilege", "rule", "same_person"];

/// A file's tables, each already of the right shape (or `None` when it could not be read at
/// all, with why already reported).
pub(super) struct ParsedFile {
    pub(super) privileges: Vec<(Spanned<String>, Option<Spanned<RawPrivilege>>)>,
    pub(super) rules: Vec<Spanned<RawRule>>,
    /// Accounts of one person: none approves another's request.
    pub(super) same_person: Option<super::approval::RawSamePerson>,
}

/// Reads `r.text`, reporting every syntax and shape mistake through `r`.
pub(super) fn parse_file(r: &mut Reporter<'_>) -> ParsedFile {
    let text = r.text;
    let (doc, syntax) = DeTable::parse_recoverable(text);
    for e in syntax {
        let span = e.span().unwrap_or(0..0);
        let message = syntax_message(e.message(), text.get(span.clone()).unwrap_or(""));
        r.at(span, message);
    }
    let mut out = ParsedFile {
        privileges: Vec::new(),
        rules: Vec::new(),
        same_person: None,
    };
    for (key, value) in doc.into_inner() {
        let span = value.span();
        match key.get_ref().as_ref() {
            "privilege" => match value.into_inner() {
                DeValue::Table(table) => {
                    for (name, body) in table {
                        let name = Spanned::new(name.span(), name.get_ref().to_string());
                        let what = format!("privilege {}", name.get_ref());
                        let body = table_of::<RawPrivilege>(r, &what, name.span(), body);
                        out.privileges.push((name, body));
                    }
                }
                _ => r.at(
                    span,
                    "privilege is a table of privileges: write [privilege.NAME]",
                ),
            },
            "same_person" => {
                let at = value.span();
                match super::approval::RawSamePerson::deserialize(value.into_deserializer()) {
                    Ok(sets) => out.same_person = Some(sets),
                    Err(_) => r.at(
                        at,
                        "same_person is a list of sets of account names: \
                         same_person = [[\"alice\", \"alice-adm\"]]",
                    ),
                }
            }
            "rule" => match value.into_inner() {
                DeValue::Array(items) => {
                    for (i, item) in items.into_iter().enumerate() {
                        let what = format!("rule {}", rule_label(&item, i));
                        let at = item.span();
                        if let Some(rule) = table_of::<RawRule>(r, &what, at, item) {
                            out.rules.push(rule);
                        }
                    }
                }
                _ => r.at(span, "rules are written [[rule]], one per rule"),
            },
            other => {
                let hint = match did_you_mean(other, TOP_LEVEL) {
                    Some(s) => format!("; did you mean [{s}...]?"),
                    None => "; a policy file holds [privilege.NAME] and [[rule]] tables".into(),
                };
                r.at(key.span(), format!("unknown table or key `{other}`{hint}"));
            }
        }
    }
    out
}

/// "rule \"on-call\"" when the rule has a readable name, else "rule number N".
fn rule_label(item: &Spanned<DeValue<'_>>, index: usize) -> String {
    if let DeValue::Table(t) = item.get_ref()
        && let Some(name) = t.get("name")
        && let DeValue::String(s) = name.get_ref()
    {
        return format!("\"{s}\"");
    }
    format!("number {}", index + 1)
}

/// One table read as `T`: unknown keys reported and dropped, values of the wrong type reported
/// and replaced, a missing required key reported at `header`.
fn table_of<'i, T: Deserialize<'i>>(
    r: &mut Reporter<'_>,
    what: &str,
    header: Range<usize>,
    mut value: Spanned<DeValue<'i>>,
) -> Option<Spanned<T>> {
    let fields = fields_of::<T>();
    let DeValue::Table(table) = value.get_mut() else {
        r.at(value.span(), format!("{what} must be a table"));
        return None;
    };
    let unknown: Vec<Spanned<std::borrow::Cow<'i, str>>> = table
        .keys()
        .filter(|k| !fields.contains(&k.get_ref().as_ref()))
        .cloned()
        .collect();
    for key in unknown {
        let hint = match did_you_mean(key.get_ref(), fields) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; {what} may have: {}", fields.join(", ")),
        };
        r.at(
            key.span(),
            format!("unknown key `{}` in {what}{hint}", key.get_ref()),
        );
        table.remove(&key);
    }
    // Each round fixes the one value serde names, so the loop ends within one round per key.
    for _ in 0..=fields.len() {
        let e = match Spanned::<T>::deserialize(value.clone().into_deserializer()) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let message = e.message().trim().to_string();
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            r.at(header, format!("{what} needs {field}{}", example(field)));
            return None;
        }
        let DeValue::Table(table) = value.get_mut() else {
            return None;
        };
        let at = e.span().unwrap_or_else(|| header.clone());
        let culprit = table
            .iter()
            .find(|(k, v)| v.span().contains(&at.start) || k.span() == at)
            .map(|(k, v)| (k.clone(), v.span()));
        let Some((key, value_span)) = culprit else {
            r.at(at, plain(&message, None));
            return None;
        };
        r.at(
            at,
            plain(&message, Some((key.get_ref(), &value_span, r.text))),
        );
        // The neutral value stands in so the rest of the table is still checked; whatever
        // is said about it later is about this mistake again, and is not said.
        r.mute(value_span.clone());
        match neutral(&message) {
            Some(v) => {
                table.insert(key, Spanned::new(value_span, v));
            }
            None => {
                table.remove(&key);
            }
        }
    }
    None
}

/// A value of the type serde expected, empty, for a value that was of the wrong type.
fn neutral(message: &str) -> Option<DeValue<'static>> {
    let expected = message.split(", expected ").nth(1)?;
    Some(if expected.contains("string") {
        DeValue::String("".into())
    } else if expected.contains("sequence") {
        DeValue::Array(toml::de::DeArray::new())
    } else if expected.contains("bool") {
        DeValue::Boolean(false)
    } else if expected.contains("integer") || expected.contains("i64") {
        DeValue::parse("0").ok()?.into_inner()
    } else {
        return None;
    })
}

/// An example of a required key, said after "needs KEY".
fn example(field: &str) -> &'static str {
    match field {
        "kind" => " = \"sudo\", \"group\" or \"gate\"",
        "name" => " = \"a name for the rule\"",
        "privileges" => " = [\"privilege-name\", ...]",
        "max_duration" => " = \"1h\" (the longest a grant may last)",
        _ => "",
    }
}

/// The TOML parser's words for a syntax mistake, said plainly.
fn syntax_message(message: &str, found: &str) -> String {
    let message = message.trim();
    if message.starts_with("duplicate key") {
        return format!("`{found}` is set twice; keep one");
    }
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// serde's words for a wrong value ("invalid type: integer `3600`, expected a string"), said
/// plainly, naming the key and, for a duration, what to write instead.
fn plain(message: &str, key: Option<(&str, &Range<usize>, &str)>) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_string();
    };
    let (found, expected) = rest
        .split_once(", expected ")
        .unwrap_or((rest, "another type"));
    let wanted = if expected.contains("string") {
        "text in quotes"
    } else if expected.contains("sequence") {
        "a list in [ ]"
    } else if expected.contains("bool") {
        "true or false (without quotes)"
    } else if expected.contains("integer") || expected.contains("i64") {
        "a whole number (without quotes)"
    } else {
        expected
    };
    let found = found.replace('`', "");
    let Some((key, span, text)) = key else {
        return format!("expected {wanted}, found {found}");
    };
    let written = text.get(span.clone()).unwrap_or("").trim();
    let duration_key = key.ends_with("duration") || key.ends_with("_ttl");
    if duration_key && let Ok(secs) = written.parse::<u64>() {
        return format!(
            "{key} is a duration in quotes with a unit: write {key} = \"{}\"",
            crate::duration::format(secs.max(1))
        );
    }
    if expected.contains("sequence") && written.starts_with('"') {
        return format!("{key} is a list: write {key} = [{written}]");
    }
    format!("{key} must be {wanted}, not {found}")
}

/// The field names a `Deserialize` struct accepts, read from its derived code: a deserializer
/// that only records what `deserialize_struct` is told.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut probe = Probe(&[]);
    let _ = T::deserialize(&mut probe);
    probe.0
}

struct Probe(&'static [&'static str]);

impl<'de> serde::Deserializer<'de> for &mut Probe {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("probe"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(serde::de::Error::custom("probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_keys_come_from_the_structs() {
        let rule = fields_of::<RawRule>();
        assert!(rule.contains(&"max_duration") && rule.contains(&"users"));
        assert!(fields_of::<RawPrivilege>().contains(&"kind"));
    }

    #[test]
    fn wrong_types_are_said_plainly() {
        let text = "max_duration = 3600";
        assert_eq!(
            plain(
                "invalid type: integer `3600`, expected a string",
                Some(("max_duration", &(15..19), text))
            ),
            "max_duration is a duration in quotes with a unit: write max_duration = \"1h\""
        );
        let text = "commands = \"/usr/bin/id\"";
        assert_eq!(
            plain(
                "invalid type: string \"/usr/bin/id\", expected a sequence",
                Some(("commands", &(11..24), text))
            ),
            "commands is a list: write commands = [\"/usr/bin/id\"]"
        );
        assert_eq!(
            syntax_message("duplicate key", "kind"),
            "`kind` is set twice; keep one"
        );
    }
}
