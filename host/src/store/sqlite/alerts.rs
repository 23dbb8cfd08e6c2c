//! What `muster serve`'s alerts read and remember, in SQLite (see
//! `store/alerts.rs`).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::{AlertKind, Context, RecordFailure, RunFailures, RunId, StoreError, time};

impl SqliteStore {
    /// The last `runs` full runs of `flow` that got as far as an outcome
    /// (triggered by a schedule or by hand, ended `done` or `failed`),
    /// newest first, each with its record failures in the order reported.
    /// Single-record and webhook runs are left out: they touch one record,
    /// so they say nothing about whether the others still fail.
    pub fn recent_record_failures(
        &self,
        flow: &str,
        runs: usize,
    ) -> Result<Vec<RunFailures>, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let ctx = || format!("flow `{flow}`: reading the record failures of its last {runs} runs");
        let mut stmt = self
            .conn
            .prepare_cached(
                r#"WITH recent AS (
                       SELECT id FROM runs
                       WHERE flow_id = ?1 AND status IN ('done', 'failed')
                         AND "trigger" IN ('schedule', 'manual') AND undoes IS NULL
                       ORDER BY id DESC LIMIT ?2)
                   SELECT recent.id, f.record, f.what, f.message FROM recent
                   LEFT JOIN (
                       SELECT run_id, record, field AS what, message, 0 AS origin, seq
                       FROM run_problems WHERE run_id IN (SELECT id FROM recent)
                       UNION ALL
                       SELECT run_id, COALESCE(source_id, target_id, ''), kind,
                              COALESCE(error, 'failed'), 1, seq
                       FROM journal WHERE state = 'failed' AND run_id IN (SELECT id FROM recent)
                   ) AS f ON f.run_id = recent.id
                   ORDER BY recent.id DESC, f.origin, f.seq"#,
            )
            .context(ctx)?;
        let limit = i64::try_from(runs).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![flow_id, limit], |r| {
                Ok((
                    RunId(r.get(0)?),
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .context(ctx)?;
        let mut out: Vec<RunFailures> = Vec::new();
        for row in rows {
            let (run, record, what, message) = row.context(ctx)?;
            if out.last().is_none_or(|r| r.run != run) {
                out.push(RunFailures {
                    run,
                    failures: Vec::new(),
                });
            }
            if let (Some(record), Some(last)) = (record, out.last_mut()) {
                last.failures.push(RecordFailure {
                    record,
                    what: what.unwrap_or_default(),
                    message: message.unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// The error `run` ended with, if any.
    pub fn run_error(&self, run: RunId) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT error FROM runs WHERE id = ?1")
            .and_then(|mut s| s.query_row([run.0], |r| r.get::<_, Option<String>>(0)))
            .optional()
            .context(|| format!("run {run}: reading its error"))?
            .ok_or(StoreError::UnknownRun(run))
    }

    /// Remembers that the alert `kind`/`key` of `flow` is being sent, and
    /// says whether it is new: `false` means it was sent before (by this
    /// process or an earlier one) and must not be sent again.
    pub fn alert_once(
        &mut self,
        flow: &str,
        kind: AlertKind,
        key: &str,
    ) -> Result<bool, StoreError> {
        let ctx = || format!("flow `{flow}`: recording the {} alert {key}", kind.as_str());
        let tx = self.write_tx(ctx)?;
        let flow_id = SqliteStore::flow_id(&tx, flow)?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO alerts_sent (flow_id, kind, key, sent_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![flow_id, kind.as_str(), key, time::now()],
            )
            .context(ctx)?;
        tx.commit().context(ctx)?;
        Ok(added == 1)
    }
}
