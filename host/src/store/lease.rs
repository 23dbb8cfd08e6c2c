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
//! Times are the acquiring process's clock in the SQLite store: on one
//! file every process shares one host clock. The PostgreSQL store takes
//! them from the server's clock (`clock_timestamp()`), so that workers'
//! clocks do not matter. Rule 6 is the exception in both: it is the
//! holder's *own* record, so it is kept on the holder's clock.
//!
//! This module holds what both backends share (the types, the fence a
//! store carries, the heartbeat thread); the SQL is in `sqlite/lease.rs`
//! and `postgres/lease.rs`.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Store, StoreError, time};

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
    pub(crate) flow_id: i64,
    pub(crate) flow: String,
    pub(crate) token: i64,
    /// Until when (unix ms) the last successful renewal holds the lease;
    /// the heartbeat thread moves it forward.
    pub(crate) valid_until: Arc<AtomicI64>,
    /// A third of the time-to-live: the margin of rule 6.
    pub(crate) margin_ms: i64,
}

impl Fence {
    /// The fence of a lease just taken with `token` for `ttl`, valid from
    /// `now` (unix ms on this process's clock).
    pub(crate) fn new(flow_id: i64, flow: &str, token: i64, now: i64, ttl: Duration) -> Fence {
        Fence {
            flow_id,
            flow: flow.into(),
            token,
            valid_until: Arc::new(AtomicI64::new(now.saturating_add(ttl_ms(ttl)))),
            margin_ms: ttl_ms(ttl) / 3,
        }
    }

    /// Rule 6: under a third of the time-to-live left since the last
    /// successful renewal.
    pub(crate) fn lapsed(&self) -> bool {
        now_ms()
            >= self
                .valid_until
                .load(Ordering::SeqCst)
                .saturating_sub(self.margin_ms)
    }
}

/// [`Store::lease_watch`]: whether the store's lease is (about to be)
/// lapsed, from any thread. Holds no lease when the store held none. It
/// shares the fence's renewal time, which the heartbeat moves forward.
#[derive(Debug, Clone)]
pub struct LeaseWatch(pub(crate) Option<Fence>);

impl LeaseWatch {
    /// [`Store::lease_lapsed`], now.
    pub fn lapsed(&self) -> bool {
        self.0.as_ref().is_some_and(Fence::lapsed)
    }
}

/// One renewal of a lease (rule 2), from the heartbeat thread's own
/// connection: returns until when (unix ms, this process's clock) the
/// lease now holds, or [`StoreError::LeaseLost`].
pub(crate) type Renewer = Box<dyn FnMut() -> Result<i64, StoreError> + Send>;

/// A lease row as both backends read it: fence, owner, acquired,
/// heartbeat and expiry (unix ms).
pub(crate) type LeaseRow = (i64, Option<String>, i64, i64, i64);

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

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

/// The holder a lease row names (`None` once released), expired or not
/// at `now` (unix ms, the clock the row was written with).
pub(crate) fn holder(flow: &str, row: LeaseRow, now: i64) -> Option<LeaseHolder> {
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
    /// Starts renewing `lease`, which `store` holds, from a second
    /// connection to `store`'s database (see each backend's `renewer`). A
    /// private in-memory database (`:memory:`) cannot be shared with another
    /// connection, nor with another process: there is nothing to renew
    /// against, so no thread is started.
    pub fn start(store: &Store, lease: &Lease, ttl: Duration) -> Result<Heartbeat, StoreError> {
        let idle = Heartbeat {
            stop: None,
            thread: None,
        };
        let Some(fence) = store.fence().filter(|f| f.token == lease.token) else {
            return Ok(idle);
        };
        let Some(mut renew) = store.renewer(lease, ttl)? else {
            // No other process can take it over: it never lapses.
            fence.valid_until.store(i64::MAX, Ordering::SeqCst);
            return Ok(idle);
        };
        let valid_until = Arc::clone(&fence.valid_until);
        let (tx, rx) = mpsc::channel();
        let flow = lease.flow.clone();
        let name = flow.clone();
        let every = (ttl / 3).max(Duration::from_millis(10));
        let thread = std::thread::Builder::new()
            .name(format!("lease-{flow}"))
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    match renew() {
                        Ok(until) => valid_until.store(until, Ordering::SeqCst),
                        Err(e @ StoreError::LeaseLost { .. }) => {
                            tracing::warn!(flow = %name, "lease heartbeat: {e}");
                            return;
                        }
                        Err(e) => tracing::warn!(flow = %name, "lease heartbeat: {e}"),
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
