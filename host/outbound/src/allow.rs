//! The allow-list: which scheme + host + port a plugin may reach.
//!
//! A plugin's manifest says what it *needs* (`https://*.ilucca.net`), the tenant config says what
//! this tenant *grants* (`https://acme.ilucca.net`); the effective grant is the intersection,
//! computed once per plugin by [`intersect_all`]. Anything not matched is denied. A *manifest*
//! may ask for any host (`https://*`, parsed by [`HostPattern::parse_manifest`]) — a generic
//! SCIM connector cannot know its server — but that only means "whatever the tenant grants":
//! tenant patterns are parsed by [`HostPattern::parse`], which refuses a bare `*`, so the
//! effective grant always names its hosts.
//!
//! Patterns are origins, not URLs: no path, query, user info or fragment, so a grant can not be
//! narrowed (or widened) by a path trick.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use url::{Host, Url};

/// One allow-list entry: `scheme://host[:port]`.
///
/// - `scheme` is `http` or `https`;
/// - `host` is a DNS name, `*.` followed by a DNS name (any subdomain, at any depth, but not the
///   apex: `*.ilucca.net` matches `acme.ilucca.net`, not `ilucca.net`), an IPv4 literal or a
///   bracketed IPv6 literal;
/// - `port` is a number, `*` (any port — handy for loopback test servers on port 0), or absent
///   (the scheme's default port).
///
/// Names are compared case-insensitively, without a trailing dot, in their IDNA (punycode) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    scheme: Scheme,
    host: HostSpec,
    /// `None` means any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostSpec {
    /// An exact DNS name, lower-case, no trailing dot.
    Name(String),
    /// `*.suffix`: any name ending in `.suffix`; stores `suffix`.
    Wildcard(String),
    Ip(IpAddr),
    /// Any host: only from a manifest ([`HostPattern::parse_manifest`]).
    Any,
}

/// Why a pattern string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: &'static str,
}

