//! The Cards (micro-learning) simulator, per `shared/API-NOTES.md`, at `{base_url}` =
//! `http://127.0.0.1:PORT/v1` (Cards: `https://api.cards-microlearning.com/v1`).
//!
//! What it serves (\[C\] = published by Cards, \[I\] = our model, easy to change):
//! - \[C\] `Authorization: Bearer <token>` **and** `X-Tenant: <tenant id>` on every request:
//!   a missing or unknown token is 401 `{"message":"Unauthenticated."}`; a missing `X-Tenant`
//!   400, another tenant's id 403 (\[I\] statuses).
//! - \[C\] `GET /users?paginate=N&page=P&filters=[…]` (N default 100, at most 500; `filters` a
//!   JSON array of `{type: role|groups_name|groups_id, values: […]}`, all must hold), answered
//!   `{data, links{first,last,prev,next}, meta{current_page,last_page,per_page,total}}`;
//!   `GET /users/{id}`; `POST /users` (`firstname`, `lastname` required); `PUT /users/{id}`
//!   (partial: present keys replace, **`groups` replaces the whole list, `[]` removes every
//!   group**); `DELETE /users/{id}`.
//! - \[C\] `groups: [{id}|{name}]` in user writes: an unknown name creates the group; an unknown
//!   id is 422. `GET /groups` (filters `is_public`, `enable_ranking`), `GET /groups/{id}`.
//!   There is no group write of its own: groups come into being through a user's `groups`.
//! - \[C\] Names (first/last name, email, company, group) at most 190 characters; `role`
//!   `user|editor|owner`, `lang` `fr|en`, `source` `app|sso|GoogleOAuth|MicrosoftOAuth|
//!   AppleOAuth`. Refusals are Laravel's 422 `{"message", "errors": {field: [text]}}`; an
//!   email another user has is 422 on `email`.
//! - \[I\] `notify: true` in a create sends the new user its welcome e-mail
//!   ([`CardsSim::notifications`]); without it nothing is sent.
//! - \[I\] The training-statistics feed: `GET /statistics/trainings?paginate=N&page=P`, paged
//!   as the users, rows `{user_email, training_title, training_link, progress, score,
//!   last_completed_at}`. The \[C\] webhook events (`chapter-complete`, `quiz-complete`) are
//!   the second way in: [`CardsSim::record_completion`] records a row and returns the event's
//!   body as Cards would POST it.
//! - \[I\] A rate limit: 10 requests per simulated second by default, then 429 with
//!   `Retry-After`.
//!
//! A request goes through: body size (413) → rate limiter (429) → latency → injected 500 →
//! auth → route → injected body faults ([`Fault`]). Every request lands in the
//! [`RequestLog`]; nothing panics on input.

mod routes;
mod state;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

pub use state::{
    CardsGroup, CardsUser, LANGS, MAX_NAME, Notification, ROLES, SOURCES, Space, TrainingStat,
};

use crate::server::{self, Request, Response};
use crate::{Fault, FaultKind, Jitter, RateLimit, RequestLog, SandboxError, SimClock};

/// The API token of [`CardsOptions::default`].
pub const DEFAULT_TOKEN: &str = "sandbox-cards-token-0123456789abcdef";
/// The tenant id of [`CardsOptions::default`].
pub const DEFAULT_TENANT: &str = "sandbox";
/// Path of the API under the server root.
pub const BASE_PATH: &str = "/v1";
/// `paginate` when none is given, and the most it may be.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 500;

/// How a simulated Cards space behaves.
#[derive(Debug, Clone)]
pub struct CardsOptions {
    pub token: String,
    pub tenant: String,
    /// Simulated seconds per real second (the rate limit and `Retry-After` run on it).
    pub time_scale: f64,
    /// `None` disables the limit. Default 10 requests per simulated second.
    pub rate_limit: Option<RateLimit>,
    pub faults: Vec<Fault>,
    /// Simulated latency added to every request.
    pub latency: Duration,
    /// Spread of the latency, per request (`latency` ± up to `jitter.max`).
    pub jitter: Jitter,
    /// The space at start: users and groups made by hand, statistics.
    pub space: Space,
}

