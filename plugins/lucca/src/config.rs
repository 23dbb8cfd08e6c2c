//! Connection settings (`[connections.<name>].settings` in the operator's TOML), parsed and
//! validated once in `configure`, so a typo fails at set-up naming the key, not mid-sync.

use muster_sdk::ConnectorError;

use crate::time;

/// Every key `configure` accepts, with its description (shown by `muster plugin inspect`).
pub const KEYS: &[(&str, &str, bool)] = &[
    (
        "subdomain",
        "Lucca account name: `acme` for https://acme.ilucca.net (this or `base_url` is required)",
        false,
    ),
    (
        "base_url",
        "Full base URL, overriding `subdomain` (other Lucca hosts such as https://acme.ilucca-test.net, or the sandbox's http://127.0.0.1:PORT)",
        false,
    ),
    (
        "page_size",
        "Users per request when reading, 1–1000 (default 1000, Lucca's maximum)",
        false,
    ),
    (
        "modified_since",
        "RFC 3339 timestamp (the engine's watermark): read-people only returns users modified since then (`modifiedAt=since,…`). Unset: full read",
        false,
    ),
    (
        "custom_fields",
        "Comma-separated extended-data codes to read into custom-fields (e.g. `e_tshirt,e_formation`), or `*` for all. Unset: none (the key then needs no HR-file custom-data permission)",
        false,
    ),
    (
        "row_keys",
        "Key sub-field of multi-occurrence compound fields, `code:sub` pairs separated by commas (default `e_formation:e_title`): rows are matched on it when written and sorted by it when read",
        false,
    ),
    (
        "compound_fields",
        "Compound fields a flow writes into this Lucca, checked by `muster check` against the HR-file definitions (present, compound, multi-occurrence, editable, every sub-field and the row key): `code:sub|sub|…` entries separated by commas, e.g. the Cards statistics `e_formation:e_title|e_link|e_progress|e_score|e_last_completion_date`. Unset: nothing checked",
        false,
    ),
    (
        "phone_field",
        "Lucca field that holds `phone`: `professionalMobile` (default), `directLine` or `personalMobile`",
        false,
    ),
    (
        "contract_type_field",
        "Extended-data code (single text) holding the contract type; Lucca's users API has no contract-type field. Unset: contract-type is neither read nor written",
        false,
    ),
    (
        "default_legal_entity",
        "Establishment (legal entity) used when creating a user whose record has none: its id, code or name (a name is resolved through the organisation API by `check` and the first create)",
        false,
    ),
    (
        "default_department",
        "Department used when creating a user whose record has none: its id, code or name",
        false,
    ),
    (
        "default_role",
        "Main role (`rolePrincipalId`) used when creating a user (records carry no role): its id or name, from Lucca's roles",
        false,
    ),
    (
        "default_legal_entity_id",
        "Same as `default_legal_entity`, an id only (kept for existing configurations)",
        false,
    ),
    (
        "default_department_id",
        "Same as `default_department`, an id only",
        false,
    ),
    (
        "default_role_id",
        "Same as `default_role`, an id only",
        false,
    ),
];

/// A create default as configured: a Lucca id, or a name (or code) to resolve through
/// Lucca's lists before the first create.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultRef {
    Id(u64),
    Name(String),
}

/// A configured create default and the setting that gave it (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateDefault {
    pub setting: String,
    pub value: DefaultRef,
}

/// Which extended-data codes to read.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CustomFields {
    /// None: `extendedData` is not requested at all.
    #[default]
    None,
    /// Every code the user has.
    All,
    /// These codes only.
    Codes(Vec<String>),
}

