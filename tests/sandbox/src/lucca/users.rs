//! `/api/v3/users`: list with projection, filters and paging; get one; create with contract;
//! update (flat or `{"data":…}`-wrapped bodies).
//!
//! Choices where the notes leave room (easy to change):
//! - `paging` limit above 1000 → 400 (not clamped), so a client asking too much notices.
//! - `fields=collection.count` answers `data.count` (the number of matching users, all pages).
//! - A filter on an unknown field, or an unknown field in `fields`, → 400 naming it.
//! - Unknown keys in a write body → 400 naming them; read-only keys (`id`, `name`, `url`,
//!   `modifiedAt`, the nested `department`… objects) and `extendedData` are ignored, like the
//!   real API ignores custom fields written inside `extendedData`.
//! - A login already used → 400 with `"field":"login"`; a create without a login gets one
//!   generated, first letter of the first name + last name, as Lucca does by default.

use serde_json::{Map, Value, json};

use super::fields::Selection;
use super::query::Query;
use super::{ApiError, Ctx, Permission, auth, extended};
use crate::datetime;
use crate::tenant::{Tenant, User};

/// Default and maximum page size.
pub const MAX_PAGE: usize = 1000;

/// The full JSON view of a user (what `fields=` selects from).
fn view(ctx: &Ctx, tenant: &Tenant, u: &User) -> Value {
    let named = |id: Option<u64>, name: Option<String>| match (id, name) {
        (Some(id), Some(name)) => json!({"id": id, "name": name}),
        (Some(id), None) => json!({"id": id, "name": null}),
        _ => Value::Null,
    };
    let manager = u
        .manager_id
        .and_then(|m| tenant.user(m))
        .map(|m| format!("{} {}", m.first_name, m.last_name));
    json!({
        "id": u.id,
        "name": format!("{} {}", u.first_name, u.last_name),
        "url": format!("{}/api/v3/users/{}", ctx.base_url, u.id),
        "firstName": u.first_name,
        "lastName": u.last_name,
        "login": u.login,
        "mail": u.mail,
        "personalEmail": u.personal_email,
        "birthDate": u.birth_date,
        "employeeNumber": u.employee_number,
        "jobTitle": u.job_title,
        "gender": u.gender,
        "dtContractStart": u.dt_contract_start,
        "dtContractEnd": u.dt_contract_end,
        "directLine": u.direct_line,
        "professionalMobile": u.professional_mobile,
        "personalMobile": u.personal_mobile,
        "legalEntityId": u.legal_entity_id,
        "legalEntity": named(u.legal_entity_id, u.legal_entity_id.and_then(|i| tenant.establishment(i)).map(|e| e.name.clone())),
        "departmentId": u.department_id,
        "department": named(u.department_id, u.department_id.and_then(|i| tenant.department(i)).map(|d| d.name.clone())),
        "managerId": u.manager_id,
        "manager": named(u.manager_id, manager),
        "rolePrincipalId": u.role_principal_id,
        "rolePrincipal": named(u.role_principal_id, u.role_principal_id.and_then(|i| tenant.role(i)).map(|r| r.name.clone())),
        "modifiedAt": u.modified_at,
        "modifiedOn": u.modified_at,
        "extendedData": extended::read(tenant, u),
    })
}

/// Parses `fields=`; unknown top-level names are 400. Asking for `extendedData` needs the
/// custom-data permission.
fn selection(ctx: &Ctx, raw: &str, known: &Map<String, Value>) -> Result<Selection, ApiError> {
    let sel = Selection::parse(raw)?;
    for name in sel.names() {
        if name != "collection" && !known.contains_key(name) {
            return Err(
                ApiError::bad(format!("unknown field '{name}' in fields")).with("field", name)
            );
        }
    }
    if sel.get("extendedData").is_some() {
        auth::require(ctx.key, &[Permission::HrFileCustomData])?;
    }
    Ok(sel)
}

