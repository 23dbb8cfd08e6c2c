//! What the journal and the store cost when applying: 10 000 creates against
//! a loopback target (the Leapsome simulator through the real Leapsome
//! plugin), two ways:
//!
//! - `bare`: the source's people turned straight into `create` operations
//!   and sent through the target plugin — no plan, no store;
//! - `engine/<backend>`: a full `muster::engine::run` — reads, plan, and for
//!   every create a journal intent, the call, the outcome with its link (one
//!   transaction) and an audit entry, all in a fresh state store.
//!
//! The difference is what planning plus the bookkeeping add (DESIGN target:
//! journal and store ≤ 10 %). The source is the `fixture-good` plugin (no
//! HTTP), so both variants send exactly the same 10 000 POSTs.
//!
//! - `store_only/<backend>`: the bookkeeping alone — 10 000 intents,
//!   outcomes, links and audit entries, batched as the engine batches them —
//!   with no call at all.
//!
//! The backend is a parameter of both store variants ([`Backend`]): `sqlite`
//! is a new file per iteration, `postgres` a new database per iteration on
//! the test server of `muster_sandbox::postgres` (`MUSTER_TEST_DATABASE_URL`
//! when set, else a private cluster from Debian's binaries on a unix socket,
//! `fsync = off`). The store is opened (and migrated) before the timer
//! starts, so every figure is the work per create, not schema creation. The
//! bench prints the server's `fsync`, `synchronous_commit` and socket/TCP
//! first, and panics — never skips — when no PostgreSQL can be had. Every
//! iteration checks its work (`engine`: all creates applied; `store_only`:
//! all creates linked), so a filter such as `-- store_only` runs just those.
//!
//! Run: `cargo bench --bench journal_overhead`.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use muster::config::Config;
use muster::connect::Host;
use muster::engine::{self, Connected, FlowSpec, Mode, Outcome, RunOptions};
use muster::runtime::Operation;
use muster::store::{
    AuditEntry, Completion, JournalId, LinkKind, Outcome as Done, PostgresLocation, RunId, Store,
    Trigger,
};
use muster_sandbox::postgres::{TestDatabase, test_database};
use muster_sandbox::{LeapsomeOptions, LeapsomeSim};

const PEOPLE: usize = 10_000;

/// Where a variant keeps its state.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A fresh, empty, migrated store for one iteration, with what it lives in.
/// Fields drop in order: the store's connection closes before its database
/// is dropped.
struct State {
    store: Store,
    _database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl State {
    fn fresh(backend: Backend) -> State {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, database) = match backend {
            Backend::Sqlite => (
                Store::open(dir.path().join("state.db")).expect("store"),
                None,
            ),
            Backend::Postgres => {
                let db = test_database().unwrap_or_else(|e| panic!("{e}"));
                (
                    Store::open_postgres(&location(&db)).expect("store"),
                    Some(db),
                )
            }
        };
        State {
            store,
            _database: database,
            _dir: dir,
        }
    }
}

fn location(db: &TestDatabase) -> PostgresLocation {
    PostgresLocation::parse(db.url(), db.password().map(str::to_string)).expect("test URL")
}

