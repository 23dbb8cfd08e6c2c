//! # The configuration file
//!
//! One TOML file describes a tenant: its time zone and state database, the
//! connections (a plugin plus its settings, secret and hosts) and the flows
//! between them (source, target, schedule, policy, mapping, webhook). Every
//! key is documented with an example in `docs/config.md`.
//!
//! [`Config::load`] reads and validates it completely before anything runs:
//! a flow naming a connection that does not exist, a time zone jiff does
//! not know, a schedule that does not parse or a field name that is neither
//! canonical nor `custom:<code>` is a [`ConfigError`] naming the file, the
//! key path and its line:column, and saying how to fix it. Unknown keys are
//! refused (with the closest known key suggested): a typo such as
//! `max_deactivte` must not silently fall back to a default guard.
//!
//! Each flow is resolved here into the core's own types — a
//! [`muster_core::Policy`] and a [`muster_core::Mapping`] — so the engine
//! receives exactly what the planner obeys and nothing is re-interpreted
//! later.
//!
//! `[alerts]` (optional) says where `muster serve` reports a failed run, a
//! held plan and records that keep failing: see `alerts.rs`.
//!
//! ## Secrets
//!
//! A secret is *named* by the config (`secret = { env = "VAR" }` or
//! `secret = { file = "path" }`), never written in it: an inline
//! `secret = "…"` is refused. [`SecretSource::load`] reads it when needed
//! and returns a [`Secret`] whose `Debug`/`Display` print `[redacted]`.
//! Parsing a config never reads a secret, so `muster check` can report a
//! bad config and a missing variable separately.
//!
//! ## Paths
//!
//! Relative paths (`tenant.state`, `tenant.cache`, a plugin's `./x.wasm`, a
//! secret `file`) are relative to the config file's directory, not to the
//! current directory, so `muster serve --config /etc/muster/acme.toml`
//! behaves the same from anywhere.

mod alerts;
mod flow;
mod reader;
mod secret;
mod serve;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use muster_core::{Mapping, Policy};
use toml::de::DeTable;

use crate::schedule::Schedule;
use crate::store::{Location, PostgresLocation};
use reader::{Doc, Table, Val, closest, join};

pub use alerts::{AlertsSettings, EmailSettings, FAILING_AFTER_RUNS, SmtpTls};
pub use flow::TargetFacts;
pub use secret::{Secret, SecretSource};
pub use serve::{Admin, ServeSettings};

/// The built-in connector plugins, by config name and plugin crate.
pub const BUILTIN_PLUGINS: &[(&str, &str)] = &[
    ("lucca", "muster-plugin-lucca"),
    ("leapsome", "muster-plugin-leapsome"),
    ("scim", "muster-plugin-scim"),
    ("flatchr", "muster-plugin-flatchr"),
    ("cards", "muster-plugin-cards"),
    ("teelt", "muster-plugin-teelt"),
];

/// A configuration problem, with what is needed to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML itself does not parse.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key is missing, mistyped, unknown, or its value is invalid.
    #[error("{}:{line}:{column}: `{key}`: {message}", file.display())]
    Invalid {
        file: PathBuf,
        /// The dotted key path, e.g. `flows.lucca-to-leapsome.guard.max_deactivate`.
        key: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "the secret's environment variable `{var}` {problem}: export it before starting muster (or name a file with `secret = {{ file = \"…\" }}`)"
    )]
    SecretEnv { var: String, problem: String },
    #[error("the secret file {} {problem}: check the path and that muster may read it", path.display())]
    SecretFile { path: PathBuf, problem: String },
    /// A secret was loaded but is not usable as what it is for (e.g. the
    /// alert webhook URL is not https). Names where it came from, never the
    /// value.
    #[error("the secret in the {secret} {problem}")]
    SecretInvalid { secret: String, problem: String },
    /// `tenant.state` names a PostgreSQL database the store cannot use.
    #[error("tenant.state: {0}")]
    State(#[source] Box<crate::store::StoreError>),
}

impl Tenant {
    /// Where the state store is: see [`state_location`].
    pub fn location(&self) -> Result<Location, ConfigError> {
        state_location(&self.state, self.state_password.as_ref())
    }
}

