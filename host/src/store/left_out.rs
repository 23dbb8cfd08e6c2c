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

use std::fmt;

use rusqlite::params;

use super::runs::{RunId, RunStatus, run_state};
use super::{Context, Store, StoreError, parse_enum};

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

impl Store {
    /// Records what a running run left out (appended after any already
    /// recorded), committed.
    pub fn add_run_left_out(&mut self, run: RunId, rows: &[LeftOut]) -> Result<(), StoreError> {
        let tx = self.write_tx(|| format!("run {run}: recording the records it left out"))?;
        let (flow, status) = run_state(&tx, run)?;
        if status != RunStatus::Running {
            return Err(StoreError::RunFinished { run, flow, status });
        }
        insert_left_out(&tx, run, rows)
            .context(|| format!("flow `{flow}`: recording the records run {run} left out"))?;
        tx.commit()
            .context(|| format!("flow `{flow}`: committing the records run {run} left out"))
    }

    /// What `run` left out, in plan order.
    pub fn run_left_out(&self, run: RunId) -> Result<Vec<LeftOut>, StoreError> {
        let ctx = || format!("run {run}: reading the records it left out");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT kind, source_id, target_id, label, reason, explanation
                 FROM run_left_out WHERE run_id = ?1 ORDER BY seq",
            )
            .context(ctx)?;
        let rows = stmt
            .query_map([run.0], raw_left_out)
            .context(ctx)?
            .collect::<Result<Vec<_>, _>>()
            .context(ctx)?;
        rows.into_iter().map(left_out).collect()
    }
}

/// The insert, in one place (a PostgreSQL backend writes the same rows).
fn insert_left_out(
    tx: &rusqlite::Transaction<'_>,
    run: RunId,
    rows: &[LeftOut],
) -> rusqlite::Result<()> {
    let next: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM run_left_out WHERE run_id = ?1",
        [run.0],
        |r| r.get(0),
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO run_left_out
         (run_id, seq, kind, source_id, target_id, label, reason, explanation)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (seq, l) in (next + 1..).zip(rows) {
        insert.execute(params![
            run.0,
            seq,
            l.kind.as_str(),
            l.source_id,
            l.target_id,
            l.label,
            l.reason,
            l.explanation
        ])?;
    }
    Ok(())
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

/// Reads `kind, source_id, target_id, label, reason, explanation` from the
/// first six columns of `r`.
pub(crate) fn raw_left_out(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawLeftOut> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

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
