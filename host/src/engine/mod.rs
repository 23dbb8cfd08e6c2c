//! # The engine: one flow, from reads to a remembered outcome
//!
//! A run of a flow goes through fixed stages, each of which can stop it
//! safely:
//!
//! 0. **Lease** (sync and apply only): the run takes the flow's lease
//!    ([`crate::store::lease`]) before anything else, keeps it alive with a
//!    heartbeat thread, and gives it back at the end. A flow whose lease a
//!    live owner holds is refused with [`EngineError::Busy`] (after waiting
//!    up to [`LeaseSettings::wait`]): two runs of one flow never overlap.
//! 1. **Read** both sides completely through their plugins ([`snapshot`],
//!    through [`crate::runtime::connector`], which converts every record
//!    once). Each page is converted, mapped (source) and hashed for the plan
//!    as it arrives, on a worker thread while the plugin reads the next one
//!    (`engine/prepared.rs`): the hashing overlaps the network. A failed or
//!    truncated read fails the run before anything is planned: an
//!    incomplete source must never look like a wave of leavers.
//!    A *record* with a value that cannot be taken does not fail the read:
//!    it is reported and held (below).
//! 2. **Recover** ([`recover`], sync and apply only, under the lease):
//!    journal entries a dead run left without an outcome are decided from
//!    the fresh target read (a create that did reach the target is found by
//!    its correlation key and linked), and runs left `running` are marked
//!    aborted. Nothing is created twice.
//! 3. **Map and plan**: the flow's mapping turns source people into the
//!    target's vocabulary (a record that cannot be mapped, like one read
//!    with a bad value, is reported by id and field and handed to the core
//!    as *held*
//!    ([`muster_core::Side::held`]): its account is left exactly as it is,
//!    and the plan says why); links come from the store;
//!    `muster_core::plan` decides.
//! 4. **Guard**: a plan over a threshold is *held* — stored with the digest
//!    of what it was made from, the run ends with [`Outcome::Held`] (exit code
//!    3) — until `sync --approve-held` applies it, provided the data has not
//!    moved since.
//! 5. **Apply** ([`apply`]): in plan order, each call journaled (intent
//!    before, outcome after), one failing record never stopping the others.
//!
//! A run can be undone ([`undo`]): the core plans the inverse of what its
//! journal says it did, and that plan is guarded, applied and journaled as
//! a run of its own (trigger `undo`).
//!
//! A plan can also be written to a file ([`PlanFile`]) for review and applied
//! later; applying re-reads both sides and refuses a plan whose inputs
//! changed.
//!
//! **`plan` changes nothing**: it takes no lease, records no flow, run,
//! held plan or journal outcome, and runs no recovery (a live sync's
//! in-flight calls are not a dead run's). It plans from the links as they
//! are, and reports calls whose outcome is not recorded yet
//! ([`RunReport::unsettled`]): the next sync settles them first.
//!
//! The engine holds no business rule: every decision about *what* to do is
//! the core's; this module only moves data and keeps the books.

pub mod apply;
mod group_views;
mod inflight;
mod members;
mod prepared;
pub mod recover;
mod single;
pub mod snapshot;
pub mod undo;
pub mod watermark;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use muster_core::{ActionKind, Date, Link, Mapping, Policy, Step};
use serde::{Deserialize, Serialize};

pub use crate::runtime::connector::Problem;
pub use apply::{Applied, Failure, Selection};
pub use recover::Recovered;
pub use snapshot::{Digest, Snapshot};
pub use undo::{UndoError, UndoMode, UndoRequest};

use crate::runtime::connector::Side;
use crate::runtime::{Capability, PluginError, PluginInstance};
use crate::store::{
    Heartbeat, Lease, LeaseHolder, RunCounts, RunId, RunProblem, RunStatus, Store, StoreError,
    Trigger, lease,
};

