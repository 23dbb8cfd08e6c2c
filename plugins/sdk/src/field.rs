//! Field references and the contract's spelling of them.
//!
//! Contract 0.2.0 passes fields as [`FieldRef`]s. Connectors whose mapping
//! tables are keyed by name (and log lines, which name fields the way the
//! operator's configuration does) use the contract spelling: the WIT case
//! name of the canonical field (`work-email`, `birth-date`…) or
//! `custom:<code>` for a custom field — the spelling 0.1.0 passed as strings.

use crate::{Field, FieldRef};

/// Every canonical field with its contract spelling, in WIT order.
pub const CANONICAL: [(Field, &str); 16] = [
    (Field::EmployeeNumber, "employee-number"),
    (Field::GivenName, "given-name"),
    (Field::FamilyName, "family-name"),
    (Field::WorkEmail, "work-email"),
    (Field::PersonalEmail, "personal-email"),
    (Field::Phone, "phone"),
    (Field::Login, "login"),
    (Field::BirthDate, "birth-date"),
    (Field::StartDate, "start-date"),
    (Field::EndDate, "end-date"),
    (Field::JobTitle, "job-title"),
    (Field::Gender, "gender"),
    (Field::DepartmentId, "department-id"),
    (Field::ManagerId, "manager-id"),
    (Field::LegalEntityId, "legal-entity-id"),
    (Field::ContractType, "contract-type"),
];

/// The contract spelling of a canonical field, e.g. `work-email`.
pub fn canonical_name(field: Field) -> &'static str {
    CANONICAL
        .iter()
        .find(|(f, _)| *f == field)
        .map_or("", |(_, name)| name)
}

/// The contract spelling of a field reference: `work-email`, `custom:e_x`.
pub fn name(field: &FieldRef) -> String {
    match field {
        FieldRef::Canonical(f) => canonical_name(*f).to_string(),
        FieldRef::Custom(code) => format!("custom:{code}"),
    }
}

/// Parses the contract spelling back; `None` for a name that is neither a
/// canonical field nor `custom:<code>` with a non-empty code.
pub fn parse(name: &str) -> Option<FieldRef> {
    if let Some(code) = name.strip_prefix("custom:") {
        return (!code.is_empty()).then(|| FieldRef::Custom(code.to_string()));
    }
    CANONICAL
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(f, _)| FieldRef::Canonical(*f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_round_trips() {
        for (field, spelled) in CANONICAL {
            assert_eq!(name(&FieldRef::Canonical(field)), spelled);
            assert_eq!(parse(spelled), Some(FieldRef::Canonical(field)));
        }
        let custom = FieldRef::Custom("e_formation".into());
        assert_eq!(name(&custom), "custom:e_formation");
        assert_eq!(parse("custom:e_formation"), Some(custom));
        assert_eq!(parse("custom:"), None);
        assert_eq!(parse("workEmail"), None);
    }
}
