//! Size cap, timeouts, rate limiting and retries, against real loopback servers.
//!
//! Waits that are long in real life (Lucca's 60 s window, `Retry-After: 120`) run on a
//! `ManualClock`: the HTTP exchanges are real, only the sleeping is virtual.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use muster_outbound::clock::{Clock, ManualClock};
use muster_outbound::{
    Outbound, OutboundError, Policy, RateLimit, Request, RetryPolicy, SharedAdmission,
    SharedLimitError, SharedLimiter,
};

const PLUGIN: &str = "p";

fn with_clock(policy: Policy) -> (Outbound, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let out = Outbound::with_clock(policy, Arc::clone(&clock) as Arc<dyn Clock>).unwrap();
    (out, clock)
}

// ---------------------------------------------------------------- size and time caps

#[test]
fn response_larger_than_the_cap_is_too_large_with_or_without_content_length() {
    let server = TestServer::start(|hit| {
        let r = Reply::ok(vec![b'x'; 10_000]);
        if hit.path == "/chunked" {
            r.chunked()
        } else {
            r
        }
    });
    let policy = Policy {
        max_response_bytes: 4096,
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let out = Outbound::new(policy).unwrap();
    for path in ["/sized", "/chunked"] {
        let err = out
            .send(PLUGIN, Request::new("GET", server.url(path)))
            .unwrap_err();
        assert!(
            matches!(err, OutboundError::TooLarge { limit: 4096, .. }),
            "{path}: {err:?}"
        );
    }
    // At the cap exactly is fine.
    let policy = Policy {
        max_response_bytes: 10_000,
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let out = Outbound::new(policy).unwrap();
    assert_eq!(
        out.send(PLUGIN, Request::new("GET", server.url("/chunked")))
            .unwrap()
            .body
            .len(),
        10_000
    );
}

#[test]
fn head_is_not_judged_by_the_content_length_of_the_body_it_does_not_get() {
    let server = TestServer::start(|_| Reply::ok(vec![b'x'; 10_000]));
    let policy = Policy {
        max_response_bytes: 4096,
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let out = Outbound::new(policy).unwrap();
    let resp = out
        .send(PLUGIN, Request::new("HEAD", server.url("/")))
        .unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
}

#[test]
fn read_timeout_is_retried_for_get_but_not_for_post() {
    let server = TestServer::start(|_| Reply::ok("late").delay(Duration::from_millis(700)));
    let policy = Policy {
        read_timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        },
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let out = Outbound::new(policy).unwrap();

    let err = out
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout { .. }), "{err:?}");
    let err = out
        .send(PLUGIN, Request::new("POST", server.url("/")).body("x"))
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout { .. }), "{err:?}");
    // The (single-threaded) server is still working through its queue: 2 GET attempts and
    // 1 POST attempt, and nothing more.
    let methods: Vec<String> = server.wait_for(3).into_iter().map(|h| h.method).collect();
    assert_eq!(methods, ["GET", "GET", "POST"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.count(), 3);
}

/// A loopback listener that never accepts: once its accept queue (std's backlog, 128) is full,
/// the kernel drops further SYNs and a connect hangs — a connect timeout without leaving the
/// machine.
#[test]
fn connect_timeout_applies_when_the_server_never_accepts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..512 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(_) => break, // the queue is full
        }
    }
    let origin = pat(&format!("http://127.0.0.1:{}", addr.port()));
    let policy = Policy {
        connect_timeout: Duration::from_millis(300),
        retry: RetryPolicy::none(),
        ..loopback_policy(PLUGIN, &[origin])
    };
    let out = Outbound::new(policy).unwrap();
    let start = Instant::now();
    let err = out
        .send(PLUGIN, Request::new("GET", format!("http://{addr}/")))
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout { .. }), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    drop(held);
}

#[test]
fn connection_refused_is_a_transport_error() {
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let origin = pat(&format!("http://127.0.0.1:{port}"));
    let (out, clock) = with_clock(loopback_policy(PLUGIN, &[origin]));
    let err = out
        .send(
            PLUGIN,
            Request::new("GET", format!("http://127.0.0.1:{port}/")),
        )
        .unwrap_err();
    assert!(matches!(err, OutboundError::Transport { .. }), "{err:?}");
    // GET was retried with back-off (3 attempts → 2 waits) on the injected clock.
    assert!(clock.now() > Duration::ZERO);
}

