//! The one error type of the crate.
//!
//! Every variant carries the plugin name, the method and a **redacted** URL, so an operator can
//! tell which connector asked for what, and none of them can carry a secret: the URL and every
//! free-text message are passed through [`crate::redact::Redactor`] before an error is built.
//! Messages show the URL shortened ([`short_url`]: a connector's long query string, e.g. a
//! Lucca `fields=` projection, is elided); the field keeps it whole for logs and support.

use std::net::IpAddr;
use std::time::Duration;

/// Why an outbound request did not produce a [`crate::Response`].
///
/// The runtime maps these onto the contract's `http-error`; the variants are coarse on purpose
/// (what a connector can act on), the context fields are for logs and support.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboundError {
    /// The request is outside the plugin's grant (scheme, host or port), or the plugin is
    /// unknown. Nothing was sent.
    #[error("{plugin}: {method} {} denied: {reason}", short_url(url))]
    Denied {
        plugin: String,
        method: String,
        url: String,
        reason: String,
    },
    /// The request is malformed (bad URL, forbidden header, unknown credential slot, …).
    /// Nothing was sent.
    #[error("{plugin}: {method} {} invalid: {reason}", short_url(url))]
    Invalid {
        plugin: String,
        method: String,
        url: String,
        reason: String,
    },
    /// The host name is granted but resolved to (or is) an address the host never connects to
    /// (private, loopback without opt-in, link-local, metadata, …). Nothing was sent.
    #[error("{plugin}: {method} {} refused: {addr} is {reason}", short_url(url))]
    AddressRefused {
        plugin: String,
        method: String,
        url: String,
        addr: IpAddr,
        reason: &'static str,
    },
    /// The upstream's token bucket has no token within the allowed wait.
    #[error(
        "{plugin}: {method} {} rate-limited by the host, retry after {retry_after:?}",
        short_url(url)
    )]
    RateLimited {
        plugin: String,
        method: String,
        url: String,
        retry_after: Duration,
    },
    /// The shared rate-limit budget ([`crate::SharedLimiter`]) could not be read or written.
    /// Nothing was sent: a request never goes out unpaced.
    #[error("{plugin}: {method} {} not sent: {source}", short_url(url))]
    BudgetUnavailable {
        plugin: String,
        method: String,
        url: String,
        /// Boxed: the other variants stay small.
        #[source]
        source: Box<crate::SharedLimitError>,
    },
    /// The response body is larger than the policy's cap.
    #[error(
        "{plugin}: {method} {} response larger than {limit} bytes",
        short_url(url)
    )]
    TooLarge {
        plugin: String,
        method: String,
        url: String,
        limit: u64,
    },
    /// Connect, response or body timeout (after retries, where retries apply).
    #[error("{plugin}: {method} {} timed out: {detail}", short_url(url))]
    Timeout {
        plugin: String,
        method: String,
        url: String,
        detail: String,
    },
    /// DNS failure, refused connection, TLS or protocol error (after retries, where they apply).
    #[error("{plugin}: {method} {} failed: {detail}", short_url(url))]
    Transport {
        plugin: String,
        method: String,
        url: String,
        detail: String,
    },
}

/// The longest URL a message shows whole.
const SHORT_URL: usize = 80;

/// `url` for a one-line message: whole when short, else without its query (`?…`), and a
/// path still too long cut with `…`. The scheme, host and start of the path — what tells
/// an operator which service and endpoint — are always kept.
pub fn short_url(url: &str) -> String {
    if url.chars().count() <= SHORT_URL {
        return url.to_owned();
    }
    let (base, elided) = match url.split_once('?') {
        Some((base, _)) => (base, "?…"),
        None => (url, ""),
    };
    if base.chars().count() + elided.chars().count() <= SHORT_URL {
        return format!("{base}{elided}");
    }
    let cut: String = base.chars().take(SHORT_URL - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_urls_lose_their_query_first() {
        let short = "https://acme.ilucca.net/api/v3/users?paging=0,1000";
        assert_eq!(short_url(short), short);
        let fields =
            "id,firstName,lastName,mail,login,birthDate,dtContractStart,dtContractEnd,manager[id]";
        let long =
            format!("https://acme.ilucca.net/api/v3/users?formerEmployees=true&fields={fields}");
        assert_eq!(short_url(&long), "https://acme.ilucca.net/api/v3/users?…");
        let path = format!("https://acme.example/{}", "segment/".repeat(20));
        let shown = short_url(&path);
        assert!(shown.starts_with("https://acme.example/segment/") && shown.ends_with('…'));
        assert_eq!(shown.chars().count(), SHORT_URL);
    }

    #[test]
    fn messages_show_the_short_url_and_the_field_keeps_it_whole() {
        let url = format!(
            "https://acme.ilucca.net/api/v3/users?fields={}",
            "x,".repeat(60)
        );
        let e = OutboundError::Transport {
            plugin: "lucca".into(),
            method: "GET".into(),
            url: url.clone(),
            detail: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "lucca: GET https://acme.ilucca.net/api/v3/users?… failed: connection refused"
        );
        assert!(matches!(e, OutboundError::Transport { url: u, .. } if u == url));
    }
}
