//! The Leapsome simulator: SCIM 2.0 Users and Groups (teams) in Leapsome's dialect, per
//! `shared/API-NOTES.md`, at `{base_url}` = `http://127.0.0.1:PORT/scim/v1`.
//!
//! It follows every fact API-NOTES marks \[C\] (Leapsome's published SCIM description), and
//! where a fact leaves room it takes the stricter reading. What makes it Leapsome rather than
//! generic SCIM (each is a test of the connector):
//! - **A POST keeps only core attributes** (`userName`, `name`, `displayName`, `title`,
//!   `photos`, `externalId`): enterprise attributes, `active` and the manager must follow in
//!   a PATCH (see [`users`]).
//! - **PATCH and PUT require `userName`** in the body (400 "The userName field is required").
//! - **401 and 403 are swapped**: 403 "Invalid token" for a missing or unknown token, 401
//!   "not sufficiently authorized" for a token without the rights
//!   ([`LeapsomeOptions::limited_token`]).
//! - **A group GET returns no members** (`maxItems: 0`): memberships show on each user's
//!   `groups`.
//! - **PATCH takes a partial JSON** of the resource, not an RFC 7644 `PatchOp`: present keys
//!   replace, `null` clears, `name` and the enterprise extension merge key by key. A `PatchOp`
//!   body is refused with 400 saying so.
//! - **Teams are Groups**; a group PATCH carries at most 100 `members` and `replaceMembers`
//!   (`true`: the list replaces the members; `false`/absent: it adds to them).
//! - **Manager by reference**: a write names the manager by Leapsome id, email or
//!   `externalId`; a read gives `{"value": <the manager's externalId, or its id when it has
//!   none>, "$ref": …/Users/<id>}` ([`ManagerOnRead`]), so a client has to translate.
//! - `birthday`/`startDate`/`endDate` (`YYYY-MM-DD`) and `gender` (`male|female|diverse`) live
//!   in the enterprise extension.
//! - `POST /Users` answers **201** with the user, or **200 `{}`** when the account already
//!   exists (same `userName`, and either no `externalId` or the same one), or **409** when the
//!   `userName` belongs to an account with another `externalId`.
//! - The email domain of the `userName` and of every address in `emails` must belong to the
//!   organisation ([`LeapsomeOptions::allowed_domains`]): otherwise 400 naming the email and
//!   the allowed domains.
//! - Reactivating an account whose invitation was never accepted leaves it "invited"
//!   ([`ScimUser::status`]).
//! - 404 bodies are `{schemas, detail, status: "404"}`, the status a string (as every error).
//! - Invitations: a create carrying `{INVITE_EXTENSION: {"invite": true}}` (\[I\] in API-NOTES: our
//!   spelling) records an [`Invitation`]; nothing else sends one.
//! - No DELETE (405): accounts are deactivated with `active: false`.
//! - 30 requests per second, then 429 with `Retry-After` (in simulated seconds).
//!
//! For crash tests: [`LeapsomeOptions::lost_creates`] applies a create and loses its answer
//! (502), [`LeapsomeOptions::stalled_user_patches`] holds chosen user PATCHes without applying
//! them (so a test can kill a sync between a create's POST and its PATCH), and
//! [`LeapsomeOptions::latency`] slows every request down.
//!
//! A request goes through, in order: body size (413) → rate limiter (429) → latency →
//! injected 500 → Bearer token (403, or 401 for the limited token) → route (4xx) → injected
//! body faults. Every request lands
//! in the [`RequestLog`]. Errors are SCIM error bodies
//! (`{"schemas":[…Error],"status":"400","detail":"…"}`) naming what is wrong; nothing panics
//! on input.

mod groups;
mod reject;
mod state;
mod users;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

pub use reject::{RejectRule, RejectWhen};
pub use state::{
    Directory, ENTERPRISE, Email, GROUP_SCHEMA, INVITE_EXTENSION, Invitation, ScimUser, Team,
    USER_SCHEMA,
};

use crate::server::{self, Request, Response};
use crate::{
    Fault, FaultKind, Jitter, RateLimit, RequestLog, RequestRecord, SandboxError, SimClock,
};

/// The SCIM token of [`LeapsomeOptions::default`].
pub const DEFAULT_TOKEN: &str = "sandbox-leapsome-scim-0123456789abcdef";

/// The organisation's email domain by default: the one of the generated Lucca tenants.
pub const DEFAULT_DOMAIN: &str = "sandbox.example";

