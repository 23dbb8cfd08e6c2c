//! A Teelt talent (JSON) → the contract's person, as a pure function (unit-tested natively).
//!
//! | Teelt | person |
//! |---|---|
//! | `id` | `id` |
//! | `lastName`, `firstName` | `family-name`, `given-name` |
//! | `email`, `personalEmail` | `work-email`, `personal-email` |
//! | `phone` | `phone` |
//! | `legalEntity` | `legal-entity-id` (the name Teelt's admin typed; the target resolves it) |
//! | `department` | `department-id` (likewise a name) |
//! | `startDate` | `start-date` |
//! | `contractType` | `contract-type` |
//! | `manager.email` | `manager-id`: the manager's **work email**, matched to an account of the target by the core (flow option `manager_match = "work_email"`) |
//! | `customFields.{key}` | `custom:{key}` (text), e.g. `custom:establishment` |
//!
//! A talent is someone being onboarded: always `active`. A value that cannot be read (a start
//! date that is not one, a custom field that is not text) is left absent and reported as a
//! problem naming the talent and the field; the talent is kept.

use muster_sdk::serde_json::Value;
use muster_sdk::{Field, FieldRef, FieldValue, Person, RecordProblem};

/// A trimmed, non-empty string at `key`.
fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The talent's id: a string or an integer.
pub fn id_of(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The person for one talent, and the problems of its unreadable values. `None` when the
/// item has no id (the caller fails the page: a record without id cannot be reported).
pub fn person(v: &Value) -> Option<(Person, Vec<RecordProblem>)> {
    let id = id_of(v)?;
    let mut problems = Vec::new();
    let mut p = Person::new(id.clone(), true);
    p.family_name = text(v, "lastName");
    p.given_name = text(v, "firstName");
    p.work_email = text(v, "email");
    p.personal_email = text(v, "personalEmail");
    p.phone = text(v, "phone");
    p.legal_entity_id = text(v, "legalEntity");
    p.department_id = text(v, "department");
    p.contract_type = text(v, "contractType");
    p.manager_id = v.get("manager").and_then(|m| text(m, "email"));
    if let Some(d) = text(v, "startDate") {
        match muster_sdk::date::parse("start-date", &d) {
            Ok(date) => p.start_date = Some(date),
            Err(_) => problems.push(RecordProblem::field(
                &id,
                FieldRef::Canonical(Field::StartDate),
                format!("Teelt `startDate` `{d}` is not a valid date; left empty"),
            )),
        }
    }
    if let Some(custom) = v.get("customFields").and_then(Value::as_object) {
        for (key, value) in custom {
            match value {
                Value::Null => {}
                Value::String(s) if s.trim().is_empty() => {}
                Value::String(s) => p
                    .custom_fields
                    .push((key.clone(), FieldValue::Text(s.trim().to_owned()))),
                other => problems.push(RecordProblem::field(
                    &id,
                    FieldRef::Custom(key.clone()),
                    format!("Teelt custom field `{key}` is not text ({other}); left empty"),
                )),
            }
        }
    }
    Some((p, problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_sdk::Date;
    use muster_sdk::serde_json::json;

    #[test]
    fn maps_every_field() {
        let (p, problems) = person(&json!({
            "id": "t-1", "lastName": " Martin ", "firstName": "Léa", "email": "lea@x.example",
            "personalEmail": null, "phone": "+33 6", "legalEntity": "Sandbox SAS",
            "department": "Engineering", "startDate": "2026-06-15", "contractType": "CDI",
            "manager": {"email": "boss@x.example"}, "customFields": {"establishment": "Paris", "empty": ""},
            "updatedAt": "2026-05-01T00:00:00Z"
        }))
        .unwrap();
        assert!(problems.is_empty());
        assert_eq!(p.family_name.as_deref(), Some("Martin"));
        assert_eq!(p.work_email.as_deref(), Some("lea@x.example"));
        assert_eq!(p.personal_email, None);
        assert_eq!(p.department_id.as_deref(), Some("Engineering"));
        assert_eq!(p.legal_entity_id.as_deref(), Some("Sandbox SAS"));
        assert_eq!(p.manager_id.as_deref(), Some("boss@x.example"));
        assert_eq!(p.contract_type.as_deref(), Some("CDI"));
        assert_eq!(
            p.start_date,
            Some(Date {
                year: 2026,
                month: 6,
                day: 15
            })
        );
        assert_eq!(
            p.custom_fields,
            vec![("establishment".into(), FieldValue::Text("Paris".into()))]
        );
        assert!(p.active);
    }

    #[test]
    fn bad_values_are_problems_and_the_talent_is_kept() {
        let (p, problems) = person(&json!({
            "id": 7, "lastName": "X", "startDate": "2026-02-30", "customFields": {"n": 3}
        }))
        .unwrap();
        assert_eq!(p.id, "7");
        assert_eq!(p.start_date, None);
        assert_eq!(problems.len(), 2);
        assert_eq!(
            problems[0].field,
            Some(FieldRef::Canonical(Field::StartDate))
        );
        assert!(problems[0].message.contains("2026-02-30"));
        assert_eq!(problems[1].field, Some(FieldRef::Custom("n".into())));
        assert!(person(&json!({"lastName": "no id"})).is_none());
    }
}
