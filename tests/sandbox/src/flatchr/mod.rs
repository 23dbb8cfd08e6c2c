//! The Flatchr simulator (recruiting): the applicants search, moving an applicant between
//! columns, and the `drag_applicant` webhook Flatchr sends when that happens, per
//! `shared/API-NOTES.md`:
//!
//! - **Auth**: `Authorization: Bearer KEY` or `?token=KEY`; anything else is 401.
//! - `POST /company/{company}/search/applicants` with JSON filters (`hired`, `column` by
//!   title, `email`, `firstname`, `lastname`; an empty body is no filter) → a **flat
//!   array** of applicants ([`Board::flat`]), REST ids as 16-character hashes.
//! - `PUT /company/{company}/vacancy/{vacancy}/applicant/{applicant}` with `{column_id}` →
//!   moves it (the nested `candidate{…}` answer) and sends the webhook.
//! - **Webhook** ([`FlatchrSim::set_webhook`]): `POST` of [`Board::drag_event`] (integer ids,
//!   `data.applicant` the REST id, `data.column{id,title,hired}`) to the configured URL with
//!   the configured headers — Flatchr signs nothing, so the receiver authenticates it by a
//!   secret of its own in a header. A recruiter's drag in the UI is [`FlatchrSim::drag`];
//!   [`FlatchrSim::drag_silently`] moves without a webhook (a lost delivery).
//!
//! Every API request is counted ([`FlatchrSim::requests`]); deliveries are logged with the
//! receiver's status ([`FlatchrSim::deliveries`]). Never panics on input: a malformed
//! request gets `{"message": …}` with a 4xx.

mod board;
mod webhook;

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

pub use board::{Applicant, Board, Column, Vacancy, hash_id};
pub use webhook::{Delivery, WebhookTarget};

use crate::SandboxError;
use crate::server::{Request, Response, Server};

/// The API key of a simulator started with [`FlatchrSim::start`].
pub const DEFAULT_KEY: &str = "sandbox-flatchr-0123456789abcdef";

#[derive(Default)]
struct State {
    board: Board,
    webhook: Option<WebhookTarget>,
    deliveries: Vec<Delivery>,
    requests: usize,
}

/// A running Flatchr simulator on `127.0.0.1`; stops when dropped.
pub struct FlatchrSim {
    state: Arc<Mutex<State>>,
    server: Server,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(status: u16, message: impl Into<String>) -> Response {
    Response::json(status, &json!({ "message": message.into() }))
}

impl FlatchrSim {
    /// Starts a simulator serving `board`, accepting [`DEFAULT_KEY`].
    pub fn start(board: Board) -> Result<FlatchrSim, SandboxError> {
        let state = Arc::new(Mutex::new(State {
            board,
            ..State::default()
        }));
        let shared = state.clone();
        let server = Server::start(Arc::new(move |r: &Request| handle(&shared, r)))?;
        Ok(FlatchrSim { state, server })
    }

    /// `http://127.0.0.1:PORT`: what the connector's `base_url` setting takes.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    pub fn api_key(&self) -> &'static str {
        DEFAULT_KEY
    }

    /// The REST company id (the connector's `company` setting).
    pub fn company(&self) -> String {
        lock(&self.state).board.company.clone()
    }

    /// Reads or changes the board between two requests.
    pub fn with_board<T>(&self, f: impl FnOnce(&mut Board) -> T) -> T {
        f(&mut lock(&self.state).board)
    }

    /// Where webhooks go from now on (`None`: nowhere).
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        lock(&self.state).webhook = target;
    }

    /// API requests answered so far (webhook deliveries not included).
    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }

    /// Webhook deliveries so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.state).deliveries.clone()
    }

    /// A recruiter drags the applicant `hash` into the column titled `column`: it moves,
    /// then the webhook is delivered (when one is set). Returns the delivery.
    pub fn drag(&self, hash: &str, column: &str) -> Option<Delivery> {
        let event = self.drag_silently(hash, column)?;
        self.deliver(&event)
    }

    /// Moves the applicant like [`FlatchrSim::drag`] but sends nothing (a lost webhook);
    /// returns the event that would have been sent, `None` for an unknown applicant or
    /// column.
    pub fn drag_silently(&self, hash: &str, column: &str) -> Option<Value> {
        let mut st = lock(&self.state);
        let board = &mut st.board;
        let col = board.columns.iter().find(|c| c.title == column)?.id;
        let a = board.applicant_mut(hash)?;
        a.column = col;
        a.updated_at = "2026-01-03T10:00:00.000Z".into();
        let a = a.clone();
        Some(board.drag_event(&a))
    }

    /// Sends `event` to the webhook as Flatchr would (again, for a duplicate delivery).
    pub fn deliver(&self, event: &Value) -> Option<Delivery> {
        let target = lock(&self.state).webhook.clone()?;
        let delivery = target.send(event);
        lock(&self.state).deliveries.push(delivery.clone());
        Some(delivery)
    }
}

