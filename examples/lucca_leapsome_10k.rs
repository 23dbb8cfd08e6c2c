//! Figures for `benches/RESULTS.md` (issue 6): the Lucca → Leapsome flow on a
//! 10 000-person tenant — the initial sync, then a resync with nothing to do —
//! with the real `.wasm` connectors, the real outbound layer, a real SQLite
//! store, and both simulators **with their rate limits on**: Lucca's 50
//! requests / 60 s and Leapsome's 30 requests / s.
//!
//! ```text
//! cargo run --release --example lucca_leapsome_10k -- [--people N] [--latency-ms L]
//!     [--jitter-ms J] [--lucca-time-scale S] [--max-in-flight N]
//! ```
//!
//! `--latency-ms` / `--jitter-ms` give both simulators a per-request latency of L ± J ms
//! (uniform, deterministic from seed 42; default 0: bare loopback), so the figures reflect a
//! real network (issue 16: 150 ± 50 ms). `--employees` is an alias of `--people`.
//! `--max-in-flight` is the Leapsome connection's `max_in_flight` (default 8,
//! docs/concurrency.md).
//!
//! Printed per phase: wall time, the plan's counts, what was applied, Lucca's
//! requests (and 429s, and the most accepted in any 60 simulated seconds),
//! Leapsome's reads / writes / throttled (429) requests and writes by kind,
//! when each kind of Leapsome request was served (the phases of the apply), the calls made in
//! all, and the **pacing ratio**: wall time ÷ (Leapsome
//! requests ÷ 30 / s), the time Leapsome's own limit makes those requests
//! take at the least (issue 16's goal: ≤ 1.15 for the initial sync).
//!
//! Leapsome's 30 requests per second is the real vendor limit and it bounds
//! the initial sync from below: every account is a POST of its core
//! attributes plus a PATCH of the rest (Leapsome's POST keeps core attributes
//! only), a membership write per team it joins, and a manager write when its
//! manager's account did not exist yet at create time; every team is one
//! create. Printed: Leapsome's writes by kind and the calls per created account. The Lucca side
//! reads 15 pages per sync at page size 1000, well under its per-minute
//! budget, so its limit never binds here; `--lucca-time-scale` (simulated
//! seconds per real second, default 1 = real time) exists to make it bind
//! sooner in simulated time, and the simulated span is printed either way.

use std::error::Error;
use std::time::{Duration, Instant};

use muster::config::Config;
use muster::connect::Host;
use muster::engine::{Mode, RunOptions, RunReport};
use muster::store::{Store, Trigger};
use muster_core::Date;
use muster_sandbox::{Jitter, LeapsomeOptions, LeapsomeSim, LuccaOptions, LuccaSim, Tenant};

/// The sandbox tenants' "today".
const TODAY: &str = "2026-06-01";
const FLOW: &str = "people";
/// Leapsome's published limit, requests per second.
const LEAPSOME_PER_SECOND: f64 = 30.0;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Bench {
    lucca: LuccaSim,
    leapsome: LeapsomeSim,
    host: Host,
    store: Store,
    config: Config,
}

impl Bench {
    fn run(&mut self) -> Result<RunReport, Box<dyn Error>> {
        let flow = self.config.flow(FLOW)?;
        // As `muster sync`: the policy fitted to what Leapsome declares it stores.
        Ok(self.host.run_flow(
            &self.config,
            &mut self.store,
            flow,
            Mode::Sync {
                approve_held: false,
            },
            &RunOptions {
                trigger: Trigger::Manual,
                only: None,
                today: Date::parse(TODAY)?,
                approver: "bench".into(),
            },
        )?)
    }

