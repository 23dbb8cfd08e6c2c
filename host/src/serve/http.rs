//! Request handling: routing, the webhook protocol of the module doc, and
//! the answers. Nothing here touches a socket: [`super::listener`] reads the
//! request head, asks [`route`] what to do, reads the body only for a
//! webhook that passed authentication, and turns the [`Answer`] into the
//! HTTP response.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::listener::{Limits, Route, Site};
use super::{Job, ServeWebhook, Shared, admin, auth, lock, views};
use crate::store::{InboxId, Pushed, Store};

/// Header carrying the shared secret.
pub const SECRET_HEADER: &str = "X-Muster-Secret";
/// Headers carrying a sender's delivery id, in order of preference.
pub const DELIVERY_HEADERS: &[&str] = &["X-Muster-Delivery", "Idempotency-Key"];
/// Longest delivery id kept; longer ones are refused (`400`).
const MAX_DELIVERY_ID: usize = 200;

/// What a request asked for, as far as its head tells.
pub(crate) struct Head {
    pub method: Method,
    /// The path, without query or fragment.
    pub path: String,
    /// The query string (`q=nina`), undecoded.
    pub query: Option<String>,
    pub headers: HeaderMap,
}

/// A request of a tenant's `serve`, routed from its head.
pub(super) enum ServeRequest {
    /// A read-only page (status, run, search, metrics): reads the store.
    View(views::View),
    /// An authenticated webhook of `cfg.flows[index]`, body read: [`webhook`].
    Webhook(usize),
    /// An admin page or form (`admin.rs`), the body read for a form.
    Admin(admin::Request),
}

impl Site for Shared {
    type Request = ServeRequest;

    fn limits(&self) -> Limits {
        Limits::from(&self.cfg)
    }

    fn route(&self, head: &Head) -> Route<ServeRequest> {
        route(self, head)
    }

    fn handle(&self, request: ServeRequest, head: &Head, body: &[u8]) -> Answer {
        match request {
            ServeRequest::View(v) => view(self, &v, head),
            ServeRequest::Webhook(index) => webhook(self, index, head, body),
            ServeRequest::Admin(a) => admin::handle(self, &a, head, body),
        }
    }
}

/// A response, independent of the HTTP library.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub status: u16,
    content_type: &'static str,
    pub body: String,
    /// Close the connection after answering (the body was not read).
    pub close: bool,
    /// More headers (`Location`, `Set-Cookie`).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl Answer {
    /// The same answer, closing the connection after it: for requests whose
    /// body is left unread, so it is never drained.
    pub fn closing(self) -> Answer {
        Answer {
            close: true,
            ..self
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: header::HeaderName, value: String) -> Answer {
        self.headers.push((name, value));
        self
    }

    /// The HTTP response, with the headers every answer carries.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = Response::new(Full::new(Bytes::from(self.body)));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(name, v);
            }
        }
        if self.close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

fn text(status: u16, body: &str) -> Answer {
    Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_string(),
        close: false,
        headers: Vec::new(),
    }
}

/// An HTML page (already escaped by its maker).
pub(crate) fn html(status: u16, body: String) -> Answer {
    Answer {
        status,
        content_type: "text/html; charset=utf-8",
        body,
        close: false,
        headers: Vec::new(),
    }
}

/// `303 See Other` to `location`: where a form that changed something
/// sends the browser, so reloading does not post it again.
pub(super) fn see_other(location: &str) -> Answer {
    text(303, "see other\n").with_header(header::LOCATION, location.to_string())
}

pub(crate) fn json_answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        content_type: "application/json",
        body: body.to_string(),
        close: false,
        headers: Vec::new(),
    }
}

/// Decides from the head alone; authenticates webhooks before their body
/// is read.
pub(super) fn route(shared: &Shared, head: &Head) -> Route<ServeRequest> {
    let path = head.path.as_str();
    if let Some(admin) = admin::Request::of(&head.method, path) {
        let read_body = admin.has_form();
        return Route::Handle {
            request: ServeRequest::Admin(admin),
            read_body,
        };
    }
    let answer = match (&head.method, path) {
        (&Method::GET | &Method::HEAD, "/healthz") => healthz(),
        (&Method::GET | &Method::HEAD, p) if views::is_view(p) => {
            return match views::parse(p, head.query.as_deref()) {
                Some(view) => Route::Handle {
                    request: ServeRequest::View(view),
                    read_body: false,
                },
                None => Route::Answer(not_found()),
            };
        }
        (&Method::POST, p) if p.starts_with("/webhooks/") => {
            let name = &p["/webhooks/".len()..];
            let found = shared.cfg.flows.iter().position(|f| f.name == name);
            let hook = found.and_then(|i| shared.cfg.flows[i].webhook.as_ref());
            return match (found, authenticate(hook, head)) {
                (Some(index), Ok(())) => Route::Handle {
                    request: ServeRequest::Webhook(index),
                    read_body: true,
                },
                (_, Err(refused)) => Route::Answer(refused),
                (None, Ok(())) => Route::Answer(internal_error()),
            };
        }
        (_, "/healthz") => method_not_allowed(),
        (_, p) if views::is_view(p) => method_not_allowed(),
        (_, p) if p.starts_with("/webhooks/") => webhooks_are_posted(),
        _ => not_found(),
    };
    Route::Answer(answer)
}

