//! [`Store`]: the one type the engine uses, over either backend.
//!
//! ## The interface, and why this shape
//!
//! `Store` holds a [`Backend`]: an `enum` of the two stores,
//! [`SqliteStore`] and [`PostgresStore`]. Each backend implements every
//! operation below as an inherent method with the same name and signature,
//! and each `Store` method forwards with [`on!`]: the match has an arm per
//! backend, so a method missing from either (or with another signature)
//! does not compile. That is the contract a trait would state, without what
//! a trait object would cost here: the backends keep their own transaction
//! types and connection handling (`rusqlite` borrows, a `RefCell` around
//! the PostgreSQL client), the engine keeps calling `store.links(flow)`
//! unchanged, and [`crate::store::Heartbeat`] asks the backend for a
//! renewal over its own second connection.
//!
//! A few operations are written once here, from the backends' primitives,
//! so they mean the same on both: a single journal intent is a batch of
//! one ([`Store::journal_batch`]), and a single outcome
//! ([`Store::journal_done`], [`Store::journal_failed`],
//! [`Store::record_link_and_done`]) is a completion of one
//! ([`Store::journal_complete`]), each in one transaction.
//!
//! To add an operation: add it to `sqlite/<topic>.rs` and
//! `postgres/<topic>.rs`, forward it here, and add its test to
//! `host/tests/store_suite.rs`, which runs every test on both backends.

use std::path::Path;
use std::time::Duration;

use muster_core::rows::WrittenRows;
use muster_core::{Link, Step};

use super::lease::{Fence, Renewer};
use super::{
    AlertKind, AuditEntry, AuditRecord, Completion, Durability, HeldPlan, HeldPlanId, InboxEvent,
    InboxId, JournalEntry, JournalId, Lease, LeaseHolder, LeaseWatch, LeftOut, LinkKind, Location,
    Outcome, PersonHistory, PostgresLocation, PostgresStore, Pushed, Resolution, RunCounts,
    RunFailures, RunId, RunProblem, RunRecord, RunStatus, RunSummary, Side, SqliteStore,
    StoreError, StoreMetrics, Trigger,
};

/// The backend a [`Store`] runs on.
#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(SqliteStore),
    Postgres(Box<PostgresStore>),
}

/// muster's state database. See the module documentation of
/// [`crate::store`] (what it remembers and its crash semantics) and of
/// this module (the two backends).
#[derive(Debug)]
pub struct Store {
    backend: Backend,
}

/// Forwards a call to whichever backend the store runs on.
macro_rules! on {
    ($store:expr, $b:ident => $call:expr) => {
        match $store {
            Backend::Sqlite($b) => $call,
            Backend::Postgres($b) => $call,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` with
    /// [`Durability::Normal`], checks its integrity and migrates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with(path, Durability::default())
    }

    /// [`Store::open`] with an explicit durability.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Store, StoreError> {
        Ok(Store::from(SqliteStore::open_with(path, durability)?))
    }

    /// A private in-memory SQLite database, for unit tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Ok(Store::from(SqliteStore::open_in_memory()?))
    }

    /// Connects to a PostgreSQL database and migrates it.
    pub fn open_postgres(location: &PostgresLocation) -> Result<Store, StoreError> {
        Ok(Store::from(PostgresStore::open(location)?))
    }

    /// Opens the store the config names (`tenant.state`).
    pub fn open_location(location: &Location) -> Result<Store, StoreError> {
        match location {
            Location::Sqlite(path) => Store::open(path),
            Location::Postgres(pg) => Store::open_postgres(pg),
        }
    }

    /// The SQLite backend, for what only it has (its file, its journal
    /// mode); `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&SqliteStore> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s),
            Backend::Postgres(_) => None,
        }
    }

    /// The database, for messages: the file, or `user@host:port/name`.
    pub fn database(&self) -> String {
        match &self.backend {
            Backend::Sqlite(s) => s.path().display().to_string(),
            Backend::Postgres(p) => p.database(),
        }
    }

    /// The schema version of the open database (always
    /// [`super::SCHEMA_VERSION`] after a successful open).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        on!(&self.backend, b => b.schema_version())
    }
}

