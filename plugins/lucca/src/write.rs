//! Contract records → Lucca write bodies, as pure functions (unit-tested natively).
//!
//! Canonical fields are written under their Lucca names (`work-email` → `mail`…); custom
//! fields `custom:e_…` are written **at the root** of the body (writing inside
//! `extendedData` does nothing in Lucca). Multi-occurrence compound fields (Cards'
//! `e_formation`) are written occurrence by occurrence, against what the user has now:
//! an occurrence without `id` is created, one with its `id` is updated, `{"id":…,"value":null}`
//! deletes it. Rows are matched on the field's key sub-field (setting `row_keys`, default
//! `e_formation:e_title`), else first by equal content and then in order, so unchanged rows
//! are not rewritten.

use muster_sdk::serde_json::{Map, Value, json};
use muster_sdk::{ConnectorError, FieldValue, Gender, Person, RowAction, Scalar};

use std::collections::BTreeMap;

use crate::map::Kind;
use crate::time::lucca_date;

/// Numbers that are whole are written as integers (`80`, not `80.0`).
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// A scalar as Lucca stores it.
pub fn scalar_json(s: &Scalar) -> Value {
    match s {
        Scalar::Text(t) => json!(t),
        Scalar::Date(d) => json!(lucca_date(d)),
        Scalar::Number(n) => number(*n),
        Scalar::Boolean(b) => json!(b),
    }
}

/// A single (non-row) custom value as Lucca stores it; `None` for rows.
pub fn single_json(v: &FieldValue) -> Option<Value> {
    Some(match v {
        FieldValue::Text(t) => json!(t),
        FieldValue::Date(d) => json!(lucca_date(d)),
        FieldValue::Number(n) => number(*n),
        FieldValue::Boolean(b) => json!(b),
        FieldValue::Rows(_) => return None,
    })
}

fn row_json(row: &[(String, Scalar)]) -> Map<String, Value> {
    row.iter()
        .map(|(k, v)| (k.clone(), scalar_json(v)))
        .collect()
}

/// Whether a stored occurrence value equals a desired row: `null` and absent sub-fields are
/// the same, numbers compare as numbers.
fn same(existing: &Value, desired: &Map<String, Value>) -> bool {
    let Some(e) = existing.as_object() else {
        return false;
    };
    let eq = |a: &Value, b: &Value| match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => {
            x == y
                || x.strip_suffix("T00:00:00") == Some(y)
                || y.strip_suffix("T00:00:00") == Some(x)
        }
        _ => a == b,
    };
    let keys = e.keys().chain(desired.keys());
    let null = Value::Null;
    keys.into_iter().all(|k| {
        let (a, b) = (e.get(k).unwrap_or(&null), desired.get(k).unwrap_or(&null));
        eq(a, b)
    })
}

