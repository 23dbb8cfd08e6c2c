//! Cards' API as this connector uses it: the client (Bearer slot + `X-Tenant`), Laravel
//! pages, users and their groups.

use muster_sdk::prelude::*;
use serde_json::Value;

use crate::settings::Settings;

/// The credential slot: `Authorization: Bearer {secret}`.
pub const SLOT: &str = "api-token";

/// A group a user is in: Cards' id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: u64,
    pub name: String,
}

/// A Cards user as this connector reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub firstname: String,
    pub lastname: String,
    pub email: Option<String>,
    pub groups: Vec<Membership>,
}

pub fn client(s: &Settings) -> Client {
    Client::new(s.base_url.clone())
        .with_credential(SLOT)
        .with_header("X-Tenant", s.tenant.clone())
}

/// Cards' refusals (422) carry `errors: {field: [text]}`; the SDK keeps the body's text.
pub fn is_email_taken(e: &ConnectorError) -> bool {
    matches!(e, ConnectorError::Invalid(d) if d.contains("has already been taken"))
}

/// Every row of a paged list (`data`, `meta.last_page`, `meta.total`): a page shorter than
/// announced fails the read instead of passing a partial list off as complete.
pub fn read_all(s: &Settings, path: &str) -> Result<Vec<Value>, ConnectorError> {
    let client = client(s);
    let mut rows = Vec::new();
    let mut page = 1u64;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{path}{sep}paginate={}&page={page}", s.page_size);
        let body: Value = client.get(&url)?;
        let data = body.get("data").and_then(Value::as_array).ok_or_else(|| {
            ConnectorError::Invalid(format!("malformed Cards response: no `data` list in {url}"))
        })?;
        let meta = |k: &str| {
            body.get("meta")
                .and_then(|m| m.get(k))
                .and_then(Value::as_u64)
        };
        let (last, total) = (meta("last_page").unwrap_or(page), meta("total"));
        let expected = match total {
            Some(t) => (t as usize).saturating_sub(rows.len()).min(s.page_size),
            None => data.len(),
        };
        if data.len() < expected {
            return Err(ConnectorError::Unavailable(format!(
                "Cards returned {} rows on page {page} of {url} where {expected} were expected; \
                 refusing a partial read",
                data.len()
            )));
        }
        rows.extend(data.iter().cloned());
        if page >= last || data.is_empty() {
            return Ok(rows);
        }
        page += 1;
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A user from Cards' JSON; `None` for a row without a numeric id (reported by the caller).
pub fn user(v: &Value) -> Option<User> {
    let id = v.get("id").and_then(Value::as_u64)?;
    let groups = v
        .get("groups")
        .and_then(Value::as_array)
        .map(|gs| {
            gs.iter()
                .filter_map(|g| {
                    Some(Membership {
                        id: g.get("id").and_then(Value::as_u64)?,
                        name: g.get("name").and_then(Value::as_str)?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(User {
        id,
        firstname: text(v, "firstname").unwrap_or_default(),
        lastname: text(v, "lastname").unwrap_or_default(),
        email: text(v, "email"),
        groups,
    })
}

/// One user, `None` on 404.
pub fn get_user(s: &Settings, id: &str) -> Result<Option<User>, ConnectorError> {
    let body: Value = match client(s).get(&format!("/users/{}", path_id(id)?)) {
        Ok(b) => b,
        Err(ConnectorError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let data = body.get("data").unwrap_or(&body);
    user(data).map(Some).ok_or_else(|| {
        ConnectorError::Invalid(format!(
            "malformed Cards response: user {id} has no numeric id"
        ))
    })
}

/// Cards ids are numbers: anything else is refused before it reaches a URL.
pub fn path_id(id: &str) -> Result<u64, ConnectorError> {
    id.trim()
        .parse()
        .map_err(|_| ConnectorError::Invalid(format!("`{id}` is not a Cards user id (a number)")))
}

/// The user as a muster account; `active` unless it is in the leavers group.
pub fn person(u: &User, leavers_group: &str) -> Person {
    Person {
        given_name: Some(u.firstname.clone()).filter(|s| !s.is_empty()),
        family_name: Some(u.lastname.clone()).filter(|s| !s.is_empty()),
        work_email: u.email.clone(),
        ..Person::new(
            u.id.to_string(),
            !u.groups.iter().any(|g| g.name == leavers_group),
        )
    }
}
