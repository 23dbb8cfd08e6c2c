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

#[cfg(test)]
mod tests {
    use super::*;
    use muster_sdk::serde_json::json;

    #[test]
    fn maps_a_search_result() {
        let row = json!({
            "applicant": "8585b224a029fbb9", "vacancy": "Dev", "column": "Embauché",
            "hired": true, "firstname": " Zoë ", "lastname": "Lefèvre",
            "email": "zoe@gmail.com", "phone": "+33 6 12", "contract_type": "CDI",
            "start_date": "2026-07-01", "created_at": "2026-01-02T09:00:00.000Z"
        });
        let (p, problem) = person(&row).unwrap();
        assert_eq!(problem, None);
        assert_eq!(p.id, "8585b224a029fbb9");
        assert!(p.active);
        assert_eq!(p.given_name.as_deref(), Some("Zoë"));
        assert_eq!(p.family_name.as_deref(), Some("Lefèvre"));
        assert_eq!(p.personal_email.as_deref(), Some("zoe@gmail.com"));
        assert_eq!(p.work_email, None);
        assert_eq!(p.phone.as_deref(), Some("+33 6 12"));
        assert_eq!(p.contract_type.as_deref(), Some("CDI"));
        assert_eq!(
            p.start_date,
            Some(Date {
                year: 2026,
                month: 7,
                day: 1
            })
        );
    }

    #[test]
    fn blank_texts_are_absent_and_a_bad_date_is_a_problem_naming_the_field() {
        let row = json!({
            "applicant": "a1", "firstname": "Madonna", "lastname": "  ", "email": null,
            "start_date": "01/07/26"
        });
        let (p, problem) = person(&row).unwrap();
        assert_eq!(
            (p.family_name, p.personal_email, p.start_date),
            (None, None, None)
        );
        let problem = problem.expect("a problem");
        assert_eq!(problem.record_id, "a1");
        assert_eq!(problem.field, Some(FieldRef::Canonical(Field::StartDate)));
        assert!(problem.message.contains("01/07/26"), "{}", problem.message);
    }

    #[test]
    fn a_row_without_an_id_is_a_malformed_answer() {
        let err = person(&json!({"firstname": "X"})).unwrap_err();
        assert!(matches!(err, ConnectorError::Invalid(m) if m.contains("`applicant`")));
    }
}