impl From<SqliteStore> for Store {
    fn from(s: SqliteStore) -> Store {
        Store {
            backend: Backend::Sqlite(s),
        }
    }
}

impl From<PostgresStore> for Store {
    fn from(s: PostgresStore) -> Store {
        Store {
            backend: Backend::Postgres(Box::new(s)),
        }
    }
}

/// Flows and links (see `links.rs`).
impl Store {
    /// Records a flow (idempotent). A flow keeps its connections for life:
    /// re-recording it with other ones is [`StoreError::FlowChanged`],
    /// because its links name records of the original systems.
    pub fn ensure_flow(
        &mut self,
        flow: &str,
        source: &str,
        target: &str,
    ) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.ensure_flow(flow, source, target))
    }

    /// Read-only [`Store::ensure_flow`]: `Ok(false)` for a flow never
    /// recorded, [`StoreError::FlowChanged`] for one recorded with other
    /// connections. `plan` uses it, since it records nothing.
    pub fn check_flow(&self, flow: &str, source: &str, target: &str) -> Result<bool, StoreError> {
        on!(&self.backend, b => b.check_flow(flow, source, target))
    }

    /// The person links of a flow (source person id ↔ target account id),
    /// ordered by source id, ready for `muster_core::Input::links`.
    pub fn links(&self, flow: &str) -> Result<Vec<Link>, StoreError> {
        on!(&self.backend, b => b.links_of(flow, LinkKind::Person))
    }

    /// The group links of a flow (source department id ↔ target group id),
    /// for `muster_core::Input::group_links`.
    pub fn group_links(&self, flow: &str) -> Result<Vec<Link>, StoreError> {
        on!(&self.backend, b => b.links_of(flow, LinkKind::Group))
    }

    /// Records a link, committed before returning. Adding the exact same
    /// link again is a no-op; linking a source or a target that is already
    /// linked to something else is an error naming both ids.
    pub fn add_link(
        &mut self,
        flow: &str,
        kind: LinkKind,
        source_id: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.add_link(flow, kind, source_id, target_id))
    }

    /// Removes a link. Only for corrections by an operator (a wrong manual
    /// link): the engine never unlinks, it deactivates.
    pub fn remove_link(
        &mut self,
        flow: &str,
        kind: LinkKind,
        source_id: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.remove_link(flow, kind, source_id, target_id))
    }

    /// The rows `flow` wrote, for [`muster_core::Input::written_rows`].
    pub fn written_rows(&self, flow: &str) -> Result<WrittenRows, StoreError> {
        on!(&self.backend, b => b.written_rows(flow))
    }
}

/// Runs (see `runs.rs`).
impl Store {
    /// Starts a run of `flow` (status `running`), committed. While this
    /// store holds the flow's lease, the run records its fencing token (and
    /// cannot start if the lease was lost).
    pub fn begin_run(&mut self, flow: &str, trigger: Trigger) -> Result<RunId, StoreError> {
        on!(&mut self.backend, b => b.begin_run(flow, trigger))
    }

    /// [`Store::begin_run`] for an undo of run `undone` (trigger
    /// [`Trigger::Undo`], stored as `manual` with `runs.undoes` set).
    pub fn begin_undo_run(&mut self, flow: &str, undone: RunId) -> Result<RunId, StoreError> {
        on!(&mut self.backend, b => b.begin_undo_run(flow, undone))
    }

