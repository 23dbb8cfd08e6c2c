//! Flow leases in SQLite (the rules are in [`crate::store::lease`]): one
//! `BEGIN IMMEDIATE` transaction per acquisition, times on the host clock
//! that every process sharing the file shares.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{BUSY_TIMEOUT, SqliteStore};
use crate::store::lease::{Fence, LeaseRow, Renewer, holder, now_ms, ttl_ms};
use crate::store::{Context, Lease, LeaseHolder, StoreError};

fn read_row(conn: &Connection, flow_id: i64, flow: &str) -> Result<Option<LeaseRow>, StoreError> {
    conn.prepare_cached(
        "SELECT fence, owner, acquired_ms, heartbeat_ms, expires_ms FROM leases WHERE flow_id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([flow_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()
    })
    .context(|| format!("flow `{flow}`: reading its lease"))
}

impl SqliteStore {
    /// Takes `flow`'s lease for `owner` for `ttl` (rule 1 of the module
    /// doc), and fences this store's writes with it until
    /// [`SqliteStore::release_lease`].
    pub fn acquire_lease(
        &mut self,
        flow: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let tx = self.write_tx(|| format!("flow `{flow}`: acquiring its lease"))?;
        let now = now_ms();
        let row = read_row(&tx, flow_id, flow)?;
        let token = row.as_ref().map_or(1, |r| r.0 + 1);
        let previous = row.and_then(|r| holder(flow, r, now));
        if let Some(h) = &previous
            && !h.expired
        {
            return Err(StoreError::LeaseHeld(Box::new(h.clone())));
        }
        tx.execute(
            "INSERT INTO leases (flow_id, fence, owner, acquired_ms, heartbeat_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)
             ON CONFLICT (flow_id) DO UPDATE SET fence = excluded.fence, owner = excluded.owner,
                 acquired_ms = excluded.acquired_ms, heartbeat_ms = excluded.heartbeat_ms,
                 expires_ms = excluded.expires_ms",
            params![flow_id, token, owner, now, now.saturating_add(ttl_ms(ttl))],
        )
        .context(|| format!("flow `{flow}`: taking its lease"))?;
        tx.commit()
            .context(|| format!("flow `{flow}`: committing its lease"))?;
        self.fence = Some(Fence::new(flow_id, flow, token, now, ttl));
        Ok(Lease {
            flow: flow.into(),
            owner: owner.into(),
            token,
            took_over: previous,
        })
    }

