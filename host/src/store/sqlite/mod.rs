//! The SQLite backend: one database file, the embedded default.
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
//! One [`SqliteStore`] owns one [`rusqlite::Connection`]; writes take `&mut self`.
//! Concurrent processes are serialised by SQLite's file lock plus the busy
//! timeout; within a process, the engine owns the store.
//!

mod alerts;
mod inbox;
mod journal;
mod lease;
mod left_out;
mod links;
mod metrics;
mod runs;
mod search;
mod state;
mod written_rows;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::store::lease::Fence;
use crate::store::schema::{self, SCHEMA_VERSION};
use crate::store::{Context, Durability, StoreError};

/// How long a writer waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Set while this store holds a flow's lease: every write transaction
    /// checks it (see [`lease`]).
    fence: Option<Fence>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with
    /// [`Durability::Normal`], checks its integrity and migrates it to
    /// [`SCHEMA_VERSION`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, Durability::default())
    }

    /// [`SqliteStore::open`] with an explicit durability.
    pub fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SqliteStore, StoreError> {
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
        SqliteStore::setup(conn, path, durability)
    }

    /// A private in-memory database, for unit tests.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        SqliteStore::setup(conn, path, Durability::default())
    }

    fn setup(
        conn: Connection,
        path: PathBuf,
        durability: Durability,
    ) -> Result<SqliteStore, StoreError> {
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
        let mut store = SqliteStore {
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
                    database: self.path.display().to_string(),
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

    /// The fence of the lease this store holds, if any.
    pub(crate) fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
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
