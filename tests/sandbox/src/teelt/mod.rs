//! The Teelt simulator: a small "talents" API of an onboarding tool.
//!
//! Teelt publishes no API documentation (`shared/API-NOTES.md`, marked \[I\]): this models
//! what Lucca documents Teelt sends (last and first name, work email, phone, legal entity,
//! department, contract start date, manager) plus what its settings screen offers (a custom
//! field mapped to Lucca establishments). The routes, all behind `Authorization: Bearer
//! {token}` (401 otherwise):
//!
//! - `GET /talents?updated_since=YYYY-MM-DDTHH:MM:SSZ&page=N&limit=M` →
//!   `{"items":[talent…], "page":N, "next":N+1|null, "generatedAt":"…Z"}`: talents whose
//!   `updatedAt` is at or after `updated_since` (all without it), in id order, `limit` ≤ 100
//!   (default 50), `page` from 1. `generatedAt` is the simulator's clock when the page was
//!   served — what a client keeps as its next `updated_since`.
//! - `GET /talents/{id}` → the talent, or 404 `{"error":"talent … not found"}`.
//!
//! A talent (JSON, camelCase): `id`, `lastName`, `firstName`, `email` (work), `personalEmail`,
//! `phone`, `legalEntity`, `department` (names, as Teelt's admin typed them), `startDate`
//! (`YYYY-MM-DD`), `contractType`, `manager` (`{"email": …}` or null), `customFields`
//! (`{"establishment": "Paris"}`), `updatedAt`. Paths can be moved under a prefix
//! ([`TeeltOptions::prefix`]) so the connector's configurable paths are exercised.
//! A malformed query is 400 naming the parameter; nothing panics on input.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::SandboxError;
use crate::server::{self, Request, Response};

/// The bearer token of [`TeeltOptions::default`].
pub const DEFAULT_TOKEN: &str = "sandbox-teelt-token-0123456789";

/// Largest `limit` of a talents page.
pub const MAX_PAGE: usize = 100;

/// A talent being onboarded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Talent {
    pub id: String,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub email: Option<String>,
    pub personal_email: Option<String>,
    pub phone: Option<String>,
    pub legal_entity: Option<String>,
    pub department: Option<String>,
    /// `YYYY-MM-DD`.
    pub start_date: Option<String>,
    pub contract_type: Option<String>,
    /// The manager's work email.
    pub manager_email: Option<String>,
    /// Custom fields the Teelt admin created (e.g. `establishment`).
    pub custom: BTreeMap<String, String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub updated_at: String,
}

impl Talent {
    /// A talent with a name and a work email, updated at `updated_at`.
    pub fn new(id: &str, first: &str, last: &str, email: &str, updated_at: &str) -> Self {
        Talent {
            id: id.into(),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some(email.into()),
            updated_at: updated_at.into(),
            ..Talent::default()
        }
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "lastName": self.last_name,
            "firstName": self.first_name,
            "email": self.email,
            "personalEmail": self.personal_email,
            "phone": self.phone,
            "legalEntity": self.legal_entity,
            "department": self.department,
            "startDate": self.start_date,
            "contractType": self.contract_type,
            "manager": self.manager_email.as_ref().map(|m| json!({"email": m})),
            "customFields": self.custom,
            "updatedAt": self.updated_at,
        })
    }
}

/// How a simulated Teelt account behaves.
#[derive(Debug, Clone)]
pub struct TeeltOptions {
    pub token: String,
    /// Prefix of every route (`""`: `/talents`; `"/api/v1"`: `/api/v1/talents`).
    pub prefix: String,
    /// The talents at start.
    pub talents: Vec<Talent>,
    /// The simulator's clock (`generatedAt`), moved with [`TeeltSim::set_now`].
    pub now: String,
}

impl Default for TeeltOptions {
    fn default() -> Self {
        TeeltOptions {
            token: DEFAULT_TOKEN.into(),
            prefix: String::new(),
            talents: Vec::new(),
            now: "2026-06-01T00:00:00Z".into(),
        }
    }
}

struct State {
    talents: Vec<Talent>,
    now: String,
    /// Every request served: method and URL.
    log: Vec<(String, String)>,
}

