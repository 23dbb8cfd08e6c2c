//! The Lucca simulator: v3 users (with extended data) and roles (`GET /api/v3/roles`, modelled:
//! API-NOTES is silent on roles), v4 organisation structure, auth, the
//! per-tenant rate limit, the 408 timeout and fault injection, per `shared/API-NOTES.md`.
//!
//! A request goes through, in order: body size (413) → rate limiter (429) → latency and
//! timeout (408) → injected 500 → authentication (401) → route and permissions (403, 4xx) →
//! injected body faults. Every request, whatever its outcome, lands in the [`RequestLog`].

mod auth;
mod extended;
mod faults;
mod fields;
mod org;
mod query;
mod ratelimit;
mod users;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

pub use auth::{ApiKey, Permission};
pub use faults::{Fault, FaultKind};
pub(crate) use ratelimit::serve_logged;
pub use ratelimit::{RateLimit, RequestLog, RequestRecord};

use crate::server::{self, Request, Response};
use crate::{Jitter, SandboxError, SimClock, Tenant, datetime};

/// The API key of [`LuccaOptions::default`], with every permission.
pub const DEFAULT_KEY: &str = "sandbox-lucca-0123456789abcdef";

/// How a simulated Lucca tenant behaves.
#[derive(Debug, Clone)]
pub struct LuccaOptions {
    /// Accepted keys and their permissions; the first is [`LuccaSim::api_key`].
    pub keys: Vec<ApiKey>,
    /// Simulated seconds per real second (1.0 = real time; 600.0 makes a 60 s rate-limit
    /// window last 100 ms). `Retry-After`, the request log, latency and the timeout are all
    /// in simulated seconds.
    pub time_scale: f64,
    /// `None` disables the limit (for tests about something else).
    pub rate_limit: Option<RateLimit>,
    /// A request whose simulated duration exceeds this is answered 408 once it has elapsed
    /// (Lucca aborts requests running over 5 s).
    pub request_timeout: Duration,
    /// Simulated latency added to every request.
    pub latency: Duration,
    /// Spread of the latency, per request (`latency` ± up to `jitter.max`).
    pub jitter: Jitter,
    /// Injected faults, by request number.
    pub faults: Vec<Fault>,
}

impl Default for LuccaOptions {
    fn default() -> Self {
        LuccaOptions {
            keys: vec![ApiKey::full(DEFAULT_KEY)],
            time_scale: 1.0,
            rate_limit: Some(RateLimit::default()),
            request_timeout: Duration::from_secs(5),
            latency: Duration::ZERO,
            jitter: Jitter::default(),
            faults: Vec::new(),
        }
    }
}

/// A Lucca-like error answer: `{"status":…,"message":…}` plus optional details.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    extra: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    /// 400 for a bad request.
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }

    /// Adds a machine-readable detail (e.g. `missingPermission`, `field`).
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    fn into_response(self) -> Response {
        let mut body = json!({"status": self.status, "message": self.message});
        for (k, v) in self.extra {
            body[k] = Value::String(v);
        }
        Response::json(self.status, &body)
    }
}

/// State shared by the worker threads.
struct Shared {
    options: LuccaOptions,
    clock: SimClock,
    tenant: Mutex<Tenant>,
    limiter: Mutex<ratelimit::Limiter>,
    log: Mutex<RequestLog>,
    seq: AtomicU64,
    base_url: OnceLock<String>,
}

/// Locks ignoring poisoning: a panicked test thread must not wedge the simulator.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running simulated Lucca tenant on `127.0.0.1`; stops when dropped.
pub struct LuccaSim {
    shared: Arc<Shared>,
    server: server::Server,
}

impl LuccaSim {
    /// Starts serving `tenant` on a free loopback port, on threads of its own.
    pub fn start(tenant: Tenant, options: LuccaOptions) -> Result<Self, SandboxError> {
        Self::start_with(tenant, options, server::Server::start)
    }

    /// Starts serving `tenant` on a free loopback port of `hub`'s runtime: the same
    /// simulator, without threads of its own (for tests that start hundreds; see [`Hub`]).
    ///
    /// [`Hub`]: crate::Hub
    pub fn start_on(
        hub: &crate::Hub,
        tenant: Tenant,
        options: LuccaOptions,
    ) -> Result<Self, SandboxError> {
        Self::start_with(tenant, options, |h| server::Server::start_on(hub, h))
    }

    fn start_with(
        tenant: Tenant,
        options: LuccaOptions,
        serve: impl FnOnce(Arc<server::Handler>) -> Result<server::Server, SandboxError>,
    ) -> Result<Self, SandboxError> {
        let shared = Arc::new(Shared {
            clock: SimClock::new(options.time_scale),
            options,
            tenant: Mutex::new(tenant),
            limiter: Mutex::new(ratelimit::Limiter::default()),
            log: Mutex::new(RequestLog::default()),
            seq: AtomicU64::new(0),
            base_url: OnceLock::new(),
        });
        let handler_state = shared.clone();
        let server = serve(Arc::new(move |r: &Request| handler_state.handle(r)))?;
        let _ = shared
            .base_url
            .set(format!("http://127.0.0.1:{}", server.port()));
        Ok(LuccaSim { shared, server })
    }

    /// `http://127.0.0.1:PORT`, the connector's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// The first configured key.
    pub fn api_key(&self) -> &str {
        self.shared
            .options
            .keys
            .first()
            .map_or("", |k| k.key.as_str())
    }

    /// A snapshot of the tenant.
    pub fn tenant(&self) -> Tenant {
        lock(&self.shared.tenant).clone()
    }

