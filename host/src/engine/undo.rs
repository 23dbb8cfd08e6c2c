//! `muster undo RUN`: plan the inverse of what a run did, and apply it as a
//! run of its own.
//!
//! The host's part is bookkeeping; the inverse is the core's
//! ([`muster_core::undo`]):
//!
//! 1. **Check the run** ([`UndoError`]): it exists, belongs to the flow, is
//!    not running, and did something — a held plan, or a run that failed or
//!    was aborted before any call took effect, has nothing to undo.
//! 2. **What it did**: its journal entries settled `done`, in order, each
//!    with the step that was applied (the before-values are the changes'
//!    `old`); a create's `target_id` is the account it produced.
//! 3. **Read the target** in full (the source is not read: an undo reverses
//!    what muster did, whatever the source says now), with the flow's links.
//! 4. **Plan** with the core, which checks each record against the target as
//!    it is now and the flow's ownership; the plan is guarded by the flow's
//!    guard like any other.
//! 5. **Apply** ([`UndoMode::Apply`]), under the flow's lease, as a new run
//!    with trigger `undo` that names the run it undoes
//!    ([`Store::begin_undo_run`]), journaled and audited by the same applier
//!    as a sync — so an undo can itself be undone. A plan over the guard is
//!    held (exit code 3) until `--approve-held` finds the same plan on the
//!    same data. [`UndoMode::Hold`] always holds it for review (what the
//!    status page's button asks for).
//!
//! What the undo does *not* change: the source. If the source still says
//! what the undone run acted on (the end dates are still there), the next
//! sync does it again — correct the source, or the guard will hold that
//! wave again.

use muster_core::{ActionKind, Date, Step, UndoInput};

use super::snapshot::{self, Snapshot};
use super::{
    Applied, EngineError, FlowSpec, Observer, Outcome, RunReport, Selection, Unsettled, apply,
    approve_pending, finish, known_links, take_lease,
};
use crate::runtime::PluginInstance;
use crate::runtime::connector::Side;
use crate::store::{Heartbeat, RunId, RunStatus, Store, StoreError};

/// Why a run cannot be undone.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("run {0} does not exist (see `muster history` for the runs and their ids)")]
    UnknownRun(RunId),
    #[error("run {run} is a run of flow `{found}`, not of flow `{flow}`")]
    OtherFlow {
        run: RunId,
        flow: String,
        found: String,
    },
    #[error(
        "run {run} of flow `{flow}` is still running; undo it once it has finished (if its process died, the next sync settles it)"
    )]
    StillRunning { run: RunId, flow: String },
    #[error(
        "run {run} of flow `{flow}` was never applied ({status}{}): there is nothing to undo",
        never_applied_hint(*.status)
    )]
    NeverApplied {
        run: RunId,
        flow: String,
        status: RunStatus,
    },
    #[error("run {run} of flow `{flow}` changed nothing in the target: there is nothing to undo")]
    NothingDone { run: RunId, flow: String },
}

fn never_applied_hint(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Held => ": the guard held its plan",
        RunStatus::Failed => ": it failed before any change took effect",
        RunStatus::Aborted => ": it was interrupted before any change took effect",
        _ => "",
    }
}

/// What `undo` does with the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoMode {
    /// Show it; nothing is recorded (like `muster plan`).
    Plan,
    /// Apply it, unless the guard holds it; `approve_held` applies the held
    /// undo plan when the data has not changed since.
    Apply { approve_held: bool },
    /// Record it as a held plan for review, even under the guard's
    /// thresholds (the status page's button).
    Hold,
}

/// One undo: which run, how, on what day, approved by whom.
#[derive(Debug, Clone)]
pub struct UndoRequest {
    pub run: RunId,
    pub mode: UndoMode,
    /// Today in the tenant's time zone.
    pub today: Date,
    /// Who approves a held undo plan, for the audit log.
    pub approver: String,
}

/// Plans the undo of `request.run` and, per its mode, applies or holds it.
/// `plan` records nothing and takes no lease; the other modes take the
/// flow's lease (waiting as `lease` says) and record a run.
pub fn undo(
    store: &mut Store,
    flow: &FlowSpec,
    target: &mut PluginInstance,
    request: &UndoRequest,
    observer: &dyn Observer,
    lease: &super::LeaseSettings,
) -> Result<RunReport, EngineError> {
    let result = match request.mode {
        UndoMode::Plan => done_steps(store, &flow.name, request.run)
            .and_then(|done| undo_inner(store, flow, target, request, &done, None, observer)),
        _ => undo_under_lease(store, flow, target, request, observer, lease),
    };
    observer.finished();
    result
}

