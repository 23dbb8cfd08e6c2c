//! Time, injectable: rate-limit waits and retry back-offs go through a [`Clock`], so tests can
//! exercise "50 requests per 60 s" or "Retry-After: 120" without waiting real minutes.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A source of time that can also wait.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic time since an arbitrary origin.
    fn now(&self) -> Duration;
    /// Wall-clock time, used only to interpret an HTTP-date `Retry-After`.
    fn wall(&self) -> SystemTime;
    /// Blocks the calling thread for `d`.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A virtual clock: `sleep` returns at once and moves time forward by the slept duration.
///
/// Meant for tests of waits that are long in real life. It is a plain clock, not a mock of any
/// code path: the limiter and the retry loop run unchanged against it.
#[derive(Debug)]
pub struct ManualClock {
    wall_origin: SystemTime,
    elapsed: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            wall_origin: SystemTime::now(),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }
}

impl ManualClock {
    /// Moves time forward without anyone sleeping.
    pub fn advance(&self, d: Duration) {
        *self.lock() += d;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Duration> {
        // A poisoned clock still holds a valid duration.
        self.elapsed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.lock()
    }
    fn wall(&self) -> SystemTime {
        self.wall_origin + *self.lock()
    }
    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}
