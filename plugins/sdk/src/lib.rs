//! # muster-sdk — write a muster connector plugin in Rust
//!
//! A connector is a WebAssembly component implementing the
//! `muster:connector/connector-plugin` world (see `wit/` at the repository
//! root). This crate carries everything that is *not* vendor specific, so a
//! connector author writes only the mapping between the vendor's API and the
//! contract's records:
//!
//! - [`bindings`]: the `wit-bindgen` bindings of the contract, generated once
//!   here so every plugin shares the same types; implement the three traits
//!   [`Connector`], [`Source`] and [`Target`] and call [`export!`];
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
//! impl Source for Acme { /* read_people, read_groups */ }
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
        path: "../../wit/since_v0.1.0",
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
pub mod http;
pub mod log;
pub mod paging;

/// Runtime support re-exported so plugins need no direct `wit-bindgen` dependency.
#[doc(hidden)]
pub use wit_bindgen::rt as __rt;

pub use bindings::exports::muster::connector::connector::{
    Capability, ConfigKey, CredentialSlot, Guest as Connector, Manifest,
};
pub use bindings::exports::muster::connector::source::Guest as Source;
pub use bindings::exports::muster::connector::target::{
    AccountUpdate, Applied, Guest as Target, ManagerChange, Membership, NewGroup, Operation,
};
pub use bindings::muster::connector::types::{
    CompoundRow, ConnectorError, Date, FieldValue, Group, GroupPage, Person, PersonPage, Scalar,
};
pub use serde_json;

/// The contract version this SDK implements; put it in `Manifest::contract_version`.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Everything a connector usually needs, in one `use`.
pub mod prelude {
    pub use crate::http::{Client, JsonResponse};
    pub use crate::{
        AccountUpdate, Applied, CONTRACT_VERSION, Capability, ConfigKey, Connector, ConnectorError,
        CredentialSlot, Date, FieldValue, Group, GroupPage, ManagerChange, Manifest, Membership,
        NewGroup, Operation, Person, PersonPage, Scalar, Source, Target,
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

/// Declares what the vendor behind this plugin stores and what a create must
/// carry, for the host to check flows against before any record moves:
///
/// ```ignore
/// muster_sdk::declare! {
///     stores: ["login", "given-name", "family-name", "work-email"],
///     create_requires: ["login"],
/// }
/// ```
///
/// Field names use the contract's spelling (`given-name`, `custom:e_x`, and
/// `custom:*` for every custom field). A flow that owns a field the target
/// does not store is refused when it is loaded; a create carries the owned
/// fields plus `create_requires`, and nothing else.
///
/// Contract 0.1.0 has no place for this in the manifest, so the macro emits a
/// wasm custom section, `muster:declarations` (format: the host's
/// `runtime::declarations` module): data beside the code, kept through
/// componentization, read by the host from the component bytes at load and
/// ignored by hosts that do not know it. A plugin that declares nothing is
/// not restricted.
#[macro_export]
macro_rules! declare {
    (
        stores: [$($stored:literal),* $(,)?],
        create_requires: [$($required:literal),* $(,)?] $(,)?
    ) => {
        const _: () = {
            const TEXT: &str = concat!(
                "muster-declarations 1\nstores",
                $(" ", $stored,)*
                "\ncreate-requires",
                $(" ", $required,)*
                "\n"
            );
            #[cfg_attr(target_family = "wasm", unsafe(link_section = "muster:declarations"))]
            #[used]
            static DECLARATIONS: [u8; TEXT.len()] = $crate::__section::<{ TEXT.len() }>(TEXT);
        };
    };
}

/// `text` as a byte array of its exact length, for a custom-section static.
#[doc(hidden)]
pub const fn __section<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
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
