//! Writes: users, and memberships merged into Cards' whole-list `groups`.
//!
//! Cards' `PUT /users/{id}` replaces a user's **whole** `groups` list, so every membership
//! write here is a read-modify-write of one user: its current groups (from this instance's
//! own last write of that user, else a `GET`), with only the group concerned added or
//! removed, every other group kept by id. Groups made by hand, and a user's membership in
//! them, are never dropped.

use std::cell::RefCell;
use std::collections::HashMap;

use muster_sdk::prelude::*;
use serde_json::{Map, Value, json};

use crate::api::{self, Membership, User};
use crate::settings::Settings;

/// Cards' longest name (first/last name, email, group).
pub const MAX_NAME: usize = 190;

thread_local! {
    /// Users as this instance's own writes left them (the answer to its POST or PUT): exact
    /// until someone else writes, so they spare a GET before the next write of the same
    /// user in this run. Cleared at every `read-accounts`.
    static WRITTEN: RefCell<HashMap<u64, Vec<Membership>>> = RefCell::new(HashMap::new());
}

pub fn forget_writes() {
    WRITTEN.with_borrow_mut(HashMap::clear);
}

fn remember(u: &User) {
    WRITTEN.with_borrow_mut(|w| w.insert(u.id, u.groups.clone()));
}

fn answer_user(body: &Value, about: &str) -> Result<User, ConnectorError> {
    api::user(body.get("data").unwrap_or(body)).ok_or_else(|| {
        ConnectorError::Invalid(format!("malformed Cards response for {about}: no user id"))
    })
}

/// A name Cards would refuse, as an `invalid` naming the record and the field.
fn name(about: &str, field: &str, value: Option<&str>) -> Result<String, ConnectorError> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ConnectorError::Invalid(format!("{about}: {field} is empty, and Cards requires it"))
        })?;
    let n = value.chars().count();
    if n > MAX_NAME {
        return Err(ConnectorError::Invalid(format!(
            "{about}: {field} is {n} characters; Cards accepts at most {MAX_NAME}"
        )));
    }
    Ok(value.to_string())
}

fn with_about(e: ConnectorError, about: &str) -> ConnectorError {
    match e {
        ConnectorError::Invalid(d) => ConnectorError::Invalid(format!("{about}: {d}")),
        ConnectorError::Conflict(d) => ConnectorError::Conflict(format!("{about}: {d}")),
        ConnectorError::Forbidden(d) => ConnectorError::Forbidden(format!("{about}: {d}")),
        other => other,
    }
}

/// `POST /users` with the options of the connection (notify, connection mode). An email a
/// Cards user already has links that user instead (the create is also safe to retry).
pub fn create(s: &Settings, p: &Person) -> Result<Applied, ConnectorError> {
    let about = format!("person {}", p.id);
    let email = name(&about, "work-email", p.work_email.as_deref())?;
    let body = json!({
        "firstname": name(&about, "given-name", p.given_name.as_deref())?,
        "lastname": name(&about, "family-name", p.family_name.as_deref())?,
        "email": email,
        "source": s.mode.source(),
        "notify": s.notify,
    });
    match api::client(s).post::<_, Value>("/users", &body) {
        Ok(answer) => {
            let user = answer_user(&answer, &about)?;
            remember(&user);
            Ok(Applied {
                target_id: user.id.to_string(),
            })
        }
        Err(e) if api::is_email_taken(&e) => link_existing(s, &about, &email),
        Err(e) => Err(with_about(e, &about)),
    }
}

fn link_existing(s: &Settings, about: &str, email: &str) -> Result<Applied, ConnectorError> {
    let found = api::read_all(s, "/users")?
        .iter()
        .filter_map(api::user)
        .find(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        });
    match found {
        Some(u) => {
            info!("{about}: {email} is already Cards user {}; linking", u.id);
            Ok(Applied {
                target_id: u.id.to_string(),
            })
        }
        None => Err(ConnectorError::Conflict(format!(
            "{about}: Cards says {email} is taken, but no user it lists has it"
        ))),
    }
}

/// `PUT` of the listed fields only.
pub fn update(s: &Settings, u: &AccountUpdate) -> Result<Applied, ConnectorError> {
    let about = format!("account {}", u.id);
    let mut body = Map::new();
    for f in &u.fields {
        let (key, field, value) = match f {
            FieldRef::Canonical(Field::GivenName) => {
                ("firstname", "given-name", &u.person.given_name)
            }
            FieldRef::Canonical(Field::FamilyName) => {
                ("lastname", "family-name", &u.person.family_name)
            }
            FieldRef::Canonical(Field::WorkEmail) => ("email", "work-email", &u.person.work_email),
            other => {
                return Err(ConnectorError::Invalid(format!(
                    "{about}: Cards does not store {}",
                    muster_sdk::field::name(other)
                )));
            }
        };
        body.insert(key.into(), json!(name(&about, field, value.as_deref())?));
    }
    if !u.rows.is_empty() {
        return Err(ConnectorError::Invalid(format!(
            "{about}: Cards has no compound fields to write rows into"
        )));
    }
    if !body.is_empty() {
        let id = api::path_id(&u.id)?;
        let answer: Value = api::client(s)
            .put(&format!("/users/{id}"), &Value::Object(body))
            .map_err(|e| with_about(e, &about))?;
        remember(&answer_user(&answer, &about)?);
    }
    Ok(Applied {
        target_id: u.id.clone(),
    })
}