/// A running simulated Teelt account on `127.0.0.1`; stops when dropped.
pub struct TeeltSim {
    state: Arc<Mutex<State>>,
    token: String,
    prefix: String,
    server: server::Server,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TeeltSim {
    pub fn start(options: TeeltOptions) -> Result<Self, SandboxError> {
        let state = Arc::new(Mutex::new(State {
            talents: options.talents,
            now: options.now,
            log: Vec::new(),
        }));
        let (s, token, prefix) = (state.clone(), options.token.clone(), options.prefix.clone());
        let server = server::Server::start(Arc::new(move |r: &Request| {
            let mut st = lock(&s);
            st.log.push((r.method.clone(), r.url.clone()));
            handle(&mut st, &token, &prefix, r)
        }))?;
        Ok(TeeltSim {
            state,
            token: options.token,
            prefix: options.prefix,
            server,
        })
    }

    /// `http://127.0.0.1:PORT` (without the prefix).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// The route prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Reads or changes the talents between requests.
    pub fn with_talents<R>(&self, f: impl FnOnce(&mut Vec<Talent>) -> R) -> R {
        f(&mut lock(&self.state).talents)
    }

    /// Moves the clock (`YYYY-MM-DDTHH:MM:SSZ`).
    pub fn set_now(&self, now: &str) {
        lock(&self.state).now = now.into();
    }

    /// Every request served so far (method, URL).
    pub fn requests(&self) -> Vec<(String, String)> {
        lock(&self.state).log.clone()
    }
}

fn error(status: u16, message: impl Into<String>) -> Response {
    Response::json(status, &json!({"status": status, "error": message.into()}))
}

fn handle(st: &mut State, token: &str, prefix: &str, r: &Request) -> Response {
    let bearer = r
        .header("Authorization")
        .and_then(|h| h.strip_prefix("Bearer "));
    if bearer != Some(token) {
        return error(401, "missing or invalid bearer token");
    }
    let (path, query) = r.url.split_once('?').unwrap_or((&r.url, ""));
    let Some(rest) = path.strip_prefix(prefix) else {
        return error(404, format!("no route {path}"));
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (r.method.as_str(), segments.as_slice()) {
        ("GET", ["talents"]) => list(st, query),
        ("GET", ["talents", id]) => {
            let id = decode(id);
            match st.talents.iter().find(|t| t.id == id) {
                Some(t) => Response::json(200, &t.json()),
                None => error(404, format!("talent {id} not found")),
            }
        }
        (_, ["talents", ..]) => error(405, format!("{} is not allowed on {path}", r.method)),
        _ => error(404, format!("no route {path}")),
    }
}

fn list(st: &State, query: &str) -> Response {
    let mut since = None;
    let (mut page, mut limit) = (1usize, 50usize);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v);
        match k {
            "updated_since" if is_timestamp(&v) => since = Some(v),
            "updated_since" => {
                return error(
                    400,
                    format!("updated_since `{v}` is not a UTC timestamp YYYY-MM-DDTHH:MM:SSZ"),
                );
            }
            "page" => match v.parse() {
                Ok(n) if n >= 1 => page = n,
                _ => return error(400, format!("page `{v}` is not a positive integer")),
            },
            "limit" => match v.parse() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => limit = n,
                _ => return error(400, format!("limit `{v}` is not within 1–{MAX_PAGE}")),
            },
            other => return error(400, format!("unknown query parameter `{other}`")),
        }
    }
    let mut matching: Vec<&Talent> = st
        .talents
        .iter()
        .filter(|t| since.as_deref().is_none_or(|s| t.updated_at.as_str() >= s))
        .collect();
    matching.sort_by(|a, b| a.id.cmp(&b.id));
    let start = (page - 1).saturating_mul(limit);
    let items: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|t| t.json())
        .collect();
    let next = (start + limit < matching.len()).then_some(page + 1);
    Response::json(
        200,
        &json!({"items": items, "page": page, "next": next, "generatedAt": st.now}),
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Percent-decoding (invalid escapes are kept as they are).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))) {
            (b'%', Some(Ok(x))) => {
                out.push(x);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str, token: Option<&str>) -> (u16, Value) {
        let mut st = State {
            talents: vec![
                Talent::new("t-2", "Bo", "Ba", "bo@x.example", "2026-05-02T00:00:00Z"),
                Talent::new("t-1", "Al", "Aa", "al@x.example", "2026-05-01T00:00:00Z"),
            ],
            now: "2026-06-01T00:00:00Z".into(),
            log: Vec::new(),
        };
        let r = Request {
            method: "GET".into(),
            url: url.into(),
            headers: token
                .map(|t| vec![("Authorization".into(), format!("Bearer {t}"))])
                .unwrap_or_default(),
            body: Vec::new(),
            body_too_large: false,
            peer: None,
        };
        let resp = handle(&mut st, "tok", "/v1", &r);
        (
            resp.status,
            serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
        )
    }

    #[test]
    fn lists_in_id_order_filters_by_updated_since_and_pages() {
        let (s, v) = get("/v1/talents?limit=1", Some("tok"));
        assert_eq!(
            (s, v["items"][0]["id"].as_str(), v["next"].as_u64()),
            (200, Some("t-1"), Some(2))
        );
        let (_, v) = get(
            "/v1/talents?updated_since=2026-05-02T00%3A00%3A00Z",
            Some("tok"),
        );
        let ids: Vec<_> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].clone())
            .collect();
        assert_eq!(ids, vec![json!("t-2")]);
        assert_eq!(v["generatedAt"], json!("2026-06-01T00:00:00Z"));
    }

    #[test]
    fn refuses_bad_tokens_queries_and_unknown_ids() {
        assert_eq!(get("/v1/talents", None).0, 401);
        assert_eq!(get("/v1/talents", Some("nope")).0, 401);
        let (s, v) = get("/v1/talents?updated_since=yesterday", Some("tok"));
        assert_eq!(s, 400);
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("updated_since `yesterday`")
        );
        assert_eq!(get("/v1/talents?limit=500", Some("tok")).0, 400);
        assert_eq!(get("/v1/talents/t-9", Some("tok")).0, 404);
        assert_eq!(get("/talents", Some("tok")).0, 404, "outside the prefix");
        assert_eq!(
            get("/v1/talents/t-1", Some("tok")).1["email"],
            json!("al@x.example")
        );
    }
}
