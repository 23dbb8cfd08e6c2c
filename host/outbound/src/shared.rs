//! A rate-limit budget shared with other processes: [`SharedLimiter`].
//!
//! The local limiter ([`crate::ratelimit`]) keeps one bucket per origin *in this process*. A
//! vendor's limit is per tenant, whoever calls: Lucca's 50 requests per 60 s per tenant domain
//! is shared by every process talking to that domain. When several processes run flows of one
//! tenant (the workers of a fleet, two `muster sync` on two machines over one PostgreSQL
//! state), each process's own bucket lets it send the whole limit, and together they send
//! it several times over.
//!
//! So an [`crate::Outbound`] can be given a shared budget ([`crate::Outbound::set_shared_limiter`]):
//! for every request with a rate limit — the one the connection declares, or the host's — the
//! client takes one request from the budget of its origin (`scheme://host:port`) at that limit
//! right before sending, after its local pacing and its local `Retry-After` back-off (a 429's
//! `Retry-After` is also handed to the budget, [`SharedLimiter::hold`], so every process
//! backs off, not only the one that got it). The
//! budget either admits the request ([`SharedAdmission::Go`]) or says how long until it can
//! ([`SharedAdmission::Wait`]); the client sleeps and asks again, exactly as it waits for a
//! local token, up to [`crate::Policy::max_rate_limit_wait`]
//! ([`crate::OutboundError::RateLimited`] past it). A budget that cannot be read fails the
//! request with [`crate::OutboundError::BudgetUnavailable`] and **nothing is sent**: a request
//! never goes out unpaced.
//!
//! This crate only defines the contract; muster's implementation is a bucket in the
//! PostgreSQL state (`muster::store::PostgresBudget`), so the outbound client does not depend
//! on a database.

use std::time::Duration;

use crate::RateLimit;

/// What a shared budget answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedAdmission {
    /// One request was taken from the budget: send now.
    Go,
    /// The budget is spent: nothing was taken; ask again after this long (on the time of the
    /// client's [`crate::clock::Clock`]).
    Wait(Duration),
}

/// A rate-limit budget kept outside this process, shared by every process that sends to the
/// same origins. See the module documentation.
pub trait SharedLimiter: Send + Sync + std::fmt::Debug {
    /// Takes one request from the budget of `origin` (`scheme://host:port`) at `limit` if one
    /// is free now, else says how long until one is. Must be atomic across processes: two
    /// callers never both get the last request of a window.
    fn try_acquire(
        &self,
        origin: &str,
        limit: RateLimit,
    ) -> Result<SharedAdmission, SharedLimitError>;

    /// The vendor answered 429 with `Retry-After: wait` (on the client's clock): every
    /// process's requests to `origin` at `limit` wait until then, not only this one's. The
    /// default keeps the back-off to the process that got the 429.
    fn hold(&self, origin: &str, limit: RateLimit, wait: Duration) -> Result<(), SharedLimitError> {
        let _ = (origin, limit, wait);
        Ok(())
    }
}

/// The shared budget could not be read or written: the request is not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared rate-limit budget ({budget}) for {origin} cannot be read: {detail}")]
pub struct SharedLimitError {
    /// Where the budget lives, without secrets (e.g. `PostgreSQL muster@db:5432/muster`).
    pub budget: String,
    /// The origin whose budget was asked for.
    pub origin: String,
    /// Why, without secrets.
    pub detail: String,
}