/// Path of the SCIM API under the server root, as on `https://api.leapsome.com/scim/v1`.
pub const BASE_PATH: &str = "/scim/v1";

/// Largest `count` of a user list page, and of a group list page.
pub const MAX_USERS_PAGE: usize = 5000;
pub const MAX_GROUPS_PAGE: usize = 1000;
/// Most members one group PATCH (or POST) may carry.
pub const MAX_MEMBERS_PER_PATCH: usize = 100;

const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// How a read names an account's manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManagerOnRead {
    /// The manager's `externalId`, or its Leapsome id when it has none (the default).
    #[default]
    ExternalIdElseId,
    /// Always the manager's Leapsome id.
    Id,
    /// The manager's email (`userName`), as some SCIM servers answer.
    Email,
}

/// How a simulated Leapsome organisation behaves.
#[derive(Debug, Clone)]
pub struct LeapsomeOptions {
    /// The accepted SCIM token (`Authorization: Bearer {token}`).
    pub token: String,
    /// A token Leapsome knows but which lacks the rights: every request with it is answered
    /// 401 "not sufficiently authorized" (Leapsome's 401; an unknown token gets 403).
    pub limited_token: Option<String>,
    /// Simulated seconds per real second, as for Lucca; `Retry-After` and the request log are
    /// in simulated seconds.
    pub time_scale: f64,
    /// `None` disables the limit. Default: 30 requests per simulated second.
    pub rate_limit: Option<RateLimit>,
    /// Email domains of the organisation (case-insensitive); an account whose `userName` is in
    /// another domain is refused. Empty accepts every domain.
    pub allowed_domains: Vec<String>,
    /// Per-record refusals (see [`RejectRule`]).
    pub rejects: Vec<RejectRule>,
    /// Injected faults by request number (shared with the Lucca simulator); `TruncatedPage`
    /// halves `Resources`.
    pub faults: Vec<Fault>,
    /// Creates (1-based ordinals of `POST /Users`) that are applied but whose answer is lost:
    /// the account is created, then the client gets a 502 as from a proxy whose backend
    /// connection dropped. The case an engine's journal must resolve after a crash without
    /// creating the account twice.
    pub lost_creates: Vec<u64>,
    /// User PATCHes (1-based ordinals of `PATCH /Users/{id}`) that are held for
    /// [`STALL`](Self::stall) and then answered 503 *without being applied*: a test waits for
    /// [`LeapsomeSim::stalled`] and kills the client while the request hangs.
    pub stalled_user_patches: Vec<u64>,
    /// How long a stalled PATCH is held (simulated time). Default 30 s.
    pub stall: Duration,
    /// Simulated latency added to every request (e.g. to let a test kill a sync mid-apply).
    pub latency: Duration,
    /// Spread of the latency, per request (`latency` ± up to `jitter.max`).
    pub jitter: Jitter,
    /// How reads name managers.
    pub manager_on_read: ManagerOnRead,
    /// The directory at start: pre-existing accounts and manual teams.
    pub directory: Directory,
}

impl Default for LeapsomeOptions {
    fn default() -> Self {
        LeapsomeOptions {
            token: DEFAULT_TOKEN.into(),
            limited_token: None,
            time_scale: 1.0,
            rate_limit: Some(RateLimit {
                requests: 30,
                window_secs: 1.0,
            }),
            allowed_domains: vec![DEFAULT_DOMAIN.into()],
            rejects: Vec::new(),
            faults: Vec::new(),
            lost_creates: Vec::new(),
            stalled_user_patches: Vec::new(),
            stall: Duration::from_secs(30),
            latency: Duration::ZERO,
            jitter: Jitter::default(),
            manager_on_read: ManagerOnRead::default(),
            directory: Directory::default(),
        }
    }
}

/// A SCIM error answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ScimError {
    pub status: u16,
    /// RFC 7644 `scimType` (`invalidValue`, `uniqueness`, `invalidFilter`…).
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// `Retry-After` seconds (429 answers).
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type: None,
            detail: detail.into(),
            retry_after: (status == 429).then_some(1),
        }
    }

    /// 400 `invalidValue`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        ScimError::new(400, detail).typed("invalidValue")
    }

    pub fn typed(mut self, scim_type: &'static str) -> Self {
        self.scim_type = Some(scim_type);
        self
    }

    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = Value::String(t.into());
        }
        let mut r = Response::json(self.status, &body);
        if let Some(secs) = self.retry_after {
            r.headers.push(("Retry-After".into(), secs.to_string()));
        }
        r
    }
}

