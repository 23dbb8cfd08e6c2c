//! The shared rate-limit budget of a fleet worker: one small pool of
//! connections for every tenant it serves.
//!
//! A tenant's budget is the same bucket whoever runs its flows: the rows of
//! `rate_budgets` in the tenant's schema, taken from with that schema's
//! `muster_budget_take` (see `store/postgres/budget.rs` for the bucket and
//! why it is one). Outside a fleet, a [`crate::connect::Host`] on a
//! PostgreSQL state opens a [`crate::store::PostgresBudget`] of its own —
//! one connection per host. A fleet worker makes a host per run, for every
//! tenant it serves, so that would be one connection opened per run (and,
//! kept per tenant instead, one per tenant per worker: hundreds). So the
//! worker keeps **one budget** ([`FleetBudget`]): at most `jobs`
//! connections to the fleet database, each switched to a tenant's schema
//! (`SET search_path`) when a request of another tenant than its last
//! takes it. Every tenant's table is reachable from every connection of the
//! fleet database; the `search_path` decides whose bucket a take reaches,
//! and PostgreSQL re-plans a prepared statement whose `search_path` changed,
//! so the prepared `TAKE` and `HOLD` follow the switch.
//!
//! Each run's host gets a [`TenantBudget`]: the worker's pool and the
//! tenant's schema. A take holds a connection for its one statement (plus
//! the `SET` after a switch, and preparing the statements the first time
//! the connection is used), so `jobs` connections serve `jobs` runs; a caller that
//! finds them all busy waits for one (at most [`LOCK_TIMEOUT`]), and a take
//! that cannot be made fails, unsent, as with [`crate::store::PostgresBudget`].

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use muster_outbound::{RateLimit, SharedAdmission, SharedLimitError, SharedLimiter};
use postgres::{Client, Statement};

use crate::store::postgres::budget::{
    HOLD, LOCK_TIMEOUT, TAKE, admission, bucket_key, budget_location, server_us,
};
use crate::store::{Context, PostgresLocation, StoreError};

/// Why a take from a tenant's budget could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every connection of the pool stayed busy for [`LOCK_TIMEOUT`].
    #[error("all {connections} budget connections stayed busy for {waited:?}")]
    Busy {
        connections: usize,
        waited: Duration,
    },
}

/// The worker's budget connections: see the module documentation.
pub struct FleetBudget {
    location: PostgresLocation,
    /// Most connections open at once (the worker's `jobs`).
    cap: usize,
    slots: Mutex<Slots>,
    freed: Condvar,
}

#[derive(Default)]
struct Slots {
    idle: Vec<Conn>,
    /// Connections open, idle or lent out.
    open: usize,
}

/// One budget connection, whose schema its `search_path` is now, and its
/// prepared statements (prepared in the first schema it is switched to:
/// the functions and table they name are the tenants').
struct Conn {
    client: Client,
    schema: Option<String>,
    statements: Option<(Statement, Statement)>,
}

impl std::fmt::Debug for FleetBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBudget")
            .field("database", &self.location.describe())
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

impl FleetBudget {
    /// The budget of the fleet database at `location`, with at most
    /// `connections` connections (at least one). Connects on first use.
    pub fn new(location: &PostgresLocation, connections: usize) -> FleetBudget {
        FleetBudget {
            location: budget_location(location),
            cap: connections.max(1),
            slots: Mutex::new(Slots::default()),
            freed: Condvar::new(),
        }
    }

    /// The budget of the tenant whose schema is `schema`, for one run's host.
    pub fn tenant(self: &Arc<Self>, schema: &str) -> Arc<TenantBudget> {
        Arc::new(TenantBudget {
            pool: self.clone(),
            schema: schema.to_owned(),
        })
    }

