//! The records a run left out, in PostgreSQL (twin of
//! `sqlite/left_out.rs`).

use postgres::GenericClient;

use super::PostgresStore;
use super::runs::run_state;
use crate::store::left_out::{RawLeftOut, left_out};
use crate::store::{Context, LeftOut, RunId, RunStatus, StoreError};

impl PostgresStore {
    /// See [`crate::store::Store::add_run_left_out`].
    pub fn add_run_left_out(&mut self, run: RunId, rows: &[LeftOut]) -> Result<(), StoreError> {
        self.write(
            || format!("run {run}: recording the records it left out"),
            |tx| {
                let (flow, status) = run_state(tx, run)?;
                if status != RunStatus::Running {
                    return Err(StoreError::RunFinished { run, flow, status });
                }
                insert_left_out(tx, run, rows)
                    .context(|| format!("flow `{flow}`: recording the records run {run} left out"))
            },
        )
    }

    /// See [`crate::store::Store::run_left_out`].
    pub fn run_left_out(&self, run: RunId) -> Result<Vec<LeftOut>, StoreError> {
        let ctx = || format!("run {run}: reading the records it left out");
        let raws = self.read(|c| {
            c.query(
                "SELECT kind, source_id, target_id, label, reason, explanation
                 FROM run_left_out WHERE run_id = $1 ORDER BY seq",
                &[&run.0],
            )
            .and_then(|rows| rows.iter().map(raw_left_out).collect::<Result<Vec<_>, _>>())
            .context(ctx)
        })?;
        raws.into_iter().map(left_out).collect()
    }
}

/// The insert, in one place (twin of the SQLite one).
fn insert_left_out(
    tx: &mut impl GenericClient,
    run: RunId,
    rows: &[LeftOut],
) -> Result<(), postgres::Error> {
    let next: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(seq), 0) FROM run_left_out WHERE run_id = $1",
            &[&run.0],
        )?
        .try_get(0)?;
    let insert = tx.prepare(
        "INSERT INTO run_left_out
         (run_id, seq, kind, source_id, target_id, label, reason, explanation)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )?;
    for (seq, l) in (next + 1..).zip(rows) {
        tx.execute(
            &insert,
            &[
                &run.0,
                &seq,
                &l.kind.as_str(),
                &l.source_id,
                &l.target_id,
                &l.label,
                &l.reason,
                &l.explanation,
            ],
        )?;
    }
    Ok(())
}

/// Reads `kind, source_id, target_id, label, reason, explanation` from the
/// first six columns of `r`.
pub(crate) fn raw_left_out(r: &postgres::Row) -> Result<RawLeftOut, postgres::Error> {
    Ok((
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
    ))
}
