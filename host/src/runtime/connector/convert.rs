//! Between the contract's records (what plugins speak, always in the latest
//! version: [`crate::runtime::contract`] adapts older plugins first) and the
//! core's model (what the planner reasons about).
//!
//! This is the **one** place a record from a plugin is checked, with one
//! policy: a value the core cannot take — an impossible date (`2025-02-30`,
//! month 13), a non-finite number, a custom field code that is blank, given
//! twice or named like a canonical field, a compound row with a blank or
//! repeated sub-field — is left out of the converted record and becomes a
//! [`Problem`] naming the plugin, the record and the field. What the caller
//! does with a record that has problems is [`super`]'s business (it is held).

use std::collections::{BTreeMap, BTreeSet};

use muster_core::model::Row;
use muster_core::{Date, Field, FieldValue, Gender, Group, Person};

use super::{Problem, Side};
use crate::runtime::contract::latest::{self as wire, gender_from_core, gender_to_core};

/// Collects the problems of one record.
pub(super) struct Checker<'a> {
    side: Side,
    plugin: &'a str,
    record: &'a str,
    pub(super) problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(side: Side, plugin: &'a str, record: &'a str) -> Checker<'a> {
        Checker {
            side,
            plugin,
            record,
            problems: Vec::new(),
        }
    }

    fn report(&mut self, field: &str, message: String) {
        self.problems.push(Problem {
            side: self.side,
            plugin: self.plugin.to_owned(),
            record: self.record.to_owned(),
            field: field.to_owned(),
            message,
        });
    }

    fn date(&mut self, field: &str, d: &wire::Date) -> Option<Date> {
        let out = date_in(d);
        if out.is_none() {
            self.report(
                field,
                format!(
                    "{:04}-{:02}-{:02} is not a date of the calendar",
                    d.year, d.month, d.day
                ),
            );
        }
        out
    }

    fn scalar(&mut self, field: &str, s: &wire::Scalar) -> Option<FieldValue> {
        match s {
            wire::Scalar::Text(t) => Some(FieldValue::Text(t.clone())),
            wire::Scalar::Date(d) => self.date(field, d).map(FieldValue::Date),
            wire::Scalar::Number(n) => self.number(field, *n),
            wire::Scalar::Boolean(b) => Some(FieldValue::Bool(*b)),
        }
    }

    fn number(&mut self, field: &str, n: f64) -> Option<FieldValue> {
        if n.is_finite() {
            Some(FieldValue::Number(n))
        } else {
            self.report(field, format!("{n} is not a finite number"));
            None
        }
    }

    fn row(&mut self, code: &str, index: usize, row: &wire::CompoundRow) -> Row {
        let mut out = Row::new();
        for (sub, value) in row {
            let field = format!("{code}.{sub}");
            if sub.trim().is_empty() {
                self.report(code, format!("row {index} has a sub-field without a name"));
            } else if out.contains_key(sub) {
                self.report(&field, format!("row {index} gives this sub-field twice"));
            } else if let Some(v) = self.scalar(&field, value) {
                out.insert(sub.clone(), v);
            }
        }
        out
    }

    fn value(&mut self, code: &str, v: &wire::FieldValue) -> Option<FieldValue> {
        match v {
            wire::FieldValue::Text(t) => Some(FieldValue::Text(t.clone())),
            wire::FieldValue::Date(d) => self.date(code, d).map(FieldValue::Date),
            wire::FieldValue::Number(n) => self.number(code, *n),
            wire::FieldValue::Boolean(b) => Some(FieldValue::Bool(*b)),
            wire::FieldValue::Rows(rows) => Some(FieldValue::Rows(
                rows.iter()
                    .enumerate()
                    .map(|(i, row)| self.row(code, i + 1, row))
                    .collect(),
            )),
        }
    }

    /// The custom fields the core can take; the others are reported.
    fn custom(&mut self, fields: &[wire::CustomField]) -> BTreeMap<String, FieldValue> {
        let mut out = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (code, value) in fields {
            if code.trim().is_empty() {
                self.report("(custom)", "a custom field without a code".into());
            } else if Field::from_name(code).is_some() {
                self.report(
                    code,
                    "a custom field code may not be a canonical field's name".into(),
                );
            } else if !seen.insert(code.as_str()) {
                self.report(code, "the custom field is given twice".into());
                out.remove(code);
            } else if let Some(v) = self.value(code, value) {
                out.insert(code.clone(), v);
            }
        }
        out
    }
}

