//! Where the state lives: a SQLite file (the embedded default) or a
//! PostgreSQL database (`state = "postgres://…"` in the config).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::StoreError;

/// Which backend and where.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PostgresLocation>),
}

impl Location {
    /// Whether `state` names a PostgreSQL database rather than a file.
    pub fn is_postgres_url(state: &str) -> bool {
        state.starts_with("postgres://") || state.starts_with("postgresql://")
    }

    /// What to show an operator: the file, or `user@host:port/name`.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(pg) => pg.describe(),
        }
    }
}

/// A PostgreSQL database: the URL without a password, and the password
/// (from the config's secret mechanism), kept apart so the URL can be shown
/// and the password never is. `Debug` prints no password.
#[derive(Clone)]
pub struct PostgresLocation {
    config: postgres::Config,
    password: Option<String>,
}

impl PostgresLocation {
    /// Parses `url` (`postgres://user@host:port/name`, or with
    /// `?host=/socket/dir` for a unix socket). A URL that carries a
    /// password itself is refused: the password belongs in a secret
    /// (`state_password = { env = … }`), not in a config file.
    pub fn parse(url: &str, password: Option<String>) -> Result<PostgresLocation, StoreError> {
        let config = postgres::Config::from_str(url).map_err(|source| StoreError::PostgresUrl {
            url: without_password(url),
            source,
        })?;
        if config.get_password().is_some() {
            return Err(StoreError::PasswordInUrl {
                url: without_password(url),
            });
        }
        Ok(PostgresLocation { config, password })
    }

    /// `user@host:port/name` (hosts and ports joined by `,` when several),
    /// never the password.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let hosts: Vec<String> = c
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(dir) => dir.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
        format!(
            "{}@{}:{}/{}",
            c.get_user().unwrap_or("-"),
            hosts.join(","),
            if ports.is_empty() {
                "5432".into()
            } else {
                ports.join(",")
            },
            c.get_dbname().unwrap_or("-")
        )
    }

    /// This database with `tune` applied to the client's settings (the
    /// shared rate-limit budget's name and timeouts, `postgres/budget.rs`).
    pub(crate) fn tuned(&self, tune: impl FnOnce(&mut postgres::Config)) -> PostgresLocation {
        let mut tuned = self.clone();
        tune(&mut tuned.config);
        tuned
    }

    /// A new connection (the store's own, or its heartbeat's).
    pub(crate) fn connect(&self) -> Result<postgres::Client, StoreError> {
        let mut config = self.config.clone();
        if let Some(p) = &self.password {
            config.password(p);
        }
        super::postgres::connect(&config).map_err(|source| StoreError::PostgresConnect {
            database: self.describe(),
            source,
        })
    }
}

impl fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLocation")
            .field("database", &self.describe())
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// `url` with anything between `://user:` and `@` replaced, for an error
/// message about a URL that may hold a password.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.into();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_refused_and_never_shown() {
        let err = PostgresLocation::parse("postgres://muster:hunter2@db/muster", None).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::PasswordInUrl { .. }), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn the_location_is_described_without_its_password() {
        let loc = PostgresLocation::parse(
            "postgresql://muster@db.internal:6432/state",
            Some("hunter2".into()),
        )
        .unwrap();
        assert_eq!(loc.describe(), "muster@db.internal:6432/state");
        assert!(!format!("{loc:?}").contains("hunter2"));
        let sock = PostgresLocation::parse("postgresql://muster@%2Ftmp%2Fpg/state", None).unwrap();
        assert_eq!(sock.describe(), "muster@/tmp/pg:5432/state");
    }
}