    /// Finishes a running run with its final status, counters and error.
    pub fn finish_run(
        &mut self,
        run: RunId,
        status: RunStatus,
        counts: &RunCounts,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.finish_run(run, status, counts, error))
    }

    /// Records the problems of a running run (appended after any already
    /// recorded), committed.
    pub fn add_run_problems(
        &mut self,
        run: RunId,
        problems: &[RunProblem],
    ) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.add_run_problems(run, problems))
    }

    /// Records the run's notes: one line per record it skipped or reported a
    /// conflict for, with why (the data problems are in `run_problems`).
    pub fn set_run_notes(&mut self, run: RunId, notes: &[String]) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.set_run_notes(run, notes))
    }

    /// Runs of `flow` still `running`. Read by the holder of the flow's
    /// lease, these belong to owners that died (or were fenced out): the
    /// engine marks them `aborted`. Read without the lease, some may be live.
    pub fn unfinished_runs(&self, flow: &str) -> Result<Vec<RunId>, StoreError> {
        on!(&self.backend, b => b.unfinished_runs(flow))
    }

    /// The last `limit` runs of `flow`, newest first, each with its journal.
    pub fn history(&self, flow: &str, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        on!(&self.backend, b => b.history(flow, limit))
    }

    /// One run, by id, with its journal and problems (the status page's run
    /// view). [`StoreError::UnknownRun`] if there is no such run.
    pub fn run_summary(&self, run: RunId) -> Result<RunSummary, StoreError> {
        on!(&self.backend, b => b.run_summary(run))
    }

    /// One run's row, whatever its flow: [`StoreError::UnknownRun`] when
    /// there is none.
    pub fn run_record(&self, run: RunId) -> Result<RunRecord, StoreError> {
        on!(&self.backend, b => b.run_record(run))
    }

    /// A run's journal, in step order (every state).
    pub fn run_journal(&self, run: RunId) -> Result<Vec<JournalEntry>, StoreError> {
        on!(&self.backend, b => b.run_journal(run))
    }

    /// Records what a running run left out (appended after any already
    /// recorded), committed. See `left_out.rs`.
    pub fn add_run_left_out(&mut self, run: RunId, rows: &[LeftOut]) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.add_run_left_out(run, rows))
    }

    /// What `run` left out, in plan order.
    pub fn run_left_out(&self, run: RunId) -> Result<Vec<LeftOut>, StoreError> {
        on!(&self.backend, b => b.run_left_out(run))
    }
}

/// What the status page reads across runs: the person search (see
/// `search.rs`) and the totals `/metrics` exposes (see `metrics.rs`).
impl Store {
    /// The history of the people `query` names (by name, email, or source
    /// or target id), newest run first, at most `limit` events. An empty
    /// query finds nothing.
    pub fn search_people(&self, query: &str, limit: usize) -> Result<PersonHistory, StoreError> {
        on!(&self.backend, b => b.search_people(query, limit))
    }

    /// The aggregates `/metrics` exposes.
    pub fn metrics(&self) -> Result<StoreMetrics, StoreError> {
        on!(&self.backend, b => b.metrics())
    }
}

/// What `muster serve`'s alerts read and remember (see `alerts.rs`).
impl Store {
    /// The last `runs` full runs of `flow` that got as far as an outcome
    /// (triggered by a schedule or by hand, ended `done` or `failed`; undo
    /// runs left out), newest first, each with its record failures in the
    /// order reported.
    pub fn recent_record_failures(
        &self,
        flow: &str,
        runs: usize,
    ) -> Result<Vec<RunFailures>, StoreError> {
        on!(&self.backend, b => b.recent_record_failures(flow, runs))
    }

    /// The error `run` ended with, if any.
    pub fn run_error(&self, run: RunId) -> Result<Option<String>, StoreError> {
        on!(&self.backend, b => b.run_error(run))
    }

    /// Remembers that the alert `kind`/`key` of `flow` is being sent, and
    /// says whether it is new: `false` means it was sent before (by this
    /// process or an earlier one) and must not be sent again.
    pub fn alert_once(
        &mut self,
        flow: &str,
        kind: AlertKind,
        key: &str,
    ) -> Result<bool, StoreError> {
        on!(&mut self.backend, b => b.alert_once(flow, kind, key))
    }
}