impl CustomFields {
    /// Whether `code` is to be read.
    pub fn wants(&self, code: &str) -> bool {
        match self {
            CustomFields::None => false,
            CustomFields::All => true,
            CustomFields::Codes(c) => c.iter().any(|x| x == code),
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `https://{subdomain}.ilucca.net` or `base_url`, without a trailing slash.
    pub base_url: String,
    pub page_size: usize,
    /// `modified_since` converted to Lucca's `YYYY-MM-DDTHH:MM:SS` (UTC).
    pub modified_since: Option<String>,
    pub custom_fields: CustomFields,
    /// `(code, key sub-field)` pairs.
    pub row_keys: Vec<(String, String)>,
    /// `(code, sub-field codes)` of the compound fields a flow writes here, for `check`.
    pub compound_fields: Vec<(String, Vec<String>)>,
    /// The Lucca field behind `phone`.
    pub phone_field: String,
    pub contract_type_field: Option<String>,
    /// Create defaults for the mandatory legal entity, department and main role.
    pub default_legal_entity: Option<CreateDefault>,
    pub default_department: Option<CreateDefault>,
    pub default_role: Option<CreateDefault>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            base_url: String::new(),
            page_size: MAX_PAGE,
            modified_since: None,
            custom_fields: CustomFields::None,
            row_keys: vec![("e_formation".into(), "e_title".into())],
            compound_fields: Vec::new(),
            phone_field: "professionalMobile".into(),
            contract_type_field: None,
            default_legal_entity: None,
            default_department: None,
            default_role: None,
        }
    }
}

/// Lucca's maximum (and default) page of users.
pub const MAX_PAGE: usize = 1000;

fn bad(key: &str, why: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Invalid(format!("setting `{key}`: {why}"))
}

fn id_setting(key: &str, v: &str) -> Result<u64, ConnectorError> {
    v.trim()
        .parse()
        .map_err(|_| bad(key, format!("`{v}` is not a Lucca id (a positive integer)")))
}

fn code_setting(key: &str, v: &str) -> Result<String, ConnectorError> {
    let v = v.trim();
    if v.starts_with("e_")
        && v.len() > 2
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(v.to_string())
    } else {
        Err(bad(
            key,
            format!("`{v}` is not an extended-data code (codes look like `e_formation`)"),
        ))
    }
}

/// `code:sub|sub|…` entries separated by commas.
fn compound_fields(key: &str, value: &str) -> Result<Vec<(String, Vec<String>)>, ConnectorError> {
    let mut out = Vec::new();
    for entry in value.split(',').filter(|e| !e.trim().is_empty()) {
        let (code, subs) = entry
            .split_once(':')
            .ok_or_else(|| bad(key, format!("`{}` is not `code:sub|sub|…`", entry.trim())))?;
        let subs = subs
            .split('|')
            .map(|c| code_setting(key, c))
            .collect::<Result<Vec<_>, _>>()?;
        out.push((code_setting(key, code)?, subs));
    }
    Ok(out)
}

/// Where a `default_*` setting goes.
fn default_slot<'s>(s: &'s mut Settings, key: &str) -> &'s mut Option<CreateDefault> {
    if key.starts_with("default_legal_entity") {
        &mut s.default_legal_entity
    } else if key.starts_with("default_department") {
        &mut s.default_department
    } else {
        &mut s.default_role
    }
}

