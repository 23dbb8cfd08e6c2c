//! The canonical records the core reasons about.
//!
//! Every connector translates its vendor's shape into these types, so the
//! reconciliation rules are written once. A [`Person`] is used on both sides:
//! the *desired* people (the source, already mapped into the target's
//! vocabulary) and the *actual* accounts (the target as it is).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::date::Date;

/// Gender as HR systems and SCIM targets know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Gender {
    Male,
    Female,
    /// Lucca's `Misc`, Leapsome's `diverse`.
    Diverse,
    /// Known to be not stated (Lucca's `Undefined`).
    Undefined,
}

impl Gender {
    /// The lowercase name used in plans and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Diverse => "diverse",
            Gender::Undefined => "undefined",
        }
    }
}

/// The value of a custom (non-canonical) field.
///
/// `Rows` models Lucca's multi-occurrence *compound* data, such as the
/// `e_formation` field Cards writes training statistics into: a list of
/// occurrences, each a small record of named sub-values.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "type", content = "value", rename_all = "snake_case")
)]
pub enum FieldValue {
    Text(String),
    Date(Date),
    /// A finite number. Mapping rejects NaN so plans stay convergent.
    Number(f64),
    Bool(bool),
    Rows(Vec<Row>),
}

/// One occurrence of a compound, multi-occurrence field.
pub type Row = BTreeMap<String, FieldValue>;

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Text(t) => write!(f, "{t:?}"),
            FieldValue::Date(d) => write!(f, "{d}"),
            FieldValue::Number(n) => write!(f, "{n}"),
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Rows(rows) => {
                f.write_str("[")?;
                for (i, row) in rows.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str("{")?;
                    for (j, (k, v)) in row.iter().enumerate() {
                        if j > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{k}: {v}")?;
                    }
                    f.write_str("}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// A person in the source, or an account in the target.
///
/// `id` is the record's id *in its own system*. On the desired side,
/// `manager_id` and `department_id` hold source ids; the core resolves them
/// to target ids through links, so they are compared as references, never as
/// plain values.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct Person {
    pub id: String,
    pub active: bool,
    pub employee_number: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub work_email: Option<String>,
    pub personal_email: Option<String>,
    pub phone: Option<String>,
    pub login: Option<String>,
    pub birth_date: Option<Date>,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    pub job_title: Option<String>,
    pub gender: Option<Gender>,
    pub department_id: Option<String>,
    pub manager_id: Option<String>,
    pub legal_entity_id: Option<String>,
    pub contract_type: Option<String>,
    /// Custom fields by name (e.g. Lucca `e_…` codes), in a stable order.
    pub custom: BTreeMap<String, FieldValue>,
}

impl Person {
    /// An active person with only an id; fill the rest with struct update
    /// syntax: `Person { work_email: Some(..), ..Person::new("42") }`.
    pub fn new(id: impl Into<String>) -> Person {
        Person {
            id: id.into(),
            active: true,
            ..Person::default()
        }
    }

    /// The same person with only `fields` (plus `id` and `active`): what a
    /// create sends ([`crate::Policy::create_fields`]), so fields the flow
    /// neither owns nor must carry never reach the target.
    pub fn only(&self, fields: &crate::policy::FieldSet) -> Person {
        let mut out = Person {
            id: self.id.clone(),
            active: self.active,
            ..Person::default()
        };
        for field in fields.canonical() {
            out.copy_canonical(self, field);
        }
        for name in fields.custom() {
            if let Some(v) = self.custom.get(name) {
                out.custom.insert(name.clone(), v.clone());
            }
        }
        out
    }

    fn copy_canonical(&mut self, from: &Person, field: Field) {
        match field {
            Field::BirthDate => self.birth_date = from.birth_date,
            Field::StartDate => self.start_date = from.start_date,
            Field::EndDate => self.end_date = from.end_date,
            Field::Gender => self.gender = from.gender,
            text => {
                let value = from.clone_text(text);
                if let Some(slot) = self.text_slot(text) {
                    *slot = value;
                }
            }
        }
    }

    fn clone_text(&self, field: Field) -> Option<String> {
        match self.canonical(field) {
            Some(Value::Text(t)) => Some(t.into()),
            _ => None,
        }
    }

    /// A borrowed view of one field's value, or `None` when it is empty.
    pub fn get<'a>(&'a self, field: &'a FieldRef) -> Option<Value<'a>> {
        match field {
            FieldRef::Canonical(f) => self.canonical(*f),
            FieldRef::Custom(name) => self.custom.get(name.as_str()).map(Value::Custom),
        }
    }

    /// A borrowed view of a canonical field's value, or `None` when empty.
    pub fn canonical(&self, field: Field) -> Option<Value<'_>> {
        fn text(t: &Option<String>) -> Option<Value<'_>> {
            t.as_deref().map(Value::Text)
        }
        match field {
            Field::EmployeeNumber => text(&self.employee_number),
            Field::GivenName => text(&self.given_name),
            Field::FamilyName => text(&self.family_name),
            Field::WorkEmail => text(&self.work_email),
            Field::PersonalEmail => text(&self.personal_email),
            Field::Phone => text(&self.phone),
            Field::Login => text(&self.login),
            Field::BirthDate => self.birth_date.map(Value::Date),
            Field::StartDate => self.start_date.map(Value::Date),
            Field::EndDate => self.end_date.map(Value::Date),
            Field::JobTitle => text(&self.job_title),
            Field::Gender => self.gender.map(Value::Gender),
            Field::DepartmentId => text(&self.department_id),
            Field::ManagerId => text(&self.manager_id),
            Field::LegalEntityId => text(&self.legal_entity_id),
            Field::ContractType => text(&self.contract_type),
        }
    }

    /// The mutable slot of a text field, or `None` for dates and gender.
    pub(crate) fn text_slot(&mut self, field: Field) -> Option<&mut Option<String>> {
        Some(match field {
            Field::EmployeeNumber => &mut self.employee_number,
            Field::GivenName => &mut self.given_name,
            Field::FamilyName => &mut self.family_name,
            Field::WorkEmail => &mut self.work_email,
            Field::PersonalEmail => &mut self.personal_email,
            Field::Phone => &mut self.phone,
            Field::Login => &mut self.login,
            Field::JobTitle => &mut self.job_title,
            Field::DepartmentId => &mut self.department_id,
            Field::ManagerId => &mut self.manager_id,
            Field::LegalEntityId => &mut self.legal_entity_id,
            Field::ContractType => &mut self.contract_type,
            Field::BirthDate | Field::StartDate | Field::EndDate | Field::Gender => return None,
        })
    }

    /// Sets a field from an owned value; `None` clears it. A value of the
    /// wrong kind for a canonical field is refused with that kind's name.
    pub fn set(&mut self, field: &FieldRef, value: Option<FieldValue>) -> Result<(), TypeMismatch> {
        let field = match field {
            FieldRef::Custom(name) => {
                match value {
                    Some(v) => self.custom.insert(name.clone(), v),
                    None => self.custom.remove(name.as_str()),
                };
                return Ok(());
            }
            FieldRef::Canonical(f) => *f,
        };
        let mismatch = TypeMismatch {
            field,
            expected: field.kind(),
        };
        match (field, value) {
            (Field::BirthDate | Field::StartDate | Field::EndDate, v) => {
                let date = match v {
                    None => None,
                    Some(FieldValue::Date(d)) => Some(d),
                    Some(FieldValue::Text(t)) => Some(Date::parse(&t).map_err(|_| mismatch)?),
                    Some(_) => return Err(mismatch),
                };
                match field {
                    Field::BirthDate => self.birth_date = date,
                    Field::StartDate => self.start_date = date,
                    _ => self.end_date = date,
                }
            }
            (Field::Gender, v) => {
                self.gender = match v {
                    None => None,
                    Some(FieldValue::Text(t)) => Some(parse_gender(&t).ok_or(mismatch)?),
                    Some(_) => return Err(mismatch),
                }
            }
            (f, v) => {
                let text = match v {
                    None => None,
                    Some(FieldValue::Text(t)) => Some(t),
                    Some(FieldValue::Number(n)) => Some(alloc::format!("{n}")),
                    Some(FieldValue::Date(d)) => Some(alloc::format!("{d}")),
                    Some(_) => return Err(mismatch),
                };
                if let Some(slot) = self.text_slot(f) {
                    *slot = text;
                }
            }
        }
        Ok(())
    }
}