/// Why a run could not be carried out. Per-record failures are not errors:
/// they are in [`RunReport::applied`].
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A read failed: nothing was planned or applied.
    #[error(
        "reading the {side} (connection `{connection}`) failed, so nothing was planned: {source}"
    )]
    Read {
        side: &'static str,
        connection: String,
        #[source]
        source: PluginError,
    },
    #[error("flow `{flow}`: no plan could be made: {reason}")]
    Plan { flow: String, reason: String },
    /// A plan file made from data that has changed since.
    #[error(
        "the plan in {file} is stale: the source, the target or the links changed since it was made \
         (digest {planned}, now {now}); make a new plan with `muster plan --out`"
    )]
    StalePlan {
        file: String,
        planned: String,
        now: String,
    },
    /// Same data, different plan: the flow's configuration changed.
    #[error(
        "the plan in {file} no longer matches what flow `{flow}` would do with the same data \
         (its configuration changed?); make a new plan with `muster plan --out`"
    )]
    PlanMismatch { file: String, flow: String },
    #[error("the plan file {file} is for flow `{found}`, not `{expected}`")]
    WrongFlow {
        file: String,
        found: String,
        expected: String,
    },
    #[error("source record `{0}` is not in the source (a single-record run needs its id there)")]
    UnknownRecord(String),
    /// Another live owner runs the flow; nothing was done.
    #[error(
        "flow `{}` is busy: {} has been running it since {} (its lease expires {} unless renewed); \
         nothing was done{}; run it again later, or wait for it with `--wait SECONDS`",
        .holder.flow, .holder.owner, .holder.since, .holder.expires, waited_text(.waited)
    )]
    Busy {
        holder: Box<LeaseHolder>,
        /// How long this run waited for the lease.
        waited: Duration,
    },
    /// The run given to `muster undo` cannot be undone.
    #[error(transparent)]
    Undo(#[from] UndoError),
    #[error(
        "{variable}={value:?} is not a lease time-to-live: give a number of seconds greater than 0 (e.g. 60 or 0.5)"
    )]
    LeaseTtl {
        variable: &'static str,
        value: String,
    },
}

fn waited_text(waited: &Duration) -> String {
    if waited.is_zero() {
        String::new()
    } else {
        format!(" after waiting {:.1}s", waited.as_secs_f64())
    }
}

/// How a sync or apply takes its flow's lease.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeaseSettings {
    /// How long the lease lasts without a heartbeat: the longest a dead
    /// run's owner keeps its flow from others. Renewed every third of it.
    pub ttl: Duration,
    /// How long to wait for a busy flow before giving up with
    /// [`EngineError::Busy`] (zero: do not wait).
    pub wait: Duration,
}

/// The lease time-to-live unless [`LEASE_TTL_VAR`] says otherwise.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(60);
/// The environment variable that overrides the lease time-to-live, in
/// seconds (decimals allowed).
pub const LEASE_TTL_VAR: &str = "MUSTER_LEASE_TTL";
/// How often a waiting run tries the lease again.
const LEASE_POLL: Duration = Duration::from_millis(200);

impl Default for LeaseSettings {
    fn default() -> LeaseSettings {
        LeaseSettings {
            ttl: DEFAULT_LEASE_TTL,
            wait: Duration::ZERO,
        }
    }
}

impl LeaseSettings {
    /// The time-to-live from [`LEASE_TTL_VAR`] (default
    /// [`DEFAULT_LEASE_TTL`]), and `wait`.
    pub fn from_env(wait: Duration) -> Result<LeaseSettings, EngineError> {
        let ttl = match std::env::var(LEASE_TTL_VAR) {
            Err(_) => DEFAULT_LEASE_TTL,
            Ok(value) => value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or(EngineError::LeaseTtl {
                    variable: LEASE_TTL_VAR,
                    value,
                })?,
        };
        Ok(LeaseSettings { ttl, wait })
    }
}

/// One flow, as the engine needs it: the connections it joins and the rules
/// it follows (from the config's `[flows.NAME]`).
#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub name: String,
    /// Source connection name.
    pub source: String,
    /// Target connection name.
    pub target: String,
    pub policy: Policy,
    pub mapping: Mapping,
}

impl FlowSpec {
    /// The configured `flow`, planned with `policy` (the one
    /// [`crate::connect::Host::connect_flow`] fitted to the target).
    pub fn of(flow: &crate::config::Flow, policy: Policy) -> FlowSpec {
        FlowSpec {
            name: flow.name.clone(),
            source: flow.source.clone(),
            target: flow.target.clone(),
            policy,
            mapping: flow.mapping.clone(),
        }
    }
}

/// What the run should do after planning.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Plan only; nothing is written at all (see the module doc).
    Plan,
    /// Plan and apply (unless held).
    Sync {
        /// Apply the pending held plan if its inputs have not changed.
        approve_held: bool,
    },
    /// Apply exactly this reviewed plan, or refuse.
    ApplyFile {
        plan: PlanFile,
        /// Shown in errors.
        file: String,
        approve_held: bool,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `plan`: computed and shown, not applied.
    Planned,
    /// Nothing to change.
    NoChanges,
    /// Applied; some records may have failed (see `failed`).
    Applied,
    /// The guard held the plan (exit code 3).
    Held,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub trigger: Trigger,
    /// Single-record run: only actions about this source id.
    pub only: Option<String>,
    /// Today in the tenant's time zone.
    pub today: Date,
    /// Who approves a held plan (`--approve-held`), for the audit log.
    pub approver: String,
}