/// `200 ok`: the process serves.
pub(crate) fn healthz() -> Answer {
    text(200, "ok\n")
}

pub(crate) fn not_found() -> Answer {
    text(404, "not found\n")
}

pub(crate) fn method_not_allowed() -> Answer {
    text(405, "method not allowed\n")
}

pub(crate) fn webhooks_are_posted() -> Answer {
    text(405, "webhooks are POSTed\n")
}

/// A read-only page, rendered on a handler thread. With admins configured
/// (`[serve] admins`) the HTML pages are for a signed-in admin only: they
/// name people. `/metrics` holds counts per flow and connection, no names,
/// and stays open to the scraper, like `/healthz`.
pub(super) fn view(shared: &Shared, view: &views::View, head: &Head) -> Answer {
    let session = match view {
        views::View::Metrics => None,
        _ => match auth::reader(shared, head) {
            Ok(session) => session,
            Err(refused) => return refused,
        },
    };
    let (status, content_type, body) = views::render(shared, view, session.as_ref());
    Answer {
        status,
        content_type,
        body,
        close: false,
        headers: Vec::new(),
    }
}

/// `500` for a handler that panicked: the server goes on.
pub(crate) fn internal_error() -> Answer {
    text(500, "internal error\n")
}

/// `408`: the body did not arrive within the body timeout.
pub(super) fn body_timeout(timeout: std::time::Duration) -> Answer {
    json_answer(
        408,
        json!({ "error": format!("the body did not arrive within {timeout:?}") }),
    )
    .closing()
}

/// `400`: the body could not be read (the client went away mid-body…).
pub(super) fn unreadable_body(e: &dyn std::fmt::Display) -> Answer {
    json_answer(
        400,
        json!({ "error": format!("could not read the body: {e}") }),
    )
    .closing()
}

fn header_value<'r>(head: &'r Head, name: &str) -> Option<&'r str> {
    head.headers.get(name).and_then(|v| v.to_str().ok())
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
    let v = at_path(body, path)?;
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// The value at a dotted path, if present and not null.
fn at_path<'v>(body: &'v Value, path: &str) -> Option<&'v Value> {
    let mut v = body;
    for seg in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!v.is_null()).then_some(v)
}

/// Why an event is not of its flow's documented shape: the `400` reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShapeError {
    #[error("the body is not JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    #[error("the event has no `{0}`: not the documented shape of this flow's events")]
    Missing(String),
    #[error("no record id at `{0}` in the event (expected a non-empty string or an integer)")]
    NoId(String),
}

/// Step 3 of the protocol: the record id of an event that has the hook's
/// shape (JSON, every `require` path, an id at `id_field`).
pub(crate) fn event_record(body: &[u8], hook: &ServeWebhook) -> Result<String, ShapeError> {
    let parsed: Value = serde_json::from_slice(body).map_err(ShapeError::NotJson)?;
    if let Some(missing) = hook.require.iter().find(|p| at_path(&parsed, p).is_none()) {
        return Err(ShapeError::Missing(missing.clone()));
    }
    extract_id(&parsed, &hook.id_field).ok_or_else(|| ShapeError::NoId(hook.id_field.clone()))
}

/// Step 1 of the protocol: the flow has a webhook (`hook`) and the request
/// carries its secret. Nothing is read or stored before this passes.
pub(crate) fn authenticate(hook: Option<&ServeWebhook>, head: &Head) -> Result<(), Answer> {
    let Some(hook) = hook else {
        return Err(json_answer(
            404,
            json!({ "error": "no webhook is configured for this flow" }),
        ));
    };
    let given = header_value(head, SECRET_HEADER).unwrap_or("");
    if given.is_empty() || !secrets_match(given.as_bytes(), hook.secret.expose().as_bytes()) {
        return Err(json_answer(
            401,
            json!({ "error": format!("missing or wrong {SECRET_HEADER} header") }),
        ));
    }
    Ok(())
}

