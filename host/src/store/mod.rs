//! # The state store: muster's memory, in one database
//!
//! Everything muster must remember between runs lives here: which source
//! record is linked to which target record (`links.rs`), what each run did
//! (`runs.rs`) and, action by action, what it *intended* and what came of it
//! (`journal.rs`); read watermarks, plans held by the guard and the audit log
//! ([`state`]), the compound-field rows each flow wrote
//! (`written_rows.rs`), the records each run left out (`left_out.rs`), and
//! the alerts `muster serve` has sent (`alerts.rs`); `search.rs` and
//! `metrics.rs` read across them. The engine is the only writer (and
//! `serve`, of its inbox and alerts).
//!
//! ## Two backends, one contract
//!
//! [`Store`] is what the engine uses; it runs on a [`SqliteStore`] (one
//! file, the embedded default: `sqlite/`) or a [`PostgresStore`] (one
//! database shared by several workers: `postgres/`), chosen by
//! [`Location`] (`tenant.state` is a path or a `postgres://` URL). `api.rs`
//! explains the shape of the interface; each backend's module doc explains
//! its connection settings and transactions. The types that cross the
//! interface (`RunId`, `JournalEntry`, `Lease`, …) live in this module's
//! topic files (`links.rs`, `runs.rs`, `journal.rs`, `lease.rs`,
//! `state.rs`, `inbox.rs`), shared by both. `host/tests/store_suite.rs`
//! runs the same tests on both.
//!
//! ## Schema and migrations
//!
//! See [`schema`]: an ordered list of migrations (SQLite keys them by
//! `PRAGMA user_version`; PostgreSQL has the same list in
//! `postgres/schema.rs`, keyed by a `schema_version` row). Opening applies
//! the missing ones, each in its own transaction; a database from a newer
//! muster is refused ([`StoreError::TooNew`]), never downgraded.
//!
//! ## One run per flow: leases
//!
//! The file lock serialises *transactions*, not runs. Runs of one flow are
//! kept apart by the flow's lease ([`lease`]): a holder name, a heartbeat,
//! an expiry and a fencing token that every write of the run checks. A
//! second run of a flow whose lease is live is refused
//! ([`StoreError::LeaseHeld`]); a lease whose holder died expires and is
//! taken over, and only then are the dead run and its journal settled.
//!
//! ## Crash semantics
//!
//! Every write method commits before it returns. The engine's protocol for a
//! call that changes the target is:
//!
//! 1. [`Store::journal_intent`] — committed *before* the call;
//! 2. the call to the target plugin;
//! 3. [`Store::journal_done`] / [`Store::journal_failed`], or for a create
//!    [`Store::record_link_and_done`], which stores the new link and the
//!    outcome in **one** transaction: a create's outcome and its link are
//!    never separated.
//!
//! If the process is killed between 1 and 3, the entry stays `intent`: the
//! call may or may not have reached the target. The next run calls
//! [`Store::unresolved_journal`] before planning, finds out (e.g. looks the
//! account up by its correlation key) and records the answer with
//! [`Store::resolve_journal`] or [`Store::record_link_and_done`], so nothing
//! is created twice. If killed during 3, the transaction either committed
//! (link and outcome both present) or not (entry still `intent`, no link).
//! The run itself stays `running`; [`Store::unfinished_runs`] lets the engine
//! mark it `aborted` — once it holds the flow's lease, so the run it aborts
//! cannot belong to a live owner.
//!
//! ## Secrets
//!
//! The store never holds a secret: no column is meant for one, and
//! [`Store::audit`] replaces the value of any JSON key that names a secret
//! (`secret`, `token`, `password`, `api_key`, …, see [`state::is_secret_key`])
//! with `"[redacted]"` before writing.

mod alerts;
mod api;
pub mod inbox;
mod journal;
pub mod lease;
mod left_out;
pub mod links;
mod location;
mod metrics;
pub mod postgres;
mod runs;
pub mod schema;
mod search;
pub mod sqlite;
pub mod state;
pub(crate) mod time;

use std::path::PathBuf;

pub use alerts::{AlertKind, RecordFailure, RunFailures};
pub use api::Store;
pub use inbox::{InboxEvent, InboxId, InboxState, Pushed};
pub use journal::{Completion, JournalEntry, JournalId, JournalState, Outcome, Resolution};
pub use lease::{Heartbeat, Lease, LeaseHolder, LeaseWatch};
pub use left_out::{LeftOut, LeftOutKind};
pub use links::LinkKind;
pub use location::{Location, PostgresLocation};
pub use metrics::{LastRun, StoreMetrics, Tally};
pub use postgres::{PostgresBudget, PostgresStore};
pub use runs::{RunCounts, RunId, RunProblem, RunRecord, RunStatus, RunSummary, Trigger};
pub use schema::SCHEMA_VERSION;
pub use search::{MAX_PEOPLE, PersonEvent, PersonEventKind, PersonHistory};
pub use sqlite::{BUSY_TIMEOUT, SqliteStore};
pub use state::{AuditEntry, AuditRecord, HeldPlan, HeldPlanId, HeldState, Side};

/// How hard each SQLite commit is pushed to disk. See [`sqlite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = NORMAL`: survives process crashes; a power loss may
    /// roll back the last commits (never corrupts).
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is fsynced.
    Full,
}