/// The store `state` names: a SQLite file, or a PostgreSQL database (a
/// `postgres://` URL) with its password loaded from `password`'s secret —
/// held in memory only, never logged.
pub fn state_location(
    state: &Path,
    password: Option<&SecretSource>,
) -> Result<Location, ConfigError> {
    let Some(url) = state.to_str().filter(|s| Location::is_postgres_url(s)) else {
        return Ok(Location::Sqlite(state.to_path_buf()));
    };
    let password = password
        .map(|s| s.load().map(|p| p.expose().to_string()))
        .transpose()?;
    PostgresLocation::parse(url, password)
        .map(|l| Location::Postgres(Box::new(l)))
        .map_err(|e| ConfigError::State(Box::new(e)))
}

impl ConfigError {
    /// The dotted key path the error is about, when it is about a key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The 1-based line and column, when the error points into the file.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Invalid { line, column, .. }
            | ConfigError::Syntax { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// A whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (as given to [`Config::load`]).
    pub path: PathBuf,
    pub tenant: Tenant,
    pub connections: BTreeMap<String, Connection>,
    pub flows: BTreeMap<String, Flow>,
    /// `[alerts]`: where `muster serve` reports failures and held plans.
    pub alerts: Option<AlertsSettings>,
    /// `[serve]`: the admin pages' logins (none: read-only status page).
    pub serve: ServeSettings,
}

/// `[tenant]`
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    /// Schedules fire and "today" is computed in this zone.
    pub timezone: TimeZone,
    /// The IANA name as written (`Europe/Paris`).
    pub timezone_name: String,
    /// The state database as configured: a SQLite file, resolved against
    /// the config's directory, or a PostgreSQL URL kept as written
    /// (`postgres://user@host:port/name`, checked when the config is read).
    /// [`Tenant::location`] says which.
    pub state: PathBuf,
    /// The PostgreSQL password (`state_password = { env = "…" }` or
    /// `{ file = "…" }`), loaded only when the store is opened.
    pub state_password: Option<SecretSource>,
    /// The compiled-plugin cache directory, if configured.
    pub cache: Option<PathBuf>,
}

/// The state a fleet gives each of its tenants ([`Config::load_fleet_tenant`]):
/// the tenant's schema in the fleet's database.
#[derive(Debug, Clone)]
pub struct FleetState {
    /// A `postgres://` URL that selects the tenant's schema.
    pub state: String,
    /// The fleet database's password secret.
    pub password: Option<SecretSource>,
}

/// `[connections.NAME]`
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub name: String,
    pub plugin: PluginRef,
    /// Passed to the plugin's `configure`, sorted by key. Numbers and
    /// booleans are written as text (`port = 8080` → `("port", "8080")`).
    pub settings: Vec<(String, String)>,
    pub secret: Option<SecretSource>,
    /// Narrows the plugin's manifest hosts (empty: the manifest's own, for a
    /// built-in plugin; required and non-empty for a third-party one).
    pub hosts: Vec<String>,
    /// Let *this connection's* plugin reach loopback (sandbox and tests).
    /// Other connections are not affected; private ranges stay refused.
    pub allow_loopback: bool,
    /// The most calls to this connection in flight at once when it is a
    /// flow's target (`max_in_flight`, 1 to [`MAX_IN_FLIGHT`], default
    /// [`DEFAULT_IN_FLIGHT`]; 1 applies one call at a time). The vendor's
    /// declared rate limit paces them whatever this says.
    pub max_in_flight: usize,
}

/// `max_in_flight` when a connection does not set it.
pub const DEFAULT_IN_FLIGHT: usize = 8;
/// The largest `max_in_flight`: each call in flight is a plugin instance
/// (its own memory) and a thread.
pub const MAX_IN_FLIGHT: usize = 64;

/// Which plugin a connection runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// One of [`BUILTIN_PLUGINS`], by name.
    Builtin(String),
    /// A third-party `.wasm`, resolved against the config's directory.
    Path(PathBuf),
}

