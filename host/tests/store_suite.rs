//! The store's contract, run against both backends: every test here runs
//! once on a SQLite file in a temporary directory (`sqlite::…`) and once on
//! a fresh database of a real PostgreSQL server (`postgres::…`, see
//! `muster_sandbox::postgres` for where the server comes from; with none,
//! those tests fail rather than skip).
//!
//! A test gets a [`Db`]: it opens as many [`Store`]s on the one database as
//! it needs (a second store plays a second process or worker) and runs raw
//! SQL on it to check what the API alone cannot show (the schema's own
//! invariants, what a column holds). What only SQLite has (file modes, WAL,
//! corruption, a hand-written version-1 file, SIGKILL of a writer) stays in
//! `store.rs`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use muster::store::{
    AlertKind, AuditEntry, Completion, Heartbeat, HeldPlanId, HeldState, InboxState, JournalState,
    LeftOut, LeftOutKind, LinkKind, Outcome, PersonEventKind, PostgresLocation, Pushed, Resolution,
    RunCounts, RunId, RunProblem, RunStatus, SCHEMA_VERSION, Side, Store, StoreError, Trigger,
};
use muster_core::rows::{RowAction, RowChange};
use muster_core::{ActionKind, FieldValue, Link, Step};
use muster_core::{Change, Field};
use muster_sandbox::postgres::{TestDatabase, test_database};

const FLOW: &str = "lucca-to-leapsome";
const TTL: Duration = Duration::from_secs(60);

/// One database, on one backend, for one test.
trait Db {
    /// A new store (a new connection) on the database.
    fn open(&self) -> Result<Store, StoreError>;
    /// Runs raw SQL on a connection of its own; the error as text.
    fn execute(&self, sql: &str) -> Result<(), String>;
    /// The first column of the first row of `sql`, as text (`NULL` → `None`).
    fn query_text(&self, sql: &str) -> Option<String>;
    /// Writes the schema version by hand, as a newer muster would have.
    fn set_schema_version(&self, version: u32);
}

struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Sqlite {
    fn new() -> Sqlite {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("muster.db");
        Sqlite { _dir: dir, path }
    }

    fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).expect("raw connection")
    }
}

impl Db for Sqlite {
    fn open(&self) -> Result<Store, StoreError> {
        Store::open(&self.path)
    }

    fn execute(&self, sql: &str) -> Result<(), String> {
        self.raw().execute_batch(sql).map_err(|e| e.to_string())
    }

    fn query_text(&self, sql: &str) -> Option<String> {
        self.raw()
            .query_row(sql, [], |r| {
                Ok(match r.get_ref(0)? {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
                    v => Some(v.as_str().expect("text").to_string()),
                })
            })
            .expect("query")
    }

    fn set_schema_version(&self, version: u32) {
        self.raw()
            .pragma_update(None, "user_version", version)
            .expect("user_version");
    }
}

struct Postgres {
    db: TestDatabase,
}

impl Postgres {
    fn new() -> Postgres {
        let db = test_database().unwrap_or_else(|e| panic!("{e}"));
        Postgres { db }
    }

    fn raw(&self) -> ::postgres::Client {
        let mut config: ::postgres::Config = self.db.url().parse().expect("test URL");
        if let Some(p) = self.db.password() {
            config.password(p);
        }
        config.connect(::postgres::NoTls).expect("raw connection")
    }
}

impl Db for Postgres {
    fn open(&self) -> Result<Store, StoreError> {
        let location =
            PostgresLocation::parse(self.db.url(), self.db.password().map(str::to_string))?;
        Store::open_postgres(&location)
    }

    fn execute(&self, sql: &str) -> Result<(), String> {
        self.raw().batch_execute(sql).map_err(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string())
        })
    }

    fn query_text(&self, sql: &str) -> Option<String> {
        let sql = format!("SELECT ({sql})::text");
        self.raw()
            .query_one(&sql, &[])
            .expect("query")
            .get::<_, Option<String>>(0)
    }

    fn set_schema_version(&self, version: u32) {
        self.raw()
            .execute(
                "UPDATE schema_version SET version = $1",
                &[&i32::try_from(version).expect("version")],
            )
            .expect("schema_version");
    }
}

/// Runs each listed test on both backends.
macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $test() { super::$test(&super::Sqlite::new()) })*
        }
        mod postgres {
            $(#[test] fn $test() { super::$test(&super::Postgres::new()) })*
        }
    };
}

suite!(
    open_create_reopen_keeps_data,
    unknown_flow_and_changed_flow_are_errors,
    newer_schema_is_refused,
    link_uniqueness_names_both_ids,
    record_link_and_done_is_atomic,
    journal_outcomes_and_resolution,
    a_journal_batch_is_one_transaction,
    a_runs_problems_are_kept_in_order_for_history,
    held_plan_round_trip,
    history_is_newest_first_with_journal,
    run_notes_come_back_with_the_history,
    audit_strips_secret_values,
    a_flow_lease_is_held_across_connections_until_released,
    a_run_that_lost_its_lease_can_write_nothing,
    the_heartbeat_keeps_a_lease_alive_and_it_lapses_once_stopped,
    the_inbox_stores_a_delivery_once_and_moves_only_pending_events,
    written_rows_follow_the_applied_updates,
    left_out_rows_round_trip_in_order_while_the_run_runs,
    search_finds_a_person_by_id_email_and_name,
    metrics_count_runs_actions_and_left_out_by_flow,
    alert_once_is_new_once_per_flow_kind_and_key,
    recent_record_failures_are_newest_full_runs_first,
    an_undo_run_names_the_run_it_undoes_and_reads_back_as_undo,
    a_rejected_held_plan_is_retired_audited_and_kept_for_its_page,
);

fn step(kind: ActionKind, source: &str) -> Step {
    Step {
        kind,
        source_id: Some(source.into()),
        target_id: None,
        label: format!("Person {source}"),
        reason: "new_person".into(),
        explanation: "new in the source".into(),
        changes: Vec::new(),
        rows: Vec::new(),
        members: Vec::new(),
        member_names: Default::default(),
        carries: Vec::new(),
        group_name: None,
        manager_source_id: None,
        created: Vec::new(),
    }
}