fn date_in(d: &wire::Date) -> Option<Date> {
    Date::from_ymd(d.year, u32::from(d.month), u32::from(d.day)).ok()
}

fn date_out(d: Date) -> wire::Date {
    let (year, month, day) = d.ymd();
    wire::Date {
        year,
        // `Date` guarantees 1–12 and 1–31.
        month: u8::try_from(month).unwrap_or(1),
        day: u8::try_from(day).unwrap_or(1),
    }
}

fn scalar_out(v: &FieldValue) -> Option<wire::Scalar> {
    Some(match v {
        FieldValue::Text(t) => wire::Scalar::Text(t.clone()),
        FieldValue::Date(d) => wire::Scalar::Date(date_out(*d)),
        FieldValue::Number(n) => wire::Scalar::Number(*n),
        FieldValue::Bool(b) => wire::Scalar::Boolean(*b),
        FieldValue::Rows(_) => return None,
    })
}

/// A step's row changes ([`muster_core::Step::rows`]) as the contract's
/// `row-change` list, for `account-update.rows`. A sub-value that is not a
/// single value (rows inside a row) cannot be carried: the error names the
/// field and sub-field.
pub fn row_changes_out(
    changes: &[muster_core::rows::RowChange],
) -> Result<Vec<wire::RowChange>, muster_core::rows::NotScalar> {
    use muster_core::rows::{ContractRowAction, to_contract};
    Ok(to_contract(changes, scalar_out)?
        .into_iter()
        .map(|c| wire::RowChange {
            field: c.field,
            key: c.key,
            action: match c.action {
                ContractRowAction::Add(row) => wire::RowAction::Add(row),
                ContractRowAction::Change(row) => wire::RowAction::Change(row),
                ContractRowAction::Remove(key) => wire::RowAction::Remove(key),
            },
        })
        .collect())
}