/// `GET /api/v3/users`.
pub fn list(ctx: &Ctx, tenant: &Tenant, query: &Query) -> Result<Value, ApiError> {
    auth::require(ctx.key, &[Permission::ManageUsers])?;
    let (offset, limit) = paging(query.get("paging"))?;
    let include_former = match query.get("formerEmployees") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "formerEmployees must be true or false, not '{other}'"
            ))
            .with("field", "formerEmployees"));
        }
    };
    let filters: Vec<(&str, &str)> = query
        .pairs
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "fields" | "paging" | "formerEmployees" | "orderBy"
            )
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // Views are built only where needed (to filter, and for the page): building one per
    // employee for every page made a 10k-employee read quadratic.
    let mut matching: Vec<&User> = Vec::new();
    for user in &tenant.users {
        if !include_former && Tenant::is_former(user, &ctx.now) {
            continue;
        }
        let mut keep = true;
        if !filters.is_empty() {
            let v = view(ctx, tenant, user);
            for (field, expr) in &filters {
                keep &= filter_matches(field, expr, &v)?;
            }
        }
        if keep {
            matching.push(user);
        }
    }
    let blank = view(ctx, tenant, &blank_user());
    let known = blank.as_object().cloned().unwrap_or_default();
    let mut sel = selection(ctx, query.get("fields").unwrap_or("id,name,url"), &known)?;
    let collection = sel.take("collection");
    let mut data = Map::new();
    if let Some(Some(c)) = &collection
        && c.get("count").is_some()
    {
        data.insert("count".into(), json!(matching.len()));
    }
    if collection.is_none() || !sel.0.is_empty() {
        let items: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|u| sel.project(&view(ctx, tenant, u)))
            .collect();
        data.insert("items".into(), Value::Array(items));
    }
    Ok(ctx.envelope(Value::Object(data)))
}

/// `GET /api/v3/users/{id}`: every field but `extendedData` unless `fields=` says otherwise.
pub fn get(ctx: &Ctx, tenant: &Tenant, id: u64, query: &Query) -> Result<Value, ApiError> {
    auth::require(ctx.key, &[Permission::ManageUsers])?;
    let user = tenant
        .user(id)
        .ok_or_else(|| ApiError::new(404, format!("user {id} not found")))?;
    let mut v = view(ctx, tenant, user);
    let data = match query.get("fields") {
        Some(raw) => {
            let known = v.as_object().cloned().unwrap_or_default();
            selection(ctx, raw, &known)?.project(&v)
        }
        None => {
            if let Some(o) = v.as_object_mut() {
                o.remove("extendedData");
            }
            v
        }
    };
    Ok(ctx.envelope(data))
}

/// `POST /api/v3/users?contract=true`.
pub fn create(
    ctx: &Ctx,
    tenant: &mut Tenant,
    query: &Query,
    body: &[u8],
) -> Result<Value, ApiError> {
    auth::require(ctx.key, &[Permission::ManageUsers])?;
    if query.get("contract") != Some("true") {
        return Err(ApiError::bad(
            "creating a user needs ?contract=true (user and contract are created together)",
        )
        .with("field", "contract"));
    }
    let body = parse_body(body)?;
    let mut user = blank_user();
    apply(ctx, tenant, &mut user, &body)?;
    for (field, value) in [
        ("firstName", &user.first_name),
        ("lastName", &user.last_name),
    ] {
        if value.trim().is_empty() {
            return Err(missing(field, "is mandatory"));
        }
    }
    if user.login.trim().is_empty() {
        user.login = generated_login(tenant, &user.first_name, &user.last_name);
    }
    let d = tenant.defaults.clone();
    user.legal_entity_id = user.legal_entity_id.or(d.legal_entity_id);
    user.department_id = user.department_id.or(d.department_id);
    user.role_principal_id = user.role_principal_id.or(d.role_principal_id);
    if user.legal_entity_id.is_none() {
        return Err(missing(
            "legalEntityId",
            "(legal entity) is mandatory and the tenant has no default",
        ));
    }
    if user.department_id.is_none() {
        return Err(missing(
            "departmentId",
            "(department) is mandatory and the tenant has no default",
        ));
    }
    if user.role_principal_id.is_none() {
        return Err(missing(
            "rolePrincipalId",
            "(main role) is mandatory and the tenant has no default",
        ));
    }
    user.id = tenant.take_user_id();
    user.modified_at = ctx.now.clone();
    let v = view(ctx, tenant, &user);
    tenant.users.push(user);
    Ok(ctx.envelope(strip_extended(v)))
}

/// `PUT /api/v3/users/{id}`; a missing user answers 500, as the real API has been seen to.
pub fn update(ctx: &Ctx, tenant: &mut Tenant, id: u64, body: &[u8]) -> Result<Value, ApiError> {
    auth::require(ctx.key, &[Permission::ManageUsers])?;
    let body = parse_body(body)?;
    let mut user = tenant
        .user(id)
        .cloned()
        .ok_or_else(|| ApiError::new(500, "An unexpected error occurred"))?;
    apply(ctx, tenant, &mut user, &body)?;
    user.modified_at = ctx.now.clone();
    let v = view(ctx, tenant, &user);
    if let Some(slot) = tenant.user_mut(id) {
        *slot = user;
    }
    Ok(ctx.envelope(strip_extended(v)))
}

