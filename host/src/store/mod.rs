//! # The state store: muster's memory, in one SQLite file
//!
//! Everything muster must remember between runs lives here: which source
//! record is linked to which target record (`links.rs`), what each run did
//! (`runs.rs`) and, action by action, what it *intended* and what came of it
//! (`journal.rs`); read watermarks, plans held by the guard and the audit log
//! ([`state`]), the compound-field rows each flow wrote
//! (`written_rows.rs`), and the alerts `muster serve` has sent
//! (`alerts.rs`). The engine is the only writer (and `serve`, of its
//! inbox and alerts).
//!
//! ## Schema and migrations
//!
//! See [`schema`]: an ordered list of SQL migrations keyed by
//! `PRAGMA user_version`. [`Store::open`] applies the missing ones, each in
//! its own transaction; a database from a newer muster is refused
//! ([`StoreError::TooNew`]), never downgraded.
//!
//! ## Connection settings, and why
//!
//! - `journal_mode = WAL`: readers (`muster history`, a status page) never
//!   block the writer and vice versa, and a commit is one append to the WAL.
//! - `synchronous = NORMAL` by default ([`Durability::Normal`]): in WAL mode
//!   this is durable against a *process* crash (kill -9, OOM, panic) — a
//!   committed transaction is in the WAL file even if muster dies a
//!   microsecond later — and never corrupts the database. Only a power loss or
//!   kernel crash can roll back the last few commits. Losing a journal intent
//!   that way is survivable: the next plan reads the target and the core
//!   correlates an account that was created after all (it becomes a `Link`,
//!   not a second `Create`). [`Durability::Full`] fsyncs every commit for
//!   operators who want the journal to survive power loss too, at the cost of
//!   one fsync per action.
//! - `foreign_keys = ON`: links, runs and journal entries always point at
//!   their flow and run.
//! - `busy_timeout` ([`BUSY_TIMEOUT`]): a second process (say a manual `sync`
//!   while `serve` runs a scheduled one) waits for the lock instead of failing.
//!   Every multi-statement write uses `BEGIN IMMEDIATE`, so it takes the write
//!   lock up front and the busy handler applies (a deferred transaction that
//!   upgrades from read to write could fail with `SQLITE_BUSY` at once).
//! - `PRAGMA quick_check` on open: a damaged file is refused with
//!   [`StoreError::Corrupt`] before anything is planned from it.
//!
//! One [`Store`] owns one [`rusqlite::Connection`]; writes take `&mut self`.
//! Concurrent processes are serialised by SQLite's file lock plus the busy
//! timeout; within a process, the engine owns the store.
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
mod inbox;
mod journal;
pub mod lease;
mod left_out;
mod links;
mod metrics;
mod runs;
pub mod schema;
mod search;
pub mod state;
mod time;
mod written_rows;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

pub use alerts::{AlertKind, RecordFailure, RunFailures};
pub use inbox::{InboxEvent, InboxId, InboxState, Pushed};
pub use journal::{Completion, JournalEntry, JournalId, JournalState, Outcome, Resolution};
pub use lease::{Heartbeat, Lease, LeaseHolder, LeaseWatch};
pub use left_out::{LeftOut, LeftOutKind};
pub use links::LinkKind;
pub use metrics::{LastRun, StoreMetrics, Tally};
pub use runs::{RunCounts, RunId, RunProblem, RunRecord, RunStatus, RunSummary, Trigger};
pub use schema::SCHEMA_VERSION;
pub use search::{MAX_PEOPLE, PersonEvent, PersonEventKind, PersonHistory};
pub use state::{AuditEntry, AuditRecord, HeldPlan, HeldPlanId, HeldState, Side};

/// How long a writer waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How hard each commit is pushed to disk. See the module doc.
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
        "the state database {} has schema version {found}, but this muster only knows versions up to {supported}: it was written by a newer muster; upgrade muster (a database is never downgraded)",
        path.display()
    )]
    TooNew {
        path: PathBuf,
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
}

/// Attaches a human context to SQLite errors.
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

impl<T> Context<T> for Result<T, serde_json::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Json {
            context: context(),
            source,
        })
    }
}

