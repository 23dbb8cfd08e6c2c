//! The connection's settings, parsed once by `configure`.

use muster_sdk::prelude::*;

/// Cards' API base.
pub const DEFAULT_BASE_URL: &str = "https://api.cards-microlearning.com/v1";
/// Largest `paginate` Cards serves.
pub const MAX_PAGE: usize = 500;
/// The group that marks former employees (see the crate docs: Cards has no deactivation).
pub const DEFAULT_LEAVERS_GROUP: &str = "Former employees (muster)";

/// How created users sign in: Cards' `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionMode {
    /// `app`: e-mail and password.
    Password,
    /// `sso`: the space's SSO.
    Sso,
}

impl ConnectionMode {
    pub fn source(self) -> &'static str {
        match self {
            ConnectionMode::Password => "app",
            ConnectionMode::Sso => "sso",
        }
    }
}

/// The codes of the compound custom field the statistics feed fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsCodes {
    pub field: String,
    pub title: String,
    pub link: String,
    pub progress: String,
    pub score: String,
    pub last_completion: String,
}

impl Default for StatsCodes {
    fn default() -> Self {
        StatsCodes {
            field: "e_formation".into(),
            title: "e_title".into(),
            link: "e_link".into(),
            progress: "e_progress".into(),
            score: "e_score".into(),
            last_completion: "e_last_completion_date".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub base_url: String,
    pub tenant: String,
    pub notify: bool,
    pub mode: ConnectionMode,
    pub page_size: usize,
    pub leavers_group: String,
    /// `feed = "statistics"`: `read-people` reads the training-statistics feed.
    pub statistics: bool,
    pub codes: StatsCodes,
}

/// The keys `configure` takes, with their descriptions (the manifest lists them).
pub const KEYS: &[(&str, &str)] = &[
    (
        "base_url",
        "API base URL (default https://api.cards-microlearning.com/v1)",
    ),
    (
        "tenant",
        "your Cards tenant id, sent as X-Tenant (required)",
    ),
    (
        "notify_created_users",
        "yes/no (default no): Cards e-mails each user this connector creates",
    ),
    (
        "invite_on_create",
        "the flow's option, passed by the host: used when notify_created_users is unset",
    ),
    (
        "connection_mode",
        "password (default) or sso: how created users sign in",
    ),
    ("page_size", "users per list request, 1-500 (default 500)"),
    (
        "leavers_group",
        "group marking former employees (default `Former employees (muster)`)",
    ),
    (
        "feed",
        "statistics: read-people reads the training-statistics feed (source role)",
    ),
    (
        "stats_field",
        "compound field of the statistics rows (default e_formation)",
    ),
    (
        "stats_title",
        "sub-field of the training title (default e_title)",
    ),
    (
        "stats_link",
        "sub-field of the training link (default e_link)",
    ),
    (
        "stats_progress",
        "sub-field of the progress (default e_progress)",
    ),
    ("stats_score", "sub-field of the score (default e_score)"),
    (
        "stats_last_completion",
        "sub-field of the last completion date (default e_last_completion_date)",
    ),
];

fn invalid(key: &str, expected: &str, value: &str) -> ConnectorError {
    ConnectorError::Invalid(format!("setting `{key}` must be {expected}, got `{value}`"))
}

fn yes_no(key: &str, value: &str) -> Result<bool, ConnectorError> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(invalid(key, "yes or no", value)),
    }
}

/// A field code: what Lucca accepts (`e_` then letters, digits, `_`).
fn code(key: &str, value: &str) -> Result<String, ConnectorError> {
    let ok = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(value.to_string())
    } else {
        Err(invalid(key, "a field code (letters, digits, `_`)", value))
    }
}

