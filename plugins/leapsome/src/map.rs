//! Leapsome's SCIM user JSON ↔ the contract's `person`, both ways, so that what `apply`
//! writes is exactly what `read-accounts` returns (a re-plan converges).
//!
//! | WIT field | Leapsome attribute |
//! |---|---|
//! | `id` | `id` (Leapsome's); the source id goes to `externalId` on create |
//! | `work-email` | `userName` (a create sends no `emails`: Leapsome derives the work address) |
//! | `personal-email` | the `home` entry of `emails`, written only by an update that lists it |
//! | `given-name` / `family-name` | `name.givenName` / `name.familyName` (+ `displayName`) |
//! | `job-title` | `title` |
//! | `employee-number` | enterprise `employeeNumber` |
//! | `birth-date` / `start-date` / `end-date` | enterprise `birthday` / `startDate` / `endDate` |
//! | `gender` | enterprise `gender` (`male`, `female`, `diverse`) |
//! | `manager-id` | enterprise `manager`, read as a reference and translated to a Leapsome id |
//! | `department-id` | read: the team when the account is in exactly one; written as the team's name to enterprise `department` |
//! | `login` | read: `userName`; never written (Leapsome's login *is* the email) |
//! | `active` | `active` |
//!
//! `phone`, `contract-type`, `legal-entity-id` and custom fields have no Leapsome attribute:
//! they are skipped on write and absent on read. Leapsome's published user schema has no
//! `phoneNumbers`, core `userType` or enterprise `organization`, and the real service drops
//! them, so writing them would plan the same update on every run (the declaration at the end
//! of `lib.rs` leaves them out, and the host refuses a flow that owns them).
//!
//! A create is two writes, because Leapsome's POST keeps only core attributes
//! ([`create_post`]: `userName`, `name`, `displayName`, `title`, `externalId`) and everything
//! else must follow in a PATCH ([`create_patch`]). Both send only the attributes the person
//! has (`Some`), plus what Leapsome requires: `userName` (in every PATCH) and `name`.

use muster_sdk::prelude::*;
use muster_sdk::{date, field};
use serde_json::{Map, Value, json};

/// The core SCIM user schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise extension: manager, department, dates, gender, employee number.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The extension a create uses to ask Leapsome to send an invitation (`{"invite": true}`).
pub const INVITE_EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:leapsome:2.0:User";
/// The core SCIM group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// A person read from Leapsome, with its manager still a raw reference.
pub struct Read {
    pub person: Person,
    /// The manager as Leapsome names it (`value`), and the id at the end of its `$ref`.
    pub manager: Option<(String, Option<String>)>,
    /// `externalId`, kept to translate manager references.
    pub external_id: Option<String>,
    /// Ids of the teams the account is in (`groups[].value`): Leapsome's group GET lists no
    /// members, so this is where memberships are read.
    pub teams: Vec<String>,
    /// Values that could not be read (a date that is not one, an unknown gender): the
    /// field is left absent and the problem goes on the page.
    pub problems: Vec<RecordProblem>,
}

fn str_at<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn owned(v: &Value, key: &str) -> Option<String> {
    str_at(v, key).map(str::to_string)
}

/// The `value` of the entry of the multi-valued attribute `attr` (`emails`) that `pick`
/// selects.
fn entry(v: &Value, attr: &str, pick: impl Fn(&Value) -> bool) -> Option<String> {
    v.get(attr)?
        .as_array()?
        .iter()
        .find(|e| pick(e))
        .and_then(|e| owned(e, "value"))
}

fn is_type(e: &Value, kind: &str) -> bool {
    str_at(e, "type").is_some_and(|t| t.eq_ignore_ascii_case(kind))
}

/// A date attribute; an unreadable one is a record problem and read as absent, so one bad
/// record does not block a whole sync (the next update rewrites it).
fn date_at(
    ent: &Value,
    key: &str,
    id: &str,
    field: Field,
    problems: &mut Vec<RecordProblem>,
) -> Option<Date> {
    let text = str_at(ent, key)?;
    match date::parse(key, text) {
        Ok(d) => Some(d),
        Err(_) => {
            problems.push(RecordProblem::field(
                id,
                FieldRef::Canonical(field),
                format!("Leapsome `{key}` `{text}` is not a date; read as absent"),
            ));
            None
        }
    }
}