/// Everything that can go wrong in the store, with the context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state database {} (owner-only, mode 600): {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the state database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the state database {} is corrupt ({detail}); restore it from a backup or move it aside to start afresh",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "the state database {database} has schema version {found}, but this muster only knows versions up to {supported}: it was written by a newer muster; upgrade muster (a database is never downgraded)"
    )]
    TooNew {
        /// The file, or the PostgreSQL database as `user@host:port/name`
        /// (never its password).
        database: String,
        found: u32,
        supported: u32,
    },
    #[error("migrating the state database {} to version {version} ({name}) failed: {source}", path.display())]
    Migration {
        path: PathBuf,
        version: u32,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("unknown flow `{0}`: it was never recorded in the state database")]
    UnknownFlow(String),
    #[error(
        "flow `{flow}` is recorded with source `{recorded_source}` and target `{recorded_target}`, not `{source_connection}` and `{target_connection}`; its links would be meaningless for other connections: use a new flow name"
    )]
    FlowChanged {
        flow: String,
        recorded_source: String,
        recorded_target: String,
        source_connection: String,
        target_connection: String,
    },
    #[error(
        "flow `{flow}`: cannot link {kind} source {source_id} to target {target_id}: source {source_id} is already linked to target {existing_target}"
    )]
    SourceAlreadyLinked {
        flow: String,
        kind: LinkKind,
        source_id: String,
        target_id: String,
        existing_target: String,
    },
    #[error(
        "flow `{flow}`: cannot link {kind} source {source_id} to target {target_id}: target {target_id} is already linked to source {existing_source}"
    )]
    TargetAlreadyLinked {
        flow: String,
        kind: LinkKind,
        source_id: String,
        target_id: String,
        existing_source: String,
    },
    #[error("flow `{flow}`: there is no {kind} link from source {source_id} to target {target_id}")]
    NoSuchLink {
        flow: String,
        kind: LinkKind,
        source_id: String,
        target_id: String,
    },
    #[error("run {0} does not exist")]
    UnknownRun(RunId),
    #[error("run {run} of flow `{flow}` is already finished ({status})")]
    RunFinished {
        run: RunId,
        flow: String,
        status: RunStatus,
    },
    #[error("journal entry {0} does not exist")]
    UnknownJournal(JournalId),
    #[error(
        "journal entry {id} (run {run}, step {seq}) is already `{state}`: only an intent can be resolved"
    )]
    JournalResolved {
        id: JournalId,
        run: RunId,
        seq: u32,
        state: JournalState,
    },
    /// Another owner holds the flow's lease and it has not expired.
    #[error(
        "flow `{}` is busy: {} has been running it since {} (lease fence {}, expires {} unless renewed)",
        .0.flow, .0.owner, .0.since, .0.token, .0.expires
    )]
    LeaseHeld(Box<LeaseHolder>),
    /// This store's lease was taken over: the run must stop writing.
    #[error(
        "flow `{flow}`: this run lost its lease (fence {token}) to {now_held_by}; it writes nothing more"
    )]
    LeaseLost {
        flow: String,
        token: i64,
        now_held_by: String,
    },
    #[error("flow `{flow}`: cannot start the lease heartbeat thread: {source}")]
    Heartbeat {
        flow: String,
        source: std::io::Error,
    },
    #[error("flow `{0}` has no held plan awaiting approval")]
    NoHeldPlan(String),
    #[error("{context}: {source}")]
    Json {
        context: String,
        source: serde_json::Error,
    },
    #[error("the state database holds an unexpected value in {column}: `{value}`")]
    Invalid { column: &'static str, value: String },
    #[error("{context}: {source}")]
    Sqlite {
        context: String,
        source: rusqlite::Error,
    },
    /// `state = "postgres://…"` is not a URL the client understands.
    #[error("the state database URL `{url}` is not a valid PostgreSQL URL: {source}")]
    PostgresUrl {
        /// The URL as configured, password removed.
        url: String,
        source: ::postgres::Error,
    },
    #[error(
        "the state database URL `{url}` holds a password: put it in a secret (`state_password = {{ env = \"…\" }}` or `{{ file = \"…\" }}`) instead"
    )]
    PasswordInUrl { url: String },
    #[error("cannot connect to the state database {database}: {source}")]
    PostgresConnect {
        /// `user@host:port/name`, never the password.
        database: String,
        source: ::postgres::Error,
    },
    #[error(
        "migrating the state database {database} to version {version} ({name}) failed: {source}"
    )]
    PostgresMigration {
        database: String,
        version: u32,
        name: &'static str,
        source: ::postgres::Error,
    },
    #[error("{context}: {source}")]
    Postgres {
        context: String,
        source: ::postgres::Error,
    },
}

/// Attaches a human context to database and JSON errors.
pub(crate) trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for Result<T, ::postgres::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Postgres {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for Result<T, serde_json::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Json {
            context: context(),
            source,
        })
    }
}

/// Parses a text enumeration read back from the database.
pub(crate) fn parse_enum<T>(
    column: &'static str,
    value: String,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(&value).ok_or(StoreError::Invalid { column, value })
}
