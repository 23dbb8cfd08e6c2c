//! Lucca JSON → contract records, as pure functions (unit-tested natively).
//!
//! A value that cannot be mapped (an impossible date, a custom value of the wrong type) never
//! drops the record and never fails the read: the field is left absent and a [`Problem`] naming
//! the record id and the field is returned with it, for the caller to log (`warn`) to the host.

use std::collections::BTreeMap;

use muster_sdk::serde_json::Value;
use muster_sdk::{Date, FieldValue, Gender, Group, Person, Scalar};

use crate::config::Settings;
use crate::time::parse_lucca_date;

/// Something wrong with one field of one record. The record is kept with the field absent.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Lucca id of the record.
    pub id: String,
    /// The contract's field name (`birth-date`, `custom:e_badge_date`…).
    pub field: String,
    /// What is wrong, quoting the Lucca field and value.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "person `{}`: {}: {}", self.id, self.field, self.what)
    }
}

/// Type of an extended-data field, from `/api/v3/extensionuserdefinitions`.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Text,
    Number,
    Date,
    Bool,
    /// Sub-field code → kind.
    Compound(BTreeMap<String, Kind>),
}

/// Extended-data definitions by code.
pub type Definitions = BTreeMap<String, Kind>;

/// Parses the items of `/api/v3/extensionuserdefinitions`. Unknown types are left out, so
/// their values are typed from their JSON shape.
pub fn definitions(items: &[Value]) -> Definitions {
    items
        .iter()
        .filter_map(|d| Some((d.get("code")?.as_str()?.to_string(), kind(d)?)))
        .collect()
}

fn kind(d: &Value) -> Option<Kind> {
    let t = d.get("type")?.as_str()?.to_ascii_lowercase();
    Some(match t.as_str() {
        "string" | "text" | "hyperlink" | "link" | "list" | "enum" => Kind::Text,
        "number" | "decimal" | "integer" | "int" => Kind::Number,
        "date" | "datetime" => Kind::Date,
        "boolean" | "bool" => Kind::Bool,
        "compound" => Kind::Compound(definitions(
            d.get("subDefinitions")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice),
        )),
        _ => return None,
    })
}

/// An id (`12` or `"12"`) as the contract's string id.
pub fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// `u[flat]` (e.g. `managerId`) or `u[nested].id` (e.g. `manager.id`): Lucca shows both.
fn reference(u: &Value, flat: &str, nested: &str) -> Option<String> {
    id_of(u.get(flat)).or_else(|| id_of(u.get(nested).and_then(|m| m.get("id"))))
}

