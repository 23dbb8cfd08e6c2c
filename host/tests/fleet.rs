//! `muster serve --fleet`: real worker processes (the built binary) sharing
//! one real PostgreSQL (`muster_sandbox::postgres`), tenants on the sandbox
//! simulators on loopback.
//!
//! - a webhook sent to two workers (one delivery twice, and a second
//!   event) runs each event exactly once; an event left in the inbox
//!   without its ledger row (a worker died between the two) is swept in and
//!   run; a bad tenant file is that tenant's problem, shown on the status
//!   page with file, line and column;
//! - the ledger under contention: every row claimed once, stale tokens
//!   refused, an expired claim taken over (with the figures of RESULTS.md);
//! - the fleet test of issue 17: many tenants due in the same minute, three
//!   workers, one SIGKILLed while applying.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tenants::{Extra, KitOptions, Tenants};
use common::world::{FLOW, Serving, TODAY, World, http, json, serve_process};
use muster::fleet::tenants::state_url;
use muster::serve::{DELIVERY_HEADERS, SECRET_HEADER};
use muster::store::{InboxState, Location, PostgresLocation, RunStatus, Store, Trigger};
use muster_sandbox::LeapsomeOptions;
use muster_sandbox::postgres::{TestDatabase, test_database};

const HOOK_SECRET: &str = "fleet-hook-s3cret";

/// Starts one fleet worker on `db` serving `tenants`, with claims and
/// flow leases lasting `ttl_secs`, making `jobs` runs at once.
fn worker(db: &TestDatabase, tenants: &Path, ttl_secs: u32, jobs: u16) -> Serving {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_muster"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--fleet",
        db.url(),
        "--tenants",
    ])
    .arg(tenants)
    .args(["--jobs", &jobs.to_string()])
    .arg("--cache")
    .arg(common::cache_dir())
    .env("MUSTER_TODAY", TODAY)
    .env("MUSTER_LEASE_TTL", ttl_secs.to_string())
    .env_remove("MUSTER_CONFIG");
    if let Some(p) = db.password() {
        cmd.args(["--fleet-password-env", "MUSTER_TEST_FLEET_PASSWORD"])
            .env("MUSTER_TEST_FLEET_PASSWORD", p);
    }
    serve_process(cmd)
}

/// A world's config as a fleet tenant file `<dir>/<id>.toml`: no `state`,
/// secret files named by absolute path.
fn tenant_file(world: &World, dir: &Path, id: &str) {
    let config = std::fs::read_to_string(world.config()).expect("config");
    let home = world.dir.path().display().to_string();
    let fleet: String = config
        .lines()
        .filter(|l| !l.starts_with("state = "))
        .map(|l| l.replace("{ file = \"", &format!("{{ file = \"{home}/")) + "\n")
        .collect();
    std::fs::write(dir.join(format!("{id}.toml")), fleet).expect("tenant file");
}

/// The store of tenant `id`: its schema in the fleet database.
fn tenant_store(db: &TestDatabase, id: &str) -> Store {
    let url = state_url(db.url(), &format!("tenant_{}", id.replace('-', "_")));
    let location = PostgresLocation::parse(&url, db.password().map(str::to_string)).expect("url");
    Store::open_location(&Location::Postgres(Box::new(location))).expect("tenant store")
}

fn fleet_client(db: &TestDatabase) -> postgres::Client {
    let mut config: postgres::Config = db.url().parse().expect("url");
    if let Some(p) = db.password() {
        config.password(p);
    }
    config.connect(postgres::NoTls).expect("connect")
}

/// Waits until `done` holds, at most `within`.
fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Source ids of people the flow would create (the world's own plan).
fn to_create(world: &World, n: usize) -> Vec<String> {
    let plan = json(&world.muster(&["plan", "--json"]));
    let ids: Vec<String> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "create")
        .filter_map(|s| s["source_id"].as_str().map(str::to_owned))
        .take(n)
        .collect();
    assert_eq!(ids.len(), n, "{plan}");
    ids
}

