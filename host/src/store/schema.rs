//! The schema, as an ordered list of migrations keyed by `PRAGMA user_version`.
//!
//! Migration *n* (1-based) takes a database from `user_version = n - 1` to
//! `n`. Each one runs in its own `BEGIN IMMEDIATE` transaction together with
//! the `user_version` bump, so a crash mid-migration leaves the database at
//! the previous version, never half-migrated. Migrations are append-only:
//! once released, a migration's SQL never changes — a fix is a new migration.
//!
//! A database whose `user_version` is *higher* than [`SCHEMA_VERSION`] was
//! written by a newer muster; it is refused rather than downgraded, because
//! this code cannot know what the newer columns mean.
//!
//! Invariants the schema enforces (so a bug in the engine cannot break them):
//! - a source record is linked to at most one target record per flow and kind,
//!   and a target record to at most one source record
//!   (`UNIQUE(flow_id, kind, source_id)`, `UNIQUE(flow_id, kind, target_id)`);
//! - a journal entry's `seq` is unique within its run;
//! - enumerations (`status`, `trigger`, `state`, `kind`, `side`) are checked;
//! - at most one held plan per flow awaits approval (partial unique index);
//! - at most one lease row per flow, with a positive fencing token (`fence`);
//! - rows point at existing flows and runs (`foreign_keys = ON`).
//!
//! No column is meant for a secret: credentials live in the environment or a
//! file named by the config, never here (a test checks the column names).

/// One schema step.
pub(crate) struct Migration {
    /// Short name, for error messages.
    pub name: &'static str,
    pub sql: &'static str,
}

/// The schema version this build writes. Databases at a lower version are
/// upgraded in place on open; higher ones are refused.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Every migration, oldest first. Index `i` produces version `i + 1`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "flows, links, runs, journal",
        sql: V1,
    },
    Migration {
        name: "watermarks, held plans, audit, webhook inbox",
        sql: V2,
    },
    Migration {
        name: "webhook inbox: delivery ids, states, attempts",
        sql: V3,
    },
    Migration {
        name: "flow leases and the runs' fencing tokens",
        sql: V4,
    },
    Migration {
        name: "compound-field rows each flow wrote",
        sql: V5,
    },
    Migration {
        name: "the records each run could not take as they were",
        sql: V6,
    },
    Migration {
        name: "runs: notes on the records a run skipped or left out",
        sql: V7,
    },
    Migration {
        name: "the records each run skipped or found in conflict, by id and reason",
        sql: V8,
    },
    Migration {
        name: "alerts serve has sent, so none is sent twice",
        sql: V9,
    },
    Migration {
        name: "runs: the run an undo run reverses",
        sql: V10,
    },
    Migration {
        name: "held plans: who rejected one",
        sql: V11,
    },
    Migration {
        name: "rate-limit budgets shared by every process",
        sql: V12,
    },
];

/// Version 1: what a sync needs to remember what it did.
pub(crate) const V1: &str = r#"
CREATE TABLE flows (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    source_connection TEXT NOT NULL,
    target_connection TEXT NOT NULL,
    created_at        TEXT NOT NULL
);

CREATE TABLE links (
    id         INTEGER PRIMARY KEY,
    flow_id    INTEGER NOT NULL REFERENCES flows(id),
    kind       TEXT NOT NULL CHECK (kind IN ('person', 'group')),
    source_id  TEXT NOT NULL,
    target_id  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (flow_id, kind, source_id),
    UNIQUE (flow_id, kind, target_id)
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    flow_id     INTEGER NOT NULL REFERENCES flows(id),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL
                CHECK (status IN ('running', 'done', 'failed', 'held', 'aborted')),
    "trigger"   TEXT NOT NULL
                CHECK ("trigger" IN ('schedule', 'manual', 'webhook', 'single')),
    counts      TEXT,
    error       TEXT
);
CREATE INDEX runs_by_flow ON runs (flow_id, id);