/// Lucca generates the login of a user created without one: first letter of the first name +
/// last name (the tenant-wide default format), folded to ASCII; a number is appended when
/// that login is taken.
fn generated_login(tenant: &Tenant, first: &str, last: &str) -> String {
    let initial: String = first.chars().take(1).collect();
    let base = crate::tenant::ascii_fold(&format!("{initial}{last}"));
    let base = if base.is_empty() {
        "user".to_string()
    } else {
        base
    };
    let taken = |l: &str| tenant.users.iter().any(|u| u.login == l);
    let mut login = base.clone();
    let mut n = 2;
    while taken(&login) {
        login = format!("{base}{n}");
        n += 1;
    }
    login
}

fn strip_extended(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("extendedData");
    }
    v
}

fn missing(field: &str, what: &str) -> ApiError {
    ApiError::bad(format!("{field} {what}")).with("field", field)
}

/// A JSON object, flat or wrapped in `{"data":{…}}`.
fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))?;
    let Value::Object(mut o) = v else {
        return Err(ApiError::bad("the body must be a JSON object"));
    };
    if o.len() == 1
        && let Some(Value::Object(inner)) = o.remove("data")
    {
        return Ok(inner);
    }
    Ok(o)
}

fn blank_user() -> User {
    User {
        id: 0,
        first_name: String::new(),
        last_name: String::new(),
        login: String::new(),
        mail: None,
        personal_email: None,
        birth_date: None,
        employee_number: None,
        job_title: None,
        gender: "Undefined".into(),
        dt_contract_start: None,
        dt_contract_end: None,
        direct_line: None,
        professional_mobile: None,
        personal_mobile: None,
        legal_entity_id: None,
        department_id: None,
        manager_id: None,
        role_principal_id: None,
        modified_at: String::new(),
        extended: Default::default(),
    }
}

/// Applies a write body to a working copy of a user, validating everything it names.
fn apply(
    ctx: &Ctx,
    tenant: &mut Tenant,
    user: &mut User,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    let bad =
        |field: &str, what: &str| ApiError::bad(format!("{field}: {what}")).with("field", field);
    let text = |field: &str, v: &Value| -> Result<Option<String>, ApiError> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(bad(field, "expected a string or null")),
        }
    };
    let date = |field: &str, v: &Value| -> Result<Option<String>, ApiError> {
        match text(field, v)? {
            None => Ok(None),
            Some(s) => datetime::normalise(&s)
                .map(Some)
                .ok_or_else(|| bad(field, "expected a date like 2014-09-01T00:00:00")),
        }
    };
    let id =
        |field: &str, v: &Value, exists: &dyn Fn(u64) -> bool| -> Result<Option<u64>, ApiError> {
            match v {
                Value::Null => Ok(None),
                v => {
                    let id = v
                        .as_u64()
                        .ok_or_else(|| bad(field, "expected an integer id"))?;
                    if exists(id) {
                        Ok(Some(id))
                    } else {
                        Err(bad(field, &format!("{id} does not exist")))
                    }
                }
            }
        };
    let mut extended_writes = Vec::new();
    for (key, v) in body {
        match key.as_str() {
            "firstName" => user.first_name = text(key, v)?.unwrap_or_default(),
            "lastName" => user.last_name = text(key, v)?.unwrap_or_default(),
            "login" => {
                let login = text(key, v)?.unwrap_or_default();
                if let Some(other) = tenant
                    .users
                    .iter()
                    .find(|u| u.login == login && u.id != user.id)
                {
                    return Err(bad(
                        key,
                        &format!("'{login}' is already used by user {}", other.id),
                    ));
                }
                user.login = login;
            }
            "mail" => user.mail = text(key, v)?,
            "personalEmail" => user.personal_email = text(key, v)?,
            "employeeNumber" => user.employee_number = text(key, v)?,
            "jobTitle" => user.job_title = text(key, v)?,
            "directLine" => user.direct_line = text(key, v)?,
            "professionalMobile" => user.professional_mobile = text(key, v)?,
            "personalMobile" => user.personal_mobile = text(key, v)?,
            "birthDate" => user.birth_date = date(key, v)?,
            "dtContractStart" => user.dt_contract_start = date(key, v)?,
            "dtContractEnd" => user.dt_contract_end = date(key, v)?,
            "gender" => {
                let g = text(key, v)?.unwrap_or_else(|| "Undefined".into());
                if !matches!(g.as_str(), "Undefined" | "Male" | "Female" | "Misc") {
                    return Err(bad(key, "expected Undefined, Male, Female or Misc"));
                }
                user.gender = g;
            }
            "legalEntityId" => {
                user.legal_entity_id = id(key, v, &|i| tenant.establishment(i).is_some())?
            }
            "departmentId" => user.department_id = id(key, v, &|i| tenant.department(i).is_some())?,
            "rolePrincipalId" => {
                user.role_principal_id = id(key, v, &|i| tenant.role(i).is_some())?
            }
            "managerId" => {
                user.manager_id = id(key, v, &|i| tenant.user(i).is_some())?;
                if user.manager_id.is_some() && user.manager_id == Some(user.id) {
                    return Err(bad(key, "a user cannot be their own manager"));
                }
            }
            "id" | "name" | "url" | "modifiedAt" | "modifiedOn" | "legalEntity" | "department"
            | "manager" | "rolePrincipal" | "extendedData" => {}
            code if code.starts_with("e_") => {
                let def = tenant
                    .definition(code)
                    .cloned()
                    .ok_or_else(|| bad(code, "unknown extended field"))?;
                extended_writes.push((def, v));
            }
            other => return Err(bad(other, "unknown field")),
        }
    }
    if !extended_writes.is_empty() {
        auth::require(ctx.key, &[Permission::HrFileCustomData])?;
    }
    for (def, v) in extended_writes {
        extended::write(&def, v, user, &mut || tenant.take_occurrence_id())?;
    }
    Ok(())
}

