//! A person's history across runs and flows, for the status page's search
//! ("what happened to Nina Müller?").
//!
//! Two steps, both bounded:
//!
//! 1. **Who is meant.** The query is matched against the journal (an
//!    action's source id, target id or produced id; its name, by substring;
//!    any text value of its step, exactly — that is how an email address is
//!    found, in a create's or change's values) and against what runs left
//!    out ([`super::left_out`]: ids, and name by substring). Every match
//!    yields the record's source and target ids; at most [`MAX_PEOPLE`]
//!    records are taken.
//! 2. **What happened to them.** Every journal entry and left-out row with
//!    one of those source or target ids, in any flow, newest run first —
//!    so a person found by the email of their create in one flow also shows
//!    the skip or conflict another flow reported for their id.
//!
//! Matching is case-insensitive for ASCII letters (SQLite's `lower`;
//! PostgreSQL's folds every letter); ids are matched exactly. Each backend
//! has the two steps in its `search.rs`; the types and the last step
//! ([`newest_first`]) are here, shared. Ids of different connections are not told apart: a
//! source id that two source systems both use finds both records.

use super::journal::JournalEntry;
use super::left_out::LeftOut;
use super::runs::RunId;

/// At most this many records are taken as "the person" a query means: a
/// query as broad as one letter stops there instead of reading everything.
pub const MAX_PEOPLE: usize = 50;

/// One thing that happened to a person in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonEvent {
    pub run: RunId,
    pub flow: String,
    /// When: the action's journal time, or the run's start for a record it
    /// left out (RFC 3339, UTC).
    pub at: String,
    pub what: PersonEventKind,
}

/// An action the run journaled, or a record it left out.
#[derive(Debug, Clone, PartialEq)]
pub enum PersonEventKind {
    Action(Box<JournalEntry>),
    LeftOut(LeftOut),
}

/// A search's answer: newest run first, at most the limit asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersonHistory {
    pub events: Vec<PersonEvent>,
    /// More events matched than the limit: the page says so.
    pub more: bool,
}

/// The ids a query resolved to.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    pub(crate) sources: Vec<String>,
    pub(crate) targets: Vec<String>,
}

impl Ids {
    /// Adds a matching row's source and target ids, once each.
    pub(crate) fn add(&mut self, source: Option<String>, target: Option<String>) {
        for (id, into) in [(source, &mut self.sources), (target, &mut self.targets)] {
            if let Some(id) = id
                && !into.contains(&id)
            {
                into.push(id);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.targets.is_empty()
    }
}

/// How many events each backend's query fetches for `limit`: one more, to
/// tell whether there are more.
pub(crate) fn fetch_limit(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// Both backends' last step: newest run first (within a run, actions before
/// what it left out), cut to `limit`.
pub(crate) fn newest_first(mut events: Vec<PersonEvent>, limit: usize) -> PersonHistory {
    events.sort_by_key(|e| std::cmp::Reverse(e.run));
    let more = events.len() > limit;
    events.truncate(limit);
    PersonHistory { events, more }
}
