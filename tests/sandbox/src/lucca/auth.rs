//! API keys and their permissions. Lucca keys carry a role; a key whose role lacks a
//! permission gets 403 with the permission's name, which the connector turns into an
//! actionable message ("the API key lacks 'Coworkers > Manage users'").

use std::collections::BTreeSet;

use super::ApiError;
use crate::server::Request;

/// A permission a simulated route needs, named as Lucca's role screen names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Read, create and update users (`/api/v3/users`).
    ManageUsers,
    /// Read and write custom HR-file fields (`extendedData`, `e_…`) and their definitions.
    HrFileCustomData,
    /// Read the v4 organisation structure (departments, establishments).
    OrganizationStructure,
}

impl Permission {
    /// Every permission: what a fully privileged key has.
    pub const ALL: [Permission; 3] = [
        Permission::ManageUsers,
        Permission::HrFileCustomData,
        Permission::OrganizationStructure,
    ];

    /// The name shown in 403 bodies.
    pub fn label(self) -> &'static str {
        match self {
            Permission::ManageUsers => "Coworkers > Manage users",
            Permission::HrFileCustomData => "Coworkers > HR file > Custom data",
            Permission::OrganizationStructure => "Organization > Structure > View",
        }
    }
}

/// A configured API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The secret, compared byte for byte (a stray space makes it a different, unknown key).
    pub key: String,
    /// Shown as the `principal` of response headers.
    pub name: String,
    pub permissions: BTreeSet<Permission>,
}

impl ApiKey {
    /// A key with every permission.
    pub fn full(key: &str) -> Self {
        ApiKey::with_permissions(key, &Permission::ALL)
    }

    /// A key whose role has only these permissions.
    pub fn with_permissions(key: &str, permissions: &[Permission]) -> Self {
        ApiKey {
            key: key.to_string(),
            name: format!(
                "sandbox integration {}",
                key.chars().take(4).collect::<String>()
            ),
            permissions: permissions.iter().copied().collect(),
        }
    }
}

const SCHEME: &str = "lucca application=";

/// Finds the key of `Authorization: lucca application={KEY}`; 401 when absent or unknown.
/// Note: HTTP parsing strips whitespace at the very end of a header line, so of a pasted key's
/// stray spaces only the leading one reaches any server (real or simulated).
pub fn authenticate<'k>(request: &Request, keys: &'k [ApiKey]) -> Result<&'k ApiKey, ApiError> {
    let header = request
        .header("authorization")
        .ok_or_else(|| ApiError::new(401, "Unauthorized: missing Authorization header"))?;
    let given = header
        .get(..SCHEME.len())
        .filter(|p| p.eq_ignore_ascii_case(SCHEME))
        .map(|_| &header[SCHEME.len()..])
        .ok_or_else(|| ApiError::new(401, "Unauthorized: expected 'lucca application={key}'"))?;
    keys.iter()
        .find(|k| k.key == given)
        .ok_or_else(|| ApiError::new(401, "Unauthorized: unknown API key"))
}

/// 403 naming the first permission the key lacks.
pub fn require(key: &ApiKey, needed: &[Permission]) -> Result<(), ApiError> {
    match needed.iter().find(|p| !key.permissions.contains(p)) {
        None => Ok(()),
        Some(p) => Err(ApiError::new(
            403,
            format!(
                "Forbidden: the API key's role lacks the permission '{}'",
                p.label()
            ),
        )
        .with("missingPermission", p.label())),
    }
}