    /// Reads or changes the tenant (a hire, a leaver, a rename…) between requests.
    pub fn with_tenant<R>(&self, f: impl FnOnce(&mut Tenant) -> R) -> R {
        f(&mut lock(&self.shared.tenant))
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

    /// Forgets the requests served so far (e.g. between two syncs of an end-to-end test);
    /// the rate limiter's window is not reset.
    pub fn clear_request_log(&self) {
        lock(&self.shared.log).records.clear();
    }

    /// The simulated clock.
    pub fn clock(&self) -> SimClock {
        self.shared.clock
    }

    /// The simulated date-time now (`YYYY-MM-DDTHH:MM:SS`): the tenant's epoch plus the
    /// simulated time elapsed. Decides who is a former employee and stamps `modifiedAt`.
    pub fn now(&self) -> String {
        self.shared.now()
    }
}

impl Shared {
    fn now(&self) -> String {
        let epoch = datetime::parse(&lock(&self.tenant).epoch).unwrap_or(0);
        datetime::format(epoch + self.clock.now() as i64)
    }

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
            return ApiError::new(413, "Request entity too large").into_response();
        }
        if let Some(limit) = &self.options.rate_limit
            && let Err(retry_after) = lock(&self.limiter).try_acquire(limit, at)
        {
            let mut r = ApiError::new(
                429,
                "Too many requests: 50 requests per 60 seconds per tenant",
            )
            .into_response();
            r.headers
                .push(("Retry-After".into(), retry_after.to_string()));
            return r;
        }
        let extra = match fault {
            Some(FaultKind::Latency(d)) => *d,
            _ => Duration::ZERO,
        };
        let duration = self.options.jitter.latency(self.options.latency, seq) + extra;
        if duration > self.options.request_timeout {
            self.clock.sleep(self.options.request_timeout);
            return ApiError::new(408, "Request timeout").into_response();
        }
        if !duration.is_zero() {
            self.clock.sleep(duration);
        }
        if fault == Some(&FaultKind::ServerError) {
            return ApiError::new(500, "Internal server error (injected)").into_response();
        }
        let response = match self.route(request) {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        match fault {
            Some(FaultKind::MalformedJson) if response.status == 200 => faults::malform(response),
            Some(FaultKind::TruncatedPage) if response.status == 200 => {
                faults::truncate_page(response)
            }
            _ => response,
        }
    }

    fn route(&self, request: &Request) -> Result<Response, ApiError> {
        let key = auth::authenticate(request, &self.options.keys)?;
        let (path, raw_query) = request.url.split_once('?').unwrap_or((&request.url, ""));
        let query = query::Query::parse(raw_query)?;
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let ctx = Ctx {
            key,
            now: self.now(),
            base_url: self.base_url.get().cloned().unwrap_or_default(),
        };
        let method = request.method.as_str();
        match (method, segments.as_slice()) {
            ("GET", ["api", "v3", "users"]) => {
                users::list(&ctx, &lock(&self.tenant), &query).map(|v| Response::json(200, &v))
            }
            ("GET", ["api", "v3", "users", id]) => {
                users::get(&ctx, &lock(&self.tenant), parse_id(id)?, &query)
                    .map(|v| Response::json(200, &v))
            }
            ("POST", ["api", "v3", "users"]) => {
                users::create(&ctx, &mut lock(&self.tenant), &query, &request.body)
                    .map(|v| Response::json(200, &v))
            }
            ("PUT", ["api", "v3", "users", id]) => {
                users::update(&ctx, &mut lock(&self.tenant), parse_id(id)?, &request.body)
                    .map(|v| Response::json(200, &v))
            }
            ("GET", ["api", "v3", "extensionuserdefinitions"]) => {
                auth::require(key, &[Permission::HrFileCustomData])?;
                Ok(Response::json(
                    200,
                    &ctx.envelope(json!({"items": extended::definitions(&lock(&self.tenant))})),
                ))
            }
            ("GET", ["api", "v3", "roles"]) => {
                auth::require(key, &[Permission::ManageUsers])?;
                Ok(Response::json(
                    200,
                    &ctx.envelope(json!({"items": org::roles(&lock(&self.tenant))})),
                ))
            }
            ("GET", ["organization", "structure", "api", "departments"]) => {
                auth::require(key, &[Permission::OrganizationStructure])?;
                org::departments(&lock(&self.tenant), path, &query).map(|v| Response::json(200, &v))
            }
            ("GET", ["organization", "structure", "api", "establishments"]) => {
                auth::require(key, &[Permission::OrganizationStructure])?;
                org::establishments(&lock(&self.tenant), path, &query)
                    .map(|v| Response::json(200, &v))
            }
            (_, ["api", "v3", "users", ..])
            | (_, ["api", "v3", "extensionuserdefinitions"])
            | (_, ["api", "v3", "roles"])
            | (_, ["organization", "structure", "api", ..]) => Err(ApiError::new(
                405,
                format!("{method} is not allowed on {path}"),
            )),
            _ => Err(ApiError::new(404, format!("no route {path}"))),
        }
    }
}

/// What a route needs to know about the request besides its query and body.
pub(crate) struct Ctx<'k> {
    pub key: &'k ApiKey,
    /// Simulated now, Lucca-formatted.
    pub now: String,
    pub base_url: String,
}

impl Ctx<'_> {
    /// The v3 envelope around `data`.
    pub fn envelope(&self, data: Value) -> Value {
        json!({
            "header": {"generated": self.now, "principal": self.key.name, "processId": 0},
            "data": data,
        })
    }
}

fn parse_id(s: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad(format!("'{s}' is not a user id")))
}
