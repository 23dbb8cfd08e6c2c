//! Create defaults given by name: matching a configured name against one of Lucca's lists
//! (establishments, departments, roles), as a pure function (unit-tested natively).
//!
//! A name matches an item whose `name` (or `code`, for the organisation lists) equals it,
//! trimmed and case-insensitively. No match, or several, is an `invalid` error naming the
//! setting and the value; a missing name lists the closest names Lucca has, so a typo is
//! fixed at once.

use muster_sdk::ConnectorError;
use muster_sdk::serde_json::Value;

/// Which list a default is resolved against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    LegalEntity,
    Department,
    Role,
}

impl Kind {
    /// What the list holds, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::LegalEntity => "establishment (legal entity)",
            Kind::Department => "department",
            Kind::Role => "role",
        }
    }
}

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Levenshtein distance on characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Up to five names close to `wanted` (small edit distance, or one containing the other),
/// closest first; the first five names when none is close.
fn close_names(wanted: &str, names: &[&str]) -> Vec<String> {
    let w = norm(wanted);
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .map(|n| {
            let d = distance(&w, &norm(n));
            let near =
                d <= (w.chars().count() / 3).max(2) || norm(n).contains(&w) || w.contains(&norm(n));
            (if near { d } else { usize::MAX }, *n)
        })
        .filter(|(d, _)| *d != usize::MAX)
        .collect();
    scored.sort();
    let mut out: Vec<String> = scored
        .iter()
        .take(5)
        .map(|(_, n)| (*n).to_string())
        .collect();
    if out.is_empty() {
        out = names.iter().take(5).map(|n| (*n).to_string()).collect();
    }
    out
}

/// The id of the one item of `items` named (or coded) `wanted`.
pub fn match_name(
    setting: &str,
    kind: Kind,
    wanted: &str,
    items: &[Value],
) -> Result<u64, ConnectorError> {
    let w = norm(wanted);
    let field = |item: &Value, key: &str| item.get(key).and_then(Value::as_str).map(norm);
    let found: Vec<u64> = items
        .iter()
        .filter(|i| {
            field(i, "name").as_deref() == Some(&w) || field(i, "code").as_deref() == Some(&w)
        })
        .filter_map(|i| i.get("id")?.as_u64())
        .collect();
    match found.as_slice() {
        [id] => Ok(*id),
        [] => {
            let names: Vec<&str> = items
                .iter()
                .filter_map(|i| i.get("name")?.as_str())
                .collect();
            let close = close_names(wanted, &names);
            Err(ConnectorError::Invalid(format!(
                "setting `{setting}`: `{wanted}` matches no Lucca {}; {}",
                kind.noun(),
                if close.is_empty() {
                    "Lucca lists none".to_string()
                } else {
                    format!("did you mean {}?", close.join(", "))
                }
            )))
        }
        many => Err(ConnectorError::Invalid(format!(
            "setting `{setting}`: `{wanted}` matches {} Lucca {}s (ids {}): give the id instead",
            many.len(),
            kind.noun(),
            many.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_sdk::serde_json::json;

    fn items() -> Vec<Value> {
        vec![
            json!({"id": 1, "name": "Sales", "code": "SAL"}),
            json!({"id": 2, "name": "Support"}),
            json!({"id": 3, "name": "Engineering"}),
            json!({"id": 4, "name": "Twin"}),
            json!({"id": 5, "name": "twin "}),
        ]
    }

    fn message(r: Result<u64, ConnectorError>) -> String {
        match r {
            Err(ConnectorError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_and_codes_match_case_insensitively() {
        let i = items();
        assert_eq!(match_name("s", Kind::Department, " sales ", &i).unwrap(), 1);
        assert_eq!(match_name("s", Kind::Department, "sal", &i).unwrap(), 1);
        assert_eq!(
            match_name("s", Kind::Department, "ENGINEERING", &i).unwrap(),
            3
        );
    }

    #[test]
    fn a_missing_name_names_the_setting_and_close_names() {
        let m = message(match_name(
            "default_department",
            Kind::Department,
            "Salse",
            &items(),
        ));
        assert!(
            m.starts_with("setting `default_department`: `Salse` matches no Lucca department;"),
            "{m}"
        );
        assert!(m.contains("did you mean Sales"), "{m}");
        assert!(!m.contains("Engineering"), "{m}");
        let m = message(match_name("default_role", Kind::Role, "x", &[]));
        assert!(m.contains("Lucca lists none"), "{m}");
    }

    #[test]
    fn two_matches_are_an_error_listing_their_ids() {
        let m = message(match_name(
            "default_department",
            Kind::Department,
            "Twin",
            &items(),
        ));
        assert!(m.contains("matches 2 Lucca departments (ids 4, 5)"), "{m}");
    }
}
