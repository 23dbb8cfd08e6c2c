//! What the host grants: per-plugin allow-lists and credentials, plus global caps.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::allow::{HostPattern, intersect_all};
use crate::credentials::{Credential, CredentialSlot, steers_request};
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
    /// Let *this* plugin instance connect to loopback (127.0.0.0/8, ::1) — the operator's
    /// per-connection `allow_loopback`. It never widens another plugin's grant: each
    /// request is judged with its own plugin's flag (or the process-wide
    /// [`Policy::allow_loopback`]).
    pub allow_loopback: bool,
    /// The vendor's rate limits, as the plugin declares them: the first pattern matching a
    /// request's URL gives its limit (before [`Policy::rate_limits`]). A request to loopback
    /// that no pattern matches — a stand-in for the vendor granted by `local_hosts` or
    /// `allow_loopback` — is paced at the strictest of them: the stand-in plays the vendor,
    /// so a sandbox run is paced as a real one. Buckets stay per origin (scheme + host +
    /// port): two stand-ins on two ports never share one.
    pub rate_limits: Vec<(HostPattern, RateLimit)>,
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

    /// Checks hosts, slots and credentials once, at registration (when the plugin loads), so
    /// a bad grant fails before any request rather than on each one.
    pub(crate) fn validate(&self, plugin: &str) -> Result<(), PolicyError> {
        let invalid = |reason: String| PolicyError::Invalid {
            plugin: plugin.to_owned(),
            reason,
        };
        if let Some(p) = self.local_hosts.iter().find(|p| !p.is_loopback()) {
            return Err(invalid(format!(
                "local host {p}: only loopback hosts (127.0.0.1, [::1], localhost) can be granted \
                 in place of the manifest's hosts"
            )));
        }
        if let Some(p) = self
            .tenant_hosts
            .iter()
            .find(|p| p.is_plain_http() && !p.is_loopback())
        {
            return Err(PolicyError::PlainHttp {
                plugin: plugin.to_owned(),
                pattern: p.to_string(),
            });
        }
        for s in &self.slots {
            if steers_request(&s.header) {
                return Err(PolicyError::SteeringSlotHeader {
                    plugin: plugin.to_owned(),
                    slot: s.name.clone(),
                    header: s.header.clone(),
                });
            }
            s.validate().map_err(invalid)?;
        }
        for c in &self.credentials {
            c.validate().map_err(invalid)?;
            if !self.slots.iter().any(|s| s.name == c.slot) {
                return Err(invalid(format!(
                    "credential for slot {:?}: the manifest declares no such slot",
                    c.slot
                )));
            }
        }
        Ok(())
    }
}

/// The limit a plugin declares for `url`, from its `rate_limits` (see
/// [`PluginPolicy::rate_limits`]): the first pattern matching, or — for a request to a
/// loopback stand-in (`loopback`) no pattern matches — the strictest of them.
pub(crate) fn declared_limit(
    rate_limits: &[(HostPattern, RateLimit)],
    url: &url::Url,
    loopback: bool,
) -> Option<RateLimit> {
    if let Some((_, limit)) = rate_limits.iter().find(|(p, _)| p.matches(url)) {
        return Some(*limit);
    }
    if !loopback {
        return None;
    }
    rate_limits
        .iter()
        .map(|(_, l)| *l)
        .max_by_key(RateLimit::interval)
}

/// A grant that can not be enforced, found when the plugin loads (registers its grant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A credential slot whose header would steer the request instead of authenticating it
    /// (`Host`, `Cookie`, `Content-Length`, `Transfer-Encoding`, `Connection`, `Proxy-*`, …):
    /// a plugin could otherwise have the host write a secret into, or a request's framing
    /// out of, a header the plugin does not control.
    #[error(
        "plugin {plugin:?}: credential slot {slot:?} sets header {header:?}, which steers the \
         request (host, framing, connection, proxy or cookie); the plugin is refused"
    )]
    SteeringSlotHeader {
        plugin: String,
        slot: String,
        header: String,
    },
    /// The operator granted `http://` to a host that is not loopback: plain HTTP would carry
    /// credentials and personal data in clear text.
    #[error(
        "plugin {plugin:?}: host {pattern} uses plain http://, which is only allowed to loopback \
         (127.0.0.1, [::1], localhost); use https://"
    )]
    PlainHttp { plugin: String, pattern: String },
    /// Anything else (bad template, secret for an undeclared slot, non-loopback local host…).
    #[error("outbound policy for plugin {plugin:?}: {reason}")]
    Invalid { plugin: String, reason: String },
}

/// Everything [`crate::Outbound`] enforces.
///
/// `Policy::default()` grants nothing, refuses loopback, caps responses at 16 MiB, times out
/// connects after 10 s and reads after 30 s, and retries per [`RetryPolicy::default`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Grants per plugin (instance) name, the name passed to [`crate::Outbound::send`].
    pub plugins: BTreeMap<String, PluginPolicy>,
    /// Allow *every* plugin to connect to 127.0.0.0/8 and ::1 (tests that embed an
    /// `Outbound` directly). The `muster` host never sets it: it grants loopback per
    /// connection with [`PluginPolicy::allow_loopback`]. Every other special-purpose range
    /// stays refused either way.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    fn declared() -> Vec<(HostPattern, RateLimit)> {
        vec![
            (
                HostPattern::parse("https://*.ilucca.net").unwrap(),
                RateLimit::LUCCA,
            ),
            (
                HostPattern::parse("https://api.vendor.example").unwrap(),
                RateLimit::new(30, Duration::from_secs(1)),
            ),
        ]
    }

    #[test]
    fn the_first_declared_pattern_matching_gives_the_limit() {
        let limits = declared();
        let vendor = url("https://api.vendor.example/scim/v1/Users");
        assert_eq!(
            declared_limit(&limits, &vendor, false),
            Some(RateLimit::new(30, Duration::from_secs(1)))
        );
        let lucca = url("https://acme.ilucca.net/api/v3/users");
        assert_eq!(
            declared_limit(&limits, &lucca, false),
            Some(RateLimit::LUCCA)
        );
        assert_eq!(
            declared_limit(&limits, &url("https://elsewhere.example/"), false),
            None
        );
    }

    #[test]
    fn a_loopback_stand_in_gets_the_strictest_declared_limit() {
        let limits = declared();
        let stand_in = url("http://127.0.0.1:4321/scim/v1/Users");
        // 50 / 61 s (one every 1.22 s) is stricter than 30 / s.
        assert_eq!(
            declared_limit(&limits, &stand_in, true),
            Some(RateLimit::LUCCA)
        );
        assert_eq!(declared_limit(&[], &stand_in, true), None, "none declared");
    }
}