impl Default for CardsOptions {
    fn default() -> Self {
        CardsOptions {
            token: DEFAULT_TOKEN.into(),
            tenant: DEFAULT_TENANT.into(),
            time_scale: 1.0,
            rate_limit: Some(RateLimit {
                requests: 10,
                window_secs: 1.0,
            }),
            faults: Vec::new(),
            latency: Duration::ZERO,
            jitter: Jitter::default(),
            space: Space::default(),
        }
    }
}

/// An API error answer.
#[derive(Debug, Clone)]
pub struct CardsError {
    pub status: u16,
    pub message: String,
    /// Laravel's per-field errors (422).
    pub errors: Option<(String, String)>,
    pub retry_after: Option<u64>,
}

impl CardsError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        CardsError {
            status,
            message: message.into(),
            errors: None,
            retry_after: None,
        }
    }

    fn into_response(self) -> Response {
        let mut body = json!({"message": self.message});
        if let Some((field, text)) = self.errors {
            body["errors"] = json!({ field: [text] });
        }
        let mut r = Response::json(self.status, &body);
        if let Some(secs) = self.retry_after {
            r.headers.push(("Retry-After".into(), secs.to_string()));
        }
        r
    }
}

impl From<state::Invalid> for CardsError {
    fn from(e: state::Invalid) -> Self {
        CardsError {
            status: 422,
            message: e.message.clone(),
            errors: Some((e.field, e.message)),
            retry_after: None,
        }
    }
}

struct Shared {
    options: CardsOptions,
    clock: SimClock,
    space: Mutex<Space>,
    limiter: Mutex<Limiter>,
    log: Mutex<RequestLog>,
    seq: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running simulated Cards space on `127.0.0.1`; stops when dropped.
pub struct CardsSim {
    shared: Arc<Shared>,
    server: server::Server,
}

impl CardsSim {
    pub fn start(options: CardsOptions) -> Result<Self, SandboxError> {
        let shared = Arc::new(Shared {
            clock: SimClock::new(options.time_scale),
            space: Mutex::new(options.space.clone()),
            options,
            limiter: Mutex::new(Limiter::default()),
            log: Mutex::new(RequestLog::default()),
            seq: AtomicU64::new(0),
        });
        let handler_state = shared.clone();
        let server = server::Server::start(Arc::new(move |r: &Request| handler_state.handle(r)))?;
        Ok(CardsSim { shared, server })
    }

    /// `http://127.0.0.1:PORT/v1`: the connector's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}{BASE_PATH}", self.server.port())
    }

    pub fn token(&self) -> &str {
        &self.shared.options.token
    }

    pub fn tenant(&self) -> &str {
        &self.shared.options.tenant
    }

    /// A snapshot of the space.
    pub fn space(&self) -> Space {
        lock(&self.shared.space).clone()
    }

    /// Reads or changes the space between requests (a hand-made group, a manual edit…).
    pub fn with_space<R>(&self, f: impl FnOnce(&mut Space) -> R) -> R {
        f(&mut lock(&self.shared.space))
    }

    /// Welcome e-mails sent so far.
    pub fn notifications(&self) -> Vec<Notification> {
        lock(&self.shared.space).notifications.clone()
    }

    pub fn request_log(&self) -> RequestLog {
        lock(&self.shared.log).clone()
    }

    pub fn clear_request_log(&self) {
        lock(&self.shared.log).records.clear();
    }

    /// Served requests that were not GETs (nor 429s).
    pub fn writes(&self) -> usize {
        lock(&self.shared.log)
            .records
            .iter()
            .filter(|r| r.method != "GET" && r.status != 429)
            .count()
    }

    pub fn clock(&self) -> SimClock {
        self.shared.clock
    }