/// Leapsome's enterprise `gender` (`male`, `female`, `diverse`) as the contract's gender;
/// another spelling is a record problem and read as absent.
fn gender_at(ent: &Value, id: &str, problems: &mut Vec<RecordProblem>) -> Option<Gender> {
    let text = str_at(ent, "gender")?;
    match text.trim().to_ascii_lowercase().as_str() {
        "male" => Some(Gender::Male),
        "female" => Some(Gender::Female),
        "diverse" => Some(Gender::Diverse),
        _ => {
            problems.push(RecordProblem::field(
                id,
                FieldRef::Canonical(Field::Gender),
                format!(
                    "Leapsome `gender` `{text}` is none of male, female, diverse; read as absent"
                ),
            ));
            None
        }
    }
}

/// Maps one user of a list or get answer.
pub fn person_from_user(v: &Value) -> Result<Read, ConnectorError> {
    let id = str_at(v, "id").ok_or_else(|| {
        ConnectorError::Invalid(format!(
            "malformed vendor response: a Leapsome account without `id` (userName {:?})",
            str_at(v, "userName").unwrap_or("?")
        ))
    })?;
    let ent = v.get(ENTERPRISE).cloned().unwrap_or(Value::Null);
    let user_name = owned(v, "userName");
    let work_email = entry(v, "emails", |e| {
        e.get("primary").and_then(Value::as_bool) == Some(true) || is_type(e, "work")
    })
    .or_else(|| user_name.clone());
    let active = match v.get("active") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
        _ => true,
    };
    let manager = match ent.get("manager").or_else(|| v.get("manager")) {
        Some(Value::String(s)) if !s.is_empty() => Some((s.clone(), None)),
        Some(m @ Value::Object(_)) => owned(m, "value").map(|value| {
            let from_ref = str_at(m, "$ref")
                .and_then(|r| r.trim_end_matches('/').rsplit('/').next())
                .map(str::to_string);
            (value, from_ref)
        }),
        _ => None,
    };
    let teams: Vec<String> = v
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(|t| owned(t, "value")).collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let person = Person {
        employee_number: owned(&ent, "employeeNumber"),
        given_name: v.get("name").and_then(|n| owned(n, "givenName")),
        family_name: v.get("name").and_then(|n| owned(n, "familyName")),
        work_email,
        personal_email: entry(v, "emails", |e| {
            is_type(e, "home") || is_type(e, "personal")
        }),
        login: user_name,
        birth_date: date_at(&ent, "birthday", id, Field::BirthDate, &mut problems),
        start_date: date_at(&ent, "startDate", id, Field::StartDate, &mut problems),
        end_date: date_at(&ent, "endDate", id, Field::EndDate, &mut problems),
        job_title: owned(v, "title"),
        gender: gender_at(&ent, id, &mut problems),
        department_id: (teams.len() == 1).then(|| teams[0].clone()),
        ..Person::new(id, active)
    };
    Ok(Read {
        person,
        manager,
        external_id: owned(v, "externalId"),
        teams,
        problems,
    })
}

/// Leapsome's spelling of a gender; `None` (clear it) for `undefined`, which Leapsome has no
/// value for.
pub fn gender(value: Gender) -> Option<&'static str> {
    match value {
        Gender::Male => Some("male"),
        Gender::Female => Some("female"),
        Gender::Diverse => Some("diverse"),
        Gender::Undefined => None,
    }
}

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| json!(s))
}

fn opt_date(v: &Option<Date>) -> Value {
    v.as_ref().map_or(Value::Null, |d| json!(date::format(d)))
}