/// The journal (see `journal.rs` and the crash semantics in [`crate::store`]).
impl Store {
    /// Journals the intent to apply `step` as the `seq`-th action of `run`,
    /// committed before returning: call it **before** calling the target.
    pub fn journal_intent(
        &mut self,
        run: RunId,
        seq: u32,
        step: &Step,
    ) -> Result<JournalId, StoreError> {
        self.journal_next(None, run, seq, step)
    }

    /// Records the outcome of the previous call (with its link and audit
    /// entry) **and** the intent of the next one in one transaction: see
    /// [`Store::journal_batch`], of which this is the one-intent case.
    pub fn journal_next(
        &mut self,
        previous: Option<&Completion<'_>>,
        run: RunId,
        seq: u32,
        step: &Step,
    ) -> Result<JournalId, StoreError> {
        let previous = previous.map(std::slice::from_ref).unwrap_or_default();
        let ids = self.journal_batch(previous, run, &[(seq, step)])?;
        ids.into_iter()
            .next()
            .ok_or_else(|| StoreError::UnknownRun(run))
    }

    /// Group commit: records the outcomes of the calls made since the last
    /// commit (with their links and audit entries) and the intents of the
    /// next calls, in **one** transaction, and returns the new entries' ids
    /// in order.
    ///
    /// The journal's promise holds for every call: its intent is committed
    /// before it is made, and its outcome after. What batching changes is
    /// only *how many* intents a crash can leave open (at most one batch),
    /// and those are exactly what recovery settles from a fresh read of the
    /// target. A commit per call instead costs ~180 µs on this machine's
    /// disk — more than a loopback call itself (see
    /// `benches/journal_overhead.rs`).
    pub fn journal_batch(
        &mut self,
        previous: &[Completion<'_>],
        run: RunId,
        next: &[(u32, &Step)],
    ) -> Result<Vec<JournalId>, StoreError> {
        on!(&mut self.backend, b => b.journal_batch(previous, run, next))
    }

    /// Records calls' outcomes, links and audit entries in one transaction
    /// (the last calls of a run, whose outcomes no next intent carries).
    pub fn journal_complete(&mut self, done: &[Completion<'_>]) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        on!(&mut self.backend, b => b.journal_complete(done))
    }

    /// The call succeeded; `target_id` is the id it produced or touched.
    pub fn journal_done(
        &mut self,
        id: JournalId,
        target_id: Option<&str>,
    ) -> Result<(), StoreError> {
        self.journal_complete(&[Completion {
            id,
            outcome: Outcome::Done { target_id },
            audit: None,
        }])
    }

    /// The call failed with `error` (per-record isolation: the run goes on).
    pub fn journal_failed(&mut self, id: JournalId, error: &str) -> Result<(), StoreError> {
        self.journal_complete(&[Completion {
            id,
            outcome: Outcome::Failed { error },
            audit: None,
        }])
    }

    /// A create (or link) succeeded: stores the link and marks the entry done
    /// in **one** transaction, so the outcome and the link are never
    /// separated. If the link conflicts, nothing is written and the entry
    /// stays `intent`. Also what recovery calls when it finds the account a
    /// dead run created.
    pub fn record_link_and_done(
        &mut self,
        id: JournalId,
        kind: LinkKind,
        source_id: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        self.journal_complete(&[Completion {
            id,
            outcome: Outcome::Linked {
                kind,
                source_id,
                target_id,
            },
            audit: None,
        }])
    }

    /// Intents of `flow` with no outcome: left by a run that died between
    /// [`Store::journal_intent`] and its outcome. The engine resolves them
    /// before planning. Oldest first.
    pub fn unresolved_journal(&self, flow: &str) -> Result<Vec<JournalEntry>, StoreError> {
        on!(&self.backend, b => b.unresolved_journal(flow))
    }

    /// Records how recovery resolved an intent.
    pub fn resolve_journal(
        &mut self,
        id: JournalId,
        outcome: &Resolution,
    ) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.resolve_journal(id, outcome))
    }

