//! The mapping between the contract's `person` and a SCIM `User` (RFC 7643
//! §4.1 core schema plus the §4.3 enterprise extension), in both directions.
//!
//! Writing and reading go through the *same* attribute table ([`Attr`]), so an
//! account read back after a create or an update carries exactly the values
//! that were written — the convergence the core relies on (a second plan after
//! an apply must be empty):
//!
//! | person field      | SCIM attribute                                      |
//! |-------------------|-----------------------------------------------------|
//! | `id`              | `id` (read); the *source* id goes to `externalId` on create |
//! | `login`           | `userName` (required; declared `create-requires login`, so muster always sends it; another host's create without it falls back to the work email) |
//! | `given-name`      | `name.givenName`                                    |
//! | `family-name`     | `name.familyName`                                   |
//! | `work-email`      | `emails[type eq "work"]` (primary)                  |
//! | `personal-email`  | `emails[type eq "home"]`                            |
//! | `phone`           | `phoneNumbers[type eq "work"]`                      |
//! | `job-title`       | `title`                                             |
//! | `contract-type`   | `userType` ("Employee", "Contractor", "Intern"…)    |
//! | `active`          | `active`                                            |
//! | `employee-number` | enterprise `employeeNumber`                         |
//! | `department-id`   | enterprise `department`                             |
//! | `legal-entity-id` | enterprise `organization`                           |
//! | `manager-id`      | enterprise `manager.value` (a target user id)       |
//!
//! `birth-date`, `start-date`, `end-date`, `gender` and custom fields have no
//! attribute in the standard schemas: they are not sent on create, and an
//! update that asks to write one fails with `invalid` naming the field, so a
//! flow that owns them against a SCIM target is a visible setup error instead
//! of an update planned again on every run.
//!
//! Multi-valued attributes (`emails`, `phoneNumbers`) are edited entry by
//! entry: only the entry of the written type changes; the others (and their
//! sub-attributes) are kept. Accounts created by someone else may carry
//! untyped entries; reading falls back to the primary (else first) untyped
//! entry for the work email and phone, and writing edits that same entry, so
//! reads and writes always address the same value.

use muster_sdk::serde_json::{Map, Value, json};
use muster_sdk::{ConnectorError, Person};

/// Core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Enterprise User extension URN.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// One person field the connector can write, with its SCIM location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    Login,
    GivenName,
    FamilyName,
    WorkEmail,
    PersonalEmail,
    Phone,
    JobTitle,
    ContractType,
    Active,
    EmployeeNumber,
    DepartmentId,
    LegalEntityId,
    ManagerId,
}

impl Attr {
    /// Parses a field name in WIT spelling (`work-email`, `job-title`…), as
    /// `account-update.fields` lists them. `record` names the account in the
    /// error.
    pub fn parse(field: &str, record: &str) -> Result<Attr, ConnectorError> {
        Ok(match field {
            "login" => Attr::Login,
            "given-name" => Attr::GivenName,
            "family-name" => Attr::FamilyName,
            "work-email" => Attr::WorkEmail,
            "personal-email" => Attr::PersonalEmail,
            "phone" => Attr::Phone,
            "job-title" => Attr::JobTitle,
            "contract-type" => Attr::ContractType,
            "active" => Attr::Active,
            "employee-number" => Attr::EmployeeNumber,
            "department-id" => Attr::DepartmentId,
            "legal-entity-id" => Attr::LegalEntityId,
            "manager-id" => Attr::ManagerId,
            "birth-date" | "start-date" | "end-date" | "gender" => {
                return Err(ConnectorError::Invalid(format!(
                    "account `{record}`: field `{field}` has no attribute in the SCIM core or \
                     enterprise User schema; do not own it in a flow to a SCIM target"
                )));
            }
            custom if custom.starts_with("custom:") => {
                return Err(ConnectorError::Invalid(format!(
                    "account `{record}`: custom field `{custom}` cannot be written to a generic \
                     SCIM target (no custom schema is mapped)"
                )));
            }
            other => {
                return Err(ConnectorError::Invalid(format!(
                    "account `{record}`: unknown field `{other}`"
                )));
            }
        })
    }
}