/// A store on `db` with the test flow recorded.
fn new_store(db: &dyn Db) -> Store {
    let mut s = db.open().expect("open store");
    s.ensure_flow(FLOW, "lucca", "leapsome").expect("flow");
    s
}

fn open_create_reopen_keeps_data(db: &dyn Db) {
    {
        let mut s = new_store(db);
        s.add_link(FLOW, LinkKind::Person, "101", "a-1").unwrap();
        s.add_link(FLOW, LinkKind::Group, "d-1", "g-1").unwrap();
        s.set_watermark(FLOW, Side::Source, "modifiedAt", "2026-11-01T00:00:00Z")
            .unwrap();
        s.set_watermark(FLOW, Side::Source, "modifiedAt", "2026-11-02T00:00:00Z")
            .unwrap();
    }
    let mut s = db.open().unwrap();
    // Re-recording the same flow is a no-op.
    s.ensure_flow(FLOW, "lucca", "leapsome").unwrap();
    assert!(s.check_flow(FLOW, "lucca", "leapsome").unwrap());
    assert!(!s.check_flow("other", "lucca", "leapsome").unwrap());
    assert_eq!(s.links(FLOW).unwrap(), vec![Link::new("101", "a-1")]);
    assert_eq!(s.group_links(FLOW).unwrap(), vec![Link::new("d-1", "g-1")]);
    assert_eq!(
        s.watermark(FLOW, Side::Source, "modifiedAt")
            .unwrap()
            .as_deref(),
        Some("2026-11-02T00:00:00Z")
    );
    assert_eq!(s.watermark(FLOW, Side::Target, "modifiedAt").unwrap(), None);
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
}

fn unknown_flow_and_changed_flow_are_errors(db: &dyn Db) {
    let mut s = new_store(db);
    let err = s.links("nope").unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownFlow(ref f) if f == "nope"),
        "{err}"
    );
    let err = s.ensure_flow(FLOW, "lucca", "cards").unwrap_err();
    assert!(matches!(err, StoreError::FlowChanged { .. }), "{err}");
    assert!(err.to_string().contains("leapsome") && err.to_string().contains("cards"));
    let err = s.check_flow(FLOW, "lucca", "cards").unwrap_err();
    assert!(matches!(err, StoreError::FlowChanged { .. }), "{err}");
}

fn newer_schema_is_refused(db: &dyn Db) {
    drop(new_store(db));
    db.set_schema_version(SCHEMA_VERSION + 1);
    let err = db.open().unwrap_err();
    match &err {
        StoreError::TooNew {
            found, supported, ..
        } => assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION)),
        other => panic!("expected TooNew, got {other}"),
    }
    assert!(err.to_string().contains("newer muster"), "{err}");
}

fn link_uniqueness_names_both_ids(db: &dyn Db) {
    let mut s = new_store(db);
    s.add_link(FLOW, LinkKind::Person, "101", "a-1").unwrap();
    // The same link again is a no-op.
    s.add_link(FLOW, LinkKind::Person, "101", "a-1").unwrap();

    let err = s
        .add_link(FLOW, LinkKind::Person, "101", "a-2")
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SourceAlreadyLinked { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("101") && msg.contains("a-1") && msg.contains("a-2"),
        "{msg}"
    );
    let err = s
        .add_link(FLOW, LinkKind::Person, "102", "a-1")
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TargetAlreadyLinked { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("101") && msg.contains("102") && msg.contains("a-1"),
        "{msg}"
    );
    // Kinds are separate namespaces.
    s.add_link(FLOW, LinkKind::Group, "101", "a-1").unwrap();
    assert_eq!(s.links(FLOW).unwrap(), vec![Link::new("101", "a-1")]);

    // The schema holds the invariant even without the API's checks.
    let flow_id = db.query_text(&format!("SELECT id FROM flows WHERE name = '{FLOW}'"));
    let e = db
        .execute(&format!(
            "INSERT INTO links (flow_id, kind, source_id, target_id, created_at)
             VALUES ({}, 'person', '101', 'a-9', 'now')",
            flow_id.expect("flow id")
        ))
        .unwrap_err();
    assert!(e.to_lowercase().contains("unique"), "{e}");

    s.remove_link(FLOW, LinkKind::Person, "101", "a-1").unwrap();
    assert!(s.links(FLOW).unwrap().is_empty());
    let err = s
        .remove_link(FLOW, LinkKind::Person, "101", "a-1")
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSuchLink { .. }), "{err}");
}

fn record_link_and_done_is_atomic(db: &dyn Db) {
    let mut s = new_store(db);
    s.add_link(FLOW, LinkKind::Person, "other", "a-1").unwrap();
    let run = s.begin_run(FLOW, Trigger::Manual).unwrap();
    let id = s
        .journal_intent(run, 0, &step(ActionKind::Create, "101"))
        .unwrap();

    // The link conflicts: neither the link nor the outcome is written.
    let err = s
        .record_link_and_done(id, LinkKind::Person, "101", "a-1")
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TargetAlreadyLinked { .. }),
        "{err}"
    );
    let e = s.journal_entry(id).unwrap();
    assert_eq!(e.state, JournalState::Intent);
    assert_eq!(e.produced_target_id, None);
    assert_eq!(s.links(FLOW).unwrap(), vec![Link::new("other", "a-1")]);

    // Then it succeeds, both at once.
    s.record_link_and_done(id, LinkKind::Person, "101", "a-2")
        .unwrap();
    let e = s.journal_entry(id).unwrap();
    assert_eq!(e.state, JournalState::Done);
    assert_eq!(e.produced_target_id.as_deref(), Some("a-2"));
    assert!(s.links(FLOW).unwrap().contains(&Link::new("101", "a-2")));

    // An outcome is written once: a second one touches neither table.
    let err = s
        .record_link_and_done(id, LinkKind::Person, "102", "a-3")
        .unwrap_err();
    assert!(matches!(err, StoreError::JournalResolved { .. }), "{err}");
    assert!(!s.links(FLOW).unwrap().contains(&Link::new("102", "a-3")));
}