/// Authentication: the bearer header or the `token` query parameter.
fn authorized(r: &Request) -> bool {
    let bearer = r
        .header("Authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|k| k == DEFAULT_KEY);
    let query = r
        .url
        .split_once('?')
        .map(|(_, q)| q.split('&').any(|kv| kv == format!("token={DEFAULT_KEY}")))
        .unwrap_or(false);
    bearer || query
}

fn handle(state: &Mutex<State>, r: &Request) -> Response {
    lock(state).requests += 1;
    if r.body_too_large {
        return error(413, "request body too large");
    }
    if !authorized(r) {
        return error(
            401,
            "Unauthorized: a valid API key is required (Bearer or ?token=)",
        );
    }
    let path = r.url.split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body: Value = if r.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(e) => return error(400, format!("the body is not JSON: {e}")),
        }
    };
    let mut st = lock(state);
    if segs.get(1).is_some_and(|c| *c != st.board.company) {
        return error(404, "unknown company");
    }
    match (r.method.as_str(), segs.as_slice()) {
        ("POST", ["company", _, "search", "applicants"]) => {
            let b = &st.board;
            let rows: Vec<Value> = b
                .applicants
                .iter()
                .filter(|a| b.matches(a, &body))
                .map(|a| b.flat(a))
                .collect();
            Response::json(200, &Value::Array(rows))
        }
        ("PUT", ["company", _, "vacancy", _, "applicant", a]) => {
            let Some(col) = body.get("column_id").and_then(Value::as_u64) else {
                return error(400, "column_id (an integer) is required");
            };
            if st.board.column(col).is_none() {
                return error(404, format!("unknown column {col}"));
            }
            let Some(app) = st.board.applicant_mut(a) else {
                return error(404, format!("unknown applicant {a}"));
            };
            app.column = col;
            let app = app.clone();
            let (answer, event) = (st.board.moved(&app), st.board.drag_event(&app));
            if let Some(target) = st.webhook.clone() {
                drop(st);
                let d = target.send(&event);
                lock(state).deliveries.push(d);
            }
            Response::json(200, &answer)
        }
        _ => error(404, format!("no route for {} {path}", r.method)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, url: &str, auth: Option<&str>, body: &str) -> Request {
        Request {
            method: method.into(),
            url: url.into(),
            headers: auth
                .map(|a| vec![("Authorization".to_string(), a.to_string())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
            body_too_large: false,
            peer: None,
        }
    }

    fn state() -> (Mutex<State>, String, String) {
        let mut board = Board::default();
        let zoe = board.add("Zoë", "Lefèvre", Some("zoe@gmail.com"));
        let company = board.company.clone();
        (
            Mutex::new(State {
                board,
                ..State::default()
            }),
            company,
            zoe,
        )
    }

    fn body(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn bearer_or_token_query_authenticates_anything_else_is_401() {
        let (st, c, _) = state();
        let path = format!("/company/{c}/search/applicants");
        let bearer = format!("Bearer {DEFAULT_KEY}");
        let ok = handle(&st, &request("POST", &path, Some(&bearer), "{}"));
        assert_eq!(ok.status, 200);
        assert_eq!(body(&ok).as_array().map(Vec::len), Some(1));
        let query = format!("{path}?token={DEFAULT_KEY}");
        assert_eq!(handle(&st, &request("POST", &query, None, "")).status, 200);
        for auth in [None, Some("Bearer nope"), Some(DEFAULT_KEY)] {
            assert_eq!(handle(&st, &request("POST", &path, auth, "{}")).status, 401);
        }
    }

    #[test]
    fn moving_an_applicant_answers_the_nested_shape_and_bad_input_is_4xx() {
        let (st, c, zoe) = state();
        let bearer = format!("Bearer {DEFAULT_KEY}");
        let path = format!("/company/{c}/vacancy/x/applicant/{zoe}");
        let r = handle(
            &st,
            &request("PUT", &path, Some(&bearer), r#"{"column_id": 13}"#),
        );
        assert_eq!(r.status, 200);
        assert_eq!(body(&r)["candidate"]["firstname"], "Zoë");
        let hired = format!("/company/{c}/search/applicants");
        let found = handle(
            &st,
            &request("POST", &hired, Some(&bearer), r#"{"hired": true}"#),
        );
        assert_eq!(body(&found)[0]["applicant"], zoe.as_str());
        for (p, b, status) in [
            (path.as_str(), r#"{"column_id": "13"}"#, 400),
            (path.as_str(), r#"{"column_id": 99}"#, 404),
            (path.as_str(), "not json", 400),
            ("/company/other/search/applicants", "{}", 404),
        ] {
            let method = if p.contains("search") { "POST" } else { "PUT" };
            let r = handle(&st, &request(method, p, Some(&bearer), b));
            assert_eq!(
                r.status,
                status,
                "{p} {b}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}
