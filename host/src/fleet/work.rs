//! The work ledger (`muster_fleet.work`) and the worker registry
//! (`muster_fleet.workers`): how workers share tenants' runs.
//!
//! ## One row per unit of work
//!
//! A due tick of a scheduled flow is the row `(tenant, flow, 'schedule',
//! tick)`; an accepted webhook event is `(tenant, flow, 'webhook', inbox
//! id)`. Every worker records the ticks it finds due with `INSERT … ON
//! CONFLICT DO NOTHING`, so however many workers see a tick, it is one row.
//!
//! ## Claims: expiry and fencing token
//!
//! A worker claims the oldest row that is `due` (and not postponed), or
//! `running` under a claim that has expired, with `SELECT … FOR UPDATE SKIP
//! LOCKED` inside the claiming `UPDATE`: two workers never claim the same
//! row, and neither waits for the other. Claiming increments `fence` and
//! sets `expires_ms` (server clock); the claimant's heartbeat renews it
//! while the run lasts (`WHERE id AND fence`), and finishing is fenced the
//! same way: a worker whose claim was taken over cannot mark the row done.
//! A claim of a `running` row is a **take-over**: `taken_over_from` names
//! the worker that died, `attempts` counts both.
//!
//! The run itself still takes the flow's lease (`store/lease.rs`): the
//! claim says *which worker* runs a tick, the lease guarantees that two
//! runs of one flow never overlap and fences the dead worker's writes;
//! the take-over's run, as the lease's new holder, runs recovery first.

use postgres::Client;

use super::schema::NOW_MS;
use crate::store::{Context, StoreError};

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Schedule,
    Webhook,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Schedule => "schedule",
            Kind::Webhook => "webhook",
        }
    }
}

/// A row this worker claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: i64,
    pub tenant: String,
    pub flow: String,
    pub kind: Kind,
    /// The tick (unix ms) or the inbox id.
    pub key: i64,
    pub record_id: Option<String>,
    /// The fencing token of this claim.
    pub fence: i64,
    /// The worker whose expired claim this one took over.
    pub taken_over_from: Option<String>,
}

/// How a claimed row ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
}

/// The server's clock, unix ms.
pub fn server_now(c: &mut Client) -> Result<i64, StoreError> {
    c.query_one(&format!("SELECT {NOW_MS}"), &[])
        .and_then(|r| r.try_get(0))
        .context(|| "reading the fleet database's clock".into())
}

/// Records a due tick; `true` when this call created its row.
pub fn record_tick(
    c: &mut Client,
    tenant: &str,
    flow: &str,
    tick: i64,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            &format!(
                "INSERT INTO muster_fleet.work (tenant, flow, kind, key, not_before_ms, created_ms)
                 VALUES ($1, $2, 'schedule', $3, {NOW_MS}, {NOW_MS})
                 ON CONFLICT (tenant, flow, kind, key) DO NOTHING"
            ),
            &[&tenant, &flow, &tick],
        )
        .context(|| format!("tenant `{tenant}`, flow `{flow}`: recording tick {tick}"))?;
    Ok(n == 1)
}

/// Records an accepted webhook event (idempotent). A row that `failed`
/// at least `retry_ms` ago is made due again: the event is still pending
/// in the tenant's inbox, so it is retried, as `serve` retries it.
pub fn record_event(
    c: &mut Client,
    tenant: &str,
    flow: &str,
    inbox: i64,
    record: Option<&str>,
    retry_ms: i64,
) -> Result<(), StoreError> {
    c.execute(
        &format!(
            "INSERT INTO muster_fleet.work (tenant, flow, kind, key, record_id, not_before_ms, created_ms)
             VALUES ($1, $2, 'webhook', $3, $4, {NOW_MS}, {NOW_MS})
             ON CONFLICT (tenant, flow, kind, key) DO UPDATE SET state = 'due',
                 not_before_ms = {NOW_MS}, claimed_by = NULL, expires_ms = NULL
             WHERE work.state = 'failed' AND work.finished_ms <= {NOW_MS} - $5"
        ),
        &[&tenant, &flow, &inbox, &record, &retry_ms],
    )
    .context(|| format!("tenant `{tenant}`, flow `{flow}`: recording webhook event {inbox}"))?;
    Ok(())
}

/// Claims the next row of one of `tenants` for `worker`, for `ttl_ms`.
pub fn claim(
    c: &mut Client,
    worker: &str,
    ttl_ms: i64,
    tenants: &[String],
) -> Result<Option<Claim>, StoreError> {
    let row = c
        .query_opt(
            &format!(
                "UPDATE muster_fleet.work w SET state = 'running', fence = w.fence + 1,
                     claimed_by = $1, claimed_ms = {NOW_MS}, heartbeat_ms = {NOW_MS},
                     expires_ms = {NOW_MS} + $2, attempts = w.attempts + 1,
                     taken_over_from = CASE WHEN w.state = 'running' THEN w.claimed_by
                                            ELSE w.taken_over_from END
                 FROM (SELECT id FROM muster_fleet.work
                       WHERE ((state = 'due' AND not_before_ms <= {NOW_MS})
                              OR (state = 'running' AND expires_ms <= {NOW_MS}))
                         AND tenant = ANY($3)
                       ORDER BY not_before_ms, id
                       LIMIT 1 FOR UPDATE SKIP LOCKED) next
                 WHERE w.id = next.id
                 RETURNING w.id, w.tenant, w.flow, w.kind, w.key, w.record_id, w.fence,
                           w.taken_over_from"
            ),
            &[&worker, &ttl_ms, &tenants],
        )
        .context(|| format!("worker {worker}: claiming work"))?;
    let Some(r) = row else { return Ok(None) };
    let ctx = || format!("worker {worker}: reading its claim");
    let kind: String = r.try_get(3).context(ctx)?;
    Ok(Some(Claim {
        id: r.try_get(0).context(ctx)?,
        tenant: r.try_get(1).context(ctx)?,
        flow: r.try_get(2).context(ctx)?,
        kind: if kind == "webhook" {
            Kind::Webhook
        } else {
            Kind::Schedule
        },
        key: r.try_get(4).context(ctx)?,
        record_id: r.try_get(5).context(ctx)?,
        fence: r.try_get(6).context(ctx)?,
        taken_over_from: r.try_get(7).context(ctx)?,
    }))
}