impl PluginRef {
    /// The `.wasm` file to load.
    pub fn wasm_path(&self) -> PathBuf {
        match self {
            PluginRef::Builtin(name) => {
                let krate = BUILTIN_PLUGINS
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(name.as_str(), |(_, k)| k);
                crate::plugins::path(krate)
            }
            PluginRef::Path(p) => p.clone(),
        }
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginRef::Builtin(n) => write!(f, "{n} (built-in)"),
            PluginRef::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// `[flows.NAME]`
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub name: String,
    /// The source connection's name (a key of [`Config::connections`]).
    pub source: String,
    /// The target connection's name.
    pub target: String,
    pub schedule: Option<Schedule>,
    pub policy: Policy,
    pub mapping: Mapping,
    pub webhook: Option<Webhook>,
    /// The `fields` the operator listed, with where (`None`: the default,
    /// narrowed to what the target stores when the flow is connected, see
    /// [`Flow::fit_to_target`]).
    pub fields_listed: Option<Vec<Listed>>,
}

/// A field listed in the config, with its place for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub field: muster_core::FieldRef,
    /// The dotted key, e.g. `flows.hr-to-scim.fields[3]`.
    pub key: String,
    pub line: usize,
    pub column: usize,
}

/// `webhook = { secret = { env = "…" }, id_field = "candidate.id" }`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The shared secret senders put in the `X-Muster-Secret` header.
    pub secret: SecretSource,
    /// Dotted path of the record id in the event's JSON (`candidate.id`;
    /// a numeric segment indexes an array).
    pub id_field: String,
    /// Dotted paths that must be present (not null) in every event: the
    /// sender's documented shape (`["event", "data.column.id"]` for Flatchr).
    pub require: Vec<String>,
}

impl Config {
    /// Reads and validates the file at `path`. Relative paths inside it are
    /// resolved against its directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        Config::parse(&text, path, base)
    }

    /// Validates `text`; `path` names it in messages, `base_dir` resolves
    /// relative paths.
    pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
        Config::parse_with(text, path, base_dir, None)
    }

    /// Reads a fleet tenant's file (`muster serve --fleet`): today's format,
    /// except that the state is the fleet's — `state`, the tenant's schema
    /// in the fleet's database, replaces the file's, and a file that names
    /// a `state` or `state_password` of its own is refused at that key's
    /// line and column (two stores for one tenant would split its links).
    pub fn load_fleet_tenant(path: &Path, state: &FleetState) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Config::parse_with(&text, path, base, Some(state))
    }

    fn parse_with(
        text: &str,
        path: &Path,
        base_dir: &Path,
        fleet: Option<&FleetState>,
    ) -> Result<Config, ConfigError> {
        let doc = Doc { file: path, text };
        let root = DeTable::parse(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| doc.line_col(s.start));
            ConfigError::Syntax {
                file: path.to_path_buf(),
                line,
                column,
                message: format!("invalid TOML: {}", e.message()),
            }
        })?;
        let top = Table::new(
            &doc,
            "",
            root.get_ref(),
            root.span(),
            &["tenant", "connections", "flows", "alerts", "serve"],
        )?;

        let tenant = {
            let p = "tenant".to_string();
            let v = top
                .get("tenant", &p)
                .ok_or_else(|| top.missing("tenant", "{ name = \"acme\", timezone = \"Europe/Paris\", state = \"muster.db\" } (or a [tenant] section)"))?;
            parse_tenant(&v, base_dir, fleet)?
        };

        let mut connections = BTreeMap::new();
        let p = "connections".to_string();
        if let Some(v) = top.get("connections", &p) {
            let t = v.table(&[], "{ lucca = { plugin = \"lucca\" } }")?;
            for (name, span, value) in &t.entries {
                let cp = join("connections", name);
                check_name(&doc, &cp, span, name, "connection")?;
                let c = parse_connection(
                    &Val {
                        doc: &doc,
                        path: &cp,
                        value,
                    },
                    name,
                    base_dir,
                )?;
                connections.insert(name.clone(), c);
            }
        }

        let mut flows = BTreeMap::new();
        let mut identities = Vec::new();
        let p = "flows".to_string();
        if let Some(v) = top.get("flows", &p) {
            let t = v.table(&[], "{ a-to-b = { source = \"a\", target = \"b\" } }")?;
            for (name, span, value) in &t.entries {
                let fp = join("flows", name);
                check_name(&doc, &fp, span, name, "flow")?;
                let (f, identity) = flow::parse_flow(
                    &Val {
                        doc: &doc,
                        path: &fp,
                        value,
                    },
                    name,
                    &connections,
                    base_dir,
                )?;
                flows.insert(name.clone(), f);
                identities.extend(identity);
            }
        }
        flow::check_identities(&doc, &flows, &identities)?;

        let p = "alerts".to_string();
        let alerts = top
            .get("alerts", &p)
            .map(|v| alerts::parse_alerts(&v, base_dir))
            .transpose()?;

        let p = "serve".to_string();
        let serve = match top.get("serve", &p) {
            Some(v) => serve::parse_serve(&v, base_dir)?,
            None => ServeSettings::default(),
        };

        Ok(Config {
            path: path.to_path_buf(),
            tenant,
            connections,
            flows,
            alerts,
            serve,
        })
    }

    /// The flow named `name`, or an error listing the configured ones.
    pub fn flow(&self, name: &str) -> Result<&Flow, String> {
        self.flows.get(name).ok_or_else(|| {
            unknown_name_message("flow", name, self.flows.keys().map(String::as_str))
        })
    }

    /// The connection named `name`, or an error listing the configured ones.
    pub fn connection(&self, name: &str) -> Result<&Connection, String> {
        self.connections.get(name).ok_or_else(|| {
            unknown_name_message(
                "connection",
                name,
                self.connections.keys().map(String::as_str),
            )
        })
    }
}

