//! The state store against real SQLite files in temporary directories.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use muster::store::{
    AuditEntry, Completion, Heartbeat, HeldPlanId, HeldState, JournalState, LinkKind, Outcome,
    Resolution, RunCounts, RunProblem, RunStatus, SCHEMA_VERSION, Side, Store, StoreError, Trigger,
};
use muster_core::{ActionKind, Link, Step};

const FLOW: &str = "lucca-to-leapsome";

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

fn new_store(dir: &Path) -> Store {
    let mut s = Store::open(dir.join("muster.db")).unwrap();
    s.ensure_flow(FLOW, "lucca", "leapsome").unwrap();
    s
}

#[test]
fn open_create_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = new_store(dir.path());
        s.add_link(FLOW, LinkKind::Person, "101", "a-1").unwrap();
        s.add_link(FLOW, LinkKind::Group, "d-1", "g-1").unwrap();
        s.set_watermark(FLOW, Side::Source, "modifiedAt", "2026-11-01T00:00:00Z")
            .unwrap();
    }
    let mut s = Store::open(dir.path().join("muster.db")).unwrap();
    // Re-recording the same flow is a no-op.
    s.ensure_flow(FLOW, "lucca", "leapsome").unwrap();
    assert_eq!(s.links(FLOW).unwrap(), vec![Link::new("101", "a-1")]);
    assert_eq!(s.group_links(FLOW).unwrap(), vec![Link::new("d-1", "g-1")]);
    assert_eq!(
        s.watermark(FLOW, Side::Source, "modifiedAt")
            .unwrap()
            .as_deref(),
        Some("2026-11-01T00:00:00Z")
    );
    assert_eq!(s.watermark(FLOW, Side::Target, "modifiedAt").unwrap(), None);
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
}

/// The state holds personal data (links, journal, held plans): a new database
/// and its WAL files are readable by their owner only, whatever the umask.
#[test]
fn a_new_database_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
    s.add_link(FLOW, LinkKind::Person, "101", "a-1").unwrap();
    for name in ["muster.db", "muster.db-wal", "muster.db-shm"] {
        let path = dir.path().join(name);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}: {mode:o}");
    }
}

#[test]
fn wal_and_pragmas_are_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = new_store(dir.path());
    assert_eq!(s.journal_mode().unwrap(), "wal");
    drop(s);
    // WAL mode is persistent: a plain connection sees it too.
    let raw = rusqlite::Connection::open(dir.path().join("muster.db")).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn unknown_flow_and_changed_flow_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
    let err = s.links("nope").unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownFlow(ref f) if f == "nope"),
        "{err}"
    );
    let err = s.ensure_flow(FLOW, "lucca", "cards").unwrap_err();
    assert!(matches!(err, StoreError::FlowChanged { .. }), "{err}");
    assert!(err.to_string().contains("leapsome") && err.to_string().contains("cards"));
}

/// Version 1 of the schema, written by hand as an old muster would have.
const V1_BY_HAND: &str = r#"
CREATE TABLE flows (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    source_connection TEXT NOT NULL, target_connection TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE links (id INTEGER PRIMARY KEY, flow_id INTEGER NOT NULL REFERENCES flows(id),
    kind TEXT NOT NULL CHECK (kind IN ('person', 'group')), source_id TEXT NOT NULL,
    target_id TEXT NOT NULL, created_at TEXT NOT NULL,
    UNIQUE (flow_id, kind, source_id), UNIQUE (flow_id, kind, target_id));
CREATE TABLE runs (id INTEGER PRIMARY KEY, flow_id INTEGER NOT NULL REFERENCES flows(id),
    started_at TEXT NOT NULL, finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'held', 'aborted')),
    "trigger" TEXT NOT NULL CHECK ("trigger" IN ('schedule', 'manual', 'webhook', 'single')),
    counts TEXT, error TEXT);
CREATE INDEX runs_by_flow ON runs (flow_id, id);
CREATE TABLE journal (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL, kind TEXT NOT NULL, source_id TEXT, target_id TEXT, step TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('intent', 'done', 'failed', 'unknown')),
    error TEXT, produced_target_id TEXT, created_at TEXT NOT NULL, resolved_at TEXT,
    UNIQUE (run_id, seq));
