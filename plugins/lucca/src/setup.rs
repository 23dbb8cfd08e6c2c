//! The HR-file setup a write-back needs, checked by `check` against
//! `GET /api/v3/extensionuserdefinitions` before any run writes into it.
//!
//! A flow that writes a compound field (the Cards training statistics: `e_formation` with
//! sub-fields `e_title`, `e_link`, `e_progress`, `e_score`, `e_last_completion_date`) needs
//! Lucca's field set up the way the Cards guide describes: compound data, "Allow multiple
//! occurrences" ticked, every sub-field present, and "Editable" ticked in the section that
//! shows it. The setting `compound_fields` names what to expect; each problem names the code
//! and what is expected, so the admin knows which box to tick.
//!
//! `isMultiple` and `isEditable` are only held against the field when Lucca says `false`: a
//! definition without them is not reported.

use serde_json::Value;

/// What a flow writes into one compound field: its code, the sub-field codes, and the row key
/// the connector matches rows on (setting `row_keys`).
pub struct Expected<'a> {
    pub code: &'a str,
    pub sub_fields: &'a [String],
    pub row_key: Option<&'a str>,
}

/// The problems of `expected` against the definition items, in plain words (none: set up).
pub fn problems(items: &[Value], expected: &Expected<'_>) -> Vec<String> {
    let code = expected.code;
    let subs = expected.sub_fields.join(", ");
    let Some(def) = find(items, code) else {
        return vec![format!(
            "custom field `{code}` is missing from Lucca's HR-file definitions (GET /api/v3/extensionuserdefinitions): create it in HR Base > Settings > Data management as compound data with sub-fields {subs}, tick 'Allow multiple occurrences', or set `compound_fields` to the codes you chose"
        )];
    };
    let kind = def.get("type").and_then(Value::as_str).unwrap_or("unknown");
    if !kind.eq_ignore_ascii_case("compound") {
        return vec![format!(
            "custom field `{code}` is of type `{kind}`, not compound data: it must be compound data with sub-fields {subs}"
        )];
    }
    let mut out = Vec::new();
    if def.get("isMultiple").and_then(Value::as_bool) == Some(false) {
        out.push(format!(
            "custom field `{code}` does not allow multiple occurrences: tick 'Allow multiple occurrences' (one row per training)"
        ));
    }
    if def.get("isEditable").and_then(Value::as_bool) == Some(false) {
        out.push(format!(
            "custom field `{code}` is not editable: tick 'Editable' in the HR-file section that shows it"
        ));
    }
    let have: Vec<&Value> = def
        .get("subDefinitions")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let have_codes: Vec<&str> = have
        .iter()
        .filter_map(|d| d.get("code").and_then(Value::as_str))
        .collect();
    for sub in expected.sub_fields {
        match find_in(&have, sub) {
            None => out.push(format!(
                "custom field `{code}` has no sub-field `{sub}` (expected {subs}; it has {})",
                list(&have_codes)
            )),
            Some(d) if d.get("isEditable").and_then(Value::as_bool) == Some(false) => out.push(
                format!("sub-field `{sub}` of `{code}` is not editable: tick 'Editable' for it"),
            ),
            Some(_) => {}
        }
    }
    if let Some(key) = expected.row_key
        && !expected.sub_fields.iter().any(|s| s == key)
    {
        out.push(format!(
            "the row key of `{code}` (setting `row_keys`) is `{key}`, which is not among its expected sub-fields {subs}"
        ));
    }
    out
}

fn find<'v>(items: &'v [Value], code: &str) -> Option<&'v Value> {
    items
        .iter()
        .find(|d| d.get("code").and_then(Value::as_str) == Some(code))
}

fn find_in<'v>(items: &[&'v Value], code: &str) -> Option<&'v Value> {
    items
        .iter()
        .copied()
        .find(|d| d.get("code").and_then(Value::as_str) == Some(code))
}

fn list(codes: &[&str]) -> String {
    if codes.is_empty() {
        "none".into()
    } else {
        codes.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUBS: [&str; 5] = [
        "e_title",
        "e_link",
        "e_progress",
        "e_score",
        "e_last_completion_date",
    ];

    fn formation(multiple: bool, editable: bool, subs: &[&str]) -> Value {
        let subs: Vec<Value> = subs
            .iter()
            .map(|c| json!({"code": c, "type": "string", "isMultiple": false}))
            .collect();
        json!({"id": 3, "code": "e_formation", "type": "compound", "isMultiple": multiple,
               "isEditable": editable, "subDefinitions": subs})
    }

    fn check(items: &[Value]) -> Vec<String> {
        let subs: Vec<String> = SUBS.iter().map(|s| s.to_string()).collect();
        problems(
            items,
            &Expected {
                code: "e_formation",
                sub_fields: &subs,
                row_key: Some("e_title"),
            },
        )
    }

    #[test]
    fn the_field_set_up_as_the_guide_says_passes() {
        assert_eq!(check(&[formation(true, true, &SUBS)]), Vec::<String>::new());
    }

    #[test]
    fn each_deviation_names_the_code_and_what_is_expected() {
        let missing = check(&[json!({"code": "e_tshirt", "type": "string"})]);
        assert_eq!(missing.len(), 1);
        assert!(
            missing[0].starts_with(
                "custom field `e_formation` is missing from Lucca's HR-file definitions"
            ),
            "{missing:?}"
        );
        let single = check(&[formation(false, false, &SUBS[..4])]);
        assert_eq!(
            single,
            [
                "custom field `e_formation` does not allow multiple occurrences: tick 'Allow multiple occurrences' (one row per training)",
                "custom field `e_formation` is not editable: tick 'Editable' in the HR-file section that shows it",
                "custom field `e_formation` has no sub-field `e_last_completion_date` (expected e_title, e_link, e_progress, e_score, e_last_completion_date; it has e_title, e_link, e_progress, e_score)",
            ]
        );
        let text = check(&[json!({"code": "e_formation", "type": "string"})]);
        assert!(
            text[0].contains("is of type `string`, not compound data"),
            "{text:?}"
        );
    }
}
