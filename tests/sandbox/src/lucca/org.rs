//! v4 organisation structure: departments and establishments, paged with `page` (a 1-based
//! number, or the opaque cursor found in `next`/`prev`) and `limit` (default 10, at most 100;
//! more → 400).
//!
//! Interpretation of the notes [I]: `parentId` is the parent's id (`null` for the root) and
//! `hierarchy` the path of ids from the root to the department itself (`"/1/4/9/"`). The root
//! holds `items`, `count`, `prev`, `next` by default; `fields.root=…` restricts the root to the
//! listed ones (plus `items`).

use serde_json::{Map, Value, json};

use super::ApiError;
use super::query::Query;
use crate::tenant::Tenant;

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;

pub fn departments(tenant: &Tenant, path: &str, query: &Query) -> Result<Value, ApiError> {
    let items: Vec<Value> = tenant
        .departments
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "name": d.name,
                "code": d.code,
                "description": d.description,
                "parentId": d.parent_id,
                "hierarchy": hierarchy(tenant, d.id),
                "isActive": d.is_active,
                "headId": d.head_id,
                "createdAt": d.created_at,
                "lastModifiedAt": d.last_modified_at,
                "sortOrderInSiblings": d.sort_order_in_siblings,
            })
        })
        .collect();
    page(items, path, query)
}

pub fn establishments(tenant: &Tenant, path: &str, query: &Query) -> Result<Value, ApiError> {
    let items: Vec<Value> = tenant
        .establishments
        .iter()
        .map(|e| {
            let users = tenant.users.iter().filter(|u| u.legal_entity_id == Some(e.id)).count();
            json!({
                "id": e.id,
                "name": e.name,
                "legalUnitId": e.legal_unit_id,
                "code": e.code,
                "address": {"street": e.street, "zipCode": e.zip_code, "city": e.city, "country": e.country},
                "timezoneId": e.timezone_id,
                "usersCount": users,
                "isArchived": e.is_archived,
            })
        })
        .collect();
    page(items, path, query)
}

fn hierarchy(tenant: &Tenant, id: u64) -> String {
    let mut chain = vec![id];
    let mut cur = tenant.department(id).and_then(|d| d.parent_id);
    while let Some(p) = cur {
        if chain.contains(&p) {
            break; // a cycle introduced by a test: stop rather than loop
        }
        chain.push(p);
        cur = tenant.department(p).and_then(|d| d.parent_id);
    }
    let mut s = String::from("/");
    for id in chain.iter().rev() {
        s.push_str(&format!("{id}/"));
    }
    s
}

fn page(items: Vec<Value>, path: &str, query: &Query) -> Result<Value, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "limit must be between 1 and {MAX_LIMIT}, not '{l}'"
                ))
                .with("field", "limit")
            })?,
    };
    let offset = match query.get("page") {
        None => 0,
        Some(p) => parse_page(p, limit)
            .ok_or_else(|| ApiError::bad(format!("invalid page '{p}'")).with("field", "page"))?,
    };
    let count = items.len();
    let link = |offset: usize| format!("{path}?page=c{offset}&limit={limit}");
    let mut root = Map::new();
    root.insert(
        "items".into(),
        Value::Array(items.into_iter().skip(offset).take(limit).collect()),
    );
    root.insert("count".into(), json!(count));
    root.insert(
        "prev".into(),
        if offset > 0 {
            json!(link(offset.saturating_sub(limit)))
        } else {
            Value::Null
        },
    );
    root.insert(
        "next".into(),
        if offset.saturating_add(limit) < count {
            json!(link(offset + limit))
        } else {
            Value::Null
        },
    );
    if let Some(wanted) = query.get("fields.root") {
        let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
        root.retain(|k, _| k == "items" || wanted.contains(&k.as_str()));
    }
    Ok(Value::Object(root))
}

/// `3` → offset `2 * limit`; `c40` (a cursor we issued) → offset 40.
fn parse_page(p: &str, limit: usize) -> Option<usize> {
    match p.strip_prefix('c') {
        Some(offset) => offset.parse().ok(),
        None => p
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .and_then(|n| (n - 1).checked_mul(limit)),
    }
}

/// `GET /api/v3/roles` items: `{id, name}` of every role. API-NOTES is silent on roles; this
/// models Lucca's v3 roles list (\[I\]) so a main role can be configured by name.
pub fn roles(tenant: &Tenant) -> Vec<Value> {
    tenant
        .roles
        .iter()
        .map(|r| json!({"id": r.id, "name": r.name}))
        .collect()
}