/// Requests served, by kind (429s are counted apart, not as reads or writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestCounts {
    /// GET requests that passed the rate limiter.
    pub reads: usize,
    /// POST, PATCH, PUT and DELETE requests that passed the rate limiter.
    pub writes: usize,
    /// Requests answered 429.
    pub throttled: usize,
}

impl RequestCounts {
    /// Counts a log.
    pub fn of(log: &RequestLog) -> Self {
        let mut c = RequestCounts::default();
        for r in &log.records {
            if r.status == 429 {
                c.throttled += 1;
            } else if r.method == "GET" || r.method == "HEAD" {
                c.reads += 1;
            } else {
                c.writes += 1;
            }
        }
        c
    }
}

/// Sliding window over simulated time (the same model as the Lucca limiter).
#[derive(Debug, Default)]
struct Limiter {
    accepted: VecDeque<f64>,
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

struct Shared {
    options: LeapsomeOptions,
    clock: SimClock,
    directory: Mutex<Directory>,
    limiter: Mutex<Limiter>,
    log: Mutex<RequestLog>,
    seq: AtomicU64,
    creates: AtomicU64,
    user_patches: AtomicU64,
    stalled: AtomicU64,
    base_url: OnceLock<String>,
}

/// Locks ignoring poisoning: a panicked test thread must not wedge the simulator.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running simulated Leapsome organisation on `127.0.0.1`; stops when dropped.
pub struct LeapsomeSim {
    shared: Arc<Shared>,
    server: server::Server,
}

impl LeapsomeSim {
    /// Starts serving on a free loopback port, with `options.directory` as the initial state,
    /// on threads of its own.
    pub fn start(options: LeapsomeOptions) -> Result<Self, SandboxError> {
        Self::start_with(options, server::Server::start)
    }

    /// The same simulator on a free loopback port of `hub`'s runtime, without threads of its
    /// own (for tests that start hundreds; see [`Hub`]).
    ///
    /// [`Hub`]: crate::Hub
    pub fn start_on(hub: &crate::Hub, options: LeapsomeOptions) -> Result<Self, SandboxError> {
        Self::start_with(options, |h| server::Server::start_on(hub, h))
    }

    fn start_with(
        options: LeapsomeOptions,
        serve: impl FnOnce(Arc<server::Handler>) -> Result<server::Server, SandboxError>,
    ) -> Result<Self, SandboxError> {
        let shared = Arc::new(Shared {
            clock: SimClock::new(options.time_scale),
            directory: Mutex::new(options.directory.clone()),
            options,
            limiter: Mutex::new(Limiter::default()),
            log: Mutex::new(RequestLog::default()),
            seq: AtomicU64::new(0),
            creates: AtomicU64::new(0),
            user_patches: AtomicU64::new(0),
            stalled: AtomicU64::new(0),
            base_url: OnceLock::new(),
        });
        let handler_state = shared.clone();
        let server = serve(Arc::new(move |r: &Request| handler_state.handle(r)))?;
        let _ = shared
            .base_url
            .set(format!("http://127.0.0.1:{}{BASE_PATH}", server.port()));
        Ok(LeapsomeSim { shared, server })
    }

    /// `http://127.0.0.1:PORT/scim/v1`: the connector's `base_url` (the SCIM base, like
    /// `https://api.leapsome.com/scim/v1`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}{BASE_PATH}", self.server.port())
    }

    /// The accepted SCIM token.
    pub fn token(&self) -> &str {
        &self.shared.options.token
    }

    /// A snapshot of the directory.
    pub fn directory(&self) -> Directory {
        lock(&self.shared.directory).clone()
    }

