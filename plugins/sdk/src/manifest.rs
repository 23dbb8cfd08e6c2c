//! Manifest defaults.
//!
//! The contract's `manifest` is a plain record: every field must be given.
//! Building it from [`Manifest::new`] with struct-update syntax names only
//! what a connector declares, and keeps compiling when a later contract adds
//! a field with a neutral default:
//!
//! ```ignore
//! Manifest {
//!     capabilities: vec![Capability::ReadPeople],
//!     hosts: vec!["https://*.acme.example".into()],
//!     rate_limits: vec![RateLimit::new("https://*.acme.example", 50, 60)],
//!     ..Manifest::new("acme", env!("CARGO_PKG_VERSION"), "Acme HRIS: employees")
//! }
//! ```

use crate::{Field, FieldRef, Manifest, RateLimit};

impl Manifest {
    /// A manifest that declares nothing yet: no capability, setting, host,
    /// credential slot or rate limit; `stores: none` (no restriction), no
    /// field required on create, one member per `member-change` (the
    /// smallest change every vendor accepts).
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            capabilities: Vec::new(),
            config_keys: Vec::new(),
            hosts: Vec::new(),
            credential_slots: Vec::new(),
            rate_limits: Vec::new(),
            stores: None,
            create_requires: Vec::new(),
            max_members_per_change: 1,
        }
    }
}

impl RateLimit {
    /// At most `requests` requests per `per_seconds` seconds to the hosts
    /// matching `host` (a pattern as in `manifest.hosts`).
    pub fn new(host: impl Into<String>, requests: u32, per_seconds: u32) -> Self {
        RateLimit {
            host: host.into(),
            requests,
            per_seconds,
        }
    }
}

/// Canonical fields as field references, for `stores` and `create-requires`.
pub fn canonical(fields: &[Field]) -> Vec<FieldRef> {
    fields.iter().copied().map(FieldRef::Canonical).collect()
}

/// `custom("*")`: every custom field, in a manifest's `stores`.
pub fn every_custom_field() -> FieldRef {
    FieldRef::Custom("*".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_declares_nothing_and_one_member_per_change() {
        let m = Manifest::new("acme", "1.0.0", "Acme");
        assert_eq!((m.name.as_str(), m.version.as_str()), ("acme", "1.0.0"));
        assert!(m.capabilities.is_empty() && m.rate_limits.is_empty());
        assert_eq!(m.stores, None);
        assert_eq!(m.max_members_per_change, 1);
        assert_eq!(
            canonical(&[Field::Login]),
            vec![FieldRef::Canonical(Field::Login)]
        );
    }
}
