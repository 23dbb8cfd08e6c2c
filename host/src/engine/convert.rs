//! Between the contract's records (what plugins speak) and the core's model
//! (what the planner reasons about).
//!
//! The contract (always its latest version: the runtime adapts older
//! plugins, and parses a 0.1 plugin's gender spelling there) is deliberately
//! loose — a date the runtime has already checked, custom fields as a list —
//! and the core is strict. A value the core cannot take is never a reason to drop the record:
//! the field is left empty and a [`Problem`] names the record and the field,
//! so the operator sees it and nothing else is lost.

use std::collections::BTreeMap;

use muster_core::model::Row;
use muster_core::{Date, Field, FieldValue, Gender, Group, Person};

use crate::runtime::contract::latest::{field_ref_to_core, gender_from_core, gender_to_core};
use crate::runtime::{self, Scalar};

/// A value that could not be carried over, reported with the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `source` or `target`.
    pub side: &'static str,
    /// The record's id in its system.
    pub record: String,
    /// The field, in the core's snake_case spelling.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} record {}: field `{}`: {}",
            self.side, self.record, self.field, self.message
        )
    }
}

fn date_in(d: &runtime::Date) -> Option<Date> {
    Date::from_ymd(d.year, u32::from(d.month), u32::from(d.day)).ok()
}

fn date_out(d: Date) -> runtime::Date {
    let (year, month, day) = d.ymd();
    runtime::Date {
        year,
        // `Date` guarantees 1–12 and 1–31.
        month: u8::try_from(month).unwrap_or(1),
        day: u8::try_from(day).unwrap_or(1),
    }
}

fn scalar_in(s: &Scalar) -> Option<FieldValue> {
    Some(match s {
        Scalar::Text(t) => FieldValue::Text(t.clone()),
        Scalar::Date(d) => FieldValue::Date(date_in(d)?),
        Scalar::Number(n) if n.is_finite() => FieldValue::Number(*n),
        Scalar::Number(_) => return None,
        Scalar::Boolean(b) => FieldValue::Bool(*b),
    })
}

fn scalar_out(v: &FieldValue) -> Option<Scalar> {
    Some(match v {
        FieldValue::Text(t) => Scalar::Text(t.clone()),
        FieldValue::Date(d) => Scalar::Date(date_out(*d)),
        FieldValue::Number(n) => Scalar::Number(*n),
        FieldValue::Bool(b) => Scalar::Boolean(*b),
        FieldValue::Rows(_) => return None,
    })
}

fn value_in(v: &runtime::FieldValue) -> Option<FieldValue> {
    Some(match v {
        runtime::FieldValue::Text(t) => FieldValue::Text(t.clone()),
        runtime::FieldValue::Date(d) => FieldValue::Date(date_in(d)?),
        runtime::FieldValue::Number(n) if n.is_finite() => FieldValue::Number(*n),
        runtime::FieldValue::Number(_) => return None,
        runtime::FieldValue::Boolean(b) => FieldValue::Bool(*b),
        runtime::FieldValue::Rows(rows) => {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let mut r = Row::new();
                for (k, s) in row {
                    r.insert(k.clone(), scalar_in(s)?);
                }
                out.push(r);
            }
            FieldValue::Rows(out)
        }
    })
}

fn value_out(v: &FieldValue) -> runtime::FieldValue {
    match v {
        FieldValue::Text(t) => runtime::FieldValue::Text(t.clone()),
        FieldValue::Date(d) => runtime::FieldValue::Date(date_out(*d)),
        FieldValue::Number(n) => runtime::FieldValue::Number(*n),
        FieldValue::Bool(b) => runtime::FieldValue::Boolean(*b),
        FieldValue::Rows(rows) => runtime::FieldValue::Rows(
            rows.iter()
                .map(|row| {
                    row.iter()
                        .filter_map(|(k, v)| scalar_out(v).map(|s| (k.clone(), s)))
                        .collect()
                })
                .collect(),
        ),
    }
}