CREATE TABLE journal (
    id                  INTEGER PRIMARY KEY,
    run_id              INTEGER NOT NULL REFERENCES runs(id),
    seq                 INTEGER NOT NULL,
    kind                TEXT NOT NULL,
    source_id           TEXT,
    target_id           TEXT,
    step                TEXT NOT NULL,
    state               TEXT NOT NULL
                        CHECK (state IN ('intent', 'done', 'failed', 'unknown')),
    error               TEXT,
    produced_target_id  TEXT,
    created_at          TEXT NOT NULL,
    resolved_at         TEXT,
    UNIQUE (run_id, seq)
);
-- Recovery looks for intents only: keep that lookup small.
CREATE INDEX journal_pending ON journal (state) WHERE state = 'intent';
"#;

/// Version 2: incremental reads, the guard's held plans, the audit log and
/// the webhook inbox.
pub(crate) const V2: &str = r#"
CREATE TABLE watermarks (
    flow_id    INTEGER NOT NULL REFERENCES flows(id),
    side       TEXT NOT NULL CHECK (side IN ('source', 'target')),
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (flow_id, side, key)
);

CREATE TABLE held_plans (
    id              INTEGER PRIMARY KEY,
    flow_id         INTEGER NOT NULL REFERENCES flows(id),
    run_id          INTEGER NOT NULL REFERENCES runs(id),
    created_at      TEXT NOT NULL,
    plan            TEXT NOT NULL,
    snapshot_digest TEXT NOT NULL,
    breaches        TEXT NOT NULL,
    approved_at     TEXT,
    approved_by     TEXT,
    superseded_at   TEXT
);
CREATE UNIQUE INDEX held_plans_one_pending ON held_plans (flow_id)
    WHERE approved_at IS NULL AND superseded_at IS NULL;

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    ts      TEXT NOT NULL,
    flow_id INTEGER REFERENCES flows(id),
    run_id  INTEGER REFERENCES runs(id),
    what    TEXT NOT NULL,
    subject TEXT NOT NULL,
    before  TEXT,
    after   TEXT
);
CREATE INDEX audit_by_flow ON audit (flow_id, id);

CREATE TABLE webhook_inbox (
    id           INTEGER PRIMARY KEY,
    flow_id      INTEGER NOT NULL REFERENCES flows(id),
    received_at  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    processed_at TEXT,
    outcome      TEXT
);
CREATE INDEX webhook_inbox_pending ON webhook_inbox (flow_id, id)
    WHERE processed_at IS NULL;
"#;

/// Version 3: what the durable webhook inbox (`store/inbox.rs`) needs beyond
/// V2's columns: the sender's delivery id (a redelivery is not stored twice),
/// the record id extracted from the payload, an explicit state, the number
/// of attempts, the last error and the run that processed the event.
/// States: `pending` until a run succeeds, `done` after, `rejected` when no
/// run can ever succeed (e.g. the payload has no record id) — kept for
/// inspection, not retried. A failed *run* leaves the event `pending`: it is
/// retried, never lost.
pub(crate) const V3: &str = r#"
ALTER TABLE webhook_inbox ADD COLUMN delivery_id TEXT;
ALTER TABLE webhook_inbox ADD COLUMN record_id TEXT;
ALTER TABLE webhook_inbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending'
    CHECK (state IN ('pending', 'done', 'rejected'));
ALTER TABLE webhook_inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_inbox ADD COLUMN error TEXT;
ALTER TABLE webhook_inbox ADD COLUMN run_id INTEGER REFERENCES runs(id);
CREATE UNIQUE INDEX webhook_inbox_delivery ON webhook_inbox (flow_id, delivery_id)
    WHERE delivery_id IS NOT NULL;
"#;

/// Version 4: one lease row per flow (see `store/lease.rs` for the meaning
/// of each column and the rules), and the fencing token each run was made
/// under (`runs.lease_fence`, `NULL` for runs recorded before leases
/// existed). Times are unix milliseconds so that expiry is one integer
/// comparison.
pub(crate) const V4: &str = r#"
CREATE TABLE leases (
    flow_id      INTEGER PRIMARY KEY REFERENCES flows(id),
    fence        INTEGER NOT NULL CHECK (fence > 0),
    owner        TEXT,
    acquired_ms  INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
);
ALTER TABLE runs ADD COLUMN lease_fence INTEGER;
"#;

