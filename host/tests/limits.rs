//! The per-call limits of the sandbox, end to end: the real `misbehave`
//! fixture floods, posts a huge body, waits on a slow vendor, pages for ever;
//! each gets one typed error, and the host goes on with the next call.
//!
//! (The limits inside wasm — table elements, total memory, instance, memory
//! and table counts — need code no Rust guest can emit; they are tested on
//! hand-written modules in `src/runtime/limits.rs`.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use muster::runtime::{Limit, PluginError, PluginInstance, Runtime, RuntimeConfig};

/// A vendor on 127.0.0.1 that answers every request after `delay`, counting
/// them.
fn vendor(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listener");
    let port = server.server_addr().to_ip().expect("ip").port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    thread::spawn(move || {
        for request in server.incoming_requests() {
            counter.fetch_add(1, Ordering::SeqCst);
            let reply = move || {
                thread::sleep(delay);
                let _ = request.respond(tiny_http::Response::from_string("{}"));
            };
            thread::spawn(reply);
        }
    });
    (format!("http://127.0.0.1:{port}/people"), seen)
}

/// The misbehave fixture with network to loopback, configured with `pairs`.
fn networked(rt: &Runtime, pairs: &[(&str, &str)]) -> PluginInstance {
    let (mut instance, _log) = instance_with_outbound(
        rt,
        muster::plugins::fixture_misbehave(),
        &["http://127.0.0.1:*"],
        Vec::new(),
        true,
    );
    instance.configure(&settings(pairs)).expect("configure");
    instance
}