/// Reads the gender spellings of Lucca and SCIM targets.
pub fn parse_gender(text: &str) -> Option<Gender> {
    let t = text.trim();
    [
        ("male", Gender::Male),
        ("female", Gender::Female),
        ("diverse", Gender::Diverse),
        ("misc", Gender::Diverse),
        ("other", Gender::Diverse),
        ("undefined", Gender::Undefined),
    ]
    .into_iter()
    .find(|(name, _)| t.eq_ignore_ascii_case(name))
    .map(|(_, g)| g)
}

/// A value written into a field of the wrong kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeMismatch {
    pub field: Field,
    pub expected: &'static str,
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}` expects {}", self.field.name(), self.expected)
    }
}

/// A borrowed view of a field value, so comparing and printing never copies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Text(&'a str),
    Date(Date),
    Gender(Gender),
    Custom(&'a FieldValue),
}

impl Value<'_> {
    /// An owned copy, for plan files and for writing into a record.
    pub fn to_owned_value(&self) -> FieldValue {
        match *self {
            Value::Text(t) => FieldValue::Text(t.into()),
            Value::Date(d) => FieldValue::Date(d),
            Value::Gender(g) => FieldValue::Text(g.as_str().into()),
            Value::Custom(v) => v.clone(),
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(t) => write!(f, "{t:?}"),
            Value::Date(d) => write!(f, "{d}"),
            Value::Gender(g) => f.write_str(g.as_str()),
            Value::Custom(v) => write!(f, "{v}"),
        }
    }
}

macro_rules! fields {
    ($($variant:ident = $name:literal : $kind:literal),* $(,)?) => {
        /// The canonical fields of a [`Person`] (its id and status aside).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
        pub enum Field { $($variant),* }

        impl Field {
            /// Every canonical field, in declaration order.
            pub const ALL: &'static [Field] = &[$(Field::$variant),*];

            /// The snake_case name used in config, plans and JSON.
            pub const fn name(self) -> &'static str {
                match self { $(Field::$variant => $name),* }
            }

            /// What kind of value the field holds, for error messages.
            pub const fn kind(self) -> &'static str {
                match self { $(Field::$variant => $kind),* }
            }

            /// The field named `name` (snake_case), if it is canonical.
            pub fn from_name(name: &str) -> Option<Field> {
                match name { $($name => Some(Field::$variant),)* _ => None }
            }
        }
    };
}

fields! {
    EmployeeNumber = "employee_number": "text",
    GivenName = "given_name": "text",
    FamilyName = "family_name": "text",
    WorkEmail = "work_email": "text",
    PersonalEmail = "personal_email": "text",
    Phone = "phone": "text",
    Login = "login": "text",
    BirthDate = "birth_date": "a date (YYYY-MM-DD)",
    StartDate = "start_date": "a date (YYYY-MM-DD)",
    EndDate = "end_date": "a date (YYYY-MM-DD)",
    JobTitle = "job_title": "text",
    Gender = "gender": "male, female, diverse or undefined",
    DepartmentId = "department_id": "text",
    ManagerId = "manager_id": "text",
    LegalEntityId = "legal_entity_id": "text",
    ContractType = "contract_type": "text",
}

impl Field {
    /// Fields that hold *references* to other records (source ids on the
    /// desired side, target ids on the actual side). They are reconciled
    /// through links — `SetManager` and group membership — never by value.
    pub const fn is_reference(self) -> bool {
        matches!(self, Field::ManagerId | Field::DepartmentId)
    }

    pub(crate) const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field by name: canonical, or custom (any other name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(from = "String", into = "String"))]
pub enum FieldRef {
    Canonical(Field),
    Custom(String),
}

impl FieldRef {
    /// Canonical when `name` is a canonical field's name, custom otherwise.
    pub fn parse(name: &str) -> FieldRef {
        match Field::from_name(name) {
            Some(f) => FieldRef::Canonical(f),
            None => FieldRef::Custom(name.into()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            FieldRef::Canonical(f) => f.name(),
            FieldRef::Custom(n) => n,
        }
    }
}

impl From<Field> for FieldRef {
    fn from(f: Field) -> FieldRef {
        FieldRef::Canonical(f)
    }
}

impl From<String> for FieldRef {
    fn from(s: String) -> FieldRef {
        FieldRef::parse(&s)
    }
}

impl From<FieldRef> for String {
    fn from(f: FieldRef) -> String {
        match f {
            FieldRef::Canonical(f) => f.name().into(),
            FieldRef::Custom(n) => n,
        }
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A group: a source department, or a target team/group.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct Group {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    /// Member ids in the group's own system. Source departments usually
    /// leave this empty: membership comes from each person's `department_id`.
    pub members: Vec<String>,
}

/// A source id ↔ target id pair, remembered by the host's store.
///
/// Links are what make an account *ours*: the core never touches a target
/// account or group that no link (or link created in the same plan) names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Link {
    pub source_id: String,
    pub target_id: String,
}

impl Link {
    pub fn new(source_id: impl Into<String>, target_id: impl Into<String>) -> Link {
        Link {
            source_id: source_id.into(),
            target_id: target_id.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_round_trip() {
        for &f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
            assert_eq!(FieldRef::parse(f.name()), FieldRef::Canonical(f));
        }
        assert_eq!(
            FieldRef::parse("e_formation"),
            FieldRef::Custom("e_formation".into())
        );
    }

    #[test]
    fn only_keeps_the_listed_fields_and_the_identity() {
        let mut p = Person {
            login: Some("ada".into()),
            personal_email: Some("ada@home.test".into()),
            work_email: Some("ada@acme.test".into()),
            birth_date: Some(Date::from_ymd(1990, 1, 2).unwrap()),
            active: false,
            ..Person::new("7")
        };
        p.custom.insert("e_a".into(), FieldValue::Number(1.0));
        p.custom.insert("e_b".into(), FieldValue::Number(2.0));
        let keep: crate::policy::FieldSet = ["login", "birth_date", "e_b"]
            .into_iter()
            .map(FieldRef::parse)
            .collect();
        let only = p.only(&keep);
        assert_eq!(only.id, "7");
        assert!(!only.active);
        assert_eq!(only.login.as_deref(), Some("ada"));
        assert_eq!(only.birth_date, p.birth_date);
        assert_eq!(only.work_email, None);
        assert_eq!(only.personal_email, None);
        assert_eq!(only.custom.keys().collect::<Vec<_>>(), ["e_b"]);
    }

    #[test]
    fn set_checks_kinds_and_parses_dates() {
        let mut p = Person::new("1");
        p.set(
            &Field::StartDate.into(),
            Some(FieldValue::Text("2025-09-01T00:00:00".into())),
        )
        .unwrap();
        assert_eq!(p.start_date, Date::from_ymd(2025, 9, 1).ok());
        let err = p
            .set(&Field::StartDate.into(), Some(FieldValue::Bool(true)))
            .unwrap_err();
        assert_eq!(
            alloc::format!("{err}"),
            "field `start_date` expects a date (YYYY-MM-DD)"
        );
        p.set(&Field::Gender.into(), Some(FieldValue::Text("Misc".into())))
            .unwrap();
        assert_eq!(p.gender, Some(Gender::Diverse));
        p.set(&FieldRef::parse("e_x"), Some(FieldValue::Bool(true)))
            .unwrap();
        assert_eq!(p.custom.get("e_x"), Some(&FieldValue::Bool(true)));
    }
}
