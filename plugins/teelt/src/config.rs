//! Connection settings, parsed once in `configure` so a typo fails at set-up naming the key.
//!
//! Teelt publishes no API (`shared/API-NOTES.md`): the paths are settings, with the
//! sandbox's model (`/talents`, `/talents/{id}`) as defaults.

use muster_sdk::ConnectorError;

/// Every key `configure` accepts: name, description, required.
pub const KEYS: &[(&str, &str, bool)] = &[
    (
        "base_url",
        "Base URL of the Teelt API (e.g. https://acme.teelt.io/api, or the sandbox's http://127.0.0.1:PORT)",
        true,
    ),
    (
        "talents_path",
        "Path of the talents list under base_url (default `/talents`); it takes `updated_since`, `page` and `limit`",
        false,
    ),
    (
        "talent_path",
        "Path of one talent under base_url, `{id}` standing for the talent id (default `/talents/{id}`)",
        false,
    ),
    (
        "page_size",
        "Talents per list request, 1–100 (default 100)",
        false,
    ),
];

/// Largest page the talents list serves.
pub const MAX_PAGE: usize = 100;

/// Validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Without a trailing slash.
    pub base_url: String,
    pub talents_path: String,
    /// Contains `{id}`.
    pub talent_path: String,
    pub page_size: usize,
}

fn bad(key: &str, why: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Invalid(format!("setting `{key}`: {why}"))
}

fn path_setting(key: &str, v: &str) -> Result<String, ConnectorError> {
    let v = v.trim();
    if !v.starts_with('/') || v.contains(['?', '#', ' ']) {
        return Err(bad(
            key,
            format!("`{v}` is not a path starting with `/` (without query)"),
        ));
    }
    Ok(v.trim_end_matches('/').to_string())
}

impl Settings {
    /// Parses the settings; unknown keys and bad values are `invalid` naming the key.
    pub fn parse(pairs: &[(String, String)]) -> Result<Settings, ConnectorError> {
        let mut base_url = None;
        let mut s = Settings {
            base_url: String::new(),
            talents_path: "/talents".into(),
            talent_path: "/talents/{id}".into(),
            page_size: MAX_PAGE,
        };
        for (key, value) in pairs {
            match key.as_str() {
                "base_url" => {
                    let v = value.trim().trim_end_matches('/');
                    let rest = v
                        .strip_prefix("https://")
                        .or_else(|| v.strip_prefix("http://"));
                    if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
                        return Err(bad(key, format!("`{value}` is not an http(s) URL")));
                    }
                    base_url = Some(v.to_string());
                }
                "talents_path" => s.talents_path = path_setting(key, value)?,
                "talent_path" => {
                    let p = path_setting(key, value)?;
                    if !p.contains("{id}") {
                        return Err(bad(key, format!("`{p}` has no `{{id}}` placeholder")));
                    }
                    s.talent_path = p;
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
                other => {
                    let known: Vec<&str> = KEYS.iter().map(|(k, _, _)| *k).collect();
                    return Err(ConnectorError::Invalid(format!(
                        "unknown setting `{other}`; the Teelt connector takes {}",
                        known.join(", ")
                    )));
                }
            }
        }
        s.base_url = base_url.ok_or_else(|| bad("base_url", "is required"))?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, ConnectorError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Settings::parse(&pairs)
    }

    #[test]
    fn defaults_and_paths() {
        let s = parse(&[("base_url", "https://acme.teelt.io/api/")]).unwrap();
        assert_eq!(s.base_url, "https://acme.teelt.io/api");
        assert_eq!((s.talents_path.as_str(), s.page_size), ("/talents", 100));
        let s = parse(&[
            ("base_url", "http://127.0.0.1:9"),
            ("talents_path", "/v2/people/"),
            ("talent_path", "/v2/people/{id}"),
            ("page_size", "10"),
        ])
        .unwrap();
        assert_eq!(
            (s.talents_path.as_str(), s.talent_path.as_str(), s.page_size),
            ("/v2/people", "/v2/people/{id}", 10)
        );
    }

    #[test]
    fn bad_settings_name_the_key() {
        let msg = |r: Result<Settings, ConnectorError>| match r {
            Err(ConnectorError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(msg(parse(&[])).contains("`base_url`"));
        assert!(msg(parse(&[("base_url", "ftp://x")])).contains("`base_url`"));
        assert!(msg(parse(&[("base_url", "http://x"), ("talent_path", "/t")])).contains("{id}"));
        assert!(msg(parse(&[("base_url", "http://x"), ("page_size", "0")])).contains("page_size"));
        assert!(msg(parse(&[("base_url", "http://x"), ("pagesize", "1")])).contains("pagesize"));
    }
}
