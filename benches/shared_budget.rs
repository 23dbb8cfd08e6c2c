//! What one acquisition from the rate-limit budget shared through PostgreSQL
//! costs (`muster::store::PostgresBudget`, issue 17 item 3): the figure
//! behind "a bucket in the database, not a per-tenant lease".
//!
//! - `alone`: one process, 2 000 acquisitions at Lucca's limit (50 / 61 s)
//!   spread over 40 origins, so every bucket fills to its 50 send times and
//!   every acquisition is admitted — what a request pays before it leaves.
//! - `contended`: 3 processes (this bench started again as workers) take
//!   1 000 times each from **one** bucket at once, at a limit they keep
//!   reaching (50 per 20 ms), so they queue on its row lock; admitted or
//!   told to wait, each answer is one round trip.
//!
//! Each prints the median and p99 of the round trip in µs. The database is
//! the test harness's (`MUSTER_TEST_DATABASE_URL`, else a private cluster
//! on a unix socket: `muster_sandbox::postgres`).
//!
//! Run: `cargo bench --bench shared_budget`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use muster::store::{PostgresBudget, PostgresLocation};
use muster_outbound::{RateLimit, SharedAdmission, SharedLimiter};
use muster_sandbox::postgres::test_database;

/// Set in a worker process: `database-url [password]`.
const WORKER: &str = "MUSTER_BENCH_BUDGET_WORKER";
const CONTENDED_TAKES: usize = 1_000;
const WORKERS: usize = 3;

fn main() {
    if let Ok(spec) = std::env::var(WORKER) {
        return worker(&spec);
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks; nothing to list.
    }
    let db = test_database().unwrap_or_else(|e| panic!("{e}"));
    let location = PostgresLocation::parse(db.url(), db.password().map(str::to_string))
        .expect("test database URL");
    let budget = PostgresBudget::new(&location);
    // The first take connects and migrates: not part of the figure.
    budget
        .try_acquire("https://warm-up.ilucca.net:443", RateLimit::LUCCA)
        .expect("budget");
    let mut times = Vec::with_capacity(2_000);
    for i in 0..2_000 {
        let origin = format!("https://tenant-{}.ilucca.net:443", i % 40);
        let start = Instant::now();
        let admission = budget
            .try_acquire(&origin, RateLimit::LUCCA)
            .expect("budget");
        times.push(start.elapsed());
        assert_eq!(admission, SharedAdmission::Go, "50 per origin fit");
    }
    report("alone: 2000 acquisitions, 40 origins", &mut times, 0);

    let spec = format!("{} {}", db.url(), db.password().unwrap_or_default());
    let exe = std::env::current_exe().expect("this bench");
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            Command::new(&exe)
                .env(WORKER, spec.trim_end())
                .stdout(Stdio::inherit())
                .spawn()
                .expect("worker")
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().expect("worker").success(), "a worker failed");
    }
}

/// One of the contending processes.
fn worker(spec: &str) {
    let mut parts = spec.split(' ');
    let url = parts.next().expect("database URL");
    let location = PostgresLocation::parse(url, parts.next().map(str::to_string)).expect("URL");
    let budget = PostgresBudget::new(&location);
    let limit = RateLimit::new(50, Duration::from_millis(20));
    let origin = "https://contended.ilucca.net:443";
    budget.try_acquire(origin, limit).expect("budget");
    let mut times = Vec::with_capacity(CONTENDED_TAKES);
    let mut waits = 0;
    for _ in 0..CONTENDED_TAKES {
        let start = Instant::now();
        let admission = budget.try_acquire(origin, limit).expect("budget");
        times.push(start.elapsed());
        if matches!(admission, SharedAdmission::Wait(_)) {
            waits += 1;
        }
    }
    report(
        &format!(
            "contended: process {} of {WORKERS}, {CONTENDED_TAKES} acquisitions of one bucket",
            std::process::id()
        ),
        &mut times,
        waits,
    );
}

fn report(what: &str, times: &mut [Duration], waits: usize) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_micros();
    println!(
        "{what}: median {} µs, p99 {} µs, max {} µs ({waits} answered \"wait\")",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