fn journal_outcomes_and_resolution(db: &dyn Db) {
    let mut s = new_store(db);
    let run = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let kinds = [
        ActionKind::Update,
        ActionKind::Update,
        ActionKind::Deactivate,
        ActionKind::Create,
    ];
    let ids: Vec<_> = (0..)
        .zip(kinds)
        .map(|(seq, kind)| {
            s.journal_intent(run, seq, &step(kind, &seq.to_string()))
                .unwrap()
        })
        .collect();
    // seq is unique within a run.
    assert!(
        s.journal_intent(run, 3, &step(ActionKind::Create, "4"))
            .is_err()
    );
    s.journal_done(ids[0], Some("a-1")).unwrap();
    s.journal_failed(ids[1], "400 invalid email").unwrap();
    let open = s.unresolved_journal(FLOW).unwrap();
    assert_eq!(
        open.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids[2..].to_vec()
    );
    assert_eq!(open[0].step.kind, ActionKind::Deactivate);
    let note = "target unreachable";
    s.resolve_journal(ids[2], &Resolution::Unknown { note: note.into() })
        .unwrap();
    s.resolve_journal(
        ids[3],
        &Resolution::Failed {
            error: "not found in target".into(),
        },
    )
    .unwrap();
    assert!(s.unresolved_journal(FLOW).unwrap().is_empty());
    assert!(matches!(
        s.journal_done(ids[0], None).unwrap_err(),
        StoreError::JournalResolved { .. }
    ));
    let states: Vec<_> = s.history(FLOW, 1).unwrap()[0]
        .journal
        .iter()
        .map(|e| (e.state, e.error.clone()))
        .collect();
    assert_eq!(
        states,
        vec![
            (JournalState::Done, None),
            (JournalState::Failed, Some("400 invalid email".into())),
            (JournalState::Unknown, Some(note.into())),
            (JournalState::Failed, Some("not found in target".into())),
        ]
    );
    // A finished run takes no more intents.
    s.finish_run(run, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    assert!(matches!(
        s.journal_intent(run, 9, &step(ActionKind::Create, "9"))
            .unwrap_err(),
        StoreError::RunFinished { .. }
    ));
    assert!(matches!(
        s.finish_run(run, RunStatus::Failed, &RunCounts::new(), None)
            .unwrap_err(),
        StoreError::RunFinished { .. }
    ));
    assert!(matches!(
        s.journal_entry(muster::store::JournalId(999_999))
            .unwrap_err(),
        StoreError::UnknownJournal(_)
    ));
}

/// Outcomes and intents of one batch commit together or not at all: a
/// batch whose outcome conflicts leaves the earlier outcomes and the next
/// intents unwritten.
fn a_journal_batch_is_one_transaction(db: &dyn Db) {
    let mut s = new_store(db);
    s.add_link(FLOW, LinkKind::Person, "taken", "a-9").unwrap();
    let run = s.begin_run(FLOW, Trigger::Manual).unwrap();
    let (one, two) = (step(ActionKind::Create, "1"), step(ActionKind::Create, "2"));
    let ids = s.journal_batch(&[], run, &[(0, &one), (1, &two)]).unwrap();
    let linked = |id, target| Completion {
        id,
        outcome: Outcome::Linked {
            kind: LinkKind::Person,
            source_id: if id == ids[0] { "1" } else { "2" },
            target_id: target,
        },
        audit: None,
    };
    let next = step(ActionKind::Create, "3");
    let err = s
        .journal_batch(
            &[linked(ids[0], "a-1"), linked(ids[1], "a-9")],
            run,
            &[(2, &next)],
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TargetAlreadyLinked { .. }),
        "{err}"
    );
    assert_eq!(
        s.unresolved_journal(FLOW).unwrap().len(),
        2,
        "nothing settled"
    );
    assert_eq!(s.links(FLOW).unwrap(), vec![Link::new("taken", "a-9")]);
    assert_eq!(
        s.history(FLOW, 1).unwrap()[0].journal.len(),
        2,
        "no new intent"
    );
    // The same batch without the conflict commits all of it.
    let new = s
        .journal_batch(
            &[linked(ids[0], "a-1"), linked(ids[1], "a-2")],
            run,
            &[(2, &next)],
        )
        .unwrap();
    assert_eq!(s.unresolved_journal(FLOW).unwrap()[0].id, new[0]);
    assert_eq!(s.links(FLOW).unwrap().len(), 3);
}