impl HostPattern {
    /// Parses `scheme://host[:port]` (a single trailing `/` is tolerated).
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let err = |reason| PatternError {
            pattern: pattern.to_owned(),
            reason,
        };
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| err("expected scheme://host[:port]"))?;
        let scheme = Scheme::parse(scheme).ok_or_else(|| err("scheme must be http or https"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(err(
                "a pattern names an origin: no path, query or user info",
            ));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| err("malformed host or port"))?;
        let port = match port {
            None => Some(scheme.default_port()),
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| err("port must be 1-65535 or *"))?,
            ),
        };
        if port == Some(0) {
            return Err(err("port must be 1-65535 or *"));
        }
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            let name = normalize_name(suffix).ok_or_else(|| err("invalid DNS name"))?;
            if !name.contains('.') {
                return Err(err("a wildcard needs at least two labels after `*.`"));
            }
            HostSpec::Wildcard(name)
        } else if host.contains('*') {
            return Err(err(
                "`*` is only allowed as the whole first label (`*.example.com`)",
            ));
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            HostSpec::Ip(IpAddr::V6(
                v6.parse().map_err(|_| err("invalid IPv6 literal"))?,
            ))
        } else if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
            HostSpec::Ip(IpAddr::V4(ip))
        } else {
            HostSpec::Name(normalize_name(host).ok_or_else(|| err("invalid DNS name"))?)
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether `url` (already parsed) is inside this pattern.
    /// Whether this pattern names only the local machine (`127.0.0.0/8`, `::1`, `localhost`).
    /// Parses a pattern from a plugin manifest: like [`HostPattern::parse`], plus
    /// `scheme://*` or `scheme://*:port` for "any host the tenant grants".
    pub fn parse_manifest(pattern: &str) -> Result<Self, PatternError> {
        let any = pattern.split_once("://").and_then(|(scheme, rest)| {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            let port = match rest {
                "*" => Some(None),
                _ => rest.strip_prefix("*:").map(Some),
            }?;
            Some((scheme, port))
        });
        let Some((scheme, port)) = any else {
            return Self::parse(pattern);
        };
        // Reuse the ordinary parser for the scheme and port rules.
        let probe = match port {
            None => format!("{scheme}://any.invalid"),
            Some(p) => format!("{scheme}://any.invalid:{p}"),
        };
        let parsed = Self::parse(&probe).map_err(|e| PatternError {
            pattern: pattern.to_owned(),
            reason: e.reason,
        })?;
        Ok(Self {
            host: HostSpec::Any,
            ..parsed
        })
    }

    /// Whether this pattern is `http://` (clear text), which only loopback may use.
    pub fn is_plain_http(&self) -> bool {
        self.scheme == Scheme::Http
    }

    /// Whether this pattern stands for any host (a manifest's `https://*`).
    pub fn is_any_host(&self) -> bool {
        self.host == HostSpec::Any
    }

    pub fn is_loopback(&self) -> bool {
        match &self.host {
            HostSpec::Ip(ip) => ip.is_loopback(),
            HostSpec::Name(n) => n == "localhost",
            HostSpec::Wildcard(_) | HostSpec::Any => false,
        }
    }

    pub fn matches(&self, url: &Url) -> bool {
        let Some(scheme) = Scheme::parse(url.scheme()) else {
            return false;
        };
        if scheme != self.scheme {
            return false;
        }
        let Some(port) = url.port_or_known_default() else {
            return false;
        };
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (url.host(), &self.host) {
            (Some(Host::Domain(d)), HostSpec::Name(n)) => trim_dot(d).eq_ignore_ascii_case(n),
            (Some(Host::Domain(d)), HostSpec::Wildcard(suffix)) => {
                is_strict_subdomain(&trim_dot(d).to_ascii_lowercase(), suffix)
            }
            (Some(Host::Ipv4(ip)), HostSpec::Ip(p)) => IpAddr::V4(ip) == *p,
            (Some(Host::Ipv6(ip)), HostSpec::Ip(p)) => IpAddr::V6(ip) == *p,
            (Some(_), HostSpec::Any) => true,
            _ => false,
        }
    }

    /// The largest pattern contained in both `self` and `other`, if any.
    ///
    /// This is what makes "manifest ∩ tenant config" a list of patterns an operator can read
    /// (e.g. `https://*.ilucca.net` ∩ `https://acme.ilucca.net:*` = `https://acme.ilucca.net`).
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        if self.scheme != other.scheme {
            return None;
        }
        let port = match (self.port, other.port) {
            (None, p) | (p, None) => p,
            (Some(a), Some(b)) if a == b => Some(a),
            _ => return None,
        };
        let host = match (&self.host, &other.host) {
            (HostSpec::Any, h) | (h, HostSpec::Any) => h.clone(),
            (HostSpec::Ip(a), HostSpec::Ip(b)) if a == b => HostSpec::Ip(*a),
            (HostSpec::Name(a), HostSpec::Name(b)) if a == b => HostSpec::Name(a.clone()),
            (HostSpec::Name(n), HostSpec::Wildcard(s))
            | (HostSpec::Wildcard(s), HostSpec::Name(n))
                if is_strict_subdomain(n, s) =>
            {
                HostSpec::Name(n.clone())
            }
            (HostSpec::Wildcard(a), HostSpec::Wildcard(b)) => {
                if a == b || is_strict_subdomain(a, b) {
                    HostSpec::Wildcard(a.clone())
                } else if is_strict_subdomain(b, a) {
                    HostSpec::Wildcard(b.clone())
                } else {
                    return None;
                }
            }
            _ => return None,
        };
        Some(Self {
            scheme: self.scheme,
            host,
            port,
        })
    }
}

/// Every non-empty pairwise intersection of `manifest` and `tenant`, without duplicates.
pub fn intersect_all(manifest: &[HostPattern], tenant: &[HostPattern]) -> Vec<HostPattern> {
    let mut out: Vec<HostPattern> = Vec::new();
    for m in manifest {
        for t in tenant {
            if let Some(p) = m.intersect(t)
                && !out.contains(&p)
            {
                out.push(p);
            }
        }
    }
    out
}

impl FromStr for HostPattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        match &self.host {
            HostSpec::Name(n) => f.write_str(n)?,
            HostSpec::Wildcard(s) => write!(f, "*.{s}")?,
            HostSpec::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            HostSpec::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostSpec::Any => f.write_str("*")?,
        }
        match self.port {
            None => f.write_str(":*"),
            Some(p) if p == self.scheme.default_port() => Ok(()),
            Some(p) => write!(f, ":{p}"),
        }
    }
}

