//! Runs: one row per sync of a flow, from `begin_run` to `finish_run`.

use std::collections::BTreeMap;
use std::fmt;

use super::journal::JournalEntry;

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
}

impl Trigger {
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Webhook => "webhook",
            Trigger::Single => "single",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        [
            Trigger::Schedule,
            Trigger::Manual,
            Trigger::Webhook,
            Trigger::Single,
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