#[test]
fn a_webhook_sent_to_two_workers_runs_each_event_once() {
    let db = test_database().unwrap_or_else(|e| panic!("{e}"));
    let world = World::with_flow(
        20,
        LeapsomeOptions::default(),
        r#"webhook = { secret = { file = "hook.secret" }, id_field = "candidate.id" }"#,
    );
    std::fs::write(world.dir.path().join("hook.secret"), HOOK_SECRET).expect("secret");
    let hired = to_create(&world, 3);
    let tenants = tempfile::tempdir().expect("tenants dir");
    tenant_file(&world, tenants.path(), "acme");
    // A tenant whose file names a state of its own: refused, at its line.
    let own = "[tenant]\nname = \"Own\"\ntimezone = \"UTC\"\nstate = \"own.db\"\n";
    std::fs::write(tenants.path().join("own-state.toml"), own).expect("bad tenant");

    // An event in the tenant's inbox with no ledger row, as a worker that
    // died between the two leaves it: the workers' sweep records it at
    // start, and it runs like the others (nothing accepted is lost).
    let mut c = fleet_client(&db);
    muster::fleet::schema::migrate(&mut c, "test").expect("fleet schema");
    muster::fleet::schema::ensure_tenant(&mut c, "acme", "tenant_acme").expect("tenant schema");
    let mut store = tenant_store(&db, "acme");
    store.ensure_flow(FLOW, "lucca", "leapsome").expect("flow");
    let orphan = format!(r#"{{"candidate": {{"id": "{}"}}}}"#, hired[2]);
    let orphan = match store
        .inbox_push(FLOW, Some("d-orphan"), Some(&hired[2]), &orphan)
        .expect("push")
    {
        muster::store::Pushed::New(id) => id,
        other => panic!("{other:?}"),
    };

    let one = worker(&db, tenants.path(), 30, 1);
    let two = worker(&db, tenants.path(), 30, 1);
    let path = format!("/tenants/acme/webhooks/{FLOW}");
    let send = |addr: &str, delivery: &str, record: &str, secret: &str| {
        let body = format!(r#"{{"candidate": {{"id": "{record}"}}}}"#);
        http(
            addr,
            "POST",
            &path,
            &[(SECRET_HEADER, secret), (DELIVERY_HEADERS[0], delivery)],
            &body,
        )
    };
    // The same protocol as `serve`: a wrong secret stores nothing.
    let (status, body) = send(&one.addr, "d-0", &hired[0], "wrong");
    assert_eq!(status, 401, "{body}");
    // One delivery, to both workers: stored once.
    let (status, first) = send(&one.addr, "d-1", &hired[0], HOOK_SECRET);
    assert_eq!(status, 202, "{first}");
    let (status, again) = send(&two.addr, "d-1", &hired[0], HOOK_SECRET);
    assert_eq!(status, 200, "{again}");
    assert!(again.contains("\"duplicate\":true"), "{again}");
    // A second event, to the other worker.
    let (status, second) = send(&two.addr, "d-2", &hired[1], HOOK_SECRET);
    assert_eq!(status, 202, "{second}");

    wait_for("the three events to run", Duration::from_secs(60), || {
        store.inbox_pending(FLOW).expect("inbox").is_empty()
    });
    let accounts = world.accounts();
    let made: Vec<_> = accounts
        .values()
        .filter(|a| a.0.as_ref().is_some_and(|id| hired.contains(id)))
        .collect();
    assert_eq!(made.len(), 3, "{accounts:?}");
    let runs = store.history(FLOW, 100).expect("history");
    let webhook_runs: Vec<_> = runs
        .iter()
        .filter(|r| r.trigger == Trigger::Webhook)
        .collect();
    assert_eq!(webhook_runs.len(), 3, "one run per event: {runs:?}");
    assert!(webhook_runs.iter().all(|r| r.status == RunStatus::Done));
    for answer in [&first, &second] {
        let answer: serde_json::Value = serde_json::from_str(answer).expect("JSON answer");
        let id = answer["inbox_id"].as_i64().expect("inbox id");
        let event = store
            .inbox_event(muster::store::InboxId(id))
            .expect("event");
        assert_eq!(event.state, InboxState::Done, "{event:?}");
    }
    let event = store.inbox_event(orphan).expect("the swept event");
    assert_eq!(event.state, InboxState::Done, "{event:?}");
    let rows = c
        .query(
            "SELECT state, run_id FROM muster_fleet.work WHERE tenant = 'acme' AND kind = 'webhook'",
            &[],
        )
        .expect("ledger");
    assert_eq!(rows.len(), 3, "one ledger row per event");
    // Each row is completed by one of the runs (a row claimed while
    // the other event's run held the flow's lease was postponed, not run).
    let mut completed: Vec<i64> = rows
        .iter()
        .map(|r| {
            assert_eq!(r.get::<_, String>(0), "done");
            r.get::<_, Option<i64>>(1).expect("the completing run")
        })
        .collect();
    completed.sort_unstable();
    let mut ran: Vec<i64> = webhook_runs.iter().map(|r| r.id.0).collect();
    ran.sort_unstable();
    assert_eq!(completed, ran);

    // The status page of either worker: both workers, the tenants, the
    // bad file's problem with its line and column.
    let (status, page) = http(&one.addr, "GET", "/", &[], "");
    assert_eq!(status, 200, "{page}");
    for expected in [
        "own-state.toml:4:9",
        "remove `state`",
        "<td>acme</td>",
        "done",
    ] {
        assert!(page.contains(expected), "no {expected:?} in {page}");
    }
    let workers = c
        .query("SELECT id FROM muster_fleet.workers", &[])
        .expect("workers");
    assert_eq!(workers.len(), 2);
    for w in &workers {
        let id: String = w.get(0);
        assert!(page.contains(&id), "worker {id} not on the page");
    }
    assert!(
        one.log.lock().unwrap().contains("own-state"),
        "the bad tenant is logged"
    );
    drop((one, two));
}

/// People per tenant in the fleet test: "a few people each".
const FLEET_PEOPLE: usize = 4;
/// Workers of the fleet test.
const WORKERS: usize = 3;
/// Claims and flow leases last this long: a killed worker's runs are
/// taken over after it.
const FLEET_TTL_SECS: u32 = 6;
/// Runs each worker makes at once (runs mostly wait for the simulators).
const FLEET_JOBS: u16 = 4;

/// How many tenants the fleet test serves: 200 (issue 17), or
/// `MUSTER_FLEET_TENANTS` for a quicker look.
fn fleet_tenants() -> usize {
    std::env::var("MUSTER_FLEET_TENANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// One ledger row of a scheduled flow.
#[derive(Debug)]
struct TickRow {
    tenant: String,
    /// The tick (unix ms), for the failure messages.
    #[allow(dead_code)]
    tick: i64,
    state: String,
    attempts: i32,
    taken_over_from: Option<String>,
    run: Option<i64>,
}

impl TickRow {
    /// A ledger row as selected by `ledger` and `snapshot` (same columns, same order).
    fn from_row(r: &postgres::Row) -> TickRow {
        TickRow {
            tenant: r.get(0),
            tick: r.get(1),
            state: r.get(2),
            attempts: r.get(3),
            taken_over_from: r.get(4),
            run: r.get(5),
        }
    }
}

fn tick_rows(c: &mut postgres::Client) -> Vec<TickRow> {
    c.query(
        "SELECT tenant, key, state, attempts, taken_over_from, run_id
         FROM muster_fleet.work WHERE kind = 'schedule' ORDER BY tenant, key",
        &[],
    )
    .expect("ledger")
    .iter()
    .map(TickRow::from_row)
    .collect()
}

/// A tenant's ledger rows and its runs (id, trigger, status), read in one
/// snapshot while the workers go on.
fn snapshot(c: &mut postgres::Client, tenant: &str) -> (Vec<TickRow>, Vec<(i64, String, String)>) {
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .expect("snapshot");
    let rows = tx
        .query(
            "SELECT tenant, key, state, attempts, taken_over_from, run_id
             FROM muster_fleet.work WHERE kind = 'schedule' AND tenant = $1 ORDER BY key",
            &[&tenant],
        )
        .expect("ledger")
        .iter()
        .map(TickRow::from_row)
        .collect();
    let runs = tx
        .query(
            &format!(
                "SELECT id, \"trigger\", status FROM tenant_{}.runs ORDER BY id",
                tenant.replace('-', "_")
            ),
            &[],
        )
        .expect("runs")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    tx.commit().expect("end of snapshot");
    (rows, runs)
}

/// Issue 17 item 6, on the fleet test kit (`common::tenants`): three
/// workers, many tenants due in the same minute (each with its own Lucca
/// simulator, rate limit on, and its own Leapsome simulator), one worker
/// SIGKILLed while applying. Every due run happens exactly once (one
/// ledger row per tenant, flow and tick, each completed by one run), the
/// killed worker's runs finish on another worker (recovery first), no
/// account is created twice, no link is lost, and no Lucca simulator
/// answered 429.
#[test]
fn three_workers_run_every_tick_once_and_take_over_a_killed_one() {
    let n = fleet_tenants();
    let db = test_database().unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    // Each write takes 150 ms, so a run is still applying when the test
    // looks (and kills its worker).
    let options = KitOptions {
        target_latency: Duration::from_millis(150),
        ..KitOptions::default()
    };
    let kit = Tenants::start(n, FLEET_PEOPLE, options).unwrap_or_else(|e| panic!("{e}"));
    let tenants_dir = tempfile::tempdir().expect("tenants dir");
    kit.write_configs(tenants_dir.path(), Some("every 1m"), &Extra::default())
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{n} tenants' simulators started in {:?}", started.elapsed());

    let mark = kit.mark();
    let workers: Vec<Serving> = (0..WORKERS)
        .map(|_| worker(&db, tenants_dir.path(), FLEET_TTL_SECS, FLEET_JOBS))
        .collect();
    eprintln!("{WORKERS} workers serving after {:?}", started.elapsed());
    let mut c = fleet_client(&db);

    // The first tick: the next minute after registration. Wait for a
    // worker to apply, and kill it.
    // (A write whose connection is already closed names no process: wait
    // for the next one.)
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut mark = mark;
    let (write, pid) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let write = kit
            .wait_applying(&mark, None, left)
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(pid) = write.pid {
            break (write, pid);
        }
        mark = kit.mark();
    };
    let killed_id: String = c
        .query_one(
            "SELECT id FROM muster_fleet.workers WHERE pid = $1",
            &[&i64::from(pid)],
        )
        .expect("the applying process is a worker")
        .get(0);
    // The status page shows the claim held by the worker about to die.
    let (status, page) = http(&workers[0].addr, "GET", "/", &[], "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("<td>{killed_id}</td>")), "{page}");
    let kill = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    assert!(kill.expect("kill").success());
    eprintln!(
        "killed worker {killed_id} while it wrote to {} at {:?}",
        write.tenant,
        started.elapsed()
    );

    // Every tenant's first tick, done; the killed worker's taken over. (A
    // tenant registered after a minute's boundary, while the workers
    // started, has its first tick a minute later than the others.)
    let first_ticks_done = |rows: &[TickRow]| {
        let mut first: std::collections::BTreeMap<&str, &TickRow> = Default::default();
        for r in rows {
            first.entry(r.tenant.as_str()).or_insert(r); // rows are by tenant, tick
        }
        first.len() == n && first.values().all(|r| r.state == "done")
    };
    wait_for(
        "every tenant's first tick to complete",
        Duration::from_secs(150),
        || first_ticks_done(&tick_rows(&mut c)),
    );
    eprintln!(
        "first tick done on every tenant after {:?}",
        started.elapsed()
    );

    let rows = tick_rows(&mut c);
    let taken_over: Vec<&TickRow> = rows
        .iter()
        .filter(|r| r.taken_over_from.as_deref() == Some(killed_id.as_str()))
        .collect();
    assert!(
        taken_over.iter().any(|r| r.tenant == write.tenant),
        "the killed worker's run of {} was not taken over: {rows:?}",
        write.tenant
    );
    assert!(taken_over.iter().all(|r| r.attempts >= 2), "{taken_over:?}");
    for t in &kit.tenants {
        exactly_once(&mut c, &t.id);
        let open = tenant_store(&db, &t.id)
            .unresolved_journal(FLOW)
            .expect("journal");
        assert!(open.is_empty(), "tenant {}: open journal {open:?}", t.id);
    }
    // 0 duplicates, nobody missing; 0 lost links; Lucca's limit kept.
    let accounts = kit.check_accounts();
    assert!(accounts.is_clean(), "{accounts}");
    let links = kit.check_links(|t| tenant_store(&db, &t.id).links(FLOW).expect("links"));
    assert!(links.is_clean(), "{links}");
    let traffic = kit.traffic();
    assert_eq!(traffic.lucca_throttled(), 0, "{traffic}");
    assert!(traffic.over_limit().is_empty(), "{traffic}");
    // The budget shared through PostgreSQL was on: every tenant's Lucca
    // requests were taken from its own bucket, in its own schema, on the
    // workers' few budget connections (at most `--jobs` per live worker).
    for t in &kit.tenants {
        let buckets = budget_rows(&mut c, &t.id);
        let lucca = origin_of(&t.lucca.base_url());
        assert!(
            buckets
                .iter()
                .any(|(origin, spent)| *origin == lucca && *spent > 0),
            "tenant {}: no request taken from the bucket of its Lucca ({lucca}): {buckets:?}",
            t.id
        );
        for (origin, _) in &buckets {
            let theirs = kit
                .tenants
                .iter()
                .find(|o| o.id != t.id && origin_of(&o.lucca.base_url()) == *origin);
            assert!(
                theirs.is_none(),
                "tenant {}: a bucket of another tenant's Lucca {origin}",
                t.id
            );
        }
    }
    let budget_connections: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'muster-budget'",
            &[],
        )
        .expect("pg_stat_activity")
        .get(0);
    let live_workers = (WORKERS - 1) as i64;
    assert!(
        (1..=live_workers * i64::from(FLEET_JOBS)).contains(&budget_connections),
        "{budget_connections} budget connections for {live_workers} workers of {FLEET_JOBS} jobs"
    );
    eprintln!("{budget_connections} budget connections open for {n} tenants");

    // The status page of a surviving worker shows the killed one dead
    // (no heartbeat for two TTLs).
    let killed_addr: String = c
        .query_one(
            "SELECT listen FROM muster_fleet.workers WHERE id = $1",
            &[&killed_id],
        )
        .expect("the killed worker's row")
        .get(0);
    let alive = workers
        .iter()
        .find(|w| w.addr != killed_addr)
        .expect("a surviving worker");
    wait_for(
        "the status page to show the killed worker dead",
        Duration::from_secs(4 * u64::from(FLEET_TTL_SECS)),
        || {
            let (_, page) = http(&alive.addr, "GET", "/", &[], "");
            let row = format!("<td>{killed_id}</td>");
            page.split("<tr>")
                .any(|r| r.contains(&row) && r.contains(">dead</td>"))
        },
    );
    // Throughput, per worker: runs completed and the span from its first
    // claim to its last finish (benches/RESULTS.md, "Fleet").
    for r in c
        .query(
            "SELECT claimed_by, count(*), max(finished_ms) - min(claimed_ms)
             FROM muster_fleet.work WHERE state = 'done' GROUP BY claimed_by ORDER BY 1",
            &[],
        )
        .expect("per worker")
    {
        let (by, runs, span): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        eprintln!(
            "worker {by}: {runs} runs in {:.1} s ({:.0} runs/min)",
            span as f64 / 1000.0,
            runs as f64 * 60_000.0 / span.max(1) as f64
        );
    }
    eprintln!(
        "{n} tenants checked after {:?}: {} ticks recorded, {} taken over from {killed_id}; {accounts}; {links}",
        started.elapsed(),
        rows.len(),
        taken_over.len()
    );
    drop(workers);
}

/// `scheme://host:port` of a URL: a bucket's origin.
fn origin_of(url: &str) -> String {
    let rest = url.find("://").map_or(0, |i| i + 3);
    url[rest..]
        .find('/')
        .map_or(url, |i| &url[..rest + i])
        .to_owned()
}

/// Tenant `id`'s rate-limit buckets: origin, and requests recorded.
fn budget_rows(c: &mut postgres::Client, id: &str) -> Vec<(String, i32)> {
    c.query(
        &format!(
            "SELECT origin, cardinality(spent) FROM tenant_{}.rate_budgets ORDER BY origin",
            id.replace('-', "_")
        ),
        &[],
    )
    .expect("budget rows")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Exactly once per tick, for one tenant: one row per (tenant, flow,
/// tick) — the ledger's key — each done row completed by a done run of its
/// own, and no other done run but for rows whose run has finished and
/// whose end is about to be recorded (still `running`); a dead worker's
/// run left `aborted` only for a taken-over tick.
fn exactly_once(c: &mut postgres::Client, tenant: &str) {
    let (mine, runs) = snapshot(c, tenant);
    assert!(!mine.is_empty(), "tenant {tenant} has no tick");
    let done_rows: Vec<i64> = mine
        .iter()
        .filter(|r| r.state == "done")
        .map(|r| r.run.expect("a done row names its run"))
        .collect();
    let mut unique = done_rows.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), done_rows.len(), "tenant {tenant}: {mine:?}");
    let done_runs: Vec<i64> = runs
        .iter()
        .filter(|(_, trigger, status)| trigger == "schedule" && status == "done")
        .map(|(id, _, _)| *id)
        .collect();
    for r in &done_rows {
        assert!(
            done_runs.contains(r),
            "tenant {tenant}: row run {r} is not a done run: {runs:?}"
        );
    }
    let ending = mine.iter().filter(|r| r.state == "running").count();
    assert!(
        done_runs.len() <= done_rows.len() + ending,
        "tenant {tenant}: {} done runs for {} done ticks ({mine:?}, {runs:?})",
        done_runs.len(),
        done_rows.len()
    );
    let aborted = runs.iter().filter(|(_, _, s)| s == "aborted").count();
    let retried = mine.iter().filter(|r| r.taken_over_from.is_some()).count();
    assert!(
        aborted <= retried,
        "tenant {tenant}: {aborted} aborted runs for {retried} taken-over ticks"
    );
}

/// The work ledger under contention: three workers' connections claim
/// 600 due ticks at once with `SKIP LOCKED`; every row is claimed exactly
/// once, and finishing with a stale fencing token is refused; an expired
/// claim is taken over with a new token and fences the old one out. Prints the
/// claim + finish cost per run and the flow lease's acquire + release cost
/// per run on this machine (`benches/RESULTS.md`, "Fleet").
#[test]
fn concurrent_claims_take_each_row_once() {
    use muster::fleet::{schema, work};
    const ROWS: usize = 600;
    let db = test_database().unwrap_or_else(|e| panic!("{e}"));
    let mut c = fleet_client(&db);
    schema::migrate(&mut c, "test").expect("migrate");
    let tenants: Vec<String> = (0..20).map(|i| format!("t{i:02}")).collect();
    for i in 0..ROWS {
        let tenant = &tenants[i % tenants.len()];
        assert!(
            work::record_tick(&mut c, tenant, FLOW, (i / tenants.len()) as i64 * 60_000)
                .expect("tick")
        );
    }
    // Recording a tick again (every worker does) adds nothing.
    assert!(!work::record_tick(&mut c, "t00", FLOW, 0).expect("tick again"));

    let started = Instant::now();
    let claimed: Vec<Vec<work::Claim>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|w| {
                let (db, tenants) = (&db, &tenants);
                s.spawn(move || {
                    let mut c = fleet_client(db);
                    let me = format!("worker-{w}");
                    let mut mine = Vec::new();
                    while let Some(claim) =
                        work::claim(&mut c, &me, 60_000, tenants).expect("claim")
                    {
                        assert!(
                            work::finish(&mut c, &claim, work::Outcome::Done, Some(1), "ok")
                                .expect("finish")
                        );
                        mine.push(claim);
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut ids: Vec<i64> = claimed.iter().flatten().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), ROWS, "every row claimed exactly once");
    assert_eq!(claimed.iter().map(Vec::len).sum::<usize>(), ROWS);
    eprintln!(
        "claim + finish: {ROWS} rows by 3 connections in {elapsed:?} ({:.2} ms per run, per worker {:?})",
        elapsed.as_secs_f64() * 1000.0 / ROWS as f64,
        claimed.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // A finished row cannot be finished again under its old token.
    let stale = &claimed.iter().flatten().next().expect("a claim").clone();
    assert!(!work::finish(&mut c, stale, work::Outcome::Failed, None, "late").expect("finish"));

    // Take-over: a claim that expires unrenewed (a dead worker) is claimed
    // again with a new token, naming the dead worker; the dead worker can
    // neither renew nor finish it any more.
    let tick = 24 * 3_600_000;
    assert!(work::record_tick(&mut c, "t00", FLOW, tick).expect("tick"));
    let dead = work::claim(&mut c, "dead", 1, &tenants)
        .expect("claim")
        .expect("the new tick");
    std::thread::sleep(Duration::from_millis(20));
    let taker = work::claim(&mut c, "taker", 60_000, &tenants)
        .expect("claim")
        .expect("the expired claim");
    assert_eq!(taker.id, dead.id);
    assert_eq!(taker.fence, dead.fence + 1);
    assert_eq!(taker.taken_over_from.as_deref(), Some("dead"));
    assert_eq!(
        work::renew(&mut c, &[(dead.id, dead.fence)], 60_000).expect("renew"),
        vec![dead.id],
        "the dead worker's renewal finds its claim lost"
    );
    assert!(!work::finish(&mut c, &dead, work::Outcome::Done, Some(7), "late").expect("finish"));
    assert!(work::finish(&mut c, &taker, work::Outcome::Done, Some(8), "ok").expect("finish"));

    // Pruning deletes finished rows only: a due row stays.
    assert!(work::record_tick(&mut c, "t01", FLOW, 2 * tick).expect("tick"));
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(work::prune(&mut c, 1).expect("prune"), ROWS as u64 + 1);
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM muster_fleet.work WHERE state = 'due'",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(left, 1);

    // The flow lease of a run, on a tenant schema.
    schema::ensure_tenant(&mut c, "lease", "tenant_lease").expect("tenant schema");
    let mut store = tenant_store(&db, "lease");
    store.ensure_flow(FLOW, "lucca", "leapsome").expect("flow");
    let started = Instant::now();
    for _ in 0..200 {
        let lease = store
            .acquire_lease(FLOW, "bench", Duration::from_secs(60))
            .expect("lease");
        store.release_lease(&lease).expect("release");
    }
    eprintln!(
        "flow lease acquire + release: {:.2} ms per run",
        started.elapsed().as_secs_f64() * 1000.0 / 200.0
    );
}

/// Claims and flow leases of the figure's workers.
const FIG_TTL_SECS: u32 = 10;

/// A figure's setting from the environment, or its default.
fn fig_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The database server's clock, in unix ms (the ledger's times).
fn server_now_ms(c: &mut postgres::Client) -> i64 {
    c.query_one(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT",
        &[],
    )
    .expect("now")
    .get(0)
}

/// Stops `workers` at a moment when none of them runs anything (between
/// two ticks), so that no claim or flow lease is left to expire and be
/// taken over in the next measurement.
fn stop_when_quiet(c: &mut postgres::Client, workers: Vec<Serving>) {
    wait_for("a moment with no run", Duration::from_secs(900), || {
        let busy: i64 = c
            .query_one(
                "SELECT count(*) FROM muster_fleet.work WHERE state IN ('due', 'running')",
                &[],
            )
            .expect("busy rows")
            .get(0);
        busy == 0
    });
    drop(workers);
}

/// A tick every tenant has completed.
#[derive(Debug)]
struct TickDone {
    /// Unix ms.
    tick: i64,
    /// From its first claim to its last finish, in ms.
    span_ms: i64,
    /// Runs per worker.
    by: Vec<(String, i64)>,
}

/// The ticks after `since` (unix ms) that every one of `n` tenants has
/// completed, oldest first.
fn completed_ticks(c: &mut postgres::Client, since: i64, n: usize) -> Vec<TickDone> {
    let ticks: Vec<(i64, i64)> = c
        .query(
            "SELECT key, max(finished_ms) - min(claimed_ms) FROM muster_fleet.work
             WHERE kind = 'schedule' AND key > $1 GROUP BY key
             HAVING count(*) FILTER (WHERE state = 'done') = $2 ORDER BY key",
            &[&since, &(n as i64)],
        )
        .expect("ticks")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    ticks
        .into_iter()
        .map(|(tick, span)| {
            let by = c
                .query(
                    "SELECT claimed_by, count(*) FROM muster_fleet.work
                     WHERE kind = 'schedule' AND key = $1 GROUP BY 1 ORDER BY 1",
                    &[&tick],
                )
                .expect("per worker")
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            TickDone {
                tick,
                span_ms: span,
                by,
            }
        })
        .collect()
}

/// Issue 17's figure: runs per minute of no-change resyncs of 1,000-person
/// tenants, with 1 worker and with 3 (`benches/RESULTS.md`, "Fleet"). Every
/// tenant is due each minute, at the same instant, so each tick is a backlog
/// of `MUSTER_FIG_TENANTS` runs the workers drain as fast as they can; a
/// tick's rate is its runs over the span from its first claim to its last
/// finish. First an initial sync (3 workers) settles every tenant; then,
/// for 1 and then 3 fresh workers of `MUSTER_FIG_JOBS` jobs, the first
/// `MUSTER_FIG_TICKS` ticks they complete are measured. Those resyncs must
/// write nothing (no target write), and every account is checked after.
/// Prints the figures; asserts no time.
///
/// `cargo test -p muster --test fleet runs_per_minute -- --ignored --nocapture`
/// (`MUSTER_FIG_TENANTS`, default 30; `MUSTER_FIG_PEOPLE`, 1000;
/// `MUSTER_FIG_JOBS`, 2; `MUSTER_FIG_TICKS`, 2).
#[test]
#[ignore = "a figure for benches/RESULTS.md, minutes long: run it with --ignored --nocapture"]
fn runs_per_minute_of_no_change_resyncs() {
    let n = fig_env("MUSTER_FIG_TENANTS", 30);
    let people = fig_env("MUSTER_FIG_PEOPLE", 1000);
    let jobs = fig_env("MUSTER_FIG_JOBS", 2) as u16;
    let ticks = fig_env("MUSTER_FIG_TICKS", 2);
    let db = test_database().unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let kit = Tenants::start(n, people, KitOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("tenants dir");
    kit.write_configs(dir.path(), Some("every 1m"), &Extra::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut c = fleet_client(&db);

    // Settle: every tenant's first tick is its initial sync.
    let settling: Vec<Serving> = (0..WORKERS)
        .map(|_| worker(&db, dir.path(), FIG_TTL_SECS, FLEET_JOBS))
        .collect();
    wait_for(
        "every tenant's initial sync",
        Duration::from_secs(1800),
        || !completed_ticks(&mut c, 0, n).is_empty(),
    );
    stop_when_quiet(&mut c, settling);
    let accounts = kit.check_accounts();
    assert!(accounts.is_clean(), "{accounts}");
    eprintln!(
        "{n} tenants of {people} people settled after {:?}",
        started.elapsed()
    );

    for workers in [1, WORKERS] {
        let writes = kit.traffic().target_writes();
        let since = server_now_ms(&mut c);
        let serving: Vec<Serving> = (0..workers)
            .map(|_| worker(&db, dir.path(), FIG_TTL_SECS, jobs))
            .collect();
        let mut done = Vec::new();
        wait_for(
            "the measured ticks",
            Duration::from_secs(60 * (ticks as u64 + 1) + 900),
            || {
                done = completed_ticks(&mut c, since, n);
                done.len() >= ticks
            },
        );
        stop_when_quiet(&mut c, serving);
        let traffic = kit.traffic();
        assert_eq!(traffic.target_writes(), writes, "a no-change resync wrote");
        assert_eq!(traffic.lucca_throttled(), 0, "{traffic}");
        let (runs, span) = done[..ticks]
            .iter()
            .fold((0, 0), |(r, s), t| (r + n, s + t.span_ms));
        let total = runs as f64 * 60_000.0 / span.max(1) as f64;
        for t in &done[..ticks] {
            let secs = t.span_ms as f64 / 1000.0;
            eprintln!(
                "  tick {}: {n} runs in {secs:.1} s, per worker {:?}",
                t.tick, t.by
            );
        }
        eprintln!(
            "{workers} worker(s) of {jobs} jobs: {runs} no-change resyncs of {people}-person tenants in {:.1} s busy: {total:.1} runs/min in all, {:.1} per worker",
            span as f64 / 1000.0,
            total / workers as f64
        );
    }
    let accounts = kit.check_accounts();
    assert!(accounts.is_clean(), "{accounts}");
}
