//! Contract 0.2.0 (`wit/since_v0.2.0`), the latest: the types the whole host
//! speaks. Generated at compile time from the WIT files so the host and the
//! guest SDK can never disagree. Older versions convert into these types in
//! their own module ([`super::v0_1`]).

wasmtime::component::bindgen!({
    path: "../wit/since_v0.2.0",
    world: "connector-plugin",
    // Records are compared by the engine and tests; `f64` rules out `Eq`.
    additional_derives: [PartialEq],
    // `http.send` may trap: a request past a per-call limit stops the call
    // (see `runtime::limits`) instead of handing the guest an error to ignore.
    imports: { "muster:connector/http.send": trappable },
});

pub use self::exports::muster::connector::connector::{
    Capability, ConfigKey, CredentialSlot, Manifest, RateLimit,
};
pub use self::exports::muster::connector::target::{
    AccountRef, AccountUpdate, Applied, GroupRename, ManagerChange, MemberChange, NewGroup,
    Operation, RowAction, RowChange,
};
pub use self::muster::connector::types::{
    CompoundRow, ConnectorError, Coverage, CustomField, Date, Field, FieldRef, FieldValue, Gender,
    Group, GroupPage, Person, PersonPage, ReadRequest, RecordProblem, Scalar,
};

use super::{Call, Unsupported};
use crate::runtime::state::HostState;
use wasmtime::Store;

/// The `types` interface has no functions; its (empty) host trait is implemented
/// so the generated `add_to_linker` accepts the state.
impl self::muster::connector::types::Host for crate::runtime::state::HostState {}

/// Contract 0.2 is the latest: its calls go straight through.
impl super::Contract for ConnectorPlugin {
    fn describe(&self, s: &mut Store<HostState>) -> wasmtime::Result<Manifest> {
        self.muster_connector_connector().call_describe(s)
    }

    fn configure(&self, s: &mut Store<HostState>, settings: &[(String, String)]) -> Call<()> {
        self.muster_connector_connector()
            .call_configure(s, settings)
    }

    fn check(&self, s: &mut Store<HostState>) -> Call<()> {
        self.muster_connector_connector().call_check(s)
    }

    fn read_people(
        &self,
        s: &mut Store<HostState>,
        cursor: Option<&str>,
        since: Option<&str>,
    ) -> Call<PersonPage> {
        let request = ReadRequest {
            cursor: cursor.map(str::to_owned),
            since: since.map(str::to_owned),
        };
        self.muster_connector_source().call_read_people(s, &request)
    }

    fn read_groups(&self, s: &mut Store<HostState>, cursor: Option<&str>) -> Call<GroupPage> {
        self.muster_connector_source().call_read_groups(s, cursor)
    }

    fn read_accounts(&self, s: &mut Store<HostState>, cursor: Option<&str>) -> Call<PersonPage> {
        self.muster_connector_target().call_read_accounts(s, cursor)
    }

    fn read_target_groups(
        &self,
        s: &mut Store<HostState>,
        cursor: Option<&str>,
    ) -> Call<GroupPage> {
        self.muster_connector_target().call_read_groups(s, cursor)
    }

    fn read_person(
        &self,
        s: &mut Store<HostState>,
        id: &str,
    ) -> Result<Call<Option<Person>>, Unsupported> {
        Ok(self.muster_connector_source().call_read_person(s, id))
    }

    fn read_account(
        &self,
        s: &mut Store<HostState>,
        id: &str,
    ) -> Result<Call<Option<Person>>, Unsupported> {
        Ok(self.muster_connector_target().call_read_account(s, id))
    }

    fn apply(
        &self,
        s: &mut Store<HostState>,
        op: &Operation,
    ) -> Result<Call<Applied>, Unsupported> {
        Ok(self.muster_connector_target().call_apply(s, op))
    }
}

/// Operator-facing text of a connector error (the generated `Display` is the
/// `Debug` form).
pub fn connector_error_message(error: &ConnectorError) -> String {
    struct Text<'a>(&'a ConnectorError);
    impl std::fmt::Display for Text<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self.0 {
                ConnectorError::Unauthorized(why) if why.is_empty() => {
                    f.write_str("unauthorized: the credential was rejected")
                }
                ConnectorError::Unauthorized(why) => write!(f, "unauthorized: {why}"),
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
            Capability::ReadPerson => "read-person",
            Capability::ReadAccounts => "read-accounts",
            Capability::ReadAccount => "read-account",
            Capability::ReadTargetGroups => "read-target-groups",
            Capability::WriteAccounts => "write-accounts",
            Capability::WriteGroups => "write-groups",
        })
    }
}

