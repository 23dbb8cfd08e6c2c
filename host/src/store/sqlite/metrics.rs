//! The run history's totals for `/metrics`, in SQLite (see
//! `store/metrics.rs`).

use super::SqliteStore;
use crate::store::{Context, LastRun, StoreError, StoreMetrics, Tally};

impl SqliteStore {
    /// The aggregates `/metrics` exposes.
    pub fn metrics(&self) -> Result<StoreMetrics, StoreError> {
        let ctx = || "reading the run history's totals for /metrics".to_string();
        let c = &self.conn;
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
                "SELECT flows.name, MAX(runs.finished_at), 0 FROM runs
                   JOIN flows ON flows.id = runs.flow_id
                  WHERE runs.status = 'done' AND runs.finished_at IS NOT NULL
                  GROUP BY flows.name ORDER BY 1",
            )
            .context(ctx)?
            .into_iter()
            .map(|(flow, at, _)| (flow, at))
            .collect(),
        })
    }
}

fn column(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Rows of `(text, text, count)`.
fn tally(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Tally> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?.max(0) as u64,
        ))
    })?;
    rows.collect()
}

fn last_runs(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<LastRun>> {
    let mut stmt = conn.prepare_cached(
        "SELECT flows.name, runs.started_at, runs.finished_at FROM runs
           JOIN flows ON flows.id = runs.flow_id
          WHERE runs.id = (SELECT MAX(r.id) FROM runs AS r
                            WHERE r.flow_id = runs.flow_id AND r.finished_at IS NOT NULL)
          ORDER BY 1",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(LastRun {
            flow: r.get(0)?,
            started_at: r.get(1)?,
            finished_at: r.get(2)?,
        })
    })?;
    rows.collect()
}
