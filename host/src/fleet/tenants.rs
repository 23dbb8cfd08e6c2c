//! The tenants directory: one config file per tenant, in today's
//! `muster.toml` format, the tenant id being the file stem
//! (`tenants/acme.toml` is tenant `acme`).
//!
//! A tenant's state is the fleet's: its own schema `tenant_<id>` in the
//! fleet database (the ordinary store, with the URL's `search_path` set to
//! that schema), so tenants' links, runs and journals never mix. A file
//! that names a `state` of its own is refused
//! ([`Config::load_fleet_tenant`]).
//!
//! A bad file is that tenant's problem only: it is loaded as a
//! [`TenantProblem`] (with the file, line and column of a config error),
//! logged and shown on the status page, and every other tenant goes on.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, FleetState, SecretSource};

/// Longest tenant id: its schema name (`tenant_` + id) must fit
/// PostgreSQL's 63-byte identifiers.
const MAX_ID: usize = 56;

/// One file of the tenants directory, loaded or not.
#[derive(Debug)]
pub struct TenantFile {
    /// The file stem.
    pub id: String,
    pub file: PathBuf,
    /// `tenant_<id>` (`-` written `_`).
    pub schema: String,
    pub config: Result<Config, TenantProblem>,
}

/// Why a tenant's file cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TenantProblem {
    #[error(
        "{}: the tenant id `{id}` (the file name) must be 1 to {MAX_ID} lower-case letters, digits, `_` or `-`",
        file.display()
    )]
    BadId { file: PathBuf, id: String },
    #[error(
        "{}: tenant `{id}` has the same schema `{schema}` as tenant `{other}` (`-` and `_` are one character in schema names): rename one file",
        file.display()
    )]
    SameSchema {
        file: PathBuf,
        id: String,
        other: String,
        schema: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why the tenants directory cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    #[error("cannot read the tenants directory {}: {source}", dir.display())]
    Read {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the fleet URL sets `options`; muster sets it per tenant (`search_path`) — remove it from the URL"
    )]
    UrlOptions,
}

/// The schema of tenant `id`, or `None` when the id is not one.
pub fn schema_for(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    ok.then(|| format!("tenant_{}", id.replace('-', "_")))
}

/// The state URL of a tenant: the fleet URL with the tenant's schema as
/// its `search_path` (a libpq `options` parameter, percent-encoded).
pub fn state_url(fleet_url: &str, schema: &str) -> String {
    let sep = if fleet_url.contains('?') { '&' } else { '?' };
    format!("{fleet_url}{sep}options=-c%20search_path%3D{schema}")
}

/// Loads every `*.toml` file of `dir`, sorted by tenant id.
pub fn load(
    dir: &Path,
    fleet_url: &str,
    password: Option<&SecretSource>,
) -> Result<Vec<TenantFile>, TenantsError> {
    if fleet_url.contains("options=") {
        return Err(TenantsError::UrlOptions);
    }
    let read = |source| TenantsError::Read {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read)?;
    files.retain(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file());
    files.sort();
    let mut tenants: Vec<TenantFile> = Vec::with_capacity(files.len());
    for file in files {
        let id = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(schema) = schema_for(&id) else {
            let problem = TenantProblem::BadId {
                file: file.clone(),
                id: id.clone(),
            };
            tenants.push(TenantFile {
                id,
                file,
                schema: String::new(),
                config: Err(problem),
            });
            continue;
        };
        let config = match tenants.iter().find(|t| t.schema == schema) {
            Some(other) => Err(TenantProblem::SameSchema {
                file: file.clone(),
                id: id.clone(),
                other: other.id.clone(),
                schema: schema.clone(),
            }),
            None => {
                let state = FleetState {
                    state: state_url(fleet_url, &schema),
                    password: password.cloned(),
                };
                Config::load_fleet_tenant(&file, &state).map_err(TenantProblem::from)
            }
        };
        tenants.push(TenantFile {
            id,
            file,
            schema,
            config,
        });
    }
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_become_schema_names_or_are_refused() {
        assert_eq!(schema_for("acme-fr").as_deref(), Some("tenant_acme_fr"));
        assert_eq!(schema_for("t007").as_deref(), Some("tenant_t007"));
        assert_eq!(schema_for("Acme"), None);
        assert_eq!(schema_for("a;drop"), None);
        assert_eq!(schema_for(""), None);
        assert_eq!(schema_for(&"a".repeat(MAX_ID + 1)), None);
    }

    #[test]
    fn the_state_url_selects_the_tenant_schema() {
        assert_eq!(
            state_url("postgres://m@db/fleet", "tenant_a"),
            "postgres://m@db/fleet?options=-c%20search_path%3Dtenant_a"
        );
        assert_eq!(
            state_url("postgres://m@%2Ftmp/fleet?connect_timeout=5", "tenant_a"),
            "postgres://m@%2Ftmp/fleet?connect_timeout=5&options=-c%20search_path%3Dtenant_a"
        );
    }

    const GOOD: &str = "[tenant]\nname = \"Acme\"\ntimezone = \"UTC\"\n";

    #[test]
    fn a_bad_file_is_its_tenant_problem_and_the_others_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.toml"), GOOD).unwrap();
        std::fs::write(
            dir.path().join("own-state.toml"),
            format!("{GOOD}state = \"x.db\"\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.toml"), "[tenant\n").unwrap();
        std::fs::write(dir.path().join("Upper.toml"), GOOD).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a tenant").unwrap();
        let tenants = load(dir.path(), "postgres://m@db/fleet", None).unwrap();
        let ids: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["Upper", "broken", "good", "own-state"]);
        let problem = |id: &str| {
            let t = tenants.iter().find(|t| t.id == id).unwrap();
            t.config.as_ref().err().map(ToString::to_string)
        };
        assert_eq!(problem("good"), None);
        let own = problem("own-state").unwrap();
        assert!(
            own.contains("own-state.toml:4:9") && own.contains("remove `state`"),
            "{own}"
        );
        let broken = problem("broken").unwrap();
        assert!(broken.contains("broken.toml:1:"), "{broken}");
        assert!(problem("Upper").unwrap().contains("lower-case"));
        let good = tenants.iter().find(|t| t.id == "good").unwrap();
        let state = good
            .config
            .as_ref()
            .unwrap()
            .tenant
            .state
            .display()
            .to_string();
        assert!(state.ends_with("search_path%3Dtenant_good"), "{state}");
    }

    #[test]
    fn options_in_the_fleet_url_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), "postgres://m@db/f?options=-c%20x%3Dy", None).unwrap_err();
        assert!(matches!(err, TenantsError::UrlOptions));
    }
}
