//! The action journal: an intent before each call to the target, an outcome
//! after. See the module doc of [`super`] for the crash semantics.

use std::fmt;

use muster_core::{ActionKind, Step};

use super::links::LinkKind;
use super::runs::RunId;
use super::state::AuditEntry;

/// A journal entry's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JournalId(pub i64);

impl fmt::Display for JournalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an action stands. Only `Intent` moves, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalState {
    /// Written before the call; the outcome is not known (yet).
    Intent,
    Done,
    Failed,
    /// Recovery could not tell whether the call took effect. The next plan,
    /// made from a fresh read of the target, decides what is left to do.
    Unknown,
}

impl JournalState {
    pub const fn as_str(self) -> &'static str {
        match self {
            JournalState::Intent => "intent",
            JournalState::Done => "done",
            JournalState::Failed => "failed",
            JournalState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<JournalState> {
        [
            JournalState::Intent,
            JournalState::Done,
            JournalState::Failed,
            JournalState::Unknown,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

impl fmt::Display for JournalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How recovery resolved an intent left by a run that died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The call took effect (e.g. the account was found by its correlation
    /// key). For a create, prefer [`Store::record_link_and_done`].
    Done { target_id: Option<String> },
    /// The call did not take effect, or was rejected.
    Failed { error: String },
    /// It cannot be told; the note says why.
    Unknown { note: String },
}

/// One journaled action.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub id: JournalId,
    pub run: RunId,
    pub flow: String,
    /// Position in the run's plan.
    pub seq: u32,
    pub kind: ActionKind,
    pub source_id: Option<String>,
    pub target_id: Option<String>,
    /// The resolved plan step, as it was about to be applied.
    pub step: Step,
    pub state: JournalState,
    pub error: Option<String>,
    /// The target id the call produced (a create's new account id).
    pub produced_target_id: Option<String>,
    pub created_at: String,
    pub resolved_at: Option<String>,
}

/// How one journaled call ended, for [`Store::journal_next`] and
/// [`Store::journal_complete`].
#[derive(Debug, Clone)]
pub struct Completion<'a> {
    pub id: JournalId,
    pub outcome: Outcome<'a>,
    /// Written with the outcome, for a change that happened.
    pub audit: Option<AuditEntry<'a>>,
}

/// The outcome part of a [`Completion`].
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// Succeeded; the id it produced or touched.
    Done { target_id: Option<&'a str> },
    /// Succeeded and created (or adopted) a record: the link is stored with
    /// the outcome.
    Linked {
        kind: LinkKind,
        source_id: &'a str,
        target_id: &'a str,
    },
    /// Failed with this error (per-record isolation: the run goes on).
    Failed { error: &'a str },
}