/// The partial user JSON writing `fields` of `person`. `current_emails` is the
/// account's `emails` when a write touches one of them, so the others are kept (Leapsome
/// replaces the whole list). Fields without a Leapsome attribute are skipped; an unknown
/// field name is `invalid`.
pub fn user_body(
    person: &Person,
    fields: &[FieldRef],
    current_emails: Option<&Value>,
    department: Department<'_>,
) -> Result<Map<String, Value>, ConnectorError> {
    let fields: Vec<String> = fields.iter().map(field::name).collect();
    let mut body = Map::new();
    let mut name = Map::new();
    let mut ent = Map::new();
    let mut emails_touched = false;
    for field in &fields {
        match field.as_str() {
            "employee-number" => {
                ent.insert("employeeNumber".into(), opt(&person.employee_number));
            }
            "given-name" => {
                name.insert("givenName".into(), opt(&person.given_name));
            }
            "family-name" => {
                name.insert("familyName".into(), opt(&person.family_name));
            }
            "work-email" => {
                let email = person.work_email.as_deref().ok_or_else(|| {
                    ConnectorError::Invalid(format!(
                        "person {}: work-email cannot be cleared, it is the Leapsome userName",
                        person.id
                    ))
                })?;
                body.insert("userName".into(), json!(email));
                emails_touched = true;
            }
            "personal-email" => emails_touched = true,
            "birth-date" => {
                ent.insert("birthday".into(), opt_date(&person.birth_date));
            }
            "start-date" => {
                ent.insert("startDate".into(), opt_date(&person.start_date));
            }
            "end-date" => {
                ent.insert("endDate".into(), opt_date(&person.end_date));
            }
            "job-title" => {
                body.insert("title".into(), opt(&person.job_title));
            }
            "gender" => {
                let g = person.gender.and_then(gender);
                ent.insert("gender".into(), g.map_or(Value::Null, |g| json!(g)));
            }
            "active" => {
                body.insert("active".into(), json!(person.active));
            }
            "department-id" => match department {
                Department::Named(n) => {
                    ent.insert("department".into(), json!(n));
                }
                Department::None => {
                    ent.insert("department".into(), Value::Null);
                }
                Department::Unknown => {}
            },
            // The manager is reconciled by set-manager; login is the email; phone, contract
            // type, legal entity and custom fields have no Leapsome attribute (see the table).
            "manager-id" | "login" | "phone" | "contract-type" | "legal-entity-id" => {}
            f if f.starts_with("custom:") => {}
            other => {
                return Err(ConnectorError::Invalid(format!(
                    "person {}: unknown field `{other}`",
                    person.id
                )));
            }
        }
    }
    if !name.is_empty() {
        if let (Some(g), Some(f)) = (&person.given_name, &person.family_name) {
            body.insert("displayName".into(), json!(format!("{g} {f}")));
        }
        body.insert("name".into(), Value::Object(name));
    }
    if emails_touched {
        body.insert(
            "emails".into(),
            Value::Array(emails(person, &fields, current_emails)),
        );
    }
    if !ent.is_empty() {
        body.insert(ENTERPRISE.into(), Value::Object(ent));
    }
    Ok(body)
}

/// The new `emails` list: the written work and home entries, then every other entry the
/// account already had.
fn emails(person: &Person, fields: &[String], current: Option<&Value>) -> Vec<Value> {
    let writes = |f: &str| fields.iter().any(|x| x == f);
    let current: Vec<Value> = current
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_work =
        |e: &Value| e.get("primary").and_then(Value::as_bool) == Some(true) || is_type(e, "work");
    let is_home = |e: &Value| is_type(e, "home") || is_type(e, "personal");
    let mut out = Vec::new();
    if writes("work-email") {
        if let Some(w) = &person.work_email {
            out.push(json!({"value": w, "type": "work", "primary": true}));
        }
    } else {
        out.extend(current.iter().filter(|e| is_work(e)).cloned());
    }
    if writes("personal-email") {
        if let Some(h) = &person.personal_email {
            out.push(json!({"value": h, "type": "home", "primary": false}));
        }
    } else {
        out.extend(
            current
                .iter()
                .filter(|e| !is_work(e) && is_home(e))
                .cloned(),
        );
    }
    out.extend(
        current
            .iter()
            .filter(|e| !is_work(e) && !is_home(e))
            .cloned(),
    );
    out
}

/// The enterprise `department` a write sets from `department-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Department<'a> {
    /// The team's name.
    Named(&'a str),
    /// No department: cleared.
    None,
    /// A team this instance cannot name: left as it is.
    Unknown,
}

/// The POST of a create: the core attributes Leapsome keeps (`userName`, `name`,
/// `displayName`, `title`, `externalId` = the source id) and, when enabled, the invitation
/// request. `name` is always sent (Leapsome requires it), with the parts the person has.
pub fn create_post(person: &Person, email: &str, invite: bool) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("schemas".into(), json!([USER_SCHEMA]));
    body.insert("userName".into(), json!(email));
    body.insert("externalId".into(), json!(person.id));
    let mut name = Map::new();
    put_some(&mut name, "givenName", &person.given_name);
    put_some(&mut name, "familyName", &person.family_name);
    body.insert("name".into(), Value::Object(name));
    if let (Some(g), Some(f)) = (&person.given_name, &person.family_name) {
        body.insert("displayName".into(), json!(format!("{g} {f}")));
    }
    put_some(&mut body, "title", &person.job_title);
    if invite {
        body.insert(INVITE_EXTENSION.into(), json!({"invite": true}));
    }
    body
}