/// A plugin's person as the core's [`Person`]. Values the core cannot take
/// are left out and pushed onto `problems`.
pub fn person_in(p: &runtime::Person, side: &'static str, problems: &mut Vec<Problem>) -> Person {
    let mut problem = |field: &str, message: String| {
        problems.push(Problem {
            side,
            record: p.id.clone(),
            field: field.into(),
            message,
        })
    };
    let mut date = |field: Field, d: &Option<runtime::Date>| match d {
        None => None,
        Some(d) => {
            let out = date_in(d);
            if out.is_none() {
                problem(
                    field.name(),
                    format!(
                        "{:04}-{:02}-{:02} is not a valid date; left empty",
                        d.year, d.month, d.day
                    ),
                );
            }
            out
        }
    };
    let birth_date = date(Field::BirthDate, &p.birth_date);
    let start_date = date(Field::StartDate, &p.start_date);
    let end_date = date(Field::EndDate, &p.end_date);
    // "Not stated" is reconciled as "unknown": targets do not store it as a
    // value of its own (Leapsome reads it back as absent), so keeping it
    // apart would update those accounts on every run.
    let gender = p
        .gender
        .map(gender_to_core)
        .filter(|g| *g != Gender::Undefined);
    let mut custom = BTreeMap::new();
    for (code, value) in &p.custom_fields {
        match value_in(value) {
            Some(v) => {
                custom.insert(code.clone(), v);
            }
            None => problem(
                code,
                "holds an invalid date or a non-finite number; left empty".into(),
            ),
        }
    }
    Person {
        id: p.id.clone(),
        active: p.active,
        employee_number: p.employee_number.clone(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        work_email: p.work_email.clone(),
        personal_email: p.personal_email.clone(),
        phone: p.phone.clone(),
        login: p.login.clone(),
        birth_date,
        start_date,
        end_date,
        job_title: p.job_title.clone(),
        gender,
        department_id: p.department_id.clone(),
        manager_id: p.manager_id.clone(),
        legal_entity_id: p.legal_entity_id.clone(),
        contract_type: p.contract_type.clone(),
        custom,
    }
}

/// The core's [`Person`] as the contract's record, for `create` and `update`.
pub fn person_out(p: &Person) -> runtime::Person {
    runtime::Person {
        id: p.id.clone(),
        employee_number: p.employee_number.clone(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        work_email: p.work_email.clone(),
        personal_email: p.personal_email.clone(),
        phone: p.phone.clone(),
        login: p.login.clone(),
        birth_date: p.birth_date.map(date_out),
        start_date: p.start_date.map(date_out),
        end_date: p.end_date.map(date_out),
        job_title: p.job_title.clone(),
        gender: p.gender.map(gender_from_core),
        department_id: p.department_id.clone(),
        manager_id: p.manager_id.clone(),
        legal_entity_id: p.legal_entity_id.clone(),
        contract_type: p.contract_type.clone(),
        active: p.active,
        custom_fields: p
            .custom
            .iter()
            .map(|(k, v)| (k.clone(), value_out(v)))
            .collect(),
    }
}

/// A problem a plugin reported on a page (a record it could not take as it
/// is), as the run's [`Problem`]. A problem about the whole record names no
/// field: `(record)`.
pub fn page_problem(p: &runtime::RecordProblem, side: &'static str) -> Problem {
    Problem {
        side,
        record: p.record_id.clone(),
        field: p.field.as_ref().map_or_else(
            || "(record)".to_owned(),
            |f| String::from(field_ref_to_core(f)),
        ),
        message: p.message.clone(),
    }
}

/// A plugin's group as the core's [`Group`].
pub fn group_in(g: &runtime::Group) -> Group {
    Group {
        id: g.id.clone(),
        name: g.name.clone(),
        parent_id: g.parent_id.clone(),
        members: g.members.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit_date(year: i32, month: u8, day: u8) -> runtime::Date {
        runtime::Date { year, month, day }
    }

    fn wit_person() -> runtime::Person {
        runtime::Person {
            id: "42".into(),
            employee_number: Some("E42".into()),
            given_name: Some("Zoé".into()),
            family_name: Some("Martin".into()),
            work_email: Some("zoe@acme.fr".into()),
            personal_email: None,
            phone: Some("+33 1".into()),
            login: Some("zmartin".into()),
            birth_date: Some(wit_date(1990, 2, 28)),
            start_date: Some(wit_date(2024, 1, 8)),
            end_date: None,
            job_title: Some("Engineer".into()),
            gender: Some(runtime::Gender::Female),
            department_id: Some("7".into()),
            manager_id: Some("3".into()),
            legal_entity_id: Some("1".into()),
            contract_type: Some("CDI".into()),
            active: true,
            custom_fields: vec![
                ("e_level".into(), runtime::FieldValue::Number(3.0)),
                (
                    "e_formation".into(),
                    runtime::FieldValue::Rows(vec![vec![
                        ("e_title".into(), Scalar::Text("GDPR".into())),
                        ("e_done".into(), Scalar::Date(wit_date(2024, 6, 30))),
                    ]]),
                ),
            ],
        }
    }

    #[test]
    fn a_person_survives_the_round_trip() {
        let mut problems = Vec::new();
        let core = person_in(&wit_person(), "source", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(core.gender, Some(Gender::Female));
        assert_eq!(core.birth_date, Date::from_ymd(1990, 2, 28).ok());
        let back = person_out(&core);
        let mut expected = wit_person();
        // Custom fields and compound sub-fields come back in the core's
        // stable (sorted) order.
        expected.custom_fields.sort_by(|a, b| a.0.cmp(&b.0));
        if let runtime::FieldValue::Rows(rows) = &mut expected.custom_fields[0].1 {
            rows[0].sort_by(|a, b| a.0.cmp(&b.0));
        }
        assert_eq!(back, expected);
    }

    #[test]
    fn values_the_core_cannot_take_are_reported_not_dropped_silently() {
        let mut p = wit_person();
        p.end_date = Some(wit_date(2024, 2, 30));
        p.gender = Some(runtime::Gender::Undefined);
        p.custom_fields
            .push(("e_ratio".into(), runtime::FieldValue::Number(f64::NAN)));
        let mut problems = Vec::new();
        let core = person_in(&p, "source", &mut problems);
        assert_eq!(core.id, "42");
        assert_eq!(core.end_date, None);
        assert_eq!(core.gender, None);
        assert!(!core.custom.contains_key("e_ratio"));
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["end_date", "e_ratio"]);
        assert!(problems.iter().all(|p| p.record == "42"));
        assert!(problems[0].to_string().contains("2024-02-30"));
    }
}
