//! The records a run left out, in SQLite (see `store/left_out.rs`).

use rusqlite::params;

use super::SqliteStore;
use super::runs::run_state;
use crate::store::left_out::RawLeftOut;
use crate::store::{Context, LeftOut, RunId, RunStatus, StoreError};

impl SqliteStore {
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
        rows.into_iter()
            .map(crate::store::left_out::left_out)
            .collect()
    }
}

/// The insert, in one place (`postgres/left_out.rs` writes the same rows).
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