    /// Reads or changes the directory between requests (a manual edit, a manual team…).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut Directory) -> R) -> R {
        f(&mut lock(&self.shared.directory))
    }

    /// A snapshot of the accounts.
    pub fn users(&self) -> Vec<ScimUser> {
        lock(&self.shared.directory).users.clone()
    }

    /// The account whose `externalId` is `external_id` (muster stores the source id there).
    pub fn user_by_external_id(&self, external_id: &str) -> Option<ScimUser> {
        lock(&self.shared.directory)
            .user_by_external_id(external_id)
            .cloned()
    }

    /// The account whose `userName` is `email` (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Option<ScimUser> {
        lock(&self.shared.directory).user_by_email(email).cloned()
    }

    /// A snapshot of the teams.
    pub fn teams(&self) -> Vec<Team> {
        lock(&self.shared.directory).teams.clone()
    }

    /// The invitations sent so far, in order.
    pub fn invitations(&self) -> Vec<Invitation> {
        lock(&self.shared.directory).invitations.clone()
    }

    /// Every request served so far.
    pub fn request_log(&self) -> RequestLog {
        lock(&self.shared.log).clone()
    }

    /// The requests logged after the first `start` (what [`request_log`](Self::request_log)
    /// would give from index `start` on), without copying the whole log: for a test polling
    /// many simulators. Indices shift when the log is cleared.
    pub fn request_log_since(&self, start: usize) -> Vec<RequestRecord> {
        lock(&self.shared.log).since(start)
    }

    /// Reads, writes and 429s served so far.
    pub fn request_counts(&self) -> RequestCounts {
        RequestCounts::of(&lock(&self.shared.log))
    }

    /// Forgets the requests served so far (e.g. between two syncs); the rate limiter's window
    /// and the create counter of [`RejectRule`]s are not reset.
    pub fn clear_request_log(&self) {
        lock(&self.shared.log).records.clear();
    }

    /// How many user PATCHes were held by [`LeapsomeOptions::stalled_user_patches`] so far
    /// (counted when the hold starts).
    pub fn stalled(&self) -> u64 {
        self.shared.stalled.load(Ordering::SeqCst)
    }

    /// The simulated clock.
    pub fn clock(&self) -> SimClock {
        self.shared.clock
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
            return ScimError::new(413, "Request entity too large").into_response();
        }
        if let Some(limit) = &self.options.rate_limit
            && let Err(retry_after) = lock(&self.limiter).try_acquire(limit, at)
        {
            let mut e = ScimError::new(
                429,
                format!(
                    "Too many requests: {} requests per {} s",
                    limit.requests, limit.window_secs
                ),
            );
            e.retry_after = Some(retry_after);
            return e.into_response();
        }
        let extra = match fault {
            Some(FaultKind::Latency(d)) => *d,
            _ => Duration::ZERO,
        };
        let latency = self.options.jitter.latency(self.options.latency, seq) + extra;
        if !latency.is_zero() {
            self.clock.sleep(latency);
        }
        if fault == Some(&FaultKind::ServerError) {
            return ScimError::new(500, "Internal server error (injected)").into_response();
        }
        let response = match self.route(request) {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        match fault {
            Some(FaultKind::MalformedJson) if response.status == 200 => {
                let mut r = response;
                let keep = r.body.len() / 2;
                r.body.truncate(keep);
                r
            }
            Some(FaultKind::TruncatedPage) if response.status == 200 => truncate_page(response),
            _ => response,
        }
    }

    /// Leapsome's swapped statuses: a missing or unknown token is 403 "Invalid token"; the
    /// limited token is 401 "not sufficiently authorized".
    fn authenticate(&self, request: &Request) -> Result<(), ScimError> {
        let header = request
            .header("authorization")
            .ok_or_else(|| ScimError::new(403, "Invalid token: missing Authorization header"))?;
        let token = header
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("bearer "))
            .map(|_| &header[7..])
            .ok_or_else(|| ScimError::new(403, "Invalid token: expected 'Bearer {token}'"))?;
        if token == self.options.token {
            Ok(())
        } else if self.options.limited_token.as_deref() == Some(token) {
            Err(ScimError::new(
                401,
                "not sufficiently authorized: the token lacks the SCIM rights",
            ))
        } else {
            Err(ScimError::new(403, "Invalid token"))
        }
    }

    /// Holds a user PATCH chosen by [`LeapsomeOptions::stalled_user_patches`]: `Some(503)`
    /// after the hold, without applying it.
    fn stall_user_patch(&self) -> Option<ScimError> {
        let ordinal = self.user_patches.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.options.stalled_user_patches.contains(&ordinal) {
            return None;
        }
        self.stalled.fetch_add(1, Ordering::SeqCst);
        self.clock.sleep(self.options.stall);
        Some(ScimError::new(
            503,
            "Service unavailable (injected: the PATCH was held, then dropped unapplied)",
        ))
    }

    fn route(&self, request: &Request) -> Result<Response, ScimError> {
        self.authenticate(request)?;
        let (path, raw_query) = request.url.split_once('?').unwrap_or((&request.url, ""));
        let query = Query::parse(raw_query)?;
        let Some(rest) = path.strip_prefix(BASE_PATH) else {
            return Err(ScimError::new(
                404,
                format!("no route {path}: the SCIM API lives under {BASE_PATH}"),
            ));
        };
        let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let ctx = Ctx {
            base_url: self.base_url.get().cloned().unwrap_or_default(),
            options: &self.options,
        };
        let method = request.method.as_str();
        let ok = |status: u16, v: Value| Response::json(status, &v);
        match (method, segments.as_slice()) {
            ("GET", ["Users"]) => {
                users::list(&ctx, &lock(&self.directory), &query).map(|v| ok(200, v))
            }
            ("GET", ["Users", id]) => {
                users::get(&ctx, &lock(&self.directory), &decode(id)?).map(|v| ok(200, v))
            }
            ("POST", ["Users"]) => {
                let body = parse_body(&request.body)?;
                let mut dir = lock(&self.directory);
                let ordinal = self.creates.fetch_add(1, Ordering::SeqCst) + 1;
                match users::create(&ctx, &mut dir, &body, ordinal)? {
                    Some(_) if self.options.lost_creates.contains(&ordinal) => Err(ScimError::new(
                        502,
                        "Bad gateway (injected: the account was created, the answer lost)",
                    )),
                    Some(v) => {
                        let location = format!(
                            "{}/Users/{}",
                            ctx.base_url,
                            v["id"].as_str().unwrap_or_default()
                        );
                        let mut r = ok(201, v);
                        r.headers.push(("Location".into(), location));
                        Ok(r)
                    }
                    None => Ok(ok(200, json!({}))),
                }
            }
            ("PATCH", ["Users", id]) => {
                if let Some(e) = self.stall_user_patch() {
                    return Err(e);
                }
                let body = parse_body(&request.body)?;
                users::patch(&ctx, &mut lock(&self.directory), &decode(id)?, &body)
                    .map(|v| ok(200, v))
            }
            ("PUT", ["Users", id]) => {
                let body = parse_body(&request.body)?;
                users::put(&ctx, &mut lock(&self.directory), &decode(id)?, &body)
                    .map(|v| ok(200, v))
            }
            ("GET", ["Groups"]) => {
                groups::list(&ctx, &lock(&self.directory), &query).map(|v| ok(200, v))
            }
            ("GET", ["Groups", id]) => {
                groups::get(&ctx, &lock(&self.directory), &decode(id)?).map(|v| ok(200, v))
            }
            ("POST", ["Groups"]) => {
                let body = parse_body(&request.body)?;
                groups::create(&ctx, &mut lock(&self.directory), &body).map(|v| ok(201, v))
            }
            ("PATCH", ["Groups", id]) => {
                let body = parse_body(&request.body)?;
                groups::patch(&ctx, &mut lock(&self.directory), &decode(id)?, &body)
                    .map(|v| ok(200, v))
            }
            ("GET", ["ServiceProviderConfig"]) => Ok(ok(200, service_provider_config())),
            ("DELETE", ["Users" | "Groups", ..]) => Err(ScimError::new(
                405,
                "Leapsome does not delete through SCIM: deactivate with {\"active\": false}",
            )),
            (_, ["Users" | "Groups" | "ServiceProviderConfig", ..]) => Err(ScimError::new(
                405,
                format!("{method} is not allowed on {path}"),
            )),
            _ => Err(ScimError::new(404, format!("no route {path}"))),
        }
    }
}

