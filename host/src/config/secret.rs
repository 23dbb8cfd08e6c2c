//! Secrets: named by the config, loaded from the environment or a file,
//! never printed.

use std::fmt;
use std::path::PathBuf;

use super::ConfigError;

/// Where a secret comes from. The config only ever holds this reference;
/// an inline `secret = "…"` is refused, because a config file is shared,
/// versioned and pasted into tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `secret = { env = "LUCCA_API_KEY" }`
    Env(String),
    /// `secret = { file = "/run/secrets/lucca" }` (relative to the config
    /// file's directory). One trailing newline is dropped, since `echo`
    /// and most editors add one.
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret. A missing variable, an unreadable or empty file is
    /// an error naming the variable or file — never the value.
    pub fn load(&self) -> Result<Secret, ConfigError> {
        match self {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                Ok(_) => Err(ConfigError::SecretEnv {
                    var: var.clone(),
                    problem: "is empty".into(),
                }),
                Err(std::env::VarError::NotPresent) => Err(ConfigError::SecretEnv {
                    var: var.clone(),
                    problem: "is not set".into(),
                }),
                Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::SecretEnv {
                    var: var.clone(),
                    problem: "is not valid UTF-8".into(),
                }),
            },
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::SecretFile {
                    path: path.clone(),
                    problem: e.to_string(),
                })?;
                let text = text
                    .strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text);
                if text.is_empty() {
                    return Err(ConfigError::SecretFile {
                        path: path.clone(),
                        problem: "is empty".into(),
                    });
                }
                Ok(Secret(text.to_string()))
            }
        }
    }
}

impl SecretSource {
    /// A warning for `muster check` when the secret file may be read or
    /// replaced by other users (any group or other permission bit): the
    /// secret is as private as the file holding it. `None` for an
    /// environment variable, a private file, or a file that cannot be
    /// inspected (loading it reports that).
    pub fn permission_warning(&self) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let SecretSource::File(path) = self else {
            return None;
        };
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "the secret file {} has mode {mode:03o}: other users may read it; run `chmod 600 {}`",
                path.display(),
                path.display()
            )
        })
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "environment variable {var}"),
            SecretSource::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

/// A loaded secret. Its `Debug` and `Display` print `[redacted]`; the value
/// is only reachable through [`Secret::expose`], so it cannot end up in a
/// log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (for tests and callers that got it elsewhere).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: hand it to the outbound credential store or a
    /// constant-time comparison, nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[redacted] Secret([redacted])");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn file_secrets_lose_one_trailing_newline_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "abc \r\n").unwrap();
        assert_eq!(
            SecretSource::File(p.clone()).load().unwrap().expose(),
            "abc "
        );
        std::fs::write(&p, "\n").unwrap();
        let e = SecretSource::File(p.clone())
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&p.display().to_string()) && e.contains("empty"),
            "{e}"
        );
        let missing = dir.path().join("nope");
        let e = SecretSource::File(missing.clone())
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");
    }

    #[test]
    fn a_secret_file_others_can_read_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "abc").unwrap();
        let source = SecretSource::File(p.clone());
        for (mode, warned) in [
            (0o644, true),
            (0o640, true),
            (0o604, true),
            (0o600, false),
            (0o400, false),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let w = source.permission_warning();
            assert_eq!(w.is_some(), warned, "{mode:o}: {w:?}");
            if let Some(w) = w {
                assert!(
                    w.contains(&format!("{mode:03o}")) && w.contains("chmod 600"),
                    "{w}"
                );
                assert!(!w.contains("abc"), "never the secret: {w}");
            }
        }
        assert_eq!(SecretSource::Env("X".into()).permission_warning(), None);
    }

    #[test]
    fn env_secret_errors_name_the_variable() {
        let e = SecretSource::Env("MUSTER_TEST_SURELY_UNSET_VAR".into())
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MUSTER_TEST_SURELY_UNSET_VAR") && e.contains("not set"),
            "{e}"
        );
    }
}