/// Where an attribute lives in a SCIM User resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// A top-level attribute of the core schema.
    Top(&'static str),
    /// A sub-attribute of a complex core attribute (`name.givenName`).
    Sub(&'static str, &'static str),
    /// An attribute of the enterprise extension.
    Ext(&'static str),
}

impl Path {
    /// The PATCH `path` (RFC 7644 §3.5.2): extension attributes are prefixed
    /// by their schema URN.
    pub fn patch_path(self) -> String {
        match self {
            Path::Top(a) => a.to_string(),
            Path::Sub(a, b) => format!("{a}.{b}"),
            Path::Ext(a) => format!("{ENTERPRISE}:{a}"),
        }
    }

    /// The current value at this path; JSON `null` counts as absent.
    pub fn get(self, resource: &Value) -> Option<&Value> {
        let found = match self {
            Path::Top(a) => resource.get(a),
            Path::Sub(a, b) => resource.get(a).and_then(|o| o.get(b)),
            Path::Ext(a) => resource.get(ENTERPRISE).and_then(|o| o.get(a)),
        };
        found.filter(|v| !v.is_null())
    }

    /// Writes (`Some`) or removes (`None`) the value at this path, creating
    /// parent objects and declaring the extension schema as needed (for PUT).
    pub fn set(self, resource: &mut Value, value: Option<Value>) {
        let Some(root) = resource.as_object_mut() else {
            return;
        };
        let (parent, key) = match self {
            Path::Top(a) => {
                match value {
                    Some(v) => root.insert(a.to_string(), v),
                    None => root.remove(a),
                };
                return;
            }
            Path::Sub(a, b) => (a, b),
            Path::Ext(a) => {
                if value.is_some() {
                    declare_schema(root, ENTERPRISE);
                }
                (ENTERPRISE, a)
            }
        };
        let entry = root
            .entry(parent.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        if let Some(obj) = entry.as_object_mut() {
            match value {
                Some(v) => obj.insert(key.to_string(), v),
                None => obj.remove(key),
            };
        }
    }
}

/// Adds `urn` to the resource's `schemas` if it is not there yet.
fn declare_schema(root: &mut Map<String, Value>, urn: &str) {
    let schemas = root
        .entry("schemas".to_string())
        .or_insert_with(|| json!([USER_SCHEMA]));
    if let Some(list) = schemas.as_array_mut()
        && !list.iter().any(|s| s.as_str() == Some(urn))
    {
        list.push(Value::String(urn.to_string()));
    }
}

/// One change to a User: a value to write at `path`, or `None` to remove it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// Where.
    pub path: Path,
    /// What (`None` removes the attribute).
    pub value: Option<Value>,
}

impl Edit {
    /// This edit as an RFC 7644 PatchOp operation.
    pub fn to_patch_op(&self) -> Value {
        match &self.value {
            Some(v) => json!({"op": "replace", "path": self.path.patch_path(), "value": v}),
            None => json!({"op": "remove", "path": self.path.patch_path()}),
        }
    }
}

/// Which entry of a multi-valued attribute a field reads and writes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The multi-valued attribute (`emails`, `phoneNumbers`).
    attr: &'static str,
    /// The entry type written (`work`, `home`).
    kind: &'static str,
    /// Whether an untyped entry stands in when no entry has the type.
    fallback: bool,
    /// Whether a newly added entry is marked primary.
    primary: bool,
}

const WORK_EMAIL: Slot = Slot {
    attr: "emails",
    kind: "work",
    fallback: true,
    primary: true,
};
const PERSONAL_EMAIL: Slot = Slot {
    attr: "emails",
    kind: "home",
    fallback: false,
    primary: false,
};
const WORK_PHONE: Slot = Slot {
    attr: "phoneNumbers",
    kind: "work",
    fallback: true,
    primary: true,
};

impl Slot {
    /// Index of the entry this slot addresses in `entries`.
    fn index(self, entries: &[Value]) -> Option<usize> {
        let kind_of = |e: &Value| e.get("type").and_then(Value::as_str).map(str::to_string);
        let typed = entries
            .iter()
            .position(|e| kind_of(e).is_some_and(|k| k.eq_ignore_ascii_case(self.kind)));
        if typed.is_some() || !self.fallback {
            return typed;
        }
        let untyped = |e: &Value| kind_of(e).is_none();
        entries
            .iter()
            .position(|e| untyped(e) && e.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| entries.iter().position(untyped))
    }

    /// The value this slot reads from a resource.
    fn read(self, resource: &Value) -> Option<String> {
        let entries = resource.get(self.attr)?.as_array()?;
        let entry = &entries[self.index(entries)?];
        text(entry.get("value"))
    }

