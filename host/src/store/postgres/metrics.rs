//! The run history's totals for `/metrics`, in PostgreSQL (twin of
//! `sqlite/metrics.rs`: the same queries; counts are `BIGINT`).

use postgres::GenericClient;

use super::PostgresStore;
use crate::store::{Context, LastRun, StoreError, StoreMetrics, Tally};

impl PostgresStore {
    /// See [`crate::store::Store::metrics`].
    pub fn metrics(&self) -> Result<StoreMetrics, StoreError> {
        let ctx = || "reading the run history's totals for /metrics".to_string();
        self.read(|c| {
            Ok(StoreMetrics {
                flows: column(c, "SELECT name FROM flows ORDER BY name").context(ctx)?,
                runs: tally(
                    c,
                    "SELECT flows.name, runs.status, COUNT(*) FROM runs
                       JOIN flows ON flows.id = runs.flow_id
                      WHERE runs.status <> 'running'
                      GROUP BY flows.name, runs.status ORDER BY 1, 2",
                )
                .context(ctx)?,
                actions: tally(
                    c,
                    "SELECT flows.name, journal.kind, COUNT(*) FROM journal
                       JOIN runs ON runs.id = journal.run_id JOIN flows ON flows.id = runs.flow_id
                      WHERE journal.state = 'done'
                      GROUP BY flows.name, journal.kind ORDER BY 1, 2",
                )
                .context(ctx)?,
                failed: tally(
                    c,
                    "SELECT flows.name, '', COUNT(*) FROM journal
                       JOIN runs ON runs.id = journal.run_id JOIN flows ON flows.id = runs.flow_id
                      WHERE journal.state = 'failed' GROUP BY flows.name ORDER BY 1",
                )
                .context(ctx)?
                .into_iter()
                .map(|(flow, _, n)| (flow, n))
                .collect(),
                left_out: tally(
                    c,
                    "SELECT flows.name, l.kind, COUNT(*) FROM run_left_out AS l
                       JOIN runs ON runs.id = l.run_id JOIN flows ON flows.id = runs.flow_id
                      GROUP BY flows.name, l.kind ORDER BY 1, 2",
                )
                .context(ctx)?,
                last_runs: last_runs(c).context(ctx)?,
                last_success: tally(
                    c,
                    "SELECT flows.name, MAX(runs.finished_at), 0::BIGINT FROM runs
                       JOIN flows ON flows.id = runs.flow_id
                      WHERE runs.status = 'done' AND runs.finished_at IS NOT NULL
                      GROUP BY flows.name ORDER BY 1",
                )
                .context(ctx)?
                .into_iter()
                .map(|(flow, at, _)| (flow, at))
                .collect(),
            })
        })
    }
}

fn column(c: &mut impl GenericClient, sql: &str) -> Result<Vec<String>, postgres::Error> {
    c.query(sql, &[])?.iter().map(|r| r.try_get(0)).collect()
}

/// `(flow, label, count)` rows; the label column is text (`''` is cast).
fn tally(c: &mut impl GenericClient, sql: &str) -> Result<Tally, postgres::Error> {
    c.query(sql, &[])?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<_, String>(0)?,
                r.try_get::<_, String>(1)?,
                u64::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0),
            ))
        })
        .collect()
}

fn last_runs(c: &mut impl GenericClient) -> Result<Vec<LastRun>, postgres::Error> {
    c.query(
        "SELECT flows.name, runs.started_at, runs.finished_at FROM runs
           JOIN flows ON flows.id = runs.flow_id
          WHERE runs.id = (SELECT MAX(r.id) FROM runs AS r
                            WHERE r.flow_id = runs.flow_id AND r.finished_at IS NOT NULL)
          ORDER BY 1",
        &[],
    )?
    .iter()
    .map(|r| {
        Ok(LastRun {
            flow: r.try_get(0)?,
            started_at: r.try_get(1)?,
            finished_at: r.try_get(2)?,
        })
    })
    .collect()
}