/// The PATCH completing a create: `userName` (Leapsome requires it), `active`, and the
/// enterprise attributes the person has — employee number, department (the team's name),
/// start and end dates, birthday, gender — with the manager when its account is known. Absent
/// attributes are left out.
pub fn create_patch(
    person: &Person,
    email: &str,
    department: Option<&str>,
) -> Result<Map<String, Value>, ConnectorError> {
    let mut ent = Map::new();
    put_some(&mut ent, "employeeNumber", &person.employee_number);
    if let Some(d) = department {
        ent.insert("department".into(), json!(d));
    }
    let date = |d: &Option<Date>| d.as_ref().map(date::format);
    put_some(&mut ent, "startDate", &date(&person.start_date));
    put_some(&mut ent, "endDate", &date(&person.end_date));
    put_some(&mut ent, "birthday", &date(&person.birth_date));
    if let Some(g) = person.gender.and_then(gender) {
        ent.insert("gender".into(), json!(g));
    }
    if let Some(m) = &person.manager_id {
        ent.insert("manager".into(), json!({"value": m}));
    }
    let mut body = Map::new();
    body.insert("schemas".into(), json!([USER_SCHEMA, ENTERPRISE]));
    body.insert("userName".into(), json!(email));
    body.insert("active".into(), json!(person.active));
    if !ent.is_empty() {
        body.insert(ENTERPRISE.into(), Value::Object(ent));
    }
    Ok(body)
}

