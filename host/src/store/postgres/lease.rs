//! Flow leases in PostgreSQL (the rules are in [`crate::store::lease`];
//! twin of `sqlite/lease.rs`).
//!
//! Every lease time is the *server's* clock ([`NOW_MS`]), so workers on
//! different machines agree on who holds what whatever their own clocks
//! say. Acquisition locks the flow's lease row (`SELECT … FOR UPDATE`)
//! and takes it with one guarded upsert: when there was no row and two
//! workers insert at once, the second waits on the primary key, then finds
//! the guard false (the lease is live) and gets [`StoreError::LeaseHeld`].
//! The fence check of every write locks the same row, so a take-over and a
//! fenced write are serialised. (`SKIP LOCKED` for picking work across
//! flows, issue 17 item 3, fits on the same row.)

use std::time::Duration;

use postgres::{Client, GenericClient};

use super::PostgresStore;
use crate::store::lease::{Fence, LeaseRow, Renewer, holder, now_ms, ttl_ms};
use crate::store::{Context, Lease, LeaseHolder, StoreError};

/// The server's clock, in unix milliseconds.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The lease row of a flow and the server's time, optionally locking it.
fn read_row(
    c: &mut impl GenericClient,
    flow_id: i64,
    flow: &str,
    lock: bool,
) -> Result<(Option<LeaseRow>, i64), StoreError> {
    let ctx = || format!("flow `{flow}`: reading its lease");
    let now: i64 = c
        .query_one(&format!("SELECT {NOW_MS}"), &[])
        .and_then(|r| r.try_get(0))
        .context(ctx)?;
    let sql = format!(
        "SELECT fence, owner, acquired_ms, heartbeat_ms, expires_ms FROM leases WHERE flow_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = c
        .query_opt(&sql, &[&flow_id])
        .and_then(|r| {
            r.map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .transpose()
        })
        .context(ctx)?;
    Ok((row, now))
}

impl PostgresStore {
    /// See [`crate::store::Store::acquire_lease`].
    pub fn acquire_lease(
        &mut self,
        flow: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let local = now_ms();
        let ctx = || format!("flow `{flow}`: acquiring its lease");
        let (flow_id, token, previous) = self.write(ctx, |tx| {
            let flow_id = PostgresStore::flow_id(tx, flow)?;
            let (row, now) = read_row(tx, flow_id, flow, true)?;
            let previous = row.and_then(|r| holder(flow, r, now));
            if let Some(h) = &previous
                && !h.expired
            {
                return Err(StoreError::LeaseHeld(Box::new(h.clone())));
            }
            let taken: Option<i64> = tx
                .query_opt(
                    &format!(
                        "INSERT INTO leases (flow_id, fence, owner, acquired_ms, heartbeat_ms, expires_ms)
                         VALUES ($1, 1, $2, {NOW_MS}, {NOW_MS}, {NOW_MS} + $3)
                         ON CONFLICT (flow_id) DO UPDATE SET fence = leases.fence + 1,
                             owner = excluded.owner, acquired_ms = excluded.acquired_ms,
                             heartbeat_ms = excluded.heartbeat_ms, expires_ms = excluded.expires_ms
                         WHERE leases.owner IS NULL OR leases.expires_ms <= excluded.acquired_ms
                         RETURNING fence"
                    ),
                    &[&flow_id, &owner, &ttl_ms(ttl)],
                )
                .and_then(|r| r.map(|r| r.try_get(0)).transpose())
                .context(|| format!("flow `{flow}`: taking its lease"))?;
            match taken {
                Some(token) => Ok((flow_id, token, previous)),
                // Another worker inserted the first row meanwhile.
                None => Err(held_or_lost(tx, flow_id, flow)),
            }
        })?;
        self.fence = Some(Fence::new(flow_id, flow, token, local, ttl));
        Ok(Lease {
            flow: flow.into(),
            owner: owner.into(),
            token,
            took_over: previous,
        })
    }

    /// See [`crate::store::Store::renew_lease`].
    pub fn renew_lease(&mut self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        let until = self.read(|c| renew(c, lease, ttl))?;
        if let Some(f) = self.fence.as_ref().filter(|f| f.token == lease.token) {
            f.valid_until
                .store(until, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    /// See [`crate::store::Store::release_lease`].
    pub fn release_lease(&mut self, lease: &Lease) -> Result<(), StoreError> {
        self.fence = None;
        let flow = &lease.flow;
        self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            let changed = c
                .execute(
                    &format!(
                        "UPDATE leases SET owner = NULL, expires_ms = {NOW_MS}
                         WHERE flow_id = $1 AND fence = $2"
                    ),
                    &[&flow_id, &lease.token],
                )
                .context(|| format!("flow `{flow}`: releasing its lease"))?;
            if changed == 0 {
                return Err(lost(c, flow_id, flow, lease.token));
            }
            Ok(())
        })
    }

    /// See [`crate::store::Store::lease_holder`].
    pub fn lease_holder(&self, flow: &str) -> Result<Option<LeaseHolder>, StoreError> {
        self.read(|c| {
            let flow_id = match PostgresStore::flow_id(c, flow) {
                Ok(id) => id,
                Err(StoreError::UnknownFlow(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let (row, now) = read_row(c, flow_id, flow, false)?;
            Ok(row.and_then(|r| holder(flow, r, now)))
        })
    }

    /// The heartbeat's renewal of `lease` over a connection of its own.
    pub(crate) fn renewer(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Option<Renewer>, StoreError> {
        let mut client = self.location.connect()?;
        let lease = lease.clone();
        Ok(Some(Box::new(move || renew(&mut client, &lease, ttl))))
    }
}

/// Rule 3: inside a write transaction, locks the flow's lease row and
/// refuses to go on when the fenced lease is no longer this store's.
pub(crate) fn check_fence(c: &mut impl GenericClient, fence: &Fence) -> Result<(), StoreError> {
    let token: Option<i64> = c
        .query_opt(
            "SELECT fence FROM leases WHERE flow_id = $1 FOR UPDATE",
            &[&fence.flow_id],
        )
        .and_then(|r| r.map(|r| r.try_get(0)).transpose())
        .context(|| format!("flow `{}`: checking its lease", fence.flow))?;
    if token == Some(fence.token) {
        Ok(())
    } else {
        Err(lost(c, fence.flow_id, &fence.flow, fence.token))
    }
}

fn lost(c: &mut impl GenericClient, flow_id: i64, flow: &str, token: i64) -> StoreError {
    let now = read_row(c, flow_id, flow, false)
        .ok()
        .and_then(|(row, now)| row.and_then(|r| holder(flow, r, now)));
    StoreError::LeaseLost {
        flow: flow.into(),
        token,
        now_held_by: now.map_or_else(|| "nobody".into(), |h| h.owner),
    }
}

/// The error for an acquisition that lost a race for the first row.
fn held_or_lost(c: &mut impl GenericClient, flow_id: i64, flow: &str) -> StoreError {
    match read_row(c, flow_id, flow, false) {
        Ok((Some(row), now)) => match holder(flow, row, now) {
            Some(h) => StoreError::LeaseHeld(Box::new(h)),
            None => lost(c, flow_id, flow, 0),
        },
        Ok((None, _)) => lost(c, flow_id, flow, 0),
        Err(e) => e,
    }
}

/// Renews the lease on the server's clock; returns until when (unix ms,
/// this process's clock, measured from before the call) it now holds.
fn renew(c: &mut Client, lease: &Lease, ttl: Duration) -> Result<i64, StoreError> {
    let local = now_ms();
    let flow = &lease.flow;
    let flow_id = PostgresStore::flow_id(c, flow)?;
    let changed = c
        .execute(
            &format!(
                "UPDATE leases SET heartbeat_ms = {NOW_MS}, expires_ms = {NOW_MS} + $3
                 WHERE flow_id = $1 AND fence = $2 AND owner IS NOT NULL"
            ),
            &[&flow_id, &lease.token, &ttl_ms(ttl)],
        )
        .context(|| format!("flow `{flow}`: renewing its lease"))?;
    if changed == 0 {
        return Err(lost(c, flow_id, flow, lease.token));
    }
    Ok(local.saturating_add(ttl_ms(ttl)))
}
