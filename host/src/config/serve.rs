//! `[serve]`: who may use `muster serve`'s admin pages.
//!
//! ```toml
//! [serve]
//! admins = { hr-alice = { password = { env = "MUSTER_ADMIN_ALICE" } } }
//! ```
//!
//! Each admin is a login name and a password *secret* (named like every
//! other secret, never written in the file). The name is what the audit log
//! records for an approval or a rejection. Without admins the status page
//! stays read-only and public to whoever reaches the (loopback by default)
//! address, and held plans can only be approved with the CLI.

use std::path::Path;

use super::reader::{Val, join};
use super::{ConfigError, SecretSource, check_name, parse_secret};

/// `[serve]`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeSettings {
    /// The people who may sign in to the admin pages, by login name.
    pub admins: Vec<Admin>,
}

/// One `[serve] admins` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// The login name, recorded in the audit log.
    pub name: String,
    pub password: SecretSource,
}

const EXAMPLE: &str = "{ hr-alice = { password = { env = \"MUSTER_ADMIN_ALICE\" } } }";

/// Reads `[serve]`.
pub(super) fn parse_serve(v: &Val<'_, '_>, base: &Path) -> Result<ServeSettings, ConfigError> {
    let t = v.table(&["admins"], &format!("{{ admins = {EXAMPLE} }}"))?;
    let admins_p = join(v.path, "admins");
    let Some(admins_v) = t.get("admins", &admins_p) else {
        return Ok(ServeSettings::default());
    };
    let admins_t = admins_v.table(&[], EXAMPLE)?;
    let mut admins = Vec::with_capacity(admins_t.entries.len());
    for (name, span, value) in &admins_t.entries {
        let ap = join(&admins_p, name);
        check_name(v.doc, &ap, span, name, "admin")?;
        let admin = Val {
            doc: v.doc,
            path: &ap,
            value,
        };
        let at = admin.table(
            &["password"],
            "{ password = { env = \"MUSTER_ADMIN_ALICE\" } }",
        )?;
        let pp = join(&ap, "password");
        let password = parse_secret(
            &at.get("password", &pp)
                .ok_or_else(|| at.missing("password", "{ env = \"MUSTER_ADMIN_ALICE\" }"))?,
            base,
        )?;
        admins.push(Admin {
            name: name.clone(),
            password,
        });
    }
    Ok(ServeSettings { admins })
}