/// The user's groups now: from this instance's last write of it, else read.
fn current_groups(s: &Settings, id: u64) -> Result<Vec<Membership>, ConnectorError> {
    if let Some(g) = WRITTEN.with_borrow(|w| w.get(&id).cloned()) {
        return Ok(g);
    }
    match api::get_user(s, &id.to_string())? {
        Some(u) => Ok(u.groups),
        None => Err(ConnectorError::NotFound),
    }
}

/// Puts the user in (`join`) or takes it out of the group named `group`, keeping every
/// other group. Nothing is sent when that is already so.
pub fn set_membership(
    s: &Settings,
    account: &str,
    group: &str,
    join: bool,
) -> Result<(), ConnectorError> {
    let about = format!("account {account}, group `{group}`");
    let id = api::path_id(account)?;
    let current = current_groups(s, id).map_err(|e| match e {
        ConnectorError::NotFound => {
            ConnectorError::Invalid(format!("{about}: Cards has no user {account}"))
        }
        other => with_about(other, &about),
    })?;
    let Some(refs) = merged(&current, group, join) else {
        return Ok(());
    };
    let answer: Value = api::client(s)
        .put(&format!("/users/{id}"), &json!({"groups": refs}))
        .map_err(|e| with_about(e, &about))?;
    remember(&answer_user(&answer, &about)?);
    Ok(())
}

/// The `groups` body that puts a user in (`join`) or out of `group` and keeps every other
/// group it is in, by id; `None` when it already is where it should be.
fn merged(current: &[Membership], group: &str, join: bool) -> Option<Vec<Value>> {
    if current.iter().any(|g| g.name == group) == join {
        return None;
    }
    let mut refs: Vec<Value> = current
        .iter()
        .filter(|g| g.name != group)
        .map(|g| json!({"id": g.id}))
        .collect();
    if join {
        refs.push(json!({"name": group}));
    }
    Some(refs)
}

/// A `change-members`: one read-modify-write per member (see the module docs). Every member
/// is tried; the first failure is returned after the others were written.
pub fn change_members(s: &Settings, m: &MemberChange) -> Result<Applied, ConnectorError> {
    let mut first_error = None;
    let changes = m
        .add
        .iter()
        .map(|a| (a, true))
        .chain(m.remove.iter().map(|a| (a, false)));
    for (account, join) in changes {
        if let Err(e) = set_membership(s, account, &m.group_id, join) {
            warn!("group `{}`: member {account}: {e:?}", m.group_id);
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(Applied {
            target_id: m.group_id.clone(),
        }),
    }
}

/// A department becomes a group of the same name. Cards creates a group when a user first
/// names it (`groups: [{name}]`) and has no group write of its own, so nothing is sent: the
/// group's id, its name, is handed back and the first member's write creates it.
pub fn create_group(s: &Settings, g: &NewGroup) -> Result<Applied, ConnectorError> {
    let about = format!("group `{}`", g.name);
    let group = name(&about, "group name", Some(&g.name))?;
    if group == s.leavers_group {
        return Err(ConnectorError::Conflict(format!(
            "{about}: `{group}` is this connection's leavers_group; rename one of them"
        )));
    }
    Ok(Applied { target_id: group })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64, name: &str) -> Membership {
        Membership {
            id,
            name: name.into(),
        }
    }

    #[test]
    fn a_membership_write_keeps_every_other_group() {
        let current = [m(1, "Book club"), m(2, "Sales")];
        assert_eq!(
            merged(&current, "Support", true),
            Some(vec![
                json!({"id": 1}),
                json!({"id": 2}),
                json!({"name": "Support"})
            ])
        );
        assert_eq!(
            merged(&current, "Sales", false),
            Some(vec![json!({"id": 1})])
        );
        assert_eq!(merged(&current, "Sales", true), None, "already in");
        assert_eq!(merged(&current, "Support", false), None, "already out");
        assert_eq!(merged(&[m(2, "Sales")], "Sales", false), Some(vec![]));
    }

    #[test]
    fn names_cards_refuses_are_invalid_naming_the_field() {
        let long = "é".repeat(MAX_NAME + 1);
        let Err(ConnectorError::Invalid(msg)) = name("person 7", "family-name", Some(&long)) else {
            panic!("too long");
        };
        assert!(
            msg.contains("person 7: family-name is 191 characters"),
            "{msg}"
        );
        assert!(name("person 7", "given-name", Some("  ")).is_err());
        assert_eq!(
            name("p", "f", Some(&"é".repeat(MAX_NAME))).map(|n| n.chars().count()),
            Ok(MAX_NAME)
        );
    }
}