/// Steps 3 to 5 of the protocol, for an authenticated request of
/// `cfg.flows[index]` whose body (within the cap) has been read.
pub(super) fn webhook(shared: &Shared, index: usize, head: &Head, body: &[u8]) -> Answer {
    let Some((flow, hook)) = shared
        .cfg
        .flows
        .get(index)
        .and_then(|f| f.webhook.as_ref().map(|w| (f, w)))
    else {
        return internal_error();
    };
    match receive(&mut lock(&shared.store), &flow.name, hook, head, body) {
        Ok(Received::New { id, record }) => {
            // 5. Accepted: the worker runs it.
            shared.enqueue(Job::Inbox(id));
            accepted(id, &record)
        }
        Ok(Received::Answered(answer)) | Err(answer) => answer,
    }
}

/// What [`receive`] did with an event.
pub(crate) enum Received {
    /// Stored as a new pending event: the caller has it run, then answers
    /// [`accepted`].
    New { id: InboxId, record: String },
    /// A redelivery (same delivery id), answered `200` with the first
    /// event's id and state.
    Answered(Answer),
}

/// Steps 3 and 4 of the protocol (shared by `serve` and a fleet worker):
/// the delivery id and the shape are checked, then the event is committed
/// to `store`'s inbox before anything else happens. `Err` is the refusal
/// (`400`) or `503` when the store could not take it.
pub(crate) fn receive(
    store: &mut Store,
    flow: &str,
    hook: &ServeWebhook,
    head: &Head,
    body: &[u8],
) -> Result<Received, Answer> {
    let delivery = DELIVERY_HEADERS
        .iter()
        .find_map(|h| header_value(head, h))
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if delivery.is_some_and(|d| d.len() > MAX_DELIVERY_ID) {
        return Err(json_answer(
            400,
            json!({ "error": format!("the delivery id is longer than {MAX_DELIVERY_ID} characters") }),
        ));
    }
    // 3. The shape: refused (nothing stored) unless it can be run.
    let record = event_record(body, hook)
        .map_err(|reason| json_answer(400, json!({ "error": reason.to_string() })))?;
    let payload = String::from_utf8_lossy(body).into_owned();

    // 4. Stored (committed) before anything is processed.
    let pushed = store
        .inbox_push(flow, delivery, Some(&record), &payload)
        .map_err(|e| {
            // Not stored: tell the sender to try again later.
            json_answer(
                503,
                json!({ "error": format!("the event could not be stored, retry later: {e}") }),
            )
        })?;
    match pushed {
        Pushed::New(id) => Ok(Received::New { id, record }),
        Pushed::Duplicate(id) => {
            let state = store
                .inbox_event(id)
                .map(|e| e.state.to_string())
                .unwrap_or_else(|_| "unknown".into());
            Ok(Received::Answered(json_answer(
                200,
                json!({ "inbox_id": id.0, "duplicate": true, "state": state }),
            )))
        }
    }
}

/// `202 Accepted` for a new event `id` about `record`.
pub(crate) fn accepted(id: InboxId, record: &str) -> Answer {
    json_answer(
        202,
        json!({ "inbox_id": id.0, "state": "pending", "record_id": record }),
    )
}

/// `413`, closing the connection: the body is never read or drained.
pub(super) fn too_large(max: usize) -> Answer {
    json_answer(
        413,
        json!({ "error": format!("the body is larger than {max} bytes") }),
    )
    .closing()
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
    fn an_event_must_have_the_required_paths_and_the_id() {
        let hook = ServeWebhook {
            secret: crate::config::Secret::new("s"),
            id_field: "data.applicant".into(),
            require: vec!["event".into(), "data.column.id".into()],
        };
        let shape = |body: &str| event_record(body.as_bytes(), &hook);
        let flatchr = r#"{"event": "drag_applicant", "data": {"applicant": "8585b224a029fbb9",
            "column": {"id": 13, "title": "Embauché", "hired": true}}}"#;
        assert_eq!(shape(flatchr).unwrap(), "8585b224a029fbb9");
        let no_column = r#"{"event": "drag_applicant", "data": {"applicant": "a"}}"#;
        assert!(matches!(shape(no_column), Err(ShapeError::Missing(p)) if p == "data.column.id"));
        let null_event = r#"{"event": null, "data": {"applicant": "a", "column": {"id": 1}}}"#;
        assert!(matches!(shape(null_event), Err(ShapeError::Missing(p)) if p == "event"));
        let no_id = r#"{"event": "x", "data": {"applicant": {"id": 1}, "column": {"id": 1}}}"#;
        assert!(matches!(shape(no_id), Err(ShapeError::NoId(p)) if p == "data.applicant"));
        assert!(matches!(shape("{not json"), Err(ShapeError::NotJson(_))));
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secrets_match(b"s3cret", b"s3cret"));
        assert!(!secrets_match(b"s3cret", b"s3cre"));
        assert!(!secrets_match(b"", b"s3cret"));
    }
}
