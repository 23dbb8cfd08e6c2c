//! [`Outbound`]: the checks, in order, then the HTTP call through ureq.
//!
//! Order matters: everything that can be decided without the network (plugin known, URL well
//! formed, origin granted, IP literal acceptable, headers acceptable, credential slot known) is
//! decided first, so a denied request causes no DNS lookup and no connection. Then the token
//! bucket (this process's, then the budget shared with other processes, if one is set:
//! [`crate::shared`]), then the call, whose resolver refuses bad addresses before connecting.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ureq::Agent;
use ureq::http::{self, HeaderName, HeaderValue, Method};
use url::Url;

use crate::addr::{CheckingResolver, Refused, refusal};
use crate::allow::{HostPattern, is_loopback_url};
use crate::clock::{Clock, SystemClock};
use crate::credentials::{self, Credential, CredentialSlot, Secret};
use crate::error::OutboundError;
use crate::policy::{PluginPolicy, Policy, PolicyError, declared_limit};
use crate::ratelimit::{Limiter, RateLimit};
use crate::redact::Redactor;
use crate::retry::{is_idempotent, parse_retry_after, status_is_retryable};
use crate::shared::{SharedAdmission, SharedLimiter};
use crate::{Request, Response};

/// Methods a connector may use.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// A plugin's grant, prepared once: the effective allow-list and slot → (slot, secret).
#[derive(Debug)]
struct Grant {
    hosts: Vec<HostPattern>,
    /// This plugin may connect to loopback (its own `allow_loopback`, or the policy's).
    allow_loopback: bool,
    slots: HashMap<String, (CredentialSlot, Option<Credential>)>,
    /// The plugin's declared vendor limits ([`PluginPolicy::rate_limits`]).
    rate_limits: Vec<(HostPattern, RateLimit)>,
}

#[derive(Debug)]
struct State {
    policy: Arc<Policy>,
    grants: HashMap<String, Arc<Grant>>,
    redactor: Redactor,
}

impl State {
    fn build(policy: Policy) -> Result<Self, PolicyError> {
        let mut grants = HashMap::new();
        let mut secrets: Vec<Secret> = Vec::new();
        for (name, p) in &policy.plugins {
            p.validate(name)?;
            grants.insert(
                name.clone(),
                Arc::new(prepare(p, policy.allow_loopback || p.allow_loopback)),
            );
            secrets.extend(p.credentials.iter().map(|c| c.secret.clone()));
        }
        Ok(Self {
            redactor: Redactor::new(&secrets),
            policy: Arc::new(policy),
            grants,
        })
    }
}

impl Grant {
    /// The plugin's declared limit for `url` ([`PluginPolicy::rate_limits`]): a loopback
    /// URL it may reach is a stand-in for its vendor.
    fn rate_limit_for(&self, url: &Url) -> Option<RateLimit> {
        let stand_in = self.allow_loopback && is_loopback_url(url);
        declared_limit(&self.rate_limits, url, stand_in)
    }
}

fn prepare(p: &PluginPolicy, allow_loopback: bool) -> Grant {
    let slots = p
        .slots
        .iter()
        .map(|s| {
            let cred = p.credentials.iter().find(|c| c.slot == s.name).cloned();
            (s.name.clone(), (s.clone(), cred))
        })
        .collect();
    Grant {
        hosts: p.effective_hosts(),
        allow_loopback,
        slots,
        rate_limits: p.rate_limits.clone(),
    }
}

/// The outbound HTTP capability shared by every plugin instance of a host.
///
/// Cheap to share (`Arc<Outbound>`), `Send + Sync`; `send` blocks the calling thread (the
/// runtime calls it from the host function of the `http` import).
#[derive(Debug)]
pub struct Outbound {
    state: RwLock<State>,
    /// Connects to public addresses only.
    agent: Agent,
    /// Also connects to loopback: used only for plugins whose grant allows it.
    loopback_agent: Agent,
    limiter: Limiter,
    /// The budget shared with other processes, taken from right before each rate-limited
    /// request is sent ([`crate::shared`]); `None`: this process's limiter alone.
    shared: RwLock<Option<Arc<dyn SharedLimiter>>>,
    clock: Arc<dyn Clock>,
    /// Time spent waiting for rate limits, per plugin (connection) name:
    /// for a token of the host's limiter, and for a 429's `Retry-After`.
    waits: Mutex<BTreeMap<String, Duration>>,
}