fn a_runs_problems_are_kept_in_order_for_history(db: &dyn Db) {
    let mut s = new_store(db);
    let problem = |record: &str, field: &str| RunProblem {
        side: "source".into(),
        plugin: "lucca".into(),
        record: record.into(),
        field: field.into(),
        message: format!("{field} of {record} could not be read"),
    };
    let clean = s.begin_run(FLOW, Trigger::Manual).unwrap();
    s.finish_run(clean, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    let run = s.begin_run(FLOW, Trigger::Manual).unwrap();
    let first = [problem("42", "birth_date"), problem("7", "gender")];
    s.add_run_problems(run, &first).unwrap();
    s.add_run_problems(run, &[problem("9", "(record)")])
        .unwrap();
    s.finish_run(run, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    let history = s.history(FLOW, 10).unwrap();
    let records: Vec<(&str, &str)> = history[0]
        .problems
        .iter()
        .map(|p| (p.record.as_str(), p.field.as_str()))
        .collect();
    assert_eq!(
        records,
        [("42", "birth_date"), ("7", "gender"), ("9", "(record)")]
    );
    assert_eq!(history[0].problems[0], first[0]);
    assert!(history[1].problems.is_empty(), "another run's problems");
    assert!(matches!(
        s.add_run_problems(run, &first).unwrap_err(),
        StoreError::RunFinished { .. }
    ));
}

fn held_plan_round_trip(db: &dyn Db) {
    let mut s = new_store(db);
    assert_eq!(s.held_plan(FLOW).unwrap(), None);
    assert!(matches!(
        s.approve_held(FLOW, "ops").unwrap_err(),
        StoreError::NoHeldPlan(_)
    ));
    let steps = vec![
        step(ActionKind::Deactivate, "1"),
        step(ActionKind::Deactivate, "2"),
    ];
    let r1 = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    s.hold_plan(FLOW, r1, &steps[..1], "digest-1", "too many")
        .unwrap();
    s.finish_run(r1, RunStatus::Held, &RunCounts::new(), None)
        .unwrap();
    // A fresher held plan supersedes the pending one.
    let r2 = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let id = s
        .hold_plan(FLOW, r2, &steps, "digest-2", "deactivate 2 > 1")
        .unwrap();
    s.finish_run(r2, RunStatus::Held, &RunCounts::new(), None)
        .unwrap();
    drop(s);

    let mut s = db.open().unwrap();
    let held = s.held_plan(FLOW).unwrap().unwrap();
    assert_eq!((held.id, held.run), (id, r2));
    assert_eq!(held.steps, steps);
    assert_eq!(held.snapshot_digest, "digest-2");
    assert_eq!(held.breaches, "deactivate 2 > 1");
    assert_eq!(held.approved_at, None);

    let approved = s.approve_held(FLOW, "ops@acme").unwrap();
    assert_eq!(approved.steps, steps);
    assert_eq!(approved.approved_by.as_deref(), Some("ops@acme"));
    assert!(approved.approved_at.is_some());
    assert_eq!(s.held_plan(FLOW).unwrap(), None);
    let audit = s.audit_log(FLOW, 10).unwrap();
    assert_eq!(audit[0].what, "approve_held");
    // Superseding when nothing is pending is a no-op that says so.
    assert!(!s.supersede_held(FLOW).unwrap());
    let r3 = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    s.hold_plan(FLOW, r3, &steps, "digest-3", "again").unwrap();
    assert!(s.supersede_held(FLOW).unwrap());
    assert_eq!(s.held_plan(FLOW).unwrap(), None);
}

fn history_is_newest_first_with_journal(db: &dyn Db) {
    let mut s = new_store(db);
    let mut runs = Vec::new();
    for (i, trigger) in [Trigger::Schedule, Trigger::Manual, Trigger::Webhook]
        .into_iter()
        .enumerate()
    {
        let run = s.begin_run(FLOW, trigger).unwrap();
        for seq in 0..=i as u32 {
            let id = s
                .journal_intent(run, seq, &step(ActionKind::Update, &format!("{i}-{seq}")))
                .unwrap();
            s.journal_done(id, None).unwrap();
        }
        let counts = RunCounts::from([("update".to_string(), i as u64 + 1)]);
        s.finish_run(run, RunStatus::Done, &counts, None).unwrap();
        runs.push(run);
    }
    let unfinished = s.begin_run(FLOW, Trigger::Single).unwrap();
    assert_eq!(s.unfinished_runs(FLOW).unwrap(), vec![unfinished]);
    let h = s.history(FLOW, 3).unwrap();
    assert_eq!(
        h.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![unfinished, runs[2], runs[1]]
    );
    assert_eq!(
        (h[0].status, h[0].finished_at.as_deref()),
        (RunStatus::Running, None)
    );
    assert_eq!(h[1].trigger, Trigger::Webhook);
    assert_eq!(h[1].counts["update"], 3);
    assert!(h[1].finished_at.as_deref().unwrap() >= h[1].started_at.as_str());
    assert!(h[1].started_at.ends_with('Z') && h[1].started_at.contains('T'));
    let seqs: Vec<_> = h[1].journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2]);
    assert_eq!(s.history(FLOW, 10).unwrap().len(), 4);
}

