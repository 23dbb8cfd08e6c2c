//! Figures for `benches/RESULTS.md` (issue 14): the Cards statistics
//! write-back into Lucca for N people (default 500) — the first run, a
//! resync with nothing to do, and a night where some scores changed — with
//! the real `lucca` plugin, the statistics fixture source
//! (`plugins/fixtures/stats`), the real outbound layer, a real SQLite store
//! and the Lucca simulator **with its rate limit on** (50 requests / 60 s).
//!
//! ```text
//! cargo run --release --example cards_lucca_writeback -- [--people N] [--trainings T] [--changed C] [--time-scale S]
//! ```
//!
//! Time is simulated: the simulator and the host's outbound client (its
//! token bucket for Lucca's limit, `Retry-After`) both run `--time-scale`
//! simulated seconds per real second (default 60), so the rate limit binds
//! exactly as in production and the simulated span is the production
//! duration. Half the people are matched through the Lucca → Cards flow's
//! links, half by work email. Printed per phase: wall time, simulated span,
//! Lucca's requests by method (and the 429s: the host paces only the
//! manifest's Lucca hosts, not the loopback simulator, so the connector's
//! retries on 429 do the pacing here), the rows written and the accepted
//! requests per row.

#[path = "../tests/support/lucca.rs"]
mod lucca_support;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use lucca_support::ScaledClock;
use muster::config::Config;
use muster::connect::Host;
use muster::engine::{Mode, RunOptions, RunReport};
use muster::store::{LinkKind, Store, Trigger};
use muster_core::{ActionKind, Date};
use muster_sandbox::{LuccaOptions, LuccaSim, Tenant, User};
use serde_json::{Value, json};

const TODAY: &str = "2026-06-01";
const FLOW: &str = "cards-to-lucca";
const IDENTITIES: &str = "lucca-to-cards";

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Current employees with a work email nobody else has: the people Cards
/// knows.
fn current_unique(t: &Tenant) -> Vec<User> {
    let mut by_mail: BTreeMap<String, usize> = BTreeMap::new();
    for u in &t.users {
        if let Some(m) = &u.mail {
            *by_mail.entry(m.to_lowercase()).or_default() += 1;
        }
    }
    t.users
        .iter()
        .filter(|u| {
            u.mail
                .as_ref()
                .is_some_and(|m| by_mail[&m.to_lowercase()] == 1)
                && u.dt_contract_start.as_deref().is_some_and(|d| d <= TODAY)
                && u.dt_contract_end.is_none()
        })
        .cloned()
        .collect()
}

/// The statistics: `trainings` rows per person; the first `changed` people
/// have `bump` added to their first score.
fn stats(people: &[User], trainings: usize, changed: usize, bump: f64) -> Value {
    let rows = |i: usize| -> Vec<Value> {
        (0..trainings)
            .map(|t| {
                let score = ((i * 7 + t * 13) % 100) as f64
                    + if t == 0 && i < changed { bump } else { 0.0 };
                json!({
                    "e_title": format!("Cards training {t}"),
                    "e_link": format!("https://cards.example/t/{t}"),
                    "e_progress": 100,
                    "e_score": score,
                    "e_last_completion_date": "2026-05-20",
                })
            })
            .collect()
    };
    Value::Array(
        people
            .iter()
            .enumerate()
            .map(|(i, u)| {
                // Even people are known to Cards by another email: only the
                // Lucca → Cards link matches them.
                let email = if i % 2 == 0 {
                    format!("c{i}@cards.example")
                } else {
                    u.mail.clone().unwrap_or_default()
                };
                json!({"id": format!("c-{i}"), "email": email, "rows": rows(i)})
            })
            .collect(),
    )
}

fn config(
    dir: &std::path::Path,
    lucca: &LuccaSim,
    people: &Value,
) -> Result<Config, Box<dyn Error>> {
    let cache = std::env::temp_dir().join("muster-cards-lucca-writeback-cache");
    let text = format!(
        r#"[tenant]
name = "bench"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}", custom_fields = "e_formation" }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.cards]
plugin = "{stats}"
settings = {{ people = '{people}' }}
hosts = ["https://cards.example"]

[flows.{IDENTITIES}]
source = "lucca"
target = "cards"

[flows.{FLOW}]
source = "cards"
target = "lucca"
schedule = "daily 01:00"
actions = ["link", "update"]
fields = ["custom:e_formation"]
row_keys = {{ e_formation = "e_title" }}
correlation = ["links:{IDENTITIES}", "work_email"]
"#,
        cache = cache.display(),
        lucca = lucca.base_url(),
        stats = muster::plugins::path("fixture-stats").display(),
    );
    let path = dir.join("muster.toml");
    std::fs::write(&path, &text)?;
    Ok(Config::parse(&text, &path, dir)?)
}

