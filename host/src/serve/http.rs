//! Request handling: routing, the webhook protocol of the module doc, and
//! small response helpers.

use std::io::Read;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tiny_http::{Header, Method, Request, Response};

use super::{Job, ServeFlow, Shared, lock, page};
use crate::store::Pushed;

/// Header carrying the shared secret.
pub const SECRET_HEADER: &str = "X-Muster-Secret";
/// Headers carrying a sender's delivery id, in order of preference.
pub const DELIVERY_HEADERS: &[&str] = &["X-Muster-Delivery", "Idempotency-Key"];
/// Longest delivery id kept; longer ones are refused (`400`).
const MAX_DELIVERY_ID: usize = 200;

pub(super) fn handle(shared: &Shared, mut req: Request) {
    let url = req.url().to_string();
    let path = url.split(['?', '#']).next().unwrap_or("");
    let method = req.method().clone();
    let response = match (method, path) {
        (Method::Get | Method::Head, "/healthz") => text(200, "ok\n"),
        (Method::Get | Method::Head, "/") => html(200, page::render(shared)),
        (Method::Post, p) if p.starts_with("/webhooks/") => {
            let name = &p["/webhooks/".len()..];
            webhook(shared, name, &mut req)
        }
        (_, "/healthz" | "/") => text(405, "method not allowed\n"),
        (_, p) if p.starts_with("/webhooks/") => text(405, "webhooks are POSTed\n"),
        _ => text(404, "not found\n"),
    };
    // The client may have gone away; nothing to do about it.
    let _ = req.respond(response);
}

type Answer = Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn with_headers(mut r: Answer, content_type: &str) -> Answer {
    for h in [
        header("Content-Type", content_type),
        header("X-Content-Type-Options", "nosniff"),
        header("Cache-Control", "no-store"),
        header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
    ]
    .into_iter()
    .flatten()
    {
        r.add_header(h);
    }
    r
}

fn text(status: u16, body: &str) -> Answer {
    with_headers(
        Response::from_string(body).with_status_code(status),
        "text/plain; charset=utf-8",
    )
}

fn html(status: u16, body: String) -> Answer {
    with_headers(
        Response::from_string(body).with_status_code(status),
        "text/html; charset=utf-8",
    )
}

fn json_answer(status: u16, body: Value) -> Answer {
    with_headers(
        Response::from_string(body.to_string()).with_status_code(status),
        "application/json",
    )
}

fn header_value<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Compares two secrets in constant time: both are hashed first, so the
/// comparison touches 32 bytes whatever the inputs, and neither their
/// content nor their length shows in the timing.
pub(crate) fn secrets_match(given: &[u8], expected: &[u8]) -> bool {
    let a = Sha256::digest(given);
    let b = Sha256::digest(expected);
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The value at a dotted path (`candidate.id`; numeric segments index
/// arrays) as an id: a non-empty string or an integer.
pub(crate) fn extract_id(body: &Value, path: &str) -> Option<String> {
    let mut v = body;
    for seg in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

fn webhook(shared: &Shared, name: &str, req: &mut Request) -> Answer {
    let Some((flow, hook)) = shared
        .cfg
        .flow(name)
        .and_then(|f: &ServeFlow| f.webhook.as_ref().map(|w| (f, w)))
    else {
        return json_answer(
            404,
            json!({ "error": "no webhook is configured for this flow" }),
        );
    };
    // 1. Authenticate before reading or storing anything.
    let given = header_value(req, SECRET_HEADER).unwrap_or("");
    if given.is_empty() || !secrets_match(given.as_bytes(), hook.secret.expose().as_bytes()) {
        return json_answer(
            401,
            json!({ "error": format!("missing or wrong {SECRET_HEADER} header") }),
        );
    }
    // 2. Size cap, before and while reading.
    let max = shared.cfg.max_body;
    if req.body_length().is_some_and(|n| n > max) {
        return too_large(max);
    }
    let mut body = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    if let Err(e) = req.as_reader().take(limit).read_to_end(&mut body) {
        return json_answer(
            400,
            json!({ "error": format!("could not read the body: {e}") }),
        );
    }
    if body.len() > max {
        return too_large(max);
    }
    let delivery = DELIVERY_HEADERS
        .iter()
        .find_map(|h| header_value(req, h))
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if delivery.is_some_and(|d| d.len() > MAX_DELIVERY_ID) {
        return json_answer(
            400,
            json!({ "error": format!("the delivery id is longer than {MAX_DELIVERY_ID} characters") }),
        );
    }
    let payload = String::from_utf8_lossy(&body).into_owned();
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let record = parsed
        .as_ref()
        .ok()
        .and_then(|v| extract_id(v, &hook.id_field));

    // 3. Stored (committed) before anything is processed.
    let pushed = lock(&shared.store).inbox_push(&flow.name, delivery, record.as_deref(), &payload);
    let pushed = match pushed {
        Ok(p) => p,
        Err(e) => {
            // Not stored: tell the sender to try again later.
            return json_answer(
                503,
                json!({ "error": format!("the event could not be stored, retry later: {e}") }),
            );
        }
    };
    let id = match pushed {
        Pushed::New(id) => id,
        Pushed::Duplicate(id) => {
            let state = lock(&shared.store)
                .inbox_event(id)
                .map(|e| e.state.to_string())
                .unwrap_or_else(|_| "unknown".into());
            return json_answer(
                200,
                json!({ "inbox_id": id.0, "duplicate": true, "state": state }),
            );
        }
    };

    // 4. No id: kept as rejected, for inspection.
    let Some(record) = record else {
        let reason = match &parsed {
            Err(e) => format!("the body is not JSON ({e})"),
            Ok(_) => format!(
                "no record id at `{}` in the event (expected a non-empty string or an integer)",
                hook.id_field
            ),
        };
        let _ = lock(&shared.store).inbox_reject(id, &reason);
        return json_answer(422, json!({ "inbox_id": id.0, "error": reason }));
    };

    // 5. Accepted: the worker runs it.
    shared.enqueue(Job::Inbox(id));
    json_answer(
        202,
        json!({ "inbox_id": id.0, "state": "pending", "record_id": record }),
    )
}

fn too_large(max: usize) -> Answer {
    json_answer(
        413,
        json!({ "error": format!("the body is larger than {max} bytes") }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_by_dotted_path() {
        let v: Value = serde_json::from_str(
            r#"{"candidate": {"id": 42, "tags": [{"id": "t-1"}], "blank": " ", "f": 1.5}}"#,
        )
        .unwrap();
        assert_eq!(extract_id(&v, "candidate.id").as_deref(), Some("42"));
        assert_eq!(
            extract_id(&v, "candidate.tags.0.id").as_deref(),
            Some("t-1")
        );
        assert_eq!(extract_id(&v, "candidate.blank"), None);
        assert_eq!(extract_id(&v, "candidate.f"), None);
        assert_eq!(extract_id(&v, "candidate.missing"), None);
        assert_eq!(extract_id(&v, "candidate.id.deeper"), None);
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secrets_match(b"s3cret", b"s3cret"));
        assert!(!secrets_match(b"s3cret", b"s3cre"));
        assert!(!secrets_match(b"", b"s3cret"));
    }
}
