//! The one error type of the crate.
//!
//! Every variant carries the plugin name, the method and a **redacted** URL, so an operator can
//! tell which connector asked for what, and none of them can carry a secret: the URL and every
//! free-text message are passed through [`crate::redact::Redactor`] before an error is built.

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
    #[error("{plugin}: {method} {url} denied: {reason}")]
    Denied {
        plugin: String,
        method: String,
        url: String,
        reason: String,
    },
    /// The request is malformed (bad URL, forbidden header, unknown credential slot, …).
    /// Nothing was sent.
    #[error("{plugin}: {method} {url} invalid: {reason}")]
    Invalid {
        plugin: String,
        method: String,
        url: String,
        reason: String,
    },
    /// The host name is granted but resolved to (or is) an address the host never connects to
    /// (private, loopback without opt-in, link-local, metadata, …). Nothing was sent.
    #[error("{plugin}: {method} {url} refused: {addr} is {reason}")]
    AddressRefused {
        plugin: String,
        method: String,
        url: String,
        addr: IpAddr,
        reason: &'static str,
    },
    /// The upstream's token bucket has no token within the allowed wait.
    #[error("{plugin}: {method} {url} rate-limited by the host, retry after {retry_after:?}")]
    RateLimited {
        plugin: String,
        method: String,
        url: String,
        retry_after: Duration,
    },
    /// The response body is larger than the policy's cap.
    #[error("{plugin}: {method} {url} response larger than {limit} bytes")]
    TooLarge {
        plugin: String,
        method: String,
        url: String,
        limit: u64,
    },
    /// Connect, response or body timeout (after retries, where retries apply).
    #[error("{plugin}: {method} {url} timed out: {detail}")]
    Timeout {
        plugin: String,
        method: String,
        url: String,
        detail: String,
    },
    /// DNS failure, refused connection, TLS or protocol error (after retries, where they apply).
    #[error("{plugin}: {method} {url} failed: {detail}")]
    Transport {
        plugin: String,
        method: String,
        url: String,
        detail: String,
    },
}
