//! When to retry, and how long to wait.
//!
//! - 429 is retried for every method: the upstream refused before doing anything.
//! - 5xx, timeouts and connection errors are retried only for idempotent methods (GET, HEAD,
//!   PUT, DELETE, OPTIONS): a POST or PATCH that timed out may have been applied, and sending it
//!   again could create a second account.
//! - The wait is the upstream's `Retry-After` (seconds or HTTP-date) when given, otherwise a
//!   jittered exponential back-off. Attempts and the total wait are both bounded; a wait that
//!   would exceed the remaining budget is not started, and the last response (e.g. the 429) goes
//!   back to the caller so the plugin can report `rate-limited(retry-after)`.
//!
//! Jitter uses std's randomly-keyed `RandomState` hasher over a counter instead of a `rand`
//! dependency: spreading retries of concurrent callers needs unpredictability between
//! processes, not statistical quality or cryptographic strength.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Retry bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (1 = never retry).
    pub max_attempts: u32,
    /// Back-off before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// Cap on a single back-off (and on a single `Retry-After`).
    pub max_delay: Duration,
    /// Cap on the sum of all waits of one request.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(60),
            max_total_wait: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Jittered exponential back-off before retry number `retry` (1-based): uniformly in
    /// `[d/2, d]` with `d = min(base · 2^(retry-1), max_delay)` ("equal jitter": never zero,
    /// never above the cap).
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let d = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = d / 2;
        let span = (d - half).as_nanos() as u64;
        let jitter = if span == 0 {
            0
        } else {
            random_u64() % (span + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

/// Methods whose repetition has the same effect as a single call (RFC 9110 §9.2.2), minus
/// TRACE which a connector has no use for.
pub(crate) fn is_idempotent(method: &str) -> bool {
    matches!(
        method.to_ascii_uppercase().as_str(),
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS"
    )
}

/// What a response status means for retrying.
pub(crate) fn status_is_retryable(status: u16, method: &str) -> bool {
    status == 429 || (is_idempotent(method) && (500..=599).contains(&status))
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date (relative to `now`). A date in
/// the past means "now"; garbage means "not given".
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // `RandomState::new()` is seeded per process (and varied per instance), so hashing a
    // counter gives distinct, unpredictable values without a dependency.
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_and_retryable_statuses() {
        for m in ["GET", "head", "PUT", "DELETE", "OPTIONS"] {
            assert!(status_is_retryable(503, m), "{m}");
        }
        for m in ["POST", "PATCH"] {
            assert!(!status_is_retryable(500, m), "{m}");
            assert!(status_is_retryable(429, m), "{m}");
        }
        assert!(!status_is_retryable(404, "GET"));
        assert!(!status_is_retryable(408, "POST"));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            let b20 = p.backoff(20);
            assert!(b20 >= Duration::from_millis(500) && b20 <= Duration::from_millis(1000));
            seen.insert(b3);
        }
        assert!(seen.len() > 1, "back-off is not jittered");
    }
}