fn put_some(m: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        m.insert(key.into(), json!(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str]) -> Vec<FieldRef> {
        names
            .iter()
            .map(|f| field::parse(f).unwrap_or_else(|| panic!("not a contract field: {f}")))
            .collect()
    }

    #[test]
    fn genders_map_to_leapsome_spellings() {
        assert_eq!(gender(Gender::Female), Some("female"));
        assert_eq!(gender(Gender::Diverse), Some("diverse"));
        assert_eq!(gender(Gender::Undefined), None);
    }

    #[test]
    fn a_partial_body_holds_only_the_listed_fields() {
        let person = Person {
            given_name: Some("Ann".into()),
            family_name: Some("Lee".into()),
            job_title: None,
            birth_date: Some(Date {
                year: 1990,
                month: 1,
                day: 2,
            }),
            ..Person::new("7", true)
        };
        let body = user_body(
            &person,
            &fields(&["family-name", "job-title", "birth-date"]),
            None,
            Department::Unknown,
        )
        .unwrap();
        assert_eq!(body["name"], json!({"familyName": "Lee"}));
        assert_eq!(body["displayName"], "Ann Lee");
        assert_eq!(body["title"], Value::Null, "listed and absent: cleared");
        assert_eq!(body[ENTERPRISE], json!({"birthday": "1990-01-02"}));
        assert!(!body.contains_key("active") && !body.contains_key("emails"));
        let unstored = Person {
            phone: Some("+33 1 23".into()),
            contract_type: Some("CDI".into()),
            legal_entity_id: Some("3".into()),
            ..person.clone()
        };
        let skipped = [
            "login",
            "custom:x",
            "phone",
            "contract-type",
            "legal-entity-id",
        ];
        assert_eq!(
            user_body(&unstored, &fields(&skipped), None, Department::Unknown).unwrap(),
            Map::new(),
            "fields without a Leapsome attribute are skipped"
        );
        assert!(
            user_body(&person, &fields(&["work-email"]), None, Department::Unknown).is_err(),
            "userName cannot be cleared"
        );
    }

    #[test]
    fn changing_one_email_keeps_the_others() {
        let current = json!([
            {"value": "old@a.example", "type": "work", "primary": true},
            {"value": "me@home.example", "type": "home"},
            {"value": "alias@a.example", "type": "other"},
        ]);
        let person = Person {
            work_email: Some("new@a.example".into()),
            ..Person::new("7", true)
        };
        let body = user_body(
            &person,
            &fields(&["work-email"]),
            Some(&current),
            Department::Unknown,
        )
        .unwrap();
        assert_eq!(body["userName"], "new@a.example");
        let values: Vec<&str> = body["emails"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["value"].as_str())
            .collect();
        assert_eq!(
            values,
            ["new@a.example", "me@home.example", "alias@a.example"]
        );
    }

    #[test]
    fn a_create_posts_core_attributes_then_patches_the_rest() {
        let person = Person {
            given_name: Some("Ann".into()),
            personal_email: Some("ann@gmail.example".into()),
            employee_number: Some("E7".into()),
            start_date: Some(Date {
                year: 2024,
                month: 3,
                day: 1,
            }),
            gender: Some(Gender::Female),
            manager_id: Some("5f00".into()),
            phone: Some("+33 1 23".into()),
            contract_type: Some("CDI".into()),
            legal_entity_id: Some("3".into()),
            ..Person::new("42", true)
        };
        let post = create_post(&person, "ann@a.example", true);
        assert_eq!(post["externalId"], "42");
        assert_eq!(post["userName"], "ann@a.example");
        assert_eq!(
            post["name"],
            json!({"givenName": "Ann"}),
            "name is always sent"
        );
        assert_eq!(post[INVITE_EXTENSION], json!({"invite": true}));
        let mut keys: Vec<&str> = post.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "externalId",
                "name",
                "schemas",
                INVITE_EXTENSION,
                "userName"
            ],
            "only core attributes the person has; no emails"
        );
        assert!(!create_post(&person, "ann@a.example", false).contains_key(INVITE_EXTENSION));

        let patch = create_patch(&person, "ann@a.example", Some("Sales")).unwrap();
        assert_eq!(
            patch["userName"], "ann@a.example",
            "every PATCH names the account"
        );
        assert_eq!(patch["active"], true);
        assert_eq!(
            patch[ENTERPRISE],
            json!({"employeeNumber": "E7", "department": "Sales", "startDate": "2024-03-01",
                   "gender": "female", "manager": {"value": "5f00"}})
        );
        assert!(
            !patch.contains_key("emails"),
            "the personal email is never sent by a create"
        );
        let mut keys: Vec<&str> = patch.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["active", "schemas", ENTERPRISE, "userName"],
            "no phoneNumbers, userType (nor enterprise organization): Leapsome drops them"
        );
        let undefined = Person {
            gender: Some(Gender::Undefined),
            ..person
        };
        let patch = create_patch(&undefined, "ann@a.example", None).unwrap();
        assert!(
            patch[ENTERPRISE].get("gender").is_none(),
            "Leapsome has no undefined"
        );
    }

    #[test]
    fn an_update_writes_the_department_by_name() {
        let person = Person::new("7", true);
        let f = fields(&["department-id"]);
        let named = user_body(&person, &f, None, Department::Named("Ops")).unwrap();
        assert_eq!(named[ENTERPRISE], json!({"department": "Ops"}));
        let cleared = user_body(&person, &f, None, Department::None).unwrap();
        assert_eq!(cleared[ENTERPRISE], json!({"department": null}));
        assert!(
            user_body(&person, &f, None, Department::Unknown)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_read_user_keeps_its_manager_reference_for_translation() {
        let user = json!({
            "id": "5f01", "externalId": "42", "userName": "ann@a.example", "active": false,
            "emails": [{"value": "ann@a.example", "type": "work", "primary": true},
                       {"value": "me@home.example", "type": "home"}],
            "groups": [{"value": "7e01"}],
            ENTERPRISE: {"manager": {"value": "41", "$ref": "https://x/scim/v1/Users/5f00"},
                         "startDate": "2024-01-15", "gender": "diverse"},
        });
        let read = person_from_user(&user).unwrap();
        assert_eq!(read.person.id, "5f01");
        assert!(!read.person.active);
        assert_eq!(
            read.person.personal_email.as_deref(),
            Some("me@home.example")
        );
        assert_eq!(read.person.department_id.as_deref(), Some("7e01"));
        assert_eq!(
            read.person.start_date,
            Some(Date {
                year: 2024,
                month: 1,
                day: 15
            })
        );
        assert_eq!(read.manager, Some(("41".into(), Some("5f00".into()))));
        assert_eq!(read.external_id.as_deref(), Some("42"));
        assert_eq!(read.teams, ["7e01"]);
        assert_eq!(read.person.gender, Some(Gender::Diverse));
        assert!(read.problems.is_empty());
        assert!(person_from_user(&json!({"userName": "x"})).is_err());
    }

    #[test]
    fn unreadable_values_are_problems_on_the_record_not_errors() {
        let user = json!({
            "id": "5f02", "userName": "bo@a.example",
            ENTERPRISE: {"birthday": "1990-02-30", "gender": "robot", "startDate": "2024-01-15"},
        });
        let read = person_from_user(&user).unwrap();
        assert_eq!(read.person.birth_date, None);
        assert_eq!(read.person.gender, None);
        assert!(
            read.person.start_date.is_some(),
            "the other fields are kept"
        );
        let found: Vec<(&str, Option<FieldRef>)> = read
            .problems
            .iter()
            .map(|p| (p.record_id.as_str(), p.field.clone()))
            .collect();
        assert_eq!(
            found,
            [
                ("5f02", Some(FieldRef::Canonical(Field::BirthDate))),
                ("5f02", Some(FieldRef::Canonical(Field::Gender))),
            ]
        );
        assert!(read.problems[1].message.contains("robot"));
    }
}
