//! One search result (Flatchr's flat applicant shape) → the contract's person.

use muster_sdk::prelude::*;
use muster_sdk::serde_json::Value;

/// A trimmed, non-empty text at `key`.
fn text(row: &Value, key: &str) -> Option<String> {
    row.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Into::into)
}

/// The person of a hired applicant, with a problem when its start date cannot be read (the
/// date is then absent). A row without an `applicant` id is a malformed answer: an error.
pub fn person(row: &Value) -> Result<(Person, Option<RecordProblem>), ConnectorError> {
    let id = text(row, "applicant").ok_or_else(|| {
        ConnectorError::Invalid(format!(
            "Flatchr's search returned an applicant without an `applicant` id: {row}"
        ))
    })?;
    let raw_start = text(row, "start_date");
    let (start_date, problem) =
        match muster_sdk::date::parse_opt("start_date", raw_start.as_deref()) {
            Ok(d) => (d, None),
            Err(_) => (
                None,
                Some(RecordProblem::field(
                    id.clone(),
                    FieldRef::Canonical(Field::StartDate),
                    format!(
                        "start_date `{}` is not a YYYY-MM-DD date",
                        raw_start.unwrap_or_default()
                    ),
                )),
            ),
        };
    let person = Person {
        given_name: text(row, "firstname"),
        family_name: text(row, "lastname"),
        personal_email: text(row, "email"),
        phone: text(row, "phone"),
        contract_type: text(row, "contract_type"),
        start_date,
        ..Person::new(id, true)
    };
    Ok((person, problem))
}