    /// Runs one phase and prints its figures.
    fn phase(&mut self, name: &str) -> Result<RunReport, Box<dyn Error>> {
        self.lucca.clear_request_log();
        self.leapsome.clear_request_log();
        let lucca_start = self.lucca.clock().now();
        let started = Instant::now();
        let report = self.run()?;
        let wall = started.elapsed();
        let lucca_span = self.lucca.clock().now() - lucca_start;
        let lucca = self.lucca.request_log();
        let leapsome = self.leapsome.request_counts();
        let fmt = |counts: &std::collections::BTreeMap<String, u64>| {
            counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("## {name}");
        println!("outcome: {:?}", report.outcome);
        println!("wall time: {:.1} s", wall.as_secs_f64());
        println!("planned: {}", fmt(&report.planned_counts()));
        println!(
            "applied: {} (failed {})",
            fmt(&report.applied.counts),
            report.failed()
        );
        println!(
            "lucca: {} requests ({} answered 429), most accepted in any 60 s: {}, simulated span {:.1} s",
            lucca.records.len(),
            lucca.count_status(429),
            lucca.max_accepted_in_window(60.0),
            lucca_span
        );
        println!(
            "leapsome: {} reads, {} writes, {} throttled (429)",
            leapsome.reads, leapsome.writes, leapsome.throttled
        );
        // Leapsome's 30 requests/s counts reads and writes alike: the floor is
        // every Leapsome request at that rate.
        let requests = (leapsome.reads + leapsome.writes) as f64;
        if requests > 0.0 {
            let floor = requests / LEAPSOME_PER_SECOND;
            println!(
                "pacing: wall ÷ (Leapsome requests ÷ 30/s) = {:.1} s ÷ {floor:.1} s = {:.3}",
                wall.as_secs_f64(),
                wall.as_secs_f64() / floor
            );
        }
        let log = self.leapsome.request_log();
        let writes = write_kinds(&log);
        println!("leapsome writes by kind: {}", fmt(&writes));
        println!("leapsome requests by kind, when (s after this phase's first request):");
        for (kind, span) in spans(&log) {
            println!(
                "  {kind}: {} from {:.1} to {:.1} s ({:.1} s, {:.1} per s)",
                span.count,
                span.first,
                span.last,
                span.last - span.first,
                span.count as f64 / (span.last - span.first).max(1.0 / LEAPSOME_PER_SECOND)
            );
        }
        let creates = writes.get("POST /Users").copied().unwrap_or(0);
        if creates > 0 {
            let all: u64 = writes.values().sum();
            let groups = writes.get("POST /Groups").copied().unwrap_or(0);
            println!(
                "calls per created account (POST + PATCH + set-manager + memberships, teams \
                 excluded): {:.2}",
                (all - groups) as f64 / creates as f64
            );
        }
        let calls = lucca.records.len() + leapsome.reads + leapsome.writes;
        println!(
            "calls made: {calls} (Lucca {}, Leapsome reads {}, Leapsome writes {})",
            lucca.records.len(),
            leapsome.reads,
            leapsome.writes
        );
        for f in report.applied.failures.iter().take(5) {
            println!("  failure: {f:?}");
        }
        println!();
        Ok(report)
    }
}

/// Leapsome writes that were served (429s excluded) by method and collection:
/// `POST /Users`, `PATCH /Users`, `POST /Groups`, `PATCH /Groups`.
fn write_kinds(log: &muster_sandbox::RequestLog) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for r in &log.records {
        if r.status == 429 || r.method == "GET" {
            continue;
        }
        let path = r.url.split('?').next().unwrap_or_default();
        let collection = if path.contains("/Groups") {
            "/Groups"
        } else {
            "/Users"
        };
        *out.entry(format!("{} {collection}", r.method)).or_insert(0) += 1;
    }
    out
}

/// When one kind of request was served: how many, the first and the last.
struct Span {
    count: u64,
    first: f64,
    last: f64,
}