/// `{"e_x": …}` body entries that turn `existing` occurrences (id, value) into `desired` rows.
/// Empty when nothing changes.
pub fn occurrence_writes(
    desired: &[Vec<(String, Scalar)>],
    existing: &[(u64, Value)],
    key: Option<&str>,
) -> Vec<Value> {
    let want: Vec<Map<String, Value>> = desired.iter().map(|r| row_json(r)).collect();
    let mut used = vec![false; existing.len()];
    let mut matched: Vec<Option<usize>> = vec![None; want.len()];
    match key {
        Some(key) => {
            for (i, w) in want.iter().enumerate() {
                let k = w.get(key);
                if k.is_none_or(Value::is_null) {
                    continue;
                }
                if let Some(j) = (0..existing.len())
                    .find(|&j| !used[j] && existing[j].1.get(key).is_some_and(|v| same_key(v, k)))
                {
                    used[j] = true;
                    matched[i] = Some(j);
                }
            }
        }
        None => {
            // Unchanged rows first, so they cost nothing; the rest pair up in order.
            for (i, w) in want.iter().enumerate() {
                if let Some(j) = (0..existing.len()).find(|&j| !used[j] && same(&existing[j].1, w))
                {
                    used[j] = true;
                    matched[i] = Some(j);
                }
            }
            for m in matched.iter_mut().filter(|m| m.is_none()) {
                if let Some(j) = (0..existing.len()).find(|&j| !used[j]) {
                    used[j] = true;
                    *m = Some(j);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (w, m) in want.iter().zip(&matched) {
        match m {
            Some(j) if same(&existing[*j].1, w) => {}
            Some(j) => {
                // The whole occurrence is the desired state: sub-fields it lacks are cleared.
                let mut value = w.clone();
                if let Some(e) = existing[*j].1.as_object() {
                    for k in e.keys() {
                        value.entry(k.clone()).or_insert(Value::Null);
                    }
                }
                out.push(json!({"id": existing[*j].0, "value": value}));
            }
            None => out.push(json!({"value": w})),
        }
    }
    for (j, (id, _)) in existing.iter().enumerate() {
        if !used[j] {
            out.push(json!({"id": id, "value": null}));
        }
    }
    out
}

/// `{"e_x": …}` body entries applying row-level changes (contract `row-change`, all of one
/// field, keyed by the sub-field `key`) to the `existing` occurrences (id, value), whatever
/// their order; occurrences no change names are left alone. `add` and `change` carry the
/// row's whole state (sub-fields they lack are cleared, as Lucca replaces an occurrence's
/// value): the occurrence with the same key is updated, or created when there is none, and an
/// occurrence already equal is not rewritten — so a change applied twice (a retry after a
/// crash) writes nothing the second time. `remove` deletes the occurrence with that key, if
/// any. A row without its key sub-field is an error naming the key.
///
/// `kinds` are the compound field's sub-field types from Lucca's definitions: a value is
/// written as its sub-field is typed (`"80"` to a number sub-field as `80`, `80` to a text
/// one as `"80"`, `"2026-05-20"` to a date one as Lucca's date), since a source such as Cards
/// sends every sub-field as text, as its guide has HR define them, and a tenant may type them.
pub fn row_change_writes(
    key: &str,
    changes: &[&RowAction],
    existing: &[(u64, Value)],
    kinds: &BTreeMap<String, Kind>,
) -> Result<Vec<Value>, String> {
    let find = |k: &Value| {
        existing
            .iter()
            .find(|(_, v)| v.get(key).is_some_and(|x| same_key(x, Some(k))))
    };
    let mut out = Vec::new();
    for change in changes {
        match change {
            RowAction::Add(row) | RowAction::Change(row) => {
                let mut want = row_json(row);
                for (code, value) in want.iter_mut() {
                    if let Some(kind) = kinds.get(code) {
                        *value = typed(std::mem::take(value), kind);
                    }
                }
                let k = want
                    .get(key)
                    .filter(|k| !k.is_null())
                    .ok_or_else(|| format!("a row without its key sub-field `{key}`"))?;
                match find(k) {
                    Some((_, current)) if same(current, &want) => {}
                    Some((id, current)) => {
                        let mut value = want.clone();
                        if let Some(e) = current.as_object() {
                            for k in e.keys() {
                                value.entry(k.clone()).or_insert(Value::Null);
                            }
                        }
                        out.push(json!({"id": id, "value": value}));
                    }
                    None => out.push(json!({"value": want})),
                }
            }
            RowAction::Remove(k) => {
                if let Some((id, _)) = find(&scalar_json(k)) {
                    out.push(json!({"id": id, "value": null}));
                }
            }
        }
    }
    Ok(out)
}

/// `v` as a sub-field of `kind` holds it, when it reads as one; else as it is (Lucca then
/// says what is wrong, naming the field).
fn typed(v: Value, kind: &Kind) -> Value {
    match (kind, &v) {
        (Kind::Number, Value::String(t)) => t.trim().parse::<f64>().map_or(v, number),
        (Kind::Text, Value::Number(n)) => json!(n.to_string()),
        (Kind::Date, Value::String(t)) => {
            let t = t.trim();
            match crate::time::parse_lucca_date("date", t) {
                Ok(d) if t.len() == 10 => json!(lucca_date(&d)),
                _ => v,
            }
        }
        _ => v,
    }
}

fn same_key(a: &Value, b: Option<&Value>) -> bool {
    match (a, b) {
        (Value::String(x), Some(Value::String(y))) => x.trim().eq_ignore_ascii_case(y.trim()),
        (Value::Number(x), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (x, Some(y)) => x == y,
        _ => false,
    }
}

/// The body entry for a single-valued custom field, given what the user has now
/// (`existing` = its `{id,value}` or `null`). `None` when nothing changes.
pub fn single_write(
    desired: Option<&FieldValue>,
    existing: &Value,
) -> Result<Option<Value>, String> {
    let current_id = existing.get("id").and_then(Value::as_u64);
    let current = existing.get("value").unwrap_or(&Value::Null);
    match desired {
        None if current.is_null() => Ok(None),
        None => Ok(Some(json!({"id": current_id, "value": null}))),
        Some(v) => {
            let value = single_json(v).ok_or("rows given for a single-valued field")?;
            let unchanged = match (&value, current) {
                (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                (a, b) => a == b,
            };
            if unchanged {
                return Ok(None);
            }
            Ok(Some(match current_id {
                Some(id) => json!({"id": id, "value": value}),
                None => json!({"value": value}),
            }))
        }
    }
}

/// Lucca's spelling of a gender (`Undefined|Male|Female|Misc`).
pub fn lucca_gender(g: Gender) -> &'static str {
    match g {
        Gender::Male => "Male",
        Gender::Female => "Female",
        Gender::Diverse => "Misc",
        Gender::Undefined => "Undefined",
    }
}

/// Which Lucca reference a value must resolve to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ref {
    Department,
    LegalEntity,
    Manager,
}

/// A canonical field's Lucca key and value for a write body. References (`department-id`,
/// `legal-entity-id`, `manager-id`) go through `resolve`, which turns an id, code or name into
/// a Lucca id. `Ok(None)` for `contract-type`, handled by the caller.
pub fn canonical(
    field: &str,
    p: &Person,
    phone_field: &str,
    resolve: &mut dyn FnMut(Ref, &str) -> Result<u64, ConnectorError>,
) -> Result<Option<(String, Value)>, ConnectorError> {
    let t = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| json!(s));
    let d = |v: &Option<muster_sdk::Date>| v.as_ref().map_or(Value::Null, |d| json!(lucca_date(d)));
    let mut r = |kind: Ref, v: &Option<String>| -> Result<Value, ConnectorError> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(Value::Null),
            Some(x) => resolve(kind, x).map(|id| json!(id)),
        }
    };
    let (key, value) = match field {
        "employee-number" => ("employeeNumber", t(&p.employee_number)),
        "given-name" => ("firstName", t(&p.given_name)),
        "family-name" => ("lastName", t(&p.family_name)),
        "work-email" => ("mail", t(&p.work_email)),
        "personal-email" => ("personalEmail", t(&p.personal_email)),
        "phone" => (phone_field, t(&p.phone)),
        "login" => ("login", t(&p.login)),
        "birth-date" => ("birthDate", d(&p.birth_date)),
        "start-date" => ("dtContractStart", d(&p.start_date)),
        "end-date" => ("dtContractEnd", d(&p.end_date)),
        "job-title" => ("jobTitle", t(&p.job_title)),
        "gender" => (
            "gender",
            json!(lucca_gender(p.gender.unwrap_or(Gender::Undefined))),
        ),
        "department-id" => ("departmentId", r(Ref::Department, &p.department_id)?),
        "legal-entity-id" => ("legalEntityId", r(Ref::LegalEntity, &p.legal_entity_id)?),
        "manager-id" => ("managerId", r(Ref::Manager, &p.manager_id)?),
        "contract-type" => return Ok(None),
        other => {
            return Err(ConnectorError::Invalid(format!(
                "person `{}`: field `{other}` cannot be written to Lucca",
                p.id
            )));
        }
    };
    Ok(Some((key.to_string(), value)))
}

/// The canonical fields a create sends when the record has them.
pub const CREATE_FIELDS: &[&str] = &[
    "given-name",
    "family-name",
    "login",
    "work-email",
    "personal-email",
    "phone",
    "employee-number",
    "birth-date",
    "start-date",
    "end-date",
    "job-title",
    "gender",
    "department-id",
    "legal-entity-id",
    "manager-id",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Scalar {
        Scalar::Text(s.into())
    }

    fn row(title: &str, progress: f64) -> Vec<(String, Scalar)> {
        vec![
            ("e_title".into(), t(title)),
            ("e_progress".into(), Scalar::Number(progress)),
        ]
    }

    #[test]
    fn row_values_are_written_as_their_sub_fields_are_typed() {
        let kinds: BTreeMap<String, Kind> = [
            ("e_score".to_string(), Kind::Number),
            ("e_title".to_string(), Kind::Text),
            ("e_link".to_string(), Kind::Text),
            ("e_last_completion_date".to_string(), Kind::Date),
        ]
        .into();
        let add = RowAction::Add(vec![
            ("e_title".into(), Scalar::Text("RGPD".into())),
            ("e_score".into(), Scalar::Text(" 80".into())),
            ("e_link".into(), Scalar::Number(7.0)),
            (
                "e_last_completion_date".into(),
                Scalar::Text("2026-05-20".into()),
            ),
        ]);
        let w = row_change_writes("e_title", &[&add], &[], &kinds).unwrap();
        assert_eq!(
            w,
            vec![
                json!({"value": {"e_title": "RGPD", "e_score": 80, "e_link": "7",
                "e_last_completion_date": "2026-05-20T00:00:00"}})
            ]
        );
        let odd = RowAction::Add(vec![
            ("e_title".into(), Scalar::Text("RGPD".into())),
            ("e_score".into(), Scalar::Text("eighty".into())),
        ]);
        let w = row_change_writes("e_title", &[&odd], &[], &kinds).unwrap();
        assert_eq!(
            w[0]["value"]["e_score"],
            json!("eighty"),
            "left for Lucca to refuse"
        );
    }

    #[test]
    fn occurrences_by_key_add_update_delete_and_skip_unchanged() {
        let existing = vec![
            (
                10,
                json!({"e_title": "RGPD", "e_progress": 50, "e_link": "x"}),
            ),
            (
                11,
                json!({"e_title": "Onboarding", "e_progress": 100, "e_link": null}),
            ),
            (12, json!({"e_title": "Old", "e_progress": 1})),
        ];
        let desired = vec![
            row("Onboarding", 100.0),
            row("RGPD", 80.0),
            row("Security", 0.0),
        ];
        let w = occurrence_writes(&desired, &existing, Some("e_title"));
        assert_eq!(
            w,
            vec![
                json!({"id": 10, "value": {"e_title": "RGPD", "e_progress": 80, "e_link": null}}),
                json!({"value": {"e_title": "Security", "e_progress": 0}}),
                json!({"id": 12, "value": null}),
            ]
        );
        assert!(
            occurrence_writes(
                &[row("Onboarding", 100.0)],
                &existing[1..2],
                Some("e_title")
            )
            .is_empty()
        );
        assert_eq!(
            occurrence_writes(&[], &existing[..1], None),
            vec![json!({"id": 10, "value": null})]
        );
    }

    #[test]
    fn row_changes_touch_only_the_rows_they_name_whatever_the_order() {
        let existing = vec![
            (11, json!({"e_title": "Onboarding", "e_progress": 100})),
            (
                10,
                json!({"e_title": "RGPD", "e_progress": 50, "e_link": "x"}),
            ),
            (12, json!({"e_title": "Old", "e_progress": 1})),
        ];
        let (add, change, same, remove, gone) = (
            RowAction::Add(row("Security", 0.0)),
            RowAction::Change(row("rgpd", 80.0)),
            RowAction::Change(row("Onboarding", 100.0)),
            RowAction::Remove(t("Old")),
            RowAction::Remove(t("Never there")),
        );
        let w = row_change_writes(
            "e_title",
            &[&add, &change, &same, &remove, &gone],
            &existing,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            w,
            vec![
                json!({"value": {"e_title": "Security", "e_progress": 0}}),
                json!({"id": 10, "value": {"e_title": "rgpd", "e_progress": 80, "e_link": null}}),
                json!({"id": 12, "value": null}),
            ],
            "keys match case-insensitively; an equal row and an absent key write nothing"
        );
        let again = RowAction::Add(row("Onboarding", 100.0));
        assert!(
            row_change_writes("e_title", &[&again], &existing, &BTreeMap::new())
                .unwrap()
                .is_empty(),
            "an add already applied (a retry) writes nothing"
        );
        let keyless = RowAction::Add(vec![("e_progress".into(), Scalar::Number(3.0))]);
        assert_eq!(
            row_change_writes("e_title", &[&keyless], &existing, &BTreeMap::new()),
            Err("a row without its key sub-field `e_title`".to_string())
        );
    }

    #[test]
    fn occurrences_without_key_keep_equal_rows_and_pair_the_rest() {
        let existing = vec![(1, json!({"a": "x"})), (2, json!({"a": "y"}))];
        let desired = vec![vec![("a".into(), t("y"))], vec![("a".into(), t("z"))]];
        assert_eq!(
            occurrence_writes(&desired, &existing, None),
            vec![json!({"id": 1, "value": {"a": "z"}})]
        );
    }

    #[test]
    fn single_values() {
        let existing = json!({"id": 5, "value": "M"});
        assert_eq!(
            single_write(Some(&FieldValue::Text("M".into())), &existing),
            Ok(None)
        );
        assert_eq!(
            single_write(Some(&FieldValue::Text("L".into())), &existing),
            Ok(Some(json!({"id": 5, "value": "L"})))
        );
        assert_eq!(
            single_write(None, &existing),
            Ok(Some(json!({"id": 5, "value": null})))
        );
        assert_eq!(single_write(None, &Value::Null), Ok(None));
        assert_eq!(
            single_write(Some(&FieldValue::Number(3.0)), &Value::Null),
            Ok(Some(json!({"value": 3})))
        );
    }

    #[test]
    fn canonical_fields_and_genders() {
        let mut p = Person::new("src-1", true);
        p.work_email = Some("a@b.c".into());
        p.gender = Some(Gender::Diverse);
        p.department_id = Some("Sales".into());
        let mut resolve = |kind: Ref, v: &str| {
            assert_eq!((kind, v), (Ref::Department, "Sales"));
            Ok(7)
        };
        let c = |f: &str, resolve: &mut dyn FnMut(Ref, &str) -> Result<u64, ConnectorError>| {
            canonical(f, &p, "directLine", resolve).unwrap().unwrap()
        };
        assert_eq!(
            c("work-email", &mut resolve),
            ("mail".into(), json!("a@b.c"))
        );
        assert_eq!(c("gender", &mut resolve), ("gender".into(), json!("Misc")));
        assert_eq!(
            c("department-id", &mut resolve),
            ("departmentId".into(), json!(7))
        );
        assert_eq!(c("phone", &mut resolve), ("directLine".into(), Value::Null));
        assert!(canonical("active", &p, "directLine", &mut resolve).is_err());
        assert_eq!(lucca_gender(Gender::Female), "Female");
        assert_eq!(lucca_gender(Gender::Undefined), "Undefined");
    }
}