/// What a route needs besides the directory and the request.
pub(crate) struct Ctx<'o> {
    /// `http://127.0.0.1:PORT/scim/v1`.
    pub base_url: String,
    pub options: &'o LeapsomeOptions,
}

/// Parses a write body; anything but a JSON object is a 400 naming the problem.
fn parse_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, ScimError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ScimError::invalid(format!(
            "the body must be a JSON object, not {}",
            kind_of(&other)
        ))
        .typed("invalidSyntax")),
        Err(e) => Err(
            ScimError::invalid(format!("the body is not valid JSON: {e}")).typed("invalidSyntax"),
        ),
    }
}

/// `null`, `a string`… for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuses RFC 7644 PatchOp bodies: Leapsome wants the partial resource.
pub(crate) fn refuse_patch_op(body: &serde_json::Map<String, Value>) -> Result<(), ScimError> {
    let is_patch_op = body.contains_key("Operations")
        || body
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|v| v.as_str().is_some_and(|s| s.ends_with(":PatchOp")))
            });
    if is_patch_op {
        return Err(ScimError::invalid(
            "PatchOp is not supported: send a partial resource JSON (e.g. {\"active\": false})",
        )
        .typed("invalidSyntax"));
    }
    Ok(())
}

fn service_provider_config() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_USERS_PAGE},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with the organisation's SCIM token",
        }],
    })
}