    /// Writes `value` into (or removes this slot's entry from) `entries`.
    /// Returns whether anything changed.
    fn write(self, entries: &mut Vec<Value>, value: Option<&str>) -> bool {
        let at = self.index(entries);
        match (at, value) {
            (None, None) => false,
            (Some(i), None) => {
                entries.remove(i);
                true
            }
            (Some(i), Some(v)) => {
                let entry = &mut entries[i];
                if text(entry.get("value")).as_deref() == Some(v) {
                    return false;
                }
                if let Some(obj) = entry.as_object_mut() {
                    obj.insert("value".into(), Value::String(v.to_string()));
                    obj.insert("type".into(), Value::String(self.kind.to_string()));
                } else {
                    *entry = json!({"value": v, "type": self.kind});
                }
                true
            }
            (None, Some(v)) => {
                let has_primary = entries
                    .iter()
                    .any(|e| e.get("primary").and_then(Value::as_bool) == Some(true));
                let mut entry = json!({"value": v, "type": self.kind});
                if self.primary && !has_primary {
                    entry["primary"] = Value::Bool(true);
                }
                entries.push(entry);
                true
            }
        }
    }
}

/// A non-empty string value, else `None` (SCIM servers send `""` and `null`
/// for "no value" alike; the contract wants `none`).
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads the value a person wants for one attribute.
type Getter = fn(&Person) -> Option<Value>;

/// The scalar attributes: field, path, and how to read the person's value.
fn scalar(attr: Attr) -> Option<(Path, Getter)> {
    fn s(v: &Option<String>) -> Option<Value> {
        v.as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.clone()))
    }
    Some(match attr {
        Attr::GivenName => (Path::Sub("name", "givenName"), |p| s(&p.given_name)),
        Attr::FamilyName => (Path::Sub("name", "familyName"), |p| s(&p.family_name)),
        Attr::JobTitle => (Path::Top("title"), |p| s(&p.job_title)),
        Attr::ContractType => (Path::Top("userType"), |p| s(&p.contract_type)),
        Attr::Active => (Path::Top("active"), |p| Some(Value::Bool(p.active))),
        Attr::EmployeeNumber => (Path::Ext("employeeNumber"), |p| s(&p.employee_number)),
        Attr::DepartmentId => (Path::Ext("department"), |p| s(&p.department_id)),
        Attr::LegalEntityId => (Path::Ext("organization"), |p| s(&p.legal_entity_id)),
        Attr::ManagerId => (Path::Ext("manager"), |p| {
            s(&p.manager_id).map(|id| json!({ "value": id }))
        }),
        Attr::Login | Attr::WorkEmail | Attr::PersonalEmail | Attr::Phone => return None,
    })
}

/// The `userName` for a person: the login (the plugin declares it required
/// on create, so muster sends it), else the work email. Never the personal
/// email: a private address must not become a login. SCIM requires one;
/// `record` names the person in the error.
pub fn user_name(person: &Person, record: &str) -> Result<String, ConnectorError> {
    [&person.login, &person.work_email]
        .into_iter()
        .flatten()
        .find(|s| !s.trim().is_empty())
        .cloned()
        .ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "{record}: no login or work email to use as the SCIM `userName`, which is required"
            ))
        })
}

/// The body of `POST /Users` for a new account. `person.id` is the source id:
/// it becomes `externalId`, the standard place for the provisioning client's
/// own identifier.
pub fn new_user(person: &Person) -> Result<Value, ConnectorError> {
    let record = format!("create user for source id `{}`", person.id);
    let mut user = json!({
        "schemas": [USER_SCHEMA],
        "externalId": person.id,
        "userName": user_name(person, &record)?,
        "active": person.active,
    });
    let display: Vec<&str> = [&person.given_name, &person.family_name]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if !display.is_empty() {
        // Not read back (no contract field): many servers require it and show it.
        user["displayName"] = Value::String(display.join(" "));
    }
    for attr in [
        Attr::GivenName,
        Attr::FamilyName,
        Attr::JobTitle,
        Attr::ContractType,
        Attr::EmployeeNumber,
        Attr::DepartmentId,
        Attr::LegalEntityId,
        Attr::ManagerId,
    ] {
        if let Some((path, get)) = scalar(attr)
            && let Some(v) = get(person)
        {
            path.set(&mut user, Some(v));
        }
    }
    for (slot, value) in [
        (WORK_EMAIL, &person.work_email),
        (PERSONAL_EMAIL, &person.personal_email),
        (WORK_PHONE, &person.phone),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            let mut entries = user
                .get(slot.attr)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            slot.write(&mut entries, Some(v));
            user[slot.attr] = Value::Array(entries);
        }
    }
    Ok(user)
}