fn undo_under_lease(
    store: &mut Store,
    flow: &FlowSpec,
    target: &mut PluginInstance,
    request: &UndoRequest,
    observer: &dyn Observer,
    settings: &super::LeaseSettings,
) -> Result<RunReport, EngineError> {
    store.ensure_flow(&flow.name, &flow.source, &flow.target)?;
    // Checked before the lease, so a wrong id never waits for a busy flow;
    // checked again under it (the run may have ended or started since).
    done_steps(store, &flow.name, request.run)?;
    let lease = take_lease(store, &flow.name, settings)?;
    let result = match Heartbeat::start(store, &lease, settings.ttl) {
        Ok(heartbeat) => {
            let result = begin_and_undo(store, flow, target, request, observer);
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

fn begin_and_undo(
    store: &mut Store,
    flow: &FlowSpec,
    target: &mut PluginInstance,
    request: &UndoRequest,
    observer: &dyn Observer,
) -> Result<RunReport, EngineError> {
    let done = done_steps(store, &flow.name, request.run)?;
    let run = store.begin_undo_run(&flow.name, request.run)?;
    let result = undo_inner(store, flow, target, request, &done, Some(run), observer);
    if let Err(e) = &result {
        // Best effort: the error itself is what the caller must see.
        let _ = store.finish_run(
            run,
            RunStatus::Failed,
            &Default::default(),
            Some(&e.to_string()),
        );
    }
    result
}

/// The steps of `run` that took effect, after checking it may be undone
/// as a run of `flow`.
pub fn done_steps(store: &Store, flow: &str, run: RunId) -> Result<Vec<Step>, EngineError> {
    let record = match store.run_record(run) {
        Ok(r) => r,
        Err(StoreError::UnknownRun(_)) => return Err(UndoError::UnknownRun(run).into()),
        Err(e) => return Err(e.into()),
    };
    if record.flow != flow {
        return Err(UndoError::OtherFlow {
            run,
            flow: flow.into(),
            found: record.flow,
        }
        .into());
    }
    if record.status == RunStatus::Running {
        return Err(UndoError::StillRunning {
            run,
            flow: flow.into(),
        }
        .into());
    }
    let done: Vec<Step> = store
        .run_journal(run)?
        .into_iter()
        .filter(|e| e.state == crate::store::JournalState::Done)
        .map(|e| {
            let mut step = e.step;
            if step.kind == ActionKind::Create {
                step.target_id = e.produced_target_id.or(step.target_id);
            }
            step
        })
        .collect();
    if !done.is_empty() {
        return Ok(done);
    }
    Err(match record.status {
        RunStatus::Done => UndoError::NothingDone {
            run,
            flow: flow.into(),
        },
        status => UndoError::NeverApplied {
            run,
            flow: flow.into(),
            status,
        },
    }
    .into())
}

fn undo_inner(
    store: &mut Store,
    flow: &FlowSpec,
    target: &mut PluginInstance,
    request: &UndoRequest,
    done: &[Step],
    run: Option<RunId>,
    observer: &dyn Observer,
) -> Result<RunReport, EngineError> {
    observer.stage("reading the target");
    let target_snap =
        snapshot::read(target, Side::Target, false, None).map_err(|e| EngineError::Read {
            side: "target",
            connection: flow.target.clone(),
            source: e,
        })?;
    observer.stage("planning the undo");
    let (links, group_links) = known_links(store, &flow.name)?;
    let undo = muster_core::undo(UndoInput {
        run: u64::try_from(request.run.0).map_err(|_| UndoError::UnknownRun(request.run))?,
        done,
        accounts: &target_snap.people,
        groups: &target_snap.groups,
        links: &links,
        group_links: &group_links,
        policy: &flow.policy,
        today: request.today,
    });
    let plan = undo.plan();
    let digest = snapshot::digest(
        &Snapshot::default(),
        &target_snap,
        &links,
        &group_links,
        request.today,
    );
    let mut report = RunReport {
        flow: flow.name.clone(),
        run,
        outcome: Outcome::Planned,
        steps: plan.steps(),
        plan_text: plan.to_string(),
        breaches: plan.breaches().iter().map(|b| b.to_string()).collect(),
        applied: Applied::default(),
        recovered: Default::default(),
        problems: target_snap.problems.clone(),
        unsettled: Vec::<Unsettled>::new(),
        digest,
        today: request.today,
    };
    let Some(run) = run else {
        return Ok(report);
    };
    if !apply::has_changes(&report.steps) {
        report.outcome = Outcome::NoChanges;
        finish(store, run, &report)?;
        return Ok(report);
    }
    // An approval applies the held undo plan it names, guarded or not (the
    // status page holds every undo for review), and records who approved it.
    let approved = match request.mode {
        UndoMode::Apply { approve_held: true } => {
            approve_pending(store, &flow.name, &report, &request.approver)?
        }
        _ => false,
    };
    let hold = match request.mode {
        UndoMode::Hold => true,
        UndoMode::Apply { .. } => !report.breaches.is_empty() && !approved,
        UndoMode::Plan => false,
    };
    if hold {
        let why = if report.breaches.is_empty() {
            format!("undo of run {} held for review", request.run)
        } else {
            report.breaches.join("; ")
        };
        store.hold_plan(&flow.name, run, &report.steps, &report.digest.0, &why)?;
        report.outcome = Outcome::Held;
        finish(store, run, &report)?;
        return Ok(report);
    }
    store.supersede_held(&flow.name)?;
    observer.stage("applying the undo");
    let applier = apply::Applier::new(store, &flow.name, run, target, &plan, observer);
    report.applied = applier.apply(Selection::All)?;
    report.outcome = Outcome::Applied;
    finish(store, run, &report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use muster_core::{ActionKind, Step};

    use super::*;
    use crate::store::{RunCounts, Trigger};

    fn step(kind: ActionKind, source: &str) -> Step {
        Step {
            kind,
            source_id: Some(source.into()),
            target_id: None,
            label: format!("Person {source}"),
            reason: "new_person".into(),
            explanation: "new person in the source".into(),
            changes: Vec::new(),
            rows: Vec::new(),
            members: Vec::new(),
            member_names: Default::default(),
            carries: Vec::new(),
            group_name: None,
            manager_source_id: None,
            created: Vec::new(),
        }
    }

    /// A finished run of flow `f` whose calls ended as `outcomes` say
    /// (`Some(target)`: done, producing that id; `None`: failed).
    fn run(store: &mut Store, status: RunStatus, outcomes: &[Option<&str>]) -> RunId {
        let run = store.begin_run("f", Trigger::Manual).expect("run");
        for (seq, outcome) in (1..).zip(outcomes) {
            let id = store
                .journal_intent(run, seq, &step(ActionKind::Create, &seq.to_string()))
                .expect("intent");
            match outcome {
                Some(target) => store.journal_done(id, Some(target)).expect("done"),
                None => store.journal_failed(id, "refused").expect("failed"),
            }
        }
        store
            .finish_run(run, status, &RunCounts::new(), None)
            .expect("finish");
        run
    }

    fn refusal(store: &Store, run: RunId) -> String {
        match done_steps(store, "f", run) {
            Err(EngineError::Undo(e)) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn only_the_calls_that_took_effect_are_undone_and_a_run_without_any_is_refused() {
        let mut store = Store::open_in_memory().expect("store");
        store.ensure_flow("f", "a", "b").expect("flow");
        let failed = run(&mut store, RunStatus::Failed, &[None]);
        assert_eq!(
            refusal(&store, failed),
            format!(
                "run {failed} of flow `f` was never applied (failed: it failed before any change took effect): there is nothing to undo"
            )
        );
        let aborted = run(&mut store, RunStatus::Aborted, &[]);
        assert!(refusal(&store, aborted).contains("(aborted: it was interrupted"));
        let nothing = run(&mut store, RunStatus::Done, &[]);
        assert!(refusal(&store, nothing).contains("changed nothing in the target"));

        // Interrupted after one create took effect: that create is undone,
        // under the account it produced; the failed one is not.
        let half = run(&mut store, RunStatus::Aborted, &[Some("acct-1"), None]);
        let done = done_steps(&store, "f", half).expect("undoable");
        assert_eq!(done.len(), 1);
        assert_eq!(
            (done[0].source_id.as_deref(), done[0].target_id.as_deref()),
            (Some("1"), Some("acct-1"))
        );
        assert!(
            refusal_for_flow(&store, half, "g").contains("is a run of flow `f`, not of flow `g`")
        );
    }

    fn refusal_for_flow(store: &Store, run: RunId, flow: &str) -> String {
        match done_steps(store, flow, run) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected a refusal"),
        }
    }
}