/// Everything a run did, for the CLI, `serve` and tests.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub flow: String,
    /// `None` for `plan`, which records no run.
    pub run: Option<RunId>,
    pub outcome: Outcome,
    /// The plan's steps (for a single-record run, those about the record).
    pub steps: Vec<Step>,
    /// The plan rendered for people (terraform-like), whole plan.
    pub plan_text: String,
    /// Guard breaches, in plain language.
    pub breaches: Vec<String>,
    pub applied: Applied,
    pub recovered: Recovered,
    /// Records that could not be read or mapped as they were, by plugin,
    /// record and field (stored with the run for `history`).
    pub problems: Vec<Problem>,
    /// `plan` only: journaled calls whose outcome is not recorded yet, per
    /// run (a live sync's, or a dead one's that the next sync settles).
    pub unsettled: Vec<Unsettled>,
    /// What the plan was made from.
    pub digest: Digest,
    pub today: Date,
}

impl RunReport {
    /// Per-kind step counts of the plan.
    pub fn planned_counts(&self) -> RunCounts {
        apply::count_steps(&self.steps)
    }

    /// Number of calls that failed (not counting dependency skips).
    pub fn failed(&self) -> usize {
        self.applied.failures.iter().filter(|f| !f.skipped).count()
    }

    /// The reviewable plan file for this run's plan.
    pub fn plan_file(&self) -> PlanFile {
        PlanFile {
            format: PLAN_FORMAT.into(),
            flow: self.flow.clone(),
            today: self.today.to_string(),
            snapshot: self.digest.0.clone(),
            held: self.outcome == Outcome::Held || !self.breaches.is_empty(),
            breaches: self.breaches.clone(),
            counts: self.planned_counts(),
            steps: self.steps.clone(),
        }
    }
}

/// Calls of one run whose outcome is not recorded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    pub run: RunId,
    pub calls: usize,
}

impl std::fmt::Display for Unsettled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} call(s) of run {} are not settled yet; the next sync settles them first",
            self.calls, self.run
        )
    }
}

/// The version tag of [`PlanFile`] (see `docs/plan-json.md`).
pub const PLAN_FORMAT: &str = "muster-plan/1";

/// A plan written for review (`muster plan --out plan.json`) and applied
/// later (`muster apply plan.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    /// Always [`PLAN_FORMAT`].
    pub format: String,
    pub flow: String,
    /// The day the plan is for (date gating), `YYYY-MM-DD`.
    pub today: String,
    /// SHA-256 of both snapshots and the link tables it was made from.
    pub snapshot: String,
    /// Whether the guard holds it.
    pub held: bool,
    pub breaches: Vec<String>,
    pub counts: RunCounts,
    pub steps: Vec<Step>,
}

/// The two plugin instances of a flow, configured and granted.
pub struct Connected<'i> {
    pub source: &'i mut PluginInstance,
    pub target: &'i mut PluginInstance,
}