/// The edits that bring `current` (the resource as the server has it) to the
/// desired values of `attrs`. Attributes already equal produce no edit, so an
/// update of unchanged values sends nothing.
pub fn edits(
    current: &Value,
    desired: &Person,
    attrs: &[Attr],
    record: &str,
) -> Result<Vec<Edit>, ConnectorError> {
    let mut out = Vec::new();
    let mut multi: Vec<(&'static str, Vec<Value>, bool)> = Vec::new();
    for &attr in attrs {
        if let Some((path, get)) = scalar(attr) {
            let want = get(desired);
            let have = path.get(current);
            let same = match (&want, have) {
                (None, None) => true,
                (Some(Value::Object(w)), Some(h)) => w.get("value") == h.get("value"),
                (Some(w), Some(h)) => w == h,
                _ => false,
            };
            if !same {
                out.push(Edit { path, value: want });
            }
            continue;
        }
        let (slot, value) = match attr {
            Attr::Login => {
                let name = user_name(desired, record)?;
                if path_text(current, Path::Top("userName")).as_deref() != Some(name.as_str()) {
                    out.push(Edit {
                        path: Path::Top("userName"),
                        value: Some(Value::String(name)),
                    });
                }
                continue;
            }
            Attr::WorkEmail => (WORK_EMAIL, &desired.work_email),
            Attr::PersonalEmail => (PERSONAL_EMAIL, &desired.personal_email),
            Attr::Phone => (WORK_PHONE, &desired.phone),
            _ => continue,
        };
        let at = match multi.iter().position(|(a, _, _)| *a == slot.attr) {
            Some(i) => i,
            None => {
                let entries = current
                    .get(slot.attr)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                multi.push((slot.attr, entries, false));
                multi.len() - 1
            }
        };
        let (_, entries, changed) = &mut multi[at];
        let value = value.as_deref().filter(|v| !v.is_empty());
        *changed |= slot.write(entries, value);
    }
    for (attr, entries, changed) in multi {
        if changed {
            out.push(Edit {
                path: Path::Top(attr),
                value: (!entries.is_empty()).then_some(Value::Array(entries)),
            });
        }
    }
    Ok(out)
}

fn path_text(resource: &Value, path: Path) -> Option<String> {
    text(path.get(resource))
}

/// Reads a SCIM User into a contract `person` (its `id` is the SCIM `id`).
/// `active` defaults to true when the server omits it, as RFC 7643 leaves it
/// optional and servers that omit it have no deactivated users.
pub fn to_person(user: &Value) -> Result<Person, ConnectorError> {
    let id = text(user.get("id")).ok_or_else(|| {
        ConnectorError::Invalid(format!(
            "SCIM user without an `id`: {}",
            excerpt(&user.to_string())
        ))
    })?;
    let active = match user.get("active") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
        _ => true,
    };
    let get = |path: Path| path_text(user, path);
    Ok(Person {
        employee_number: get(Path::Ext("employeeNumber")),
        given_name: get(Path::Sub("name", "givenName")),
        family_name: get(Path::Sub("name", "familyName")),
        work_email: WORK_EMAIL.read(user),
        personal_email: PERSONAL_EMAIL.read(user),
        phone: WORK_PHONE.read(user),
        login: get(Path::Top("userName")),
        job_title: get(Path::Top("title")),
        contract_type: get(Path::Top("userType")),
        department_id: get(Path::Ext("department")),
        legal_entity_id: get(Path::Ext("organization")),
        manager_id: Path::Ext("manager")
            .get(user)
            .and_then(|m| text(m.get("value"))),
        ..Person::new(id, active)
    })
}