impl Settings {
    /// Parses the settings; unknown keys and bad values are `invalid` naming the key.
    pub fn parse(pairs: &[(String, String)]) -> Result<Settings, ConnectorError> {
        let mut s = Settings::default();
        let mut subdomain = None;
        let mut base_url = None;
        for (key, value) in pairs {
            match key.as_str() {
                "subdomain" => {
                    let v = value.trim().to_ascii_lowercase();
                    if v.is_empty()
                        || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        || v.starts_with('-')
                    {
                        return Err(bad(
                            key,
                            format!(
                                "`{value}` is not a Lucca account name (only the part before .ilucca.net, e.g. `acme`)"
                            ),
                        ));
                    }
                    subdomain = Some(v);
                }
                "base_url" => {
                    let v = value.trim().trim_end_matches('/');
                    let rest = v
                        .strip_prefix("https://")
                        .or_else(|| v.strip_prefix("http://"));
                    if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
                        return Err(bad(
                            key,
                            format!(
                                "`{value}` is not an http(s) URL such as https://acme.ilucca.net"
                            ),
                        ));
                    }
                    base_url = Some(v.to_string());
                }
                "page_size" => {
                    s.page_size = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            bad(
                                key,
                                format!("`{value}` is not a number from 1 to {MAX_PAGE}"),
                            )
                        })?;
                }
                "modified_since" => {
                    if !value.trim().is_empty() {
                        s.modified_since =
                            Some(time::rfc3339_to_lucca_utc(value.trim()).ok_or_else(|| {
                                bad(
                                    key,
                                    format!(
                                        "`{value}` is not an RFC 3339 timestamp such as 2026-05-01T08:45:23Z"
                                    ),
                                )
                            })?);
                    }
                }
                "custom_fields" => {
                    let v = value.trim();
                    s.custom_fields = match v {
                        "" => CustomFields::None,
                        "*" => CustomFields::All,
                        list => CustomFields::Codes(
                            list.split(',')
                                .map(|c| code_setting(key, c))
                                .collect::<Result<_, _>>()?,
                        ),
                    };
                }
                "row_keys" => {
                    s.row_keys = Vec::new();
                    for pair in value.split(',').filter(|p| !p.trim().is_empty()) {
                        let (code, sub) = pair
                            .split_once(':')
                            .ok_or_else(|| bad(key, format!("`{pair}` is not `code:sub-field`")))?;
                        s.row_keys
                            .push((code_setting(key, code)?, code_setting(key, sub)?));
                    }
                }
                "compound_fields" => s.compound_fields = compound_fields(key, value)?,
                "phone_field" => {
                    let v = value.trim();
                    if !matches!(v, "professionalMobile" | "directLine" | "personalMobile") {
                        return Err(bad(
                            key,
                            format!(
                                "`{v}` is not one of professionalMobile, directLine, personalMobile"
                            ),
                        ));
                    }
                    s.phone_field = v.to_string();
                }
                "contract_type_field" => {
                    s.contract_type_field = Some(code_setting(key, value)?);
                }
                "default_legal_entity_id" | "default_department_id" | "default_role_id" => {
                    let d = CreateDefault {
                        setting: key.clone(),
                        value: DefaultRef::Id(id_setting(key, value)?),
                    };
                    *default_slot(&mut s, key) = Some(d);
                }
                "default_legal_entity" | "default_department" | "default_role" => {
                    let v = value.trim();
                    if v.is_empty() {
                        return Err(bad(key, "is empty: give an id or a name"));
                    }
                    let value = match v.parse() {
                        Ok(id) => DefaultRef::Id(id),
                        Err(_) => DefaultRef::Name(v.to_string()),
                    };
                    *default_slot(&mut s, key) = Some(CreateDefault {
                        setting: key.clone(),
                        value,
                    });
                }
                other => {
                    let known: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
                    return Err(ConnectorError::Invalid(format!(
                        "unknown setting `{other}`; the Lucca connector knows {}",
                        known.join(", ")
                    )));
                }
            }
        }
        s.base_url = match (base_url, subdomain) {
            (Some(url), _) => url,
            (None, Some(sub)) => format!("https://{sub}.ilucca.net"),
            (None, None) => {
                return Err(ConnectorError::Invalid(
                    "missing setting `subdomain` (the Lucca account name, as in https://acme.ilucca.net) or `base_url`".into(),
                ));
            }
        };
        Ok(s)
    }

    /// The key sub-field of a multi-occurrence compound field, if configured.
    pub fn row_key(&self, code: &str) -> Option<&str> {
        self.row_keys
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, k)| k.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, ConnectorError> {
        Settings::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        match parse(pairs) {
            Err(ConnectorError::Invalid(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn subdomain_base_url_and_defaults() {
        let s = parse(&[("subdomain", "Acme")]).unwrap();
        assert_eq!(s.base_url, "https://acme.ilucca.net");
        assert_eq!(s.page_size, 1000);
        assert_eq!(s.row_key("e_formation"), Some("e_title"));
        let s = parse(&[
            ("subdomain", "acme"),
            ("base_url", "http://127.0.0.1:8080/"),
        ])
        .unwrap();
        assert_eq!(s.base_url, "http://127.0.0.1:8080");
        assert!(err(&[]).contains("`subdomain`"));
        assert!(err(&[("subdomain", "acme.ilucca.net/x")]).contains("`subdomain`"));
        assert!(err(&[("base_url", "ftp://x")]).contains("`base_url`"));
    }

    #[test]
    fn every_key_is_validated_by_name() {
        let s = parse(&[
            ("subdomain", "acme"),
            ("page_size", "100"),
            ("modified_since", "2026-05-01T10:45:23+02:00"),
            ("custom_fields", "e_tshirt, e_formation"),
            ("row_keys", "e_formation:e_title,e_x:e_y"),
            ("phone_field", "directLine"),
            ("contract_type_field", "e_contract"),
            ("default_legal_entity_id", "2"),
            ("default_department_id", "3"),
            ("default_role_id", "1"),
        ])
        .unwrap();
        assert_eq!(s.modified_since.as_deref(), Some("2026-05-01T08:45:23"));
        assert_eq!(
            s.custom_fields,
            CustomFields::Codes(vec!["e_tshirt".into(), "e_formation".into()])
        );
        assert_eq!(s.row_key("e_x"), Some("e_y"));
        let value = |d: &Option<CreateDefault>| d.as_ref().map(|d| d.value.clone());
        assert_eq!(
            (
                value(&s.default_legal_entity),
                value(&s.default_department),
                value(&s.default_role)
            ),
            (
                Some(DefaultRef::Id(2)),
                Some(DefaultRef::Id(3)),
                Some(DefaultRef::Id(1))
            )
        );
        let s = parse(&[
            ("subdomain", "acme"),
            ("default_legal_entity", " Sandbox Paris "),
            ("default_department", "12"),
            ("default_role", "Collaborateur"),
        ])
        .unwrap();
        assert_eq!(
            s.default_legal_entity,
            Some(CreateDefault {
                setting: "default_legal_entity".into(),
                value: DefaultRef::Name("Sandbox Paris".into())
            })
        );
        assert_eq!(value(&s.default_department), Some(DefaultRef::Id(12)));
        assert_eq!(
            value(&s.default_role),
            Some(DefaultRef::Name("Collaborateur".into()))
        );
        for (k, v) in [
            ("page_size", "1001"),
            ("page_size", "0"),
            ("modified_since", "yesterday"),
            ("custom_fields", "tshirt"),
            ("row_keys", "e_formation"),
            ("phone_field", "fax"),
            ("contract_type_field", "contract"),
            ("default_legal_entity_id", "Paris"),
            ("default_role_id", "-1"),
            ("default_role", " "),
        ] {
            let m = err(&[("subdomain", "acme"), (k, v)]);
            assert!(m.contains(&format!("`{k}`")), "{k}={v}: {m}");
        }
        let m = err(&[("subdomain", "acme"), ("base-url", "x")]);
        assert!(
            m.contains("unknown setting `base-url`") && m.contains("base_url"),
            "{m}"
        );
    }

    #[test]
    fn compound_fields_are_codes_with_their_sub_fields() {
        let s = parse(&[
            ("subdomain", "acme"),
            (
                "compound_fields",
                "e_formation:e_title|e_link|e_score, e_other:e_a",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.compound_fields,
            [
                (
                    "e_formation".to_string(),
                    vec!["e_title".to_string(), "e_link".into(), "e_score".into()]
                ),
                ("e_other".to_string(), vec!["e_a".to_string()]),
            ]
        );
        let err = parse(&[("subdomain", "acme"), ("compound_fields", "e_formation")]).unwrap_err();
        assert!(
            format!("{err:?}").contains("`e_formation` is not `code:sub|sub|…`"),
            "{err:?}"
        );
        let err = parse(&[
            ("subdomain", "acme"),
            ("compound_fields", "e_formation:title"),
        ])
        .unwrap_err();
        assert!(
            format!("{err:?}").contains("`title` is not an extended-data code"),
            "{err:?}"
        );
    }
}