impl Outbound {
    /// An `Outbound` enforcing `policy`, on the real clock.
    pub fn new(policy: Policy) -> Result<Self, PolicyError> {
        Self::with_clock(policy, Arc::new(SystemClock::default()))
    }

    /// As [`Outbound::new`], with rate-limit waits and retry back-offs on `clock`.
    pub fn with_clock(policy: Policy, clock: Arc<dyn Clock>) -> Result<Self, PolicyError> {
        let agent = build_agent(&policy, policy.allow_loopback);
        let loopback_agent = build_agent(&policy, true);
        Ok(Self {
            state: RwLock::new(State::build(policy)?),
            agent,
            loopback_agent,
            limiter: Limiter::default(),
            shared: RwLock::new(None),
            clock,
            waits: Mutex::new(BTreeMap::new()),
        })
    }

    /// Adds or replaces one plugin's grant (e.g. when a plugin is loaded after start-up).
    /// Global policy (loopback, timeouts, size cap) stay as they were at construction.
    pub fn set_plugin(&self, name: &str, plugin: PluginPolicy) -> Result<(), PolicyError> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut policy = (*state.policy).clone();
        policy.plugins.insert(name.to_owned(), plugin);
        *state = State::build(policy)?;
        Ok(())
    }

    /// Paces the upstreams matching `pattern` at `limit` (a plugin's
    /// declared vendor limit, registered when the plugin is connected). A
    /// pattern that already has a limit keeps it: every connection to one
    /// vendor shares one bucket per upstream, whoever declared it first.
    pub fn add_rate_limit(
        &self,
        pattern: HostPattern,
        limit: RateLimit,
    ) -> Result<(), PolicyError> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.policy.rate_limits.iter().any(|(p, _)| *p == pattern) {
            return Ok(());
        }
        let mut policy = (*state.policy).clone();
        policy.rate_limits.push((pattern, limit));
        *state = State::build(policy)?;
        Ok(())
    }

    /// Makes every rate-limited request also take from `shared`, the budget this process
    /// shares with others for the same origins (`None`: this process's limiter alone). See
    /// [`crate::shared`]; the host sets it when its state is PostgreSQL.
    pub fn set_shared_limiter(&self, shared: Option<Arc<dyn SharedLimiter>>) {
        *self.shared.write().unwrap_or_else(|e| e.into_inner()) = shared;
    }

    /// The shared budget, if one is set ([`Outbound::set_shared_limiter`]).
    pub fn shared_limiter(&self) -> Option<Arc<dyn SharedLimiter>> {
        self.shared
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How long requests waited for rate limits so far, per plugin
    /// (connection) name — for a token of the host's limiter, and for a
    /// 429's `Retry-After` — on this client's clock (for `/metrics`).
    pub fn rate_limit_waits(&self) -> BTreeMap<String, Duration> {
        self.waits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn add_wait(&self, plugin: &str, waited: Duration) {
        if waited.is_zero() {
            return;
        }
        let mut waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        *waits.entry(plugin.to_owned()).or_default() += waited;
    }

    /// The host-wide rate limit that applies to `url`, if any (for display and tests); a
    /// plugin's own declared limits are [`Outbound::rate_limit_of`].
    pub fn rate_limit_for(&self, url: &str) -> Option<RateLimit> {
        let url = Url::parse(url).ok()?;
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.policy.rate_limit_for(&url)
    }

    /// The rate limit `plugin`'s requests to `url` are paced at: its grant's declared limit
    /// (also for a loopback stand-in), else the host-wide one. For display and tests.
    pub fn rate_limit_of(&self, plugin: &str, url: &str) -> Option<RateLimit> {
        let url = Url::parse(url).ok()?;
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .grants
            .get(plugin)
            .and_then(|g| g.rate_limit_for(&url))
            .or_else(|| state.policy.rate_limit_for(&url))
    }

    /// Whether `plugin` may connect to loopback, for display (`muster check`).
    pub fn allows_loopback(&self, plugin: &str) -> bool {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.grants.get(plugin).is_some_and(|g| g.allow_loopback)
    }

    /// The effective allow-list of a plugin (manifest ∩ tenant), for display.
    pub fn effective_hosts(&self, plugin: &str) -> Vec<HostPattern> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .grants
            .get(plugin)
            .map(|g| g.hosts.clone())
            .unwrap_or_default()
    }

    /// Redacts every configured secret from `text` — for callers (the runtime's log host
    /// module, for one) that print things a plugin produced.
    pub fn redact(&self, text: &str) -> String {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.redactor.redact(text)
    }

    /// Checks `req` against `plugin`'s grant, then sends it (rate-limited, with retries).
    ///
    /// Any HTTP status is a `Response`, including 3xx (never followed) and, after the last
    /// attempt, 429 and 5xx. Every configured secret an upstream echoes (in a header or the
    /// body) is replaced with `***` before the response is returned, so a plugin never holds
    /// a secret even when a debug endpoint reflects the `Authorization` header.
    pub fn send(&self, plugin: &str, req: Request) -> Result<Response, OutboundError> {
        let (grant, redactor, policy) = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            (
                state.grants.get(plugin).cloned(),
                state.redactor.clone(),
                Arc::clone(&state.policy),
            )
        };
        let ctx = Ctx {
            plugin,
            method: redactor.redact(&truncate(&req.method, 16)),
            url: redactor.url(&truncate(&req.url, 2048)),
            redactor: &redactor,
        };
        let Some(grant) = grant else {
            return Err(ctx.denied("unknown plugin (no grant)"));
        };
        let checked = check(&ctx, &grant, &policy, req)?;
        tracing::debug!(
            plugin,
            method = %ctx.method,
            url = %ctx.url,
            credential_header = checked.auth.as_ref().map(|(h, _)| h.as_str()),
            "outbound: request allowed"
        );
        let mut resp = self.run(&ctx, &policy, &checked)?;
        redactor.redact_response(&mut resp);
        Ok(resp)
    }

    fn run(
        &self,
        ctx: &Ctx<'_>,
        policy: &Policy,
        req: &Checked,
    ) -> Result<Response, OutboundError> {
        let retry = &policy.retry;
        let max_attempts = retry.max_attempts.max(1);
        let mut attempt = 1u32;
        let mut waited = Duration::ZERO;
        loop {
            // Also honours an upstream's earlier 429 when no limit is configured.
            let asked = self.clock.now();
            let admitted = self
                .limiter
                .acquire(
                    &req.upstream,
                    req.rate_limit,
                    &*self.clock,
                    policy.max_rate_limit_wait,
                )
                .map_err(|retry_after| {
                    tracing::info!(
                        plugin = ctx.plugin,
                        url = %ctx.url,
                        "outbound: host rate limit"
                    );
                    ctx.rate_limited(retry_after)
                });
            let admitted = admitted.and_then(|()| self.take_shared(ctx, policy, req));
            self.add_wait(ctx.plugin, self.clock.now().saturating_sub(asked));
            admitted?;
            let agent = if req.allow_loopback {
                &self.loopback_agent
            } else {
                &self.agent
            };
            let outcome = exchange(agent, req, policy.max_response_bytes);
            let (wait, from_server) = match &outcome {
                Ok(resp) if status_is_retryable(resp.status, req.method.as_str()) => {
                    let ra = header(&resp.headers, "retry-after")
                        .and_then(|v| parse_retry_after(v, self.clock.wall()));
                    if resp.status == 429
                        && let Some(ra) = ra
                    {
                        // Everyone going to this upstream waits, not just this request.
                        self.limiter
                            .block_until(&req.upstream, self.clock.now() + ra);
                        self.hold_shared(ctx, req, ra);
                    }
                    match ra {
                        Some(ra) => (Some(ra), true),
                        None => (Some(retry.backoff(attempt)), false),
                    }
                }
                Err(Failure::Transient(_) | Failure::Timeout(_))
                    if is_idempotent(req.method.as_str()) =>
                {
                    (Some(retry.backoff(attempt)), false)
                }
                _ => (None, false),
            };
            let status = outcome.as_ref().ok().map(|r| r.status);
            match wait {
                Some(w)
                    if attempt < max_attempts
                        && w <= retry.max_delay
                        && waited + w <= retry.max_total_wait =>
                {
                    tracing::info!(
                        plugin = ctx.plugin,
                        method = %ctx.method,
                        url = %ctx.url,
                        attempt,
                        status,
                        wait_ms = w.as_millis() as u64,
                        retry_after = from_server,
                        "outbound: retrying"
                    );
                    self.clock.sleep(w);
                    if status == Some(429) {
                        self.add_wait(ctx.plugin, w);
                    }
                    waited += w;
                    attempt += 1;
                }
                _ => {
                    tracing::debug!(
                        plugin = ctx.plugin,
                        method = %ctx.method,
                        url = %ctx.url,
                        attempt,
                        status,
                        "outbound: done"
                    );
                    return outcome.map_err(|f| ctx.failure(f));
                }
            }
        }
    }
}

