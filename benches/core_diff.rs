//! `muster_core::plan` on synthetic tenants of 1k … 1M people at 1 % churn,
//! against a naive baseline: the field-by-field `HashMap<String, Value>`
//! diff a typical hand-written connector does.
//!
//! The headline group, `prepare_plan`, is records in memory → plan: it
//! fingerprints both sides and the links ([`muster_core::Prepared::new`];
//! the host does the same page by page as it reads, with
//! [`muster_core::Preparer`]) and then plans. `plan` beside it is the plan
//! alone, on inputs prepared before the measured region (it includes
//! building the plan's id indexes). `benches/peers/run.sh` puts the same
//! two figures next to DuckDB and Polars. Before criterion runs, the bench
//! prints the allocations each `plan` makes (counting global allocator),
//! with and without churn.
//!
//! Run: `cargo bench --bench core_diff` (`-- prepare_plan/1000000` for one
//! size).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use muster_core::{Input, Person, Prepared, PreparedLinks, Side};
use muster_suite::alloc_counter::{Counting, allocations_during};
use muster_suite::synthetic::Tenant;
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZES: &[usize] = &[1_000, 10_000, 100_000, 1_000_000];
const CHURN_PER_MILLE: usize = 10;

fn sizes() -> Vec<usize> {
    // `MUSTER_BENCH_MAX=100000` skips the million for a quick run.
    let max = std::env::var("MUSTER_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    SIZES.iter().copied().filter(|n| *n <= max).collect()
}

fn bench_plan(c: &mut Criterion) {
    prepare_plan_group(c);
    plan_group(c, "plan", false);
    plan_group(c, "plan_with_teams", true);
}

/// `plan` at every size; with `teams`, departments are mirrored as teams.
fn plan_group(c: &mut Criterion, name: &str, teams: bool) {
    let mut group = c.benchmark_group(name);
    for &n in &sizes() {
        let (tenant, _) = Tenant::new(n, CHURN_PER_MILLE, teams);
        let input = tenant.input();
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(if n >= 1_000_000 { 10 } else { 30 });
        group.measurement_time(Duration::from_secs(if n >= 100_000 { 8 } else { 4 }));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(muster_core::plan(black_box(&input)).expect("plan").counts()))
        });
    }
    group.finish();
}

/// Records in memory → plan: both sides and the links prepared, then planned.
fn prepare_plan_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("prepare_plan");
    for &n in &sizes() {
        let (t, _) = Tenant::new(n, CHURN_PER_MILLE, false);
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(if n >= 1_000_000 { 10 } else { 30 });
        group.measurement_time(Duration::from_secs(if n >= 100_000 { 15 } else { 4 }));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let source = Prepared::new(black_box(&t.source), &t.policy);
                let target = Prepared::new(black_box(&t.target), &t.policy);
                let links = PreparedLinks::new(black_box(&t.links));
                let base = t.input();
                let input = Input {
                    source: Side {
                        prepared: Some(&source),
                        ..base.source
                    },
                    target: Side {
                        prepared: Some(&target),
                        ..base.target
                    },
                    prepared_links: Some(&links),
                    ..base
                };
                black_box(muster_core::plan(&input).expect("plan").counts())
            })
        });
    }
    group.finish();
}

/// A person as a hand-written connector holds it: a JSON object per record.
fn as_json(p: &Person) -> HashMap<String, Value> {
    let mut m = HashMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_string(), Value::String(v));
        }
    };
    put("employeeNumber", p.employee_number.clone());
    put("firstName", p.given_name.clone());
    put("lastName", p.family_name.clone());
    put("mail", p.work_email.clone());
    put("birthDate", p.birth_date.map(|d| d.to_string()));
    put("dtContractStart", p.start_date.map(|d| d.to_string()));
    put("dtContractEnd", p.end_date.map(|d| d.to_string()));
    put("jobTitle", p.job_title.clone());
    put("gender", p.gender.map(|g| g.as_str().to_string()));
    put("managerId", p.manager_id.clone());
    m.insert("active".into(), Value::Bool(p.active));
    m
}

/// The naive diff: index the target by id, walk the source, compare every
/// field of every linked pair, collect changes as owned strings and values.
fn naive_diff(
    source: &[(String, HashMap<String, Value>)],
    target: &[(String, HashMap<String, Value>)],
    links: &HashMap<String, String>,
) -> usize {
    let by_id: HashMap<&String, &HashMap<String, Value>> =
        target.iter().map(|(id, rec)| (id, rec)).collect();
    let mut changes: Vec<(String, Vec<(String, Value)>)> = Vec::new();
    let mut seen: HashMap<&String, bool> = HashMap::new();
    for (id, rec) in source {
        match links.get(id).and_then(|t| by_id.get(t).map(|r| (t, r))) {
            None => changes.push((
                id.clone(),
                rec.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            )),
            Some((tid, actual)) => {
                seen.insert(tid, true);
                let diff: Vec<(String, Value)> = rec
                    .iter()
                    .filter(|(k, v)| k.as_str() != "managerId" && actual.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !diff.is_empty() {
                    changes.push((id.clone(), diff));
                }
            }
        }
    }
    for (id, _) in target {
        if !seen.contains_key(id) {
            changes.push((id.clone(), vec![("active".into(), Value::Bool(false))]));
        }
    }
    changes.len()
}

fn bench_naive(c: &mut Criterion) {
    let mut group = c.benchmark_group("naive_baseline");
    for &n in &sizes() {
        let (tenant, _) = Tenant::new(n, CHURN_PER_MILLE, false);
        let source: Vec<_> = tenant
            .source
            .iter()
            .map(|p| (p.id.clone(), as_json(p)))
            .collect();
        let target: Vec<_> = tenant
            .target
            .iter()
            .map(|p| (p.id.clone(), as_json(p)))
            .collect();
        let links: HashMap<String, String> = tenant
            .links
            .iter()
            .map(|l| (l.source_id.clone(), l.target_id.clone()))
            .collect();
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(if n >= 100_000 { 15 } else { 4 }));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(naive_diff(&source, &target, &links)))
        });
    }
    group.finish();
}

/// Allocations per `plan` call: the same for every size when nothing
/// changed means zero allocations per unchanged record.
fn report_allocations() {
    println!("allocations per plan() call (counting global allocator):");
    println!(
        "{:>10} {:>12} {:>14} {:>22}",
        "people", "0% churn", "1% churn", "per changed record"
    );
    for &n in &sizes() {
        let count = |churn| {
            let (tenant, _) = Tenant::new(n, churn, false);
            let input = tenant.input();
            allocations_during(|| muster_core::plan(&input).map(|p| p.actions().len())).1
        };
        let (still, churned) = (count(0), count(CHURN_PER_MILLE));
        let changed = (n * CHURN_PER_MILLE / 1000).max(1);
        println!(
            "{n:>10} {still:>12} {churned:>14} {:>22.2}",
            (churned - still) as f64 / changed as f64
        );
    }
}

criterion_group!(benches, bench_plan, bench_naive);

fn main() {
    report_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
