//! A real flow on the PostgreSQL store: the `muster` binary syncs a
//! simulated Lucca tenant into a simulated Leapsome organisation with
//! `tenant.state` a `postgres://` URL (a fresh database of the test
//! server, see `muster_sandbox::postgres`), then syncs again and has
//! nothing left to do. What it remembered is read back through the store.

mod common;

use common::world::{FLOW, World, text};
use muster::store::{JournalState, PostgresLocation, RunStatus, Store};
use muster_core::ActionKind;
use muster_sandbox::LeapsomeOptions;
use muster_sandbox::postgres::test_database;

const PEOPLE: usize = 12;

#[test]
fn a_sync_remembers_its_links_and_runs_in_postgres() {
    let db = test_database().unwrap_or_else(|e| panic!("{e}"));
    let world = World::new(PEOPLE, LeapsomeOptions::default());
    let config = std::fs::read_to_string(world.config()).expect("config");
    let mut on_postgres =
        config.replace("state = \"state.db\"", &format!("state = \"{}\"", db.url()));
    if db.password().is_some() {
        std::fs::write(
            world.dir.path().join("db.password"),
            db.password().unwrap_or_default(),
        )
        .expect("password file");
        on_postgres = on_postgres.replace(
            &format!("state = \"{}\"", db.url()),
            &format!(
                "state = \"{}\"\nstate_password = {{ file = \"db.password\" }}",
                db.url()
            ),
        );
    }
    assert_ne!(
        config, on_postgres,
        "the world's config names its state file"
    );
    std::fs::write(world.config(), on_postgres).expect("config");

    let first = world.muster(&["sync"]);
    assert!(first.status.success(), "{}", text(&first));
    // (Former employees of the tenant are not created.)
    let accounts = world.accounts().len();
    assert!(
        accounts > PEOPLE / 2,
        "{accounts} accounts: {}",
        text(&first)
    );
    let second = world.muster(&["sync"]);
    assert!(second.status.success(), "{}", text(&second));

    assert!(
        !world.dir.path().join("state.db").exists(),
        "the SQLite file was created although the state is PostgreSQL"
    );
    let location =
        PostgresLocation::parse(db.url(), db.password().map(str::to_string)).expect("test URL");
    let store = Store::open_postgres(&location).expect("open the PostgreSQL store");
    assert_eq!(store.links(FLOW).expect("links").len(), accounts);
    let history = store.history(FLOW, 10).expect("history");
    assert_eq!(history.len(), 2, "two runs");
    assert!(
        history.iter().all(|r| r.status == RunStatus::Done),
        "{history:?}"
    );
    let (latest, first_run) = (&history[0], &history[1]);
    let creates = first_run
        .journal
        .iter()
        .filter(|e| e.step.kind == ActionKind::Create && e.state == JournalState::Done)
        .count();
    assert_eq!(creates, accounts, "one create per account");
    assert!(
        latest.journal.is_empty(),
        "the second sync had nothing to do"
    );
    assert!(store.unresolved_journal(FLOW).expect("journal").is_empty());
    assert_eq!(store.lease_holder(FLOW).expect("lease"), None, "released");

    // With the state in PostgreSQL, every paced request took from the
    // budget all processes share (`store::PostgresBudget`): one bucket per
    // origin and declared limit — Lucca's 50 / 61 s (+ the host's margin),
    // Leapsome's 30 / 1 s — holding the send times still in their window.
    let mut raw = location_client(&db);
    let buckets: Vec<(String, i32, i64)> = raw
        .query(
            "SELECT origin, requests, per_us FROM rate_budgets ORDER BY requests DESC",
            &[],
        )
        .expect("rate_budgets")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // `http://127.0.0.1:PORT`, without the connector's base path.
    let origin = |url: &str| url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    assert_eq!(
        buckets,
        vec![
            (origin(&world.lucca.base_url()), 50, 61_050_000),
            (origin(&world.leapsome.base_url()), 30, 1_050_000),
        ],
        "one bucket per origin and limit"
    );
    let lucca_sent: i64 = raw
        .query_one(
            "SELECT cardinality(spent)::BIGINT FROM rate_budgets WHERE requests = 50",
            &[],
        )
        .expect("spent")
        .get(0);
    let lucca_seen = world.lucca.request_log().records.len();
    assert_eq!(
        usize::try_from(lucca_sent).expect("count"),
        lucca_seen,
        "every request Lucca saw was taken from the budget (all within a minute)"
    );
}

/// A client of the test database, as an operator's `psql`.
fn location_client(db: &muster_sandbox::postgres::TestDatabase) -> ::postgres::Client {
    let mut config: ::postgres::Config = db.url().parse().expect("test URL");
    if let Some(p) = db.password() {
        config.password(p);
    }
    config.connect(::postgres::NoTls).expect("connect")
}
