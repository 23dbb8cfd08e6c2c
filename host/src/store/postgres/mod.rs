//! The PostgreSQL backend: the same store for operators who outgrow one
//! machine (issue 17), where several workers share one database.
//!
//! ## Shape
//!
//! One [`PostgresStore`] owns one [`postgres::Client`] (sfackler's
//! synchronous client) in a [`RefCell`]: the client needs `&mut` even to
//! read, while the store's reads take `&self` like SQLite's. The store is
//! `Send` and not `Sync`, exactly like [`super::SqliteStore`]; the engine
//! owns it. Each file mirrors its SQLite twin (`links.rs`, `runs.rs`,
//! `journal.rs`, …) with the same method names and signatures, so porting
//! a new store method is: copy the SQLite method, `?n` → `$n`,
//! `last_insert_rowid` → `RETURNING id`, and run the shared suite
//! (`host/tests/store_suite.rs`).
//!
//! ## Transactions
//!
//! Every write that is more than one statement runs in one transaction
//! ([`PostgresStore::write`]) at PostgreSQL's default `READ COMMITTED`.
//! While the store holds a flow's lease, the transaction first locks the
//! flow's lease row with `SELECT … FOR UPDATE` and checks the fencing token
//! (rule 3 of [`crate::store::lease`]): an acquisition by another worker
//! updates that row, so it waits for the write to commit, and a write that
//! comes after it sees the new token and fails with
//! [`StoreError::LeaseLost`]. A journal batch, a link with its outcome, an
//! approval with its audit entry are each one transaction, as in SQLite.
//!
//! ## Round trips
//!
//! `query`/`execute` with SQL text prepare the statement first: two round
//! trips to the server per statement. The statements every applied action
//! runs — settling a journal entry (`journal.rs`), its link (`links.rs`),
//! its audit entry (`state.rs`), the flow lookup they share — use
//! `query_typed` instead, which sends parse, bind and execute together with
//! the parameters' types: one round trip. A batch's intents share one
//! statement prepared per transaction. See `benches/RESULTS.md`
//! (journal_overhead) for what that is worth per create.
//!
//! ## Migrations
//!
//! [`schema`] lists the same versions as [`crate::store::schema`]; the
//! version is the one row of `schema_version`. Each migration runs in its
//! own transaction under a transaction-level advisory lock, so two workers
//! starting at once migrate one after the other; a database at a higher
//! version than this build knows is refused ([`StoreError::TooNew`]).
//!
//! ## Shared rate limits
//!
//! [`PostgresBudget`] (`budget.rs`) is not part of the store's interface:
//! it is the vendors' rate-limit budgets every process shares (migration
//! 12), on its own connection, which the host hands to the outbound client
//! when the state is PostgreSQL.
//!
//! ## Secrets
//!
//! The password comes from the config's secret mechanism
//! ([`super::PostgresLocation`]), is handed to the client, and is never
//! part of an error, a log line or the database (errors name the database
//! as `user@host:port/name`).

mod alerts;
pub(crate) mod budget;
mod inbox;
mod journal;
mod lease;
mod left_out;
mod links;
mod metrics;
mod runs;
pub(crate) mod schema;
mod search;
mod state;
mod written_rows;

use std::cell::RefCell;

use postgres::types::Type;
use postgres::{Client, GenericClient, NoTls, Transaction};

pub use budget::PostgresBudget;

use crate::store::lease::Fence;
use crate::store::{Context, PostgresLocation, SCHEMA_VERSION, StoreError};

/// The advisory lock key that serialises migrations ("muster" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d75_7374_6572;