/// `paging={offset},{limit}`; default `0,1000`.
fn paging(raw: Option<&str>) -> Result<(usize, usize), ApiError> {
    let Some(raw) = raw else {
        return Ok((0, MAX_PAGE));
    };
    let err = || {
        ApiError::bad(format!("paging must be 'offset,limit', not '{raw}'")).with("field", "paging")
    };
    let (o, l) = raw.split_once(',').ok_or_else(err)?;
    let (offset, limit): (usize, usize) = (
        o.trim().parse().map_err(|_| err())?,
        l.trim().parse().map_err(|_| err())?,
    );
    if limit > MAX_PAGE {
        return Err(ApiError::bad(format!(
            "paging limit {limit} exceeds the maximum of {MAX_PAGE}"
        ))
        .with("field", "paging"));
    }
    Ok((offset, limit))
}

/// Whether a user's view passes `field=expr` (`since,D`, `until,D`, `between,D1,D2`, `null`,
/// `notnull`, `notequal,X`, `like,X`, else a comma-separated list of accepted values).
fn filter_matches(field: &str, expr: &str, user: &Value) -> Result<bool, ApiError> {
    let mut cur = user;
    for part in field.split('.') {
        cur = match cur.get(part) {
            Some(v) => v,
            None if cur.is_null() => &Value::Null,
            None => {
                return Err(
                    ApiError::bad(format!("unknown filter field '{field}'")).with("field", field)
                );
            }
        };
    }
    let value: Option<String> = match cur {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => return Err(ApiError::bad(format!("cannot filter on '{field}'")).with("field", field)),
    };
    let date = |s: &str| {
        datetime::normalise(s).ok_or_else(|| {
            ApiError::bad(format!("{field}: '{s}' is not a date")).with("field", field)
        })
    };
    let (op, args) = expr.split_once(',').unwrap_or((expr, ""));
    Ok(match op {
        "null" => value.is_none(),
        "notnull" => value.is_some(),
        "notequal" if args == "null" => value.is_some(),
        "notequal" => value.as_deref() != Some(args),
        "since" => {
            let d = date(args)?;
            value.is_some_and(|v| v >= d)
        }
        "until" => {
            let d = date(args)?;
            value.is_some_and(|v| v <= d)
        }
        "between" => {
            let (a, b) = args.split_once(',').ok_or_else(|| {
                ApiError::bad(format!("{field}: between needs two dates")).with("field", field)
            })?;
            let (a, b) = (date(a)?, date(b)?);
            value.is_some_and(|v| v >= a && v <= b)
        }
        "like" => value.is_some_and(|v| v.to_lowercase().contains(&args.to_lowercase())),
        _ => value.is_some_and(|v| expr.split(',').any(|x| x == v)),
    })
}
