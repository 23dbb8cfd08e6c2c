//! Figures for `benches/RESULTS.md`: requests used and simulated wall time to read a
//! 10 000-employee Lucca tenant with the real connector (`muster-plugin-lucca.wasm`), through
//! the real outbound layer (50 requests / 61 s per tenant, `Retry-After` honoured), against the
//! Lucca simulator on loopback **with its 50 / 60 s limit enforced**.
//!
//! ```text
//! cargo run --release --example lucca_read -- [--employees N] [--page-size N]
//!     [--time-scale S] [--custom-fields]
//! ```
//!
//! Simulated time: the simulator and the host's clock both run `time_scale` simulated seconds
//! per real second (default 1: real time). With a higher scale the rate-limit waits shrink,
//! but so does everything else's weight: processing time is multiplied by the scale too, so
//! the simulated wall time is only meaningful at scale 1 or when waits dominate.

#[path = "../tests/support/lucca.rs"]
mod lucca;

use std::time::Instant;

use muster_sandbox::{LuccaOptions, LuccaSim, Tenant};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let employees: usize = arg(&args, "--employees", 10_000);
    let page_size: usize = arg(&args, "--page-size", 1000);
    let scale: f64 = arg(&args, "--time-scale", 1.0);
    let custom = args.iter().any(|a| a == "--custom-fields");

    let sim = LuccaSim::start(
        Tenant::generate(42, employees),
        LuccaOptions {
            time_scale: scale,
            ..LuccaOptions::default()
        },
    )?;
    let mut settings = vec![("page_size", page_size.to_string())];
    if custom {
        settings.push(("custom_fields", "*".to_string()));
    }
    let mut c = lucca::connect(
        &sim,
        lucca::Connect {
            settings,
            time_scale: scale,
            cache_dir: Some(std::env::temp_dir().join("muster-lucca-read-cache")),
            ..lucca::Connect::default()
        },
    )?;
    // Warm-up outside the figures: compile/load is not part of a read.
    sim.clear_request_log();

    let real = Instant::now();
    let sim_start = sim.clock().now();
    let people = c.instance.read_all_people(None)?.people;
    let groups = c.instance.read_all_groups()?.groups;
    let real = real.elapsed();
    let simulated = sim.clock().now() - sim_start;
    let log = sim.request_log();
    let inactive = people.iter().filter(|p| !p.active).count();
    let warnings = c.warnings().len();
    println!(
        "employees={employees} page_size={page_size} time_scale={scale} custom_fields={custom}"
    );
    println!(
        "people={} (inactive {inactive}) departments={} warnings={warnings}",
        people.len(),
        groups.len()
    );
    println!(
        "requests={} (429: {}) max_in_any_60s_window={} simulated_wall_time={:.1}s real_time={:.2}s",
        log.records.len(),
        log.count_status(429),
        log.max_accepted_in_window(60.0),
        simulated,
        real.as_secs_f64()
    );
    Ok(())
}
