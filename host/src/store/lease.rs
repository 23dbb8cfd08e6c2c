//! Flow leases: one run per flow at a time, across processes (and, later,
//! machines).
//!
//! ## The row
//!
//! `leases` holds at most one row per flow (`flow_id` is its key):
//!
//! | column         | meaning                                                        |
//! |----------------|----------------------------------------------------------------|
//! | `fence`        | fencing token: +1 on **every** acquisition, never reused       |
//! | `owner`        | `host:pid:nonce` of the holder; `NULL` once released           |
//! | `acquired_ms`  | when the holder took it (unix ms)                              |
//! | `heartbeat_ms` | the holder's last renewal (unix ms)                            |
//! | `expires_ms`   | after this instant anyone may take the lease over (unix ms)    |
//!
//! `runs.lease_fence` records the fencing token a run was made under. (No
//! column is called `token`: the schema test reserves such names for
//! secrets, which the store never holds.)
//!
//! ## The rules (portable: the PostgreSQL store keeps the same meanings)
//!
//! 1. **Acquire** atomically — SQLite: one `BEGIN IMMEDIATE` transaction;
//!    PostgreSQL: `SELECT … FOR UPDATE` (or `SKIP LOCKED` to pick work) on the
//!    flow's row. The lease is free when there is no row, `owner` is `NULL`
//!    (released), or `expires_ms <= now`; taking it sets the owner and times
//!    and increments `fence`. Otherwise [`StoreError::LeaseHeld`] names the
//!    holder and since when: a live holder's run is never touched.
//! 2. **Renew** (heartbeat): `UPDATE … SET heartbeat_ms, expires_ms WHERE
//!    flow_id = ? AND fence = ?`. Zero rows means the lease was taken over:
//!    [`StoreError::LeaseLost`]. [`Heartbeat`] renews from its own thread and
//!    connection every third of the time-to-live, so a run that spends
//!    minutes *reading* (no journal commits at all) keeps its lease;
//!    heartbeats at journal commits alone would let it lapse.
//! 3. **Fence**: once a [`Store`] holds a lease, every write transaction it
//!    opens (journal batches, links, runs, recovery, held plans) first checks
//!    that the flow's `fence` is still its own, *inside* that transaction.
//!    A process that lost its lease (it stalled past the expiry and another
//!    took over) can therefore write nothing more: its next commit fails
//!    with [`StoreError::LeaseLost`]. An expired lease nobody has taken over
//!    still fences correctly, since only an acquisition changes the fence.
//! 4. **Release** at the end of the run: `owner = NULL`, the fence stays (the
//!    next acquisition increments it).
//! 5. **Take-over**: only the holder of the lease runs recovery, so runs left
//!    `running` and journal intents left open belong to an owner that died
//!    (or was fenced out), and may be settled.
//! 6. **Act only while valid**: the fence stops a fenced-out run's *writes*,
//!    not its calls to the target. So before each call the applier asks
//!    [`Store::lease_lapsed`]: the holder's own record of how long its last
//!    successful renewal is good for. When less than a third of the
//!    time-to-live is left (two heartbeats missed — the process was
//!    suspended, or the database unreachable), the run stops calling. A
//!    process frozen *between* that check and the call can still send one
//!    call after losing the lease — one per call in flight (each worker
//!    checks before each of its calls, so at most `max_in_flight`): only the
//!    target could refuse it (by checking the fence), which vendor APIs do
//!    not offer.
//!
//! Times are the acquiring process's clock. On one SQLite file every process
//! shares one host clock; the PostgreSQL store should use the server's
//! `now()` so that workers' clocks do not matter.

use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use super::{BUSY_TIMEOUT, Context, Store, StoreError, time};