/// A non-blank string (numbers are rendered, as employee numbers sometimes are).
fn text(u: &Value, key: &str) -> Option<String> {
    match u.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `fields=` projection of exactly what [`person`] maps.
pub fn projection(s: &Settings) -> String {
    let mut f = vec![
        "id",
        "firstName",
        "lastName",
        "login",
        "mail",
        "personalEmail",
        "birthDate",
        "employeeNumber",
        "jobTitle",
        "gender",
        "dtContractStart",
        "dtContractEnd",
        s.phone_field.as_str(),
        "legalEntity.id",
        "department.id",
        "manager.id",
    ]
    .into_iter()
    .map(str::to_string)
    .collect::<Vec<_>>();
    match (&s.custom_fields, &s.contract_type_field) {
        (crate::config::CustomFields::None, None) => {}
        (crate::config::CustomFields::All, _) => f.push("extendedData".into()),
        (crate::config::CustomFields::None, Some(ct)) => f.push(format!("extendedData[{ct}]")),
        (crate::config::CustomFields::Codes(codes), ct) => {
            let mut codes = codes.clone();
            if let Some(ct) = ct
                && !codes.contains(ct)
            {
                codes.push(ct.clone());
            }
            f.push(format!("extendedData[{}]", codes.join(",")));
        }
    }
    f.join(",")
}

/// Maps one user of `/api/v3/users` to a person. `today` decides `active`: a person is
/// inactive once their contract end date is in the past (Lucca's "former employee"; the last
/// day still counts as worked). `None` only when the user has no usable `id`.
pub fn person(
    u: &Value,
    s: &Settings,
    defs: &Definitions,
    today: Date,
) -> Option<(Person, Vec<Problem>)> {
    let id = id_of(u.get("id"))?;
    let mut problems = Vec::new();
    let mut date = |lucca: &str, field: &str| -> Option<Date> {
        let raw = u.get(lucca)?.as_str()?;
        if raw.trim().is_empty() {
            return None;
        }
        match parse_lucca_date(lucca, raw) {
            Ok(d) => Some(d),
            Err(why) => {
                problems.push(Problem {
                    id: id.clone(),
                    field: field.into(),
                    what: format!("Lucca `{lucca}` {why}; left empty"),
                });
                None
            }
        }
    };
    let birth_date = date("birthDate", "birth-date");
    let start_date = date("dtContractStart", "start-date");
    let end_date = date("dtContractEnd", "end-date");
    let end_invalid = end_date.is_none()
        && u.get("dtContractEnd")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.trim().is_empty());
    // An unreadable end date never deactivates anybody: active unless it is known to be past.
    let active = end_invalid || end_date.as_ref().is_none_or(|e| !before(e, &today));
    let work_email = text(u, "mail").map(|m| m.trim().to_string());
    let mut custom_fields = Vec::new();
    let mut contract_type = None;
    if let Some(Value::Object(ext)) = u.get("extendedData") {
        for (code, value) in ext {
            let wanted = s.custom_fields.wants(code);
            let is_contract = s.contract_type_field.as_deref() == Some(code.as_str());
            if !wanted && !is_contract {
                continue;
            }
            let Some(v) = extended_value(&id, code, value, defs.get(code), s, &mut problems) else {
                continue;
            };
            if is_contract {
                contract_type = match &v {
                    FieldValue::Text(t) => Some(t.clone()),
                    FieldValue::Number(n) => Some(n.to_string()),
                    _ => None,
                };
            }
            if wanted {
                custom_fields.push((code.clone(), v));
            }
        }
    }
    let p = Person {
        employee_number: text(u, "employeeNumber"),
        given_name: text(u, "firstName"),
        family_name: text(u, "lastName"),
        work_email,
        personal_email: text(u, "personalEmail"),
        phone: text(u, &s.phone_field),
        login: text(u, "login"),
        birth_date,
        start_date,
        end_date,
        job_title: text(u, "jobTitle"),
        gender: gender(&id, u, &mut problems),
        department_id: reference(u, "departmentId", "department"),
        manager_id: reference(u, "managerId", "manager"),
        legal_entity_id: reference(u, "legalEntityId", "legalEntity"),
        contract_type,
        custom_fields,
        ..Person::new(id, active)
    };
    Some((p, problems))
}

/// Lucca's `gender` (`Undefined|Male|Female|Misc`, any case) as the contract's gender; another
/// spelling is a problem and the gender is left absent.
fn gender(id: &str, u: &Value, problems: &mut Vec<Problem>) -> Option<Gender> {
    let raw = text(u, "gender")?;
    match raw.trim().to_ascii_lowercase().as_str() {
        "male" => Some(Gender::Male),
        "female" => Some(Gender::Female),
        "misc" => Some(Gender::Diverse),
        "undefined" => Some(Gender::Undefined),
        _ => {
            problems.push(Problem {
                id: id.to_string(),
                field: "gender".into(),
                what: format!(
                    "Lucca `gender` `{raw}` is none of Undefined, Male, Female, Misc; left empty"
                ),
            });
            None
        }
    }
}

fn before(a: &Date, b: &Date) -> bool {
    (a.year, a.month, a.day) < (b.year, b.month, b.day)
}

