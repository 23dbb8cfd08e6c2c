//! What the host grants: per-plugin allow-lists and credentials, plus global caps.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::allow::{HostPattern, intersect_all};
use crate::credentials::{Credential, CredentialSlot};
use crate::ratelimit::RateLimit;
use crate::retry::RetryPolicy;

/// One plugin instance's grant: what its manifest asks for and what the tenant config allows.
#[derive(Debug, Clone, Default)]
pub struct PluginPolicy {
    /// Host patterns from the plugin manifest (what the plugin needs).
    pub manifest_hosts: Vec<HostPattern>,
    /// Host patterns from the tenant config (what this tenant grants to this plugin).
    pub tenant_hosts: Vec<HostPattern>,
    /// Credential slots from the plugin manifest.
    pub slots: Vec<CredentialSlot>,
    /// Secrets from the host config, one per slot the tenant fills.
    pub credentials: Vec<Credential>,
    /// Loopback patterns the operator grants *in place of* the manifest's hosts, to point a
    /// connection at a local simulator (`muster-sandbox`) or test server. Only loopback
    /// patterns (`127.0.0.1`, `[::1]`, `localhost`) are accepted here, and the address check
    /// still refuses them unless [`Policy::allow_loopback`] is set: a production config that
    /// forgets to remove this grants nothing.
    pub local_hosts: Vec<HostPattern>,
}

impl PluginPolicy {
    /// The effective allow-list: manifest ∩ tenant config. Empty means "nothing".
    pub fn effective_hosts(&self) -> Vec<HostPattern> {
        let mut hosts = intersect_all(&self.manifest_hosts, &self.tenant_hosts);
        for local in &self.local_hosts {
            if !hosts.contains(local) {
                hosts.push(local.clone());
            }
        }
        hosts
    }

    /// Checks slots and credentials once, at registration.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.local_hosts.iter().find(|p| !p.is_loopback()) {
            return Err(format!(
                "local host {p}: only loopback hosts (127.0.0.1, [::1], localhost) can be granted \
                 in place of the manifest's hosts"
            ));
        }
        for s in &self.slots {
            s.validate()?;
        }
        for c in &self.credentials {
            c.validate()?;
            if !self.slots.iter().any(|s| s.name == c.slot) {
                return Err(format!(
                    "credential for slot {:?}: the manifest declares no such slot",
                    c.slot
                ));
            }
        }
        Ok(())
    }
}

/// Everything [`crate::Outbound`] enforces.
///
/// `Policy::default()` grants nothing, refuses loopback, caps responses at 16 MiB, times out
/// connects after 10 s and reads after 30 s, and retries per [`RetryPolicy::default`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Grants per plugin (instance) name, the name passed to [`crate::Outbound::send`].
    pub plugins: BTreeMap<String, PluginPolicy>,
    /// Allow connecting to 127.0.0.0/8 and ::1 (tests, the local sandbox). Every other
    /// special-purpose range stays refused.
    pub allow_loopback: bool,
    /// Response bodies larger than this fail with [`crate::OutboundError::TooLarge`].
    pub max_response_bytes: u64,
    /// DNS resolution and TCP/TLS connect, each.
    pub connect_timeout: Duration,
    /// Sending the request, receiving the response head, and receiving the body, each.
    pub read_timeout: Duration,
    /// Rate limits by pattern; the first pattern matching the request URL gives the limit.
    /// Buckets are still per upstream origin: `https://*.ilucca.net` → [`RateLimit::LUCCA`]
    /// gives every tenant its own 50 / 60 s, shared by all plugins talking to that tenant.
    pub rate_limits: Vec<(HostPattern, RateLimit)>,
    /// Limit for upstreams no `rate_limits` entry matches; `None` = unlimited.
    pub default_rate_limit: Option<RateLimit>,
    /// Longest a request waits for a token before failing with
    /// [`crate::OutboundError::RateLimited`].
    pub max_rate_limit_wait: Duration,
    pub retry: RetryPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            plugins: BTreeMap::new(),
            allow_loopback: false,
            max_response_bytes: 16 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            rate_limits: Vec::new(),
            default_rate_limit: None,
            max_rate_limit_wait: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

impl Policy {
    /// Adds (or replaces) a plugin's grant.
    pub fn with_plugin(mut self, name: impl Into<String>, plugin: PluginPolicy) -> Self {
        self.plugins.insert(name.into(), plugin);
        self
    }

    /// The rate limit for a URL, if any.
    pub(crate) fn rate_limit_for(&self, url: &url::Url) -> Option<RateLimit> {
        self.rate_limits
            .iter()
            .find(|(p, _)| p.matches(url))
            .map(|(_, l)| *l)
            .or(self.default_rate_limit)
    }
}