/// "unknown flow `x` (did you mean `y`?); configured flows: a, b".
fn unknown_name_message<'c>(
    what: &str,
    name: &str,
    known: impl Iterator<Item = &'c str> + Clone,
) -> String {
    let hint = closest(name, known.clone())
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default();
    let list: Vec<&str> = known.collect();
    if list.is_empty() {
        format!("unknown {what} `{name}`{hint}: the config defines no {what}s")
    } else {
        format!(
            "unknown {what} `{name}`{hint}; configured {what}s: {}",
            list.join(", ")
        )
    }
}

/// Connection and flow names appear in URLs (`/webhooks/NAME`), file names
/// and logs: keep them to letters, digits, `-`, `_` and `.`.
fn check_name(
    doc: &Doc<'_>,
    path: &str,
    span: &std::ops::Range<usize>,
    name: &str,
    what: &str,
) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(doc.error(
            path,
            span,
            format!(
                "{} {what} name may only hold letters, digits, `-`, `_` and `.`; rename `{name}`",
                if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                }
            ),
        ))
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn parse_tenant(
    v: &Val<'_, '_>,
    base: &Path,
    fleet: Option<&FleetState>,
) -> Result<Tenant, ConfigError> {
    let t = v.table(
        &["name", "timezone", "state", "state_password", "cache"],
        "{ name = \"acme\", timezone = \"Europe/Paris\", state = \"muster.db\" }",
    )?;
    if let Some(fleet) = fleet {
        for key in ["state", "state_password"] {
            if let Some(own) = t.get(key, &join(v.path, key)) {
                return Err(own.error(format!(
                    "a fleet tenant's state is the fleet's database (`muster serve --fleet`), one schema per tenant; remove `{key}` from this file"
                )));
            }
        }
        let mut tenant = parse_tenant_rest(v, &t, base)?;
        tenant.state = PathBuf::from(&fleet.state);
        tenant.state_password = fleet.password.clone();
        return Ok(tenant);
    }
    parse_tenant_rest(v, &t, base).and_then(|tenant| parse_tenant_state(v, &t, base, tenant))
}

/// A tenant's name, time zone and cache (its state comes after).
fn parse_tenant_rest(
    v: &Val<'_, '_>,
    t: &reader::Table<'_, '_>,
    base: &Path,
) -> Result<Tenant, ConfigError> {
    let name_p = join(v.path, "name");
    let name = t
        .get("name", &name_p)
        .ok_or_else(|| t.missing("name", "\"acme\""))?
        .str("\"acme\"")?
        .to_string();
    let tz_p = join(v.path, "timezone");
    let tz_v = t
        .get("timezone", &tz_p)
        .ok_or_else(|| t.missing("timezone", "\"Europe/Paris\""))?;
    let timezone_name = tz_v.str("\"Europe/Paris\"")?.to_string();
    let timezone = TimeZone::get(&timezone_name).map_err(|_| {
        let hint = closest_zone(&timezone_name)
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        tz_v.error(format!(
            "unknown time zone `{timezone_name}`; {hint}use an IANA name such as `Europe/Paris` or `UTC`"
        ))
    })?;
    let cache_p = join(v.path, "cache");
    let cache = t
        .get("cache", &cache_p)
        .map(|c| c.str("\".muster-cache\""))
        .transpose()?;
    Ok(Tenant {
        name,
        timezone,
        timezone_name,
        state: PathBuf::new(),
        state_password: None,
        cache: cache.map(|c| resolve(base, c)),
    })
}