/// One `extendedData` entry → a field value. `null`, an unset single field and an empty
/// multi-occurrence field are absent (`None`).
fn extended_value(
    id: &str,
    code: &str,
    value: &Value,
    kind: Option<&Kind>,
    s: &Settings,
    problems: &mut Vec<Problem>,
) -> Option<FieldValue> {
    let field = format!("custom:{code}");
    let mut problem = |what: String| {
        problems.push(Problem {
            id: id.to_string(),
            field: field.clone(),
            what,
        })
    };
    match value {
        Value::Null => None,
        Value::Array(occurrences) => {
            let mut rows = Vec::new();
            for o in occurrences {
                let (r, errors) = row(code, o.get("value").unwrap_or(&Value::Null), kind);
                for why in errors {
                    problem(format!("{why}; left out of its row"));
                }
                rows.extend(r);
            }
            if let Some(key) = s.row_key(code) {
                // Lucca shows compound rows sorted by their "sort data"; do the same so a
                // desired list sorted the same way compares equal.
                rows.sort_by_key(|r| sort_key(r, key));
            }
            (!rows.is_empty()).then_some(FieldValue::Rows(rows))
        }
        Value::Object(o) => {
            let v = o.get("value").unwrap_or(&Value::Null);
            match (kind, v) {
                (_, Value::Null) => None,
                (Some(Kind::Compound(_)), _) | (None, Value::Object(_)) => {
                    let (r, errors) = row(code, v, kind);
                    for why in errors {
                        problem(format!("{why}; left out"));
                    }
                    r.map(|r| FieldValue::Rows(vec![r]))
                }
                _ => match scalar(code, v, kind) {
                    Ok(sc) => Some(match sc {
                        Scalar::Text(t) => FieldValue::Text(t),
                        Scalar::Date(d) => FieldValue::Date(d),
                        Scalar::Number(n) => FieldValue::Number(n),
                        Scalar::Boolean(b) => FieldValue::Boolean(b),
                    }),
                    Err(why) => {
                        problem(format!("{why}; left empty"));
                        None
                    }
                },
            }
        }
        other => {
            problem(format!(
                "unexpected extended-data shape {other}; left empty"
            ));
            None
        }
    }
}

fn sort_key(row: &[(String, Scalar)], key: &str) -> (u8, String) {
    match row.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
        Some(Scalar::Text(t)) => (0, t.to_lowercase()),
        Some(Scalar::Number(n)) => (0, format!("{n:020.6}")),
        Some(Scalar::Date(d)) => (0, crate::time::lucca_date(d)),
        Some(Scalar::Boolean(b)) => (0, b.to_string()),
        None => (1, String::new()),
    }
}

/// One occurrence's value → a compound row (sub-fields with `null` are left out), plus what
/// could not be read in it (those sub-fields are left out too). A plain value in a
/// multi-occurrence field becomes a one-entry row under the field's own code.
fn row(
    code: &str,
    value: &Value,
    kind: Option<&Kind>,
) -> (Option<Vec<(String, Scalar)>>, Vec<String>) {
    match value {
        Value::Null => (None, Vec::new()),
        Value::Object(sub) => {
            let subs = match kind {
                Some(Kind::Compound(s)) => Some(s),
                _ => None,
            };
            let mut r = Vec::new();
            let mut errors = Vec::new();
            for (k, v) in sub {
                if v.is_null() {
                    continue;
                }
                match scalar(k, v, subs.and_then(|s| s.get(k))) {
                    Ok(sc) => r.push((k.clone(), sc)),
                    Err(e) => errors.push(format!("{code}.{e}")),
                }
            }
            ((!r.is_empty()).then_some(r), errors)
        }
        v => match scalar(code, v, kind) {
            Ok(sc) => (Some(vec![(code.to_string(), sc)]), Vec::new()),
            Err(e) => (None, vec![e]),
        },
    }
}

/// A single JSON value typed by its definition (or its JSON shape when there is none).
fn scalar(code: &str, v: &Value, kind: Option<&Kind>) -> Result<Scalar, String> {
    let bad = |what: &str| format!("{code}: {v} is not {what}");
    match (kind, v) {
        (Some(Kind::Date), Value::String(s)) => parse_lucca_date(code, s)
            .map(Scalar::Date)
            .map_err(|e| format!("{code}: {e}")),
        (Some(Kind::Date), _) => Err(bad("a date")),
        (Some(Kind::Number), Value::Number(n)) | (None, Value::Number(n)) => n
            .as_f64()
            .map(Scalar::Number)
            .ok_or_else(|| bad("a number")),
        (Some(Kind::Number), Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Scalar::Number)
            .ok_or_else(|| bad("a number")),
        (Some(Kind::Number), _) => Err(bad("a number")),
        (Some(Kind::Bool), Value::Bool(b)) | (None, Value::Bool(b)) => Ok(Scalar::Boolean(*b)),
        (Some(Kind::Bool), _) => Err(bad("a yes/no value")),
        (_, Value::String(s)) => Ok(Scalar::Text(s.clone())),
        (_, Value::Number(n)) => Ok(Scalar::Text(n.to_string())),
        (_, Value::Bool(b)) => Ok(Scalar::Text(b.to_string())),
        _ => Err(bad("a single value")),
    }
}