/// A run's notes (the records it skipped or left out, and why) come back
/// with its history; a run without notes has none.
fn run_notes_come_back_with_the_history(db: &dyn Db) {
    let mut s = new_store(db);
    let quiet = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    s.finish_run(quiet, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    let run = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let notes = vec![
        "skip Noé (t-103): `work_email` is required to create an account".to_string(),
        "source record t-105: field `department_id`: no mapping".to_string(),
    ];
    s.set_run_notes(run, &notes).unwrap();
    s.finish_run(run, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    let h = s.history(FLOW, 2).unwrap();
    assert_eq!((h[0].id, &h[0].notes), (run, &notes));
    assert_eq!((h[1].id, h[1].notes.len()), (quiet, 0));
}

fn audit_strips_secret_values(db: &dyn Db) {
    let mut s = new_store(db);
    let before = serde_json::json!({"email": "ana@acme.fr", "password": "hunter2"});
    let after = serde_json::json!({
        "email": "ana@acme.fr",
        "settings": {"api_key": "k-123", "apiToken": "t-456", "subdomain": "acme"}
    });
    s.audit(&AuditEntry {
        flow: Some(FLOW),
        run: None,
        what: "update",
        subject: "a-1",
        before: Some(&before),
        after: Some(&after),
    })
    .unwrap();
    let log = s.audit_log(FLOW, 1).unwrap();
    let e = &log[0];
    assert_eq!((e.what.as_str(), e.subject.as_str()), ("update", "a-1"));
    let before = e.before.as_ref().unwrap();
    let after = e.after.as_ref().unwrap();
    assert_eq!(before["email"], "ana@acme.fr");
    assert_eq!(before["password"], "[redacted]");
    assert_eq!(after["settings"]["api_key"], "[redacted]");
    assert_eq!(after["settings"]["apiToken"], "[redacted]");
    assert_eq!(after["settings"]["subdomain"], "acme");
    // What the database holds, read past the API.
    let stored = db
        .query_text("SELECT before || after FROM audit")
        .expect("audit row");
    assert!(stored.contains("ana@acme.fr"), "{stored}");
    for secret in ["hunter2", "k-123", "t-456"] {
        assert!(!stored.contains(secret), "{secret} reached the database");
    }
}

fn a_flow_lease_is_held_across_connections_until_released(db: &dyn Db) {
    let mut a = new_store(db);
    let mut b = db.open().unwrap();
    let lease = a.acquire_lease(FLOW, "host:1:aa", TTL).unwrap();
    assert_eq!(lease.token, 1);
    assert!(!a.lease_lapsed());
    match b.acquire_lease(FLOW, "host:2:bb", TTL) {
        Err(StoreError::LeaseHeld(h)) => {
            assert_eq!(
                (h.owner.as_str(), h.token, h.expired),
                ("host:1:aa", 1, false)
            );
            let msg = StoreError::LeaseHeld(h).to_string();
            assert!(
                msg.contains("is busy: host:1:aa has been running it since"),
                "{msg}"
            );
        }
        other => panic!("a held lease was granted again: {other:?}"),
    }
    assert_eq!(b.lease_holder(FLOW).unwrap().unwrap().owner, "host:1:aa");
    assert_eq!(b.lease_holder("never-recorded").unwrap(), None);
    a.renew_lease(&lease, TTL).unwrap();
    a.release_lease(&lease).unwrap();
    assert!(!a.lease_lapsed(), "no lease, nothing lapses");
    assert_eq!(b.lease_holder(FLOW).unwrap(), None);
    let next = b.acquire_lease(FLOW, "host:2:bb", TTL).unwrap();
    assert_eq!(next.token, 2, "every acquisition gets a new fencing token");
    assert_eq!(next.took_over, None, "a released lease is not taken over");
    // Releasing a lease that is no longer yours says who has it.
    match a.release_lease(&lease) {
        Err(StoreError::LeaseLost { now_held_by, .. }) => assert_eq!(now_held_by, "host:2:bb"),
        other => panic!("released a lease it had lost: {other:?}"),
    }
}

fn a_run_that_lost_its_lease_can_write_nothing(db: &dyn Db) {
    let mut a = new_store(db);
    // A lease that expires at once: still `a`'s until someone takes it.
    let _lease = a.acquire_lease(FLOW, "host:1:aa", Duration::ZERO).unwrap();
    assert!(
        a.lease_lapsed(),
        "rule 6: a lease with no time left has lapsed"
    );
    let run = a.begin_run(FLOW, Trigger::Manual).unwrap();
    let ids = a
        .journal_batch(
            &[],
            run,
            &[
                (1, &step(ActionKind::Create, "101")),
                (2, &step(ActionKind::Create, "102")),
            ],
        )
        .unwrap();

    let mut b = db.open().unwrap();
    let taken = b.acquire_lease(FLOW, "host:2:bb", TTL).unwrap();
    assert_eq!(
        taken.took_over.map(|h| h.owner).as_deref(),
        Some("host:1:aa")
    );

    let done = Completion {
        id: ids[0],
        outcome: Outcome::Linked {
            kind: LinkKind::Person,
            source_id: "101",
            target_id: "a-1",
        },
        audit: None,
    };
    let fenced = |e: StoreError| matches!(e, StoreError::LeaseLost { token: 1, ref now_held_by, .. } if now_held_by == "host:2:bb");
    assert!(fenced(
        a.journal_complete(std::slice::from_ref(&done)).unwrap_err()
    ));
    assert!(fenced(
        a.record_link_and_done(ids[1], LinkKind::Person, "102", "a-2")
            .unwrap_err()
    ));
    assert!(fenced(
        a.finish_run(run, RunStatus::Done, &RunCounts::new(), None)
            .unwrap_err()
    ));
    assert!(fenced(a.begin_run(FLOW, Trigger::Manual).unwrap_err()));
    // Nothing of it reached the database: the new holder settles the dead run.
    assert!(b.links(FLOW).unwrap().is_empty());
    assert_eq!(b.unresolved_journal(FLOW).unwrap().len(), 2);
    b.record_link_and_done(ids[0], LinkKind::Person, "101", "a-1")
        .unwrap();
    b.finish_run(
        run,
        RunStatus::Aborted,
        &RunCounts::new(),
        Some("interrupted"),
    )
    .unwrap();
    let fence = db.query_text(&format!(
        "SELECT lease_fence FROM runs WHERE id = {}",
        run.0
    ));
    assert_eq!(
        fence.as_deref(),
        Some("1"),
        "the run records the fence it was made under"
    );
}

fn the_heartbeat_keeps_a_lease_alive_and_it_lapses_once_stopped(db: &dyn Db) {
    let mut a = new_store(db);
    let ttl = Duration::from_millis(1500);
    let lease = a.acquire_lease(FLOW, "host:1:aa", ttl).unwrap();
    let heartbeat = Heartbeat::start(&a, &lease, ttl).unwrap();
    let mut b = db.open().unwrap();
    // Well past the time-to-live: only the heartbeat keeps it.
    std::thread::sleep(ttl * 3);
    assert!(matches!(
        b.acquire_lease(FLOW, "host:2:bb", TTL),
        Err(StoreError::LeaseHeld(_))
    ));
    heartbeat.stop();
    let deadline = Instant::now() + Duration::from_secs(60);
    let taken = loop {
        match b.acquire_lease(FLOW, "host:2:bb", TTL) {
            Ok(l) => break l,
            Err(StoreError::LeaseHeld(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("the lease never lapsed: {e}"),
        }
    };
    assert_eq!(
        taken.took_over.map(|h| h.owner).as_deref(),
        Some("host:1:aa")
    );
}

fn the_inbox_stores_a_delivery_once_and_moves_only_pending_events(db: &dyn Db) {
    let mut s = new_store(db);
    let first = s
        .inbox_push(FLOW, Some("d-1"), Some("101"), r#"{"id":101}"#)
        .unwrap();
    let Pushed::New(id) = first else {
        panic!("a first delivery was a duplicate: {first:?}");
    };
    // A redelivery stores nothing and names the first event.
    assert_eq!(
        s.inbox_push(FLOW, Some("d-1"), Some("101"), "{}").unwrap(),
        Pushed::Duplicate(id)
    );
    // Without a delivery id every push is new.
    let Pushed::New(bare) = s.inbox_push(FLOW, None, None, "{}").unwrap() else {
        panic!("an event without a delivery id was a duplicate");
    };
    let Pushed::New(other) = s.inbox_push(FLOW, None, Some("102"), "{}").unwrap() else {
        panic!("an event without a delivery id was a duplicate");
    };
    assert_eq!(
        s.inbox_pending(FLOW)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![id, bare, other]
    );
    let run = s.begin_run(FLOW, Trigger::Webhook).unwrap();
    s.inbox_failed(id, Some(run), "HTTP 503").unwrap();
    let e = s.inbox_event(id).unwrap();
    assert_eq!(
        (e.state, e.attempts, e.error.as_deref(), e.run),
        (InboxState::Pending, 1, Some("HTTP 503"), Some(run))
    );
    s.inbox_done(id, Some(run)).unwrap();
    s.inbox_reject(bare, "no record id in the payload").unwrap();
    let e = s.inbox_event(id).unwrap();
    assert_eq!((e.state, e.attempts, e.error), (InboxState::Done, 2, None));
    assert_eq!(
        (e.delivery_id.as_deref(), e.record_id.as_deref()),
        (Some("d-1"), Some("101"))
    );
    assert_eq!(e.payload, r#"{"id":101}"#);
    assert!(e.processed_at.is_some());
    // Only a pending event changes state.
    let err = s.inbox_done(bare, None).unwrap_err();
    assert!(err.to_string().contains("rejected"), "{err}");
    let recent: Vec<_> = s
        .inbox_recent(FLOW, 2)
        .unwrap()
        .iter()
        .map(|e| (e.id, e.state))
        .collect();
    assert_eq!(
        recent,
        vec![(other, InboxState::Pending), (bare, InboxState::Rejected)]
    );
}

fn written_rows_follow_the_applied_updates(db: &dyn Db) {
    let mut s = new_store(db);
    let run = s.begin_run(FLOW, Trigger::Manual).unwrap();
    let update = |target: &str, actions: Vec<RowAction>| Step {
        target_id: Some(target.into()),
        rows: actions
            .into_iter()
            .map(|action| RowChange {
                field: "e_formation".into(),
                key: "e_title".into(),
                action,
            })
            .collect(),
        ..step(ActionKind::Update, "c-1")
    };
    let add = |title: &str| RowAction::Add {
        row: [("e_title".to_string(), FieldValue::Text(title.into()))].into(),
    };
    let keys = |s: &Store, target: &str| -> Vec<String> {
        let w = s.written_rows(FLOW).unwrap();
        w.keys(target, "e_formation").iter().cloned().collect()
    };
    let done = s
        .journal_intent(run, 0, &update("416", vec![add(" GDPR "), add("Security")]))
        .unwrap();
    let failed = s
        .journal_intent(run, 1, &update("417", vec![add("GDPR")]))
        .unwrap();
    assert!(
        s.written_rows(FLOW).unwrap().is_empty(),
        "an intent writes nothing"
    );
    s.journal_done(done, Some("416")).unwrap();
    s.journal_failed(failed, "HTTP 500").unwrap();
    assert_eq!(keys(&s, "416"), ["GDPR", "Security"]);
    assert!(keys(&s, "417").is_empty());
    let remove = s
        .journal_intent(
            run,
            2,
            &update(
                "416",
                vec![RowAction::Remove {
                    key: FieldValue::Text("GDPR".into()),
                }],
            ),
        )
        .unwrap();
    s.journal_done(remove, Some("416")).unwrap();
    assert_eq!(keys(&s, "416"), ["Security"]);
}

fn skipped(source: &str, label: &str) -> LeftOut {
    LeftOut {
        kind: LeftOutKind::Skip,
        source_id: Some(source.into()),
        target_id: None,
        label: label.into(),
        reason: "missing_field".into(),
        explanation: "the source record has no work email".into(),
    }
}

fn problem(record: &str, field: &str) -> RunProblem {
    RunProblem {
        side: "source".into(),
        plugin: "lucca".into(),
        record: record.into(),
        field: field.into(),
        message: format!("{field} is not a date"),
    }
}

fn left_out_rows_round_trip_in_order_while_the_run_runs(db: &dyn Db) {
    let mut s = new_store(db);
    let run = s.begin_run(FLOW, Trigger::Manual).unwrap();
    s.add_run_left_out(run, &[skipped("1", "Nina Müller")])
        .unwrap();
    let conflict = LeftOut {
        kind: LeftOutKind::Conflict,
        target_id: Some("t-9".into()),
        reason: "key_taken".into(),
        ..skipped("2", "Ada <b>")
    };
    s.add_run_left_out(run, std::slice::from_ref(&conflict))
        .unwrap();
    drop(s);
    let mut s = db.open().unwrap();
    assert_eq!(
        s.run_left_out(run).unwrap(),
        [skipped("1", "Nina Müller"), conflict]
    );
    assert_eq!(
        db.query_text("SELECT COUNT(*) FROM run_left_out")
            .as_deref(),
        Some("2")
    );
    s.finish_run(run, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    assert!(matches!(
        s.add_run_left_out(run, &[skipped("3", "x")]),
        Err(StoreError::RunFinished { .. })
    ));
    assert!(matches!(
        s.add_run_left_out(RunId(999), &[]),
        Err(StoreError::UnknownRun(RunId(999)))
    ));
    // The run view reads the same run back with its journal.
    let summary = s.run_summary(run).unwrap();
    assert_eq!((summary.id, summary.status), (run, RunStatus::Done));
    assert!(matches!(
        s.run_summary(RunId(999)),
        Err(StoreError::UnknownRun(_))
    ));
}

/// A create whose values hold an email, nested as the plan writes it.
fn create_with_email(source: &str, label: &str, email: &str) -> Step {
    Step {
        label: label.into(),
        changes: vec![Change::values(
            Field::WorkEmail.into(),
            None,
            Some(FieldValue::Text(email.into())),
        )],
        ..step(ActionKind::Create, source)
    }
}

fn search_finds_a_person_by_id_email_and_name(db: &dyn Db) {
    let mut s = new_store(db);
    let first = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    s.add_run_left_out(first, &[skipped("42", "Nina Müller")])
        .unwrap();
    s.finish_run(first, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    let second = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let nina = create_with_email("42", "Nina Müller", "Nina.Muller@acme.example");
    let ada = create_with_email("7", "Ada Lovelace", "ada@acme.example");
    let ids = s
        .journal_batch(&[], second, &[(1, &nina), (2, &ada)])
        .unwrap();
    s.journal_done(ids[0], Some("lp-42")).unwrap();

    // By source id: the create and, in the older run, the skip.
    let found = s.search_people("42", 10).unwrap();
    let what: Vec<(RunId, &str)> = found
        .events
        .iter()
        .map(|e| {
            let kind = match &e.what {
                PersonEventKind::Action(a) => a.kind.name(),
                PersonEventKind::LeftOut(l) => l.kind.as_str(),
            };
            (e.run, kind)
        })
        .collect();
    assert_eq!(what, [(second, "create"), (first, "skip")]);
    assert!(!found.more);
    assert!(found.events.iter().all(|e| e.flow == FLOW));
    // By email, whatever its case; by the id the target gave; by name.
    for query in ["nina.muller@acme.example", "lp-42", "nina m", "  42 "] {
        let found = s.search_people(query, 10).unwrap();
        assert_eq!(found.events.len(), 2, "{query}: {found:?}");
        assert_eq!(found.events[0].run, second, "{query}");
    }
    let ada_found = s.search_people("ADA@acme.example", 10).unwrap();
    assert!(matches!(
        &ada_found.events[..],
        [e] if matches!(&e.what, PersonEventKind::Action(a) if a.source_id.as_deref() == Some("7"))
    ));
    // A part of an email is not a match; an empty query finds nothing.
    assert!(
        s.search_people("acme.example", 10)
            .unwrap()
            .events
            .is_empty()
    );
    assert!(s.search_people("  ", 10).unwrap().events.is_empty());
    // The limit cuts the oldest and says there is more.
    let cut = s.search_people("42", 1).unwrap();
    assert_eq!((cut.events.len(), cut.more), (1, true));
    assert_eq!(cut.events[0].run, second);
}

fn metrics_count_runs_actions_and_left_out_by_flow(db: &dyn Db) {
    let mut s = new_store(db);
    s.ensure_flow("b-flow", "lucca", "scim").unwrap();
    for status in [RunStatus::Done, RunStatus::Done, RunStatus::Failed] {
        let run = s.begin_run(FLOW, Trigger::Manual).unwrap();
        s.finish_run(run, status, &RunCounts::new(), None).unwrap();
    }
    let run = s.begin_run(FLOW, Trigger::Manual).unwrap();
    s.add_run_left_out(run, &[skipped("1", "n"), skipped("2", "m")])
        .unwrap();
    let ids = s
        .journal_batch(
            &[],
            run,
            &[
                (1, &step(ActionKind::Create, "1")),
                (2, &step(ActionKind::Update, "2")),
                (3, &step(ActionKind::Update, "3")),
            ],
        )
        .unwrap();
    s.journal_done(ids[0], Some("a-1")).unwrap();
    s.journal_done(ids[1], None).unwrap();
    s.journal_failed(ids[2], "400").unwrap();

    let m = s.metrics().unwrap();
    assert_eq!(m.flows, ["b-flow", FLOW]);
    assert_eq!(
        m.runs,
        [
            (FLOW.into(), "done".into(), 2),
            (FLOW.into(), "failed".into(), 1)
        ]
    );
    assert_eq!(
        m.actions,
        [
            (FLOW.into(), "create".into(), 1),
            (FLOW.into(), "update".into(), 1)
        ]
    );
    assert_eq!(m.failed, [(FLOW.into(), 1)]);
    assert_eq!(m.left_out, [(FLOW.into(), "skip".into(), 2)]);
    assert_eq!(m.last_runs.len(), 1);
    assert_eq!(m.last_runs[0].flow, FLOW);
    assert_eq!(m.last_success.len(), 1);
    assert_eq!(m.last_success[0].0, FLOW);
}

fn alert_once_is_new_once_per_flow_kind_and_key(db: &dyn Db) {
    let mut s = new_store(db);
    s.ensure_flow("g", "lucca", "scim").unwrap();
    assert!(s.alert_once(FLOW, AlertKind::Held, "d1").unwrap());
    assert!(!s.alert_once(FLOW, AlertKind::Held, "d1").unwrap());
    assert!(s.alert_once(FLOW, AlertKind::Held, "d2").unwrap());
    assert!(s.alert_once(FLOW, AlertKind::Failed, "d1").unwrap());
    assert!(s.alert_once("g", AlertKind::Held, "d1").unwrap());
    // Remembered across connections (a restarted serve).
    let mut other = db.open().unwrap();
    assert!(!other.alert_once(FLOW, AlertKind::Held, "d2").unwrap());
    assert!(matches!(
        other.alert_once("nope", AlertKind::Held, "d1"),
        Err(StoreError::UnknownFlow(_))
    ));
    assert_eq!(
        db.query_text("SELECT COUNT(*) FROM alerts_sent").as_deref(),
        Some("4")
    );
}

fn recent_record_failures_are_newest_full_runs_first(db: &dyn Db) {
    let mut s = new_store(db);
    let mut run = |trigger: Trigger, status: RunStatus, problems: &[RunProblem]| {
        let run = s.begin_run(FLOW, trigger).unwrap();
        s.add_run_problems(run, problems).unwrap();
        s.finish_run(run, status, &RunCounts::new(), Some("boom"))
            .unwrap();
        run
    };
    let r1 = run(
        Trigger::Schedule,
        RunStatus::Done,
        &[problem("7", "birth_date")],
    );
    let r2 = run(Trigger::Schedule, RunStatus::Failed, &[]);
    run(Trigger::Webhook, RunStatus::Done, &[problem("9", "x")]);
    run(Trigger::Schedule, RunStatus::Held, &[problem("9", "x")]);
    let r5 = s.begin_run(FLOW, Trigger::Manual).unwrap();
    s.add_run_problems(r5, &[problem("7", "birth_date"), problem("8", "email")])
        .unwrap();
    let ids = s
        .journal_batch(&[], r5, &[(1, &step(ActionKind::Update, "6"))])
        .unwrap();
    s.journal_failed(ids[0], "400 invalid email").unwrap();
    s.finish_run(r5, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    // An undo run is no full run either.
    let undo = s.begin_undo_run(FLOW, r5).unwrap();
    s.finish_run(undo, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();

    let got = s.recent_record_failures(FLOW, 3).unwrap();
    assert_eq!(got.iter().map(|r| r.run).collect::<Vec<_>>(), [r5, r2, r1]);
    let failures: Vec<(&str, &str, &str)> = got[0]
        .failures
        .iter()
        .map(|f| (f.record.as_str(), f.what.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(
        failures,
        [
            ("7", "birth_date", "birth_date is not a date"),
            ("8", "email", "email is not a date"),
            ("6", "update", "400 invalid email"),
        ]
    );
    assert!(got[1].failures.is_empty());
    assert_eq!(s.recent_record_failures(FLOW, 1).unwrap().len(), 1);
    assert_eq!(s.run_error(r2).unwrap().as_deref(), Some("boom"));
    assert_eq!(s.run_error(r5).unwrap(), None);
    assert!(matches!(
        s.run_error(RunId(999)),
        Err(StoreError::UnknownRun(_))
    ));
}

fn an_undo_run_names_the_run_it_undoes_and_reads_back_as_undo(db: &dyn Db) {
    let mut s = new_store(db);
    let first = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let id = s
        .journal_intent(first, 1, &step(ActionKind::Deactivate, "101"))
        .unwrap();
    s.journal_done(id, Some("a-1")).unwrap();
    s.finish_run(first, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    let undo = s.begin_undo_run(FLOW, first).unwrap();
    drop(s);

    let mut s = db.open().unwrap();
    let record = s.run_record(undo).unwrap();
    assert_eq!(
        (
            record.flow.as_str(),
            record.trigger,
            record.status,
            record.undoes
        ),
        (FLOW, Trigger::Undo, RunStatus::Running, Some(first))
    );
    // One meaning on both backends: stored as `manual` with `undoes` set.
    let sql = format!(r#"SELECT "trigger" FROM runs WHERE id = {}"#, undo.0);
    assert_eq!(db.query_text(&sql).as_deref(), Some("manual"));
    let record = s.run_record(first).unwrap();
    assert_eq!((record.trigger, record.undoes), (Trigger::Schedule, None));
    let journal = s.run_journal(first).unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].state, JournalState::Done);
    assert_eq!(journal[0].step.kind, ActionKind::Deactivate);

    let history = s.history(FLOW, 10).unwrap();
    assert_eq!(
        history
            .iter()
            .map(|r| (r.trigger, r.undoes))
            .collect::<Vec<_>>(),
        [(Trigger::Undo, Some(first)), (Trigger::Schedule, None)]
    );
    let summary = s.run_summary(undo).unwrap();
    assert_eq!(
        (summary.trigger, summary.undoes),
        (Trigger::Undo, Some(first))
    );
    // An undo of a run that does not exist is refused by the database too.
    assert!(s.begin_undo_run(FLOW, RunId(999)).is_err());
    assert!(matches!(
        s.run_record(RunId(999)),
        Err(StoreError::UnknownRun(_))
    ));
}

fn a_rejected_held_plan_is_retired_audited_and_kept_for_its_page(db: &dyn Db) {
    let mut s = new_store(db);
    let steps = vec![step(ActionKind::Deactivate, "1")];
    let r1 = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let first = s
        .hold_plan(FLOW, r1, &steps, "digest-1", "too many")
        .unwrap();
    let r2 = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let id = s
        .hold_plan(FLOW, r2, &steps, "digest-2", "too many")
        .unwrap();
    assert_eq!(
        s.held_plan_by_id(FLOW, first).unwrap().unwrap().state(),
        HeldState::Superseded
    );
    let pending = s.held_plan_by_id(FLOW, id).unwrap().unwrap();
    assert_eq!(pending.state(), HeldState::Pending);
    assert_eq!((pending.steps, pending.run), (steps.clone(), r2));
    // Only the pending plan can be rejected, once.
    assert!(matches!(
        s.reject_held(FLOW, first, "hr-alice").unwrap_err(),
        StoreError::NoHeldPlan(_)
    ));
    let rejected = s.reject_held(FLOW, id, "hr-alice").unwrap();
    assert_eq!(rejected.state(), HeldState::Rejected);
    assert_eq!(rejected.rejected_by.as_deref(), Some("hr-alice"));
    assert!(rejected.superseded_at.is_some());
    assert_eq!(rejected.run, r2);
    assert_eq!(s.held_plan(FLOW).unwrap(), None);
    let mut other = db.open().unwrap();
    assert!(matches!(
        other.reject_held(FLOW, id, "it-bob").unwrap_err(),
        StoreError::NoHeldPlan(_)
    ));
    assert!(matches!(
        other.approve_held(FLOW, "it-bob").unwrap_err(),
        StoreError::NoHeldPlan(_)
    ));
    let audit = other.audit_log(FLOW, 10).unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].what, "reject_held");
    assert_eq!(audit[0].run, Some(r2));
    assert_eq!(audit[0].after.as_ref().unwrap()["rejected_by"], "hr-alice");
    // An id the flow never held is no plan.
    assert_eq!(
        other.held_plan_by_id(FLOW, HeldPlanId(id.0 + 100)).unwrap(),
        None
    );
    // An approved plan reads back as approved.
    let r3 = other.begin_run(FLOW, Trigger::Schedule).unwrap();
    let third = other
        .hold_plan(FLOW, r3, &steps, "digest-3", "again")
        .unwrap();
    other.approve_held(FLOW, "ops").unwrap();
    assert_eq!(
        other.held_plan_by_id(FLOW, third).unwrap().unwrap().state(),
        HeldState::Approved
    );
}