impl Outbound {
    /// Takes one request from the shared budget of `req`'s origin, waiting while it is spent
    /// (at most [`Policy::max_rate_limit_wait`]); nothing to do without a shared budget or a
    /// limit. Called last before the exchange, so the time the budget records is the time the
    /// request leaves.
    fn take_shared(
        &self,
        ctx: &Ctx<'_>,
        policy: &Policy,
        req: &Checked,
    ) -> Result<(), OutboundError> {
        let (Some(shared), Some(limit)) = (self.shared_limiter(), req.rate_limit) else {
            return Ok(());
        };
        let start = self.clock.now();
        loop {
            let wait = match shared.try_acquire(&req.upstream, limit) {
                Ok(SharedAdmission::Go) => return Ok(()),
                Ok(SharedAdmission::Wait(d)) => d,
                Err(source) => {
                    tracing::warn!(
                        plugin = ctx.plugin,
                        url = %ctx.url,
                        error = %source,
                        "outbound: shared rate-limit budget unavailable, request not sent"
                    );
                    return Err(ctx.budget_unavailable(source));
                }
            };
            let waited = self.clock.now().saturating_sub(start);
            if waited + wait > policy.max_rate_limit_wait {
                tracing::info!(
                    plugin = ctx.plugin,
                    url = %ctx.url,
                    "outbound: shared rate limit"
                );
                return Err(ctx.rate_limited(wait));
            }
            tracing::debug!(
                upstream = %req.upstream,
                wait_ms = wait.as_millis() as u64,
                "shared rate limit: waiting"
            );
            self.clock.sleep(wait);
        }
    }
}