/// Who holds (or held) a flow's lease, as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub flow: String,
    /// `host:pid:nonce`.
    pub owner: String,
    pub token: i64,
    /// When the holder acquired it (RFC 3339 UTC).
    pub since: String,
    /// Its last heartbeat (RFC 3339 UTC).
    pub heartbeat: String,
    /// When it lapses unless renewed (RFC 3339 UTC).
    pub expires: String,
    /// Whether it had lapsed when read.
    pub expired: bool,
}

/// A lease this process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub flow: String,
    pub owner: String,
    /// The fencing token: every write of the run checks it.
    pub token: i64,
    /// The previous holder whose lease had expired without release: a
    /// process that died (its run and journal are for recovery to settle).
    pub took_over: Option<LeaseHolder>,
}

/// The fence a [`Store`] checks in each write transaction while it holds a
/// lease.
#[derive(Debug, Clone)]
pub(crate) struct Fence {
    flow_id: i64,
    flow: String,
    token: i64,
    /// Until when (unix ms) the last successful renewal holds the lease;
    /// the heartbeat thread moves it forward.
    valid_until: Arc<AtomicI64>,
    /// A third of the time-to-live: the margin of rule 6.
    margin_ms: i64,
}

/// [`Store::lease_watch`]: whether the store's lease is (about to be)
/// lapsed, from any thread. Holds no lease when the store held none.
#[derive(Debug, Clone)]
pub struct LeaseWatch(Option<(Arc<AtomicI64>, i64)>);

impl LeaseWatch {
    /// [`Store::lease_lapsed`], now.
    pub fn lapsed(&self) -> bool {
        self.0.as_ref().is_some_and(|(valid_until, margin_ms)| {
            now_ms()
                >= valid_until
                    .load(Ordering::SeqCst)
                    .saturating_sub(*margin_ms)
        })
    }
}

/// This process's owner name: `host:pid:nonce`. The nonce tells apart two
/// acquisitions by the same process, and pids reused after a reboot.
pub fn owner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    // std's RandomState is seeded from the OS's random source.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(now_ms() as u128 ^ u128::from(std::process::id()));
    format!("{host}:{}:{:08x}", std::process::id(), h.finish() as u32)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

type Row = (i64, Option<String>, i64, i64, i64);