CREATE INDEX journal_pending ON journal (state) WHERE state = 'intent';
INSERT INTO flows VALUES (1, 'lucca-to-leapsome', 'lucca', 'leapsome', '2026-01-01T00:00:00.000Z');
INSERT INTO links VALUES (1, 1, 'person', '101', 'a-1', '2026-01-01T00:00:00.000Z');
INSERT INTO runs VALUES (1, 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:01:00.000Z',
    'done', 'schedule', '{"create":1}', NULL);
INSERT INTO journal VALUES (1, 1, 0, 'create', '101', NULL,
    '{"kind":"create","source_id":"101","label":"Ana","reason":"new_person","explanation":"new"}',
    'done', NULL, 'a-1', '2026-01-01T00:00:10.000Z', '2026-01-01T00:00:11.000Z');
PRAGMA user_version = 1;
"#;

#[test]
fn older_schema_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(V1_BY_HAND).unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    const { assert!(SCHEMA_VERSION > 1) };
    assert_eq!(s.links(FLOW).unwrap(), vec![Link::new("101", "a-1")]);
    let history = s.history(FLOW, 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, RunStatus::Done);
    assert_eq!(history[0].counts.get("create"), Some(&1));
    assert_eq!(
        history[0].journal[0].produced_target_id.as_deref(),
        Some("a-1")
    );
    assert_eq!(history[0].journal[0].step.label, "Ana");
    // The tables of later versions work.
    s.set_watermark(FLOW, Side::Source, "k", "v").unwrap();
    drop(s);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    drop(new_store(dir.path()));
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::TooNew {
            found, supported, ..
        } => {
            assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected TooNew, got {other}"),
    }
    assert!(err.to_string().contains("newer muster"), "{err}");
    // Untouched: still the newer version.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[test]
fn corrupt_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, garbage).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("corrupt") && msg.contains("muster.db"),
        "{msg}"
    );
}

#[test]
fn link_uniqueness_names_both_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
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
    drop(s);
    let raw = rusqlite::Connection::open(dir.path().join("muster.db")).unwrap();
    let e = raw
        .execute(
            "INSERT INTO links (flow_id, kind, source_id, target_id, created_at)
             VALUES (1, 'person', '101', 'a-9', 'now')",
            [],
        )
        .unwrap_err();
    assert!(e.to_string().contains("UNIQUE"), "{e}");

    let mut s = Store::open(dir.path().join("muster.db")).unwrap();
    s.remove_link(FLOW, LinkKind::Person, "101", "a-1").unwrap();
    assert!(s.links(FLOW).unwrap().is_empty());
    let err = s
        .remove_link(FLOW, LinkKind::Person, "101", "a-1")
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSuchLink { .. }), "{err}");
}

const CRASH_ENV: &str = "MUSTER_STORE_CRASH_DB";

/// Not a test on its own: the child half of
/// `journal_intent_survives_sigkill`. Without the variable it does nothing.
#[test]
fn crash_child() {
    let Ok(db) = std::env::var(CRASH_ENV) else {
        return;
    };
    let mut s = Store::open(&db).unwrap();
    s.ensure_flow(FLOW, "lucca", "leapsome").unwrap();
    let run = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let done = s
        .journal_intent(run, 0, &step(ActionKind::Create, "100"))
        .unwrap();
    s.record_link_and_done(done, LinkKind::Person, "100", "a-100")
        .unwrap();
    s.journal_intent(run, 1, &step(ActionKind::Create, "101"))
        .unwrap();
    // "Calling the target" now: tell the parent, then wait to be killed.
    std::fs::write(format!("{db}.ready"), b"1").unwrap();
    std::thread::sleep(Duration::from_secs(120));
    panic!("the parent should have killed this process");
}

#[test]
fn journal_intent_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("muster.db");
    let ready = dir.path().join("muster.db.ready");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CRASH_ENV, &db)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "child never got ready");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint
    child.wait().unwrap();

    let mut s = Store::open(&db).unwrap();
    let pending = s.unresolved_journal(FLOW).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let e = &pending[0];
    assert_eq!(
        (e.seq, e.kind, e.state),
        (1, ActionKind::Create, JournalState::Intent)
    );
    assert_eq!(e.source_id.as_deref(), Some("101"));
    assert_eq!(e.step, step(ActionKind::Create, "101"));
    // The completed create kept its link.
    assert_eq!(s.links(FLOW).unwrap(), vec![Link::new("100", "a-100")]);
    let runs = s.unfinished_runs(FLOW).unwrap();
    assert_eq!(runs, vec![e.run]);

    // Recovery: the account was found by its email; record the link.
    s.record_link_and_done(e.id, LinkKind::Person, "101", "a-101")
        .unwrap();
    s.finish_run(
        e.run,
        RunStatus::Aborted,
        &RunCounts::new(),
        Some("process died"),
    )
    .unwrap();
    assert!(s.unresolved_journal(FLOW).unwrap().is_empty());
    assert!(s.unfinished_runs(FLOW).unwrap().is_empty());
    assert_eq!(s.links(FLOW).unwrap().len(), 2);
}

