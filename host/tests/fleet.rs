//! `muster serve --fleet`: real worker processes (the built binary) sharing
//! one real PostgreSQL (`muster_sandbox::postgres`), tenants on the sandbox
//! simulators on loopback.
//!
//! - a webhook sent to two workers (one delivery twice, and a second
//!   event) runs each event exactly once; a bad tenant file is that
//!   tenant's problem, shown on the status page with file, line and column;
//! - the fleet test of issue 17: many tenants due in the same minute, three
//!   workers, one SIGKILLed while applying.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::world::{FLOW, Serving, TODAY, World, http, json, serve_process};
use muster::fleet::tenants::state_url;
use muster::serve::{DELIVERY_HEADERS, SECRET_HEADER};
use muster::store::{InboxState, Location, PostgresLocation, RunStatus, Store, Trigger};
use muster_sandbox::LeapsomeOptions;
use muster_sandbox::postgres::{TestDatabase, test_database};

const HOOK_SECRET: &str = "fleet-hook-s3cret";

/// Starts one fleet worker on `db` serving `tenants`, with claims and
/// flow leases lasting `ttl_secs`.
fn worker(db: &TestDatabase, tenants: &Path, ttl_secs: u32) -> Serving {
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
    let hired = to_create(&world, 2);
    let tenants = tempfile::tempdir().expect("tenants dir");
    tenant_file(&world, tenants.path(), "acme");
    // A tenant whose file names a state of its own: refused, at its line.
    let own = "[tenant]\nname = \"Own\"\ntimezone = \"UTC\"\nstate = \"own.db\"\n";
    std::fs::write(tenants.path().join("own-state.toml"), own).expect("bad tenant");

    let one = worker(&db, tenants.path(), 30);
    let two = worker(&db, tenants.path(), 30);
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

    let store = tenant_store(&db, "acme");
    wait_for("both events to run", Duration::from_secs(60), || {
        store.inbox_pending(FLOW).expect("inbox").is_empty()
    });
    let accounts = world.accounts();
    let made: Vec<_> = accounts
        .values()
        .filter(|a| a.0.as_ref().is_some_and(|id| hired.contains(id)))
        .collect();
    assert_eq!(made.len(), 2, "{accounts:?}");
    let runs = store.history(FLOW, 100).expect("history");
    let webhook_runs: Vec<_> = runs
        .iter()
        .filter(|r| r.trigger == Trigger::Webhook)
        .collect();
    assert_eq!(webhook_runs.len(), 2, "one run per event: {runs:?}");
    assert!(webhook_runs.iter().all(|r| r.status == RunStatus::Done));
    for answer in [&first, &second] {
        let answer: serde_json::Value = serde_json::from_str(answer).expect("JSON answer");
        let id = answer["inbox_id"].as_i64().expect("inbox id");
        let event = store
            .inbox_event(muster::store::InboxId(id))
            .expect("event");
        assert_eq!(event.state, InboxState::Done, "{event:?}");
    }
    let mut c = fleet_client(&db);
    let rows = c
        .query(
            "SELECT state, run_id FROM muster_fleet.work WHERE tenant = 'acme' AND kind = 'webhook'",
            &[],
        )
        .expect("ledger");
    assert_eq!(rows.len(), 2, "one ledger row per event");
    // Each row is completed by one of the two runs (a row claimed while
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
