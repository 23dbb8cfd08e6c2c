//! Runs: one row per sync of a flow, from `begin_run` to `finish_run`.

use std::collections::BTreeMap;
use std::fmt;

use super::journal::JournalEntry;
use super::{Context, StoreError, parse_enum};

/// A run's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
    Webhook,
    /// A single-record run ("test the sync from this talent's record").
    Single,
    /// `muster undo RUN`: the run reverses another one (its
    /// [`RunRecord::undoes`]).
    Undo,
}

impl Trigger {
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Webhook => "webhook",
            Trigger::Single => "single",
            Trigger::Undo => "undo",
        }
    }

    /// The value kept in `runs.trigger`, whose `CHECK` (version 1) predates
    /// undo runs: an undo run is stored as `manual` with its `undoes`
    /// column set (version 10), and read back as [`Trigger::Undo`]. Both
    /// backends store it this way, so the column means one thing.
    pub(crate) const fn stored(self) -> &'static str {
        match self {
            Trigger::Undo => "manual",
            other => other.as_str(),
        }
    }

    /// The trigger of a stored run: `trigger` as stored, and whether the run
    /// undoes another.
    pub(crate) fn of_stored(trigger: String, undoes: Option<RunId>) -> Result<Trigger, StoreError> {
        match undoes {
            Some(_) => Ok(Trigger::Undo),
            None => parse_enum("runs.trigger", trigger, Trigger::parse),
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        [
            Trigger::Schedule,
            Trigger::Manual,
            Trigger::Webhook,
            Trigger::Single,
            Trigger::Undo,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// Where a run stands. Only `Running` can be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    /// Applied (individual actions may have failed: see the journal).
    Done,
    /// Could not complete (e.g. a read failed).
    Failed,
    /// The guard held the plan; see [`Store::held_plan`].
    Held,
    /// Interrupted: the process died, or the run was stopped.
    Aborted,
}

impl RunStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Held => "held",
            RunStatus::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Done,
            RunStatus::Failed,
            RunStatus::Held,
            RunStatus::Aborted,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's counters (`"create" → 12`, `"failed" → 1` …), stored as a JSON
/// object. Free-form keys so the engine can count what it needs.
pub type RunCounts = BTreeMap<String, u64>;

/// One run, for `muster history`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub id: RunId,
    pub flow: String,
    pub trigger: Trigger,
    /// The run this one undoes (trigger [`Trigger::Undo`]).
    pub undoes: Option<RunId>,
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub counts: RunCounts,
    pub error: Option<String>,
    /// What the run skipped or left out, one line per record with why
    /// ([`Store::set_run_notes`]); empty for runs that skipped nothing.
    pub notes: Vec<String>,
    /// The run's journal, in step order.
    pub journal: Vec<JournalEntry>,
    /// The records the run could not take as they were, in the order
    /// reported.
    pub problems: Vec<RunProblem>,
}

/// A record a run could not take as it was (see
/// [`crate::runtime::connector::Problem`]), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunProblem {
    /// `source` or `target`.
    pub side: String,
    pub plugin: String,
    pub record: String,
    pub field: String,
    pub message: String,
}

/// One run's row, without its journal: what `muster undo` checks first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: RunId,
    pub flow: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    /// The run this one undoes.
    pub undoes: Option<RunId>,
}

/// The `runs` columns both backends select for a [`RunSummary`], in
/// [`RawRun`]'s order.
pub(crate) const RUN_COLUMNS: &str =
    r#"id, "trigger", status, started_at, finished_at, counts, error, notes, undoes"#;

/// A `runs` row of [`RUN_COLUMNS`], before its JSON and enums are decoded.
pub(crate) struct RawRun {
    pub(crate) id: RunId,
    pub(crate) trigger: String,
    pub(crate) status: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: Option<String>,
    pub(crate) counts: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) notes: Option<String>,
    pub(crate) undoes: Option<RunId>,
}

/// A run of `flow` as [`RunSummary`], given its journal and problems (each
/// backend reads those its own way).
pub(crate) fn summary(
    flow: &str,
    raw: RawRun,
    journal: Vec<JournalEntry>,
    problems: Vec<RunProblem>,
) -> Result<RunSummary, StoreError> {
    let id = raw.id;
    let counts = match raw.counts {
        Some(c) => {
            serde_json::from_str(&c).context(|| format!("flow `{flow}`: counts of run {id}"))?
        }
        None => RunCounts::new(),
    };
    let notes = match raw.notes {
        Some(n) => {
            serde_json::from_str(&n).context(|| format!("flow `{flow}`: notes of run {id}"))?
        }
        None => Vec::new(),
    };
    Ok(RunSummary {
        id,
        flow: flow.into(),
        trigger: Trigger::of_stored(raw.trigger, raw.undoes)?,
        undoes: raw.undoes,
        status: parse_enum("runs.status", raw.status, RunStatus::parse)?,
        started_at: raw.started_at,
        finished_at: raw.finished_at,
        counts,
        error: raw.error,
        notes,
        journal,
        problems,
    })
}

/// A [`RunRecord`] from its row: flow, stored trigger, status, `undoes`.
pub(crate) fn record(
    run: RunId,
    (flow, trigger, status, undoes): (String, String, String, Option<i64>),
) -> Result<RunRecord, StoreError> {
    let undoes = undoes.map(RunId);
    Ok(RunRecord {
        id: run,
        flow,
        trigger: Trigger::of_stored(trigger, undoes)?,
        status: parse_enum("runs.status", status, RunStatus::parse)?,
        undoes,
    })
}
