//! muster's core against the tools a user with a big directory would reach
//! for: the same synthetic tenant ([`muster_suite::synthetic`]) is exported
//! to CSV for DuckDB and Polars (`benches/peers/peer_diff.py`), and muster's
//! own records-in-memory → plan is timed here, on one thread:
//!
//! - `prepare + plan`: fingerprinting both sides and the links
//!   ([`muster_core::Prepared::new`], [`muster_core::PreparedLinks::new`]),
//!   which the host does as it reads, then [`muster_core::plan`];
//! - `plan`: the plan alone, on inputs prepared beforehand.
//!
//! The medians and the plan's counts go to `DIR/muster.json`, so the peer
//! script can check that every engine found the same changes.
//!
//! Run: `cargo run --release --example peer_diff -- DIR [PEOPLE] [RUNS]`
//! (defaults 1,000,000 people and 5 runs), or `benches/peers/run.sh`, which
//! runs all three engines in one go.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use muster_core::{ActionKind, Input, Person, Prepared, PreparedLinks, Side};
use muster_suite::synthetic::Tenant;

const CHURN_PER_MILLE: usize = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: peer_diff DIR [PEOPLE] [RUNS]")?);
    let people: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    fs::create_dir_all(&dir)?;

    let (tenant, churn) = Tenant::new(people, CHURN_PER_MILLE, false);
    export(&dir, &tenant)?;
    eprintln!(
        "exported {people} people, churn {churn:?}, into {}",
        dir.display()
    );

    let mut full = Vec::with_capacity(runs);
    let mut plan_only = Vec::with_capacity(runs);
    let mut counts = String::new();
    for _ in 0..runs {
        let (total, alone, c) = time_once(&tenant)?;
        full.push(total);
        plan_only.push(alone);
        counts = c;
    }
    let (full, plan_only) = (median(&mut full), median(&mut plan_only));
    let json = format!(
        "{{\"people\": {people}, \"runs\": {runs}, \"prepare_plan_s\": {:.4}, \"plan_s\": {:.4}, \"counts\": {{{counts}}}}}\n",
        full.as_secs_f64(),
        plan_only.as_secs_f64()
    );
    fs::write(dir.join("muster.json"), &json)?;
    print!("{json}");
    Ok(())
}

/// One records-in-memory → plan pass: (prepare + plan, plan alone, counts).
fn time_once(t: &Tenant) -> Result<(Duration, Duration, String), muster_core::PlanError> {
    let started = Instant::now();
    let source_fp = Prepared::new(&t.source, &t.policy);
    let target_fp = Prepared::new(&t.target, &t.policy);
    let links_fp = PreparedLinks::new(&t.links);
    let base = t.input();
    let input = Input {
        source: Side {
            prepared: Some(&source_fp),
            ..base.source
        },
        target: Side {
            prepared: Some(&target_fp),
            ..base.target
        },
        prepared_links: Some(&links_fp),
        ..base
    };
    let planning = Instant::now();
    let plan = muster_core::plan(&input)?;
    let done = Instant::now();
    let mut counts = String::new();
    for kind in ActionKind::ALL {
        let sep = if counts.is_empty() { "" } else { ", " };
        let _ = write!(counts, "{sep}\"{kind:?}\": {}", plan.counts().get(kind));
    }
    Ok((done - started, done - planning, counts))
}

fn median(d: &mut [Duration]) -> Duration {
    d.sort();
    d[d.len() / 2]
}

/// `source.csv`, `target.csv` (one row a person, dates ISO, empty = none)
/// and `links.csv` (`source_id,target_id`).
fn export(dir: &Path, t: &Tenant) -> std::io::Result<()> {
    write_people(&dir.join("source.csv"), &t.source)?;
    write_people(&dir.join("target.csv"), &t.target)?;
    let mut out = BufWriter::new(fs::File::create(dir.join("links.csv"))?);
    writeln!(out, "source_id,target_id")?;
    for l in &t.links {
        writeln!(out, "{},{}", l.source_id, l.target_id)?;
    }
    out.flush()
}

const COLUMNS: &str = "id,active,employee_number,given_name,family_name,work_email,\
birth_date,start_date,end_date,job_title,gender,department_id,manager_id";

fn write_people(path: &Path, people: &[Person]) -> std::io::Result<()> {
    let mut out = BufWriter::new(fs::File::create(path)?);
    writeln!(out, "{COLUMNS}")?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let date = |v: &Option<muster_core::Date>| v.map(|d| d.to_string()).unwrap_or_default();
    for p in people {
        // The synthetic tenant's values hold no comma or quote.
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            p.id,
            p.active,
            text(&p.employee_number),
            text(&p.given_name),
            text(&p.family_name),
            text(&p.work_email),
            date(&p.birth_date),
            date(&p.start_date),
            date(&p.end_date),
            text(&p.job_title),
            p.gender.map(|g| format!("{g:?}")).unwrap_or_default(),
            text(&p.department_id),
            text(&p.manager_id),
        )?;
    }
    out.flush()
}