/// Halves `Resources` of a list page, keeping `totalResults`: a page cut short.
fn truncate_page(mut response: Response) -> Response {
    let Ok(mut value) = serde_json::from_slice::<Value>(&response.body) else {
        return response;
    };
    if let Some(Value::Array(items)) = value.get_mut("Resources") {
        let keep = items.len() / 2;
        items.truncate(keep);
        response.body = value.to_string().into_bytes();
    }
    response
}

/// Percent-decodes a path segment.
fn decode(s: &str) -> Result<String, ScimError> {
    percent_decode(s, false)
}

fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, ScimError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ScimError::invalid(format!("bad percent-encoding in '{s}'")))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ScimError::invalid(format!("'{s}' is not UTF-8")))
}

/// Decoded query parameters, in order.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(raw: &str) -> Result<Self, ScimError> {
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Ok((percent_decode(k, true)?, percent_decode(v, true)?))
            })
            .collect::<Result<_, ScimError>>()?;
        Ok(Query { pairs })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `startIndex` (1-based; below 1 means 1, per RFC 7644) and `count` (default 100,
    /// capped at `max`) as a 0-based offset and a limit.
    pub(crate) fn paging(&self, max: usize) -> Result<(usize, usize), ScimError> {
        let num = |name: &str| -> Result<Option<i64>, ScimError> {
            match self.get(name) {
                None => Ok(None),
                Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                    ScimError::invalid(format!("{name} must be an integer, not '{v}'"))
                }),
            }
        };
        let start = num("startIndex")?.unwrap_or(1).max(1);
        let count = num("count")?.unwrap_or(100).clamp(0, max as i64);
        Ok((
            usize::try_from(start - 1).unwrap_or(usize::MAX),
            count as usize,
        ))
    }

    /// Parses `filter=ATTR eq "VALUE"` for the one attribute a list supports; `None` without a
    /// filter.
    pub(crate) fn eq_filter(&self, attribute: &str) -> Result<Option<String>, ScimError> {
        let Some(raw) = self.get("filter") else {
            return Ok(None);
        };
        let unsupported = || {
            ScimError::invalid(format!(
                "unsupported filter '{raw}': only '{attribute} eq \"…\"' is supported"
            ))
            .typed("invalidFilter")
        };
        let mut parts = raw.trim().splitn(3, char::is_whitespace);
        let (Some(attr), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(unsupported());
        };
        if !attr.eq_ignore_ascii_case(attribute) || !op.eq_ignore_ascii_case("eq") {
            return Err(unsupported());
        }
        let value = value.trim();
        let inner = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(unsupported)?;
        Ok(Some(inner.replace("\\\"", "\"")))
    }
}

/// The SCIM list envelope.
pub(crate) fn list_response(total: usize, start: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start + 1,
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_paging_parse_strictly() {
        let q = Query::parse("filter=userName+eq+%22a%40b.c%22&startIndex=0&count=9999").unwrap();
        assert_eq!(q.eq_filter("userName").unwrap().as_deref(), Some("a@b.c"));
        assert_eq!(q.paging(5000).unwrap(), (0, 5000));
        let bad = Query::parse("filter=emails+co+%22x%22").unwrap();
        assert!(bad.eq_filter("userName").is_err());
        assert!(Query::parse("count=x").unwrap().paging(10).is_err());
        assert!(Query::parse("a=%zz").is_err());
    }

    #[test]
    fn limiter_window_is_per_second() {
        let limit = RateLimit {
            requests: 2,
            window_secs: 1.0,
        };
        let mut l = Limiter::default();
        assert!(l.try_acquire(&limit, 0.0).is_ok());
        assert!(l.try_acquire(&limit, 0.1).is_ok());
        assert_eq!(l.try_acquire(&limit, 0.2), Err(1));
        assert!(l.try_acquire(&limit, 1.0).is_ok());
    }
}
