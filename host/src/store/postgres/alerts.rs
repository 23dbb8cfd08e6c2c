//! What `muster serve`'s alerts read and remember, in PostgreSQL (twin of
//! `sqlite/alerts.rs`: the same statements, `$n` parameters, and
//! `ON CONFLICT DO NOTHING` for SQLite's `INSERT OR IGNORE`).

use super::{PostgresStore, limit};
use crate::store::{AlertKind, Context, RecordFailure, RunFailures, RunId, StoreError, time};

impl PostgresStore {
    /// See [`crate::store::Store::recent_record_failures`].
    pub fn recent_record_failures(
        &self,
        flow: &str,
        runs: usize,
    ) -> Result<Vec<RunFailures>, StoreError> {
        let ctx = || format!("flow `{flow}`: reading the record failures of its last {runs} runs");
        let rows = self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            c.query(
                r#"WITH recent AS (
                       SELECT id FROM runs
                       WHERE flow_id = $1 AND status IN ('done', 'failed')
                         AND "trigger" IN ('schedule', 'manual') AND undoes IS NULL
                       ORDER BY id DESC LIMIT $2)
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
                &[&flow_id, &limit(runs)],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        Ok((
                            RunId(r.try_get(0)?),
                            r.try_get::<_, Option<String>>(1)?,
                            r.try_get::<_, Option<String>>(2)?,
                            r.try_get::<_, Option<String>>(3)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, postgres::Error>>()
            })
            .context(ctx)
        })?;
        let mut out: Vec<RunFailures> = Vec::new();
        for (run, record, what, message) in rows {
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

    /// See [`crate::store::Store::run_error`].
    pub fn run_error(&self, run: RunId) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            c.query_opt("SELECT error FROM runs WHERE id = $1", &[&run.0])
                .and_then(|r| r.map(|r| r.try_get::<_, Option<String>>(0)).transpose())
                .context(|| format!("run {run}: reading its error"))
        })?
        .ok_or(StoreError::UnknownRun(run))
    }

    /// See [`crate::store::Store::alert_once`].
    pub fn alert_once(
        &mut self,
        flow: &str,
        kind: AlertKind,
        key: &str,
    ) -> Result<bool, StoreError> {
        let ctx = || format!("flow `{flow}`: recording the {} alert {key}", kind.as_str());
        let added = self.write(ctx, |tx| {
            let flow_id = PostgresStore::flow_id(tx, flow)?;
            tx.execute(
                "INSERT INTO alerts_sent (flow_id, kind, key, sent_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (flow_id, kind, key) DO NOTHING",
                &[&flow_id, &kind.as_str(), &key, &time::now()],
            )
            .context(ctx)
        })?;
        Ok(added == 1)
    }
}
