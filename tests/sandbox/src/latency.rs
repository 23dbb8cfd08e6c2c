//! Per-request latency: a fixed part plus uniform jitter, so a run against the simulators
//! takes the time a real network would (a benchmark on bare loopback answers in
//! microseconds and flatters every design that makes more calls than needed).
//!
//! The jitter is deterministic: the delay of request number `seq` comes from a SplitMix64
//! ([`crate::rng::Rng`]) seeded with the options' seed and `seq`, so the same run with the
//! same seed waits the same, whatever order the worker threads pick requests up in.
//! Delays are in simulated time (the simulator's [`crate::SimClock`]), like every other
//! duration of the sandbox, and each request waits on its own thread: latency never
//! serialises requests ([`crate::server`]).

use std::time::Duration;

use crate::rng::Rng;

/// The random part of a request's latency: the options' `latency` ± up to `max`, uniform,
/// never below zero. `Jitter::default()` adds none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Jitter {
    /// Half the width of the range (150 ms ± 50 ms: from 100 to 200 ms).
    pub max: Duration,
    /// Seed of the jitter (same seed, same delays).
    pub seed: u64,
}

impl Jitter {
    /// Up to `max` either side, seed 0.
    pub fn new(max: Duration) -> Self {
        Jitter { max, seed: 0 }
    }

    /// The latency of request number `seq` (1-based arrival order): `fixed` ± the jitter.
    pub fn latency(&self, fixed: Duration, seq: u64) -> Duration {
        if self.max.is_zero() {
            return fixed;
        }
        let width = u64::try_from(self.max.as_nanos())
            .unwrap_or(u64::MAX)
            .min(u64::MAX / 4);
        let mut rng = Rng::new(self.seed ^ seq.wrapping_mul(0xA24B_AED4_963E_E407));
        let offset = Duration::from_nanos(rng.below(2 * width + 1));
        // The part of the range below zero is clamped to zero.
        let below_zero = self.max.saturating_sub(fixed);
        fixed.saturating_sub(self.max) + offset.saturating_sub(below_zero)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS150: Duration = Duration::from_millis(150);

    #[test]
    fn no_jitter_is_the_fixed_latency() {
        assert_eq!(Jitter::default().latency(MS150, 1), MS150);
    }

    #[test]
    fn jitter_stays_in_range_covers_it_and_is_deterministic() {
        let j = Jitter {
            seed: 7,
            ..Jitter::new(Duration::from_millis(50))
        };
        let delays: Vec<Duration> = (1..=10_000).map(|s| j.latency(MS150, s)).collect();
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*min >= Duration::from_millis(100), "{min:?}");
        assert!(*max <= Duration::from_millis(200), "{max:?}");
        // Uniform: both ends of the range are reached within 5 ms, the mean is near 150 ms.
        assert!(*min < Duration::from_millis(105) && *max > Duration::from_millis(195));
        let mean = delays.iter().sum::<Duration>() / delays.len() as u32;
        assert!(
            mean > Duration::from_millis(147) && mean < Duration::from_millis(153),
            "{mean:?}"
        );
        assert_eq!(
            j.latency(MS150, 42),
            j.latency(MS150, 42),
            "same request, same delay"
        );
        let other = Jitter { seed: 8, ..j };
        assert_ne!(
            (1..=20).map(|s| j.latency(MS150, s)).collect::<Vec<_>>(),
            (1..=20)
                .map(|s| other.latency(MS150, s))
                .collect::<Vec<_>>(),
            "another seed, other delays"
        );
    }

    #[test]
    fn jitter_wider_than_the_latency_never_goes_below_zero() {
        let j = Jitter::new(Duration::from_millis(50));
        let delays: Vec<Duration> = (1..1000)
            .map(|s| j.latency(Duration::from_millis(10), s))
            .collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(60)));
        assert!(delays.contains(&Duration::ZERO), "the clamped part is zero");
    }
}