/// At most 120 characters of `s`, for error messages.
pub fn excerpt(s: &str) -> String {
    match s.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Person {
        Person {
            employee_number: Some("E1".into()),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            work_email: Some("ada@acme.test".into()),
            personal_email: Some("ada@home.test".into()),
            phone: Some("+33 1 23".into()),
            job_title: Some("Engineer".into()),
            contract_type: Some("Employee".into()),
            department_id: Some("R&D".into()),
            legal_entity_id: Some("Acme SAS".into()),
            manager_id: Some("m-1".into()),
            ..Person::new("src-1", true)
        }
    }

    #[test]
    fn create_body_reads_back_to_the_same_person() {
        let p = person();
        let mut user = new_user(&p).unwrap();
        assert_eq!(user["externalId"], "src-1");
        assert_eq!(user["userName"], "ada@acme.test");
        assert_eq!(user["displayName"], "Ada Lovelace");
        assert_eq!(user["schemas"], json!([USER_SCHEMA, ENTERPRISE]));
        user["id"] = json!("t-9");
        let back = to_person(&user).unwrap();
        assert_eq!(
            back,
            Person {
                id: "t-9".into(),
                login: Some("ada@acme.test".into()),
                ..p
            }
        );
    }

    #[test]
    fn user_name_is_required_and_never_the_personal_email() {
        let p = Person {
            personal_email: Some("ada@home.test".into()),
            ..Person::new("src-2", true)
        };
        assert!(
            matches!(new_user(&p), Err(ConnectorError::Invalid(m)) if m.contains("src-2") && m.contains("userName"))
        );
    }

    #[test]
    fn edits_touch_only_changed_listed_fields_and_keep_other_entries() {
        let current = json!({
            "id": "t", "userName": "ada@acme.test", "name": {"givenName": "Ada"},
            "title": "Engineer",
            "emails": [{"value": "old@acme.test", "type": "work", "primary": true, "display": "x"},
                       {"value": "other@x.test", "type": "other"}],
        });
        let desired = Person {
            given_name: Some("Ada".into()),
            work_email: Some("new@acme.test".into()),
            job_title: None,
            ..Person::new("t", true)
        };
        let attrs = [Attr::GivenName, Attr::WorkEmail, Attr::JobTitle];
        let edits = edits(&current, &desired, &attrs, "t").unwrap();
        assert_eq!(
            edits,
            vec![
                Edit {
                    path: Path::Top("title"),
                    value: None
                },
                Edit {
                    path: Path::Top("emails"),
                    value: Some(json!([
                        {"value": "new@acme.test", "type": "work", "primary": true, "display": "x"},
                        {"value": "other@x.test", "type": "other"}
                    ]))
                },
            ]
        );
        assert_eq!(
            edits[0].to_patch_op(),
            json!({"op": "remove", "path": "title"})
        );
    }

    #[test]
    fn untyped_entries_are_read_and_written_as_the_work_email() {
        let current = json!({"id": "t", "emails": [{"value": "a@x.test", "primary": true}]});
        assert_eq!(
            to_person(&current).unwrap().work_email.as_deref(),
            Some("a@x.test")
        );
        let desired = Person {
            work_email: Some("b@x.test".into()),
            ..Person::new("t", true)
        };
        let e = edits(&current, &desired, &[Attr::WorkEmail], "t").unwrap();
        assert_eq!(
            e[0].value,
            Some(json!([{"value": "b@x.test", "primary": true, "type": "work"}]))
        );
    }

    #[test]
    fn put_paths_create_parents_and_declare_the_extension() {
        let mut user = json!({"schemas": [USER_SCHEMA], "id": "t"});
        Path::Ext("department").set(&mut user, Some(json!("Ops")));
        Path::Sub("name", "familyName").set(&mut user, Some(json!("L")));
        assert_eq!(user["schemas"], json!([USER_SCHEMA, ENTERPRISE]));
        assert_eq!(user[ENTERPRISE]["department"], "Ops");
        assert_eq!(user["name"]["familyName"], "L");
        Path::Ext("department").set(&mut user, None);
        assert!(Path::Ext("department").get(&user).is_none());
        assert_eq!(
            Path::Ext("manager").patch_path(),
            format!("{ENTERPRISE}:manager")
        );
    }

    #[test]
    fn unmappable_fields_are_named() {
        for f in ["birth-date", "gender", "custom:e_x", "nope"] {
            assert!(
                matches!(Attr::parse(f, "t-1"), Err(ConnectorError::Invalid(m)) if m.contains(f) && m.contains("t-1")),
                "{f}"
            );
        }
        assert_eq!(Attr::parse("work-email", "t").unwrap(), Attr::WorkEmail);
    }
}