/// Renews claims (the heartbeat); returns the ids whose claim was lost.
pub fn renew(c: &mut Client, claims: &[(i64, i64)], ttl_ms: i64) -> Result<Vec<i64>, StoreError> {
    let mut lost = Vec::new();
    for &(id, fence) in claims {
        let n = c
            .execute(
                &format!(
                    "UPDATE muster_fleet.work SET heartbeat_ms = {NOW_MS}, expires_ms = {NOW_MS} + $3
                     WHERE id = $1 AND fence = $2 AND state = 'running'"
                ),
                &[&id, &fence, &ttl_ms],
            )
            .context(|| format!("renewing the claim on work {id}"))?;
        if n == 0 {
            lost.push(id);
        }
    }
    Ok(lost)
}

/// Ends a claim; `false` when it had been taken over meanwhile.
pub fn finish(
    c: &mut Client,
    claim: &Claim,
    outcome: Outcome,
    run: Option<i64>,
    note: &str,
) -> Result<bool, StoreError> {
    let state = match outcome {
        Outcome::Done => "done",
        Outcome::Failed => "failed",
    };
    let n = c
        .execute(
            &format!(
                "UPDATE muster_fleet.work SET state = $3, run_id = $4, note = $5,
                     finished_ms = {NOW_MS}, expires_ms = NULL
                 WHERE id = $1 AND fence = $2 AND state = 'running'"
            ),
            &[&claim.id, &claim.fence, &state, &run, &note],
        )
        .context(|| format!("work {}: recording how it ended", claim.id))?;
    Ok(n == 1)
}

/// Gives a claim back, due again after `delay_ms` (the flow was busy).
pub fn postpone(
    c: &mut Client,
    claim: &Claim,
    delay_ms: i64,
    note: &str,
) -> Result<(), StoreError> {
    c.execute(
        &format!(
            "UPDATE muster_fleet.work SET state = 'due', claimed_by = NULL, expires_ms = NULL,
                 not_before_ms = {NOW_MS} + $3, note = $4
             WHERE id = $1 AND fence = $2 AND state = 'running'"
        ),
        &[&claim.id, &claim.fence, &delay_ms, &note],
    )
    .context(|| format!("work {}: postponing it", claim.id))?;
    Ok(())
}

/// Deletes finished rows (and stopped workers) older than `keep_ms`:
/// the ledger grows by one row per tick of every flow (a tenant due every
/// minute adds 1,440 a day). Rows still due or running are never touched.
/// Returns the number of ledger rows deleted.
pub fn prune(c: &mut Client, keep_ms: i64) -> Result<u64, StoreError> {
    let rows = c
        .execute(
            &format!(
                "DELETE FROM muster_fleet.work
                 WHERE state IN ('done', 'failed') AND finished_ms < {NOW_MS} - $1"
            ),
            &[&keep_ms],
        )
        .context(|| "pruning the work ledger".into())?;
    c.execute(
        &format!(
            "DELETE FROM muster_fleet.workers
             WHERE coalesce(stopped_ms, heartbeat_ms) < {NOW_MS} - $1"
        ),
        &[&keep_ms],
    )
    .context(|| "pruning the workers".into())?;
    Ok(rows)
}

/// Registers (or re-registers) this worker.
pub fn register_worker(c: &mut Client, id: &str, listen: &str) -> Result<(), StoreError> {
    let host = id.split(':').next().unwrap_or("");
    let pid = i64::from(std::process::id());
    c.execute(
        &format!(
            "INSERT INTO muster_fleet.workers (id, host, pid, listen, started_ms, heartbeat_ms)
             VALUES ($1, $2, $3, $4, {NOW_MS}, {NOW_MS})
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = {NOW_MS}, stopped_ms = NULL"
        ),
        &[&id, &host, &pid, &listen],
    )
    .context(|| format!("registering worker {id}"))?;
    Ok(())
}

/// The worker's own heartbeat.
pub fn worker_alive(c: &mut Client, id: &str) -> Result<(), StoreError> {
    c.execute(
        &format!("UPDATE muster_fleet.workers SET heartbeat_ms = {NOW_MS} WHERE id = $1"),
        &[&id],
    )
    .context(|| format!("worker {id}: heartbeat"))?;
    Ok(())
}

/// Marks the worker stopped (a clean shutdown).
pub fn worker_stopped(c: &mut Client, id: &str) -> Result<(), StoreError> {
    c.execute(
        &format!("UPDATE muster_fleet.workers SET stopped_ms = {NOW_MS} WHERE id = $1"),
        &[&id],
    )
    .context(|| format!("worker {id}: recording its stop"))?;
    Ok(())
}

/// When each tenant was first registered (server clock), by id.
pub fn registered(c: &mut Client) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    let rows = c
        .query("SELECT id, registered_ms FROM muster_fleet.tenants", &[])
        .context(|| "reading the registered tenants".into())?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, postgres::Error>>()
        .context(|| "reading the registered tenants".into())
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