/// Leapsome requests by method and collection (those answered 429 apart, as `429 …`), each
/// with the span of its arrivals, in seconds after the log's first request: the run's phases
/// (teams created, accounts created, teams filled…) follow one another, so this shows where
/// the wall time goes, and when Leapsome throttled.
fn spans(log: &muster_sandbox::RequestLog) -> std::collections::BTreeMap<String, Span> {
    let start = log
        .records
        .iter()
        .map(|r| r.at)
        .fold(f64::INFINITY, f64::min);
    let mut out = std::collections::BTreeMap::new();
    for r in &log.records {
        let path = r.url.split('?').next().unwrap_or_default();
        let collection = if path.contains("/Groups") {
            "/Groups"
        } else {
            "/Users"
        };
        let at = r.at - start;
        let throttled = if r.status == 429 { "429 " } else { "" };
        let span = out
            .entry(format!("{throttled}{} {collection}", r.method))
            .or_insert(Span {
                count: 0,
                first: at,
                last: at,
            });
        span.count += 1;
        span.first = span.first.min(at);
        span.last = span.last.max(at);
    }
    out
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let employees: usize = arg(&args, "--people", arg(&args, "--employees", 10_000));
    let lucca_scale: f64 = arg(&args, "--lucca-time-scale", 1.0);
    let latency_ms: u64 = arg(&args, "--latency-ms", 0);
    let jitter = Jitter {
        max: Duration::from_millis(arg(&args, "--jitter-ms", 0)),
        seed: 42,
    };
    // Lucca's latency is in its simulated time: scaled so that it is the same in real time.
    let latency = Duration::from_millis(latency_ms);
    let in_flight: usize = arg(&args, "--max-in-flight", muster::config::DEFAULT_IN_FLIGHT);

    let lucca = LuccaSim::start(
        Tenant::generate(42, employees),
        LuccaOptions {
            time_scale: lucca_scale,
            latency: latency.mul_f64(lucca_scale),
            jitter: Jitter {
                max: jitter.max.mul_f64(lucca_scale),
                ..jitter
            },
            ..LuccaOptions::default()
        },
    )?;
    // The default options: 30 requests per (real) second, then 429.
    let leapsome = LeapsomeSim::start(LeapsomeOptions {
        latency,
        jitter,
        ..LeapsomeOptions::default()
    })?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("lucca.key"), lucca.api_key())?;
    std::fs::write(dir.path().join("leapsome.token"), leapsome.token())?;
    let cache = std::env::temp_dir().join("muster-lucca-leapsome-10k-cache");
    let text = format!(
        r#"[tenant]
name = "bench"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}" }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.leapsome]
plugin = "leapsome"
settings = {{ base_url = "{leapsome}" }}
secret = {{ file = "leapsome.token" }}
allow_loopback = true
max_in_flight = {in_flight}

[flows.{FLOW}]
source = "lucca"
target = "leapsome"
options = {{ sync_groups = true, reactivate = true }}
"#,
        cache = cache.display(),
        lucca = lucca.base_url(),
        leapsome = leapsome.base_url(),
    );
    let path = dir.path().join("muster.toml");
    std::fs::write(&path, &text)?;
    let config = Config::parse(&text, &path, dir.path())?;
    let host = Host::new(&config)?;
    // Compile (or load from the cache) both plugins before the clock starts.
    for name in ["lucca", "leapsome"] {
        host.connect(config.connection(name)?)?;
    }
    let store = Store::open(&config.tenant.state)?;
    let mut bench = Bench {
        lucca,
        leapsome,
        host,
        store,
        config,
    };

    println!(
        "# Lucca → Leapsome, {employees} people (seed 42), Lucca time scale {lucca_scale}, \
         Leapsome 30 req/s, latency {latency_ms} ± {} ms, max_in_flight {in_flight}",
        jitter.max.as_millis()
    );
    println!();
    bench.phase("initial sync")?;
    let again = bench.phase("no-change resync")?;
    let writes = bench.leapsome.request_counts().writes;
    if writes != 0 {
        return Err(format!("the no-change resync sent {writes} writes to Leapsome").into());
    }
    println!(
        "accounts: {}, teams: {}, resync outcome: {:?}",
        bench.leapsome.users().len(),
        bench.leapsome.teams().len(),
        again.outcome
    );
    Ok(())
}