/// Whether `url` names the local machine by its host: a loopback IP literal or `localhost`.
/// Plain `http://` is only sent to such URLs (the contract's rule, `wit/http.wit`).
pub(crate) fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => trim_dot(d).eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `host[:port]` with bracketed IPv6; `None` on an empty host or a dangling colon.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let (h, rest) = s.split_at(end + 1);
        match rest {
            "" => (h, None),
            r => (h, Some(r.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    (!host.is_empty() && port != Some("")).then_some((host, port))
}

/// Lower-case IDNA form of a DNS name, via the `url` crate's host parser (so a pattern and a
/// request URL are normalised by the same code).
fn normalize_name(name: &str) -> Option<String> {
    match Host::parse(trim_dot(name)).ok()? {
        Host::Domain(d) if !d.is_empty() && !d.contains('*') => Some(d),
        _ => None,
    }
}

fn trim_dot(s: &str) -> &str {
    s.strip_suffix('.').unwrap_or(s)
}

/// `name` is `x.suffix` for a non-empty `x`.
fn is_strict_subdomain(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }
    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn exact_name_matches_scheme_host_and_default_port_only() {
        let pat = p("https://acme.ilucca.net");
        assert!(pat.matches(&u("https://acme.ilucca.net/api/v3/users")));
        assert!(pat.matches(&u("https://ACME.ilucca.net.:443/x")));
        assert!(!pat.matches(&u("http://acme.ilucca.net/")));
        assert!(!pat.matches(&u("https://acme.ilucca.net:8443/")));
        assert!(!pat.matches(&u("https://evil.ilucca.net/")));
        assert!(!pat.matches(&u("https://acme.ilucca.net.evil.com/")));
    }

    #[test]
    fn wildcard_matches_subdomains_but_not_apex_or_lookalikes() {
        let pat = p("https://*.ilucca.net");
        assert!(pat.matches(&u("https://acme.ilucca.net/")));
        assert!(pat.matches(&u("https://a.b.ilucca.net/")));
        assert!(!pat.matches(&u("https://ilucca.net/")));
        assert!(!pat.matches(&u("https://evilucca.net/")));
        assert!(!pat.matches(&u("https://acme.ilucca.net.evil.com/")));
    }

    #[test]
    fn port_wildcard_and_ip_literals() {
        let pat = p("http://127.0.0.1:*");
        assert!(pat.matches(&u("http://127.0.0.1:4242/")));
        assert!(!pat.matches(&u("http://127.0.0.2:4242/")));
        let v6 = p("http://[::1]:8080");
        assert!(v6.matches(&u("http://[::1]:8080/")));
        assert!(!v6.matches(&u("http://[::1]:8081/")));
    }

    #[test]
    fn a_manifest_may_ask_for_any_host_which_the_tenant_narrows() {
        let any = HostPattern::parse_manifest("https://*").unwrap();
        assert!(any.is_any_host());
        assert_eq!(any.to_string(), "https://*");
        let scim = p("https://scim.example.com");
        assert_eq!(any.intersect(&scim), Some(scim.clone()));
        assert_eq!(
            intersect_all(std::slice::from_ref(&any), std::slice::from_ref(&scim)),
            vec![scim]
        );
        assert_eq!(
            any.intersect(&p("http://scim.example.com")),
            None,
            "scheme kept"
        );
        let any_port = HostPattern::parse_manifest("http://*:*").unwrap();
        assert_eq!(
            any_port.intersect(&p("http://127.0.0.1:8080")),
            Some(p("http://127.0.0.1:8080"))
        );
        // Tenants must name hosts, and `parse_manifest` is no looser otherwise.
        assert!(HostPattern::parse("https://*").is_err());
        assert!(HostPattern::parse_manifest("https://*.net").is_err());
        assert!(HostPattern::parse_manifest("ftp://*").is_err());
        assert!(HostPattern::parse_manifest("https://*:0").is_err());
    }

    #[test]
    fn rejects_patterns_that_are_not_origins_or_too_wide() {
        for bad in [
            "acme.ilucca.net",
            "ftp://acme.ilucca.net",
            "https://*",
            "https://*.net",
            "https://a*.ilucca.net",
            "https://acme.ilucca.net/api",
            "https://user@acme.ilucca.net",
            "https://acme.ilucca.net:0",
            "https://acme.ilucca.net:",
            "https://:443",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "https://*.ilucca.net",
            "http://127.0.0.1:*",
            "https://acme.ilucca.net:8443",
            "http://[::1]:8080",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn intersection_narrows_the_manifest_to_the_tenant() {
        let manifest = [p("https://*.ilucca.net"), p("https://*.ilucca.ch")];
        let tenant = [
            p("https://acme.ilucca.net:*"),
            p("https://other.example.com"),
        ];
        let eff = intersect_all(&manifest, &tenant);
        assert_eq!(eff, vec![p("https://acme.ilucca.net")]);

        assert_eq!(
            p("https://*.ilucca.net").intersect(&p("https://*.acme.ilucca.net")),
            Some(p("https://*.acme.ilucca.net"))
        );
        assert_eq!(p("https://a.com").intersect(&p("http://a.com")), None);
        assert_eq!(p("https://a.com:1").intersect(&p("https://a.com:2")), None);
        assert_eq!(p("https://*.a.com").intersect(&p("https://a.com")), None);
    }
}