#[test]
fn record_link_and_done_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
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

#[test]
fn journal_outcomes_and_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
    let run = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let a = s
        .journal_intent(run, 0, &step(ActionKind::Update, "1"))
        .unwrap();
    let b = s
        .journal_intent(run, 1, &step(ActionKind::Update, "2"))
        .unwrap();
    let c = s
        .journal_intent(run, 2, &step(ActionKind::Deactivate, "3"))
        .unwrap();
    let d = s
        .journal_intent(run, 3, &step(ActionKind::Create, "4"))
        .unwrap();
    // seq is unique within a run.
    assert!(
        s.journal_intent(run, 3, &step(ActionKind::Create, "4"))
            .is_err()
    );
    s.journal_done(a, Some("a-1")).unwrap();
    s.journal_failed(b, "400 invalid email").unwrap();
    assert_eq!(s.unresolved_journal(FLOW).unwrap().len(), 2);
    s.resolve_journal(
        c,
        &Resolution::Unknown {
            note: "target unreachable".into(),
        },
    )
    .unwrap();
    s.resolve_journal(
        d,
        &Resolution::Failed {
            error: "not found in target".into(),
        },
    )
    .unwrap();
    assert!(s.unresolved_journal(FLOW).unwrap().is_empty());
    assert!(matches!(
        s.journal_done(a, None).unwrap_err(),
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
            (JournalState::Unknown, Some("target unreachable".into())),
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
}

#[test]
fn a_runs_problems_are_kept_in_order_for_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
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
    // A finished run takes no more problems.
    assert!(matches!(
        s.add_run_problems(run, &first).unwrap_err(),
        StoreError::RunFinished { .. }
    ));
}

#[test]
fn held_plan_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
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

    let mut s = Store::open(dir.path().join("muster.db")).unwrap();
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
}

#[test]
fn a_rejected_held_plan_is_retired_audited_and_kept_for_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
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
    assert_eq!(
        s.held_plan_by_id(FLOW, id).unwrap().unwrap().state(),
        HeldState::Pending
    );
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
    assert!(matches!(
        s.reject_held(FLOW, id, "it-bob").unwrap_err(),
        StoreError::NoHeldPlan(_)
    ));
    assert!(matches!(
        s.approve_held(FLOW, "it-bob").unwrap_err(),
        StoreError::NoHeldPlan(_)
    ));
    let audit = s.audit_log(FLOW, 10).unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].what, "reject_held");
    assert_eq!(audit[0].run, Some(r2));
    assert_eq!(audit[0].after.as_ref().unwrap()["rejected_by"], "hr-alice");
    // An id the flow never held is no plan.
    assert_eq!(
        s.held_plan_by_id(FLOW, HeldPlanId(id.0 + 100)).unwrap(),
        None
    );
}

#[test]
fn history_is_newest_first_with_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
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
    let h = s.history(FLOW, 2).unwrap();
    assert_eq!(
        h.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![runs[2], runs[1]]
    );
    assert_eq!(h[0].trigger, Trigger::Webhook);
    assert_eq!(h[0].counts["update"], 3);
    assert!(h[0].finished_at.as_deref().unwrap() >= h[0].started_at.as_str());
    assert!(h[0].started_at.ends_with('Z') && h[0].started_at.contains('T'));
    let seqs: Vec<_> = h[0].journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2]);
    assert_eq!(s.history(FLOW, 10).unwrap().len(), 3);
}

