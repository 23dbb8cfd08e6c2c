//! A token bucket per upstream (scheme + host + port).
//!
//! Lucca allows 50 requests per 60 s per tenant domain, shared by every integration. A classic
//! continuously-refilled bucket of capacity 50 would let 50 requests through at once and then
//! another ~49 over the next 60 s — up to 99 in a 60 s window, which trips the upstream limit.
//! So each token here comes back exactly `per` after it was spent: the bucket holds at most
//! `requests` tokens, a burst uses them all, and **no window of length `per` ever sees more than
//! `requests` requests** (this is a sliding-window log of the last `requests` send times; its
//! memory is `requests` timestamps per upstream).
//!
//! The key is the upstream origin, not the plugin: two plugins talking to the same tenant share
//! its budget, as they share it upstream.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Clock;

/// `requests` per `per`, e.g. [`RateLimit::LUCCA`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl RateLimit {
    /// Lucca: 50 requests / 60 s per tenant domain, paced over **61 s**.
    /// We count a request when it leaves, Lucca when it arrives; with the
    /// exact 60 s, network jitter let the simulator see 51 in one of its
    /// windows in 6 runs out of 6 (`tests/lucca_connector.rs`). One second of
    /// margin costs under 2 % of throughput on a rate-bound read.
    pub const LUCCA: Self = Self {
        requests: 50,
        per: Duration::from_secs(61),
    };

    pub const fn new(requests: u32, per: Duration) -> Self {
        Self { requests, per }
    }

    /// The average time between two requests at this limit (`per / requests`): the
    /// larger, the stricter.
    pub fn interval(&self) -> Duration {
        self.per / self.requests.max(1)
    }
}

/// Outcome of asking for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// A token was taken; send now.
    Go,
    /// No token before this much time has passed.
    Wait(Duration),
}

#[derive(Debug)]
struct Bucket {
    /// `None`: no limit configured, the bucket only carries `blocked_until`.
    limit: Option<RateLimit>,
    /// Send times of the last `limit.requests` admitted requests, oldest first.
    spent: VecDeque<Duration>,
    /// Nobody goes before this instant (set from an upstream `Retry-After`).
    blocked_until: Duration,
}

/// Past this many buckets, idle ones are dropped (a wildcard grant can name many origins).
const PRUNE_ABOVE: usize = 1024;

