//! What only the SQLite backend has, against real SQLite files in
//! temporary directories: file modes, WAL, corruption, a hand-written
//! version-1 file, a writer killed with SIGKILL, two processes' locks. The
//! store's contract itself runs on both backends in `store_suite.rs`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use muster::store::{
    AuditEntry, JournalState, LinkKind, RunCounts, RunStatus, SCHEMA_VERSION, Side, Store,
    StoreError, Trigger,
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
    assert_eq!(s.sqlite().unwrap().journal_mode().unwrap(), "wal");
    drop(s);
    // WAL mode is persistent: a plain connection sees it too.
    let raw = rusqlite::Connection::open(dir.path().join("muster.db")).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
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

/// Not in the file nor its WAL, whatever page they would have landed on.
#[test]
fn audit_secrets_never_reach_the_file() {
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
    // (What the API returns is checked on both backends in store_suite.rs.)
    drop(s);
    let bytes = std::fs::read(dir.path().join("muster.db")).unwrap();
    let wal = std::fs::read(dir.path().join("muster.db-wal")).unwrap_or_default();
    for secret in ["hunter2", "k-123", "t-456"] {
        let hit = |b: &[u8]| b.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!hit(&bytes) && !hit(&wal), "{secret} reached the file");
    }
}