impl Outbound {
    /// Tells the shared budget, if any, that the vendor asked for `wait` (a 429's
    /// `Retry-After`), so other processes back off too. A budget that cannot be written is
    /// logged, not fatal: this process backs off anyway, and the next request's acquisition
    /// fails if the budget is still unreadable.
    fn hold_shared(&self, ctx: &Ctx<'_>, req: &Checked, wait: Duration) {
        let (Some(shared), Some(limit)) = (self.shared_limiter(), req.rate_limit) else {
            return;
        };
        if let Err(e) = shared.hold(&req.upstream, limit, wait) {
            tracing::warn!(
                plugin = ctx.plugin,
                url = %ctx.url,
                error = %ctx.redactor.redact(&e.to_string()),
                "outbound: could not share a 429's back-off"
            );
        }
    }
}

/// One HTTP exchange.
fn exchange(agent: &Agent, req: &Checked, max_bytes: u64) -> Result<Response, Failure> {
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(req.url.as_str());
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    if let Some((name, value)) = &req.auth {
        let mut v = HeaderValue::from_str(value.expose())
            .map_err(|_| Failure::Fatal("credential does not form a valid header value".into()))?;
        v.set_sensitive(true);
        builder = builder.header(name, v);
    }
    let result = if req.body.is_empty() {
        builder
            .body(())
            .map_err(|e| Failure::Fatal(e.to_string()))
            .and_then(|r| agent.run(r).map_err(Failure::from))
    } else {
        builder
            .body(req.body.as_slice())
            .map_err(|e| Failure::Fatal(e.to_string()))
            .and_then(|r| agent.run(r).map_err(Failure::from))
    };
    let resp = result?;
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    // A HEAD response's Content-Length describes the body a GET would get, not this one.
    if req.method != Method::HEAD
        && header(&headers, "content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > max_bytes)
    {
        return Err(Failure::TooLarge(max_bytes));
    }
    let mut body = resp.into_body();
    let body = body
        .with_config()
        .limit(max_bytes)
        .read_to_vec()
        .map_err(Failure::from)?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The agent: no redirects, statuses are responses, no proxy from the environment (a proxy
/// would be resolved and connected to instead of the checked address), our resolver.
fn build_agent(policy: &Policy, allow_loopback: bool) -> Agent {
    let t = Some(policy.read_timeout);
    let config = Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .https_only(false)
        .user_agent(concat!("muster/", env!("CARGO_PKG_VERSION")))
        .timeout_resolve(Some(policy.connect_timeout))
        .timeout_connect(Some(policy.connect_timeout))
        .timeout_send_request(t)
        .timeout_send_body(t)
        .timeout_recv_response(t)
        .timeout_recv_body(t)
        .build();
    Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        CheckingResolver::new(allow_loopback),
    )
}

/// A request that passed every static check.
struct Checked {
    method: Method,
    url: Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The injected credential header, kept apart from `headers` so it is never logged.
    auth: Option<(String, Secret)>,
    body: Vec<u8>,
    /// `scheme://host:port`, the token-bucket key.
    upstream: String,
    rate_limit: Option<crate::RateLimit>,
    /// Connect through the agent whose resolver accepts loopback.
    allow_loopback: bool,
}

fn check(
    ctx: &Ctx<'_>,
    grant: &Grant,
    policy: &Policy,
    req: Request,
) -> Result<Checked, OutboundError> {
    let method_upper = req.method.to_ascii_uppercase();
    if !METHODS.contains(&method_upper.as_str()) {
        return Err(ctx.invalid("unsupported method"));
    }
    let method = Method::from_bytes(method_upper.as_bytes())
        .map_err(|_| ctx.invalid("unsupported method"))?;

    let mut url = Url::parse(&req.url).map_err(|e| ctx.invalid(format!("bad URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ctx.denied("only http and https are allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ctx.invalid("user info in URLs is not allowed; use a credential slot"));
    }
    url.set_fragment(None);
    if !grant.hosts.iter().any(|p| p.matches(&url)) {
        tracing::warn!(
            plugin = ctx.plugin,
            url = %ctx.url,
            "outbound: denied, not in allow-list"
        );
        return Err(ctx.denied("origin not in the plugin's allow-list (manifest ∩ tenant config)"));
    }
    if url.scheme() == "http" && !is_loopback_url(&url) {
        return Err(ctx.denied("plain http:// is only allowed to loopback; use https://"));
    }
    // An IP literal is judged here, before any socket exists; names are judged by the resolver.
    let literal: Option<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal
        && let Some(reason) = refusal(ip, grant.allow_loopback)
    {
        tracing::warn!(
            plugin = ctx.plugin,
            url = %ctx.url,
            %ip,
            reason,
            "outbound: address refused"
        );
        return Err(ctx.refused(ip, reason));
    }

    let mut raw_headers = req.headers;
    let auth = match &req.credential {
        None => None,
        Some(slot) => {
            let (slot, cred) = grant
                .slots
                .get(slot)
                .ok_or_else(|| ctx.invalid(format!("unknown credential slot {slot:?}")))?;
            let cred = cred.as_ref().ok_or_else(|| {
                ctx.invalid(format!(
                    "no secret configured for credential slot {:?}",
                    slot.name
                ))
            })?;
            Some(
                credentials::inject(&mut raw_headers, slot, cred)
                    .map_err(|why| ctx.invalid(why))?,
            )
        }
    };
    let mut headers = Vec::with_capacity(raw_headers.len());
    for (name, value) in raw_headers {
        let lname = name.to_ascii_lowercase();
        if credentials::is_connection_header(&lname) {
            return Err(ctx.invalid(format!("header {lname:?} is set by the host")));
        }
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ctx.invalid(format!("invalid header name {:?}", truncate(&name, 64))))?;
        // Never echo a header value: it may hold anything.
        let v = HeaderValue::from_str(&value)
            .map_err(|_| ctx.invalid(format!("invalid value for header {lname:?}")))?;
        headers.push((n, v));
    }

    let upstream = format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    );
    // The plugin's own declared limit first (also for its loopback stand-ins), then the
    // host's.
    let rate_limit = grant
        .rate_limit_for(&url)
        .or_else(|| policy.rate_limit_for(&url));
    Ok(Checked {
        method,
        url,
        headers,
        auth,
        body: req.body,
        upstream,
        rate_limit,
        allow_loopback: grant.allow_loopback,
    })
}

/// What went wrong in one exchange, before it becomes an [`OutboundError`] with context.
#[derive(Debug)]
enum Failure {
    Refused(IpAddr, &'static str),
    Timeout(String),
    TooLarge(u64),
    /// Worth retrying for idempotent methods (connection refused/reset, …).
    Transient(String),
    Fatal(String),
}

impl From<ureq::Error> for Failure {
    fn from(e: ureq::Error) -> Self {
        if let Some((ip, reason)) = Refused::from_ureq(&e) {
            return Self::Refused(ip, reason);
        }
        match e {
            ureq::Error::Timeout(t) => Self::Timeout(t.to_string()),
            ureq::Error::BodyExceedsLimit(n) => Self::TooLarge(n),
            ureq::Error::Io(io) => Self::Transient(io.to_string()),
            ureq::Error::ConnectionFailed => Self::Transient("connection failed".into()),
            ureq::Error::HostNotFound => Self::Fatal("host not found".into()),
            other => Self::Fatal(other.to_string()),
        }
    }
}

/// Error context: everything in it is already redacted.
struct Ctx<'a> {
    plugin: &'a str,
    method: String,
    url: String,
    redactor: &'a Redactor,
}

impl Ctx<'_> {
    fn denied(&self, reason: impl Into<String>) -> OutboundError {
        OutboundError::Denied {
            plugin: self.plugin.to_owned(),
            method: self.method.clone(),
            url: self.url.clone(),
            reason: self.redactor.redact(&reason.into()),
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> OutboundError {
        OutboundError::Invalid {
            plugin: self.plugin.to_owned(),
            method: self.method.clone(),
            url: self.url.clone(),
            reason: self.redactor.redact(&reason.into()),
        }
    }

    fn refused(&self, addr: IpAddr, reason: &'static str) -> OutboundError {
        OutboundError::AddressRefused {
            plugin: self.plugin.to_owned(),
            method: self.method.clone(),
            url: self.url.clone(),
            addr,
            reason,
        }
    }

    fn rate_limited(&self, retry_after: Duration) -> OutboundError {
        OutboundError::RateLimited {
            plugin: self.plugin.to_owned(),
            method: self.method.clone(),
            url: self.url.clone(),
            retry_after,
        }
    }

    fn budget_unavailable(&self, source: crate::SharedLimitError) -> OutboundError {
        OutboundError::BudgetUnavailable {
            plugin: self.plugin.to_owned(),
            method: self.method.clone(),
            url: self.url.clone(),
            source: Box::new(crate::SharedLimitError {
                detail: self.redactor.redact(&source.detail),
                ..source
            }),
        }
    }

    fn failure(&self, f: Failure) -> OutboundError {
        let (plugin, method, url) = (
            self.plugin.to_owned(),
            self.method.clone(),
            self.url.clone(),
        );
        match f {
            Failure::Refused(addr, reason) => {
                tracing::warn!(plugin, url = %url, %addr, reason, "outbound: address refused");
                OutboundError::AddressRefused {
                    plugin,
                    method,
                    url,
                    addr,
                    reason,
                }
            }
            Failure::TooLarge(limit) => OutboundError::TooLarge {
                plugin,
                method,
                url,
                limit,
            },
            Failure::Timeout(d) => OutboundError::Timeout {
                plugin,
                method,
                url,
                detail: self.redactor.redact(&d),
            },
            Failure::Transient(d) | Failure::Fatal(d) => OutboundError::Transport {
                plugin,
                method,
                url,
                detail: self.redactor.redact(&d),
            },
        }
    }
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