/// All buckets of one [`crate::Outbound`].
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// Takes a token for `key` at time `now` if one is available.
    pub(crate) fn try_acquire(
        &self,
        key: &str,
        limit: Option<RateLimit>,
        now: Duration,
    ) -> Admission {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            // Idle = nothing spent within its window and not held back: forgetting it changes
            // no future decision.
            buckets.retain(|_, b| {
                now < b.blocked_until
                    || b.limit.is_some_and(|l| {
                        b.spent
                            .back()
                            .is_some_and(|&t| now.saturating_sub(t) < l.per)
                    })
            });
        }
        if limit.is_none() && !buckets.contains_key(key) {
            // Unlimited and never throttled upstream: nothing to remember.
            return Admission::Go;
        }
        let bucket = buckets.entry(key.to_owned()).or_insert_with(|| Bucket {
            limit,
            spent: VecDeque::new(),
            blocked_until: Duration::ZERO,
        });
        // A policy change for this upstream keeps the history and applies the new limit.
        bucket.limit = limit;
        if now < bucket.blocked_until {
            return Admission::Wait(bucket.blocked_until - now);
        }
        let Some(limit) = limit else {
            return Admission::Go;
        };
        let cap = limit.requests.max(1) as usize;
        while bucket
            .spent
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= limit.per)
        {
            bucket.spent.pop_front();
        }
        while bucket.spent.len() > cap {
            bucket.spent.pop_front();
        }
        if bucket.spent.len() < cap {
            bucket.spent.push_back(now);
            Admission::Go
        } else {
            // Full: the oldest token returns `per` after it was spent.
            let oldest = bucket.spent.front().copied().unwrap_or(now);
            Admission::Wait(
                (oldest + limit.per)
                    .saturating_sub(now)
                    .max(Duration::from_millis(1)),
            )
        }
    }

    /// The upstream said "not before `until`" (a 429 with `Retry-After`): hold everyone back.
    pub(crate) fn block_until(&self, key: &str, until: Duration) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(key.to_owned()).or_insert_with(|| Bucket {
            limit: None,
            spent: VecDeque::new(),
            blocked_until: Duration::ZERO,
        });
        b.blocked_until = b.blocked_until.max(until);
    }

    /// Waits for a token, at most `max_wait`; on timeout returns how long the caller would
    /// still have had to wait.
    pub(crate) fn acquire(
        &self,
        key: &str,
        limit: Option<RateLimit>,
        clock: &dyn Clock,
        max_wait: Duration,
    ) -> Result<(), Duration> {
        let start = clock.now();
        loop {
            let now = clock.now();
            match self.try_acquire(key, limit, now) {
                Admission::Go => return Ok(()),
                Admission::Wait(d) => {
                    let waited = now.saturating_sub(start);
                    if waited + d > max_wait {
                        return Err(d);
                    }
                    tracing::debug!(
                        upstream = key,
                        wait_ms = d.as_millis() as u64,
                        "rate limit: waiting"
                    );
                    clock.sleep(d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// Admits `n` requests as fast as the limiter allows and checks every window.
    fn burst(limit: RateLimit, n: usize) -> Vec<Duration> {
        let clock = ManualClock::default();
        let limiter = Limiter::default();
        let mut times = Vec::new();
        for _ in 0..n {
            limiter
                .acquire(
                    "https://acme.ilucca.net:443",
                    Some(limit),
                    &clock,
                    Duration::MAX,
                )
                .unwrap();
            times.push(clock.now());
            // A little work between requests, not aligned with the window.
            clock.advance(Duration::from_millis(7));
        }
        times
    }

    fn max_in_window(times: &[Duration], per: Duration) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|&&t| t - times[i] < per)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn lucca_burst_never_exceeds_50_in_any_60s_window() {
        let times = burst(RateLimit::LUCCA, 230);
        assert_eq!(max_in_window(&times, RateLimit::LUCCA.per), 50);
        // And it is not needlessly slow: 230 requests need 4 full refills.
        assert!(
            times[229] < Duration::from_secs(4 * 60 + 5),
            "{:?}",
            times[229]
        );
    }

    #[test]
    fn first_burst_goes_at_once() {
        let times = burst(RateLimit::new(5, Duration::from_secs(1)), 5);
        assert!(times[4] < Duration::from_millis(50));
    }

    #[test]
    fn separate_upstreams_have_separate_buckets() {
        let limiter = Limiter::default();
        let l = Some(RateLimit::new(1, Duration::from_secs(60)));
        assert_eq!(limiter.try_acquire("a", l, Duration::ZERO), Admission::Go);
        assert_eq!(limiter.try_acquire("b", l, Duration::ZERO), Admission::Go);
        assert_eq!(
            limiter.try_acquire("a", l, Duration::from_secs(1)),
            Admission::Wait(Duration::from_secs(59))
        );
    }

    #[test]
    fn max_wait_bounds_the_wait_and_block_until_holds_everyone() {
        let clock = ManualClock::default();
        let limiter = Limiter::default();
        let l = Some(RateLimit::new(1, Duration::from_secs(60)));
        limiter.acquire("a", l, &clock, Duration::ZERO).unwrap();
        assert_eq!(
            limiter.acquire("a", l, &clock, Duration::from_secs(10)),
            Err(Duration::from_secs(60))
        );
        clock.advance(Duration::from_secs(60));
        limiter.block_until("a", clock.now() + Duration::from_secs(30));
        limiter
            .acquire("a", l, &clock, Duration::from_secs(31))
            .unwrap();
        assert_eq!(clock.now(), Duration::from_secs(90));
    }

    #[test]
    fn idle_buckets_are_pruned_busy_ones_kept() {
        let limiter = Limiter::default();
        let l = Some(RateLimit::new(1, Duration::from_secs(60)));
        assert_eq!(
            limiter.try_acquire("busy", l, Duration::from_secs(100)),
            Admission::Go
        );
        for i in 0..PRUNE_ABOVE + 1 {
            limiter.try_acquire(&format!("idle-{i}"), l, Duration::ZERO);
        }
        limiter.try_acquire("new", l, Duration::from_secs(120));
        let buckets = limiter.buckets.lock().unwrap();
        assert!(buckets.len() <= 2, "{}", buckets.len());
        assert!(buckets.contains_key("busy"));
    }

    #[test]
    fn unlimited_upstreams_are_only_held_back_by_block_until() {
        let clock = ManualClock::default();
        let limiter = Limiter::default();
        for _ in 0..1000 {
            limiter.acquire("a", None, &clock, Duration::ZERO).unwrap();
        }
        limiter.block_until("a", Duration::from_secs(5));
        assert_eq!(
            limiter.try_acquire("a", None, Duration::ZERO),
            Admission::Wait(Duration::from_secs(5))
        );
        limiter
            .acquire("a", None, &clock, Duration::from_secs(5))
            .unwrap();
        assert_eq!(clock.now(), Duration::from_secs(5));
    }
}
