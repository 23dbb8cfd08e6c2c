//! Which IP addresses the host connects to, checked *after* DNS resolution.
//!
//! An allow-listed name is not enough: `intranet.example.com` can resolve to `10.0.0.5`, and a
//! tenant-controlled DNS record can point anywhere, including the cloud metadata service. So the
//! resolver itself refuses such answers (`CheckingResolver`), and ureq connects to exactly the
//! addresses the resolver returned — there is no second lookup, hence no DNS-rebinding window
//! between the check and the connect.
//!
//! Loopback is allowed only when the policy says so (`allow_loopback`, for tests and the local
//! sandbox); every other special-purpose range stays refused even then.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Why `ip` must not be connected to, or `None` if it may.
pub fn refusal(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4, allow_loopback),
        IpAddr::V6(v6) => refusal_v6(v6, allow_loopback),
    }
}

fn refusal_v4(ip: Ipv4Addr, allow_loopback: bool) -> Option<&'static str> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(169, 254, 170, 2) {
        return Some("a cloud metadata address");
    }
    if ip.is_loopback() {
        return (!allow_loopback).then_some("loopback (not allowed by this policy)");
    }
    if o[0] == 0 {
        return Some("unspecified (0.0.0.0/8)");
    }
    if ip.is_private() {
        return Some("private (RFC 1918)");
    }
    if ip.is_link_local() {
        return Some("link-local (169.254.0.0/16)");
    }
    if o[0] == 100 && (o[1] & 0xc0) == 64 {
        return Some("shared address space / CGNAT (100.64.0.0/10)");
    }
    if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        return Some("IETF protocol assignments (192.0.0.0/24)");
    }
    if o[0] == 198 && (o[1] & 0xfe) == 18 {
        return Some("benchmarking (198.18.0.0/15)");
    }
    if ip.is_documentation() {
        return Some("documentation (TEST-NET)");
    }
    if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        return Some("multicast, broadcast or reserved");
    }
    None
}

fn refusal_v6(ip: Ipv6Addr, allow_loopback: bool) -> Option<&'static str> {
    // IPv4 embedded in IPv6 reaches the IPv4 address: judge that one.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refusal_v4(v4, allow_loopback);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 well-known prefix 64:ff9b::/96.
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return refusal_v4(v4, allow_loopback);
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("a cloud metadata address");
    }
    if ip.is_loopback() {
        return (!allow_loopback).then_some("loopback (not allowed by this policy)");
    }
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Some("unique local (fc00::/7)");
    }
    if (s[0] & 0xffc0) == 0xfe80 {
        return Some("link-local (fe80::/10)");
    }
    if (s[0] & 0xffc0) == 0xfec0 {
        return Some("site-local (fec0::/10)");
    }
    if ip.is_multicast() {
        return Some("multicast (ff00::/8)");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Some("documentation (2001:db8::/32)");
    }
    // ::/96 IPv4-compatible (deprecated) — reaches an IPv4 address on some stacks.
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return Some("IPv4-compatible (::/96, deprecated)");
    }
    None
}

/// Carried inside `ureq::Error::Io` out of the resolver, so the client can tell a refusal from
/// an ordinary DNS failure.
#[derive(Debug)]
pub(crate) struct Refused {
    pub addr: IpAddr,
    pub reason: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}", self.addr, self.reason)
    }
}

impl std::error::Error for Refused {}

impl Refused {
    /// Finds a `Refused` in a ureq error, if that is what it is.
    pub(crate) fn from_ureq(err: &ureq::Error) -> Option<(IpAddr, &'static str)> {
        match err {
            ureq::Error::Io(io) => io
                .get_ref()
                .and_then(|e| e.downcast_ref::<Refused>())
                .map(|r| (r.addr, r.reason)),
            _ => None,
        }
    }
}

/// ureq's default resolver, followed by [`refusal`] on every answer.
///
/// If *any* answer is refused the whole lookup is: a name that resolves to both a public and a
/// private address is either misconfigured or an attack, and picking the "good" one would hide
/// it.
#[derive(Debug, Default)]
pub(crate) struct CheckingResolver {
    inner: DefaultResolver,
    pub allow_loopback: bool,
}

impl CheckingResolver {
    pub(crate) fn new(allow_loopback: bool) -> Self {
        Self {
            inner: DefaultResolver::default(),
            allow_loopback,
        }
    }
}

impl Resolver for CheckingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.inner.resolve(uri, config, timeout)?;
        for a in addrs.iter() {
            if let Some(reason) = refusal(a.ip(), self.allow_loopback) {
                tracing::warn!(addr = %a.ip(), reason, "outbound: resolved address refused");
                return Err(ureq::Error::Io(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    Refused {
                        addr: a.ip(),
                        reason,
                    },
                )));
            }
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str, lo: bool) -> bool {
        refusal(s.parse().unwrap(), lo).is_some()
    }

    #[test]
    fn refuses_special_purpose_ranges() {
        for a in [
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(
                refused(a, true),
                "{a} must be refused even with loopback allowed"
            );
        }
    }

    #[test]
    fn loopback_only_when_opted_in() {
        for a in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(refused(a, false), "{a}");
            assert!(!refused(a, true), "{a}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "52.95.110.1",
        ] {
            assert!(!refused(a, false), "{a}");
        }
    }

    #[test]
    fn metadata_is_named_as_such() {
        assert_eq!(
            refusal("169.254.169.254".parse().unwrap(), true),
            Some("a cloud metadata address")
        );
        assert_eq!(
            refusal("fd00:ec2::254".parse().unwrap(), true),
            Some("a cloud metadata address")
        );
    }

    #[test]
    fn resolver_refuses_bad_answers_before_any_connection() {
        use ureq::unversioned::transport::time;
        let t = NextTimeout {
            after: time::Duration::NotHappening,
            ..NextTimeout::default()
        };
        let cfg = Config::default();
        // IP literals resolve without DNS; the resolver judges them like any other answer.
        let lenient = CheckingResolver::new(true);
        for uri in [
            "http://10.0.0.1/",
            "http://169.254.169.254/",
            "http://[fd00:ec2::254]/",
        ] {
            let err = lenient.resolve(&uri.parse().unwrap(), &cfg, t).unwrap_err();
            assert!(Refused::from_ureq(&err).is_some(), "{uri}: {err}");
        }
        assert!(
            lenient
                .resolve(&"http://127.0.0.1:1/".parse().unwrap(), &cfg, t)
                .is_ok()
        );
        // `localhost` comes from the hosts file: a granted *name* that resolves to loopback.
        let strict = CheckingResolver::new(false);
        let err = strict
            .resolve(&"http://localhost:1/".parse().unwrap(), &cfg, t)
            .unwrap_err();
        let (ip, _) = Refused::from_ureq(&err).unwrap();
        assert!(ip.is_loopback());
    }
}
