//! Extended data (custom HR-file fields, codes `e_…`): read under `extendedData`, written at
//! the root of a user's write body, occurrence by occurrence — omit `id` (or 0) to create, give
//! it to update, `"value": null` to delete. Definitions (`/api/v3/extensionuserdefinitions`)
//! give each field's `code`, `type` (`compound` with `subDefinitions`), `isMultiple` and
//! `isEditable`; a write to a field that is not editable is refused (400 naming it).

use serde_json::{Map, Value, json};

use super::ApiError;
use crate::datetime;
use crate::tenant::{ExtDefinition, ExtKind, Occurrence, Tenant, User};

/// The `extendedData` object of a user: single fields as `{id,value}` (or `null` when unset),
/// multi-occurrence fields as arrays.
pub fn read(tenant: &Tenant, user: &User) -> Value {
    let mut out = Map::new();
    for def in &tenant.definitions {
        let occurrences = user
            .extended
            .get(&def.code)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let shown = |o: &Occurrence| json!({"id": o.id, "value": o.value});
        let v = if def.multiple {
            Value::Array(occurrences.iter().map(shown).collect())
        } else {
            occurrences.first().map_or(Value::Null, shown)
        };
        out.insert(def.code.clone(), v);
    }
    Value::Object(out)
}

/// The items of `/api/v3/extensionuserdefinitions`.
pub fn definitions(tenant: &Tenant) -> Value {
    Value::Array(tenant.definitions.iter().map(definition).collect())
}

fn definition(d: &ExtDefinition) -> Value {
    let (kind, subs) = match &d.kind {
        ExtKind::Text => ("string", Vec::new()),
        ExtKind::Number => ("number", Vec::new()),
        ExtKind::Date => ("date", Vec::new()),
        ExtKind::Compound(subs) => ("compound", subs.iter().map(definition).collect()),
    };
    json!({"id": d.id, "code": d.code, "name": d.name, "type": kind, "isMultiple": d.multiple, "isEditable": d.editable, "subDefinitions": subs})
}

/// Applies one root-level `e_…` entry of a write body to `user` (a working copy: on error the
/// caller drops it). `new_id` allocates occurrence ids.
pub fn write(
    def: &ExtDefinition,
    body: &Value,
    user: &mut User,
    new_id: &mut dyn FnMut() -> u64,
) -> Result<(), ApiError> {
    let code = def.code.as_str();
    if !def.editable {
        return Err(field_error(
            code,
            format!("{code}: this field is not editable"),
        ));
    }
    let entries: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let occurrences = user.extended.entry(code.to_string()).or_default();
    for entry in entries {
        let Value::Object(entry) = entry else {
            return Err(field_error(
                code,
                format!("{code}: expected {{\"id\":…,\"value\":…}}"),
            ));
        };
        let id = match entry.get("id") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| field_error(code, format!("{code}: id must be an integer")))?,
        };
        let value = entry
            .get("value")
            .ok_or_else(|| field_error(code, format!("{code}: missing 'value'")))?;
        let value = if value.is_null() {
            Value::Null
        } else {
            validate(code, &def.kind, value)?
        };
        if id == 0 {
            if value.is_null() {
                continue;
            }
            match occurrences.first_mut() {
                // A single-valued field has one occurrence: writing without id replaces it.
                Some(existing) if !def.multiple => existing.value = value,
                _ => occurrences.push(Occurrence {
                    id: new_id(),
                    value,
                }),
            }
        } else {
            let index = occurrences.iter().position(|o| o.id == id).ok_or_else(|| {
                field_error(code, format!("{code}: the user has no occurrence {id}"))
            })?;
            if value.is_null() {
                occurrences.remove(index);
            } else {
                occurrences[index].value = value;
            }
        }
    }
    if occurrences.is_empty() {
        user.extended.remove(code);
    }
    Ok(())
}

fn field_error(code: &str, message: String) -> ApiError {
    ApiError::bad(message).with("field", code)
}

/// Checks a value against its type; dates come back normalised.
fn validate(code: &str, kind: &ExtKind, value: &Value) -> Result<Value, ApiError> {
    match (kind, value) {
        (ExtKind::Text, Value::String(_)) | (ExtKind::Number, Value::Number(_)) => {
            Ok(value.clone())
        }
        (ExtKind::Date, Value::String(s)) => datetime::normalise(s)
            .map(Value::String)
            .ok_or_else(|| field_error(code, format!("{code}: '{s}' is not a date"))),
        (ExtKind::Compound(subs), Value::Object(obj)) => {
            let mut out = Map::new();
            for (sub_code, v) in obj {
                let sub = subs.iter().find(|s| &s.code == sub_code).ok_or_else(|| {
                    field_error(code, format!("{code}: unknown sub-field '{sub_code}'"))
                })?;
                let v = if v.is_null() {
                    Value::Null
                } else {
                    validate(sub_code, &sub.kind, v)?
                };
                out.insert(sub_code.clone(), v);
            }
            Ok(Value::Object(out))
        }
        _ => {
            let expected = match kind {
                ExtKind::Text => "a string",
                ExtKind::Number => "a number",
                ExtKind::Date => "a date string",
                ExtKind::Compound(_) => "an object with one entry per sub-field",
            };
            Err(field_error(code, format!("{code}: expected {expected}")))
        }
    }
}