/// A v4 department → a group. `parentId` is read as the parent's id (`3` or `"3"`); when it
/// is a hierarchy path (`"/1/3/"`, as some documentation shows), the last id that is not the
/// department itself.
pub fn group(d: &Value) -> Option<Group> {
    let id = id_of(d.get("id"))?;
    let name = d
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("department {id}"));
    let parent_id = match d.get("parentId") {
        Some(Value::String(p)) if p.contains('/') => p
            .split('/')
            .rfind(|x| !x.is_empty() && *x != id)
            .map(str::to_string),
        other => id_of(other),
    };
    Some(Group {
        id,
        name,
        parent_id,
        members: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_sdk::serde_json::json;

    fn d(year: i32, month: u8, day: u8) -> Date {
        Date { year, month, day }
    }

    fn settings() -> Settings {
        Settings {
            custom_fields: crate::config::CustomFields::All,
            ..Settings::default()
        }
    }

    #[test]
    fn maps_every_field() {
        let u = json!({
            "id": 1042, "firstName": "Élodie", "lastName": "Núñez", "login": "enunez",
            "mail": " elodie@acme.example ", "personalEmail": "e@perso.example",
            "birthDate": "1985-03-04T00:00:00", "employeeNumber": "00042", "jobTitle": "Dev",
            "gender": "Female", "dtContractStart": "2020-01-06T00:00:00", "dtContractEnd": null,
            "professionalMobile": "+33 6 00", "directLine": "+33 1 00",
            "legalEntity": {"id": 2}, "department": {"id": 7}, "manager": {"id": 1001},
            "extendedData": {"e_tshirt": {"id": 5, "value": "M"}, "e_unset": null}
        });
        let (p, problems) = person(&u, &settings(), &Definitions::new(), d(2026, 6, 1)).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p.id, "1042");
        assert_eq!(p.work_email.as_deref(), Some("elodie@acme.example"));
        assert_eq!(p.phone.as_deref(), Some("+33 6 00"));
        assert_eq!(p.birth_date, Some(d(1985, 3, 4)));
        assert_eq!(p.end_date, None);
        assert_eq!(
            (
                p.department_id.as_deref(),
                p.manager_id.as_deref(),
                p.legal_entity_id.as_deref()
            ),
            (Some("7"), Some("1001"), Some("2"))
        );
        assert!(p.active);
        assert_eq!(p.gender, Some(Gender::Female));
        assert_eq!(
            p.custom_fields,
            vec![("e_tshirt".into(), FieldValue::Text("M".into()))]
        );
        // The flat spellings are read too.
        let flat = json!({"id": "9", "departmentId": 3, "managerId": "4", "legalEntityId": 1});
        let (p, _) = person(&flat, &settings(), &Definitions::new(), d(2026, 6, 1)).unwrap();
        assert_eq!(p.department_id.as_deref(), Some("3"));
        assert_eq!(p.manager_id.as_deref(), Some("4"));
        assert_eq!(p.legal_entity_id.as_deref(), Some("1"));
        assert!(
            person(
                &json!({"firstName": "x"}),
                &settings(),
                &Definitions::new(),
                d(2026, 6, 1)
            )
            .is_none()
        );
    }

    #[test]
    fn genders_map_to_the_enum_and_an_unknown_one_is_a_problem() {
        let g = |raw: &str| {
            person(
                &json!({"id": 3, "gender": raw}),
                &settings(),
                &Definitions::new(),
                d(2026, 6, 1),
            )
            .unwrap()
        };
        for (raw, want) in [
            ("Male", Gender::Male),
            ("female", Gender::Female),
            ("Misc", Gender::Diverse),
            ("Undefined", Gender::Undefined),
        ] {
            let (p, problems) = g(raw);
            assert_eq!((p.gender, problems.len()), (Some(want), 0), "{raw}");
        }
        let (p, problems) = g("Robot");
        assert_eq!(p.gender, None);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            (problems[0].id.as_str(), problems[0].field.as_str()),
            ("3", "gender")
        );
        assert!(problems[0].what.contains("`Robot`"), "{}", problems[0]);
    }

    #[test]
    fn active_follows_the_end_date_and_bad_dates_are_problems() {
        let today = d(2026, 6, 1);
        let p = |end: &str| {
            person(
                &json!({"id": 1, "dtContractEnd": end, "birthDate": "1990-02-30T00:00:00"}),
                &settings(),
                &Definitions::new(),
                today,
            )
            .unwrap()
        };
        assert!(!p("2026-05-31T00:00:00").0.active);
        assert!(p("2026-06-01T00:00:00").0.active, "the last day is worked");
        let (bad, problems) = p("2026-13-01T00:00:00");
        assert!(bad.active, "an unreadable end date deactivates nobody");
        assert_eq!(bad.birth_date, None);
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["birth-date", "end-date"]);
        assert!(
            problems[0]
                .to_string()
                .starts_with("person `1`: birth-date: Lucca `birthDate` `1990-02-30T00:00:00`"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn extended_data_is_typed_by_its_definitions() {
        let defs = definitions(&[
            json!({"code": "e_badge_date", "type": "date"}),
            json!({"code": "e_formation", "type": "compound", "isMultiple": true, "subDefinitions": [
                {"code": "e_title", "type": "string"}, {"code": "e_progress", "type": "number"},
                {"code": "e_last_completion_date", "type": "date"}]}),
        ]);
        let u = json!({"id": 1, "extendedData": {
            "e_badge_date": {"id": 3, "value": "2025-01-02T00:00:00"},
            "e_formation": [
                {"id": 11, "value": {"e_title": "RGPD", "e_progress": 80, "e_last_completion_date": "2026-01-31T00:00:00", "e_link": null}},
                {"id": 10, "value": {"e_title": "Onboarding", "e_progress": 100, "e_last_completion_date": "2026-02-31T00:00:00"}}
            ],
            "e_empty": []
        }});
        let (p, problems) = person(&u, &settings(), &defs, d(2026, 6, 1)).unwrap();
        assert_eq!(
            p.custom_fields[0],
            ("e_badge_date".into(), FieldValue::Date(d(2025, 1, 2)))
        );
        let FieldValue::Rows(rows) = &p.custom_fields[1].1 else {
            panic!("{p:?}")
        };
        // Sorted by the row key (e_title), the bad date left out of its row and reported.
        assert_eq!(
            rows[0][1],
            ("e_title".into(), Scalar::Text("Onboarding".into()))
        );
        assert_eq!(rows[0].len(), 2);
        assert_eq!(
            rows[1],
            vec![
                (
                    "e_last_completion_date".into(),
                    Scalar::Date(d(2026, 1, 31))
                ),
                ("e_progress".into(), Scalar::Number(80.0)),
                ("e_title".into(), Scalar::Text("RGPD".into())),
            ]
        );
        assert_eq!(
            p.custom_fields.len(),
            2,
            "an empty multi-occurrence field is absent"
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "custom:e_formation");
        assert!(
            problems[0].what.contains("e_last_completion_date"),
            "{}",
            problems[0].what
        );
    }

    #[test]
    fn departments_and_projection() {
        let g = group(&json!({"id": 9, "name": "Sales", "parentId": 4})).unwrap();
        assert_eq!((g.id.as_str(), g.parent_id.as_deref()), ("9", Some("4")));
        let g = group(&json!({"id": 9, "name": "Sales", "parentId": "/1/4/9/"})).unwrap();
        assert_eq!(g.parent_id.as_deref(), Some("4"));
        let g = group(&json!({"id": 1, "name": "Root", "parentId": null})).unwrap();
        assert_eq!(g.parent_id, None);
        let s = Settings {
            custom_fields: crate::config::CustomFields::Codes(vec!["e_tshirt".into()]),
            contract_type_field: Some("e_contract".into()),
            ..Settings::default()
        };
        assert!(
            projection(&s).ends_with(",manager.id,extendedData[e_tshirt,e_contract]"),
            "{}",
            projection(&s)
        );
        assert!(!projection(&Settings::default()).contains("extendedData"));
    }
}
