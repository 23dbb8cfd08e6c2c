//! Aggregates of the run history for `/metrics`: a few `GROUP BY` queries
//! over runs, the journal and what runs left out, each in its own function
//! (a PostgreSQL backend answers the same questions with the same SQL, bar
//! the JSON functions). Everything here counts since the database was
//! created, so the numbers are Prometheus counters that survive restarts.

use super::{Context, Store, StoreError};

/// Per flow and label (an outcome, an action kind…): a count.
pub type Tally = Vec<(String, String, u64)>;

/// The last finished run of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub flow: String,
    pub started_at: String,
    pub finished_at: String,
}

/// What `/metrics` reads from the store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreMetrics {
    /// Every flow the store knows, in name order (so a flow that never ran
    /// still has its series).
    pub flows: Vec<String>,
    /// Finished runs by flow and status (`done`, `failed`, `held`,
    /// `aborted`).
    pub runs: Tally,
    /// Actions the target confirmed (journal `done`) by flow and kind.
    pub actions: Tally,
    /// Actions the target refused (journal `failed`) by flow.
    pub failed: Vec<(String, u64)>,
    /// Records left out (skips and conflicts) by flow and kind.
    pub left_out: Tally,
    /// The last finished run of each flow that has one.
    pub last_runs: Vec<LastRun>,
    /// When each flow's last `done` run finished (RFC 3339, UTC).
    pub last_success: Vec<(String, String)>,
}

impl Store {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LeftOut, LeftOutKind, RunCounts, RunStatus, Trigger};

    #[test]
    fn runs_are_counted_by_flow_and_outcome_and_running_ones_are_not() {
        let mut s = Store::open_in_memory().unwrap();
        s.ensure_flow("a", "x", "y").unwrap();
        s.ensure_flow("b", "x", "y").unwrap();
        let counts = RunCounts::new();
        for status in [RunStatus::Done, RunStatus::Done, RunStatus::Failed] {
            let run = s.begin_run("a", Trigger::Manual).unwrap();
            s.finish_run(run, status, &counts, None).unwrap();
        }
        let run = s.begin_run("a", Trigger::Manual).unwrap();
        let skip = LeftOut {
            kind: LeftOutKind::Skip,
            source_id: Some("1".into()),
            target_id: None,
            label: "n".into(),
            reason: "r".into(),
            explanation: "e".into(),
        };
        s.add_run_left_out(run, &[skip.clone(), skip]).unwrap();
        let m = s.metrics().unwrap();
        assert_eq!(m.flows, ["a", "b"]);
        assert_eq!(
            m.runs,
            [
                ("a".into(), "done".into(), 2),
                ("a".into(), "failed".into(), 1)
            ]
        );
        assert_eq!(m.left_out, [("a".into(), "skip".into(), 2)]);
        assert_eq!(m.last_runs.len(), 1);
        assert_eq!(m.last_success.len(), 1);
        assert!(m.actions.is_empty() && m.failed.is_empty());
    }
}