/// muster's state in a PostgreSQL database. See the module documentation.
pub struct PostgresStore {
    conn: RefCell<Client>,
    location: PostgresLocation,
    /// Set while this store holds a flow's lease: every write transaction
    /// checks it (see [`crate::store::lease`]).
    fence: Option<Fence>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.location.describe())
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `location` and migrates it to
    /// [`SCHEMA_VERSION`].
    pub fn open(location: &PostgresLocation) -> Result<PostgresStore, StoreError> {
        let client = location.connect()?;
        let mut store = PostgresStore {
            conn: RefCell::new(client),
            location: location.clone(),
            fence: None,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database, as `user@host:port/name` (no password).
    pub fn database(&self) -> String {
        self.location.describe()
    }

    /// Applies the missing migrations, each in one transaction with its
    /// version bump, under the migration advisory lock.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let database = self.location.describe();
        let supported = SCHEMA_VERSION;
        let c = self.conn.get_mut();
        loop {
            let what = || format!("migrating the state database {database}");
            let mut tx = c.transaction().context(what)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .context(what)?;
            tx.batch_execute(schema::VERSION_TABLE).context(what)?;
            // Read under the lock: another worker may have migrated while
            // we waited for it.
            let found: i32 = tx
                .query_one("SELECT version FROM schema_version", &[])
                .and_then(|r| r.try_get(0))
                .context(what)?;
            let found = u32::try_from(found).map_err(|_| StoreError::Invalid {
                column: "schema_version.version",
                value: found.to_string(),
            })?;
            if found > supported {
                return Err(StoreError::TooNew {
                    database,
                    found,
                    supported,
                });
            }
            let Some(m) = schema::MIGRATIONS.get(found as usize) else {
                return Ok(()); // up to date; the transaction rolls back
            };
            let version = found + 1;
            let fail = |source| StoreError::PostgresMigration {
                database: database.clone(),
                version,
                name: m.name,
                source,
            };
            tx.batch_execute(m.sql).map_err(fail)?;
            tx.execute(
                "UPDATE schema_version SET version = $1",
                &[&i32::try_from(version).unwrap_or(i32::MAX)],
            )
            .map_err(fail)?;
            tx.commit().map_err(fail)?;
        }
    }

    /// The schema version of the open database (always [`SCHEMA_VERSION`]
    /// after a successful open).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let v: i32 = self
            .conn
            .borrow_mut()
            .query_one("SELECT version FROM schema_version", &[])
            .and_then(|r| r.try_get(0))
            .context(|| "reading schema_version".into())?;
        u32::try_from(v).map_err(|_| StoreError::Invalid {
            column: "schema_version.version",
            value: v.to_string(),
        })
    }

    /// Runs `f` in one write transaction and commits it. While this store
    /// holds a lease, the transaction first locks and checks the flow's
    /// lease row (rule 3). An error rolls the whole transaction back.
    pub(crate) fn write<T>(
        &self,
        what: impl Fn() -> String,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = self.conn.borrow_mut();
        let mut tx = c.transaction().context(&what)?;
        if let Some(fence) = &self.fence {
            lease::check_fence(&mut tx, fence)?;
        }
        let out = f(&mut tx)?;
        tx.commit().context(&what)?;
        Ok(out)
    }

    /// Runs `f` on the connection, outside any explicit transaction (one
    /// statement, or reads).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&mut self.conn.borrow_mut())
    }

    /// The fence of the lease this store holds, if any.
    pub(crate) fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
    }

    /// The row id of a recorded flow.
    pub(crate) fn flow_id(c: &mut impl GenericClient, flow: &str) -> Result<i64, StoreError> {
        c.query_typed_opt(
            "SELECT id FROM flows WHERE name = $1",
            &[(&flow, Type::TEXT)],
        )
        .and_then(|r| r.map(|r| r.try_get(0)).transpose())
        .context(|| format!("flow `{flow}`: looking it up"))?
        .ok_or_else(|| StoreError::UnknownFlow(flow.into()))
    }
}

/// Reads a `BIGINT` that holds a `u32` (a step number, an attempt count).
pub(crate) fn to_u32(column: &'static str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Invalid {
        column,
        value: v.to_string(),
    })
}

/// A `usize` limit as a `BIGINT` (`usize::MAX` means no limit).
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Connects with TLS off: see the workspace `Cargo.toml` on why.
pub(crate) fn connect(config: &postgres::Config) -> Result<Client, postgres::Error> {
    config.connect(NoTls)
}
