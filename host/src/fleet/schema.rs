//! The `muster_fleet` schema: the coordination tables every worker shares.
//!
//! Tenants' own state lives in one schema per tenant (`tenant_<id>`, the
//! ordinary store, migrated by it); these tables only say who works on
//! what. They are versioned on their own (`muster_fleet.schema_version`),
//! migrated under the same kind of advisory lock as the store, and a
//! version newer than this build knows is refused
//! ([`StoreError::TooNew`]), so an old worker never runs beside a newer
//! fleet.
//!
//! | table | one row per | read by |
//! |---|---|---|
//! | `workers` | worker process (id `host:pid:nonce`) | status page |
//! | `tenants` | tenant ever registered, with when (server clock) | tick computation: no tick before registration |
//! | `work` | due tick of a scheduled flow, or accepted webhook event | the claim loop and the status page |

use postgres::Client;

use crate::store::{Context, StoreError};

/// Serialises fleet-schema migrations and tenant schema creation between
/// workers starting at once ("fleet" in ASCII, distinct from the store's
/// own migration lock).
pub(crate) const FLEET_LOCK: i64 = 0x0066_6c65_6574;

/// The migrations, in order; version N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[
    // 1: workers, tenants and the work ledger.
    "
CREATE TABLE muster_fleet.workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    listen       TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL,
    stopped_ms   BIGINT
);
CREATE TABLE muster_fleet.tenants (
    id            TEXT PRIMARY KEY,
    schema_name   TEXT NOT NULL UNIQUE,
    registered_ms BIGINT NOT NULL
);
CREATE TABLE muster_fleet.work (
    id              BIGSERIAL PRIMARY KEY,
    tenant          TEXT NOT NULL,
    flow            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('schedule', 'webhook')),
    -- The tick (unix ms) of a schedule; the inbox id of a webhook event.
    key             BIGINT NOT NULL,
    record_id       TEXT,
    state           TEXT NOT NULL DEFAULT 'due'
                    CHECK (state IN ('due', 'running', 'done', 'failed')),
    fence           BIGINT NOT NULL DEFAULT 0,
    claimed_by      TEXT,
    claimed_ms      BIGINT,
    heartbeat_ms    BIGINT,
    expires_ms      BIGINT,
    not_before_ms   BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    taken_over_from TEXT,
    run_id          BIGINT,
    note            TEXT,
    created_ms      BIGINT NOT NULL,
    finished_ms     BIGINT,
    UNIQUE (tenant, flow, kind, key)
);
CREATE INDEX work_open ON muster_fleet.work (not_before_ms, id)
    WHERE state IN ('due', 'running');
",
];

/// The server's clock in unix milliseconds: every fleet time comes from
/// it, so workers' clocks do not matter.
pub(crate) const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Creates and migrates `muster_fleet` to this build's version.
pub fn migrate(c: &mut Client, database: &str) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as u32;
    loop {
        let what = || format!("migrating the fleet schema in {database}");
        let mut tx = c.transaction().context(what)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FLEET_LOCK])
            .context(what)?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS muster_fleet;
             CREATE TABLE IF NOT EXISTS muster_fleet.schema_version (
                 one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
                 version INTEGER NOT NULL);
             INSERT INTO muster_fleet.schema_version VALUES (TRUE, 0) ON CONFLICT DO NOTHING;",
        )
        .context(what)?;
        let found: i32 = tx
            .query_one("SELECT version FROM muster_fleet.schema_version", &[])
            .and_then(|r| r.try_get(0))
            .context(what)?;
        let found = u32::try_from(found).map_err(|_| StoreError::Invalid {
            column: "muster_fleet.schema_version.version",
            value: found.to_string(),
        })?;
        if found > supported {
            return Err(StoreError::TooNew {
                database: format!("{database} (schema muster_fleet)"),
                found,
                supported,
            });
        }
        let Some(sql) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        let next = i32::try_from(found + 1).unwrap_or(i32::MAX);
        let step = || format!("migrating the fleet schema in {database} to version {next}");
        tx.batch_execute(sql).context(step)?;
        tx.execute(
            "UPDATE muster_fleet.schema_version SET version = $1",
            &[&next],
        )
        .context(step)?;
        tx.commit().context(step)?;
    }
}

/// Creates a tenant's schema if it does not exist yet (under the fleet
/// lock: `CREATE SCHEMA IF NOT EXISTS` alone races between workers) and
/// registers the tenant; the store migrates the schema when it is opened.
pub fn ensure_tenant(c: &mut Client, tenant: &str, schema_name: &str) -> Result<(), StoreError> {
    let what = || format!("tenant `{tenant}`: creating its schema `{schema_name}`");
    let mut tx = c.transaction().context(what)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FLEET_LOCK])
        .context(what)?;
    // The name is checked by `tenants::schema_for` (letters, digits, `_`).
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema_name}\""))
        .context(what)?;
    tx.execute(
        &format!(
            "INSERT INTO muster_fleet.tenants (id, schema_name, registered_ms)
             VALUES ($1, $2, {NOW_MS}) ON CONFLICT (id) DO NOTHING"
        ),
        &[&tenant, &schema_name],
    )
    .context(what)?;
    tx.commit().context(what)
}
