//! The records a run left out: every person or group the plan skipped or
//! reported a conflict for, with the core's reason code and the reason in
//! plain words, one row each (`run_left_out`, schema V8).
//!
//! `runs.notes` keeps a capped, printable summary for `muster history`; these
//! rows are the structured record the status page reads: the run view lists
//! them, and the person search finds them by source id, target id or name.
//! All of them are kept (a row is a few ids and a sentence), so "why was this
//! person never created?" has an answer for every run, not only the first
//! few hundred records.
//!
//! The types are here; the SQL is in `sqlite/left_out.rs` and its twin
//! `postgres/left_out.rs`.

use std::fmt;

#[cfg(test)]
use super::{RunId, RunStatus, Store};
use super::{StoreError, parse_enum};

/// Why a record is in [`LeftOut`]: the plan's two kinds of step that do not
/// act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOutKind {
    /// Nothing to do for the record, by rule (no start date, no email…).
    Skip,
    /// The plan cannot decide for the record (a key taken, ambiguous): a
    /// person must.
    Conflict,
}

impl LeftOutKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            LeftOutKind::Skip => "skip",
            LeftOutKind::Conflict => "conflict",
        }
    }

    pub fn parse(s: &str) -> Option<LeftOutKind> {
        [LeftOutKind::Skip, LeftOutKind::Conflict]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for LeftOutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record a run skipped or found in conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub kind: LeftOutKind,
    pub source_id: Option<String>,
    pub target_id: Option<String>,
    /// The record's name, as the plan called it.
    pub label: String,
    /// The core's stable reason code (`missing_field`, `key_taken`…).
    pub reason: String,
    /// The reason in plain words (the core's explanation, as the CLI
    /// prints it after "because").
    pub explanation: String,
}

/// A row's columns, before the kind is checked.
pub(crate) type RawLeftOut = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

/// A [`LeftOut`] from its row (both backends).
pub(crate) fn left_out(raw: RawLeftOut) -> Result<LeftOut, StoreError> {
    let (kind, source_id, target_id, label, reason, explanation) = raw;
    Ok(LeftOut {
        kind: parse_enum("run_left_out.kind", kind, LeftOutKind::parse)?,
        source_id,
        target_id,
        label,
        reason,
        explanation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RunCounts, Trigger};

    fn skip(source: &str, label: &str) -> LeftOut {
        LeftOut {
            kind: LeftOutKind::Skip,
            source_id: Some(source.into()),
            target_id: None,
            label: label.into(),
            reason: "missing_field".into(),
            explanation: "the source record has no work email".into(),
        }
    }

    #[test]
    fn rows_are_kept_in_order_across_calls_and_only_while_running() {
        let mut s = Store::open_in_memory().unwrap();
        s.ensure_flow("f", "a", "b").unwrap();
        let run = s.begin_run("f", Trigger::Manual).unwrap();
        s.add_run_left_out(run, &[skip("1", "Nina Müller")])
            .unwrap();
        let conflict = LeftOut {
            kind: LeftOutKind::Conflict,
            target_id: Some("t-9".into()),
            reason: "key_taken".into(),
            ..skip("2", "Ada <b>")
        };
        s.add_run_left_out(run, std::slice::from_ref(&conflict))
            .unwrap();
        assert_eq!(
            s.run_left_out(run).unwrap(),
            [skip("1", "Nina Müller"), conflict]
        );
        s.finish_run(run, RunStatus::Done, &RunCounts::new(), None)
            .unwrap();
        assert!(matches!(
            s.add_run_left_out(run, &[skip("3", "x")]),
            Err(StoreError::RunFinished { .. })
        ));
        assert!(matches!(
            s.add_run_left_out(RunId(99), &[]),
            Err(StoreError::UnknownRun(RunId(99)))
        ));
    }
}