    /// Extends a held lease by `ttl` from now (rule 2).
    pub fn renew_lease(&mut self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, &lease.flow)?;
        let until = renew(&self.conn, flow_id, lease, ttl)?;
        if let Some(f) = self.fence.as_ref().filter(|f| f.token == lease.token) {
            f.valid_until.store(until, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Gives the lease back (rule 4) and lifts the fence. Releasing a lease
    /// that was taken over is [`StoreError::LeaseLost`].
    pub fn release_lease(&mut self, lease: &Lease) -> Result<(), StoreError> {
        self.fence = None;
        let flow_id = SqliteStore::flow_id(&self.conn, &lease.flow)?;
        let flow = &lease.flow;
        let changed = self
            .conn
            .execute(
                "UPDATE leases SET owner = NULL, expires_ms = ?3 WHERE flow_id = ?1 AND fence = ?2",
                params![flow_id, lease.token, now_ms()],
            )
            .context(|| format!("flow `{flow}`: releasing its lease"))?;
        if changed == 0 {
            return Err(lost(&self.conn, flow_id, flow, lease.token));
        }
        Ok(())
    }

    /// The current (or lapsed, not released) holder of `flow`'s lease.
    /// `None` when the flow is free or was never recorded.
    pub fn lease_holder(&self, flow: &str) -> Result<Option<LeaseHolder>, StoreError> {
        let flow_id = match SqliteStore::flow_id(&self.conn, flow) {
            Ok(id) => id,
            Err(StoreError::UnknownFlow(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let row = read_row(&self.conn, flow_id, flow)?;
        Ok(row.and_then(|r| holder(flow, r, now_ms())))
    }

    /// The fencing token of the lease this store holds, if any.
    pub(crate) fn fence_token(&self) -> Option<i64> {
        self.fence.as_ref().map(|f| f.token)
    }

    /// The heartbeat's renewal of `lease` over a second connection to the
    /// same file; `None` for a private in-memory database, which no other
    /// connection or process can share (nobody can take the lease over).
    pub(crate) fn renewer(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Option<Renewer>, StoreError> {
        if self.path == std::path::Path::new(":memory:") {
            return Ok(None);
        }
        let conn = Connection::open(&self.path).map_err(|source| StoreError::Open {
            path: self.path.clone(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .context(|| format!("flow `{}`: heartbeat connection", lease.flow))?;
        let flow_id = SqliteStore::flow_id(&conn, &lease.flow)?;
        let lease = lease.clone();
        Ok(Some(Box::new(move || renew(&conn, flow_id, &lease, ttl))))
    }
}

/// Rule 3: inside a write transaction, refuses to go on when the fenced
/// lease is no longer this store's.
pub(crate) fn check_fence(conn: &Connection, fence: &Fence) -> Result<(), StoreError> {
    let token: Option<i64> = conn
        .prepare_cached("SELECT fence FROM leases WHERE flow_id = ?1")
        .and_then(|mut s| s.query_row([fence.flow_id], |r| r.get(0)).optional())
        .context(|| format!("flow `{}`: checking its lease", fence.flow))?;
    if token == Some(fence.token) {
        Ok(())
    } else {
        Err(lost(conn, fence.flow_id, &fence.flow, fence.token))
    }
}

fn lost(conn: &Connection, flow_id: i64, flow: &str, token: i64) -> StoreError {
    let now = read_row(conn, flow_id, flow)
        .ok()
        .flatten()
        .and_then(|r| holder(flow, r, now_ms()));
    StoreError::LeaseLost {
        flow: flow.into(),
        token,
        now_held_by: now.map_or_else(|| "nobody".into(), |h| h.owner),
    }
}

/// Renews the lease; returns until when (unix ms) it now holds.
fn renew(conn: &Connection, flow_id: i64, lease: &Lease, ttl: Duration) -> Result<i64, StoreError> {
    let now = now_ms();
    let until = now.saturating_add(ttl_ms(ttl));
    let flow = &lease.flow;
    let changed = conn
        .prepare_cached(
            "UPDATE leases SET heartbeat_ms = ?3, expires_ms = ?4
             WHERE flow_id = ?1 AND fence = ?2 AND owner IS NOT NULL",
        )
        .and_then(|mut s| s.execute(params![flow_id, lease.token, now, until]))
        .context(|| format!("flow `{flow}`: renewing its lease"))?;
    if changed == 0 {
        return Err(lost(conn, flow_id, flow, lease.token));
    }
    Ok(until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lease::owner_name;

    const TTL: Duration = Duration::from_secs(60);

    fn lapsed(s: &SqliteStore) -> bool {
        s.fence.as_ref().is_some_and(Fence::lapsed)
    }

    fn store() -> SqliteStore {
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.ensure_flow("f", "src", "dst").unwrap();
        s
    }

    #[test]
    fn a_live_lease_is_refused_with_its_holder() {
        let mut s = store();
        let a = s.acquire_lease("f", "a", TTL).unwrap();
        assert_eq!(a.token, 1);
        assert!(a.took_over.is_none());
        let Err(StoreError::LeaseHeld(h)) = s.acquire_lease("f", "b", TTL) else {
            panic!("a second holder got the lease");
        };
        assert_eq!((h.owner.as_str(), h.token, h.expired), ("a", 1, false));
    }

    #[test]
    fn released_and_expired_leases_are_taken_with_a_new_token() {
        let mut s = store();
        let a = s.acquire_lease("f", "a", TTL).unwrap();
        s.release_lease(&a).unwrap();
        assert_eq!(s.lease_holder("f").unwrap(), None);
        let b = s.acquire_lease("f", "b", Duration::ZERO).unwrap();
        assert_eq!(b.token, 2);
        assert!(
            b.took_over.is_none(),
            "a released lease has no previous owner"
        );
        // `b` never renews and expires at once: `c` takes over from it.
        let c = s.acquire_lease("f", "c", TTL).unwrap();
        assert_eq!(c.token, 3);
        assert_eq!(c.took_over.map(|h| h.owner), Some("b".into()));
        let Err(StoreError::LeaseLost { now_held_by, .. }) = s.renew_lease(&b, TTL) else {
            panic!("a lease taken over was renewed");
        };
        assert_eq!(now_held_by, "c");
    }

    #[test]
    fn a_store_fenced_out_cannot_write() {
        let mut s = store();
        let _a = s.acquire_lease("f", "a", Duration::ZERO).unwrap();
        // Another holder takes over behind this store's back (same file in
        // real life; here the same connection, with the fence kept).
        let fence = s.fence.clone();
        let _b = s.acquire_lease("f", "b", TTL).unwrap();
        s.fence = fence;
        let err = s.begin_run("f", crate::store::Trigger::Manual).unwrap_err();
        assert!(
            matches!(&err, StoreError::LeaseLost { token: 1, now_held_by, .. } if now_held_by == "b"),
            "{err}"
        );
    }

    #[test]
    fn a_lease_lapses_by_its_holders_record_before_it_expires() {
        let mut s = store();
        assert!(!lapsed(&s), "no lease, nothing lapses");
        let short = s.acquire_lease("f", "a", Duration::ZERO).unwrap();
        assert!(lapsed(&s));
        s.release_lease(&short).unwrap();
        let long = s.acquire_lease("f", "b", TTL).unwrap();
        assert!(!lapsed(&s));
        s.renew_lease(&long, TTL).unwrap();
        assert!(!lapsed(&s));
    }

    #[test]
    fn owner_names_are_unique_per_acquisition() {
        let (a, b) = (owner_name(), owner_name());
        assert_ne!(a, b);
        assert!(a.contains(&format!(":{}:", std::process::id())), "{a}");
    }
}
