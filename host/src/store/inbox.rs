//! The webhook inbox: events received by `muster serve`, stored before they
//! are processed, so an event that was accepted is never lost.
//!
//! Protocol (see `serve`):
//!
//! 1. [`Store::inbox_push`] — committed *before* the HTTP answer and before
//!    any run. A sender's delivery id makes it idempotent: a redelivery
//!    returns the first event's id ([`Pushed::Duplicate`]) and stores
//!    nothing.
//! 2. the single-record run;
//! 3. [`Store::inbox_done`] when it succeeded, [`Store::inbox_failed`] when
//!    it did not: the event stays `pending` (attempts + 1, last error kept)
//!    and is retried — at the next start of `serve` and periodically while
//!    it runs. [`Store::inbox_reject`] is for events no run can ever
//!    process (no record id in the payload): kept, with the reason, never
//!    retried.
//!
//! A process killed between 1 and 3 leaves the event `pending`: the next
//! start retries it. Single-record runs converge (the engine's journal and
//! the core's correlation make a second run a no-op), so at-least-once
//! processing is safe.

use std::fmt;

use super::runs::RunId;

/// An inbox event's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboxId(pub i64);

impl fmt::Display for InboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an inbox event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    /// Not processed yet, or its last run failed: it will be (re)tried.
    Pending,
    /// A run processed it.
    Done,
    /// No run can process it (e.g. no record id); kept for inspection.
    Rejected,
}

impl InboxState {
    pub const fn as_str(self) -> &'static str {
        match self {
            InboxState::Pending => "pending",
            InboxState::Done => "done",
            InboxState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<InboxState> {
        [InboxState::Pending, InboxState::Done, InboxState::Rejected]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

impl fmt::Display for InboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Store::inbox_push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Stored as a new event.
    New(InboxId),
    /// The sender's delivery id was seen before: nothing stored, this is
    /// the first delivery's event.
    Duplicate(InboxId),
}

impl Pushed {
    pub fn id(self) -> InboxId {
        match self {
            Pushed::New(id) | Pushed::Duplicate(id) => id,
        }
    }
}

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEvent {
    pub id: InboxId,
    pub flow: String,
    pub received_at: String,
    /// The sender's delivery id, if it sent one.
    pub delivery_id: Option<String>,
    /// The record id extracted from the payload, when there was one.
    pub record_id: Option<String>,
    /// The body as received.
    pub payload: String,
    pub state: InboxState,
    /// Runs tried so far.
    pub attempts: u32,
    /// The last failure or the rejection reason.
    pub error: Option<String>,
    /// The run that processed it (or the last one that tried).
    pub run: Option<RunId>,
    pub processed_at: Option<String>,
}