/// A tenant's own `state` and `state_password` (outside a fleet).
fn parse_tenant_state(
    v: &Val<'_, '_>,
    t: &reader::Table<'_, '_>,
    base: &Path,
    tenant: Tenant,
) -> Result<Tenant, ConfigError> {
    let state_p = join(v.path, "state");
    let state_v = t
        .get("state", &state_p)
        .ok_or_else(|| t.missing("state", "\"muster.db\""))?;
    let state = state_v.str("\"muster.db\"")?;
    let postgres = Location::is_postgres_url(state);
    if postgres {
        PostgresLocation::parse(state, None).map_err(|e| state_v.error(e.to_string()))?;
    }
    let password_p = join(v.path, "state_password");
    let state_password = match t.get("state_password", &password_p) {
        Some(p) if !postgres => {
            return Err(p.error(
                "a password is for a PostgreSQL state (`state = \"postgres://user@host/name\"`); a SQLite file has none",
            ));
        }
        Some(p) => Some(parse_secret(&p, base)?),
        None => None,
    };
    Ok(Tenant {
        state: if postgres {
            PathBuf::from(state)
        } else {
            resolve(base, state)
        },
        state_password,
        ..tenant
    })
}

/// The closest IANA name to a misspelt one (`Europe/Pari` → `Europe/Paris`).
fn closest_zone(name: &str) -> Option<String> {
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_string())
        .collect();
    closest(name, names.iter().map(String::as_str)).map(str::to_string)
}

fn parse_connection(v: &Val<'_, '_>, name: &str, base: &Path) -> Result<Connection, ConfigError> {
    let t = v.table(
        &[
            "plugin",
            "settings",
            "secret",
            "hosts",
            "allow_loopback",
            "max_in_flight",
        ],
        "{ plugin = \"lucca\" }",
    )?;
    let plugin_p = join(v.path, "plugin");
    let plugin_v = t
        .get("plugin", &plugin_p)
        .ok_or_else(|| t.missing("plugin", "\"lucca\" (a built-in) or \"./vendor.wasm\""))?;
    let plugin = parse_plugin(&plugin_v, base)?;

    let settings_p = join(v.path, "settings");
    let mut settings = Vec::new();
    if let Some(s) = t.get("settings", &settings_p) {
        let st = s.table(&[], "{ subdomain = \"acme\" }")?;
        for (key, _, value) in &st.entries {
            let kp = join(&settings_p, key);
            let item = Val {
                doc: v.doc,
                path: &kp,
                value,
            };
            let text = match item.get() {
                toml::de::DeValue::String(s) => s.to_string(),
                toml::de::DeValue::Integer(_) => item.int("1")?.to_string(),
                toml::de::DeValue::Float(_) => item.float("1.5")?.to_string(),
                toml::de::DeValue::Boolean(b) => b.to_string(),
                _ => {
                    return Err(item.wrong_type(
                        "a string, number or boolean (settings are passed to the plugin as text)",
                        "\"value\"",
                    ));
                }
            };
            settings.push((key.clone(), text));
        }
        settings.sort();
    }

    let secret_p = join(v.path, "secret");
    let secret = t
        .get("secret", &secret_p)
        .map(|s| parse_secret(&s, base))
        .transpose()?;

    let hosts_p = join(v.path, "hosts");
    let hosts: Vec<String> = match t.get("hosts", &hosts_p) {
        Some(h) => {
            let list: Vec<String> = h
                .str_list("[\"https://acme.ilucca.net\"]")?
                .into_iter()
                .map(|(s, _)| s)
                .collect();
            if list.is_empty() && matches!(plugin, PluginRef::Path(_)) {
                return Err(h.error(THIRD_PARTY_HOSTS));
            }
            list
        }
        // A third-party plugin does not decide where it may go: the operator does.
        None if matches!(plugin, PluginRef::Path(_)) => {
            let mut err = t.missing("hosts", "[\"https://api.vendor.example\"]");
            if let ConfigError::Invalid { message, .. } = &mut err {
                message
                    .push_str(": a third-party plugin reaches only the hosts the operator lists");
            }
            return Err(err);
        }
        None => Vec::new(),
    };
    let lb_p = join(v.path, "allow_loopback");
    let allow_loopback = t
        .get("allow_loopback", &lb_p)
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    let in_flight_p = join(v.path, "max_in_flight");
    let max_in_flight = match t.get("max_in_flight", &in_flight_p) {
        Some(n) => parse_in_flight(&n)?,
        None => DEFAULT_IN_FLIGHT,
    };
    Ok(Connection {
        name: name.to_string(),
        plugin,
        settings,
        secret,
        hosts,
        allow_loopback,
        max_in_flight,
    })
}

