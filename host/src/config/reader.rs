//! Walking a spanned TOML document with errors that point at the text.
//!
//! `toml`'s serde derive would name a key but not always where it is, and its
//! messages cannot say how to fix the problem. So the config is parsed into
//! toml's spanned document tree ([`DeTable`]) and read by hand through a
//! [`Table`]: every value keeps its byte span, every error carries the
//! dotted key path and the line:column it happened at, unknown keys are
//! refused with the closest known key suggested.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigError;

/// The document being read: its text (for line:column) and its file name
/// (for messages).
pub(crate) struct Doc<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Doc<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// An error at `span`, about the key `key`.
    pub fn error(&self, key: &str, span: &Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.line_col(span.start);
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            key: key.into(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// A value with its span and its dotted key path.
#[derive(Clone, Copy)]
pub(crate) struct Val<'a, 'i> {
    pub doc: &'a Doc<'a>,
    pub path: &'a str,
    pub value: &'a Spanned<DeValue<'i>>,
}

/// What a TOML value is, in words, for "expected X, found Y".
pub(crate) fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'a, 'i> Val<'a, 'i> {
    pub fn span(&self) -> Range<usize> {
        self.value.span()
    }

    pub fn get(&self) -> &'a DeValue<'i> {
        self.value.get_ref()
    }

    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        self.doc.error(self.path, &self.span(), message)
    }

    /// "expected …, found …" plus how to write it.
    pub fn wrong_type(&self, expected: &str, example: &str) -> ConfigError {
        self.error(format!(
            "expected {expected}, found {}; write e.g. `{} = {example}`",
            kind(self.get()),
            last_key(self.path),
        ))
    }

    pub fn str(&self, example: &str) -> Result<&'a str, ConfigError> {
        match self.get() {
            DeValue::String(s) => Ok(s.as_ref()),
            _ => Err(self.wrong_type("a string", example)),
        }
    }

    pub fn bool(&self) -> Result<bool, ConfigError> {
        match self.get() {
            DeValue::Boolean(b) => Ok(*b),
            _ => Err(self.wrong_type("a boolean", "true")),
        }
    }

    pub fn int(&self, example: &str) -> Result<i64, ConfigError> {
        match self.get() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| self.error("this integer is too large")),
            _ => Err(self.wrong_type("an integer", example)),
        }
    }

    /// A float; an integer is accepted too (`1` for `1.0`).
    pub fn float(&self, example: &str) -> Result<f64, ConfigError> {
        match self.get() {
            DeValue::Float(f) => f
                .as_str()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| self.error("expected a finite number")),
            DeValue::Integer(_) => Ok(self.int(example)? as f64),
            _ => Err(self.wrong_type("a number", example)),
        }
    }

    /// The items of an array, each with its path `key[i]`.
    pub fn array(
        &self,
        example: &str,
    ) -> Result<Vec<(String, &'a Spanned<DeValue<'i>>)>, ConfigError> {
        match self.get() {
            DeValue::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{}[{i}]", self.path), v))
                .collect()),
            _ => Err(self.wrong_type("an array", example)),
        }
    }

    /// An array of strings, each with its span.
    pub fn str_list(&self, example: &str) -> Result<Vec<(String, Range<usize>)>, ConfigError> {
        let items = self.array(example)?;
        let mut out = Vec::with_capacity(items.len());
        for (path, v) in &items {
            let item = Val {
                doc: self.doc,
                path,
                value: v,
            };
            match item.get() {
                DeValue::String(s) => out.push((s.to_string(), item.span())),
                other => {
                    return Err(item.error(format!(
                        "expected a string, found {}; write e.g. `{} = {example}`",
                        kind(other),
                        last_key(self.path)
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Reads this value as a table whose keys must be among `known`.
    pub fn table(
        &self,
        known: &'static [&'static str],
        example: &str,
    ) -> Result<Table<'a, 'i>, ConfigError> {
        match self.get() {
            DeValue::Table(t) => Table::new(self.doc, self.path, t, self.span(), known),
            _ => Err(self.wrong_type("a table", example)),
        }
    }
}

/// A TOML table being read: known keys are looked up, unknown keys refused.
pub(crate) struct Table<'a, 'i> {
    pub doc: &'a Doc<'a>,
    pub path: &'a str,
    pub span: Range<usize>,
    pub entries: Vec<(String, Range<usize>, &'a Spanned<DeValue<'i>>)>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// `known` empty means "any key" (settings, value maps, named sections).
    pub fn new(
        doc: &'a Doc<'a>,
        path: &'a str,
        table: &'a DeTable<'i>,
        span: Range<usize>,
        known: &'static [&'static str],
    ) -> Result<Table<'a, 'i>, ConfigError> {
        let entries: Vec<_> = table
            .iter()
            .map(|(k, v)| (k.get_ref().to_string(), k.span(), v))
            .collect();
        if !known.is_empty() {
            for (k, span, _) in &entries {
                if !known.contains(&k.as_str()) {
                    let full = join(path, k);
                    let hint = match closest(k, known.iter().copied()) {
                        Some(c) => format!("did you mean `{c}`? "),
                        None => String::new(),
                    };
                    return Err(doc.error(
                        &full,
                        span,
                        format!(
                            "unknown key `{k}`; {hint}known keys here: {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(Table {
            doc,
            path,
            span,
            entries,
        })
    }

    /// The value at `key`, if present. `path` must outlive the returned
    /// value; callers build it with [`join`].
    pub fn get<'p>(&self, key: &str, path: &'p str) -> Option<Val<'p, 'i>>
    where
        'a: 'p,
    {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, value)| Val {
                doc: self.doc,
                path,
                value,
            })
    }

    /// The error for a missing required key.
    pub fn missing(&self, key: &str, example: &str) -> ConfigError {
        let where_ = if self.path.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in `[{}]`", self.path)
        };
        self.doc.error(
            &join(self.path, key),
            &self.span,
            format!("missing key `{key}` {where_}; add e.g. `{key} = {example}`"),
        )
    }
}

/// `a.b` + `c` → `a.b.c`; keys that are not bare are quoted.
pub(crate) fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

fn last_key(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a plausible typo (at most a third of the word, at least 1).
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_and_suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            closest("timezon", ["name", "timezone", "state"]),
            Some("timezone")
        );
        assert_eq!(closest("zzzzzz", ["name", "timezone", "state"]), None);
    }

    #[test]
    fn line_and_column_are_one_based_in_characters() {
        let doc = Doc {
            file: Path::new("x.toml"),
            text: "a = 1\nné = 2\n",
        };
        assert_eq!(doc.line_col(0), (1, 1));
        assert_eq!(doc.line_col(6), (2, 1));
        // after "né " (é is two bytes)
        assert_eq!(doc.line_col(10), (2, 4));
    }

    #[test]
    fn keys_are_joined_and_quoted_when_needed() {
        assert_eq!(join("", "tenant"), "tenant");
        assert_eq!(join("flows", "a-b"), "flows.a-b");
        assert_eq!(join("flows", "a b"), "flows.\"a b\"");
    }
}