    /// One journal entry.
    pub fn journal_entry(&self, id: JournalId) -> Result<JournalEntry, StoreError> {
        on!(&self.backend, b => b.journal_entry(id))
    }
}

/// Leases (see [`crate::store::lease`] for the rules).
impl Store {
    /// Takes `flow`'s lease for `owner` for `ttl` (rule 1), and fences this
    /// store's writes with it until [`Store::release_lease`].
    pub fn acquire_lease(
        &mut self,
        flow: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        on!(&mut self.backend, b => b.acquire_lease(flow, owner, ttl))
    }

    /// Extends a held lease by `ttl` from now (rule 2).
    pub fn renew_lease(&mut self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.renew_lease(lease, ttl))
    }

    /// Gives the lease back (rule 4) and lifts the fence. Releasing a lease
    /// that was taken over is [`StoreError::LeaseLost`].
    pub fn release_lease(&mut self, lease: &Lease) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.release_lease(lease))
    }

    /// The current (or lapsed, not released) holder of `flow`'s lease.
    /// `None` when the flow is free or was never recorded.
    pub fn lease_holder(&self, flow: &str) -> Result<Option<LeaseHolder>, StoreError> {
        on!(&self.backend, b => b.lease_holder(flow))
    }

    /// Rule 6: whether this store's lease is (about to be) lapsed by its own
    /// record — under a third of the time-to-live left since the last
    /// successful renewal. `false` when it holds no lease.
    pub fn lease_lapsed(&self) -> bool {
        self.fence().is_some_and(Fence::lapsed)
    }

    /// Rule 6 for threads that cannot borrow the store (the engine's
    /// calls in flight): a handle that answers [`Store::lease_lapsed`] as of
    /// the moment it is asked, following the heartbeat. No SQL: it reads the
    /// renewal time the heartbeat records.
    pub fn lease_watch(&self) -> LeaseWatch {
        LeaseWatch(self.fence().cloned())
    }

    /// The fence of the lease this store holds, if any.
    pub(crate) fn fence(&self) -> Option<&Fence> {
        on!(&self.backend, b => b.fence())
    }

    /// The heartbeat's renewal of `lease` over its own connection; `None`
    /// when nobody else can reach the database (SQLite in memory).
    pub(crate) fn renewer(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Option<Renewer>, StoreError> {
        on!(&self.backend, b => b.renewer(lease, ttl))
    }
}

/// Watermarks, held plans and the audit log (see `state.rs`).
impl Store {
    /// A watermark of `flow` (e.g. the source's last `modifiedAt`), if set.
    pub fn watermark(
        &self,
        flow: &str,
        side: Side,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        on!(&self.backend, b => b.watermark(flow, side, key))
    }

