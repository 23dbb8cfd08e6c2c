//! Deterministic fault injection: a fault hits the Nth request (by arrival order), so a test
//! that injects "request 3 answers 500" gets exactly that on every run.

use std::time::Duration;

use serde_json::Value;

use crate::server::Response;

/// What goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer 500 without doing anything.
    ServerError,
    /// Answer 200 with the real body cut in the middle (invalid JSON).
    MalformedJson,
    /// Answer a list page with only its first half of items, still claiming the full count
    /// (`data.count` / `count` unchanged): a page cut short.
    TruncatedPage,
    /// Add this much simulated latency (past the request timeout this becomes a 408).
    Latency(Duration),
}

/// A fault on one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// 1-based arrival number of the request it hits (counting every request, 429s included).
    pub nth: u64,
    pub kind: FaultKind,
}

impl Fault {
    pub fn new(nth: u64, kind: FaultKind) -> Self {
        Fault { nth, kind }
    }
}

/// Cuts a successful body in half: whatever it was, it no longer parses.
pub fn malform(mut response: Response) -> Response {
    let keep = response.body.len() / 2;
    response.body.truncate(keep);
    response
}

/// Drops the second half of `data.items` (v3) or `items` (v4), leaving the rest untouched.
pub fn truncate_page(mut response: Response) -> Response {
    let Ok(mut value) = serde_json::from_slice::<Value>(&response.body) else {
        return response;
    };
    let items = match value.get_mut("data").and_then(|d| d.get_mut("items")) {
        Some(items) => Some(items),
        None => value.get_mut("items"),
    };
    if let Some(Value::Array(items)) = items {
        let keep = items.len() / 2;
        items.truncate(keep);
        response.body = value.to_string().into_bytes();
    }
    response
}
