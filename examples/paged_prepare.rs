//! What preparing page by page buys when reads are slow: the time from the
//! last page to the plan, hashing as pages arrive (what the host does,
//! `host/src/engine/prepared.rs`) against hashing once the read is complete
//! (what it did before), in the same run.
//!
//! Both sides of a synthetic tenant (`src/synthetic.rs`, 1 % churn) arrive
//! in pages from a reader thread that waits `LATENCY_MS` before each page,
//! as a plugin waits on its vendor; the records are already in memory, so a
//! page costs its latency and nothing else. The consumer, on the calling
//! thread like the host's worker:
//!
//! - `paged`: gives each page to a [`Preparer`] as it arrives; after the
//!   last page, finishes both (the id indexes), prepares the links and
//!   plans;
//! - `at_once`: waits for every page; then [`Prepared::new`] for both sides,
//!   the links, and the plan.
//!
//! Both plans are checked to have the same actions. The modes alternate,
//! `RUNS` times each; medians are printed as one JSON line.
//!
//! Run: `cargo run --release --example paged_prepare -- [PEOPLE] [PAGE] [LATENCY_MS] [RUNS]`
//! (defaults 1000000 10000 5 5).

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use muster_core::{Action, Input, Person, Plan, Prepared, PreparedLinks, Preparer, Side};
use muster_suite::synthetic::Tenant;

const CHURN_PER_MILLE: usize = 10;

/// How a run hashes the records.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Paged,
    AtOnce,
}

/// One run's figures.
struct Timing {
    /// First page requested → plan made.
    total: Duration,
    /// Last page in → plan made.
    after_last_page: Duration,
    /// Last page in → both sides prepared.
    prepared_after_last_page: Duration,
    actions: Vec<Action>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: u64| -> Result<u64, std::num::ParseIntError> {
        args.next().map_or(Ok(default), |a| a.parse())
    };
    let people = next(1_000_000)? as usize;
    let page = next(10_000)?.max(1) as usize;
    let latency = Duration::from_millis(next(5)?);
    let runs = next(5)?.max(1) as usize;

    let (tenant, churn) = Tenant::new(people, CHURN_PER_MILLE, false);
    eprintln!("{people} people a side, pages of {page}, {latency:?} a page, churn {churn:?}");
    let (mut paged, mut at_once) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for mode in [Mode::Paged, Mode::AtOnce] {
            let t = time_once(&tenant, mode, page, latency)?;
            eprintln!(
                "run {run} {mode:?}: total {:.3} s, last page → prepared {:.3} s, → plan {:.3} s",
                t.total.as_secs_f64(),
                t.prepared_after_last_page.as_secs_f64(),
                t.after_last_page.as_secs_f64()
            );
            match mode {
                Mode::Paged => paged.push(t),
                Mode::AtOnce => at_once.push(t),
            }
        }
        if paged[run].actions != at_once[run].actions {
            return Err("the paged and all-at-once plans differ".into());
        }
    }
    let med = |v: &[Timing], f: fn(&Timing) -> Duration| {
        let mut d: Vec<Duration> = v.iter().map(f).collect();
        d.sort();
        d[d.len() / 2].as_secs_f64()
    };
    let (p_after, a_after) = (
        med(&paged, |t| t.after_last_page),
        med(&at_once, |t| t.after_last_page),
    );
    println!(
        "{{\"people\": {people}, \"page\": {page}, \"latency_ms\": {}, \"runs\": {runs}, \
         \"paged\": {{\"total_s\": {:.4}, \"prepared_after_last_page_s\": {:.4}, \"plan_after_last_page_s\": {:.4}}}, \
         \"at_once\": {{\"total_s\": {:.4}, \"prepared_after_last_page_s\": {:.4}, \"plan_after_last_page_s\": {:.4}}}, \
         \"after_last_page_ratio\": {:.3}}}",
        latency.as_millis(),
        med(&paged, |t| t.total),
        med(&paged, |t| t.prepared_after_last_page),
        p_after,
        med(&at_once, |t| t.total),
        med(&at_once, |t| t.prepared_after_last_page),
        a_after,
        p_after / a_after,
    );
    Ok(())
}

/// Delivers `source` then `target` in pages of `page`, each after
/// `latency`, as (side, range) messages: 0 the source, 1 the target.
fn deliver(
    lens: [usize; 2],
    page: usize,
    latency: Duration,
) -> mpsc::Receiver<(usize, std::ops::Range<usize>)> {
    let (tx, rx) = mpsc::sync_channel(4);
    thread::spawn(move || {
        for (side, len) in lens.into_iter().enumerate() {
            for start in (0..len).step_by(page) {
                thread::sleep(latency);
                if tx.send((side, start..(start + page).min(len))).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn time_once(
    t: &Tenant,
    mode: Mode,
    page: usize,
    latency: Duration,
) -> Result<Timing, muster_core::PlanError> {
    let sides: [&[Person]; 2] = [&t.source, &t.target];
    let started = Instant::now();
    let mut preparers = [Preparer::new(&t.policy), Preparer::new(&t.policy)];
    for (side, range) in deliver([t.source.len(), t.target.len()], page, latency) {
        if mode == Mode::Paged {
            preparers[side].push(&sides[side][range]);
        }
    }
    let last_page = Instant::now();
    let [source, target] = match mode {
        Mode::Paged => preparers.map(Preparer::finish),
        Mode::AtOnce => sides.map(|people| Prepared::new(people, &t.policy)),
    };
    let prepared = Instant::now();
    let links = PreparedLinks::new(&t.links);
    let plan = plan(t, &source, &target, &links)?;
    let done = Instant::now();
    Ok(Timing {
        total: done - started,
        after_last_page: done - last_page,
        prepared_after_last_page: prepared - last_page,
        actions: plan.actions().to_vec(),
    })
}

fn plan<'a>(
    t: &'a Tenant,
    source: &'a Prepared,
    target: &'a Prepared,
    links: &'a PreparedLinks,
) -> Result<Plan<'a>, muster_core::PlanError> {
    let base = t.input();
    muster_core::plan(&Input {
        source: Side {
            prepared: Some(source),
            ..base.source
        },
        target: Side {
            prepared: Some(target),
            ..base.target
        },
        prepared_links: Some(links),
        ..base
    })
}