// ---------------------------------------------------------------- rate limiting

/// Largest number of timestamps inside any half-open window of length `per`.
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
fn lucca_burst_never_exceeds_50_requests_in_any_60s_window() {
    let clock = Arc::new(ManualClock::default());
    // The server stamps each arrival with the same (virtual) clock the limiter uses.
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (Arc::clone(&clock), Arc::clone(&stamps));
    let server = TestServer::start(move |_| {
        s.lock().unwrap().push(c.now());
        Reply::ok("")
    });
    let policy = Policy {
        rate_limits: vec![(pat("http://127.0.0.1:*"), RateLimit::LUCCA)],
        max_rate_limit_wait: Duration::from_secs(3600),
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let out = Outbound::with_clock(policy, Arc::clone(&clock) as Arc<dyn Clock>).unwrap();

    for i in 0..130 {
        let resp = out
            .send(
                PLUGIN,
                Request::new("GET", server.url(&format!("/users?i={i}"))),
            )
            .unwrap();
        assert_eq!(resp.status, 200);
        clock.advance(Duration::from_millis(100)); // the plugin does a little work
    }
    let times = stamps.lock().unwrap().clone();
    assert_eq!(times.len(), 130);
    assert_eq!(max_in_window(&times, Duration::from_secs(60)), 50);
    // 130 requests = 50 now, 50 after 60 s, 30 after 120 s.
    let last = *times.last().unwrap();
    assert!(
        last >= Duration::from_secs(120) && last < Duration::from_secs(125),
        "{last:?}"
    );
    // Everything but the plugin's 129 pauses of work was waiting for a token.
    assert_eq!(
        out.rate_limit_waits().get(PLUGIN).copied(),
        Some(last - Duration::from_millis(12_900))
    );
}

#[test]
fn concurrent_burst_respects_the_limit_in_real_time() {
    let server = TestServer::start(|_| Reply::ok(""));
    let per = Duration::from_millis(600);
    let policy = Policy {
        rate_limits: vec![(server.origin(), RateLimit::new(5, per))],
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let out = Arc::new(Outbound::new(policy).unwrap());
    let start = Instant::now();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (out, url) = (Arc::clone(&out), server.url("/"));
            std::thread::spawn(move || {
                for _ in 0..4 {
                    out.send(PLUGIN, Request::new("GET", &url)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let times: Vec<Duration> = server.hits().iter().map(|h| h.at - start).collect();
    assert_eq!(times.len(), 12);
    // Arrival lags admission by loopback latency and scheduling (the machine is shared and
    // busy): judge windows a third shorter than the limit's.
    assert!(max_in_window(&times, per * 2 / 3) <= 5, "{times:?}");
    assert!(
        start.elapsed() >= 2 * per,
        "12 requests at 5/{per:?} need two refills"
    );
}

#[test]
fn host_side_rate_limit_wait_is_bounded() {
    let server = TestServer::start(|_| Reply::ok(""));
    let policy = Policy {
        default_rate_limit: Some(RateLimit::new(1, Duration::from_secs(60))),
        max_rate_limit_wait: Duration::from_secs(5),
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let (out, clock) = with_clock(policy);
    out.send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap();
    let err = out
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap_err();
    match err {
        OutboundError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(60))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(server.count(), 1);
    assert_eq!(
        clock.now(),
        Duration::ZERO,
        "did not wait for a token it could not get"
    );
}

// ---------------------------------------------------------------- retries

/// A server answering `first` for the first `n` requests, then 200.
fn flaky(n: usize, first: Reply) -> TestServer {
    let count = AtomicUsize::new(0);
    TestServer::start(move |_| {
        if count.fetch_add(1, Ordering::SeqCst) < n {
            first.clone()
        } else {
            Reply::ok("ok")
        }
    })
}

#[test]
fn get_is_retried_on_5xx_with_backoff() {
    let server = flaky(2, Reply::status(503));
    let (out, clock) = with_clock(loopback_policy(PLUGIN, &[server.origin()]));
    let resp = out
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap();
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(server.count(), 3);
    // Equal-jitter back-off with base 10 ms: 5..10 ms, then 10..20 ms.
    assert!(
        clock.now() >= Duration::from_millis(15) && clock.now() <= Duration::from_millis(30),
        "{:?}",
        clock.now()
    );
}

#[test]
fn post_and_patch_are_never_retried_on_5xx() {
    for method in ["POST", "PATCH"] {
        let server = flaky(1, Reply::status(500));
        let (out, clock) = with_clock(loopback_policy(PLUGIN, &[server.origin()]));
        let resp = out
            .send(PLUGIN, Request::new(method, server.url("/")).body("{}"))
            .unwrap();
        assert_eq!(resp.status, 500, "{method}");
        assert_eq!(server.count(), 1, "{method}");
        assert_eq!(clock.now(), Duration::ZERO);
    }
}

#[test]
fn put_and_delete_are_retried_on_5xx() {
    for method in ["PUT", "DELETE"] {
        let server = flaky(1, Reply::status(502));
        let (out, _) = with_clock(loopback_policy(PLUGIN, &[server.origin()]));
        let resp = out
            .send(PLUGIN, Request::new(method, server.url("/")))
            .unwrap();
        assert_eq!(resp.status, 200, "{method}");
        assert_eq!(server.count(), 2, "{method}");
    }
}

#[test]
fn post_is_retried_on_429_honouring_retry_after_seconds() {
    let server = flaky(1, Reply::status(429).header("Retry-After", "120"));
    let (out, clock) = with_clock(loopback_policy(PLUGIN, &[server.origin()]));
    let resp = out
        .send(PLUGIN, Request::new("POST", server.url("/")).body("{}"))
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(server.count(), 2);
    assert_eq!(clock.now(), Duration::from_secs(120));
    assert_eq!(
        out.rate_limit_waits().get(PLUGIN).copied(),
        Some(Duration::from_secs(120))
    );
}

#[test]
fn retry_after_http_date_is_honoured() {
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let server = flaky(1, Reply::status(429).header("Retry-After", &when));
    let (out, clock) = with_clock(loopback_policy(PLUGIN, &[server.origin()]));
    let resp = out
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap();
    assert_eq!(resp.status, 200);
    // HTTP-dates have one-second resolution.
    assert!(
        clock.now() >= Duration::from_secs(28) && clock.now() <= Duration::from_secs(30),
        "{:?}",
        clock.now()
    );
}

#[test]
fn persistent_429_comes_back_as_the_response_after_the_last_attempt() {
    let server = flaky(usize::MAX, Reply::status(429).header("Retry-After", "7"));
    let (out, clock) = with_clock(loopback_policy(PLUGIN, &[server.origin()]));
    let resp = out
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap();
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("7"));
    assert_eq!(server.count(), 3, "max_attempts");
    assert_eq!(clock.now(), Duration::from_secs(14));
}

#[test]
fn retry_after_beyond_the_wait_budget_is_returned_at_once() {
    let server = flaky(usize::MAX, Reply::status(429).header("Retry-After", "3600"));
    let policy = Policy {
        retry: RetryPolicy {
            max_total_wait: Duration::from_secs(300),
            ..RetryPolicy::default()
        },
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let (out, clock) = with_clock(policy);
    let resp = out
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap();
    assert_eq!(resp.status, 429);
    assert_eq!(server.count(), 1);
    assert_eq!(clock.now(), Duration::ZERO);
}

#[test]
fn total_wait_is_bounded_across_attempts() {
    let server = flaky(usize::MAX, Reply::status(503).header("Retry-After", "40"));
    let policy = Policy {
        retry: RetryPolicy {
            max_attempts: 10,
            max_total_wait: Duration::from_secs(100),
            ..RetryPolicy::default()
        },
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let (out, clock) = with_clock(policy);
    let resp = out
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap();
    assert_eq!(resp.status, 503);
    // 40 + 40 fits in 100 s, a third 40 would not.
    assert_eq!(server.count(), 3);
    assert_eq!(clock.now(), Duration::from_secs(80));
}

#[test]
fn a_429_holds_back_the_next_requests_to_the_same_upstream() {
    let server = flaky(1, Reply::status(429).header("Retry-After", "30"));
    // No rate limit configured: the upstream's word alone holds requests back.
    let policy = Policy {
        retry: RetryPolicy::none(),
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    let (out, clock) = with_clock(policy);
    assert_eq!(
        out.send(PLUGIN, Request::new("GET", server.url("/")))
            .unwrap()
            .status,
        429
    );
    assert_eq!(
        out.send(PLUGIN, Request::new("GET", server.url("/")))
            .unwrap()
            .status,
        200
    );
    assert_eq!(clock.now(), Duration::from_secs(30));
}

// ---------------------------------------------------------------- shared budget

/// A budget two clients share, kept beside them on the same virtual clock: the contract
/// [`SharedLimiter`] asks of any shared budget (the PostgreSQL one is tested in `muster`'s
/// `host/tests/postgres_flow.rs`, with processes and the Lucca simulator).
#[derive(Debug)]
struct Beside {
    clock: Arc<ManualClock>,
    spent: Mutex<Vec<(String, Duration)>>,
    /// Answer every request with this error instead.
    broken: Option<String>,
    /// The holds asked for (a 429's `Retry-After`).
    held: Mutex<Vec<(String, Duration)>>,
}

impl SharedLimiter for Beside {
    fn try_acquire(
        &self,
        origin: &str,
        limit: RateLimit,
    ) -> Result<SharedAdmission, SharedLimitError> {
        if let Some(detail) = &self.broken {
            return Err(SharedLimitError {
                budget: "beside".into(),
                origin: origin.into(),
                detail: detail.clone(),
            });
        }
        let now = self.clock.now();
        let mut spent = self.spent.lock().unwrap();
        let live: Vec<Duration> = spent
            .iter()
            .filter(|(o, t)| o == origin && now - *t < limit.per)
            .map(|(_, t)| *t)
            .collect();
        if live.len() < limit.requests as usize {
            spent.push((origin.into(), now));
            Ok(SharedAdmission::Go)
        } else {
            Ok(SharedAdmission::Wait(live[0] + limit.per - now))
        }
    }

    fn hold(&self, origin: &str, _: RateLimit, wait: Duration) -> Result<(), SharedLimitError> {
        self.held.lock().unwrap().push((origin.into(), wait));
        Ok(())
    }
}

fn beside(clock: &Arc<ManualClock>, broken: Option<&str>) -> Arc<Beside> {
    Arc::new(Beside {
        clock: Arc::clone(clock),
        spent: Mutex::new(Vec::new()),
        broken: broken.map(str::to_string),
        held: Mutex::new(Vec::new()),
    })
}

/// A client on `clock` with its own limiter at `limit`, waiting at most `max_wait` for it.
fn client_on(
    server: &TestServer,
    limit: RateLimit,
    clock: &Arc<ManualClock>,
    max_wait: Duration,
) -> Outbound {
    let policy = Policy {
        rate_limits: vec![(server.origin(), limit)],
        max_rate_limit_wait: max_wait,
        ..loopback_policy(PLUGIN, &[server.origin()])
    };
    Outbound::with_clock(policy, Arc::clone(clock) as Arc<dyn Clock>).unwrap()
}

/// Two clients on one virtual clock, each with its own limiter at `limit`.
fn two_clients(server: &TestServer, limit: RateLimit) -> (Outbound, Outbound, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let hour = Duration::from_secs(3600);
    (
        client_on(server, limit, &clock, hour),
        client_on(server, limit, &clock, hour),
        clock,
    )
}

/// Both clients send `n` requests each, alternating; the virtual send times.
fn alternate(
    a: &Outbound,
    b: &Outbound,
    clock: &ManualClock,
    server: &TestServer,
    n: usize,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for i in 0..n {
        for out in [a, b] {
            out.send(PLUGIN, Request::new("GET", server.url(&format!("/?i={i}"))))
                .unwrap();
            times.push(clock.now());
        }
    }
    times
}

#[test]
fn a_shared_budget_paces_two_clients_together() {
    let server = TestServer::start(|_| Reply::ok(""));
    let limit = RateLimit::new(5, Duration::from_secs(60));
    // Alone, each client keeps to 5 a minute, and together they send 10.
    let (a, b, clock) = two_clients(&server, limit);
    let times = alternate(&a, &b, &clock, &server, 5);
    assert_eq!(max_in_window(&times, limit.per), 10);
    // Sharing one budget, 5 a minute together: the second five wait a window.
    let (a, b, clock) = two_clients(&server, limit);
    let shared: Arc<dyn SharedLimiter> = beside(&clock, None);
    a.set_shared_limiter(Some(Arc::clone(&shared)));
    b.set_shared_limiter(Some(shared));
    let times = alternate(&a, &b, &clock, &server, 5);
    assert_eq!(max_in_window(&times, limit.per), 5);
    assert_eq!(times[9], Duration::from_secs(60));
    assert_eq!(server.count(), 20);
    // The wait for the shared budget is a rate-limit wait like any other.
    let waits = |o: &Outbound| {
        o.rate_limit_waits()
            .get(PLUGIN)
            .copied()
            .unwrap_or_default()
    };
    let waited = waits(&a) + waits(&b);
    assert_eq!(waited, Duration::from_secs(60));
}

#[test]
fn a_budget_that_cannot_be_read_fails_the_request_unsent() {
    let server = TestServer::start(|_| Reply::ok(""));
    let limit = RateLimit::new(5, Duration::from_secs(60));
    let (a, _, clock) = two_clients(&server, limit);
    a.set_shared_limiter(Some(beside(&clock, Some("connection refused"))));
    let err = a
        .send(PLUGIN, Request::new("GET", server.url("/users")))
        .unwrap_err();
    assert!(
        matches!(&err, OutboundError::BudgetUnavailable { source, .. }
            if source.origin == server.url("").trim_end_matches('/')
                && source.detail == "connection refused"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "p: GET {} not sent: the shared rate-limit budget (beside) for {} cannot be read: connection refused",
            server.url("/users"),
            server.url("").trim_end_matches('/')
        )
    );
    assert_eq!(server.count(), 0, "nothing goes out unpaced");
    // A request with no limit does not need the budget.
    let unlimited = Outbound::new(loopback_policy(PLUGIN, &[server.origin()])).unwrap();
    unlimited.set_shared_limiter(a.shared_limiter());
    unlimited
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap();
    assert_eq!(server.count(), 1);
}

#[test]
fn a_spent_shared_budget_waits_at_most_the_policys_wait() {
    let server = TestServer::start(|_| Reply::ok(""));
    let limit = RateLimit::new(1, Duration::from_secs(60));
    let clock = Arc::new(ManualClock::default());
    let a = client_on(&server, limit, &clock, Duration::from_secs(3600));
    let b = client_on(&server, limit, &clock, Duration::from_secs(10));
    let shared: Arc<dyn SharedLimiter> = beside(&clock, None);
    a.set_shared_limiter(Some(Arc::clone(&shared)));
    b.set_shared_limiter(Some(shared));
    a.send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap();
    let err = b
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap_err();
    assert!(
        matches!(err, OutboundError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(60)),
        "{err:?}"
    );
    assert_eq!(server.count(), 1);
    assert_eq!(
        clock.now(),
        Duration::ZERO,
        "did not wait for what it could not get"
    );
}

#[test]
fn a_429s_retry_after_is_handed_to_the_shared_budget() {
    let server = flaky(1, Reply::status(429).header("Retry-After", "7"));
    let limit = RateLimit::new(5, Duration::from_secs(60));
    let (a, _, clock) = two_clients(&server, limit);
    let shared = beside(&clock, None);
    a.set_shared_limiter(Some(shared.clone()));
    let resp = a
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        *shared.held.lock().unwrap(),
        vec![(
            server.url("").trim_end_matches('/').to_string(),
            Duration::from_secs(7)
        )],
        "every process backs off, not only this one"
    );
}