    /// Sets a watermark, committed. Set it only after the data it covers
    /// has been applied, so a crash re-reads rather than skips.
    pub fn set_watermark(
        &mut self,
        flow: &str,
        side: Side,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.set_watermark(flow, side, key, value))
    }

    /// Stores a plan the guard held for `run`. A flow has at most one plan
    /// awaiting approval: an older pending one is superseded (a fresher
    /// plan describes the systems as they are now).
    pub fn hold_plan(
        &mut self,
        flow: &str,
        run: RunId,
        steps: &[Step],
        snapshot_digest: &str,
        breaches: &str,
    ) -> Result<HeldPlanId, StoreError> {
        on!(&mut self.backend, b => b.hold_plan(flow, run, steps, snapshot_digest, breaches))
    }

    /// The plan of `flow` awaiting approval, if any.
    pub fn held_plan(&self, flow: &str) -> Result<Option<HeldPlan>, StoreError> {
        on!(&self.backend, b => b.held_plan(flow))
    }

    /// Held plan `id` of `flow` whatever became of it (pending, approved,
    /// rejected or superseded: see [`HeldPlan::state`]), so a page reviewed
    /// earlier can say what happened to it. `None` if `flow` has no such
    /// plan.
    pub fn held_plan_by_id(
        &self,
        flow: &str,
        id: HeldPlanId,
    ) -> Result<Option<HeldPlan>, StoreError> {
        on!(&self.backend, b => b.held_plan_by_id(flow, id))
    }

    /// Rejects held plan `id` of `flow` if it is still pending: it is
    /// retired (never applied) and the rejection is audited with `who`, in
    /// one transaction. [`StoreError::NoHeldPlan`] if it is not pending any
    /// more (approved, rejected or superseded meanwhile). The guard holds
    /// the next run's plan again if it still breaches a threshold.
    pub fn reject_held(
        &mut self,
        flow: &str,
        id: HeldPlanId,
        who: &str,
    ) -> Result<HeldPlan, StoreError> {
        on!(&mut self.backend, b => b.reject_held(flow, id, who))
    }

    /// Retires the pending held plan of `flow`, if any: a later plan was
    /// applied (not held), so the held one no longer describes what is left
    /// to do. Returns whether there was one.
    pub fn supersede_held(&mut self, flow: &str) -> Result<bool, StoreError> {
        on!(&mut self.backend, b => b.supersede_held(flow))
    }

    /// Approves the pending held plan of `flow` and returns it (with its
    /// approval), committed together with an audit entry. The engine then
    /// applies exactly these steps in a new run, after checking the
    /// snapshot digest is still current.
    pub fn approve_held(&mut self, flow: &str, approved_by: &str) -> Result<HeldPlan, StoreError> {
        on!(&mut self.backend, b => b.approve_held(flow, approved_by))
    }

    /// Writes an audit entry (redacted, see [`super::state::redact`]),
    /// committed.
    pub fn audit(&mut self, entry: &AuditEntry<'_>) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.audit(entry))
    }

    /// The last `limit` audit entries of `flow`, newest first.
    pub fn audit_log(&self, flow: &str, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        on!(&self.backend, b => b.audit_log(flow, limit))
    }
}

/// The webhook inbox (see [`crate::store::inbox`] for the protocol).
impl Store {
    /// Stores an event for `flow`, committed before it returns. With a
    /// `delivery_id`, a second push of the same id stores nothing and
    /// returns [`Pushed::Duplicate`] with the first event's id.
    pub fn inbox_push(
        &mut self,
        flow: &str,
        delivery_id: Option<&str>,
        record_id: Option<&str>,
        payload: &str,
    ) -> Result<Pushed, StoreError> {
        on!(&mut self.backend, b => b.inbox_push(flow, delivery_id, record_id, payload))
    }

    /// One event.
    pub fn inbox_event(&self, id: InboxId) -> Result<InboxEvent, StoreError> {
        on!(&self.backend, b => b.inbox_event(id))
    }

    /// The `pending` events of `flow`, oldest first: what is still to be
    /// processed or retried.
    pub fn inbox_pending(&self, flow: &str) -> Result<Vec<InboxEvent>, StoreError> {
        on!(&self.backend, b => b.inbox_pending(flow))
    }

    /// The last `limit` events of `flow` in any state, newest first.
    pub fn inbox_recent(&self, flow: &str, limit: usize) -> Result<Vec<InboxEvent>, StoreError> {
        on!(&self.backend, b => b.inbox_recent(flow, limit))
    }

    /// A run processed the event: `done`, with the run.
    pub fn inbox_done(&mut self, id: InboxId, run: Option<RunId>) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.inbox_done(id, run))
    }

    /// A run tried and failed: the event stays `pending` (to be retried),
    /// with one more attempt, the run (if one started) and the error.
    pub fn inbox_failed(
        &mut self,
        id: InboxId,
        run: Option<RunId>,
        error: &str,
    ) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.inbox_failed(id, run, error))
    }

    /// No run can ever process the event: `rejected`, with the reason. It
    /// stays in the inbox for inspection and is not retried.
    pub fn inbox_reject(&mut self, id: InboxId, reason: &str) -> Result<(), StoreError> {
        on!(&mut self.backend, b => b.inbox_reject(id, reason))
    }
}