#[test]
fn request_flood_stops_at_the_requests_per_call_limit() {
    let rt = runtime(RuntimeConfig {
        max_requests_per_call: 5,
        ..config()
    });
    let (url, seen) = vendor(Duration::ZERO);
    let mut bad = networked(&rt, &[("mode", "flood"), ("url", &url)]);
    let err = bad.check().unwrap_err();
    assert!(
        matches!(&err, PluginError::LimitExceeded { plugin, limit: Limit::RequestsPerCall(5) } if plugin == "conn"),
        "{err:?}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 5, "the sixth never left");
    // The next call, on a fresh instance of the same plugin, starts afresh.
    let mut next = networked(&rt, &[("mode", "fetch"), ("url", &url)]);
    next.check().expect("one request is within the limit");
    assert_eq!(seen.load(Ordering::SeqCst), 6);
    assert_good_plugin_still_works(&rt);
}

#[test]
fn huge_request_body_is_refused_before_it_leaves() {
    let rt = runtime(RuntimeConfig {
        max_request_body: 1 << 20,
        ..config()
    });
    let (url, seen) = vendor(Duration::ZERO);
    let size = (2 << 20).to_string();
    let mut bad = networked(&rt, &[("mode", "huge"), ("url", &url), ("size", &size)]);
    let err = bad.check().unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::LimitExceeded {
                limit: Limit::RequestBody {
                    limit: 1_048_576,
                    size: 2_097_152
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    // A body of exactly the limit goes out.
    let size = (1 << 20).to_string();
    let mut fits = networked(&rt, &[("mode", "huge"), ("url", &url), ("size", &size)]);
    fits.check().expect("a body at the limit is sent");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_good_plugin_still_works(&rt);
}

#[test]
fn time_in_host_http_counts_against_the_call_deadline() {
    let rt = runtime(RuntimeConfig {
        call_timeout: Duration::from_millis(500),
        ..config()
    });
    // The vendor answers after 20 s; muster-outbound's own read timeout is 30 s.
    let (url, seen) = vendor(Duration::from_secs(20));
    let mut bad = networked(&rt, &[("mode", "fetch"), ("url", &url)]);
    let started = Instant::now();
    let err = bad.check().unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, PluginError::Timeout { budget, .. } if budget == Duration::from_millis(500)),
        "{err:?}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    // Generous bound: the budget is 0.5 s, the vendor takes 20 s.
    assert!(took < Duration::from_secs(10), "the call took {took:?}");
    let mut next = networked(&rt, &[("mode", "none")]);
    next.check().expect("the next call works");
    assert_good_plugin_still_works(&rt);
}

#[test]
fn endless_paging_stops_at_the_page_limit() {
    let rt = runtime(RuntimeConfig {
        max_pages_per_read: 50,
        ..config()
    });
    let mut bad = misbehave(&rt, "endless");
    let err = bad.read_all_people(None).unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::LimitExceeded {
                limit: Limit::PagesPerRead {
                    limit: 50,
                    read: "read-people"
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "plugin `fixture-misbehave` exceeded its limit of 50 pages per `read-people`"
    );
    // Not a trap: the same instance takes the next call.
    assert!(!bad.is_poisoned());
    assert_eq!(bad.read_people(None).expect("one page").items.len(), 1);
    bad.check().expect("the next call works");
    assert_good_plugin_still_works(&rt);
}

#[test]
fn a_read_within_the_page_limit_is_whole() {
    let rt = runtime(RuntimeConfig {
        max_pages_per_read: 3,
        ..config()
    });
    // assert_good_plugin_still_works reads 25 people in pages of 10: 3 pages.
    assert_good_plugin_still_works(&rt);
    let plugin = rt.load_file(muster::plugins::fixture_good()).unwrap();
    let mut good = plugin.instantiate(no_network()).unwrap();
    good.configure(&settings(&[("count", "31"), ("page", "10")]))
        .unwrap();
    assert!(matches!(
        good.read_all_people(None),
        Err(PluginError::LimitExceeded {
            limit: Limit::PagesPerRead { limit: 3, .. },
            ..
        })
    ));
}

// Declared vendor rate limits, per connection (issue 16): the host paces a
// connection at what its plugin's manifest declares — also when the
// connection points at a loopback stand-in for the vendor (`allow_loopback`)
// — with one bucket per origin. Time is a `ManualClock`: a wait for a token
// moves it forward at once, so the pacing is read off the clock exactly,
// without waiting real seconds or timing anything.

use muster::config::Config;
use muster::connect::{Host, PACING_MARGIN};
use muster_outbound::RateLimit;
use muster_outbound::clock::{Clock, ManualClock};

/// Leapsome's published limit, as its plugin declares it (30 / s), plus the
/// host's margin for the time a request takes to arrive.
const LEAPSOME: RateLimit = RateLimit::new(
    30,
    Duration::from_millis(1000 + PACING_MARGIN.as_millis() as u64),
);

/// A host on `clock` whose connections (`name`, base URL) are built-in
/// `leapsome` plugins pointed at loopback stand-ins.
fn leapsome_host(
    clock: &Arc<ManualClock>,
    connections: &[(&str, &str)],
) -> (Host, Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "sandbox-token").expect("token");
    let mut text = format!(
        "[tenant]\nname = \"t\"\ntimezone = \"Europe/Paris\"\nstate = \"state.db\"\ncache = {:?}\n",
        cache_dir().display().to_string()
    );
    for (name, url) in connections {
        text.push_str(&format!(
            "\n[connections.{name}]\nplugin = \"leapsome\"\nsettings = {{ base_url = \"{url}\" }}\n\
             secret = {{ file = \"token\" }}\nallow_loopback = true\n"
        ));
    }
    let path = dir.path().join("muster.toml");
    let config = Config::parse(&text, &path, dir.path()).expect("config");
    let host = Host::with_clock(&config, clock.clone()).expect("host");
    (host, config, dir)
}

/// `vendor`'s URL with the SCIM base the Leapsome plugin expects.
fn scim(url: &str) -> String {
    url.replace("/people", "/scim/v1")
}

#[test]
fn a_loopback_stand_in_is_paced_at_the_plugins_declared_limit() {
    let (url, seen) = vendor(Duration::ZERO);
    let clock = Arc::new(ManualClock::default());
    let (host, config, _dir) = leapsome_host(&clock, &[("leapsome", &scim(&url))]);
    let mut leapsome = host
        .connect(&config.connections["leapsome"])
        .expect("connect");
    assert_eq!(
        host.outbound().rate_limit_of("leapsome", &url),
        Some(LEAPSOME),
        "the stand-in gets the limit declared for https://api.leapsome.com"
    );
    // 65 calls of one request each: 30 go at once, 30 when the first tokens
    // come back (1 s + the margin after they were spent), the last 5 after
    // twice that.
    for _ in 0..65 {
        leapsome.check().expect("check");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 65);
    assert_eq!(clock.now(), 2 * LEAPSOME.per);
}

#[test]
fn two_stand_ins_on_two_ports_do_not_share_a_bucket() {
    let (a_url, a_seen) = vendor(Duration::ZERO);
    let (b_url, b_seen) = vendor(Duration::ZERO);
    let clock = Arc::new(ManualClock::default());
    let (host, config, _dir) = leapsome_host(&clock, &[("a", &scim(&a_url)), ("b", &scim(&b_url))]);
    let mut a = host.connect(&config.connections["a"]).expect("connect a");
    let mut b = host.connect(&config.connections["b"]).expect("connect b");
    for _ in 0..30 {
        a.check().expect("a");
        b.check().expect("b");
    }
    assert_eq!(
        clock.now(),
        Duration::ZERO,
        "60 requests, 30 per origin: no wait"
    );
    assert_eq!(
        (a_seen.load(Ordering::SeqCst), b_seen.load(Ordering::SeqCst)),
        (30, 30)
    );
    a.check().expect("a's 31st");
    assert_eq!(clock.now(), LEAPSOME.per, "a's bucket is full");
}

/// A vendor on 127.0.0.1 that answers its first request 429 with
/// `Retry-After: 3600` and the others 200, counting them.
fn throttling_vendor() -> (String, Arc<AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listener");
    let port = server.server_addr().to_ip().expect("ip").port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    thread::spawn(move || {
        for request in server.incoming_requests() {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let response = if n == 1 {
                let retry = tiny_http::Header::from_bytes("Retry-After", "3600").expect("header");
                tiny_http::Response::from_string("{}")
                    .with_status_code(429)
                    .with_header(retry)
            } else {
                tiny_http::Response::from_string("{}")
            };
            let _ = request.respond(response);
        }
    });
    (format!("http://127.0.0.1:{port}/scim/v1"), seen)
}

#[test]
fn a_429_with_retry_after_holds_back_every_call_to_that_origin() {
    let (throttled_url, throttled_seen) = throttling_vendor();
    let (other_url, other_seen) = vendor(Duration::ZERO);
    let clock = Arc::new(ManualClock::default());
    let (host, config, _dir) = leapsome_host(
        &clock,
        &[
            ("a", &throttled_url),
            ("b", &throttled_url),
            ("c", &scim(&other_url)),
        ],
    );
    let mut a = host.connect(&config.connections["a"]).expect("connect a");
    let mut b = host.connect(&config.connections["b"]).expect("connect b");
    let mut c = host.connect(&config.connections["c"]).expect("connect c");
    // An hour is past the longest retry delay: the 429 goes back to the plugin…
    a.check().expect_err("throttled");
    assert_eq!(throttled_seen.load(Ordering::SeqCst), 1);
    // …and every later call to that origin, from this connection or another,
    // is refused by the host without reaching the vendor (an hour is past
    // the longest wait for a token).
    a.check().expect_err("held back");
    b.check().expect_err("held back");
    assert_eq!(
        throttled_seen.load(Ordering::SeqCst),
        1,
        "nothing else sent"
    );
    // Another origin is not held back.
    c.check().expect("another origin");
    assert_eq!(other_seen.load(Ordering::SeqCst), 1);
    assert_eq!(clock.now(), Duration::ZERO, "nobody waited");
}
