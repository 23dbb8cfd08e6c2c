//! Host-side bindings of the `muster:connector` contract, generated from
//! `wit/` at compile time so the host and the guest SDK can never disagree.

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1.0",
    world: "connector-plugin",
    // Records are compared by the engine and tests; `f64` rules out `Eq`.
    additional_derives: [PartialEq],
    // `http.send` may trap: a request past a per-call limit stops the call
    // (see `runtime::limits`) instead of handing the guest an error to ignore.
    imports: { "muster:connector/http.send": trappable },
});

pub use self::exports::muster::connector::connector::{
    Capability, ConfigKey, CredentialSlot, Manifest,
};
pub use self::exports::muster::connector::target::{
    AccountUpdate, Applied, ManagerChange, Membership, NewGroup, Operation,
};
pub use self::muster::connector::types::{
    CompoundRow, ConnectorError, CustomField, Date, FieldValue, Group, GroupPage, Person,
    PersonPage, Scalar,
};

/// The `types` interface has no functions; its (empty) host trait is implemented
/// so the generated `add_to_linker` accepts the state.
impl self::muster::connector::types::Host for super::state::HostState {}

/// Operator-facing text of a connector error (the generated `Display` is the
/// `Debug` form).
pub fn connector_error_message(error: &ConnectorError) -> String {
    struct Text<'a>(&'a ConnectorError);
    impl std::fmt::Display for Text<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self.0 {
                ConnectorError::Unauthorized => {
                    f.write_str("unauthorized: the credential was rejected")
                }
                ConnectorError::Forbidden(why) => write!(f, "forbidden: {why}"),
                ConnectorError::NotFound => f.write_str("not found"),
                ConnectorError::Conflict(why) => write!(f, "conflict: {why}"),
                ConnectorError::RateLimited(secs) => {
                    write!(f, "rate limited: retry after {secs} s")
                }
                ConnectorError::Invalid(why) => write!(f, "invalid: {why}"),
                ConnectorError::Unavailable(why) => write!(f, "unavailable: {why}"),
                ConnectorError::Unsupported => f.write_str("unsupported by this connector"),
                ConnectorError::Other(why) => write!(f, "{why}"),
            }
        }
    }
    Text(error).to_string()
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Capability::ReadPeople => "read-people",
            Capability::ReadGroups => "read-groups",
            Capability::ReadAccounts => "read-accounts",
            Capability::ReadTargetGroups => "read-target-groups",
            Capability::WriteAccounts => "write-accounts",
            Capability::WriteGroups => "write-groups",
        })
    }
}