/// The contract's canonical field for the core's (the two lists are the same
/// sixteen fields, in the same order).
pub fn field_to_core(field: Field) -> muster_core::Field {
    use muster_core::Field as C;
    match field {
        Field::EmployeeNumber => C::EmployeeNumber,
        Field::GivenName => C::GivenName,
        Field::FamilyName => C::FamilyName,
        Field::WorkEmail => C::WorkEmail,
        Field::PersonalEmail => C::PersonalEmail,
        Field::Phone => C::Phone,
        Field::Login => C::Login,
        Field::BirthDate => C::BirthDate,
        Field::StartDate => C::StartDate,
        Field::EndDate => C::EndDate,
        Field::JobTitle => C::JobTitle,
        Field::Gender => C::Gender,
        Field::DepartmentId => C::DepartmentId,
        Field::ManagerId => C::ManagerId,
        Field::LegalEntityId => C::LegalEntityId,
        Field::ContractType => C::ContractType,
    }
}

/// The core's canonical field in the contract.
pub fn field_from_core(field: muster_core::Field) -> Field {
    use muster_core::Field as C;
    match field {
        C::EmployeeNumber => Field::EmployeeNumber,
        C::GivenName => Field::GivenName,
        C::FamilyName => Field::FamilyName,
        C::WorkEmail => Field::WorkEmail,
        C::PersonalEmail => Field::PersonalEmail,
        C::Phone => Field::Phone,
        C::Login => Field::Login,
        C::BirthDate => Field::BirthDate,
        C::StartDate => Field::StartDate,
        C::EndDate => Field::EndDate,
        C::JobTitle => Field::JobTitle,
        C::Gender => Field::Gender,
        C::DepartmentId => Field::DepartmentId,
        C::ManagerId => Field::ManagerId,
        C::LegalEntityId => Field::LegalEntityId,
        C::ContractType => Field::ContractType,
    }
}

/// A contract field reference as the core's.
pub fn field_ref_to_core(field: &FieldRef) -> muster_core::FieldRef {
    match field {
        FieldRef::Canonical(f) => muster_core::FieldRef::Canonical(field_to_core(*f)),
        FieldRef::Custom(code) => muster_core::FieldRef::Custom(code.clone()),
    }
}

/// The core's field reference in the contract.
pub fn field_ref_from_core(field: &muster_core::FieldRef) -> FieldRef {
    match field {
        muster_core::FieldRef::Canonical(f) => FieldRef::Canonical(field_from_core(*f)),
        muster_core::FieldRef::Custom(code) => FieldRef::Custom(code.clone()),
    }
}

/// A field in the contract's text spelling — kebab-case for canonical
/// fields (`work-email`), `custom:<code>` for custom ones — as used by 0.1's
/// `account-update.fields` and the `muster:declarations` section. `None`
/// for a name that is neither.
pub fn parse_field_ref(name: &str) -> Option<FieldRef> {
    if let Some(code) = name.strip_prefix("custom:") {
        return (!code.is_empty()).then(|| FieldRef::Custom(code.to_owned()));
    }
    muster_core::Field::from_name(&name.replace('-', "_"))
        .map(|f| FieldRef::Canonical(field_from_core(f)))
}

/// The contract's gender as the core's.
pub fn gender_to_core(gender: Gender) -> muster_core::Gender {
    match gender {
        Gender::Male => muster_core::Gender::Male,
        Gender::Female => muster_core::Gender::Female,
        Gender::Diverse => muster_core::Gender::Diverse,
        Gender::Undefined => muster_core::Gender::Undefined,
    }
}

/// The core's gender in the contract.
pub fn gender_from_core(gender: muster_core::Gender) -> Gender {
    match gender {
        muster_core::Gender::Male => Gender::Male,
        muster_core::Gender::Female => Gender::Female,
        muster_core::Gender::Diverse => Gender::Diverse,
        muster_core::Gender::Undefined => Gender::Undefined,
    }
}

/// What a read covers, as the core's [`muster_core::Coverage`].
pub fn coverage_to_core(coverage: Coverage) -> muster_core::Coverage {
    match coverage {
        Coverage::Full => muster_core::Coverage::Full,
        Coverage::Changes => muster_core::Coverage::Changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canonical_field_round_trips_through_the_core() {
        for f in muster_core::Field::ALL {
            assert_eq!(field_to_core(field_from_core(*f)), *f);
        }
    }
}
