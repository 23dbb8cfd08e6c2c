//! Simulated time: the rate limit and timeouts of real vendor APIs are minutes and seconds,
//! tests cannot wait that long, so the simulators run on a clock that can go faster.

use std::time::{Duration, Instant};

/// A clock where `scale` simulated seconds pass per real second (1.0 = real time).
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    start: Instant,
    scale: f64,
}

impl SimClock {
    /// Starts a clock at simulated second 0. A non-positive or non-finite scale means 1.0.
    pub fn new(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        SimClock {
            start: Instant::now(),
            scale,
        }
    }

    /// Simulated seconds elapsed since the simulator started.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.scale
    }

    /// How many simulated seconds pass per real second.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Sleeps for `simulated` seconds of simulated time.
    pub fn sleep(&self, simulated: Duration) {
        std::thread::sleep(simulated.div_f64(self.scale));
    }
}
