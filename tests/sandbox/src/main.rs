//! `muster-sandbox`: starts a simulated Lucca tenant, a simulated Leapsome organisation and a
//! simulated Cards space on loopback, prints their URLs and secrets, writes a ready `muster.sandbox.toml`, and serves until interrupted (or exits at once with
//! `--once`, for scripts and tests).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use muster_sandbox::{
    CardsOptions, CardsSim, Jitter, LeapsomeOptions, LeapsomeSim, LuccaOptions, LuccaSim,
    SandboxError, Tenant,
};

/// Simulated vendor APIs for trying muster without credentials.
#[derive(Debug, Parser)]
#[command(name = "muster-sandbox", version)]
struct Args {
    /// Employees in the generated Lucca tenant.
    #[arg(long, default_value_t = 100)]
    employees: usize,
    /// Seed of the tenant generator (same seed, same tenant).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory where `muster.sandbox.toml` is written.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Simulated seconds per real second (rate limit windows, timeouts).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Latency of every request to every simulator, in simulated milliseconds (a real
    /// network's round trip; 0 = bare loopback).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Spread of the latency: each request takes `latency-ms` ± up to this many ms
    /// (uniform, deterministic from `--seed`).
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Print and write the config, then exit instead of serving.
    #[arg(long, alias = "check")]
    once: bool,
}

const CONFIG_FILE: &str = "muster.sandbox.toml";

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("muster-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), SandboxError> {
    let latency = Duration::from_millis(args.latency_ms);
    let jitter = Jitter {
        max: Duration::from_millis(args.jitter_ms),
        seed: args.seed,
    };
    let options = LuccaOptions {
        time_scale: args.time_scale,
        latency,
        jitter,
        ..LuccaOptions::default()
    };
    let lucca = LuccaSim::start(Tenant::generate(args.seed, args.employees), options)?;
    // The Leapsome organisation starts empty, in the generated tenant's email domain.
    let leapsome = LeapsomeSim::start(LeapsomeOptions {
        time_scale: args.time_scale,
        latency,
        jitter,
        ..LeapsomeOptions::default()
    })?;
    // The Cards space starts empty too.
    let cards = CardsSim::start(CardsOptions {
        time_scale: args.time_scale,
        latency,
        jitter,
        ..CardsOptions::default()
    })?;
    let path = args.out.join(CONFIG_FILE);
    let config = format!(
        "# Written by muster-sandbox: a simulated Lucca tenant of {} employees (seed {}).\n\
         # Run `export LUCCA_API_KEY={}`, `export LEAPSOME_SCIM_TOKEN={}` and\n\
         # `export CARDS_API_TOKEN={}` first, then e.g. `muster plan --config {}`.\n\n{}{}",
        args.employees,
        args.seed,
        lucca.api_key(),
        leapsome.token(),
        cards.token(),
        path.display(),
        muster_sandbox::config_toml(&lucca.base_url(), &leapsome.base_url()),
        muster_sandbox::cards_config_toml(&cards.base_url(), cards.tenant()),
    );
    std::fs::write(&path, config).map_err(|source| SandboxError::Write {
        path: path.display().to_string(),
        source,
    })?;
    println!("lucca: {}", lucca.base_url());
    println!("export LUCCA_API_KEY={}", lucca.api_key());
    println!("leapsome: {}", leapsome.base_url());
    println!("export LEAPSOME_SCIM_TOKEN={}", leapsome.token());
    println!("cards: {} (X-Tenant {})", cards.base_url(), cards.tenant());
    println!("export CARDS_API_TOKEN={}", cards.token());
    println!("config: {}", path.display());
    if args.once {
        return Ok(());
    }
    println!("serving; Ctrl-C to stop");
    loop {
        std::thread::park();
    }
}
