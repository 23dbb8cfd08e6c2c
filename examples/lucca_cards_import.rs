//! Figures for `benches/RESULTS.md` (issue 14): "import all" of a Lucca tenant into Cards
//! under Lucca's 50 requests / 60 s — shared with another integration of the tenant — and
//! Cards' (simulated) 10 requests / s, with the real `.wasm` connectors, the real outbound
//! layer and a real SQLite store. Then a resync, which must write nothing.
//!
//! ```text
//! cargo run --release --example lucca_cards_import -- [--employees 2000] [--time-scale 60]
//!     [--lucca-page-size 1000] [--other-integration 45]
//! ```
//!
//! Both simulators and the host's clock run `--time-scale` simulated seconds per real
//! second, so the waits Lucca's limit imposes cost simulated, not real, minutes; the
//! simulated span is printed beside the wall time. `--other-integration N` spends N of
//! Lucca's 50 requests just before the import, as another integration of the tenant would;
//! `--lucca-page-size` (the Lucca connector's `page_size`) sets how many requests the
//! import itself needs.

use std::error::Error;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use muster::config::Config;
use muster::connect::Host;
use muster::engine::{Mode, RunOptions, RunReport};
use muster::store::{Store, Trigger};
use muster_core::Date;
use muster_outbound::clock::Clock;
use muster_sandbox::{CardsOptions, CardsSim, LuccaOptions, LuccaSim, RequestLog, Tenant};

const TODAY: &str = "2026-06-01";
const FLOW: &str = "lucca-to-cards";

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The host's clock at the simulators' scale (as `tests/support/lucca.rs`'s).
#[derive(Debug)]
struct ScaledClock {
    origin: Instant,
    wall: std::time::SystemTime,
    scale: f64,
}

impl Clock for ScaledClock {
    fn now(&self) -> std::time::Duration {
        self.origin.elapsed().mul_f64(self.scale)
    }
    fn wall(&self) -> std::time::SystemTime {
        self.wall + self.now()
    }
    fn sleep(&self, d: std::time::Duration) {
        std::thread::sleep(d.div_f64(self.scale));
    }
}

struct Bench {
    lucca: LuccaSim,
    cards: CardsSim,
    host: Host,
    store: Store,
    config: Config,
}

impl Bench {
    fn run(&mut self) -> Result<RunReport, Box<dyn Error>> {
        let flow = self.config.flow(FLOW)?;
        let options = RunOptions {
            trigger: Trigger::Manual,
            only: None,
            today: Date::parse(TODAY)?,
            approver: "bench".into(),
        };
        let mode = Mode::Sync {
            approve_held: false,
        };
        Ok(self
            .host
            .run_flow(&self.config, &mut self.store, flow, mode, &options)?)
    }

    fn phase(&mut self, name: &str) -> Result<RunReport, Box<dyn Error>> {
        self.lucca.clear_request_log();
        self.cards.clear_request_log();
        let sim_start = self.lucca.clock().now();
        let started = Instant::now();
        let report = self.run()?;
        let wall = started.elapsed().as_secs_f64();
        let span = self.lucca.clock().now() - sim_start;
        let lucca = self.lucca.request_log();
        let cards = self.cards.request_log();
        println!("## {name}");
        println!(
            "outcome: {:?}, failed calls: {}",
            report.outcome,
            report.failed()
        );
        println!("planned: {:?}", report.planned_counts());
        println!("wall time: {wall:.1} s; simulated span: {span:.0} s");
        println!(
            "lucca: {} requests, {} answered 429, most accepted in any 60 s: {}",
            lucca.records.len(),
            lucca.count_status(429),
            lucca.max_accepted_in_window(60.0)
        );
        let (reads, writes, throttled) = counts(&cards);
        println!("cards: {reads} reads, {writes} writes, {throttled} answered 429");
        for f in report.applied.failures.iter().take(5) {
            println!("  failure: {f:?}");
        }
        println!();
        Ok(report)
    }
}

fn counts(log: &RequestLog) -> (usize, usize, usize) {
    let throttled = log.count_status(429);
    let reads = log
        .records
        .iter()
        .filter(|r| r.status != 429 && r.method == "GET")
        .count();
    (reads, log.records.len() - throttled - reads, throttled)
}

/// Another integration of the tenant spends `n` requests of Lucca's shared budget.
fn other_integration(lucca: &LuccaSim, n: usize) -> Result<(), Box<dyn Error>> {
    let addr = lucca.base_url().trim_start_matches("http://").to_string();
    for _ in 0..n {
        let mut s = std::net::TcpStream::connect(&addr)?;
        write!(
            s,
            "GET /api/v3/users?paging=0,1 HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: lucca application={}\r\nConnection: close\r\n\r\n",
            lucca.api_key()
        )?;
        s.read_to_string(&mut String::new())?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let employees: usize = arg(&args, "--employees", 2_000);
    let scale: f64 = arg(&args, "--time-scale", 60.0);
    let page: usize = arg(&args, "--lucca-page-size", 1000);
    let other: usize = arg(&args, "--other-integration", 45);

    let lucca = LuccaSim::start(
        Tenant::generate(42, employees),
        LuccaOptions {
            time_scale: scale,
            ..LuccaOptions::default()
        },
    )?;
    let cards = CardsSim::start(CardsOptions {
        time_scale: scale,
        ..CardsOptions::default()
    })?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("lucca.key"), lucca.api_key())?;
    std::fs::write(dir.path().join("cards.token"), cards.token())?;
    let cache = std::env::temp_dir().join("muster-lucca-cards-cache");
    let text = format!(
        r#"[tenant]
name = "bench"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}", page_size = {page} }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.cards]
plugin = "cards"
settings = {{ base_url = "{cards}", tenant = "{tenant}" }}
secret = {{ file = "cards.token" }}
allow_loopback = true

[flows.{FLOW}]
source = "lucca"
target = "cards"
correlation = ["work_email"]
options = {{ sync_groups = true }}
"#,
        cache = cache.display(),
        lucca = lucca.base_url(),
        cards = cards.base_url(),
        tenant = cards.tenant(),
    );
    let path = dir.path().join("muster.toml");
    std::fs::write(&path, &text)?;
    let config = Config::parse(&text, &path, dir.path())?;
    let clock = ScaledClock {
        origin: Instant::now(),
        wall: std::time::SystemTime::now(),
        scale,
    };
    let host = Host::with_clock(&config, Arc::new(clock))?;
    for name in ["lucca", "cards"] {
        host.connect(config.connection(name)?)?;
    }
    let store = Store::open(&config.tenant.state)?;
    let mut bench = Bench {
        lucca,
        cards,
        host,
        store,
        config,
    };
    println!(
        "# Lucca → Cards, {employees} people (seed 42), time scale {scale}, Lucca page size \
         {page}, {other} of Lucca's 50 requests spent by another integration first"
    );
    println!();
    other_integration(&bench.lucca, other)?;
    let first = bench.phase("import all")?;
    let again = bench.phase("resync")?;
    let writes = counts(&bench.cards.request_log()).1;
    if first.failed() > 0 || writes != 0 {
        return Err(format!("failed calls {}, resync writes {writes}", first.failed()).into());
    }
    println!(
        "cards users: {}, groups: {}, resync outcome: {:?}",
        bench.cards.space().users.len(),
        bench.cards.space().groups.len(),
        again.outcome
    );
    Ok(())
}