impl Settings {
    pub fn parse(settings: &[(String, String)]) -> Result<Settings, ConnectorError> {
        let mut s = Settings {
            base_url: DEFAULT_BASE_URL.into(),
            tenant: String::new(),
            notify: false,
            mode: ConnectionMode::Password,
            page_size: MAX_PAGE,
            leavers_group: DEFAULT_LEAVERS_GROUP.into(),
            statistics: false,
            codes: StatsCodes::default(),
        };
        let (mut notify, mut invite) = (None, None);
        for (key, value) in settings {
            let value = value.trim();
            match key.as_str() {
                "base_url" if value.starts_with("https://") || value.starts_with("http://") => {
                    s.base_url = value.trim_end_matches('/').to_string();
                }
                "base_url" => return Err(invalid(key, "an http(s) URL", value)),
                "tenant" => s.tenant = value.to_string(),
                "notify_created_users" => notify = Some(yes_no(key, value)?),
                "invite_on_create" => invite = Some(yes_no(key, value)?),
                "connection_mode" => {
                    s.mode = match value.to_ascii_lowercase().as_str() {
                        "password" | "app" => ConnectionMode::Password,
                        "sso" => ConnectionMode::Sso,
                        _ => return Err(invalid(key, "password or sso", value)),
                    }
                }
                "page_size" => {
                    s.page_size = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| invalid(key, "a number from 1 to 500", value))?;
                }
                "leavers_group" if !value.is_empty() && value.chars().count() <= 190 => {
                    s.leavers_group = value.to_string();
                }
                "leavers_group" => {
                    return Err(invalid(key, "a group name of 1 to 190 characters", value));
                }
                "feed" if value == "statistics" => s.statistics = true,
                "feed" => return Err(invalid(key, "`statistics`", value)),
                "stats_field" => s.codes.field = code(key, value)?,
                "stats_title" => s.codes.title = code(key, value)?,
                "stats_link" => s.codes.link = code(key, value)?,
                "stats_progress" => s.codes.progress = code(key, value)?,
                "stats_score" => s.codes.score = code(key, value)?,
                "stats_last_completion" => s.codes.last_completion = code(key, value)?,
                other => warn!("ignoring unknown setting `{other}`"),
            }
        }
        // The connection's own setting wins over the flow's `invite_on_create`.
        s.notify = notify.or(invite).unwrap_or(false);
        if s.tenant.is_empty() {
            return Err(ConnectorError::Invalid(
                "setting `tenant` is required: your Cards tenant id (sent as X-Tenant)".into(),
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, ConnectorError> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::parse(&owned)
    }

    #[test]
    fn the_seed_options_and_their_defaults() {
        let s = parse(&[("tenant", " acme ")]).expect("minimal");
        assert_eq!(
            (s.tenant.as_str(), s.notify, s.mode),
            ("acme", false, ConnectionMode::Password)
        );
        assert_eq!(s.mode.source(), "app");
        assert_eq!(s.codes, StatsCodes::default());
        let s = parse(&[
            ("tenant", "acme"),
            ("notify_created_users", "yes"),
            ("invite_on_create", "false"),
            ("connection_mode", "SSO"),
            ("stats_field", "e_cards"),
        ])
        .expect("options");
        assert!(
            s.notify,
            "the connection's own setting wins over the flow's"
        );
        assert_eq!(s.mode.source(), "sso");
        assert_eq!(s.codes.field, "e_cards");
        let s = parse(&[("tenant", "acme"), ("invite_on_create", "true")]).expect("flow option");
        assert!(s.notify);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = |pairs: &[(&str, &str)]| match parse(pairs) {
            Err(ConnectorError::Invalid(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert!(err(&[]).contains("`tenant` is required"));
        assert!(err(&[("tenant", "a"), ("connection_mode", "ldap")]).contains("`connection_mode`"));
        assert!(err(&[("tenant", "a"), ("page_size", "501")]).contains("`page_size`"));
        assert!(err(&[("tenant", "a"), ("notify_created_users", "maybe")]).contains("yes or no"));
        assert!(err(&[("tenant", "a"), ("feed", "users")]).contains("`feed`"));
        assert!(err(&[("tenant", "a"), ("stats_title", "e-title")]).contains("`stats_title`"));
    }
}