/// Hooks into a run's progress (the CLI draws progress bars with them).
/// Every method has an empty default.
pub trait Observer {
    /// A stage begins: `"reading the source"`, `"planning"`…
    fn stage(&self, _what: &str) {}
    /// Applying begins with this many calls to make.
    fn apply_started(&self, _calls: u64) {}
    /// One more call made (succeeded, failed or skipped).
    fn applied_one(&self) {}
    /// The run is over (successfully or not).
    fn finished(&self) {}
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// Runs `flow` once: read, recover, plan, guard, and apply per `mode`.
pub fn run(
    store: &mut Store,
    flow: &FlowSpec,
    plugins: Connected<'_>,
    mode: Mode,
    options: &RunOptions,
) -> Result<RunReport, EngineError> {
    run_observed(store, flow, plugins, mode, options, &Quiet)
}

/// [`run`], reporting progress to `observer`, with the default
/// [`LeaseSettings`] (no waiting for a busy flow).
pub fn run_observed(
    store: &mut Store,
    flow: &FlowSpec,
    plugins: Connected<'_>,
    mode: Mode,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunReport, EngineError> {
    let lease = LeaseSettings::default();
    run_leased(store, flow, plugins, mode, options, observer, &lease)
}

/// [`run_observed`] with explicit lease settings.
pub fn run_leased(
    store: &mut Store,
    flow: &FlowSpec,
    plugins: Connected<'_>,
    mode: Mode,
    options: &RunOptions,
    observer: &dyn Observer,
    lease: &LeaseSettings,
) -> Result<RunReport, EngineError> {
    let result = match mode {
        Mode::Plan => store
            .check_flow(&flow.name, &flow.source, &flow.target)
            .map_err(EngineError::from)
            .and_then(|_| run_inner(store, flow, plugins, mode, options, None, observer)),
        _ => run_under_lease(store, flow, plugins, mode, options, observer, lease),
    };
    observer.finished();
    match &result {
        Ok(r) => tracing::info!(
            flow = %flow.name,
            outcome = ?r.outcome,
            applied = ?r.applied.counts,
            "run finished"
        ),
        // Not an error of this flow: serve skips the tick, the CLI says so.
        Err(e @ EngineError::Busy { .. }) => tracing::info!(flow = %flow.name, "{e}"),
        // The caller reports the error (the CLI prints it once, `serve` logs
        // it): at the default level it must not also appear as a log line.
        Err(e) => tracing::info!(flow = %flow.name, "run failed: {e}"),
    }
    result
}

/// Sync and apply: take the lease, keep it alive, run, give it back.
fn run_under_lease(
    store: &mut Store,
    flow: &FlowSpec,
    plugins: Connected<'_>,
    mode: Mode,
    options: &RunOptions,
    observer: &dyn Observer,
    settings: &LeaseSettings,
) -> Result<RunReport, EngineError> {
    store.ensure_flow(&flow.name, &flow.source, &flow.target)?;
    let lease = take_lease(store, &flow.name, settings)?;
    if let Some(dead) = &lease.took_over {
        tracing::warn!(
            flow = %flow.name,
            "took over the lease of {} (token {}), which expired at {} without a heartbeat; its run is settled now",
            dead.owner, dead.token, dead.expires
        );
    }
    let result = match Heartbeat::start(store, &lease, settings.ttl) {
        Ok(heartbeat) => {
            let result = begin_and_run(store, flow, plugins, mode, options, observer);
            heartbeat.stop();
            result
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = store.release_lease(&lease) {
        tracing::warn!(flow = %flow.name, "releasing the lease: {e}");
    }
    result
}

/// Waits up to `settings.wait` for the flow's lease.
fn take_lease(
    store: &mut Store,
    flow: &str,
    settings: &LeaseSettings,
) -> Result<Lease, EngineError> {
    let owner = lease::owner_name();
    let start = Instant::now();
    loop {
        match store.acquire_lease(flow, &owner, settings.ttl) {
            Ok(lease) => return Ok(lease),
            Err(StoreError::LeaseHeld(holder)) => {
                let waited = start.elapsed();
                let Some(left) = settings.wait.checked_sub(waited).filter(|l| !l.is_zero()) else {
                    return Err(EngineError::Busy { holder, waited });
                };
                std::thread::sleep(left.min(LEASE_POLL));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Records the run and runs it; a run that fails is finished `failed`.
fn begin_and_run(
    store: &mut Store,
    flow: &FlowSpec,
    plugins: Connected<'_>,
    mode: Mode,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunReport, EngineError> {
    let run = store.begin_run(&flow.name, options.trigger)?;
    let result = run_inner(store, flow, plugins, mode, options, Some(run), observer);
    if let Err(e) = &result {
        // Best effort: the error itself is what the caller must see.
        let _ = store.finish_run(
            run,
            RunStatus::Failed,
            &RunCounts::new(),
            Some(&e.to_string()),
        );
    }
    result
}

fn run_inner(
    store: &mut Store,
    flow: &FlowSpec,
    plugins: Connected<'_>,
    mode: Mode,
    options: &RunOptions,
    run: Option<RunId>,
    observer: &dyn Observer,
) -> Result<RunReport, EngineError> {
    let Connected { source, target } = plugins;
    let mut policy = flow.policy.clone();
    // Groups are mirrored only when both plugins can: reading departments
    // from the source and reading and writing groups in the target.
    let caps = &target.manifest().capabilities;
    let target_can =
        caps.contains(&Capability::ReadTargetGroups) && caps.contains(&Capability::WriteGroups);
    let source_can = source
        .manifest()
        .capabilities
        .contains(&Capability::ReadGroups);
    if !(target_can && source_can) {
        policy.sync_groups = false;
    }

    // A single-record run reads that record when the plugins can
    // (`single`); otherwise, and for every other run, both sides — the source
    // from the watermark the core allows (docs/config.md, "Incremental
    // reads"), the read saying what it covered (a 0.1 read is always full).
    let since = match options.only {
        Some(_) => None,
        None => watermark::since(store, &flow.name, &policy)?,
    };
    let narrowed = match &options.only {
        Some(id) => {
            observer.stage("reading the record");
            let (links, group_links) = known_links(store, &flow.name)?;
            let plugins = Connected {
                source: &mut *source,
                target: &mut *target,
            };
            single::read(
                store,
                flow,
                plugins,
                id,
                policy.sync_groups,
                &links,
                &group_links,
            )?
        }
        None => None,
    };
    let mut other_logins = Vec::new();
    // Both sides read, the source mapped, and both prepared for the plan:
    // page by page as the reads deliver them, or, for the few records of a
    // single-record run, now.
    let (mut sides, narrowed_links) = match narrowed {
        Some(n) => {
            other_logins = n.other_logins;
            observer.stage("planning");
            let sides = prepared::Sides::of(flow, &policy, source.name(), n.source, n.target);
            (sides, Some((n.links, n.group_links)))
        }
        None => {
            let plugins = Connected {
                source: &mut *source,
                target: &mut *target,
            };
            let sides = prepared::Sides::read(flow, &policy, plugins, since.as_deref(), observer)?;
            observer.stage("planning");
            (sides, None)
        }
    };
    let source_read = watermark::SourceRead {
        coverage: sides.source.coverage,
        watermark: sides.source.watermark.clone(),
    };
    let mut problems = std::mem::take(&mut sides.problems);
    // Held: what the source plugin handed over unusable, and what could not
    // be mapped.
    let mut held = sides.source.held.clone();
    held.extend(std::mem::take(&mut sides.unmapped));
    let prepared::Sides {
        source: source_snap,
        target: target_snap,
        mut desired,
        mut source_hashes,
        target_hashes,
        ..
    } = sides;

    let (recovered, unsettled) = match run {
        Some(_) => {
            let recovered = recover::recover(
                store,
                &flow.name,
                run,
                &policy,
                &desired,
                &target_snap.people,
                &target_snap.groups,
            )?;
            if !recovered.is_empty() {
                tracing::warn!(flow = %flow.name, ?recovered, "settled the journal of an interrupted run");
            }
            (recovered, Vec::new())
        }
        None => (Recovered::default(), unsettled_calls(store, &flow.name)?),
    };
    let (links, group_links) = match narrowed_links {
        Some(narrowed) => narrowed,
        None => known_links(store, &flow.name)?,
    };
    let digest = snapshot::digest(
        &source_snap,
        &target_snap,
        &links,
        &group_links,
        options.today,
    );

    let (written_rows, identities) = row_and_identity_inputs(store, &flow.name, &policy)?;
    // A step about an account holding a value that could not be read holds
    // its person: out of the people, into `held` ([`held_by_target`]).
    if !target_snap.held.is_empty() {
        let probe = muster_core::Input {
            source: muster_core::Side {
                people: &desired,
                groups: &source_snap.groups,
                coverage: source_read.coverage,
                held: &held,
                prepared: None,
                other_logins: &[],
            },
            target: muster_core::Side {
                people: &target_snap.people,
                groups: &target_snap.groups,
                coverage: muster_core::Coverage::Full,
                held: &[],
                prepared: None,
                other_logins: &other_logins,
            },
            links: &links,
            prepared_links: None,
            group_links: &group_links,
            identities: &identities,
            written_rows: &written_rows,
            policy: &policy,
            today: options.today,
        };
        let more = held_by_target(&probe, &target_snap.held, &mut problems)
            .map_err(|e| plan_error(&flow.name, e))?;
        prepared::hold(&mut desired, &mut source_hashes, &more);
        held.extend(more);
    }

    if let Some(only) = &options.only
        && !desired.iter().any(|p| &p.id == only)
        && !held.contains(only)
    {
        return Err(EngineError::UnknownRecord(only.clone()));
    }

    // The hashes were computed as the pages came: only the id indexes are
    // left to build.
    let prepared = source_hashes.finish().with_groups(&source_snap.groups);
    let prepared_target = target_hashes.finish().with_groups(&target_snap.groups);
    let prepared_links = muster_core::PreparedLinks::new(&links);
    let input = muster_core::Input {
        source: muster_core::Side {
            people: &desired,
            groups: &source_snap.groups,
            coverage: source_read.coverage,
            // Records read with a bad value, that could not be mapped, or
            // whose account holds a bad value: their accounts are left
            // alone, and the plan says why.
            held: &held,
            prepared: Some(&prepared),
            other_logins: &[],
        },
        target: muster_core::Side {
            people: &target_snap.people,
            groups: &target_snap.groups,
            coverage: muster_core::Coverage::Full,
            held: &[],
            prepared: Some(&prepared_target),
            other_logins: &other_logins,
        },
        links: &links,
        prepared_links: Some(&prepared_links),
        group_links: &group_links,
        identities: &identities,
        written_rows: &written_rows,
        policy: &policy,
        today: options.today,
    };
    let plan = muster_core::plan(&input).map_err(|e| plan_error(&flow.name, e))?;

    let selection = match &options.only {
        Some(id) => Selection::Only(id.as_str()),
        None => Selection::All,
    };
    let steps = apply::selected_steps(&plan, selection);
    // A single-record run is one person's changes: the guard, which protects
    // against mass changes, judges whole plans.
    let breaches: Vec<String> = if options.only.is_some() {
        Vec::new()
    } else {
        plan.breaches().iter().map(|b| b.to_string()).collect()
    };
    let mut report = RunReport {
        flow: flow.name.clone(),
        run,
        outcome: Outcome::Planned,
        steps,
        plan_text: plan.to_string(),
        breaches,
        applied: Applied::default(),
        recovered,
        problems,
        unsettled,
        digest,
        today: options.today,
    };

    let Some(run) = run else {
        return Ok(report);
    };
    let approve = match &mode {
        Mode::Plan => false,
        Mode::Sync { approve_held } => *approve_held,
        Mode::ApplyFile {
            plan: file,
            file: name,
            approve_held,
        } => {
            check_plan_file(file, name, &report)?;
            *approve_held
        }
    };

    if !apply::has_changes(&report.steps) {
        report.outcome = Outcome::NoChanges;
        watermark::settle(
            store,
            &flow.name,
            &source_read,
            &plan,
            options.only.is_none(),
        )?;
        finish(store, run, &report)?;
        return Ok(report);
    }

    if !report.breaches.is_empty() {
        // A reviewed plan file applied with `--approve-held` is its own
        // approval (it was checked against the current data above); a sync
        // approves only the held plan a human has seen.
        let approved = match &mode {
            Mode::ApplyFile { file, .. } if approve => {
                approve_file(store, &flow.name, run, file, &options.approver)?;
                true
            }
            _ => approve && approve_pending(store, &flow.name, &report, &options.approver)?,
        };
        if !approved {
            store.hold_plan(
                &flow.name,
                run,
                &report.steps,
                &report.digest.0,
                &report.breaches.join("; "),
            )?;
            report.outcome = Outcome::Held;
            finish(store, run, &report)?;
            return Ok(report);
        }
    }

    // Whatever was held before is moot once a plan is applied.
    store.supersede_held(&flow.name)?;
    observer.stage("applying");
    let applier = apply::Applier::new(store, &flow.name, run, target, &plan, observer)
        .with_departments_as_given(!source_can);
    report.applied = applier.apply(selection)?;
    report.outcome = Outcome::Applied;
    // Everything this run read is applied: the next read may start after it.
    let applied_all = options.only.is_none()
        && report.applied.failures.is_empty()
        && report.applied.aborted.is_none();
    watermark::settle(store, &flow.name, &source_read, &plan, applied_all)?;
    finish(store, run, &report)?;
    Ok(report)
}

/// The flow's links, none for a flow never recorded (which `plan` does not
/// record).
fn known_links(store: &Store, flow: &str) -> Result<(Vec<Link>, Vec<Link>), StoreError> {
    match store.links(flow) {
        Ok(links) => Ok((links, store.group_links(flow)?)),
        Err(StoreError::UnknownFlow(_)) => Ok((Vec::new(), Vec::new())),
        Err(e) => Err(e),
    }
}

/// What a flow's plan needs from the store beyond its own links: the rows
/// it wrote (when it compares rows by key) and the person links of the
/// flow it takes identities from ([`muster_core::Policy::identity_links`]).
/// A flow never recorded has neither.
fn row_and_identity_inputs(
    store: &Store,
    flow: &str,
    policy: &muster_core::Policy,
) -> Result<(muster_core::WrittenRows, Vec<Link>), StoreError> {
    let written = if policy.row_keys.is_empty() {
        Default::default()
    } else {
        or_none(store.written_rows(flow))?
    };
    let identities = match &policy.identity_links {
        Some(other) => or_none(store.links(other))?,
        None => Vec::new(),
    };
    Ok((written, identities))
}

/// `r`, or nothing for a flow never recorded.
fn or_none<T: Default>(r: Result<T, StoreError>) -> Result<T, StoreError> {
    match r {
        Err(StoreError::UnknownFlow(_)) => Ok(T::default()),
        other => other,
    }
}

/// `plan`'s read-only view of what recovery would settle: open intents per
/// run.
fn unsettled_calls(store: &Store, flow: &str) -> Result<Vec<Unsettled>, StoreError> {
    let entries = match store.unresolved_journal(flow) {
        Ok(e) => e,
        Err(StoreError::UnknownFlow(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut by_run: BTreeMap<RunId, usize> = BTreeMap::new();
    for e in &entries {
        *by_run.entry(e.run).or_default() += 1;
    }
    Ok(by_run
        .into_iter()
        .map(|(run, calls)| Unsettled { run, calls })
        .collect())
}

/// Approves the pending held plan when it is exactly the plan at hand (same
/// inputs, same steps). A held plan made from other data is left pending and
/// the fresh plan is held in its place.
fn approve_pending(
    store: &mut Store,
    flow: &str,
    report: &RunReport,
    approver: &str,
) -> Result<bool, EngineError> {
    let Some(held) = store.held_plan(flow)? else {
        return Ok(false);
    };
    if held.snapshot_digest != report.digest.0 || held.steps != report.steps {
        return Ok(false);
    }
    store.approve_held(flow, approver)?;
    Ok(true)
}

fn approve_file(
    store: &mut Store,
    flow: &str,
    run: RunId,
    file: &str,
    approver: &str,
) -> Result<(), EngineError> {
    let after = serde_json::json!({ "plan_file": file, "approved_by": approver });
    store.audit(&crate::store::AuditEntry {
        flow: Some(flow),
        run: Some(run),
        what: "approve_plan_file",
        subject: flow,
        before: None,
        after: Some(&after),
    })?;
    Ok(())
}

fn check_plan_file(file: &PlanFile, name: &str, report: &RunReport) -> Result<(), EngineError> {
    if file.flow != report.flow {
        return Err(EngineError::WrongFlow {
            file: name.into(),
            found: file.flow.clone(),
            expected: report.flow.clone(),
        });
    }
    if file.snapshot != report.digest.0 || file.today != report.today.to_string() {
        return Err(EngineError::StalePlan {
            file: name.into(),
            planned: file.snapshot.clone(),
            now: report.digest.0.clone(),
        });
    }
    if file.steps != report.steps {
        return Err(EngineError::PlanMismatch {
            file: name.into(),
            flow: report.flow.clone(),
        });
    }
    Ok(())
}

fn finish(store: &mut Store, run: RunId, report: &RunReport) -> Result<(), EngineError> {
    let (status, mut counts) = match report.outcome {
        Outcome::Held => (RunStatus::Held, report.planned_counts()),
        _ => {
            // What was applied, plus the people the plan left out (skips
            // and conflicts), so `history` and the status page show that a
            // run passed somebody over — a hire without an email — and
            // not only what it did.
            let mut counts = report.applied.counts.clone();
            let planned = report.planned_counts();
            for kind in [
                muster_core::ActionKind::Skip,
                muster_core::ActionKind::Conflict,
            ] {
                if let Some(n) = planned.get(kind.name()) {
                    counts.insert(kind.name().into(), *n);
                }
            }
            (RunStatus::Done, counts)
        }
    };
    if !report.problems.is_empty() {
        counts.insert("problems".into(), report.problems.len() as u64);
        let problems: Vec<RunProblem> = report
            .problems
            .iter()
            .map(|p| RunProblem {
                side: p.side.as_str().to_owned(),
                plugin: p.plugin.clone(),
                record: p.record.clone(),
                field: p.field.clone(),
                message: p.message.clone(),
            })
            .collect();
        store.add_run_problems(run, &problems)?;
    }
    let error = report.applied.aborted.clone();
    let notes = run_notes(report);
    if !notes.is_empty() {
        store.set_run_notes(run, &notes)?;
    }
    let left_out = run_left_out(report);
    if !left_out.is_empty() {
        store.add_run_left_out(run, &left_out)?;
    }
    store.finish_run(run, status, &counts, error.as_deref())?;
    Ok(())
}

fn plan_error(flow: &str, e: muster_core::PlanError) -> EngineError {
    EngineError::Plan {
        flow: flow.to_owned(),
        reason: e.to_string(),
    }
}

/// The source people to hold because a step would touch a target account
/// the target's plugin handed over with a value that could not be taken
/// (`bad_accounts`, [`Snapshot::held`]): that account is left exactly as it
/// is — no change is ever planned from a value that could not be read — so
/// its person (linked, or correlated with it in this plan) is held too —
/// the caller takes them out of the people, as the core expects of held
/// records — and a problem says so. Empty, without planning, when no
/// account is bad.
fn held_by_target(
    input: &muster_core::Input<'_>,
    bad_accounts: &[String],
    problems: &mut Vec<Problem>,
) -> Result<Vec<String>, muster_core::PlanError> {
    if bad_accounts.is_empty() {
        return Ok(Vec::new());
    }
    let plan = muster_core::plan(input)?;
    let mut more: Vec<String> = Vec::new();
    for step in plan.steps() {
        let (Some(source), Some(account)) = (&step.source_id, &step.target_id) else {
            continue;
        };
        if !bad_accounts.contains(account)
            || input.source.held.contains(source)
            || more.contains(source)
        {
            continue;
        }
        let plugin = problems
            .iter()
            .find(|p| p.side == Side::Target && &p.record == account)
            .map_or_else(String::new, |p| p.plugin.clone());
        problems.push(Problem {
            side: Side::Target,
            plugin,
            record: account.clone(),
            field: "(record)".into(),
            message: format!(
                "the account is left as it is, and its person `{source}` is held this run"
            ),
        });
        more.push(source.clone());
    }
    Ok(more)
}

/// At most this many notes are kept per run (a first sync of a large tenant
/// may skip thousands); the last line says how many were left out.
const MAX_NOTES: usize = 500;

/// One line per record the run skipped or reported a conflict for, with
/// the reason, for `history` and the status page (the data problems, with
/// record and field, are stored apart: [`Store::add_run_problems`]).
fn run_notes(report: &RunReport) -> Vec<String> {
    let skipped = report
        .steps
        .iter()
        .filter(|s| matches!(s.kind, ActionKind::Skip | ActionKind::Conflict))
        .map(|s| {
            let id = s.source_id.as_deref().or(s.target_id.as_deref());
            let id = id.map(|i| format!(" ({i})")).unwrap_or_default();
            format!("{} {}{id}: {}", s.kind, s.label, s.explanation)
        });
    // Data problems are kept apart, with their fields (`run_problems`).
    let mut notes: Vec<String> = skipped.collect();
    if notes.len() > MAX_NOTES {
        let more = notes.len() - MAX_NOTES;
        notes.truncate(MAX_NOTES);
        notes.push(format!("… and {more} more (see `muster plan` for all)"));
    }
    notes
}

/// Every record the run skipped or reported a conflict for, with its ids,
/// name and reason (code and plain words), for the status page's run view
/// and person search. All of them, unlike the capped [`run_notes`].
fn run_left_out(report: &RunReport) -> Vec<crate::store::LeftOut> {
    use crate::store::{LeftOut, LeftOutKind};
    report
        .steps
        .iter()
        .filter_map(|s| {
            let kind = match s.kind {
                ActionKind::Skip => LeftOutKind::Skip,
                ActionKind::Conflict => LeftOutKind::Conflict,
                _ => return None,
            };
            Some(LeftOut {
                kind,
                source_id: s.source_id.clone(),
                target_id: s.target_id.clone(),
                label: s.label.clone(),
                reason: s.reason.clone(),
                explanation: s.explanation.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use muster_core::{Date, Input, Link, Person, Policy, Side as CoreSide};

    use super::*;

    fn person(id: &str, email: &str, title: &str) -> Person {
        Person {
            work_email: Some(email.into()),
            job_title: Some(title.into()),
            start_date: Date::from_ymd(2020, 1, 6).ok(),
            ..Person::new(id)
        }
    }

    fn target_problem(account: &str) -> Problem {
        Problem {
            side: Side::Target,
            plugin: "tool".into(),
            record: account.into(),
            field: "birth_date".into(),
            message: "2025-02-30 is not a date of the calendar".into(),
        }
    }

    /// A bad account — linked (`a`), or about to be correlated by email
    /// (`b`) — holds its person; a clean one (`c`) does not.
    #[test]
    fn a_bad_target_account_holds_the_person_a_step_would_touch() {
        let policy = Policy::default();
        let source = [
            person("1", "one@acme.fr", "Boss"),
            person("2", "two@acme.fr", "Boss"),
            person("3", "three@acme.fr", "Boss"),
        ];
        let target = [
            person("a", "one@acme.fr", "Intern"),
            person("b", "two@acme.fr", "Intern"),
            person("c", "three@acme.fr", "Intern"),
        ];
        let links = [Link::new("1", "a")];
        let input = Input {
            source: CoreSide::people(&source),
            target: CoreSide::people(&target),
            links: &links,
            prepared_links: None,
            group_links: &[],
            identities: &[],
            written_rows: &muster_core::rows::NOTHING_WRITTEN,
            policy: &policy,
            today: Date::from_ymd(2026, 3, 2).expect("a date"),
        };
        let mut problems = vec![target_problem("a"), target_problem("b")];
        let bad = ["a".to_string(), "b".to_string()];
        let mut held = held_by_target(&input, &bad, &mut problems).expect("plans");
        held.sort();
        assert_eq!(held, ["1", "2"]);
        let mut notes: Vec<(&str, &str, bool)> = problems[2..]
            .iter()
            .map(|p| {
                let says = p.message.contains("is held this run");
                (p.record.as_str(), p.plugin.as_str(), says)
            })
            .collect();
        notes.sort();
        assert_eq!(notes, [("a", "tool", true), ("b", "tool", true)]);
        // Nothing bad: nothing held, no plan made.
        let mut none = Vec::new();
        assert!(
            held_by_target(&input, &[], &mut none)
                .expect("no plan")
                .is_empty()
        );
        assert!(none.is_empty());
    }
}
