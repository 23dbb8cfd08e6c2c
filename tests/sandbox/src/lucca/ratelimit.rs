//! Lucca's limit: 50 requests per 60 s per tenant domain, shared by every integration, then
//! 429 with `Retry-After`. Modelled as a sliding window over *simulated* time, and every request
//! is logged so tests can check a client never bursts past the limit.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::faults::{Fault, FaultKind};
use crate::SimClock;
use crate::server::{Request, Response};

/// The limit: at most `requests` accepted in any `window_secs` simulated seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub requests: usize,
    pub window_secs: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests: 50,
            window_secs: 60.0,
        }
    }
}

/// Sliding-window state: simulated times of the accepted requests still inside the window.
#[derive(Debug, Default)]
pub struct Limiter {
    accepted: VecDeque<f64>,
}

impl Limiter {
    /// Accepts a request at simulated time `now`, or returns the whole simulated seconds to
    /// wait (`Retry-After`, at least 1) until the oldest request leaves the window.
    pub fn try_acquire(&mut self, limit: &RateLimit, now: f64) -> Result<(), u64> {
        while self
            .accepted
            .front()
            .is_some_and(|t| now - t >= limit.window_secs)
        {
            self.accepted.pop_front();
        }
        if self.accepted.len() < limit.requests {
            self.accepted.push_back(now);
            return Ok(());
        }
        let oldest = self.accepted.front().copied().unwrap_or(now);
        Err(((oldest + limit.window_secs - now).ceil() as u64).max(1))
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// 1-based arrival order (what faults are keyed on).
    pub seq: u64,
    /// Simulated seconds since the simulator started.
    pub at: f64,
    pub method: String,
    /// Path and query.
    pub url: String,
    pub status: u16,
    /// The client socket's port on 127.0.0.1: which connection, hence which process, sent
    /// the request (a test that must kill the process applying writes looks it up).
    pub peer_port: Option<u16>,
}

/// What every simulator does around its routes: numbers `request` (from 1, in arrival
/// order), finds the fault planned for that number, answers with `answer` (given the
/// number, the simulated time and the fault), and logs the request with the status it got.
pub(crate) fn serve_logged(
    seq: &AtomicU64,
    clock: &SimClock,
    faults: &[Fault],
    log: &Mutex<RequestLog>,
    request: &Request,
    answer: impl FnOnce(u64, f64, Option<&FaultKind>) -> Response,
) -> Response {
    let seq = seq.fetch_add(1, Ordering::SeqCst) + 1;
    let at = clock.now();
    let fault = faults.iter().find(|f| f.nth == seq).map(|f| &f.kind);
    let response = answer(seq, at, fault);
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .records
        .push(RequestRecord {
            seq,
            at,
            method: request.method.clone(),
            url: request.url.clone(),
            status: response.status,
            peer_port: request.peer.map(|a| a.port()),
        });
    response
}

/// The requests served so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestLog {
    pub records: Vec<RequestRecord>,
}

impl RequestLog {
    /// The records from index `start` on (none when `start` is past the end).
    pub fn since(&self, start: usize) -> Vec<RequestRecord> {
        self.records
            .get(start..)
            .map(<[RequestRecord]>::to_vec)
            .unwrap_or_default()
    }

    /// Requests that passed the rate limiter (any status but 429).
    pub fn accepted(&self) -> impl Iterator<Item = &RequestRecord> {
        self.records.iter().filter(|r| r.status != 429)
    }

    /// The most accepted requests that fell in any window of `window_secs` simulated seconds;
    /// a well-behaved Lucca client keeps this ≤ 50 for 60 s.
    pub fn max_accepted_in_window(&self, window_secs: f64) -> usize {
        let mut times: Vec<f64> = self.accepted().map(|r| r.at).collect();
        times.sort_by(f64::total_cmp);
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end] - times[start] >= window_secs {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }

    /// How many responses had this status.
    pub fn count_status(&self, status: u16) -> usize {
        self.records.iter().filter(|r| r.status == status).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let limit = RateLimit {
            requests: 2,
            window_secs: 60.0,
        };
        let mut l = Limiter::default();
        assert!(l.try_acquire(&limit, 0.0).is_ok());
        assert!(l.try_acquire(&limit, 10.0).is_ok());
        assert_eq!(l.try_acquire(&limit, 30.0), Err(30));
        assert!(l.try_acquire(&limit, 60.0).is_ok());
        assert_eq!(l.try_acquire(&limit, 60.5), Err(10));
    }
}