/// `max_in_flight = N`: a count from 1 to [`MAX_IN_FLIGHT`].
fn parse_in_flight(v: &Val<'_, '_>) -> Result<usize, ConfigError> {
    let n = v.int("8")?;
    usize::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_IN_FLIGHT).contains(n))
        .ok_or_else(|| {
            v.error(format!(
                "expected a number of calls from 1 to {MAX_IN_FLIGHT} (1 = one call at a time)"
            ))
        })
}

/// Why a third-party plugin's `hosts` may not be empty.
const THIRD_PARTY_HOSTS: &str = "a third-party plugin (a path to a .wasm) reaches only the hosts listed here; \
     list at least one, e.g. `hosts = [\"https://api.vendor.example\"]`";

fn parse_plugin(v: &Val<'_, '_>, base: &Path) -> Result<PluginRef, ConfigError> {
    let s = v.str("\"lucca\"")?;
    let looks_like_path =
        s.contains('/') || s.contains('\\') || s.ends_with(".wasm") || s.starts_with('.');
    if looks_like_path {
        return Ok(PluginRef::Path(resolve(base, s)));
    }
    if BUILTIN_PLUGINS.iter().any(|(n, _)| *n == s) {
        return Ok(PluginRef::Builtin(s.to_string()));
    }
    let names: Vec<&str> = BUILTIN_PLUGINS.iter().map(|(n, _)| *n).collect();
    let hint = closest(s, names.iter().copied())
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default();
    Err(v.error(format!(
        "unknown plugin `{s}`; {hint}built-in plugins are {}; a third-party plugin is a path to its .wasm, e.g. `plugin = \"./{s}.wasm\"`",
        names.join(", ")
    )))
}

/// `{ env = "VAR" }` or `{ file = "path" }`; an inline string is refused.
pub(crate) fn parse_secret(v: &Val<'_, '_>, base: &Path) -> Result<SecretSource, ConfigError> {
    const EXAMPLE: &str = "{ env = \"MY_SECRET\" }";
    if let toml::de::DeValue::String(_) = v.get() {
        // Do not echo the value: it is presumably a real secret.
        return Err(v.error(format!(
            "secrets come from the environment or a file, never inline in the config: write `secret = {EXAMPLE}` or `secret = {{ file = \"/run/secrets/name\" }}` (and rotate the secret that was written here)"
        )));
    }
    let t = v.table(&["env", "file"], EXAMPLE)?;
    let env_p = join(v.path, "env");
    let file_p = join(v.path, "file");
    match (t.get("env", &env_p), t.get("file", &file_p)) {
        (Some(e), None) => {
            let var = e.str("\"MY_SECRET\"")?;
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(e.error("not a valid environment variable name"));
            }
            Ok(SecretSource::Env(var.to_string()))
        }
        (None, Some(f)) => Ok(SecretSource::File(resolve(
            base,
            f.str("\"/run/secrets/name\"")?,
        ))),
        (Some(_), Some(_)) => Err(v.error("give either `env` or `file`, not both")),
        (None, None) => Err(v.error(format!(
            "a secret needs `env` or `file`: write `secret = {EXAMPLE}`"
        ))),
    }
}