/// Creates the database file `0600` if it does not exist yet, so the links,
/// journal and held plans (personal data) are readable by their owner only.
/// SQLite gives its `-wal` and `-shm` files the database file's mode. An
/// existing file is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// muster's state database. See the module documentation.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Set while this store holds a flow's lease: every write transaction
    /// checks it (see [`lease`]).
    fence: Option<lease::Fence>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` with
    /// [`Durability::Normal`], checks its integrity and migrates it to
    /// [`SCHEMA_VERSION`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with(path, Durability::default())
    }

    /// [`Store::open`] with an explicit durability.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        create_private(&path).map_err(|source| StoreError::Create {
            path: path.clone(),
            source,
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&path, flags).map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        Store::setup(conn, path, durability)
    }

    /// A private in-memory database, for unit tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        Store::setup(conn, path, Durability::default())
    }

    fn setup(conn: Connection, path: PathBuf, durability: Durability) -> Result<Store, StoreError> {
        let open_err = |source: rusqlite::Error| classify(&path, source);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // First touch of the file: garbage bytes fail here with NOTADB.
        check_integrity(&conn, &path)?;
        // `journal_mode` answers with the mode actually in force (an
        // in-memory database stays `memory`).
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if path != Path::new(":memory:") && !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path,
                source: rusqlite::Error::InvalidParameterName(format!(
                    "journal_mode is `{mode}`, WAL could not be enabled"
                )),
            });
        }
        let sync = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let mut store = Store {
            conn,
            path,
            fence: None,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Applies the missing migrations, each in one `BEGIN IMMEDIATE`
    /// transaction with its `user_version` bump.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let supported = SCHEMA_VERSION;
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| classify(&self.path, e))?;
            // Read inside the write transaction: another process may have
            // migrated while we waited for the lock.
            let found: u32 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| classify(&self.path, e))?;
            if found > supported {
                return Err(StoreError::TooNew {
                    path: self.path.clone(),
                    found,
                    supported,
                });
            }
            let Some(m) = schema::MIGRATIONS.get(found as usize) else {
                return Ok(()); // up to date; the empty transaction rolls back
            };
            let version = found + 1;
            let fail = |source| StoreError::Migration {
                path: self.path.clone(),
                version,
                name: m.name,
                source,
            };
            tx.execute_batch(m.sql).map_err(fail)?;
            tx.pragma_update(None, "user_version", version)
                .map_err(fail)?;
            tx.commit().map_err(fail)?;
        }
    }

    /// The file this store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (always [`SCHEMA_VERSION`]
    /// after a successful open).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .context(|| "reading user_version".into())
    }

    /// The journal mode in force (`wal` for a file database).
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .context(|| "reading journal_mode".into())
    }

    /// Starts a write transaction that takes the lock up front (see the
    /// module doc on `BEGIN IMMEDIATE`). While this store holds a lease, the
    /// transaction first checks its fencing token ([`lease`], rule 3).
    pub(crate) fn write_tx(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<rusqlite::Transaction<'_>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context(what)?;
        if let Some(fence) = &self.fence {
            lease::check_fence(&tx, fence)?;
        }
        Ok(tx)
    }

    /// The row id of a recorded flow.
    pub(crate) fn flow_id(conn: &Connection, flow: &str) -> Result<i64, StoreError> {
        use rusqlite::OptionalExtension;
        // Cached: the journal looks the flow up on every write.
        conn.prepare_cached("SELECT id FROM flows WHERE name = ?1")
            .and_then(|mut s| s.query_row([flow], |r| r.get(0)))
            .optional()
            .context(|| format!("flow `{flow}`: looking it up"))?
            .ok_or_else(|| StoreError::UnknownFlow(flow.into()))
    }
}

/// `PRAGMA quick_check`: O(N) scan of every page, cheaper than a full
/// `integrity_check` (it skips index-vs-table cross checks) and enough to
/// refuse a damaged file.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let rows: Result<Vec<String>, _> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
    let rows = rows.map_err(|e| classify(path, e))?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: rows.join("; "),
        })
    }
}

/// Turns "not a database" and "malformed" errors into [`StoreError::Corrupt`].
fn classify(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: source.to_string(),
        },
        _ => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
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