    /// Connections open now (idle or in use).
    pub fn open_connections(&self) -> usize {
        self.slots().open
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a connection whose `search_path` is `schema`; a
    /// connection that failed is closed, never lent again.
    fn with_schema<T>(
        &self,
        schema: &str,
        f: impl Fn(&mut Client, &Statement, &Statement) -> Result<T, StoreError>,
    ) -> Result<T, BudgetError> {
        let mut retried = false;
        loop {
            let mut conn = self.lend()?;
            let out = switch(&mut conn, schema)
                .and_then(|(take, hold)| f(&mut conn.client, &take, &hold));
            match out {
                Ok(v) => {
                    self.give_back(Some(conn));
                    return Ok(v);
                }
                // A connection the server closed (it restarted since the
                // last take): once more, on a new one.
                Err(StoreError::Postgres { source, .. }) if source.is_closed() && !retried => {
                    self.give_back(None);
                    retried = true;
                }
                Err(e) => {
                    self.give_back(None);
                    return Err(e.into());
                }
            }
        }
    }

    /// An idle connection, a new one while fewer than `cap` are open, or
    /// the first one given back within [`LOCK_TIMEOUT`].
    fn lend(&self) -> Result<Conn, BudgetError> {
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut slots = self.slots();
        loop {
            if let Some(c) = slots.idle.pop() {
                return Ok(c);
            }
            if slots.open < self.cap {
                slots.open += 1;
                drop(slots);
                return self.connect().inspect_err(|_| self.give_back(None));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BudgetError::Busy {
                    connections: self.cap,
                    waited: LOCK_TIMEOUT,
                });
            }
            slots = self
                .freed
                .wait_timeout(slots, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Returns a lent connection (`None`: it failed and is closed).
    fn give_back(&self, conn: Option<Conn>) {
        let mut slots = self.slots();
        match conn {
            Some(c) => slots.idle.push(c),
            None => slots.open -= 1,
        }
        drop(slots);
        self.freed.notify_one();
    }

    fn connect(&self) -> Result<Conn, BudgetError> {
        Ok(Conn {
            client: self.location.connect()?,
            schema: None,
            statements: None,
        })
    }
}

/// Points `conn`'s `search_path` at `schema`, unless it already is, and
/// gives its prepared statements (`TAKE`, `HOLD`).
fn switch(conn: &mut Conn, schema: &str) -> Result<(Statement, Statement), StoreError> {
    if conn.schema.as_deref() != Some(schema) {
        conn.schema = None;
        // Tenant schemas are `tenant_` + [a-z0-9_] (`tenants::schema_for`);
        // quoted all the same.
        let sql = format!("SET search_path TO \"{}\"", schema.replace('"', "\"\""));
        conn.client
            .batch_execute(&sql)
            .context(|| format!("switching the budget connection to schema {schema}"))?;
        conn.schema = Some(schema.to_owned());
    }
    if let Some(statements) = &conn.statements {
        return Ok(statements.clone());
    }
    let what = || format!("preparing the rate-limit budget's statements in schema {schema}");
    let take = conn.client.prepare(TAKE).context(what)?;
    let hold = conn.client.prepare(HOLD).context(what)?;
    conn.statements = Some((take.clone(), hold.clone()));
    Ok((take, hold))
}

/// One tenant's budget on its worker's pool: the [`SharedLimiter`] of a
/// fleet run's host.
#[derive(Debug)]
pub struct TenantBudget {
    pool: Arc<FleetBudget>,
    schema: String,
}

impl TenantBudget {
    fn error(&self, origin: &str, e: &BudgetError) -> SharedLimitError {
        SharedLimitError {
            budget: format!(
                "PostgreSQL {} (schema {})",
                self.pool.location.describe(),
                self.schema
            ),
            origin: origin.to_owned(),
            detail: e.to_string(),
        }
    }
}

impl SharedLimiter for TenantBudget {
    fn try_acquire(
        &self,
        origin: &str,
        limit: RateLimit,
    ) -> Result<SharedAdmission, SharedLimitError> {
        let (requests, per_us) = bucket_key(limit, 1.0);
        self.pool
            .with_schema(&self.schema, |client, take, _| {
                client
                    .query_one(take, &[&origin, &requests, &per_us])
                    .and_then(|row| row.try_get::<_, i64>(0))
                    .context(|| format!("{origin}: taking a request from its budget"))
            })
            .map(|wait_us| admission(wait_us, 1.0))
            .map_err(|e| self.error(origin, &e))
    }

    fn hold(&self, origin: &str, limit: RateLimit, wait: Duration) -> Result<(), SharedLimitError> {
        let (requests, per_us) = bucket_key(limit, 1.0);
        let for_us = server_us(wait, 1.0);
        self.pool
            .with_schema(&self.schema, |client, _, hold| {
                client
                    .execute(hold, &[&origin, &requests, &per_us, &for_us])
                    .context(|| format!("{origin}: holding its budget back after a 429"))
            })
            .map(drop)
            .map_err(|e| self.error(origin, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::tenants::state_url;
    use crate::store::PostgresStore;
    use muster_sandbox::postgres::test_database;

    /// Two tenants' schemas migrated, and the fleet database's location.
    fn two_tenants() -> (muster_sandbox::postgres::TestDatabase, PostgresLocation) {
        let db = test_database().unwrap_or_else(|e| panic!("{e}"));
        let password = db.password().map(str::to_string);
        for schema in ["tenant_a", "tenant_b"] {
            let mut c = PostgresLocation::parse(db.url(), password.clone())
                .unwrap()
                .connect()
                .unwrap();
            c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
            let url = state_url(db.url(), schema);
            let tenant = PostgresLocation::parse(&url, password.clone()).unwrap();
            drop(PostgresStore::open(&tenant).unwrap());
        }
        let fleet = PostgresLocation::parse(db.url(), password).unwrap();
        (db, fleet)
    }

    #[test]
    fn one_connection_serves_each_tenant_its_own_bucket() {
        let (_db, fleet) = two_tenants();
        let pool = Arc::new(FleetBudget::new(&fleet, 1));
        let (a, b) = (pool.tenant("tenant_a"), pool.tenant("tenant_b"));
        let two_a_minute = RateLimit::new(2, Duration::from_secs(60));
        // The same origin in both tenants (two customers' stand-ins may
        // share one): the buckets are the tenants', not the origin's.
        let origin = "https://acme.ilucca.net:443";
        for _ in 0..2 {
            for t in [&a, &b] {
                assert_eq!(
                    t.try_acquire(origin, two_a_minute).unwrap(),
                    SharedAdmission::Go
                );
            }
        }
        for t in [&a, &b] {
            assert!(
                matches!(
                    t.try_acquire(origin, two_a_minute).unwrap(),
                    SharedAdmission::Wait(_)
                ),
                "a third request in the minute of {}",
                t.schema
            );
        }
        // A 429 in one tenant holds that tenant back only.
        let c = pool.tenant("tenant_a");
        let other = RateLimit::new(5, Duration::from_secs(60));
        c.hold(origin, other, Duration::from_secs(30)).unwrap();
        assert!(matches!(
            a.try_acquire(origin, other).unwrap(),
            SharedAdmission::Wait(_)
        ));
        assert_eq!(b.try_acquire(origin, other).unwrap(), SharedAdmission::Go);
        assert_eq!(pool.open_connections(), 1, "every take on one connection");
        let mut check = fleet.connect().unwrap();
        for schema in ["tenant_a", "tenant_b"] {
            let spent: i32 = check
                .query_one(
                    &format!(
                        "SELECT cardinality(spent) FROM {schema}.rate_budgets WHERE requests = 2"
                    ),
                    &[],
                )
                .unwrap()
                .get(0);
            assert_eq!(spent, 2, "{schema}");
        }
    }

    #[test]
    fn an_unknown_schema_is_an_error_naming_it() {
        let (_db, fleet) = two_tenants();
        let pool = Arc::new(FleetBudget::new(&fleet, 2));
        let err = pool
            .tenant("tenant_nobody")
            .try_acquire("https://x.ilucca.net:443", RateLimit::LUCCA)
            .unwrap_err();
        assert!(err.budget.contains("tenant_nobody"), "{err:?}");
        assert!(err.detail.contains("tenant_nobody"), "{err:?}");
        assert_eq!(
            pool.open_connections(),
            0,
            "the failed connection is closed"
        );
    }
}