/// Version 5: the compound-field rows each flow wrote (see
/// `store/written_rows.rs`): per flow, target account and field, the key
/// text of every row whose add or change the target confirmed, so the core
/// changes or removes only those ([`muster_core::rows::WrittenRows`]).
/// Maintained from the journal: when an `update` entry is settled `done`,
/// its step's row changes are applied here in the same transaction.
pub(crate) const V5: &str = r#"
CREATE TABLE written_rows (
    flow_id    INTEGER NOT NULL REFERENCES flows(id),
    target_id  TEXT NOT NULL,
    field      TEXT NOT NULL,
    row_key    TEXT NOT NULL,
    written_at TEXT NOT NULL,
    PRIMARY KEY (flow_id, target_id, field, row_key)
);
"#;

/// Version 6: the per-record problems of a run (a value a plugin handed over
/// that could not be taken, a record that could not be mapped), for
/// `muster history`: side, plugin, record id, field and message, in the
/// order the run reported them.
pub(crate) const V6: &str = r#"
CREATE TABLE run_problems (
    run_id  INTEGER NOT NULL REFERENCES runs(id),
    seq     INTEGER NOT NULL,
    side    TEXT NOT NULL CHECK (side IN ('source', 'target')),
    plugin  TEXT NOT NULL,
    record  TEXT NOT NULL,
    field   TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"#;

/// Version 7: what a run did not do, per record (`runs.notes`, a JSON array
/// of lines: skips and conflicts with their reason; the data problems are in
/// `run_problems`), so `history` and the status page show *which*
/// records were skipped and why, not only how many. `NULL` for older runs.
pub(crate) const V7: &str = r#"
ALTER TABLE runs ADD COLUMN notes TEXT;
"#;

/// Version 8: each record a run skipped or reported a conflict for, one row
/// each (`store/left_out.rs`): the record's source and target ids, its name
/// as the plan called it, the core's reason code and the reason in plain
/// words. The status page's run view and person search read it; `runs.notes`
/// (V7) stays the capped summary `history` prints. Indexed by id, so a search
/// by source or target id does not scan every run.
pub(crate) const V8: &str = r#"
CREATE TABLE run_left_out (
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('skip', 'conflict')),
    source_id   TEXT,
    target_id   TEXT,
    label       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    explanation TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX run_left_out_by_source ON run_left_out (source_id);
CREATE INDEX run_left_out_by_target ON run_left_out (target_id);
"#;

/// Version 9: the alerts `muster serve` has sent (see `store/alerts.rs` and
/// `src/alerts`), one row per flow, kind (`failed`, `held`, `failing`) and
/// key (a run id, a held plan's snapshot digest, a record and the run its
/// failures reached the threshold in). Inserting is the dedupe: a key
/// already present means the alert went out before, even before a restart.
/// Only what happened is stored, never where it was sent (a webhook URL
/// embeds a token).
pub(crate) const V9: &str = r#"
CREATE TABLE alerts_sent (
    flow_id INTEGER NOT NULL REFERENCES flows(id),
    kind    TEXT NOT NULL CHECK (kind IN ('failed', 'held', 'failing')),
    key     TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (flow_id, kind, key)
);
"#;

/// Version 10: undo runs (`muster undo RUN`). `runs.undoes` names the run an
/// undo run reverses. The `trigger` column's `CHECK` (version 1) cannot be
/// widened in place (SQLite rebuilds a table for that, which the runs'
/// foreign keys forbid inside a migration), so an undo run is stored with
/// trigger `manual` and read back as `undo` because `undoes` is set
/// (`Trigger::Undo`). `NULL` for every other run.
pub(crate) const V10: &str = r#"
ALTER TABLE runs ADD COLUMN undoes INTEGER REFERENCES runs(id);
"#;

/// Version 11: who rejected a held plan (`muster serve`'s admin pages). A
/// rejected plan is retired like a superseded one (`superseded_at` is when),
/// so every query for *the pending plan* stays as it was; `rejected_by` tells
/// the two apart.
pub(crate) const V11: &str = r#"
ALTER TABLE held_plans ADD COLUMN rejected_by TEXT;
"#;

/// Version 12: nothing on SQLite. PostgreSQL's twin creates the rate-limit
/// budgets several processes share (`postgres/budget.rs`); a SQLite file
/// has one process, whose own limiter (`muster-outbound`) is the whole
/// budget. The version still moves, so both backends count the same
/// migrations.
pub(crate) const V12: &str = "-- nothing on SQLite: one process per file, one limiter\n";
