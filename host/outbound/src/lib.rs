//! # muster-outbound — a plugin's HTTP, checked in one place
//!
//! A connector plugin runs in a WebAssembly sandbox whose only way out is the imported
//! `http.send(request)`. The runtime's `http` host module hands every such request to
//! [`Outbound::send`], which is the single place where outbound traffic is decided — the same
//! shape as Fermyon Spin's `factor-outbound-networking` (allowed hosts, checked once) feeding
//! `factor-outbound-http` (the client that sends).
//!
//! ## What happens to a request, in order
//!
//! 1. **Grant** ([`allow`]): the plugin must be known, the URL `http(s)` with no user info, and
//!    its scheme + host + port inside the plugin's effective allow-list — the intersection of
//!    the patterns its manifest declares and those the tenant config grants
//!    ([`HostPattern`], `https://*.ilucca.net`). Deny by default; a denial is
//!    [`OutboundError::Denied`] and touches no network.
//! 2. **Addresses** ([`addr`], Spin's `BlockedNetworks` with private networks blocked): an
//!    IP-literal host is judged immediately; a name is judged by a resolver wrapper *after*
//!    DNS, and ureq connects to exactly the addresses that resolver returned (no second lookup,
//!    so no DNS-rebinding gap). Private, CGNAT, link-local, unspecified, multicast and
//!    cloud-metadata addresses are refused; loopback only for a plugin whose own grant says
//!    so ([`PluginPolicy::allow_loopback`], the connection's `allow_loopback`) — one
//!    connection pointed at the local sandbox never opens loopback to the others. Plain
//!    `http://` goes to loopback only (a loopback IP literal or `localhost`).
//! 3. **Headers and credentials** ([`credentials`]): connection-level headers and `Host` are
//!    refused; if the request names a credential slot, the host renders the slot's template
//!    (`lucca application={secret}`) and sets the header, overwriting any guest copy. The plugin
//!    names slots, never holds secrets. Because this comes after step 1, a secret only ever
//!    travels to an origin of its own plugin's grant; a slot whose header would steer the
//!    request (`Host`, `Cookie`, framing, `Proxy-*`) is refused when the grant is registered
//!    ([`PolicyError::SteeringSlotHeader`]).
//! 4. **Rate limit** ([`ratelimit`]): a token bucket per upstream origin (Lucca: 50 / 60 s per
//!    tenant), shaped so that no window of the configured length ever sees more requests than
//!    the limit. A request waits for a token up to [`Policy::max_rate_limit_wait`]. The limit
//!    comes from the plugin's grant ([`PluginPolicy::rate_limits`], which also paces its
//!    loopback stand-ins), else from [`Policy::rate_limits`]. A 429 with `Retry-After` holds
//!    back every request to that origin. With a shared budget
//!    ([`Outbound::set_shared_limiter`], [`shared`]: the PostgreSQL state's bucket when several
//!    processes share a tenant), the request then takes one request from the budget every
//!    process shares for that origin, right before it is sent; a budget that cannot be read
//!    fails the request, unsent ([`OutboundError::BudgetUnavailable`]).
//! 5. **Send** (ureq 3 + rustls): no automatic redirects (a 3xx is returned; the plugin may
//!    follow it with a new request, which is checked again), no proxy from the environment,
//!    connect/read timeouts, a response-size cap ([`OutboundError::TooLarge`]).
//! 6. **Retry** ([`retry`]): 429 always, 5xx/timeouts/connection errors only for idempotent
//!    methods; jittered exponential back-off or the server's `Retry-After`; bounded attempts
//!    and total wait. The last response (a 429 included) goes back to the plugin, with every
//!    configured secret an upstream echoed replaced by `***` ([`redact::Redactor`]).
//!
//! ## Example
//!
//! ```no_run
//! use muster_outbound::*;
//!
//! let lucca = PluginPolicy {
//!     manifest_hosts: vec![HostPattern::parse("https://*.ilucca.net").unwrap()],
//!     tenant_hosts: vec![HostPattern::parse("https://acme.ilucca.net").unwrap()],
//!     slots: vec![CredentialSlot::new("lucca", "Authorization", "lucca application={secret}")],
//!     credentials: vec![Credential::new("lucca", "the-api-key-from-host-config")],
//!     local_hosts: vec![],
//!     allow_loopback: false,
//!     // The vendor's limit, as the plugin declares it: one bucket per tenant origin, even
//!     // though one pattern covers them all.
//!     rate_limits: vec![(HostPattern::parse("https://*.ilucca.net").unwrap(), RateLimit::LUCCA)],
//! };
//! let policy = Policy::default().with_plugin("lucca", lucca);
//! let outbound = Outbound::new(policy).unwrap();
//! let resp = outbound.send(
//!     "lucca",
//!     Request::new("GET", "https://acme.ilucca.net/api/v3/users?fields=id,mail").credential("lucca"),
//! );
//! ```
//!
//! ## Secrets
//!
//! A secret lives in a [`credentials::Secret`] (prints `***`, zeroed on drop). Every error
//! message and log line built here goes through one [`redact::Redactor`] that knows all
//! configured secrets (and their URL-encoded forms), and header values are never logged.
//!
//! ## Time
//!
//! Waits go through a [`clock::Clock`]; [`Outbound::with_clock`] with a [`clock::ManualClock`]
//! lets tests check "50 per 60 s" or `Retry-After: 120` without waiting.

pub mod addr;
pub mod allow;
mod client;
pub mod clock;
pub mod credentials;
mod error;
mod policy;
pub mod ratelimit;
pub mod redact;
pub mod retry;
pub mod shared;

pub use allow::{HostPattern, PatternError};
pub use client::Outbound;
pub use credentials::{Credential, CredentialSlot, Secret};
pub use error::{OutboundError, short_url};
pub use policy::{PluginPolicy, Policy, PolicyError};
pub use ratelimit::RateLimit;
pub use retry::RetryPolicy;
pub use shared::{SharedAdmission, SharedLimitError, SharedLimiter};

/// An HTTP request as handed over by a plugin through the `http.send` import.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS` (case-insensitive).
    pub method: String,
    /// Absolute `http(s)` URL.
    pub url: String,
    /// Header names and values; connection headers and `Host` are refused.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Name of a credential slot declared in the plugin's manifest — never a secret.
    pub credential: Option<String>,
}

impl Request {
    /// A request without headers, body or credential.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            ..Self::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Names the credential slot whose header the host injects.
    pub fn credential(mut self, slot: impl Into<String>) -> Self {
        self.credential = Some(slot.into());
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// An HTTP response handed back to the plugin: any status, including 3xx and 4xx/5xx.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub status: u16,
    /// Header names (lower-case) and values (lossily decoded as UTF-8).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
