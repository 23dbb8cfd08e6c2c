//! # muster-sdk — write a muster connector plugin in Rust
//!
//! A connector is a WebAssembly component implementing the
//! `muster:connector/connector-plugin` world (see `wit/` at the repository
//! root). This crate carries everything that is *not* vendor specific, so a
//! connector author writes only the mapping between the vendor's API and the
//! contract's records:
//!
//! - [`bindings`]: the `wit-bindgen` bindings of contract **0.2.0**
//!   (`wit/since_v0.2.0`), generated once here so every plugin shares the same
//!   types; implement the three traits [`Connector`], [`Source`] and
//!   [`Target`] and call [`export!`]. The host reads the contract version
//!   from the component's interface names (`muster:connector/…@0.2.0`), so
//!   there is no version string to report;
//! - [`manifest`]: [`Manifest::new`] with neutral defaults, so a manifest
//!   names only what it declares and a field added to the manifest later
//!   does not break every plugin;
//! - [`page`]: page constructors ([`PersonPage::full`], [`GroupPage::new`]…);
//! - [`field`]: [`FieldRef`] ↔ the contract's spelling (`work-email`,
//!   `custom:e_x`), for connectors that key their mapping tables by name;
//! - [`http`]: JSON over the host's sandboxed HTTP (`get`/`post`/`put`/
//!   `patch`/`delete`) returning typed [`ConnectorError`]s;
//! - [`errors`]: the HTTP status → [`ConnectorError`] mapping every
//!   connector would otherwise rewrite;
//! - [`paging`]: a cursor helper for offset-based APIs;
//! - [`date`]: strict parsing of `YYYY-MM-DD` into the contract's [`Date`];
//! - [`log`]: levelled logging macros (`info!`, `warn!`…) that go to the host.
//!
//! Secrets never enter the plugin: declare a credential slot in the manifest
//! and name it in requests ([`http::Client::with_credential`]); the host
//! injects the header after the request has left plugin memory.
//!
//! ```ignore
//! use muster_sdk::prelude::*;
//! struct Acme;
//! impl Connector for Acme { /* describe, configure, check */ }
//! impl Source for Acme { /* read_people, read_groups, read_person */ }
//! impl Target for Acme { /* or return Err(ConnectorError::Unsupported) */ }
//! muster_sdk::export!(Acme);
//! ```

#![warn(missing_docs)]

// Lets the generated code name this crate as `muster_sdk::…` from inside it too.
extern crate self as muster_sdk;

/// Bindings generated from `wit/` by `wit-bindgen`.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "connector-plugin",
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "muster_sdk::bindings",
        runtime_path: "muster_sdk::__rt",
        additional_derives: [PartialEq],
    });
}

pub mod date;
pub mod errors;
pub mod field;
pub mod http;
pub mod log;
pub mod manifest;
pub mod page;
pub mod paging;

/// Runtime support re-exported so plugins need no direct `wit-bindgen` dependency.
#[doc(hidden)]
pub use wit_bindgen::rt as __rt;

pub use bindings::exports::muster::connector::connector::{
    Capability, ConfigKey, CredentialSlot, Guest as Connector, Manifest, RateLimit,
};
pub use bindings::exports::muster::connector::source::Guest as Source;
pub use bindings::exports::muster::connector::target::{
    AccountRef, AccountUpdate, Applied, GroupRename, Guest as Target, ManagerChange, MemberChange,
    NewGroup, Operation, RowAction, RowChange,
};
pub use bindings::muster::connector::types::{
    CompoundRow, ConnectorError, Coverage, Date, Field, FieldRef, FieldValue, Gender, Group,
    GroupPage, Person, PersonPage, ReadRequest, RecordProblem, Scalar,
};
pub use serde_json;

/// Everything a connector usually needs, in one `use`.
pub mod prelude {
    pub use crate::http::{Client, JsonResponse};
    pub use crate::{
        AccountRef, AccountUpdate, Applied, Capability, ConfigKey, Connector, ConnectorError,
        Coverage, CredentialSlot, Date, Field, FieldRef, FieldValue, Gender, Group, GroupPage,
        GroupRename, ManagerChange, Manifest, MemberChange, NewGroup, Operation, Person,
        PersonPage, RateLimit, ReadRequest, RecordProblem, RowAction, RowChange, Scalar, Source,
        Target,
    };
    pub use crate::{debug, error, info, trace, warn};
}

/// Exports a type implementing [`Connector`], [`Source`] and [`Target`] as the
/// plugin's component exports.
#[macro_export]
macro_rules! export {
    ($ty:ident) => {
        $crate::bindings::export_connector!($ty with_types_in $crate::bindings);
    };
}

/// Returns the value of `key` in `settings`, or an `invalid` error naming the key.
pub fn required_setting(
    settings: &[(String, String)],
    key: &str,
) -> Result<String, ConnectorError> {
    settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| ConnectorError::Invalid(format!("missing setting `{key}`")))
}

/// Returns the value of `key` in `settings`, if present.
pub fn setting(settings: &[(String, String)], key: &str) -> Option<String> {
    settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

impl Person {
    /// A person with only an id and `active`, every optional field absent:
    /// a starting point for struct-update syntax.
    pub fn new(id: impl Into<String>, active: bool) -> Self {
        Person {
            id: id.into(),
            employee_number: None,
            given_name: None,
            family_name: None,
            work_email: None,
            personal_email: None,
            phone: None,
            login: None,
            birth_date: None,
            start_date: None,
            end_date: None,
            job_title: None,
            gender: None,
            department_id: None,
            manager_id: None,
            legal_entity_id: None,
            contract_type: None,
            active,
            custom_fields: Vec::new(),
        }
    }
}
