//! The source role (`feed = "statistics"`): the training-statistics feed as people carrying
//! one compound, multi-occurrence custom field with a row per training.
//!
//! - One person per `user_email` (compared case-insensitively). Its **id is the Cards user
//!   id** when a Cards user has that email — the id a Lucca → Cards flow linked the Lucca
//!   employee to, so a Cards → Lucca flow can follow that link back — else the email itself
//!   (lower-cased), which a flow can still correlate on by work email.
//! - `work-email` is the feed's email; names come from the Cards user when there is one.
//! - The field (default `e_formation`) holds one row per training, sorted by title, with
//!   the sub-fields (defaults `e_title`, `e_link`, `e_progress`, `e_score`,
//!   `e_last_completion_date`; every code is a setting) as text, as Lucca's field definition
//!   asks: progress and score as whole numbers, the completion date as `YYYY-MM-DD`
//!   (absent when never completed).
//! - A row without an email or a title cannot be placed: it is reported as a
//!   `record-problem`, never dropped silently nor guessed.

use std::collections::{BTreeMap, HashMap};

use muster_sdk::CompoundRow;
use muster_sdk::prelude::*;
use serde_json::Value;

use crate::api;
use crate::settings::{Settings, StatsCodes};

/// The feed's path (\[I\] in API-NOTES: Cards publishes no bulk endpoint; the sandbox models it).
pub const FEED: &str = "/statistics/trainings";

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `2026-05-31 18:02:11` or `2026-05-31T18:02:11Z` → `2026-05-31`.
fn day(s: &str) -> Option<String> {
    let d = s.get(..10)?;
    let ok = d.len() == 10
        && d.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    ok.then(|| d.to_string())
}

fn row(codes: &StatsCodes, v: &Value, title: String) -> (String, CompoundRow) {
    let mut row = vec![(codes.title.clone(), Scalar::Text(title.clone()))];
    let mut put = |code: &str, value: Option<String>| {
        if let Some(value) = value {
            row.push((code.to_string(), Scalar::Text(value)));
        }
    };
    put(&codes.link, text(v, "training_link"));
    put(&codes.progress, text(v, "progress"));
    put(&codes.score, text(v, "score"));
    put(
        &codes.last_completion,
        text(v, "last_completed_at").as_deref().and_then(day),
    );
    (title, row)
}

/// Every person of the feed, sorted by id, and the rows that could not be placed.
pub fn read(s: &Settings) -> Result<(Vec<Person>, Vec<RecordProblem>), ConnectorError> {
    let users: HashMap<String, api::User> = api::read_all(s, "/users")?
        .iter()
        .filter_map(api::user)
        .filter_map(|u| Some((u.email.clone()?.to_lowercase(), u)))
        .collect();
    let mut by_email: BTreeMap<String, BTreeMap<String, CompoundRow>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, v) in api::read_all(s, FEED)?.iter().enumerate() {
        let email = text(v, "user_email").map(|e| e.to_lowercase());
        let title = text(v, "training_title");
        let (Some(email), Some(title)) = (email, title) else {
            let id = text(v, "user_email").unwrap_or_else(|| format!("statistics row {}", i + 1));
            let field = FieldRef::Custom(s.codes.field.clone());
            problems.push(RecordProblem {
                record_id: id,
                field: Some(field),
                message: format!(
                    "statistics row {} has no user_email or no training_title; left out",
                    i + 1
                ),
            });
            continue;
        };
        let (title, row) = row(&s.codes, v, title);
        by_email.entry(email).or_default().insert(title, row);
    }
    let mut people: Vec<Person> = by_email
        .into_iter()
        .map(|(email, rows)| {
            let user = users.get(&email);
            Person {
                given_name: user.map(|u| u.firstname.clone()).filter(|n| !n.is_empty()),
                family_name: user.map(|u| u.lastname.clone()).filter(|n| !n.is_empty()),
                work_email: Some(email.clone()),
                custom_fields: vec![(
                    s.codes.field.clone(),
                    FieldValue::Rows(rows.into_values().collect()),
                )],
                ..Person::new(user.map_or(email, |u| u.id.to_string()), true)
            }
        })
        .collect();
    people.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((people, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_dates_keep_the_day_only() {
        assert_eq!(day("2026-05-31 18:02:11").as_deref(), Some("2026-05-31"));
        assert_eq!(day("2026-05-31T18:02:11Z").as_deref(), Some("2026-05-31"));
        assert_eq!(day("31/05/2026"), None);
    }
}