fn value_out(v: &FieldValue) -> wire::FieldValue {
    match v {
        FieldValue::Text(t) => wire::FieldValue::Text(t.clone()),
        FieldValue::Date(d) => wire::FieldValue::Date(date_out(*d)),
        FieldValue::Number(n) => wire::FieldValue::Number(*n),
        FieldValue::Bool(b) => wire::FieldValue::Boolean(*b),
        FieldValue::Rows(rows) => wire::FieldValue::Rows(
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

/// A plugin's person as the core's [`Person`], with every value the core
/// cannot take left out and reported (see the module doc).
pub fn person_in(p: &wire::Person, side: Side, plugin: &str) -> (Person, Vec<Problem>) {
    let mut check = Checker::new(side, plugin, &p.id);
    let mut date =
        |field: Field, d: &Option<wire::Date>| d.as_ref().and_then(|d| check.date(field.name(), d));
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
    let custom = check.custom(&p.custom_fields);
    let person = Person {
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
    };
    (person, check.problems)
}

/// The core's [`Person`] as the contract's record, for `create` and `update`.
pub fn person_out(p: &Person) -> wire::Person {
    wire::Person {
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

/// The core's [`Person`] as the record a target receives: its manager and
/// department, which the core keeps as *source* ids, translated to the
/// target's ids (`manager`: person links, `department`: group links); an id
/// no link knows is left out.
pub fn person_to_target(
    p: &Person,
    manager: impl Fn(&str) -> Option<String>,
    department: impl Fn(&str) -> Option<String>,
) -> wire::Person {
    let mut out = person_out(p);
    out.manager_id = out.manager_id.as_deref().and_then(manager);
    out.department_id = out.department_id.as_deref().and_then(department);
    out
}

/// A plugin's group as the core's [`Group`].
pub fn group_in(g: &wire::Group) -> Group {
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

    fn wit_date(year: i32, month: u8, day: u8) -> wire::Date {
        wire::Date { year, month, day }
    }

    pub(crate) fn wit_person() -> wire::Person {
        wire::Person {
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
            gender: Some(wire::Gender::Female),
            department_id: Some("7".into()),
            manager_id: Some("3".into()),
            legal_entity_id: Some("1".into()),
            contract_type: Some("CDI".into()),
            active: true,
            custom_fields: vec![
                ("e_level".into(), wire::FieldValue::Number(3.0)),
                (
                    "e_formation".into(),
                    wire::FieldValue::Rows(vec![vec![
                        ("e_title".into(), wire::Scalar::Text("GDPR".into())),
                        ("e_done".into(), wire::Scalar::Date(wit_date(2024, 6, 30))),
                    ]]),
                ),
            ],
        }
    }

    #[test]
    fn ids_are_translated_for_the_target_and_unknown_ones_left_out() {
        let (core, _) = person_in(&wit_person(), Side::Source, "hr");
        let linked = |id: &str| (id == "3").then(|| "acc-3".to_owned());
        let out = person_to_target(&core, linked, |_| None);
        assert_eq!(out.manager_id.as_deref(), Some("acc-3"));
        assert_eq!(out.department_id, None, "department 7 has no group link");
        assert_eq!(out.id, "42", "the record keeps its source id");
    }

    fn fields(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn a_person_survives_the_round_trip() {
        let (core, problems) = person_in(&wit_person(), Side::Source, "hr");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(core.gender, Some(Gender::Female));
        assert_eq!(core.birth_date, Date::from_ymd(1990, 2, 28).ok());
        let back = person_out(&core);
        let mut expected = wit_person();
        // Custom fields and compound sub-fields come back in the core's
        // stable (sorted) order.
        expected.custom_fields.sort_by(|a, b| a.0.cmp(&b.0));
        if let wire::FieldValue::Rows(rows) = &mut expected.custom_fields[0].1 {
            rows[0].sort_by(|a, b| a.0.cmp(&b.0));
        }
        assert_eq!(back, expected);
    }

    #[test]
    fn impossible_dates_are_problems_naming_the_plugin_record_and_field() {
        let mut p = wit_person();
        p.birth_date = Some(wit_date(2025, 2, 30));
        p.end_date = Some(wit_date(2024, 13, 1));
        p.custom_fields.push((
            "e_badge".into(),
            wire::FieldValue::Date(wit_date(2023, 2, 29)),
        ));
        let (core, problems) = person_in(&p, Side::Source, "hr");
        assert_eq!(fields(&problems), ["birth_date", "end_date", "e_badge"]);
        assert_eq!((core.birth_date, core.end_date), (None, None));
        assert!(!core.custom.contains_key("e_badge"));
        assert!(
            problems
                .iter()
                .all(|p| p.record == "42" && p.plugin == "hr")
        );
        let text = problems[0].to_string();
        assert!(
            text.contains("2025-02-30") && text.contains("`hr`"),
            "{text}"
        );
        // The valid values of the record are still converted.
        assert_eq!(core.start_date, Date::from_ymd(2024, 1, 8).ok());
    }

    #[test]
    fn unusable_custom_codes_and_rows_are_problems() {
        let mut p = wit_person();
        p.custom_fields.extend([
            ("".into(), wire::FieldValue::Text("x".into())),
            ("login".into(), wire::FieldValue::Text("x".into())),
            ("e_level".into(), wire::FieldValue::Number(4.0)),
            ("e_ratio".into(), wire::FieldValue::Number(f64::NAN)),
            (
                "e_rows".into(),
                wire::FieldValue::Rows(vec![vec![
                    ("e_n".into(), wire::Scalar::Number(1.0)),
                    ("e_n".into(), wire::Scalar::Number(2.0)),
                    ("e_d".into(), wire::Scalar::Date(wit_date(2024, 4, 31))),
                ]]),
            ),
        ]);
        let (core, problems) = person_in(&p, Side::Target, "tool");
        assert_eq!(
            fields(&problems),
            [
                "(custom)",
                "login",
                "e_level",
                "e_ratio",
                "e_rows.e_n",
                "e_rows.e_d"
            ]
        );
        assert!(problems.iter().all(|p| p.side == Side::Target));
        // A code given twice is not trusted either way.
        assert!(!core.custom.contains_key("e_level"));
        assert!(core.custom.contains_key("e_formation"));
        assert_eq!(core.login.as_deref(), Some("zmartin"));
    }
}