struct Setup {
    _leapsome: LeapsomeSim,
    _dir: tempfile::TempDir,
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
# A third-party plugin names its hosts; the fixture makes no HTTP call.
hosts = ["https://people.example.com"]

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
        _dir: dir,
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

fn engine(s: &Setup, host: &Host, store: &mut Store) {
    let flow = &s.config.flows["bench"];
    let mut source = host
        .connect(&s.config.connections["source"])
        .expect("source");
    let mut target = host
        .connect(&s.config.connections["leapsome"])
        .expect("target");
    let report = engine::run(
        store,
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

/// Prints what the PostgreSQL figures depend on: the server's version,
/// `fsync`, `synchronous_commit`, and whether the store talks to it over a
/// unix socket or TCP.
fn describe_postgres() {
    let db = test_database().unwrap_or_else(|e| panic!("{e}"));
    let mut config: postgres::Config = db.url().parse().expect("test URL");
    if let Some(p) = db.password() {
        config.password(p);
    }
    let mut c = config.connect(postgres::NoTls).expect("test server");
    let show = |c: &mut postgres::Client, setting: &str| -> String {
        c.query_one(&format!("SHOW {setting}"), &[])
            .and_then(|r| r.try_get(0))
            .expect(setting)
    };
    let version = show(&mut c, "server_version");
    let fsync = show(&mut c, "fsync");
    let commit = show(&mut c, "synchronous_commit");
    let peer: Option<String> = c
        .query_one("SELECT host(inet_server_addr())", &[])
        .and_then(|r| r.try_get(0))
        .expect("server address");
    let via = peer.map_or("unix socket".to_string(), |a| format!("TCP to {a}"));
    println!(
        "state on PostgreSQL {version}: fsync = {fsync}, synchronous_commit = {commit}, {via}"
    );
}

fn bench(c: &mut Criterion) {
    describe_postgres();
    let cache = tempfile::tempdir().expect("cache");

    let mut group = c.benchmark_group("apply_10k_creates");
    // Criterion's minimum: one sample is one 10 000-create run (seconds).
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
    for backend in [Backend::Sqlite, Backend::Postgres] {
        group.bench_with_input(
            BenchmarkId::new("engine", backend),
            &backend,
            |b, &backend| {
                b.iter_batched(
                    || (setup(cache.path()), State::fresh(backend)),
                    |(s, mut state)| {
                        let host = Host::new(&s.config).expect("host");
                        engine(&s, &host, &mut state.store);
                        (s, state)
                    },
                    BatchSize::PerIteration,
                )
            },
        );
    }
    for backend in [Backend::Sqlite, Backend::Postgres] {
        group.bench_with_input(
            BenchmarkId::new("store_only", backend),
            &backend,
            |b, &backend| b.iter_custom(|iters| timed_store_only(backend, iters)),
        );
    }
    group.finish();
}

/// `iters` runs of [`store_only`], each on a fresh store, timed without
/// the store's creation; each checks afterwards that all creates are linked.
fn timed_store_only(backend: Backend, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut state = State::fresh(backend);
        let start = std::time::Instant::now();
        store_only(&mut state.store);
        total += start.elapsed();
        let links = state.store.links("bench").expect("links").len();
        assert_eq!(links, PEOPLE, "{backend}: store_only links every create");
    }
    total
}

/// The bookkeeping of `engine` without any call, batched as the engine
/// batches it: per 64 creates one transaction with the previous batch's
/// outcomes (links, audit entries) and the next intents, and at the end the
/// last batch's outcomes.
fn store_only(store: &mut Store) {
    const BATCH: usize = 64;
    store
        .ensure_flow("bench", "source", "target")
        .expect("flow");
    let run = store.begin_run("bench", Trigger::Manual).expect("run");
    let after = serde_json::json!({ "changes": {}, "members": [] });
    let steps: Vec<muster_core::Step> = (0..PEOPLE).map(create_step).collect();
    let mut previous: Vec<Created> = Vec::new();
    for (b, chunk) in steps.chunks(BATCH).enumerate() {
        let done = completions(&previous, run, &after);
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
    store
        .journal_complete(&completions(&previous, run, &after))
        .expect("last outcomes");
}

/// A journaled create: its entry, source id and the target id it got.
type Created = (JournalId, String, String);

/// The outcomes of a batch of creates: each linked, with its audit entry.
fn completions<'a>(
    created: &'a [Created],
    run: RunId,
    after: &'a serde_json::Value,
) -> Vec<Completion<'a>> {
    created
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
                after: Some(after),
            }),
        })
        .collect()
}

fn create_step(i: usize) -> muster_core::Step {
    muster_core::Step {
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
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
