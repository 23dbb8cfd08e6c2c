//! What the journal and the store cost when applying: 10 000 creates against
//! a loopback target (the Leapsome simulator through the real Leapsome
//! plugin), two ways:
//!
//! - `bare`: the source's people turned straight into `create` operations
//!   and sent through the target plugin — no plan, no store;
//! - `engine`: a full `muster::engine::run` — reads, plan, and for every
//!   create a journal intent, the call, the outcome with its link (one
//!   transaction) and an audit entry, all in a real SQLite file.
//!
//! The difference is what planning plus the bookkeeping add (DESIGN target:
//! journal and store ≤ 10 %). The source is the `fixture-good` plugin (no
//! HTTP), so both variants send exactly the same 10 000 POSTs.
//!
//! - `store_only`: the bookkeeping alone — 10 000 intents, outcomes, links and
//!   audit entries, batched as the engine batches them — with no call at all.
//!
//! Run: `cargo bench --bench journal_overhead`.

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use muster::config::Config;
use muster::connect::Host;
use muster::engine::{self, Connected, FlowSpec, Mode, Outcome, RunOptions};
use muster::runtime::Operation;
use muster::store::{Store, Trigger};
use muster_sandbox::{LeapsomeOptions, LeapsomeSim};

const PEOPLE: usize = 10_000;

struct Setup {
    _leapsome: LeapsomeSim,
    dir: tempfile::TempDir,
    config: Config,
}

fn setup(cache: &Path) -> Setup {
    let leapsome = LeapsomeSim::start(LeapsomeOptions {
        rate_limit: None,
        allowed_domains: Vec::new(),
        ..LeapsomeOptions::default()
    })
    .expect("leapsome");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), leapsome.token()).expect("token");
    let text = format!(
        r#"[tenant]
name = "bench"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.source]
plugin = "{fixture}"
settings = {{ count = "{PEOPLE}", page = "1000" }}

[connections.leapsome]
plugin = "leapsome"
settings = {{ base_url = "{url}" }}
secret = {{ file = "token" }}
allow_loopback = true

[flows.bench]
source = "source"
target = "leapsome"
fields = ["given_name", "family_name", "work_email", "job_title"]
options = {{ sync_groups = false }}
guard = {{ max_create = 1000000 }}
"#,
        cache = cache.display(),
        fixture = muster::plugins::fixture_good().display(),
        url = leapsome.base_url(),
    );
    let path = dir.path().join("muster.toml");
    std::fs::write(&path, &text).expect("config");
    let config = Config::load(&path).expect("valid bench config");
    Setup {
        _leapsome: leapsome,
        dir,
        config,
    }
}

fn bare(s: &Setup, host: &Host) {
    let mut source = host
        .connect(&s.config.connections["source"])
        .expect("source");
    let mut target = host
        .connect(&s.config.connections["leapsome"])
        .expect("target");
    let people = source.read_all_people(None).expect("read").people;
    for p in people {
        target.apply(&Operation::Create(p)).expect("create");
    }
}

fn engine(s: &Setup, host: &Host) {
    let flow = &s.config.flows["bench"];
    let mut source = host
        .connect(&s.config.connections["source"])
        .expect("source");
    let mut target = host
        .connect(&s.config.connections["leapsome"])
        .expect("target");
    let mut store = Store::open(s.dir.path().join("state.db")).expect("store");
    let report = engine::run(
        &mut store,
        &FlowSpec::of(flow, flow.policy.clone()),
        Connected {
            source: &mut source,
            target: &mut target,
        },
        Mode::Sync {
            approve_held: false,
        },
        &RunOptions {
            trigger: Trigger::Manual,
            only: None,
            today: muster_core::Date::from_ymd(2026, 6, 1).expect("date"),
            approver: "bench".into(),
        },
    )
    .expect("run");
    assert_eq!(report.outcome, Outcome::Applied);
    assert_eq!(report.applied.counts.get("create"), Some(&(PEOPLE as u64)));
}

fn bench(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("cache");
    // Warm the plugin cache and check both variants do the work.
    let warm = setup(cache.path());
    let host = Host::new(&warm.config).expect("host");
    engine(&warm, &host);

    let mut group = c.benchmark_group("apply_10k_creates");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.bench_function("bare", |b| {
        b.iter_batched(
            || setup(cache.path()),
            |s| {
                let host = Host::new(&s.config).expect("host");
                bare(&s, &host);
                s
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("engine", |b| {
        b.iter_batched(
            || setup(cache.path()),
            |s| {
                let host = Host::new(&s.config).expect("host");
                engine(&s, &host);
                s
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("store_only", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                store_only(dir.path());
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The bookkeeping of `engine` without any call, batched as the engine
/// batches it: per 64 creates one transaction with the previous batch's
/// outcomes (links, audit entries) and the next intents.
fn store_only(dir: &Path) {
    use muster::store::{AuditEntry, Completion, JournalId, LinkKind, Outcome as Done};
    const BATCH: usize = 64;
    let mut store = Store::open(dir.join("state.db")).expect("store");
    store
        .ensure_flow("bench", "source", "target")
        .expect("flow");
    let run = store.begin_run("bench", Trigger::Manual).expect("run");
    let after = serde_json::json!({ "changes": {}, "members": [] });
    let steps: Vec<muster_core::Step> = (0..PEOPLE)
        .map(|i| muster_core::Step {
            kind: muster_core::ActionKind::Create,
            source_id: Some(i.to_string()),
            target_id: None,
            label: format!("Given{i} Family{i} <person{i}@example.com>"),
            reason: "new_person".into(),
            explanation: "new person in the source".into(),
            changes: Vec::new(),
            members: Vec::new(),
            member_names: Default::default(),
            carries: Vec::new(),
            rows: Vec::new(),
            group_name: None,
            manager_source_id: None,
            created: Vec::new(),
        })
        .collect();
    let mut previous: Vec<(JournalId, String, String)> = Vec::new();
    for (b, chunk) in steps.chunks(BATCH).enumerate() {
        let done: Vec<Completion<'_>> = previous
            .iter()
            .map(|(id, s, t)| Completion {
                id: *id,
                outcome: Done::Linked {
                    kind: LinkKind::Person,
                    source_id: s,
                    target_id: t,
                },
                audit: Some(AuditEntry {
                    flow: Some("bench"),
                    run: Some(run),
                    what: "create",
                    subject: s,
                    before: None,
                    after: Some(&after),
                }),
            })
            .collect();
        let next: Vec<(u32, &muster_core::Step)> = chunk
            .iter()
            .enumerate()
            .map(|(k, step)| ((b * BATCH + k + 1) as u32, step))
            .collect();
        let ids = store.journal_batch(&done, run, &next).expect("journal");
        previous = ids
            .into_iter()
            .zip(chunk)
            .map(|(id, step)| {
                let s = step.source_id.clone().unwrap_or_default();
                let t = format!("t-{s}");
                (id, s, t)
            })
            .collect();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
