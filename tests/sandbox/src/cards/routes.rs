//! The routes of the Cards simulator: a pure function of (space, request).

use serde_json::{Value, json};

use super::state::{Notification, Space};
use super::{BASE_PATH, CardsError, DEFAULT_PAGE, MAX_PAGE};
use crate::server::{Request, Response};

pub(super) fn route(space: &mut Space, request: &Request) -> Result<Response, CardsError> {
    let (path, query) = request.url.split_once('?').unwrap_or((&request.url, ""));
    let query = parse_query(query)?;
    let rest = path
        .strip_prefix(BASE_PATH)
        .ok_or_else(|| not_found(path))?;
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["users"]) => list_users(space, &query),
        ("GET", ["users", id]) => {
            let user = space
                .users
                .get(&user_id(id)?)
                .ok_or_else(|| not_found(path))?;
            Ok(ok(json!({"data": space.user_json(user)})))
        }
        ("POST", ["users"]) => {
            let body = body_json(request)?;
            let id = space.create_user(&body)?;
            if body.get("notify").and_then(Value::as_bool) == Some(true) {
                let email = space.users[&id].email.clone().unwrap_or_default();
                space
                    .notifications
                    .push(Notification { user_id: id, email });
            }
            Ok(Response::json(
                201,
                &json!({"data": space.user_json(&space.users[&id])}),
            ))
        }
        ("PUT", ["users", id]) => {
            let id = user_id(id)?;
            if !space.users.contains_key(&id) {
                return Err(not_found(path));
            }
            space.update_user(id, &body_json(request)?)?;
            Ok(ok(json!({"data": space.user_json(&space.users[&id])})))
        }
        ("DELETE", ["users", id]) => {
            let user = space
                .users
                .remove(&user_id(id)?)
                .ok_or_else(|| not_found(path))?;
            space.deleted.extend(user.email);
            Ok(Response::json(204, &Value::Null))
        }
        ("GET", ["groups"]) => list_groups(space, &query),
        ("GET", ["groups", id]) => {
            let group = space
                .groups
                .get(&user_id(id)?)
                .ok_or_else(|| not_found(path))?;
            Ok(ok(json!({"data": Space::group_json(group)})))
        }
        ("GET", ["statistics", "trainings"]) => {
            let rows: Vec<Value> = space
                .stats
                .iter()
                .map(|s| {
                    json!({"user_email": s.user_email, "training_title": s.training_title,
                           "training_link": s.training_link, "progress": s.progress,
                           "score": s.score, "last_completed_at": s.last_completed_at})
                })
                .collect();
            paged(rows, &query, &format!("{BASE_PATH}/statistics/trainings"))
        }
        (_, ["users" | "groups", ..] | ["statistics", ..]) => Err(CardsError::new(
            405,
            format!(
                "The {} method is not supported for route {path}.",
                request.method
            ),
        )),
        _ => Err(not_found(path)),
    }
}

fn ok(value: Value) -> Response {
    Response::json(200, &value)
}

fn not_found(path: &str) -> CardsError {
    CardsError::new(404, format!("No query results for {path}."))
}

fn user_id(segment: &str) -> Result<u64, CardsError> {
    segment
        .parse()
        .map_err(|_| CardsError::new(404, format!("No query results for id `{segment}`.")))
}

fn body_json(request: &Request) -> Result<Value, CardsError> {
    serde_json::from_slice(&request.body)
        .map_err(|e| CardsError::new(400, format!("The body is not JSON: {e}")))
}

/// `filters` on users: every filter must hold.
fn list_users(space: &Space, query: &[(String, String)]) -> Result<Response, CardsError> {
    let filters = match get(query, "filters") {
        None => Vec::new(),
        Some(raw) => parse_filters(raw)?,
    };
    let rows: Vec<Value> = space
        .users
        .values()
        .filter(|u| {
            filters.iter().all(|(kind, values)| {
                let hit = |v: &str| match kind.as_str() {
                    "role" => u.role == v,
                    "groups_id" => u.groups.iter().any(|g| g.to_string() == v),
                    _ => space.group_names(u).iter().any(|n| n == v),
                };
                values.iter().any(|v| hit(v))
            })
        })
        .map(|u| space.user_json(u))
        .collect();
    paged(rows, query, &format!("{BASE_PATH}/users"))
}

fn parse_filters(raw: &str) -> Result<Vec<(String, Vec<String>)>, CardsError> {
    let bad = |why: String| {
        let mut e = CardsError::new(422, format!("The filters are invalid: {why}"));
        e.errors = Some(("filters".into(), why));
        e
    };
    let value: Value = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
    let Value::Array(items) = value else {
        return Err(bad("expected a JSON array".into()));
    };
    items
        .iter()
        .map(|f| {
            let kind = f.get("type").and_then(Value::as_str).unwrap_or_default();
            if !matches!(kind, "role" | "groups_name" | "groups_id") {
                return Err(bad(format!(
                    "unknown filter type `{kind}` (role|groups_name|groups_id)"
                )));
            }
            let values = f
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("filter `{kind}` has no values array")))?
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            Ok((kind.to_string(), values))
        })
        .collect()
}

fn list_groups(space: &Space, query: &[(String, String)]) -> Result<Response, CardsError> {
    let flag = |name: &str| -> Result<Option<bool>, CardsError> {
        match get(query, name) {
            None => Ok(None),
            Some("1" | "true") => Ok(Some(true)),
            Some("0" | "false") => Ok(Some(false)),
            Some(other) => Err(CardsError::new(
                422,
                format!("{name} must be 0 or 1, not `{other}`"),
            )),
        }
    };
    let (public, ranking) = (flag("is_public")?, flag("enable_ranking")?);
    let rows: Vec<Value> = space
        .groups
        .values()
        .filter(|g| public.is_none_or(|p| g.is_public == p))
        .filter(|g| ranking.is_none_or(|r| g.enable_ranking == r))
        .map(Space::group_json)
        .collect();
    paged(rows, query, &format!("{BASE_PATH}/groups"))
}

/// Laravel's paginator: `paginate` (default 100, at most 500) and `page` (1-based).
fn paged(rows: Vec<Value>, query: &[(String, String)], path: &str) -> Result<Response, CardsError> {
    let number = |name: &str, default: usize| -> Result<usize, CardsError> {
        match get(query, name) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                CardsError::new(
                    422,
                    format!("`{name}` must be a positive integer, not `{v}`"),
                )
            }),
        }
    };
    let per_page = number("paginate", DEFAULT_PAGE)?;
    if per_page > MAX_PAGE {
        return Err(CardsError::new(
            422,
            format!("`paginate` may not be greater than {MAX_PAGE}."),
        ));
    }
    let page = number("page", 1)?;
    let total = rows.len();
    let last_page = total.div_ceil(per_page).max(1);
    let data: Vec<Value> = rows
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let link = |p: usize| format!("{path}?paginate={per_page}&page={p}");
    Ok(ok(json!({
        "data": data,
        "links": {
            "first": link(1),
            "last": link(last_page),
            "prev": (page > 1).then(|| link(page - 1)),
            "next": (page < last_page).then(|| link(page + 1)),
        },
        "meta": {"current_page": page, "last_page": last_page, "per_page": per_page,
                 "total": total, "path": path},
    })))
}

fn get<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `a=1&b=x%2Cy`, percent-decoded, `+` as space.
fn parse_query(raw: &str) -> Result<Vec<(String, String)>, CardsError> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Result<String, CardsError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        CardsError::new(400, format!("bad percent-encoding in `{s}`"))
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| CardsError::new(400, format!("query `{s}` is not UTF-8")))
}