fn read_row(conn: &Connection, flow_id: i64, flow: &str) -> Result<Option<Row>, StoreError> {
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

fn holder(flow: &str, row: Row, now: i64) -> Option<LeaseHolder> {
    let (token, owner, acquired, heartbeat, expires) = row;
    Some(LeaseHolder {
        flow: flow.into(),
        owner: owner?,
        token,
        since: time::format_unix_millis(acquired),
        heartbeat: time::format_unix_millis(heartbeat),
        expires: time::format_unix_millis(expires),
        expired: expires <= now,
    })
}

impl Store {
    /// Takes `flow`'s lease for `owner` for `ttl` (rule 1 of the module
    /// doc), and fences this store's writes with it until
    /// [`Store::release_lease`].
    pub fn acquire_lease(
        &mut self,
        flow: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let flow_id = Store::flow_id(&self.conn, flow)?;
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
        self.fence = Some(Fence {
            flow_id,
            flow: flow.into(),
            token,
            valid_until: Arc::new(AtomicI64::new(now.saturating_add(ttl_ms(ttl)))),
            margin_ms: ttl_ms(ttl) / 3,
        });
        Ok(Lease {
            flow: flow.into(),
            owner: owner.into(),
            token,
            took_over: previous,
        })
    }

    /// Extends a held lease by `ttl` from now (rule 2).
    pub fn renew_lease(&mut self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        let flow_id = Store::flow_id(&self.conn, &lease.flow)?;
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
        let flow_id = Store::flow_id(&self.conn, &lease.flow)?;
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
        let flow_id = match Store::flow_id(&self.conn, flow) {
            Ok(id) => id,
            Err(StoreError::UnknownFlow(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let row = read_row(&self.conn, flow_id, flow)?;
        Ok(row.and_then(|r| holder(flow, r, now_ms())))
    }

    /// Rule 6: whether this store's lease is (about to be) lapsed by its own
    /// record — under a third of the time-to-live left since the last
    /// successful renewal. `false` when it holds no lease.
    pub fn lease_lapsed(&self) -> bool {
        self.fence.as_ref().is_some_and(|f| {
            now_ms()
                >= f.valid_until
                    .load(Ordering::SeqCst)
                    .saturating_sub(f.margin_ms)
        })
    }

    /// Rule 6 for threads that cannot borrow the store (the engine's
    /// calls in flight): a handle that answers [`Store::lease_lapsed`] as of
    /// the moment it is asked, following the heartbeat. No SQL: it reads the
    /// renewal time the heartbeat records.
    pub fn lease_watch(&self) -> LeaseWatch {
        LeaseWatch(
            self.fence
                .as_ref()
                .map(|f| (Arc::clone(&f.valid_until), f.margin_ms)),
        )
    }

    /// The fencing token of the lease this store holds, if any.
    pub(crate) fn fence_token(&self) -> Option<i64> {
        self.fence.as_ref().map(|f| f.token)
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

/// Renews a lease from its own thread and database connection every third
/// of `ttl`, until stopped (or dropped). A renewal that finds the lease
/// taken over stops the thread with a warning: the run's own writes are
/// fenced and fail at their next commit.
#[derive(Debug)]
pub struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts renewing `lease`, which `store` holds, in `store`'s database
    /// file. A private in-memory database (`:memory:`) cannot be shared with
    /// another connection, nor with another process: there is nothing to
    /// renew against, so no thread is started.
    pub fn start(store: &Store, lease: &Lease, ttl: Duration) -> Result<Heartbeat, StoreError> {
        let path = store.path();
        let idle = Heartbeat {
            stop: None,
            thread: None,
        };
        let Some(fence) = store.fence.as_ref().filter(|f| f.token == lease.token) else {
            return Ok(idle);
        };
        if path == Path::new(":memory:") {
            // No other process can take it over: it never lapses.
            fence.valid_until.store(i64::MAX, Ordering::SeqCst);
            return Ok(idle);
        }
        let valid_until = Arc::clone(&fence.valid_until);
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .context(|| format!("flow `{}`: heartbeat connection", lease.flow))?;
        let flow_id = Store::flow_id(&conn, &lease.flow)?;
        let (tx, rx) = mpsc::channel();
        let flow = lease.flow.clone();
        let lease = lease.clone();
        let every = (ttl / 3).max(Duration::from_millis(10));
        let thread = std::thread::Builder::new()
            .name(format!("lease-{flow}"))
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    match renew(&conn, flow_id, &lease, ttl) {
                        Ok(until) => valid_until.store(until, Ordering::SeqCst),
                        Err(e @ StoreError::LeaseLost { .. }) => {
                            tracing::warn!(flow = %lease.flow, "lease heartbeat: {e}");
                            return;
                        }
                        Err(e) => tracing::warn!(flow = %lease.flow, "lease heartbeat: {e}"),
                    }
                }
            })
            .map_err(|source| StoreError::Heartbeat { flow, source })?;
        Ok(Heartbeat {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stops renewing and waits for the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    fn store() -> Store {
        let mut s = Store::open_in_memory().unwrap();
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
        assert!(!s.lease_lapsed(), "no lease, nothing lapses");
        let short = s.acquire_lease("f", "a", Duration::ZERO).unwrap();
        assert!(s.lease_lapsed());
        s.release_lease(&short).unwrap();
        let long = s.acquire_lease("f", "b", TTL).unwrap();
        assert!(!s.lease_lapsed());
        s.renew_lease(&long, TTL).unwrap();
        assert!(!s.lease_lapsed());
    }

    #[test]
    fn owner_names_are_unique_per_acquisition() {
        let (a, b) = (owner_name(), owner_name());
        assert_ne!(a, b);
        assert!(a.contains(&format!(":{}:", std::process::id())), "{a}");
    }
}