    /// A user finished a chapter or a quiz (`kind` = `chapter-complete` or `quiz-complete`):
    /// the statistics row of that training is added or updated, and the webhook body Cards
    /// sends for the event is returned. `None` when no user has `email`.
    pub fn record_completion(&self, kind: &str, stat: TrainingStat) -> Option<Value> {
        let mut space = lock(&self.shared.space);
        let user = space.user_by_email(&stat.user_email)?.clone();
        let event = json!({
            "event": kind,
            "data": {
                "user": {"id": user.id, "firstname": user.firstname, "lastname": user.lastname,
                         "email": user.email, "company": user.company, "lang": user.lang},
                "training": {"title": stat.training_title, "link": stat.training_link,
                             "chapters_count": 10, "chapter": stat.progress / 10},
                "score": {"points": stat.score, "max_points": 100, "progress": stat.progress},
            }
        });
        match space.stats.iter_mut().find(|s| {
            s.user_email.eq_ignore_ascii_case(&stat.user_email)
                && s.training_title == stat.training_title
        }) {
            Some(row) => *row = stat,
            None => space.stats.push(stat),
        }
        Some(event)
    }
}

impl Shared {
    fn handle(&self, request: &Request) -> Response {
        let faults = &self.options.faults;
        crate::lucca::serve_logged(
            &self.seq,
            &self.clock,
            faults,
            &self.log,
            request,
            |seq, at, f| self.handle_inner(request, seq, at, f),
        )
    }

    fn handle_inner(
        &self,
        request: &Request,
        seq: u64,
        at: f64,
        fault: Option<&FaultKind>,
    ) -> Response {
        if request.body_too_large {
            return CardsError::new(413, "Request entity too large.").into_response();
        }
        if let Some(limit) = &self.options.rate_limit
            && let Err(retry_after) = lock(&self.limiter).try_acquire(limit, at)
        {
            let mut e = CardsError::new(429, "Too Many Attempts.");
            e.retry_after = Some(retry_after);
            return e.into_response();
        }
        let latency = self.options.jitter.latency(self.options.latency, seq)
            + match fault {
                Some(FaultKind::Latency(d)) => *d,
                _ => Duration::ZERO,
            };
        if !latency.is_zero() {
            self.clock.sleep(latency);
        }
        if fault == Some(&FaultKind::ServerError) {
            return CardsError::new(500, "Server Error (injected)").into_response();
        }
        let response = match self
            .authenticate(request)
            .and_then(|()| routes::route(&mut lock(&self.space), request))
        {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        match fault {
            Some(FaultKind::MalformedJson) if response.status == 200 => {
                let mut r = response;
                r.body.truncate(r.body.len() / 2);
                r
            }
            Some(FaultKind::TruncatedPage) if response.status == 200 => truncate_data(response),
            _ => response,
        }
    }

    fn authenticate(&self, request: &Request) -> Result<(), CardsError> {
        let token = request
            .header("authorization")
            .and_then(|h| {
                h.get(..7)
                    .filter(|p| p.eq_ignore_ascii_case("bearer "))
                    .map(|_| &h[7..])
            })
            .ok_or_else(|| CardsError::new(401, "Unauthenticated."))?;
        if token != self.options.token {
            return Err(CardsError::new(401, "Unauthenticated."));
        }
        match request.header("x-tenant") {
            None => Err(CardsError::new(400, "The X-Tenant header is required.")),
            Some(t) if t == self.options.tenant => Ok(()),
            Some(t) => Err(CardsError::new(
                403,
                format!("This token does not give access to tenant {t}."),
            )),
        }
    }
}

/// Sliding window over simulated time (the model of the other simulators' limiters).
#[derive(Debug, Default)]
struct Limiter {
    accepted: std::collections::VecDeque<f64>,
}

impl Limiter {
    fn try_acquire(&mut self, limit: &RateLimit, now: f64) -> Result<(), u64> {
        while self
            .accepted
            .front()
            .is_some_and(|t| now - t >= limit.window_secs)
        {
            self.accepted.pop_front();
        }
        if self.accepted.len() < limit.requests {
            self.accepted.push_back(now);
            return Ok(());
        }
        let oldest = self.accepted.front().copied().unwrap_or(now);
        Err(((oldest + limit.window_secs - now).ceil() as u64).max(1))
    }
}

/// Drops the second half of `data` (a page cut short, `meta.total` unchanged).
fn truncate_data(mut response: Response) -> Response {
    let Ok(mut value) = serde_json::from_slice::<Value>(&response.body) else {
        return response;
    };
    if let Some(Value::Array(items)) = value.get_mut("data") {
        let keep = items.len() / 2;
        items.truncate(keep);
        response.body = value.to_string().into_bytes();
    }
    response
}