struct Bench {
    lucca: LuccaSim,
    host: Host,
    store: Store,
    dir: tempfile::TempDir,
}

impl Bench {
    fn run(&mut self, people: &Value) -> Result<RunReport, Box<dyn Error>> {
        let config = config(self.dir.path(), &self.lucca, people)?;
        let flow = config.flow(FLOW)?;
        Ok(self.host.run_flow(
            &config,
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

    fn phase(&mut self, name: &str, people: &Value) -> Result<RunReport, Box<dyn Error>> {
        self.lucca.clear_request_log();
        let lucca_start = self.lucca.clock().now();
        let started = Instant::now();
        let report = self.run(people)?;
        let wall = started.elapsed();
        let span = self.lucca.clock().now() - lucca_start;
        let log = self.lucca.request_log();
        let mut by_method: BTreeMap<String, usize> = BTreeMap::new();
        for r in &log.records {
            *by_method.entry(r.method.clone()).or_default() += 1;
        }
        let rows: usize = report
            .steps
            .iter()
            .filter(|s| s.kind == ActionKind::Update)
            .map(|s| s.rows.len())
            .sum();
        let counts = |c: &BTreeMap<String, u64>| {
            c.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("## {name}");
        println!("outcome: {:?}", report.outcome);
        println!(
            "wall time: {:.1} s, simulated span: {:.0} s",
            wall.as_secs_f64(),
            span
        );
        println!("planned: {}", counts(&report.planned_counts()));
        println!(
            "applied: {} (failed {})",
            counts(&report.applied.counts),
            report.failed()
        );
        println!(
            "lucca: {} requests ({}), {} answered 429, most accepted in any 60 s: {}",
            log.records.len(),
            by_method
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            log.count_status(429),
            log.max_accepted_in_window(60.0)
        );
        // Requests Lucca accepted (a 429 is retried by the connector).
        let accepted: Vec<_> = log.records.iter().filter(|r| r.status != 429).collect();
        let accepted_gets = accepted.iter().filter(|r| r.method == "GET").count();
        println!(
            "lucca accepted: {} (GET {accepted_gets}, other {})",
            accepted.len(),
            accepted.len() - accepted_gets
        );
        if rows > 0 {
            let writes = accepted.iter().filter(|r| r.method != "GET").count();
            println!(
                "rows written: {rows}; accepted requests per written row: {:.2} (all), {:.2} (writes only)",
                accepted.len() as f64 / rows as f64,
                writes as f64 / rows as f64
            );
        } else {
            println!("rows written: 0");
        }
        println!();
        if report.failed() > 0 {
            return Err(format!(
                "{} calls failed: {:?}",
                report.failed(),
                report.applied.failures
            )
            .into());
        }
        Ok(report)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = arg(&args, "--people", 500);
    let trainings: usize = arg(&args, "--trainings", 3);
    let changed: usize = arg(&args, "--changed", 50);
    let scale: f64 = arg(&args, "--time-scale", 60.0);

    let lucca = LuccaSim::start(
        Tenant::generate(14, n * 3 / 2 + 50),
        LuccaOptions {
            time_scale: scale,
            ..LuccaOptions::default()
        },
    )?;
    let people: Vec<User> = current_unique(&lucca.tenant())
        .into_iter()
        .take(n)
        .collect();
    if people.len() < n {
        return Err(format!("the tenant has only {} usable people", people.len()).into());
    }
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("lucca.key"), lucca.api_key())?;
    let first = stats(&people, trainings, 0, 0.0);
    let config = config(dir.path(), &lucca, &first)?;
    let host = Host::with_clock(&config, Arc::new(ScaledClock::new(scale)))?;
    // Compile (or load from the cache) the plugins before the clock starts.
    for name in ["lucca", "cards"] {
        host.connect(config.connection(name)?)?;
    }
    let mut store = Store::open(&config.tenant.state)?;
    store.ensure_flow(IDENTITIES, "lucca", "cards")?;
    for (i, u) in people.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        store.add_link(
            IDENTITIES,
            LinkKind::Person,
            &u.id.to_string(),
            &format!("c-{i}"),
        )?;
    }
    let mut bench = Bench {
        lucca,
        host,
        store,
        dir,
    };
    println!(
        "# Cards statistics → Lucca, {n} people × {trainings} trainings, Lucca 50 req / 60 s, \
         time scale {scale}"
    );
    println!();
    bench.phase("first run", &first)?;
    bench.phase("no-change resync", &first)?;
    let writes = bench
        .lucca
        .request_log()
        .records
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    if writes != 0 {
        return Err(format!("the no-change resync sent {writes} writes to Lucca").into());
    }
    bench.phase(
        &format!("night with {changed} changed scores"),
        &stats(&people, trainings, changed, 1.0),
    )?;
    Ok(())
}