#[test]
fn concurrent_writers_wait_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    drop(new_store(dir.path()));

    // Another process holds the write lock for a while.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        blocker.execute_batch("COMMIT").unwrap();
    });
    // Opening takes the write lock to check migrations, so it waits too.
    let t0 = Instant::now();
    let mut s = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
    s.add_link(FLOW, LinkKind::Person, "1", "a-1").unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    release.join().unwrap();

    // Two stores writing at once: every write lands, nothing is corrupted.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut s = Store::open(&path).unwrap();
                for i in 0..200 {
                    s.add_link(
                        FLOW,
                        LinkKind::Person,
                        &format!("{w}-{i}"),
                        &format!("t{w}-{i}"),
                    )
                    .unwrap();
                    let run = s.begin_run(FLOW, Trigger::Manual).unwrap();
                    let j = s
                        .journal_intent(run, 0, &step(ActionKind::Create, "x"))
                        .unwrap();
                    s.journal_done(j, None).unwrap();
                    s.finish_run(run, RunStatus::Done, &RunCounts::new(), None)
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    drop(s);
    let s = Store::open(&path).unwrap(); // quick_check passes
    assert_eq!(s.links(FLOW).unwrap().len(), 401);
    assert_eq!(s.history(FLOW, 1000).unwrap().len(), 400);
}

#[test]
fn schema_has_no_column_for_secrets() {
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let raw = rusqlite::Connection::open(dir.path().join("muster.db")).unwrap();
    let mut tables = raw
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap();
    let tables: Vec<String> = tables
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 8, "{tables:?}");
    for t in &tables {
        let mut cols = raw
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap();
        let cols: Vec<String> = cols
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for c in cols {
            assert!(
                !muster::store::state::is_secret_key(&c),
                "{t}.{c} looks like a column for a secret"
            );
        }
    }
}

#[test]
fn audit_strips_secret_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
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
    drop(s);
    let bytes = std::fs::read(dir.path().join("muster.db")).unwrap();
    let wal = std::fs::read(dir.path().join("muster.db-wal")).unwrap_or_default();
    for secret in ["hunter2", "k-123", "t-456"] {
        let hit = |b: &[u8]| b.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!hit(&bytes) && !hit(&wal), "{secret} reached the file");
    }
}

const TTL: Duration = Duration::from_secs(60);

#[test]
fn a_flow_lease_is_held_across_connections_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = new_store(dir.path());
    let mut b = Store::open(dir.path().join("muster.db")).unwrap();
    let lease = a.acquire_lease(FLOW, "host:1:aa", TTL).unwrap();
    assert_eq!(lease.token, 1);
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
    a.release_lease(&lease).unwrap();
    assert_eq!(b.lease_holder(FLOW).unwrap(), None);
    let next = b.acquire_lease(FLOW, "host:2:bb", TTL).unwrap();
    assert_eq!(next.token, 2, "every acquisition gets a new fencing token");
    assert_eq!(next.took_over, None, "a released lease is not taken over");
}

#[test]
fn a_run_that_lost_its_lease_can_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = new_store(dir.path());
    // A lease that expires at once: still `a`'s until someone takes it.
    let _lease = a.acquire_lease(FLOW, "host:1:aa", Duration::ZERO).unwrap();
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

    let mut b = Store::open(dir.path().join("muster.db")).unwrap();
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
    // Nothing of it reached the file: the new holder settles the dead run.
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
    let raw = rusqlite::Connection::open(dir.path().join("muster.db")).unwrap();
    let fence: Option<i64> = raw
        .query_row("SELECT lease_fence FROM runs WHERE id = ?1", [run.0], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        fence,
        Some(1),
        "the run records the fence it was made under"
    );
}

#[test]
fn the_heartbeat_keeps_a_lease_alive_and_it_lapses_once_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = new_store(dir.path());
    let ttl = Duration::from_millis(1500);
    let lease = a.acquire_lease(FLOW, "host:1:aa", ttl).unwrap();
    let heartbeat = Heartbeat::start(&a, &lease, ttl).unwrap();
    let mut b = Store::open(dir.path().join("muster.db")).unwrap();
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

/// A run's notes (the records it skipped or left out, and why) come back
/// with its history; a run without notes has none.
#[test]
fn run_notes_come_back_with_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
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

#[test]
fn an_undo_run_names_the_run_it_undoes_and_reads_back_as_undo() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(dir.path());
    let first = s.begin_run(FLOW, Trigger::Schedule).unwrap();
    let id = s
        .journal_intent(first, 1, &step(ActionKind::Deactivate, "101"))
        .unwrap();
    s.journal_done(id, Some("a-1")).unwrap();
    s.finish_run(first, RunStatus::Done, &RunCounts::new(), None)
        .unwrap();
    let undo = s.begin_undo_run(FLOW, first).unwrap();

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
    // An undo of a run that does not exist is refused by the database too.
    assert!(s.begin_undo_run(FLOW, muster::store::RunId(999)).is_err());
    assert!(matches!(
        s.run_record(muster::store::RunId(999)),
        Err(StoreError::UnknownRun(_))
    ));
}
